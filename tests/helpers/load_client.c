/*
 * load_client - fdsup test/benchmark helper: HTTP/1.0 load generator.
 *
 * Usage: load_client HOST PORT [--concurrency C] [--duration-ms D] [--path /]
 *                              [--progress FILE] [--timeline FILE] [--pause-us P]
 *
 * C threads (default 1) each loop: connect (new TCP connection per request),
 * send "GET PATH HTTP/1.0\r\nHost: x\r\n\r\n", read the response until EOF
 * (5 s timeout), check it starts with "HTTP/1.0 200" (or "HTTP/1.1 200").  Runs for D ms, or
 * until SIGTERM/SIGINT when no duration is given.  Then prints one JSON line:
 *   {"ok":N,"refused":N,"connect_other":N,"reset":N,"bad_response":N,
 *    "timeout":N,"p50_us":N,"p99_us":N,"max_us":N,"requests":N,
 *    "errors_first":"..."}
 * and exits 0 (2 on usage errors, 1 if HOST cannot be resolved).
 *
 * --progress FILE: every 100 ms FILE is rewritten (FILE.tmp + rename) with
 * the counts so far (same keys, latencies omitted, plus "elapsed_ms" and
 * "done"); it is written a last time with the final results.
 *
 * --pause-us P: each thread waits P microseconds after each request (default 0: the
 * next request at once). A steady load that leaves CPU to the rest of a test.
 *
 * --timeline FILE: at the end, FILE gets one line per 10 ms slot in which requests
 * began: "SECONDS OK FAILED MAX_MS MEAN_MS" (SECONDS: the slot's start since the
 * client's start; MAX/MEAN over the slot's ok requests). The JSON line then also
 * carries "start_monotonic_ns", the client's start on CLOCK_MONOTONIC, so a caller
 * can place its own events (restarts) on the same axis. The benchmarks plot it.
 *
 * Build: gcc -std=gnu11 -Wall -Wextra -Werror -O2 -pthread -o load_client load_client.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
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

#define IO_TIMEOUT_S 5
#define RESP_KEEP 65536          /* bytes of a response kept for checking */

enum { C_OK, C_REFUSED, C_CONNECT_OTHER, C_RESET, C_BAD, C_TIMEOUT, C_N };
static const char *const cnames[C_N] = {
    "ok", "refused", "connect_other", "reset", "bad_response", "timeout",
};

#define SLOT_US 10000            /* timeline resolution */

struct slot {
    uint32_t ok, failed;
    uint64_t max_us, sum_us;
};

struct worker {
    pthread_t th;
    struct slot *slots;          /* --timeline: by request start, SLOT_US each */
    size_t nslots;
    atomic_ulong cnt[C_N];
    uint64_t *lat;               /* latencies of ok requests, microseconds */
    size_t nlat, caplat;
    char *resp;                  /* RESP_KEEP + 1 bytes */
};

/* Stop flag: set by the main thread on deadline or SIGTERM/SIGINT; worker
 * threads check it between requests. */
static atomic_int g_stop;

static struct sockaddr_storage g_addr;
static socklen_t g_addrlen;
static char *g_req;
static size_t g_reqlen;

static pthread_mutex_t g_err_mu = PTHREAD_MUTEX_INITIALIZER;
static char g_err_first[256];
static int g_err_set;

static struct worker *g_workers;
static long g_nworkers;
static const char *g_progress;
static const char *g_timeline;
static long g_pause_us;
static struct timespec g_t_start;

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void note_error(const char *what, int err)
{
    pthread_mutex_lock(&g_err_mu);
    if (!g_err_set) {
        if (err)
            snprintf(g_err_first, sizeof g_err_first, "%s: %s", what, strerror(err));
        else
            snprintf(g_err_first, sizeof g_err_first, "%s", what);
        g_err_set = 1;
    }
    pthread_mutex_unlock(&g_err_mu);
}

static void count(struct worker *w, int c)
{
    atomic_fetch_add_explicit(&w->cnt[c], 1, memory_order_relaxed);
}

static int io_error_class(int err)
{
    if (err == EAGAIN || err == EWOULDBLOCK || err == ETIMEDOUT)
        return C_TIMEOUT;
    return C_RESET;             /* ECONNRESET, EPIPE and other I/O errors */
}

