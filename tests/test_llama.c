/* The LLaMA-family model against transformers, and everything around it.
 *
 * tests/fixtures/models/{llama,qwen2,qwen3,mistral}/ hold tiny random models saved by
 * transformers (tests/reference/make_model_fixtures.py) with the logits, loss and every
 * parameter gradient transformers computed for them. Here each folder is loaded, run forward and
 * backward in f32, and compared norm-wise: logits and loss within 1e-4, gradients within 1e-3.
 * Then: gradient checkpointing gives the same gradients; a KV-cached prefill + token-by-token
 * decode gives the full forward's logits (also for a left-padded batch); packed sequences equal
 * separate ones; Llama 3.2's "llama3" RoPE table equals transformers'; save + reload (f32,
 * bf16, tied, from shards); random initialization; the parameter counts of three published
 * configurations; and the one-line errors of bad configs, tokenizers, checkpoints and inputs. */
#include <dirent.h>
#include <math.h>
#include <omp.h>
#include <stddef.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/arena.h"
#include "core/error.h"
#include "autograd/gradcheck.h"
#include "autograd/ops.h"
#include "autograd/tape.h"
#include "checkpoints/safetensors.h"
#include "datasets/tokenizer.h"
#include "models/llama.h"
#include "tests/ct_test.h"
#include "tests/ct_test_reference.h"

#define LOGIT_TOLERANCE 1e-4
#define LOSS_TOLERANCE 1e-4
#define GRAD_TOLERANCE 1e-3
#define CACHE_TOLERANCE 1e-5

static char tmp_root[64];

/* ---- files ---- */

static const char *fixture(const char *name) {
    static char buf[4][4400];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s", ct_test_path("tests/fixtures/models"));
    size_t n = strlen(buf[k]);
    snprintf(buf[k] + n, sizeof buf[k] - n, "/%s", name);
    return buf[k];
}

static char *read_text(const char *path) { return ct_tok_read_file(path, NULL); }

static void write_text(const char *path, const char *text, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(text, 1, n, f) != n) fprintf(stderr, "cannot write %s\n", path);
    if (f) fclose(f);
}

