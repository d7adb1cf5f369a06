// Reductions (kernels/backend.h: sum, sum_squares_multi, sum_rows_accumulate).
//
// sum: each block adds a chunk of REDUCE_CHUNK elements in double (thread t takes
// elements t, t + 256, ... of the chunk; then a fixed tree), and one block adds the chunk sums
// the same way. The grouping depends only on n, so a result is the same on every run and GPU;
// it differs from the CPU's order (blocks of 4096 added in sequence) by rounding only.
//
// sum_squares_multi (the global gradient norm): one launch over the whole list, one block per
// tile of CT_CUDA_TILE elements of one tensor (cuda_kernels.h), each writing its tile's sum in
// double to its slot; one block then adds the slots as above, and one copy brings the total to
// the host. The grouping depends only on the list's sizes, so the same list gives the same bits.
//
// sum_rows_accumulate: one thread per column adds its rows in row order in double, exactly as
// the CPU does, so the two agree bit for bit.
#include <limits.h>

#include "kernels/cuda/cuda_kernels.h"

#define REDUCE_CHUNK (CT_CUDA_THREADS * 16)

template <typename T>
__global__ void chunk_sums_kernel(const T *x, int64_t n, double *partials) {
    __shared__ double shared[CT_CUDA_THREADS];
    int64_t begin = (int64_t)blockIdx.x * REDUCE_CHUNK;
    int64_t end = begin + REDUCE_CHUNK < n ? begin + REDUCE_CHUNK : n;
    double total = 0;
    for (int64_t i = begin + threadIdx.x; i < end; i += CT_CUDA_THREADS) total += (double)x[i];
    total = ct_cuda_block_sum(total, shared);
    if (threadIdx.x == 0) partials[blockIdx.x] = total;
}

// One block: the chunk sums into out (any real dtype) or into a double.
__global__ void combine_sums_kernel(const double *partials, int64_t count, ct_cuda_ref out) {
    __shared__ double shared[CT_CUDA_THREADS];
    double total = 0;
    for (int64_t i = threadIdx.x; i < count; i += CT_CUDA_THREADS) total += partials[i];
    total = ct_cuda_block_sum(total, shared);
    if (threadIdx.x == 0) ct_cuda_store<double>(out, 0, total);
}

// The sum of x into out, all queued on the stream.
static int reduce_into(const ct_tensor *x, ct_cuda_ref out) {
    int64_t n = ct_numel(x), chunks = (n + REDUCE_CHUNK - 1) / REDUCE_CHUNK;
    cudaStream_t stream;
    CT_CUDA_STREAM(stream);
    ct_cuda_scratch partials;
    CT_TRY(partials.alloc((size_t)(chunks ? chunks : 1) * sizeof(double), "sum"));
    double *p = (double *)partials.data;
    if (chunks) {
        if (x->dtype == CT_F64)
            chunk_sums_kernel<double><<<(unsigned)chunks, CT_CUDA_THREADS, 0, stream>>>((const double *)x->data, n, p);
        else
            chunk_sums_kernel<float><<<(unsigned)chunks, CT_CUDA_THREADS, 0, stream>>>((const float *)x->data, n, p);
        CT_CUDA_CHECK_LAUNCH("chunk_sums");
    }
    combine_sums_kernel<<<1, CT_CUDA_THREADS, 0, stream>>>(p, chunks, out);
    CT_CUDA_CHECK_LAUNCH("combine_sums");
    return 0;
}

extern "C" int ct_cuda_sum(const ct_tensor *x, ct_tensor *out) {
    if (x->dtype != CT_F32 && x->dtype != CT_F64)
        return ct_fail("sum: %s input on cuda (f32 or f64 only); convert it first", ct_dtype_name(x->dtype));
    return reduce_into(x, ct_cuda_ref_of(out));
}

template <typename T>
__device__ __forceinline__ double tile_squares(const ct_cuda_tensor_desc &d, int64_t tile) {
    const T *x = (const T *)d.data;
    int64_t begin = tile * CT_CUDA_TILE, end = begin + CT_CUDA_TILE < d.n ? begin + CT_CUDA_TILE : d.n;
    double total = 0;
    for (int64_t i = begin + threadIdx.x; i < end; i += CT_CUDA_THREADS) {
        double v = (double)x[i];
        total += v * v;
    }
    return total;
}

