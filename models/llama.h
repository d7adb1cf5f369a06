/* The LLaMA-family decoder (LLaMA 3.x, Mistral, Qwen2/2.5, Qwen3) built from autograd ops, with
 * Hugging Face parameter names, so a checkpoint loads and saves without renaming.
 *
 *   h = embed_tokens[ids]
 *   per layer:  x = rms_norm(h, input_layernorm)
 *               q, k, v = x Wq^T (+bq), x Wk^T (+bk), x Wv^T (+bv)   heads [B, T, H, D]
 *               q, k = rms_norm per head (q_norm, k_norm; Qwen3 only)
 *               q, k = rope(q, k, positions)                          (inv_freq of the config)
 *               h = h + attention(q, k, v) Wo^T (+bo)                 causal, grouped-query
 *               x = rms_norm(h, post_attention_layernorm)
 *               h = h + down(silu(gate(x)) * up(x))
 *   logits = rms_norm(h, norm) lm_head^T          lm_head is embed_tokens when tied
 *
 * Every projection, lm_head included, is a ct_linear run by ct_linear_forward (models/linear.h).
 * Parameters are f32 persistent tensors, named as in the HF checkpoint ("model.layers.3.mlp.
 * up_proj.weight"). Logits have vocab_size columns, the embedding's rows, which may be more than
 * the tokenizer's size (Qwen pads 151,665 tokens to 151,936 rows): callers that sample or score
 * should only consider ids below the tokenizer's size. Loading and saving are in llama_io.c. */
#ifndef CT_LLAMA_H
#define CT_LLAMA_H

#include <stdbool.h>
#include <stdint.h>

#include "core/tensor.h"
#include "models/linear.h"
#include "models/llama_config.h"

struct ct_tokenizer;

/* Every projection is a ct_linear (models/linear.h): weight, optional bias, and the places an
 * adapter, a pruning mask or int8 scales attach. */
typedef struct {
    ct_tensor *input_layernorm;          /* [H] */
    ct_linear q_proj, k_proj, v_proj;    /* [Hq*D, H], [Hkv*D, H], [Hkv*D, H]; biases [Hq*D], [Hkv*D] (Qwen2) */
    ct_tensor *q_norm, *k_norm;          /* [D] or NULL (Qwen3) */
    ct_linear o_proj;                    /* [H, Hq*D]; bias [H] when the config has o_bias */
    ct_tensor *post_attention_layernorm; /* [H] */
    ct_linear gate_proj, up_proj;        /* [I, H] */
    ct_linear down_proj;                 /* [H, I] */
} ct_llama_layer;

typedef struct ct_llama {
    ct_llama_config config;
    ct_tensor *embed_tokens; /* [V, H] */
    ct_tensor *norm;         /* [H] */
    ct_linear lm_head;       /* [V, H], no bias; its weight is embed_tokens when tied */
    ct_llama_layer *layers;  /* num_hidden_layers of them */
    /* Every distinct parameter once (a tied lm_head is not repeated), in checkpoint order:
     * embed_tokens, the layers, norm, lm_head. Each carries its HF name in ->name. */
    ct_tensor **params;
    int n_params;
    /* Pruning masks (models/prune.h): masks[i], f32 0/1, belongs to the parameter masked[i]. */
    ct_tensor **masks, **masked;
    int n_masks;
    float *inv_freq;             /* head_dim / 2 RoPE frequencies */
    bool gradient_checkpointing; /* recompute each block in backward (autograd/checkpoint.h) */
    /* CT_F32 (the default) or CT_BF16: mixed precision. The parameters stay f32 masters; a
     * forward without a KV cache converts each matmul weight to a bf16 copy where it is used
     * (ct_linear_forward, so the master gets an f32 gradient) and runs every matmul, attention and activation in bf16
     * storage, keeping the embedding lookup, the residual stream and the RMSNorm weights f32 and
     * returning bf16 logits. Forwards with a KV cache (generation, scoring) always compute in f32,
     * since the cache holds f32 keys and values. */
    ct_dtype compute_dtype;
    /* Rows of logits ct_llama_loss_sum holds at once; 0: CT_KD_CHUNK_ELEMENTS / vocab_size. */
    int64_t loss_chunk_rows;
    struct ct_tokenizer *tokenizer; /* loaded from the folder's tokenizer.json, or NULL */
    char *source_dir;            /* the folder it was loaded from, or NULL */
} ct_llama;

