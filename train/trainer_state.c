/* Training checkpoints: what an exact resume needs, in the HDF5 layout of docs/formats.md.
 *
 *   /model/<HF name>          f32 weights: every parameter, or only the trainable ones when the
 *                             run froze part of a model.path base (then /state names the base)
 *   /optimizer/m/<HF name>    AdamW first moments of the trainable parameters
 *   /optimizer/v/<HF name>    AdamW second moments of the trainable parameters
 *   /masks/<HF name>          pruning masks (f32 0/1), only when the run pruned (train/prune_train.c)
 *   /state                    attributes: step, optimizer_step, threads, matmul (the library
 *                             of the f32 matmuls: "OpenBLAS", "oneDNN 2.6.3", "cuBLAS"), seed,
 *                             elapsed_s, recipe (resolved YAML), model_config (config.json text),
 *                             base_path and base_hash (only with a frozen base: its absolute
 *                             path and the ct_tensors_hash of its frozen tensors, "fnv1a64:...");
 *                             blobs tokenizer_json and tokenizer_config_json (UTF-8 text, so the
 *                             file is a model on its own: ctune eval and model.path accept it)
 *                             and data_cursor (4 x int64: epoch, batch, seed, fingerprint);
 *                             with checkpoint.select=best_*: select, best_step, best_value
 *   /best/<HF name>           with checkpoint.select=best_*: the trainable tensors at best_step
 *                             (train/trainer_select.c)
 * There is no random-generator state to keep: data order and dropout are counter-based,
 * keyed on (seed, epoch) and (seed, step).
 *
 * With device=cuda the weights and moments live on the GPU: ct_h5_put_tensor writes each one
 * through a host copy, and ct_h5_read_tensor_into reads into host memory and uploads, so a resume
 * fills the device tensors in place. The weights are the f32 masters whatever train.precision
 * says (bf16 copies exist only inside a step). */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/atomic_file.h"
#include "checkpoints/hdf5_file.h"
#include "kernels/cpu/cpu_bf16_gemm.h"
#include "kernels/cpu/cpu_sgemm.h"
#include "core/paths.h"
#include "train/dist.h"
#include "train/model_source.h"
#include "train/lora_setup.h"
#include "train/trainer_internal.h"
#include "train/prune_train.h"

#define STATE "/state"

/* A text file of the tokenizer folder as a blob (absent files are skipped): tokenizer.json is
 * far larger than an attribute holds. */
static int put_text_file(ct_h5_writer *w, const char *dir, const char *file, const char *key) {
    char *path = ct_path_join(dir, file);
    if (!path) return -1;
    int rc = 0;
    if (ct_is_file(path)) {
        char *text = ct_tok_read_file(path, NULL);
        rc = text ? ct_h5_put_blob(w, STATE, key, text, strlen(text)) : -1;
        free(text);
    }
    free(path);
    return rc;
}

/* What the matmuls ran on, as far as it sets their bits: checkpoints name it, since a resume is
 * bit-identical only on what wrote the checkpoint. The f32 GEMM library (two round differently:
 * kernels/cpu/cpu_sgemm.h), and in a bf16 run on a CPU that multiplies bf16 in hardware that path
 * too (the widened one rounds as the f32 library does, so a bf16 run without the hardware names
 * the library alone, as before). */
#define BF16_HARDWARE_MARK ", bf16 GEMMs on "
static const char *matmul_library(const ct_trainer *t) {
    if (t->recipe->device != CT_CPU) return "cuBLAS";
    if (t->recipe->train.precision != CT_RECIPE_BF16 || !ct_cpu_bf16_gemm_available()) return ct_sgemm_library();
    static char name[160];
    snprintf(name, sizeof name, "%s" BF16_HARDWARE_MARK "%s", ct_sgemm_library(), ct_cpu_bf16_gemm_path());
    return name;
}

