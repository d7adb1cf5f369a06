/* PEFT adapter folders (checkpoints/peft.h) against the files peft itself wrote
 * (tests/fixtures/lora/, made by tests/reference/make_lora_fixtures.py with peft 0.21.2): every
 * fixture's config and tensors read, keys and configs round trip, the written config has exactly
 * the keys of peft's, and each refused setting is a one-line error naming the file and the key. */
#include <cjson/cJSON.h>
#include <math.h>
#include <string.h>
#include <unistd.h>

#include "checkpoints/peft.h"
#include "core/error.h"
#include "core/tensor.h"
#include "tests/ct_test.h"

static char dir[64];

static const char *fixture(const char *name, const char *file) {
    char rel[256];
    snprintf(rel, sizeof rel, "tests/fixtures/lora/%s%s%s", name, file ? "/" : "", file ? file : "");
    return ct_test_path(rel);
}

/* What make_lora_fixtures.py asked peft for, checked against what was read. */
static void test_fixture_configs(void) {
    ct_peft_config c;
    CHECK(ct_peft_config_read(fixture("llama_qv", NULL), &c) == 0, "%s", ct_last_error());
    CHECK(c.r == 4 && c.lora_alpha == 8 && c.lora_dropout == 0 && !c.use_rslora, "llama_qv r %d alpha %g", c.r, c.lora_alpha);
    /* peft writes the list from a set: either order. */
    CHECK(c.n_target_modules == 2 && strcmp(c.target_modules[0], c.target_modules[1]) &&
          (!strcmp(c.target_modules[0], "q_proj") || !strcmp(c.target_modules[0], "v_proj")) &&
          (!strcmp(c.target_modules[1], "q_proj") || !strcmp(c.target_modules[1], "v_proj")), "llama_qv targets");
    CHECK(!c.layers_to_transform && !c.modules_to_save && c.init_lora_weights == CT_PEFT_INIT_DEFAULT, "llama_qv defaults");
    CHECK(c.task_type && !strcmp(c.task_type, "CAUSAL_LM") && c.inference_mode, "llama_qv task");
    CHECK(fabs(ct_peft_scale(&c) - 2.0) < 1e-15, "scale %g", ct_peft_scale(&c));
    CHECK(ct_peft_targets(&c, "model.layers.2.self_attn.q_proj") && !ct_peft_targets(&c, "model.layers.2.self_attn.k_proj"),
          "llama_qv targets q_proj, not k_proj");
    ct_peft_config_free(&c);

    CHECK(ct_peft_config_read(fixture("qwen2_rslora", "adapter_config.json"), &c) == 0, "%s", ct_last_error());
    CHECK(c.r == 8 && c.lora_alpha == 16 && c.use_rslora, "qwen2_rslora r %d alpha %g", c.r, c.lora_alpha);
    CHECK(fabs(ct_peft_scale(&c) - 16.0 / sqrt(8.0)) < 1e-15, "rsLoRA scale %g", ct_peft_scale(&c));
    CHECK(c.n_layers_to_transform == 2 && c.layers_to_transform[0] == 0 && c.layers_to_transform[1] == 2, "layers");
    CHECK(ct_peft_targets(&c, "model.layers.2.mlp.down_proj") && !ct_peft_targets(&c, "model.layers.1.mlp.down_proj") &&
          !ct_peft_targets(&c, "model.layers.0.mlp.up_proj"), "layers_to_transform [0, 2]");
    ct_peft_config_free(&c);

    CHECK(ct_peft_config_read(fixture("qwen3_all_linear", NULL), &c) == 0, "%s", ct_last_error());
    /* peft saves "all-linear" as the module paths it matched: 7 linears x 2 layers. */
    CHECK(!c.target_all_linear && c.n_target_modules == 14, "all-linear saved as %d paths", c.n_target_modules);
    CHECK(ct_peft_targets(&c, "model.layers.1.mlp.gate_proj") && !ct_peft_targets(&c, "lm_head"), "all-linear paths");
    ct_peft_config_free(&c);

    CHECK(ct_peft_config_read(fixture("qwen2_modules_to_save", NULL), &c) == 0, "%s", ct_last_error());
    CHECK(c.n_modules_to_save == 1 && !strcmp(c.modules_to_save[0], "lm_head"), "modules_to_save");
    CHECK(ct_peft_saves(&c, "lm_head") && !ct_peft_saves(&c, "model.embed_tokens") && !ct_peft_targets(&c, "lm_head"),
          "lm_head saved, not adapted");
    ct_peft_config_free(&c);
}