/* A fresh copy of fixture `name` under the temporary root, for tests that damage files. */
static const char *copy_fixture(const char *name, const char *as) {
    static char dst[256];
    snprintf(dst, sizeof dst, "%s/%s", tmp_root, as);
    mkdir(dst, 0755);
    DIR *d = opendir(fixture(name));
    for (struct dirent *e; d && (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        char src[768], out[768];
        snprintf(src, sizeof src, "%s/%s", fixture(name), e->d_name);
        snprintf(out, sizeof out, "%s/%s", dst, e->d_name);
        size_t len = 0;
        char *bytes = ct_tok_read_file(src, &len);
        if (bytes) write_text(out, bytes, len);
        free(bytes);
    }
    if (d) closedir(d);
    return dst;
}

/* Replaces the first `from` in dir/config.json by `to`. */
static void edit_config(const char *dir, const char *from, const char *to) {
    char path[512];
    snprintf(path, sizeof path, "%s/config.json", dir);
    char *text = read_text(path);
    char *at = text ? strstr(text, from) : NULL;
    CHECK(at != NULL, "config.json of %s lacks '%s'", dir, from);
    if (!at) {
        free(text);
        return;
    }
    size_t n = strlen(text), a = (size_t)(at - text), lf = strlen(from), lt = strlen(to);
    char *out = malloc(n - lf + lt + 1);
    memcpy(out, text, a);
    memcpy(out + a, to, lt);
    memcpy(out + a + lt, at + lf, n - a - lf + 1);
    write_text(path, out, strlen(out));
    free(out);
    free(text);
}


static ct_safetensors *open_reference(const char *name) {
    char path[600];
    snprintf(path, sizeof path, "%s/reference.safetensors", fixture(name));
    return ct_safetensors_open(path);
}

/* ---- against transformers ---- */

static void compare_gradients(const ct_llama *m, const ct_safetensors *ref, const char *name, double *worst) {
    int compared = 0;
    *worst = 0;
    for (int i = 0; i < m->n_params; i++) {
        char key[160];
        snprintf(key, sizeof key, "grad.%s", m->params[i]->name);
        ct_tensor *want = ct_test_ref_tensor(ref, key);
        CHECK(want != NULL, "%s: no reference gradient for %s", name, m->params[i]->name);
        if (!want || !m->params[i]->grad) continue;
        double err = ct_relative_error(m->params[i]->grad, want);
        CHECK(err < GRAD_TOLERANCE, "%s: gradient of %s off by %.3g", name, m->params[i]->name, err);
        if (err > *worst) *worst = err;
        compared++;
    }
    int in_file = 0;
    for (int i = 0; i < ct_safetensors_count(ref); i++) in_file += !strncmp(ct_safetensors_at(ref, i)->name, "grad.", 5);
    CHECK(compared == in_file && compared == m->n_params, "%s: compared %d gradients, the reference has %d", name,
          compared, in_file);
}

/* Forward, loss and backward; returns the loss, leaves the gradients in the parameters. */
static double train_step(ct_llama *m, const ct_safetensors *ref, double *logit_err) {
    ct_tensor *ids = ct_test_ref_tensor(ref, "input_ids"), *labels = ct_test_ref_tensor(ref, "labels");
    ct_tensor *logits = ct_llama_forward(m, ids, NULL);
    ct_tensor *loss = ct_llama_loss(logits, labels);
    CHECK(loss != NULL, "forward failed: %s", ct_last_error());
    if (!loss) return NAN;
    *logit_err = ct_relative_error(logits, ct_test_ref_tensor(ref, "logits"));
    CHECK(logits->shape[2] == m->config.vocab_size, "logits have %lld columns, not the %lld vocab rows",
          (long long)logits->shape[2], (long long)m->config.vocab_size);
    CHECK(ct_backward(loss) == 0, "backward failed: %s", ct_last_error());
    return ct_get(loss, 0);
}

static ct_tensor **snapshot_grads(const ct_llama *m) {
    ct_tensor **g = calloc((size_t)m->n_params, sizeof *g);
    for (int i = 0; i < m->n_params; i++) {
        g[i] = ct_tensor_new(CT_F32, m->params[i]->ndim, m->params[i]->shape, NULL);
        if (m->params[i]->grad) ct_copy(g[i], m->params[i]->grad);
    }
    return g;
}

static void check_against_transformers(const char *name) {
    ct_llama *m = ct_llama_load(fixture(name));
    CHECK(m != NULL, "%s: load failed: %s", name, ct_last_error());
    ct_safetensors *ref = open_reference(name);
    CHECK(ref != NULL, "%s: no reference: %s", name, ct_last_error());
    if (!m || !ref) {
        ct_llama_free(m);
        ct_safetensors_close(ref);
        return;
    }
    ct_scope_begin();
    double logit_err = INFINITY, grad_err = INFINITY;
    double loss = train_step(m, ref, &logit_err);
    double want = ct_get(ct_test_ref_tensor(ref, "loss"), 0);
    double loss_err = fabs(loss - want) / fabs(want);
    CHECK(logit_err < LOGIT_TOLERANCE, "%s: logits off by %.3g", name, logit_err);
    CHECK(loss_err < LOSS_TOLERANCE, "%s: loss %.8f, transformers %.8f", name, loss, want);
    compare_gradients(m, ref, name, &grad_err);
    double rope_err = ct_relative_error(&(ct_tensor){.dtype = CT_F32, .ndim = 1, .shape = {m->config.head_dim / 2},
                                                     .data = m->inv_freq},
                                        ct_test_ref_tensor(ref, "inv_freq"));
    CHECK(rope_err < 1e-6, "%s: RoPE table off by %.3g", name, rope_err);
    ct_scope_end();

    /* The same step with every block checkpointed: the same gradients, bit for bit. */
    ct_tensor **plain = snapshot_grads(m);
    ct_zero_grad(m->params, m->n_params);
    m->gradient_checkpointing = true;
    ct_scope_begin();
    double ckpt_logit_err = INFINITY, ckpt_worst = 0;
    double ckpt_loss = train_step(m, ref, &ckpt_logit_err);
    for (int i = 0; i < m->n_params; i++) {
        double e = m->params[i]->grad ? ct_relative_error(m->params[i]->grad, plain[i]) : INFINITY;
        if (e > ckpt_worst) ckpt_worst = e;
    }
    CHECK(ckpt_loss == loss, "%s: checkpointed loss %.9g vs %.9g", name, ckpt_loss, loss);
    CHECK(ckpt_worst == 0, "%s: checkpointed gradients differ by %.3g", name, ckpt_worst);
    ct_scope_end();
    for (int i = 0; i < m->n_params; i++) ct_tensor_free(plain[i]);
    free(plain);
    printf("%-8s %-18s %6lld params  logits %.2e  loss %.2e  worst grad %.2e  rope %.2e  checkpointed grads %.1e\n",
           name, ct_llama_arch_name(m->config.arch), (long long)ct_llama_num_params(m), logit_err, loss_err, grad_err,
           rope_err, ckpt_worst);
    ct_safetensors_close(ref);
    ct_llama_free(m);
}

/* ---- generation path: KV cache, packing, last-token logits ---- */

/* Logits row t of [B, T, V] for batch row b, as an arena [V] view. */
static ct_tensor *logit_row(ct_tensor *logits, int64_t b, int64_t t) {
    const int64_t T = logits->shape[1], V = logits->shape[2];
    return ct_slice_rows(ct_reshape(logits, 2, (int64_t[]){logits->shape[0] * T, V}), b * T + t, 1);
}

static ct_tensor *ids_slice(ct_tensor *ids, int64_t rows, int64_t start, int64_t len) {
    const int64_t T = ids->shape[1];
    ct_tensor *out = ct_empty(CT_I32, 2, (int64_t[]){rows, len});
    for (int64_t b = 0; b < rows; b++)
        for (int64_t t = 0; t < len; t++) ((int32_t *)out->data)[b * len + t] = ((int32_t *)ids->data)[b * T + start + t];
    return out;
}

/* Prefill `prefill` tokens, then decode one at a time; every step's logits must equal the full
 * forward's at the same positions. */
static void check_cache(ct_llama *m, const char *name, ct_tensor *ids, int64_t rows, int64_t prefill) {
    const int64_t T = ids->shape[1];
    ct_tensor *full = ct_llama_forward(m, ids_slice(ids, rows, 0, T), NULL);
    CHECK(full != NULL, "%s: full forward failed: %s", name, ct_last_error());
    if (!full) return;
    ct_kv_cache cache;
    CHECK(ct_kv_cache_init(&cache, &m->config, rows, T + 3) == 0, "%s: cache: %s", name, ct_last_error());
    double worst = 0;
    ct_llama_forward_args args = {.cache = &cache};
    ct_tensor *out = ct_llama_forward(m, ids_slice(ids, rows, 0, prefill), &args);
    CHECK(out && cache.length == prefill, "%s: prefill failed: %s", name, ct_last_error());
    for (int64_t b = 0; out && b < rows; b++)
        for (int64_t t = 0; t < prefill; t++) {
            double e = ct_relative_error(logit_row(out, b, t), logit_row(full, b, t));
            worst = e > worst ? e : worst;
        }
    for (int64_t t = prefill; out && t < T; t++) {
        args.last_token_only = t % 2 == 0; /* one token: the same either way */
        out = ct_llama_forward(m, ids_slice(ids, rows, t, 1), &args);
        CHECK(out != NULL, "%s: decode step %lld failed: %s", name, (long long)t, ct_last_error());
        for (int64_t b = 0; out && b < rows; b++) {
            double e = ct_relative_error(logit_row(out, b, 0), logit_row(full, b, t));
            worst = e > worst ? e : worst;
        }
    }
    CHECK(worst < CACHE_TOLERANCE, "%s: cached logits (batch %lld) off by %.3g", name, (long long)rows, worst);
    CHECK(cache.length == T, "%s: cache length %lld after %lld tokens", name, (long long)cache.length, (long long)T);
    /* One more token than the cache holds room for is refused. */
    args.last_token_only = false;
    CHECK(ct_llama_forward(m, ids_slice(ids, rows, 0, 4), &args) == NULL && strstr(ct_last_error(), "max_len"),
          "%s: overflowing the cache: '%s'", name, ct_last_error());
    ct_kv_cache_free(&cache);
    printf("%-8s KV cache, batch %lld: prefill %lld + %lld decode steps, worst %.2e\n", name, (long long)rows,
           (long long)prefill, (long long)(T - prefill), worst);
}

static ct_tensor *i32_row(int64_t n, const int32_t *v) {
    ct_tensor *t = ct_empty(CT_I32, 2, (int64_t[]){1, n});
    memcpy(t->data, v, sizeof(int32_t) * (size_t)n);
    return t;
}

/* A prompt left-padded to the batch's length (pad slots: segment 0; prompt: segment 1,
 * positions from 0) must give the unpadded prompt's logits, in the prefill and while decoding. */
static void check_left_padding(ct_llama *m, const char *name, ct_tensor *ids) {
    enum { PAD = 3, LEN = 6, STEPS = 2 };
    const int32_t *src = ids->data;
    int32_t row[PAD + LEN], pos[PAD + LEN], seg[PAD + LEN];
    for (int i = 0; i < PAD + LEN; i++) {
        row[i] = i < PAD ? 280 : src[i - PAD]; /* 280: the pad token of the fixtures' tokenizer */
        pos[i] = i < PAD ? 0 : i - PAD;
        seg[i] = i < PAD ? 0 : 1;
    }
    ct_tensor *plain = ct_llama_forward(m, i32_row(LEN + STEPS, src), NULL);
    ct_kv_cache cache;
    ct_kv_cache_init(&cache, &m->config, 1, PAD + LEN + STEPS);
    ct_llama_forward_args args = {.cache = &cache, .position_ids = i32_row(PAD + LEN, pos),
                                  .segment_ids = i32_row(PAD + LEN, seg), .last_token_only = true};
    ct_tensor *out = ct_llama_forward(m, i32_row(PAD + LEN, row), &args);
    CHECK(out && out->shape[1] == 1, "%s: padded prefill failed: %s", name, ct_last_error());
    double worst = out ? ct_relative_error(logit_row(out, 0, 0), logit_row(plain, 0, LEN - 1)) : INFINITY;
    for (int s = 0; out && s < STEPS; s++) {
        int32_t p = LEN + s, one = 1;
        args.position_ids = i32_row(1, &p);
        args.segment_ids = i32_row(1, &one);
        out = ct_llama_forward(m, i32_row(1, &src[LEN + s]), &args);
        double e = out ? ct_relative_error(logit_row(out, 0, 0), logit_row(plain, 0, LEN + s)) : INFINITY;
        worst = e > worst ? e : worst;
    }
    CHECK(worst < CACHE_TOLERANCE, "%s: left-padded cached logits off by %.3g", name, worst);
    ct_kv_cache_free(&cache);
    printf("%-8s left-padded prompt through the cache: worst %.2e\n", name, worst);
}

/* Two sequences packed in one row (positions restart, segments differ) = two separate rows. */
static void check_packing(ct_llama *m, const char *name, ct_tensor *ids) {
    enum { A = 5, B = 6 };
    const int32_t *src = ids->data;
    int32_t pos[A + B], seg[A + B];
    for (int i = 0; i < A + B; i++) {
        pos[i] = i < A ? i : i - A;
        seg[i] = i < A ? 7 : 9;
    }
    ct_llama_forward_args args = {.position_ids = i32_row(A + B, pos), .segment_ids = i32_row(A + B, seg)};
    ct_tensor *packed = ct_llama_forward(m, i32_row(A + B, src), &args);
    ct_tensor *first = ct_llama_forward(m, i32_row(A, src), NULL);
    ct_tensor *second = ct_llama_forward(m, i32_row(B, src + A), NULL);
    CHECK(packed && first && second, "%s: packed forward failed: %s", name, ct_last_error());
    if (!packed || !first || !second) return;
    double worst = 0;
    for (int t = 0; t < A + B; t++) {
        double e = ct_relative_error(logit_row(packed, 0, t), t < A ? logit_row(first, 0, t) : logit_row(second, 0, t - A));
        worst = e > worst ? e : worst;
    }
    CHECK(worst < CACHE_TOLERANCE, "%s: packed logits off by %.3g", name, worst);
    printf("%-8s two packed sequences vs separate rows: worst %.2e\n", name, worst);
}

static void check_generation_paths(const char *name) {
    ct_llama *m = ct_llama_load(fixture(name));
    ct_safetensors *ref = open_reference(name);
    if (!m || !ref) {
        CHECK(0, "%s: %s", name, ct_last_error());
        ct_llama_free(m);
        ct_safetensors_close(ref);
        return;
    }
    bool was = ct_set_grad_enabled(false);
    ct_scope_begin();
    ct_tensor *ids = ct_test_ref_tensor(ref, "input_ids");
    check_cache(m, name, ids, 2, 4);
    check_cache(m, name, ids, 1, 5);
    check_left_padding(m, name, ids);
    check_packing(m, name, ids);
    ct_scope_end();
    /* With gradients on, the cache would drop them: refused. */
    ct_set_grad_enabled(true);
    ct_scope_begin();
    ct_kv_cache cache;
    ct_kv_cache_init(&cache, &m->config, 2, 16);
    ct_llama_forward_args args = {.cache = &cache};
    CHECK(ct_llama_forward(m, ct_test_ref_tensor(ref, "input_ids"), &args) == NULL && strstr(ct_last_error(), "no-grad"),
          "%s: cached forward with gradients: '%s'", name, ct_last_error());
    ct_kv_cache_free(&cache);
    ct_scope_end();
    ct_set_grad_enabled(was);
    ct_safetensors_close(ref);
    ct_llama_free(m);
}

/* ---- configs ---- */

/* Published config.json files in the Hub's dialect (values as released; keys trimmed). */
static const char *LLAMA32_1B_INSTRUCT =
    "{\"architectures\": [\"LlamaForCausalLM\"], \"attention_bias\": false, \"bos_token_id\": 128000, "
    "\"eos_token_id\": [128001, 128008, 128009], \"head_dim\": 64, \"hidden_act\": \"silu\", \"hidden_size\": 2048, "
    "\"initializer_range\": 0.02, \"intermediate_size\": 8192, \"max_position_embeddings\": 131072, "
    "\"mlp_bias\": false, \"model_type\": \"llama\", \"num_attention_heads\": 32, \"num_hidden_layers\": 16, "
    "\"num_key_value_heads\": 8, \"rms_norm_eps\": 1e-05, \"rope_scaling\": {\"factor\": 32.0, "
    "\"high_freq_factor\": 4.0, \"low_freq_factor\": 1.0, \"original_max_position_embeddings\": 8192, "
    "\"rope_type\": \"llama3\"}, \"rope_theta\": 500000.0, \"tie_word_embeddings\": true, "
    "\"torch_dtype\": \"bfloat16\", \"use_cache\": true, \"vocab_size\": 128256}";
static const char *QWEN25_05B_INSTRUCT =
    "{\"architectures\": [\"Qwen2ForCausalLM\"], \"bos_token_id\": 151643, \"eos_token_id\": 151645, "
    "\"hidden_act\": \"silu\", \"hidden_size\": 896, \"initializer_range\": 0.02, \"intermediate_size\": 4864, "
    "\"max_position_embeddings\": 32768, \"max_window_layers\": 21, \"model_type\": \"qwen2\", "
    "\"num_attention_heads\": 14, \"num_hidden_layers\": 24, \"num_key_value_heads\": 2, \"rms_norm_eps\": 1e-06, "
    "\"rope_theta\": 1000000.0, \"sliding_window\": 32768, \"tie_word_embeddings\": true, "
    "\"torch_dtype\": \"bfloat16\", \"use_cache\": true, \"use_sliding_window\": false, \"vocab_size\": 151936}";
static const char *QWEN3_06B =
    "{\"architectures\": [\"Qwen3ForCausalLM\"], \"attention_bias\": false, \"bos_token_id\": 151643, "
    "\"eos_token_id\": 151645, \"head_dim\": 128, \"hidden_act\": \"silu\", \"hidden_size\": 1024, "
    "\"initializer_range\": 0.02, \"intermediate_size\": 3072, \"max_position_embeddings\": 40960, "
    "\"max_window_layers\": 28, \"model_type\": \"qwen3\", \"num_attention_heads\": 16, \"num_hidden_layers\": 28, "
    "\"num_key_value_heads\": 8, \"rms_norm_eps\": 1e-06, \"rope_scaling\": null, \"rope_theta\": 1000000, "
    "\"sliding_window\": null, \"tie_word_embeddings\": true, \"torch_dtype\": \"bfloat16\", "
    "\"use_sliding_window\": false, \"vocab_size\": 151936}";

static void check_published_configs(void) {
    ct_llama_config c;
    CHECK(ct_llama_config_parse(LLAMA32_1B_INSTRUCT, "llama32.json", &c) == 0, "%s", ct_last_error());
    CHECK(c.arch == CT_ARCH_LLAMA && c.head_dim == 64 && c.rope_scaling.type == CT_ROPE_LLAMA3 &&
              c.rope_theta == 500000.0 && c.tie_word_embeddings && !c.qkv_bias && c.n_eos == 3 &&
              c.eos_token_ids[2] == 128009 && c.bos_token_id == 128000 && c.torch_dtype == CT_BF16,
          "Llama-3.2-1B-Instruct config parsed wrong");
    /* Transformers' parameter counts of these three configurations (meta-device models). */
    CHECK(ct_llama_config_num_params(&c) == 1235814400LL, "Llama-3.2-1B: %lld params",
          (long long)ct_llama_config_num_params(&c));
    /* Its llama3 RoPE table against transformers' for the same configuration. */
    ct_safetensors *ref = open_reference("llama");
    if (ref) {
        ct_scope_begin();
        float inv[32];
        ct_llama_rope_inv_freq(&c, inv);
        double e = ct_relative_error(&(ct_tensor){.dtype = CT_F32, .ndim = 1, .shape = {32}, .data = inv},
                                     ct_test_ref_tensor(ref, "inv_freq_llama32"));
        CHECK(e < 1e-6, "Llama-3.2 llama3 RoPE table off by %.3g", e);
        printf("Llama-3.2-1B \"llama3\" RoPE table vs transformers: %.2e\n", e);
        ct_scope_end();
        ct_safetensors_close(ref);
    }
    CHECK(ct_llama_config_parse(QWEN25_05B_INSTRUCT, "qwen25.json", &c) == 0, "%s", ct_last_error());
    CHECK(c.arch == CT_ARCH_QWEN2 && c.qkv_bias && !c.o_bias && !c.qk_norm && c.head_dim == 64 &&
              c.sliding_window == 0 && c.tie_word_embeddings && c.rope_scaling.type == CT_ROPE_DEFAULT,
          "Qwen2.5-0.5B-Instruct config parsed wrong");
    CHECK(ct_llama_config_num_params(&c) == 494032768LL, "Qwen2.5-0.5B: %lld params",
          (long long)ct_llama_config_num_params(&c));
    CHECK(ct_llama_config_parse(QWEN3_06B, "qwen3.json", &c) == 0, "%s", ct_last_error());
    CHECK(c.arch == CT_ARCH_QWEN3 && c.qk_norm && !c.qkv_bias && c.head_dim == 128 && c.hidden_size == 1024,
          "Qwen3-0.6B config parsed wrong");
    CHECK(ct_llama_config_num_params(&c) == 596049920LL, "Qwen3-0.6B: %lld params",
          (long long)ct_llama_config_num_params(&c));
    /* Written back and read again: the same configuration. */
    char *text = ct_llama_config_to_json(&c, QWEN3_06B, CT_F32);
    ct_llama_config again;
    CHECK(text && ct_llama_config_parse(text, "rewritten", &again) == 0, "rewritten config: %s", ct_last_error());
    again.torch_dtype = c.torch_dtype;
    CHECK(text && memcmp(&again, &c, sizeof c) == 0, "Qwen3 config changed in a write/read round trip");
    CHECK(text && strstr(text, "\"torch_dtype\":\t\"float32\""), "rewritten config lacks torch_dtype float32");
    free(text);
}

static void expect_config_error(const char *what, const char *json, const char *needle) {
    ct_llama_config c;
    ct_clear_error();
    CHECK(ct_llama_config_parse(json, "bad/config.json", &c) < 0, "%s: accepted", what);
    CHECK(strstr(ct_last_error(), needle) && strstr(ct_last_error(), "bad/config.json"),
          "%s: message '%s' lacks '%s' or the file", what, ct_last_error(), needle);
    printf("refused (%s): %s\n", what, ct_last_error());
}

static void check_bad_configs(void) {
    const char *base = "{\"architectures\": [\"%s\"], \"hidden_size\": 64, \"intermediate_size\": 96, "
                       "\"num_hidden_layers\": 2, \"num_attention_heads\": %d, \"num_key_value_heads\": %d, "
                       "\"vocab_size\": 300%s}";
    char json[1024];
    snprintf(json, sizeof json, base, "GPT2LMHeadModel", 4, 2, "");
    expect_config_error("architecture", json, "GPT2LMHeadModel");
    snprintf(json, sizeof json, base, "LlamaForCausalLM", 4, 2,
             ", \"rope_scaling\": {\"rope_type\": \"yarn\", \"factor\": 4.0}");
    expect_config_error("rope type", json, "\"yarn\"");
    snprintf(json, sizeof json, base, "Qwen2ForCausalLM", 4, 2,
             ", \"rope_parameters\": {\"rope_type\": \"dynamic\", \"rope_theta\": 10000.0}");
    expect_config_error("rope type (transformers 5 dialect)", json, "\"dynamic\"");
    snprintf(json, sizeof json, base, "LlamaForCausalLM", 6, 4, "");
    expect_config_error("heads", json, "num_key_value_heads");
    snprintf(json, sizeof json, base, "LlamaForCausalLM", 4, 2, ", \"hidden_act\": \"gelu\"");
    expect_config_error("activation", json, "gelu");
    snprintf(json, sizeof json, base, "LlamaForCausalLM", 4, 2, ", \"mlp_bias\": true");
    expect_config_error("mlp bias", json, "mlp_bias");
    expect_config_error("type",
                        "{\"model_type\": \"llama\", \"hidden_size\": \"big\", \"intermediate_size\": 96, "
                        "\"num_hidden_layers\": 2, \"num_attention_heads\": 4, \"vocab_size\": 300}",
                        "hidden_size");
    snprintf(json, sizeof json, base, "LlamaForCausalLM", 4, 2, ", \"partial_rotary_factor\": 0.5");
    expect_config_error("partial rotary", json, "partial_rotary_factor");
    expect_config_error("absurd size",
                        "{\"model_type\": \"qwen2\", \"hidden_size\": 64, \"intermediate_size\": 96, "
                        "\"num_hidden_layers\": 2, \"num_attention_heads\": 4, \"vocab_size\": 1e15}",
                        "vocab_size");
    expect_config_error("missing key", "{\"architectures\": [\"Qwen3ForCausalLM\"], \"hidden_size\": 64}",
                        "intermediate_size");
    expect_config_error("not JSON", "{\"architectures\": [", "not a JSON object");
    ct_llama_config c;
    CHECK(ct_llama_config_load(fixture("nonexistent"), &c) < 0 && strstr(ct_last_error(), "nonexistent"),
          "missing folder: '%s'", ct_last_error());
}

/* ---- save and reload ---- */

static bool has_tensor(const char *dir, const char *name) {
    ct_safetensors *st = ct_safetensors_open(dir);
    bool found = false;
    for (int i = 0; st && i < ct_safetensors_count(st); i++) found |= !strcmp(ct_safetensors_at(st, i)->name, name);
    ct_safetensors_close(st);
    return found;
}

static ct_tensor *forward_fixture_ids(ct_llama *m, const ct_safetensors *ref) {
    return ct_llama_forward(m, ct_test_ref_tensor(ref, "input_ids"), NULL);
}

static void check_save_reload(const char *name, ct_dtype dtype, double tolerance) {
    char out[256], file[300];
    snprintf(out, sizeof out, "%s/saved_%s_%s", tmp_root, name, ct_dtype_name(dtype));
    ct_llama *m = ct_llama_load(fixture(name));
    ct_safetensors *ref = open_reference(name);
    CHECK(m && ref && ct_llama_save(m, out, NULL, dtype) == 0, "%s: save failed: %s", name, ct_last_error());
    ct_llama *back = ct_llama_load(out);
    CHECK(back != NULL, "%s: reload failed: %s", name, ct_last_error());
    if (!m || !ref || !back) goto done;
    CHECK(memcmp(&back->config, &m->config, offsetof(ct_llama_config, torch_dtype)) == 0,
          "%s: config changed through save", name);
    CHECK(back->config.torch_dtype == dtype, "%s: saved config does not record %s", name, ct_dtype_name(dtype));
    CHECK(has_tensor(out, "lm_head.weight") == !m->config.tie_word_embeddings,
          "%s: lm_head.weight in the file must be there exactly when untied", name);
    for (size_t i = 0; i < 2; i++) {
        snprintf(file, sizeof file, "%s/%s", out, i ? "tokenizer_config.json" : "tokenizer.json");
        CHECK(access(file, R_OK) == 0, "%s: %s not copied", name, file);
    }
    CHECK(back->tokenizer != NULL, "%s: the saved folder's tokenizer did not load", name);
    /* Every parameter is the original rounded to the stored dtype. */
    double worst = 0;
    for (int i = 0; i < m->n_params; i++) {
        const ct_tensor *a = m->params[i], *b = ct_llama_param(back, a->name);
        const float *x = a->data, *y = b ? b->data : NULL;
        for (int64_t j = 0; y && j < ct_numel(a); j++) {
            float want = dtype == CT_BF16 ? ct_bf16_to_f32(ct_f32_to_bf16(x[j]))
                       : dtype == CT_F16  ? ct_f16_to_f32(ct_f32_to_f16(x[j]))
                                          : x[j];
            if (want != y[j]) worst = 1;
        }
        CHECK(b != NULL, "%s: %s missing after reload", name, a->name);
    }
    CHECK(worst == 0, "%s: reloaded %s weights are not the rounded originals", name, ct_dtype_name(dtype));
    ct_scope_begin();
    bool was = ct_set_grad_enabled(false);
    double err = ct_relative_error(forward_fixture_ids(back, ref), forward_fixture_ids(m, ref));
    ct_set_grad_enabled(was);
    CHECK(err <= tolerance, "%s: logits after a %s round trip differ by %.3g", name, ct_dtype_name(dtype), err);
    printf("%-8s saved as %s and reloaded: logits differ by %.2e\n", name, ct_dtype_name(dtype), err);
    ct_scope_end();
done:
    ct_llama_free(back);
    ct_llama_free(m);
    ct_safetensors_close(ref);
}

/* ---- random initialization ---- */

static void check_random_init(void) {
    ct_llama_config c;
    ct_llama_config_defaults(&c, CT_ARCH_QWEN2);
    c.hidden_size = 40;
    c.intermediate_size = 72;
    c.num_hidden_layers = 2;
    c.num_attention_heads = 5;
    c.num_key_value_heads = 1;
    c.head_dim = 8;
    c.vocab_size = 301;
    c.tie_word_embeddings = true;
    ct_llama *a = ct_llama_new(&c), *b = ct_llama_new(&c);
    CHECK(a && b, "new: %s", ct_last_error());
    if (!a || !b) return;
    ct_llama_init_random(a, 1234);
    omp_set_num_threads(1);
    ct_llama_init_random(b, 1234);
    omp_set_num_threads(2);
    bool same = true;
    for (int i = 0; i < a->n_params; i++) same &= !memcmp(a->params[i]->data, b->params[i]->data, ct_nbytes(a->params[i]));
    CHECK(same, "random init depends on the thread count");
    /* The embedding's moments: N(0, 0.02^2) over 12,040 draws. */
    double sum = 0, sq = 0;
    const int64_t n = ct_numel(a->embed_tokens);
    for (int64_t i = 0; i < n; i++) {
        double v = ct_get(a->embed_tokens, i);
        sum += v;
        sq += v * v;
    }
    double mean = sum / (double)n, std = sqrt(sq / (double)n - mean * mean);
    CHECK(fabs(mean) < 0.001 && fabs(std - 0.02) < 0.001, "embedding mean %.4g std %.4g", mean, std);
    CHECK(ct_get(a->layers[1].post_attention_layernorm, 3) == 1.0 && ct_get(a->layers[0].k_proj.bias, 2) == 0.0,
          "norm weights must start at 1 and biases at 0");
    CHECK(a->lm_head.weight == a->embed_tokens && !ct_llama_param(a, "lm_head.weight"), "tied lm_head must be the embedding");
    int decayed = 0;
    for (int i = 0; i < a->n_params; i++) decayed += ct_llama_param_decays(a->params[i]);
    /* embedding + per layer q, k, v, o, gate, up, down: 1 + 2 * 7 matrices; biases and norms not. */
    CHECK(decayed == 15 && a->n_params == 1 + 2 * 12 + 1, "decayed %d of %d parameters", decayed, a->n_params);
    CHECK(ct_llama_num_params(a) == ct_llama_config_num_params(&c), "parameter counts disagree");
    /* Tiny random weights give near-uniform predictions: loss ~ ln(vocab). */
    ct_scope_begin();
    ct_tensor *ids = ct_empty(CT_I32, 2, (int64_t[]){3, 13});
    for (int i = 0; i < 39; i++) ((int32_t *)ids->data)[i] = (i * 37 + 11) % 301;
    ct_tensor *loss = ct_llama_loss(ct_llama_forward(a, ids, NULL), ids);
    CHECK(loss && fabs(ct_get(loss, 0) - log(301.0)) < 0.05, "initial loss %.4f, ln(301) = %.4f",
          loss ? ct_get(loss, 0) : NAN, log(301.0));
    CHECK(loss && ct_backward(loss) == 0, "backward: %s", ct_last_error());
    ct_scope_end();
    ct_llama_free(a);
    ct_llama_free(b);
}

/* ---- bad folders, files and inputs ---- */

static void expect_load_error(const char *what, const char *dir, const char *needle, const char *needle2) {
    ct_clear_error();
    ct_llama *m = ct_llama_load(dir);
    CHECK(m == NULL, "%s: loaded", what);
    CHECK(strstr(ct_last_error(), needle) && (!needle2 || strstr(ct_last_error(), needle2)),
          "%s: message '%s' lacks '%s' / '%s'", what, ct_last_error(), needle, needle2 ? needle2 : "");
    CHECK(!strchr(ct_last_error(), '\n'), "%s: the message is not one line", what);
    printf("refused (%s): %s\n", what, ct_last_error());
    ct_llama_free(m);
}

static void truncate_file(const char *dir, const char *name, long keep) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    CHECK(truncate(path, keep) == 0, "cannot truncate %s", path);
}

