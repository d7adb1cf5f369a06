// Log-softmax and softmax cross-entropy over the last dimension (kernels/backend.h). One block
// per row: the row's max by a fixed tree, then its sum of exp(x - max) in double (each thread
// adds columns t, t + 256, ..., then a fixed tree), so results repeat run to run. f32 and bf16
// rows compute in f32 with double sums, f64 rows in double.
//
// Cross-entropy never holds probabilities: forward writes each row's logsumexp (0 for ignored
// rows), backward recomputes exp(x - lse). Forward first checks the targets on the device and
// reads back the first bad row (one small device-to-host copy) so the error names it like the
// CPU's; the loss is reduced on the device into the one-element out.
#include <float.h>

#include "kernels/cuda/cuda_kernels.h"

#define CT_IGNORE_INDEX (-100)

// logsumexp of `cols` values of x starting at `at`; every thread of the block gets it.
template <typename T>
__device__ double row_logsumexp(ct_cuda_ref x, int64_t at, int64_t cols, double *shared) {
    double max = -FLT_MAX;  // not -inf: an all -inf row then gives -inf, not exp(NaN), as on the CPU
    for (int64_t c = threadIdx.x; c < cols; c += CT_CUDA_THREADS) max = fmax(max, (double)ct_cuda_load<T>(x, at + c));
    max = ct_cuda_block_max(max, shared);
    double total = 0;
    for (int64_t c = threadIdx.x; c < cols; c += CT_CUDA_THREADS)
        total += (double)exp(ct_cuda_load<T>(x, at + c) - (T)max);
    total = ct_cuda_block_sum(total, shared);
    return max + log(total);
}

// ---- log-softmax ----

template <typename T>
__global__ void log_softmax_forward_kernel(ct_cuda_ref x, T *y, int64_t cols) {
    __shared__ double shared[CT_CUDA_THREADS];
    int64_t at = (int64_t)blockIdx.x * cols;
    T lse = (T)row_logsumexp<T>(x, at, cols, shared);
    for (int64_t c = threadIdx.x; c < cols; c += CT_CUDA_THREADS) y[at + c] = ct_cuda_load<T>(x, at + c) - lse;
}

template <typename T>
__global__ void log_softmax_backward_kernel(const T *y, const T *gy, T *gx, int64_t cols) {
    __shared__ double shared[CT_CUDA_THREADS];
    int64_t at = (int64_t)blockIdx.x * cols;
    double total = 0;
    for (int64_t c = threadIdx.x; c < cols; c += CT_CUDA_THREADS) total += (double)gy[at + c];
    T sum = (T)ct_cuda_block_sum(total, shared);
    for (int64_t c = threadIdx.x; c < cols; c += CT_CUDA_THREADS) gx[at + c] += gy[at + c] - exp(y[at + c]) * sum;
}

extern "C" int ct_cuda_log_softmax_forward(const ct_tensor *x, ct_tensor *y) {
    int64_t rows = ct_rows(x), cols = ct_cols(x);
    if (rows * cols == 0) return 0;
    cudaStream_t stream;
    CT_CUDA_STREAM(stream);
    if (x->dtype == CT_F64)
        log_softmax_forward_kernel<double><<<(unsigned)rows, CT_CUDA_THREADS, 0, stream>>>(ct_cuda_ref_of(x),
                                                                                         (double *)y->data, cols);
    else
        log_softmax_forward_kernel<float><<<(unsigned)rows, CT_CUDA_THREADS, 0, stream>>>(ct_cuda_ref_of(x),
                                                                                        (float *)y->data, cols);
    CT_CUDA_CHECK_LAUNCH("log_softmax_forward");
    return 0;
}

