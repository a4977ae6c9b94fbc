/* lutnb C kernel: fused nearest-centroid encode + integer look-up-accumulate (the CCM and the IMM).
 *
 * Built at first use by lutnb/kernels/compiled.py (cc -O3 -march=native -ffp-contract=off) and called via ctypes;
 * ctypes drops the GIL, so Python threads run disjoint row ranges in parallel.
 *
 * Exactness (tested against the torch reference in tests/test_ckernel.py):
 *   - distances use the same float32 operations in the same order as the torch path for v <= 4
 *     (L2: running sum of (x-c)^2, L1: running sum of |x-c|, Chebyshev: running max with NaN propagation),
 *     no FMA contraction; the argmin keeps the lowest index on ties and takes the first NaN (torch.argmin).
 *   - look-ups add int8 table entries into int32 accumulators (wrap mod 2^32; the caller wraps to acc_bits).
 *
 * Fast path (AVX-512 VBMI + VNNI, the MADDNESS idea taken one step further): the codes of 4 sub-spaces of a
 * row are packed into one 32-bit word, byte q = 16*q + code (c <= 16). One 64-byte register holds the int8
 * tables of those 4 sub-spaces for one output column, so one vpermb looks up 64 entries (16 rows x 4
 * sub-spaces) and one vpdpbusd adds each row's 4 entries into its int32 accumulator.
 * Portable path (-DLUTNB_PORTABLE or no AVX-512): plain loops, same results.
 */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if !defined(LUTNB_PORTABLE) && defined(__AVX512F__) && defined(__AVX512BW__)
#define LUTNB_SIMD_ENCODE 1
#include <immintrin.h>
#if defined(__AVX512VBMI__) && defined(__AVX512VNNI__)
#define LUTNB_SIMD_LOOKUP 1
#endif
#endif

#define RB 64 /* rows per block */

int lutnb_simd_level(void) {
#if defined(LUTNB_SIMD_LOOKUP)
    return 2;
#elif defined(LUTNB_SIMD_ENCODE)
    return 1;
#else
    return 0;
#endif
}

int lutnb_row_block(void) { return RB; }

/* gather the block's sub-vectors of sub-space s as X[k*RB + l] (zero beyond K and beyond mb);
 * returns 1 when all gathered values are finite */
__attribute__((unused)) static int gather(const float *rows, int64_t K, int64_t m0, int mb, int64_t s, int64_t v, float *X) {
    int finite = 1;
    int64_t base = s * v;
    for (int64_t k = 0; k < v; k++) {
        int64_t col = base + k;
        float *xk = X + k * RB;
        if (col < K) {
            const float *p = rows + m0 * K + col;
            for (int l = 0; l < mb; l++) {
                float x = p[(int64_t)l * K];
                xk[l] = x;
                finite &= (fabsf(x) <= FLT_MAX);
            }
        } else {
            for (int l = 0; l < mb; l++) xk[l] = 0.0f;
        }
        for (int l = mb; l < RB; l++) xk[l] = 0.0f;
    }
    return finite;
}

/* scalar encode of one row's sub-vector x (v values) against centroids cs (c x v) */
static int32_t encode_one(const float *x, const float *cs, int64_t c, int64_t v, int metric) {
    float best = INFINITY;
    int32_t bi = -1;
    for (int64_t j = 0; j < c; j++) {
        const float *cj = cs + j * v;
        float d;
        if (metric == 0) {
            float e = x[0] - cj[0];
            d = e * e;
            for (int64_t k = 1; k < v; k++) { e = x[k] - cj[k]; d = d + e * e; }
        } else if (metric == 1) {
            d = fabsf(x[0] - cj[0]);
            for (int64_t k = 1; k < v; k++) d = d + fabsf(x[k] - cj[k]);
        } else {
            d = fabsf(x[0] - cj[0]);
            for (int64_t k = 1; k < v; k++) {
                float a = fabsf(x[k] - cj[k]);
                if ((a > d) | (a != a)) d = a;
            }
        }
        if ((d < best) | ((d != d) & (best == best))) { best = d; bi = (int32_t)j; }
    }
    return bi < 0 ? 0 : bi;
}

__attribute__((unused)) static void encode_block_scalar(const float *X, int mb, const float *cs, int64_t c, int64_t v, int metric,
                                int32_t *BI) {
    float x[64];
    for (int l = 0; l < mb; l++) {
        for (int64_t k = 0; k < v; k++) x[k] = X[k * RB + l];
        BI[l] = encode_one(x, cs, c, v, metric);
    }
}

#ifdef LUTNB_SIMD_ENCODE
static inline __attribute__((always_inline)) void encode_block_simd_v(
    const float *X, int mb, const float *cs, int64_t c, const int64_t v, int metric, int finite, int32_t *BI) {
    const __m512 absmask = _mm512_castsi512_ps(_mm512_set1_epi32(0x7fffffff));
    for (int r = 0; r * 16 < mb; r++) {
        __m512 x[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
        if (v <= 4)
            for (int64_t k = 0; k < v; k++) x[k] = _mm512_loadu_ps(X + k * RB + 16 * r);
        __m512 best = _mm512_set1_ps(INFINITY);
        __m512i bi = _mm512_set1_epi32(-1);
        for (int64_t j = 0; j < c; j++) {
            const float *cj = cs + j * v;
            __m512 d;
#define XK(k) (v <= 4 ? x[k] : _mm512_loadu_ps(X + (k) * RB + 16 * r))
            __m512 e = _mm512_sub_ps(XK(0), _mm512_set1_ps(cj[0]));
            if (metric == 0) {
                d = _mm512_mul_ps(e, e);
                for (int64_t k = 1; k < v; k++) {
                    e = _mm512_sub_ps(XK(k), _mm512_set1_ps(cj[k]));
                    d = _mm512_add_ps(d, _mm512_mul_ps(e, e));
                }
            } else if (metric == 1) {
                d = _mm512_and_ps(e, absmask);
                for (int64_t k = 1; k < v; k++) {
                    e = _mm512_sub_ps(XK(k), _mm512_set1_ps(cj[k]));
                    d = _mm512_add_ps(d, _mm512_and_ps(e, absmask));
                }
            } else {
                d = _mm512_and_ps(e, absmask);
                for (int64_t k = 1; k < v; k++) {
                    __m512 a = _mm512_and_ps(_mm512_sub_ps(XK(k), _mm512_set1_ps(cj[k])), absmask);
                    if (finite) {  /* no NaN possible: max(a, d) is "a if a > d else d" */
                        d = _mm512_max_ps(a, d);
                    } else {
                        __mmask16 m = _mm512_cmp_ps_mask(a, d, _CMP_GT_OQ) | _mm512_cmp_ps_mask(a, a, _CMP_UNORD_Q);
                        d = _mm512_mask_blend_ps(m, d, a);
                    }
                }
            }
#undef XK
            __mmask16 take = _mm512_cmp_ps_mask(d, best, _CMP_LT_OQ);
            if (!finite)
                take |= _mm512_cmp_ps_mask(d, d, _CMP_UNORD_Q) & _mm512_cmp_ps_mask(best, best, _CMP_ORD_Q);
            best = _mm512_mask_blend_ps(take, best, d);
            bi = _mm512_mask_blend_epi32(take, bi, _mm512_set1_epi32((int)j));
        }
        bi = _mm512_max_epi32(bi, _mm512_setzero_si512());
        _mm512_storeu_si512((void *)(BI + 16 * r), bi);
    }
}
#endif

/* codes of sub-space s for the block: BI[0..mb) */
static void encode_block(const float *X, int mb, const float *cs, int64_t c, int64_t v, int metric, int finite,
                         int32_t *BI) {
#ifdef LUTNB_SIMD_ENCODE
    switch (v) {  /* constant v: x stays in registers across the centroids */
    case 1: encode_block_simd_v(X, mb, cs, c, 1, metric, finite, BI); return;
    case 2: encode_block_simd_v(X, mb, cs, c, 2, metric, finite, BI); return;
    case 3: encode_block_simd_v(X, mb, cs, c, 3, metric, finite, BI); return;
    case 4: encode_block_simd_v(X, mb, cs, c, 4, metric, finite, BI); return;
    default: encode_block_simd_v(X, mb, cs, c, v, metric, finite, BI); return;
    }
#else
    (void)finite;
    encode_block_scalar(X, mb, cs, c, v, metric, BI);
#endif
}

#ifdef LUTNB_SIMD_ENCODE
/* in-register transpose of a 16 x 16 float tile */
static inline __attribute__((always_inline)) void transpose16(__m512 r[16]) {
    __m512 t[16];
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 4; i++) {
        r[4 * i] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], _MM_SHUFFLE(1, 0, 1, 0));
        r[4 * i + 1] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], _MM_SHUFFLE(3, 2, 3, 2));
        r[4 * i + 2] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], _MM_SHUFFLE(1, 0, 1, 0));
        r[4 * i + 3] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], _MM_SHUFFLE(3, 2, 3, 2));
    }
    for (int h = 0; h < 2; h++)
        for (int i = 0; i < 4; i++) {
            t[8 * h + i] = _mm512_shuffle_f32x4(r[8 * h + i], r[8 * h + 4 + i], 0x88);
            t[8 * h + 4 + i] = _mm512_shuffle_f32x4(r[8 * h + i], r[8 * h + 4 + i], 0xdd);
        }
    for (int i = 0; i < 8; i++) {
        r[i] = _mm512_shuffle_f32x4(t[i], t[8 + i], 0x88);
        r[8 + i] = _mm512_shuffle_f32x4(t[i], t[8 + i], 0xdd);
    }
}
#endif