static void check_bad_folders(void) {
    const char *d;
    d = copy_fixture("qwen3", "shape");
    edit_config(d, "\"intermediate_size\": 80", "\"intermediate_size\": 88");
    expect_load_error("shape mismatch", d, "model.layers.0.mlp.gate_proj.weight", "[80, 48] but config.json implies [88, 48]");
    d = copy_fixture("qwen3", "untied");
    edit_config(d, "\"tie_word_embeddings\": true", "\"tie_word_embeddings\": false");
    expect_load_error("missing lm_head", d, "lm_head.weight", NULL);
    d = copy_fixture("qwen2", "as_llama");
    edit_config(d, "\"Qwen2ForCausalLM\"", "\"LlamaForCausalLM\"");
    expect_load_error("unexpected biases", d, "self_attn.k_proj.bias", "another model");
    d = copy_fixture("qwen3", "small_vocab");
    edit_config(d, "\"vocab_size\": 283", "\"vocab_size\": 200");
    edit_config(d, "\"eos_token_id\": 282", "\"eos_token_id\": 2");
    expect_load_error("tokenizer larger than the vocabulary", d, "283 ids", "200 embedding rows");
    d = copy_fixture("mistral", "truncated");
    truncate_file(d, "model.safetensors", 20000);
    expect_load_error("truncated safetensors", d, "model.safetensors", NULL);
    d = copy_fixture("mistral", "lying");
    {
        /* A header that claims a 2^40-element tensor inside a small file. */
        char path[512];
        snprintf(path, sizeof path, "%s/model.safetensors", d);
        const char *header = "{\"model.embed_tokens.weight\":{\"dtype\":\"F32\",\"shape\":[1099511627776,1],"
                             "\"data_offsets\":[0,4398046511104]}}";
        size_t hl = strlen(header);
        unsigned char buf[256] = {0};
        for (int i = 0; i < 8; i++) buf[i] = (unsigned char)((uint64_t)hl >> (8 * i));
        memcpy(buf + 8, header, hl);
        write_text(path, (const char *)buf, 8 + hl + 16);
    }
    expect_load_error("lying safetensors header", d, "model.safetensors", NULL);
    d = copy_fixture("llama", "sentencepiece");
    {
        char path[512];
        snprintf(path, sizeof path, "%s/tokenizer.json", d);
        unlink(path);
        snprintf(path, sizeof path, "%s/tokenizer.model", d);
        write_text(path, "\x0a\x03<s>", 5);
    }
    expect_load_error("SentencePiece tokenizer", d, "tokenizer.model", "SentencePiece");
    d = copy_fixture("llama", "unigram");
    {
        char path[512];
        snprintf(path, sizeof path, "%s/tokenizer.json", d);
        const char *uni = "{\"version\": \"1.0\", \"added_tokens\": [], \"normalizer\": null, \"pre_tokenizer\": null, "
                          "\"post_processor\": null, \"decoder\": null, \"model\": {\"type\": \"Unigram\", "
                          "\"unk_id\": 0, \"vocab\": [[\"<unk>\", 0.0], [\"a\", -1.0]]}}";
        write_text(path, uni, strlen(uni));
    }
    expect_load_error("Unigram tokenizer", d, "Unigram", NULL);
    d = copy_fixture("llama", "sp_bpe");
    {
        /* LLaMA 2's tokenizer.json: SentencePiece-style BPE with byte fallback. */
        char path[512];
        snprintf(path, sizeof path, "%s/tokenizer.json", d);
        const char *sp = "{\"version\": \"1.0\", \"added_tokens\": [], \"normalizer\": null, \"pre_tokenizer\": null, "
                         "\"post_processor\": null, \"decoder\": null, \"model\": {\"type\": \"BPE\", "
                         "\"byte_fallback\": true, \"vocab\": {\"<unk>\": 0, \"a\": 1, \"b\": 2}, \"merges\": []}}";
        write_text(path, sp, strlen(sp));
    }
    expect_load_error("SentencePiece-style BPE", d, "byte_fallback", "tokenizer.json");
    d = copy_fixture("llama", "arch");
    edit_config(d, "\"LlamaForCausalLM\"", "\"GemmaForCausalLM\"");
    expect_load_error("architecture", d, "GemmaForCausalLM", "config.json");
    d = copy_fixture("llama", "rope");
    edit_config(d, "\"llama3\"", "\"longrope\"");
    expect_load_error("rope type", d, "longrope", "config.json");
    expect_load_error("not a folder", fixture("llama/config.json"), "not a folder", NULL);
    /* The fixtures themselves were only read. */
    ct_llama *m = ct_llama_load(fixture("mistral"));
    CHECK(m != NULL, "fixture damaged: %s", ct_last_error());

    /* Saving over a file, and a store dtype the format does not hold. */
    char path[512];
    snprintf(path, sizeof path, "%s/a_file", tmp_root);
    write_text(path, "keep", 4);
    CHECK(m && ct_llama_save(m, path, NULL, CT_F32) < 0 && strstr(ct_last_error(), "not a folder"),
          "saving over a file: '%s'", ct_last_error());
    char *kept = read_text(path);
    CHECK(kept && !strcmp(kept, "keep"), "the file was damaged by a failed save");
    free(kept);
    CHECK(m && ct_llama_save(m, path, NULL, CT_I32) < 0 && strstr(ct_last_error(), "i32"),
          "saving as i32: '%s'", ct_last_error());
    snprintf(path, sizeof path, "%s/no_tokenizer_here", tmp_root);
    CHECK(m && ct_llama_save(m, path, tmp_root, CT_F32) < 0 && strstr(ct_last_error(), "no tokenizer.json"),
          "tokenizer folder without tokenizer.json: '%s'", ct_last_error());
    CHECK(access(path, F_OK) != 0, "a refused save created %s", path);

    /* Bad forward inputs. */
    ct_scope_begin();
    ct_tensor *f = ct_zeros(CT_F32, 2, (int64_t[]){2, 5}), *ids = ct_zeros(CT_I32, 2, (int64_t[]){2, 5});
    CHECK(m && !ct_llama_forward(m, f, NULL) && strstr(ct_last_error(), "input_ids"), "f32 ids: '%s'", ct_last_error());
    ct_llama_forward_args args = {.position_ids = ct_zeros(CT_I32, 2, (int64_t[]){2, 4})};
    CHECK(m && !ct_llama_forward(m, ids, &args) && strstr(ct_last_error(), "position_ids"), "positions: '%s'",
          ct_last_error());
    ((int32_t *)ids->data)[3] = 290;
    CHECK(m && !ct_llama_forward(m, ids, NULL) && strstr(ct_last_error(), "290"), "id past the vocab: '%s'",
          ct_last_error());
    ((int32_t *)ids->data)[3] = 5;
    if (m) m->config.sliding_window = 4;
    CHECK(m && !ct_llama_forward(m, ids, NULL) && strstr(ct_last_error(), "sliding window"), "window: '%s'",
          ct_last_error());
    ct_scope_end();
    ct_llama_free(m);
}

int main(void) {
    omp_set_num_threads(2);
    if (!ct_test_temp_dir(tmp_root, sizeof tmp_root, "llama")) return 1;
    const char *models[] = {"llama", "qwen2", "qwen3", "mistral"};
    for (int i = 0; i < 4; i++) check_against_transformers(models[i]);
    check_generation_paths("qwen3");
    check_generation_paths("qwen2");
    check_generation_paths("llama");
    check_published_configs();
    check_bad_configs();
    check_save_reload("qwen3", CT_F32, 0.0);
    check_save_reload("llama", CT_BF16, 2e-2);
    check_save_reload("qwen2", CT_F16, 2e-3);
    check_random_init();
    check_bad_folders();
    ct_test_remove_tree(tmp_root);
    return ct_test_finish("test_llama");
}