extern "C" int ct_cuda_log_softmax_backward(const ct_tensor *y, const ct_tensor *grad_y, ct_tensor *grad_x) {
    int64_t rows = ct_rows(y), cols = ct_cols(y);
    if (rows * cols == 0) return 0;
    cudaStream_t stream;
    CT_CUDA_STREAM(stream);
    if (y->dtype == CT_F64)
        log_softmax_backward_kernel<double><<<(unsigned)rows, CT_CUDA_THREADS, 0, stream>>>(
            (const double *)y->data, (const double *)grad_y->data, (double *)grad_x->data, cols);
    else
        log_softmax_backward_kernel<float><<<(unsigned)rows, CT_CUDA_THREADS, 0, stream>>>(
            (const float *)y->data, (const float *)grad_y->data, (float *)grad_x->data, cols);
    CT_CUDA_CHECK_LAUNCH("log_softmax_backward");
    return 0;
}

// ---- cross-entropy ----

static int check_targets(const ct_tensor *targets, int64_t cols) {
    int64_t first = 0;
    int32_t target = 0;
    int found = ct_cuda_first_bad_index((const int32_t *)targets->data, ct_numel(targets), cols, CT_IGNORE_INDEX,
                                        &first, &target);
    if (found <= 0) return found;
    return ct_fail("cross_entropy: target %d at row %lld is outside [0, %lld) (use -100 to ignore a position)",
                   target, (long long)first, (long long)cols);
}

// Row r's logsumexp into lse (the logits' real dtype: f32 for f32 and bf16 logits) and its loss
// lse - x[target] into row_loss, both 0 for an ignored row.
template <typename T>
__global__ void cross_entropy_rows_kernel(ct_cuda_ref logits, const int32_t *t, int64_t cols, T *lse,
                                          double *row_loss) {
    __shared__ double shared[CT_CUDA_THREADS];
    int64_t r = blockIdx.x, at = r * cols;
    if (t[r] == CT_IGNORE_INDEX) {
        if (threadIdx.x == 0) lse[r] = 0, row_loss[r] = 0;
        return;
    }
    T row_lse = (T)row_logsumexp<T>(logits, at, cols, shared);
    if (threadIdx.x == 0) {
        lse[r] = row_lse;
        row_loss[r] = (double)row_lse - (double)ct_cuda_load<T>(logits, at + t[r]);
    }
}

// One block: out = the sum of the row losses, or their mean over the targets not ignored (0
// when there are none: nothing to learn from, not NaN).
__global__ void cross_entropy_total_kernel(const double *row_loss, const int32_t *t, int64_t rows, int mean,
                                           ct_cuda_ref out) {
    __shared__ double shared[CT_CUDA_THREADS];
    double total = 0, count = 0;
    for (int64_t r = threadIdx.x; r < rows; r += CT_CUDA_THREADS) {
        total += row_loss[r];
        count += t[r] != CT_IGNORE_INDEX;
    }
    total = ct_cuda_block_sum(total, shared);
    count = ct_cuda_block_sum(count, shared);
    if (threadIdx.x == 0) ct_cuda_store<double>(out, 0, mean ? (count > 0 ? total / count : 0.0) : total);
}

extern "C" int ct_cuda_cross_entropy_forward(const ct_tensor *logits, const ct_tensor *targets, ct_reduction reduction,
                                             ct_tensor *row_logsumexp, ct_tensor *out) {
    int64_t rows = ct_rows(logits), cols = ct_cols(logits);
    CT_TRY(check_targets(targets, cols));
    cudaStream_t stream;
    CT_CUDA_STREAM(stream);
    ct_cuda_scratch row_loss;
    CT_TRY(row_loss.alloc((size_t)(rows ? rows : 1) * sizeof(double), "cross_entropy"));
    const int32_t *t = (const int32_t *)targets->data;
    if (rows) {
        if (logits->dtype == CT_F64)
            cross_entropy_rows_kernel<double><<<(unsigned)rows, CT_CUDA_THREADS, 0, stream>>>(
                ct_cuda_ref_of(logits), t, cols, (double *)row_logsumexp->data, (double *)row_loss.data);
        else
            cross_entropy_rows_kernel<float><<<(unsigned)rows, CT_CUDA_THREADS, 0, stream>>>(
                ct_cuda_ref_of(logits), t, cols, (float *)row_logsumexp->data, (double *)row_loss.data);
        CT_CUDA_CHECK_LAUNCH("cross_entropy_rows");
    }
    cross_entropy_total_kernel<<<1, CT_CUDA_THREADS, 0, stream>>>((const double *)row_loss.data, t, rows,
                                                                  reduction == CT_REDUCE_MEAN, ct_cuda_ref_of(out));
    CT_CUDA_CHECK_LAUNCH("cross_entropy_total");
    return 0;
}

