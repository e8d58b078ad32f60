/*
 * kernel_check: runs gf_* kernels on test vectors and compares them with the expected outputs
 * (written by tests/test_runtime_kernels.py from the numpy reference, atomic_ops/).
 *
 * Usage: kernel_check [PREFIX]   (default PREFIX "kc"; files are read relative to the current
 * directory through gf_hal_load, so the same program runs on the host and under QEMU)
 *   PREFIX_manifest.bin  3 x u32: magic "GFKM", number of cases, byte size of PREFIX_cases.bin
 *   PREFIX_cases.bin     the cases, back to back, all little-endian:
 *       u32 magic "GFKC", u32 case bytes, u32 kernel id, u32 number of params P,
 *       i32 params[P], char name[48], u32 number of arrays A,
 *       A x { u32 kind (0 s8, 1 u8, 2 s32, 3 s64, 4 bytes), u32 byte size n, n bytes, padding to 4 }
 *     The last array is the expected output. Every array is copied to its own heap block of the
 *     exact size (so AddressSanitizer sees any out-of-bounds read), the output block is filled
 *     with a pattern and followed by a canary.
 * Prints one line per case; exit status 0 if every case matches, 1 on any mismatch, 2 on a
 * malformed or unreadable input.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gf_hal.h"
#include "gf_runtime.h"
#include "gf_internal.h" /* gf_rqc_init: the precomputed per-tensor constants (make_rq) */

enum {
    K_CONV = 1,
    K_CONV3X3 = 2,
    K_CONV1X1 = 3,
    K_DWCONV = 4,
    K_CONV_REF = 5,
    K_LINEAR = 6,
    K_LINEAR_REF = 7,
    K_MAXPOOL = 8,
    K_AVGPOOL = 9,
    K_TRUNC_AVGPOOL = 10,
    K_ADD = 11,
    K_REQUANTIZE = 12,
    K_RELU = 13,
    K_CONCAT = 14,
    K_PERMUTE = 15,
    K_RNE_SHIFT = 16,
    K_LUT = 17,
    K_MUL = 18,
    K_SOFTMAX = 19,
    K_LAYERNORM = 20,
    K_MATMUL = 21,
    K_LINEAR_ROWS = 22,
    K_SLICE = 23,
    K_PAD = 24,
    K_RMSNORM = 25,
    K_GROUPNORM = 26, /* also gf_lincomb (prm[4] = 1): the row kernels taking a first-row index */
    K_SCAN = 27,
    K_SCAN_SPLIT = 28,
    K_FLIP = 29,
    K_UPSAMPLE = 35,
    K_UPSAMPLE_LINEAR = 36,
    K_THRESHOLDS = 34,
    K_EDGE_PAD = 37,
    /* the SIMD kernels (gf_simd.c) on the same vectors: conv cases of every geometry (30), 1x1 (31),
     * depthwise (32), linear (33 with the linear parameters) and matmul (33 with the matmul ones) */
    K_CONV_SIMD = 30,
    K_CONV1X1_SIMD = 31,
    K_DWCONV_SIMD = 32,
    K_MM_SIMD = 33
};

#define MAX_PARAMS 64
#define MAX_ARRAYS 24
#define CANARY 64

typedef struct {
    uint32_t kind;
    uint32_t nbytes;
    void *data; /* own heap copy */
} array_t;

typedef struct {
    uint32_t id;
    int32_t prm[MAX_PARAMS];
    uint32_t nprm;
    char name[49];
    array_t arr[MAX_ARRAYS];
    uint32_t narr;
} case_t;

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static void free_case(case_t *c)
{
    uint32_t i;
    for (i = 0; i < c->narr; i++)
        free(c->arr[i].data);
    c->narr = 0;
}