// One block per tile; tile_sums points at this chunk's first slot.
__global__ void tile_squares_kernel(const ct_cuda_tensor_desc *desc, int count, double *tile_sums) {
    __shared__ double shared[CT_CUDA_THREADS];
    int owner = ct_cuda_tile_owner(desc, count);
    ct_cuda_tensor_desc d = desc[owner];
    int64_t tile = (int64_t)blockIdx.x - d.first_tile;
    double total = d.dtype == CT_F64 ? tile_squares<double>(d, tile) : tile_squares<float>(d, tile);
    total = ct_cuda_block_sum(total, shared);
    if (threadIdx.x == 0) tile_sums[blockIdx.x] = total;
}

ct_cuda_upload_cache &ct_cuda_tensor_list_cache() {
    static ct_cuda_upload_cache cache;
    return cache;
}

extern "C" int ct_cuda_sum_squares_multi(int n, const ct_tensor *const *x, double *result) {
    static std::vector<ct_cuda_tensor_desc> desc;
    static std::vector<ct_cuda_list_chunk> chunks;
    ct_cuda_upload_cache &cache = ct_cuda_tensor_list_cache();
    *result = 0;
    CT_TRY(ct_cuda_tensor_list("sum_squares", n, x, desc));
    if (desc.empty()) return 0;
    int64_t tiles = ct_cuda_chunk_list(desc, chunks);
    const void *device_desc = NULL;
    CT_TRY(cache.get(desc.data(), desc.size() * sizeof(ct_cuda_tensor_desc), &device_desc));
    cudaStream_t stream;
    CT_CUDA_STREAM(stream);
    // the tile sums, then the total in the last slot
    ct_cuda_scratch sums;
    CT_TRY(sums.alloc((size_t)(tiles + 1) * sizeof(double), "sum_squares"));
    double *tile_sums = (double *)sums.data, *total = tile_sums + tiles;
    for (const ct_cuda_list_chunk &c : chunks) {
        if (c.tiles > INT_MAX)
            return ct_fail("sum_squares: %lld tiles in one launch (at most %d)", (long long)c.tiles, INT_MAX);
        tile_squares_kernel<<<(unsigned)c.tiles, CT_CUDA_THREADS, 0, stream>>>(
            (const ct_cuda_tensor_desc *)device_desc + c.first, c.count, tile_sums + c.tile_offset);
        CT_CUDA_CHECK_LAUNCH("tile_squares");
    }
    ct_cuda_ref out = {total, CT_F64};
    combine_sums_kernel<<<1, CT_CUDA_THREADS, 0, stream>>>(tile_sums, tiles, out);
    CT_CUDA_CHECK_LAUNCH("combine_sums");
    // NaN passes through: the caller (gradient clipping) reports a non-finite norm itself
    return ct_cuda_copy(result, total, sizeof(double), 1);
}

template <typename T>
__global__ void sum_rows_kernel(const T *x, ct_cuda_ref y, T *dst, int64_t rows, int64_t cols) {
    int64_t c = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
    if (c >= cols) return;
    double total = 0;
    // __dmul_rn keeps nvcc from fusing the product into an FMA: the CPU rounds it separately, and
    // the f64 parity check compares bit for bit
    for (int64_t r = 0; r < rows; r++)
        total += __dmul_rn((double)x[r * cols + c], y.data ? ct_cuda_load<double>(y, r * cols + c) : 1.0);
    dst[c] += (T)total;
}

extern "C" int ct_cuda_sum_rows_accumulate(const ct_tensor *x, const ct_tensor *y, ct_tensor *dst) {
    int64_t rows = ct_rows(x), cols = ct_cols(x);
    if (cols == 0) return 0;
    cudaStream_t stream;
    CT_CUDA_STREAM(stream);
    unsigned blocks = (unsigned)((cols + CT_CUDA_THREADS - 1) / CT_CUDA_THREADS);
    ct_cuda_ref yr = ct_cuda_ref_of(y);  // data NULL: no y
    if (x->dtype == CT_F64)
        sum_rows_kernel<double><<<blocks, CT_CUDA_THREADS, 0, stream>>>((const double *)x->data, yr,
                                                                        (double *)dst->data, rows, cols);
    else
        sum_rows_kernel<float><<<blocks, CT_CUDA_THREADS, 0, stream>>>((const float *)x->data, yr,
                                                                       (float *)dst->data, rows, cols);
    CT_CUDA_CHECK_LAUNCH("sum_rows_accumulate");
    return 0;
}