// One block: *scale = grad_out / count for the mean (grad_out for the sum); 0 without targets.
__global__ void cross_entropy_scale_kernel(const int32_t *t, int64_t rows, int mean, ct_cuda_ref grad_out,
                                           double *scale) {
    __shared__ double shared[CT_CUDA_THREADS];
    double count = 0;
    for (int64_t r = threadIdx.x; r < rows; r += CT_CUDA_THREADS) count += t[r] != CT_IGNORE_INDEX;
    count = ct_cuda_block_sum(count, shared);
    if (threadIdx.x == 0)
        *scale = count > 0 ? ct_cuda_load<double>(grad_out, 0) / (mean ? count : 1.0) : 0.0;
}

// grad[r] += scale * (softmax(x[r]) - onehot(t[r])), one block per row.
template <typename T>
__global__ void cross_entropy_backward_kernel(ct_cuda_ref logits, const int32_t *t, const T *lse,
                                              const double *scale_at, T *grad, int64_t cols) {
    int64_t r = blockIdx.x, at = r * cols;
    int32_t target = t[r];
    if (target == CT_IGNORE_INDEX || target < 0 || target >= cols) return;  // bad targets: the forward failed
    T scale = (T)*scale_at, shift = lse[r];
    for (int64_t c = threadIdx.x; c < cols; c += CT_CUDA_THREADS) {
        T g = grad[at + c] + scale * exp(ct_cuda_load<T>(logits, at + c) - shift);
        grad[at + c] = c == target ? g - scale : g;
    }
}

extern "C" int ct_cuda_cross_entropy_backward(const ct_tensor *logits, const ct_tensor *targets,
                                              ct_reduction reduction, const ct_tensor *row_logsumexp,
                                              const ct_tensor *grad_out, ct_tensor *grad_logits) {
    int64_t rows = ct_rows(logits), cols = ct_cols(logits);
    if (rows * cols == 0) return 0;
    cudaStream_t stream;
    CT_CUDA_STREAM(stream);
    ct_cuda_scratch scale;
    CT_TRY(scale.alloc(sizeof(double), "cross_entropy backward"));
    const int32_t *t = (const int32_t *)targets->data;
    cross_entropy_scale_kernel<<<1, CT_CUDA_THREADS, 0, stream>>>(t, rows, reduction == CT_REDUCE_MEAN,
                                                                  ct_cuda_ref_of(grad_out), (double *)scale.data);
    CT_CUDA_CHECK_LAUNCH("cross_entropy_scale");
    if (logits->dtype == CT_F64)
        cross_entropy_backward_kernel<double><<<(unsigned)rows, CT_CUDA_THREADS, 0, stream>>>(
            ct_cuda_ref_of(logits), t, (const double *)row_logsumexp->data, (const double *)scale.data,
            (double *)grad_logits->data, cols);
    else
        cross_entropy_backward_kernel<float><<<(unsigned)rows, CT_CUDA_THREADS, 0, stream>>>(
            ct_cuda_ref_of(logits), t, (const float *)row_logsumexp->data, (const double *)scale.data,
            (float *)grad_logits->data, cols);
    CT_CUDA_CHECK_LAUNCH("cross_entropy_backward");
    return 0;
}
