/* GEMM on the CPU: f32 through ct_sgemm (oneDNN or OpenBLAS, kernels/cpu/cpu_sgemm.h), f64 through
 * OpenBLAS's dgemm.
 *
 * Debian's OpenBLAS has no bf16 GEMM, so narrow operands go through f32 tiles: a bf16 or i8 a,
 * a bf16, f16 or i8 b and a bf16 c are converted a block at a time into scratch memory (a nested
 * scope), never as whole matrices. C is cut into tiles of up to TILE_M rows (when a or c is
 * narrow) by TILE_N columns (when b or c is narrow); each tile is one sgemm over K (or, for a
 * narrow b, over K in slices of TILE_K accumulated into the tile), fed with the rows of op(a)
 * and the columns of op(b) it needs, widened, and a bf16 tile is rounded into c afterwards.
 * Loops run over column blocks outside and row blocks inside, so a narrow b is widened once
 * (once per row block when K is cut); a narrow a is widened once per column block, which at
 * TILE_N columns costs under 1% of the GEMM's time. f32 operands are used in place.
 *
 * bf16 x bf16 skips all that where the CPU multiplies bf16 in hardware (AVX512-BF16, through
 * oneDNN: kernels/cpu/cpu_bf16_gemm.h): twice the f32 rate on the model's shapes. */
#include <cblas.h>
#include <omp.h>
#include <string.h>

#include "core/arena.h"
#include "core/error.h"
#include "kernels/cpu/cpu_bf16_gemm.h"
#include "kernels/cpu/cpu_kernels.h"
#include "kernels/cpu/cpu_sgemm.h"

#define TILE_M 256
#define TILE_N 1024
#define TILE_K 8192

static int gemm_real(const ct_tensor *a, bool ta, const ct_tensor *b, bool tb, ct_tensor *c, double alpha,
                     double beta) {
    /* a and b are [rows, cols] in memory (leading dimensions flattened); op(a) is [M, K]. */
    int64_t a_rows = ct_rows(a), a_cols = ct_cols(a);
    int64_t M = ta ? a_cols : a_rows, K = ta ? a_rows : a_cols;
    int64_t N = tb ? ct_rows(b) : ct_cols(b);
    if (M == 0 || N == 0) return 0;
    enum CBLAS_TRANSPOSE op_a = ta ? CblasTrans : CblasNoTrans, op_b = tb ? CblasTrans : CblasNoTrans;
    if (a->dtype == CT_F64)
        cblas_dgemm(CblasRowMajor, op_a, op_b, (blasint)M, (blasint)N, (blasint)K, alpha, a->data,
                    (blasint)a_cols, b->data, (blasint)ct_cols(b), beta, c->data, (blasint)N);
    else
        ct_sgemm(ta, tb, M, N, K, (float)alpha, a->data, a_cols, b->data, ct_cols(b), (float)beta, c->data, N);
    return 0;
}

/* Scale of element (row, col) of an i8 tensor: one per row, or one per scale_block of a row. */
static float i8_scale(const ct_tensor *t, int64_t row, int64_t col, int64_t cols) {
    if (!t->scale) return 1.0f;
    const float *s = t->scale->data;
    if (!t->scale_block) return s[row];
    return s[row * ((cols + t->scale_block - 1) / t->scale_block) + col / t->scale_block];
}

/* q[c] * s for c < n: one multiply per element, vectorized (the scale is constant over the run). */
CT_CPU_CLONES_VECTORIZED static void scale_i8_run(const int8_t *restrict q, float s, int64_t n, float *restrict out) {
    for (int64_t c = 0; c < n; c++) out[c] = (float)q[c] * s;
}

/* Columns [c0, c0 + nc) of row `row` of an i8 tensor as f32: runs of one scale each (the whole
 * span when the scale is per row), so the loop over a run vectorizes. A per-element scale lookup
 * widened at about 2 GB/s: a one-token INT8 matmul took 12x the f32 one's time with the weight
 * in cache, 3x with it read from memory (bench_int8_gemm). */
