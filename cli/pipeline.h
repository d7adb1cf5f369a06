/* `ctune run PIPELINE.yaml`: the stages from a corpus to a served INT8 intent model, each an
 * existing recipe or command, sharing one run folder (docs/pipeline.md).
 *
 *   teacher   pretrain a model (a recipe), or reuse a finished pretraining run
 *   adapt     fine-tune it to the intents (a full or LoRA recipe)
 *   merge     `ctune export --format hf`: the adapted teacher as one folder (LoRA merged)
 *   distill   a smaller student trained against that teacher (a distillation recipe)
 *   prune     the student pruned and recovered (a pruning recipe)
 *   quantize  `ctune export --format int8-safetensors` of the pruned student
 *   export    `ctune export --format gguf --type q8_0` of the pruned student
 *   serve     llama-server serves the GGUF: answers, agreement with ctune, latency
 *
 * Each stage writes OUT/<stage>/ and, last, OUT/<stage>/stage.json: a fingerprint of what it was
 * made from (its resolved configuration, its input stage's outputs, the data files it read) and
 * a hash of the files it wrote. A later run skips a stage whose record matches, runs it again
 * when its fingerprint changed, and refuses one whose files changed after it finished.
 *
 * These files live in cli/ because the stages call the commands' own entry functions
 * (ct_cmd_export, ct_cmd_eval, ct_cmd_generate) and the trainer, in-process. */
#ifndef CT_PIPELINE_H
#define CT_PIPELINE_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "cli/commands.h"

typedef enum {
    CT_STAGE_TEACHER,
    CT_STAGE_ADAPT,
    CT_STAGE_MERGE,
    CT_STAGE_DISTILL,
    CT_STAGE_PRUNE,
    CT_STAGE_QUANTIZE,
    CT_STAGE_EXPORT,
    CT_STAGE_SERVE,
    CT_STAGE_COUNT
} ct_stage_id;

/* One stage's settings from the pipeline file. Strings are owned and never NULL ("" = unset). */
typedef struct {
    char *recipe;      /* training stages: the recipe file */
    char *reuse;       /* teacher: a finished pretraining run folder used instead of training one */
    char **set;        /* training stages: "key=value" recipe overrides, in order (later wins) */
    int n_set;
    char *type;        /* export: the GGUF type (q8_0) */
    char *server;      /* serve: llama-server's path ("" = $CT_LLAMA_SERVER, then the CI cache) */
    int max_examples;  /* serve: test prompts sent (0 = all) */
} ct_stage_conf;

typedef struct {
    char *file; /* the pipeline file, for messages */
    char *name, *description, *output_dir, *test, *dialog_test, *baselines;
    int threads;           /* OMP threads for every stage (0 = all cores) */
    int eval_max_examples; /* the evaluations of each model read this many examples (0 = all) */
    ct_stage_conf stage[CT_STAGE_COUNT];
} ct_pipeline;

const char *ct_stage_name(int stage);
/* The stage called `name`, or -1. */
int ct_stage_find(const char *name);
/* "teacher, adapt, ..., serve" for messages. */
const char *ct_stage_list(void);
/* Whether the stage trains with a recipe (teacher, adapt, distill, prune). */
bool ct_stage_trains(int stage);
/* The stage whose outputs a stage reads (-1 for the teacher). */
int ct_stage_input(int stage);

/* Reads the pipeline file, then the `key=value` overrides (the file's dotted keys: output_dir=...,
 * adapt.recipe=..., distill.set.train.max_steps=20). Checks that every recipe file exists. All or
 * nothing: -1 with a one-line message naming the file and key. */
int ct_pipeline_load(ct_pipeline *p, const char *path, int n_overrides, char *const *overrides);
void ct_pipeline_free(ct_pipeline *p);

/* ---- one run of the pipeline (cli/pipeline_run.c) ---- */

