// llama-probe: a small client of llama.cpp's C API (llama.h) for ctune's integration tests.
// tests/integration/build_llama_cpp.sh compiles it against the cached llama.cpp build.
//
//   llama-probe --model M.gguf --tokenize FILE
//       prints the token ids of FILE's bytes on one line (no BOS/EOS added, special-token text
//       not matched: what `ctune tokenize --file FILE` does by default)
//   llama-probe --model M.gguf [--lora A.gguf [--lora-scale S]] --logits IDS --out OUT.bin
//       for each line of IDS (token ids separated by spaces) runs the sequence from position 0
//       with logits at every position, and appends them to OUT.bin as raw f32 [T, n_vocab];
//       prints "T n_vocab" per sequence (the format of `ctune logits`)
//
// The context keeps K and V in f32 and flash attention off, so f32 models are compared with
// f32 arithmetic all the way (llama.cpp's default f16 cache alone moves logits by ~1e-3).
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "llama.h"

static void quiet_log(ggml_log_level level, const char *text, void *) {
    if (level >= GGML_LOG_LEVEL_ERROR) fputs(text, stderr);
}

static int fail(const char *what, const std::string &detail) {
    fprintf(stderr, "llama-probe: %s%s\n", what, detail.c_str());
    return 1;
}

static int tokenize(const llama_vocab *vocab, const char *path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return fail("cannot open ", path);
    std::stringstream ss;
    ss << in.rdbuf();
    const std::string text = ss.str();
    std::vector<llama_token> ids(text.size() + 16);
    int n = llama_tokenize(vocab, text.data(), (int32_t)text.size(), ids.data(), (int32_t)ids.size(), false, false);
    if (n < 0) return fail("tokenize failed for ", path);
    for (int i = 0; i < n; i++) printf(i ? " %d" : "%d", ids[i]);
    printf("\n");
    return 0;
}

static int logits(llama_model *model, llama_adapter_lora *lora, float lora_scale, const char *ids_path,
                  const char *out_path) {
    std::ifstream in(ids_path);
    if (!in) return fail("cannot open ", ids_path);
    std::vector<std::vector<llama_token>> seqs;
    size_t longest = 0;
    for (std::string line; std::getline(in, line);) {
        std::istringstream ls(line);
        std::vector<llama_token> ids;
        for (long v; ls >> v;) ids.push_back((llama_token)v);
        if (ids.empty()) return fail("an empty line in ", ids_path);
        longest = ids.size() > longest ? ids.size() : longest;
        seqs.push_back(ids);
    }
    llama_context_params cp = llama_context_default_params();
    cp.n_ctx = (uint32_t)(longest < 256 ? 256 : longest);
    cp.n_batch = cp.n_ubatch = cp.n_ctx;
    cp.n_seq_max = 1;
    cp.n_threads = cp.n_threads_batch = 2;
    cp.type_k = cp.type_v = GGML_TYPE_F32;
    cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
    llama_context *ctx = llama_init_from_model(model, cp);
    if (!ctx) return fail("cannot make a context", "");
    if (lora && llama_set_adapters_lora(ctx, &lora, 1, &lora_scale) != 0) return fail("cannot set the adapter", "");
    FILE *out = fopen(out_path, "wb");
    if (!out) return fail("cannot create ", out_path);
    const int n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(model));
    for (const auto &ids : seqs) {
        llama_memory_clear(llama_get_memory(ctx), true);
        llama_batch batch = llama_batch_init((int32_t)ids.size(), 0, 1);
        for (size_t i = 0; i < ids.size(); i++) {
            batch.token[i] = ids[i];
            batch.pos[i] = (llama_pos)i;
            batch.n_seq_id[i] = 1;
            batch.seq_id[i][0] = 0;
            batch.logits[i] = 1;
        }
        batch.n_tokens = (int32_t)ids.size();
        if (llama_decode(ctx, batch) != 0) return fail("llama_decode failed", "");
        for (size_t i = 0; i < ids.size(); i++) {
            const float *row = llama_get_logits_ith(ctx, (int32_t)i);
            if (!row || fwrite(row, sizeof(float), (size_t)n_vocab, out) != (size_t)n_vocab)
                return fail("cannot write ", out_path);
        }
        llama_batch_free(batch);
        printf("%zu %d\n", ids.size(), n_vocab);
    }
    fclose(out);
    llama_free(ctx);
    return 0;
}

int main(int argc, char **argv) {
    const char *model_path = nullptr, *lora_path = nullptr, *tok_path = nullptr, *ids_path = nullptr,
               *out_path = nullptr;
    float lora_scale = 1.0f;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string arg = argv[i];
        if (arg == "--model") model_path = argv[i + 1];
        else if (arg == "--lora") lora_path = argv[i + 1];
        else if (arg == "--lora-scale") lora_scale = strtof(argv[i + 1], nullptr);
        else if (arg == "--tokenize") tok_path = argv[i + 1];
        else if (arg == "--logits") ids_path = argv[i + 1];
        else if (arg == "--out") out_path = argv[i + 1];
        else return fail("unknown option ", arg);
    }
    if (!model_path || (!tok_path && !(ids_path && out_path)))
        return fail("usage: --model M (--tokenize FILE | --logits IDS --out OUT) [--lora A [--lora-scale S]]", "");
    llama_log_set(quiet_log, nullptr);
    llama_backend_init();
    llama_model_params mp = llama_model_default_params();
    llama_model *model = llama_model_load_from_file(model_path, mp);
    if (!model) return fail("cannot load ", model_path);
    int rc;
    if (tok_path) rc = tokenize(llama_model_get_vocab(model), tok_path);
    else {
        llama_adapter_lora *lora = nullptr;
        if (lora_path && !(lora = llama_adapter_lora_init(model, lora_path))) return fail("cannot load the adapter ", lora_path);
        rc = logits(model, lora, lora_scale, ids_path, out_path);
    }
    llama_model_free(model);
    llama_backend_free();
    return rc;
}