static void widen_i8_row(const int8_t *q, const ct_tensor *t, int64_t row, int64_t c0, int64_t nc, int64_t cols,
                         float *out) {
    if (!t->scale) {
        scale_i8_run(q, 1.0f, nc, out);
        return;
    }
    const int64_t block = t->scale_block ? t->scale_block : cols;
    for (int64_t c = 0; c < nc;) {
        const int64_t run = ct_cpu_min64(nc - c, block - (c0 + c) % block);
        scale_i8_run(q + c, i8_scale(t, row, c0 + c, cols), run, out + c);
        c += run;
    }
}

/* Rows [r0, r0 + nr) x columns [c0, c0 + nc) of t (viewed as [rows, cols]) as f32, into the
 * contiguous [nr, nc] dst. */
static void widen_block(const ct_tensor *t, int64_t r0, int64_t nr, int64_t c0, int64_t nc, float *dst) {
    int64_t cols = ct_cols(t);
#pragma omp parallel for schedule(static) if (nr * nc > CT_CPU_PARALLEL_MIN)
    for (int64_t r = 0; r < nr; r++) {
        int64_t at = (r0 + r) * cols + c0;
        float *out = dst + r * nc;
        switch (t->dtype) {
        case CT_F32: memcpy(out, (const float *)t->data + at, (size_t)nc * sizeof(float)); break;
        case CT_BF16: ct_bf16_to_f32_array((const uint16_t *)t->data + at, out, nc); break;
        case CT_F16:
            for (int64_t c = 0; c < nc; c++) out[c] = ct_f16_to_f32(((const uint16_t *)t->data)[at + c]);
            break;
        default: /* i8: q * scale, the product rounded once, as ct_get gives it */
            widen_i8_row((const int8_t *)t->data + at, t, r0 + r, c0, nc, cols, out);
            break;
        }
    }
}

void ct_cpu_widen_rows(const ct_tensor *t, int64_t r0, int64_t nr, float *dst) {
    widen_block(t, r0, nr, 0, ct_cols(t), dst);
}

/* The inverse for a bf16 c: rounds the [nr, nc] src into rows r0.. and columns c0.. of t. */
static void narrow_block(const float *src, ct_tensor *t, int64_t r0, int64_t nr, int64_t c0, int64_t nc) {
    int64_t cols = ct_cols(t);
#pragma omp parallel for schedule(static) if (nr * nc > CT_CPU_PARALLEL_MIN)
    for (int64_t r = 0; r < nr; r++)
        ct_f32_to_bf16_array(src + r * nc, (uint16_t *)t->data + (r0 + r) * cols + c0, nc);
}

/* An f32 view of the part of an operand one tile needs: `data` with leading dimension `ld`. */
typedef struct {
    const float *data;
    int64_t ld;
} f32_view;

/* The part of operand t that covers indices [i0, i0 + n) of its non-K dimension (op(a)'s rows,
 * op(b)'s columns) and entries [k0, k0 + nk) of K. `along_rows` says whether that dimension runs
 * along t's memory rows (a without transpose, b transposed) or along its columns. */
static f32_view operand_part(const ct_tensor *t, bool along_rows, int64_t i0, int64_t n, int64_t k0, int64_t nk,
                             float *scratch) {
    int64_t cols = ct_cols(t);
    if (t->dtype == CT_F32)
        return (f32_view){(const float *)t->data + (along_rows ? i0 * cols + k0 : k0 * cols + i0), cols};
    if (along_rows) {
        widen_block(t, i0, n, k0, nk, scratch);
        return (f32_view){scratch, nk};
    }
    widen_block(t, k0, nk, i0, n, scratch);
    return (f32_view){scratch, n};
}

