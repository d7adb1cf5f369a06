// Fused causal attention on the GPU: hand-written flash-attention style kernels, and the
// dispatch between them and cuDNN's fused SDPA (cuda_sdpa_cudnn.cu). Semantics: cuda_attention.h.
//
// Layout of the work. Forward: a block of ATT_WARPS warps owns ATT_QTILE query rows of one
// (batch, query head); each warp owns ATT_ROWS of them. Key and value tiles of ATT_KTILE rows are
// staged in shared memory as f32 (f64 in gradient checks); lane j of a warp scores key j of the
// tile against the warp's rows, the row max and sum come from warp butterflies, and the output
// accumulator is spread over the lanes by head dimension (lane owns d = lane + 32 c). An online
// softmax (running max m and sum l, rescaling when m grows) means only one tile of scores exists.
//
// Backward, deterministic and atomic-free, in three kernels:
//   delta[b, h, t] = sum_d dO * O                      (one warp per row)
//   dQ: like forward, per query tile, recomputing P = exp(scale q k^T - lse) and
//       dS = P * (dO v^T - delta), dQ += scale dS k      (each dQ row has one owner)
//   dK, dV: a block owns ATT_KTILE_BWD keys of one (batch, kv head) and walks every query head of
//       the group and every query tile in order: dV += P^T dO, dK += scale dS^T q
// Whole tiles where no query sees any key (the upper triangle of a causal row, other segments)
// are skipped with one __syncthreads_or.
#include <cuda_bf16.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cuda/cuda_attention.h"
#include "kernels/cuda/cuda_kernels.h"

#define ATT_WARPS 4
#define ATT_ROWS 4                          /* query rows per warp (forward, dQ) */
#define ATT_QTILE (ATT_WARPS * ATT_ROWS)    /* query rows per block */
#define ATT_KTILE 32                        /* keys per staged tile: one per lane */
#define ATT_KROWS 4                         /* key rows per warp (dK / dV) */
#define ATT_KTILE_BWD (ATT_WARPS * ATT_KROWS) /* key rows per dK / dV block */
#define ATT_QTILE_BWD 32                    /* queries per staged tile in dK / dV: one per lane */
#define ATT_MAX_D 256

/* ---- element access ---- */

__device__ __forceinline__ float att_load(const float *p, int64_t i) { return p[i]; }
__device__ __forceinline__ double att_load(const double *p, int64_t i) { return p[i]; }
__device__ __forceinline__ float att_load(const __nv_bfloat16 *p, int64_t i) { return __bfloat162float(p[i]); }
__device__ __forceinline__ void att_store(float *p, int64_t i, float v) { p[i] = v; }
__device__ __forceinline__ void att_store(double *p, int64_t i, double v) { p[i] = v; }
/* bf16 rounding bit for bit as the CPU's (cvt.rn writes a canonical NaN where the CPU keeps the payload) */
__device__ __forceinline__ void att_store(__nv_bfloat16 *p, int64_t i, float v) {
    ((uint16_t *)p)[i] = ct_cuda_to_bf16(v);
}

__device__ __forceinline__ float att_exp(float x) { return expf(x); }
__device__ __forceinline__ double att_exp(double x) { return exp(x); }
__device__ __forceinline__ float att_log(float x) { return logf(x); }
__device__ __forceinline__ double att_log(double x) { return log(x); }

/* Butterfly reductions: every lane ends with the same bits (addition is commutative). The max
 * uses fmax, which is commutative even for NaN (it drops it): with `w > v ? w : v` a NaN score
 * left lanes with different maxima, so the forward's per-row branch diverged in front of the
 * full-mask warp_sum. A NaN score still reaches the output through exp(NaN). */
