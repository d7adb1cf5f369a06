/* Functions shared between the model's source files; not part of the public API. */
#ifndef CT_LLAMA_INTERNAL_H
#define CT_LLAMA_INTERNAL_H

#include "models/llama.h"

/* One parameter as the config implies it: HF name, shape, and where the model keeps it. */
typedef struct {
    char name[96];
    int ndim;
    int64_t shape[2];
    ct_tensor **slot;
} ct_llama_param_spec;

/* A model with its layers, parameter list and RoPE table but no parameter tensors yet. */
ct_llama *ct_llama_skeleton(const ct_llama_config *cfg);
/* The parameters in checkpoint order, in a heap array the caller frees; *n gets the count. The
 * slots point into m. NULL with a message when memory runs out. */
ct_llama_param_spec *ct_llama_param_specs(ct_llama *m, int *n);
/* Allocates and reads every parameter of a skeleton from st (names and shapes already checked),
 * the frozen ones in o->base_dtype (models/llama_base.c). */
struct ct_safetensors;
int ct_llama_load_frozen_base(ct_llama *m, const struct ct_safetensors *st, const ct_llama_load_options *o);
/* Allocates every parameter of a skeleton (norm weights 1, the rest 0), requiring grad. */
int ct_llama_allocate(ct_llama *m);

/* The cache fits this model and a [batch, time] input, and has room for it. */
int ct_llama_cache_check(const ct_kv_cache *cache, const ct_llama_config *cfg, int64_t batch, int64_t time);
/* Records the new tokens' positions (and segments, or 0) in slots [length, length + T) and
 * returns the filled slots' positions and segments ([B, length + T]; *k_seg NULL without
 * segments). Does not advance length: the forward does that once every layer has appended. */
int ct_llama_cache_slots(ct_kv_cache *cache, ct_tensor *positions, ct_tensor *segments, ct_tensor **k_pos,
                         ct_tensor **k_seg);
/* Appends one layer's new keys and values [B, T, Hkv, D] and replaces *k, *v by all filled
 * slots [B, length + T, Hkv, D]. Fails when k or v would need a gradient. */
int ct_llama_cache_kv(ct_kv_cache *cache, int layer, int64_t time, ct_tensor **k, ct_tensor **v);

#endif
