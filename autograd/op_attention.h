/* Causal self-attention with grouped-query heads, as one fused op.
 *
 * Shapes (row-major, heads interleaved the way a linear projection lays them out):
 *   q   [B, T, Hq,  D]     queries
 *   k   [B, S, Hkv, D]     keys
 *   v   [B, S, Hkv, D]     values
 *   out [B, T, Hq,  D]     softmax(scale * q k^T + mask) v, per query head
 * Hq must be a multiple of Hkv: query head h reads kv head h / (Hq / Hkv) (Hq == Hkv is plain
 * multi-head attention, Hkv == 1 multi-query attention). q, k and v share a device and are f32
 * or f64 (one dtype), or bf16 storage (widened to f32 copies; the output is bf16, gradients f32).
 * The scale defaults to 1 / sqrt(D).
 *
 * Masking: query t of row b may attend to key s of row b only when
 *   k_pos[b, s] <= q_pos[b, t]                       (causal, by position id, not by index), and
 *   k_seg[b, s] == q_seg[b, t]  when segment ids are given
 * (packed rows: sequences that share a row never see each other). Position ids restart at 0 in
 * each packed sequence; segment ids only need to differ between neighbouring sequences. A query
 * with no visible key at all (only possible with explicit ids) gets a zero output and no
 * gradient, rather than NaN.
 *
 * Positions come either from explicit i32 tensors q_pos [B, T] and k_pos [B, S], or, when both
 * are NULL, from a KV-cache offset: the queries sit at positions kv_offset .. kv_offset + T - 1
 * and the keys at 0 .. S - 1, with S == kv_offset + T (plain training: kv_offset 0, S == T).
 * When S == T a q_pos or q_seg given alone is used for the keys too.
 *
 * Memory: no [B, H, T, S] score tensor is ever formed. Forward runs a flash-attention style
 * online softmax over key blocks and keeps only out and the per-row logsumexp [B, Hq, T] for
 * backward, which recomputes scores block by block. Temporaries are O(block * (block + D)) per
 * thread. The gradients of k and v sum the query heads of a group in a fixed order, so results
 * do not depend on the thread count or scheduling. */
#ifndef CT_OP_ATTENTION_H
#define CT_OP_ATTENTION_H

#include <stdint.h>

#include "core/tensor.h"

typedef struct {
    ct_tensor *q_pos, *k_pos; /* i32 [B, T] and [B, S], or both NULL to derive from kv_offset */
    ct_tensor *q_seg, *k_seg; /* i32 [B, T] and [B, S] segment ids, or NULL: one sequence per row */
    int64_t kv_offset;        /* position of the first query when positions are derived */
    double scale;             /* softmax scale; 0 means 1 / sqrt(D) */
} ct_attention_args;

/* args may be NULL: derived positions with kv_offset = S - T, no segments, default scale. */
ct_tensor *ct_attention(ct_tensor *q, ct_tensor *k, ct_tensor *v, const ct_attention_args *args);

#endif
