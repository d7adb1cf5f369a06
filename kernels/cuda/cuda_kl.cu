// Distillation KL over rows (kernels/backend.h: kl_div_forward, kl_div_backward): per unmasked
// row, KL(softmax(t/T) || softmax(s/T)), with no probability tensor. One block per row; maxima by
// a fixed tree, sums of exps in double by a fixed tree. row_stats (f64 [rows, 3]) keeps each
// row's logsumexp of s/T and t/T and its KL; backward recomputes the probabilities from them:
//   dL/ds = c * (p_s - p_t),  dL/dt = c * p_t * (log p_t - log p_s - KL_row),  c = g * T / count.
// The loss and the count are reduced on the device (one block, fixed tree). f32 and f64 only.
#include <float.h>

#include "kernels/cuda/cuda_kernels.h"

// mask: f32 or f64 per row, or no data (every row counts)
__device__ __forceinline__ bool row_included(ct_cuda_ref mask, int64_t r) {
    return !mask.data || ct_cuda_load<double>(mask, r) != 0;
}

template <typename T>
__global__ void kl_rows_kernel(const T *s, const T *t, ct_cuda_ref mask, T inv_temp, double *stats, int64_t cols) {
    __shared__ double shared[CT_CUDA_THREADS];
    int64_t r = blockIdx.x, at = r * cols;
    double *st = stats + 3 * r;
    if (!row_included(mask, r)) {
        if (threadIdx.x == 0) st[0] = st[1] = st[2] = 0;
        return;
    }
    double ms = -FLT_MAX, mt = -FLT_MAX;  // maxima of s/T and t/T (T > 0 keeps the order)
    for (int64_t c = threadIdx.x; c < cols; c += CT_CUDA_THREADS) {
        ms = fmax(ms, (double)(s[at + c] * inv_temp));
        mt = fmax(mt, (double)(t[at + c] * inv_temp));
    }
    ms = ct_cuda_block_max(ms, shared);
    mt = ct_cuda_block_max(mt, shared);
    double zs = 0, zt = 0, e = 0;  // sum exp(s/T - ms), sum exp(t/T - mt), sum exp(t/T - mt) * (t - s)
    for (int64_t c = threadIdx.x; c < cols; c += CT_CUDA_THREADS) {
        T sv = s[at + c], tv = t[at + c], et = exp(tv * inv_temp - (T)mt);
        zs += (double)exp(sv * inv_temp - (T)ms);
        zt += (double)et;
        e += (double)et * ((double)tv - (double)sv);
    }
    zs = ct_cuda_block_sum(zs, shared);
    zt = ct_cuda_block_sum(zt, shared);
    e = ct_cuda_block_sum(e, shared);
    if (threadIdx.x == 0) {
        st[0] = ms + log(zs);
        st[1] = mt + log(zt);
        st[2] = e * (double)inv_temp / zt - st[1] + st[0];
    }
}

// One block: out = T^2 * (sum of the row KLs) / (unmasked rows), 0 when every row is masked.
template <typename T>
__global__ void kl_total_kernel(const double *stats, ct_cuda_ref mask, int64_t rows, double temperature,
                                ct_cuda_ref out) {
    __shared__ double shared[CT_CUDA_THREADS];
    double total = 0, count = 0;
    for (int64_t r = threadIdx.x; r < rows; r += CT_CUDA_THREADS) {
        total += stats[3 * r + 2];
        count += row_included(mask, r);
    }
    total = ct_cuda_block_sum(total, shared);
    count = ct_cuda_block_sum(count, shared);
    if (threadIdx.x == 0) ct_cuda_store<double>(out, 0, count > 0 ? temperature * temperature * total / count : 0.0);
}

template <typename T>
static int kl_forward_typed(const ct_tensor *student, const ct_tensor *teacher, const ct_tensor *mask,
                            double temperature, ct_tensor *row_stats, ct_tensor *out, cudaStream_t stream) {
    int64_t rows = ct_rows(student), cols = ct_cols(student);
    ct_cuda_ref m = ct_cuda_ref_of(mask);
    if (rows) {
        kl_rows_kernel<T><<<(unsigned)rows, CT_CUDA_THREADS, 0, stream>>>(
            (const T *)student->data, (const T *)teacher->data, m, (T)(1.0 / temperature), (double *)row_stats->data,
            cols);
        CT_CUDA_CHECK_LAUNCH("kl_rows");
    }
    kl_total_kernel<T><<<1, CT_CUDA_THREADS, 0, stream>>>((const double *)row_stats->data, m, rows, temperature,
                                                          ct_cuda_ref_of(out));
    CT_CUDA_CHECK_LAUNCH("kl_total");
    return 0;
}

