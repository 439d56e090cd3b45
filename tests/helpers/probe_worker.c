/*
 * probe_worker - fdsup test helper.
 *
 * Run as a supervised worker.  Writes a JSON report describing its own
 * process environment (fds, env, signal state, credentials, rlimits, ...)
 * to the file named by argv[1] (via argv[1].tmp + rename, so a reader never
 * sees a partial file), then waits forever in pause().  Signal dispositions
 * are left untouched, so SIGTERM terminates it.
 *
 * The fd table is enumerated before anything else is opened, so the report
 * shows exactly the fds the worker was given.
 *
 * Build: gcc -std=gnu11 -Wall -Wextra -Werror -O2 -o probe_worker probe_worker.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <unistd.h>

extern char **environ;

/* ------------------------------------------------------------------ */
/* growable output buffer + JSON helpers                               */

struct buf {
    char *p;
    size_t len, cap;
};

static void die(const char *what)
{
    fprintf(stderr, "probe_worker: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void b_reserve(struct buf *b, size_t extra)
{
    if (b->len + extra + 1 <= b->cap)
        return;
    size_t ncap = b->cap ? b->cap : 4096;
    while (ncap < b->len + extra + 1)
        ncap *= 2;
    char *np = realloc(b->p, ncap);
    if (!np)
        die("realloc");
    b->p = np;
    b->cap = ncap;
}

static void b_putn(struct buf *b, const char *s, size_t n)
{
    b_reserve(b, n);
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void b_puts(struct buf *b, const char *s)
{
    b_putn(b, s, strlen(s));
}

static void b_printf(struct buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void b_printf(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    b_reserve(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* Length of a valid UTF-8 sequence starting at s (at most n bytes), or 0. */
static size_t utf8_seq_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t len;
    unsigned min;
    unsigned cp;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2; min = 0x80; cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3; min = 0x800; cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4; min = 0x10000; cp = c & 0x07;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

/* JSON string of n bytes.  Invalid UTF-8 bytes are emitted as \u00XX so the
 * output is always valid JSON. */
static void b_strn(struct buf *b, const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    b_putn(b, "\"", 1);
    for (size_t i = 0; i < n;) {
        unsigned char c = u[i];
        if (c == '"') {
            b_putn(b, "\\\"", 2);
        } else if (c == '\\') {
            b_putn(b, "\\\\", 2);
        } else if (c == '\n') {
            b_putn(b, "\\n", 2);
        } else if (c == '\r') {
            b_putn(b, "\\r", 2);
        } else if (c == '\t') {
            b_putn(b, "\\t", 2);
        } else if (c < 0x20 || c == 0x7f) {
            b_printf(b, "\\u%04x", c);
        } else if (c < 0x80) {
            b_putn(b, (const char *)&u[i], 1);
        } else {
            size_t l = utf8_seq_len(u + i, n - i);
            if (l == 0) {
                b_printf(b, "\\u%04x", c);
            } else {
                b_putn(b, (const char *)&u[i], l);
                i += l;
                continue;
            }
        }
        i++;
    }
    b_putn(b, "\"", 1);
}

static void b_str(struct buf *b, const char *s)
{
    if (!s)
        b_puts(b, "null");
    else
        b_strn(b, s, strlen(s));
}

/* ------------------------------------------------------------------ */
/* fd inspection                                                       */

struct fdinfo {
    int fd;
    char *target;       /* NULL if readlink failed */
    int cloexec;        /* -1 if F_GETFD failed */
    int is_socket;
    int so_type;
    int family;
    int listening;
    char *local;        /* NULL -> null */
    size_t local_len;
};

static void inspect_socket(struct fdinfo *fi)
{
    int v;
    socklen_t l;

    fi->so_type = -1;
    fi->family = -1;
    fi->listening = 0;

    l = sizeof v;
    if (getsockopt(fi->fd, SOL_SOCKET, SO_TYPE, &v, &l) == 0)
        fi->so_type = v;
    l = sizeof v;
    if (getsockopt(fi->fd, SOL_SOCKET, SO_DOMAIN, &v, &l) == 0)
        fi->family = v;
    l = sizeof v;
    if (getsockopt(fi->fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &l) == 0)
        fi->listening = v != 0;

    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    memset(&ss, 0, sizeof ss);
    if (getsockname(fi->fd, (struct sockaddr *)&ss, &sl) != 0)
        return;
    if (fi->family < 0)
        fi->family = ss.ss_family;

    char tmp[sizeof(struct sockaddr_un) + INET6_ADDRSTRLEN + 16];
    if (ss.ss_family == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
        char a[INET_ADDRSTRLEN];
        if (!inet_ntop(AF_INET, &sin->sin_addr, a, sizeof a))
            return;
        snprintf(tmp, sizeof tmp, "%s:%u", a, (unsigned)ntohs(sin->sin_port));
        fi->local = strdup(tmp);
        fi->local_len = fi->local ? strlen(fi->local) : 0;
    } else if (ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
        char a[INET6_ADDRSTRLEN];
        if (!inet_ntop(AF_INET6, &sin6->sin6_addr, a, sizeof a))
            return;
        snprintf(tmp, sizeof tmp, "[%s]:%u", a, (unsigned)ntohs(sin6->sin6_port));
        fi->local = strdup(tmp);
        fi->local_len = fi->local ? strlen(fi->local) : 0;
    } else if (ss.ss_family == AF_UNIX) {
        struct sockaddr_un *sun = (struct sockaddr_un *)&ss;
        size_t off = offsetof(struct sockaddr_un, sun_path);
        size_t plen = sl > off ? (size_t)sl - off : 0;
        if (plen > sizeof sun->sun_path)
            plen = sizeof sun->sun_path;
        if (plen == 0) {
            fi->local = strdup("");          /* unnamed */
            fi->local_len = 0;
        } else if (sun->sun_path[0] == '\0') {
            /* abstract: "@" + name (name may contain NULs) */
            fi->local = malloc(plen);
            if (fi->local) {
                fi->local[0] = '@';
                memcpy(fi->local + 1, sun->sun_path + 1, plen - 1);
                fi->local_len = plen;
            }
        } else {
            size_t n = strnlen(sun->sun_path, plen);
            fi->local = strndup(sun->sun_path, n);
            fi->local_len = fi->local ? n : 0;
        }
    }
}

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* ------------------------------------------------------------------ */

static void put_sig_list(struct buf *b, const int *sigs, int n)
{
    b_puts(b, "[");
    for (int i = 0; i < n; i++)
        b_printf(b, "%s%d", i ? ", " : "", sigs[i]);
    b_puts(b, "]");
}

static void put_rlim_val(struct buf *b, rlim_t v)
{
    if (v == RLIM_INFINITY)
        b_puts(b, "\"infinity\"");
    else
        b_printf(b, "%llu", (unsigned long long)v);
}

int main(int argc, char **argv)
{
    /* ---- 1. enumerate fds before opening anything else ---- */
    int *fds = NULL;
    size_t nfds = 0, capfds = 0;
    int fd_enum_errno = 0;

    DIR *d = opendir("/proc/self/fd");
    if (d) {
        int dfd = dirfd(d);
        struct dirent *de;
        while ((de = readdir(d)) != NULL) {
            if (de->d_name[0] < '0' || de->d_name[0] > '9')
                continue;
            char *end;
            long v = strtol(de->d_name, &end, 10);
            if (*end != '\0' || v < 0 || v > INT_MAX || (int)v == dfd)
                continue;
            if (nfds == capfds) {
                capfds = capfds ? capfds * 2 : 32;
                int *n = realloc(fds, capfds * sizeof *fds);
                if (!n)
                    die("realloc");
                fds = n;
            }
            fds[nfds++] = (int)v;
        }
        closedir(d);
    } else {
        fd_enum_errno = errno;
    }
    if (nfds > 1)
        qsort(fds, nfds, sizeof *fds, cmp_int);

    struct fdinfo *infos = calloc(nfds ? nfds : 1, sizeof *infos);
    if (!infos)
        die("calloc");
    for (size_t i = 0; i < nfds; i++) {
        struct fdinfo *fi = &infos[i];
        fi->fd = fds[i];

        char path[64], target[PATH_MAX + 1];
        snprintf(path, sizeof path, "/proc/self/fd/%d", fi->fd);
        ssize_t r = readlink(path, target, sizeof target - 1);
        if (r >= 0) {
            target[r] = '\0';
            fi->target = strdup(target);
        }

        int fl = fcntl(fi->fd, F_GETFD);
        fi->cloexec = fl < 0 ? -1 : ((fl & FD_CLOEXEC) != 0);

        struct stat st;
        if (fstat(fi->fd, &st) == 0 && S_ISSOCK(st.st_mode)) {
            fi->is_socket = 1;
            inspect_socket(fi);
        }
    }

    if (argc < 2 || argv[1][0] == '\0') {
        fprintf(stderr, "usage: probe_worker REPORT_FILE [ARGS...]\n");
        return 2;
    }

    /* ---- 2. build the report ---- */
    struct buf b = {0};
    b_puts(&b, "{\n");
    b_printf(&b, "  \"pid\": %d,\n", (int)getpid());
    b_printf(&b, "  \"ppid\": %d,\n", (int)getppid());
    b_printf(&b, "  \"pgid\": %d,\n", (int)getpgid(0));
    b_printf(&b, "  \"sid\": %d,\n", (int)getsid(0));

    b_puts(&b, "  \"argv\": [");
    for (int i = 0; i < argc; i++) {
        if (i)
            b_puts(&b, ", ");
        b_str(&b, argv[i]);
    }
    b_puts(&b, "],\n");

    if (fd_enum_errno) {
        b_puts(&b, "  \"fds_error\": ");
        b_str(&b, strerror(fd_enum_errno));
        b_puts(&b, ",\n");
    }
    b_puts(&b, "  \"fds\": [");
    for (size_t i = 0; i < nfds; i++) {
        struct fdinfo *fi = &infos[i];
        b_printf(&b, "%s\n    {\"fd\": %d, \"target\": ", i ? "," : "", fi->fd);
        b_str(&b, fi->target);
        b_puts(&b, ", \"cloexec\": ");
        b_puts(&b, fi->cloexec < 0 ? "null" : fi->cloexec ? "true" : "false");
        b_puts(&b, ", \"socket\": ");
        if (!fi->is_socket) {
            b_puts(&b, "null");
        } else {
            b_printf(&b, "{\"type\": %d, \"family\": %d, \"local\": ",
                     fi->so_type, fi->family);
            if (fi->local)
                b_strn(&b, fi->local, fi->local_len);
            else
                b_puts(&b, "null");
            b_printf(&b, ", \"listening\": %s}", fi->listening ? "true" : "false");
        }
        b_puts(&b, "}");
    }
    b_puts(&b, nfds ? "\n  ],\n" : "],\n");

    b_puts(&b, "  \"env\": {");
    {
        int first = 1;
        for (char **e = environ; e && *e; e++) {
            const char *eq = strchr(*e, '=');
            b_puts(&b, first ? "\n    " : ",\n    ");
            first = 0;
            if (eq) {
                b_strn(&b, *e, (size_t)(eq - *e));
                b_puts(&b, ": ");
                b_str(&b, eq + 1);
            } else {
                b_str(&b, *e);
                b_puts(&b, ": \"\"");
            }
        }
        b_puts(&b, first ? "},\n" : "\n  },\n");
    }

    /* signals */
    {
        int sigs[64], n = 0;
        sigset_t set;
        sigemptyset(&set);
        if (sigprocmask(SIG_SETMASK, NULL, &set) == 0) {
            for (int s = 1; s <= 64; s++)
                if (sigismember(&set, s) == 1)
                    sigs[n++] = s;
        }
        b_puts(&b, "  \"sigmask\": ");
        put_sig_list(&b, sigs, n);
        b_puts(&b, ",\n");

        int ign[64], hnd[64], ni = 0, nh = 0;
        for (int s = 1; s <= 64; s++) {
            if (s == 32 || s == 33)
                continue;
            struct sigaction sa;
            memset(&sa, 0, sizeof sa);
            if (sigaction(s, NULL, &sa) != 0)
                continue;
            if (sa.sa_flags & SA_SIGINFO) {
                if (sa.sa_sigaction != NULL)
                    hnd[nh++] = s;
            } else if (sa.sa_handler == SIG_IGN) {
                ign[ni++] = s;
            } else if (sa.sa_handler != SIG_DFL) {
                hnd[nh++] = s;
            }
        }
        b_puts(&b, "  \"ignored\": ");
        put_sig_list(&b, ign, ni);
        b_puts(&b, ",\n  \"handled\": ");
        put_sig_list(&b, hnd, nh);
        b_puts(&b, ",\n");
    }

    /* credentials */
    {
        uid_t ru = 0, eu = 0, su = 0;
        gid_t rg = 0, eg = 0, sg = 0;
        getresuid(&ru, &eu, &su);
        getresgid(&rg, &eg, &sg);
        b_printf(&b, "  \"uid\": %u, \"euid\": %u, \"suid\": %u,\n",
                 (unsigned)ru, (unsigned)eu, (unsigned)su);
        b_printf(&b, "  \"gid\": %u, \"egid\": %u, \"sgid\": %u,\n",
                 (unsigned)rg, (unsigned)eg, (unsigned)sg);
        b_puts(&b, "  \"groups\": [");
        int ng = getgroups(0, NULL);
        if (ng > 0) {
            gid_t *gl = calloc((size_t)ng, sizeof *gl);
            if (!gl)
                die("calloc");
            ng = getgroups(ng, gl);
            for (int i = 0; i < ng; i++)
                b_printf(&b, "%s%u", i ? ", " : "", (unsigned)gl[i]);
            free(gl);
        }
        b_puts(&b, "],\n");
    }

    /* rlimits */
    {
        static const struct { const char *name; int res; } rl[] = {
            {"nofile", RLIMIT_NOFILE}, {"core", RLIMIT_CORE},
            {"nproc", RLIMIT_NPROC},   {"stack", RLIMIT_STACK},
            {"as", RLIMIT_AS},         {"memlock", RLIMIT_MEMLOCK},
            {"cpu", RLIMIT_CPU},       {"fsize", RLIMIT_FSIZE},
        };
        b_puts(&b, "  \"rlimits\": {");
        for (size_t i = 0; i < sizeof rl / sizeof rl[0]; i++) {
            struct rlimit r;
            b_printf(&b, "%s\n    \"%s\": ", i ? "," : "", rl[i].name);
            if (getrlimit(rl[i].res, &r) != 0) {
                b_puts(&b, "null");
                continue;
            }
            b_puts(&b, "{\"soft\": ");
            put_rlim_val(&b, r.rlim_cur);
            b_puts(&b, ", \"hard\": ");
            put_rlim_val(&b, r.rlim_max);
            b_puts(&b, "}");
        }
        b_puts(&b, "\n  },\n");
    }

    /* umask, cwd, pdeathsig */
    {
        mode_t m = umask(0);
        umask(m);
        b_printf(&b, "  \"umask\": %u,\n", (unsigned)m);

        char *cwd = getcwd(NULL, 0);
        b_puts(&b, "  \"cwd\": ");
        b_str(&b, cwd);
        b_puts(&b, ",\n");
        free(cwd);

        int pd = 0;
        if (prctl(PR_GET_PDEATHSIG, &pd, 0, 0, 0) != 0)
            pd = -1;
        b_printf(&b, "  \"pdeathsig\": %d\n", pd);
    }
    b_puts(&b, "}\n");

    /* ---- 3. write atomically ---- */
    size_t plen = strlen(argv[1]);
    char *tmp = malloc(plen + 5);
    if (!tmp)
        die("malloc");
    memcpy(tmp, argv[1], plen);
    memcpy(tmp + plen, ".tmp", 5);

    int ofd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (ofd < 0)
        die(tmp);
    size_t off = 0;
    while (off < b.len) {
        ssize_t w = write(ofd, b.p + off, b.len - off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            die("write");
        }
        off += (size_t)w;
    }
    if (close(ofd) != 0)
        die("close");
    if (rename(tmp, argv[1]) != 0)
        die("rename");
    free(tmp);
    free(b.p);

    /* ---- 4. wait forever ---- */
    for (;;)
        pause();
}
