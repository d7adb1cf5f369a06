// cuDNN fused scaled-dot-product attention (cuda_attention.h), built through cuDNN's C backend
// API (cudnn_graph.h) as the composite graph cuDNN's flash-attention engines recognize -- the
// graph cudnn-frontend builds for its "sdpa" node. Shapes: cuDNN sees [B, H, T, D]; ctune's
// [B, T, H, D] row-major tensors are given to it with strides [T*H*D, D, H*D, 1] (no copies).
// K^T and V^T are K and V with the last two dims and strides swapped. Scores are [B, Hq, T, T].
//
// Forward (uids in brackets; every intermediate is a virtual f32 tensor unless noted):
//   S = Q[1] @ K^T[2];  S *= scale[6];  causal: keep where row >= col else neg_inf[7]
//   m = max_row(S);  e = exp(S - m);  l = sum_row(e);  Stats[5] = m + log(l)   (our lse)
//   P = e / l  (bf16, as the second matmul wants);  O[4] = P @ V[3]
// Backward:
//   rowsum[13] = sum_row(dO[8] * O) * one[12]                  (f32, in memory)
//   P = exp(causal(scale * Q K^T - Stats))
//   dV[11] = P^T dO;  dP = dO V^T;  dS = P * (dP - rowsum) * scale
//   dK[10] = dS^T Q;  dQacc[14] = dS K (f32, in memory);  dQ[9] = identity(dQacc)  (bf16)
// With grouped-query heads (Hkv < Hq) the matmuls broadcast K and V over each group, and dK / dV
// are computed per query head (virtual) and summed onto the Hkv heads by a reduction.
//
// ctune's gradients are f32 and accumulate, cuDNN writes bf16: dQ, dK and dV go to bf16 scratch
// and are added into whichever targets are not NULL. dO arrives in f32 and is rounded to bf16.
//
// A plan (graph + chosen engine config) is built once per shape and kept in a small LRU table;
// a shape for which cuDNN has no plan is reported once on stderr and declined from then on.
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "kernels/cuda/cuda_attention.h"
#include "kernels/cuda/cuda_kernels.h"
#include "kernels/cuda/cudnn_graph.h"

enum {
    UID_Q = 1,
    UID_K,
    UID_V,
    UID_O,
    UID_STATS,
    UID_SCALE,
    UID_NEG_INF,
    UID_DO,
    UID_DQ,
    UID_DK,
    UID_DV,
    UID_ONE,
    UID_ROWSUM,
    UID_DQ_ACCUM,
    UID_FIRST_VIRTUAL = 100
};

#define SDPA_MAX_PLANS 16

typedef struct {
    int backward;
    int64_t B, T, Hq, Hkv, D;
    double scale;
} sdpa_key;

typedef struct {
    sdpa_key key;
    bool used, failed; /* failed: cuDNN had no plan; the shape is declined without asking again */
    unsigned long long last_use;
    ct_cudnn_graph graph;
} sdpa_plan;

static sdpa_plan g_plans[SDPA_MAX_PLANS];
static unsigned long long g_clock;
static cudnnHandle_t g_handle;
static bool g_handle_failed;
static ct_cudnn_sdpa_stats g_sdpa_stats;

/* ---- what the graph handles ---- */

static size_t cudnn_version(void) { return cudnnGetVersion(); }

static int device_major(void) {
    static int major = -1;
    if (major < 0) {
        int device = 0, value = 0;
        if (cudaGetDevice(&device) != cudaSuccess ||
            cudaDeviceGetAttribute(&value, cudaDevAttrComputeCapabilityMajor, device) != cudaSuccess)
            value = 0;
        major = value;
    }
    return major;
}

