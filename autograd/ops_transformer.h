/* Transformer building blocks of LLaMA-family models, each differentiable (see autograd/ops.h for
 * the shared conventions: NULL in, NULL out; errors name the op and both shapes; operands share
 * a device). rms_norm, silu, swiglu and rope take f32 or f64 operands, or bf16 ones (alone or
 * mixed with f32, computed in f32, the output in the first operand's dtype, rounded to nearest
 * even; gradients of bf16 tensors are f32). kl_div and dropout take f32 or f64 only: convert bf16
 * logits with ct_to_dtype first. Row sums end in double (the f32 and bf16 paths sum spans of
 * columns in f32 vector lanes first). Results do not depend on the thread count. */
#ifndef CT_OPS_TRANSFORMER_H
#define CT_OPS_TRANSFORMER_H

#include <stdint.h>

#include "core/tensor.h"
#include "kernels/backend.h" /* ct_kd_divergence */

/* RMSNorm over the last dimension, as HF LlamaRMSNorm:
 *   y = x / sqrt(mean(x^2, last dim) + eps) * weight
 * x [..., D], weight [D] (1-D). Typical eps: 1e-5 or 1e-6 (the model's rms_norm_eps). */
ct_tensor *ct_rms_norm(ct_tensor *x, ct_tensor *weight, double eps);

/* silu(x) = x * sigmoid(x), elementwise. */
ct_tensor *ct_silu(ct_tensor *x);
/* The LLaMA MLP's gate: silu(gate) * up, fused into one pass; gate and up share a shape. */
ct_tensor *ct_swiglu(ct_tensor *gate, ct_tensor *up);

/* Rotary position embedding in the HF rotate-half layout.
 *   x [B, T, H, D] (D even), position_ids i32 [B, T]: explicit positions, so packed sequences
 *   can restart at 0 and a KV cache can continue at an offset.
 * Element i < D/2 of every head pairs with i + D/2 and rotates by angle = pos * inv_freq[i]:
 *   out[i]       = x[i] * cos - x[i + D/2] * sin
 *   out[i + D/2] = x[i + D/2] * cos + x[i] * sin
 * inv_freq: D/2 frequencies (e.g. a Llama-3 "llama3"-scaled table), copied at the call; NULL
 * means the plain table inv_freq[i] = theta^(-2i/D) (theta: rope_theta, e.g. 10000 or 500000). */
ct_tensor *ct_rope(ct_tensor *x, ct_tensor *position_ids, double theta, const float *inv_freq);
/* The plain table theta^(-2i/D) for i < D/2, into inv_freq (for building scaled variants). */
void ct_rope_default_inv_freq(double theta, int64_t head_dim, double *inv_freq);

/* Dropout with a stateless counter-based mask: element i (flat index into x) is kept when
 * ct_counter_uniform(seed, stream, i) >= p, and kept elements are scaled by 1 / (1 - p).
 * The mask is never stored: backward, and any recomputation of a checkpointed segment, redraw
 * it from the same (seed, stream). Build stream with ct_dropout_stream so every dropout site of
 * every step draws an independent mask. p in [0, 1); p == 0 returns x itself (no node). */
ct_tensor *ct_dropout(ct_tensor *x, double p, uint64_t seed, uint64_t stream);
/* stream = step in the high 40 bits, op id (the dropout site's index in the model, < 2^24) in the
 * low 24 bits; ct_counter_hash mixes the stream, so nearby values give unrelated masks. */
static inline uint64_t ct_dropout_stream(uint64_t step, uint32_t op_id) {
    return (step << 24) | (op_id & 0xffffffu);
}

/* Hinton distillation loss between student and teacher logits [..., V] (rows = all but the last
 * dimension), temperature tau > 0, optional mask (one value per row, f32 or the logits' dtype;
 * rows where it is 0 are skipped; NULL = every row):
 *   loss = tau^2 / n * sum over unmasked rows of KL(softmax(t / tau) || softmax(s / tau)),
 * n = the number of unmasked rows (0 rows: loss 0). This is PyTorch's
 * kl_div(log_softmax(s/tau), log_softmax(t/tau), reduction="sum") * tau^2 / n, i.e. the mean KL
 * per token; tau^2 keeps the gradient scale independent of tau. A 0-d tensor. Both logits get
 * gradients when they require grad (usually the teacher is frozen). */
ct_tensor *ct_kl_div(ct_tensor *student_logits, ct_tensor *teacher_logits, ct_tensor *mask, double temperature);

/* The distillation loss fused with both lm_heads (autograd/op_kd_loss.c). With
 * s = student_hidden student_head[:vocab]^T and t = teacher_hidden teacher_head[:vocab]^T (only
 * the first `vocab` rows of each head: rows past the tokenizer's size are padding), per row r
 * whose target is >= 0 (-100 = ignored):
 *   loss_r = ce_weight * CE(s_r, targets_r) + kl_weight * T^2 * KL_r     (kernels/backend.h)
 * and the op returns the SUM over those rows (a 0-d tensor): the caller divides once, by the
 * step's target count across gradient accumulation. Logits exist only a chunk of chunk_rows rows
 * at a time (0 = CT_KD_CHUNK_ELEMENTS / vocab rows), in forward and in backward, which computes
 * them again (when all rows fit in one chunk, forward keeps it for backward instead). Hidden
 * states [rows, H] f32 (f64 for gradient checks); heads [>= vocab, H] in the hidden's dtype,
 * or, with f32 hidden states, a bf16 or frozen i8 head kept as loaded (a teacher, or a LoRA
 * run's frozen base: the GEMM widens it a tile at a time). The student's hidden states
 * and head get gradients when they require them; the teacher's never do. kl_weight 0 is plain
 * cross-entropy and reads no teacher (both may then be NULL): the training loss of a run without
 * a teacher (models/llama.h, ct_llama_loss_sum). */
typedef struct {
    double ce_weight, kl_weight, temperature;
    ct_kd_divergence divergence;
    int64_t chunk_rows;
} ct_kd_options;
#define CT_KD_CHUNK_ELEMENTS ((int64_t)1 << 24) /* 64 MB of f32 logits per model per chunk */
ct_tensor *ct_kd_loss(ct_tensor *student_hidden, ct_tensor *student_head, ct_tensor *teacher_hidden,
                      ct_tensor *teacher_head, ct_tensor *targets, int64_t vocab, const ct_kd_options *options);

#endif
