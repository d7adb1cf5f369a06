/* A Hugging Face config.json: parsed, validated, and its parameter count computed. */
#include "fuzz_util.h"

#include "models/llama_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = ct_fuzz_cstr(data, size);
    ct_llama_config cfg;
    if (ct_llama_config_parse(text, "config.json", &cfg) == 0 && ct_llama_config_validate(&cfg, "config.json") == 0) {
        ct_llama_config_num_params(&cfg);
        char *json = ct_llama_config_to_json(&cfg, text, CT_F32);
        free(json);
    }
    free(text);
    return 0;
}
