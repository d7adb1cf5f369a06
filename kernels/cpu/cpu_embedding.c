/* Embedding lookup. The backward splits the embedding width across threads and adds tokens in
 * order within each column range: no atomics, so repeated ids accumulate in a fixed order and
 * the result is bit-reproducible. */
#include <string.h>

#include "core/error.h"
#include "kernels/cpu/cpu_kernels.h"

static int check_ids(const ct_tensor *ids, int64_t vocab) {
    const int32_t *id = ids->data;
    int64_t n = ct_numel(ids);
    for (int64_t i = 0; i < n; i++)
        if (id[i] < 0 || id[i] >= vocab)
            return ct_fail("embedding: token id %d at position %lld is outside the table's %lld rows",
                           id[i], (long long)i, (long long)vocab);
    return 0;
}

int ct_cpu_embedding_forward(const ct_tensor *weight, const ct_tensor *ids, ct_tensor *out) {
    int64_t vocab = weight->shape[0], dim = weight->shape[1], n = ct_numel(ids);
    CT_TRY(check_ids(ids, vocab));
    const int32_t *id = ids->data;
    if (weight->dtype == out->dtype) {
        size_t row_bytes = (size_t)dim * ct_dtype_size(out->dtype);
        const char *w = weight->data;
        char *o = out->data;
#pragma omp parallel for schedule(static) if (n * dim > CT_CPU_PARALLEL_MIN)
        for (int64_t i = 0; i < n; i++) memcpy(o + i * row_bytes, w + id[i] * row_bytes, row_bytes);
        return 0;
    }
    /* A bf16 / i8 table read into f32 rows. */
    for (int64_t i = 0; i < n; i++)
        for (int64_t c = 0; c < dim; c++) ct_set(out, i * dim + c, ct_get(weight, id[i] * dim + c));
    return 0;
}

#define DEFINE_EMBEDDING_BACKWARD(T, SUFFIX)                                                     \
    static void embedding_backward_##SUFFIX(const T *g, const int32_t *id, T *gw, int64_t n,    \
                                            int64_t dim) {                                      \
        _Pragma("omp parallel")                                                                 \
        {                                                                                       \
            int64_t n_threads = omp_get_num_threads(), t = omp_get_thread_num();               \
            int64_t begin = dim * t / n_threads, end = dim * (t + 1) / n_threads;              \
            for (int64_t i = 0; i < n; i++)                                                    \
                for (int64_t c = begin; c < end; c++) gw[id[i] * dim + c] += g[i * dim + c];  \
        }                                                                                       \
    }

#include <omp.h>
DEFINE_EMBEDDING_BACKWARD(float, f32)
DEFINE_EMBEDDING_BACKWARD(double, f64)

int ct_cpu_embedding_backward(const ct_tensor *grad_out, const ct_tensor *ids, ct_tensor *grad_weight) {
    int64_t dim = grad_weight->shape[1], n = ct_numel(ids);
    if (grad_weight->dtype == CT_F64)
        embedding_backward_f64(grad_out->data, ids->data, grad_weight->data, n, dim);
    else
        embedding_backward_f32(grad_out->data, ids->data, grad_weight->data, n, dim);
    return 0;
}
