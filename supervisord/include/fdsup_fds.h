/*
 * fdsup_fds.h - fetch listening sockets from fdsup over SCM_RIGHTS, and park fds in
 * the worker's fd store.
 *
 * For workers with `scm_rights = ["http", ...]` in their fdsup config: those sockets
 * are not inherited; the worker asks for them by name on the fd socket, whose path
 * fdsupd puts in $FDSUP_FD_SOCKET. Header-only, no dependencies, C99 and C++.
 *
 *     #include "fdsup_fds.h"
 *     const char *names[] = {"http"};
 *     int fds[1];
 *     char why[256];
 *     if (fdsup_get_fds(names, 1, fds, why, sizeof why) < 0) {
 *         fprintf(stderr, "cannot get my socket: %s\n", why);
 *         exit(1);
 *     }
 *     // fds[0] is the listening socket (close-on-exec set), ready for accept().
 *
 * For workers with `fd_store_max` > 0: fds handed to fdsupd with fdsup_store_fds() come
 * back to the worker's next process after its sockets, named in LISTEN_FDNAMES (the
 * same as sd_pid_notify_with_fds() with "FDSTORE=1\nFDNAME=...", without libsystemd):
 *
 *     if (fdsup_store_fds("conn-7", &client_fd, 1, why, sizeof why) < 0)
 *         fprintf(stderr, "not stored: %s\n", why);
 *
 * The protocol (SPEC "fd socket"): one request line {"cmd":"get","names":[...]},
 * answered by one or more messages, each a JSON line {"ok":true,"more":bool,
 * "names":[...]} carrying that line's fds in SCM_RIGHTS (at most 250 per message), or
 * one line {"ok":false,"error":"..."} and no fds. Every fd received on a failed
 * request is closed before returning. A store is one line {"cmd":"store","name":...}
 * with the fds (at most 253) attached, answered by {"ok":true,"stored":N,...} or an
 * error.
 */
#ifndef FDSUP_FDS_H
#define FDSUP_FDS_H

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define FDSUP_MAX_FDS_PER_MESSAGE 250
#define FDSUP_MAX_STORE_FDS 253

static inline void fdsup__why(char *why, size_t len, const char *format, ...)
{
    if (why == NULL || len == 0)
        return;
    va_list args;
    va_start(args, format);
    vsnprintf(why, len, format, args);
    va_end(args);
}

/* The JSON string body starting at `in` (just after its opening quote), unescaped
 * into `out` up to its closing quote; \uXXXX escapes become '?'. */
static inline void fdsup__json_unquote(const char *in, char *out, size_t size)
{
    size_t n = 0;
    for (; *in && *in != '"' && n + 1 < size; in++) {
        if (*in == '\\' && in[1]) {
            in++;
            if (*in == 'u') {
                for (int k = 0; k < 4 && in[1]; k++)
                    in++;
                out[n++] = '?';
                continue;
            }
            out[n++] = *in == 'n' ? '\n' : *in == 't' ? '\t' : *in;
            continue;
        }
        out[n++] = *in;
    }
    out[n] = '\0';
}

/* Appends `text` as a JSON string; 0, or -1 if it does not fit. */
static inline int fdsup__json_string(char *out, size_t size, size_t *used, const char *text)
{
    if (*used + 1 >= size)
        return -1;
    out[(*used)++] = '"';
    for (const unsigned char *c = (const unsigned char *)text; *c; c++) {
        char escaped[8];
        int n;
        if (*c == '"' || *c == '\\')
            n = snprintf(escaped, sizeof escaped, "\\%c", *c);
        else if (*c < 0x20)
            n = snprintf(escaped, sizeof escaped, "\\u%04x", *c);
        else
            n = snprintf(escaped, sizeof escaped, "%c", *c);
        if (*used + (size_t)n + 1 >= size)
            return -1;
        memcpy(out + *used, escaped, (size_t)n);
        *used += (size_t)n;
    }
    out[(*used)++] = '"';
    return 0;
}