static int gemm_tiled(const ct_tensor *a, bool ta, const ct_tensor *b, bool tb, ct_tensor *c, double alpha,
                      double beta) {
    int64_t M = ta ? ct_cols(a) : ct_rows(a), K = ta ? ct_rows(a) : ct_cols(a);
    int64_t N = tb ? ct_rows(b) : ct_cols(b);
    if (M == 0 || N == 0) return 0;
    bool a_narrow = a->dtype != CT_F32, b_narrow = b->dtype != CT_F32, c_narrow = c->dtype != CT_F32;
    int64_t tile_m = a_narrow || c_narrow ? ct_cpu_min64(M, TILE_M) : M;
    int64_t tile_n = b_narrow || c_narrow ? ct_cpu_min64(N, TILE_N) : N;
    /* K is cut too when a narrow b is long along it (an lm_head's vocabulary in the input
     * gradient): its tile stays TILE_K x TILE_N, never the whole weight. Uncut, b's tile is
     * widened once per column block; cut, once per row block too. */
    int64_t tile_k = b_narrow ? ct_cpu_min64(K, TILE_K) : K;
    if (tile_k < 1) tile_k = 1; /* K == 0: one pass that scales c by beta */
    const bool b_once = tile_k >= K;
    float *a_tile = a_narrow ? ct_arena_alloc(sizeof(float) * (size_t)(tile_m * tile_k) + 1) : NULL;
    float *b_tile = b_narrow ? ct_arena_alloc(sizeof(float) * (size_t)(tile_n * tile_k) + 1) : NULL;
    float *c_tile = c_narrow ? ct_arena_alloc(sizeof(float) * (size_t)(tile_m * tile_n)) : NULL;
    if ((a_narrow && !a_tile) || (b_narrow && !b_tile) || (c_narrow && !c_tile)) return -1;
    for (int64_t n0 = 0; n0 < N; n0 += tile_n) {
        int64_t nn = ct_cpu_min64(tile_n, N - n0);
        f32_view bv = b_once ? operand_part(b, tb, n0, nn, 0, K, b_tile) : (f32_view){NULL, 0};
        for (int64_t m0 = 0; m0 < M; m0 += tile_m) {
            int64_t mm = ct_cpu_min64(tile_m, M - m0);
            f32_view cv = {(const float *)c->data + m0 * N + n0, N};
            if (c_narrow) {
                if (beta != 0) widen_block(c, m0, mm, n0, nn, c_tile);
                cv = (f32_view){c_tile, nn};
            }
            for (int64_t k0 = 0; k0 == 0 || k0 < K; k0 += tile_k) {
                int64_t kk = ct_cpu_min64(tile_k, K - k0);
                if (!b_once) bv = operand_part(b, tb, n0, nn, k0, kk, b_tile);
                f32_view av = operand_part(a, !ta, m0, mm, k0, kk, a_tile);
                ct_sgemm(ta, tb, mm, nn, kk, (float)alpha, av.data, av.ld, bv.data, bv.ld, k0 == 0 ? (float)beta : 1.0f,
                         (float *)cv.data, cv.ld);
            }
            if (c_narrow) narrow_block(c_tile, c, m0, mm, n0, nn);
        }
    }
    return 0;
}

/* ---- a few rows against an i8 weight ----
 * Generation and scoring with a KV cache multiply one token (or a few) by each weight. The tiled
 * path widens an i8 weight into f32 tiles first: for one row that writes and reads four times the
 * bytes of the weight itself, and a Qwen2.5-0.5B-sized projection still took 4x the f32
 * matmul's time with the weights in cache (bench_int8_gemm). Here each weight row is widened
 * into a buffer that stays in L1 (q * scale, the values the tiles would hold) and dotted with
 * every row of A: the int8 weight is the only large read. */
#define I8_ROWS_MAX 4

CT_CPU_CLONES static float dot_f32_run(const float *restrict x, const float *restrict w, int64_t n) {
    float total = 0;
#pragma omp simd reduction(+ : total)
    for (int64_t k = 0; k < n; k++) total += x[k] * w[k];
    return total;
}

/* Row n of the weight, widened into w (K floats, in cache), against every row of A: acc[M]. */
static void i8_row_dots(const ct_tensor *a, const ct_tensor *b, int64_t n, float *w, float *acc) {
    const int64_t M = ct_rows(a), K = ct_cols(a);
    widen_i8_row((const int8_t *)b->data + n * K, b, n, 0, K, K, w);
    for (int64_t m = 0; m < M; m++) acc[m] = dot_f32_run((const float *)a->data + m * K, w, K);
}

/* C = alpha * A · Bᵀ + beta * C for f32 A with at most I8_ROWS_MAX rows, an i8 B [N, K] used
 * transposed (a weight), f32 C: 0 done, 1 not this case. */
