/* Rotary position embedding, HF rotate-half layout: within each head of D values, element i
 * pairs with i + D/2 and the pair rotates by angle = position * inv_freq[i]. The cos/sin table
 * is built once per distinct position (rows of a batch repeat the same positions) and shared by
 * all heads, so the per-element loop is a vectorizable multiply-add. Angles are computed in
 * double. Backward is the same rotation by the opposite angle. bf16 x and y are converted span by
 * span around the f32 loop (kernels/cpu/cpu_kernels.h). */
#include <math.h>
#include <stdlib.h>

#include "core/error.h"
#include "kernels/cpu/cpu_kernels.h"

#define DEFINE_ROTATE(T, SUFFIX, CLONES)                                                           \
    /* y1 (=, +=) x1 c - x2 s;  y2 (=, +=) x2 c + x1 s over n pairs */                             \
    CLONES static void rotate_##SUFFIX(const T *restrict x1, const T *restrict x2,                  \
                                       const T *restrict c, const T *restrict s, int accumulate,   \
                                       T *restrict y1, T *restrict y2, int64_t n) {                \
        if (accumulate) {                                                                          \
            _Pragma("omp simd")                                                                    \
            for (int64_t i = 0; i < n; i++) {                                                      \
                y1[i] += x1[i] * c[i] - x2[i] * s[i];                                              \
                y2[i] += x2[i] * c[i] + x1[i] * s[i];                                              \
            }                                                                                      \
        } else {                                                                                   \
            _Pragma("omp simd")                                                                    \
            for (int64_t i = 0; i < n; i++) {                                                      \
                y1[i] = x1[i] * c[i] - x2[i] * s[i];                                               \
                y2[i] = x2[i] * c[i] + x1[i] * s[i];                                               \
            }                                                                                      \
        }                                                                                          \
    }

DEFINE_ROTATE(float, f32, CT_CPU_CLONES)
DEFINE_ROTATE(double, f64, )

/* Table rows are indexed by position - first; one row per distinct position when the positions
 * span no more values than there are rows (the usual case), else one per (batch, time) row. */
typedef struct {
    void *data; /* [entries, dim]: cos of the D/2 angles, then their sin; f64 or f32 */
    int64_t first, entries;
    bool by_position;
} rope_table;

static int table_init(rope_table *tab, const int32_t *pos, int64_t rows, const double *inv_freq, int direction,
                      int64_t dim, bool f64) {
    int32_t lo = rows ? pos[0] : 0, hi = lo;
    for (int64_t r = 1; r < rows; r++) {
        lo = pos[r] < lo ? pos[r] : lo;
        hi = pos[r] > hi ? pos[r] : hi;
    }
    int64_t span = (int64_t)hi - lo + 1, half = dim / 2;
    tab->by_position = span <= rows;
    tab->first = lo;
    tab->entries = tab->by_position ? span : rows;
    size_t esize = f64 ? sizeof(double) : sizeof(float);
    tab->data = ct_malloc((size_t)(tab->entries * dim) * esize + 1, "rope cos/sin table");
    if (!tab->data) return -1;
#pragma omp parallel for schedule(static) if (tab->entries * half > CT_CPU_PARALLEL_MIN / 8)
    for (int64_t e = 0; e < tab->entries; e++) {
        double p = tab->by_position ? (double)(tab->first + e) : (double)pos[e];
        for (int64_t i = 0; i < half; i++) {
            double angle = (double)direction * p * inv_freq[i];
            double c = cos(angle), s = sin(angle);
            if (f64) {
                ((double *)tab->data)[e * dim + i] = c;
                ((double *)tab->data)[e * dim + half + i] = s;
            } else {
                ((float *)tab->data)[e * dim + i] = (float)c;
                ((float *)tab->data)[e * dim + half + i] = (float)s;
            }
        }
    }
    return 0;
}

static int64_t table_row(const rope_table *tab, const int32_t *pos, int64_t r) {
    return tab->by_position ? pos[r] - tab->first : r;
}

