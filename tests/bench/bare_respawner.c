/* The floor for respawn latency on this machine: a 40-line supervisor that waits on
 * its one child's pidfd and posix_spawns the replacement the moment it dies, with no
 * logging, no policy, no fd map. The respawn benchmark runs it beside fdsupd, with the
 * same worker, so fdsupd's figure can be read as a ratio to what exit + exec cost here.
 *
 * usage: bare_respawner PROGRAM ARG   (runs until SIGTERM) */
#define _GNU_SOURCE
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

int main(int argc, char** argv) {
    if (argc < 3) return 2;
    char* child_argv[] = {argv[1], argv[2], NULL};
    for (;;) {
        pid_t pid;
        if (posix_spawn(&pid, argv[1], NULL, NULL, child_argv, environ) != 0) return 1;
        int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
        struct pollfd p = {.fd = pidfd, .events = POLLIN};
        while (poll(&p, 1, -1) < 0) {
        }
        siginfo_t info;
        waitid(P_PIDFD, (id_t)pidfd, &info, WEXITED);
        close(pidfd);
    }
}