typedef struct {
    int only_stage;                        /* -1: every stage; else run just this one */
    volatile sig_atomic_t *stop_requested; /* Ctrl-C: stop at the next step or stage boundary */
} ct_pipeline_options;

/* Runs the stages in order (or one), skipping finished ones, then writes the report. 0, 1 when
 * interrupted (a training stage saved a checkpoint), -1 with a one-line message. */
int ct_pipeline_run(const ct_pipeline *p, const ct_pipeline_options *o);

/* ---- what the stages share (cli/pipeline_stage*.c) ---- */

/* Where a stage writes (OUT/<stage>), its record, and for the model stages the model it made. */
typedef struct {
    const ct_pipeline *p;
    int stage;
    char dir[4096];        /* OUT/<stage>, or the reused teacher run */
    char model[4096];      /* the model the stage made (a folder, a run or a .gguf file), or "" */
    char log[4096];        /* OUT/<stage>/stage.log: what the commands printed */
    double train_seconds;  /* the training part of the stage (a continued run's earlier part included) */
    double earlier_seconds; /* a continued training stage: its training time before this process */
    volatile sig_atomic_t *stop_requested;
    bool interrupted;
    char resume[4096];     /* a training stage's checkpoint to continue from, or "" */
    double step_s;         /* the last training stage's seconds per step (the ETA's guess) */
    int64_t later_steps;   /* training steps of the stages after this one, for the ETA */
    double later_fixed_s;  /* a guess of the later stages' other work, for the ETA */
    struct cJSON *metrics; /* what the stage measured, recorded in stage.json (owned) */
} ct_stage_run;

/* The folder of a stage's run (OUT/<stage>, or teacher.reuse) and the model it makes. */
int ct_stage_paths(const ct_pipeline *p, int stage, char *dir, size_t dir_size, char *model, size_t model_size);

/* The resolved recipe text of a training stage, with the pipeline's wiring applied: its input
 * stage's folders, output_dir, threads. What the stage's fingerprint hashes. NULL on error. */
char *ct_stage_recipe_yaml(const ct_pipeline *p, int stage);
/* Runs the stage's work into s->dir (which exists and is empty of earlier results). */
int ct_stage_execute(ct_stage_run *s);

/* Calls a command's entry function in-process with stdout and stderr going to `log` (appended).
 * Returns the command's exit code; a non-zero one leaves ct_last_error holding the log's last
 * line (the command's own one-line message). */
int ct_pipeline_call(ct_command_fn fn, const char *log, int argc, char **argv);
/* The same with stdout into the file `out` (truncated) and only stderr into the log. */
int ct_pipeline_call_capture(ct_command_fn fn, const char *log, const char *out, int argc, char **argv);

/* Evaluates a model on the pipeline's test and dialog splits and records what the table shows:
 * parameters, bytes on disk, both accuracies, eval tokens/s (into s->metrics). */
int ct_stage_measure_model(ct_stage_run *s);

/* The serve stage (cli/pipeline_serve.c): records the served model's numbers, or a note that
 * llama-server was not found. */
int ct_stage_serve(ct_stage_run *s);

/* FNV-1a 64 of every file under `path` (a file or a folder, walked in name order: relative names
 * and bytes), leaving out stage.json and stage.log. `*hash` starts as the caller's seed. */
int ct_pipeline_hash_tree(const char *path, uint64_t *hash);
uint64_t ct_pipeline_hash_bytes(uint64_t hash, const void *data, size_t n);
#define CT_PIPELINE_HASH_SEED 1469598103934665603ull

/* An SVG bar chart of each model's single- and multi-turn accuracy (NaN: no bar), for the report. */
int ct_pipeline_accuracy_svg(const char *path, const char *const *names, const double *single, const double *multi,
                             int n);

/* The report: the table on stdout, OUT/report.json, OUT/report.md (the overview with the plots). */
int ct_pipeline_report(const ct_pipeline *p, FILE *out);

#endif
