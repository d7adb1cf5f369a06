/* What a model folder carries for serving (train/model_task.h, datasets/chat_template_jinja.c):
 *
 * - the Jinja chat_template: its exact text, written out by hand here, for ChatML and LLaMA 3,
 *   with a default system prompt full of characters a Jinja string literal must escape;
 * - the C renderer's default system message: a conversation without a system message renders
 *   exactly as one that starts with the prompt (text written out by hand, both families), one
 *   with its own system message gets no second one, and the default is never a target;
 * - tokenizer_config.json rewritten with the template, its other keys kept;
 * - ctune_task.json and labels.json: written from a recipe, read back field by field, the label
 *   set copied byte for byte; a missing file is "not found", a damaged one names file and key;
 * - a dialogue with its own system message is trained without a second one.
 * tests/integration/test_chat_template.py renders the same templates with transformers. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "datasets/examples.h"
#include "datasets/label_set.h"
#include "datasets/sft.h"
#include "datasets/tokenizer.h"
#include "tests/ct_test.h"
#include "train/model_task.h"
#include "train/recipe.h"

static char tmp[64];

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL, "cannot write %s", path);
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

/* ---- the Jinja text ---- */

static const char *const tricky = "It's \\ \"q\"\n\t{{ x }}\x01你好";

static void test_jinja_text(void) {
    char *chatml = ct_chat_template_jinja(CT_CHAT_CHATML, tricky);
    const char *want_chatml =
        "{#- Written by ctune: renders what ctune trained on. -#}\n"
        "{%- if messages | length == 0 or messages[0]['role'] != 'system' %}\n"
        "{{- '<|im_start|>system\\n' + 'It\\'s \\\\ \"q\"\\n\\t{{ x }}\\x01你好' + '<|im_end|>\\n' }}\n"
        "{%- endif %}\n"
        "{%- for message in messages %}\n"
        "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}\n"
        "{%- endfor %}\n"
        "{%- if add_generation_prompt %}\n"
        "{{- '<|im_start|>assistant\\n' }}\n"
        "{%- endif %}";
    CHECK(chatml && !strcmp(chatml, want_chatml), "ChatML template with a default:\n%s", chatml ? chatml : "(null)");
    free(chatml);

    char *plain = ct_chat_template_jinja(CT_CHAT_CHATML, "");
    CHECK(plain && !strstr(plain, "system") && strstr(plain, "{%- for message in messages %}"),
          "no default, no system block: %s", plain ? plain : "(null)");
    free(plain);

    char *llama3 = ct_chat_template_jinja(CT_CHAT_LLAMA3, "Be brief.");
    const char *want_llama3 =
        "{#- Written by ctune: renders what ctune trained on. -#}\n"
        "{{- '<|begin_of_text|>' }}\n"
        "{%- if messages | length == 0 or messages[0]['role'] != 'system' %}\n"
        "{{- '<|start_header_id|>system<|end_header_id|>\\n\\n' + ('Be brief.' | trim) + '<|eot_id|>' }}\n"
        "{%- endif %}\n"
        "{%- for message in messages %}\n"
        "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + (message['content'] | trim) + "
        "'<|eot_id|>' }}\n"
        "{%- endfor %}\n"
        "{%- if add_generation_prompt %}\n"
        "{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}\n"
        "{%- endif %}";
    CHECK(llama3 && !strcmp(llama3, want_llama3), "LLaMA 3 template:\n%s", llama3 ? llama3 : "(null)");
    /* ctune reads its own template back as the family it was written for. */
    ct_chat_format format = 0;
    CHECK(llama3 && ct_chat_format_detect(llama3, &format) == 0 && format == CT_CHAT_LLAMA3, "LLaMA 3 detected");
    free(llama3);
    CHECK(ct_chat_template_jinja((ct_chat_format)7, "x") == NULL && strstr(ct_last_error(), "unknown format"),
          "unknown family refused: %s", ct_last_error());
}

/* ---- the C renderer's default system message ---- */