/* Heads [h0, h0 + count) of row r of an f32 / bf16 x into y, with c the row's cos table (sin
 * follows). Heads are converted together, CT_CPU_SPAN values at a time; a head longer than a
 * span goes half a head at a time in spans. */
static void rotate_heads_f32(const ct_tensor *x, const float *c, int accumulate, ct_tensor *y, int64_t first,
                             int64_t count, int64_t dim) {
    float xb[CT_CPU_SPAN], yb[CT_CPU_SPAN];
    int64_t half = dim / 2;
    if (count * dim <= CT_CPU_SPAN) {
        int64_t at = first * dim, n = count * dim;
        /* bf16 spends more time converting than loading: fetch a step or two ahead (f32 is faster
         * left to the hardware prefetchers) */
        if (x->dtype == CT_BF16) ct_cpu_prefetch_span(x, at + 2 * CT_CPU_SPAN);
        const float *xs = ct_cpu_span_in(x, at, n, xb);
        float *ys = ct_cpu_span_out(y, at, yb);
        for (int64_t h = 0; h < count; h++)
            rotate_f32(xs + h * dim, xs + h * dim + half, c, c + half, accumulate, ys + h * dim, ys + h * dim + half,
                       half);
        ct_cpu_span_store(y, at, n, yb);
        return;
    }
    float x2b[CT_CPU_SPAN], y2b[CT_CPU_SPAN];
    for (int64_t h = first; h < first + count; h++)
        for (int64_t i0 = 0; i0 < half; i0 += CT_CPU_SPAN) {
            int64_t n = ct_cpu_min64(CT_CPU_SPAN, half - i0), at1 = h * dim + i0, at2 = at1 + half;
            float *y1 = ct_cpu_span_out(y, at1, yb), *y2 = ct_cpu_span_out(y, at2, y2b);
            rotate_f32(ct_cpu_span_in(x, at1, n, xb), ct_cpu_span_in(x, at2, n, x2b), c + i0, c + half + i0,
                       accumulate, y1, y2, n);
            ct_cpu_span_store(y, at1, n, yb);
            ct_cpu_span_store(y, at2, n, y2b);
        }
}

int ct_cpu_rope(const ct_tensor *x, const ct_tensor *position_ids, const double *inv_freq, int direction,
                bool accumulate, ct_tensor *y) {
    int64_t rows = x->shape[0] * x->shape[1], heads = x->shape[2], dim = x->shape[3], half = dim / 2;
    const int32_t *pos = position_ids->data;
    bool f64 = x->dtype == CT_F64;
    rope_table tab;
    CT_TRY(table_init(&tab, pos, rows, inv_freq, direction, dim, f64));
    /* work items: f64 one head each; f32 / bf16 as many whole heads as fit in a span */
    int64_t per_item = f64 || dim == 0 || dim > CT_CPU_SPAN ? 1 : ct_cpu_min64(heads, CT_CPU_SPAN / dim);
    int64_t per_row = per_item ? (heads + per_item - 1) / per_item : 0, items = rows * per_row;
#pragma omp parallel for schedule(static) if (rows * heads * dim > CT_CPU_PARALLEL_MIN)
    for (int64_t it = 0; it < items; it++) {
        int64_t r = it / per_row, h0 = (it % per_row) * per_item, count = ct_cpu_min64(per_item, heads - h0);
        int64_t e = table_row(&tab, pos, r);
        if (f64) {
            const double *c = (const double *)tab.data + e * dim;
            const double *xv = (const double *)x->data + (r * heads + h0) * dim;
            double *yv = (double *)y->data + (r * heads + h0) * dim;
            rotate_f64(xv, xv + half, c, c + half, accumulate, yv, yv + half, half);
        } else {
            rotate_heads_f32(x, (const float *)tab.data + e * dim, accumulate, y, r * heads + h0, count, dim);
        }
    }
    free(tab.data);
    return 0;
}
