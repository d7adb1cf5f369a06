// The fused distillation loss on one chunk of logits (kernels/backend.h: kd_rows_forward,
// kd_rows_backward; the formulas are in kernels/cpu/cpu_kd.c). One block per row: maxima by a
// fixed tree, then the row's five sums of exps in double by a fixed tree, so a row's stats do not
// depend on the launch; backward recomputes p_s, p_t and softmax(s) from the stats and writes the
// logit gradient. Rows whose target is negative get zero stats and a zero gradient. f32 and f64.
#include <float.h>

#include "kernels/cuda/cuda_kernels.h"

template <typename T>
__global__ void kd_rows_kernel(const T *s, const T *t, const int32_t *targets, ct_kd_params p, double *stats,
                               int64_t cols) {
    __shared__ double shared[CT_CUDA_THREADS];
    int64_t r = blockIdx.x, at = r * cols;
    double *st = stats + CT_KD_STATS * r;
    int32_t y = targets[r];
    if (y < 0) {
        if (threadIdx.x < CT_KD_STATS) st[threadIdx.x] = 0;
        return;
    }
    T inv = (T)(1.0 / p.temperature);
    double ms = -FLT_MAX, mt = -FLT_MAX;  // maxima of s and t (T > 0 keeps the order under / T)
    for (int64_t c = threadIdx.x; c < cols; c += CT_CUDA_THREADS) {
        ms = fmax(ms, (double)s[at + c]);
        if (t) mt = fmax(mt, (double)t[at + c]);
    }
    ms = ct_cuda_block_max(ms, shared);
    if (t) mt = ct_cuda_block_max(mt, shared);
    T ms_t = (T)ms * inv, mt_t = (T)mt * inv, ms_1 = (T)ms;
    double zs = 0, zt = 0, z1 = 0, ef = 0, er = 0;
    for (int64_t c = threadIdx.x; c < cols; c += CT_CUDA_THREADS) {
        T sv = s[at + c], as = sv * inv, es = exp(as - ms_t);
        zs += (double)es;
        z1 += (double)exp(sv - ms_1);
        if (t) {
            T at_ = t[at + c] * inv, et = exp(at_ - mt_t);
            zt += (double)et;
            ef += (double)(et * (at_ - as));
            er += (double)(es * (as - at_));
        }
    }
    zs = ct_cuda_block_sum(zs, shared);
    z1 = ct_cuda_block_sum(z1, shared);
    if (t) {
        zt = ct_cuda_block_sum(zt, shared);
        ef = ct_cuda_block_sum(ef, shared);
        er = ct_cuda_block_sum(er, shared);
    }
    if (threadIdx.x == 0) {
        double lse_s = (double)ms_t + log(zs), lse_1 = ms + log(z1);
        double lse_t = t ? (double)mt_t + log(zt) : 0;
        double kl_fwd = t ? ef / zt - lse_t + lse_s : 0, kl_rev = t ? er / zs - lse_s + lse_t : 0;
        double kl = p.divergence == CT_KD_FORWARD_KL ? kl_fwd : p.divergence == CT_KD_REVERSE_KL ? kl_rev
                                                                                              : 0.5 * (kl_fwd + kl_rev);
        st[0] = lse_s;
        st[1] = lse_t;
        st[2] = lse_1;
        st[3] = kl_rev;
        st[4] = p.ce_weight * (lse_1 - (double)s[at + y]) +
                (t ? p.kl_weight * p.temperature * p.temperature * kl : 0.0);
    }
}

