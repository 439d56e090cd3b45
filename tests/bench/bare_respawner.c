/* The floor for respawn latency on this machine: a 40-line supervisor that waits on
 * its one child's pidfd and posix_spawns the replacement the moment it dies, with no
 * logging, no policy, no fd map. The respawn benchmark runs it beside fdsupd, with the
 * same worker, so fdsupd's figure can be read as a ratio to what exit + exec cost here.
 *
 * --setsid: each child in its own session (POSIX_SPAWN_SETSID), as fdsupd starts every
 * worker. Not free: with CONFIG_SCHED_AUTOGROUP a new session is a new scheduler group,
 * created at the spawn and destroyed at the exit.
 *
 * usage: bare_respawner [--setsid] PROGRAM ARG   (runs until SIGTERM) */
#define _GNU_SOURCE
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

int main(int argc, char** argv) {
    int own_session = argc > 1 && strcmp(argv[1], "--setsid") == 0;
    argv += own_session;
    argc -= own_session;
    if (argc < 3) return 2;
    char* child_argv[] = {argv[1], argv[2], NULL};
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    if (own_session) posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID);
    for (;;) {
        pid_t pid;
        if (posix_spawn(&pid, argv[1], NULL, &attr, child_argv, environ) != 0) return 1;
        int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
        struct pollfd p = {.fd = pidfd, .events = POLLIN};
        while (poll(&p, 1, -1) < 0) {
        }
        siginfo_t info;
        waitid(P_PIDFD, (id_t)pidfd, &info, WEXITED);
        close(pidfd);
    }
}
