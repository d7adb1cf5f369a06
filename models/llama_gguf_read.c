/* A LLaMA-family model from a GGUF file (models/llama_gguf.h).
 *
 * The config comes from the architecture's keys (types checked as llama.cpp checks them) and the
 * tensors present (biases, q/k norms, a separate output); the file must then hold exactly the
 * tensors that config implies, with their shapes, before any parameter memory is allocated.
 * Q8_0 stays int8: each block's 32 values become a row segment of an i8 tensor and its fp16
 * scale one f32 in weight->scale (scale_block 32), so the model holds no dequantized copy. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/ops_transformer.h"
#include "core/error.h"
#include "models/llama_gguf.h"
#include "models/llama_internal.h"

static int get_size(const ct_gguf *g, const char *arch, const char *key, bool required, int64_t *out) {
    char name[128];
    snprintf(name, sizeof name, "%s.%s", arch, key);
    uint32_t v;
    bool found;
    CT_TRY(ct_gguf_get_u32(g, name, required, &v, &found));
    if (found) *out = v;
    return 0;
}

static int get_real(const ct_gguf *g, const char *arch, const char *key, double *out) {
    char name[128];
    snprintf(name, sizeof name, "%s.%s", arch, key);
    float v;
    bool found;
    CT_TRY(ct_gguf_get_f32(g, name, false, &v, &found));
    if (found) *out = v;
    return 0;
}

static int token_id(const ct_gguf *g, const char *key, int64_t *out) {
    uint32_t v;
    bool found;
    CT_TRY(ct_gguf_get_u32(g, key, false, &v, &found));
    if (found) *out = v;
    return 0;
}

static int read_arch(const ct_gguf *g, ct_llama_arch *arch, char **name) {
    CT_TRY(ct_gguf_get_string(g, "general.architecture", true, name));
    for (ct_llama_arch a = CT_ARCH_LLAMA; a <= CT_ARCH_QWEN3; a++)
        if (ct_llama_gguf_arch(a) && !strcmp(ct_llama_gguf_arch(a), *name)) return *arch = a, 0;
    return ct_fail("%s: general.architecture is %s; ctune reads GGUF models of architecture llama, qwen2 and qwen3",
                   ct_gguf_path(g), *name);
}

static int read_sizes(const ct_gguf *g, const char *a, ct_llama_config *c) {
    CT_TRY(get_size(g, a, "embedding_length", true, &c->hidden_size));
    CT_TRY(get_size(g, a, "block_count", true, &c->num_hidden_layers));
    CT_TRY(get_size(g, a, "feed_forward_length", true, &c->intermediate_size));
    CT_TRY(get_size(g, a, "attention.head_count", true, &c->num_attention_heads));
    CT_TRY(get_size(g, a, "context_length", false, &c->max_position_embeddings));
    CT_TRY(get_real(g, a, "attention.layer_norm_rms_epsilon", &c->rms_norm_eps));
    CT_TRY(get_real(g, a, "rope.freq_base", &c->rope_theta));
    c->num_key_value_heads = c->num_attention_heads;
    CT_TRY(get_size(g, a, "attention.head_count_kv", false, &c->num_key_value_heads));
    c->head_dim = c->num_attention_heads ? c->hidden_size / c->num_attention_heads : 0;
    return get_size(g, a, "attention.key_length", false, &c->head_dim);
}

static int read_config(const ct_gguf *g, ct_llama_config *c) {
    ct_llama_arch arch = CT_ARCH_LLAMA;
    char *a = NULL;
    int rc = read_arch(g, &arch, &a);
    if (rc == 0) {
        ct_llama_config_defaults(c, arch);
        rc = read_sizes(g, a, c);
    }
    free(a);
    CT_TRY(rc);
    const ct_gguf_tensor *embd = ct_gguf_find_tensor(g, "token_embd.weight");
    if (!embd) return ct_fail("%s: no token_embd.weight tensor; not a model file (a LoRA adapter?)", ct_gguf_path(g));
    c->vocab_size = embd->ne[1];
    c->tie_word_embeddings = !ct_gguf_find_tensor(g, "output.weight");
    c->qkv_bias = ct_gguf_find_tensor(g, "blk.0.attn_q.bias") != NULL;
    c->o_bias = ct_gguf_find_tensor(g, "blk.0.attn_output.bias") != NULL;
    c->qk_norm = ct_gguf_find_tensor(g, "blk.0.attn_q_norm.weight") != NULL;
    CT_TRY(token_id(g, "tokenizer.ggml.bos_token_id", &c->bos_token_id));
    CT_TRY(token_id(g, "tokenizer.ggml.padding_token_id", &c->pad_token_id));
    int64_t eos = -1;
    CT_TRY(token_id(g, "tokenizer.ggml.eos_token_id", &eos));
    if (eos >= 0) c->eos_token_ids[c->n_eos++] = eos;
    return ct_llama_config_validate(c, ct_gguf_path(g));
}

/* The tensor of a parameter, its shape checked. */
static int find_param(const ct_gguf *g, const ct_llama_param_spec *s, const ct_gguf_tensor **out) {
    char name[CT_GGUF_MAX_NAME];
    CT_TRY(ct_llama_gguf_name(s->name, name, sizeof name));
    const ct_gguf_tensor *t = ct_gguf_find_tensor(g, name);
    if (!t) return ct_fail("%s: tensor %s (%s) is missing; the file and its keys disagree", ct_gguf_path(g), name, s->name);
    bool same = t->n_dims == s->ndim;
    for (int d = 0; same && d < s->ndim; d++) same = t->ne[d] == s->shape[s->ndim - 1 - d];
    if (!same)
        return ct_fail("%s: tensor %s has ne [%lld, %lld] but the keys imply [%lld, %lld]", ct_gguf_path(g), name,
                       (long long)t->ne[0], (long long)t->ne[1], (long long)s->shape[s->ndim - 1],
                       (long long)(s->ndim == 2 ? s->shape[0] : 1));
    if (s->ndim == 1 && t->type == CT_GGUF_Q8_0) return ct_fail("%s: 1-D tensor %s is Q8_0", ct_gguf_path(g), name);
    *out = t;
    return 0;
}

