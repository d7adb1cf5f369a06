/* `ctune export --format gguf --type f32|f16|bf16|q8_0` and `--format gguf-lora`: files llama.cpp
 * loads (docs/export.md).
 *
 * A model export holds llama.cpp's model and tokenizer keys, the chat template the model was
 * trained with, and under ctune.* the model folder's task files (ctune.task, ctune.labels), so
 * `ctune eval --model FILE.gguf` scores the file alone as it scores the folder. Every tensor's
 * quantization error is printed and written beside the file (FILE.gguf.report.json). Files are
 * written under a temporary name and renamed: a failed export leaves nothing. */
#include <cjson/cJSON.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checkpoints/gguf.h"
#include "checkpoints/peft.h"
#include "cli/export_folder.h"
#include "cli/export_gguf.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "core/paths.h"
#include "datasets/tokenizer_gguf.h"
#include "models/llama_gguf.h"
#include "models/llama_lora.h"
#include "models/llama_peft.h"
#include "train/model_task.h"
#include "train/recipe.h"
#include "train/trainer.h"

static const struct {
    const char *name;
    ct_gguf_type type;
} TYPES[] = {{"f32", CT_GGUF_F32}, {"f16", CT_GGUF_F16}, {"bf16", CT_GGUF_BF16}, {"q8_0", CT_GGUF_Q8_0}};

int ct_export_gguf_check_type(const char *type) {
    for (size_t i = 0; i < sizeof TYPES / sizeof TYPES[0]; i++)
        if (!strcmp(type, TYPES[i].name)) return 0;
    return ct_fail("--type %s: one of f32, f16, bf16, q8_0", type);
}

static ct_gguf_type type_of(const char *type) {
    for (size_t i = 0; i < sizeof TYPES / sizeof TYPES[0]; i++)
        if (!strcmp(type, TYPES[i].name)) return TYPES[i].type;
    return CT_GGUF_F32;
}

/* The output's folder must exist: checked before minutes of quantizing. */
static int check_out(const char *out) {
    char *copy = ct_strdup(out);
    if (!copy) return -1;
    const char *dir = dirname(copy);
    int rc = ct_is_dir(dir) ? 0 : ct_fail("--out %s: folder %s does not exist; create it first", out, dir);
    free(copy);
    return rc;
}

typedef struct {
    char *tokenizer_dir; /* where tokenizer_config.json (the chat template) is */
    char *serving_dir;   /* where ctune_task.json and labels.json are, or NULL */
    char scratch[CT_EXPORT_SCRATCH_SIZE]; /* a folder of ours to remove, or "" */
} export_files;

static int make_scratch(export_files *f) {
    if (f->scratch[0]) return 0;
    return ct_export_scratch_make(f->scratch, sizeof f->scratch, "the tokenizer and task files");
}

/* The task files of a trained model: its folder's, else written from its recipe. */
static int find_serving(const ct_model_source *src, export_files *f) {
    const char *dir = src->model->source_dir;
    char *task = dir ? ct_path_join(dir, CT_MODEL_TASK_FILE) : NULL;
    bool in_folder = task && ct_is_file(task);
    free(task);
    if (in_folder) return (f->serving_dir = ct_strdup(dir)) ? 0 : -1;
    if (!src->recipe_yaml) return 0;
    ct_recipe r;
    CT_TRY(ct_recipe_init(&r));
    int rc = ct_recipe_load_text(&r, src->recipe_yaml, strlen(src->recipe_yaml), src->loaded_from);
    if (rc == 0) rc = make_scratch(f);
    ct_chat_template tpl;
    if (rc == 0) rc = ct_chat_template_load(&tpl, src->tokenizer, f->tokenizer_dir);
    if (rc == 0) rc = ct_model_folder_write_serving(f->scratch, &r, tpl.format);
    ct_recipe_free(&r);
    if (rc == 0) f->serving_dir = ct_strdup(f->scratch);
    return rc;
}

static int find_files(const ct_model_source *src, export_files *f) {
    if (!src->tokenizer)
        return ct_fail("%s has no tokenizer files (tokenizer.json); GGUF embeds the tokenizer: give a model folder that "
                       "has them", src->loaded_from);
    if (src->tokenizer_dir) f->tokenizer_dir = ct_strdup(src->tokenizer_dir);
    else { /* a checkpoint carries its tokenizer files inside */
        CT_TRY(make_scratch(f));
        CT_TRY(ct_trainer_extract_tokenizer(src->loaded_from, f->scratch));
        f->tokenizer_dir = ct_strdup(f->scratch);
    }
    if (!f->tokenizer_dir) return -1;
    return find_serving(src, f);
}