/* Tensor counts and shapes follow from the model fixtures' configs. */
static void test_fixture_tensors(void) {
    static const struct { const char *name; int n; } cases[] = {
        {"llama_qv", 12}, {"qwen2_rslora", 16}, {"qwen3_all_linear", 28}, {"qwen2_modules_to_save", 13}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ct_peft_adapter *ad = ct_peft_adapter_open(fixture(cases[i].name, NULL));
        CHECK(ad != NULL, "%s: %s", cases[i].name, ct_last_error());
        if (!ad) continue;
        CHECK(ad->n_keys == cases[i].n, "%s: %d tensors", cases[i].name, ad->n_keys);
        for (int k = 0; k < ad->n_keys; k++) {
            char back[512];
            const ct_peft_key *key = &ad->keys[k];
            CHECK(ct_peft_key_name(back, sizeof back, key->module, key->kind, key->param) == 0 &&
                  !strcmp(back, ct_safetensors_at(ad->tensors, k)->name), "key round trip %s -> %s",
                  ct_safetensors_at(ad->tensors, k)->name, back);
        }
        ct_peft_adapter_close(ad);
    }
    ct_peft_adapter *ad = ct_peft_adapter_open(fixture("llama_qv", NULL));
    if (!ad) return;
    /* llama: hidden 64, 4 heads, 2 kv heads of 16: v_proj is 32 x 64. */
    int64_t shape_b[2] = {32, 4}, wrong[2] = {4, 32};
    ct_tensor *b = ct_tensor_new(CT_F32, 2, shape_b, "v_proj.lora_B");
    ct_tensor *w = ct_tensor_new(CT_F32, 2, wrong, "wrong");
    CHECK(ct_peft_load_into(ad, "model.layers.1.self_attn.v_proj", CT_PEFT_LORA_B, NULL, b) == 0, "%s", ct_last_error());
    float norm = 0;
    for (int i = 0; i < 32 * 4; i++) norm += ((float *)b->data)[i] * ((float *)b->data)[i];
    CHECK(norm > 0, "lora_B was set non-zero by the fixture script");
    CHECK(ct_peft_load_into(ad, "model.layers.1.self_attn.v_proj", CT_PEFT_LORA_B, NULL, w) < 0 &&
          strstr(ct_last_error(), "v_proj.lora_B.weight") && strstr(ct_last_error(), "32"), "shape mismatch: %s",
          ct_last_error());
    CHECK(ct_peft_find(ad, "model.layers.1.self_attn.k_proj", CT_PEFT_LORA_A, NULL) == NULL &&
          strstr(ct_last_error(), "k_proj.lora_A.weight"), "absent: %s", ct_last_error());
    ct_tensor_free(b);
    ct_tensor_free(w);
    ct_peft_adapter_close(ad);
}

static void test_keys(void) {
    ct_peft_key k;
    CHECK(ct_peft_parse_key("base_model.model.model.layers.3.self_attn.q_proj.lora_A.weight", &k) == 0 &&
          k.kind == CT_PEFT_LORA_A && k.layer == 3 && !strcmp(k.module, "model.layers.3.self_attn.q_proj"), "A key");
    CHECK(ct_peft_parse_key("base_model.model.model.layers.12.mlp.down_proj.lora_B.weight", &k) == 0 &&
          k.kind == CT_PEFT_LORA_B && k.layer == 12 && !strcmp(k.module, "model.layers.12.mlp.down_proj"), "B key");
    /* What peft 0.21.2's save_pretrained writes for modules_to_save=["lm_head"]. */
    CHECK(ct_peft_parse_key("base_model.model.lm_head.weight", &k) == 0 && k.kind == CT_PEFT_SAVED && k.layer == -1 &&
          !strcmp(k.module, "lm_head") && !strcmp(k.param, "weight"), "saved key");
    CHECK(ct_peft_parse_key("model.layers.0.self_attn.q_proj.lora_A.weight", &k) < 0 &&
          strstr(ct_last_error(), "base_model.model."), "prefix: %s", ct_last_error());
    /* DoRA's magnitude as peft 0.21.2 saves it: no ".weight" (in memory it is
     * lora_magnitude_vector.default.weight). */
    CHECK(ct_peft_parse_key("base_model.model.model.layers.0.self_attn.q_proj.lora_magnitude_vector", &k) == 0 &&
              k.kind == CT_PEFT_MAGNITUDE && k.layer == 0 && !strcmp(k.module, "model.layers.0.self_attn.q_proj"),
          "DoRA magnitude key: %s", ct_last_error());
    CHECK(ct_peft_parse_key("base_model.model.model.layers.0.self_attn.q_proj.lora_magnitude_vector.weight", &k) < 0 &&
              strstr(ct_last_error(), "lora_magnitude_vector.weight"),
          "a magnitude key with .weight: %s", ct_last_error());
    char buf[128];
    CHECK(ct_peft_key_name(buf, sizeof buf, "model.layers.0.mlp.up_proj", CT_PEFT_LORA_B, NULL) == 0 &&
          !strcmp(buf, "base_model.model.model.layers.0.mlp.up_proj.lora_B.weight"), "%s", buf);
    CHECK(ct_peft_key_name(buf, 20, "model.layers.0.mlp.up_proj", CT_PEFT_LORA_B, NULL) < 0, "too long");
}

