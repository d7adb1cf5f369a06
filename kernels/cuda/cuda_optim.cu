// The optimizer's kernels (kernels/backend.h: adamw_multi, scale_multi;
// kernels/cpu/cpu_adamw.c is the reference).
//
// AdamW as PyTorch computes it: decoupled weight decay applied to the parameter before the Adam
// step, bias-corrected moments, eps added after the square root. The step's constants are
// computed on the host exactly as the CPU computes them, and every operation of the update is an
// explicitly rounded intrinsic (__fmul_rn, ...): nvcc would otherwise fuse a * b + c into one FMA,
// which the CPU build (ISO C, no contraction) does not, so with them the GPU's update is the CPU's
// bit for bit (IEEE division and square root on both).
//
// adamw_multi updates a whole parameter list in one launch (cuda_kernels.h: tiles, descriptors
// cached on the device). Per tensor only the weight decay differs; the learning rate, which a
// schedule changes every step, is a kernel argument, so the cached descriptors stay valid.
// scale_multi (gradient clipping) is one launch over the gradient list the same way.
#include <limits.h>
#include <math.h>

#include "kernels/cuda/cuda_kernels.h"

namespace {

__device__ __forceinline__ float mul_rn(float a, float b) { return __fmul_rn(a, b); }
__device__ __forceinline__ double mul_rn(double a, double b) { return __dmul_rn(a, b); }
__device__ __forceinline__ float add_rn(float a, float b) { return __fadd_rn(a, b); }
__device__ __forceinline__ double add_rn(double a, double b) { return __dadd_rn(a, b); }
__device__ __forceinline__ float sub_rn(float a, float b) { return __fsub_rn(a, b); }
__device__ __forceinline__ double sub_rn(double a, double b) { return __dsub_rn(a, b); }
__device__ __forceinline__ float div_rn(float a, float b) { return __fdiv_rn(a, b); }
__device__ __forceinline__ double div_rn(double a, double b) { return __ddiv_rn(a, b); }
__device__ __forceinline__ float sqrt_rn(float a) { return __fsqrt_rn(a); }
__device__ __forceinline__ double sqrt_rn(double a) { return __dsqrt_rn(a); }

// The per-step constants in the parameter's dtype, as cpu_adamw.c rounds them. decay depends on
// the tensor's weight decay and is computed per tensor (decay_for).
template <typename T>
struct adamw_constants {
    T step_size, beta1, beta2, one_minus_beta1, one_minus_beta2, eps, inv_sqrt_bias2;
};

// Everything but the weight decay, from the hyperparameters; the same expressions as the CPU.
struct adamw_step_values {
    double lr, step_size, beta1, beta2, eps, inv_sqrt_bias2;
};

adamw_step_values step_values(const ct_adamw_hparams *h, int64_t step) {
    double bias1 = 1.0 - pow(h->beta1, (double)step), bias2 = 1.0 - pow(h->beta2, (double)step);
    adamw_step_values s = {h->lr, h->lr / bias1, h->beta1, h->beta2, h->eps, 1.0 / sqrt(bias2)};
    return s;
}

template <typename T>
adamw_constants<T> constants_in(const adamw_step_values &s) {
    adamw_constants<T> c;
    c.step_size = (T)s.step_size;
    c.beta1 = (T)s.beta1;
    c.beta2 = (T)s.beta2;
    c.one_minus_beta1 = (T)1 - c.beta1;  // the CPU's (1 - beta1), in T
    c.one_minus_beta2 = (T)1 - c.beta2;
    c.eps = (T)s.eps;
    c.inv_sqrt_bias2 = (T)s.inv_sqrt_bias2;
    return c;
}

// (T)(1.0 - lr * weight_decay), rounded as the CPU's double expression.
template <typename T>
__device__ __forceinline__ T decay_for(double lr, double weight_decay) {
    return (T)__dsub_rn(1.0, __dmul_rn(lr, weight_decay));
}

// One element: m and v first, then the parameter from the new moments (cpu_adamw.c's order).
template <typename T>
__device__ __forceinline__ void adamw_element(T *p, const T *g, T *m, T *v, int64_t i, T decay,
                                              const adamw_constants<T> &c) {
    T gi = g[i];
    T mi = add_rn(mul_rn(c.beta1, m[i]), mul_rn(c.one_minus_beta1, gi));
    T vi = add_rn(mul_rn(c.beta2, v[i]), mul_rn(mul_rn(c.one_minus_beta2, gi), gi));
    m[i] = mi;
    v[i] = vi;
    T denominator = add_rn(mul_rn(sqrt_rn(vi), c.inv_sqrt_bias2), c.eps);
    p[i] = sub_rn(mul_rn(p[i], decay), div_rn(mul_rn(c.step_size, mi), denominator));
}

// ---- the multi-tensor update ----

// 64 bytes, no padding (memcmp-able): the four tensors of one parameter, its element count and
// dtype, its weight decay, and its first tile within the chunk.
struct adamw_desc {
    void *p;
    const void *g;
    void *m, *v;
    int64_t n;
    int64_t first_tile;
    double weight_decay;
    int32_t dtype;
    int32_t reserved;  // 0
};
static_assert(sizeof(adamw_desc) == 64, "adamw_desc must have no padding (it is compared with memcmp)");

template <typename T>
__device__ __forceinline__ void adamw_tile(const adamw_desc &d, int64_t tile, double lr, const adamw_constants<T> &c) {
    T decay = decay_for<T>(lr, d.weight_decay);
    int64_t begin = tile * CT_CUDA_TILE, end = begin + CT_CUDA_TILE < d.n ? begin + CT_CUDA_TILE : d.n;
    for (int64_t i = begin + threadIdx.x; i < end; i += CT_CUDA_THREADS)
        adamw_element((T *)d.p, (const T *)d.g, (T *)d.m, (T *)d.v, i, decay, c);
}

// One block per tile; the dtype branch is the same for the whole block.
__global__ void adamw_multi_kernel(const adamw_desc *desc, int count, double lr, adamw_constants<float> c32,
                                   adamw_constants<double> c64) {
    int owner = ct_cuda_tile_owner(desc, count);
    adamw_desc d = desc[owner];
    int64_t tile = (int64_t)blockIdx.x - d.first_tile;
    if (d.dtype == CT_F64) adamw_tile<double>(d, tile, lr, c64);
    else adamw_tile<float>(d, tile, lr, c32);
}

int adamw_descriptors(int n, ct_tensor *const *params, ct_tensor *const *grads, ct_tensor *const *m,
                      ct_tensor *const *v, const double *weight_decay, std::vector<adamw_desc> &desc) {
    desc.clear();
    for (int i = 0; i < n; i++) {
        ct_dtype dtype = params[i]->dtype;
        if (dtype != CT_F32 && dtype != CT_F64)
            return ct_fail("adamw: parameter %d is %s on cuda (f32 or f64 only)", i, ct_dtype_name(dtype));
        if (grads[i]->dtype != dtype || m[i]->dtype != dtype || v[i]->dtype != dtype)
            return ct_fail("adamw: parameter %d is %s but its gradient or moments are not", i, ct_dtype_name(dtype));
        int64_t count = ct_numel(params[i]);
        if (ct_numel(grads[i]) != count || ct_numel(m[i]) != count || ct_numel(v[i]) != count)
            return ct_fail("adamw: parameter %d: gradient or moments differ in element count", i);
        if (count == 0) continue;
        adamw_desc d = {params[i]->data, grads[i]->data, m[i]->data, v[i]->data, count, 0,
                        weight_decay[i], (int32_t)dtype, 0};
        desc.push_back(d);
    }
    return 0;
}

// ---- gradient scaling ----

template <typename T>
__device__ __forceinline__ void scale_tile(const ct_cuda_tensor_desc &d, int64_t tile, T factor) {
    T *x = (T *)d.data;
    int64_t begin = tile * CT_CUDA_TILE, end = begin + CT_CUDA_TILE < d.n ? begin + CT_CUDA_TILE : d.n;
    for (int64_t i = begin + threadIdx.x; i < end; i += CT_CUDA_THREADS) x[i] = mul_rn(x[i], factor);
}

__global__ void scale_multi_kernel(const ct_cuda_tensor_desc *desc, int count, float factor32, double factor64) {
    int owner = ct_cuda_tile_owner(desc, count);
    ct_cuda_tensor_desc d = desc[owner];
    int64_t tile = (int64_t)blockIdx.x - d.first_tile;
    if (d.dtype == CT_F64) scale_tile<double>(d, tile, factor64);
    else scale_tile<float>(d, tile, factor32);
}

int check_grid(const ct_cuda_list_chunk &c, const char *op) {
    if (c.tiles > INT_MAX) return ct_fail("%s: %lld tiles in one launch (at most %d)", op, (long long)c.tiles, INT_MAX);
    return 0;
}

}  // namespace