template <typename A>
__device__ __forceinline__ A warp_sum(A v) {
    for (int o = 16; o > 0; o /= 2) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
template <typename A>
__device__ __forceinline__ A warp_max(A v) {
    for (int o = 16; o > 0; o /= 2) v = fmax(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

template <typename In, typename A>
struct att_args {
    const In *q, *k, *v, *out;
    In *out_w;
    A *lse;
    const A *lse_r, *grad_out, *delta;
    A *delta_w, *gq, *gk, *gv;
    /* Device pointers; segments may be NULL. Positions are NULL when they are the plain range
     * q_offset + t and s (derived ones, checked on the host): no copy, no wait for the host. */
    const int32_t *q_pos, *k_pos, *q_seg, *k_seg;
    int64_t q_offset;
    int64_t B, T, S, Hq, Hkv, D, group;
    A scale;
};

template <typename In, typename A>
__device__ __forceinline__ int32_t q_position(const att_args<In, A> &a, int64_t b, int64_t t) {
    return a.q_pos ? a.q_pos[b * a.T + t] : (int32_t)(a.q_offset + t);
}
template <typename In, typename A>
__device__ __forceinline__ int32_t k_position(const att_args<In, A> &a, int64_t b, int64_t s) {
    return a.k_pos ? a.k_pos[b * a.S + s] : (int32_t)s;
}

__device__ __forceinline__ bool att_visible(int32_t qp, int32_t qs, int32_t kp, int32_t ks, bool segments) {
    return kp <= qp && (!segments || qs == ks);
}

/* Stages keys [s0, s0 + ATT_KTILE) of (b, kv head hk): k and v with row stride D + 1 (lanes read
 * different rows: the pad keeps them in different banks); missing keys are zero. */
template <typename In, typename A>
__device__ void stage_kv(const att_args<In, A> &a, int64_t b, int64_t hk, int64_t s0, A *ks, A *vs) {
    const int64_t D = a.D, stride = D + 1;
    for (int64_t idx = threadIdx.x; idx < ATT_KTILE * D; idx += blockDim.x) {
        int64_t j = idx / D, d = idx % D, s = s0 + j;
        A kv = 0, vv = 0;
        if (s < a.S) {
            int64_t at = ((b * a.S + s) * a.Hkv + hk) * D + d;
            kv = att_load(a.k, at);
            vv = att_load(a.v, at);
        }
        ks[j * stride + d] = kv;
        vs[j * stride + d] = vv;
    }
}

/* ---- forward ---- */

/* Shared memory (A): q rows [QTILE][D], k and v tiles [KTILE][D + 1] each. */
/* Loads the positions and segments of key tile s0 into shared memory (after every thread is done
 * with the previous tile) and sets vis[i]: whether query row i of this warp sees this lane's key.
 * Returns whether any thread of the block sees any key of the tile (false: skip the tile). Called
 * by every thread of the block. */
template <typename In, typename A>
__device__ __forceinline__ bool key_tile_visibility(const att_args<In, A> &a, int64_t b, int64_t s0, bool segments,
                                                    const int32_t *qp, const int32_t *qsg, int lane, int32_t *kpos_s,
                                                    int32_t *kseg_s, bool *vis) {
    __syncthreads();
    if (threadIdx.x < ATT_KTILE) {
        int64_t s = s0 + threadIdx.x;
        kpos_s[threadIdx.x] = s < a.S ? k_position(a, b, s) : INT32_MAX;
        kseg_s[threadIdx.x] = s < a.S && segments ? a.k_seg[b * a.S + s] : 0;
    }
    __syncthreads();
    bool any = false;
    for (int i = 0; i < ATT_ROWS; i++) {
        vis[i] = att_visible(qp[i], qsg[i], kpos_s[lane], kseg_s[lane], segments);
        any = any || vis[i];
    }
    return __syncthreads_or(any);
}

template <typename In, typename A, int DPL>
__global__ void __launch_bounds__(ATT_WARPS * 32) attention_forward_kernel(att_args<In, A> a) {
    extern __shared__ __align__(16) unsigned char att_smem[];
    A *qs = (A *)att_smem, *ks = qs + ATT_QTILE * a.D, *vs = ks + ATT_KTILE * (a.D + 1);
    __shared__ int32_t kpos_s[ATT_KTILE], kseg_s[ATT_KTILE];
    const int64_t b = blockIdx.z, h = blockIdx.y, t0 = (int64_t)blockIdx.x * ATT_QTILE, D = a.D;
    const int64_t hk = h / a.group;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const bool segments = a.q_seg != NULL;

    for (int64_t idx = threadIdx.x; idx < ATT_QTILE * D; idx += blockDim.x) {
        int64_t r = idx / D, d = idx % D, t = t0 + r;
        qs[idx] = t < a.T ? att_load(a.q, ((b * a.T + t) * a.Hq + h) * D + d) : (A)0;
    }
    int32_t qp[ATT_ROWS], qsg[ATT_ROWS];
    A m[ATT_ROWS], l[ATT_ROWS], acc[ATT_ROWS][DPL];
    for (int i = 0; i < ATT_ROWS; i++) {
        int64_t t = t0 + warp * ATT_ROWS + i;
        qp[i] = t < a.T ? q_position(a, b, t) : INT32_MIN; /* a missing row sees nothing */
        qsg[i] = t < a.T && segments ? a.q_seg[b * a.T + t] : 0;
        m[i] = -INFINITY;
        l[i] = 0;
        for (int c = 0; c < DPL; c++) acc[i][c] = 0;
    }

    for (int64_t s0 = 0; s0 < a.S; s0 += ATT_KTILE) {
        bool vis[ATT_ROWS];
        if (!key_tile_visibility(a, b, s0, segments, qp, qsg, lane, kpos_s, kseg_s, vis)) continue;
        stage_kv(a, b, hk, s0, ks, vs);
        __syncthreads();

        A p[ATT_ROWS];
        for (int i = 0; i < ATT_ROWS; i++) {
            const A *qrow = qs + (warp * ATT_ROWS + i) * D, *krow = ks + lane * (D + 1);
            A dot = 0;
            for (int64_t d = 0; d < D; d++) dot += qrow[d] * krow[d];
            A score = vis[i] ? dot * a.scale : (A)-INFINITY;
            A m_new = warp_max(score);
            m_new = m_new > m[i] ? m_new : m[i];
            if (m_new == -INFINITY) { /* nothing visible so far: the row adds nothing */
                p[i] = 0;
                continue;
            }
            p[i] = vis[i] ? att_exp(score - m_new) : (A)0;
            A alpha = att_exp(m[i] - m_new); /* 0 when m was -inf */
            l[i] = l[i] * alpha + warp_sum(p[i]);
            for (int c = 0; c < DPL; c++) acc[i][c] *= alpha;
            m[i] = m_new;
        }
        for (int j = 0; j < ATT_KTILE; j++) {
            const A *vrow = vs + j * (D + 1);
            for (int i = 0; i < ATT_ROWS; i++) {
                A pj = __shfl_sync(0xffffffffu, p[i], j);
                for (int c = 0; c < DPL; c++) {
                    int64_t d = lane + 32 * c;
                    if (d < D) acc[i][c] += pj * vrow[d];
                }
            }
        }
    }

    for (int i = 0; i < ATT_ROWS; i++) {
        int64_t t = t0 + warp * ATT_ROWS + i;
        if (t >= a.T) continue;
        A inv = l[i] > 0 ? (A)1 / l[i] : (A)0;
        for (int c = 0; c < DPL; c++) {
            int64_t d = lane + 32 * c;
            if (d < D) att_store(a.out_w, ((b * a.T + t) * a.Hq + h) * D + d, acc[i][c] * inv);
        }
        if (lane == 0) a.lse[(b * a.Hq + h) * a.T + t] = l[i] > 0 ? m[i] + att_log(l[i]) : (A)-INFINITY;
    }
}

/* ---- backward ---- */

/* delta[b, h, t] = sum_d dO[b, t, h, d] * O[b, t, h, d]: one warp per (b, t, h) row. */
template <typename In, typename A>
__global__ void attention_delta_kernel(att_args<In, A> a) {
    const int64_t rows = a.B * a.T * a.Hq, D = a.D;
    const int64_t row = (int64_t)blockIdx.x * ATT_WARPS + threadIdx.x / 32;
    const int lane = threadIdx.x % 32;
    if (row >= rows) return;
    A total = 0;
    for (int64_t d = lane; d < D; d += 32) total += a.grad_out[row * D + d] * att_load(a.out, row * D + d);
    total = warp_sum(total);
    int64_t b = row / (a.T * a.Hq), t = (row / a.Hq) % a.T, h = row % a.Hq;
    if (lane == 0) a.delta_w[(b * a.Hq + h) * a.T + t] = total;
}

/* dQ for ATT_QTILE query rows of (b, h). Shared memory (A): q and dO rows [QTILE][D] each, k and
 * v tiles [KTILE][D + 1] each. */
template <typename In, typename A, int DPL>
__global__ void __launch_bounds__(ATT_WARPS * 32) attention_dq_kernel(att_args<In, A> a) {
    extern __shared__ __align__(16) unsigned char att_smem[];
    A *qs = (A *)att_smem, *dos = qs + ATT_QTILE * a.D, *ks = dos + ATT_QTILE * a.D, *vs = ks + ATT_KTILE * (a.D + 1);
    __shared__ int32_t kpos_s[ATT_KTILE], kseg_s[ATT_KTILE];
    const int64_t b = blockIdx.z, h = blockIdx.y, t0 = (int64_t)blockIdx.x * ATT_QTILE, D = a.D;
    const int64_t hk = h / a.group;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const bool segments = a.q_seg != NULL;

    for (int64_t idx = threadIdx.x; idx < ATT_QTILE * D; idx += blockDim.x) {
        int64_t r = idx / D, d = idx % D, t = t0 + r, at = ((b * a.T + t) * a.Hq + h) * D + d;
        qs[idx] = t < a.T ? att_load(a.q, at) : (A)0;
        dos[idx] = t < a.T ? a.grad_out[at] : (A)0;
    }
    int32_t qp[ATT_ROWS], qsg[ATT_ROWS];
    A row_lse[ATT_ROWS], row_delta[ATT_ROWS], dq[ATT_ROWS][DPL];
    for (int i = 0; i < ATT_ROWS; i++) {
        int64_t t = t0 + warp * ATT_ROWS + i;
        bool valid = t < a.T;
        row_lse[i] = valid ? a.lse_r[(b * a.Hq + h) * a.T + t] : (A)-INFINITY;
        row_delta[i] = valid ? a.delta[(b * a.Hq + h) * a.T + t] : (A)0;
        /* A row that saw no key (lse -inf) has no gradient: it sees nothing here either. */
        qp[i] = valid && row_lse[i] != -INFINITY ? q_position(a, b, t) : INT32_MIN;
        qsg[i] = valid && segments ? a.q_seg[b * a.T + t] : 0;
        for (int c = 0; c < DPL; c++) dq[i][c] = 0;
    }

    for (int64_t s0 = 0; s0 < a.S; s0 += ATT_KTILE) {
        bool vis[ATT_ROWS];
        if (!key_tile_visibility(a, b, s0, segments, qp, qsg, lane, kpos_s, kseg_s, vis)) continue;
        stage_kv(a, b, hk, s0, ks, vs);
        __syncthreads();

        A ds[ATT_ROWS];
        for (int i = 0; i < ATT_ROWS; i++) {
            const A *qrow = qs + (warp * ATT_ROWS + i) * D, *dorow = dos + (warp * ATT_ROWS + i) * D;
            const A *krow = ks + lane * (D + 1), *vrow = vs + lane * (D + 1);
            A dot = 0, dp = 0;
            for (int64_t d = 0; d < D; d++) {
                dot += qrow[d] * krow[d];
                dp += dorow[d] * vrow[d];
            }
            A p = vis[i] ? att_exp(dot * a.scale - row_lse[i]) : (A)0;
            ds[i] = p * (dp - row_delta[i]);
        }
        for (int j = 0; j < ATT_KTILE; j++) {
            const A *krow = ks + j * (D + 1);
            for (int i = 0; i < ATT_ROWS; i++) {
                A dsj = __shfl_sync(0xffffffffu, ds[i], j);
                for (int c = 0; c < DPL; c++) {
                    int64_t d = lane + 32 * c;
                    if (d < D) dq[i][c] += dsj * krow[d];
                }
            }
        }
    }

    for (int i = 0; i < ATT_ROWS; i++) {
        int64_t t = t0 + warp * ATT_ROWS + i;
        if (t >= a.T) continue;
        for (int c = 0; c < DPL; c++) {
            int64_t d = lane + 32 * c;
            if (d < D) a.gq[((b * a.T + t) * a.Hq + h) * D + d] += a.scale * dq[i][c];
        }
    }
}

/* dK and dV for ATT_KTILE_BWD keys of (b, kv head hk). Shared memory (A): the block's k and v rows
 * [KTILE_BWD][D] each, then q and dO tiles [QTILE_BWD][D + 1] each, then lse and delta
 * [QTILE_BWD] each. */
template <typename In, typename A, int DPL>
__global__ void __launch_bounds__(ATT_WARPS * 32) attention_dkv_kernel(att_args<In, A> a) {
    extern __shared__ __align__(16) unsigned char att_smem[];
    const int64_t D = a.D, stride = D + 1;
    A *kk = (A *)att_smem, *vv = kk + ATT_KTILE_BWD * D, *qs = vv + ATT_KTILE_BWD * D;
    A *dos = qs + ATT_QTILE_BWD * stride, *lse_s = dos + ATT_QTILE_BWD * stride, *delta_s = lse_s + ATT_QTILE_BWD;
    __shared__ int32_t qpos_s[ATT_QTILE_BWD], qseg_s[ATT_QTILE_BWD];
    const int64_t b = blockIdx.z, hk = blockIdx.y, s0 = (int64_t)blockIdx.x * ATT_KTILE_BWD;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const bool segments = a.q_seg != NULL;

    for (int64_t idx = threadIdx.x; idx < ATT_KTILE_BWD * D; idx += blockDim.x) {
        int64_t r = idx / D, d = idx % D, s = s0 + r, at = ((b * a.S + s) * a.Hkv + hk) * D + d;
        kk[idx] = s < a.S ? att_load(a.k, at) : (A)0;
        vv[idx] = s < a.S ? att_load(a.v, at) : (A)0;
    }
    int32_t kp[ATT_KROWS], ksg[ATT_KROWS];
    A dk[ATT_KROWS][DPL], dv[ATT_KROWS][DPL];
    for (int i = 0; i < ATT_KROWS; i++) {
        int64_t s = s0 + warp * ATT_KROWS + i;
        kp[i] = s < a.S ? k_position(a, b, s) : INT32_MAX; /* a missing key is seen by nobody */
        ksg[i] = s < a.S && segments ? a.k_seg[b * a.S + s] : 0;
        for (int c = 0; c < DPL; c++) dk[i][c] = dv[i][c] = 0;
    }

    for (int64_t g = 0; g < a.group; g++) {
        const int64_t h = hk * a.group + g;
        for (int64_t t0 = 0; t0 < a.T; t0 += ATT_QTILE_BWD) {
            __syncthreads();
            if (threadIdx.x < ATT_QTILE_BWD) {
                int64_t t = t0 + threadIdx.x;
                A x = t < a.T ? a.lse_r[(b * a.Hq + h) * a.T + t] : (A)-INFINITY;
                lse_s[threadIdx.x] = x;
                delta_s[threadIdx.x] = t < a.T ? a.delta[(b * a.Hq + h) * a.T + t] : (A)0;
                qpos_s[threadIdx.x] = t < a.T && x != -INFINITY ? q_position(a, b, t) : INT32_MIN;
                qseg_s[threadIdx.x] = t < a.T && segments ? a.q_seg[b * a.T + t] : 0;
            }
            __syncthreads();
            bool vis[ATT_KROWS], any = false;
            for (int i = 0; i < ATT_KROWS; i++) {
                vis[i] = att_visible(qpos_s[lane], qseg_s[lane], kp[i], ksg[i], segments);
                any = any || vis[i];
            }
            if (!__syncthreads_or(any)) continue;
            for (int64_t idx = threadIdx.x; idx < ATT_QTILE_BWD * D; idx += blockDim.x) {
                int64_t r = idx / D, d = idx % D, t = t0 + r, at = ((b * a.T + t) * a.Hq + h) * D + d;
                qs[r * stride + d] = t < a.T ? att_load(a.q, at) : (A)0;
                dos[r * stride + d] = t < a.T ? a.grad_out[at] : (A)0;
            }
            __syncthreads();

            A p[ATT_KROWS], ds[ATT_KROWS];
            const A *qrow = qs + lane * stride, *dorow = dos + lane * stride;
            for (int i = 0; i < ATT_KROWS; i++) {
                const A *krow = kk + (warp * ATT_KROWS + i) * D, *vrow = vv + (warp * ATT_KROWS + i) * D;
                A dot = 0, dp = 0;
                for (int64_t d = 0; d < D; d++) {
                    dot += qrow[d] * krow[d];
                    dp += dorow[d] * vrow[d];
                }
                p[i] = vis[i] ? att_exp(dot * a.scale - lse_s[lane]) : (A)0;
                ds[i] = p[i] * (dp - delta_s[lane]);
            }
            for (int j = 0; j < ATT_QTILE_BWD; j++) {
                const A *qj = qs + j * stride, *doj = dos + j * stride;
                for (int i = 0; i < ATT_KROWS; i++) {
                    A pj = __shfl_sync(0xffffffffu, p[i], j), dsj = __shfl_sync(0xffffffffu, ds[i], j);
                    for (int c = 0; c < DPL; c++) {
                        int64_t d = lane + 32 * c;
                        if (d < D) {
                            dv[i][c] += pj * doj[d];
                            dk[i][c] += dsj * qj[d];
                        }
                    }
                }
            }
        }
    }

    for (int i = 0; i < ATT_KROWS; i++) {
        int64_t s = s0 + warp * ATT_KROWS + i;
        if (s >= a.S) continue;
        for (int c = 0; c < DPL; c++) {
            int64_t d = lane + 32 * c, at = ((b * a.S + s) * a.Hkv + hk) * D + d;
            if (d >= D) continue;
            if (a.gk) a.gk[at] += a.scale * dk[i][c];
            if (a.gv) a.gv[at] += dv[i][c];
        }
    }
}

/* ---- launchers ---- */

static size_t forward_smem(int64_t D, size_t elem) {
    return elem * (size_t)(ATT_QTILE * D + 2 * ATT_KTILE * (D + 1));
}
static size_t dq_smem(int64_t D, size_t elem) { return elem * (size_t)(2 * ATT_QTILE * D + 2 * ATT_KTILE * (D + 1)); }
static size_t dkv_smem(int64_t D, size_t elem) {
    return elem * (size_t)(2 * ATT_KTILE_BWD * D + 2 * ATT_QTILE_BWD * (D + 1) + 2 * ATT_QTILE_BWD);
}

/* Lets `kernel` use `bytes` of dynamic shared memory, or says why it cannot. The opt-in limit
 * covers the kernel's static shared arrays too (the key / query id tiles). */
template <typename K>
static int allow_smem(K kernel, size_t bytes, const char *what, int64_t D) {
    int device = 0, limit = 0;
    cudaFuncAttributes attributes;
    CT_CUDA_CHECK(cudaGetDevice(&device));
    CT_CUDA_CHECK(cudaDeviceGetAttribute(&limit, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
    CT_CUDA_CHECK(cudaFuncGetAttributes(&attributes, kernel));
    if (bytes + attributes.sharedSizeBytes > (size_t)limit)
        return ct_fail("attention (cuda): the %s kernel needs %zu bytes of shared memory for head dim %lld, this GPU "
                       "allows %d per block; use a smaller head dim or f32 instead of f64",
                       what, bytes + attributes.sharedSizeBytes, (long long)D, limit);
    if (bytes > 48 * 1024)
        CT_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)bytes));
    return 0;
}

static unsigned tiles(int64_t n, int64_t tile) { return (unsigned)((n + tile - 1) / tile); }

template <typename In, typename A, int DPL>
static int launch_forward(const att_args<In, A> &a, cudaStream_t stream) {
    size_t smem = forward_smem(a.D, sizeof(A));
    CT_TRY(allow_smem(attention_forward_kernel<In, A, DPL>, smem, "forward", a.D));
    dim3 grid(tiles(a.T, ATT_QTILE), (unsigned)a.Hq, (unsigned)a.B);
    attention_forward_kernel<In, A, DPL><<<grid, ATT_WARPS * 32, smem, stream>>>(a);
    CT_CUDA_CHECK_LAUNCH("attention_forward_kernel");
    return 0;
}

template <typename In, typename A, int DPL>
static int launch_backward(const att_args<In, A> &a, cudaStream_t stream) {
    unsigned delta_blocks = tiles(a.B * a.T * a.Hq, ATT_WARPS);
    attention_delta_kernel<In, A><<<delta_blocks, ATT_WARPS * 32, 0, stream>>>(a);
    CT_CUDA_CHECK_LAUNCH("attention_delta_kernel");
    if (a.gq) {
        size_t smem = dq_smem(a.D, sizeof(A));
        CT_TRY(allow_smem(attention_dq_kernel<In, A, DPL>, smem, "dQ", a.D));
        dim3 grid(tiles(a.T, ATT_QTILE), (unsigned)a.Hq, (unsigned)a.B);
        attention_dq_kernel<In, A, DPL><<<grid, ATT_WARPS * 32, smem, stream>>>(a);
        CT_CUDA_CHECK_LAUNCH("attention_dq_kernel");
    }
    if (a.gk || a.gv) {
        size_t smem = dkv_smem(a.D, sizeof(A));
        CT_TRY(allow_smem(attention_dkv_kernel<In, A, DPL>, smem, "dK/dV", a.D));
        dim3 grid(tiles(a.S, ATT_KTILE_BWD), (unsigned)a.Hkv, (unsigned)a.B);
        attention_dkv_kernel<In, A, DPL><<<grid, ATT_WARPS * 32, smem, stream>>>(a);
        CT_CUDA_CHECK_LAUNCH("attention_dkv_kernel");
    }
    return 0;
}

/* Picks the per-lane width of the head dimension (D <= 32 * DPL). */
template <typename In, typename A>
static int run(const att_args<In, A> &a, bool forward, cudaStream_t stream) {
    int64_t dpl = (a.D + 31) / 32;
    if (dpl <= 1) return forward ? launch_forward<In, A, 1>(a, stream) : launch_backward<In, A, 1>(a, stream);
    if (dpl <= 2) return forward ? launch_forward<In, A, 2>(a, stream) : launch_backward<In, A, 2>(a, stream);
    if (dpl <= 4) return forward ? launch_forward<In, A, 4>(a, stream) : launch_backward<In, A, 4>(a, stream);
    return forward ? launch_forward<In, A, 8>(a, stream) : launch_backward<In, A, 8>(a, stream);
}

/* ids[b, i] == i + offset for every row: positions computed from the index (host ids only). */
static bool is_range(const ct_tensor *ids, int64_t offset) {
    const int32_t *p = (const int32_t *)ids->data;
    int64_t rows = ids->shape[0], n = ids->shape[1];
    for (int64_t r = 0; r < rows; r++)
        for (int64_t i = 0; i < n; i++)
            if (p[r * n + i] != (int32_t)(i + offset)) return false;
    return true;
}

/* Ids as device pointers: ids on the host (derived positions) are copied into `copy`. */
static int device_ids(const ct_tensor *ids, ct_cuda_scratch *copy, const int32_t **out) {
    *out = NULL;
    if (!ids) return 0;
    if (ids->device == CT_CUDA) {
        *out = (const int32_t *)ids->data;
        return 0;
    }
    size_t bytes = ct_nbytes(ids);
    CT_TRY(copy->alloc(bytes + 1, "attention ids"));
    CT_TRY(ct_cuda_copy(copy->data, ids->data, bytes, 0));
    *out = (const int32_t *)copy->data;
    return 0;
}

typedef struct {
    ct_cuda_scratch q_pos, k_pos, q_seg, k_seg, delta;
} att_scratch;

template <typename In, typename A>
static int fill_args(att_args<In, A> *a, att_scratch *scratch, const ct_tensor *q, const ct_tensor *k,
                     const ct_tensor *v, const ct_tensor *q_pos, const ct_tensor *k_pos, const ct_tensor *q_seg,
                     const ct_tensor *k_seg, double scale) {
    memset(a, 0, sizeof *a);
    a->q = (const In *)q->data, a->k = (const In *)k->data, a->v = (const In *)v->data;
    a->B = q->shape[0], a->T = q->shape[1], a->Hq = q->shape[2], a->D = q->shape[3];
    a->S = k->shape[1], a->Hkv = k->shape[2];
    a->group = a->Hq / a->Hkv;
    a->scale = (A)scale;
    /* Host positions that are a plain range (derived from a KV offset) are computed in the
     * kernels; anything else on the host is copied over. */
    int64_t offset = a->S - a->T;
    bool derived = q_pos->device == CT_CPU && k_pos->device == CT_CPU && offset >= 0 && is_range(q_pos, offset) &&
                   is_range(k_pos, 0);
    if (derived) {
        a->q_offset = offset;
    } else {
        CT_TRY(device_ids(q_pos, &scratch->q_pos, &a->q_pos));
        CT_TRY(device_ids(k_pos, &scratch->k_pos, &a->k_pos));
    }
    CT_TRY(device_ids(q_seg, &scratch->q_seg, &a->q_seg));
    CT_TRY(device_ids(k_seg, &scratch->k_seg, &a->k_seg));
    return 0;
}

/* Checks what the op layer cannot know about this backend: dtypes of the f32 side, head dim. */
static int check_kernel_args(const ct_tensor *q, const ct_tensor *lse, const ct_tensor *grad_out,
                             const ct_tensor *const *grads, int ngrads) {
    ct_dtype real = q->dtype == CT_F64 ? CT_F64 : CT_F32;
    if (q->dtype != CT_F32 && q->dtype != CT_F64 && q->dtype != CT_BF16)
        return ct_fail("attention (cuda): q, k, v are %s; use f32, bf16 or f64", ct_dtype_name(q->dtype));
    if (q->shape[3] > ATT_MAX_D)
        return ct_fail("attention (cuda): head dim %lld is over the kernel's limit of %d", (long long)q->shape[3],
                       ATT_MAX_D);
    /* heads and batch are the grid's y and z */
    if (q->shape[0] > 65535 || q->shape[2] > 65535)
        return ct_fail("attention (cuda): batch %lld and heads %lld must each be at most 65535; split the batch",
                       (long long)q->shape[0], (long long)q->shape[2]);
    if (lse && lse->dtype != real)
        return ct_fail("attention (cuda): lse is %s, expected %s", ct_dtype_name(lse->dtype), ct_dtype_name(real));
    if (grad_out && grad_out->dtype != real)
        return ct_fail("attention (cuda): grad_out is %s, expected %s (gradients are never bf16)",
                       ct_dtype_name(grad_out->dtype), ct_dtype_name(real));
    for (int i = 0; i < ngrads; i++)
        if (grads[i] && grads[i]->dtype != real)
            return ct_fail("attention (cuda): a gradient target is %s, expected %s", ct_dtype_name(grads[i]->dtype),
                           ct_dtype_name(real));
    return 0;
}

/* No keys or empty heads: every query sees nothing (zero output, lse -inf). */
template <typename In, typename A>
__global__ void attention_empty_kernel(In *out, int64_t n_out, A *lse, int64_t n_lse) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n_out || i < n_lse;
         i += (int64_t)gridDim.x * blockDim.x) {
        if (i < n_out) att_store(out, i, (A)0);
        if (i < n_lse) lse[i] = (A)-INFINITY;
    }
}

