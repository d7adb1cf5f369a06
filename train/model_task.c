/* ctune_task.json and the label set beside the weights (see model_task.h). */
#include "train/model_task.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/atomic_file.h"
#include "core/paths.h"

enum { TASK_FORMAT_VERSION = 1 };

static const ct_data_format recipe_formats[] = {CT_DATA_INTENT, CT_DATA_CHAT, CT_DATA_DIALOG_INTENT, CT_DATA_TEXT};
static const char *const loss_on_names[] = {"all_assistant", "last_assistant"};

static bool has_labels(ct_data_format format) { return format == CT_DATA_INTENT || format == CT_DATA_DIALOG_INTENT; }

void ct_model_task_free(ct_model_task *task) {
    free(task->system_prompt);
    free(task->labels);
    memset(task, 0, sizeof *task);
}

int ct_model_task_from_recipe(ct_model_task *task, const ct_recipe *r) {
    memset(task, 0, sizeof *task);
    task->format = recipe_formats[r->data.format];
    /* Training puts the system prompt before labelled examples only (datasets/sft.h). */
    task->system_prompt = ct_strdup(has_labels(task->format) ? r->data.system_prompt : "");
    task->labels = has_labels(task->format) && r->data.labels[0] ? ct_strdup(r->data.labels) : NULL;
    task->loss_on = r->data.loss_on;
    task->max_seq_len = ct_recipe_seq_len(r);
    task->length_normalized = r->eval.length_normalized;
    if (!task->system_prompt || (has_labels(task->format) && r->data.labels[0] && !task->labels)) {
        ct_model_task_free(task);
        return -1;
    }
    return 0;
}

/* ---- reading ---- */

static int bad_key(const char *path, const char *key, const char *what) {
    return ct_fail("%s: \"%s\" %s; the file is damaged: copy it again from the run's model folder", path, key, what);
}

static const cJSON *item(const cJSON *root, const char *key) { return cJSON_GetObjectItemCaseSensitive(root, key); }

static int read_strings(const cJSON *root, const char *path, const char *dir, ct_model_task *task) {
    const cJSON *format = item(root, "data_format"), *system = item(root, "system_prompt");
    const cJSON *labels = item(root, "labels"), *loss_on = item(root, "loss_on");
    if (!cJSON_IsString(format) || ct_data_format_parse(format->valuestring, &task->format) < 0)
        return bad_key(path, "data_format", "is not one of intent, chat, dialog_intent, text");
    if (!cJSON_IsString(system)) return bad_key(path, "system_prompt", "is not a string");
    if (!(task->system_prompt = ct_strdup(system->valuestring))) return -1;
    if (cJSON_IsString(labels)) {
        /* A plain file name in the folder: the task never points outside it. */
        if (!*labels->valuestring || strchr(labels->valuestring, '/'))
            return bad_key(path, "labels", "is not a file name in the model folder");
        if (!(task->labels = ct_path_join(dir, labels->valuestring))) return -1;
    } else if (!cJSON_IsNull(labels) && labels) {
        return bad_key(path, "labels", "is neither a file name nor null");
    }
    if (has_labels(task->format) && !task->labels) return bad_key(path, "labels", "is missing for an intent task");
    for (int i = 0; i < 2; i++)
        if (cJSON_IsString(loss_on) && !strcmp(loss_on->valuestring, loss_on_names[i])) {
            task->loss_on = (ct_chat_mask_mode)i;
            return 0;
        }
    return bad_key(path, "loss_on", "is not all_assistant or last_assistant");
}

