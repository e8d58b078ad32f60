/* Shared by gf_hal_host.c and gf_hal_rv32.c: whole-file loading through C stdio. */
#ifndef GF_HAL_COMMON_H
#define GF_HAL_COMMON_H

#include <stdio.h>

#include "gf_hal.h"

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

#endif /* GF_HAL_COMMON_H */
