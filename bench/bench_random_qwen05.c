/* Writes a Qwen2.5-0.5B-shaped model with random weights, for memory and speed measurements on a
 * real model's shapes without downloading one: hidden 896, 24 layers, 14 query heads and 2
 * key/value heads of 64, MLP 4864, vocabulary 151936, tied embeddings, q/k/v biases, RoPE theta
 * 1e6 (494,032,768 parameters). Stored in bf16 as the real checkpoint ships
 * (bench/compare_lora_memory.sh) or in f32 (bench/int8_memory.sh). The tokenizer files are copied
 * from the given folder (any byte-level BPE tokenizer of at most 151936 ids). Prints one JSON line.
 *   bench_random_qwen05 OUT_DIR TOKENIZER_DIR [bf16|f32]      (default bf16) */
#include <stdio.h>
#include <string.h>

#include "core/error.h"
#include "models/llama.h"

int main(int argc, char **argv) {
    if (argc != 3 && argc != 4) {
        fprintf(stderr, "usage: %s OUT_DIR TOKENIZER_DIR [bf16|f32]\n", argv[0]);
        return 2;
    }
    const char *dtype_name = argc == 4 ? argv[3] : "bf16";
    if (strcmp(dtype_name, "bf16") && strcmp(dtype_name, "f32")) {
        fprintf(stderr, "bench_random_qwen05: dtype %s: bf16 or f32\n", dtype_name);
        return 2;
    }
    ct_llama_config cfg;
    ct_llama_config_defaults(&cfg, CT_ARCH_QWEN2);
    cfg.hidden_size = 896;
    cfg.intermediate_size = 4864;
    cfg.num_hidden_layers = 24;
    cfg.num_attention_heads = 14;
    cfg.num_key_value_heads = 2;
    cfg.head_dim = 64;
    cfg.vocab_size = 151936;
    cfg.max_position_embeddings = 32768;
    cfg.rope_theta = 1000000.0;
    cfg.rms_norm_eps = 1e-6;
    cfg.initializer_range = 0.02;
    cfg.tie_word_embeddings = true;
    ct_llama *m = ct_llama_new(&cfg);
    if (!m) {
        fprintf(stderr, "bench_random_qwen05: %s\n", ct_last_error());
        return 1;
    }
    ct_llama_init_random(m, 20261207);
    const int rc = ct_llama_save(m, argv[1], argv[2], strcmp(dtype_name, "f32") ? CT_BF16 : CT_F32);
    if (rc < 0)
        fprintf(stderr, "bench_random_qwen05: %s\n", ct_last_error());
    else
        printf("{\"bench\": \"random_model\", \"model\": \"Qwen2.5-0.5B shapes\", \"dtype\": \"%s\", \"params\": %lld, "
               "\"out\": \"%s\"}\n",
               dtype_name, (long long)ct_llama_num_params(m), argv[1]);
    ct_llama_free(m);
    return rc < 0 ? 1 : 0;
}
