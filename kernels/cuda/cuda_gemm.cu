// GEMM on the GPU: cuBLASLt with a cached plan per shape (see cuda_gemm.h for the dtype rules).
//
// Row-major to column-major: cuBLASLt is column-major, and a row-major [r, c] matrix is the same
// memory as a column-major [c, r] one. So row-major C = op(A) op(B) is computed as column-major
// C^T = op(B)^T op(A)^T: B's memory is passed as cuBLASLt's first operand with B's transpose flag,
// A's memory second with A's flag, and C as a column-major [N, M] matrix. No copies.
//
// A plan (matmul descriptor, the four layouts and the algorithm the heuristic picked) is built
// the first time a shape, dtype and pointer-alignment combination is seen and kept in a small
// table, so a training step asks the heuristic nothing after its first step. The workspace is one
// block from the caching allocator, taken at first use and kept until ct_cuda_gemm_release.
// Everything runs on the compute stream (kernels/cuda/cuda_stream.h).
#include <cublasLt.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>
#include <string.h>

#include "kernels/cuda/cuda_gemm.h"
#include "kernels/cuda/cuda_kernels.h"

#define GEMM_WORKSPACE_BYTES ((size_t)32 << 20) /* what cuBLAS recommends for Hopper */
#define GEMM_MAX_PLANS 128

typedef struct {
    int64_t M, N, K;
    int ta, tb;
    int in_type, out_type, compute; /* cudaDataType_t, cudaDataType_t, cublasComputeType_t */
    int align_a, align_b, align_c;  /* bytes, powers of two up to 256 */
} plan_key;

typedef struct {
    plan_key key;
    cublasLtMatmulDesc_t desc;
    cublasLtMatrixLayout_t layout_a, layout_b, layout_c; /* cuBLASLt's A (our b), B (our a), C = D */
    cublasLtMatmulAlgo_t algo;
    bool used;
} gemm_plan;

static cublasLtHandle_t g_handle;
static void *g_workspace;
static gemm_plan g_plans[GEMM_MAX_PLANS];
static int g_next_slot; /* round-robin replacement once the table is full */
static long long g_plans_built;

static int ensure_handle(void) {
    if (!g_handle) CT_CUBLAS_CHECK(cublasLtCreate(&g_handle));
    if (!g_workspace) {
        g_workspace = ct_cuda_alloc(GEMM_WORKSPACE_BYTES);
        if (!g_workspace) return ct_fail_context("gemm: cuBLASLt workspace: ");
    }
    return 0;
}

static void destroy_plan(gemm_plan *p) {
    if (!p->used) return;
    if (p->desc) cublasLtMatmulDescDestroy(p->desc);
    if (p->layout_a) cublasLtMatrixLayoutDestroy(p->layout_a);
    if (p->layout_b) cublasLtMatrixLayoutDestroy(p->layout_b);
    if (p->layout_c) cublasLtMatrixLayoutDestroy(p->layout_c);
    memset(p, 0, sizeof *p);
}

extern "C" void ct_cuda_gemm_release(void) {
    for (int i = 0; i < GEMM_MAX_PLANS; i++) destroy_plan(&g_plans[i]);
    g_next_slot = 0;
    if (g_workspace) ct_cuda_free(g_workspace);
    g_workspace = NULL;
    if (g_handle) cublasLtDestroy(g_handle);
    g_handle = NULL;
}

extern "C" ct_cuda_gemm_stats ct_cuda_gemm_get_stats(void) {
    ct_cuda_gemm_stats s = {0, g_plans_built};
    for (int i = 0; i < GEMM_MAX_PLANS; i++) s.cached_plans += g_plans[i].used;
    return s;
}

static int pointer_alignment(const void *p) {
    uintptr_t u = (uintptr_t)p;
    int align = 256;
    while (align > 1 && u % (uintptr_t)align) align /= 2;
    return align;
}

static int set_alignment(cublasLtMatmulPreference_t pref, cublasLtMatmulPreferenceAttributes_t attr, int bytes) {
    uint32_t v = (uint32_t)bytes;
    CT_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, attr, &v, sizeof v));
    return 0;
}

