/* The CUDA backend's kernels, one launcher per op-table entry (kernels/backend.h gives each one's
 * semantics; the CPU kernels in kernels/cpu/ are the reference). Shapes and dtypes were checked by
 * the op layer. Every launcher queues its kernels on the compute stream and returns 0, or -1 with
 * ct_fail; only those that must report bad data (token ids, targets) or return a host value wait
 * for the device.
 *
 * Reductions are deterministic run to run: fixed block sizes, partial sums combined in a fixed
 * tree order, no floating-point atomics. Their order differs from the CPU's, so results agree
 * with the CPU within rounding (the parity test's norm-wise tolerance), not bit for bit. Where
 * the CPU adds in a plain order per output (column sums, embedding backward) the GPU adds in the
 * same order and agrees bit for bit in f64.
 *
 * Below __CUDACC__: the device helpers the .cu files share (element loads and stores with the
 * dtype chosen at run time, block reductions, scratch memory). */
#ifndef CT_CUDA_KERNELS_H
#define CT_CUDA_KERNELS_H

/* tensor.h declares C functions without extern "C" of its own */
#ifdef __cplusplus
extern "C" {
#endif
#include "core/tensor.h"
#ifdef __cplusplus
}
#endif
#include "kernels/backend.h"

#ifdef __cplusplus
extern "C" {
#endif

int ct_cuda_binary(ct_binary_op op, const ct_tensor *a, const ct_tensor *b, ct_tensor *out);
int ct_cuda_convert(const ct_tensor *x, ct_tensor *y);
int ct_cuda_axpby(double alpha, const ct_tensor *x, double beta, ct_tensor *y);
int ct_cuda_mul_accumulate(const ct_tensor *x, const ct_tensor *y, ct_tensor *dst);
int ct_cuda_sum_rows_accumulate(const ct_tensor *x, const ct_tensor *y, ct_tensor *dst);
int ct_cuda_add_scalar(ct_tensor *dst, double value);
int ct_cuda_dora_row_norms(const ct_tensor *w, const ct_tensor *A, const ct_tensor *B, double scale, bool reciprocal,
                           ct_tensor *norm);
int ct_cuda_tanh_forward(const ct_tensor *x, ct_tensor *y);
int ct_cuda_tanh_backward(const ct_tensor *y, const ct_tensor *grad_y, ct_tensor *grad_x);
int ct_cuda_sum(const ct_tensor *x, ct_tensor *out);
int ct_cuda_embedding_forward(const ct_tensor *weight, const ct_tensor *ids, ct_tensor *out);
int ct_cuda_embedding_backward(const ct_tensor *grad_out, const ct_tensor *ids, ct_tensor *grad_weight);
int ct_cuda_log_softmax_forward(const ct_tensor *x, ct_tensor *y);
int ct_cuda_log_softmax_backward(const ct_tensor *y, const ct_tensor *grad_y, ct_tensor *grad_x);
int ct_cuda_cross_entropy_forward(const ct_tensor *logits, const ct_tensor *targets, ct_reduction reduction,
                                  ct_tensor *row_logsumexp, ct_tensor *out);
int ct_cuda_cross_entropy_backward(const ct_tensor *logits, const ct_tensor *targets, ct_reduction reduction,
                                   const ct_tensor *row_logsumexp, const ct_tensor *grad_out,
                                   ct_tensor *grad_logits);
int ct_cuda_adamw_multi(int n, ct_tensor *const *params, ct_tensor *const *grads, ct_tensor *const *m,
                        ct_tensor *const *v, const double *weight_decay, const ct_adamw_hparams *h, int64_t step);
int ct_cuda_sum_squares_multi(int n, const ct_tensor *const *x, double *result);
int ct_cuda_scale_multi(int n, ct_tensor *const *x, double factor);
int ct_cuda_mask_multi(int n, ct_tensor *const *x, const ct_tensor *const *mask);
int ct_cuda_rms_norm_forward(const ct_tensor *x, const ct_tensor *weight, double eps, ct_tensor *rstd,
                             ct_tensor *y);
int ct_cuda_rms_norm_backward(const ct_tensor *x, const ct_tensor *weight, const ct_tensor *rstd,
                              const ct_tensor *grad_y, ct_tensor *grad_x, ct_tensor *grad_weight);
int ct_cuda_swiglu_forward(const ct_tensor *gate, const ct_tensor *up, ct_tensor *out);
int ct_cuda_swiglu_backward(const ct_tensor *gate, const ct_tensor *up, const ct_tensor *grad_out,
                            ct_tensor *grad_gate, ct_tensor *grad_up);
int ct_cuda_rope(const ct_tensor *x, const ct_tensor *position_ids, const double *inv_freq, int direction,
                 bool accumulate, ct_tensor *y);
int ct_cuda_dropout(const ct_tensor *x, double p, uint64_t seed, uint64_t stream, bool accumulate, ct_tensor *y);
int ct_cuda_kl_div_forward(const ct_tensor *student, const ct_tensor *teacher, const ct_tensor *mask,
                           double temperature, ct_tensor *row_stats, ct_tensor *out);
int ct_cuda_kl_div_backward(const ct_tensor *student, const ct_tensor *teacher, const ct_tensor *mask,
                            double temperature, const ct_tensor *row_stats, const ct_tensor *grad_out,
                            ct_tensor *grad_student, ct_tensor *grad_teacher);
int ct_cuda_kd_rows_forward(const ct_tensor *student, const ct_tensor *teacher, const ct_tensor *targets,
                            const ct_kd_params *params, ct_tensor *row_stats);
int ct_cuda_kd_rows_backward(const ct_tensor *student, const ct_tensor *teacher, const ct_tensor *targets,
                             const ct_kd_params *params, const ct_tensor *row_stats, const ct_tensor *grad_out,
                             ct_tensor *grad_student);

/* Whether every entry of the CUDA op table is set (kernels/cuda/cuda_backend.cu). Until it is,
 * ct_cuda_backend() returns NULL and tensors stay off the GPU; ct_cuda_backend_table() gives the
 * partial table to tests that call its kernels directly. */
bool ct_cuda_backend_table_complete(void);
const ct_backend *ct_cuda_backend_table(void);

#ifdef __cplusplus
}
#endif