/* Validate a complete response: status line, and Content-Length if given.
 * Returns NULL if fine, else a short reason. */
static const char *response_check(const char *r, size_t n, size_t total)
{
    /* HTTP/1.0 or 1.1: a server may answer a 1.0 request with its own version (Node does). */
    if (n < 12 || (memcmp(r, "HTTP/1.0 200", 12) != 0 && memcmp(r, "HTTP/1.1 200", 12) != 0))
        return "status";
    const char *hend = memmem(r, n, "\r\n\r\n", 4);
    if (!hend)                  /* header larger than what we kept: accept */
        return total > n ? NULL : "incomplete header";
    size_t hlen = (size_t)(hend - r) + 4;
    for (const char *p = r; p < hend;) {
        const char *eol = memmem(p, (size_t)(hend - p) + 2, "\r\n", 2);
        if (!eol)
            break;
        if ((size_t)(eol - p) > 15 && strncasecmp(p, "Content-Length:", 15) == 0) {
            unsigned long long cl = strtoull(p + 15, NULL, 10);
            return total - hlen == cl ? NULL : "Content-Length mismatch";
        }
        p = eol + 2;
    }
    return NULL;
}

static void note_io_error(struct worker *w, const char *op, int e)
{
    int c = io_error_class(e);
    count(w, c);
    if (c == C_TIMEOUT) {
        char msg[64];
        snprintf(msg, sizeof msg, "%s: timed out (%d s)", op, IO_TIMEOUT_S);
        note_error(msg, 0);
    } else {
        note_error(op, e);
    }
}

static void one_request(struct worker *w)
{
    uint64_t t0 = now_us();

    int s = socket(g_addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0) {
        count(w, C_CONNECT_OTHER);
        note_error("socket", errno);
        usleep(1000);
        return;
    }
    struct timeval tv = {IO_TIMEOUT_S, 0};
    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);   /* also bounds connect() */

    if (connect(s, (struct sockaddr *)&g_addr, g_addrlen) != 0) {
        int e = errno;
        if (e == ECONNREFUSED) {
            count(w, C_REFUSED);
            note_error("connect", e);
        } else if (e == EINPROGRESS || e == ETIMEDOUT) {   /* SO_SNDTIMEO hit */
            count(w, C_TIMEOUT);
            note_error("connect: timed out", 0);
        } else {
            count(w, C_CONNECT_OTHER);
            note_error("connect", e);
        }
        close(s);
        return;
    }

    size_t off = 0;
    while (off < g_reqlen) {
        ssize_t n = send(s, g_req + off, g_reqlen - off, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            note_io_error(w, "send", errno);
            close(s);
            return;
        }
        off += (size_t)n;
    }

    size_t kept = 0, total = 0;
    char scratch[16384];
    for (;;) {
        char *dst = kept < RESP_KEEP ? w->resp + kept : scratch;
        size_t room = kept < RESP_KEEP ? RESP_KEEP - kept : sizeof scratch;
        ssize_t n = recv(s, dst, room, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            note_io_error(w, "recv", errno);
            close(s);
            return;
        }
        if (n == 0)
            break;
        if (kept < RESP_KEEP)
            kept += (size_t)n;
        total += (size_t)n;
    }
    close(s);
    uint64_t t1 = now_us();

    if (total == 0) {
        count(w, C_RESET);
        note_error("recv: EOF before any response byte", 0);
        return;
    }
    w->resp[kept] = '\0';
    const char *why = response_check(w->resp, kept, total);
    if (why) {
        count(w, C_BAD);
        char msg[160];
        size_t l = 0;
        while (l < kept && l < 60 && w->resp[l] != '\r' && w->resp[l] != '\n')
            l++;
        snprintf(msg, sizeof msg, "bad response (%s): %.*s", why, (int)l, w->resp);
        note_error(msg, 0);
        return;
    }

    if (w->nlat == w->caplat) {
        size_t nc = w->caplat ? w->caplat * 2 : 4096;
        uint64_t *nl = realloc(w->lat, nc * sizeof *nl);
        if (!nl) {
            count(w, C_OK);     /* counted, latency dropped */
            return;
        }
        w->lat = nl;
        w->caplat = nc;
    }
    w->lat[w->nlat++] = t1 - t0;
    count(w, C_OK);
}