/* Descriptor, layouts and the heuristic's first algorithm for one key. */
static int build_plan(const plan_key *k, gemm_plan *p) {
    memset(p, 0, sizeof *p);
    p->key = *k;
    p->used = true;
    cudaDataType_t in = (cudaDataType_t)k->in_type, out = (cudaDataType_t)k->out_type;
    cudaDataType_t scale_type = in == CUDA_R_64F ? CUDA_R_64F : CUDA_R_32F;
    CT_CUBLAS_CHECK(cublasLtMatmulDescCreate(&p->desc, (cublasComputeType_t)k->compute, scale_type));
    cublasOperation_t op_first = k->tb ? CUBLAS_OP_T : CUBLAS_OP_N, op_second = k->ta ? CUBLAS_OP_T : CUBLAS_OP_N;
    CT_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSA, &op_first, sizeof op_first));
    CT_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSB, &op_second, sizeof op_second));
    /* Column-major shapes of the memory: b is [N, K] (tb) or [K, N] row-major; a is [M, K] or [K, M]. */
    uint64_t b_rows_cm = (uint64_t)(k->tb ? k->K : k->N), b_cols_cm = (uint64_t)(k->tb ? k->N : k->K);
    uint64_t a_rows_cm = (uint64_t)(k->ta ? k->M : k->K), a_cols_cm = (uint64_t)(k->ta ? k->K : k->M);
    CT_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->layout_a, in, b_rows_cm, b_cols_cm, (int64_t)b_rows_cm));
    CT_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->layout_b, in, a_rows_cm, a_cols_cm, (int64_t)a_rows_cm));
    CT_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->layout_c, out, (uint64_t)k->N, (uint64_t)k->M, k->N));

    cublasLtMatmulPreference_t pref;
    CT_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
    uint64_t ws = GEMM_WORKSPACE_BYTES;
    int status = 0;
    cublasLtMatmulHeuristicResult_t result;
    int found = 0;
    cublasStatus_t st = cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws,
                                                             sizeof ws);
    if (st == CUBLAS_STATUS_SUCCESS) {
        /* cuBLASLt's A is our b, its B our a. */
        if (set_alignment(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, k->align_b) < 0 ||
            set_alignment(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, k->align_a) < 0 ||
            set_alignment(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, k->align_c) < 0 ||
            set_alignment(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, k->align_c) < 0)
            status = -1;
        else
            st = cublasLtMatmulAlgoGetHeuristic(g_handle, p->desc, p->layout_a, p->layout_b, p->layout_c, p->layout_c,
                                                pref, 1, &result, &found);
    }
    cublasLtMatmulPreferenceDestroy(pref);
    if (status < 0) return -1;
    if (st != CUBLAS_STATUS_SUCCESS || found < 1)
        return ct_fail("gemm: cuBLASLt has no algorithm for M=%lld N=%lld K=%lld (%s) at %s:%d; check the dtypes "
                       "and that the GPU supports them",
                       (long long)k->M, (long long)k->N, (long long)k->K,
                       st != CUBLAS_STATUS_SUCCESS ? cublasLtGetStatusString(st) : "no heuristic result", __FILE__,
                       __LINE__);
    p->algo = result.algo;
    g_plans_built++;
    return 0;
}

/* The cached plan for k, or a new one in a free slot (round-robin replacement when the table is
 * full). A plan that cannot be built evicts nothing: it is built aside first. */
static gemm_plan *find_plan(const plan_key *k) {
    int free_slot = -1;
    for (int i = 0; i < GEMM_MAX_PLANS; i++) {
        if (g_plans[i].used && memcmp(&g_plans[i].key, k, sizeof *k) == 0) return &g_plans[i];
        if (!g_plans[i].used && free_slot < 0) free_slot = i;
    }
    gemm_plan fresh;
    if (build_plan(k, &fresh) < 0) {
        destroy_plan(&fresh);
        return NULL;
    }
    if (free_slot < 0) {
        free_slot = g_next_slot;
        g_next_slot = (g_next_slot + 1) % GEMM_MAX_PLANS;
    }
    destroy_plan(&g_plans[free_slot]);
    g_plans[free_slot] = fresh;
    return &g_plans[free_slot];
}

/* ---- conversion kernels for mixed dtypes ---- */

/* Element i of a [rows, cols] operand as f32; i8 values carry a scale per row or per block. */
__global__ void widen_kernel(const void *src, int dtype, int64_t n, int64_t cols, const float *scale,
                             int64_t scale_block, float *dst) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        float x;
        if (dtype == CT_BF16) x = __bfloat162float(((const __nv_bfloat16 *)src)[i]);
        else if (dtype == CT_F16) x = __half2float(((const __half *)src)[i]);
        else if (dtype == CT_I8) {
            int64_t row = i / cols, col = i % cols;
            float s = 1.0f;
            if (scale) s = scale_block ? scale[row * ((cols + scale_block - 1) / scale_block) + col / scale_block]
                                       : scale[row];
            x = (float)((const int8_t *)src)[i] * s;
        } else x = ((const float *)src)[i];
        dst[i] = x;
    }
}

