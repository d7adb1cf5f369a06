/* Fused causal attention on the CPU: flash-attention style blocking over OpenMP and CBLAS.
 *
 * Queries and keys are cut into blocks of ATTN_BLOCK rows. Forward: each (batch, query head,
 * query block) is one work item; it walks the key blocks with an online softmax (running row max
 * m and sum l, rescaling the output accumulator when m grows), so only a block x block tile of
 * scores exists at a time, and writes out and the row logsumexp. Backward: each (batch, kv head,
 * range of key blocks) is one work item that owns the dK / dV rows of its range, walks the query
 * heads of its group and the query blocks, recomputes P = exp(scale q k^T - lse) and adds
 *   dV += P^T dO,  dS = P * (dO V^T - delta),  dQ += scale dS K,  dK += scale dS^T Q
 * with delta = rowsum(dO * O). No atomics: when (batch, kv head) pairs are too few to keep the
 * threads busy, key ranges are split and each range writes dQ into its own buffer, summed in
 * range order afterwards, so results never depend on scheduling.
 *
 * Visibility is decided per element from position and segment ids, but whole tiles are skipped
 * (or taken without per-element checks) from per-block min / max summaries, which for ordinary
 * causal rows skips the upper triangle. The tile products run on strided views of q, k, v (no
 * copies), f32 through ct_sgemm (oneDNN when the matmuls use it: about 4% less CPU time for a
 * pretraining step of the tiny model than OpenBLAS's tiles, docs/PERF.md) and f64 through
 * OpenBLAS's dgemm; inside the parallel region either runs single-threaded.
 * bf16 q, k, v are widened to f32 copies first (the end of this file). */
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdbool.h>
#include <string.h>

#include "core/arena.h"
#include "core/error.h"
#include "kernels/cpu/cpu_kernels.h"
#include "kernels/cpu/cpu_sgemm.h"

#define ATTN_BLOCK 64

enum { TILE_SKIP, TILE_PARTIAL, TILE_FULL };

typedef struct {
    int64_t B, T, S, Hq, Hkv, D, group, nqb, nkb;
    const int32_t *q_pos, *k_pos, *q_seg, *k_seg; /* segments may be NULL */
    /* per (batch, block): min / max of positions and segments, [B * nqb] and [B * nkb] */
    int32_t *qpos_min, *qpos_max, *qseg_min, *qseg_max;
    int32_t *kpos_min, *kpos_max, *kseg_min, *kseg_max;
} attn_plan;

static void block_summary(const int32_t *ids, int64_t B, int64_t n, int64_t nblocks, int32_t *lo, int32_t *hi) {
    for (int64_t b = 0; b < B; b++)
        for (int64_t blk = 0; blk < nblocks; blk++) {
            int64_t start = blk * ATTN_BLOCK, end = start + ATTN_BLOCK < n ? start + ATTN_BLOCK : n;
            int32_t mn = ids[b * n + start], mx = mn;
            for (int64_t i = start + 1; i < end; i++) {
                int32_t x = ids[b * n + i];
                mn = x < mn ? x : mn;
                mx = x > mx ? x : mx;
            }
            lo[b * nblocks + blk] = mn;
            hi[b * nblocks + blk] = mx;
        }
}

/* Fills the plan; the summaries come from the current scope's arena. */
static int plan_init(attn_plan *p, const ct_tensor *q, const ct_tensor *k, const ct_tensor *q_pos,
                     const ct_tensor *k_pos, const ct_tensor *q_seg, const ct_tensor *k_seg) {
    *p = (attn_plan){.B = q->shape[0], .T = q->shape[1], .S = k->shape[1], .Hq = q->shape[2], .Hkv = k->shape[2],
                     .D = q->shape[3]};
    p->group = p->Hq / p->Hkv;
    p->nqb = (p->T + ATTN_BLOCK - 1) / ATTN_BLOCK;
    p->nkb = (p->S + ATTN_BLOCK - 1) / ATTN_BLOCK;
    p->q_pos = q_pos->data;
    p->k_pos = k_pos->data;
    p->q_seg = q_seg ? q_seg->data : NULL;
    p->k_seg = k_seg ? k_seg->data : NULL;
    size_t nq = (size_t)(p->B * p->nqb), nk = (size_t)(p->B * p->nkb);
    int32_t *buf = ct_arena_alloc(sizeof(int32_t) * 4 * (nq + nk) + 1);
    if (!buf) return -1;
    p->qpos_min = buf, p->qpos_max = buf + nq, p->qseg_min = buf + 2 * nq, p->qseg_max = buf + 3 * nq;
    buf += 4 * nq;
    p->kpos_min = buf, p->kpos_max = buf + nk, p->kseg_min = buf + 2 * nk, p->kseg_max = buf + 3 * nk;
    block_summary(p->q_pos, p->B, p->T, p->nqb, p->qpos_min, p->qpos_max);
    block_summary(p->k_pos, p->B, p->S, p->nkb, p->kpos_min, p->kpos_max);
    if (p->q_seg) {
        block_summary(p->q_seg, p->B, p->T, p->nqb, p->qseg_min, p->qseg_max);
        block_summary(p->k_seg, p->B, p->S, p->nkb, p->kseg_min, p->kseg_max);
    }
    return 0;
}