static uint64_t start_us(void)
{
    return (uint64_t)g_t_start.tv_sec * 1000000u + (uint64_t)g_t_start.tv_nsec / 1000u;
}

/* Files one finished request under the slot of its start (a slot array that cannot
 * grow drops the sample: the counts above still have it). */
static void timeline_note(struct worker *w, uint64_t t0, uint64_t t1, int ok)
{
    size_t i = (size_t)((t0 - start_us()) / SLOT_US);
    if (i >= w->nslots) {
        if (i >= SIZE_MAX / 4 / sizeof *w->slots)
            return;             /* centuries of slots: cannot happen, cannot overflow */
        size_t n = w->nslots ? w->nslots : 1024;
        while (n <= i)
            n *= 2;
        struct slot *grown = realloc(w->slots, n * sizeof *grown);
        if (!grown)
            return;
        memset(grown + w->nslots, 0, (n - w->nslots) * sizeof *grown);
        w->slots = grown;
        w->nslots = n;
    }
    struct slot *s = &w->slots[i];
    if (!ok) {
        s->failed++;
        return;
    }
    s->ok++;
    s->sum_us += t1 - t0;
    if (t1 - t0 > s->max_us)
        s->max_us = t1 - t0;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    while (!atomic_load_explicit(&g_stop, memory_order_relaxed)) {
        uint64_t t0 = now_us();
        unsigned long ok_before = atomic_load_explicit(&w->cnt[C_OK], memory_order_relaxed);
        one_request(w);
        if (g_timeline)
            timeline_note(w, t0, now_us(),
                          atomic_load_explicit(&w->cnt[C_OK], memory_order_relaxed) != ok_before);
        if (g_pause_us > 0) {
            /* No signal reaches this thread (SIGTERM/SIGINT blocked, SIGPIPE ignored). */
            struct timespec ts = {(time_t)(g_pause_us / 1000000), (g_pause_us % 1000000) * 1000L};
            nanosleep(&ts, NULL);
        }
    }
    return NULL;
}

/* Merges every thread's slots into g_timeline; returns 0, or -1 if it cannot be written. */
static int write_timeline(void)
{
    size_t n = 0;
    for (long i = 0; i < g_nworkers; i++)
        if (g_workers[i].nslots > n)
            n = g_workers[i].nslots;
    FILE *f = fopen(g_timeline, "we");
    if (!f)
        return -1;
    for (size_t k = 0; k < n; k++) {
        struct slot sum = {0, 0, 0, 0};
        for (long i = 0; i < g_nworkers; i++) {
            if (k >= g_workers[i].nslots)
                continue;
            const struct slot *s = &g_workers[i].slots[k];
            sum.ok += s->ok;
            sum.failed += s->failed;
            sum.sum_us += s->sum_us;
            if (s->max_us > sum.max_us)
                sum.max_us = s->max_us;
        }
        if (sum.ok + sum.failed == 0)
            continue;
        fprintf(f, "%.3f %u %u %.3f %.3f\n", (double)(k * SLOT_US) / 1e6, sum.ok, sum.failed,
                (double)sum.max_us / 1000.0, sum.ok ? (double)sum.sum_us / sum.ok / 1000.0 : 0.0);
    }
    return fclose(f) == 0 ? 0 : -1;
}

