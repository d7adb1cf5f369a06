/* A model source from a .gguf file (train/model_source.h).
 *
 * ctune's GGUF export carries, besides llama.cpp's keys, the task the model was trained for:
 *   ctune.task    the text of the model folder's ctune_task.json (format, system prompt, ...)
 *   ctune.labels  the text of its labels.json (intent tasks)
 * so `ctune eval` scores a bare .gguf file as it scores the run's model folder. Those files and a
 * tokenizer_config.json holding tokenizer.chat_template are written to a scratch folder that
 * stands for the model folder; a GGUF without ctune.* keys (llama.cpp's converter) evaluates like
 * an HF folder without ctune_task.json. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "checkpoints/gguf.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "core/interrupt_cleanup.h"
#include "core/paths.h"
#include "datasets/tokenizer_gguf.h"
#include "models/llama_gguf.h"
#include "train/model_source.h"
#include "train/model_task.h"

/* The string key `key` written to dir/name, when the file has the key. */
static int write_key_file(const ct_gguf *g, const char *key, const char *dir, const char *name) {
    char *text = NULL;
    CT_TRY(ct_gguf_get_string(g, key, false, &text));
    if (!text) return 0;
    char *path = ct_path_join(dir, name);
    int rc = path ? ct_atomic_write_file(path, text, strlen(text)) : -1;
    free(path);
    free(text);
    return rc;
}

static int write_chat_template(const ct_gguf *g, const char *dir) {
    char *tpl = NULL;
    CT_TRY(ct_gguf_get_string(g, "tokenizer.chat_template", false, &tpl));
    if (!tpl) return 0;
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "chat_template", tpl);
    free(tpl);
    char *text = cJSON_Print(root), *path = ct_path_join(dir, "tokenizer_config.json");
    cJSON_Delete(root);
    int rc = text && path ? ct_atomic_write_file(path, text, strlen(text)) : ct_fail("out of memory");
    free(text);
    free(path);
    return rc;
}

static int serving_folder(ct_model_source *s, const ct_gguf *g) {
    char dir[] = "/tmp/ctune-gguf-XXXXXX";
    if (!mkdtemp(dir)) return ct_fail("cannot make a scratch folder in /tmp for the GGUF file's task files");
    ct_cleanup_add_folder(dir); /* an interrupted export removes it (core/interrupt_cleanup.h) */
    if (!(s->scratch_dir = ct_strdup(dir))) return -1;
    CT_TRY(write_key_file(g, "ctune.task", dir, CT_MODEL_TASK_FILE));
    CT_TRY(write_key_file(g, "ctune.labels", dir, CT_MODEL_LABELS_FILE));
    CT_TRY(write_chat_template(g, dir));
    s->tokenizer_dir = ct_strdup(dir);
    s->model->source_dir = ct_strdup(dir);
    return s->tokenizer_dir && s->model->source_dir ? 0 : -1;
}

static int load_tokenizer(ct_model_source *s, const ct_gguf *g) {
    char *json = ct_tokenizer_json_from_gguf(g);
    if (!json) return -1;
    s->model->tokenizer = ct_tokenizer_load_text(json, strlen(json), ct_gguf_path(g));
    free(json);
    if (!s->model->tokenizer) return ct_fail_context("the tokenizer rebuilt from %s's tokenizer.ggml keys: ", ct_gguf_path(g));
    s->tokenizer = s->model->tokenizer;
    return ct_llama_check_tokenizer(s->model, s->tokenizer);
}

int ct_model_source_open_gguf(ct_model_source *s, const char *path) {
    memset(s, 0, sizeof *s);
    snprintf(s->loaded_from, sizeof s->loaded_from, "%s", path);
    s->kind = "GGUF file";
    ct_gguf *g = ct_gguf_open(path);
    if (!g) return -1;
    s->model = ct_llama_load_gguf(g);
    int rc = s->model ? load_tokenizer(s, g) : -1;
    if (rc == 0) rc = serving_folder(s, g);
    ct_gguf_close(g);
    /* A model whose tokenizer or serving folder failed is not handed back half made: callers
     * close only what opened (a leak found by tests/fuzz/fuzz_gguf.c). */
    if (rc != 0) ct_model_source_close(s);
    return rc;
}

void ct_model_source_close(ct_model_source *s) {
    if (s->model && s->tokenizer != s->model->tokenizer) ct_tokenizer_free(s->tokenizer);
    if (!s->model) ct_tokenizer_free(s->tokenizer);
    ct_llama_free(s->model);
    free(s->tokenizer_dir);
    free(s->recipe_yaml);
    if (s->scratch_dir) {
        ct_remove_tree(s->scratch_dir);
        ct_cleanup_forget(s->scratch_dir);
    }
    free(s->scratch_dir);
    memset(s, 0, sizeof *s);
}