/* Codes of every sub-space for rows m0..m0+mb (mb <= RB): BI[s * RB + l]; rows l >= mb get code 0.
 * XT: scratch of 16 * v * RB floats. */
static int encode_rows_block(const float *rows, int64_t K, int64_t m0, int mb, const float *cb, int64_t S,
                             int64_t c, int64_t v, int metric, int cb_finite, float *XT, int32_t *BI) {
    int rows_finite = 1;
#ifdef LUTNB_SIMD_ENCODE
    /* chunks of 16 sub-spaces = 16*v columns: transpose 16x16 tiles of the block into XT[col * RB + l] */
    const __m512 fmax = _mm512_set1_ps(FLT_MAX);
    const __m512 absmask = _mm512_castsi512_ps(_mm512_set1_epi32(0x7fffffff));
    int64_t CW = 16 * v;
    for (int64_t col0 = 0, s0 = 0; s0 < S; col0 += CW, s0 += 16) {
        __mmask16 fin = 0xffff;
        for (int64_t t = 0; t < v; t++) {
            int64_t cb0 = col0 + 16 * t;
            int64_t nvalid = K - cb0;
            __mmask16 cm = nvalid >= 16 ? (__mmask16)0xffff : (nvalid <= 0 ? 0 : (__mmask16)((1u << nvalid) - 1));
            for (int r = 0; r * 16 < mb; r++) {
                __m512 x[16];
                for (int i = 0; i < 16; i++) {
                    int l = 16 * r + i;
                    if (l < mb && cm) {
                        x[i] = _mm512_maskz_loadu_ps(cm, rows + (m0 + l) * K + cb0);
                        fin &= _mm512_cmp_ps_mask(_mm512_and_ps(x[i], absmask), fmax, _CMP_LE_OQ);
                    } else {
                        x[i] = _mm512_setzero_ps();
                    }
                }
                transpose16(x);
                for (int j = 0; j < 16; j++) _mm512_storeu_ps(XT + (16 * t + j) * RB + 16 * r, x[j]);
            }
        }
        rows_finite &= fin == 0xffff;
        int finite = (fin == 0xffff) & cb_finite;
        for (int64_t s = s0; s < S && s < s0 + 16; s++)
            encode_block(XT + (s - s0) * v * RB, mb, cb + s * c * v, c, v, metric, finite, BI + s * RB);
    }
#else
    for (int64_t s = 0; s < S; s++) {
        int rf = gather(rows, K, m0, mb, s, v, XT);
        rows_finite &= rf;
        encode_block(XT, mb, cb + s * c * v, c, v, metric, rf & cb_finite, BI + s * RB);
    }
#endif
    for (int64_t s = 0; s < S; s++)
        for (int l = mb; l < RB; l++) BI[s * RB + l] = 0;
    return rows_finite;
}

/* idx[l * S + s] = BI[s * RB + l] as int64 for rows l < mb (a transpose: 16 x 16 tiles in registers) */
static void store_idx(const int32_t *BI, int mb, int64_t S, int64_t *idx) {
#ifdef LUTNB_SIMD_ENCODE
    for (int64_t s0 = 0; s0 < S; s0 += 16) {
        int64_t ns = S - s0 < 16 ? S - s0 : 16;
        __mmask8 mlo = (__mmask8)(ns >= 8 ? 0xff : (1u << ns) - 1);
        __mmask8 mhi = (__mmask8)(ns >= 16 ? 0xff : (ns <= 8 ? 0 : (1u << (ns - 8)) - 1));
        for (int r = 0; r * 16 < mb; r++) {
            __m512 x[16];
            for (int j = 0; j < 16; j++)
                x[j] = j < ns ? _mm512_castsi512_ps(_mm512_loadu_si512((const void *)(BI + (s0 + j) * RB + 16 * r)))
                              : _mm512_setzero_ps();
            transpose16(x);
            for (int i = 0; i < 16 && 16 * r + i < mb; i++) {
                __m512i xi = _mm512_castps_si512(x[i]);
                int64_t *dst = idx + (int64_t)(16 * r + i) * S + s0;
                _mm512_mask_storeu_epi64(dst, mlo, _mm512_cvtepi32_epi64(_mm512_castsi512_si256(xi)));
                if (mhi) _mm512_mask_storeu_epi64(dst + 8, mhi, _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64(xi, 1)));
            }
        }
    }
#else
    for (int l = 0; l < mb; l++)
        for (int64_t s = 0; s < S; s++) idx[l * S + s] = BI[s * RB + l];
#endif
}

/* Encode rows [m_begin, m_end): idx (M, S) int64. Returns 0, or -1 when out of memory. */
int lutnb_encode(const float *rows, int64_t K, const float *cb, int64_t S, int64_t c, int64_t v, int metric,
                 int cb_finite, int64_t m_begin, int64_t m_end, int64_t *idx) {
    if (v > 64) return -2;
    float *X = (float *)malloc(sizeof(float) * (size_t)(16 * v) * RB);
    int32_t *BI = (int32_t *)malloc(sizeof(int32_t) * (size_t)S * RB);
    if (!X || !BI) { free(X); free(BI); return -1; }
    for (int64_t m0 = m_begin; m0 < m_end; m0 += RB) {
        int mb = (int)(m_end - m0 < RB ? m_end - m0 : RB);
        encode_rows_block(rows, K, m0, mb, cb, S, c, v, metric, cb_finite, X, BI);
        store_idx(BI, mb, S, idx + m0 * S);
    }
    free(X);
    free(BI);
    return 0;
}

/* out[l, n] = wrap(A[n, l]) as int64, or, when y is given, y[l, n] = float(wrap(A)) * scale[n] (+ bias[n]):
 * float32 operations in the order of lutnb.vq.quant.dequantize, so the result is bit-identical to it */
