/* GGUF files: the Q8_0 quantizer against the reference formula written out here independently
 * (round half away from zero, fp16 scale); the byte layout of a written file (header, alignment,
 * contiguous padded offsets); writer -> reader round trips of llama, qwen2 and qwen3 models of odd
 * sizes (f32 logits identical, q8_0 logits close, the f16 fallback, llama's RoPE row permutation,
 * llama 3's rope_freqs); the tokenizer rebuilt from the file's keys; and one-line errors for
 * truncated, corrupt and lying files, every prefix of a valid file included. */
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "autograd/ops.h"
#include "autograd/tape.h"
#include "checkpoints/gguf.h"
#include "core/arena.h"
#include "core/error.h"
#include "datasets/tokenizer_gguf.h"
#include "models/llama.h"
#include "models/llama_gguf.h"
#include "models/llama_peft.h"
#include "models/lora.h"
#include "ct_test.h"

static char tmp_root[128];

/* ---- Q8_0 ---- */

/* The GGUF-NOTES reference, written out again: amax/127 in fp32, roundf of x * (1/d). */
static void reference_q8_0(const float *x, int8_t *q, uint16_t *d_half) {
    float amax = 0;
    for (int i = 0; i < 32; i++) amax = fabsf(x[i]) > amax ? fabsf(x[i]) : amax;
    float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
    for (int i = 0; i < 32; i++) {
        float v = x[i] * id;
        /* half away from zero without roundf: floor(|v| + 0.5) with the sign put back */
        float r = floorf(fabsf(v) + 0.5f);
        q[i] = (int8_t)(v < 0 ? -r : r);
    }
    *d_half = ct_f32_to_f16(d);
}

static void check_q8_0_known_values(void) {
    /* amax 127 gives d = 1 exactly, so x * id = x and the halves are exact ties */
    float x[32] = {0.5f, -0.5f, 1.5f, -1.5f, 2.5f, -2.5f, 126.5f, -127.0f, 127.0f, 0.49f, -0.51f, 3.5f};
    const int8_t expect[12] = {1, -1, 2, -2, 3, -3, 127, -127, 127, 0, -1, 4};
    uint8_t block[34];
    ct_gguf_q8_0_quantize_row(x, 32, block);
    CHECK(block[0] == 0x00 && block[1] == 0x3c, "d = 1.0 is fp16 0x3c00, got %02x%02x", block[1], block[0]);
    bool same = true;
    for (int i = 0; i < 12; i++) same &= (int8_t)block[2 + i] == expect[i];
    for (int i = 12; i < 32; i++) same &= block[2 + i] == 0;
    CHECK(same, "round half away from zero: 0.5 -> 1, 2.5 -> 3, -2.5 -> -3, 126.5 -> 127");
    float zeros[32] = {0};
    ct_gguf_q8_0_quantize_row(zeros, 32, block);
    same = true;
    for (int i = 0; i < 34; i++) same &= block[i] == 0;
    CHECK(same, "an all-zero block is d 0 and q 0");
    /* random blocks of several magnitudes: bit for bit the reference */
    uint64_t s = 12345;
    int mismatched = 0, compared = 0;
    for (int b = 0; b < 400; b++) {
        float v[32];
        float scale = powf(10.0f, (float)(b % 9) - 5.0f);
        for (int i = 0; i < 32; i++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            v[i] = ((float)(s >> 40) / (float)(1 << 24) - 0.5f) * scale;
        }
        int8_t q[32];
        uint16_t d;
        reference_q8_0(v, q, &d);
        ct_gguf_q8_0_quantize_row(v, 32, block);
        mismatched += memcmp(block, &d, 2) != 0 || memcmp(block + 2, q, 32) != 0;
        compared++;
        float back[32];
        ct_gguf_q8_0_dequantize_row(block, 32, back);
        for (int i = 0; i < 32; i++) mismatched += back[i] != (float)q[i] * ct_f16_to_f32(d);
    }
    CHECK(mismatched == 0 && compared == 400, "%d of %d random blocks differ from the reference", mismatched, compared);
}

/* ---- byte layout ---- */

