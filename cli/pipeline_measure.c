/* What the table shows for one model: parameters, bytes on disk, single-turn and multi-turn test
 * accuracy (`ctune eval` called in-process on the pipeline's test and dialog_test files) and the
 * evaluation speed in tokens/s. */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "core/clock.h"
#include "cli/pipeline.h"
#include "core/error.h"
#include "core/paths.h"
#include "datasets/examples.h"
#include "datasets/label_set.h"
#include "datasets/sft.h"
#include "train/model_source.h"
#include "train/model_task.h"

/* Bytes of a file, or of every file under a folder. */
static uint64_t bytes_on_disk(const char *path) {
    struct stat st;
    if (lstat(path, &st) != 0) return 0;
    if (!S_ISDIR(st.st_mode)) return S_ISREG(st.st_mode) ? (uint64_t)st.st_size : 0;
    DIR *d = opendir(path);
    if (!d) return 0;
    uint64_t total = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char *child = ct_path_join(path, e->d_name);
        if (child) total += bytes_on_disk(child);
        free(child);
    }
    closedir(d);
    return total;
}

/* The tokens `ctune eval` forwards on an intent split: for the accuracy, each prompt once (the
 * KV cache keeps it) and every label's answer after it; for the loss, each prompt and its own
 * answer again. The numerator of the table's eval tokens/s. */
static int eval_tokens(const ct_model_source *src, const char *dir, const char *data, int max_examples,
                       int64_t *tokens) {
    ct_model_task task = {0};
    bool found;
    CT_TRY(ct_model_task_load(dir, &task, &found));
    if (!found || !task.labels) {
        ct_model_task_free(&task);
        return ct_fail("%s: no %s with a label set; the pipeline evaluates intent models", dir, CT_MODEL_TASK_FILE);
    }
    ct_label_set *labels = ct_label_set_load(task.labels);
    ct_chat_template tpl;
    ct_example_options options = {.format = CT_DATA_INTENT, .labels = labels, .max_examples = (size_t)max_examples};
    ct_examples *examples = labels ? ct_examples_load(data, &options) : NULL;
    int rc = examples ? ct_chat_template_load(&tpl, src->tokenizer, src->tokenizer_dir ? src->tokenizer_dir : dir) : -1;
    ct_sft_options sft = {.tpl = &tpl, .labels = labels, .system_prompt = task.system_prompt, .loss_on = CT_CHAT_MASK_LAST};
    ct_sft_candidates c = {0};
    *tokens = 0;
    for (size_t i = 0; rc == 0 && i < examples->count; i++) {
        rc = ct_sft_candidates_build(&sft, &examples->items[i], &c);
        if (rc < 0) break;
        *tokens += 2 * (int64_t)c.prompt.len + (int64_t)c.answers[examples->items[i].label].len;
        for (int k = 0; k < c.n_labels; k++) *tokens += (int64_t)c.answers[k].len;
    }
    ct_sft_candidates_free(&c);
    ct_examples_free(examples);
    ct_label_set_free(labels);
    ct_model_task_free(&task);
    return rc;
}

/* Parameters (a tied lm_head once) and the eval token count, from one load of the model. */
static int model_facts(const ct_stage_run *s, int64_t *params, int64_t *tokens) {
    ct_model_source src;
    CT_TRY(ct_model_source_open(&src, s->model));
    *params = ct_llama_num_params(src.model);
    int rc = src.tokenizer ? eval_tokens(&src, s->model, s->p->test, s->p->eval_max_examples, tokens)
                           : ct_fail("%s: no tokenizer with the model", s->model);
    ct_model_source_close(&src);
    return rc;
}

/* `ctune eval --model M --data FILE --json OUT/<stage>/eval_<split>.json`; its accuracy. */
static int run_eval(ct_stage_run *s, const char *data, const char *split, double *accuracy, double *seconds) {
    char json[4200], limit[32];
    snprintf(json, sizeof json, "%s/eval_%s.json", s->dir, split);
    snprintf(limit, sizeof limit, "%d", s->p->eval_max_examples);
    char *argv[] = {"eval", "--model", s->model, "--data", (char *)data, "--json", json, "--max-examples", limit, NULL};
    int argc = s->p->eval_max_examples > 0 ? 9 : 7;
    double start = ct_seconds_now();
    if (ct_pipeline_call(ct_cmd_eval, s->log, argc, argv) != 0)
        return ct_fail_context("stage %s: ctune eval on %s: ", ct_stage_name(s->stage), data);
    *seconds = ct_seconds_now() - start;
    char *text = ct_read_file(json, 1 << 24, NULL);
    cJSON *root = text ? cJSON_Parse(text) : NULL;
    free(text);
    cJSON *acc = cJSON_GetObjectItemCaseSensitive(root, "accuracy");
    int rc = cJSON_IsNumber(acc) ? (*accuracy = acc->valuedouble, 0)
                                 : ct_fail("%s: no accuracy in ctune eval's summary", json);
    cJSON_Delete(root);
    return rc;
}

int ct_stage_measure_model(ct_stage_run *s) {
    int64_t params = 0, tokens = 0;
    CT_TRY(model_facts(s, &params, &tokens));
    double test_acc, test_s, dialog_acc = -1, dialog_s = 0;
    CT_TRY(run_eval(s, s->p->test, "test", &test_acc, &test_s));
    if (s->p->dialog_test[0]) CT_TRY(run_eval(s, s->p->dialog_test, "dialog", &dialog_acc, &dialog_s));
    cJSON *m = s->metrics;
    cJSON_AddStringToObject(m, "model", s->model);
    cJSON_AddNumberToObject(m, "parameters", (double)params);
    cJSON_AddNumberToObject(m, "bytes", (double)bytes_on_disk(s->model));
    cJSON_AddNumberToObject(m, "test_accuracy", test_acc);
    if (dialog_acc >= 0) cJSON_AddNumberToObject(m, "dialog_accuracy", dialog_acc);
    cJSON_AddNumberToObject(m, "eval_tokens", (double)tokens);
    cJSON_AddNumberToObject(m, "eval_seconds", test_s);
    cJSON_AddNumberToObject(m, "eval_tokens_per_s", test_s > 0 ? (double)tokens / test_s : 0);
    return 0;
}
