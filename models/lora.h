/* LoRA adapters, as PEFT defines them (Hu et al. 2021; peft.tuners.lora.layer.Linear):
 *
 *   y = x·Wᵀ (+ b) + s · dropout(x)·Aᵀ·Bᵀ        A [r, in], B [out, r]
 *   s = alpha / r, or alpha / √r with rsLoRA (Kalajdzievski 2023)
 *
 * An adapter belongs to one projection (models/linear.h attaches it); A and B are persistent f32
 * tensors named as PEFT names them inside the HF module tree ("model.layers.0.self_attn.q_proj.
 * lora_A.weight"), so the trainer's parameter list, checkpoints and PEFT files share one naming.
 * The base weight stays frozen: only A and B (and any modules_to_save) train.
 *
 * DoRA (Liu et al. 2024; peft.tuners.lora.dora, lora.use_dora) adds a magnitude vector m [out]:
 *
 *   n = ||W + s·B·A|| per output row, DETACHED (computed without the tape: no gradient flows
 *       through it, as the DoRA paper's §4.3 and peft do)
 *   y = x·Wᵀ (+ b) + (m/n - 1) ⊙ (x'·Wᵀ) + (m/n) ⊙ s·x'·Aᵀ·Bᵀ     x' = dropout(x)
 *
 * which without dropout is (m/n) ⊙ (x·Wᵀ + s·x·Aᵀ·Bᵀ) + b: the merged weight m · (W + s·B·A) / n.
 * With dropout peft computes the base product a second time from the dropped x (x'·Wᵀ), and so
 * does ctune. m starts as n at creation (so a new DoRA adapter changes nothing either); it is
 * named "<module>.lora_magnitude_vector", peft's file key without ".weight". W may be f32, bf16 or
 * i8: n is computed a block of rows at a time (kernels/backend.h dora_row_norms).
 *
 * Initialization as PEFT's init_lora_weights: true (the default) draws A from kaiming_uniform
 * with a = √5, i.e. U(-1/√in, 1/√in), and sets B = 0, so a new adapter changes nothing;
 * "gaussian" draws A from N(0, (1/r)²), B = 0. Draws are counter-based (seed, stream, element),
 * so they do not depend on thread count or on the order adapters are made in. */
#ifndef CT_LORA_H
#define CT_LORA_H

#include <stdbool.h>
#include <stdint.h>

#include "core/tensor.h"

typedef enum { CT_LORA_INIT_KAIMING = 0, CT_LORA_INIT_GAUSSIAN = 1 } ct_lora_init;

typedef struct {
    int64_t r;          /* rank, > 0 */
    double alpha;       /* > 0 */
    double dropout;     /* on the adapter's input, in [0, 1) */
    bool use_rslora;    /* s = alpha / √r instead of alpha / r */
    bool use_dora;      /* add the magnitude vector (DoRA) */
    ct_lora_init init;
} ct_lora_options;

typedef struct ct_lora {
    ct_tensor *A;          /* [r, in], requires grad */
    ct_tensor *B;          /* [out, r], requires grad */
    ct_tensor *magnitude;  /* DoRA: [out] f32, requires grad; NULL for plain LoRA */
    double scale;          /* s */
    double dropout;        /* applied only in a training forward (ct_lora_dropout given) */
    uint32_t dropout_site; /* the dropout stream's op id (ct_dropout_stream): one per adapted module */
    bool disabled;         /* the base alone: a free reference model (ct_llama_set_adapters) */
} ct_lora;

/* Where a training forward is, for the adapter's dropout: the counter-based masks are keyed on
 * (seed, step, dropout_site), so a checkpointed block recomputes the same masks. */
typedef struct ct_lora_dropout {
    uint64_t seed, step;
} ct_lora_dropout;

/* s for these options: alpha / r, or alpha / √r. */
double ct_lora_scale(const ct_lora_options *o);
/* Checks r, alpha and dropout; the message names the recipe key (lora.r, ...). 0 or -1. */
int ct_lora_check_options(const ct_lora_options *o);
/* An adapter for an [out, in] projection named `module`; with use_dora its magnitude is zero
 * until ct_lora_dora_init (or a file) sets it ("model.layers.0.self_attn.q_proj"),
 * f32 on the CPU, initialized from (seed, site). NULL with a message. */
ct_lora *ct_lora_new(const char *module, int64_t in, int64_t out, const ct_lora_options *o, uint64_t seed,
                     uint32_t site);
void ct_lora_free(ct_lora *l);

/* s · dropout(x)·Aᵀ·Bᵀ for x [..., in]: [..., out] in x's dtype, in the current scope; the tape
 * records it when x, A or B needs a gradient. train: NULL outside training (no dropout), else
 * where the step is (dropout with probability l->dropout). NULL with a message. */
ct_tensor *ct_lora_delta(const ct_lora *l, ct_tensor *x, const ct_lora_dropout *drop);
/* y + ct_lora_delta(l, x, drop), the same bits, with the scale and the add in one op (fewer
 * passes over [..., out] forward and backward): what a projection's forward uses. */
ct_tensor *ct_lora_add_delta(const ct_lora *l, ct_tensor *y, ct_tensor *x, const ct_lora_dropout *drop);

/* DoRA: m = ||weight + s·B·A|| per row (peft's initialization), for the frozen base weight the
 * adapter sits on (any device, f32, bf16 or i8). 0 or -1. */
int ct_lora_dora_init(ct_lora *l, const ct_tensor *weight);
/* The DoRA adapter's term, added to the base layer's output y (bias included):
 *   (m/n - 1) ⊙ base + (m/n) ⊙ s·dropout(x)·Aᵀ·Bᵀ,
 * where `stored` is the frozen weight as stored (for n), `weight` the one the product used (a bf16
 * copy under bf16 compute), `base` = x·weightᵀ without bias. With dropout, base is recomputed from
 * the dropped x, as peft does. NULL with a message. */
ct_tensor *ct_lora_dora_term(const ct_lora *l, const ct_tensor *stored, ct_tensor *weight, ct_tensor *x,
                             ct_tensor *base, const ct_lora_dropout *drop);

/* weight += s · B·A, computed in f64 and rounded once into weight's dtype (f32 or bf16; an i8
 * weight cannot take it: refused). For merging an adapter into its base. DoRA: weight becomes
 * m · (W + s·B·A) / ||W + s·B·A|| per row, as peft merges it (the norm also in f64). 0 or -1. */
int ct_lora_merge_into(const ct_lora *l, ct_tensor *weight);

#endif
