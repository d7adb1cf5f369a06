/* The work of each stage: a recipe run through the trainer, or a command's entry function
 * (ctune export) called in-process, with the pipeline's folders wired in. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "cli/pipeline.h"
#include "core/error.h"
#include "core/paths.h"
#include "train/recipe.h"
#include "train/trainer.h"

static int join(char *out, size_t size, const char *a, const char *b) {
    if ((size_t)snprintf(out, size, "%s/%s", a, b) >= size) return ct_fail("path too long: %s/%s", a, b);
    return 0;
}

int ct_stage_paths(const ct_pipeline *p, int stage, char *dir, size_t dir_size, char *model, size_t model_size) {
    const char *reuse = p->stage[CT_STAGE_TEACHER].reuse;
    if (stage == CT_STAGE_TEACHER && reuse[0]) snprintf(dir, dir_size, "%s", reuse);
    else CT_TRY(join(dir, dir_size, p->output_dir, ct_stage_name(stage)));
    switch (stage) {
    case CT_STAGE_TEACHER: case CT_STAGE_ADAPT: case CT_STAGE_DISTILL: case CT_STAGE_PRUNE:
    case CT_STAGE_MERGE: case CT_STAGE_QUANTIZE:
        return join(model, model_size, dir, "model");
    case CT_STAGE_EXPORT: return join(model, model_size, dir, "model.gguf");
    default: model[0] = '\0'; return 0;
    }
}

/* ---- training stages ---------------------------------------------------------------------- */

/* The overrides that tie a training stage to the pipeline, applied after the file's `set:` keys
 * so a stage always reads its input stage's outputs and writes its own folder. */
static int wiring(const ct_pipeline *p, int stage, char items[6][4200], int *n) {
    char dir[4096], model[4096], in_dir[4096], in_model[4096];
    CT_TRY(ct_stage_paths(p, stage, dir, sizeof dir, model, sizeof model));
    *n = 0;
    snprintf(items[(*n)++], 4200, "output_dir=%s", dir);
    snprintf(items[(*n)++], 4200, "overwrite=true");
    if (p->threads > 0) snprintf(items[(*n)++], 4200, "threads=%d", p->threads);
    int input = ct_stage_input(stage);
    if (input < 0) return 0;
    CT_TRY(ct_stage_paths(p, input, in_dir, sizeof in_dir, in_model, sizeof in_model));
    if (stage == CT_STAGE_ADAPT) {
        snprintf(items[(*n)++], 4200, "model.path=%s", in_dir);
        /* The tokenizer the teacher learned; a teacher given one (tokenizer.train=false) has no
         * tokenizer/ of its own, and its model folder holds the one it used. */
        char learned[sizeof in_dir + 16];
        snprintf(learned, sizeof learned, "%s/tokenizer", in_dir);
        snprintf(items[(*n)++], 4200, "tokenizer.path=%s", ct_is_dir(learned) ? learned : in_model);
    } else if (stage == CT_STAGE_DISTILL) {
        snprintf(items[(*n)++], 4200, "distill.teacher=%s", in_model);
        snprintf(items[(*n)++], 4200, "tokenizer.path=%s", in_model);
    } else if (stage == CT_STAGE_PRUNE) {
        snprintf(items[(*n)++], 4200, "model.path=%s", in_dir);
    }
    return 0;
}

static int resolve_recipe(const ct_pipeline *p, int stage, const char *resume, ct_recipe *r) {
    const ct_stage_conf *c = &p->stage[stage];
    char items[6][4200];
    int n_wired;
    CT_TRY(wiring(p, stage, items, &n_wired));
    int n = c->n_set + n_wired;
    char **all = malloc(sizeof *all * (size_t)n);
    if (!all) return ct_fail("out of memory");
    for (int i = 0; i < c->n_set; i++) all[i] = c->set[i];
    for (int i = 0; i < n_wired; i++) all[c->n_set + i] = items[i];
    int rc = ct_recipe_resolve(r, c->recipe, n, all);
    free(all);
    if (rc < 0) return ct_fail_context("stage %s (%s): ", ct_stage_name(stage), c->recipe);
    /* An interrupted stage continues its run; the fingerprint never sees this key. */
    if (resume && resume[0] && (ct_recipe_set(r, "resume", resume) < 0 || ct_recipe_set(r, "overwrite", "false") < 0)) {
        ct_recipe_free(r);
        return -1;
    }
    return 0;
}

char *ct_stage_recipe_yaml(const ct_pipeline *p, int stage) {
    ct_recipe r;
    if (resolve_recipe(p, stage, NULL, &r) < 0) return NULL;
    char *yaml = ct_recipe_to_yaml(&r);
    ct_recipe_free(&r);
    if (!yaml) ct_fail("out of memory writing the recipe of stage %s", ct_stage_name(stage));
    return yaml;
}

/* The progress line: stage, step, loss, the stage's ETA and the pipeline's (the later stages'
 * estimate from the runner added). Redrawn in place on a terminal, else every 10 s. */
typedef struct {
    ct_stage_run *s;
    int64_t max_steps;
    double start, last_print, step_ema;
    int64_t steps_seen;
    bool tty;
} progress;

static void format_duration(double s, char *out, size_t n) {
    if (!(s >= 0) || s > 1e7) snprintf(out, n, "?");
    else snprintf(out, n, "%dm%02ds", (int)s / 60, (int)s % 60);
}

