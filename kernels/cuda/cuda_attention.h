/* Fused causal attention on the GPU, with exactly the semantics of the backend's
 * attention_forward / attention_backward entries (kernels/backend.h, autograd/op_attention.h):
 * q [B, T, Hq, D], k and v [B, S, Hkv, D], grouped-query heads, visibility by i32 position ids
 * (k_pos <= q_pos) and optional segment ids, the row logsumexp lse [B, Hq, T] saved for backward,
 * gradients accumulated (+=) into whichever targets are not NULL.
 *
 * dtypes: q, k, v (and out) f32 or bf16 with f32 math, lse and gradients f32; or everything f64
 * (gradient checks). Position and segment ids may be on the host (positions derived from a KV
 * offset are) or on the GPU.
 *
 * Two implementations. cuDNN's fused scaled-dot-product attention (cuda_sdpa_cudnn.cu, a composite
 * graph built through cuDNN's C backend-descriptor API in cudnn_graph.cu) runs the inputs it
 * handles: bf16 q, k, v and out, f32 lse, no segment ids, plain causal positions (q_pos[b, t] = t,
 * k_pos[b, s] = s, T == S) held on the host, head dim a multiple of 8 up to 128, Hq a multiple of
 * Hkv, a GPU of compute capability 8.0 or newer, and a shape cuDNN can build a plan for.
 * Hand-written flash-attention style kernels (cuda_attention.cu) run everything else: f32, f64,
 * segments, explicit or offset positions, other head dims, and whatever cuDNN declines. The
 * hand-written backward is deterministic: no atomics; dK / dV of a kv head sum the query heads of
 * its group in a fixed order. cuDNN's backward accumulates dQ in an f32 buffer across key tiles and
 * is not promised to be bit-for-bit reproducible run to run; its gradients come out in bf16 and
 * agree with the kernel's within bf16 rounding. */
#ifndef CT_CUDA_ATTENTION_H
#define CT_CUDA_ATTENTION_H

/* core/tensor.h has no extern "C" block of its own: C++ includes it inside this one. */
#ifdef __cplusplus
extern "C" {
#endif
#include "core/tensor.h"

/* The op-table entries: cuDNN when the inputs qualify and CT_CUDA_ATTENTION=kernel is not set in
 * the environment, else the hand-written kernels. */
int ct_cuda_attention_forward(const ct_tensor *q, const ct_tensor *k, const ct_tensor *v, const ct_tensor *q_pos,
                              const ct_tensor *k_pos, const ct_tensor *q_seg, const ct_tensor *k_seg, double scale,
                              ct_tensor *out, ct_tensor *lse);
int ct_cuda_attention_backward(const ct_tensor *q, const ct_tensor *k, const ct_tensor *v, const ct_tensor *q_pos,
                               const ct_tensor *k_pos, const ct_tensor *q_seg, const ct_tensor *k_seg, double scale,
                               const ct_tensor *out, const ct_tensor *lse, const ct_tensor *grad_out,
                               ct_tensor *grad_q, ct_tensor *grad_k, ct_tensor *grad_v);

/* The hand-written kernels alone (tests and benchmarks compare the two paths). */
int ct_cuda_attention_forward_kernel(const ct_tensor *q, const ct_tensor *k, const ct_tensor *v,
                                     const ct_tensor *q_pos, const ct_tensor *k_pos, const ct_tensor *q_seg,
                                     const ct_tensor *k_seg, double scale, ct_tensor *out, ct_tensor *lse);
int ct_cuda_attention_backward_kernel(const ct_tensor *q, const ct_tensor *k, const ct_tensor *v,
                                      const ct_tensor *q_pos, const ct_tensor *k_pos, const ct_tensor *q_seg,
                                      const ct_tensor *k_seg, double scale, const ct_tensor *out,
                                      const ct_tensor *lse, const ct_tensor *grad_out, ct_tensor *grad_q,
                                      ct_tensor *grad_k, ct_tensor *grad_v);

/* cuDNN fused SDPA for bf16 q, k, v [B, T, H, D] with plain causal masking (query t sees keys
 * 0..t). Returns 1 when cuDNN ran it, 0 when it declines -- the tensors or the shape are outside
 * what the graph handles (see above and ct_cudnn_sdpa_supported), or cuDNN could not build a plan
 * for the shape (said once on stderr; later calls of that shape decline quietly) -- and -1 on an
 * error after it started. The plan of each shape (B, T, Hq, Hkv, D, scale) is built once and kept
 * in a small LRU table. Backward writes cuDNN's bf16 dQ, dK, dV into scratch and adds them into
 * the f32 targets that are not NULL (dK / dV at Hkv heads: cuDNN sums each query group); grad_out
 * may be f32 (rounded to bf16 first) or bf16. */
int ct_cudnn_sdpa_forward(const ct_tensor *q, const ct_tensor *k, const ct_tensor *v, double scale, ct_tensor *out,
                          ct_tensor *lse);
int ct_cudnn_sdpa_backward(const ct_tensor *q, const ct_tensor *k, const ct_tensor *v, double scale,
                           const ct_tensor *out, const ct_tensor *lse, const ct_tensor *grad_out, ct_tensor *grad_q,
                           ct_tensor *grad_k, ct_tensor *grad_v);
/* Whether the device (compute capability >= 8.0), the loaded cuDNN version and the shape are
 * within what the graph handles, before any plan is built: head dim a multiple of 8 up to 128,
 * Hq % Hkv == 0, T >= 2, cuDNN 9 but not 9.10.0 / 9.10.1, and for the backward on cuDNN older than
 * 9.16 T a multiple of 128. Dtypes and positions are the dispatch's business. Tests use it to
 * insist that cuDNN actually ran. */
bool ct_cudnn_sdpa_supported(int64_t B, int64_t T, int64_t Hq, int64_t Hkv, int64_t D, bool backward);
/* Plans built and failed since start, and plans held now (a training loop stops building after
 * its first step). */
typedef struct {
    long long plans_built, plans_failed;
    int cached_plans;
} ct_cudnn_sdpa_stats;
ct_cudnn_sdpa_stats ct_cudnn_sdpa_get_stats(void);
/* Frees the cached plans and the cuDNN handle (re-created on the next call): for a clean
 * shutdown under a leak checker. */
void ct_cudnn_sdpa_release(void);
/* Whether this build has the cuDNN path, and how often each path ran (benchmarks, tests). */
typedef struct {
    long long cudnn_forward, cudnn_backward, kernel_forward, kernel_backward;
} ct_cuda_attention_stats;
ct_cuda_attention_stats ct_cuda_attention_get_stats(void);

#ifdef __cplusplus
}
#endif

#endif