static uint64_t u64_at(const uint8_t *p) {
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static char *write_small(const char *name, uint8_t **bytes, size_t *len) {
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", tmp_root, name);
    ct_gguf_writer *w = ct_gguf_writer_new();
    float a[5] = {1, 2, 3, 4, 5}, q[96 * 2];
    uint16_t h[14];
    for (int i = 0; i < 96 * 2; i++) q[i] = (float)i / 7.0f - 9.0f;
    for (int i = 0; i < 14; i++) h[i] = ct_f32_to_f16((float)i);
    uint8_t *q8 = malloc(2 * 3 * 34);
    for (int r = 0; r < 2; r++) ct_gguf_q8_0_quantize_row(q + r * 96, 96, q8 + r * 3 * 34);
    const char *strs[3] = {"a", "", "ccc"};
    int32_t ints[3] = {-1, 0, 7};
    int64_t ne_a[1] = {5}, ne_q[2] = {96, 2}, ne_h[2] = {7, 2};
    int rc = ct_gguf_set_string(w, "general.architecture", "test") | ct_gguf_set_u32(w, "k.u32", 42) |
             ct_gguf_set_f32(w, "k.f32", 0.25f) | ct_gguf_set_bool(w, "k.bool", true) |
             ct_gguf_set_string_array(w, "k.strs", strs, 3) | ct_gguf_set_i32_array(w, "k.ints", ints, 3) |
             ct_gguf_add_tensor(w, "a", CT_GGUF_F32, 1, ne_a, a, false) |
             ct_gguf_add_tensor(w, "q", CT_GGUF_Q8_0, 2, ne_q, q8, true) |
             ct_gguf_add_tensor(w, "h", CT_GGUF_F16, 2, ne_h, h, false);
    CHECK(rc == 0, "building: %s", ct_last_error());
    CHECK(ct_gguf_set_u32(w, "k.u32", 1) < 0 && strstr(ct_last_error(), "twice"), "a key set twice is refused");
    int64_t ne_bad[2] = {33, 1};
    float dummy[33] = {0};
    CHECK(ct_gguf_add_tensor(w, "bad", CT_GGUF_Q8_0, 2, ne_bad, dummy, false) < 0, "Q8_0 rows of 33 are refused");
    CHECK(ct_gguf_write(w, path, NULL, NULL) == 0, "write: %s", ct_last_error());
    ct_gguf_writer_free(w);
    *bytes = (uint8_t *)ct_test_read_file(path, len);
    return path;
}

static void check_layout(void) {
    uint8_t *b;
    size_t len;
    const char *path = write_small("small.gguf", &b, &len);
    if (!b) return;
    uint32_t version;
    memcpy(&version, b + 4, 4);
    CHECK(!memcmp(b, "GGUF", 4) && version == 3 && u64_at(b + 8) == 3 && u64_at(b + 16) == 6,
          "header: magic, version 3, 3 tensors, 6 key-values");
    ct_gguf *g = ct_gguf_open(path);
    CHECK(g != NULL, "open: %s", ct_last_error());
    if (!g) return free(b);
    /* offsets are the running sums of sizes padded to 32: 20 -> 32, 204 -> 224 */
    const ct_gguf_tensor *a = ct_gguf_find_tensor(g, "a"), *q = ct_gguf_find_tensor(g, "q"), *h = ct_gguf_find_tensor(g, "h");
    CHECK(a && q && h && a->offset == 0 && q->offset == 32 && h->offset == 256, "offsets 0, 32, 256");
    CHECK(ct_gguf_data_offset(g) % 32 == 0 && len == ct_gguf_data_offset(g) + 256 + 32,
          "data starts aligned (%llu) and the file ends after the last padded tensor (%zu bytes)",
          (unsigned long long)ct_gguf_data_offset(g), len);
    CHECK(a && q && h && q->nbytes == 204 && h->nbytes == 28 && q->ne[0] == 96 && q->ne[1] == 2 && h->type == CT_GGUF_F16,
          "tensor infos as written");
    float five;
    if (a) memcpy(&five, a->data + 16, 4);
    CHECK(a && five == 5.0f && b[ct_gguf_data_offset(g) + 20] == 0, "tensor data in place, padding zero");
    uint32_t u = 0;
    float f = 0;
    bool flag = false, found;
    CHECK(ct_gguf_get_u32(g, "k.u32", true, &u, &found) == 0 && u == 42 && ct_gguf_get_f32(g, "k.f32", true, &f, NULL) == 0 &&
              f == 0.25f && ct_gguf_get_bool(g, "k.bool", true, &flag, NULL) == 0 && flag,
          "scalars read back");
    CHECK(ct_gguf_get_u32(g, "k.f32", true, &u, NULL) < 0 && strstr(ct_last_error(), "k.f32 is f32, expected u32"),
          "a key of another type is named: %s", ct_last_error());
    const ct_gguf_kv *strs = ct_gguf_get_array(g, "k.strs", CT_GGUF_V_STRING), *ints = ct_gguf_get_array(g, "k.ints", CT_GGUF_V_I32);
    CHECK(strs && strs->n == 3 && strs->strings[1].len == 0 && strs->strings[2].len == 3 && ints && ints->n == 3 &&
              ct_gguf_array_i32(ints, 0) == -1 && ct_gguf_array_i32(ints, 2) == 7,
          "arrays read back");
    ct_gguf_close(g);
    free(b);
}

/* ---- bad files ---- */

static void expect_bad(const char *what, const uint8_t *bytes, size_t len, const char *needle) {
    ct_gguf *g = ct_gguf_parse(bytes, len, "bad.gguf");
    CHECK(!g, "%s: accepted", what);
    ct_gguf_close(g);
    const char *e = ct_last_error();
    CHECK(!g && strstr(e, "bad.gguf") && !strchr(e, '\n') && (!needle || strstr(e, needle)), "%s: message '%s' lacks '%s'",
          what, e, needle ? needle : "");
}

static void check_bad_files(void) {
    uint8_t *b;
    size_t len;
    write_small("small2.gguf", &b, &len);
    if (!b) return;
    /* every prefix fails cleanly (the sanitizer build would catch a read past the end) */
    int accepted = 0;
    for (size_t n = 0; n < len; n++) {
        uint8_t *cut = malloc(n ? n : 1);
        memcpy(cut, b, n);
        ct_gguf *g = ct_gguf_parse(cut, n, "cut.gguf");
        accepted += g != NULL;
        ct_gguf_close(g);
        free(cut);
    }
    CHECK(accepted == 0, "%d truncated prefixes were accepted", accepted);
    uint8_t *c = malloc(len);
    const uint64_t huge = UINT64_MAX / 2;
#define MUTATE(offset, value, size)                                                                                    \
    do {                                                                                                               \
        memcpy(c, b, len);                                                                                             \
        memcpy(c + (offset), &(value), size);                                                                          \
    } while (0)
    MUTATE(0, "GGUG", 4);
    expect_bad("magic", c, len, "does not start with");
    uint32_t v2 = 2;
    MUTATE(4, v2, 4);
    expect_bad("version", c, len, "version 2");
    MUTATE(8, huge, 8);
    expect_bad("tensor count", c, len, "cannot fit");
    MUTATE(16, huge, 8);
    expect_bad("key-value count", c, len, "cannot fit");
    /* the first key's length: 24 is where the key-values start */
    MUTATE(24, huge, 8);
    expect_bad("key length", c, len, "more than the file holds");
    uint32_t bad_type = 99;
    MUTATE(24 + 8 + 20, bad_type, 4); /* "general.architecture" is 20 bytes */
    expect_bad("value type", c, len, "unknown value type 99");
    /* tensor infos: find "q" by scanning for its name record (length 1, 'q', 2 dims) */
    size_t qi = 0;
    for (size_t i = 24; i + 13 < len && !qi; i++)
        if (u64_at(b + i) == 1 && b[i + 8] == 'q' && b[i + 9] == 2) qi = i;
    CHECK(qi > 0, "found tensor info q");
    if (qi) {
        uint32_t type = 2; /* Q4_0 */
        MUTATE(qi + 9 + 4 + 16, type, 4);
        expect_bad("tensor type", c, len, "ggml type 2");
        uint64_t off = 64;
        MUTATE(qi + 9 + 4 + 16 + 4, off, 8);
        expect_bad("offset", c, len, "offset 64");
        uint64_t ne0 = 33;
        MUTATE(qi + 9 + 4, ne0, 8);
        expect_bad("Q8_0 width", c, len, "Q8_0 rows of 33");
        uint64_t rows = 1ull << 40;
        MUTATE(qi + 9 + 4 + 8, rows, 8);
        expect_bad("tensor past the end", c, len, "past the end");
        uint32_t dims = 5;
        MUTATE(qi + 9, dims, 4);
        expect_bad("dimensions", c, len, "5 dimensions");
        MUTATE(qi + 8, "a", 1);
        expect_bad("duplicate tensor", c, len, "tensor a appears twice");
    }
    ct_gguf *g = ct_gguf_open("/nonexistent/x.gguf");
    CHECK(!g && strstr(ct_last_error(), "/nonexistent/x.gguf"), "a missing file is named");
    free(c);
    free(b);
}

/* ---- models ---- */

static ct_tensor *logits_of(ct_llama *m) {
    int64_t shape[2] = {1, 11};
    ct_tensor *ids = ct_empty(CT_I32, 2, shape);
    for (int i = 0; i < 11; i++) ((int32_t *)ids->data)[i] = (i * 37 + 5) % 250;
    return ct_llama_forward(m, ids, NULL);
}

static ct_llama *reload(const ct_llama *m, ct_gguf_type type, const char *file, ct_gguf_report *report, ct_gguf **out) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", tmp_root, file);
    ct_gguf_writer *w = ct_gguf_writer_new();
    int rc = ct_llama_gguf_add(m, w, type, report);
    if (rc == 0) rc = ct_gguf_write(w, path, NULL, NULL);
    ct_gguf_writer_free(w);
    CHECK(rc == 0, "%s: export failed: %s", file, ct_last_error());
    *out = rc == 0 ? ct_gguf_open(path) : NULL;
    ct_llama *back = *out ? ct_llama_load_gguf(*out) : NULL;
    CHECK(back != NULL, "%s: load failed: %s", file, ct_last_error());
    return back;
}

