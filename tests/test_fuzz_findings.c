/* What fuzzing the readers found (tests/fuzz/, docs/reliability.md), each as a plain check
 * that fails without its fix, beside the crashing inputs that tests/fuzz/regressions/ replays
 * under ASan (leaks show only there). */
#include <cjson/cJSON.h>
#include <stdint.h>

#include "checkpoints/peft.h"
#include "checkpoints/safetensors.h"
#include "core/error.h"
#include "ct_test.h"
#include "datasets/tokenizer.h"
#include "models/llama_config.h"

/* A base config.json holding a key in another case ("Hidden_Size", "initializeR_range"):
 * cJSON_HasObjectItem ignored case, the case-sensitive replace then failed, and the written
 * config lacked the key transformers reads. */
static void test_config_key_case(void) {
    ct_llama_config cfg;
    const char *path = ct_test_path("tests/fixtures/models/llama/config.json");
    CHECK(ct_llama_config_load(path, &cfg) == 0, "load: %s", ct_last_error());
    const char *base = "{\"Hidden_Size\": 7, \"initializeR_range\": 0.5, \"model_type\": \"llama\"}";
    char *json = ct_llama_config_to_json(&cfg, base, CT_F32);
    CHECK(json != NULL, "to_json: %s", ct_last_error());
    cJSON *root = json ? cJSON_Parse(json) : NULL;
    const cJSON *hidden = cJSON_GetObjectItemCaseSensitive(root, "hidden_size");
    const cJSON *range = cJSON_GetObjectItemCaseSensitive(root, "initializer_range");
    CHECK(cJSON_IsNumber(hidden) && hidden->valuedouble == (double)cfg.hidden_size,
          "hidden_size written beside Hidden_Size: %s", json ? json : "(null)");
    CHECK(cJSON_IsNumber(range), "initializer_range written beside initializeR_range");
    /* keys ctune does not own pass through as they were */
    CHECK(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(root, "Hidden_Size")), "Hidden_Size kept");
    cJSON_Delete(root);
    free(json);
}

/* The same in tokenizer_config.json: a "Chat_Template" key made saving the template fail with
 * "out of memory". */
static void test_chat_template_key_case(void) {
    char dir[128];
    if (!ct_test_temp_dir(dir, sizeof dir, "fuzz_findings")) return;
    const char *config = ct_test_path_in(dir, "tokenizer_config.json");
    FILE *f = fopen(config, "w");
    fputs("{\"Chat_Template\": \"old\"}", f);
    fclose(f);
    CHECK(ct_chat_template_save(dir, CT_CHAT_CHATML, NULL) == 0, "save: %s", ct_last_error());
    char *text = ct_test_read_file(config, NULL);
    cJSON *root = text ? cJSON_Parse(text) : NULL;
    CHECK(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(root, "chat_template")), "chat_template set: %s",
          text ? text : "(null)");
    cJSON_Delete(root);
    free(text);
    ct_test_remove_tree(dir);
}

/* A safetensors header with "__metadata__" twice: the second was appended past the arrays sized
 * for the first (heap overflow under ASan; silent memory corruption without it). */
static void test_safetensors_metadata_twice(void) {
    char dir[128];
    if (!ct_test_temp_dir(dir, sizeof dir, "fuzz_findings")) return;
    const char *path = ct_test_path_in(dir, "twice.safetensors");
    const char header[] = "{\"__metadata__\":{\"format\":\"pt\"},\"__metadata__\":{\"a\":\"1\",\"b\":\"2\",\"c\":\"3\"},"
                          "\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}";
    uint64_t n = sizeof header - 1;
    FILE *f = fopen(path, "wb");
    float value = 1.0f;
    fwrite(&n, 8, 1, f);
    fwrite(header, 1, n, f);
    fwrite(&value, 4, 1, f);
    fclose(f);
    ct_safetensors *st = ct_safetensors_open(path);
    CHECK(st == NULL && strstr(ct_last_error(), "__metadata__") && strstr(ct_last_error(), "twice"),
          "a repeated __metadata__ is refused: %s", st ? "(opened)" : ct_last_error());
    ct_safetensors_close(st);
    ct_test_remove_tree(dir);
}

/* An adapter_config.json with "base_model_name_or_path" twice: the second copy replaced the
 * first without freeing it (LeakSanitizer). A key given twice is now refused by name. */
static void test_peft_config_key_twice(void) {
    char dir[128];
    if (!ct_test_temp_dir(dir, sizeof dir, "fuzz_findings")) return;
    const char *path = ct_test_path_in(dir, "adapter_config.json");
    FILE *f = fopen(path, "w");
    fputs("{\"peft_type\": \"LORA\", \"r\": 4, \"lora_alpha\": 8, \"target_modules\": [\"q_proj\"],"
          " \"base_model_name_or_path\": \"a\", \"base_model_name_or_path\": \"b\"}", f);
    fclose(f);
    ct_peft_config cfg;
    int rc = ct_peft_config_read(path, &cfg);
    CHECK(rc < 0 && strstr(ct_last_error(), "base_model_name_or_path") && strstr(ct_last_error(), "twice"),
          "a key given twice is refused: %s", rc < 0 ? ct_last_error() : "(read)");
    ct_peft_config_free(&cfg);
    ct_test_remove_tree(dir);
}

/* A tokenizer.json naming token id 1,000,000,000: the id table, as long as the largest id, asked
 * for 10 GB (libFuzzer's malloc limit), and an id past 2^30 overflowed its doubling. Refused by
 * name. */
static void test_huge_token_id(void) {
    const char *form = "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": %d}, \"merges\": []}}";
    char json[256];
    snprintf(json, sizeof json, form, 1000000000);
    ct_tokenizer *tok = ct_tokenizer_load_text(json, strlen(json), "huge.json");
    CHECK(!tok && strstr(ct_last_error(), "huge.json") && strstr(ct_last_error(), "token id 1000000000"),
          "a huge token id is refused by name: %s", tok ? "(loaded)" : ct_last_error());
    ct_tokenizer_free(tok);
    /* an id under the limit passes this check and fails later, on what the file lacks */
    snprintf(json, sizeof json, form, 1 << 20);
    tok = ct_tokenizer_load_text(json, strlen(json), "sparse.json");
    CHECK(!tok && !strstr(ct_last_error(), "token id"), "id 2^20 refused as too large: %s",
          tok ? "(loaded)" : ct_last_error());
    ct_tokenizer_free(tok);
}

int main(void) {
    test_huge_token_id();
    test_peft_config_key_twice();
    test_safetensors_metadata_twice();
    test_config_key_case();
    test_chat_template_key_case();
    return ct_test_finish("test_fuzz_findings");
}
