/* INT8 model folders (models/llama_int8.h): a random model written in compressed-tensors'
 * pack-quantized layout has the keys, dtypes and shapes that layout prescribes; loading it keeps
 * the projections int8 (no f32 copy) holding exactly the quantizer's integers and scales; its
 * logits equal those of the f32 model whose projections are replaced by q * scale; another
 * quantization_config is refused by name. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoints/safetensors.h"
#include "core/arena.h"
#include "core/error.h"
#include "autograd/tape.h"
#include "ct_test.h"
#include "models/llama.h"
#include "models/llama_int8.h"

static int reported;
static void count_report(const ct_int8_tensor_report *r, void *ctx) {
    (void)ctx;
    reported++;
    CHECK(r->error.rel_rms > 0 && r->error.rel_rms < 0.02, "%s: rel_rms %g", r->name, r->error.rel_rms);
}

static ct_llama *random_model(void) {
    ct_llama_config c;
    ct_llama_config_defaults(&c, CT_ARCH_QWEN2);
    c.hidden_size = 40;
    c.intermediate_size = 70; /* down_proj rows of 70: the last packed word is half padding */
    c.num_hidden_layers = 2;
    c.num_attention_heads = 5;
    c.num_key_value_heads = 1;
    c.head_dim = 8;
    c.vocab_size = 97;
    c.tie_word_embeddings = false; /* lm_head.weight stays f32 */
    ct_llama *m = ct_llama_new(&c);
    if (m) ct_llama_init_random(m, 77);
    return m;
}

static void check_file_layout(const char *dir) {
    ct_safetensors *st = ct_safetensors_open(dir);
    CHECK(st != NULL, "%s", ct_last_error());
    if (!st) return;
    const ct_st_tensor *packed = ct_safetensors_find(st, "model.layers.1.mlp.down_proj.weight_packed");
    const ct_st_tensor *scale = ct_safetensors_find(st, "model.layers.1.mlp.down_proj.weight_scale");
    const ct_st_tensor *shape = ct_safetensors_find(st, "model.layers.1.mlp.down_proj.weight_shape");
    CHECK(packed && packed->dtype == CT_I32 && packed->ndim == 2 && packed->shape[0] == 40 && packed->shape[1] == 18,
          "down_proj.weight_packed");
    CHECK(scale && scale->dtype == CT_F32 && scale->ndim == 2 && scale->shape[0] == 40 && scale->shape[1] == 1,
          "down_proj.weight_scale");
    int64_t dims[2] = {0, 0};
    if (shape && shape->nbytes == sizeof dims) memcpy(dims, shape->bytes, sizeof dims);
    CHECK(shape && shape->dtype == CT_I64 && dims[0] == 40 && dims[1] == 70, "down_proj.weight_shape [%lld, %lld]",
          (long long)dims[0], (long long)dims[1]);
    ct_clear_error();
    CHECK(!ct_safetensors_find(st, "model.layers.0.self_attn.q_proj.weight"), "an unquantized q_proj is left");
    const ct_st_tensor *bias = ct_safetensors_find(st, "model.layers.0.self_attn.q_proj.bias");
    const ct_st_tensor *head = ct_safetensors_find(st, "lm_head.weight");
    CHECK(bias && bias->dtype == CT_F32 && head && head->dtype == CT_F32, "bias and lm_head stay f32");
    /* 7 projections x 3 parts x 2 layers + embed, lm_head, norm + per layer 2 norms and 3 biases */
    CHECK(ct_safetensors_count(st) == 42 + 3 + 2 * 5, "%d tensors", ct_safetensors_count(st));
    ct_safetensors_close(st);
}

/* The loaded projections are the quantizer's integers and scales, held as i8. */
static void check_loaded(const ct_llama *m, const ct_llama *q) {
    int projections = 0;
    for (int i = 0; i < m->n_params; i++) {
        const ct_tensor *w = m->params[i], *l = q->params[i];
        CHECK(!strcmp(w->name, l->name), "order %s / %s", w->name, l->name);
        if (!strstr(w->name, "_proj.weight")) {
            /* tables (embedding, lm_head) are held in bf16, norms and biases in f32 */
            bool same = l->dtype == (w->ndim == 2 ? CT_BF16 : CT_F32) && !l->requires_grad == (w->ndim == 2);
            for (int64_t k = 0; same && k < ct_numel(w); k++)
                same = w->ndim == 2 ? ((uint16_t *)l->data)[k] == ct_f32_to_bf16(((float *)w->data)[k])
                                    : ((float *)l->data)[k] == ((float *)w->data)[k];
            CHECK(same, "%s is not the f32 weight %s", w->name, w->ndim == 2 ? "rounded to bf16" : "itself");
            continue;
        }
        projections++;
        int64_t rows = w->shape[0], cols = w->shape[1];
        int8_t *want = malloc((size_t)(rows * cols));
        float *scale = malloc((size_t)rows * sizeof *scale);
        ct_quantize_rows_i8(w->data, rows, cols, want, scale);
        CHECK(l->dtype == CT_I8 && ct_nbytes(l) == (size_t)(rows * cols) && l->scale && l->scale_block == 0, "%s is not i8",
              l->name);
        if (l->dtype == CT_I8 && l->scale)
            CHECK(!memcmp(l->data, want, (size_t)(rows * cols)) && !memcmp(l->scale->data, scale, (size_t)rows * 4),
                  "%s: values or scales differ from the quantizer's", l->name);
        free(want);
        free(scale);
    }
    CHECK(projections == 14, "%d projections", projections);
}

