/* A LLaMA-family model into a GGUF writer (models/llama_gguf.h): the model keys llama.cpp reads
 * for its architecture (types as its loader checks them strictly) and every parameter, under its
 * GGUF name, in the asked type, measured against the f32 weights it came from. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/ops_transformer.h"
#include "core/error.h"
#include "models/llama_gguf.h"

/* What one tensor's fill callback needs. */
typedef struct {
    const ct_llama *m;
    const ct_tensor *t;
    ct_gguf_tensor_report *r;
} pending_tensor;

void ct_gguf_report_free(ct_gguf_report *r) {
    free(r->tensors);
    free(r->pending);
    r->tensors = NULL;
    r->pending = NULL;
    r->n = 0;
}

static uint32_t file_type(ct_gguf_type type) {
    switch (type) {
    case CT_GGUF_F16: return 1;
    case CT_GGUF_Q8_0: return 7;
    case CT_GGUF_BF16: return 32;
    default: return 0;
    }
}

static int set_key_u32(ct_gguf_writer *w, const char *arch, const char *key, int64_t value) {
    char name[128];
    snprintf(name, sizeof name, "%s.%s", arch, key);
    if (value < 0 || value > UINT32_MAX) return ct_fail("GGUF key %s: %lld does not fit a u32", name, (long long)value);
    return ct_gguf_set_u32(w, name, (uint32_t)value);
}

static int set_key_f32(ct_gguf_writer *w, const char *arch, const char *key, double value) {
    char name[128];
    snprintf(name, sizeof name, "%s.%s", arch, key);
    return ct_gguf_set_f32(w, name, (float)value);
}

static int add_keys(const ct_llama_config *c, const char *arch, ct_gguf_writer *w, ct_gguf_type type) {
    CT_TRY(ct_gguf_set_string(w, "general.architecture", arch));
    CT_TRY(ct_gguf_set_u32(w, "general.file_type", file_type(type)));
    if (type == CT_GGUF_Q8_0) CT_TRY(ct_gguf_set_u32(w, "general.quantization_version", 2));
    CT_TRY(set_key_u32(w, arch, "context_length", c->max_position_embeddings));
    CT_TRY(set_key_u32(w, arch, "embedding_length", c->hidden_size));
    CT_TRY(set_key_u32(w, arch, "block_count", c->num_hidden_layers));
    CT_TRY(set_key_u32(w, arch, "feed_forward_length", c->intermediate_size));
    CT_TRY(set_key_u32(w, arch, "attention.head_count", c->num_attention_heads));
    CT_TRY(set_key_u32(w, arch, "attention.head_count_kv", c->num_key_value_heads));
    CT_TRY(set_key_f32(w, arch, "attention.layer_norm_rms_epsilon", c->rms_norm_eps));
    CT_TRY(set_key_f32(w, arch, "rope.freq_base", c->rope_theta));
    CT_TRY(set_key_u32(w, arch, "rope.dimension_count", c->head_dim));
    CT_TRY(set_key_u32(w, arch, "vocab_size", c->vocab_size));
    /* llama.cpp assumes head_dim = hidden / heads unless told (Qwen3-0.6B: 128 with 1024 / 16) */
    if (c->head_dim * c->num_attention_heads != c->hidden_size) {
        CT_TRY(set_key_u32(w, arch, "attention.key_length", c->head_dim));
        CT_TRY(set_key_u32(w, arch, "attention.value_length", c->head_dim));
    }
    return 0;
}

/* The parameter's values as f32 rows: its own data, or a converted copy in *owned. */
static const float *values_f32(const ct_tensor *t, float **owned) {
    *owned = NULL;
    if (t->device != CT_CPU) return ct_fail("tensor %s is not on the CPU; export reads CPU models", t->name), NULL;
    if (t->dtype == CT_F32) return t->data;
    if (t->dtype != CT_BF16)
        return ct_fail("tensor %s is %s; GGUF export reads f32 or bf16 parameters (export from the f32 model, not "
                       "an int8 one)", t->name, ct_dtype_name(t->dtype)), NULL;
    *owned = ct_malloc(ct_numel(t) * sizeof(float), t->name);
    if (*owned) ct_bf16_to_f32_array(t->data, *owned, ct_numel(t));
    return *owned;
}