/* A model with zero-filled f32 parameters of the config's shapes, all requiring grad. The config
 * is validated first. NULL with a message. */
ct_llama *ct_llama_new(const ct_llama_config *cfg);
void ct_llama_free(ct_llama *m);

/* transformers' initialization: weights N(0, initializer_range^2) (embedding included), biases
 * 0, norm weights 1. Elements 2i, 2i + 1 of parameter p come from the counter-based draw (seed, p, i),
 * so the result does not depend on the thread count. */
void ct_llama_init_random(ct_llama *m, uint64_t seed);

/* A parameter by its HF name, or NULL. */
ct_tensor *ct_llama_param(const ct_llama *m, const char *name);
/* Whether the optimizer should apply weight decay: matrices (projections, embedding, lm_head)
 * yes; 1-D tensors (norm weights and biases) no, as the usual fine-tuning recipes do. */
bool ct_llama_param_decays(const ct_tensor *param);
/* Parameter count (a tied lm_head counted once). */
int64_t ct_llama_num_params(const ct_llama *m);

/* ---- the KV cache, for generation ---- */

/* Keys and values of every layer for `batch` rows of up to max_len positions, plus each slot's
 * position and segment id, so packed or left-padded rows keep their masking while decoding.
 * `length` slots of every row are filled; a forward with the cache attends over them and the
 * new tokens, then appends the new tokens (length += T). */
typedef struct {
    ct_tensor **k, **v;   /* per layer, f32 [batch, max_len, Hkv, D] */
    ct_tensor *positions; /* i32 [batch, max_len] */
    ct_tensor *segments;  /* i32 [batch, max_len] */
    int n_layers;
    int64_t batch, max_len, length;
} ct_kv_cache;

/* Persistent buffers for the model's shapes. 0, or -1 with a message naming the bytes. */
int ct_kv_cache_init(ct_kv_cache *cache, const ct_llama_config *cfg, int64_t batch, int64_t max_len);
void ct_kv_cache_free(ct_kv_cache *cache);
/* Forget the contents (keeps the memory). */
void ct_kv_cache_reset(ct_kv_cache *cache);

/* ---- forward ---- */

typedef struct {
    /* i32 [B, T] positions, or NULL: 0 .. T-1 (continuing at cache->length with a cache).
     * Packed rows restart them at 0 for each sequence. */
    ct_tensor *position_ids;
    /* i32 [B, T] segment ids, or NULL: one sequence per row. A token attends only to earlier
     * positions of its own segment (packed sequences; left padding in a batch of prompts). With
     * a cache, give them on every call or on none. */
    ct_tensor *segment_ids;
    /* NULL for training. With a cache the forward runs the new tokens after the cache's
     * contents and appends their keys and values; it must run in no-grad mode. */
    ct_kv_cache *cache;
    /* Only the last position's logits ([B, 1, V]): what generation needs after a prefill. */
    bool last_token_only;
    /* Training only: dropout with this probability on each block's attention output and MLP
     * output, before they are added to the residual stream (0: none, as in inference). Masks
     * come from the counter-based streams (dropout_seed, step, site 2 * layer or 2 * layer + 1),
     * so a checkpointed block recomputes the same masks and a resumed run draws the same ones. */
    double dropout;
    uint64_t dropout_seed, step;
    /* A training forward: LoRA adapters apply their own dropout (lora.dropout), with masks keyed
     * on (dropout_seed, step) like the residual dropout's. Off for evaluation and generation. */
    bool training;
    /* Return the final norm's output [B, T, H] (f32) instead of the logits: a fused loss that
     * applies lm_head itself chunk by chunk (autograd/ops_transformer.h, ct_kd_loss). */
    bool hidden_only;
} ct_llama_forward_args;

