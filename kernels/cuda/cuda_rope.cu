// Rotary position embedding, HF rotate-half layout (kernels/backend.h: rope). x [B, T, H, D]:
// within each head element i < D/2 pairs with i + D/2 and the pair rotates by
// angle = direction * position * inv_freq[i], computed in double as on the CPU; f32 and bf16 rotate
// in f32. One thread per pair. The D/2 frequencies travel as a kernel argument, so a call copies
// nothing to the device and never waits.
#include "kernels/cuda/cuda_kernels.h"

#define ROPE_MAX_HALF 256

struct rope_freqs {
    double v[ROPE_MAX_HALF];
};

template <typename T>
__global__ void rope_kernel(ct_cuda_ref x, const int32_t *pos, rope_freqs freqs, int direction, int accumulate,
                            ct_cuda_ref y, int64_t rows, int64_t heads, int64_t half) {
    int64_t pairs = rows * heads * half;
    for (int64_t p = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; p < pairs; p += (int64_t)gridDim.x * blockDim.x) {
        int64_t i = p % half, row_head = p / half, r = row_head / heads;
        double angle = (double)direction * (double)pos[r] * freqs.v[i];
        T c = (T)cos(angle), s = (T)sin(angle);
        int64_t at1 = row_head * 2 * half + i, at2 = at1 + half;
        T x1 = ct_cuda_load<T>(x, at1), x2 = ct_cuda_load<T>(x, at2);
        T y1 = x1 * c - x2 * s, y2 = x2 * c + x1 * s;
        if (accumulate) {
            y1 += ct_cuda_load<T>(y, at1);
            y2 += ct_cuda_load<T>(y, at2);
        }
        ct_cuda_store<T>(y, at1, y1);
        ct_cuda_store<T>(y, at2, y2);
    }
}

extern "C" int ct_cuda_rope(const ct_tensor *x, const ct_tensor *position_ids, const double *inv_freq, int direction,
                            bool accumulate, ct_tensor *y) {
    int64_t rows = x->shape[0] * x->shape[1], heads = x->shape[2], half = x->shape[3] / 2;
    if (half > ROPE_MAX_HALF)
        return ct_fail("rope: head dimension %lld on cuda (at most %d)", (long long)x->shape[3], 2 * ROPE_MAX_HALF);
    if (rows * heads * half == 0) return 0;
    rope_freqs freqs = {};
    for (int64_t i = 0; i < half; i++) freqs.v[i] = inv_freq[i];
    cudaStream_t stream;
    CT_CUDA_STREAM(stream);
    unsigned blocks = ct_cuda_blocks(rows * heads * half);
    const int32_t *pos = (const int32_t *)position_ids->data;
    if (x->dtype == CT_F64)
        rope_kernel<double><<<blocks, CT_CUDA_THREADS, 0, stream>>>(ct_cuda_ref_of(x), pos, freqs, direction,
                                                                    accumulate, ct_cuda_ref_of(y), rows, heads, half);
    else
        rope_kernel<float><<<blocks, CT_CUDA_THREADS, 0, stream>>>(ct_cuda_ref_of(x), pos, freqs, direction,
                                                                   accumulate, ct_cuda_ref_of(y), rows, heads, half);
    CT_CUDA_CHECK_LAUNCH("rope");
    return 0;
}
