/* Running the stages: which to skip, which to run again, which to refuse, and the record each
 * finished stage leaves (OUT/<stage>/stage.json).
 *
 * A stage's fingerprint hashes what it is made from: its resolved configuration (a training
 * stage's whole recipe with the pipeline's wiring), the data files that configuration names, and
 * its input stage's outputs hash. Its outputs hash covers every file it wrote. On a later run:
 *   record present, outputs hash differs      refused: the files were edited after it finished
 *   record present, same fingerprint          skipped
 *   record present, fingerprint differs       run again (the recipe, data or input changed)
 *   no record                                 run (an interrupted attempt is started over)
 * Every record is checked before any stage runs, so a refusal changes nothing on disk. */
#include <cjson/cJSON.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "cli/pipeline.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "core/paths.h"
#include "train/model_source.h"
#include "train/recipe.h"
#include "train/trainable.h"

typedef struct {
    bool present;
    uint64_t fingerprint, outputs;
} stage_record;

typedef struct {
    const ct_pipeline *p;
    const ct_pipeline_options *o;
    stage_record rec[CT_STAGE_COUNT];
    int64_t steps[CT_STAGE_COUNT]; /* each training stage's max_steps, for the ETA */
    double step_s;
    double start;
} runner;

static void record_path(const ct_pipeline *p, int stage, char *out, size_t n) {
    snprintf(out, n, "%s/%s/stage.json", p->output_dir, ct_stage_name(stage));
}

static uint64_t parse_hash(const cJSON *item) {
    const char *text = cJSON_GetStringValue(item);
    return text && !strncmp(text, "fnv1a64:", 8) ? strtoull(text + 8, NULL, 16) : 0;
}

static int read_record(const ct_pipeline *p, int stage, stage_record *r) {
    char path[4200];
    record_path(p, stage, path, sizeof path);
    memset(r, 0, sizeof *r);
    if (!ct_is_file(path)) return 0;
    char *text = ct_read_file(path, 1 << 24, NULL);
    cJSON *root = text ? cJSON_Parse(text) : NULL;
    free(text);
    r->fingerprint = parse_hash(cJSON_GetObjectItemCaseSensitive(root, "fingerprint"));
    r->outputs = parse_hash(cJSON_GetObjectItemCaseSensitive(root, "outputs"));
    cJSON_Delete(root);
    if (!r->fingerprint || !r->outputs)
        return ct_fail("%s: not a stage record (edited or damaged); remove %s/%s to run the stage again", path,
                       p->output_dir, ct_stage_name(stage));
    r->present = true;
    return 0;
}

static int outputs_hash(const ct_pipeline *p, int stage, uint64_t *hash) {
    char dir[4096], model[4096];
    CT_TRY(ct_stage_paths(p, stage, dir, sizeof dir, model, sizeof model));
    *hash = CT_PIPELINE_HASH_SEED;
    return ct_pipeline_hash_tree(dir, hash);
}

/* A data file's content, when the configuration names one. */
static int hash_file_if_set(const char *path, uint64_t *h) {
    if (!path || !path[0]) return 0;
    *h = ct_pipeline_hash_bytes(*h, path, strlen(path) + 1);
    return ct_is_file(path) ? ct_pipeline_hash_tree(path, h) : 0;
}