/* Rounds as ct_f32_to_bf16 bit for bit; __float2bfloat16_rn's cvt.rn writes a canonical NaN. */
__global__ void narrow_kernel(const float *src, int64_t n, __nv_bfloat16 *dst) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        ((uint16_t *)dst)[i] = ct_cuda_to_bf16(src[i]);
}

/* c = beta * c, for K == 0 (cuBLASLt wants K >= 1). */
template <typename T>
__global__ void scale_kernel(T *c, int64_t n, double beta) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        c[i] = beta == 0 ? (T)0 : (T)((double)c[i] * beta);
}

/* Scratch for the mixed-dtype path: up to three f32 copies and host-kept i8 scales. */
typedef struct {
    ct_cuda_scratch a, b, c, a_scale, b_scale;
} gemm_scratch;

/* An f32 copy of t in `dst` (scales of an i8 tensor kept on the host go through scale_copy). */
static float *widened(const ct_tensor *t, cudaStream_t stream, ct_cuda_scratch *dst, ct_cuda_scratch *scale_copy) {
    int64_t n = ct_numel(t);
    if (dst->alloc(sizeof(float) * (size_t)n + 1, "gemm widening") < 0) return NULL;
    const float *scale = NULL;
    int64_t block = 0;
    if (t->dtype == CT_I8 && t->scale) {
        block = t->scale_block;
        scale = (const float *)t->scale->data;
        if (t->scale->device == CT_CPU) {
            size_t bytes = ct_nbytes(t->scale);
            if (scale_copy->alloc(bytes + 1, "gemm i8 scales") < 0 || ct_cuda_copy(scale_copy->data, scale, bytes, 0) < 0)
                return NULL;
            scale = (const float *)scale_copy->data;
        }
    }
    if (n > 0) {
        widen_kernel<<<ct_cuda_blocks(n), CT_CUDA_THREADS, 0, stream>>>(t->data, (int)t->dtype, n, ct_cols(t), scale,
                                                                        block, (float *)dst->data);
        if (ct_cuda_check_launch("gemm widen", __FILE__, __LINE__) < 0) return NULL;
    }
    return (float *)dst->data;
}

static bool dtypes_ok(ct_dtype a, ct_dtype b, ct_dtype c) {
    if (a == CT_F64 || b == CT_F64 || c == CT_F64) return a == CT_F64 && b == CT_F64 && c == CT_F64;
    bool a_ok = a == CT_F32 || a == CT_BF16 || a == CT_I8;
    bool b_ok = b == CT_F32 || b == CT_BF16 || b == CT_F16 || b == CT_I8;
    return a_ok && b_ok && (c == CT_F32 || c == CT_BF16);
}

/* K == 0: c = beta * c (cuBLASLt wants K >= 1). */
static int scale_only(ct_tensor *c, double beta, cudaStream_t stream) {
    int64_t n = ct_numel(c);
    if (beta == 1 || n == 0) return 0;
    unsigned blocks = ct_cuda_blocks(n);
    if (c->dtype == CT_F64) {
        scale_kernel<double><<<blocks, CT_CUDA_THREADS, 0, stream>>>((double *)c->data, n, beta);
    } else if (c->dtype == CT_F32) {
        scale_kernel<float><<<blocks, CT_CUDA_THREADS, 0, stream>>>((float *)c->data, n, beta);
    } else { /* bf16: through f32, as the CPU's widen-scale-round does */
        ct_cuda_scratch tmp, unused;
        float *f = widened(c, stream, &tmp, &unused);
        if (!f) return -1;
        scale_kernel<float><<<blocks, CT_CUDA_THREADS, 0, stream>>>(f, n, beta);
        narrow_kernel<<<blocks, CT_CUDA_THREADS, 0, stream>>>(f, n, (__nv_bfloat16 *)c->data);
    }
    CT_CUDA_CHECK_LAUNCH("gemm scale");
    return 0;
}

static int run_plan(const gemm_plan *p, const void *a, const void *b, void *c, double alpha, double beta,
                    cudaStream_t stream) {
    float alpha32 = (float)alpha, beta32 = (float)beta;
    bool f64 = p->key.in_type == CUDA_R_64F;
    const void *alpha_p = f64 ? (const void *)&alpha : (const void *)&alpha32;
    const void *beta_p = f64 ? (const void *)&beta : (const void *)&beta32;
    CT_CUBLAS_CHECK(cublasLtMatmul(g_handle, p->desc, alpha_p, b, p->layout_a, a, p->layout_b, beta_p, c, p->layout_c,
                                   c, p->layout_c, &p->algo, g_workspace, GEMM_WORKSPACE_BYTES, stream));
    return 0;
}

