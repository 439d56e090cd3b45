/*
 * http_worker - fdsup test helper: a minimal, single-threaded HTTP/1.0 server.
 *
 * Takes its listening socket exactly like systemd's sd_listen_fds(1):
 *   - LISTEN_PID must equal getpid(), else exit 3
 *   - LISTEN_FDS must be a positive integer, else exit 3
 *   - the listening socket is fd 3 (SD_LISTEN_FDS_START)
 *   - FD_CLOEXEC is set on fds 3..3+n-1
 *   - LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES are removed from the environment
 *
 * Every request gets
 *   HTTP/1.0 200 OK ... body "<FDSUP_WORKER>[<FDSUP_INSTANCE>] pid <pid>\n"
 *
 * Usage: http_worker [--ignore-term] [--startup-delay-ms N] [--exit-after N]
 *                    [--notify] [--never-ready-if FILE] [--hold-ready-while FILE]
 *                    [--watchdog-pings N]
 *
 *   --notify              after the startup delay, tell the supervisor READY=1 (with a
 *                         STATUS=) through libsystemd's sd_notify
 *   --never-ready-if FILE with --notify: if FILE exists at start, never send READY=1
 *   --hold-ready-while FILE  with --notify: send READY=1 only once FILE does not exist
 *   --fetch NAME          take the listening socket named NAME from fdsupd's fd socket
 *                         (fdsup_fds.h, for `scm_rights`) instead of LISTEN_FDS
 *   --watchdog-pings N    when sd_watchdog_enabled(): send WATCHDOG=1 every half
 *                         period, N times (-1: forever), then go silent
 *   --crash-if FILE       if FILE exists at start and this process is the one that
 *                         removes it, exit 1 after serving 200 requests (a canary that
 *                         fails under load, once: whatever starts after it is healthy)
 *   --listen PORT         no supervisor-owned socket: after the startup delay, bind
 *                         127.0.0.1:PORT itself (SO_REUSEPORT, so instances share it),
 *                         as an app run by a supervisor without socket handover does
 *                         (the benchmarks run it so under supervisord)
 *
 * SIGTERM drains gracefully: the request being answered is finished, no new one is
 * accepted, then exit 0 (the listening socket is shared: queued clients go to the
 * other processes). That is what the README asks of an app.
 *
 * Build: gcc -std=gnu11 -Wall -Wextra -Werror -O2 -pthread -o http_worker http_worker.c -lsystemd
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "fdsup_fds.h"

#define SD_LISTEN_FDS_START 3
#define REQ_MAX 8192

static void usage(void)
{
    fprintf(stderr,
            "usage: http_worker [--ignore-term] [--startup-delay-ms N] [--exit-after N]\n"
            "                   [--notify] [--never-ready-if FILE] [--hold-ready-while FILE]\n"
            "                   [--watchdog-pings N] [--fetch NAME] [--listen PORT]\n"
            "                   [--crash-if FILE]\n");
    exit(2);
}

static int parse_nonneg_long(const char *s, long *out)
{
    char *end;
    if (!s || !*s)
        return -1;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end != '\0' || v < 0)
        return -1;
    *out = v;
    return 0;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* sd_listen_fds(1) semantics; returns n (>= 1) or exits 3. */
static int listen_fds(void)
{
    const char *e = getenv("LISTEN_PID");
    long v;
    if (!e || parse_nonneg_long(e, &v) != 0 || v != (long)getpid()) {
        fprintf(stderr, "http_worker: LISTEN_PID mismatch\n");
        fprintf(stderr, "http_worker: LISTEN_PID=%s getpid()=%ld\n",
                e ? e : "(unset)", (long)getpid());
        exit(3);
    }

    e = getenv("LISTEN_FDS");
    if (!e || parse_nonneg_long(e, &v) != 0 || v <= 0 ||
        v > INT_MAX - SD_LISTEN_FDS_START) {
        fprintf(stderr, "http_worker: LISTEN_FDS is not a positive integer: %s\n",
                e ? e : "(unset)");
        exit(3);
    }
    int n = (int)v;

    for (int fd = SD_LISTEN_FDS_START; fd < SD_LISTEN_FDS_START + n; fd++) {
        int fl = fcntl(fd, F_GETFD);
        if (fl < 0) {
            fprintf(stderr, "http_worker: LISTEN_FDS=%d but fd %d: %s\n",
                    n, fd, strerror(errno));
            exit(3);
        }
        if (!(fl & FD_CLOEXEC) && fcntl(fd, F_SETFD, fl | FD_CLOEXEC) < 0) {
            fprintf(stderr, "http_worker: F_SETFD fd %d: %s\n", fd, strerror(errno));
            exit(3);
        }
    }

    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
    return n;
}

