#include "train/model_source.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/error.h"
#include "checkpoints/hdf5_file.h"
#include "core/paths.h"
#include "train/trainer_internal.h"

/* dir/name, or NULL when it does not fit (paths longer than 4 KB are refused). */
static const char *path_in(char *buf, size_t size, const char *dir, const char *name) {
    return snprintf(buf, size, "%s/%s", dir, name) < (int)size ? buf : NULL;
}

/* The recipe.yaml of the run folder holding `model_dir` (run/model -> run/recipe.yaml). */
static char *run_recipe_of(const char *model_dir) {
    char path[4096];
    if (!path_in(path, sizeof path, model_dir, "../recipe.yaml") || !ct_is_file(path)) return NULL;
    char *text = ct_tok_read_file(path, NULL);
    if (!text) ct_fail("%s: unreadable", path); /* leaves no recipe: the caller goes on without one */
    return text;
}

static int open_folder(ct_model_source *source, const char *dir, const char *kind, const ct_llama_load_options *o) {
    snprintf(source->loaded_from, sizeof source->loaded_from, "%s", dir);
    source->kind = kind;
    source->model = ct_llama_load_with(dir, o);
    if (!source->model) return -1;
    source->tokenizer = source->model->tokenizer;
    source->tokenizer_dir = source->tokenizer ? ct_strdup(dir) : NULL;
    source->recipe_yaml = run_recipe_of(dir);
    return 0;
}

static int open_checkpoint(ct_model_source *source, const char *file, const char *kind) {
    snprintf(source->loaded_from, sizeof source->loaded_from, "%s", file);
    source->kind = kind;
    source->model = ct_trainer_load_model_from_checkpoint(file, &source->tokenizer, &source->recipe_yaml);
    return source->model ? 0 : -1;
}

int ct_model_source_open_newest_checkpoint(ct_model_source *source, const char *run, const char *kind) {
    memset(source, 0, sizeof *source);
    char dir[4096], latest[4096];
    if (!path_in(dir, sizeof dir, run, "checkpoints") || !ct_is_dir(dir)) return 0;
    int found = ct_h5_latest_checkpoint(dir, CT_CHECKPOINT_PATTERN, latest, sizeof latest, NULL);
    if (found <= 0) return found;
    return open_checkpoint(source, latest, kind) < 0 ? -1 : 1;
}

bool ct_model_source_is_gguf(const char *path) {
    size_t len = strlen(path);
    return len > 5 && !strcmp(path + len - 5, ".gguf");
}

int ct_model_source_open(ct_model_source *source, const char *path) { return ct_model_source_open_with(source, path, NULL); }

int ct_model_source_open_with(ct_model_source *source, const char *path, const ct_llama_load_options *o) {
    memset(source, 0, sizeof *source);
    char config[4096], nested_dir[4096], nested[4096];
    if (ct_model_source_is_gguf(path) && !ct_is_dir(path)) return ct_model_source_open_gguf(source, path);
    if (path_in(config, sizeof config, path, "config.json") && ct_is_file(config))
        return open_folder(source, path, "Hugging Face folder", o);
    if (path_in(nested_dir, sizeof nested_dir, path, CT_RUN_MODEL_DIR) &&
        path_in(nested, sizeof nested, nested_dir, "config.json") && ct_is_file(nested))
        return open_folder(source, nested_dir, "the run's model/ folder", o);
    if (ct_is_file(path)) return open_checkpoint(source, path, "checkpoint file");
    if (ct_is_dir(path)) {
        /* a run folder without model/ (interrupted, or still running): its newest checkpoint */
        int found = ct_model_source_open_newest_checkpoint(source, path, "the run's newest checkpoint; it has no model/ folder");
        if (found != 0) return found < 0 ? -1 : 0;
        if (path_in(config, sizeof config, path, "recipe.yaml") && ct_is_file(config))
            return ct_fail("%s: a run folder with neither a model/ folder nor a checkpoint in checkpoints/ (the run "
                           "stopped before its first checkpoint); train it again, or give a checkpoint file",
                           path);
    }
    if (!ct_is_dir(path))
        return ct_fail("%s does not exist; if it is another run's output (runs/NAME), run that recipe first, or give a "
                       "Hugging Face model folder, a .h5 checkpoint or a .gguf file", path);
    return ct_fail("%s: no config.json, model/ folder or checkpoint file there; give a Hugging Face model folder, "
                   "a ctune run folder or a .h5 checkpoint", path);
}