extern "C" bool ct_cudnn_sdpa_supported(int64_t B, int64_t T, int64_t Hq, int64_t Hkv, int64_t D, bool backward) {
    size_t version = cudnn_version();
    if (B < 1 || T < 2 || Hq < 1 || Hkv < 1 || Hq % Hkv != 0) return false; /* T = 1: no masked engine */
    if (D < 8 || D > 128 || D % 8 != 0) return false;
    if (version < 90000 || version == 91000 || version == 91001) return false; /* 9.10.0/1: known bugs */
    /* Up to 9.15 the backward needs a padding-mask workaround when T is not a multiple of 128;
     * this graph does not build it, so those shapes take the kernel there. */
    if (backward && version < 91600 && T % 128 != 0) return false;
    return device_major() >= 8;
}

static bool on_gpu(const ct_tensor *t, ct_dtype dtype, int ndim) {
    return t && t->device == CT_CUDA && t->dtype == dtype && t->ndim == ndim;
}

/* A tensor cuDNN reads or writes itself: its descriptors promise 16-byte alignment. */
static bool for_cudnn(const ct_tensor *t, ct_dtype dtype, int ndim) {
    return on_gpu(t, dtype, ndim) && (uintptr_t)t->data % 16 == 0;
}

static bool same_shape(const ct_tensor *a, const ct_tensor *b) {
    return a->ndim == b->ndim && memcmp(a->shape, b->shape, sizeof(int64_t) * (size_t)a->ndim) == 0;
}

/* bf16 q [B, T, Hq, D], k and v [B, T, Hkv, D], out like q, f32 lse [B, Hq, T], all 16-byte
 * aligned, and a shape the graph handles; the key of its plan into *key. */
static bool forward_qualifies(const ct_tensor *q, const ct_tensor *k, const ct_tensor *v, const ct_tensor *out,
                              const ct_tensor *lse, bool backward, sdpa_key *key) {
    if (!for_cudnn(q, CT_BF16, 4) || !for_cudnn(k, CT_BF16, 4) || !for_cudnn(v, CT_BF16, 4) ||
        !for_cudnn(out, CT_BF16, 4) || !for_cudnn(lse, CT_F32, 3))
        return false;
    int64_t B = q->shape[0], T = q->shape[1], Hq = q->shape[2], D = q->shape[3], Hkv = k->shape[2];
    if (k->shape[0] != B || k->shape[1] != T || k->shape[3] != D || !same_shape(k, v) || !same_shape(q, out))
        return false;
    if (lse->shape[0] != B || lse->shape[1] != Hq || lse->shape[2] != T) return false;
    if (!ct_cudnn_sdpa_supported(B, T, Hq, Hkv, D, backward)) return false;
    memset(key, 0, sizeof *key);
    key->backward = backward ? 1 : 0;
    key->B = B, key->T = T, key->Hq = Hq, key->Hkv = Hkv, key->D = D;
    return true;
}

static bool grad_target_ok(const ct_tensor *grad, const ct_tensor *like) {
    return !grad || (on_gpu(grad, CT_F32, 4) && same_shape(grad, like));
}

/* ---- layouts ---- */

/* [B, H, T, D] as cuDNN sees a row-major [B, T, H, D] tensor. */
static void bshd(int64_t B, int64_t T, int64_t H, int64_t D, int64_t dims[4], int64_t strides[4]) {
    dims[0] = B, dims[1] = H, dims[2] = T, dims[3] = D;
    strides[0] = T * H * D, strides[1] = D, strides[2] = H * D, strides[3] = 1;
}

/* A row-major [B, H, R, C] tensor. */
static void packed(int64_t B, int64_t H, int64_t R, int64_t C, int64_t dims[4], int64_t strides[4]) {
    dims[0] = B, dims[1] = H, dims[2] = R, dims[3] = C;
    strides[0] = H * R * C, strides[1] = R * C, strides[2] = C, strides[3] = 1;
}

static void transpose_last(int64_t dims[4], int64_t strides[4]) {
    int64_t d = dims[2], s = strides[2];
    dims[2] = dims[3], strides[2] = strides[3];
    dims[3] = d, strides[3] = s;
}

/* ---- graph pieces ---- */