static int config_hash(runner *r, int stage, uint64_t *h) {
    const ct_pipeline *p = r->p;
    const ct_stage_conf *c = &p->stage[stage];
    *h = ct_pipeline_hash_bytes(CT_PIPELINE_HASH_SEED, ct_stage_name(stage), strlen(ct_stage_name(stage)) + 1);
    if (stage == CT_STAGE_TEACHER && c->reuse[0]) return 0; /* the reused run's files are its outputs */
    if (ct_stage_trains(stage)) {
        ct_recipe rec;
        char *yaml = ct_stage_recipe_yaml(p, stage);
        if (!yaml) return -1;
        *h = ct_pipeline_hash_bytes(*h, yaml, strlen(yaml));
        int rc = ct_recipe_init(&rec);
        if (rc == 0) rc = ct_recipe_load_text(&rec, yaml, strlen(yaml), "the stage's recipe");
        free(yaml);
        CT_TRY(rc);
        r->steps[stage] = rec.train.max_steps;
        const char *files[] = {rec.data.train, rec.data.val, rec.data.test, rec.data.labels};
        for (size_t i = 0; rc == 0 && i < sizeof files / sizeof files[0]; i++) rc = hash_file_if_set(files[i], h);
        ct_recipe_free(&rec);
        CT_TRY(rc);
    }
    char settings[512];
    snprintf(settings, sizeof settings, "type=%s server=%s serve_max=%d eval_max=%d", c->type, c->server,
             c->max_examples, p->eval_max_examples);
    *h = ct_pipeline_hash_bytes(*h, settings, strlen(settings) + 1);
    /* The stages that evaluate or serve read the test splits. */
    if (stage != CT_STAGE_TEACHER && stage != CT_STAGE_ADAPT && stage != CT_STAGE_EXPORT) {
        CT_TRY(hash_file_if_set(p->test, h));
        CT_TRY(hash_file_if_set(p->dialog_test, h));
    }
    return 0;
}

/* What a stage reads of its input stage: the model it made (and a teacher's tokenizer), not its
 * logs or metrics, so a stage run again to the same model leaves the later stages finished. */
static int input_hash(const ct_pipeline *p, int input, uint64_t *h) {
    char dir[4096], model[4096];
    CT_TRY(ct_stage_paths(p, input, dir, sizeof dir, model, sizeof model));
    CT_TRY(ct_pipeline_hash_tree(model, h));
    if (input != CT_STAGE_TEACHER) return 0;
    char *tokenizer = ct_path_join(dir, "tokenizer"); /* none when the teacher was given one */
    int rc = !tokenizer ? -1 : ct_is_dir(tokenizer) ? ct_pipeline_hash_tree(tokenizer, h) : 0;
    free(tokenizer);
    return rc;
}

static int fingerprint(runner *r, int stage, uint64_t *h) {
    CT_TRY(config_hash(r, stage, h));
    int input = ct_stage_input(stage);
    return input >= 0 ? input_hash(r->p, input, h) : 0;
}

/* Before anything runs: every recipe resolves, every record is one and its files are as the
 * stage left them. */
static int check_all(runner *r) {
    for (int s = 0; s < CT_STAGE_COUNT; s++) {
        uint64_t h;
        CT_TRY(config_hash(r, s, &h));
        CT_TRY(read_record(r->p, s, &r->rec[s]));
        if (!r->rec[s].present) continue;
        uint64_t now;
        char dir[4096], model[4096];
        CT_TRY(ct_stage_paths(r->p, s, dir, sizeof dir, model, sizeof model));
        if (outputs_hash(r->p, s, &now) < 0 || now != r->rec[s].outputs)
            return ct_fail("stage %s: the files in %s changed after the stage finished (outputs hash %016llx recorded, "
                           "%016llx now); restore them, or remove %s/%s to run the stage again",
                           ct_stage_name(s), dir, (unsigned long long)r->rec[s].outputs, (unsigned long long)now,
                           r->p->output_dir, ct_stage_name(s));
    }
    return 0;
}

static int write_record(const ct_pipeline *p, const ct_stage_run *s, uint64_t fp, uint64_t outputs, double seconds) {
    char fp_text[32], out_text[32], path[4200];
    ct_hash_format(fp, fp_text);
    ct_hash_format(outputs, out_text);
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "stage", ct_stage_name(s->stage));
    cJSON_AddStringToObject(root, "fingerprint", fp_text);
    cJSON_AddStringToObject(root, "outputs", out_text);
    cJSON_AddStringToObject(root, "dir", s->dir);
    cJSON_AddNumberToObject(root, "seconds", seconds);
    cJSON_AddNumberToObject(root, "train_seconds", s->train_seconds);
    cJSON_AddNumberToObject(root, "finished_unix_time", (double)time(NULL));
    cJSON_AddItemReferenceToObject(root, "metrics", s->metrics);
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    if (!text) return ct_fail("out of memory writing the record of stage %s", ct_stage_name(s->stage));
    record_path(p, s->stage, path, sizeof path);
    int rc = ct_atomic_write_file(path, text, strlen(text));
    free(text);
    return rc;
}