static int read_task(const cJSON *root, const char *path, const char *dir, ct_model_task *task) {
    if (!cJSON_IsObject(root)) return ct_fail("%s: not a JSON object; copy it again from the run's model folder", path);
    const cJSON *version = item(root, "format_version");
    if (!cJSON_IsNumber(version) || version->valuedouble != TASK_FORMAT_VERSION)
        return ct_fail("%s: format_version is not %d; this ctune reads version %d task files", path,
                       TASK_FORMAT_VERSION, TASK_FORMAT_VERSION);
    CT_TRY(read_strings(root, path, dir, task));
    const cJSON *seq = item(root, "max_seq_len"), *normalized = item(root, "length_normalized");
    if (!cJSON_IsNumber(seq) || seq->valuedouble < 2 || seq->valuedouble > 1e9)
        return bad_key(path, "max_seq_len", "is not an integer of at least 2");
    if (!cJSON_IsBool(normalized)) return bad_key(path, "length_normalized", "is not true or false");
    task->max_seq_len = (int64_t)seq->valuedouble;
    task->length_normalized = cJSON_IsTrue(normalized);
    return 0;
}

int ct_model_task_load(const char *dir, ct_model_task *task, bool *found) {
    memset(task, 0, sizeof *task);
    *found = false;
    char *path = ct_path_join(dir, CT_MODEL_TASK_FILE);
    if (!path) return -1;
    if (!ct_is_file(path)) {
        free(path);
        return 0;
    }
    size_t len;
    char *text = ct_tok_read_file(path, &len);
    cJSON *root = text ? cJSON_ParseWithLength(text, len) : NULL;
    int rc = !text ? -1 : !root ? ct_fail("%s: malformed JSON; copy it again from the run's model folder", path)
                                : read_task(root, path, dir, task);
    cJSON_Delete(root);
    free(text);
    free(path);
    if (rc < 0) ct_model_task_free(task);
    else *found = true;
    return rc;
}

/* ---- writing ---- */

static int copy_file(const char *from, const char *to) {
    size_t len;
    char *bytes = ct_tok_read_file(from, &len);
    if (!bytes) return -1;
    int rc = ct_atomic_write_file(to, bytes, len);
    free(bytes);
    return rc;
}

static char *task_json(const ct_model_task *task) {
    cJSON *root = cJSON_CreateObject();
    if (!root) return NULL;
    cJSON_AddNumberToObject(root, "format_version", TASK_FORMAT_VERSION);
    cJSON_AddStringToObject(root, "data_format", ct_data_format_name(task->format));
    cJSON_AddStringToObject(root, "system_prompt", task->system_prompt ? task->system_prompt : "");
    if (task->labels) cJSON_AddStringToObject(root, "labels", CT_MODEL_LABELS_FILE);
    else cJSON_AddNullToObject(root, "labels");
    cJSON_AddStringToObject(root, "loss_on", loss_on_names[task->loss_on == CT_CHAT_MASK_LAST]);
    cJSON_AddNumberToObject(root, "max_seq_len", (double)task->max_seq_len);
    cJSON_AddBoolToObject(root, "length_normalized", task->length_normalized);
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    return text;
}

int ct_model_task_save(const char *dir, const ct_model_task *task) {
    char *labels = ct_path_join(dir, CT_MODEL_LABELS_FILE), *path = ct_path_join(dir, CT_MODEL_TASK_FILE);
    char *text = labels && path ? task_json(task) : NULL;
    int rc = text ? 0 : ct_fail("%s/%s: out of memory", dir, CT_MODEL_TASK_FILE);
    /* The label set first: a task file never names a label set that is not there. */
    if (rc == 0 && task->labels && strcmp(task->labels, labels) != 0) rc = copy_file(task->labels, labels);
    if (rc == 0) rc = ct_atomic_write_file(path, text, strlen(text));
    cJSON_free(text);
    free(labels);
    free(path);
    return rc;
}

int ct_model_folder_write_serving(const char *dir, const ct_recipe *recipe, ct_chat_format format) {
    ct_model_task task;
    CT_TRY(ct_model_task_from_recipe(&task, recipe));
    int rc = ct_model_task_save(dir, &task);
    if (rc == 0) rc = ct_chat_template_save(dir, format, task.system_prompt);
    ct_model_task_free(&task);
    if (rc < 0) ct_fail_context("%s: writing what serving needs: ", dir);
    return rc;
}