/* y = mode(x[, b]) into a new virtual f32 tensor. */
static int pw(ct_cudnn_graph *g, cudnnPointwiseMode_t mode, ct_cudnn_desc x, ct_cudnn_desc b, const int64_t dims[4],
              const int64_t strides[4], ct_cudnn_desc *y) {
    CT_TRY(ct_cudnn_virtual(g, CUDNN_DATA_FLOAT, dims, strides, y));
    return ct_cudnn_pointwise(g, mode, CUDNN_DATA_FLOAT, x, b, NULL, *y);
}

/* Top-left causal mask of scores [B, H, T, T]: row t keeps columns s <= t, the others become
 * neg_inf -- the mask as cuDNN's own causal graphs spell it (two GEN_INDEX, CMP_GE, BINARY_SELECT). */
static int causal_mask(ct_cudnn_graph *g, ct_cudnn_desc x, ct_cudnn_desc neg_inf, const int64_t dims[4],
                       const int64_t strides[4], ct_cudnn_desc *y) {
    ct_cudnn_desc row, col, keep;
    CT_TRY(ct_cudnn_virtual(g, CUDNN_DATA_INT32, dims, strides, &row));
    CT_TRY(ct_cudnn_gen_index(g, x, 2, row));
    CT_TRY(ct_cudnn_virtual(g, CUDNN_DATA_INT32, dims, strides, &col));
    CT_TRY(ct_cudnn_gen_index(g, x, 3, col));
    CT_TRY(ct_cudnn_virtual(g, CUDNN_DATA_BOOLEAN, dims, strides, &keep));
    CT_TRY(ct_cudnn_pointwise(g, CUDNN_POINTWISE_CMP_GE, CUDNN_DATA_BOOLEAN, row, col, NULL, keep));
    CT_TRY(ct_cudnn_virtual(g, CUDNN_DATA_FLOAT, dims, strides, y));
    return ct_cudnn_pointwise(g, CUDNN_POINTWISE_BINARY_SELECT, CUDNN_DATA_FLOAT, x, neg_inf, keep, *y);
}

/* out [B, Hkv, T, D] = a [B, Hq, T, T] @ b [B, Hq, T, D], each kv head summing its group of query
 * heads (a full-head virtual product reduced onto Hkv heads when Hq > Hkv). */
static int grouped_matmul(ct_cudnn_graph *g, const sdpa_key *k, ct_cudnn_desc a, ct_cudnn_desc b, ct_cudnn_desc out) {
    if (k->Hq == k->Hkv) return ct_cudnn_matmul(g, a, b, out);
    int64_t dims[4], strides[4];
    ct_cudnn_desc full;
    packed(k->B, k->Hq, k->T, k->D, dims, strides);
    CT_TRY(ct_cudnn_virtual(g, CUDNN_DATA_BFLOAT16, dims, strides, &full));
    CT_TRY(ct_cudnn_matmul(g, a, b, full));
    return ct_cudnn_reduction(g, CUDNN_REDUCE_TENSOR_ADD, full, out);
}

/* v is V for the forward's P V and V^T for the backward's dO V^T. */
typedef struct {
    ct_cudnn_desc q, kt, v, o, stats, scale, neg_inf;
} io_tensors;

/* The tensors forward and backward share. */
static int shared_tensors(ct_cudnn_graph *g, const sdpa_key *k, io_tensors *t) {
    int64_t dims[4], strides[4];
    bshd(k->B, k->T, k->Hq, k->D, dims, strides);
    CT_TRY(ct_cudnn_tensor(g, UID_Q, CUDNN_DATA_BFLOAT16, dims, strides, &t->q));
    CT_TRY(ct_cudnn_tensor(g, UID_O, CUDNN_DATA_BFLOAT16, dims, strides, &t->o));
    bshd(k->B, k->T, k->Hkv, k->D, dims, strides);
    transpose_last(dims, strides);
    CT_TRY(ct_cudnn_tensor(g, UID_K, CUDNN_DATA_BFLOAT16, dims, strides, &t->kt));
    bshd(k->B, k->T, k->Hkv, k->D, dims, strides);
    if (k->backward) transpose_last(dims, strides);
    CT_TRY(ct_cudnn_tensor(g, UID_V, CUDNN_DATA_BFLOAT16, dims, strides, &t->v));
    packed(k->B, k->Hq, k->T, 1, dims, strides);
    CT_TRY(ct_cudnn_tensor(g, UID_STATS, CUDNN_DATA_FLOAT, dims, strides, &t->stats));
    CT_TRY(ct_cudnn_scalar(g, UID_SCALE, &t->scale));
    return ct_cudnn_scalar(g, UID_NEG_INF, &t->neg_inf);
}