static char *render(const ct_chat_template *tpl, const ct_chat_message *m, size_t n, int generation, uint8_t **mask_out) {
    ct_token_list ids = {0};
    uint8_t *mask = NULL;
    ct_chat_options options = {.add_generation_prompt = generation};
    char *text = NULL;
    if (ct_chat_encode(tpl, m, n, &options, &ids, &mask) == 0)
        text = ct_tokenizer_decode(tpl->tok, ids.ids, ids.len, 0, NULL);
    CHECK(text != NULL, "render: %s", ct_last_error());
    /* The mask as text: one '1' or '0' per token. */
    if (mask_out) {
        *mask_out = calloc(ids.len + 1, 1);
        for (size_t i = 0; i < ids.len && *mask_out; i++) (*mask_out)[i] = mask[i] ? '1' : '0';
    }
    free(mask);
    ct_token_list_free(&ids);
    return text;
}

static void test_default_system(const char *tokenizer, ct_chat_format format, const char *want_default,
                                const char *want_own) {
    ct_tokenizer *tok = ct_tokenizer_load(ct_test_path(tokenizer));
    CHECK(tok != NULL, "%s: %s", tokenizer, ct_last_error());
    if (!tok) return;
    ct_chat_template tpl;
    CHECK(ct_chat_template_init(&tpl, tok, format) == 0 && tpl.default_system == NULL, "init leaves no default");
    tpl.default_system = " 只回答意图名称 ";
    ct_chat_message user[] = {{"user", "我要退货"}, {"assistant", "退货申请"}};
    uint8_t *mask = NULL;
    char *text = render(&tpl, user, 1, 1, NULL);
    CHECK(text && !strcmp(text, want_default), "%s default system:\n%s", tokenizer, text ? text : "(null)");
    free(text);

    /* The default adds exactly an unmasked system turn: the same as giving it explicitly. */
    ct_chat_message explicit_system[] = {{"system", " 只回答意图名称 "}, {"user", "我要退货"}, {"assistant", "退货申请"}};
    uint8_t *mask_explicit = NULL;
    char *with_default = render(&tpl, user, 2, 0, &mask);
    tpl.default_system = NULL;
    char *given = render(&tpl, explicit_system, 3, 0, &mask_explicit);
    CHECK(with_default && given && !strcmp(with_default, given) && mask && mask_explicit &&
              !strcmp((char *)mask, (char *)mask_explicit) && strchr((char *)mask, '1'),
          "%s: default system == explicit system (text and mask)", tokenizer);
    free(with_default);
    free(given);
    free(mask);
    free(mask_explicit);

    /* A conversation with its own system message keeps it alone. */
    tpl.default_system = "unused";
    ct_chat_message own[] = {{"system", "Answer briefly."}, {"user", "我要退货"}};
    text = render(&tpl, own, 2, 1, NULL);
    CHECK(text && !strcmp(text, want_own) && !strstr(text, "unused"), "%s own system:\n%s", tokenizer, text ? text : "(null)");
    free(text);
    /* An empty default is no default. */
    tpl.default_system = "";
    text = render(&tpl, user, 1, 1, NULL);
    CHECK(text && !strstr(text, "system"), "%s: empty default renders no system turn: %s", tokenizer, text ? text : "");
    free(text);
    ct_tokenizer_free(tok);
}

/* ---- tokenizer_config.json ---- */