static double max_abs_diff(const ct_tensor *a, const ct_tensor *b, double *scale) {
    double d = 0;
    *scale = 0;
    for (int64_t i = 0; i < ct_numel(a); i++) {
        d = fmax(d, fabs(ct_get(a, i) - ct_get(b, i)));
        *scale = fmax(*scale, fabs(ct_get(b, i)));
    }
    return d;
}

/* f32: the same logits bit for bit; q8_0: within `q8_tol` of the logits' scale. */
static void check_round_trip(const char *name, ct_llama *m, double q8_tol, int expect_fallbacks) {
    ct_scope_begin();
    ct_tensor *ref = logits_of(m);
    ct_gguf_report report;
    ct_gguf *g;
    char file[64];
    snprintf(file, sizeof file, "%s.f32.gguf", name);
    ct_llama *f32 = reload(m, CT_GGUF_F32, file, &report, &g);
    ct_tensor *got = f32 ? logits_of(f32) : NULL;
    CHECK(got && ref && !memcmp(got->data, ref->data, ct_nbytes(ref)), "%s: f32 GGUF logits differ", name);
    ct_gguf_report_free(&report);
    ct_llama_free(f32);
    ct_gguf_close(g);
    snprintf(file, sizeof file, "%s.q8_0.gguf", name);
    ct_llama *q8 = reload(m, CT_GGUF_Q8_0, file, &report, &g);
    int fallbacks = 0, q8_tensors = 0;
    for (int i = 0; i < report.n; i++) {
        fallbacks += report.tensors[i].fell_back;
        q8_tensors += report.tensors[i].type == CT_GGUF_Q8_0;
        if (report.tensors[i].type == CT_GGUF_Q8_0)
            CHECK(report.tensors[i].rel_rms > 1e-4 && report.tensors[i].rel_rms < 1e-2, "%s: %s rel_rms %g", name,
                  report.tensors[i].name, report.tensors[i].rel_rms);
    }
    CHECK(fallbacks == expect_fallbacks, "%s: %d F16 fallbacks, expected %d", name, fallbacks, expect_fallbacks);
    got = q8 ? logits_of(q8) : NULL;
    double scale = 0, diff = got && ref ? max_abs_diff(got, ref, &scale) : INFINITY;
    printf("%s: q8_0 max |logit diff| %.3g (logit scale %.3g), %d Q8_0 tensors, %d F16 fallbacks\n", name, diff, scale,
           q8_tensors, fallbacks);
    CHECK(diff > 0 && diff < q8_tol * scale, "%s: q8_0 logits off by %g (scale %g)", name, diff, scale);
    if (q8 && q8_tensors) {
        const ct_tensor *w = q8->layers[0].up_proj.weight;
        CHECK(w->dtype == CT_I8 && w->scale && w->scale_block == 32, "%s: Q8_0 is kept int8 with block-32 scales", name);
    }
    ct_gguf_report_free(&report);
    ct_llama_free(q8);
    ct_gguf_close(g);
    ct_scope_end();
}