static int build_forward(ct_cudnn_graph *g, const sdpa_key *k) {
    io_tensors t;
    CT_TRY(shared_tensors(g, k, &t));
    int64_t sd[4], ss[4], rd[4], rs[4];
    packed(k->B, k->Hq, k->T, k->T, sd, ss); /* scores */
    packed(k->B, k->Hq, k->T, 1, rd, rs);    /* one value per row */
    ct_cudnn_desc scores, scaled, masked, row_max, shifted, e, row_sum, log_sum, p;
    CT_TRY(ct_cudnn_virtual(g, CUDNN_DATA_FLOAT, sd, ss, &scores));
    CT_TRY(ct_cudnn_matmul(g, t.q, t.kt, scores));
    CT_TRY(pw(g, CUDNN_POINTWISE_MUL, scores, t.scale, sd, ss, &scaled));
    CT_TRY(causal_mask(g, scaled, t.neg_inf, sd, ss, &masked));
    CT_TRY(ct_cudnn_virtual(g, CUDNN_DATA_FLOAT, rd, rs, &row_max));
    CT_TRY(ct_cudnn_reduction(g, CUDNN_REDUCE_TENSOR_MAX, masked, row_max));
    CT_TRY(pw(g, CUDNN_POINTWISE_SUB, masked, row_max, sd, ss, &shifted));
    CT_TRY(pw(g, CUDNN_POINTWISE_EXP, shifted, NULL, sd, ss, &e));
    CT_TRY(ct_cudnn_virtual(g, CUDNN_DATA_FLOAT, rd, rs, &row_sum));
    CT_TRY(ct_cudnn_reduction(g, CUDNN_REDUCE_TENSOR_ADD, e, row_sum));
    CT_TRY(pw(g, CUDNN_POINTWISE_LOG, row_sum, NULL, rd, rs, &log_sum));
    CT_TRY(ct_cudnn_pointwise(g, CUDNN_POINTWISE_ADD, CUDNN_DATA_FLOAT, row_max, log_sum, NULL, t.stats));
    /* The second matmul takes P in the io type (what cuDNN's engines expect of that operand). */
    CT_TRY(ct_cudnn_virtual(g, CUDNN_DATA_BFLOAT16, sd, ss, &p));
    CT_TRY(ct_cudnn_pointwise(g, CUDNN_POINTWISE_DIV, CUDNN_DATA_FLOAT, e, row_sum, NULL, p));
    return ct_cudnn_matmul(g, p, t.v, t.o);
}

typedef struct {
    ct_cudnn_desc d_o, dq, dk, dv, one, rowsum, dq_accum;
} grad_tensors;

static int grad_io_tensors(ct_cudnn_graph *g, const sdpa_key *k, grad_tensors *t) {
    int64_t dims[4], strides[4];
    bshd(k->B, k->T, k->Hq, k->D, dims, strides);
    CT_TRY(ct_cudnn_tensor(g, UID_DO, CUDNN_DATA_BFLOAT16, dims, strides, &t->d_o));
    CT_TRY(ct_cudnn_tensor(g, UID_DQ, CUDNN_DATA_BFLOAT16, dims, strides, &t->dq));
    bshd(k->B, k->T, k->Hkv, k->D, dims, strides);
    CT_TRY(ct_cudnn_tensor(g, UID_DK, CUDNN_DATA_BFLOAT16, dims, strides, &t->dk));
    CT_TRY(ct_cudnn_tensor(g, UID_DV, CUDNN_DATA_BFLOAT16, dims, strides, &t->dv));
    packed(k->B, k->Hq, k->T, 1, dims, strides);
    CT_TRY(ct_cudnn_tensor(g, UID_ROWSUM, CUDNN_DATA_FLOAT, dims, strides, &t->rowsum));
    packed(k->B, k->Hq, k->T, k->D, dims, strides);
    CT_TRY(ct_cudnn_tensor(g, UID_DQ_ACCUM, CUDNN_DATA_FLOAT, dims, strides, &t->dq_accum));
    return ct_cudnn_scalar(g, UID_ONE, &t->one);
}