/* Whether query block i of row b sees none, some or all of key block j. */
static int tile_kind(const attn_plan *p, int64_t b, int64_t i, int64_t j) {
    int64_t qi = b * p->nqb + i, kj = b * p->nkb + j;
    if (p->kpos_min[kj] > p->qpos_max[qi]) return TILE_SKIP;
    bool full = p->kpos_max[kj] <= p->qpos_min[qi];
    if (p->q_seg) {
        if (p->kseg_max[kj] < p->qseg_min[qi] || p->kseg_min[kj] > p->qseg_max[qi]) return TILE_SKIP;
        full = full && p->qseg_min[qi] == p->qseg_max[qi] && p->kseg_min[kj] == p->kseg_max[kj] &&
               p->qseg_min[qi] == p->kseg_min[kj];
    }
    return full ? TILE_FULL : TILE_PARTIAL;
}

static inline bool visible(const attn_plan *p, int64_t b, int64_t t, int64_t s) {
    if (p->k_pos[b * p->S + s] > p->q_pos[b * p->T + t]) return false;
    return !p->q_seg || p->q_seg[b * p->T + t] == p->k_seg[b * p->S + s];
}

/* Splits the key blocks into `n` contiguous ranges of about equal tile work (counted over all
 * query heads of a group and all rows), so that split ranges keep the threads evenly loaded. */
static void split_key_blocks(const attn_plan *p, int64_t n, int64_t *start) {
    double total = 0;
    for (int64_t j = 0; j < p->nkb; j++)
        for (int64_t b = 0; b < p->B; b++)
            for (int64_t i = 0; i < p->nqb; i++) total += tile_kind(p, b, i, j) != TILE_SKIP;
    double done = 0;
    int64_t c = 1;
    start[0] = 0;
    for (int64_t j = 0; j < p->nkb && c < n; j++) {
        for (int64_t b = 0; b < p->B; b++)
            for (int64_t i = 0; i < p->nqb; i++) done += tile_kind(p, b, i, j) != TILE_SKIP;
        while (c < n && done >= total * (double)c / (double)n) start[c++] = j + 1;
    }
    while (c < n) start[c++] = p->nkb;
    start[n] = p->nkb;
}

/* Row helpers of the softmax, the only non-GEMM work per score. f32 uses ct_cpu_expf: glibc's
 * expf is scalar, and one exp per score would otherwise cost as much as the GEMMs; it returns
 * exactly 0 for masked (-inf) scores. The clones pick AVX-512 or AVX2 at load time; the baseline
 * build only promises SSE2. */
CT_CPU_CLONES static float row_max_f32(const float *row, int64_t n, float mx) {
    _Pragma("omp simd reduction(max : mx)") for (int64_t c = 0; c < n; c++) mx = row[c] > mx ? row[c] : mx;
    return mx;
}
static double row_max_f64(const double *row, int64_t n, double mx) {
    for (int64_t c = 0; c < n; c++) mx = row[c] > mx ? row[c] : mx;
    return mx;
}

/* row = exp(row - shift); returns the sum. */
CT_CPU_CLONES static float exp_shift_sum_f32(float *row, int64_t n, float shift) {
    float sum = 0;
    _Pragma("omp simd reduction(+ : sum)") for (int64_t c = 0; c < n; c++) {
        float e = ct_cpu_expf(row[c] - shift);
        row[c] = e;
        sum += e;
    }
    return sum;
}
static double exp_shift_sum_f64(double *row, int64_t n, double shift) {
    double sum = 0;
    for (int64_t c = 0; c < n; c++) sum += row[c] = exp(row[c] - shift);
    return sum;
}