template <typename In, typename A>
static int forward_typed(const ct_tensor *q, const ct_tensor *k, const ct_tensor *v, const ct_tensor *q_pos,
                         const ct_tensor *k_pos, const ct_tensor *q_seg, const ct_tensor *k_seg, double scale,
                         ct_tensor *out, ct_tensor *lse, cudaStream_t stream) {
    if (k->shape[1] == 0 || q->shape[3] == 0) {
        int64_t n = ct_numel(out) > ct_numel(lse) ? ct_numel(out) : ct_numel(lse);
        attention_empty_kernel<In, A><<<ct_cuda_blocks(n), CT_CUDA_THREADS, 0, stream>>>(
            (In *)out->data, ct_numel(out), (A *)lse->data, ct_numel(lse));
        CT_CUDA_CHECK_LAUNCH("attention_empty_kernel");
        return 0;
    }
    att_args<In, A> a;
    att_scratch scratch;
    CT_TRY(fill_args(&a, &scratch, q, k, v, q_pos, k_pos, q_seg, k_seg, scale));
    a.out_w = (In *)out->data;
    a.lse = (A *)lse->data;
    return run(a, true, stream);
}

template <typename In, typename A>
static int backward_typed(const ct_tensor *q, const ct_tensor *k, const ct_tensor *v, const ct_tensor *q_pos,
                          const ct_tensor *k_pos, const ct_tensor *q_seg, const ct_tensor *k_seg, double scale,
                          const ct_tensor *out, const ct_tensor *lse, const ct_tensor *grad_out, ct_tensor *grad_q,
                          ct_tensor *grad_k, ct_tensor *grad_v, cudaStream_t stream) {
    if (k->shape[1] == 0 || q->shape[3] == 0) return 0;
    att_args<In, A> a;
    att_scratch scratch;
    CT_TRY(fill_args(&a, &scratch, q, k, v, q_pos, k_pos, q_seg, k_seg, scale));
    a.out = (const In *)out->data;
    a.lse_r = (const A *)lse->data;
    a.grad_out = (const A *)grad_out->data;
    a.gq = grad_q ? (A *)grad_q->data : NULL;
    a.gk = grad_k ? (A *)grad_k->data : NULL;
    a.gv = grad_v ? (A *)grad_v->data : NULL;
    CT_TRY(scratch.delta.alloc(sizeof(A) * (size_t)(a.B * a.Hq * a.T) + 1, "attention delta"));
    a.delta_w = (A *)scratch.delta.data;
    a.delta = a.delta_w;
    return run(a, false, stream);
}