static int build_backward(ct_cudnn_graph *g, const sdpa_key *k) {
    io_tensors t;
    grad_tensors gt;
    CT_TRY(shared_tensors(g, k, &t));
    CT_TRY(grad_io_tensors(g, k, &gt));
    int64_t sd[4], ss[4], td[4], ts[4], rd[4], rs[4], hd[4], hs[4], kd[4], ks[4];
    packed(k->B, k->Hq, k->T, k->T, sd, ss);
    memcpy(td, sd, sizeof td), memcpy(ts, ss, sizeof ts);
    transpose_last(td, ts); /* scores seen transposed: [B, Hq, S, T] */
    packed(k->B, k->Hq, k->T, 1, rd, rs);
    packed(k->B, k->Hq, k->T, k->D, hd, hs);
    bshd(k->B, k->T, k->Hkv, k->D, kd, ks); /* K itself, from K^T by a reshape */

    /* rowsum(dO * O), the softmax backward's per-row term (kept in memory by the engine) */
    ct_cudnn_desc do_o, do_o_sum;
    CT_TRY(pw(g, CUDNN_POINTWISE_MUL, gt.d_o, t.o, hd, hs, &do_o));
    CT_TRY(ct_cudnn_virtual(g, CUDNN_DATA_FLOAT, rd, rs, &do_o_sum));
    CT_TRY(ct_cudnn_reduction(g, CUDNN_REDUCE_TENSOR_ADD, do_o, do_o_sum));
    CT_TRY(ct_cudnn_pointwise(g, CUDNN_POINTWISE_MUL, CUDNN_DATA_FLOAT, do_o_sum, gt.one, NULL, gt.rowsum));

    /* P = exp(causal(scale * Q K^T - Stats)), recomputed from the saved logsumexp */
    ct_cudnn_desc scores, scaled, shifted, masked, p, p_t;
    CT_TRY(ct_cudnn_virtual(g, CUDNN_DATA_FLOAT, sd, ss, &scores));
    CT_TRY(ct_cudnn_matmul(g, t.q, t.kt, scores));
    CT_TRY(pw(g, CUDNN_POINTWISE_MUL, scores, t.scale, sd, ss, &scaled));
    CT_TRY(pw(g, CUDNN_POINTWISE_SUB, scaled, t.stats, sd, ss, &shifted));
    CT_TRY(causal_mask(g, shifted, t.neg_inf, sd, ss, &masked));
    CT_TRY(pw(g, CUDNN_POINTWISE_EXP, masked, NULL, sd, ss, &p));

    /* dV = P^T dO */
    CT_TRY(ct_cudnn_virtual(g, CUDNN_DATA_BFLOAT16, td, ts, &p_t));
    CT_TRY(ct_cudnn_reshape(g, p, p_t));
    CT_TRY(grouped_matmul(g, k, p_t, gt.d_o, gt.dv));

    /* dS = P * (dO V^T - rowsum) * scale */
    ct_cudnn_desc dp, dp_shifted, ds_unscaled, ds, ds_t, k_rows;
    CT_TRY(ct_cudnn_virtual(g, CUDNN_DATA_FLOAT, sd, ss, &dp));
    CT_TRY(ct_cudnn_matmul(g, gt.d_o, t.v, dp));
    CT_TRY(pw(g, CUDNN_POINTWISE_SUB, dp, gt.rowsum, sd, ss, &dp_shifted));
    CT_TRY(pw(g, CUDNN_POINTWISE_MUL, dp_shifted, p, sd, ss, &ds_unscaled));
    CT_TRY(pw(g, CUDNN_POINTWISE_MUL, ds_unscaled, t.scale, sd, ss, &ds));

    /* dK = dS^T Q */
    CT_TRY(ct_cudnn_virtual(g, CUDNN_DATA_BFLOAT16, td, ts, &ds_t));
    CT_TRY(ct_cudnn_reshape(g, ds, ds_t));
    CT_TRY(grouped_matmul(g, k, ds_t, t.q, gt.dk));

    /* dQ = dS K, accumulated in f32 memory, then rounded to bf16 */
    CT_TRY(ct_cudnn_virtual(g, CUDNN_DATA_BFLOAT16, kd, ks, &k_rows));
    CT_TRY(ct_cudnn_reshape(g, t.kt, k_rows));
    CT_TRY(ct_cudnn_matmul(g, ds, k_rows, gt.dq_accum));
    return ct_cudnn_pointwise(g, CUDNN_POINTWISE_IDENTITY, CUDNN_DATA_FLOAT, gt.dq_accum, NULL, NULL, gt.dq);
}