/* A checkpoint written with another matmul library is refused, as one of another thread count
 * is; a file written before the attribute existed names none and is not checked. */
static int check_matmul_library(const ct_trainer *t, ct_h5_reader *rd, const char *path) {
    char *stored = ct_h5_get_string(rd, STATE, "matmul");
    if (!stored) {
        ct_clear_error();
        return 0;
    }
    const char *now = matmul_library(t), *fix = "resume with the build that wrote it";
    if (!strcmp(stored, now)) {
        free(stored);
        return 0;
    }
    const bool stored_hardware = strstr(stored, BF16_HARDWARE_MARK), now_hardware = strstr(now, BF16_HARDWARE_MARK);
    if (stored_hardware && !now_hardware)
        fix = "resume on a CPU with AVX512-BF16, without CT_GEMM_BF16=widen";
    else if (!stored_hardware && now_hardware)
        fix = "set CT_GEMM_BF16=widen in the environment";
    else if (!strcmp(stored, "OpenBLAS") && t->recipe->device == CT_CPU)
        fix = "set CT_GEMM=openblas in the environment";
    else if (!strncmp(stored, "oneDNN", 6) && !strcmp(now, "OpenBLAS"))
        fix = "unset CT_GEMM, or build ctune with oneDNN (apt-get install libdnnl-dev)";
    int rc = ct_fail("resume=%s: its matmuls ran on %s but this run's run on %s, which rounds differently; for a "
                     "bit-identical resume %s", path, stored, now, fix);
    free(stored);
    return rc;
}

static int put_state(ct_trainer *t, ct_h5_writer *w) {
    CT_TRY(ct_h5_put_int64(w, STATE, "step", t->step));
    CT_TRY(ct_h5_put_int64(w, STATE, "optimizer_step", t->optimizer->step));
    CT_TRY(ct_h5_put_int64(w, STATE, "threads", t->threads));
    CT_TRY(ct_h5_put_string(w, STATE, "matmul", matmul_library(t)));
    CT_TRY(ct_h5_put_int64(w, STATE, "seed", t->recipe->seed));
    CT_TRY(ct_h5_put_double(w, STATE, "elapsed_s", t->elapsed_before + (ct_seconds_now() - t->started_at)));
    char *recipe = ct_recipe_to_yaml(t->recipe);
    int rc = recipe ? ct_h5_put_string(w, STATE, "recipe", recipe) : -1;
    free(recipe);
    CT_TRY(rc);
    char *config = ct_llama_config_to_json(&t->model->config, NULL, CT_F32);
    rc = config ? ct_h5_put_string(w, STATE, "model_config", config) : -1;
    free(config);
    CT_TRY(rc);
    if (t->partial_checkpoints) {
        char hash[32];
        ct_hash_format(t->trainable.base_hash, hash);
        CT_TRY(ct_h5_put_string(w, STATE, "base_path", t->base_path));
        CT_TRY(ct_h5_put_string(w, STATE, "base_hash", hash));
    }
    if (t->tokenizer_dir) {
        CT_TRY(put_text_file(w, t->tokenizer_dir, "tokenizer.json", "tokenizer_json"));
        CT_TRY(put_text_file(w, t->tokenizer_dir, "tokenizer_config.json", "tokenizer_config_json"));
    }
    int64_t cursor[4];
    ct_data_cursor c = ct_batcher_cursor(t->batcher);
    ct_data_cursor_pack(&c, cursor);
    CT_TRY(ct_trainer_select_save(t, w));
    return ct_h5_put_blob(w, STATE, "data_cursor", cursor, sizeof cursor);
}

/* ZeRO-1: the moments of a slice another rank keeps, received from it (in slot order, as it
 * sends them: train/trainer_dist.c) and written like rank 0's own. After a failed write
 * (*write_rc < 0) they are still received, so the senders finish and every rank hears of the
 * failure; a failed receive returns -1. */