static ct_llama *random_model(ct_llama_arch arch, int64_t hidden, int64_t heads, int64_t kv, int64_t head_dim,
                              int64_t inter, int64_t vocab, bool tied) {
    ct_llama_config c;
    ct_llama_config_defaults(&c, arch);
    c.hidden_size = hidden;
    c.intermediate_size = inter;
    c.num_hidden_layers = 2;
    c.num_attention_heads = heads;
    c.num_key_value_heads = kv;
    c.head_dim = head_dim;
    c.vocab_size = vocab;
    c.tie_word_embeddings = tied;
    c.rope_theta = arch == CT_ARCH_LLAMA ? 10000 : 1e6;
    ct_llama *m = ct_llama_new(&c);
    CHECK(m != NULL, "new: %s", ct_last_error());
    if (m) ct_llama_init_random(m, 99);
    /* non-trivial biases and norms, so their layout is tested too */
    for (int i = 0; m && i < m->n_params; i++)
        if (m->params[i]->ndim == 1)
            for (int64_t k = 0; k < ct_numel(m->params[i]); k++) ct_set(m->params[i], k, 1.0 + 0.1 * sin((double)(k * 7 + i)));
    return m;
}

static void check_models(void) {
    /* llama: RoPE permutation; down_proj rows of 96 are Q8_0, the embedding's 64 too */
    ct_llama *m = random_model(CT_ARCH_LLAMA, 64, 4, 2, 16, 96, 301, false);
    if (m) check_round_trip("llama", m, 0.02, 0);
    /* the permutation, checked on the file: GGUF q row 2i+k of head h = HF row h*D + k*D/2 + i */
    if (m) {
        ct_gguf_report r;
        ct_gguf *g;
        ct_llama *back = reload(m, CT_GGUF_F32, "perm.gguf", &r, &g);
        const ct_gguf_tensor *q = g ? ct_gguf_find_tensor(g, "blk.1.attn_q.weight") : NULL;
        const ct_gguf_tensor *kb = g ? ct_gguf_find_tensor(g, "blk.0.attn_k.weight") : NULL;
        bool ok = q && kb;
        for (int h = 0; ok && h < 4; h++)
            for (int i = 0; i < 8; i++)
                for (int k = 0; k < 2; k++) {
                    const float *file_row = (const float *)q->data + (h * 16 + 2 * i + k) * 64;
                    const float *hf_row = (const float *)m->layers[1].q_proj.weight->data + (h * 16 + k * 8 + i) * 64;
                    ok &= !memcmp(file_row, hf_row, 64 * sizeof(float));
                }
        CHECK(ok, "llama q rows are permuted to interleaved RoPE pairs");
        ct_gguf_report_free(&r);
        ct_llama_free(back);
        ct_gguf_close(g);
        ct_llama_free(m);
    }
    /* qwen2: biases; tied; an odd vocabulary */
    m = random_model(CT_ARCH_QWEN2, 64, 2, 1, 32, 128, 259, true);
    if (m) check_round_trip("qwen2", m, 0.02, 0);
    ct_llama_free(m);
    /* qwen3: q/k norms, head_dim 24 != 96 / 2 (key_length); o_proj rows of 2 * 24 = 48 and down_proj
     * rows of 72 fall back to F16 in both layers */
    m = random_model(CT_ARCH_QWEN3, 96, 2, 1, 24, 72, 263, true);
    if (m) {
        check_round_trip("qwen3", m, 0.02, 4);
        ct_gguf_report r;
        ct_gguf *g;
        ct_llama *back = reload(m, CT_GGUF_Q8_0, "qwen3b.gguf", &r, &g);
        uint32_t key_length = 0;
        CHECK(g && ct_gguf_get_u32(g, "qwen3.attention.key_length", true, &key_length, NULL) == 0 && key_length == 24,
              "qwen3.attention.key_length 24");
        const ct_gguf_tensor *down = g ? ct_gguf_find_tensor(g, "blk.0.ffn_down.weight") : NULL;
        const ct_gguf_tensor *norm = g ? ct_gguf_find_tensor(g, "blk.0.attn_q_norm.weight") : NULL;
        CHECK(down && down->type == CT_GGUF_F16 && norm && norm->type == CT_GGUF_F32 && norm->ne[0] == 24,
              "the fallback is F16; q_norm F32 [head_dim]");
        ct_gguf_report_free(&r);
        ct_llama_free(back);
        ct_gguf_close(g);
        ct_llama_free(m);
    }
    /* llama 3 RoPE scaling: rope_freqs, and the reloaded model's frequencies */
    m = random_model(CT_ARCH_LLAMA, 64, 2, 2, 32, 96, 257, true);
    if (m) {
        m->config.rope_scaling.type = CT_ROPE_LLAMA3;
        m->config.rope_scaling.factor = 8;
        m->config.rope_scaling.low_freq_factor = 1;
        m->config.rope_scaling.high_freq_factor = 4;
        m->config.rope_scaling.original_max_position_embeddings = 64;
        ct_llama_rope_inv_freq(&m->config, m->inv_freq);
        ct_gguf_report r;
        ct_gguf *g;
        ct_llama *back = reload(m, CT_GGUF_F32, "llama3.gguf", &r, &g);
        const ct_gguf_tensor *f = g ? ct_gguf_find_tensor(g, "rope_freqs.weight") : NULL;
        double worst = 0;
        for (int i = 0; back && i < 16; i++) worst = fmax(worst, fabs(back->inv_freq[i] / m->inv_freq[i] - 1));
        float first, last;
        if (f) memcpy(&first, f->data, 4), memcpy(&last, f->data + 4 * 15, 4);
        CHECK(f && f->ne[0] == 16 && first == 1.0f && fabsf(last - 8.0f) < 1e-6f && worst < 1e-6,
              "rope_freqs: 1 for short wavelengths, the factor 8 for long ones; frequencies back within %g", worst);
        ct_gguf_report_free(&r);
        ct_llama_free(back);
        ct_gguf_close(g);
        ct_llama_free(m);
    }
}