template <typename T>
__global__ void kd_backward_kernel(const T *s, const T *t, const int32_t *targets, ct_kd_params p,
                                   const double *stats, ct_cuda_ref grad_out, T *g, int64_t cols) {
    int64_t r = blockIdx.x, at = r * cols;
    int32_t y = targets[r];
    if (y < 0) {
        for (int64_t c = threadIdx.x; c < cols; c += CT_CUDA_THREADS) g[at + c] = 0;
        return;
    }
    const double *st = stats + CT_KD_STATS * r;
    double scale = ct_cuda_load<double>(grad_out, 0);
    T inv = (T)(1.0 / p.temperature), lse_s = (T)st[0], lse_t = (T)st[1], lse_1 = (T)st[2], kl_rev = (T)st[3];
    T ce_w = (T)(scale * p.ce_weight), kl_w = t ? (T)(scale * p.kl_weight * p.temperature) : (T)0;
    T fwd = p.divergence == CT_KD_FORWARD_KL ? 1 : p.divergence == CT_KD_SYMMETRIC_KL ? (T)0.5 : 0;
    T rev = p.divergence == CT_KD_REVERSE_KL ? 1 : p.divergence == CT_KD_SYMMETRIC_KL ? (T)0.5 : 0;
    for (int64_t c = threadIdx.x; c < cols; c += CT_CUDA_THREADS) {
        T sv = s[at + c], v = ce_w != 0 ? ce_w * (exp(sv - lse_1) - (c == y ? (T)1 : (T)0)) : (T)0;
        if (kl_w != 0) {
            T log_ps = sv * inv - lse_s, log_pt = t[at + c] * inv - lse_t, ps = exp(log_ps), pt = exp(log_pt);
            v += kl_w * (fwd * (ps - pt) + rev * ps * (log_ps - log_pt - kl_rev));
        }
        g[at + c] = v;
    }
}

template <typename T>
static int kd_forward_typed(const ct_tensor *student, const ct_tensor *teacher, const ct_tensor *targets,
                            const ct_kd_params *p, ct_tensor *row_stats, cudaStream_t stream) {
    int64_t rows = ct_rows(student), cols = ct_cols(student);
    if (!rows) return 0;
    kd_rows_kernel<T><<<(unsigned)rows, CT_CUDA_THREADS, 0, stream>>>(
        (const T *)student->data, teacher ? (const T *)teacher->data : NULL, (const int32_t *)targets->data, *p,
        (double *)row_stats->data, cols);
    CT_CUDA_CHECK_LAUNCH("kd_rows");
    return 0;
}

extern "C" int ct_cuda_kd_rows_forward(const ct_tensor *student, const ct_tensor *teacher, const ct_tensor *targets,
                                       const ct_kd_params *params, ct_tensor *row_stats) {
    cudaStream_t stream;
    CT_CUDA_STREAM(stream);
    if (student->dtype == CT_F64) return kd_forward_typed<double>(student, teacher, targets, params, row_stats, stream);
    return kd_forward_typed<float>(student, teacher, targets, params, row_stats, stream);
}

template <typename T>
static int kd_backward_typed(const ct_tensor *student, const ct_tensor *teacher, const ct_tensor *targets,
                             const ct_kd_params *p, const ct_tensor *row_stats, const ct_tensor *grad_out,
                             ct_tensor *grad_student, cudaStream_t stream) {
    int64_t rows = ct_rows(student), cols = ct_cols(student);
    if (!rows) return 0;
    kd_backward_kernel<T><<<(unsigned)rows, CT_CUDA_THREADS, 0, stream>>>(
        (const T *)student->data, teacher ? (const T *)teacher->data : NULL, (const int32_t *)targets->data, *p,
        (const double *)row_stats->data, ct_cuda_ref_of(grad_out), (T *)grad_student->data, cols);
    CT_CUDA_CHECK_LAUNCH("kd_backward");
    return 0;
}

extern "C" int ct_cuda_kd_rows_backward(const ct_tensor *student, const ct_tensor *teacher, const ct_tensor *targets,
                                        const ct_kd_params *params, const ct_tensor *row_stats,
                                        const ct_tensor *grad_out, ct_tensor *grad_student) {
    cudaStream_t stream;
    CT_CUDA_STREAM(stream);
    if (student->dtype == CT_F64)
        return kd_backward_typed<double>(student, teacher, targets, params, row_stats, grad_out, grad_student, stream);
    return kd_backward_typed<float>(student, teacher, targets, params, row_stats, grad_out, grad_student, stream);
}
