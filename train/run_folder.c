/* The run folder's life: a run never destroys another run's results, and a run that fails to
 * start leaves the folder as it found it.
 *
 *   setup      ct_run_folder_check refuses an output_dir that holds an earlier run (recipe.yaml,
 *              metrics.jsonl, model/ or a checkpoint) unless the run resumes or says
 *              overwrite=true; files the setup must write (a learned or extracted tokenizer) go
 *              into a staging folder, output_dir/tokenizer.tmp-<pid>.
 *   start      ct_run_folder_start, once setup and the resume have passed every check: the
 *              earlier run's files are removed (overwrite=true), the staged tokenizer takes the
 *              place of output_dir/tokenizer, the run log is opened (a "start" record) and
 *              recipe.yaml is written. Nothing in the folder changes before this point.
 *   abandon    ct_run_folder_abandon, when the run never started: the staging folder goes, and
 *              so does output_dir when setup created it and it is empty again. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"
#include "checkpoints/hdf5_file.h"
#include "core/paths.h"
#include "train/trainer_internal.h"

/* The files of a run directory besides checkpoints, model/ and tokenizer/. */
static const char *const run_files[] = {"recipe.yaml", "metrics.jsonl", "plot.svg"};

static bool exists_in(const char *dir, const char *name) {
    char path[4096];
    return snprintf(path, sizeof path, "%s/%s", dir, name) < (int)sizeof path && (ct_is_file(path) || ct_is_dir(path));
}

/* The newest checkpoint of the recipe's checkpoint.dir into latest ("" when none); 1 when found. */
static int latest_checkpoint(const ct_recipe *r, char *latest, size_t size) {
    latest[0] = '\0';
    if (!ct_is_dir(r->checkpoint.dir)) return 0;
    return ct_h5_latest_checkpoint(r->checkpoint.dir, CT_CHECKPOINT_PATTERN, latest, size, NULL);
}

/* Appends ", item" (or "item" first) to list, a buffer of size bytes. */
static void list_add(char *list, size_t size, const char *item) {
    size_t n = strlen(list);
    snprintf(list + n, size - n, "%s%s", n ? ", " : "", item);
}

/* What an earlier run left in output_dir ("recipe.yaml, model/, checkpoints"), "" when nothing;
 * latest gets its newest checkpoint ("" when none). A plot alone is no run. */
static int earlier_run(const ct_recipe *r, char *what, size_t size, char *latest, size_t latest_size) {
    what[0] = '\0';
    static const char *const marks[][2] = {{"recipe.yaml", "recipe.yaml"}, {"metrics.jsonl", "metrics.jsonl"},
                                           {CT_RUN_MODEL_DIR, CT_RUN_MODEL_DIR "/"},
                                           {CT_RUN_ADAPTER_DIR, CT_RUN_ADAPTER_DIR "/"}}; /* name, as listed */
    for (size_t i = 0; i < sizeof marks / sizeof *marks; i++)
        if (exists_in(r->output_dir, marks[i][0])) list_add(what, size, marks[i][1]);
    int found = latest_checkpoint(r, latest, latest_size);
    if (found < 0) return -1;
    if (found) list_add(what, size, "checkpoints");
    return 0;
}

/* Whether path lies in (or is) dir, both resolved; false when either does not exist. */
static bool inside(const char *path, const char *dir) {
    char real_path[PATH_MAX], real_dir[PATH_MAX];
    if (!path[0] || !realpath(path, real_path) || !realpath(dir, real_dir)) return false;
    size_t n = strlen(real_dir);
    return strncmp(real_path, real_dir, n) == 0 && (real_path[n] == '/' || real_path[n] == '\0');
}

int ct_run_folder_check(ct_trainer *t) {
    const ct_recipe *r = t->recipe;
    if (r->resume[0]) return 0; /* continues the run in its folder */
    char what[256], latest[4096];
    CT_TRY(earlier_run(r, what, sizeof what, latest, sizeof latest));
    if (!what[0]) return 0;
    if (!r->overwrite) {
        if (latest[0])
            return ct_fail("output_dir=%s already holds a run (%s); continue it with resume=%s, train into another "
                           "output_dir=..., or set overwrite=true to replace it",
                           r->output_dir, what, latest);
        return ct_fail("output_dir=%s already holds a run (%s, no checkpoint to resume from); train into another "
                       "output_dir=... or set overwrite=true to replace it",
                       r->output_dir, what);
    }
    /* The run would delete what it starts from. */
    if (inside(r->model.path, r->output_dir))
        return ct_fail("overwrite=true would delete model.path=%s, which is inside output_dir=%s; copy the model "
                       "elsewhere or choose another output_dir", r->model.path, r->output_dir);
    if (inside(r->tokenizer.path, r->output_dir))
        return ct_fail("overwrite=true would delete tokenizer.path=%s, which is inside output_dir=%s; copy the "
                       "tokenizer elsewhere or choose another output_dir", r->tokenizer.path, r->output_dir);
    t->replaces_run = true;
    return 0;
}

