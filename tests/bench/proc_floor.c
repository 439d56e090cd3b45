/* The floor for a status's usage gathering on this machine: the /proc reads fdsupd
 * makes for it, and nothing else. fdsupd's `status` lists /proc, reads the stat file of
 * every process there (an instance is its process group: its CPU and memory are the
 * sums of its members') and counts the open fds of each instance's main process
 * (fstatat of /proc/PID/fd, whose size is the count since Linux 6.2), on two threads
 * once there are 256 instances (sys/proc_stat.cpp). This does the same reads the same
 * way (the second thread counts fds while the first lists /proc, then both share the
 * stat reads in chunks) and prints how long one pass took; nothing else: no parsing
 * past the read, no JSON, no socket, no client. status_floor.py runs it
 * beside `fdsupctl --json status`, so that status can be read as a ratio to what the
 * kernel's side costs here.
 *
 * usage: proc_floor PASSES PID...   (the instances' main pids; one line per pass, ms) */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum { kChunk = 32 };

static int proc_fd;
static pid_t* instances;
static size_t instance_count;
static pid_t* listed;
static size_t listed_count;
static atomic_size_t next_fds, next_stat;
static pthread_mutex_t listing_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t listing_done = PTHREAD_COND_INITIALIZER;
static int listed_yet;

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static void read_stat(pid_t pid) {
    char path[32], buffer[1024];
    snprintf(path, sizeof path, "%d/stat", (int)pid);
    int fd = openat(proc_fd, path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;  /* gone meanwhile */
    if (read(fd, buffer, sizeof buffer) < 0) perror("read stat");
    close(fd);
}

static void count_fds(pid_t pid) {
    char path[32];
    struct stat st;
    snprintf(path, sizeof path, "%d/fd", (int)pid);
    if (fstatat(proc_fd, path, &st, 0) != 0) perror("fstatat fd");
}

/* Takes chunks of jobs [0, total) from `next` until none is left. */
static void run(atomic_size_t* next, size_t total, void (*job)(size_t)) {
    for (size_t begin; (begin = atomic_fetch_add(next, kChunk)) < total;)
        for (size_t i = begin; i < begin + kChunk && i < total; ++i) job(i);
}

static void fds_job(size_t i) { count_fds(instances[i]); }
static void stat_job(size_t i) { read_stat(listed[i]); }

static void* helper_part(void* unused) {
    (void)unused;
    run(&next_fds, instance_count, fds_job);
    pthread_mutex_lock(&listing_lock);
    while (!listed_yet) pthread_cond_wait(&listing_done, &listing_lock);
    pthread_mutex_unlock(&listing_lock);
    run(&next_stat, listed_count, stat_job);
    return NULL;
}

static void list_proc(void) {
    listed_count = 0;
    DIR* dir = opendir("/proc");
    if (dir == NULL) {
        perror("opendir /proc");
        exit(1);
    }
    struct dirent* entry;
    while ((entry = readdir(dir)) != NULL) {
        char* end;
        long pid = strtol(entry->d_name, &end, 10);
        if (*end != '\0' || pid <= 0) continue;
        listed[listed_count++] = (pid_t)pid;
    }
    closedir(dir);
}

int main(int argc, char** argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: proc_floor PASSES PID...\n");
        return 2;
    }
    int passes = atoi(argv[1]);
    instance_count = (size_t)(argc - 2);
    instances = calloc(instance_count, sizeof *instances);
    listed = calloc((size_t)4 << 20, sizeof *listed);  /* pid_max is at most 4M */
    if (instances == NULL || listed == NULL) return 1;
    for (size_t i = 0; i < instance_count; ++i) instances[i] = (pid_t)atoi(argv[i + 2]);
    proc_fd = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (proc_fd < 0) {
        perror("open /proc");
        return 1;
    }
    for (int pass = 0; pass < passes; ++pass) {
        atomic_store(&next_fds, 0);
        atomic_store(&next_stat, 0);
        listed_yet = 0;
        double began = now_ms();
        pthread_t helper;
        if (pthread_create(&helper, NULL, helper_part, NULL) != 0) {
            perror("pthread_create");
            return 1;
        }
        list_proc();
        pthread_mutex_lock(&listing_lock);
        listed_yet = 1;
        pthread_cond_signal(&listing_done);
        pthread_mutex_unlock(&listing_lock);
        run(&next_fds, instance_count, fds_job);
        run(&next_stat, listed_count, stat_job);
        pthread_join(helper, NULL);
        printf("%.3f\n", now_ms() - began);
        fflush(stdout);
    }
    return 0;
}