/* ---- handle and plan cache ---- */

/* The process's handle; NULL (said once on stderr) when cuDNN cannot start. */
static cudnnHandle_t shared_handle(void) {
    if (!g_handle && !g_handle_failed) {
        cudnnStatus_t status = cudnnCreate(&g_handle);
        if (status != CUDNN_STATUS_SUCCESS) {
            g_handle = NULL;
            g_handle_failed = true;
            fprintf(stderr, "ctune: cuDNN attention disabled: cudnnCreate failed at %s:%d: %s %s\n", __FILE__,
                    __LINE__, cudnnGetErrorString(status), ct_cudnn_last_error_detail());
        }
    }
    return g_handle;
}

static bool same_key(const sdpa_key *a, const sdpa_key *b) {
    return a->backward == b->backward && a->B == b->B && a->T == b->T && a->Hq == b->Hq && a->Hkv == b->Hkv &&
           a->D == b->D && a->scale == b->scale;
}

static void release_slot(sdpa_plan *p) {
    if (p->used && !p->failed) ct_cudnn_graph_destroy(&p->graph);
    memset(p, 0, sizeof *p);
}

/* The least recently used slot (a free one first). */
static sdpa_plan *victim(void) {
    sdpa_plan *best = &g_plans[0];
    for (int i = 0; i < SDPA_MAX_PLANS; i++) {
        if (!g_plans[i].used) return &g_plans[i];
        if (g_plans[i].last_use < best->last_use) best = &g_plans[i];
    }
    return best;
}

/* The plan for key: 1 with *out set, 0 when cuDNN has none for this shape (said on stderr the
 * first time). */
static int find_plan(const sdpa_key *key, cudnnHandle_t handle, sdpa_plan **out) {
    *out = NULL;
    for (int i = 0; i < SDPA_MAX_PLANS; i++)
        if (g_plans[i].used && same_key(&g_plans[i].key, key)) {
            g_plans[i].last_use = ++g_clock;
            *out = &g_plans[i];
            return g_plans[i].failed ? 0 : 1;
        }
    sdpa_plan *slot = victim();
    release_slot(slot);
    slot->key = *key;
    slot->used = true;
    slot->last_use = ++g_clock;
    ct_cudnn_graph_init(&slot->graph, UID_FIRST_VIRTUAL);
    int status = key->backward ? build_backward(&slot->graph, key) : build_forward(&slot->graph, key);
    if (status == 0) status = ct_cudnn_graph_plan(&slot->graph, handle);
    if (status < 0) {
        fprintf(stderr,
                "ctune: cuDNN attention %s B=%lld T=%lld Hq=%lld Hkv=%lld D=%lld: no plan (%s %s); using the "
                "hand-written kernel for this shape\n",
                key->backward ? "backward" : "forward", (long long)key->B, (long long)key->T, (long long)key->Hq,
                (long long)key->Hkv, (long long)key->D, ct_last_error(), ct_cudnn_last_error_detail());
        ct_clear_error();
        ct_cudnn_graph_destroy(&slot->graph);
        slot->failed = true;
        g_sdpa_stats.plans_failed++;
        return 0;
    }
    g_sdpa_stats.plans_built++;
    *out = slot;
    return 1;
}