/* bf16_inputs: a and b both bf16 go to cuBLASLt as bf16 (tensor cores); false widens them to f32. */
static int gemm_run(const ct_tensor *a, bool ta, const ct_tensor *b, bool tb, ct_tensor *c, double alpha,
                    double beta, int64_t M, int64_t N, int64_t K, bool bf16_inputs, cudaStream_t stream) {
    plan_key key;
    memset(&key, 0, sizeof key); /* compared with memcmp: no stray padding bytes */
    key.M = M, key.N = N, key.K = K, key.ta = ta, key.tb = tb;
    const void *a_data = a->data, *b_data = b->data;
    void *c_data = c->data;
    gemm_scratch scratch;
    bool narrow_c = false;
    if (a->dtype == CT_F64) {
        key.in_type = key.out_type = CUDA_R_64F;
        key.compute = CUBLAS_COMPUTE_64F;
    } else if (bf16_inputs && a->dtype == CT_BF16 && b->dtype == CT_BF16) {
        key.in_type = CUDA_R_16BF;
        key.out_type = c->dtype == CT_BF16 ? CUDA_R_16BF : CUDA_R_32F;
        key.compute = CUBLAS_COMPUTE_32F;
    } else {
        /* f32 GEMM: plain CUBLAS_COMPUTE_32F never uses TF32, so it matches sgemm to rounding. */
        key.in_type = key.out_type = CUDA_R_32F;
        key.compute = CUBLAS_COMPUTE_32F;
        if (a->dtype != CT_F32 && !(a_data = widened(a, stream, &scratch.a, &scratch.a_scale))) return -1;
        if (b->dtype != CT_F32 && !(b_data = widened(b, stream, &scratch.b, &scratch.b_scale))) return -1;
        if (c->dtype == CT_BF16) {
            if (beta != 0) c_data = widened(c, stream, &scratch.c, &scratch.a_scale);
            else if (scratch.c.alloc(sizeof(float) * (size_t)(M * N), "gemm output") == 0) c_data = scratch.c.data;
            else c_data = NULL;
            if (!c_data) return -1;
            narrow_c = true;
        }
    }
    key.align_a = pointer_alignment(a_data), key.align_b = pointer_alignment(b_data);
    key.align_c = pointer_alignment(c_data);
    gemm_plan *plan = find_plan(&key);
    if (!plan && key.in_type == CUDA_R_16BF) {
        /* No bf16 algorithm for this shape or alignment (odd leading dimensions of a view): the
         * f32 GEMM on widened copies computes the same products, as the CPU does. */
        ct_clear_error();
        return gemm_run(a, ta, b, tb, c, alpha, beta, M, N, K, false, stream);
    }
    if (!plan) return -1;
    CT_TRY(run_plan(plan, a_data, b_data, c_data, alpha, beta, stream));
    if (narrow_c) {
        narrow_kernel<<<ct_cuda_blocks(M * N), CT_CUDA_THREADS, 0, stream>>>((const float *)c_data, M * N,
                                                                             (__nv_bfloat16 *)c->data);
        CT_CUDA_CHECK_LAUNCH("gemm narrow");
    }
    return 0;
}

extern "C" int ct_cuda_gemm(const ct_tensor *a, bool ta, const ct_tensor *b, bool tb, ct_tensor *c, double alpha,
                            double beta) {
    if (!dtypes_ok(a->dtype, b->dtype, c->dtype))
        return ct_fail("gemm (cuda): %s a, %s b, %s c: either all f64, or a f32/bf16/i8, b f32/bf16/f16/i8 and c "
                       "f32/bf16",
                       ct_dtype_name(a->dtype), ct_dtype_name(b->dtype), ct_dtype_name(c->dtype));
    if (a->device != CT_CUDA || b->device != CT_CUDA || c->device != CT_CUDA)
        return ct_fail("gemm (cuda): a, b and c must all be on cuda (move them with ct_to_device)");
    int64_t M = ta ? ct_cols(a) : ct_rows(a), K = ta ? ct_rows(a) : ct_cols(a);
    int64_t N = tb ? ct_rows(b) : ct_cols(b);
    if (M == 0 || N == 0) return 0;
    cudaStream_t stream;
    CT_CUDA_STREAM(stream);
    if (K == 0) return scale_only(c, beta, stream);
    CT_TRY(ensure_handle());
    if (gemm_run(a, ta, b, tb, c, alpha, beta, M, N, K, true, stream) < 0) {
        char sa[96], sb[96], sc[96];
        return ct_fail_context("gemm (cuda) a %s%s, b %s%s, c %s: ", ct_shape_str(a, sa, sizeof sa), ta ? "^T" : "",
                               ct_shape_str(b, sb, sizeof sb), tb ? "^T" : "", ct_shape_str(c, sc, sizeof sc));
    }
    return 0;
}
