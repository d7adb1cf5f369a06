/* The configuration of a LLaMA-family decoder, read from (and written to) a Hugging Face
 * config.json.
 *
 * Four architectures share one structure, differing only in a few switches:
 *   LlamaForCausalLM    optional q/k/v/o bias (attention_bias), "llama3" rope scaling (LLaMA 3.x)
 *   MistralForCausalLM  no biases; sliding_window (unsupported beyond the window, see below)
 *   Qwen2ForCausalLM    q/k/v bias always, o_proj never (Qwen2, Qwen2.5)
 *   Qwen3ForCausalLM    q/k RMSNorm over head_dim, explicit head_dim, optional q/k/v/o bias
 * Both config.json dialects are read: the Hub's (rope_theta and rope_scaling at the top level,
 * torch_dtype) and the one transformers 5 writes (rope_parameters holding rope_theta, dtype).
 * Anything the model cannot compute exactly is refused with one line naming config.json and the
 * key: another architecture, rope type, activation, an MLP bias, partial rotary embeddings. */
#ifndef CT_LLAMA_CONFIG_H
#define CT_LLAMA_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "core/dtype.h"

typedef enum { CT_ARCH_LLAMA, CT_ARCH_MISTRAL, CT_ARCH_QWEN2, CT_ARCH_QWEN3 } ct_llama_arch;
typedef enum { CT_ROPE_DEFAULT, CT_ROPE_LLAMA3 } ct_rope_type;

#define CT_LLAMA_MAX_EOS 8
/* Real models use 64-256; the bound keeps the RoPE table on the stack. */
#define CT_LLAMA_MAX_HEAD_DIM 4096

typedef struct {
    ct_llama_arch arch;
    int64_t hidden_size;          /* H */
    int64_t intermediate_size;    /* the MLP's width */
    int64_t num_hidden_layers;
    int64_t num_attention_heads;  /* Hq */
    int64_t num_key_value_heads;  /* Hkv; divides Hq */
    int64_t head_dim;             /* D; hidden_size / Hq unless config.json says otherwise */
    int64_t vocab_size;           /* rows of the embedding and lm_head; may exceed the tokenizer's size */
    int64_t max_position_embeddings;
    double rms_norm_eps;
    double rope_theta;
    double initializer_range;     /* std of the random initialization */
    struct {
        ct_rope_type type;
        double factor, low_freq_factor, high_freq_factor;
        int64_t original_max_position_embeddings;
    } rope_scaling;
    bool tie_word_embeddings;     /* lm_head is embed_tokens (no lm_head.weight in the file) */
    bool qkv_bias;                /* q_proj, k_proj, v_proj have a bias */
    bool o_bias;                  /* o_proj has a bias */
    bool qk_norm;                 /* Qwen3: RMSNorm of each q and k head before RoPE */
    int64_t sliding_window;       /* 0: none; else positions must stay below it (see ct_llama_forward) */
    ct_dtype torch_dtype;         /* the dtype the checkpoint declares (f32, bf16 or f16) */
    int64_t bos_token_id;         /* -1 when absent or null */
    int64_t pad_token_id;         /* -1 when absent or null */
    int64_t eos_token_ids[CT_LLAMA_MAX_EOS]; /* LLaMA 3 Instruct lists three */
    int n_eos;
} ct_llama_config;

/* The HF class name ("Qwen2ForCausalLM") and model_type ("qwen2") of an architecture. */
const char *ct_llama_arch_name(ct_llama_arch arch);
const char *ct_llama_model_type(ct_llama_arch arch);

/* A config with the architecture's switches and typical defaults (eps 1e-6, theta 10000,
 * initializer_range 0.02, f32); sizes are 0 and must be filled in before validation. */
void ct_llama_config_defaults(ct_llama_config *cfg, ct_llama_arch arch);

/* Parses config.json text; `source` names the file in messages. Validates. 0 or -1. */
int ct_llama_config_parse(const char *json_text, const char *source, ct_llama_config *cfg);
/* Reads `path`: a config.json file or a folder holding one. */
int ct_llama_config_load(const char *path, ct_llama_config *cfg);
/* Sizes positive, Hq a multiple of Hkv, D even, rope parameters sane. `source` names the file. */
int ct_llama_config_validate(const ct_llama_config *cfg, const char *source);

/* config.json text (a new string the caller frees) that transformers loads as this model.
 * When `base_json` is not NULL (the config.json the model came from), its other keys are kept
 * and only the keys ctune owns are rewritten. store_dtype is recorded as the checkpoint's dtype. */
char *ct_llama_config_to_json(const ct_llama_config *cfg, const char *base_json, ct_dtype store_dtype);

/* The number of parameters the config implies (a tied lm_head counted once), without allocating
 * them: the memory a model needs is known before it is built. -1 when the config is invalid. */
int64_t ct_llama_config_num_params(const ct_llama_config *cfg);

/* The RoPE inverse frequencies, head_dim / 2 of them, in f32 as transformers keeps them:
 * theta^(-2i/D), then the "llama3" scaling when configured. */
void ct_llama_rope_inv_freq(const ct_llama_config *cfg, float *inv_freq);

#endif