/* Handle on the compute stream and the plan for key: 1 ready, 0 decline, -1 error. */
static int prepare(const sdpa_key *key, cudaStream_t *stream, cudnnHandle_t *handle, sdpa_plan **plan) {
    CT_CUDA_STREAM(*stream);
    *handle = shared_handle();
    if (!*handle) return 0;
    /* Every launch of ctune runs on the compute stream, and the caching allocator relies on it. */
    CT_CUDNN_CHECK(cudnnSetStream(*handle, *stream));
    return find_plan(key, *handle, plan);
}

static float neg_inf_value(void) {
    /* Older cuDNN engines want the largest negative float rather than -inf as the mask value. */
    return cudnn_version() < 91000 ? -FLT_MAX : -INFINITY;
}

/* ---- entry points ---- */

extern "C" int ct_cudnn_sdpa_forward(const ct_tensor *q, const ct_tensor *k, const ct_tensor *v, double scale,
                                     ct_tensor *out, ct_tensor *lse) {
    sdpa_key key;
    if (!forward_qualifies(q, k, v, out, lse, false, &key)) return 0;
    key.scale = scale;
    cudaStream_t stream;
    cudnnHandle_t handle;
    sdpa_plan *plan;
    int ready = prepare(&key, &stream, &handle, &plan);
    if (ready <= 0) return ready;
    ct_cuda_scratch workspace;
    CT_TRY(workspace.alloc((size_t)plan->graph.workspace_bytes + 1, "cuDNN attention workspace"));
    float scale_value = (float)scale, neg_inf = neg_inf_value();
    const int64_t uids[] = {UID_Q, UID_K, UID_V, UID_O, UID_STATS, UID_SCALE, UID_NEG_INF};
    void *const pointers[] = {q->data, k->data, v->data, out->data, lse->data, &scale_value, &neg_inf};
    CT_TRY(ct_cudnn_graph_execute(&plan->graph, handle, 7, uids, pointers, workspace.data));
    return 1;
}

/* A bf16 (or f32) [n0, n1, n2, n3] view of raw device memory, for the conversion and
 * accumulation launchers. */
static ct_tensor device_view(ct_dtype dtype, const int64_t *shape, void *data) {
    ct_tensor t;
    memset(&t, 0, sizeof t);
    t.dtype = dtype, t.device = CT_CUDA, t.ndim = 4, t.data = data;
    memcpy(t.shape, shape, sizeof(int64_t) * 4);
    return t;
}

typedef struct {
    ct_cuda_scratch d_o, dq, dk, dv, rowsum, dq_accum, workspace;
} backward_scratch;

static int alloc_backward_scratch(backward_scratch *s, const sdpa_key *k, int64_t workspace_bytes, bool need_d_o) {
    size_t q_elems = (size_t)(k->B * k->T * k->Hq * k->D), kv_elems = (size_t)(k->B * k->T * k->Hkv * k->D);
    if (need_d_o) CT_TRY(s->d_o.alloc(2 * q_elems, "cuDNN attention dO"));
    CT_TRY(s->dq.alloc(2 * q_elems, "cuDNN attention dQ"));
    CT_TRY(s->dk.alloc(2 * kv_elems, "cuDNN attention dK"));
    CT_TRY(s->dv.alloc(2 * kv_elems, "cuDNN attention dV"));
    CT_TRY(s->rowsum.alloc(sizeof(float) * (size_t)(k->B * k->Hq * k->T), "cuDNN attention rowsum"));
    CT_TRY(s->dq_accum.alloc(sizeof(float) * q_elems, "cuDNN attention dQ accumulator"));
    /* cuDNN before 9.6 expects the dQ accumulator zeroed by the caller; later ones ignore it. */
    CT_TRY(ct_cuda_memset_zero(s->dq_accum.data, sizeof(float) * q_elems));
    return s->workspace.alloc((size_t)workspace_bytes + 1, "cuDNN attention workspace");
}

