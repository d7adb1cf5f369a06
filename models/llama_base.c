/* A loaded model's frozen base in the dtype model.base_dtype asks for (models/llama.h,
 * ct_llama_load_with): each parameter is allocated in its final dtype and filled from the
 * file's bytes, so a bf16 or int8 base never exists as an f32 copy. An int8 projection is
 * quantized a block of rows at a time (the rows widened into a small f32 scratch, then
 * ct_quantize_rows_i8: per output row, symmetric, compressed-tensors' arithmetic). */
#include <stdlib.h>
#include <string.h>

#include "checkpoints/safetensors.h"
#include "core/error.h"
#include "models/llama_internal.h"
#include "models/quantize.h"

/* Rows quantized per block: a few hundred KB of f32 scratch for any real width. */
#define QUANT_ROWS 64

static const char *const PROJECTIONS[] = {".self_attn.q_proj.weight", ".self_attn.k_proj.weight",
                                          ".self_attn.v_proj.weight", ".self_attn.o_proj.weight",
                                          ".mlp.gate_proj.weight",    ".mlp.up_proj.weight",
                                          ".mlp.down_proj.weight"};

bool ct_llama_is_projection_weight(const char *name) {
    const size_t n = strlen(name);
    if (strncmp(name, "model.layers.", strlen("model.layers.")) != 0) return false;
    for (size_t i = 0; i < sizeof PROJECTIONS / sizeof *PROJECTIONS; i++) {
        const size_t k = strlen(PROJECTIONS[i]);
        if (n > k && !strcmp(name + n - k, PROJECTIONS[i])) return true;
    }
    return false;
}

static ct_dtype frozen_dtype(ct_base_dtype base, ct_dtype stored, bool projection) {
    switch (base) {
    case CT_BASE_F32: return CT_F32;
    case CT_BASE_BF16: return CT_BF16;
    case CT_BASE_INT8:
        if (projection) return CT_I8;
        return stored == CT_BF16 ? CT_BF16 : CT_F32;
    case CT_BASE_AUTO:
    default: return stored == CT_BF16 ? CT_BF16 : CT_F32;
    }
}

/* q (i8) and its per-row scales from the file's tensor, QUANT_ROWS rows at a time. */
static int quantize_from_file(const ct_st_tensor *src, ct_tensor *q) {
    const int64_t rows = q->shape[0], cols = q->shape[1];
    const size_t row_bytes = (size_t)cols * ct_dtype_size(src->dtype);
    float *scratch = ct_calloc((size_t)(QUANT_ROWS * cols), sizeof *scratch, "int8 quantization rows");
    if (!scratch) return -1;
    int rc = 0;
    for (int64_t r0 = 0; rc == 0 && r0 < rows; r0 += QUANT_ROWS) {
        const int64_t n = rows - r0 < QUANT_ROWS ? rows - r0 : QUANT_ROWS;
        rc = ct_st_convert(scratch, CT_F32, (const char *)src->bytes + (size_t)r0 * row_bytes, src->dtype,
                           (size_t)(n * cols));
        if (rc == 0)
            rc = ct_quantize_rows_i8(scratch, n, cols, (int8_t *)q->data + r0 * cols, (float *)q->scale->data + r0);
    }
    free(scratch);
    return rc < 0 ? ct_fail_context("%s: model.base_dtype=int8: ", src->name) : 0;
}

static ct_tensor *new_param(const ct_llama_param_spec *spec, ct_dtype dtype) {
    ct_tensor *t = ct_tensor_new(dtype, spec->ndim, spec->shape, spec->name);
    if (!t || dtype != CT_I8) return t;
    const int64_t scale_shape[2] = {spec->shape[0], 1};
    t->scale = ct_tensor_new(CT_F32, 2, scale_shape, NULL);
    t->scale_block = 0;
    if (!t->scale) {
        ct_tensor_free(t);
        return NULL;
    }
    return t;
}

/* The refusal of an INT8 base whose projection would train: before anything is allocated. */
static int check_int8(const ct_llama_param_spec *specs, int n, const ct_llama_load_options *o) {
    if (o->base_dtype != CT_BASE_INT8) return 0;
    for (int i = 0; i < n; i++)
        if (ct_llama_is_projection_weight(specs[i].name) && !o->frozen(specs[i].name, o->ctx))
            return ct_fail("model.base_dtype=int8: %s trains (%s), and an INT8 weight takes no gradient; train "
                           "adapters on it (lora.enabled: true), or set model.base_dtype to f32 or bf16",
                           specs[i].name, o->why ? o->why : "it is not frozen");
    return 0;
}

int ct_llama_load_frozen_base(ct_llama *m, const ct_safetensors *st, const ct_llama_load_options *o) {
    int n, rc = 0;
    ct_llama_param_spec *specs = ct_llama_param_specs(m, &n);
    if (!specs) return -1;
    rc = check_int8(specs, n, o);
    for (int i = 0; i < n && rc == 0; i++) {
        const ct_st_tensor *src = ct_safetensors_find(st, specs[i].name);
        const bool frozen = o->frozen(specs[i].name, o->ctx);
        const ct_dtype dtype =
            frozen ? frozen_dtype(o->base_dtype, src->dtype, ct_llama_is_projection_weight(specs[i].name)) : CT_F32;
        ct_tensor *t = new_param(&specs[i], dtype);
        if (!t) {
            rc = -1;
            break;
        }
        t->requires_grad = !frozen;
        *specs[i].slot = t;
        m->params[m->n_params++] = t;
        rc = dtype == CT_I8 ? quantize_from_file(src, t) : ct_safetensors_load_into(st, specs[i].name, t);
        ct_safetensors_release(st, specs[i].name); /* the file's pages leave resident memory */
    }
    if (m->config.tie_word_embeddings) m->lm_head.weight = m->embed_tokens;
    free(specs);
    return rc;
}

int ct_llama_dequantize(ct_llama *m) {
    int n;
    ct_llama_param_spec *specs = ct_llama_param_specs(m, &n);
    if (!specs) return -1;
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        ct_tensor *q = *specs[i].slot;
        if (!q || q->dtype != CT_I8) continue;
        if (q->device != CT_CPU) {
            rc = ct_fail("dequantizing %s: move the model to the CPU first", q->name);
            break;
        }
        ct_tensor *w = ct_tensor_new(CT_F32, q->ndim, q->shape, q->name);
        if (!w || ct_copy(w, q) < 0) {
            ct_tensor_free(w);
            rc = ct_fail_context("dequantizing %s: ", q->name);
            break;
        }
        w->requires_grad = false;
        for (int p = 0; p < m->n_params; p++)
            if (m->params[p] == q) m->params[p] = w;
        *specs[i].slot = w;
        ct_tensor_free(q);
    }
    free(specs);
    return rc;
}
