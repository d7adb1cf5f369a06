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
    ct_lora_init init;
} ct_lora_options;

typedef struct ct_lora {
    ct_tensor *A;          /* [r, in], requires grad */
    ct_tensor *B;          /* [out, r], requires grad */
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
/* An adapter for an [out, in] projection named `module` ("model.layers.0.self_attn.q_proj"),
 * f32 on the CPU, initialized from (seed, site). NULL with a message. */
ct_lora *ct_lora_new(const char *module, int64_t in, int64_t out, const ct_lora_options *o, uint64_t seed,
                     uint32_t site);
void ct_lora_free(ct_lora *l);

/* s · dropout(x)·Aᵀ·Bᵀ for x [..., in]: [..., out] in x's dtype, in the current scope; the tape
 * records it when x, A or B needs a gradient. train: NULL outside training (no dropout), else
 * where the step is (dropout with probability l->dropout). NULL with a message. */
ct_tensor *ct_lora_delta(const ct_lora *l, ct_tensor *x, const ct_lora_dropout *drop);

/* weight += s · B·A, computed in f64 and rounded once into weight's dtype (f32 or bf16; an i8
 * weight cannot take it: refused). For merging an adapter into its base. 0 or -1. */
int ct_lora_merge_into(const ct_lora *l, ct_tensor *weight);

#endif