/* target += bf16 gradient (skipped for a NULL target). */
static int accumulate(ct_tensor *target, void *bf16_grad) {
    if (!target) return 0;
    ct_tensor grad = device_view(CT_BF16, target->shape, bf16_grad);
    return ct_cuda_axpby(1.0, &grad, 1.0, target);
}

extern "C" int ct_cudnn_sdpa_backward(const ct_tensor *q, const ct_tensor *k, const ct_tensor *v, double scale,
                                      const ct_tensor *out, const ct_tensor *lse, const ct_tensor *grad_out,
                                      ct_tensor *grad_q, ct_tensor *grad_k, ct_tensor *grad_v) {
    sdpa_key key;
    if (!grad_q && !grad_k && !grad_v) return 0; /* nothing to do: the kernel path returns at once */
    if (!forward_qualifies(q, k, v, out, lse, true, &key)) return 0;
    /* a bf16 grad_out goes to cuDNN as it is; an f32 one is rounded into aligned scratch first */
    bool d_o_bf16 = for_cudnn(grad_out, CT_BF16, 4);
    if ((!d_o_bf16 && !on_gpu(grad_out, CT_F32, 4)) || !same_shape(grad_out, q)) return 0;
    if (!grad_target_ok(grad_q, q) || !grad_target_ok(grad_k, k) || !grad_target_ok(grad_v, k)) return 0;
    key.scale = scale;
    cudaStream_t stream;
    cudnnHandle_t handle;
    sdpa_plan *plan;
    int ready = prepare(&key, &stream, &handle, &plan);
    if (ready <= 0) return ready;

    backward_scratch s;
    CT_TRY(alloc_backward_scratch(&s, &key, plan->graph.workspace_bytes, !d_o_bf16));
    void *d_o = grad_out->data;
    if (!d_o_bf16) {
        ct_tensor rounded = device_view(CT_BF16, q->shape, s.d_o.data);
        CT_TRY(ct_cuda_convert(grad_out, &rounded));
        d_o = s.d_o.data;
    }
    float scale_value = (float)scale, neg_inf = neg_inf_value(), one = 1.0f;
    const int64_t uids[] = {UID_Q,  UID_K,  UID_V,     UID_O,       UID_STATS, UID_DO,     UID_DQ,
                            UID_DK, UID_DV, UID_SCALE, UID_NEG_INF, UID_ONE,   UID_ROWSUM, UID_DQ_ACCUM};
    void *const pointers[] = {q->data,      k->data,       v->data,  out->data,     lse->data,
                              d_o,          s.dq.data,     s.dk.data, s.dv.data,    &scale_value,
                              &neg_inf,     &one,          s.rowsum.data, s.dq_accum.data};
    CT_TRY(ct_cudnn_graph_execute(&plan->graph, handle, 14, uids, pointers, s.workspace.data));
    CT_TRY(accumulate(grad_q, s.dq.data));
    CT_TRY(accumulate(grad_k, s.dk.data));
    CT_TRY(accumulate(grad_v, s.dv.data));
    return 1;
}

extern "C" ct_cudnn_sdpa_stats ct_cudnn_sdpa_get_stats(void) {
    ct_cudnn_sdpa_stats s = g_sdpa_stats;
    s.cached_plans = 0;
    for (int i = 0; i < SDPA_MAX_PLANS; i++) s.cached_plans += g_plans[i].used && !g_plans[i].failed;
    return s;
}

extern "C" void ct_cudnn_sdpa_release(void) {
    for (int i = 0; i < SDPA_MAX_PLANS; i++) release_slot(&g_plans[i]);
    if (g_handle) cudnnDestroy(g_handle);
    g_handle = NULL;
    g_handle_failed = false;
}