extern "C" int ct_cuda_kl_div_forward(const ct_tensor *student, const ct_tensor *teacher, const ct_tensor *mask,
                                      double temperature, ct_tensor *row_stats, ct_tensor *out) {
    cudaStream_t stream;
    CT_CUDA_STREAM(stream);
    if (student->dtype == CT_F64)
        return kl_forward_typed<double>(student, teacher, mask, temperature, row_stats, out, stream);
    return kl_forward_typed<float>(student, teacher, mask, temperature, row_stats, out, stream);
}

// One block: *scale = grad_out * T / (unmasked rows), 0 when every row is masked.
template <typename T>
__global__ void kl_scale_kernel(ct_cuda_ref mask, int64_t rows, double temperature, ct_cuda_ref grad_out, double *scale) {
    __shared__ double shared[CT_CUDA_THREADS];
    double count = 0;
    for (int64_t r = threadIdx.x; r < rows; r += CT_CUDA_THREADS) count += row_included(mask, r);
    count = ct_cuda_block_sum(count, shared);
    if (threadIdx.x == 0) *scale = count > 0 ? ct_cuda_load<double>(grad_out, 0) * temperature / count : 0.0;
}

template <typename T>
__global__ void kl_backward_kernel(const T *s, const T *t, ct_cuda_ref mask, T inv_temp, const double *stats,
                                   const double *scale_at, T *gs, T *gt, int64_t cols) {
    int64_t r = blockIdx.x, at = r * cols;
    if (!row_included(mask, r)) return;
    const double *st = stats + 3 * r;
    T lse_s = (T)st[0], lse_t = (T)st[1], kl = (T)st[2], scale = (T)*scale_at;
    for (int64_t c = threadIdx.x; c < cols; c += CT_CUDA_THREADS) {
        T log_ps = s[at + c] * inv_temp - lse_s, log_pt = t[at + c] * inv_temp - lse_t;
        if (gs) gs[at + c] += scale * (exp(log_ps) - exp(log_pt));
        if (gt) gt[at + c] += scale * exp(log_pt) * (log_pt - log_ps - kl);
    }
}

template <typename T>
static int kl_backward_typed(const ct_tensor *student, const ct_tensor *teacher, const ct_tensor *mask,
                             double temperature, const ct_tensor *row_stats, const ct_tensor *grad_out,
                             ct_tensor *grad_student, ct_tensor *grad_teacher, cudaStream_t stream) {
    int64_t rows = ct_rows(student), cols = ct_cols(student);
    ct_cuda_ref m = ct_cuda_ref_of(mask);
    ct_cuda_scratch scale;
    CT_TRY(scale.alloc(sizeof(double), "kl_div backward"));
    kl_scale_kernel<T><<<1, CT_CUDA_THREADS, 0, stream>>>(m, rows, temperature, ct_cuda_ref_of(grad_out),
                                                          (double *)scale.data);
    CT_CUDA_CHECK_LAUNCH("kl_scale");
    kl_backward_kernel<T><<<(unsigned)rows, CT_CUDA_THREADS, 0, stream>>>(
        (const T *)student->data, (const T *)teacher->data, m, (T)(1.0 / temperature), (const double *)row_stats->data,
        (const double *)scale.data, grad_student ? (T *)grad_student->data : NULL,
        grad_teacher ? (T *)grad_teacher->data : NULL, cols);
    CT_CUDA_CHECK_LAUNCH("kl_backward");
    return 0;
}

extern "C" int ct_cuda_kl_div_backward(const ct_tensor *student, const ct_tensor *teacher, const ct_tensor *mask,
                                       double temperature, const ct_tensor *row_stats, const ct_tensor *grad_out,
                                       ct_tensor *grad_student, ct_tensor *grad_teacher) {
    if (ct_rows(student) * ct_cols(student) == 0 || (!grad_student && !grad_teacher)) return 0;
    cudaStream_t stream;
    CT_CUDA_STREAM(stream);
    if (student->dtype == CT_F64)
        return kl_backward_typed<double>(student, teacher, mask, temperature, row_stats, grad_out, grad_student,
                                         grad_teacher, stream);
    return kl_backward_typed<float>(student, teacher, mask, temperature, row_stats, grad_out, grad_student,
                                    grad_teacher, stream);
}
