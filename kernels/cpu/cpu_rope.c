/* Rotary position embedding, HF rotate-half layout: within each head of D values, element i
 * pairs with i + D/2 and the pair rotates by angle = position * inv_freq[i]. The cos/sin table is
 * built once per (batch, time) row and shared by all heads, so the per-element loop is a
 * vectorizable multiply-add. Backward is the same rotation by the opposite angle. */
#include <math.h>
#include <stdlib.h>

#include "autograd/error.h"
#include "kernels/cpu/cpu_kernels.h"

#define DEFINE_ROPE(T, SUFFIX)                                                                     \
    static void rope_##SUFFIX(const T *x, const int32_t *pos, const double *inv_freq, int direction, \
                              int accumulate, T *y, T *table, int64_t rows, int64_t heads,          \
                              int64_t dim) {                                                        \
        int64_t half = dim / 2;                                                                    \
        /* table[r] = cos(angle_0..), then sin(angle_0..) for the row's position */                 \
        _Pragma("omp parallel for schedule(static) if (rows * half > CT_CPU_PARALLEL_MIN)")        \
        for (int64_t r = 0; r < rows; r++)                                                         \
            for (int64_t i = 0; i < half; i++) {                                                   \
                double angle = (double)direction * (double)pos[r] * inv_freq[i];                   \
                table[r * dim + i] = (T)cos(angle);                                                \
                table[r * dim + half + i] = (T)sin(angle);                                         \
            }                                                                                      \
        int64_t n_vectors = rows * heads;                                                          \
        _Pragma("omp parallel for schedule(static) if (n_vectors * dim > CT_CPU_PARALLEL_MIN)")    \
        for (int64_t v = 0; v < n_vectors; v++) {                                                  \
            const T *restrict c = table + (v / heads) * dim, *restrict s = c + half;               \
            const T *restrict x1 = x + v * dim, *restrict x2 = x1 + half;                          \
            T *restrict y1 = y + v * dim, *restrict y2 = y1 + half;                                \
            if (accumulate) {                                                                      \
                _Pragma("omp simd")                                                                \
                for (int64_t i = 0; i < half; i++) {                                               \
                    y1[i] += x1[i] * c[i] - x2[i] * s[i];                                          \
                    y2[i] += x2[i] * c[i] + x1[i] * s[i];                                          \
                }                                                                                  \
            } else {                                                                               \
                _Pragma("omp simd")                                                                \
                for (int64_t i = 0; i < half; i++) {                                               \
                    y1[i] = x1[i] * c[i] - x2[i] * s[i];                                           \
                    y2[i] = x2[i] * c[i] + x1[i] * s[i];                                           \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
    }

DEFINE_ROPE(float, f32)
DEFINE_ROPE(double, f64)

int ct_cpu_rope(const ct_tensor *x, const ct_tensor *position_ids, const double *inv_freq, int direction,
                bool accumulate, ct_tensor *y) {
    int64_t rows = x->shape[0] * x->shape[1], heads = x->shape[2], dim = x->shape[3];
    void *table = ct_malloc((size_t)(rows * dim) * ct_dtype_size(x->dtype), "rope cos/sin table");
    if (!table) return -1;
    if (x->dtype == CT_F64)
        rope_f64(x->data, position_ids->data, inv_freq, direction, accumulate, y->data, table, rows, heads, dim);
    else
        rope_f32(x->data, position_ids->data, inv_freq, direction, accumulate, y->data, table, rows, heads, dim);
    free(table);
    return 0;
}
