/* LD_PRELOAD shim for tests: bind() of a unix socket whose path ends in
 * $FDSUP_SLOW_BIND_SUFFIX sleeps $FDSUP_SLOW_BIND_MS milliseconds first. It makes a
 * start-up step slow on purpose (fdsupd binds its control socket after its loop exists
 * and before it starts the workers), so that a test can tell a deadline counted from
 * the wrong moment. Any other bind() is untouched. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>

typedef int (*bind_fn)(int, const struct sockaddr*, socklen_t);

int bind(int fd, const struct sockaddr* address, socklen_t length) {
    static bind_fn real_bind;
    if (!real_bind) real_bind = (bind_fn)dlsym(RTLD_NEXT, "bind");
    const char* suffix = getenv("FDSUP_SLOW_BIND_SUFFIX");
    const char* ms = getenv("FDSUP_SLOW_BIND_MS");
    if (suffix && ms && address && address->sa_family == AF_UNIX) {
        const struct sockaddr_un* un = (const struct sockaddr_un*)address;
        size_t path_length = strnlen(un->sun_path, sizeof un->sun_path);
        size_t suffix_length = strlen(suffix);
        if (un->sun_path[0] != '\0' && path_length >= suffix_length &&
            memcmp(un->sun_path + path_length - suffix_length, suffix, suffix_length) == 0) {
            long delay = atol(ms);
            struct timespec pause = {delay / 1000, (delay % 1000) * 1000000L};
            while (nanosleep(&pause, &pause) != 0) {
            }
        }
    }
    return real_bind(fd, address, length);
}