const char *ct_run_folder_stage_tokenizer(ct_trainer *t) {
    const char *dir = t->recipe->output_dir;
    if (!ct_is_dir(dir)) {
        if (ct_make_dirs(dir) < 0) return NULL;
        t->made_output_dir = true;
    }
    char path[4096];
    if (snprintf(path, sizeof path, "%s/%s.tmp-%ld", dir, CT_RUN_TOKENIZER_DIR, (long)getpid()) >= (int)sizeof path) {
        ct_fail("output_dir=%s: path too long; use a shorter output_dir", dir);
        return NULL;
    }
    if (ct_remove_tree(path) < 0) return NULL; /* a leftover of an earlier process with our pid */
    free(t->tokenizer_stage);
    t->tokenizer_stage = ct_strdup(path);
    return t->tokenizer_stage;
}

/* The earlier run's files: only the names a run writes, never anything else in the folder. */
static int remove_earlier_run(const ct_recipe *r) {
    char path[4096], latest[4096];
    int found;
    while ((found = latest_checkpoint(r, latest, sizeof latest)) == 1)
        if (unlink(latest) < 0) return ct_fail("cannot remove %s (overwrite=true); check its permissions", latest);
    CT_TRY(found);
    static const char *const folders[] = {CT_RUN_MODEL_DIR, CT_RUN_TOKENIZER_DIR, CT_RUN_ADAPTER_DIR};
    for (size_t i = 0; i < sizeof folders / sizeof *folders; i++) {
        snprintf(path, sizeof path, "%s/%s", r->output_dir, folders[i]);
        CT_TRY(ct_remove_tree(path));
    }
    for (size_t i = 0; i < sizeof run_files / sizeof *run_files; i++) {
        snprintf(path, sizeof path, "%s/%s", r->output_dir, run_files[i]);
        CT_TRY(ct_remove_tree(path));
    }
    return 0;
}

/* The staged tokenizer becomes output_dir/tokenizer (replacing one an unfinished start left). */
static int place_tokenizer(ct_trainer *t) {
    char *final = ct_path_join(t->recipe->output_dir, CT_RUN_TOKENIZER_DIR);
    if (!final) return -1;
    int rc = ct_remove_tree(final);
    if (rc == 0 && rename(t->tokenizer_stage, final) != 0)
        rc = ct_fail("cannot move %s to %s; check the folder's permissions", t->tokenizer_stage, final);
    if (rc < 0) {
        free(final);
        return -1;
    }
    free(t->tokenizer_dir);
    t->tokenizer_dir = final;
    free(t->tokenizer_stage);
    t->tokenizer_stage = NULL;
    return 0;
}

int ct_run_folder_start(ct_trainer *t) {
    const ct_recipe *r = t->recipe;
    if (t->replaces_run) {
        CT_TRY(remove_earlier_run(r));
        fprintf(t->log, "overwrite: removed the earlier run in %s\n", r->output_dir);
    }
    if (t->tokenizer_stage) CT_TRY(place_tokenizer(t));
    t->made_output_dir = false;
    /* The log first: an unreadable metrics.jsonl stops the run with recipe.yaml untouched. */
    t->run_log = ct_run_log_open(r->output_dir);
    if (!t->run_log) return ct_fail_context("output_dir=%s: ", r->output_dir);
    char *path = ct_path_join(r->output_dir, "recipe.yaml");
    int rc = path ? ct_recipe_save(r, path) : -1;
    free(path);
    return rc;
}

void ct_run_folder_abandon(ct_trainer *t) {
    if (t->tokenizer_stage && ct_remove_tree(t->tokenizer_stage) < 0)
        fprintf(t->log, "warning: %s\n", ct_last_error());
    if (t->made_output_dir) rmdir(t->recipe->output_dir); /* only if empty: fine to fail */
    free(t->tokenizer_stage);
    t->tokenizer_stage = NULL;
    t->made_output_dir = false;
}