static void store_acc(const int32_t *A, int64_t stride_n, int64_t stride_l, int mb, int64_t N, int wrap_bits,
                      int64_t *out, const float *scale, const float *bias, float *y) {
    if (y) {
        int64_t half = wrap_bits > 0 && wrap_bits < 32 ? (int64_t)1 << (wrap_bits - 1) : 0;
        int64_t mask = wrap_bits > 0 && wrap_bits < 32 ? ((int64_t)1 << wrap_bits) - 1 : -1;
        for (int l = 0; l < mb; l++)
            for (int64_t n = 0; n < N; n++) {
                int64_t a = A[n * stride_n + l * stride_l];
                if (mask != -1) a = ((a + half) & mask) - half;
                float f = (float)a * scale[n];
                y[l * N + n] = bias ? f + bias[n] : f;
            }
        return;
    }
    if (wrap_bits > 0 && wrap_bits < 32) {
        int64_t half = (int64_t)1 << (wrap_bits - 1), mask = ((int64_t)1 << wrap_bits) - 1;
        for (int l = 0; l < mb; l++)
            for (int64_t n = 0; n < N; n++)
                out[l * N + n] = ((((int64_t)A[n * stride_n + l * stride_l]) + half) & mask) - half;
    } else {
        for (int l = 0; l < mb; l++)
            for (int64_t n = 0; n < N; n++) out[l * N + n] = A[n * stride_n + l * stride_l];
    }
}

/* ---------------------------------------------------------------------------------------------------------------
 * Whole-layer jobs (lutnb.compile): implicit im2col + encode + look-up + a fused epilogue, one call per row range.
 * The epilogue of output (row m, column n), in this order, each step float32 as torch does it:
 *   f = float(wrap(acc)) * scale[n] (+ bias[n])                       (lutnb.vq.quant.dequantize)
 *   f = f * alpha[n] + beta[n]   (fmaf when bn_fma)                   (eval BatchNorm: alpha = w / sqrt(var + eps))
 *   f = f + res[m * ldr + n]                                          (a residual add)
 *   f = max(0, f)                                                      (ReLU; NaN stays NaN)
 *   y[m * ldy + n] = f;  yq[m * ldq + n] = clamp(round(f / qs), -127, 127) + 128 (NaN -> 128)  (next layer's input)
 * Each step is optional (NULL / 0). The return value has bit 0 set when some f is NaN or infinite. */
typedef struct {
    const void *x;  /* uint8 NHWC (q8 job) or float32 NHWC (f32 job) input; or rows (M, Kp) when kh == 0 */
    int64_t H, W, C, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo, Kp;
    const uint32_t *c2;
    const int32_t *cinit;
    const float *cb;
    int64_t K, v, metric, cb_finite, S, c;
    const int8_t *tq8, *t4;
    int64_t N, wrap_bits;
    const float *scale, *bias, *alpha, *beta;
    int64_t bn_fma, relu;
    const float *res;
    int64_t ldr;
    float *y;
    int64_t ldy;
    uint8_t *yq;
    int64_t ldq;
    float qs;
    float xs; /* q8 job with xs > 0: the input is float32 rows (M, K), quantized here at scale xs (the layer's grid) */
} lutnb_job;

static inline uint8_t quant_one(float f, float qs) {
    float q = nearbyintf(f / qs);
    if (q != q) q = 0.0f;
    q = q < -127.0f ? -127.0f : (q > 127.0f ? 127.0f : q);
    return (uint8_t)((int)q + 128);
}

/* A: accumulators of one row block, A[n * sn + l * sl]; rows l < mb are rows m0 + l of the output */
static int epilogue_block(const int32_t *A, int64_t sn, int64_t sl, int mb, int64_t m0, const lutnb_job *j) {
    int64_t N = j->N;
    int wb = (int)j->wrap_bits;
    int bad = 0;
#ifdef LUTNB_SIMD_ENCODE
    if (sl == 1 && sn == RB) {
        const __m512i vhalf = _mm512_set1_epi32(wb > 0 && wb < 32 ? (int32_t)(1u << (wb - 1)) : 0);
        const __m512i vmask = _mm512_set1_epi32(wb > 0 && wb < 32 ? (int32_t)((1u << wb) - 1u) : -1);
        const int wrap = wb > 0 && wb < 32;
        const __m512 fmax = _mm512_set1_ps(FLT_MAX), zero = _mm512_setzero_ps();
        const __m512 absmask = _mm512_castsi512_ps(_mm512_set1_epi32(0x7fffffff));
        const __m512 vqs = _mm512_set1_ps(j->qs), lo = _mm512_set1_ps(-127.0f), hi = _mm512_set1_ps(127.0f);
        const __m512i off = _mm512_set1_epi32(128);
        int64_t N4 = (N + 3) / 4 * 4;
        __mmask16 notfin = 0;
        for (int64_t n0 = 0; n0 < N; n0 += 16) {
            int64_t nn = N - n0 < 16 ? N - n0 : 16;
            __mmask16 mk = nn >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << nn) - 1);
            __m512 sc = _mm512_maskz_loadu_ps(mk, j->scale + n0);
            __m512 bi = j->bias ? _mm512_maskz_loadu_ps(mk, j->bias + n0) : zero;
            __m512 al = j->alpha ? _mm512_maskz_loadu_ps(mk, j->alpha + n0) : zero;
            __m512 be = j->alpha ? _mm512_maskz_loadu_ps(mk, j->beta + n0) : zero;
            for (int r = 0; r * 16 < mb; r++) {
                __m512 t[16];
                for (int q = 0; q < 16; q++)
                    t[q] = n0 + q < N4 ? _mm512_loadu_ps((const float *)(A + (n0 + q) * RB + 16 * r)) : zero;
                transpose16(t);
                for (int i = 0; i < 16 && 16 * r + i < mb; i++) {
                    int64_t m = m0 + 16 * r + i;
                    __m512i a = _mm512_castps_si512(t[i]);
                    if (wrap) a = _mm512_sub_epi32(_mm512_and_si512(_mm512_add_epi32(a, vhalf), vmask), vhalf);
                    __m512 f = _mm512_mul_ps(_mm512_cvtepi32_ps(a), sc);
                    if (j->bias) f = _mm512_add_ps(f, bi);
                    if (j->alpha) f = j->bn_fma ? _mm512_fmadd_ps(f, al, be) : _mm512_add_ps(_mm512_mul_ps(f, al), be);
                    if (j->res) f = _mm512_add_ps(f, _mm512_maskz_loadu_ps(mk, j->res + m * j->ldr + n0));
                    if (j->relu) f = _mm512_max_ps(zero, f);
                    notfin |= _mm512_mask_cmp_ps_mask(mk, _mm512_and_ps(f, absmask), fmax, _CMP_NLE_UQ);
                    if (j->y) _mm512_mask_storeu_ps(j->y + m * j->ldy + n0, mk, f);
                    if (j->yq) {
                        __m512 q = _mm512_roundscale_ps(_mm512_div_ps(f, vqs), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
                        q = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(q, q, _CMP_UNORD_Q), q, zero);
                        q = _mm512_min_ps(_mm512_max_ps(q, lo), hi);
                        _mm_mask_storeu_epi8(j->yq + m * j->ldq + n0, mk,
                                             _mm512_cvtepi32_epi8(_mm512_add_epi32(_mm512_cvtps_epi32(q), off)));
                    }
                }
            }
        }
        return notfin != 0;
    }
#endif
    int64_t half = wb > 0 && wb < 32 ? (int64_t)1 << (wb - 1) : 0;
    int64_t mask = wb > 0 && wb < 32 ? ((int64_t)1 << wb) - 1 : -1;
    for (int l = 0; l < mb; l++) {
        int64_t m = m0 + l;
        for (int64_t n = 0; n < N; n++) {
            int64_t a = A[n * sn + l * sl];
            if (mask != -1) a = ((a + half) & mask) - half;
            float f = (float)a * j->scale[n];
            if (j->bias) f = f + j->bias[n];
            if (j->alpha) f = j->bn_fma ? fmaf(f, j->alpha[n], j->beta[n]) : f * j->alpha[n] + j->beta[n];
            if (j->res) f = f + j->res[m * j->ldr + n];
            if (j->relu) f = f < 0.0f ? 0.0f : f;
            bad |= !(fabsf(f) <= FLT_MAX);
            if (j->y) j->y[m * j->ldy + n] = f;
            if (j->yq) j->yq[m * j->ldq + n] = quant_one(f, j->qs);
        }
    }
    return bad;
}