static int put_remote_moments(ct_trainer *t, ct_h5_writer *w, int index, int *write_rc) {
    const ct_tensor *p = t->optimizer->slots[index].param;
    ct_tensor *m = ct_tensor_new_on(CT_CPU, CT_F32, p->ndim, p->shape, NULL);
    ct_tensor *v = m ? ct_tensor_new_on(CT_CPU, CT_F32, p->ndim, p->shape, NULL) : NULL;
    int owner = ct_trainer_dist_owner(t, index), rc = v ? 0 : -1;
    if (rc == 0) rc = ct_dist_recv_floats(owner, 2 * index, m->data, ct_numel(m));
    if (rc == 0) rc = ct_dist_recv_floats(owner, 2 * index + 1, v->data, ct_numel(v));
    if (rc == 0 && *write_rc == 0) *write_rc = ct_h5_put_tensor(w, "/optimizer/m", p->name, m);
    if (rc == 0 && *write_rc == 0) *write_rc = ct_h5_put_tensor(w, "/optimizer/v", p->name, v);
    ct_tensor_free(m);
    ct_tensor_free(v);
    return rc;
}

static int put_weights(ct_trainer *t, ct_h5_writer *w) {
    int rc = 0;
    for (int i = 0; i < t->optimizer->n_slots; i++) {
        const ct_adamw_slot *s = &t->optimizer->slots[i];
        if (rc == 0) rc = ct_h5_put_tensor(w, "/model", s->param->name, s->param);
        if (!s->m) {
            CT_TRY(put_remote_moments(t, w, i, &rc));
            continue;
        }
        if (rc == 0) rc = ct_h5_put_tensor(w, "/optimizer/m", s->param->name, s->m);
        if (rc == 0) rc = ct_h5_put_tensor(w, "/optimizer/v", s->param->name, s->v);
    }
    CT_TRY(rc);
    CT_TRY(ct_prune_masks_save(w, t->model));
    /* Frozen at the seeded init (no base to name): kept, so the file is still the whole model. */
    for (int i = 0; !t->partial_checkpoints && i < t->trainable.n_frozen; i++)
        CT_TRY(ct_h5_put_tensor(w, "/model", t->trainable.frozen[i]->name, t->trainable.frozen[i]));
    return 0;
}

/* The checkpoint file begun (rank 0). */
static ct_h5_writer *begin(ct_trainer *t, char *path, size_t size) {
    const ct_recipe *r = t->recipe;
    if (ct_make_dirs(r->checkpoint.dir) < 0 ||
        ct_h5_checkpoint_path(r->checkpoint.dir, CT_CHECKPOINT_PATTERN, t->step, path, size) < 0)
        return NULL;
    return ct_h5_begin(path);
}

/* Under mpirun only rank 0 writes; with ZeRO-1 the other ranks send it their moments meanwhile,
 * once every rank knows the file could be begun. */
int ct_trainer_save(ct_trainer *t, char *path, size_t size) {
    const ct_recipe *r = t->recipe;
    if (!ct_trainer_is_root(t)) {
        path[0] = '\0';
        CT_TRY(ct_trainer_dist_agree(t, 0));
        return ct_trainer_dist_send_moments(t);
    }
    ct_h5_writer *w = begin(t, path, size);
    CT_TRY(ct_trainer_dist_agree(t, w ? 0 : -1));
    if (put_weights(t, w) < 0 || put_state(t, w) < 0) {
        ct_h5_abort(w);
        return -1;
    }
    CT_TRY(ct_h5_commit(w));
    if (r->checkpoint.keep_last > 0 && ct_h5_keep_last(r->checkpoint.dir, CT_CHECKPOINT_PATTERN, r->checkpoint.keep_last) < 0)
        return -1;
    return 0;
}

static int read_tensors(ct_h5_reader *rd, ct_tensor *const *params, int n) {
    for (int i = 0; i < n; i++) CT_TRY(ct_h5_read_tensor_into(rd, "/model", params[i]->name, params[i]));
    return 0;
}