/* The model's tensors into w, without `skip` (NULL: all of them); *r lives until the write. */
static void add_model(ct_llama *m, ct_gguf_writer *w, ct_tensor *skip, ct_gguf_report *r) {
    ct_tensor **saved = malloc(sizeof *saved * (size_t)m->n_params);
    int n = m->n_params, kept = 0;
    memcpy(saved, m->params, sizeof *saved * (size_t)n);
    for (int i = 0; i < n; i++)
        if (saved[i] != skip) m->params[kept++] = saved[i];
    m->n_params = kept;
    CHECK(ct_llama_gguf_add(m, w, CT_GGUF_F32, r) == 0, "export: %s", ct_last_error());
    memcpy(m->params, saved, sizeof *saved * (size_t)n);
    m->n_params = n;
    free(saved);
}

/* A model file that lies: an extra tensor, a missing one, another architecture. */
static void check_bad_models(void) {
    ct_llama *m = random_model(CT_ARCH_QWEN2, 64, 2, 1, 32, 64, 257, true);
    if (!m) return;
    const char *needles[3] = {"tensors the model does not know", "blk.0.ffn_up.weight", "general.architecture is mistral"};
    float extra[32] = {0};
    int64_t ne[1] = {32};
    for (int k = 0; k < 3; k++) {
        char path[512];
        snprintf(path, sizeof path, "%s/badmodel%d.gguf", tmp_root, k);
        ct_gguf_writer *w = ct_gguf_writer_new();
        ct_gguf_report r = {0};
        if (k == 0) {
            add_model(m, w, NULL, &r);
            ct_gguf_add_tensor(w, "extra.weight", CT_GGUF_F32, 1, ne, extra, false);
        } else if (k == 1) {
            add_model(m, w, m->layers[0].up_proj.weight, &r);
        } else {
            ct_gguf_set_string(w, "general.architecture", "mistral");
            ct_gguf_add_tensor(w, "token_embd.weight", CT_GGUF_F32, 1, ne, extra, false);
        }
        CHECK(ct_gguf_write(w, path, NULL, NULL) == 0, "write %d: %s", k, ct_last_error());
        ct_gguf_writer_free(w);
        ct_gguf_report_free(&r);
        ct_gguf *g = ct_gguf_open(path);
        ct_llama *back = g ? ct_llama_load_gguf(g) : NULL;
        CHECK(g && !back && strstr(ct_last_error(), needles[k]) && strstr(ct_last_error(), path),
              "bad model %d: '%s' lacks '%s'", k, ct_last_error(), needles[k]);
        ct_llama_free(back);
        ct_gguf_close(g);
    }
    /* an architecture GGUF export does not express is refused naming the ones it does */
    m->config.arch = CT_ARCH_MISTRAL;
    ct_gguf_writer *w = ct_gguf_writer_new();
    ct_gguf_report r;
    CHECK(ct_llama_gguf_add(m, w, CT_GGUF_Q8_0, &r) < 0 && strstr(ct_last_error(), "supports llama, qwen2 and qwen3"),
          "mistral export: %s", ct_last_error());
    ct_gguf_report_free(&r);
    ct_gguf_writer_free(w);
    m->config.arch = CT_ARCH_QWEN2;
    ct_llama_free(m);
}