/* Quantizes or converts one row and measures it: sum of squared errors, squared norm, max abs. */
static void encode_row(const float *x, int64_t n, ct_gguf_type type, uint8_t *out, float *back, double acc[3]) {
    switch (type) {
    case CT_GGUF_Q8_0:
        ct_gguf_q8_0_quantize_row(x, n, out);
        ct_gguf_q8_0_dequantize_row(out, n, back);
        break;
    case CT_GGUF_F16:
        for (int64_t i = 0; i < n; i++) {
            uint16_t h = ct_f32_to_f16(x[i]);
            memcpy(out + 2 * i, &h, 2);
            back[i] = ct_f16_to_f32(h);
        }
        break;
    case CT_GGUF_BF16:
        for (int64_t i = 0; i < n; i++) {
            uint16_t h = ct_f32_to_bf16(x[i]);
            memcpy(out + 2 * i, &h, 2);
            back[i] = ct_bf16_to_f32(h);
        }
        break;
    default:
        memcpy(out, x, (size_t)n * 4);
        memcpy(back, x, (size_t)n * 4);
    }
    for (int64_t i = 0; i < n; i++) {
        double e = (double)back[i] - x[i];
        acc[0] += e * e;
        acc[1] += (double)x[i] * x[i];
        acc[2] = fmax(acc[2], fabs(e));
    }
}

/* rows x cols f32 values into out in `type`, with the report's numbers. */
static int encode(const float *x, int64_t rows, int64_t cols, ct_gguf_type type, uint8_t *out, ct_gguf_tensor_report *r) {
    const uint64_t row_bytes = ct_gguf_nbytes(type, cols, rows) / (uint64_t)rows;
    float *back = ct_malloc((size_t)cols * sizeof *back, "a row");
    if (!back) return -1;
    double acc[3] = {0, 0, 0};
    for (int64_t i = 0; i < rows; i++) encode_row(x + i * cols, cols, type, out + (uint64_t)i * row_bytes, back, acc);
    free(back);
    r->rel_rms = acc[1] > 0 ? sqrt(acc[0] / acc[1]) : sqrt(acc[0]);
    r->max_abs = acc[2];
    return 0;
}

/* The writer's callback: one parameter, permuted for llama's q/k, converted into out. */
static int fill_param(void *ctx, uint8_t *out) {
    const pending_tensor *p = ctx;
    const ct_tensor *t = p->t;
    float *owned;
    const float *x = values_f32(t, &owned);
    if (!x) return -1;
    int64_t n_head;
    float *permuted = NULL;
    if (ct_llama_gguf_permuted(p->m, t->name, &n_head)) {
        permuted = ct_malloc((size_t)(p->r->rows * p->r->cols) * sizeof *permuted, t->name);
        if (!permuted) {
            free(owned);
            return -1;
        }
        /* a bias permutes like a column of rows: one element per row */
        ct_llama_rope_permute_rows(x, permuted, (size_t)(t->ndim == 2 ? p->r->cols : 1) * sizeof(float), n_head,
                                   p->m->config.head_dim, false);
        x = permuted;
    }
    int rc = encode(x, p->r->rows, p->r->cols, p->r->type, out, p->r);
    free(permuted);
    free(owned);
    return rc;
}