static ct_cuda_attention_stats g_stats;

extern "C" ct_cuda_attention_stats ct_cuda_attention_get_stats(void) { return g_stats; }

extern "C" int ct_cuda_attention_forward_kernel(const ct_tensor *q, const ct_tensor *k, const ct_tensor *v,
                                                const ct_tensor *q_pos, const ct_tensor *k_pos,
                                                const ct_tensor *q_seg, const ct_tensor *k_seg, double scale,
                                                ct_tensor *out, ct_tensor *lse) {
    CT_TRY(check_kernel_args(q, lse, NULL, NULL, 0));
    if (q->shape[0] == 0 || q->shape[1] == 0 || q->shape[2] == 0) return 0;
    cudaStream_t stream;
    CT_CUDA_STREAM(stream);
    g_stats.kernel_forward++;
    if (q->dtype == CT_F64)
        return forward_typed<double, double>(q, k, v, q_pos, k_pos, q_seg, k_seg, scale, out, lse, stream);
    if (q->dtype == CT_BF16)
        return forward_typed<__nv_bfloat16, float>(q, k, v, q_pos, k_pos, q_seg, k_seg, scale, out, lse, stream);
    return forward_typed<float, float>(q, k, v, q_pos, k_pos, q_seg, k_seg, scale, out, lse, stream);
}