static int send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Handle one connection.  Returns 1 if a response was sent. */
static int handle(int c, const char *body, size_t body_len)
{
    struct timeval tv = {5, 0};
    setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);

    char req[REQ_MAX + 1];
    size_t len = 0;
    for (;;) {
        if (len >= REQ_MAX)
            break;
        ssize_t r = recv(c, req + len, REQ_MAX - len, 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;                  /* 5 s timeout: answer anyway */
            return 0;                   /* reset etc.: nobody to answer */
        }
        if (r == 0)
            break;
        size_t from = len >= 3 ? len - 3 : 0;
        len += (size_t)r;
        req[len] = '\0';
        if (memmem(req + from, len - from, "\r\n\r\n", 4))
            break;
    }

    char hdr[256];
    int hl = snprintf(hdr, sizeof hdr,
                      "HTTP/1.0 200 OK\r\n"
                      "Content-Type: text/plain\r\n"
                      "Connection: close\r\n"
                      "Content-Length: %zu\r\n"
                      "\r\n",
                      body_len);
    int ok = send_all(c, hdr, (size_t)hl) == 0 && send_all(c, body, body_len) == 0;

    /* Drain unread request bytes, so close() sends FIN rather than RST. */
    if (ok) {
        shutdown(c, SHUT_WR);
        char junk[4096];
        while (recv(c, junk, sizeof junk, MSG_DONTWAIT) > 0)
            ;
    }
    return ok;
}

static void check_listener(int lfd)
{
    int acc = 0;
    socklen_t al = sizeof acc;
    if (getsockopt(lfd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &al) != 0 || !acc) {
        fprintf(stderr, "http_worker: fd %d is not a listening socket\n", lfd);
        exit(3);
    }
    /* Several processes accept on this socket: after a wakeup another one may have
     * taken the client, and a blocking accept would then sit with SIGTERM blocked. */
    fcntl(lfd, F_SETFL, fcntl(lfd, F_GETFL) | O_NONBLOCK);
}

/* --listen: the app's own listening socket on 127.0.0.1:port, or exit 3. */
static int listen_own(long port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0 ||
        bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(fd, 4096) != 0) {
        fprintf(stderr, "http_worker: cannot listen on 127.0.0.1:%ld: %s\n", port, strerror(errno));
        exit(3);
    }
    return fd;
}

static volatile sig_atomic_t terminating;

static void on_term(int sig)
{
    (void)sig;
    terminating = 1;
}

static long watchdog_pings;

