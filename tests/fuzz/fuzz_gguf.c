/* A GGUF file: the header (key-values, tensor infos) parsed in memory and walked with the typed
 * getters, the tokenizer rebuilt from its keys, then the file opened as `ctune eval` and
 * `ctune generate` open a .gguf model. */
#include "fuzz_util.h"

#include "checkpoints/gguf.h"
#include "datasets/tokenizer_gguf.h"
#include "train/model_source.h"

static void walk(const ct_gguf *g) {
    for (int64_t i = 0; i < ct_gguf_kv_count(g); i++) ct_gguf_kv_at(g, i);
    for (int64_t i = 0; i < ct_gguf_tensor_count(g); i++) ct_gguf_tensor_at(g, i);
    uint32_t u;
    float f;
    bool b;
    char *s = NULL;
    ct_gguf_get_u32(g, "llama.block_count", false, &u, NULL);
    ct_gguf_get_f32(g, "llama.rope.freq_base", false, &f, NULL);
    ct_gguf_get_bool(g, "tokenizer.ggml.add_bos_token", false, &b, NULL);
    if (ct_gguf_get_string(g, "general.architecture", false, &s) == 0) free(s);
    const ct_gguf_kv *kv = ct_gguf_get_array(g, "tokenizer.ggml.token_type", CT_GGUF_V_I32);
    for (uint64_t i = 0; kv && i < kv->n && i < 16; i++) ct_gguf_array_i32(kv, i);
    free(ct_tokenizer_json_from_gguf(g));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ct_gguf *g = ct_gguf_parse(data, size, "model.gguf");
    if (!g) return 0; /* the model loader starts with the same parse */
    walk(g);
    ct_gguf_close(g);
    const char *path = ct_fuzz_write("model.gguf", data, size);
    ct_model_source source;
    if (ct_model_source_open(&source, path) == 0) ct_model_source_close(&source);
    return 0;
}