/* Look-up-accumulate of one row block from its codes BI[s * RB + l] (rows l >= mb hold code 0; BI has room
 * for ceil(S/4)*4 sub-spaces), then store (see store_acc). A: N4 * RB int32 scratch; codes: G * RB uint32,
 * 64-byte aligned. */
static int lookup_block(int32_t *BI, int mb, int64_t S, int64_t c, const int8_t *tq8, const int8_t *t4, int64_t N,
                        int wrap_bits, int64_t m0, int64_t *out, const float *scale, const float *bias, float *y,
                        int32_t *A, uint32_t *codes, const lutnb_job *ep) {
    int64_t N4 = (N + 3) / 4 * 4, G = (S + 3) / 4;
#ifdef LUTNB_SIMD_LOOKUP
    if (t4 != NULL && c <= 16) {
        for (int64_t s = S; s < G * 4; s++)
            for (int l = 0; l < RB; l++) BI[s * RB + l] = 0;
        const __m512i o1 = _mm512_set1_epi32(16 << 8), o2 = _mm512_set1_epi32(32 << 16), o3 = _mm512_set1_epi32(48 << 24);
        for (int64_t g = 0; g < G; g++) {
            const int32_t *b = BI + g * 4 * RB;
            uint32_t *cg = codes + g * RB;
            for (int l = 0; l < RB; l += 16) {  /* byte q = 16 q + code (codes < 16) */
                __m512i w = _mm512_loadu_si512((const void *)(b + l));
                w = _mm512_or_si512(w, _mm512_add_epi32(_mm512_slli_epi32(_mm512_loadu_si512((const void *)(b + RB + l)), 8), o1));
                w = _mm512_or_si512(w, _mm512_add_epi32(_mm512_slli_epi32(_mm512_loadu_si512((const void *)(b + 2 * RB + l)), 16), o2));
                w = _mm512_or_si512(w, _mm512_add_epi32(_mm512_slli_epi32(_mm512_loadu_si512((const void *)(b + 3 * RB + l)), 24), o3));
                _mm512_store_si512((void *)(cg + l), w);
            }
        }
        const __m512i ones = _mm512_set1_epi8(1);
        if (mb <= 16) {  /* a small block (batch 1): one group of 16 rows */
            for (int64_t n0 = 0; n0 < N4; n0 += 4) {
                __m512i acc[4] = {_mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512(),
                                  _mm512_setzero_si512()};
                for (int64_t g = 0; g < G; g++) {
                    __m512i i0 = _mm512_load_si512((const void *)(codes + g * RB));
                    const int8_t *tg = t4 + (g * N4 + n0) * 64;
                    for (int q = 0; q < 4; q++)
                        acc[q] = _mm512_dpbusd_epi32(acc[q], ones, _mm512_permutexvar_epi8(
                                                                       i0, _mm512_loadu_si512((const void *)(tg + 64 * q))));
                }
                for (int q = 0; q < 4; q++) _mm512_storeu_si512((void *)(A + (n0 + q) * RB), acc[q]);
            }
            if (ep) return epilogue_block(A, RB, 1, mb, m0, ep);
            store_acc(A, RB, 1, mb, N, wrap_bits, out ? out + m0 * N : NULL, scale, bias, y ? y + m0 * N : NULL);
            return 0;
        }
        for (int64_t n0 = 0; n0 < N4; n0 += 4) {
            __m512i acc[4][4];
            for (int q = 0; q < 4; q++)
                for (int r = 0; r < 4; r++) acc[q][r] = _mm512_setzero_si512();
            for (int64_t g = 0; g < G; g++) {
                const uint32_t *cg = codes + g * RB;
                __m512i i0 = _mm512_load_si512((const void *)(cg + 0));
                __m512i i1 = _mm512_load_si512((const void *)(cg + 16));
                __m512i i2 = _mm512_load_si512((const void *)(cg + 32));
                __m512i i3 = _mm512_load_si512((const void *)(cg + 48));
                const int8_t *tg = t4 + (g * N4 + n0) * 64;
                for (int q = 0; q < 4; q++) {
                    __m512i t = _mm512_loadu_si512((const void *)(tg + 64 * q));
                    acc[q][0] = _mm512_dpbusd_epi32(acc[q][0], ones, _mm512_permutexvar_epi8(i0, t));
                    acc[q][1] = _mm512_dpbusd_epi32(acc[q][1], ones, _mm512_permutexvar_epi8(i1, t));
                    acc[q][2] = _mm512_dpbusd_epi32(acc[q][2], ones, _mm512_permutexvar_epi8(i2, t));
                    acc[q][3] = _mm512_dpbusd_epi32(acc[q][3], ones, _mm512_permutexvar_epi8(i3, t));
                }
            }
            for (int q = 0; q < 4; q++)
                for (int r = 0; r < 4; r++)
                    _mm512_storeu_si512((void *)(A + (n0 + q) * RB + 16 * r), acc[q][r]);
        }
        if (ep) return epilogue_block(A, RB, 1, mb, m0, ep);
        store_acc(A, RB, 1, mb, N, wrap_bits, out ? out + m0 * N : NULL, scale, bias, y ? y + m0 * N : NULL);
        return 0;
    }
#else
    (void)t4; (void)codes; (void)N4; (void)G;
#endif
    /* portable look-up: A[l * N + n] += tq8[s, code, n] */
    memset(A, 0, sizeof(int32_t) * (size_t)N * RB);
    for (int64_t s = 0; s < S; s++)
        for (int l = 0; l < mb; l++) {
            const int8_t *t = tq8 + (s * c + BI[s * RB + l]) * N;
            int32_t *a = A + (int64_t)l * N;
            for (int64_t n = 0; n < N; n++) a[n] += t[n];
        }
    if (ep) return epilogue_block(A, 1, N, mb, m0, ep);
    store_acc(A, 1, N, mb, N, wrap_bits, out ? out + m0 * N : NULL, scale, bias, y ? y + m0 * N : NULL);
    return 0;
}

/* The look-up's scratch for one row block: codes BI (G*4 x RB), accumulators A (N4 x RB), packed codes
 * (G x RB, 64-byte aligned); G = ceil(S / 4), N4 = N rounded up to 4. */
typedef struct { int32_t *BI, *A; uint32_t *codes; } lookup_scratch;

static void scratch_free(lookup_scratch *t) { free(t->BI); free(t->A); free(t->codes); }

static int scratch_alloc(lookup_scratch *t, int64_t S, int64_t N) {
    int64_t N4 = (N + 3) / 4 * 4, G = (S + 3) / 4;
    t->BI = (int32_t *)malloc(sizeof(int32_t) * (size_t)(G * 4) * RB);
    t->A = (int32_t *)malloc(sizeof(int32_t) * (size_t)N4 * RB);
    t->codes = (uint32_t *)aligned_alloc(64, sizeof(uint32_t) * (size_t)G * RB);
    if (!t->BI || !t->A || !t->codes) { scratch_free(t); return -1; }
    return 0;
}