static void test_template_save(void) {
    const char *config = ct_test_path_in(tmp, "tokenizer_config.json");
    const char *jinja = ct_test_path_in(tmp, "chat_template.jinja");
    write_file(config, "{\"eos_token\": \"<|im_end|>\", \"chat_template\": \"old\", \"model_max_length\": 2048}");
    write_file(jinja, "old");
    CHECK(ct_chat_template_save(tmp, CT_CHAT_CHATML, "提示") == 0, "save: %s", ct_last_error());
    char *want = ct_chat_template_jinja(CT_CHAT_CHATML, "提示");
    char *text = ct_test_read_file(config, NULL);
    cJSON *root = text ? cJSON_Parse(text) : NULL;
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(root, "chat_template");
    const cJSON *eos = cJSON_GetObjectItemCaseSensitive(root, "eos_token");
    const cJSON *max = cJSON_GetObjectItemCaseSensitive(root, "model_max_length");
    CHECK(cJSON_IsString(t) && want && !strcmp(t->valuestring, want), "chat_template replaced");
    CHECK(cJSON_IsString(eos) && !strcmp(eos->valuestring, "<|im_end|>") && cJSON_IsNumber(max) && max->valueint == 2048,
          "other keys kept: %s", text ? text : "(null)");
    char *file = ct_test_read_file(jinja, NULL);
    CHECK(file && want && !strcmp(file, want), "chat_template.jinja replaced too");
    free(file);
    cJSON_Delete(root);
    free(text);
    free(want);

    write_file(config, "[1, 2]");
    CHECK(ct_chat_template_save(tmp, CT_CHAT_CHATML, "x") < 0 && strstr(ct_last_error(), "tokenizer_config.json") &&
              strstr(ct_last_error(), "not a JSON object"),
          "a damaged config is refused by name: %s", ct_last_error());
    text = ct_test_read_file(config, NULL);
    CHECK(text && !strcmp(text, "[1, 2]"), "the damaged file is left as it was");
    free(text);
    remove(config);
    remove(jinja);
}

/* ---- ctune_task.json ---- */

static void test_task_round_trip(void) {
    ct_recipe r;
    ct_recipe_init(&r);
    ct_recipe_set(&r, "data.format", "dialog_intent");
    ct_recipe_set(&r, "data.labels", ct_test_path("datasets/data/labels.json"));
    ct_recipe_set(&r, "data.system_prompt", "你是客服助手。\n\"只\"回答");
    ct_recipe_set(&r, "data.loss_on", "last_assistant");
    ct_recipe_set(&r, "data.max_seq_len", "96");
    ct_recipe_set(&r, "eval.length_normalized", "true");
    ct_model_task task, back;
    CHECK(ct_model_task_from_recipe(&task, &r) == 0, "from recipe: %s", ct_last_error());
    CHECK(ct_model_task_save(tmp, &task) == 0, "save: %s", ct_last_error());
    bool found = false;
    CHECK(ct_model_task_load(tmp, &back, &found) == 0 && found, "load: %s", ct_last_error());
    CHECK(back.format == CT_DATA_DIALOG_INTENT && !strcmp(back.system_prompt, "你是客服助手。\n\"只\"回答") &&
              back.loss_on == CT_CHAT_MASK_LAST && back.max_seq_len == 96 && back.length_normalized,
          "fields read back");
    CHECK(back.labels && !strcmp(back.labels, ct_test_path_in(tmp, "labels.json")), "labels: the folder's copy: %s",
          back.labels ? back.labels : "(null)");
    size_t n_src, n_copy;
    char *src = ct_test_read_file(ct_test_path("datasets/data/labels.json"), &n_src);
    char *copy = ct_test_read_file(ct_test_path_in(tmp, "labels.json"), &n_copy);
    CHECK(src && copy && n_src == n_copy && !memcmp(src, copy, n_src), "labels.json copied byte for byte");
    free(src);
    free(copy);
    /* Saving what was loaded (same folder) keeps the label set. */
    CHECK(ct_model_task_save(tmp, &back) == 0, "resave: %s", ct_last_error());
    copy = ct_test_read_file(ct_test_path_in(tmp, "labels.json"), &n_copy);
    CHECK(copy && n_copy == n_src, "the label set is still there after a resave");
    free(copy);
    ct_model_task_free(&back);
    ct_model_task_free(&task);

    /* Chat data trains without the system prompt (datasets/sft.h): the folder says so. */
    ct_recipe_set(&r, "data.format", "chat");
    CHECK(ct_model_task_from_recipe(&task, &r) == 0 && !strcmp(task.system_prompt, "") && !task.labels,
          "chat: no system prompt, no label set");
    ct_model_task_free(&task);
    ct_recipe_free(&r);

    const char *path = ct_test_path_in(tmp, "ctune_task.json");
    write_file(path, "{\"format_version\": 1, \"data_format\": \"intent\", \"system_prompt\": \"x\", \"labels\": "
                     "\"../etc/labels.json\", \"loss_on\": \"last_assistant\", \"max_seq_len\": 64, "
                     "\"length_normalized\": false}");
    CHECK(ct_model_task_load(tmp, &back, &found) < 0 && strstr(ct_last_error(), "ctune_task.json") &&
              strstr(ct_last_error(), "\"labels\""),
          "a label path outside the folder is refused naming the key: %s", ct_last_error());
    write_file(path, "{\"format_version\": 2}");
    CHECK(ct_model_task_load(tmp, &back, &found) < 0 && strstr(ct_last_error(), "format_version"),
          "another version is refused: %s", ct_last_error());
    write_file(path, "{\"format_version\": 1,");
    CHECK(ct_model_task_load(tmp, &back, &found) < 0 && strstr(ct_last_error(), "malformed JSON"),
          "malformed JSON: %s", ct_last_error());
    remove(path);
    CHECK(ct_model_task_load(tmp, &back, &found) == 0 && !found, "no file: not found, no error");
    remove(ct_test_path_in(tmp, "labels.json"));
}