/* input_ids i32 [B, T] (ids < vocab_size) -> logits [B, T, vocab_size] in the current scope, f32
 * (bf16 when m->compute_dtype is CT_BF16 and there is no cache). input_ids, position_ids and
 * segment_ids must be on the model's device (ct_llama_device); so are the logits. A KV cache
 * needs a model on the CPU. args may be NULL. With a sliding-window config (Mistral v0.1, some Qwen) positions must stay
 * below the window, where full causal attention is the same computation; beyond it the forward
 * fails rather than compute something else. NULL with a message. */
ct_tensor *ct_llama_forward(ct_llama *m, ct_tensor *input_ids, const ct_llama_forward_args *args);

/* The causal-LM loss transformers computes: logits [B, T, V] at position t predict labels
 * [B, T] at t + 1 (the labels are shifted here, not by the caller); -100 labels are ignored;
 * the mean over the predicted tokens. A 0-d tensor, or NULL. */
ct_tensor *ct_llama_loss(ct_tensor *logits, ct_tensor *labels);
/* Logits [..., V] of final hidden states [..., H] (a hidden_only forward's, or rows of it): the
 * lm_head as a training forward (no KV cache) applies it. */
ct_tensor *ct_llama_logits(ct_llama *m, ct_tensor *hidden);
/* The shifted targets that loss uses: i32 [B, T], row b = labels[b, 1:] followed by -100. */
ct_tensor *ct_llama_shift_labels(ct_tensor *labels);

/* The training loss of a batch (models/llama_loss.c): the SUM of the next-token cross-entropy
 * over the positions with a target, i.e. ct_cross_entropy(ct_llama_forward(m, ids, args), targets,
 * CT_REDUCE_SUM) to float rounding (targets i32 [B, T], already shifted; -100 is ignored, any other
 * id outside [0, vocab_size) is an error), without ever holding [B * T, vocab_size] logits: the
 * final hidden states of the rows with a target go to ct_kd_loss with no teacher, which applies
 * lm_head a chunk of rows at a time, in forward and again in backward (one chunk is kept
 * instead, autograd/op_kd_loss.c). `targets` lives on the
 * model's device, `host_targets` is the same tensor on the host (the rows are picked there; they
 * may be one tensor on the CPU). The logits are computed whole, as before, where the fused op
 * does not apply: an lm_head with an adapter, a pruning mask or a bias, and bf16 compute (whose
 * head runs in bf16). A 0-d tensor in the current scope, or NULL with a message. */
ct_tensor *ct_llama_loss_sum(ct_llama *m, ct_tensor *ids, ct_tensor *targets, const ct_tensor *host_targets,
                             const ct_llama_forward_args *args);
/* Whether ct_llama_loss_sum applies lm_head chunk by chunk for this model (see above). */
bool ct_llama_loss_is_fused(const ct_llama *m);
/* The flat positions ([B * T] order) of the targets that are not -100 and those targets, as i32
 * [n] tensors on `device`, from host targets; a target outside [0, vocab) is an error naming its
 * row. The rows ct_llama_loss_sum and distillation gather. */
int ct_llama_target_rows(const ct_tensor *host_targets, int64_t vocab, ct_device device, ct_tensor **rows,
                         ct_tensor **targets);
/* hidden [B, T, H] -> its rows at `rows` (i32 [n], flat positions), [n, H]; differentiable. */
ct_tensor *ct_llama_gather_rows(ct_tensor *hidden, ct_tensor *rows);

/* ---- files (llama_io.c) ---- */