static int read_weights(ct_h5_reader *rd, ct_llama *m) { return read_tensors(rd, m->params, m->n_params); }

/* Resuming from an older checkpoint while later ones sit in checkpoint.dir would mix two
 * continuations there: keep_last would prune the new checkpoints in favour of the abandoned
 * higher-numbered ones, and "the latest checkpoint" would name the abandoned run. */
static int check_no_later_checkpoint(const ct_trainer *t, const char *path, int64_t step) {
    char later[4096];
    int64_t later_step = 0;
    const int found = ct_h5_latest_checkpoint(t->recipe->checkpoint.dir, CT_CHECKPOINT_PATTERN, later, sizeof later,
                                              &later_step);
    if (found < 0) return -1;
    if (found == 0 || later_step <= step) return 0;
    return ct_fail("resume=%s: %s holds a later checkpoint of this run, %s (step %lld); resume from that one, or "
                   "continue from step %lld into another output_dir=... so the later checkpoints are neither pruned "
                   "nor mixed with the new ones",
                   path, t->recipe->checkpoint.dir, later, (long long)later_step, (long long)step);
}

int ct_trainer_resume(ct_trainer *t, const char *path) {
    ct_h5_reader *rd = ct_h5_open(path);
    if (!rd) return ct_fail_context("resume: ");
    int64_t step = 0, optimizer_step = 0, threads = 0;
    int rc = ct_h5_get_int64(rd, STATE, "threads", &threads);
    if (rc == 0 && threads != t->threads)
        rc = ct_fail("resume=%s: written with %lld threads but this run has %d; set threads=%lld for a bit-identical "
                     "resume", path, (long long)threads, t->threads, (long long)threads);
    if (rc == 0) rc = check_matmul_library(t, rd, path);
    if (rc == 0) rc = ct_trainer_check_checkpoint(t, rd, path);
    if (rc == 0) rc = ct_h5_get_int64(rd, STATE, "step", &step);
    if (rc == 0) rc = ct_h5_get_int64(rd, STATE, "optimizer_step", &optimizer_step);
    if (rc == 0) rc = ct_h5_get_double(rd, STATE, "elapsed_s", &t->elapsed_before);
    if (rc == 0) rc = t->partial_checkpoints ? read_tensors(rd, t->trainable.params, t->trainable.n)
                                             : read_weights(rd, t->model);
    if (rc == 0) rc = ct_prune_masks_load(rd, t->model, path);
    for (int i = 0; rc == 0 && i < t->optimizer->n_slots; i++) {
        const ct_adamw_slot *s = &t->optimizer->slots[i];
        if (!s->m) continue; /* ZeRO-1: another rank's slice */
        rc = ct_h5_read_tensor_into(rd, "/optimizer/m", s->param->name, s->m);
        if (rc == 0) rc = ct_h5_read_tensor_into(rd, "/optimizer/v", s->param->name, s->v);
    }
    int64_t packed[4];
    if (rc == 0) rc = ct_h5_read_blob(rd, STATE, "data_cursor", packed, sizeof packed);
    ct_data_cursor cursor = ct_data_cursor_unpack(packed);
    if (rc == 0 && ct_batcher_restore(t->batcher, &cursor) < 0)
        rc = ct_fail_context("resume=%s: the data or batching keys differ from the run that wrote it: ", path);
    if (rc == 0) rc = ct_trainer_select_load(t, rd, path);
    ct_h5_close(rd);
    if (rc < 0) return -1;
    if (step >= t->total_steps)
        return ct_fail("resume=%s: the run already took %lld of its %lld steps; raise train.max_steps to continue", path,
                       (long long)step, (long long)t->total_steps);
    CT_TRY(check_no_later_checkpoint(t, path, step));
    t->step = step;
    t->optimizer->step = optimizer_step;
    fprintf(t->log, "resumed from %s at step %lld\n", path, (long long)step);
    return 0;
}