static void files_free(export_files *f) {
    ct_export_scratch_remove(f->scratch);
    free(f->tokenizer_dir);
    free(f->serving_dir);
}

/* dir/name's text, or NULL (no message) when there is no such file. */
static char *read_optional(const char *dir, const char *name) {
    char *path = dir ? ct_path_join(dir, name) : NULL;
    char *text = path && ct_is_file(path) ? ct_tok_read_file(path, NULL) : NULL;
    free(path);
    return text;
}

/* tokenizer.chat_template: the serving folder's template (with the trained system prompt as
 * its default), else the tokenizer's. */
static char *chat_template(const export_files *f) {
    const char *dirs[2] = {f->serving_dir, f->tokenizer_dir};
    for (int i = 0; i < 2; i++) {
        char *text = read_optional(dirs[i], "tokenizer_config.json");
        cJSON *root = text ? cJSON_Parse(text) : NULL;
        const cJSON *tpl = cJSON_GetObjectItemCaseSensitive(root, "chat_template");
        char *out = cJSON_IsString(tpl) ? ct_strdup(tpl->valuestring) : NULL;
        cJSON_Delete(root);
        free(text);
        if (out) return out;
    }
    return NULL;
}

static int add_tokenizer(const ct_model_source *src, const export_files *f, ct_gguf_writer *w) {
    const ct_llama_config *c = &src->model->config;
    char *tpl = chat_template(f);
    ct_tokenizer_gguf_options o = {.n_rows = c->vocab_size, .bos = c->bos_token_id,
                                   .eos = c->n_eos ? c->eos_token_ids[0] : -1, .pad = c->pad_token_id,
                                   .chat_template = tpl};
    int rc = ct_tokenizer_gguf_add(src->tokenizer, w, &o);
    free(tpl);
    return rc;
}

static int add_ctune_keys(const export_files *f, ct_gguf_writer *w) {
    char *task = read_optional(f->serving_dir, CT_MODEL_TASK_FILE);
    char *labels = read_optional(f->serving_dir, CT_MODEL_LABELS_FILE);
    int rc = task ? ct_gguf_set_string(w, "ctune.task", task) : 0;
    if (rc == 0 && labels) rc = ct_gguf_set_string(w, "ctune.labels", labels);
    free(task);
    free(labels);
    return rc;
}

/* ---- the report ---- */

static void print_report(const ct_gguf_report *r) {
    printf("%-34s %-5s %12s %12s\n", "tensor", "type", "rel_rms", "max_abs");
    for (int i = 0; i < r->n; i++) {
        const ct_gguf_tensor_report *t = &r->tensors[i];
        printf("%-34s %-5s %12.3e %12.3e\n", t->name, ct_gguf_type_name(t->type), t->rel_rms, t->max_abs);
    }
    for (int i = 0; i < r->n; i++)
        if (r->tensors[i].fell_back)
            printf("note: %s: rows of %lld values are not a multiple of 32, written F16 instead of Q8_0\n",
                   r->tensors[i].name, (long long)r->tensors[i].cols);
}

static int write_report(const ct_gguf_report *r, const char *out, const char *type) {
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "file", out);
    cJSON_AddStringToObject(root, "type", type);
    cJSON *list = cJSON_AddArrayToObject(root, "tensors");
    for (int i = 0; i < r->n; i++) {
        const ct_gguf_tensor_report *t = &r->tensors[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", t->name);
        cJSON_AddStringToObject(o, "type", ct_gguf_type_name(t->type));
        cJSON_AddNumberToObject(o, "rows", (double)t->rows);
        cJSON_AddNumberToObject(o, "cols", (double)t->cols);
        cJSON_AddNumberToObject(o, "rel_rms", t->rel_rms);
        cJSON_AddNumberToObject(o, "max_abs", t->max_abs);
        cJSON_AddBoolToObject(o, "f16_fallback", t->fell_back);
        cJSON_AddItemToArray(list, o);
    }
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    size_t n = strlen(out) + sizeof ".report.json";
    char *path = malloc(n);
    int rc = text && path ? 0 : ct_fail("out of memory writing the report");
    if (rc == 0) {
        snprintf(path, n, "%s.report.json", out);
        rc = ct_atomic_write_file(path, text, strlen(text));
    }
    free(text);
    free(path);
    return rc;
}

