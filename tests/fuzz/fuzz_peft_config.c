/* A PEFT adapter_config.json: read, matched against module paths, written back as JSON. */
#include "fuzz_util.h"

#include "checkpoints/peft.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = ct_fuzz_write("adapter_config.json", data, size);
    ct_peft_config cfg;
    ct_peft_config_init(&cfg);
    if (ct_peft_config_read(path, &cfg) == 0) {
        static const char *const modules[] = {"model.layers.0.self_attn.q_proj", "model.layers.17.mlp.down_proj",
                                              "lm_head", "model.h.3.attn.c_attn", "layers.2.v_proj"};
        for (size_t i = 0; i < sizeof modules / sizeof *modules; i++) {
            ct_peft_targets(&cfg, modules[i]);
            ct_peft_saves(&cfg, modules[i]);
        }
        ct_peft_scale(&cfg);
        free(ct_peft_config_to_json(&cfg));
    }
    ct_peft_config_free(&cfg);
    ct_peft_key key;
    char *name = ct_fuzz_cstr(data, size < 256 ? size : 256);
    ct_peft_parse_key(name, &key);
    free(name);
    return 0;
}