/* Blob `key` of /state, NUL-terminated, or NULL (with a message) when absent. */
static char *read_text_blob(ct_h5_reader *rd, const char *key) {
    int64_t size = ct_h5_blob_size(rd, STATE, key);
    char *text = size >= 0 ? malloc((size_t)size + 1) : NULL;
    if (text && ct_h5_read_blob(rd, STATE, key, text, (size_t)size) == 0) {
        text[size] = '\0';
        return text;
    }
    free(text);
    return NULL;
}

int ct_trainer_extract_tokenizer(const char *checkpoint, const char *dir) {
    ct_h5_reader *rd = ct_h5_open(checkpoint);
    if (!rd) return -1;
    static const char *const files[][2] = {{"tokenizer_json", "tokenizer.json"},
                                           {"tokenizer_config_json", "tokenizer_config.json"}};
    int rc = ct_make_dirs(dir);
    for (int i = 0; rc == 0 && i < 2; i++) {
        char *text = read_text_blob(rd, files[i][0]);
        if (!text) {
            if (i == 0) rc = ct_fail_context("%s: no tokenizer inside: ", checkpoint);
            continue; /* tokenizer_config.json is optional */
        }
        char *path = ct_path_join(dir, files[i][1]);
        rc = path ? ct_atomic_write_file(path, text, strlen(text)) : -1;
        free(path);
        free(text);
    }
    ct_h5_close(rd);
    return rc;
}

/* Bases of bases (a run from a partial checkpoint) nest; a file naming itself must not loop. */
enum { MAX_BASE_DEPTH = 8 };
static _Thread_local int base_depth;

/* The base a partial checkpoint names, loaded as a model; its frozen tensors (those the
 * checkpoint does not store) must hash to the stored value. */
static ct_llama *load_base(ct_h5_reader *rd, const char *path, const char *base_path) {
    char *stored_hash = ct_h5_get_string(rd, STATE, "base_hash");
    if (!stored_hash) {
        ct_fail("%s: names base %s but stores no base_hash; the file is damaged", path, base_path);
        return NULL;
    }
    if (base_depth >= MAX_BASE_DEPTH) {
        free(stored_hash);
        ct_fail("%s: bases nest deeper than %d checkpoints (a base names itself?)", path, MAX_BASE_DEPTH);
        return NULL;
    }
    /* The base as the run held it (model.base_dtype), so that the hash of its frozen tensors is
     * the one the run stored. */
    ct_recipe r;
    char *text = ct_h5_get_string(rd, STATE, "recipe");
    int rc = text ? ct_recipe_init(&r) : -1;
    if (rc == 0 && (rc = ct_recipe_load_text(&r, text, strlen(text), path)) < 0) ct_recipe_free(&r);
    free(text);
    if (rc < 0) {
        free(stored_hash);
        ct_fail_context("%s: its recipe: ", path);
        return NULL;
    }
    ct_llama_load_options load;
    ct_lora_base_load_options(&r, &load);
    ct_model_source base;
    base_depth++;
    rc = ct_model_source_open_with(&base, base_path, &load);
    base_depth--;
    ct_recipe_free(&r);
    if (rc < 0) {
        ct_fail_context("%s: its frozen base %s (%s) does not load: ", path, base_path, stored_hash);
        free(stored_hash);
        return NULL;
    }
    if (base.tokenizer != base.model->tokenizer) ct_tokenizer_free(base.tokenizer);
    free(base.tokenizer_dir);
    free(base.recipe_yaml);
    ct_llama *m = base.model;
    ct_tensor **frozen = ct_calloc((size_t)m->n_params, sizeof *frozen, "the frozen tensor list");
    int n = 0;
    for (int i = 0; frozen && i < m->n_params; i++)
        if (!ct_h5_exists(rd, "/model", m->params[i]->name)) frozen[n++] = m->params[i];
    char hash[32];
    ct_hash_format(frozen ? ct_tensors_hash(frozen, n) : 0, hash);
    free(frozen);
    if (strcmp(hash, stored_hash) != 0) {
        ct_fail("%s: trained on base %s with frozen tensors %s, but they are %s there now; restore that base or "
                "retrain from the current one", path, base_path, stored_hash, hash);
        ct_llama_free(m);
        m = NULL;
    }
    free(stored_hash);
    return m;
}

