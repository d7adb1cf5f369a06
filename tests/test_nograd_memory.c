/* A forward without a tape (evaluation, scoring, generation, a teacher) releases each decoder
 * block's temporaries before the next block (ct_segment_scoped): its arena peak does not grow with
 * the number of layers, and its logits are bit for bit the taped forward's, with and without a KV
 * cache. */
#include <stdio.h>
#include <string.h>

#include "autograd/tape.h"
#include "core/arena.h"
#include "core/error.h"
#include "models/llama.h"
#include "tests/ct_test.h"

static ct_llama *model(int layers) {
    ct_llama_config c;
    ct_llama_config_defaults(&c, CT_ARCH_QWEN2);
    c.hidden_size = 64, c.intermediate_size = 176, c.num_hidden_layers = layers, c.num_attention_heads = 4;
    c.num_key_value_heads = 2, c.head_dim = 16, c.vocab_size = 97, c.tie_word_embeddings = true;
    ct_llama *m = ct_llama_new(&c);
    CHECK(m != NULL, "%s", ct_last_error());
    if (m) ct_llama_init_random(m, 11);
    return m;
}

static ct_tensor *batch(int64_t B, int64_t T) {
    ct_tensor *ids = ct_empty(CT_I32, 2, (int64_t[]){B, T});
    for (int64_t i = 0; i < B * T; i++) ((int32_t *)ids->data)[i] = (int32_t)((i * 31 + 7) % 97);
    return ids;
}

/* The arena peak of one no-grad forward of [2, 33] tokens, above what was in use before it. */
static size_t nograd_peak(ct_llama *m) {
    ct_scope_begin();
    ct_tensor *ids = batch(2, 33);
    const bool was = ct_set_grad_enabled(false);
    ct_memory_reset_peak();
    const size_t base = ct_memory_get_stats(CT_CPU).in_use;
    ct_tensor *logits = ct_llama_forward(m, ids, NULL);
    CHECK(logits != NULL, "%s", ct_last_error());
    const size_t peak = ct_memory_get_stats(CT_CPU).peak_in_use - base;
    ct_set_grad_enabled(was);
    ct_scope_end();
    return peak;
}

static void check_peak_flat_in_layers(void) {
    ct_llama *two = model(2), *twelve = model(12);
    if (!two || !twelve) return;
    const size_t a = nograd_peak(two), b = nograd_peak(twelve);
    /* Ten more blocks may add their outputs ([2, 33, 64] f32 each, and a tensor header), not
     * their activations (q, k, v, attention, the MLP's 176-wide products: ~100 KB a block). */
    const size_t output = sizeof(float) * 2 * 33 * 64, allowed = 10 * (output + 1024);
    CHECK(b <= a + allowed, "no-grad forward arena peak: %zu bytes with 12 layers, %zu with 2 (at most %zu more)", b,
          a, allowed);
    printf("no-grad forward arena peak: 2 layers %zu bytes, 12 layers %zu bytes (allowed %zu)\n", a, b, a + allowed);
    ct_llama_free(two);
    ct_llama_free(twelve);
}

/* The no-grad forward computes what the taped one does, bit for bit, and so does a cached one. */
static void check_same_logits(void) {
    ct_llama *m = model(3);
    if (!m) return;
    ct_scope_begin();
    ct_tensor *ids = batch(2, 9);
    ct_tensor *taped = ct_llama_forward(m, ids, NULL);
    const bool was = ct_set_grad_enabled(false);
    ct_tensor *plain = ct_llama_forward(m, ids, NULL);
    ct_kv_cache cache = {0};
    CHECK(ct_kv_cache_init(&cache, &m->config, 2, 9) == 0, "%s", ct_last_error());
    ct_llama_forward_args args = {.cache = &cache};
    ct_tensor *cached = ct_llama_forward(m, ids, &args);
    ct_set_grad_enabled(was);
    CHECK(taped && taped->node, "the taped forward recorded nothing: %s", ct_last_error());
    CHECK(plain && !memcmp(plain->data, taped->data, ct_nbytes(taped)), "no-grad logits differ from the taped ones");
    CHECK(cached && !memcmp(cached->data, taped->data, ct_nbytes(taped)), "cached logits differ from the taped ones");
    ct_kv_cache_free(&cache);
    ct_scope_end();
    ct_llama_free(m);
}

int main(void) {
    check_peak_flat_in_layers();
    check_same_logits();
    return ct_test_finish("test_nograd_memory");
}