static int gemm_i8_few_rows(const ct_tensor *a, bool ta, const ct_tensor *b, bool tb, ct_tensor *c, double alpha,
                            double beta) {
    if (a->dtype != CT_F32 || ta || b->dtype != CT_I8 || !tb || c->dtype != CT_F32 || ct_rows(a) > I8_ROWS_MAX)
        return 1;
    const int64_t M = ct_rows(a), N = ct_rows(b), K = ct_cols(a);
    const int threads = omp_get_max_threads();
    float *rows = ct_arena_alloc(sizeof(float) * (size_t)(K * threads) + 1); /* one widened row a thread */
    if (!rows) return -1;
    float *out = c->data;
#pragma omp parallel for schedule(static) if (N * K > CT_CPU_PARALLEL_MIN)
    for (int64_t n = 0; n < N; n++) {
        float acc[I8_ROWS_MAX];
        i8_row_dots(a, b, n, rows + (int64_t)omp_get_thread_num() * K, acc);
        for (int64_t m = 0; m < M; m++) {
            float *y = out + m * N + n;
            *y = beta != 0 ? (float)alpha * acc[m] + (float)beta * *y : (float)alpha * acc[m];
        }
    }
    return 0;
}

/* bf16 x bf16, into f32 or bf16, in hardware where the CPU has AVX512-BF16
 * (kernels/cpu/cpu_bf16_gemm.h): 0 done, 1 not taken (the caller widens), -1 error. An f32
 * operand is never rounded here: mixed precision's backward rounds its output gradient itself
 * (autograd/op_matmul.c), and an f32 activation beside a frozen bf16 weight stays f32. */
static int gemm_bf16_hardware(const ct_tensor *a, bool ta, const ct_tensor *b, bool tb, ct_tensor *c, double alpha,
                              double beta) {
    if (a->dtype != CT_BF16 || b->dtype != CT_BF16 || alpha != 1.0 || (beta != 0.0 && beta != 1.0)) return 1;
    int64_t M = ta ? ct_cols(a) : ct_rows(a), K = ta ? ct_rows(a) : ct_cols(a);
    int64_t N = tb ? ct_rows(b) : ct_cols(b);
    return ct_cpu_bf16_gemm(ta, tb, M, N, K, a->data, ct_cols(a), b->data, ct_cols(b), beta != 0.0, c->data,
                            c->dtype == CT_BF16);
}

/* Mixed dtypes go through f32 tiles. a is the weight itself in the backward of a matmul with a
 * transposed a (gemm(b, ..., dc, ...)), so it may be i8 as well. */
static bool tiled_dtypes_ok(ct_dtype a, ct_dtype b, ct_dtype c) {
    bool a_ok = a == CT_F32 || a == CT_BF16 || a == CT_I8;
    bool b_ok = b == CT_F32 || b == CT_BF16 || b == CT_F16 || b == CT_I8;
    return a_ok && b_ok && (c == CT_F32 || c == CT_BF16);
}

int ct_cpu_gemm(const ct_tensor *a, bool ta, const ct_tensor *b, bool tb, ct_tensor *c, double alpha,
                double beta) {
    if (a->dtype == b->dtype && a->dtype == c->dtype && (a->dtype == CT_F32 || a->dtype == CT_F64))
        return gemm_real(a, ta, b, tb, c, alpha, beta);
    if (!tiled_dtypes_ok(a->dtype, b->dtype, c->dtype))
        return ct_fail("gemm: %s a, %s b, %s c: either all f64, or a f32/bf16/i8, b f32/bf16/f16/i8 and c f32/bf16",
                       ct_dtype_name(a->dtype), ct_dtype_name(b->dtype), ct_dtype_name(c->dtype));
    int status = gemm_bf16_hardware(a, ta, b, tb, c, alpha, beta);
    if (status != 1) return status;
    CT_TRY(ct_scope_begin());
    status = gemm_i8_few_rows(a, ta, b, tb, c, alpha, beta);
    if (status == 1) status = gemm_tiled(a, ta, b, tb, c, alpha, beta);
    ct_scope_end();
    return status;
}