/* Backward: p = exp(s - lse) in place, and dp becomes dS = p * (dp - delta). */
CT_CPU_CLONES static void softmax_grad_f32(float *s, float *dp, int64_t n, float lse, float delta) {
    _Pragma("omp simd") for (int64_t c = 0; c < n; c++) {
        float e = ct_cpu_expf(s[c] - lse);
        s[c] = e;
        dp[c] = e * (dp[c] - delta);
    }
}
static void softmax_grad_f64(double *s, double *dp, int64_t n, double lse, double delta) {
    for (int64_t c = 0; c < n; c++) {
        double e = exp(s[c] - lse);
        s[c] = e;
        dp[c] = e * (dp[c] - delta);
    }
}

#define MIN64(a, b) ((a) < (b) ? (a) : (b))

#define DEFINE_ATTENTION(REAL, SUFFIX, GEMM, EXP, LOG)                                                                \
    /* One (batch, query head, query block): online softmax over the visible key blocks. */                           \
    static void forward_item_##SUFFIX(const attn_plan *p, const REAL *q, const REAL *k, const REAL *v, REAL scale,    \
                                      int64_t b, int64_t h, int64_t i, REAL *s, REAL *acc, REAL *m, REAL *l,          \
                                      REAL *out, REAL *lse) {                                                         \
        const int64_t D = p->D, ldq = p->Hq * D, ldk = p->Hkv * D, hk = h / p->group;                                 \
        const int64_t t0 = i * ATTN_BLOCK, rows = MIN64(ATTN_BLOCK, p->T - t0);                                       \
        const REAL *q0 = q + ((b * p->T + t0) * p->Hq + h) * D;                                                       \
        for (int64_t r = 0; r < rows; r++) m[r] = -INFINITY, l[r] = 0;                                                \
        memset(acc, 0, sizeof(REAL) * (size_t)(rows * D));                                                            \
        for (int64_t j = 0; j < p->nkb; j++) {                                                                        \
            int kind = tile_kind(p, b, i, j);                                                                         \
            if (kind == TILE_SKIP) continue;                                                                          \
            const int64_t s0 = j * ATTN_BLOCK, cols = MIN64(ATTN_BLOCK, p->S - s0);                                   \
            const REAL *k0 = k + ((b * p->S + s0) * p->Hkv + hk) * D, *v0 = v + ((b * p->S + s0) * p->Hkv + hk) * D;  \
            GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, (blasint)rows, (blasint)cols, (blasint)D, scale, q0,        \
                 (blasint)ldq, k0, (blasint)ldk, 0, s, ATTN_BLOCK);                                                   \
            for (int64_t r = 0; r < rows; r++) {                                                                      \
                REAL *row = s + r * ATTN_BLOCK;                                                                       \
                if (kind == TILE_PARTIAL)                                                                             \
                    for (int64_t c = 0; c < cols; c++)                                                                \
                        if (!visible(p, b, t0 + r, s0 + c)) row[c] = -INFINITY;                                       \
                REAL mx = row_max_##SUFFIX(row, cols, m[r]);                                                          \
                if (mx == -INFINITY) { /* nothing visible yet: the row adds nothing */                                \
                    memset(row, 0, sizeof(REAL) * (size_t)cols);                                                      \
                    continue;                                                                                         \
                }                                                                                                     \
                REAL sum = exp_shift_sum_##SUFFIX(row, cols, mx);                                                     \
                if (mx != m[r]) {                                                                                     \
                    REAL alpha = EXP(m[r] - mx);                                                                      \
                    l[r] *= alpha;                                                                                    \
                    for (int64_t d = 0; d < D; d++) acc[r * D + d] *= alpha;                                          \
                    m[r] = mx;                                                                                        \
                }                                                                                                     \
                l[r] += sum;                                                                                          \
            }                                                                                                         \
            GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, (blasint)rows, (blasint)D, (blasint)cols, 1, s,           \
                 ATTN_BLOCK, v0, (blasint)ldk, 1, acc, (blasint)D);                                                   \
        }                                                                                                             \
        for (int64_t r = 0; r < rows; r++) {                                                                          \
            REAL *o = out + ((b * p->T + t0 + r) * p->Hq + h) * D;                                                    \
            REAL inv = l[r] > 0 ? 1 / l[r] : 0;                                                                       \
            for (int64_t d = 0; d < D; d++) o[d] = acc[r * D + d] * inv;                                              \
            lse[(b * p->Hq + h) * p->T + t0 + r] = l[r] > 0 ? m[r] + LOG(l[r]) : -INFINITY;                           \
        }                                                                                                             \
    }                                                                                                                 \
                                                                                                                      \
    static void forward_##SUFFIX(const attn_plan *p, const REAL *q, const REAL *k, const REAL *v, REAL scale,         \
                                 REAL *out, REAL *lse, REAL *scratch, int64_t per_thread) {                           \
        const int64_t heads = p->B * p->Hq, items = heads * p->nqb;                                                   \
        _Pragma("omp parallel") {                                                                                     \
            REAL *s = scratch + (int64_t)omp_get_thread_num() * per_thread;                                           \
            REAL *acc = s + ATTN_BLOCK * ATTN_BLOCK, *m = acc + ATTN_BLOCK * p->D, *l = m + ATTN_BLOCK;               \
            /* Late query blocks see the most keys: hand them out first. */                                           \
            _Pragma("omp for schedule(dynamic, 1)") for (int64_t it = 0; it < items; it++) {                          \
                int64_t i = p->nqb - 1 - it / heads, bh = it % heads;                                                 \
                forward_item_##SUFFIX(p, q, k, v, scale, bh / p->Hq, bh % p->Hq, i, s, acc, m, l, out, lse);          \
            }                                                                                                         \
        }                                                                                                             \
    }                                                                                                                 \
                                                                                                                      \
    /* One tile of backward: query block i of head h against key block j. dq has leading dim lddq. */                 \
    static void backward_tile_##SUFFIX(const attn_plan *p, const REAL *q, const REAL *k, const REAL *v,               \
                                       const REAL *go, const REAL *lse, const REAL *delta, REAL scale, int64_t b,     \
                                       int64_t h, int64_t i, int64_t j, int kind, REAL *s, REAL *dp, REAL *dq,        \
                                       int64_t lddq, REAL *gk, REAL *gv) {                                            \
        const int64_t D = p->D, ldq = p->Hq * D, ldk = p->Hkv * D, hk = h / p->group;                                 \
        const int64_t t0 = i * ATTN_BLOCK, rows = MIN64(ATTN_BLOCK, p->T - t0);                                       \
        const int64_t s0 = j * ATTN_BLOCK, cols = MIN64(ATTN_BLOCK, p->S - s0);                                       \
        const int64_t qoff = ((b * p->T + t0) * p->Hq + h) * D, koff = ((b * p->S + s0) * p->Hkv + hk) * D;           \
        const REAL *row_lse = lse + (b * p->Hq + h) * p->T + t0, *row_delta = delta + (b * p->Hq + h) * p->T + t0;    \
        GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, (blasint)rows, (blasint)cols, (blasint)D, scale, q + qoff,      \
             (blasint)ldq, k + koff, (blasint)ldk, 0, s, ATTN_BLOCK);                                                 \
        GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, (blasint)rows, (blasint)cols, (blasint)D, 1, go + qoff,         \
             (blasint)ldq, v + koff, (blasint)ldk, 0, dp, ATTN_BLOCK);                                                \
        for (int64_t r = 0; r < rows; r++) {                                                                          \
            REAL *prow = s + r * ATTN_BLOCK, *drow = dp + r * ATTN_BLOCK, x = row_lse[r], dl = row_delta[r];          \
            if (x == -INFINITY) { /* a row that saw no key has no gradient */                                         \
                memset(prow, 0, sizeof(REAL) * (size_t)cols);                                                         \
                memset(drow, 0, sizeof(REAL) * (size_t)cols);                                                         \
                continue;                                                                                             \
            }                                                                                                         \
            if (kind == TILE_PARTIAL)                                                                                 \
                for (int64_t c = 0; c < cols; c++)                                                                    \
                    if (!visible(p, b, t0 + r, s0 + c)) prow[c] = -INFINITY;                                          \
            softmax_grad_##SUFFIX(prow, drow, cols, x, dl);                                                           \
        }                                                                                                             \
        if (gv)                                                                                                       \
            GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, (blasint)cols, (blasint)D, (blasint)rows, 1, s,             \
                 ATTN_BLOCK, go + qoff, (blasint)ldq, 1, gv + koff, (blasint)ldk);                                    \
        if (dq)                                                                                                       \
            GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, (blasint)rows, (blasint)D, (blasint)cols, scale, dp,      \
                 ATTN_BLOCK, k + koff, (blasint)ldk, 1, dq, (blasint)lddq);                                           \
        if (gk)                                                                                                       \
            GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, (blasint)cols, (blasint)D, (blasint)rows, scale, dp,        \
                 ATTN_BLOCK, q + qoff, (blasint)ldq, 1, gk + koff, (blasint)ldk);                                     \
    }                                                                                                                 \
                                                                                                                      \
    /* delta[b, h, t] = sum_d dO * O: the softmax backward's row term, shared by every key block. */                  \
    static void row_delta_##SUFFIX(const attn_plan *p, const REAL *out, const REAL *go, REAL *delta) {                \
        const int64_t rows = p->B * p->T * p->Hq, D = p->D;                                                           \
        _Pragma("omp parallel for schedule(static) if (rows * D > CT_CPU_PARALLEL_MIN)")                              \
        for (int64_t r = 0; r < rows; r++) {                                                                          \
            REAL total = 0;                                                                                           \
            for (int64_t d = 0; d < D; d++) total += out[r * D + d] * go[r * D + d];                                  \
            int64_t b = r / (p->T * p->Hq), t = (r / p->Hq) % p->T, h = r % p->Hq;                                    \
            delta[(b * p->Hq + h) * p->T + t] = total;                                                                \
        }                                                                                                             \
    }                                                                                                                 \
                                                                                                                      \
    /* Work item (b, kv head, key range c). dq_part: NULL to add into gq directly (one range), else                   \
     * per-item buffers [items][group][T][D] summed afterwards. */                                                    \
    static void backward_##SUFFIX(const attn_plan *p, const REAL *q, const REAL *k, const REAL *v, const REAL *go,    \
                                  const REAL *lse, const REAL *delta, REAL scale, REAL *gq, REAL *gk, REAL *gv,       \
                                  const int64_t *range, int64_t nranges, REAL *dq_part, REAL *scratch,                \
                                  int64_t per_thread) {                                                               \
        const int64_t items = p->B * p->Hkv * nranges, D = p->D;                                                      \
        _Pragma("omp parallel") {                                                                                     \
            REAL *s = scratch + (int64_t)omp_get_thread_num() * per_thread, *dp = s + ATTN_BLOCK * ATTN_BLOCK;        \
            _Pragma("omp for schedule(dynamic, 1)") for (int64_t it = 0; it < items; it++) {                          \
                int64_t c = it % nranges, bk = it / nranges, b = bk / p->Hkv, hk = bk % p->Hkv;                       \
                for (int64_t j = range[c]; j < range[c + 1]; j++)                                                     \
                    for (int64_t g = 0; g < p->group; g++) {                                                          \
                        int64_t h = hk * p->group + g;                                                                \
                        for (int64_t i = 0; i < p->nqb; i++) {                                                        \
                            int kind = tile_kind(p, b, i, j);                                                         \
                            if (kind == TILE_SKIP) continue;                                                          \
                            REAL *dq = NULL;                                                                          \
                            int64_t lddq = p->Hq * D;                                                                 \
                            if (gq && !dq_part) dq = gq + ((b * p->T + i * ATTN_BLOCK) * p->Hq + h) * D;              \
                            if (gq && dq_part) {                                                                      \
                                dq = dq_part + ((it * p->group + g) * p->T + i * ATTN_BLOCK) * D;                     \
                                lddq = D;                                                                             \
                            }                                                                                         \
                            backward_tile_##SUFFIX(p, q, k, v, go, lse, delta, scale, b, h, i, j, kind, s, dp,        \
                                                   dq, lddq, gk, gv);                                                 \
                        }                                                                                             \
                    }                                                                                                 \
            }                                                                                                         \
        }                                                                                                             \
        if (!gq || !dq_part) return;                                                                                  \
        const int64_t qrows = p->B * p->T * p->Hq;                                                                    \
        _Pragma("omp parallel for schedule(static)") for (int64_t r = 0; r < qrows; r++) {                            \
            int64_t b = r / (p->T * p->Hq), t = (r / p->Hq) % p->T, h = r % p->Hq;                                    \
            int64_t hk = h / p->group, g = h % p->group;                                                              \
            for (int64_t c = 0; c < nranges; c++) { /* fixed range order: deterministic sums */                       \
                const REAL *part = dq_part + ((((b * p->Hkv + hk) * nranges + c) * p->group + g) * p->T + t) * D;     \
                for (int64_t d = 0; d < D; d++) gq[r * D + d] += part[d];                                             \
            }                                                                                                         \
        }                                                                                                             \
    }