/* A connected stream socket to the fd socket at `path`; -1 with errno and `why` set. */
static inline int fdsup__connect(const char *path, char *why, size_t why_len)
{
    struct sockaddr_un addr;
    memset(&addr, 0, sizeof addr);
    addr.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof addr.sun_path) {
        fdsup__why(why, why_len, "FDSUP_FD_SOCKET is too long");
        errno = ENAMETOOLONG;
        return -1;
    }
    strcpy(addr.sun_path, path);
    if (path[0] == '@')
        addr.sun_path[0] = '\0';
    int sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    /* An abstract name is exactly its bytes: no trailing NULs in the address length. */
    socklen_t addr_len = path[0] == '@' ? (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path))
                                        : (socklen_t)sizeof addr;
    if (sock < 0 || connect(sock, (struct sockaddr *)&addr, addr_len) < 0) {
        int saved_errno = errno;
        fdsup__why(why, why_len, "connect %s: %s", path, strerror(errno));
        if (sock >= 0)
            close(sock);
        errno = saved_errno;
        return -1;
    }
    return sock;
}

/* $FDSUP_FD_SOCKET, or NULL with errno and `why` set. */
static inline const char *fdsup__fd_socket(char *why, size_t why_len)
{
    const char *path = getenv("FDSUP_FD_SOCKET");
    if (path == NULL || *path == '\0') {
        fdsup__why(why, why_len, "FDSUP_FD_SOCKET is not set (is this process started by fdsupd?)");
        errno = ENOENT;
        return NULL;
    }
    return path;
}

/*
 * Fetches `count` sockets named in `names` into `fds` (in the same order).
 * Returns 0; or -1 with errno set, `why` (if not NULL) saying what went wrong, and no
 * fd left open.
 */
static inline int fdsup_get_fds_at(const char *path, const char *const *names, size_t count, int *fds, char *why,
                                   size_t why_len);

static inline int fdsup_get_fds(const char *const *names, size_t count, int *fds, char *why, size_t why_len)
{
    const char *path = fdsup__fd_socket(why, why_len);
    return path == NULL ? -1 : fdsup_get_fds_at(path, names, count, fds, why, why_len);
}

/* The same, from the fd socket at `path` ("/run/fdsup/fds.sock", or "@name" for an
 * abstract socket). */
static inline int fdsup_get_fds_at(const char *path, const char *const *names, size_t count, int *fds, char *why,
                                   size_t why_len)
{
    /* Declared up front: C++ forbids jumping to `fail` past initialisations. */
    size_t received = 0, size = 64, used = 0;
    int sock = -1, saved_errno = EPROTO;
    char *request = NULL;

    /* The request line: {"cmd":"get","names":[...]}\n */
    for (size_t i = 0; i < count; i++)
        size += strlen(names[i]) * 6 + 3;
    request = (char *)malloc(size);
    if (request == NULL) {
        saved_errno = ENOMEM;
        fdsup__why(why, why_len, "out of memory");
        goto fail;
    }
    used = (size_t)snprintf(request, size, "{\"cmd\":\"get\",\"names\":[");
    for (size_t i = 0; i < count; i++) {
        if (i > 0)
            request[used++] = ',';
        if (fdsup__json_string(request, size, &used, names[i]) < 0) {
            saved_errno = EINVAL;
            fdsup__why(why, why_len, "request too long");
            goto fail;
        }
    }
    used += (size_t)snprintf(request + used, size - used, "]}\n");

    sock = fdsup__connect(path, why, why_len);
    if (sock < 0) {
        saved_errno = errno;
        goto fail;
    }
    for (size_t sent = 0; sent < used;) {
        ssize_t n = send(sock, request + sent, used - sent, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            saved_errno = errno;
            fdsup__why(why, why_len, "send: %s", strerror(errno));
            goto fail;
        }
        sent += (size_t)n;
    }

    /* Replies: lines, each with its fds attached to its first byte. */
    {
        char line[4096];
        size_t line_len = 0;
        int more = 1;
        while (more) {
            char buffer[4096];
            union {
                struct cmsghdr align;
                char space[CMSG_SPACE(sizeof(int) * FDSUP_MAX_FDS_PER_MESSAGE)];
            } control;
            struct iovec iov = {buffer, sizeof buffer};
            struct msghdr msg;
            memset(&msg, 0, sizeof msg);
            msg.msg_iov = &iov;
            msg.msg_iovlen = 1;
            msg.msg_control = control.space;
            msg.msg_controllen = sizeof control.space;
            ssize_t n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0) {
                saved_errno = errno;
                fdsup__why(why, why_len, "recvmsg: %s", strerror(errno));
                goto fail;
            }
            for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
                if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
                    continue;
                size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                const int *got = (const int *)CMSG_DATA(c);
                for (size_t j = 0; j < k; j++) {
                    if (received < count)
                        fds[received++] = got[j];
                    else
                        close(got[j]); /* more than asked for: not ours to keep */
                }
            }
            if (msg.msg_flags & MSG_CTRUNC) {
                fdsup__why(why, why_len, "fds were cut short (MSG_CTRUNC)");
                goto fail;
            }
            if (n == 0) {
                fdsup__why(why, why_len, "fdsupd closed the connection before answering in full");
                goto fail;
            }
            for (ssize_t i = 0; i < n; i++) {
                if (buffer[i] != '\n') {
                    if (line_len + 1 < sizeof line)
                        line[line_len++] = buffer[i];
                    continue;
                }
                line[line_len] = '\0';
                line_len = 0;
                if (strncmp(line, "{\"ok\":true", 10) != 0) {
                    const char *error = strstr(line, "\"error\":\"");
                    if (error != NULL)
                        fdsup__json_unquote(error + 9, line, sizeof line); /* in place: it only shrinks */
                    fdsup__why(why, why_len, "%s", line);
                    saved_errno = strstr(line, "permission denied") ? EACCES : EPROTO;
                    goto fail;
                }
                more = strstr(line, "\"more\":true") != NULL;
                if (!more)
                    break;
            }
        }
    }
    if (received != count) {
        fdsup__why(why, why_len, "asked for %zu sockets, got %zu", count, received);
        goto fail;
    }
    close(sock);
    free(request);
    return 0;