/* The keys of a JSON object, sorted, one string. */
static void key_list(const cJSON *o, char *out, size_t cap) {
    out[0] = '\0';
    const cJSON *v;
    cJSON_ArrayForEach(v, o) {
        strncat(out, v->string, cap - strlen(out) - 2);
        strncat(out, ",", cap - strlen(out) - 1);
    }
}

static void test_config_round_trip(void) {
    const char *names[] = {"llama_qv", "qwen2_rslora", "qwen3_all_linear", "qwen2_modules_to_save"};
    for (size_t i = 0; i < 4; i++) {
        ct_peft_config a, b;
        if (ct_peft_config_read(fixture(names[i], NULL), &a) < 0) continue;
        const char *out = ct_test_path_in(dir, "adapter_config.json");
        CHECK(ct_peft_config_write(out, &a) == 0, "%s", ct_last_error());
        CHECK(ct_peft_config_read(out, &b) == 0, "%s: %s", names[i], ct_last_error());
        char *ja = ct_peft_config_to_json(&a), *jb = ct_peft_config_to_json(&b);
        CHECK(ja && jb && !strcmp(ja, jb), "%s: config changed in a round trip", names[i]);
        /* Every value peft wrote is the value written back (JSON numbers compared as numbers). */
        char *theirs = ct_test_read_file(fixture(names[i], "adapter_config.json"), NULL);
        cJSON *jt = cJSON_Parse(theirs), *jo = cJSON_Parse(ja);
        char kt[4096], ko[4096];
        key_list(jt, kt, sizeof kt);
        key_list(jo, ko, sizeof ko);
        CHECK(!strcmp(kt, ko), "%s: keys differ:\n peft  %s\n ctune %s", names[i], kt, ko);
        const cJSON *v;
        cJSON_ArrayForEach(v, jt) {
            if (!strcmp(v->string, "peft_version")) continue;
            CHECK(cJSON_Compare(v, cJSON_GetObjectItemCaseSensitive(jo, v->string), true), "%s: value of %s differs",
                  names[i], v->string);
        }
        cJSON_Delete(jt);
        cJSON_Delete(jo);
        free(theirs);
        free(ja);
        free(jb);
        ct_peft_config_free(&a);
        ct_peft_config_free(&b);
    }
}

/* One refused change of a fixture's config: read must fail naming the file and `named`, on one line. */
static void refused(const char *key, const char *json_value, const char *named) {
    char *text = ct_test_read_file(fixture("llama_qv", "adapter_config.json"), NULL);
    cJSON *root = cJSON_Parse(text);
    free(text);
    if (json_value) {
        cJSON *value = cJSON_Parse(json_value);
        if (cJSON_GetObjectItemCaseSensitive(root, key)) cJSON_ReplaceItemInObjectCaseSensitive(root, key, value);
        else cJSON_AddItemToObject(root, key, value);
    }
    if (!json_value) cJSON_DeleteItemFromObjectCaseSensitive(root, key);
    char *out = cJSON_Print(root);
    const char *path = ct_test_path_in(dir, "bad_config.json");
    FILE *f = fopen(path, "w");
    fputs(out, f);
    fclose(f);
    ct_peft_config c;
    int rc = ct_peft_config_read(path, &c);
    const char *e = ct_last_error();
    CHECK(rc < 0 && strstr(e, path) && strstr(e, named) && !strchr(e, '\n'), "%s=%s: rc %d, message: %s", key,
          json_value ? json_value : "(removed)", rc, e);
    cJSON_Delete(root);
    free(out);
}

