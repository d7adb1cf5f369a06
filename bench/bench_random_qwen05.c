/* Writes a Qwen2.5-0.5B-shaped model with random weights, in bf16 as the real checkpoint ships,
 * for the memory and step-time benchmark of bench/compare_lora_memory.sh: hidden 896, 24 layers,
 * 14 query heads and 2 key/value heads of 64, MLP 4864, vocabulary 151936, tied embeddings,
 * q/k/v biases, RoPE theta 1e6 (494,032,768 parameters). The tokenizer files are copied from the
 * given folder (any byte-level BPE tokenizer of at most 151936 ids).
 *   bench_random_qwen05 OUT_DIR TOKENIZER_DIR */
#include <stdio.h>

#include "core/error.h"
#include "models/llama.h"

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s OUT_DIR TOKENIZER_DIR\n", argv[0]);
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
    const int rc = ct_llama_save(m, argv[1], argv[2], CT_BF16);
    if (rc < 0) fprintf(stderr, "bench_random_qwen05: %s\n", ct_last_error());
    else printf("%s: %lld parameters, bf16\n", argv[1], (long long)ct_llama_num_params(m));
    ct_llama_free(m);
    return rc < 0 ? 1 : 0;
}