extern "C" int ct_cuda_attention_backward_kernel(const ct_tensor *q, const ct_tensor *k, const ct_tensor *v,
                                                 const ct_tensor *q_pos, const ct_tensor *k_pos,
                                                 const ct_tensor *q_seg, const ct_tensor *k_seg, double scale,
                                                 const ct_tensor *out, const ct_tensor *lse,
                                                 const ct_tensor *grad_out, ct_tensor *grad_q, ct_tensor *grad_k,
                                                 ct_tensor *grad_v) {
    const ct_tensor *grads[3] = {grad_q, grad_k, grad_v};
    CT_TRY(check_kernel_args(q, lse, grad_out, grads, 3));
    if (q->shape[0] == 0 || q->shape[1] == 0 || q->shape[2] == 0 || (!grad_q && !grad_k && !grad_v)) return 0;
    cudaStream_t stream;
    CT_CUDA_STREAM(stream);
    g_stats.kernel_backward++;
    if (q->dtype == CT_F64)
        return backward_typed<double, double>(q, k, v, q_pos, k_pos, q_seg, k_seg, scale, out, lse, grad_out, grad_q,
                                              grad_k, grad_v, stream);
    if (q->dtype == CT_BF16)
        return backward_typed<__nv_bfloat16, float>(q, k, v, q_pos, k_pos, q_seg, k_seg, scale, out, lse, grad_out,
                                                    grad_q, grad_k, grad_v, stream);
    return backward_typed<float, float>(q, k, v, q_pos, k_pos, q_seg, k_seg, scale, out, lse, grad_out, grad_q,
                                        grad_k, grad_v, stream);
}

