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
 * Two implementations: cuDNN's fused scaled-dot-product attention (cuda_sdpa_cudnn.cu) for the
 * inputs it handles -- bf16, no segment ids, plain causal positions (q_pos = t, k_pos = s, T == S)
 * held on the host, head dim a multiple of 8 up to 128 -- and hand-written flash-attention style
 * kernels (cuda_attention.cu) for everything else. The cuDNN graph is not written yet: its entry
 * points decline every call, so today the hand-written kernels run for all inputs. The hand-written backward is deterministic: no
 * atomics; dK / dV of a kv head sum the query heads of its group in a fixed order. */
#ifndef CT_CUDA_ATTENTION_H
#define CT_CUDA_ATTENTION_H

/* autograd/tensor.h has no extern "C" block of its own: C++ includes it inside this one. */
#ifdef __cplusplus
extern "C" {
#endif
#include "autograd/tensor.h"

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
 * 0..t). Returns 1 when cuDNN ran it, 0 when it declines -- the shape is outside what the graph
 * supports, or cuDNN could not build or finalize a plan for it (said once on stderr, then the
 * caller uses the hand-written kernel) -- and -1 on an error after it started. Backward
 * accumulates the (bf16) gradients cuDNN produces into the f32 targets. */
int ct_cudnn_sdpa_forward(const ct_tensor *q, const ct_tensor *k, const ct_tensor *v, double scale, ct_tensor *out,
                          ct_tensor *lse);
int ct_cudnn_sdpa_backward(const ct_tensor *q, const ct_tensor *k, const ct_tensor *v, double scale,
                           const ct_tensor *out, const ct_tensor *lse, const ct_tensor *grad_out, ct_tensor *grad_q,
                           ct_tensor *grad_k, ct_tensor *grad_v);
/* Whether this build has the cuDNN path, and how often each path ran (benchmarks, tests). */
typedef struct {
    long long cudnn_forward, cudnn_backward, kernel_forward, kernel_backward;
} ct_cuda_attention_stats;
ct_cuda_attention_stats ct_cuda_attention_get_stats(void);

#ifdef __cplusplus
}
#endif

#endif
