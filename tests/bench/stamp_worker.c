/* Benchmark worker: sends the CLOCK_MONOTONIC time at which main() began (and its pid)
 * as one datagram to the unix socket named by argv[1], then waits to be killed. The
 * respawn benchmark blocks on that socket (no polling that would steal the CPU) and
 * compares the stamp with the time of its kill. */
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char** argv) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (argc < 2) return 2;
    char message[64];
    int n = snprintf(message, sizeof message, "%lld %d", (long long)now.tv_sec * 1000000000LL + now.tv_nsec,
                     (int)getpid());
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    strncpy(addr.sun_path, argv[1], sizeof addr.sun_path - 1);
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || sendto(fd, message, (size_t)n, 0, (struct sockaddr*)&addr, sizeof addr) < 0) return 1;
    close(fd);
    for (;;) pause();
}
