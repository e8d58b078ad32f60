/* gapforge HAL for a hosted build (Linux/POSIX): stdio and a monotonic clock. */
#define _POSIX_C_SOURCE 199309L

#include <stdio.h>
#include <time.h>

#include "gf_hal.h"

/* Whole-file loading through C stdio (identical in gf_hal_host.c and gf_hal_rv32.c). */
static int gf_hal_stdio_load(const char *name, void *dst, size_t bytes)
{
    unsigned char extra;
    size_t got;
    FILE *f = fopen(name, "rb");
    if (!f)
        return -1;
    got = bytes ? fread(dst, 1, bytes, f) : 0;
    if (got != bytes) {
        int err = ferror(f);
        fclose(f);
        return err ? -1 : -2; /* short file */
    }
    if (fread(&extra, 1, 1, f) != 0) { /* longer than expected */
        fclose(f);
        return -2;
    }
    if (ferror(f)) {
        fclose(f);
        return -1;
    }
    fclose(f);
    return 0;
}

int gf_hal_init(void)
{
    return 0;
}

int gf_hal_load(const char *name, void *dst, size_t bytes)
{
    return gf_hal_stdio_load(name, dst, bytes);
}

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