static int check_tensor_set(const ct_gguf *g, const ct_llama_param_spec *specs, int n, const ct_gguf_tensor **found) {
    for (int i = 0; i < n; i++) CT_TRY(find_param(g, &specs[i], &found[i]));
    int64_t expected = n + (ct_gguf_find_tensor(g, "rope_freqs.weight") ? 1 : 0);
    if (ct_gguf_tensor_count(g) != expected)
        return ct_fail("%s: %lld tensors, but the keys imply %lld; tensors the model does not know are refused",
                       ct_gguf_path(g), (long long)ct_gguf_tensor_count(g), (long long)expected);
    return 0;
}

/* Q8_0 rows into an i8 tensor and its block scales. */
static ct_tensor *load_q8_0(const ct_gguf_tensor *t, const ct_llama_param_spec *s) {
    const int64_t rows = s->shape[0], cols = s->shape[1], blocks = cols / CT_GGUF_Q8_0_BLOCK;
    int64_t scale_shape[2] = {rows, blocks};
    ct_tensor *w = ct_tensor_new(CT_I8, 2, s->shape, s->name);
    ct_tensor *scale = w ? ct_tensor_new(CT_F32, 2, scale_shape, NULL) : NULL;
    if (!scale) {
        ct_tensor_free(w);
        return NULL;
    }
    int8_t *q = w->data;
    float *d = scale->data;
    for (int64_t b = 0; b < rows * blocks; b++) {
        const uint8_t *block = t->data + b * CT_GGUF_Q8_0_BYTES;
        uint16_t h;
        memcpy(&h, block, 2);
        d[b] = ct_f16_to_f32(h);
        memcpy(q + b * CT_GGUF_Q8_0_BLOCK, block + 2, CT_GGUF_Q8_0_BLOCK);
    }
    w->scale = scale;
    w->scale_block = CT_GGUF_Q8_0_BLOCK;
    return w;
}