DEFINE_ATTENTION(float, f32, ct_sgemm_as_cblas, expf, logf)
DEFINE_ATTENTION(double, f64, cblas_dgemm, exp, log)

/* Scratch per thread: a score tile, an output accumulator and the running max / sum. */
static int64_t forward_scratch(int64_t D) { return ATTN_BLOCK * ATTN_BLOCK + ATTN_BLOCK * D + 2 * ATTN_BLOCK; }

static bool empty_problem(const attn_plan *p) { return p->B == 0 || p->T == 0 || p->Hq == 0; }

static int forward_real(const ct_tensor *q, const ct_tensor *k, const ct_tensor *v, const ct_tensor *q_pos,
                        const ct_tensor *k_pos, const ct_tensor *q_seg, const ct_tensor *k_seg, double scale,
                        ct_tensor *out, ct_tensor *lse) {
    attn_plan p;
    CT_TRY(ct_scope_begin());
    int status = plan_init(&p, q, k, q_pos, k_pos, q_seg, k_seg);
    if (status == 0 && !empty_problem(&p) && (p.S == 0 || p.D == 0)) {
        /* No keys (or empty heads): every query sees nothing. */
        memset(out->data, 0, ct_nbytes(out));
        for (int64_t i = 0; i < ct_numel(lse); i++) ct_set(lse, i, -INFINITY);
    } else if (status == 0 && !empty_problem(&p)) {
        int64_t per_thread = forward_scratch(p.D);
        size_t elem = q->dtype == CT_F64 ? sizeof(double) : sizeof(float);
        void *scratch = ct_arena_alloc(elem * (size_t)(per_thread * omp_get_max_threads()));
        if (!scratch) status = -1;
        else if (q->dtype == CT_F64)
            forward_f64(&p, q->data, k->data, v->data, scale, out->data, lse->data, scratch, per_thread);
        else
            forward_f32(&p, q->data, k->data, v->data, (float)scale, out->data, lse->data, scratch, per_thread);
    }
    ct_scope_end();
    return status;
}

