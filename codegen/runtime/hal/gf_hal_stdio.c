/* gapforge HAL, shared by the host and rv32 targets: whole-file loading through C stdio (hosted
 * libc on the host, picolibc over semihosting on rv32). */
#include <stdio.h>

#include "gf_hal.h"

int gf_hal_init(void)
{
    return 0;
}

int gf_hal_load(const char *name, void *dst, size_t bytes)
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