static ct_tensor *load_plain(const ct_gguf_tensor *t, const ct_llama_param_spec *s) {
    ct_tensor *w = ct_tensor_new(t->type == CT_GGUF_BF16 ? CT_BF16 : CT_F32, s->ndim, s->shape, s->name);
    if (!w) return NULL;
    const int64_t n = ct_numel(w);
    if (t->type == CT_GGUF_F32 || t->type == CT_GGUF_BF16) memcpy(w->data, t->data, t->nbytes);
    else
        for (int64_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, t->data + 2 * i, 2);
            ((float *)w->data)[i] = ct_f16_to_f32(h);
        }
    return w;
}

/* Rows of q and k (and the scales of their blocks) back to HF's rotate-half order. */
static int unpermute(const ct_llama *m, ct_tensor *w) {
    int64_t n_head;
    if (!ct_llama_gguf_permuted(m, w->name, &n_head)) return 0;
    const int64_t rows = w->shape[0];
    ct_tensor *parts[2] = {w, w->scale};
    for (int p = 0; p < 2 && parts[p]; p++) {
        size_t row_bytes = ct_nbytes(parts[p]) / (size_t)rows;
        void *copy = ct_malloc(ct_nbytes(parts[p]), w->name);
        if (!copy) return -1;
        memcpy(copy, parts[p]->data, ct_nbytes(parts[p]));
        ct_llama_rope_permute_rows(copy, parts[p]->data, row_bytes, n_head, m->config.head_dim, true);
        free(copy);
    }
    return 0;
}

static int load_rope_freqs(const ct_gguf *g, ct_llama *m) {
    const ct_gguf_tensor *t = ct_gguf_find_tensor(g, "rope_freqs.weight");
    if (!t) return 0;
    const int64_t half = m->config.head_dim / 2;
    if (t->type != CT_GGUF_F32 || t->n_dims != 1 || t->ne[0] != half)
        return ct_fail("%s: rope_freqs.weight must be F32 [%lld]", ct_gguf_path(g), (long long)half);
    double plain[CT_LLAMA_MAX_HEAD_DIM / 2];
    ct_rope_default_inv_freq(m->config.rope_theta, m->config.head_dim, plain);
    for (int64_t i = 0; i < half; i++) {
        float f;
        memcpy(&f, t->data + 4 * i, 4);
        if (!(f > 0)) return ct_fail("%s: rope_freqs.weight[%lld] is not positive", ct_gguf_path(g), (long long)i);
        m->inv_freq[i] = (float)(plain[i] / f);
    }
    return 0;
}

static int load_params(const ct_gguf *g, ct_llama *m) {
    int n;
    ct_llama_param_spec *specs = ct_llama_param_specs(m, &n);
    const ct_gguf_tensor **found = specs ? ct_calloc((size_t)n, sizeof *found, "GGUF tensors") : NULL;
    int rc = found ? check_tensor_set(g, specs, n, found) : -1;
    for (int i = 0; i < n && rc == 0; i++) {
        ct_tensor *w = found[i]->type == CT_GGUF_Q8_0 ? load_q8_0(found[i], &specs[i]) : load_plain(found[i], &specs[i]);
        if (!w) {
            rc = -1;
            break;
        }
        *specs[i].slot = w;
        m->params[m->n_params++] = w;
        rc = unpermute(m, w);
    }
    if (rc == 0 && m->config.tie_word_embeddings) m->lm_head.weight = m->embed_tokens;
    free(found);
    free(specs);
    return rc == 0 ? load_rope_freqs(g, m) : -1;
}

ct_llama *ct_llama_load_gguf(const ct_gguf *g) {
    ct_llama_config cfg;
    if (read_config(g, &cfg) < 0) return NULL;
    ct_llama *m = ct_llama_skeleton(&cfg);
    if (m && load_params(g, m) < 0) {
        ct_llama_free(m);
        return NULL;
    }
    return m;
}