/* Pings from a thread of its own: the accept loop may sit in a request for seconds. */
static void *watchdog_thread(void *arg)
{
    long interval_ms = *(long *)arg;
    for (long sent = 0; watchdog_pings < 0 || sent < watchdog_pings; sent++) {
        sd_notify(0, "WATCHDOG=1");
        sleep_ms(interval_ms);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    int ignore_term = 0;
    int notify = 0;
    const char *never_ready_if = NULL;
    const char *hold_ready_while = NULL;
    const char *fetch = NULL;
    const char *crash_if = NULL;
    long startup_delay_ms = 0;
    long exit_after = 0;
    long listen_port = -1;
    int pings_given = 0;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--ignore-term") == 0) {
            ignore_term = 1;
        } else if (strcmp(argv[i], "--notify") == 0) {
            notify = 1;
        } else if (strcmp(argv[i], "--never-ready-if") == 0) {
            if (++i >= argc)
                usage();
            never_ready_if = argv[i];
        } else if (strcmp(argv[i], "--crash-if") == 0) {
            if (++i >= argc)
                usage();
            crash_if = argv[i];
        } else if (strcmp(argv[i], "--fetch") == 0) {
            if (++i >= argc)
                usage();
            fetch = argv[i];
        } else if (strcmp(argv[i], "--hold-ready-while") == 0) {
            if (++i >= argc)
                usage();
            hold_ready_while = argv[i];
        } else if (strcmp(argv[i], "--watchdog-pings") == 0) {
            char *end;
            if (++i >= argc)
                usage();
            watchdog_pings = strtol(argv[i], &end, 10);
            if (*end != '\0' || watchdog_pings < -1)
                usage();
            pings_given = 1;
        } else if (strcmp(argv[i], "--startup-delay-ms") == 0) {
            if (++i >= argc || parse_nonneg_long(argv[i], &startup_delay_ms) != 0)
                usage();
        } else if (strcmp(argv[i], "--listen") == 0) {
            if (++i >= argc || parse_nonneg_long(argv[i], &listen_port) != 0 || listen_port == 0 ||
                listen_port > 65535)
                usage();
        } else if (strcmp(argv[i], "--exit-after") == 0) {
            if (++i >= argc || parse_nonneg_long(argv[i], &exit_after) != 0 ||
                exit_after == 0)
                usage();
        } else {
            usage();
        }
    }

    /* SIGTERM is blocked except while waiting for a client (ppoll below), so a
     * request in progress is always finished before the process exits. */
    sigset_t term, waiting_mask;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    if (ignore_term) {
        signal(SIGTERM, SIG_IGN);
    } else {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_term;
        sigaction(SIGTERM, &sa, NULL);
        sigprocmask(SIG_BLOCK, &term, NULL);
    }
    sigprocmask(SIG_SETMASK, NULL, &waiting_mask);
    sigdelset(&waiting_mask, SIGTERM);
    signal(SIGPIPE, SIG_IGN);

    if (fetch && listen_port > 0)
        usage();  /* one listening socket: fetched or bound, not both */
    int lfd = SD_LISTEN_FDS_START;
    if (fetch) {
        char why[256];
        if (fdsup_get_fds(&fetch, 1, &lfd, why, sizeof why) < 0) {
            fprintf(stderr, "http_worker: cannot get socket %s: %s\n", fetch, why);
            exit(4);
        }
        printf("http_worker: fetched socket %s as fd %d\n", fetch, lfd);
    } else if (listen_port < 0) {
        listen_fds();
    }

    if (listen_port < 0)
        check_listener(lfd);

    const char *w = getenv("FDSUP_WORKER");
    const char *inst = getenv("FDSUP_INSTANCE");
    char body[512];
    int bl = snprintf(body, sizeof body, "%s[%s] pid %ld\n",
                      w ? w : "", inst ? inst : "", (long)getpid());
    if (bl < 0)
        bl = 0;
    if ((size_t)bl >= sizeof body)
        bl = (int)sizeof body - 1;

    if (listen_port < 0) {
        printf("http_worker: serving on fd %d pid %ld\n", lfd, (long)getpid());
        fflush(stdout);
    }

    uint64_t watchdog_usec = 0;
    if (pings_given && sd_watchdog_enabled(0, &watchdog_usec) > 0) {
        static long interval_ms;
        interval_ms = (long)(watchdog_usec / 2000);
        pthread_t thread;
        pthread_create(&thread, NULL, watchdog_thread, &interval_ms);
        pthread_detach(thread);
    }

    if (startup_delay_ms > 0)
        sleep_ms(startup_delay_ms);
    /* Not serving yet either: the test holds this process in "starting" (a SIGTERM,
     * pending while blocked, ends the wait: nothing to drain yet). */
    while (hold_ready_while && access(hold_ready_while, F_OK) == 0) {
        sigset_t pending;
        sigpending(&pending);
        if (sigismember(&pending, SIGTERM))
            exit(0);
        sleep_ms(20);
    }
    if (listen_port > 0) {
        lfd = listen_own(listen_port);
        check_listener(lfd);
        printf("http_worker: serving on 127.0.0.1:%ld pid %ld\n", listen_port, (long)getpid());
        fflush(stdout);
    }
    if (notify && !(never_ready_if && access(never_ready_if, F_OK) == 0)) {
        int r = sd_notify(0, "READY=1\nSTATUS=serving");
        if (r <= 0)
            fprintf(stderr, "http_worker: sd_notify: %s\n", r == 0 ? "NOTIFY_SOCKET not set" : strerror(-r));
    }

    long crash_after = 0;
    if (crash_if && unlink(crash_if) == 0) {
        crash_after = 200;
        printf("http_worker: pid %ld will crash after %ld requests\n", (long)getpid(), crash_after);
        fflush(stdout);
    }
    long served = 0;
    for (;;) {
        if (terminating) {
            printf("http_worker: SIGTERM: drained, exiting after %ld requests\n", served);
            fflush(stdout);
            exit(0);
        }
        int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (c < 0) {
            switch (errno) {
            case EINTR:
            case ECONNABORTED:
            case EPROTO:
            case ENETDOWN:
            case ENOPROTOOPT:
            case EHOSTDOWN:
            case ENONET:
            case EHOSTUNREACH:
            case EOPNOTSUPP:
            case ENETUNREACH:
                continue;
            case EAGAIN: {
#if EWOULDBLOCK != EAGAIN
            case EWOULDBLOCK:
#endif
                /* Wait for a client; SIGTERM may interrupt only here. */
                struct pollfd pfd = {.fd = lfd, .events = POLLIN};
                ppoll(&pfd, 1, NULL, &waiting_mask);
                continue;
            }
            case EMFILE:
            case ENFILE:
            case ENOBUFS:
            case ENOMEM:
                sleep_ms(10);
                continue;
            default:
                fprintf(stderr, "http_worker: accept: %s\n", strerror(errno));
                exit(1);
            }
        }
        handle(c, body, (size_t)bl);
        close(c);
        served++;
        if (exit_after > 0 && served >= exit_after)
            exit(0);
        if (crash_after > 0 && served >= crash_after) {
            fprintf(stderr, "http_worker: crashing as asked (--crash-if)\n");
            exit(1);
        }
    }
}
