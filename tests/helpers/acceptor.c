/*
 * acceptor - fdsup test helper: waits for connections on its listening socket (fd 3, as
 * systemd's LISTEN_FDS hands it) in one of the ways apps do, for the accept watch's tests
 * (health/accept_watch.h) to see from outside.
 *
 * Usage: acceptor MODE [--delay-ms N]
 *
 *   accept                  blocking accept() in the main thread
 *   accept-thread           accept() in a second thread; the main thread sleeps
 *   poll, ppoll             poll()/ppoll() on a set of two: a pipe, then the socket
 *   select                  select() on a set of two likewise
 *   pselect                 pselect() on a dup of the socket at fd 70 (past the first
 *                           word of the fd_set)
 *   epoll                   epoll_wait() with the socket registered for EPOLLIN
 *   epoll-disabled          epoll_wait() with the socket registered with events 0
 *   epoll-oneshot-consumed  registered EPOLLIN|EPOLLONESHOT, the one event taken (it
 *                           connects to itself), then epoll_wait() without re-arming
 *   fork-select             a pre-fork server: the child dups the socket to fd 9, closes
 *                           3 and select()s on 9; the parent only waits for the child
 *   none                    holds the socket and never waits on it: pause()
 *
 * Just before it starts waiting it writes one byte to fd 4, if fd 4 is open (fork-select:
 * the child does). --delay-ms N sleeps N ms first. A connection that comes is accepted
 * and closed. It dies with its parent (PR_SET_PDEATHSIG, SIGKILL; fork-select's child
 * too), so no test leaves one behind. It prints nothing unless something fails (then
 * "acceptor: WHAT: ERROR" and exit 1; usage errors exit 2).
 *
 * Build: gcc -std=gnu11 -Wall -Wextra -Werror -O2 -pthread -o acceptor acceptor.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define LISTENER 3
#define READY_PIPE 4

static void die(const char *what)
{
    fprintf(stderr, "acceptor: %s: %s\n", what, strerror(errno));
    exit(1);
}

/* Dies with the parent; if the parent is already gone, now: it was `parent` (0: the
 * one that exec'd us, gone if we are init's now). */
static void die_with(pid_t parent)
{
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
        die("prctl PR_SET_PDEATHSIG");
    if (parent ? getppid() != parent : getppid() == 1)
        _exit(1);
}

static void say_ready(void)
{
    if (fcntl(READY_PIPE, F_GETFD) < 0)
        return;
    if (write(READY_PIPE, "r", 1) != 1)
        die("write fd 4");
    close(READY_PIPE);
}

static void take_one(int fd)
{
    int conn = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
    if (conn >= 0)
        close(conn);
    else if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
        die("accept");
}

static void *accept_loop(void *unused)
{
    (void)unused;
    say_ready();
    for (;;)
        take_one(LISTENER);
    return NULL;
}

static void poll_loop(int use_ppoll)
{
    int pipe_fds[2];
    if (pipe2(pipe_fds, O_CLOEXEC) < 0)
        die("pipe2");
    struct pollfd set[2] = {{pipe_fds[0], POLLIN, 0}, {LISTENER, POLLIN, 0}};
    say_ready();
    for (;;) {
        int n = use_ppoll ? ppoll(set, 2, NULL, NULL) : poll(set, 2, -1);
        if (n < 0 && errno != EINTR)
            die(use_ppoll ? "ppoll" : "poll");
        if (n > 0 && (set[1].revents & POLLIN))
            take_one(LISTENER);
    }
}

/* select() or pselect() on `fd` and a pipe. */
static void select_loop(int fd, int use_pselect)
{
    int pipe_fds[2];
    if (pipe2(pipe_fds, O_CLOEXEC) < 0)
        die("pipe2");
    int nfds = (fd > pipe_fds[0] ? fd : pipe_fds[0]) + 1;
    say_ready();
    for (;;) {
        fd_set readable;
        FD_ZERO(&readable);
        FD_SET(pipe_fds[0], &readable);
        FD_SET(fd, &readable);
        int n = use_pselect ? pselect(nfds, &readable, NULL, NULL, NULL, NULL)
                            : select(nfds, &readable, NULL, NULL, NULL);
        if (n < 0 && errno != EINTR)
            die(use_pselect ? "pselect" : "select");
        if (n > 0 && FD_ISSET(fd, &readable))
            take_one(fd);
    }
}

