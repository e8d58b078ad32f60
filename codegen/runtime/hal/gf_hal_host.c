/* gapforge HAL for a hosted build (Linux/POSIX): stdio and a monotonic clock. */
#define _POSIX_C_SOURCE 199309L

#include <time.h>

#include "gf_hal.h"

/* gf_hal_init and gf_hal_load are in gf_hal_stdio.c. */

uint64_t gf_hal_instret(void)
{
    return 0; /* no user-readable retired-instruction counter on the host */
}

uint64_t gf_hal_cycles(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
        return 0;
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

const char *gf_hal_target(void)
{
    return "host";
}