static void on_step(void *user, int64_t step, double loss) {
    progress *g = user;
    double t = ct_seconds_now();
    /* Timed from the first step's end, so the set-up (data, a tokenizer learned) does not count. */
    if (g->steps_seen++ == 0) g->start = t;
    double per_step = g->steps_seen > 1 ? (t - g->start) / (double)(g->steps_seen - 1) : g->s->step_s;
    if (g->steps_seen > 1) g->s->step_s = per_step;
    if (t - g->last_print < (g->tty ? 0.2 : 10.0) && step < g->max_steps) return;
    g->last_print = t;
    double stage_left = per_step > 0 ? per_step * (double)(g->max_steps - step) : -1;
    double rest = stage_left < 0 ? -1 : stage_left + g->s->later_fixed_s + per_step * (double)g->s->later_steps;
    char a[32], b[32];
    format_duration(stage_left, a, sizeof a);
    format_duration(rest, b, sizeof b);
    fprintf(stderr, "%s[%d/%d] %-8s step %lld/%lld  loss %.4f  stage ETA %s  pipeline ETA %s%s", g->tty ? "\r" : "",
            g->s->stage + 1, CT_STAGE_COUNT, ct_stage_name(g->s->stage), (long long)step, (long long)g->max_steps, loss, a,
            b, g->tty ? "   " : "\n");
    fflush(stderr);
}

/* The run's own training time: the last elapsed_s of metrics.jsonl, which counts across a
 * resume (an interrupted stage continued), unlike this process's clock. */
static double logged_seconds(const ct_stage_run *s, double fallback) {
    char path[4200];
    snprintf(path, sizeof path, "%s/metrics.jsonl", s->dir);
    FILE *f = fopen(path, "r");
    if (!f) return fallback;
    char *line = NULL;
    size_t cap = 0;
    double seconds = fallback;
    while (getline(&line, &cap, f) > 0) {
        if (!strstr(line, "\"elapsed_s\"")) continue;
        cJSON *root = cJSON_Parse(line);
        cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "elapsed_s");
        if (cJSON_IsNumber(v)) seconds = v->valuedouble;
        cJSON_Delete(root);
    }
    free(line);
    fclose(f);
    return seconds;
}

static int run_training(ct_stage_run *s) {
    ct_recipe r;
    CT_TRY(resolve_recipe(s->p, s->stage, s->resume, &r));
    FILE *log = fopen(s->log, "a");
    if (!log) {
        ct_recipe_free(&r);
        return ct_fail("cannot open the stage log %s", s->log);
    }
    progress g = {.s = s, .max_steps = r.train.max_steps, .start = ct_seconds_now(), .tty = isatty(STDERR_FILENO)};
    ct_train_hooks hooks = {.stop_requested = s->stop_requested, .log = log, .on_step = on_step, .user = &g};
    ct_train_result result;
    double start = ct_seconds_now();
    int rc = ct_train(&r, &hooks, &result);
    double wall = ct_seconds_now() - start;
    s->train_seconds = logged_seconds(s, wall);
    if (s->resume[0] && s->train_seconds > wall) s->earlier_seconds = s->train_seconds - wall;
    if (g.tty && g.steps_seen) fputc('\n', stderr);
    if (rc < 0) fprintf(log, "ctune train: %s\n", ct_last_error());
    fclose(log);
    ct_recipe_free(&r);
    if (rc < 0) return ct_fail_context("stage %s: ", ct_stage_name(s->stage));
    s->interrupted = result.interrupted;
    return 0;
}

/* ---- command stages ----------------------------------------------------------------------- */

static int call_export(ct_stage_run *s, const char *from, const char *format, const char *type) {
    char *argv[] = {"export", "--model", (char *)from, "--format", (char *)format, "--out", s->model,
                    type ? "--type" : NULL, (char *)type, NULL};
    int argc = type ? 9 : 7;
    double start = ct_seconds_now();
    if (ct_pipeline_call(ct_cmd_export, s->log, argc, argv) != 0)
        return ct_fail_context("stage %s: ctune export: ", ct_stage_name(s->stage));
    s->train_seconds = ct_seconds_now() - start;
    return 0;
}

static int input_paths(const ct_stage_run *s, char *dir, char *model) {
    return ct_stage_paths(s->p, ct_stage_input(s->stage), dir, 4096, model, 4096);
}

int ct_stage_execute(ct_stage_run *s) {
    char in_dir[4096], in_model[4096];
    if (ct_stage_input(s->stage) >= 0) CT_TRY(input_paths(s, in_dir, in_model));
    switch (s->stage) {
    case CT_STAGE_TEACHER:
        if (s->p->stage[CT_STAGE_TEACHER].reuse[0]) { /* a finished run: nothing to train; its time counts */
            s->train_seconds = logged_seconds(s, 0);
            return 0;
        }
        return run_training(s);
    case CT_STAGE_ADAPT: return run_training(s);
    case CT_STAGE_DISTILL: case CT_STAGE_PRUNE:
        CT_TRY(run_training(s));
        return s->interrupted ? 0 : ct_stage_measure_model(s);
    case CT_STAGE_MERGE:
        CT_TRY(call_export(s, in_dir, "hf", NULL));
        return ct_stage_measure_model(s);
    case CT_STAGE_QUANTIZE:
        CT_TRY(call_export(s, in_dir, "int8-safetensors", NULL));
        return ct_stage_measure_model(s);
    case CT_STAGE_EXPORT: {
        CT_TRY(call_export(s, in_dir, "gguf", s->p->stage[CT_STAGE_EXPORT].type));
        uint64_t bytes = 0;
        FILE *f = fopen(s->model, "rb");
        if (f && fseek(f, 0, SEEK_END) == 0) bytes = (uint64_t)ftell(f);
        if (f) fclose(f);
        cJSON_AddNumberToObject(s->metrics, "bytes", (double)bytes);
        return 0;
    }
    case CT_STAGE_SERVE: return ct_stage_serve(s);
    default: return ct_fail("unknown stage %d", s->stage);
    }
}
