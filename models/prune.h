/* Pruning with torch.nn.utils.prune's semantics, and masks that last (docs/pruning.md).
 *
 * A mask is a persistent f32 tensor of its parameter's shape holding 0 (pruned) or 1. A model
 * keeps one per pruned parameter in m->masks, m->masked[i] being the parameter of masks[i] (by
 * pointer, so adapters appended to m->params or merged away leave them right); the ct_linear
 * whose weight it is points at it (l->mask), so the training forward uses W * mask and pruned entries get no
 * gradient, and the optimizer zeroes the pruned weights and their moments after every step
 * (train/optim.h). Pruned weights are exactly zero in the model, so every export, which writes
 * the weights, carries the sparsity without knowing about masks.
 *
 * Amounts are torch's: a fraction in [0, 1] prunes round(fraction * n) entries with Python's
 * round (half to even: 0.25 * 26 = 6.5 prunes 6), a count prunes that many. Pruning again
 * compounds as torch's PruningContainer does: the new amount is taken of the entries (or, for
 * ln_structured, the channels) still unpruned, and only those are ranked. Entries are ranked by
 * the current weight (pruned ones are zero; torch ranks its weight_orig, which only differs when
 * a structured pass follows an unstructured one). Equal importances are ordered by index (torch
 * leaves their order to topk); random weights have none. */
#ifndef CT_PRUNE_H
#define CT_PRUNE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "core/tensor.h"

struct ct_llama;

/* A fraction of what remains (is_count false) or a number of entries or channels. With
 * to_total the fraction is instead the total sparsity to reach, pruned entries included: it
 * prunes round(fraction * total) minus those already pruned (a gradual schedule's step, so that
 * compounding lands exactly on the target). */
typedef struct {
    double fraction;
    int64_t count;
    bool is_count;
    bool to_total;
} ct_prune_amount;

/* ---- masks of plain arrays (models/prune_mask.c): f32 weights, f32 0/1 masks updated in place.
 * `what` names the tensor in messages. 0, or -1 with a message and the mask unchanged. ---- */

/* The number of entries to prune of `remaining` out of `total` (torch's _compute_nparams_toprune
 * and _validate_pruning_amount): the fraction in [0, 1], the count at most `remaining`. */
int ct_prune_amount_count(ct_prune_amount a, int64_t remaining, int64_t total, const char *what, int64_t *k);
/* l1_unstructured: the k unpruned entries of smallest |w| are pruned. */
int ct_prune_l1_mask(const float *w, float *mask, int64_t n, ct_prune_amount a, const char *what);
/* global_unstructured with L1: one ranking of the unpruned entries of all k tensors together. */
int ct_prune_global_mask(const float *const *w, float *const *mask, const int64_t *n, int k, ct_prune_amount a,
                         const char *what);
/* random_unstructured: the entries are drawn from ct_rng(seed) (not torch's generator). */
int ct_prune_random_mask(float *mask, int64_t n, ct_prune_amount a, uint64_t seed, const char *what);
/* ln_structured on a [rows, cols] weight: dim 0 prunes rows (output channels), dim 1 columns
 * (input channels), the channels of smallest Ln norm (p = norm_order: any p > 0, INFINITY,
 * -INFINITY, or 0 for the count of non-zeros, as torch.norm takes them). */
int ct_prune_ln_mask(const float *w, float *mask, int64_t rows, int64_t cols, double norm_order, int dim,
                     ct_prune_amount a, const char *what);
/* N:M semi-structured: in each group of m consecutive entries of a row the n largest |w| stay
 * (entries already pruned count as zero). cols must be a multiple of m, n <= m. */
int ct_prune_nm_mask(const float *w, float *mask, int64_t rows, int64_t cols, int n, int m, const char *what);

/* ---- models (models/prune.c) ---- */

typedef enum {
    CT_PRUNE_L1_UNSTRUCTURED,
    CT_PRUNE_GLOBAL_UNSTRUCTURED,
    CT_PRUNE_LN_STRUCTURED,
    CT_PRUNE_RANDOM_UNSTRUCTURED,
    CT_PRUNE_NM,
} ct_prune_method;

/* "l1_unstructured", ...; and the reverse (-1 for an unknown name). */
const char *ct_prune_method_name(ct_prune_method method);
int ct_prune_method_parse(const char *name);