/* Connects to our own listener, so that a one-shot registration fires once. */
static void connect_to_self(void)
{
    struct sockaddr_storage addr;
    socklen_t len = sizeof addr;
    if (getsockname(LISTENER, (struct sockaddr *)&addr, &len) < 0)
        die("getsockname");
    int client = socket(addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (client < 0)
        die("socket");
    if (connect(client, (struct sockaddr *)&addr, len) < 0)
        die("connect to self");
    close(client);
}

static void epoll_loop(uint32_t events, int consume_first)
{
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0)
        die("epoll_create1");
    struct epoll_event event = {.events = events, .data.fd = LISTENER};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, LISTENER, &event) < 0)
        die("epoll_ctl");
    if (consume_first) {
        connect_to_self();
        struct epoll_event got;
        int n;
        do
            n = epoll_wait(ep, &got, 1, -1);
        while (n < 0 && errno == EINTR);
        if (n != 1)
            die("epoll_wait for the one-shot event");
        take_one(LISTENER);
    }
    say_ready();
    for (;;) {
        struct epoll_event got[4];
        int n = epoll_wait(ep, got, 4, -1);
        if (n < 0 && errno != EINTR)
            die("epoll_wait");
        if (n > 0)
            take_one(LISTENER);
    }
}

static void fork_select(void)
{
    pid_t parent = getpid();
    pid_t child = fork();
    if (child < 0)
        die("fork");
    if (child == 0) {
        die_with(parent);
        if (dup2(LISTENER, 9) < 0)
            die("dup2 3 to 9");
        close(LISTENER);
        select_loop(9, 0);
    }
    int status;
    while (waitpid(child, &status, 0) < 0)
        if (errno != EINTR)
            die("waitpid");
    exit(1);  /* the child only ends by a signal */
}

static void usage(void)
{
    fprintf(stderr, "usage: acceptor accept|accept-thread|poll|ppoll|select|pselect|epoll|"
                    "epoll-disabled|epoll-oneshot-consumed|fork-select|none [--delay-ms N]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    die_with(0);
    if (argc != 2 && !(argc == 4 && strcmp(argv[2], "--delay-ms") == 0))
        usage();
    const char *mode = argv[1];
    int listening = 0;
    socklen_t len = sizeof listening;
    if (getsockopt(LISTENER, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) < 0 || !listening) {
        fprintf(stderr, "acceptor: fd 3 is not a listening socket\n");
        exit(2);
    }
    if (argc == 4) {
        char *end;
        long ms = strtol(argv[3], &end, 10);
        if (*end != '\0' || ms < 0)
            usage();
        struct timespec delay = {ms / 1000, (ms % 1000) * 1000000L};
        while (nanosleep(&delay, &delay) < 0 && errno == EINTR) {
        }
    }

    if (strcmp(mode, "accept") == 0) {
        accept_loop(NULL);
    } else if (strcmp(mode, "accept-thread") == 0) {
        pthread_t thread;
        if ((errno = pthread_create(&thread, NULL, accept_loop, NULL)) != 0)
            die("pthread_create");
        for (;;)
            pause();
    } else if (strcmp(mode, "poll") == 0 || strcmp(mode, "ppoll") == 0) {
        poll_loop(mode[0] == 'p' && mode[1] == 'p');
    } else if (strcmp(mode, "select") == 0) {
        select_loop(LISTENER, 0);
    } else if (strcmp(mode, "pselect") == 0) {
        if (dup2(LISTENER, 70) < 0)
            die("dup2 3 to 70");
        select_loop(70, 1);
    } else if (strcmp(mode, "epoll") == 0) {
        epoll_loop(EPOLLIN, 0);
    } else if (strcmp(mode, "epoll-disabled") == 0) {
        epoll_loop(0, 0);
    } else if (strcmp(mode, "epoll-oneshot-consumed") == 0) {
        epoll_loop(EPOLLIN | EPOLLONESHOT, 1);
    } else if (strcmp(mode, "fork-select") == 0) {
        fork_select();
    } else if (strcmp(mode, "none") == 0) {
        say_ready();
        for (;;)
            pause();
    } else {
        usage();
    }
    return 0;
}
