/* GGUF names and the RoPE row permutation of architecture llama (models/llama_gguf.h). */
#include <stdio.h>
#include <string.h>

#include "core/error.h"
#include "models/llama_gguf.h"

const char *ct_llama_gguf_arch(ct_llama_arch arch) {
    switch (arch) {
    case CT_ARCH_LLAMA: return "llama";
    case CT_ARCH_QWEN2: return "qwen2";
    case CT_ARCH_QWEN3: return "qwen3";
    default: return NULL;
    }
}

/* HF module path inside a layer -> GGUF name inside a block. */
static const char *const LAYER_NAMES[][2] = {
    {"input_layernorm", "attn_norm"},      {"self_attn.q_proj", "attn_q"},
    {"self_attn.k_proj", "attn_k"},        {"self_attn.v_proj", "attn_v"},
    {"self_attn.o_proj", "attn_output"},   {"self_attn.q_norm", "attn_q_norm"},
    {"self_attn.k_norm", "attn_k_norm"},   {"post_attention_layernorm", "ffn_norm"},
    {"mlp.gate_proj", "ffn_gate"},         {"mlp.up_proj", "ffn_up"},
    {"mlp.down_proj", "ffn_down"},
};

int ct_llama_gguf_name(const char *hf, char *out, size_t size) {
    if (!strcmp(hf, "model.embed_tokens.weight")) return snprintf(out, size, "token_embd.weight"), 0;
    if (!strcmp(hf, "model.norm.weight")) return snprintf(out, size, "output_norm.weight"), 0;
    if (!strcmp(hf, "lm_head.weight")) return snprintf(out, size, "output.weight"), 0;
    int layer, at = 0;
    if (sscanf(hf, "model.layers.%d.%n", &layer, &at) == 1 && at > 0) {
        const char *rest = hf + at, *dot = strrchr(rest, '.');
        for (size_t i = 0; dot && i < sizeof LAYER_NAMES / sizeof LAYER_NAMES[0]; i++) {
            size_t n = strlen(LAYER_NAMES[i][0]);
            if ((size_t)(dot - rest) == n && !strncmp(rest, LAYER_NAMES[i][0], n))
                return snprintf(out, size, "blk.%d.%s%s", layer, LAYER_NAMES[i][1], dot), 0;
        }
    }
    return ct_fail("parameter %s has no GGUF name", hf);
}

void ct_llama_rope_permute_rows(const void *src, void *dst, size_t row_bytes, int64_t n_head, int64_t head_dim,
                                bool undo) {
    const int64_t half = head_dim / 2;
    for (int64_t h = 0; h < n_head; h++)
        for (int64_t i = 0; i < half; i++)
            for (int64_t k = 0; k < 2; k++) {
                int64_t hf_row = h * head_dim + k * half + i, gguf_row = h * head_dim + 2 * i + k;
                int64_t from = undo ? gguf_row : hf_row, to = undo ? hf_row : gguf_row;
                memcpy((char *)dst + (size_t)to * row_bytes, (const char *)src + (size_t)from * row_bytes, row_bytes);
            }
}

bool ct_llama_gguf_permuted(const ct_llama *m, const char *hf_name, int64_t *n_head) {
    if (m->config.arch != CT_ARCH_LLAMA) return false;
    if (strstr(hf_name, ".self_attn.q_proj.")) return *n_head = m->config.num_attention_heads, true;
    if (strstr(hf_name, ".self_attn.k_proj.")) return *n_head = m->config.num_key_value_heads, true;
    return false;
}