/* m's projections become q * scale, computed here from the loaded tensors, and its tables their
 * bf16 rounding. */
static void dequantize_into(ct_llama *m, const ct_llama *q) {
    for (int i = 0; i < m->n_params; i++) {
        const ct_tensor *l = q->params[i];
        float *t = m->params[i]->data;
        if (l->dtype == CT_BF16)
            for (int64_t k = 0; k < ct_numel(l); k++) t[k] = ct_bf16_to_f32(ct_f32_to_bf16(t[k]));
        if (l->dtype != CT_I8) continue;
        float *w = m->params[i]->data;
        const int8_t *v = l->data;
        const float *s = l->scale->data;
        for (int64_t r = 0; r < l->shape[0]; r++)
            for (int64_t c = 0; c < l->shape[1]; c++) w[r * l->shape[1] + c] = (float)v[r * l->shape[1] + c] * s[r];
    }
}

static void check_logits(ct_llama *dequantized, ct_llama *q) {
    ct_scope_begin();
    bool was = ct_set_grad_enabled(false);
    const int64_t shape[2] = {2, 9};
    ct_tensor *ids = ct_empty(CT_I32, 2, shape);
    for (int i = 0; i < 18; i++) ((int32_t *)ids->data)[i] = (i * 37 + 5) % 97;
    ct_tensor *a = ct_llama_forward(dequantized, ids, NULL), *b = ct_llama_forward(q, ids, NULL);
    CHECK(a && b, "forward: %s", ct_last_error());
    double worst = 0, scale = 0;
    for (int64_t i = 0; a && b && i < ct_numel(a); i++) {
        worst = fmax(worst, fabs(((float *)a->data)[i] - ((float *)b->data)[i]));
        scale = fmax(scale, fabs(((float *)a->data)[i]));
    }
    CHECK(a && b && scale > 0 && worst < 1e-5 * scale, "INT8 logits differ from the dequantized model's by %g (max %g)",
          worst, scale);
    ct_set_grad_enabled(was);
    ct_scope_end();
}

static void check_other_scheme_refused(const char *dir) {
    size_t len;
    char *text = ct_test_read_file(ct_test_path_in(dir, "config.json"), &len);
    char *at = text ? strstr(text, "\"channel\"") : NULL;
    CHECK(at != NULL, "config.json has no channel strategy");
    if (!at) return free(text);
    memcpy(at, "\"group\"  ", 9); /* another strategy, same length */
    FILE *f = fopen(ct_test_path_in(dir, "config.json"), "wb");
    fwrite(text, 1, len, f);
    fclose(f);
    free(text);
    ct_llama *m = ct_llama_load(dir);
    CHECK(!m && strstr(ct_last_error(), "quantization_config") && strstr(ct_last_error(), "config.json"),
          "another scheme: '%s'", ct_last_error());
    ct_llama_free(m);
}

int main(void) {
    char dir[] = "/tmp/ctune-test-int8-XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    ct_llama *m = random_model();
    CHECK(m != NULL, "%s", ct_last_error());
    if (m) {
        CHECK(ct_llama_save_int8(m, dir, NULL, count_report, NULL) == 0, "save: %s", ct_last_error());
        CHECK(reported == 14, "%d tensors reported", reported);
        check_file_layout(dir);
        ct_llama *q = ct_llama_load(dir);
        CHECK(q != NULL, "load: %s", ct_last_error());
        if (q) {
            check_loaded(m, q);
            dequantize_into(m, q);
            check_logits(m, q);
        }
        ct_llama_free(q);
        check_other_scheme_refused(dir);
    }
    ct_llama_free(m);
    ct_test_remove_tree(dir);
    return ct_test_finish("test_llama_int8");
}