/* Fused encode + look-up for rows [m_begin, m_end).
 *   tq8  (S, c, N) int8 tables (portable look-up);
 *   t4   (G, N4, 64) int8: sub-spaces 4g..4g+3 of column n, 16 entries each, zero padded (G = ceil(S/4),
 *        N4 = N rounded up to 4); used by the AVX-512 look-up, may be NULL when lutnb_simd_level() < 2;
 *   idx  (M, S) int64 or NULL; out (M, N) int64 (wrapped to wrap_bits when 0 < wrap_bits < 32), or NULL
 *        when y (M, N) float32 is given: y = float(out) * scale (+ bias when bias is not NULL).
 * c <= 16 for the AVX-512 look-up (the caller checks). Returns 0, -1 out of memory. */
int lutnb_fused(const float *rows, int64_t K, const float *cb, int64_t S, int64_t c, int64_t v, int metric,
                int cb_finite, const int8_t *tq8, const int8_t *t4, int64_t N, int wrap_bits, int64_t m_begin,
                int64_t m_end, int64_t *idx, int64_t *out, const float *scale, const float *bias, float *y) {
    if (v > 64) return -2;
    lookup_scratch t;
    float *X = (float *)malloc(sizeof(float) * (size_t)(16 * v) * RB);
    if (!X) return -1;
    if (scratch_alloc(&t, S, N)) { free(X); return -1; }
    for (int64_t m0 = m_begin; m0 < m_end; m0 += RB) {
        int mb = (int)(m_end - m0 < RB ? m_end - m0 : RB);
        encode_rows_block(rows, K, m0, mb, cb, S, c, v, metric, cb_finite, X, t.BI);
        if (idx) store_idx(t.BI, mb, S, idx + m0 * S);
        lookup_block(t.BI, mb, S, c, tq8, t4, N, wrap_bits, m0, out, scale, bias, y, t.A, t.codes, NULL);
    }
    free(X);
    scratch_free(&t);
    return 0;
}

/* Look-up only, from given codes idx (M, S) int64 in [0, c): the same outputs as lutnb_fused. */
int lutnb_lookup(const int64_t *idx, int64_t S, int64_t c, const int8_t *tq8, const int8_t *t4, int64_t N,
                 int wrap_bits, int64_t m_begin, int64_t m_end, int64_t *out, const float *scale, const float *bias,
                 float *y) {
    lookup_scratch t;
    if (scratch_alloc(&t, S, N)) return -1;
    for (int64_t m0 = m_begin; m0 < m_end; m0 += RB) {
        int mb = (int)(m_end - m0 < RB ? m_end - m0 : RB);
        for (int64_t s = 0; s < S; s++) {
            for (int l = 0; l < mb; l++) t.BI[s * RB + l] = (int32_t)idx[(m0 + l) * S + s];
            for (int l = mb; l < RB; l++) t.BI[s * RB + l] = 0;
        }
        lookup_block(t.BI, mb, S, c, tq8, t4, N, wrap_bits, m0, out, scale, bias, y, t.A, t.codes, NULL);
    }
    scratch_free(&t);
    return 0;
}

#ifdef LUTNB_SIMD_ENCODE
/* lane masks of the four 16-float registers that hold nb (<= 64) columns */
static inline void column_masks(int64_t nb, __mmask16 mk[4]) {
    for (int q = 0; q < 4; q++) {
        int64_t r = nb - 16 * q;
        mk[q] = r >= 16 ? (__mmask16)0xffff : (r <= 0 ? 0 : (__mmask16)((1u << r) - 1));
    }
}
#endif

/* Float table sum (the differentiable look-up of training): y[m, :] = sum_s T[s, idx[m, s], :] (+ bias),
 * summed over s in ascending order; rows [m_begin, m_end). Columns in chunks of 64 held in registers. */
void lutnb_table_sum_f32(const int64_t *idx, const float *T, int64_t S, int64_t c, int64_t N, const float *bias,
                         int64_t m_begin, int64_t m_end, float *y) {
    for (int64_t n0 = 0; n0 < N; n0 += 64) {
        int64_t nb = N - n0 < 64 ? N - n0 : 64;
#ifdef LUTNB_SIMD_ENCODE
        __mmask16 mk[4];
        column_masks(nb, mk);
        for (int64_t m = m_begin; m < m_end; m++) {
            const int64_t *im = idx + m * S;
            float *ym = y + m * N + n0;
            __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps(), a2 = _mm512_setzero_ps(),
                   a3 = _mm512_setzero_ps();
            if (nb == 64) {
                for (int64_t s = 0; s < S; s++) {
                    const float *t = T + (s * c + im[s]) * N + n0;
                    a0 = _mm512_add_ps(a0, _mm512_loadu_ps(t));
                    a1 = _mm512_add_ps(a1, _mm512_loadu_ps(t + 16));
                    a2 = _mm512_add_ps(a2, _mm512_loadu_ps(t + 32));
                    a3 = _mm512_add_ps(a3, _mm512_loadu_ps(t + 48));
                }
            } else {
                for (int64_t s = 0; s < S; s++) {
                    const float *t = T + (s * c + im[s]) * N + n0;
                    a0 = _mm512_add_ps(a0, _mm512_maskz_loadu_ps(mk[0], t));
                    a1 = _mm512_add_ps(a1, _mm512_maskz_loadu_ps(mk[1], t + 16));
                    a2 = _mm512_add_ps(a2, _mm512_maskz_loadu_ps(mk[2], t + 32));
                    a3 = _mm512_add_ps(a3, _mm512_maskz_loadu_ps(mk[3], t + 48));
                }
            }
            if (bias) {
                a0 = _mm512_add_ps(a0, _mm512_maskz_loadu_ps(mk[0], bias + n0));
                a1 = _mm512_add_ps(a1, _mm512_maskz_loadu_ps(mk[1], bias + n0 + 16));
                a2 = _mm512_add_ps(a2, _mm512_maskz_loadu_ps(mk[2], bias + n0 + 32));
                a3 = _mm512_add_ps(a3, _mm512_maskz_loadu_ps(mk[3], bias + n0 + 48));
            }
            _mm512_mask_storeu_ps(ym, mk[0], a0);
            _mm512_mask_storeu_ps(ym + 16, mk[1], a1);
            _mm512_mask_storeu_ps(ym + 32, mk[2], a2);
            _mm512_mask_storeu_ps(ym + 48, mk[3], a3);
        }
#else
        for (int64_t m = m_begin; m < m_end; m++) {
            float acc[64];
            const int64_t *im = idx + m * S;
            for (int64_t n = 0; n < nb; n++) acc[n] = 0.0f;
            for (int64_t s = 0; s < S; s++) {
                const float *t = T + (s * c + im[s]) * N + n0;
                for (int64_t n = 0; n < nb; n++) acc[n] += t[n];
            }
            if (bias)
                for (int64_t n = 0; n < nb; n++) acc[n] += bias[n0 + n];
            for (int64_t n = 0; n < nb; n++) y[m * N + n0 + n] = acc[n];
        }
#endif
    }
}

/* Its gradient w.r.t. the tables: G[s, j, :] += sum over rows m with idx[m, s] == j of dy[m, :], for
 * sub-spaces [s_begin, s_end) (threads own disjoint sub-spaces); G is zeroed by the caller. */