fail:
    for (size_t i = 0; i < received; i++)
        close(fds[i]);
    if (sock >= 0)
        close(sock);
    free(request);
    errno = saved_errno;
    return -1;
}

/*
 * Parks `count` fds (at most FDSUP_MAX_STORE_FDS) in this worker's fd store under
 * `name` (NULL: "stored"); the caller keeps its own fds. Returns how many were stored
 * (fds already in the store are not stored twice); -1 with errno and `why` set if
 * fdsupd refused them, e.g. a full store (those that fit are stored even then).
 */
static inline int fdsup_store_fds(const char *name, const int *fds, size_t count, char *why, size_t why_len)
{
    const char *path = fdsup__fd_socket(why, why_len);
    if (path == NULL)
        return -1;
    if (count == 0 || count > FDSUP_MAX_STORE_FDS) {
        fdsup__why(why, why_len, "between 1 and %d fds can be stored at once", FDSUP_MAX_STORE_FDS);
        errno = EINVAL;
        return -1;
    }
    char request[600];
    size_t used = (size_t)snprintf(request, sizeof request, "{\"cmd\":\"store\",\"name\":");
    if (fdsup__json_string(request, sizeof request - 3, &used, name != NULL ? name : "stored") < 0) {
        fdsup__why(why, why_len, "fd name too long");
        errno = EINVAL;
        return -1;
    }
    used += (size_t)snprintf(request + used, sizeof request - used, "}\n");

    int sock = fdsup__connect(path, why, why_len);
    if (sock < 0)
        return -1;
    union {
        struct cmsghdr align;
        char space[CMSG_SPACE(sizeof(int) * FDSUP_MAX_STORE_FDS)];
    } control;
    memset(&control, 0, sizeof control);
    struct iovec iov = {request, used};
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.space;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * count);
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * count);
    memcpy(CMSG_DATA(c), fds, sizeof(int) * count);
    /* The request is small: one sendmsg carries it whole (the fds with its first byte). */
    ssize_t sent;
    do
        sent = sendmsg(sock, &msg, MSG_NOSIGNAL);
    while (sent < 0 && errno == EINTR);
    if (sent != (ssize_t)used) {
        int saved_errno = sent < 0 ? errno : EPROTO;
        fdsup__why(why, why_len, "sendmsg: %s", sent < 0 ? strerror(errno) : "short write");
        close(sock);
        errno = saved_errno;
        return -1;
    }
    char reply[1024];
    size_t got = 0;
    while (got + 1 < sizeof reply && memchr(reply, '\n', got) == NULL) {
        ssize_t n = recv(sock, reply + got, sizeof reply - 1 - got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(sock);
    reply[got] = '\0';
    const char *stored = strstr(reply, "\"stored\":");
    if (strncmp(reply, "{\"ok\":true", 10) == 0 && stored != NULL)
        return atoi(stored + 9);
    const char *error = strstr(reply, "\"error\":\"");
    if (error != NULL)
        fdsup__json_unquote(error + 9, reply, sizeof reply);
    fdsup__why(why, why_len, "%s", got == 0 ? "fdsupd closed the connection without answering" : reply);
    errno = strstr(reply, "full") ? ENOSPC : EPROTO;
    return -1;
}

#endif /* FDSUP_FDS_H */