/* The ETA's guess for the stages after `stage`: their training steps at the last step time, and
 * about 20 s for each other stage (an export, or a model's two evaluations). */
static void later_work(const runner *r, int stage, ct_stage_run *s) {
    s->later_steps = 0;
    s->later_fixed_s = 0;
    int last = r->o->only_stage >= 0 ? stage : CT_STAGE_COUNT - 1;
    for (int t = stage + 1; t <= last; t++) {
        if (r->rec[t].present) continue;
        s->later_steps += ct_stage_trains(t) ? r->steps[t] : 0;
        s->later_fixed_s += t == CT_STAGE_SERVE ? 60 : 20;
    }
}

/* An interrupted training stage whose run folder holds a checkpoint of the same recipe (the
 * resolved one, `resume` and `overwrite` aside): its path, so the stage continues from there. */
static bool resumable(const ct_pipeline *p, int stage, int64_t max_steps, char *checkpoint, size_t size) {
    char dir[4200], *saved = NULL;
    snprintf(dir, sizeof dir, "%s/%s", p->output_dir, ct_stage_name(stage));
    if (!ct_stage_trains(stage) || !ct_is_dir(dir)) return false;
    char *yaml = ct_stage_recipe_yaml(p, stage), *recipe_file = ct_path_join(dir, "recipe.yaml");
    ct_recipe now, before;
    bool same = false;
    if (yaml && recipe_file && ct_is_file(recipe_file) && ct_recipe_init(&now) == 0) {
        if (ct_recipe_init(&before) == 0) {
            saved = ct_read_file(recipe_file, 1 << 20, NULL);
            same = saved && ct_recipe_load_text(&now, yaml, strlen(yaml), "stage") == 0 &&
                   ct_recipe_load_text(&before, saved, strlen(saved), recipe_file) == 0 &&
                   ct_recipe_set(&before, "resume", "") == 0 && ct_recipe_set(&before, "overwrite", "true") == 0 &&
                   !ct_recipe_first_difference(&now, &before);
            ct_recipe_free(&before);
        }
        ct_recipe_free(&now);
    }
    free(yaml);
    free(recipe_file);
    free(saved);
    ct_model_source src;
    int found = same ? ct_model_source_open_newest_checkpoint(&src, dir, "the stage's newest checkpoint") : 0;
    if (found == 1) {
        snprintf(checkpoint, size, "%s", src.loaded_from);
        ct_model_source_close(&src);
    }
    ct_clear_error();
    /* A run stopped after its last step (in the stage's evaluation) has nothing left to train:
     * the trainer's checkpoints are step-NNNNNNNN.h5 (docs/formats.md). */
    const char *base = strrchr(checkpoint, '/');
    long long step = 0;
    if (found == 1 && base && sscanf(base, "/step-%lld.h5", &step) == 1 && step >= max_steps) found = 0;
    return found == 1;
}

/* The stage's folder, emptied of an earlier attempt (`said`: the reason was printed already). */
static int prepare_dir(const ct_pipeline *p, int stage, bool said) {
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/%s", p->output_dir, ct_stage_name(stage));
    if (ct_is_dir(dir)) {
        if (!said)
            fprintf(stderr, "[%d/%d] %s: starting over in %s (an unfinished attempt, without a record)\n", stage + 1,
                    CT_STAGE_COUNT, ct_stage_name(stage), dir);
        CT_TRY(ct_remove_tree(dir));
    }
    return ct_make_dirs(dir);
}