void lutnb_table_scatter_f32(const int64_t *idx, const float *dy, int64_t M, int64_t S, int64_t c, int64_t N,
                             int64_t s_begin, int64_t s_end, float *G) {
    for (int64_t n0 = 0; n0 < N; n0 += 64) {
        int64_t nb = N - n0 < 64 ? N - n0 : 64;
#ifdef LUTNB_SIMD_ENCODE
        __mmask16 mk[4];
        column_masks(nb, mk);
        for (int64_t m = 0; m < M; m++) {
            const float *d = dy + m * N + n0;
            const int64_t *im = idx + m * S;
            __m512 d0 = _mm512_maskz_loadu_ps(mk[0], d), d1 = _mm512_maskz_loadu_ps(mk[1], d + 16),
                   d2 = _mm512_maskz_loadu_ps(mk[2], d + 32), d3 = _mm512_maskz_loadu_ps(mk[3], d + 48);
            if (nb == 64) {
                for (int64_t s = s_begin; s < s_end; s++) {
                    float *g = G + (s * c + im[s]) * N + n0;
                    _mm512_storeu_ps(g, _mm512_add_ps(_mm512_loadu_ps(g), d0));
                    _mm512_storeu_ps(g + 16, _mm512_add_ps(_mm512_loadu_ps(g + 16), d1));
                    _mm512_storeu_ps(g + 32, _mm512_add_ps(_mm512_loadu_ps(g + 32), d2));
                    _mm512_storeu_ps(g + 48, _mm512_add_ps(_mm512_loadu_ps(g + 48), d3));
                }
                continue;
            }
            for (int64_t s = s_begin; s < s_end; s++) {
                float *g = G + (s * c + im[s]) * N + n0;
                _mm512_mask_storeu_ps(g, mk[0], _mm512_add_ps(_mm512_maskz_loadu_ps(mk[0], g), d0));
                _mm512_mask_storeu_ps(g + 16, mk[1], _mm512_add_ps(_mm512_maskz_loadu_ps(mk[1], g + 16), d1));
                _mm512_mask_storeu_ps(g + 32, mk[2], _mm512_add_ps(_mm512_maskz_loadu_ps(mk[2], g + 32), d2));
                _mm512_mask_storeu_ps(g + 48, mk[3], _mm512_add_ps(_mm512_maskz_loadu_ps(mk[3], g + 48), d3));
            }
        }
#else
        for (int64_t m = 0; m < M; m++) {
            const float *d = dy + m * N + n0;
            const int64_t *im = idx + m * S;
            for (int64_t s = s_begin; s < s_end; s++) {
                float *g = G + (s * c + im[s]) * N + n0;
                for (int64_t n = 0; n < nb; n++) g[n] += d[n];
            }
        }
#endif
    }
}

/* ---------------------------------------------------------------------------------------------------------------
 * INT8 encode (the "int8" encode definition of lutnb/deploy/q8.py, v <= 4): activations and centroids on one integer
 * grid per layer; code = argmin_j ||xq - cq_j||^2 (exact integers, lowest index on ties), computed as
 * argmin_j (||cq_j||^2 - 2 xq.cq_j) with one vpdpbusd per centroid and 16 rows:
 *   xu   (M, S) uint32: the 4 bytes xq + 128 (u8) of each sub-space of a row (zero-padded dims hold 128);
 *   c2   (S, c) uint32: the 4 bytes -2*cq (s8; |cq| <= 63);
 *   cinit (S, c) int32: ||cq||^2 + 256 * sum(cq)   (so cinit + <xu, c2> = ||cq||^2 - 2 <xq, cq>).
 * BI[s * RB + l] as encode_rows_block; rows l >= mb get code 0. */
static void q8_encode_block(const uint32_t *xu, int64_t S, int64_t c, const uint32_t *c2, const int32_t *cinit,
                            int64_t m0, int mb, int32_t *BI) {
#if defined(LUTNB_SIMD_LOOKUP)
    for (int64_t s0 = 0; s0 < S; s0 += 16) {
        int64_t ns = S - s0 < 16 ? S - s0 : 16;
        __mmask16 cm = ns >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << ns) - 1);
        for (int r = 0; r * 16 < mb; r++) {
            __m512 x[16];
            for (int i = 0; i < 16; i++) {
                int l = 16 * r + i;
                x[i] = l < mb ? _mm512_maskz_loadu_ps(cm, (const float *)(xu + (m0 + l) * S + s0)) : _mm512_setzero_ps();
            }
            transpose16(x);
            for (int64_t j = 0; j < ns; j++) {
                int64_t s = s0 + j;
                __m512i xs = _mm512_castps_si512(x[j]);
                const uint32_t *cs = c2 + s * c;
                const int32_t *ci = cinit + s * c;
#if defined(__AVX512VBMI2__)
                if (c <= 16) {
                    /* |d| < 2^17 (|xq| <= 127, |cq| <= 63, v <= 4): 16 * d + k fits int32 and orders by (d, k), so
                     * one min keeps the lowest index among equal distances; vpshldd makes (d << 4) | k in one op */
                    __m512i best = _mm512_set1_epi32(0x7fffffff);
                    for (int64_t k = 0; k < c; k++) {
                        __m512i d = _mm512_dpbusd_epi32(_mm512_set1_epi32(ci[k]), xs, _mm512_set1_epi32((int)cs[k]));
                        best = _mm512_min_epi32(best, _mm512_shldi_epi32(d, _mm512_set1_epi32((int)((uint32_t)k << 28)), 4));
                    }
                    _mm512_storeu_si512((void *)(BI + s * RB + 16 * r), _mm512_and_si512(best, _mm512_set1_epi32(15)));
                    continue;
                }
#endif
                __m512i best = _mm512_dpbusd_epi32(_mm512_set1_epi32(ci[0]), xs, _mm512_set1_epi32((int)cs[0]));
                __m512i bi = _mm512_setzero_si512();
                for (int64_t k = 1; k < c; k++) {
                    __m512i d = _mm512_dpbusd_epi32(_mm512_set1_epi32(ci[k]), xs, _mm512_set1_epi32((int)cs[k]));
                    __mmask16 take = _mm512_cmplt_epi32_mask(d, best);
                    best = _mm512_min_epi32(d, best);
                    bi = _mm512_mask_mov_epi32(bi, take, _mm512_set1_epi32((int)k));
                }
                _mm512_storeu_si512((void *)(BI + s * RB + 16 * r), bi);
            }
        }
    }
#else
    for (int l = 0; l < mb; l++)
        for (int64_t s = 0; s < S; s++) {
            uint32_t w = xu[(m0 + l) * S + s];
            int32_t best = 0x7fffffff, bi = 0;
            for (int64_t k = 0; k < c; k++) {
                uint32_t cw = c2[s * c + k];
                int32_t d = cinit[s * c + k];
                for (int b = 0; b < 4; b++) d += (int32_t)((w >> (8 * b)) & 0xff) * (int32_t)(int8_t)((cw >> (8 * b)) & 0xff);
                if (d < best) { best = d; bi = (int32_t)k; }
            }
            BI[s * RB + l] = bi;
        }
#endif
    for (int64_t s = 0; s < S; s++)
        for (int l = mb; l < RB; l++) BI[s * RB + l] = 0;
}

/* INT8 encode + look-up (+ dequantize) for rows [m_begin, m_end): the outputs of lutnb_fused, codes from q8_encode_block. */
int lutnb_fused_q8(const uint32_t *xu, const uint32_t *c2, const int32_t *cinit, int64_t S, int64_t c,
                   const int8_t *tq8, const int8_t *t4, int64_t N, int wrap_bits, int64_t m_begin, int64_t m_end,
                   int64_t *idx, int64_t *out, const float *scale, const float *bias, float *y) {
    lookup_scratch t;
    if (scratch_alloc(&t, S, N)) return -1;
    for (int64_t m0 = m_begin; m0 < m_end; m0 += RB) {
        int mb = (int)(m_end - m0 < RB ? m_end - m0 : RB);
        q8_encode_block(xu, S, c, c2, cinit, m0, mb, t.BI);
        if (idx) store_idx(t.BI, mb, S, idx + m0 * S);
        lookup_block(t.BI, mb, S, c, tq8, t4, N, wrap_bits, m0, out, scale, bias, y, t.A, t.codes, NULL);
    }
    scratch_free(&t);
    return 0;
}

/* xq + 128 as uint8 for n float32 values (lutnb/deploy/q8.py: clamp(round(x / s), -127, 127), NaN -> 0), written
 * at dst: n_rows runs of `run` values, run r from x + r * run to dst + r * dst_stride (a padded or strided target).
 * Returns 1 when some value is NaN or infinite, else 0. */