/* The stored tensors over the base: each must be a parameter of the base model. */
static int overlay(ct_h5_reader *rd, const char *path, ct_llama *m) {
    char **names = NULL;
    int n = ct_h5_list_tensors(rd, "/model", &names), rc = n < 0 ? -1 : 0;
    for (int i = 0; rc == 0 && i < n; i++) {
        ct_tensor *p = NULL;
        for (int j = 0; j < m->n_params && !p; j++)
            if (!strcmp(m->params[j]->name, names[i])) p = m->params[j];
        rc = p ? ct_h5_read_tensor_into(rd, "/model", names[i], p)
               : ct_fail("%s: tensor %s is not a parameter of its base model", path, names[i]);
    }
    ct_h5_free_names(names, n);
    return rc;
}

/* A LoRA run's checkpoint holds adapters that no base has: attach them as the run did (its
 * stored recipe's lora section and model.adapter) before the tensors are read. */
static int rebuild_adapters(ct_h5_reader *rd, const char *path, ct_llama *m) {
    char *text = ct_h5_get_string(rd, STATE, "recipe");
    if (!text) return ct_fail_context("%s: ", path);
    ct_recipe r;
    int rc = ct_recipe_init(&r);
    if (rc == 0) rc = ct_recipe_load_text(&r, text, strlen(text), path);
    if (rc == 0 && r.lora.enabled) rc = ct_lora_setup_model(m, &r, NULL);
    if (rc < 0) ct_fail_context("%s: its LoRA adapters: ", path);
    ct_recipe_free(&r);
    free(text);
    return rc;
}

ct_llama *ct_trainer_load_model_from_checkpoint(const char *path, ct_tokenizer **tokenizer, char **recipe_yaml) {
    *tokenizer = NULL;
    *recipe_yaml = NULL;
    ct_h5_reader *rd = ct_h5_open(path);
    if (!rd) return NULL;
    ct_llama *m = NULL;
    char *config_json = ct_h5_get_string(rd, STATE, "model_config");
    char *base_path = config_json ? ct_h5_get_string(rd, STATE, "base_path") : NULL;
    ct_llama_config cfg;
    if (base_path) {
        m = load_base(rd, path, base_path);
        if (m && (rebuild_adapters(rd, path, m) < 0 || overlay(rd, path, m) < 0 || ct_prune_masks_load(rd, m, path) < 0)) {
            ct_llama_free(m);
            m = NULL;
        }
    } else {
        if (config_json && ct_llama_config_parse(config_json, path, &cfg) == 0) m = ct_llama_new(&cfg);
        if (m && (rebuild_adapters(rd, path, m) < 0 || read_weights(rd, m) < 0 || ct_prune_masks_load(rd, m, path) < 0)) {
            ct_llama_free(m);
            m = NULL;
        }
    }
    free(base_path);
    char *tokenizer_json = m ? read_text_blob(rd, "tokenizer_json") : NULL;
    if (tokenizer_json) *tokenizer = ct_tokenizer_load_text(tokenizer_json, strlen(tokenizer_json), path);
    if (m && !*tokenizer) {
        ct_fail_context("%s: the checkpoint holds no usable tokenizer: ", path);
        ct_llama_free(m);
        m = NULL;
    }
    free(tokenizer_json);
    free(config_json);
    if (m) *recipe_yaml = ct_h5_get_string(rd, STATE, "recipe");
    ct_h5_close(rd);
    return m;
}