#ifdef __CUDACC__
#include <cuda_runtime.h>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_memory.h"
#include "kernels/cuda/cuda_stream.h"

/* Threads per block of every ctune kernel: fixed, so reduction trees never change shape. */
#define CT_CUDA_THREADS 256

/* An operand as kernels see it: memory and a dtype (f32, f64 or bf16) chosen at run time. The
 * branch is the same for every thread, so it costs little beside the memory traffic. */
struct ct_cuda_ref {
    void *data;
    int dtype;
};

static inline ct_cuda_ref ct_cuda_ref_of(const ct_tensor *t) {
    ct_cuda_ref r = {t ? t->data : NULL, t ? (int)t->dtype : (int)CT_F32};
    return r;
}

/* bf16 rounding bit for bit as ct_f32_to_bf16 (nearest even, NaN kept quiet). */
__device__ __forceinline__ uint16_t ct_cuda_to_bf16(float x) {
    uint32_t u = __float_as_uint(x);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

__device__ __forceinline__ float ct_cuda_from_bf16(uint16_t h) { return __uint_as_float((uint32_t)h << 16); }

template <typename T>
__device__ __forceinline__ T ct_cuda_load(ct_cuda_ref r, int64_t i) {
    if (r.dtype == CT_F64) return (T)((const double *)r.data)[i];
    if (r.dtype == CT_BF16) return (T)ct_cuda_from_bf16(((const uint16_t *)r.data)[i]);
    return (T)((const float *)r.data)[i];
}

template <typename T>
__device__ __forceinline__ void ct_cuda_store(ct_cuda_ref r, int64_t i, T v) {
    if (r.dtype == CT_F64) ((double *)r.data)[i] = (double)v;
    else if (r.dtype == CT_BF16) ((uint16_t *)r.data)[i] = ct_cuda_to_bf16((float)v);
    else ((float *)r.data)[i] = (float)v;
}

/* Sum / max over a block of CT_CUDA_THREADS threads in a fixed tree order; every thread gets the
 * result. shared must hold CT_CUDA_THREADS values; the call ends with the block synchronized. */
template <typename T>
__device__ __forceinline__ T ct_cuda_block_sum(T v, T *shared) {
    shared[threadIdx.x] = v;
    __syncthreads();
    for (int half = CT_CUDA_THREADS / 2; half > 0; half /= 2) {
        if ((int)threadIdx.x < half) shared[threadIdx.x] += shared[threadIdx.x + half];
        __syncthreads();
    }
    T total = shared[0];
    __syncthreads();
    return total;
}

template <typename T>
__device__ __forceinline__ T ct_cuda_block_max(T v, T *shared) {
    shared[threadIdx.x] = v;
    __syncthreads();
    for (int half = CT_CUDA_THREADS / 2; half > 0; half /= 2) {
        if ((int)threadIdx.x < half) shared[threadIdx.x] = fmax(shared[threadIdx.x], shared[threadIdx.x + half]);
        __syncthreads();
    }
    T result = shared[0];
    __syncthreads();
    return result;
}

/* Blocks for a grid-stride loop over n elements (at most 65535 * 16: enough to fill any GPU). */
static inline unsigned ct_cuda_blocks(int64_t n) {
    int64_t blocks = (n + CT_CUDA_THREADS - 1) / CT_CUDA_THREADS;
    if (blocks < 1) blocks = 1;
    return (unsigned)(blocks < 65535 * 16 ? blocks : 65535 * 16);
}

/* Device scratch memory from the caching allocator, returned when the launcher leaves. Freeing
 * before the queued kernels ran is safe: a block is reused only by later work on the same stream. */
struct ct_cuda_scratch {
    void *data = NULL;
    ct_cuda_scratch() = default;
    ct_cuda_scratch(const ct_cuda_scratch &) = delete;
    ct_cuda_scratch &operator=(const ct_cuda_scratch &) = delete;
    ~ct_cuda_scratch() { ct_cuda_free(data); }
    int alloc(size_t nbytes, const char *what) {
        data = ct_cuda_alloc(nbytes);
        return data ? 0 : ct_fail_context("%s scratch: ", what);
    }
};

/* Finds the first of n device i32 indices outside [0, limit) (an index equal to `ignored` is
 * allowed; INT64_MIN allows none):
 * 1 with *position and *value set, 0 when all are in range, -1 on a CUDA error. Waits for the
 * device (one small copy back), so errors name the index as the CPU's do. */
int ct_cuda_first_bad_index(const int32_t *indices, int64_t n, int64_t limit, int64_t ignored, int64_t *position,
                            int32_t *value);

/* Launcher prologue: `cudaStream_t stream; CT_CUDA_STREAM(stream);` */
#define CT_CUDA_STREAM(stream) CT_TRY(ct_cuda_stream_get(&(stream)))

/* ---- multi-tensor launches (the optimizer's kernels: cuda_optim.cu, cuda_reduce.cu) ----
 *
 * A list of tensors is cut into tiles of CT_CUDA_TILE elements; one block handles one tile of one
 * tensor, so a whole list is one launch. The list lives in device memory as an array of
 * descriptors, each with the index of its tensor's first tile (ascending); a block finds its
 * tensor by binary search. Lists longer than CT_CUDA_MULTI_CHUNK tensors take one launch per
 * chunk (first_tile counts from the chunk's first tile), which bounds the search and the grid.
 * The array is uploaded once and kept while the list is unchanged (ct_cuda_upload_cache), so a
 * training loop neither allocates nor copies descriptors after its first step. */
#include <string.h>

#include <vector>

#define CT_CUDA_TILE (CT_CUDA_THREADS * 8)
#define CT_CUDA_MULTI_CHUNK 4096

static inline int64_t ct_cuda_tiles(int64_t n) { return (n + CT_CUDA_TILE - 1) / CT_CUDA_TILE; }

/* One tensor of a list kernel: its data, elements and dtype (f32 or f64). 32 bytes, no padding,
 * so two lists compare with memcmp. */
struct ct_cuda_tensor_desc {
    void *data;
    int64_t n;
    int64_t first_tile;
    int32_t dtype;
    int32_t reserved; /* 0 */
};

/* A launch over descriptors [first, first + count): `tiles` blocks, the first of them tile
 * `tile_offset` of the whole list (where per-tile results of this chunk go). */
struct ct_cuda_list_chunk {
    int first, count;
    int64_t tiles, tile_offset;
};

/* Sets first_tile of every descriptor (which must have n > 0) relative to its chunk and splits
 * the list into chunks; returns the list's total tiles. */
template <typename Desc>
static inline int64_t ct_cuda_chunk_list(std::vector<Desc> &desc, std::vector<ct_cuda_list_chunk> &chunks) {
    chunks.clear();
    int64_t total = 0;
    for (int first = 0; first < (int)desc.size(); first += CT_CUDA_MULTI_CHUNK) {
        ct_cuda_list_chunk c = {first, 0, 0, total};
        for (int i = first; i < (int)desc.size() && i < first + CT_CUDA_MULTI_CHUNK; i++, c.count++) {
            desc[i].first_tile = c.tiles;
            c.tiles += ct_cuda_tiles(desc[i].n);
        }
        total += c.tiles;
        chunks.push_back(c);
    }
    return total;
}

/* Device side: the index (within the chunk's count descriptors) of the tensor that owns this
 * block's tile: the last descriptor whose first_tile <= blockIdx.x. Every tensor of a list has at
 * least one tile, so the owner is unique. Call from every thread; returns synchronized. */
template <typename Desc>
__device__ __forceinline__ int ct_cuda_tile_owner(const Desc *desc, int count) {
    __shared__ int owner;
    if (threadIdx.x == 0) {
        int lo = 0, hi = count - 1;
        while (lo < hi) {
            int mid = lo + (hi - lo + 1) / 2;
            if (desc[mid].first_tile <= (int64_t)blockIdx.x) lo = mid;
            else hi = mid - 1;
        }
        owner = lo;
    }
    __syncthreads();
    return owner;
}

/* A device copy of a host array (descriptors) that is refreshed only when its bytes change: the
 * same list every step costs one host memcmp and no copy or allocation. The device block grows
 * when a longer list comes and is kept for the life of the process. Each user keeps one static
 * instance; like the rest of the backend, it is called from one host thread. */
struct ct_cuda_upload_cache {
    void *device = NULL;
    size_t capacity = 0;
    std::vector<unsigned char> uploaded;

    /* *out = device memory holding `bytes` bytes equal to host's. */
    int get(const void *host, size_t bytes, const void **out) {
        if (bytes > capacity) {
            void *grown = ct_cuda_alloc(bytes);
            if (!grown) return ct_fail_context("multi-tensor descriptors: ");
            ct_cuda_free(device); /* stream-ordered: no queued kernel sees the block reused early */
            device = grown;
            capacity = bytes;
            uploaded.clear();
        }
        if (uploaded.size() != bytes || memcmp(uploaded.data(), host, bytes) != 0) {
            /* a copy from the host on the compute stream: runs after the kernels still reading
             * the previous list, and returns once the data has arrived */
            CT_TRY(ct_cuda_copy(device, host, bytes, 0));
            uploaded.assign((const unsigned char *)host, (const unsigned char *)host + bytes);
        }
        *out = device;
        return 0;
    }
};

/* The cache of the plain tensor lists (cuda_reduce.cu): clipping calls sum_squares_multi and
 * then scale_multi on the same gradient list, so sharing one cache uploads it once, whichever
 * of the two first runs (scale only runs on the steps that clip). */
ct_cuda_upload_cache &ct_cuda_tensor_list_cache();

/* The descriptors of a list of f32/f64 tensors, empty ones left out; -1 naming `op` for
 * another dtype. */
static inline int ct_cuda_tensor_list(const char *op, int n, const ct_tensor *const *x,
                                      std::vector<ct_cuda_tensor_desc> &desc) {
    desc.clear();
    for (int i = 0; i < n; i++) {
        if (x[i]->dtype != CT_F32 && x[i]->dtype != CT_F64)
            return ct_fail("%s: tensor %d of the list is %s on cuda (f32 or f64 only)", op, i,
                           ct_dtype_name(x[i]->dtype));
        if (ct_numel(x[i]) == 0) continue;
        ct_cuda_tensor_desc d = {x[i]->data, ct_numel(x[i]), 0, (int32_t)x[i]->dtype, 0};
        desc.push_back(d);
    }
    return 0;
}
#endif

#endif
