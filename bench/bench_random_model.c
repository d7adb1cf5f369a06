/* Writes a randomly initialized Qwen2.5-0.5B-shaped model (hidden 896, 24 layers, 14 heads, 2 KV
 * heads, intermediate 4864, vocab 151936, tied embedding, q/k/v biases) as an f32 Hugging Face
 * folder, with the tokenizer files of a given folder, for memory and speed measurements on a
 * real model's shapes without downloading one (bench/int8_memory.sh). Prints one JSON line.
 *
 *     ./build/bench_random_model OUT_DIR TOKENIZER_DIR */
#include <stdio.h>

#include "core/error.h"
#include "models/llama.h"

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s OUT_DIR TOKENIZER_DIR\n", argv[0]);
        return 2;
    }
    ct_llama_config c;
    ct_llama_config_defaults(&c, CT_ARCH_QWEN2);
    c.hidden_size = 896;
    c.intermediate_size = 4864;
    c.num_hidden_layers = 24;
    c.num_attention_heads = 14;
    c.num_key_value_heads = 2;
    c.head_dim = 64;
    c.vocab_size = 151936;
    c.max_position_embeddings = 32768;
    c.rope_theta = 1000000.0;
    c.tie_word_embeddings = true;
    ct_llama *m = ct_llama_new(&c);
    if (m) ct_llama_init_random(m, 42);
    int rc = m ? ct_llama_save(m, argv[1], argv[2], CT_F32) : -1;
    if (rc == 0)
        printf("{\"bench\": \"random_model\", \"model\": \"Qwen2.5-0.5B shapes, f32\", \"params\": %lld, \"out\": \"%s\"}\n",
               (long long)ct_llama_num_params(m), argv[1]);
    else
        fprintf(stderr, "bench_random_model: %s\n", ct_last_error());
    ct_llama_free(m);
    return rc < 0 ? 1 : 0;
}