int lutnb_quantize_u8(const float *x, int64_t n_rows, int64_t run, float s, uint8_t *dst, int64_t dst_stride) {
    int bad = 0;
#ifdef LUTNB_SIMD_ENCODE
    const __m512 fmax = _mm512_set1_ps(FLT_MAX);
    const __m512 absmask = _mm512_castsi512_ps(_mm512_set1_epi32(0x7fffffff));
    __mmask16 notfin = 0;
#endif
    for (int64_t r = 0; r < n_rows; r++) {
        const float *xr = x + r * run;
        uint8_t *d = dst + r * dst_stride;
        int64_t k = 0;
#ifdef LUTNB_SIMD_ENCODE
        const __m512 vs = _mm512_set1_ps(s), lo = _mm512_set1_ps(-127.0f), hi = _mm512_set1_ps(127.0f);
        const __m512i off = _mm512_set1_epi32(128);
        for (; k < run; k += 16) {
            int64_t nv = run - k;
            __mmask16 m = nv >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << nv) - 1);
            __m512 xv = _mm512_maskz_loadu_ps(m, xr + k);
            notfin |= _mm512_cmp_ps_mask(_mm512_and_ps(xv, absmask), fmax, _CMP_NLE_UQ);
            __m512 q = _mm512_div_ps(xv, vs);
            q = _mm512_roundscale_ps(q, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
            q = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(q, q, _CMP_UNORD_Q), q, _mm512_setzero_ps());
            q = _mm512_min_ps(_mm512_max_ps(q, lo), hi);
            __m512i qi = _mm512_add_epi32(_mm512_cvtps_epi32(q), off);
            _mm_mask_storeu_epi8(d + k, m, _mm512_cvtepi32_epi8(qi));
        }
#endif
        for (; k < run; k++) {
            bad |= !(fabsf(xr[k]) <= FLT_MAX);
            float q = nearbyintf(xr[k] / s);
            if (q != q) q = 0.0f;
            q = q < -127.0f ? -127.0f : (q > 127.0f ? 127.0f : q);
            d[k] = (uint8_t)((int)q + 128);
        }
    }
#ifdef LUTNB_SIMD_ENCODE
    bad |= notfin != 0;
#endif
    return bad;
}

/* im2col of a quantized NHWC uint8 input xq (B, H, W, C) into rows (B*Ho*Wo, Kp) uint8, K ordered (kh, kw, C)
 * (layout "channel"); taps outside the input and columns K..Kp hold 128 (xq = 0). Output rows [m_begin, m_end). */
static inline void copy_run(uint8_t *d, const uint8_t *src, int64_t C) {
#ifdef LUTNB_SIMD_ENCODE
    int64_t k = 0;
    for (; k + 16 <= C; k += 16) _mm_storeu_si128((__m128i *)(d + k), _mm_loadu_si128((const __m128i *)(src + k)));
    if (k < C) _mm_mask_storeu_epi8(d + k, (__mmask16)((1u << (C - k)) - 1), _mm_maskz_loadu_epi8((__mmask16)((1u << (C - k)) - 1), src + k));
#else
    memcpy(d, src, (size_t)C);
#endif
}

/* spill: dst0 has 64 writable bytes past the last row (wide stores may write past a run) */
static void im2col_u8_rows(const uint8_t *xq, int64_t H, int64_t W, int64_t C, int64_t kh, int64_t kw, int64_t sh,
                           int64_t sw, int64_t ph, int64_t pw, int64_t dh, int64_t dw, int64_t Ho, int64_t Wo,
                           int64_t Kp, int64_t m_begin, int64_t m_end, uint8_t *dst0, int spill) {
    int64_t K = kh * kw * C;
    int64_t b = m_begin / (Ho * Wo), rem = m_begin % (Ho * Wo), oh = rem / Wo, ow = rem % Wo;
    for (int64_t m = m_begin; m < m_end; m++) {
        uint8_t *dst = dst0 + (m - m_begin) * Kp;
        const uint8_t *xb = xq + b * H * W * C;
        int64_t iw0 = ow * sw - pw;
        int whole = dw == 1 && iw0 >= 0 && iw0 + kw <= W;  /* the kw taps of a kernel row are one run of kw*C bytes */
        for (int64_t i = 0; i < kh; i++) {
            int64_t ih = oh * sh - ph + i * dh;
            if (whole && ih >= 0 && ih < H) {
#ifdef LUTNB_SIMD_ENCODE
                if (spill && kw * C <= 64) {  /* one masked load, one full store (the bytes past the run are
                                               * overwritten later: runs are written in order, the buffer has slack) */
                    __mmask64 mk = kw * C == 64 ? ~(__mmask64)0 : (((__mmask64)1 << (kw * C)) - 1);
                    _mm512_storeu_si512((void *)(dst + i * kw * C), _mm512_maskz_loadu_epi8(mk, xb + (ih * W + iw0) * C));
                    continue;
                }
#endif
                copy_run(dst + i * kw * C, xb + (ih * W + iw0) * C, kw * C);
                continue;
            }
            for (int64_t j = 0; j < kw; j++) {
                int64_t iw = iw0 + j * dw;
                uint8_t *d = dst + (i * kw + j) * C;
                if (ih < 0 || ih >= H || iw < 0 || iw >= W) memset(d, 128, (size_t)C);
                else copy_run(d, xb + (ih * W + iw) * C, C);
            }
        }
        if (Kp > K) memset(dst + K, 128, (size_t)(Kp - K));
        if (++ow == Wo) { ow = 0; if (++oh == Ho) { oh = 0; b++; } }
    }
}

void lutnb_im2col_u8(const uint8_t *xq, int64_t H, int64_t W, int64_t C, int64_t kh, int64_t kw, int64_t sh,
                     int64_t sw, int64_t ph, int64_t pw, int64_t dh, int64_t dw, int64_t Ho, int64_t Wo, int64_t Kp,
                     int64_t m_begin, int64_t m_end, uint8_t *rows) {
    im2col_u8_rows(xq, H, W, C, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo, Kp, m_begin, m_end, rows + m_begin * Kp, 0);
}

/* the float32 im2col of rows [m_begin, m_end) of an NHWC float input into dst (row r at dst + r * K, K = kh*kw*C,
 * layout "channel"; taps outside the input are 0). Returns 1 when a copied value is NaN or infinite. */
static int im2col_f32_rows(const float *x, const lutnb_job *j, int64_t m_begin, int64_t m_end, float *dst0) {
    int64_t H = j->H, W = j->W, C = j->C, K = j->kh * j->kw * C;
    int64_t b = m_begin / (j->Ho * j->Wo), rem = m_begin % (j->Ho * j->Wo), oh = rem / j->Wo, ow = rem % j->Wo;
    int bad = 0;
    for (int64_t m = m_begin; m < m_end; m++) {
        float *dst = dst0 + (m - m_begin) * K;
        const float *xb = x + b * H * W * C;
        for (int64_t i = 0; i < j->kh; i++) {
            int64_t ih = oh * j->sh - j->ph + i * j->dh;
            for (int64_t q = 0; q < j->kw; q++) {
                int64_t iw = ow * j->sw - j->pw + q * j->dw;
                float *d = dst + (i * j->kw + q) * C;
                if (ih < 0 || ih >= H || iw < 0 || iw >= W) { memset(d, 0, sizeof(float) * (size_t)C); continue; }
                const float *src = xb + (ih * W + iw) * C;
                int64_t k = 0;
#ifdef LUTNB_SIMD_ENCODE
                const __m512 fmax = _mm512_set1_ps(FLT_MAX);
                const __m512 absmask = _mm512_castsi512_ps(_mm512_set1_epi32(0x7fffffff));
                __mmask16 nf = 0;
                for (; k < C; k += 16) {
                    int64_t nv = C - k;
                    __mmask16 mk = nv >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << nv) - 1);
                    __m512 v = _mm512_maskz_loadu_ps(mk, src + k);
                    nf |= _mm512_mask_cmp_ps_mask(mk, _mm512_and_ps(v, absmask), fmax, _CMP_NLE_UQ);
                    _mm512_mask_storeu_ps(d + k, mk, v);
                }
                bad |= nf != 0;
#endif
                for (; k < C; k++) { d[k] = src[k]; bad |= !(fabsf(src[k]) <= FLT_MAX); }
            }
        }
        if (++ow == j->Wo) { ow = 0; if (++oh == j->Ho) { oh = 0; b++; } }
    }
    return bad;
}

