/*
 * session_worker - fdsup test helper: a line-echo server whose client connections
 * survive its own death, through the supervisor's fd store (systemd's FDSTORE=1).
 *
 * At start it takes its fds with libsystemd's sd_listen_fds_with_names():
 *   "http"       the listening socket (configured: sockets = ["http"])
 *   "conn-..."   client connections a previous process stored: served again
 * then sends READY=1. Every accepted connection is stored at once with
 * sd_pid_notify_with_fds("FDSTORE=1\nFDNAME=conn-<pid>-<n>"), so a SIGKILL loses nothing.
 * A connection the client closes is removed again (FDSTOREREMOVE=1): a client's close
 * does not hang up fdsupd's copy (the other end still has a reader), so the store
 * would keep it.
 *
 * Each line a client sends is answered with
 *   "<pid> <LISTEN_FDNAMES as this process got it> <line>\n"
 * so a test sees which process answered and what it was handed.
 *
 * Usage: session_worker [--fd-socket]
 *   --fd-socket   store through fdsupd's fd socket (fdsup_store_fds() from fdsup_fds.h)
 *                 instead of sd_notify
 *
 * SIGTERM: exit 0 at once. Build: cc -std=gnu11 -o session_worker session_worker.c -lsystemd
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "fdsup_fds.h"

#define MAX_CONNS 64

struct conn {
    int fd;
    char name[64];
    char buf[4096];
    size_t used;
};

static struct conn conns[MAX_CONNS];
static int conn_count;
static char fdnames[4096] = "-";

static void add_conn(int fd, const char *name)
{
    if (conn_count == MAX_CONNS) {
        close(fd);
        return;
    }
    conns[conn_count].fd = fd;
    snprintf(conns[conn_count].name, sizeof conns[conn_count].name, "%s", name);
    conns[conn_count].used = 0;
    conn_count++;
}

static void drop_conn(int i)
{
    char message[128];
    snprintf(message, sizeof message, "FDSTOREREMOVE=1\nFDNAME=%s", conns[i].name);
    sd_notify(0, message);
    close(conns[i].fd);
    conns[i] = conns[--conn_count];
}

/* Answers every complete line; 0 when the client is gone. */
static int serve(struct conn *c)
{
    ssize_t n = read(c->fd, c->buf + c->used, sizeof c->buf - c->used - 1);
    if (n <= 0)
        return n < 0 && (errno == EINTR || errno == EAGAIN);
    c->used += (size_t)n;
    char *newline;
    while ((newline = memchr(c->buf, '\n', c->used)) != NULL) {
        *newline = '\0';
        char reply[8192];
        int length = snprintf(reply, sizeof reply, "%d %s %s\n", (int)getpid(), fdnames, c->buf);
        if (write(c->fd, reply, (size_t)length) != length)
            return 0;
        size_t consumed = (size_t)(newline - c->buf) + 1;
        memmove(c->buf, newline + 1, c->used - consumed);
        c->used -= consumed;
    }
    if (c->used == sizeof c->buf - 1)
        c->used = 0; /* a line too long: forget it */
    return 1;
}

int main(int argc, char **argv)
{
    int via_fd_socket = argc > 1 && strcmp(argv[1], "--fd-socket") == 0;
    signal(SIGPIPE, SIG_IGN);
    const char *given = getenv("LISTEN_FDNAMES");
    if (given != NULL && *given != '\0')
        snprintf(fdnames, sizeof fdnames, "%s", given);

    char **names = NULL;
    int n = sd_listen_fds_with_names(1, &names);
    if (n < 0) {
        fprintf(stderr, "session_worker: sd_listen_fds_with_names: %s\n", strerror(-n));
        return 3;
    }
    int listener = -1;
    for (int i = 0; i < n; i++) {
        int fd = SD_LISTEN_FDS_START + i;
        if (strcmp(names[i], "http") == 0)
            listener = fd;
        else if (strncmp(names[i], "conn-", 5) == 0)
            add_conn(fd, names[i]);
        else
            close(fd);
        free(names[i]);
    }
    free(names);
    if (listener < 0) {
        fprintf(stderr, "session_worker: no socket named http in LISTEN_FDNAMES\n");
        return 3;
    }
    printf("session_worker: pid %d resumed %d connection(s)\n", (int)getpid(), conn_count);
    fflush(stdout);
    sd_notify(0, "READY=1\nSTATUS=serving");

    unsigned long accepted = 0;
    for (;;) {
        struct pollfd fds[MAX_CONNS + 1];
        fds[0] = (struct pollfd){.fd = listener, .events = POLLIN};
        for (int i = 0; i < conn_count; i++)
            fds[i + 1] = (struct pollfd){.fd = conns[i].fd, .events = POLLIN};
        int count = conn_count;
        if (poll(fds, (nfds_t)count + 1, -1) < 0) {
            if (errno == EINTR)
                continue;
            return 1;
        }
        for (int i = count - 1; i >= 0; i--)
            if (fds[i + 1].revents != 0 && !serve(&conns[i]))
                drop_conn(i);
        if (fds[0].revents & POLLIN) {
            int fd = accept4(listener, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
            if (fd < 0)
                continue;
            char name[64];
            snprintf(name, sizeof name, "conn-%d-%lu", (int)getpid(), ++accepted);
            if (via_fd_socket) {
                char why[256];
                if (fdsup_store_fds(name, &fd, 1, why, sizeof why) != 1)
                    fprintf(stderr, "session_worker: fdsup_store_fds: %s\n", why);
            } else {
                char message[128];
                snprintf(message, sizeof message, "FDSTORE=1\nFDNAME=%s", name);
                int r = sd_pid_notify_with_fds(0, 0, message, &fd, 1);
                if (r <= 0)
                    fprintf(stderr, "session_worker: FDSTORE failed: %s\n", r < 0 ? strerror(-r) : "no NOTIFY_SOCKET");
            }
            add_conn(fd, name);
        }
    }
}