/* Parses one case at buf[*off]; 0 ok, -1 malformed. */
static int parse_case(const uint8_t *buf, size_t total, size_t *off, case_t *c)
{
    size_t p = *off, end;
    uint32_t i, bytes;
    memset(c, 0, sizeof *c);
    if (p + 16 > total || rd32(buf + p) != 0x434B4647u)
        return -1;
    bytes = rd32(buf + p + 4);
    if (bytes < 16 || p + bytes > total)
        return -1;
    end = p + bytes;
    c->id = rd32(buf + p + 8);
    c->nprm = rd32(buf + p + 12);
    p += 16;
    if (c->nprm > MAX_PARAMS || p + 4 * (size_t)c->nprm + 48 + 4 > end)
        return -1;
    for (i = 0; i < c->nprm; i++, p += 4)
        c->prm[i] = (int32_t)rd32(buf + p);
    memcpy(c->name, buf + p, 48);
    c->name[48] = 0;
    p += 48;
    c->narr = 0;
    {
        uint32_t n = rd32(buf + p);
        p += 4;
        if (n > MAX_ARRAYS)
            return -1;
        for (i = 0; i < n; i++) {
            uint32_t kind, nb;
            if (p + 8 > end)
                return -1;
            kind = rd32(buf + p);
            nb = rd32(buf + p + 4);
            p += 8;
            if (p + nb > end)
                return -1;
            c->arr[i].kind = kind;
            c->arr[i].nbytes = nb;
            c->arr[i].data = malloc(nb ? nb : 1);
            if (!c->arr[i].data)
                return -1;
            c->narr = i + 1;
            memcpy(c->arr[i].data, buf + p, nb);
            p += (nb + 3u) & ~3u;
        }
    }
    if (p != end)
        return -1;
    *off = end;
    return 0;
}

static size_t elem_size(uint32_t kind)
{
    return kind == 2 ? 4 : (kind == 3 ? 8 : 1);
}

static long long elem_value(const void *p, uint32_t kind, size_t i)
{
    switch (kind) {
    case 0:
        return ((const int8_t *)p)[i];
    case 2:
        return ((const int32_t *)p)[i];
    case 3:
        return ((const int64_t *)p)[i];
    default:
        return ((const uint8_t *)p)[i];
    }
}

/* Requantization parameters from params[at..at+4] (has_rq, channels, zp, lo, hi) and arrays. */
static gf_rqc_t rq_pre; /* one copy: gf_requant_t.pre */
static unsigned rq_calls;

static const gf_requant_t *make_rq(gf_requant_t *rq, const case_t *c, int at, const array_t *m, const array_t *sh,
                                   const array_t *o)
{
    if (!c->prm[at])
        return NULL;
    rq->channels = c->prm[at + 1];
    rq->zp = c->prm[at + 2];
    rq->lo = c->prm[at + 3];
    rq->hi = c->prm[at + 4];
    rq->m = (const int32_t *)m->data;
    rq->sh = (const uint8_t *)sh->data;
    rq->o = (const int64_t *)o->data;
    rq->pre = NULL;
    if (rq->channels == 1 && (rq_calls++ & 1)) { /* every other per-tensor case: the caller's precomputed copy */
        gf_rqc_init(&rq_pre, rq, 0);
        rq->pre = &rq_pre;
    }
    return rq;
}

/* Shape from params[at..at+16]: c h w o oh ow kh kw sy sx pt pl pb pr dy dx groups. */
static void make_shape(gf_conv_shape_t *s, const case_t *c, int at)
{
    const int32_t *q = c->prm + at;
    s->c = q[0], s->h = q[1], s->w = q[2], s->o = q[3], s->oh = q[4], s->ow = q[5];
    s->kh = q[6], s->kw = q[7], s->sy = q[8], s->sx = q[9];
    s->pt = q[10], s->pl = q[11], s->pb = q[12], s->pr = q[13];
    s->dy = q[14], s->dx = q[15], s->groups = q[16];
}

#define NEED(np, na)                                                                               \
    do {                                                                                           \
        if (c->nprm < (np) || c->narr != (na))                                                     \
            return -1;                                                                             \
    } while (0)

