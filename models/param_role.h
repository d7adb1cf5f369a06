/* What a parameter is for, read from its Hugging Face name alone, so it works the same for every
 * family, for adapters loaded from a PEFT folder and for tensors a later stage adds:
 *
 *   adapter     PEFT-style names: `...q_proj.lora_A.weight`, `...lora_B...`, `...lora_embedding_A`,
 *               `...lora_magnitude_vector` (checked first: an adapter of a norm is an adapter)
 *   bias        `....bias`
 *   norm        a name holding `norm` (input_layernorm, post_attention_layernorm, q_norm, model.norm)
 *   embedding   `embed_tokens` and `lm_head`: vocabulary-sized tables (lm_head is the tied or
 *               untied output embedding)
 *   projection  every other weight (q/k/v/o_proj, gate/up/down_proj)
 *
 * Recipes choose trainable sets by glob patterns over the names (train.trainable); roles are for
 * the decisions made per kind of tensor (weight decay, a later frozen-base dtype, reports). */
#ifndef CT_PARAM_ROLE_H
#define CT_PARAM_ROLE_H

typedef enum {
    CT_ROLE_EMBEDDING,
    CT_ROLE_PROJECTION,
    CT_ROLE_BIAS,
    CT_ROLE_NORM,
    CT_ROLE_ADAPTER,
} ct_param_role;

ct_param_role ct_param_role_of(const char *hf_name);
/* "embedding", "projection", "bias", "norm", "adapter". */
const char *ct_param_role_name(ct_param_role role);

#endif