/* How many key ranges each (batch, kv head) is cut into: one when there are enough pairs to
 * spread over the cores, more when there are few (each extra range costs one dQ-sized buffer).
 * It depends on the problem only, never on the thread count, so sums keep one order. */
#define ATTN_MIN_ITEMS 8
static int64_t key_ranges(const attn_plan *p) {
    int64_t pairs = p->B * p->Hkv;
    if (pairs >= ATTN_MIN_ITEMS || p->nkb <= 1) return 1;
    int64_t n = (ATTN_MIN_ITEMS + pairs - 1) / pairs;
    return n < p->nkb ? n : p->nkb;
}

static int backward_real(const ct_tensor *q, const ct_tensor *k, const ct_tensor *v, const ct_tensor *q_pos,
                         const ct_tensor *k_pos, const ct_tensor *q_seg, const ct_tensor *k_seg, double scale,
                         const ct_tensor *out, const ct_tensor *lse, const ct_tensor *grad_out, ct_tensor *grad_q,
                         ct_tensor *grad_k, ct_tensor *grad_v) {
    attn_plan p;
    CT_TRY(ct_scope_begin());
    int status = plan_init(&p, q, k, q_pos, k_pos, q_seg, k_seg);
    if (status < 0 || empty_problem(&p) || p.S == 0 || p.D == 0) {
        ct_scope_end();
        return status;
    }
    bool f64 = q->dtype == CT_F64;
    size_t elem = f64 ? sizeof(double) : sizeof(float);
    int64_t nranges = key_ranges(&p);
    int64_t *range = ct_arena_alloc(sizeof(int64_t) * (size_t)(nranges + 1));
    int64_t per_thread = 2 * ATTN_BLOCK * ATTN_BLOCK;
    void *scratch = ct_arena_alloc(elem * (size_t)(per_thread * omp_get_max_threads()));
    void *delta = ct_arena_alloc(elem * (size_t)(p.B * p.Hq * p.T));
    void *dq_part = NULL;
    if (grad_q && nranges > 1) {
        size_t n = (size_t)(p.B * p.Hkv * nranges * p.group * p.T * p.D);
        if ((dq_part = ct_arena_alloc(elem * n))) memset(dq_part, 0, elem * n);
    }
    if (!range || !scratch || !delta || (grad_q && nranges > 1 && !dq_part)) {
        ct_scope_end();
        return -1;
    }
    split_key_blocks(&p, nranges, range);
    void *gq = grad_q ? grad_q->data : NULL, *gk = grad_k ? grad_k->data : NULL, *gv = grad_v ? grad_v->data : NULL;
    if (f64) {
        row_delta_f64(&p, out->data, grad_out->data, delta);
        backward_f64(&p, q->data, k->data, v->data, grad_out->data, lse->data, delta, scale, gq, gk, gv, range,
                     nranges, dq_part, scratch, per_thread);
    } else {
        row_delta_f32(&p, out->data, grad_out->data, delta);
        backward_f32(&p, q->data, k->data, v->data, grad_out->data, lse->data, delta, (float)scale, gq, gk, gv,
                     range, nranges, dq_part, scratch, per_thread);
    }
    ct_scope_end();
    return 0;
}