/* One line rewritten in place, for files past 64 MB. */
static void progress(void *ctx, int done, int total, uint64_t bytes_done, uint64_t bytes_total) {
    (void)ctx;
    if (bytes_total < (64u << 20)) return;
    fprintf(stderr, "\rgguf: %d/%d tensors, %llu/%llu MB", done, total, (unsigned long long)(bytes_done >> 20),
            (unsigned long long)(bytes_total >> 20));
    if (done == total) fputc('\n', stderr);
}

static void report_path(char *buf, size_t size, const char *out) { snprintf(buf, size, "%s.report.json", out); }

static void remove_stale_report(const char *out) {
    char report[4096];
    report_path(report, sizeof report, out);
    unlink(report);
}

/* The report could not be written: an export is the GGUF and its report, whole or not at all, so
 * the GGUF just written goes too, unless the report is in place and only its folder's sync
 * failed (both files are complete then). Keeps the report's message. */
static int drop_unreported(const char *out) {
    char report[4096];
    report_path(report, sizeof report, out);
    if (!ct_is_file(report)) unlink(out);
    return -1;
}

int ct_export_gguf(ct_model_source *src, const char *type, const char *out) {
    CT_TRY(check_out(out));
    CT_TRY(ct_export_gguf_check_type(type));
    export_files f = {0};
    int rc = find_files(src, &f);
    if (rc == 0 && !ct_tokenizer_gguf_pre(src->tokenizer, NULL)) rc = -1; /* refused before the work */
    if (rc == 0 && ct_llama_lora_count(src->model)) rc = ct_llama_merge_lora(src->model);
    ct_gguf_writer *w = rc == 0 ? ct_gguf_writer_new() : NULL;
    ct_gguf_report report = {0};
    if (rc == 0 && !w) rc = -1;
    if (rc == 0) rc = ct_llama_gguf_add(src->model, w, type_of(type), &report);
    if (rc == 0) rc = add_tokenizer(src, &f, w);
    if (rc == 0) rc = add_ctune_keys(&f, w);
    if (rc == 0) {
        fprintf(stderr, "gguf: writing %s (%d tensors)\n", out, report.n);
        rc = ct_gguf_write(w, out, progress, NULL);
    }
    if (rc == 0) print_report(&report);
    if (rc == 0) remove_stale_report(out); /* it described the GGUF just replaced */
    if (rc == 0 && write_report(&report, out, type) < 0) rc = drop_unreported(out);
    const char *difference = NULL;
    if (rc == 0 && ct_tokenizer_gguf_pre(src->tokenizer, &difference) && difference)
        printf("note: tokenizer.ggml.pre %s: %s\n", ct_tokenizer_gguf_pre(src->tokenizer, NULL), difference);
    ct_gguf_report_free(&report);
    ct_gguf_writer_free(w);
    files_free(&f);
    return rc;
}

/* ---- LoRA ---- */

/* An adapter on the model: the one --adapter attached, else the run folder's adapter/. Refuses
 * what a LoRA GGUF cannot express (trained modules_to_save). */
static int attach_adapter(ct_model_source *src, const char *run, bool adapter_given) {
    char *dir = adapter_given ? ct_strdup(run) : ct_path_join(run, "adapter");
    if (!dir) return -1;
    int rc = 0;
    if (!adapter_given && ct_llama_lora_count(src->model) == 0) {
        rc = ct_is_dir(dir) ? ct_llama_apply_peft_dir(src->model, dir)
                            : ct_fail("%s: no adapter/ folder (a LoRA run writes one when it finishes); give --adapter DIR",
                                      run);
    }
    ct_peft_config cfg;
    if (rc == 0 && ct_is_dir(dir) && ct_peft_config_read(dir, &cfg) == 0) {
        if (cfg.n_modules_to_save)
            rc = ct_fail("%s: modules_to_save (%s) are trained fully, which a llama.cpp LoRA GGUF cannot hold; export "
                         "--format gguf --adapter %s (merged)", dir, cfg.modules_to_save[0], dir);
        ct_peft_config_free(&cfg);
    }
    free(dir);
    return rc;
}

int ct_export_gguf_lora(ct_model_source *src, const char *run_or_dir, bool adapter_given, const char *out) {
    CT_TRY(check_out(out));
    CT_TRY(attach_adapter(src, run_or_dir, adapter_given));
    ct_gguf_writer *w = ct_gguf_writer_new();
    if (!w) return -1;
    double alpha = 0;
    int rc = ct_llama_gguf_add_lora(src->model, w, &alpha);
    if (rc == 0) rc = ct_gguf_write(w, out, progress, NULL);
    if (rc == 0) printf("gguf-lora: %d adapted projections, adapter.lora.alpha %g\n", ct_llama_lora_count(src->model), alpha);
    ct_gguf_writer_free(w);
    return rc;
}