static int add_param(const ct_llama *m, const ct_tensor *t, ct_gguf_writer *w, ct_gguf_type type, ct_gguf_tensor_report *r,
                     pending_tensor *p) {
    memset(r, 0, sizeof *r);
    CT_TRY(ct_llama_gguf_name(t->name, r->name, sizeof r->name));
    if (t->ndim != 1 && t->ndim != 2) return ct_fail("tensor %s has %d dimensions", t->name, t->ndim);
    r->rows = t->ndim == 2 ? t->shape[0] : 1;
    r->cols = t->shape[t->ndim - 1];
    r->type = t->ndim == 1 ? CT_GGUF_F32 : type; /* norms and biases stay F32, as llama.cpp's converter keeps them */
    if (r->type == CT_GGUF_Q8_0 && r->cols % CT_GGUF_Q8_0_BLOCK) {
        r->type = CT_GGUF_F16;
        r->fell_back = true;
    }
    if (t->device != CT_CPU || (t->dtype != CT_F32 && t->dtype != CT_BF16)) { /* refused now, not half-way through writing */
        float *owned;
        if (!values_f32(t, &owned)) return -1;
        free(owned);
    }
    *p = (pending_tensor){m, t, r};
    /* a 1-D tensor is one row of cols values */
    int64_t ne[2] = {r->cols, r->rows};
    return ct_gguf_add_tensor_fill(w, r->name, r->type, t->ndim, ne, fill_param, p);
}

/* llama 3 RoPE scaling as the converter writes it: per frequency, the factor llama.cpp divides
 * the base frequency by (base inv_freq / scaled inv_freq). */
static int add_rope_freqs(const ct_llama *m, ct_gguf_writer *w, ct_gguf_report *report) {
    const int64_t half = m->config.head_dim / 2;
    float *factors = ct_malloc((size_t)half * sizeof *factors, "rope_freqs");
    if (!factors) return -1;
    double plain[CT_LLAMA_MAX_HEAD_DIM / 2];
    ct_rope_default_inv_freq(m->config.rope_theta, m->config.head_dim, plain);
    for (int64_t i = 0; i < half; i++) factors[i] = (float)(plain[i] / m->inv_freq[i]);
    ct_gguf_tensor_report *r = &report->tensors[report->n++];
    memset(r, 0, sizeof *r);
    snprintf(r->name, sizeof r->name, "rope_freqs.weight");
    r->rows = 1;
    r->cols = half;
    int64_t ne[1] = {half};
    return ct_gguf_add_tensor(w, r->name, CT_GGUF_F32, 1, ne, factors, true);
}

int ct_llama_gguf_add(const ct_llama *m, ct_gguf_writer *w, ct_gguf_type type, ct_gguf_report *report) {
    memset(report, 0, sizeof *report);
    const char *arch = ct_llama_gguf_arch(m->config.arch);
    if (!arch)
        return ct_fail("model_type %s: GGUF export supports llama, qwen2 and qwen3; export --format hf or "
                       "int8-safetensors for this model", ct_llama_model_type(m->config.arch));
    if (type != CT_GGUF_F32 && type != CT_GGUF_F16 && type != CT_GGUF_BF16 && type != CT_GGUF_Q8_0)
        return ct_fail("GGUF type %d: ctune writes F32, F16, BF16 and Q8_0", (int)type);
    if (m->config.o_bias && m->config.arch != CT_ARCH_LLAMA)
        return ct_fail("%s with an o_proj bias: llama.cpp's %s has no attn_output.bias; export --format hf", arch, arch);
    CT_TRY(add_keys(&m->config, arch, w, type));
    report->tensors = ct_calloc((size_t)m->n_params + 1, sizeof *report->tensors, "the quantization report");
    pending_tensor *pending = ct_calloc((size_t)m->n_params, sizeof *pending, "the export's tensors");
    report->pending = pending;
    if (!report->tensors || !pending) return -1;
    /* llama.cpp orders the token embedding first and the output last; any order loads */
    for (int i = 0; i < m->n_params; i++)
        CT_TRY(add_param(m, m->params[i], w, type, &report->tensors[report->n++], &pending[i]));
    if (m->config.rope_scaling.type == CT_ROPE_LLAMA3) CT_TRY(add_rope_freqs(m, w, report));
    return 0;
}