extern "C" int ct_cuda_adamw_multi(int n, ct_tensor *const *params, ct_tensor *const *grads, ct_tensor *const *m,
                                   ct_tensor *const *v, const double *weight_decay, const ct_adamw_hparams *h,
                                   int64_t step) {
    static std::vector<adamw_desc> desc;
    static std::vector<ct_cuda_list_chunk> chunks;
    static ct_cuda_upload_cache cache;
    CT_TRY(adamw_descriptors(n, params, grads, m, v, weight_decay, desc));
    if (desc.empty()) return 0;
    ct_cuda_chunk_list(desc, chunks);
    const void *device_desc = NULL;
    CT_TRY(cache.get(desc.data(), desc.size() * sizeof(adamw_desc), &device_desc));
    cudaStream_t stream;
    CT_CUDA_STREAM(stream);
    adamw_step_values s = step_values(h, step);
    adamw_constants<float> c32 = constants_in<float>(s);
    adamw_constants<double> c64 = constants_in<double>(s);
    for (const ct_cuda_list_chunk &c : chunks) {
        CT_TRY(check_grid(c, "adamw"));
        adamw_multi_kernel<<<(unsigned)c.tiles, CT_CUDA_THREADS, 0, stream>>>(
            (const adamw_desc *)device_desc + c.first, c.count, s.lr, c32, c64);
        CT_CUDA_CHECK_LAUNCH("adamw_multi");
    }
    return 0;
}

extern "C" int ct_cuda_scale_multi(int n, ct_tensor *const *x, double factor) {
    static std::vector<ct_cuda_tensor_desc> desc;
    static std::vector<ct_cuda_list_chunk> chunks;
    ct_cuda_upload_cache &cache = ct_cuda_tensor_list_cache();
    CT_TRY(ct_cuda_tensor_list("scale", n, (const ct_tensor *const *)x, desc));
    if (desc.empty()) return 0;
    ct_cuda_chunk_list(desc, chunks);
    const void *device_desc = NULL;
    CT_TRY(cache.get(desc.data(), desc.size() * sizeof(ct_cuda_tensor_desc), &device_desc));
    cudaStream_t stream;
    CT_CUDA_STREAM(stream);
    for (const ct_cuda_list_chunk &c : chunks) {
        CT_TRY(check_grid(c, "scale"));
        scale_multi_kernel<<<(unsigned)c.tiles, CT_CUDA_THREADS, 0, stream>>>(
            (const ct_cuda_tensor_desc *)device_desc + c.first, c.count, (float)factor, factor);
        CT_CUDA_CHECK_LAUNCH("scale_multi");
    }
    return 0;
}