/* Runs the kernel of case c into out; 0 ok, -1 malformed case. */
static int run_case(const case_t *c, void *out)
{
    const array_t *A = c->arr;
    gf_requant_t rqs;
    gf_conv_shape_t s;
    const gf_requant_t *rq;
    switch (c->id) {
    case K_CONV:
    case K_CONV3X3:
    case K_CONV1X1:
    case K_DWCONV:
    case K_CONV_SIMD:
    case K_CONV1X1_SIMD:
    case K_DWCONV_SIMD:
    case K_CONV_REF: {
        /* params: in_t, shape[17], has_rq, channels, zp, lo, hi, has_bias; arrays x w bias m sh o expected */
        const int32_t *bias;
        NEED(24, 7);
        make_shape(&s, c, 1);
        rq = make_rq(&rqs, c, 18, &A[3], &A[4], &A[5]);
        bias = c->prm[23] ? (const int32_t *)A[2].data : NULL;
        if (c->id == K_CONV)
            gf_conv2d(A[0].data, (gf_dtype_t)c->prm[0], (const int8_t *)A[1].data, bias, &s, rq, out);
        else if (c->id == K_CONV3X3)
            gf_conv2d_3x3(A[0].data, (gf_dtype_t)c->prm[0], (const int8_t *)A[1].data, bias, &s, rq, out);
        else if (c->id == K_CONV1X1)
            gf_conv2d_1x1(A[0].data, (gf_dtype_t)c->prm[0], (const int8_t *)A[1].data, bias, &s, rq, out);
        else if (c->id == K_DWCONV)
            gf_dwconv2d(A[0].data, (gf_dtype_t)c->prm[0], (const int8_t *)A[1].data, bias, &s, rq, out);
        else if (c->id != K_CONV_REF) { /* SIMD: the im2col buffer on the heap, its exact size */
            /* the planned buffer size, or 1 to 3 pixels per pass (by the case's K); two calls over
             * disjoint pixel ranges, as two cores would */
            const int32_t K = s.c / s.groups * s.kh * s.kw, k4 = (K + 3) & ~3, third = s.oh * s.ow / 3;
            /* depthwise: the first call with the smallest buffer (a pass per output row), the second
             * with the planned one */
            const uint32_t dw = gf_simd_dw_col_bytes(&s);
            const uint32_t nb = dw ? dw : K % 4 == 0 ? gf_simd_conv_col_bytes(K) : (uint32_t)(k4 * (1 + K % 3));
            uint8_t *col = (uint8_t *)malloc(nb);
            if (!col)
                return -1;
            if (!dw && s.oh * s.ow < 16) { /* a small map: 8 cores' shares (pixels and channels split) */
                int32_t core;
                for (core = 0; core < 8; core++)
                    gf_conv2d_simd_core(A[0].data, (gf_dtype_t)c->prm[0], (const int8_t *)A[1].data, bias, &s, rq,
                                        out, core, 8, col, nb);
            } else {
                gf_conv2d_simd(A[0].data, (gf_dtype_t)c->prm[0], (const int8_t *)A[1].data, bias, &s, rq, out, 0,
                               third, col, dw ? gf_simd_dw_min_bytes(&s) : nb);
                gf_conv2d_simd(A[0].data, (gf_dtype_t)c->prm[0], (const int8_t *)A[1].data, bias, &s, rq, out, third,
                               s.oh * s.ow, col, nb);
            }
            free(col);
        }
        else
            gf_conv2d_ref(A[0].data, (gf_dtype_t)c->prm[0], (const int8_t *)A[1].data, bias, &s, rq, out);
        return 0;
    }
    case K_LINEAR:
    case K_LINEAR_REF: {
        /* params: in_t, k, o, has_rq, channels, zp, lo, hi, has_bias; arrays x w bias m sh o expected */
        const int32_t *bias;
        NEED(9, 7);
        rq = make_rq(&rqs, c, 3, &A[3], &A[4], &A[5]);
        bias = c->prm[8] ? (const int32_t *)A[2].data : NULL;
        if (c->id == K_LINEAR)
            gf_linear(A[0].data, (gf_dtype_t)c->prm[0], (const int8_t *)A[1].data, bias, c->prm[1], c->prm[2], rq, out);
        else
            gf_linear_ref(A[0].data, (gf_dtype_t)c->prm[0], (const int8_t *)A[1].data, bias, c->prm[1], c->prm[2], rq,
                          out);
        return 0;
    }
    case K_MAXPOOL:
        /* params: t, shape[17]; arrays x expected */
        NEED(18, 2);
        make_shape(&s, c, 1);
        gf_maxpool2d(A[0].data, (gf_dtype_t)c->prm[0], &s, out);
        return 0;
    case K_AVGPOOL:
        /* params: in_t, shape[17], has_rq, channels, zp, lo, hi; arrays x m sh o expected */
        NEED(23, 5);
        make_shape(&s, c, 1);
        rq = make_rq(&rqs, c, 18, &A[1], &A[2], &A[3]);
        gf_avgpool2d(A[0].data, (gf_dtype_t)c->prm[0], &s, rq, out);
        return 0;
    case K_TRUNC_AVGPOOL:
        /* params: in_t, shape[17], shift, floor, lo, hi; arrays x expected */
        NEED(22, 2);
        make_shape(&s, c, 1);
        gf_trunc_avgpool2d(A[0].data, (gf_dtype_t)c->prm[0], &s, c->prm[18], c->prm[19], c->prm[20], c->prm[21], out);
        return 0;
    case K_ADD:
        /* params: a_t, b_t, n, inner, has_rq, channels, zp, lo, hi; arrays a b m sh o expected */
        NEED(9, 6);
        rq = make_rq(&rqs, c, 4, &A[2], &A[3], &A[4]);
        gf_add(A[0].data, (gf_dtype_t)c->prm[0], A[1].data, (gf_dtype_t)c->prm[1], c->prm[2], c->prm[3], rq, out);
        return 0;
    case K_REQUANTIZE:
        /* params: in_t, n, inner, has_rq(=1), channels, zp, lo, hi; arrays x m sh o expected */
        NEED(8, 5);
        rq = make_rq(&rqs, c, 3, &A[1], &A[2], &A[3]);
        if (!rq)
            return -1;
        gf_requantize(A[0].data, (gf_dtype_t)c->prm[0], c->prm[1], c->prm[2], rq, out);
        return 0;
    case K_RELU:
        /* params: t, n, zp, in_place; arrays x expected */
        NEED(4, 2);
        if (c->prm[3]) {
            memcpy(out, A[0].data, A[0].nbytes);
            gf_relu(out, (gf_dtype_t)c->prm[0], c->prm[1], c->prm[2], out);
        } else {
            gf_relu(A[0].data, (gf_dtype_t)c->prm[0], c->prm[1], c->prm[2], out);
        }
        return 0;
    case K_CONCAT: {
        /* params: n_inputs, outer, block_bytes[n]; arrays x0 .. x(n-1) expected */
        const void *xs[MAX_ARRAYS];
        int32_t i, n;
        if (c->nprm < 2)
            return -1;
        n = c->prm[0];
        if (n < 1 || n >= MAX_ARRAYS || c->nprm < (uint32_t)(2 + n) || c->narr != (uint32_t)n + 1)
            return -1;
        for (i = 0; i < n; i++)
            xs[i] = A[i].data;
        gf_concat(xs, c->prm + 2, n, c->prm[1], out);
        return 0;
    }
    case K_PERMUTE:
        /* params: elem_size, shape[4], perm[4]; arrays x expected */
        NEED(9, 2);
        gf_permute(A[0].data, c->prm[0], c->prm + 1, c->prm + 5, out);
        return 0;
    case K_LUT:
        /* params: in_t, entries, base, channels, n, inner; arrays x table expected */
        NEED(6, 3);
        gf_lut(A[0].data, (gf_dtype_t)c->prm[0], (const uint8_t *)A[1].data, c->prm[1], c->prm[2], c->prm[3],
               c->prm[4], c->prm[5], out);
        return 0;
    case K_THRESHOLDS:
        /* params: n_thr, table_bytes, channels, n, inner; arrays x (int32) tables expected */
        NEED(5, 3);
        gf_thresholds(A[0].data, (const uint8_t *)A[1].data, c->prm[0], c->prm[1], c->prm[2], c->prm[3], c->prm[4],
                      out);
        return 0;
    case K_MUL: {
        /* params: a_t, b_t, shape[4], sa[4], sb[4], za, zb, j0, n, a_org, b_org, inner, has_rq, channels, zp,
         * lo, hi; arrays a b m sh o expected */
        gf_mul_shape_t ms;
        int32_t i;
        NEED(26, 6);
        for (i = 0; i < 4; i++) {
            ms.shape[i] = c->prm[2 + i];
            ms.sa[i] = c->prm[6 + i];
            ms.sb[i] = c->prm[10 + i];
        }
        ms.za = c->prm[14];
        ms.zb = c->prm[15];
        rq = make_rq(&rqs, c, 21, &A[2], &A[3], &A[4]);
        gf_mul(A[0].data, (gf_dtype_t)c->prm[0], A[1].data, (gf_dtype_t)c->prm[1], &ms, c->prm[16], c->prm[17],
               c->prm[18], c->prm[19], c->prm[20], rq, out);
        return 0;
    }
    case K_RNE_SHIFT: {
        /* params: n; arrays v (s64) sh (u8) expected (s64) */
        int32_t i;
        NEED(1, 3);
        for (i = 0; i < c->prm[0]; i++)
            ((int64_t *)out)[i] = gf_rne_shift(((const int64_t *)A[0].data)[i], ((const uint8_t *)A[1].data)[i]);
        return 0;
    }
    case K_SOFTMAX:
    case K_LAYERNORM:
        /* params: in_t, rows, n (softmax: and row0); arrays x p (s64 parameter block) expected */
        NEED(3, 3);
        if (c->id == K_SOFTMAX)
            gf_softmax(A[0].data, (gf_dtype_t)c->prm[0], c->nprm > 3 ? c->prm[3] : 0, c->prm[1], c->prm[2],
                       (const int64_t *)A[1].data, out);
        else
            gf_layernorm(A[0].data, (gf_dtype_t)c->prm[0], c->prm[1], c->prm[2], (const int64_t *)A[1].data, out);
        return 0;
    case K_RMSNORM:
        /* params: in_t, rows, n; arrays x p (s64 parameter block) expected */
        NEED(3, 3);
        gf_rmsnorm(A[0].data, (gf_dtype_t)c->prm[0], c->prm[1], c->prm[2], (const int64_t *)A[1].data, out);
        return 0;
    case K_GROUPNORM:
        /* params: in_t, row0, rows, n, which (0 gf_groupnorm, 1 gf_lincomb); arrays x p expected */
        NEED(5, 3);
        if (c->prm[4] == 1)
            gf_lincomb(A[0].data, (gf_dtype_t)c->prm[0], c->prm[1], c->prm[2], c->prm[3], (const int64_t *)A[1].data,
                       out);
        else
            gf_groupnorm(A[0].data, (gf_dtype_t)c->prm[0], c->prm[1], c->prm[2], c->prm[3],
                         (const int64_t *)A[1].data, out);
        return 0;
    case K_MATMUL:
        /* params: a_t, za, b_t, zb, g, m, k, n, has_rq, channels, zp, lo, hi; arrays a b m sh o expected */
        NEED(13, 6);
        rq = make_rq(&rqs, c, 8, &A[2], &A[3], &A[4]);
        gf_matmul(A[0].data, (gf_dtype_t)c->prm[0], c->prm[1], A[1].data, (gf_dtype_t)c->prm[2], c->prm[3], c->prm[4],
                  c->prm[5], c->prm[6], c->prm[7], rq, out);
        return 0;
    case K_MM_SIMD:
        if (c->nprm == 9 && c->narr == 7) { /* linear parameters (K_LINEAR) */
            rq = make_rq(&rqs, c, 3, &A[3], &A[4], &A[5]);
            gf_linear_simd(A[0].data, (gf_dtype_t)c->prm[0], (const int8_t *)A[1].data,
                           c->prm[8] ? (const int32_t *)A[2].data : NULL, c->prm[1], c->prm[2], rq, out);
        } else { /* matmul parameters (K_MATMUL) */
            uint8_t *col;
            NEED(13, 6);
            rq = make_rq(&rqs, c, 8, &A[2], &A[3], &A[4]);
            col = (uint8_t *)malloc(gf_simd_col_bytes(c->prm[6]));
            if (!col)
                return -1;
            gf_matmul_simd(A[0].data, (gf_dtype_t)c->prm[0], c->prm[1], A[1].data, (gf_dtype_t)c->prm[2], c->prm[3],
                           c->prm[4], c->prm[5], c->prm[6], c->prm[7], rq, out, col);
            free(col);
        }
        return 0;
    case K_LINEAR_ROWS: {
        /* params: in_t, rows, k, o, has_rq, channels, zp, lo, hi, has_bias; arrays x w bias m sh o expected */
        const int32_t *bias;
        NEED(10, 7);
        rq = make_rq(&rqs, c, 4, &A[3], &A[4], &A[5]);
        bias = c->prm[9] ? (const int32_t *)A[2].data : NULL;
        gf_linear_rows(A[0].data, (gf_dtype_t)c->prm[0], (const int8_t *)A[1].data, bias, c->prm[1], c->prm[2],
                       c->prm[3], rq, out);
        return 0;
    }
    case K_SLICE:
        /* params: elem_bytes, outer, n, start, step, count, inner; arrays x expected */
        NEED(7, 2);
        gf_slice(A[0].data, c->prm[0], c->prm[1], c->prm[2], c->prm[3], c->prm[4], c->prm[5], c->prm[6], out);
        return 0;
    case K_PAD:
        /* params: outer, n, before, after, inner, value; arrays x expected */
        NEED(6, 2);
        gf_pad(A[0].data, c->prm[0], c->prm[1], c->prm[2], c->prm[3], c->prm[4], c->prm[5], out);
        return 0;
    case K_SCAN:
    case K_SCAN_SPLIT:
        /* params: delta_t, u_t, b_t, c_t [, split]; arrays delta u b c p (s64 parameter block) expected */
        NEED(c->id == K_SCAN ? 4 : 5, 6);
        if (c->id == K_SCAN) {
            gf_scan(A[0].data, (gf_dtype_t)c->prm[0], A[1].data, (gf_dtype_t)c->prm[1], A[2].data, (gf_dtype_t)c->prm[2],
                    A[3].data, (gf_dtype_t)c->prm[3], (const int64_t *)A[4].data, out);
        } else { /* the channels in two parts, the second first: any split gives the same integers */
            const int32_t D = (int32_t)((const int64_t *)A[4].data)[0];
            gf_scan_channels(A[0].data, (gf_dtype_t)c->prm[0], A[1].data, (gf_dtype_t)c->prm[1], A[2].data,
                             (gf_dtype_t)c->prm[2], A[3].data, (gf_dtype_t)c->prm[3], (const int64_t *)A[4].data,
                             c->prm[4], D, out);
            gf_scan_channels(A[0].data, (gf_dtype_t)c->prm[0], A[1].data, (gf_dtype_t)c->prm[1], A[2].data,
                             (gf_dtype_t)c->prm[2], A[3].data, (gf_dtype_t)c->prm[3], (const int64_t *)A[4].data,
                             0, c->prm[4], out);
        }
        return 0;
    case K_EDGE_PAD:
        /* params: elem_bytes, outer, n, before, after, inner, mode; arrays x expected */
        NEED(7, 2);
        gf_edge_pad(A[0].data, c->prm[0], c->prm[1], c->prm[2], c->prm[3], c->prm[4], c->prm[5], c->prm[6], out);
        return 0;
    case K_FLIP:
        /* params: elem_bytes, outer, n, inner; arrays x expected */
        NEED(4, 2);
        gf_flip(A[0].data, c->prm[0], c->prm[1], c->prm[2], c->prm[3], out);
        return 0;
    case K_UPSAMPLE:
        /* params: elem_bytes, outer, h, w, fh, fw; arrays x expected */
        NEED(6, 2);
        gf_upsample(A[0].data, c->prm[0], c->prm[1], c->prm[2], c->prm[3], c->prm[4], c->prm[5], out);
        return 0;
    case K_UPSAMPLE_LINEAR:
        /* params: is_signed, zp, outer, h, w, fh, fw, align_corners; arrays x, expected (int32) */
        NEED(8, 2);
        gf_upsample_linear(A[0].data, c->prm[0], c->prm[1], c->prm[2], c->prm[3], c->prm[4], c->prm[5], c->prm[6],
                           c->prm[7], out);
        return 0;
    default:
        return -1;
    }
}