/* INT8-encode job for output rows [m_begin, m_end): im2col of the uint8 NHWC input j->x per row block (kh > 0; or rows
 * (M, Kp = 4S) uint8 given in j->x when kh == 0; or float32 rows (M, K) quantized per block when xs > 0), encode,
 * look-up, epilogue. Returns -1 out of memory, else bit 0: some output value NaN / inf; bit 1: a float input
 * value NaN / inf (xs > 0). */
int lutnb_job_q8(const lutnb_job *j, int64_t m_begin, int64_t m_end) {
    lookup_scratch t;
    if (scratch_alloc(&t, j->S, j->N)) return -1;
    uint8_t *X8 = NULL;
    if ((j->kh > 0 || j->xs > 0) && !(X8 = (uint8_t *)aligned_alloc(64, (size_t)(RB * j->Kp + 127) / 64 * 64))) {
        scratch_free(&t);
        return -1;
    }
    int flags = 0;
    for (int64_t m0 = m_begin; m0 < m_end; m0 += RB) {
        int mb = (int)(m_end - m0 < RB ? m_end - m0 : RB);
        const uint32_t *xu;
        int64_t r0 = m0;
        if (j->xs > 0) {  /* float rows: quantize the block (xq + 128, 128 in the padded columns K..Kp) */
            if (lutnb_quantize_u8((const float *)j->x + m0 * j->K, mb, j->K, j->xs, X8, j->Kp)) flags |= 2;
            if (j->Kp > j->K)
                for (int l = 0; l < mb; l++) memset(X8 + (int64_t)l * j->Kp + j->K, 128, (size_t)(j->Kp - j->K));
            xu = (const uint32_t *)X8;
            r0 = 0;
        } else if (X8) {
            im2col_u8_rows((const uint8_t *)j->x, j->H, j->W, j->C, j->kh, j->kw, j->sh, j->sw, j->ph, j->pw, j->dh,
                           j->dw, j->Ho, j->Wo, j->Kp, m0, m0 + mb, X8, 1);
            xu = (const uint32_t *)X8;
            r0 = 0;
        } else {
            xu = (const uint32_t *)j->x;
        }
        q8_encode_block(xu, j->S, j->c, j->c2, j->cinit, r0, mb, t.BI);
        flags |= lookup_block(t.BI, mb, j->S, j->c, j->tq8, j->t4, j->N, (int)j->wrap_bits, m0, NULL, NULL, NULL, NULL,
                              t.A, t.codes, j);
    }
    free(X8);
    scratch_free(&t);
    return flags;
}

/* float32-encode job: the same with the float encode of lutnb_fused; input float32 NHWC (kh > 0, layout "channel") or
 * rows (M, K) (kh == 0). Bit 1 of the result: some input value NaN / inf (the caller applies the NaN-row policy). */
int lutnb_job_f32(const lutnb_job *j, int64_t m_begin, int64_t m_end) {
    if (j->v > 64) return -2;
    lookup_scratch t;
    if (scratch_alloc(&t, j->S, j->N)) return -1;
    float *X = (float *)malloc(sizeof(float) * (size_t)(16 * j->v) * RB);
    float *R = j->kh > 0 ? (float *)malloc(sizeof(float) * (size_t)(RB * j->K)) : NULL;
    if (!X || (j->kh > 0 && !R)) { free(X); free(R); scratch_free(&t); return -1; }
    int flags = 0;
    for (int64_t m0 = m_begin; m0 < m_end; m0 += RB) {
        int mb = (int)(m_end - m0 < RB ? m_end - m0 : RB);
        if (R) {
            if (im2col_f32_rows((const float *)j->x, j, m0, m0 + mb, R)) flags |= 2;
            encode_rows_block(R, j->K, 0, mb, j->cb, j->S, j->c, j->v, (int)j->metric, (int)j->cb_finite, X, t.BI);
        } else if (!encode_rows_block((const float *)j->x, j->K, m0, mb, j->cb, j->S, j->c, j->v, (int)j->metric,
                                      (int)j->cb_finite, X, t.BI)) {
            flags |= 2;
        }
        flags |= lookup_block(t.BI, mb, j->S, j->c, j->tq8, j->t4, j->N, (int)j->wrap_bits, m0, NULL, NULL, NULL, NULL,
                              t.A, t.codes, j);
    }
    free(X);
    free(R);
    scratch_free(&t);
    return flags;
}

/* out[i] = x[i] * alpha[i % C] + beta[i % C] for n values (fmaf when fma): lets lutnb.deploy.fusion check which
 * rounding torch's BatchNorm uses before fusing it into the epilogue. */
void lutnb_affine_f32(const float *x, int64_t n, int64_t C, const float *alpha, const float *beta, int fma, float *out) {
    for (int64_t i = 0; i < n; i++) {
        int64_t ch = i % C;
        out[i] = fma ? fmaf(x[i], alpha[ch], beta[ch]) : x[i] * alpha[ch] + beta[ch];
    }
}

/* ---------------------------------------------------------------------------------------------------------------
 * One thread pool: built with -fopenmp, this library shares the OpenMP runtime torch loaded (torch's libgomp.so.1
 * has the same soname, so the loader binds this library to the copy already in the process): the row ranges
 * of a layer run on the same worker threads as torch's own ops, in one C call. */
#ifdef _OPENMP
#include <omp.h>
int lutnb_openmp(void) { return 1; }

/* kind 0: lutnb_job_q8, 1: lutnb_job_f32, over M rows in ranges of multiples of RB on nthreads threads */
int lutnb_job_par(int kind, const lutnb_job *j, int64_t M, int nthreads) {
    int flags = 0, err = 0;
#pragma omp parallel num_threads(nthreads) reduction(| : flags) reduction(min : err)
    {
        int t = omp_get_thread_num(), nt = omp_get_num_threads();
        int64_t chunk = (M + nt - 1) / nt;
        chunk = (chunk + RB - 1) / RB * RB;
        int64_t a = (int64_t)t * chunk, b = a + chunk < M ? a + chunk : M;
        if (a < b) {
            int rc = kind == 0 ? lutnb_job_q8(j, a, b) : lutnb_job_f32(j, a, b);
            if (rc < 0) err = rc; else flags |= rc;
        }
    }
    return err < 0 ? err : flags;
}

/* lutnb_quantize_u8 of n_rows rows of `run` values on nthreads threads (contiguous source and target rows) */
int lutnb_quantize_par(const float *x, int64_t n_rows, int64_t run, float s, uint8_t *dst, int64_t dst_stride,
                       int nthreads) {
    int bad = 0;
#pragma omp parallel num_threads(nthreads) reduction(| : bad)
    {
        int t = omp_get_thread_num(), nt = omp_get_num_threads();
        int64_t chunk = (n_rows + nt - 1) / nt;
        int64_t a = (int64_t)t * chunk, b = a + chunk < n_rows ? a + chunk : n_rows;
        if (a < b) bad |= lutnb_quantize_u8(x + a * run, b - a, run, s, dst + a * dst_stride, dst_stride);
    }
    return bad;
}
#else
int lutnb_openmp(void) { return 0; }
#endif
