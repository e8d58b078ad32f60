/*
 * GAP9 implementation of the gapforge HAL (gf_hal.h) on PMSIS, GAP9 SDK 5.x.
 * Uses only the API listed in docs (flash + ReadFS for the .bin files, FC performance counters).
 * Compiled by the GAP SDK only; gapforge cannot build or run it on its development machines.
 */
#include <stdint.h>
#include <string.h>

#include "pmsis.h"
#include "bsp/bsp.h"

#include "gf_hal.h"

static struct pi_device gf_flash;
static struct pi_device gf_fs;
static int gf_fs_ready;

int gf_hal_init(void)
{
    struct pi_default_flash_conf flash_conf;
    struct pi_readfs_conf fs_conf;

    pi_default_flash_conf_init(&flash_conf);
    pi_open_from_conf(&gf_flash, &flash_conf);
    if (pi_flash_open(&gf_flash))
        return -1;
    pi_readfs_conf_init(&fs_conf);
    fs_conf.fs.flash = &gf_flash;
    pi_open_from_conf(&gf_fs, &fs_conf);
    if (pi_fs_mount(&gf_fs))
        return -1;
    gf_fs_ready = 1;
    pi_perf_conf(1 << PI_PERF_CYCLES | 1 << PI_PERF_INSTR);
    pi_perf_reset();
    pi_perf_start();
    return 0;
}

int gf_hal_load(const char *name, void *dst, size_t bytes)
{
    if (!gf_fs_ready)
        return -1;
    pi_fs_file_t *f = pi_fs_open(&gf_fs, name, 0);
    if (f == NULL)
        return -1;
    if ((size_t)f->size != bytes) {
        pi_fs_close(f);
        return -2;
    }
    uint8_t *p = (uint8_t *)dst;
    size_t left = bytes;
    while (left > 0) {
        size_t chunk = left > 4096 ? 4096 : left;
        int got = pi_fs_read(f, p, chunk);
        if (got <= 0) {
            pi_fs_close(f);
            return -1;
        }
        p += got;
        left -= (size_t)got;
    }
    pi_fs_close(f);
    return 0;
}

uint64_t gf_hal_instret(void)
{
    return (uint64_t)pi_perf_read(PI_PERF_INSTR);
}

uint64_t gf_hal_cycles(void)
{
    return (uint64_t)pi_perf_read(PI_PERF_CYCLES);
}

const char *gf_hal_target(void)
{
    return "gap9";
}