int main(int argc, char **argv)
{
    const char *prefix = argc > 1 && argv[1][0] ? argv[1] : "kc";
    char path[256];
    uint8_t hdr[12];
    uint8_t *buf;
    uint32_t ncases, total, k;
    size_t off = 0;
    int failed = 0, rc;
    static case_t cs;

    if (gf_hal_init() != 0) {
        printf("kernel_check: gf_hal_init failed\n");
        return 2;
    }
    snprintf(path, sizeof path, "%s_manifest.bin", prefix);
    rc = gf_hal_load(path, hdr, sizeof hdr);
    if (rc != 0 || rd32(hdr) != 0x4D4B4647u) {
        printf("kernel_check: cannot read %s (%d)\n", path, rc);
        return 2;
    }
    ncases = rd32(hdr + 4);
    total = rd32(hdr + 8);
    buf = (uint8_t *)malloc(total ? total : 1);
    if (!buf) {
        printf("kernel_check: out of memory (%u bytes)\n", (unsigned)total);
        return 2;
    }
    snprintf(path, sizeof path, "%s_cases.bin", prefix);
    rc = gf_hal_load(path, buf, total);
    if (rc != 0) {
        printf("kernel_check: cannot read %s (%d)\n", path, rc);
        return 2;
    }
    printf("kernel_check: target %s, %u cases\n", gf_hal_target(), (unsigned)ncases);
    for (k = 0; k < ncases; k++) {
        const array_t *exp;
        uint8_t *out;
        size_t n, i, es, bad = 0, first = 0;
        int canary_ok = 1;
        uint64_t t0, t1;
        if (parse_case(buf, total, &off, &cs) != 0 || cs.narr == 0) {
            printf("case %u: malformed\n", (unsigned)k);
            return 2;
        }
        exp = &cs.arr[cs.narr - 1];
        out = (uint8_t *)malloc(exp->nbytes + CANARY);
        if (!out) {
            printf("case %u %s: out of memory\n", (unsigned)k, cs.name);
            return 2;
        }
        memset(out, 0xA5, exp->nbytes + CANARY);
        t0 = gf_hal_instret();
        if (run_case(&cs, out) != 0) {
            printf("case %u %s: malformed parameters (kernel %u)\n", (unsigned)k, cs.name, (unsigned)cs.id);
            return 2;
        }
        t1 = gf_hal_instret();
        es = elem_size(exp->kind);
        n = exp->nbytes / es;
        for (i = 0; i < n; i++) {
            if (memcmp(out + i * es, (const uint8_t *)exp->data + i * es, es) != 0) {
                if (!bad)
                    first = i;
                bad++;
            }
        }
        for (i = 0; i < CANARY; i++)
            canary_ok &= out[exp->nbytes + i] == 0xA5;
        if (bad || !canary_ok) {
            failed++;
            if (bad) {
                long long got, want;
                uint8_t tmp[8];
                memcpy(tmp, out + first * es, es);
                got = elem_value(tmp, exp->kind, 0);
                want = elem_value(exp->data, exp->kind, first);
                printf("case %u %s: MISMATCH %lu of %lu elements (first at %lu: got %lld, expected %lld)%s\n",
                       (unsigned)k, cs.name, (unsigned long)bad, (unsigned long)n, (unsigned long)first, got, want,
                       canary_ok ? "" : ", wrote past the output");
            } else {
                printf("case %u %s: WROTE PAST THE OUTPUT (%lu elements)\n", (unsigned)k, cs.name, (unsigned long)n);
            }
        } else {
            printf("case %u %s: ok (%lu elements, %llu instructions)\n", (unsigned)k, cs.name, (unsigned long)n,
                   (unsigned long long)(t1 - t0));
        }
        free(out);
        free_case(&cs);
    }
    free(buf);
    printf("kernel_check: %u cases, %d failed\n", (unsigned)ncases, failed);
    return failed ? 1 : 0;
}
