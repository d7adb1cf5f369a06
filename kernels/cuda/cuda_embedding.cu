// Embedding lookup (kernels/backend.h: embedding_forward, embedding_backward).
//
// Forward first checks every id on the device and reads back the first bad position (one small
// device-to-host copy, so the error names the id like the CPU's), then gathers rows; an i8 table
// is widened with its per-row or per-block scales, an f16 table exactly.
//
// Backward adds tokens in token order with no atomics, as the CPU does, so repeated ids add in
// the same order and f64 results agree bit for bit: thread (column c, bucket k) walks every token
// and adds those whose id % buckets == k. Buckets give the launch enough threads when the width
// is small; each (id, column) is still owned by one thread.
#include <cuda_fp16.h>

#include "kernels/cuda/cuda_kernels.h"

// -1 with the CPU's message when some id is outside [0, vocab); waits for the device.
static int check_ids(const ct_tensor *ids, int64_t vocab) {
    int64_t first = 0;
    int32_t id = 0;
    int found = ct_cuda_first_bad_index((const int32_t *)ids->data, ct_numel(ids), vocab, INT64_MIN, &first, &id);
    if (found <= 0) return found;
    return ct_fail("embedding: token id %d at position %lld is outside the table's %lld rows", id,
                   (long long)first, (long long)vocab);
}

template <typename T>
__global__ void embedding_gather_kernel(ct_cuda_ref weight, const int32_t *ids, ct_cuda_ref out, int64_t n,
                                        int64_t dim) {
    int64_t total = n * dim;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
        int64_t token = i / dim, c = i % dim;
        ct_cuda_store<T>(out, i, ct_cuda_load<T>(weight, (int64_t)ids[token] * dim + c));
    }
}

// value = q * scale; one scale per row (block == 0) or per `block` elements of a row
__global__ void embedding_gather_i8_kernel(const int8_t *weight, const float *scale, int64_t block,
                                           const int32_t *ids, ct_cuda_ref out, int64_t n, int64_t dim) {
    int64_t total = n * dim, per_row = block ? (dim + block - 1) / block : 1;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
        int64_t row = ids[i / dim], c = i % dim;
        double q = weight[row * dim + c];
        double s = scale ? scale[block ? row * per_row + c / block : row] : 1.0;
        ct_cuda_store<double>(out, i, q * s);
    }
}

// an f16 table (frozen) read into f32 rows; the widening is exact, as the CPU's ct_get
__global__ void embedding_gather_f16_kernel(const __half *weight, const int32_t *ids, ct_cuda_ref out, int64_t n,
                                            int64_t dim) {
    int64_t total = n * dim;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x)
        ct_cuda_store<float>(out, i, __half2float(weight[(int64_t)ids[i / dim] * dim + i % dim]));
}

extern "C" int ct_cuda_embedding_forward(const ct_tensor *weight, const ct_tensor *ids, ct_tensor *out) {
    int64_t vocab = weight->shape[0], dim = weight->shape[1], n = ct_numel(ids);
    CT_TRY(check_ids(ids, vocab));
    if (n * dim == 0) return 0;
    cudaStream_t stream;
    CT_CUDA_STREAM(stream);
    const int32_t *id = (const int32_t *)ids->data;
    unsigned blocks = ct_cuda_blocks(n * dim);
    ct_cuda_scratch scale_copy;
    const float *scale = NULL;
    if (weight->dtype == CT_I8 && weight->scale) {
        // scales kept on the host (as cuda_gemm.cu accepts them) go over first: the kernel reads
        // device memory only
        scale = (const float *)weight->scale->data;
        if (weight->scale->device == CT_CPU) {
            size_t bytes = ct_nbytes(weight->scale);
            CT_TRY(scale_copy.alloc(bytes + 1, "embedding i8 scales"));
            CT_TRY(ct_cuda_copy(scale_copy.data, scale, bytes, 0));
            scale = (const float *)scale_copy.data;
        }
    }
    if (weight->dtype == CT_I8)
        embedding_gather_i8_kernel<<<blocks, CT_CUDA_THREADS, 0, stream>>>(
            (const int8_t *)weight->data, scale, weight->scale_block, id, ct_cuda_ref_of(out), n, dim);
    else if (weight->dtype == CT_F16)
        embedding_gather_f16_kernel<<<blocks, CT_CUDA_THREADS, 0, stream>>>((const __half *)weight->data, id,
                                                                            ct_cuda_ref_of(out), n, dim);
    else if (weight->dtype == CT_F64)
        embedding_gather_kernel<double><<<blocks, CT_CUDA_THREADS, 0, stream>>>(ct_cuda_ref_of(weight), id,
                                                                                ct_cuda_ref_of(out), n, dim);
    else
        embedding_gather_kernel<float><<<blocks, CT_CUDA_THREADS, 0, stream>>>(ct_cuda_ref_of(weight), id,
                                                                               ct_cuda_ref_of(out), n, dim);
    CT_CUDA_CHECK_LAUNCH("embedding_gather");
    return 0;
}

template <typename T>
__global__ void embedding_backward_kernel(const T *grad_out, const int32_t *ids, T *grad_weight, int64_t n,
                                          int64_t vocab, int64_t dim, int buckets) {
    int64_t thread = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
    if (thread >= dim * buckets) return;
    int64_t c = thread % dim, bucket = thread / dim;
    for (int64_t i = 0; i < n; i++) {
        int64_t id = ids[i];  // the forward checked the ids; a bad one is skipped, never written
        if (id >= 0 && id < vocab && id % buckets == bucket) grad_weight[id * dim + c] += grad_out[i * dim + c];
    }
}

extern "C" int ct_cuda_embedding_backward(const ct_tensor *grad_out, const ct_tensor *ids, ct_tensor *grad_weight) {
    int64_t vocab = grad_weight->shape[0], dim = grad_weight->shape[1], n = ct_numel(ids);
    if (n * dim == 0) return 0;
    cudaStream_t stream;
    CT_CUDA_STREAM(stream);
    // enough threads to fill a GPU's schedulers (16K), at most 32 passes over the ids
    int buckets = (int)(16384 / dim);
    buckets = buckets < 1 ? 1 : buckets > 32 ? 32 : buckets;
    unsigned blocks = (unsigned)((dim * buckets + CT_CUDA_THREADS - 1) / CT_CUDA_THREADS);
    const int32_t *id = (const int32_t *)ids->data;
    if (grad_weight->dtype == CT_F64)
        embedding_backward_kernel<double><<<blocks, CT_CUDA_THREADS, 0, stream>>>(
            (const double *)grad_out->data, id, (double *)grad_weight->data, n, vocab, dim, buckets);
    else
        embedding_backward_kernel<float><<<blocks, CT_CUDA_THREADS, 0, stream>>>(
            (const float *)grad_out->data, id, (float *)grad_weight->data, n, vocab, dim, buckets);
    CT_CUDA_CHECK_LAUNCH("embedding_backward");
    return 0;
}