static int run_stage(runner *r, int stage) {
    const ct_pipeline *p = r->p;
    int input = ct_stage_input(stage);
    if (input >= 0 && !r->rec[input].present) {
        char dir[4096], model[4096];
        CT_TRY(ct_stage_paths(p, input, dir, sizeof dir, model, sizeof model));
        return ct_fail("stage %s: its input %s is missing; stage %s makes it (ctune run %s --stage %s, or the whole "
                       "pipeline)",
                       ct_stage_name(stage), model[0] ? model : dir, ct_stage_name(input), p->file, ct_stage_name(input));
    }
    uint64_t fp;
    CT_TRY(fingerprint(r, stage, &fp));
    if (r->rec[stage].present && r->rec[stage].fingerprint == fp) {
        fprintf(stderr, "[%d/%d] %s: finished earlier with the same inputs and configuration: skipped\n", stage + 1,
                CT_STAGE_COUNT, ct_stage_name(stage));
        return 0;
    }
    if (r->rec[stage].present)
        fprintf(stderr, "[%d/%d] %s: its configuration, data or input changed since it finished: running it again\n",
                stage + 1, CT_STAGE_COUNT, ct_stage_name(stage));
    ct_stage_run s = {.p = p, .stage = stage, .stop_requested = r->o->stop_requested, .step_s = r->step_s};
    if (!r->rec[stage].present && resumable(p, stage, r->steps[stage], s.resume, sizeof s.resume))
        fprintf(stderr, "[%d/%d] %s: continuing the interrupted run from %s\n", stage + 1, CT_STAGE_COUNT,
                ct_stage_name(stage), s.resume);
    else {
        s.resume[0] = '\0';
        CT_TRY(prepare_dir(p, stage, r->rec[stage].present));
    }
    r->rec[stage].present = false;
    CT_TRY(ct_stage_paths(p, stage, s.dir, sizeof s.dir, s.model, sizeof s.model));
    snprintf(s.log, sizeof s.log, "%s/%s/stage.log", p->output_dir, ct_stage_name(stage));
    later_work(r, stage, &s);
    if (!(s.metrics = cJSON_CreateObject())) return ct_fail("out of memory");
    if (!ct_stage_trains(stage))
        fprintf(stderr, "[%d/%d] %s: running (log %s)\n", stage + 1, CT_STAGE_COUNT, ct_stage_name(stage), s.log);
    double start = ct_seconds_now();
    int rc = ct_stage_execute(&s);
    if (s.step_s > 0) r->step_s = s.step_s;
    uint64_t outputs = 0;
    if (rc == 0 && !s.interrupted) rc = outputs_hash(p, stage, &outputs);
    /* A continued stage's time includes the part trained before the interruption. */
    if (rc == 0 && !s.interrupted) rc = write_record(p, &s, fp, outputs, ct_seconds_now() - start + s.earlier_seconds);
    cJSON_Delete(s.metrics);
    CT_TRY(rc);
    if (s.interrupted) return 1;
    r->rec[stage] = (stage_record){true, fp, outputs};
    fprintf(stderr, "[%d/%d] %s: done in %.1f s (elapsed %.0f s)\n", stage + 1, CT_STAGE_COUNT, ct_stage_name(stage),
            ct_seconds_now() - start, ct_seconds_now() - r->start);
    return 0;
}

int ct_pipeline_run(const ct_pipeline *p, const ct_pipeline_options *o) {
    runner r = {.p = p, .o = o, .start = ct_seconds_now()};
    CT_TRY(check_all(&r));
    /* The evaluations and exports too, not only the training stages (which set it themselves). */
    if (p->threads > 0) omp_set_num_threads(p->threads);
    int first = o->only_stage >= 0 ? o->only_stage : 0, last = o->only_stage >= 0 ? o->only_stage : CT_STAGE_COUNT - 1;
    for (int s = first; s <= last; s++) {
        if (o->stop_requested && *o->stop_requested) return 1;
        int rc = run_stage(&r, s);
        if (rc != 0) return rc;
    }
    if (o->stop_requested && *o->stop_requested) return 1;
    return ct_pipeline_report(p, stdout);
}