/* ------------------------------------------------------------------ */
/* output                                                              */

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p < 0x20 || *p >= 0x7f)
            fprintf(f, "\\u%04x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

static void sum_counts(unsigned long out[C_N])
{
    for (int c = 0; c < C_N; c++)
        out[c] = 0;
    for (long i = 0; i < g_nworkers; i++)
        for (int c = 0; c < C_N; c++)
            out[c] += atomic_load_explicit(&g_workers[i].cnt[c], memory_order_relaxed);
}

static void get_first_error(char *dst, size_t n)
{
    pthread_mutex_lock(&g_err_mu);
    snprintf(dst, n, "%s", g_err_first);
    pthread_mutex_unlock(&g_err_mu);
}

static void write_counts(FILE *f, const unsigned long cnt[C_N])
{
    for (int c = 0; c < C_N; c++)
        fprintf(f, "%s\"%s\":%lu", c ? "," : "", cnames[c], cnt[c]);
}

static void write_progress(int done)
{
    unsigned long cnt[C_N], req = 0;
    char err[sizeof g_err_first];
    sum_counts(cnt);
    for (int c = 0; c < C_N; c++)
        req += cnt[c];
    get_first_error(err, sizeof err);

    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    long elapsed = (long)(now.tv_sec - g_t_start.tv_sec) * 1000 +
                   (now.tv_nsec - g_t_start.tv_nsec) / 1000000;

    size_t pl = strlen(g_progress);
    char *tmp = malloc(pl + 5);
    if (!tmp)
        return;
    memcpy(tmp, g_progress, pl);
    memcpy(tmp + pl, ".tmp", 5);
    FILE *f = fopen(tmp, "we");
    if (!f) {
        free(tmp);
        return;
    }
    fputc('{', f);
    write_counts(f, cnt);
    fprintf(f, ",\"requests\":%lu,\"errors_first\":", req);
    json_str(f, err);
    fprintf(f, ",\"elapsed_ms\":%ld,\"done\":%s}\n", elapsed, done ? "true" : "false");
    if (fclose(f) == 0)
        rename(tmp, g_progress);
    else
        unlink(tmp);
    free(tmp);
}

static atomic_int g_progress_stop;

static void *progress_main(void *arg)
{
    (void)arg;
    while (!atomic_load(&g_progress_stop)) {
        write_progress(0);
        struct timespec ts = {0, 100 * 1000000L};
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
            ;
    }
    return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* nearest-rank percentile of a sorted array */
static uint64_t pct(const uint64_t *v, size_t n, unsigned p)
{
    if (n == 0)
        return 0;
    size_t rank = (n * p + 99) / 100;   /* ceil(p/100 * n) */
    if (rank < 1)
        rank = 1;
    return v[rank - 1];
}

/* ------------------------------------------------------------------ */

static void usage(void)
{
    fprintf(stderr,
            "usage: load_client HOST PORT [--concurrency C] [--duration-ms D] "
            "[--path /] [--progress FILE] [--timeline FILE] [--pause-us P]\n");
    exit(2);
}

static long parse_long(const char *s, long min, long max)
{
    char *end;
    if (!s || !*s)
        usage();
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < min || v > max)
        usage();
    return v;
}

int main(int argc, char **argv)
{
    const char *host = NULL, *port = NULL, *path = "/";
    long conc = 1, duration_ms = -1;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--concurrency") == 0) {
            if (++i >= argc) usage();
            conc = parse_long(argv[i], 1, 10000);
        } else if (strcmp(a, "--duration-ms") == 0) {
            if (++i >= argc) usage();
            duration_ms = parse_long(argv[i], 0, LONG_MAX / 1000);
        } else if (strcmp(a, "--path") == 0) {
            if (++i >= argc) usage();
            path = argv[i];
        } else if (strcmp(a, "--progress") == 0) {
            if (++i >= argc) usage();
            g_progress = argv[i];
        } else if (strcmp(a, "--timeline") == 0) {
            if (++i >= argc) usage();
            g_timeline = argv[i];
        } else if (strcmp(a, "--pause-us") == 0) {
            if (++i >= argc) usage();
            g_pause_us = parse_long(argv[i], 0, 60L * 1000000);
        } else if (a[0] == '-' && a[1] == '-') {
            usage();
        } else if (!host) {
            host = a;
        } else if (!port) {
            port = a;
        } else {
            usage();
        }
    }
    if (!host || !port || !*path || strpbrk(path, " \r\n"))
        usage();

    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int gai = getaddrinfo(host, port, &hints, &res);
    if (gai != 0 || !res) {
        fprintf(stderr, "load_client: cannot resolve %s:%s: %s\n",
                host, port, gai ? gai_strerror(gai) : "no address");
        return 1;
    }
    memcpy(&g_addr, res->ai_addr, res->ai_addrlen);
    g_addrlen = res->ai_addrlen;
    freeaddrinfo(res);

    if (asprintf(&g_req, "GET %s HTTP/1.0\r\nHost: x\r\n\r\n", path) < 0) {
        fprintf(stderr, "load_client: out of memory\n");
        return 1;
    }
    g_reqlen = strlen(g_req);

    signal(SIGPIPE, SIG_IGN);

    /* SIGTERM/SIGINT are blocked in every thread and taken synchronously by
     * the main thread with sigtimedwait(), so no request syscall is ever
     * interrupted. */
    sigset_t stopsigs;
    sigemptyset(&stopsigs);
    sigaddset(&stopsigs, SIGTERM);
    sigaddset(&stopsigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stopsigs, NULL);

    clock_gettime(CLOCK_MONOTONIC, &g_t_start);

    g_nworkers = conc;
    g_workers = calloc((size_t)conc, sizeof *g_workers);
    if (!g_workers) {
        fprintf(stderr, "load_client: out of memory\n");
        return 1;
    }
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    long started = 0;
    for (long i = 0; i < conc; i++) {
        struct worker *w = &g_workers[i];
        for (int c = 0; c < C_N; c++)
            atomic_init(&w->cnt[c], 0);
        w->resp = malloc(RESP_KEEP + 1);
        if (!w->resp || pthread_create(&w->th, &attr, worker_main, w) != 0) {
            fprintf(stderr, "load_client: cannot start thread %ld\n", i);
            break;
        }
        started++;
    }
    g_nworkers = started;

    pthread_t pth;
    int have_progress = 0;
    if (g_progress && started > 0)
        have_progress = pthread_create(&pth, &attr, progress_main, NULL) == 0;
    pthread_attr_destroy(&attr);

    if (started == conc) {
        if (duration_ms >= 0) {
            uint64_t deadline = now_us() + (uint64_t)duration_ms * 1000u;
            for (;;) {
                uint64_t now = now_us();
                if (now >= deadline)
                    break;
                uint64_t left = deadline - now;
                struct timespec ts = {(time_t)(left / 1000000u),
                                      (long)(left % 1000000u) * 1000};
                int sig = sigtimedwait(&stopsigs, NULL, &ts);
                if (sig == SIGTERM || sig == SIGINT)
                    break;
            }
        } else {
            int sig;
            while (sigwait(&stopsigs, &sig) != 0)
                ;
        }
    }
    atomic_store(&g_stop, 1);

    for (long i = 0; i < started; i++)
        pthread_join(g_workers[i].th, NULL);
    if (have_progress) {
        atomic_store(&g_progress_stop, 1);
        pthread_join(pth, NULL);
    }
    if (g_progress)
        write_progress(1);

    /* merge latencies */
    size_t nl = 0;
    for (long i = 0; i < started; i++)
        nl += g_workers[i].nlat;
    uint64_t *all = malloc((nl ? nl : 1) * sizeof *all);
    uint64_t p50 = 0, p99 = 0, mx = 0;
    if (all) {
        size_t k = 0;
        for (long i = 0; i < started; i++) {
            if (g_workers[i].nlat)
                memcpy(all + k, g_workers[i].lat, g_workers[i].nlat * sizeof *all);
            k += g_workers[i].nlat;
        }
        qsort(all, nl, sizeof *all, cmp_u64);
        p50 = pct(all, nl, 50);
        p99 = pct(all, nl, 99);
        mx = nl ? all[nl - 1] : 0;
    }

    unsigned long cnt[C_N], req = 0;
    char err[sizeof g_err_first];
    sum_counts(cnt);
    for (int c = 0; c < C_N; c++)
        req += cnt[c];
    get_first_error(err, sizeof err);

    fputc('{', stdout);
    write_counts(stdout, cnt);
    printf(",\"p50_us\":%llu,\"p99_us\":%llu,\"max_us\":%llu,\"requests\":%lu,"
           "\"errors_first\":",
           (unsigned long long)p50, (unsigned long long)p99,
           (unsigned long long)mx, req);
    json_str(stdout, err);
    if (g_timeline)
        printf(",\"start_monotonic_ns\":%llu", (unsigned long long)start_us() * 1000u);
    fputs("}\n", stdout);
    fflush(stdout);
    int timeline_failed = g_timeline && write_timeline() != 0;
    if (timeline_failed)
        fprintf(stderr, "load_client: cannot write %s: %s\n", g_timeline, strerror(errno));

    free(all);
    for (long i = 0; i < conc; i++) {
        free(g_workers[i].slots);
        free(g_workers[i].lat);
        free(g_workers[i].resp);
    }
    free(g_workers);
    free(g_req);
    return started == conc && !timeline_failed ? 0 : 1;
}