/* ---- dispatch between cuDNN and the kernels ---- */

static bool kernel_forced(void) {
    static int forced = -1;
    if (forced < 0) {
        const char *value = getenv("CT_CUDA_ATTENTION");
        forced = value && strcmp(value, "kernel") == 0;
    }
    return forced;
}

/* Whether cuDNN's causal SDPA computes exactly this attention. Only host-side ids are inspected
 * (positions derived from a KV offset live there); ids on the GPU would cost a synchronizing copy
 * to check, so they take the kernel. */
static bool cudnn_qualifies(const ct_tensor *q, const ct_tensor *k, const ct_tensor *q_pos, const ct_tensor *k_pos,
                            const ct_tensor *q_seg) {
    if (kernel_forced() || q->dtype != CT_BF16 || q_seg) return false;
    int64_t T = q->shape[1], S = k->shape[1], D = q->shape[3];
    if (T != S || T == 0 || D % 8 != 0 || D > 128 || q->shape[0] == 0) return false;
    if (!q_pos || !k_pos || q_pos->device != CT_CPU || k_pos->device != CT_CPU) return false;
    return is_range(q_pos, 0) && is_range(k_pos, 0);
}

extern "C" int ct_cuda_attention_forward(const ct_tensor *q, const ct_tensor *k, const ct_tensor *v,
                                         const ct_tensor *q_pos, const ct_tensor *k_pos, const ct_tensor *q_seg,
                                         const ct_tensor *k_seg, double scale, ct_tensor *out, ct_tensor *lse) {
    if (cudnn_qualifies(q, k, q_pos, k_pos, q_seg)) {
        int used = ct_cudnn_sdpa_forward(q, k, v, scale, out, lse);
        if (used < 0) return -1;
        if (used) {
            g_stats.cudnn_forward++;
            return 0;
        }
    }
    return ct_cuda_attention_forward_kernel(q, k, v, q_pos, k_pos, q_seg, k_seg, scale, out, lse);
}

extern "C" int ct_cuda_attention_backward(const ct_tensor *q, const ct_tensor *k, const ct_tensor *v,
                                          const ct_tensor *q_pos, const ct_tensor *k_pos, const ct_tensor *q_seg,
                                          const ct_tensor *k_seg, double scale, const ct_tensor *out,
                                          const ct_tensor *lse, const ct_tensor *grad_out, ct_tensor *grad_q,
                                          ct_tensor *grad_k, ct_tensor *grad_v) {
    if (cudnn_qualifies(q, k, q_pos, k_pos, q_seg)) {
        int used = ct_cudnn_sdpa_backward(q, k, v, scale, out, lse, grad_out, grad_q, grad_k, grad_v);
        if (used < 0) return -1;
        if (used) {
            g_stats.cudnn_backward++;
            return 0;
        }
    }
    return ct_cuda_attention_backward_kernel(q, k, v, q_pos, k_pos, q_seg, k_seg, scale, out, lse, grad_out, grad_q,
                                             grad_k, grad_v);
}
