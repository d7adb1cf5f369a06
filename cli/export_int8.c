/* `ctune export --format int8-safetensors` (see export_int8.h). */
#include "cli/export_int8.h"
#include "cli/export_folder.h"

#include <errno.h>
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/paths.h"
#include "models/llama_int8.h"
#include "models/llama_lora.h"
#include "train/trainer.h"

/* The report: one line per tensor on stdout as it is quantized (the progress line of a big
 * model), and every tensor in quantization_report.json. */
typedef struct {
    cJSON *tensors;
    double worst_rel_rms;
} report_state;

static void report_tensor(const ct_int8_tensor_report *r, void *ctx) {
    report_state *s = ctx;
    printf("int8 [%d/%d] %s [%lld, %lld] rel_rms %.3e max_abs %.3e\n", r->index, r->count, r->name,
           (long long)r->rows, (long long)r->cols, r->error.rel_rms, r->error.max_abs);
    fflush(stdout);
    cJSON *t = cJSON_CreateObject();
    cJSON_AddStringToObject(t, "name", r->name);
    cJSON_AddNumberToObject(t, "rows", (double)r->rows);
    cJSON_AddNumberToObject(t, "cols", (double)r->cols);
    cJSON_AddNumberToObject(t, "rel_rms", r->error.rel_rms);
    cJSON_AddNumberToObject(t, "max_abs", r->error.max_abs);
    cJSON_AddItemToArray(s->tensors, t);
    if (r->error.rel_rms > s->worst_rel_rms) s->worst_rel_rms = r->error.rel_rms;
}

static int write_report(const report_state *s, const char *dir) {
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "scheme", "int8 symmetric per output channel, weight only (W8A16)");
    cJSON_AddNumberToObject(root, "worst_rel_rms", s->worst_rel_rms);
    cJSON_AddItemReferenceToObject(root, "tensors", s->tensors);
    char *text = cJSON_Print(root), *path = ct_path_join(dir, "quantization_report.json");
    int rc = text && path ? ct_atomic_write_file(path, text, strlen(text)) : ct_fail("out of memory writing the report");
    cJSON_Delete(root);
    free(text);
    free(path);
    return rc;
}

/* The folder --out goes into must exist (nothing creates a whole path by accident). */
/* The folder with tokenizer.json: the source's, or one extracted from a checkpoint into scratch. */
static int tokenizer_folder(const ct_model_source *src, char *scratch, const char **dir) {
    *dir = src->tokenizer_dir;
    if (*dir) return 0;
    if (ct_is_dir(src->loaded_from))
        return ct_fail("%s has no tokenizer files (tokenizer.json); an exported model must carry them: copy the "
                       "tokenizer's files into that folder, or export from the run folder",
                       src->loaded_from);
    CT_TRY(ct_export_scratch_make(scratch, CT_EXPORT_SCRATCH_SIZE, "the tokenizer files"));
    *dir = scratch;
    return ct_trainer_extract_tokenizer(src->loaded_from, scratch);
}

int ct_export_int8_safetensors(ct_model_source *src, const char *out, ct_export_serving_fn serving) {
    char *tmp = ct_export_folder_begin(out);
    if (!tmp) return -1;
    char scratch[CT_EXPORT_SCRATCH_SIZE] = "";
    const char *tokenizer_dir = NULL;
    int rc = tokenizer_folder(src, scratch, &tokenizer_dir);
    if (rc == 0 && ct_llama_lora_count(src->model)) rc = ct_llama_merge_lora(src->model);
    report_state report = {cJSON_CreateArray(), 0};
    if (rc == 0) rc = ct_llama_save_int8(src->model, tmp, tokenizer_dir, report_tensor, &report);
    if (rc == 0 && serving) rc = serving(src, tmp);
    if (rc == 0) rc = write_report(&report, tmp);
    if (rc == 0) rc = ct_export_folder_commit(tmp, out);
    if (rc == 0)
        printf("int8: %d tensors quantized, worst relative RMS error %.3e (%s/quantization_report.json)\n",
               cJSON_GetArraySize(report.tensors), report.worst_rel_rms, out);
    if (rc < 0) ct_export_folder_abort(tmp);
    else free(tmp);
    ct_export_scratch_remove(scratch);
    cJSON_Delete(report.tensors);
    return rc;
}