/* ---- LoRA ---- */

static void check_lora(void) {
    ct_llama *m = ct_llama_load(ct_test_path("tests/fixtures/models/llama"));
    CHECK(m && ct_llama_apply_peft_dir(m, ct_test_path("tests/fixtures/lora/llama_qv")) == 0, "llama + llama_qv: %s",
          ct_last_error());
    if (!m) return;
    char path[512];
    snprintf(path, sizeof path, "%s/lora.gguf", tmp_root);
    ct_gguf_writer *w = ct_gguf_writer_new();
    double alpha = 0;
    CHECK(ct_llama_gguf_add_lora(m, w, &alpha) == 0 && ct_gguf_write(w, path, NULL, NULL) == 0, "lora: %s", ct_last_error());
    ct_gguf_writer_free(w);
    ct_gguf *g = ct_gguf_open(path);
    char *type = NULL, *adapter = NULL;
    float file_alpha = 0;
    if (g) {
        ct_gguf_get_string(g, "general.type", true, &type);
        ct_gguf_get_string(g, "adapter.type", true, &adapter);
        ct_gguf_get_f32(g, "adapter.lora.alpha", true, &file_alpha, NULL);
    }
    /* lora_alpha 8, r 4, plain LoRA: alpha as it is */
    CHECK(type && !strcmp(type, "adapter") && adapter && !strcmp(adapter, "lora") && file_alpha == 8.0f && alpha == 8.0,
          "adapter keys: general.type adapter, adapter.type lora, alpha 8 (got %g)", file_alpha);
    const ct_gguf_tensor *qa = g ? ct_gguf_find_tensor(g, "blk.1.attn_q.weight.lora_a") : NULL;
    const ct_gguf_tensor *qb = g ? ct_gguf_find_tensor(g, "blk.1.attn_q.weight.lora_b") : NULL;
    const ct_gguf_tensor *vb = g ? ct_gguf_find_tensor(g, "blk.1.attn_v.weight.lora_b") : NULL;
    CHECK(qa && qb && vb && qa->ne[0] == 64 && qa->ne[1] == 4 && qb->ne[0] == 4 && qb->ne[1] == 64 &&
              ct_gguf_tensor_count(g) == 2 * 2 * m->config.num_hidden_layers,
          "lora_a ne {in, r}, lora_b ne {r, out}, one pair per adapted projection");
    const ct_lora *q = m->layers[1].q_proj.adapter, *v = m->layers[1].v_proj.adapter;
    bool permuted = qb && q, raw = vb && v && !memcmp(vb->data, v->B->data, ct_nbytes(v->B));
    for (int h = 0; permuted && h < 4; h++)
        for (int i = 0; i < 8; i++)
            for (int k = 0; k < 2; k++)
                permuted &= !memcmp((const float *)qb->data + (h * 16 + 2 * i + k) * 4,
                                    (const float *)q->B->data + (h * 16 + k * 8 + i) * 4, 4 * sizeof(float));
    CHECK(permuted && raw, "q's lora_b rows get llama's RoPE permutation, v's are as in PEFT");
    free(type);
    free(adapter);
    ct_gguf_close(g);
    ct_llama_free(m);
}