/* ---- training: a dialogue's own system message is not doubled ---- */

static void test_dialog_own_system(void) {
    ct_tokenizer *tok = ct_tokenizer_load(ct_test_path("tests/fixtures/models/qwen2"));
    ct_label_set *labels = ct_label_set_load(ct_test_path("datasets/data/labels.json"));
    ct_chat_template tpl;
    CHECK(tok && labels && ct_chat_template_init(&tpl, tok, CT_CHAT_CHATML) == 0, "setup: %s", ct_last_error());
    if (!tok || !labels) return;
    ct_chat_message messages[] = {{"system", "Own."}, {"user", "我要退货"}};
    ct_example ex = {.messages = messages, .n_messages = 2, .label = ct_label_set_index(labels, "return_request")};
    ct_sft_options options = {.tpl = &tpl, .labels = labels, .system_prompt = "Trained.", .loss_on = CT_CHAT_MASK_LAST};
    ct_token_list ids = {0};
    uint8_t *mask = NULL;
    char *text = NULL;
    if (ct_sft_encode(&options, &ex, &ids, &mask) == 0) text = ct_tokenizer_decode(tok, ids.ids, ids.len, 0, NULL);
    CHECK(text && !strcmp(text, "<|im_start|>system\nOwn.<|im_end|>\n<|im_start|>user\n我要退货<|im_end|>\n"
                                "<|im_start|>assistant\n退货申请<|im_end|>\n"),
          "a dialogue's own system message stands alone: %s", text ? text : ct_last_error());
    free(text);
    free(mask);
    ct_token_list_free(&ids);
    ct_label_set_free(labels);
    ct_tokenizer_free(tok);
}

int main(void) {
    if (!ct_test_temp_dir(tmp, sizeof tmp, "model_task")) return 1;
    test_jinja_text();
    test_default_system("tests/fixtures/models/qwen2", CT_CHAT_CHATML,
                        "<|im_start|>system\n 只回答意图名称 <|im_end|>\n<|im_start|>user\n我要退货<|im_end|>\n"
                        "<|im_start|>assistant\n",
                        "<|im_start|>system\nAnswer briefly.<|im_end|>\n<|im_start|>user\n我要退货<|im_end|>\n"
                        "<|im_start|>assistant\n");
    test_default_system("tests/fixtures/tokenizer/synthetic/llama3_style", CT_CHAT_LLAMA3,
                        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n只回答意图名称<|eot_id|>"
                        "<|start_header_id|>user<|end_header_id|>\n\n我要退货<|eot_id|>"
                        "<|start_header_id|>assistant<|end_header_id|>\n\n",
                        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nAnswer briefly.<|eot_id|>"
                        "<|start_header_id|>user<|end_header_id|>\n\n我要退货<|eot_id|>"
                        "<|start_header_id|>assistant<|end_header_id|>\n\n");
    test_template_save();
    test_task_round_trip();
    test_dialog_own_system();
    ct_test_remove_tree(tmp);
    return ct_test_finish("test_model_task");
}