/* Loads a Hugging Face folder: config.json, model.safetensors or its shards (bf16 and f16 are
 * converted to f32), and tokenizer.json when present (kept in m->tokenizer). The file's tensor
 * names and shapes are checked against the config before any parameter memory is allocated; a
 * SentencePiece-only folder (LLaMA 2's tokenizer.model) is refused. NULL with a message. */
ct_llama *ct_llama_load(const char *dir);

/* The dtype a loaded model holds its FROZEN tensors in (model.base_dtype, docs/lora.md "A frozen
 * base"). Tensors that train are always f32 masters.
 *   AUTO  the stored dtype when it is bf16, else f32 (a bf16 checkpoint is never widened)
 *   F32   f32 (every frozen tensor widened)
 *   BF16  bf16 (f32 or f16 tensors rounded to nearest even at load)
 *   INT8  the projections (q, k, v, o, gate, up, down) quantized per output row to symmetric int8
 *         with one f32 scale per row (models/quantize.h), a block of rows at a time from the file;
 *         the other frozen tensors (embeddings, norms, an untied lm_head) as AUTO. A projection
 *         that trains is refused: an int8 weight cannot take a gradient. */
typedef enum { CT_BASE_AUTO = 0, CT_BASE_F32, CT_BASE_BF16, CT_BASE_INT8 } ct_base_dtype;

typedef struct ct_llama_load_options {
    ct_base_dtype base_dtype;
    /* Whether the tensor of this HF name stays frozen; NULL: none does (all f32, as ct_llama_load).
     * `why` names what makes a tensor train, for the refusal of a trainable INT8 projection. */
    bool (*frozen)(const char *name, void *ctx);
    void *ctx;
    const char *why;
} ct_llama_load_options;

/* ct_llama_load with the frozen tensors in o->base_dtype (o NULL: ct_llama_load). Each frozen
 * tensor is converted from the file's bytes into its own dtype directly: no f32 copy of a bf16 or
 * int8 weight exists at any time. Frozen tensors do not require grad. NULL with a message. */
ct_llama *ct_llama_load_with(const char *dir, const ct_llama_load_options *o);
/* Replaces every INT8 parameter by its f32 dequantization (q · scale): what a merged or saved
 * model holds (a model folder stores f32/bf16/f16). 0 or -1. */
int ct_llama_dequantize(ct_llama *m);
/* Whether an HF parameter name is one of the seven projection weights of a layer. */
bool ct_llama_is_projection_weight(const char *name);
/* Writes `dir` (created if missing) in HF layout: model.safetensors in store_dtype (CT_F32,
 * CT_BF16 or CT_F16; no lm_head.weight when tied), config.json, and tokenizer.json,
 * tokenizer_config.json, special_tokens_map.json and generation_config.json copied from
 * tokenizer_dir (NULL: the folder the model was loaded from, if any; a folder given explicitly
 * must hold a tokenizer.json). Each file is written to a
 * temporary name and renamed, so a failure leaves existing files whole. */
int ct_llama_save(const ct_llama *m, const char *dir, const char *tokenizer_dir, ct_dtype store_dtype);
/* ---- devices (llama_device.c) ---- */

/* Where the parameters live (all of them live on one device). */
ct_device ct_llama_device(const ct_llama *m);
/* 0 when a model can live and compute on `device`: the CPU always; CUDA when this build has the
 * complete CUDA op table and a GPU is there. Else -1 with the reason (no prefix). */
int ct_llama_check_device(ct_device device);
/* Moves every parameter, with its gradient when it has one, to `device` in place: the tensors keep
 * their addresses (so an optimizer built on them stays valid, and a tied lm_head stays the
 * embedding) and get new memory there. Build an optimizer after the move, since its moments are
 * allocated on the parameters' device. On failure every parameter is moved back and -1 returned
 * with a message. */
int ct_llama_to_device(ct_llama *m, ct_device device);

/* Refuses a tokenizer with more ids than the model has rows. */
int ct_llama_check_tokenizer(const ct_llama *m, const struct ct_tokenizer *tok);

#endif