/* ---- the tokenizer ---- */

static void check_tokenizer(const char *fixture) {
    char dir[256];
    snprintf(dir, sizeof dir, "tests/fixtures/models/%s", fixture);
    ct_tokenizer *tok = ct_tokenizer_load(ct_test_path(dir));
    CHECK(tok != NULL, "%s: %s", fixture, ct_last_error());
    if (!tok) return;
    char path[512];
    snprintf(path, sizeof path, "%s/tok_%s.gguf", tmp_root, fixture);
    ct_gguf_writer *w = ct_gguf_writer_new();
    const int32_t n = ct_tokenizer_vocab_size(tok);
    ct_tokenizer_gguf_options o = {.n_rows = n + 5, .bos = -1, .eos = n - 1, .pad = -1, .chat_template = "{{ x }}"};
    CHECK(ct_tokenizer_gguf_add(tok, w, &o) == 0 && ct_gguf_write(w, path, NULL, NULL) == 0, "%s: %s", fixture, ct_last_error());
    ct_gguf_writer_free(w);
    ct_gguf *g = ct_gguf_open(path);
    const ct_gguf_kv *tokens = g ? ct_gguf_get_array(g, "tokenizer.ggml.tokens", CT_GGUF_V_STRING) : NULL;
    const ct_gguf_kv *types = g ? ct_gguf_get_array(g, "tokenizer.ggml.token_type", CT_GGUF_V_I32) : NULL;
    char pad[32];
    snprintf(pad, sizeof pad, "[PAD%d]", n + 2);
    CHECK(tokens && types && tokens->n == (uint64_t)n + 5 && tokens->strings[n + 2].len == strlen(pad) &&
              !memcmp(tokens->strings[n + 2].data, pad, strlen(pad)) && ct_gguf_array_i32(types, (uint64_t)n + 2) == 5 &&
              ct_gguf_array_i32(types, (uint64_t)n - 1) == 3 && ct_gguf_array_i32(types, 65) == 1,
          "%s: tokens padded with [PAD{i}] of type 5; special tokens control (3), the rest normal (1)", fixture);
    char *json = g ? ct_tokenizer_json_from_gguf(g) : NULL;
    ct_tokenizer *back = json ? ct_tokenizer_load_text(json, strlen(json), "rebuilt") : NULL;
    CHECK(back != NULL, "%s: rebuilt tokenizer: %s", fixture, ct_last_error());
    const char *texts[] = {"Hello world, it's 2024!", "退货申请 请问  多久\n\n到账？", "<|im_start|>user\nhi<|im_end|>",
                           " leading  spaces\tand\r\nCRLF", "caf\xc3\xa9 na\xc3\xafve"};
    for (size_t i = 0; back && i < sizeof texts / sizeof *texts; i++) {
        for (int flags = 0; flags <= CT_TOK_MATCH_SPECIAL; flags += CT_TOK_MATCH_SPECIAL) {
            ct_token_list a = {0}, b = {0};
            ct_tokenizer_encode(tok, texts[i], strlen(texts[i]), flags, &a);
            ct_tokenizer_encode(back, texts[i], strlen(texts[i]), flags, &b);
            CHECK(a.len > 0 && a.len == b.len && !memcmp(a.ids, b.ids, a.len * sizeof *a.ids),
                  "%s: '%s' encodes differently after the GGUF round trip", fixture, texts[i]);
            ct_token_list_free(&a);
            ct_token_list_free(&b);
        }
    }
    ct_tokenizer_free(back);
    free(json);
    ct_gguf_close(g);
    ct_tokenizer_free(tok);
    /* a pre type ctune has no regex for is refused by name */
    w = ct_gguf_writer_new();
    snprintf(path, sizeof path, "%s/tok_falcon.gguf", tmp_root);
    ct_gguf_set_string(w, "tokenizer.ggml.model", "gpt2");
    ct_gguf_set_string(w, "tokenizer.ggml.pre", "falcon");
    ct_gguf_write(w, path, NULL, NULL);
    ct_gguf_writer_free(w);
    g = ct_gguf_open(path);
    json = g ? ct_tokenizer_json_from_gguf(g) : NULL;
    CHECK(g && !json && strstr(ct_last_error(), "tokenizer.ggml.pre is falcon"), "unknown pre: %s", ct_last_error());
    free(json);
    ct_gguf_close(g);
}

int main(void) {
    omp_set_num_threads(2);
    ct_set_grad_enabled(false);
    if (!ct_test_temp_dir(tmp_root, sizeof tmp_root, "gguf")) return 1;
    check_q8_0_known_values();
    check_layout();
    check_bad_files();
    check_models();
    check_bad_models();
    check_lora();
    check_tokenizer("qwen2");
    check_tokenizer("llama");
    ct_test_remove_tree(tmp_root);
    printf("%d passed, %d failed\n", ct_test_passed, ct_test_failed);
    return ct_test_failed ? 1 : 0;
}