/* bf16 q, k, v (and out): the tiles multiply through sgemm on strided views, so the bf16 tensors
 * are widened to f32 copies in a scratch scope (the size of the inputs, never T x S), and the
 * f32 kernels run on those. lse and the gradients are f32. */
static const ct_tensor *widened(const ct_tensor *t) {
    if (t->dtype != CT_BF16) return t;
    ct_tensor *f = ct_empty(CT_F32, t->ndim, t->shape);
    return f && ct_cpu_convert(t, f) == 0 ? f : NULL;
}

int ct_cpu_attention_forward(const ct_tensor *q, const ct_tensor *k, const ct_tensor *v, const ct_tensor *q_pos,
                             const ct_tensor *k_pos, const ct_tensor *q_seg, const ct_tensor *k_seg, double scale,
                             ct_tensor *out, ct_tensor *lse) {
    if (q->dtype != CT_BF16) return forward_real(q, k, v, q_pos, k_pos, q_seg, k_seg, scale, out, lse);
    CT_TRY(ct_scope_begin());
    const ct_tensor *qf = widened(q), *kf = widened(k), *vf = widened(v);
    ct_tensor *of = ct_empty(CT_F32, out->ndim, out->shape);
    int status = qf && kf && vf && of ? forward_real(qf, kf, vf, q_pos, k_pos, q_seg, k_seg, scale, of, lse) : -1;
    if (status == 0) status = ct_cpu_convert(of, out);
    ct_scope_end();
    return status;
}

int ct_cpu_attention_backward(const ct_tensor *q, const ct_tensor *k, const ct_tensor *v, const ct_tensor *q_pos,
                              const ct_tensor *k_pos, const ct_tensor *q_seg, const ct_tensor *k_seg, double scale,
                              const ct_tensor *out, const ct_tensor *lse, const ct_tensor *grad_out,
                              ct_tensor *grad_q, ct_tensor *grad_k, ct_tensor *grad_v) {
    if (q->dtype != CT_BF16)
        return backward_real(q, k, v, q_pos, k_pos, q_seg, k_seg, scale, out, lse, grad_out, grad_q, grad_k, grad_v);
    CT_TRY(ct_scope_begin());
    const ct_tensor *qf = widened(q), *kf = widened(k), *vf = widened(v), *of = widened(out);
    int status = qf && kf && vf && of ? backward_real(qf, kf, vf, q_pos, k_pos, q_seg, k_seg, scale, of, lse, grad_out,
                                                      grad_q, grad_k, grad_v)
                                      : -1;
    ct_scope_end();
    return status;
}
