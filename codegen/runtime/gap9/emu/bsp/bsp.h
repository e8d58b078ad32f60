/*
 * gapforge GAP9 PMSIS emulator: the board support header. On the real SDK bsp/bsp.h declares
 * the default RAM and flash configurations; the emulator declares everything in pmsis.h.
 */
#ifndef GF_EMU_BSP_H
#define GF_EMU_BSP_H

#include "pmsis.h"

#endif /* GF_EMU_BSP_H */