typedef struct {
    ct_prune_method method;
    ct_prune_amount amount;
    double norm_order; /* ln_structured's n */
    int dim;           /* ln_structured's dim: 0 rows, 1 columns */
    int nm_n, nm_m;    /* N:M */
    /* Comma-separated fnmatch globs over HF names; "" or NULL: every projection of every layer
     * (q, k, v, o, gate, up, down), not the embedding, lm_head, norms or biases. */
    const char *targets;
    /* Norms, biases, embed_tokens and lm_head are pruned only when this is set. */
    bool allow_norm_embedding;
    /* ln_structured on MLP channels: channel j of a layer is row j of gate_proj and up_proj and
     * column j of down_proj; its norm is that of the three together, and all three lose it.
     * Targets are ignored (every layer's MLP). */
    bool mlp_channels;
    uint64_t seed; /* random_unstructured */
} ct_prune_options;

/* Checks the options alone (amount range, N:M, dim): 0 or -1 naming the option. */
int ct_prune_check_options(const ct_prune_options *o);
/* Prunes the model: computes every new mask first, then zeroes the pruned weights and attaches
 * the masks (m->masks, and each ct_linear's mask). On error nothing of the model changed. The
 * model must be on the CPU with f32 parameters. */
int ct_prune_model(struct ct_llama *m, const ct_prune_options *o);
/* Masks of the tensors whose HF names match `patterns` made from their zeros (1 where w != 0):
 * a pruned model folder carries its sparsity as zeros, and this brings its masks back. */
int ct_prune_masks_from_zeros(struct ct_llama *m, const char *patterns);
/* Attaches `mask` (persistent f32, the parameter's shape and device, 0/1) to `param`, replacing
 * and freeing an earlier one, zeroes the pruned weights and points the ct_linear using the
 * parameter at it. Takes ownership of mask (freed on error too). */
int ct_prune_set_mask(struct ct_llama *m, ct_tensor *param, ct_tensor *mask);
/* The mask of `param`, or NULL. */
ct_tensor *ct_prune_mask_of(const struct ct_llama *m, const ct_tensor *param);
/* Frees every mask (ct_llama_free calls it). */
void ct_prune_release_masks(struct ct_llama *m);
/* Points each ct_linear's mask at its weight's mask (after the masks array changed). */
void ct_prune_link_linears(struct ct_llama *m);
/* Whether any parameter has a mask. */
bool ct_prune_has_masks(const struct ct_llama *m);
/* x *= mask, element by element, on the CPU (f32 or f64 x). */
void ct_prune_apply_mask(ct_tensor *x, const ct_tensor *mask);

/* ---- LoRA on a pruned base (models/prune_lora.c) ---- */

struct ct_lora;
struct ct_lora_dropout;
/* The adapter's term with the base's mask applied to its product: s · dropout(x)·((B·A) ⊙ M)ᵀ
 * for x [..., in], in x's dtype, recorded on the tape. NULL with a message. */
ct_tensor *ct_prune_lora_delta(const struct ct_lora *l, const ct_tensor *mask, ct_tensor *x,
                               const struct ct_lora_dropout *drop);

/* An unmerged adapter over a pruned base cannot be exported: a runtime adds the dense B·A to
 * the base and brings the pruned weights back. -1 with that reason when an adapted projection
 * has a mask, else 0. */
int ct_prune_check_unmerged_export(const struct ct_llama *m);

/* ---- the MLP made smaller (models/prune_compact.c) ---- */

/* A new dense model without the MLP channels the masks pruned: gate/up lose those rows, down
 * those columns, and intermediate_size shrinks. Every layer must keep the same number of
 * channels (HF configs hold one intermediate_size) and each channel be wholly pruned or kept.
 * The result has no masks; tokenizer and source_dir are not copied. NULL with a message. */
struct ct_llama *ct_prune_compact_mlp(const struct ct_llama *m);

/* ---- where the sparsity went (models/prune_report.c) ---- */

typedef struct {
    int64_t zeros, total;
} ct_sparsity_count;

/* Zeros of the weights (exact zeros, measured, not read from masks): per tensor of `names`
 * matching tensors (all masked tensors when patterns is NULL), summed per layer and globally,
 * printed to `out` (may be NULL) as a table; the JSON form goes into *json when json is not NULL
 * (a cJSON object the caller deletes: {"global": s, "tensors": {name: s}, "layers": {i: s},
 * "zeros": z, "total": n, "all_params": s}). 0 or -1. */
int ct_prune_report(const struct ct_llama *m, const char *patterns, FILE *out, void **json);

#endif
