/* Benchmark worker: prints the CLOCK_MONOTONIC time at which main() began, then waits
 * to be killed. The respawn benchmark compares it with the time of the kill. */
#include <stdio.h>
#include <time.h>
#include <unistd.h>

int main(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    printf("stamp %lld %d\n", (long long)now.tv_sec * 1000000000LL + now.tv_nsec, (int)getpid());
    fflush(stdout);
    for (;;) pause();
}
