/* Benchmark worker: sends the CLOCK_MONOTONIC time at which main() began (and its pid)
 * as one datagram to the unix socket named by $BENCH_STAMP_SINK or else by argv[1]
 * (runsv and s6-supervise start ./run with arguments of their own), then waits to be
 * killed. It is linked statically, so exec costs the same under every supervisor. The
 * respawn benchmark blocks on that socket (no polling that would steal the CPU) and
 * compares the stamp with the time of its kill. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char** argv) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    const char* sink = getenv("BENCH_STAMP_SINK");
    if (!sink && argc > 1) sink = argv[1];
    if (!sink) return 2;
    char message[64];
    int n = snprintf(message, sizeof message, "%lld %d", (long long)now.tv_sec * 1000000000LL + now.tv_nsec,
                     (int)getpid());
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    strncpy(addr.sun_path, sink, sizeof addr.sun_path - 1);
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || sendto(fd, message, (size_t)n, 0, (struct sockaddr*)&addr, sizeof addr) < 0) return 1;
    close(fd);
    for (;;) pause();
}