static void test_refusals(void) {
    refused("made_up_field", "1", "\"made_up_field\"");
    refused("bias", "\"all\"", "\"bias\": \"all\"");
    refused("peft_type", "\"IA3\"", "\"peft_type\": \"IA3\"");
    refused("target_modules", "\".*q_proj\"", "\"target_modules\": \".*q_proj\"");
    refused("fan_in_fan_out", "true", "\"fan_in_fan_out\"");
    refused("rank_pattern", "{\"q_proj\": 8}", "\"rank_pattern\"");
    refused("alpha_pattern", "{\"q_proj\": 8}", "\"alpha_pattern\"");
    refused("use_dora", "\"yes\"", "\"use_dora\"");
    refused("init_lora_weights", "\"pissa\"", "\"init_lora_weights\": \"pissa\"");
    refused("task_type", "\"SEQ_CLS\"", "\"task_type\"");
    refused("r", NULL, "\"r\"");
    refused("r", "0", "\"r\"");
    refused("lora_dropout", "1.5", "\"lora_dropout\"");
    /* Harmless keys pass: a hub revision and peft's own version. */
    char *text = ct_test_read_file(fixture("llama_qv", "adapter_config.json"), NULL);
    cJSON *root = cJSON_Parse(text);
    cJSON_ReplaceItemInObjectCaseSensitive(root, "revision", cJSON_CreateString("main"));
    cJSON_ReplaceItemInObjectCaseSensitive(root, "peft_version", cJSON_CreateString("0.99.0"));
    char *out = cJSON_Print(root);
    const char *path = ct_test_path_in(dir, "ok_config.json");
    FILE *f = fopen(path, "w");
    fputs(out, f);
    fclose(f);
    ct_peft_config c;
    CHECK(ct_peft_config_read(path, &c) == 0 && c.revision && !strcmp(c.revision, "main"), "%s", ct_last_error());
    ct_peft_config_free(&c);
    cJSON_Delete(root);
    free(out);
    free(text);
}

/* A written adapter reads back equal; a refused one writes nothing. */
static void test_adapter_write(void) {
    ct_peft_adapter *src = ct_peft_adapter_open(fixture("qwen2_modules_to_save", NULL));
    if (!src) return;
    ct_peft_item items[16];
    ct_tensor *tensors[16];
    int n = src->n_keys;
    for (int i = 0; i < n && i < 16; i++) {
        const ct_st_tensor *t = ct_safetensors_at(src->tensors, i);
        tensors[i] = ct_tensor_new(CT_F32, 2, t->shape, "copy");
        ct_safetensors_load_into(src->tensors, t->name, tensors[i]);
        items[i] = (ct_peft_item){src->keys[i].module, src->keys[i].kind, src->keys[i].param, tensors[i]};
    }
    char out[128];
    snprintf(out, sizeof out, "%s/written", dir);
    CHECK(ct_peft_adapter_write(out, &src->config, items, n) == 0, "%s", ct_last_error());
    ct_peft_adapter *back = ct_peft_adapter_open(out);
    CHECK(back && back->n_keys == n, "%s", ct_last_error());
    for (int i = 0; back && i < n; i++) {
        const ct_st_tensor *a = ct_safetensors_at(src->tensors, i), *b = ct_safetensors_at(back->tensors, i);
        CHECK(!strcmp(a->name, b->name) && a->nbytes == b->nbytes && !memcmp(a->bytes, b->bytes, a->nbytes), "%s", a->name);
    }
    ct_peft_adapter_close(back);

    /* A lora_A without its lora_B (keys are sorted: lm_head first, then layer 0's q_proj A):
     * refused, nothing written. */
    char bad[128];
    snprintf(bad, sizeof bad, "%s/refused", dir);
    ct_peft_item one = items[1];
    CHECK(one.kind == CT_PEFT_LORA_A, "item 1 is a lora_A");
    CHECK(ct_peft_adapter_write(bad, &src->config, &one, 1) < 0 && strstr(ct_last_error(), "lora_B") &&
          access(bad, F_OK) != 0, "unpaired: %s", ct_last_error());
    for (int i = 0; i < n; i++) ct_tensor_free(tensors[i]);
    ct_peft_adapter_close(src);
}

int main(void) {
    if (!ct_test_temp_dir(dir, sizeof dir, "peft")) return 1;
    test_fixture_configs();
    test_fixture_tensors();
    test_keys();
    test_config_round_trip();
    test_refusals();
    test_adapter_write();
    ct_test_remove_tree(dir);
    return ct_test_finish("test_peft");
}
