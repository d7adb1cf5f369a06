// Elementwise activations (kernels/backend.h: tanh_forward, tanh_backward, swiglu_forward,
// swiglu_backward). SwiGLU: out = silu(gate) * up (up NULL: plain SiLU); the backward
// recomputes the sigmoid rather than saving it:
//   silu(g) = g * s,  s = 1 / (1 + exp(-g)),  silu'(g) = s * (1 + g * (1 - s)).
// gate, up and out are f32 or bf16 (computed in f32) or all f64; gradients f32 or f64.
#include "kernels/cuda/cuda_kernels.h"

template <typename T>
__global__ void tanh_forward_kernel(const T *x, T *y, int64_t n) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        y[i] = tanh(x[i]);
}

template <typename T>
__global__ void tanh_backward_kernel(const T *y, const T *gy, T *gx, int64_t n) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        gx[i] += gy[i] * (1 - y[i] * y[i]);
}

extern "C" int ct_cuda_tanh_forward(const ct_tensor *x, ct_tensor *y) {
    int64_t n = ct_numel(x);
    if (n == 0) return 0;
    cudaStream_t stream;
    CT_CUDA_STREAM(stream);
    if (x->dtype == CT_F64)
        tanh_forward_kernel<double><<<ct_cuda_blocks(n), CT_CUDA_THREADS, 0, stream>>>((const double *)x->data,
                                                                                      (double *)y->data, n);
    else
        tanh_forward_kernel<float><<<ct_cuda_blocks(n), CT_CUDA_THREADS, 0, stream>>>((const float *)x->data,
                                                                                     (float *)y->data, n);
    CT_CUDA_CHECK_LAUNCH("tanh_forward");
    return 0;
}

extern "C" int ct_cuda_tanh_backward(const ct_tensor *y, const ct_tensor *grad_y, ct_tensor *grad_x) {
    int64_t n = ct_numel(y);
    if (n == 0) return 0;
    cudaStream_t stream;
    CT_CUDA_STREAM(stream);
    if (y->dtype == CT_F64)
        tanh_backward_kernel<double><<<ct_cuda_blocks(n), CT_CUDA_THREADS, 0, stream>>>(
            (const double *)y->data, (const double *)grad_y->data, (double *)grad_x->data, n);
    else
        tanh_backward_kernel<float><<<ct_cuda_blocks(n), CT_CUDA_THREADS, 0, stream>>>(
            (const float *)y->data, (const float *)grad_y->data, (float *)grad_x->data, n);
    CT_CUDA_CHECK_LAUNCH("tanh_backward");
    return 0;
}

template <typename T>
__device__ __forceinline__ T sigmoid(T g) {
    return (T)1 / ((T)1 + exp(-g));
}

template <typename T>
__global__ void swiglu_forward_kernel(ct_cuda_ref gate, ct_cuda_ref up, ct_cuda_ref out, int64_t n) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        T g = ct_cuda_load<T>(gate, i), silu = g * sigmoid(g);
        ct_cuda_store<T>(out, i, up.data ? silu * ct_cuda_load<T>(up, i) : silu);
    }
}

template <typename T>
__global__ void swiglu_backward_kernel(ct_cuda_ref gate, ct_cuda_ref up, const T *go, T *gg, T *gu, int64_t n) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        T g = ct_cuda_load<T>(gate, i), s = sigmoid(g);
        T u = up.data ? ct_cuda_load<T>(up, i) : (T)1;
        if (gg) gg[i] += go[i] * u * (s * ((T)1 + g * ((T)1 - s)));
        if (gu && up.data) gu[i] += go[i] * g * s;
    }
}

extern "C" int ct_cuda_swiglu_forward(const ct_tensor *gate, const ct_tensor *up, ct_tensor *out) {
    int64_t n = ct_numel(gate);
    if (n == 0) return 0;
    cudaStream_t stream;
    CT_CUDA_STREAM(stream);
    if (gate->dtype == CT_F64)
        swiglu_forward_kernel<double><<<ct_cuda_blocks(n), CT_CUDA_THREADS, 0, stream>>>(
            ct_cuda_ref_of(gate), ct_cuda_ref_of(up), ct_cuda_ref_of(out), n);
    else
        swiglu_forward_kernel<float><<<ct_cuda_blocks(n), CT_CUDA_THREADS, 0, stream>>>(
            ct_cuda_ref_of(gate), ct_cuda_ref_of(up), ct_cuda_ref_of(out), n);
    CT_CUDA_CHECK_LAUNCH("swiglu_forward");
    return 0;
}

extern "C" int ct_cuda_swiglu_backward(const ct_tensor *gate, const ct_tensor *up, const ct_tensor *grad_out,
                                       ct_tensor *grad_gate, ct_tensor *grad_up) {
    int64_t n = ct_numel(gate);
    if (n == 0 || (!grad_gate && !grad_up)) return 0;
    cudaStream_t stream;
    CT_CUDA_STREAM(stream);
    void *gg = grad_gate ? grad_gate->data : NULL, *gu = grad_up ? grad_up->data : NULL;
    if (gate->dtype == CT_F64)
        swiglu_backward_kernel<double><<<ct_cuda_blocks(n), CT_CUDA_THREADS, 0, stream>>>(
            ct_cuda_ref_of(gate), ct_cuda_ref_of(up), (const double *)grad_out->data, (double *)gg, (double *)gu, n);
    else
        swiglu_backward_kernel<float><<<ct_cuda_blocks(n), CT_CUDA_THREADS, 0, stream>>>(
            ct_cuda_ref_of(gate), ct_cuda_ref_of(up), (const float *)grad_out->data, (float *)gg, (float *)gu, n);
    CT_CUDA_CHECK_LAUNCH("swiglu_backward");
    return 0;
}
