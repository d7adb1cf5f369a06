/* The trainer's state, shared by train/trainer*.c (not a public header). */
#ifndef CT_TRAINER_INTERNAL_H
#define CT_TRAINER_INTERNAL_H

#include <stdio.h>

#include "core/clock.h"
#include "checkpoints/hdf5_file.h"
#include "datasets/batching.h"
#include "datasets/examples.h"
#include "datasets/label_set.h"
#include "datasets/sft.h"
#include "datasets/tokenizer.h"
#include "models/llama.h"
#include "train/metrics.h"
#include "train/optim.h"
#include "train/progress.h"
#include "train/recipe.h"
#include "train/schedule.h"
#include "train/trainable.h"
#include "train/trainer.h"

/* The file names a run directory holds. */
#define CT_RUN_TOKENIZER_DIR "tokenizer"
#define CT_RUN_MODEL_DIR "model"
#define CT_RUN_ADAPTER_DIR "adapter" /* a LoRA run's PEFT adapter folder */
#define CT_CHECKPOINT_PATTERN "step-%08d.h5"

typedef struct {
    const ct_recipe *recipe;
    const ct_train_hooks *hooks;
    FILE *log;
    int threads;

    ct_tokenizer *tokenizer; /* owned unless it is the model's */
    char *tokenizer_dir;     /* the folder of tokenizer.json, copied next to the saved model */
    ct_chat_template chat;
    ct_label_set *labels;
    ct_examples *train_examples, *val_examples, *test_examples; /* test: data.test, or NULL */
    ct_seq_store train_store, val_store, test_store;
    double test_accuracy; /* the final model's on data.test (NAN: not evaluated, or not intent data) */
    ct_batcher *batcher;
    int32_t pad_id, eos_id;

    ct_llama *model;
    struct ct_distill *distill; /* distill.teacher: the frozen teacher (train/distill.h); NULL = none */
    ct_trainable_set trainable; /* what trains: the optimizer, clipping and checkpoints take it */
    /* With model.path and a frozen part, checkpoints hold only the trainable tensors and name
     * the base (base_path, trainable.base_hash); from scratch (no base to name) they hold all. */
    bool partial_checkpoints;
    char *base_path; /* model.path made absolute, so a checkpoint finds it from any folder */
    ct_adamw *optimizer;
    ct_schedule schedule;
    int64_t step;        /* optimizer steps taken */
    int64_t total_steps;

    /* The run folder (train/run_folder.c): a tokenizer written during setup waits in
     * tokenizer_stage until the run starts; an earlier run is replaced only then. */
    char *tokenizer_stage;
    bool made_output_dir; /* setup created output_dir: removed again if the run never starts */
    bool replaces_run;    /* overwrite=true and output_dir holds an earlier run */

    ct_run_log *run_log;
    ct_progress progress;
    double started_at, elapsed_before; /* the run's clock across resumes */
    double tokens_per_s;
    struct ct_prune_run *prune; /* the prune section's state (train/prune_train.c), or NULL */
    struct ct_trainer_dist *dist; /* under mpirun (train/trainer_dist.c), else NULL */
    /* checkpoint.select=best_* (train/trainer_select.c), on rank 0: the best val evaluation so far
     * and host copies of the trainable tensors at its step. */
    struct {
        int64_t step; /* -1: none yet */
        double value;
        ct_tensor **weights; /* parallel to trainable.params; NULL until the first best */
    } best;
    FILE *quiet_log;              /* ranks other than 0 log here (/dev/null) */
} ct_trainer;

/* trainer_setup.c */
int ct_trainer_setup(ct_trainer *t, const ct_recipe *recipe, const ct_train_hooks *hooks);
void ct_trainer_teardown(ct_trainer *t);
/* The sft options (template, labels, system prompt, loss mode) of the recipe's data. */
ct_sft_options ct_trainer_sft_options(const ct_trainer *t);

/* run_folder.c: refuses an output_dir holding an earlier run (unless resume or overwrite);
 * stages setup's files; starts the run (removes the earlier run, places the staged tokenizer,
 * opens metrics.jsonl, writes recipe.yaml) once every check has passed; or abandons it. */
int ct_run_folder_check(ct_trainer *t);
const char *ct_run_folder_stage_tokenizer(ct_trainer *t); /* its path, owned by t; NULL on error */
int ct_run_folder_start(ct_trainer *t);
void ct_run_folder_abandon(ct_trainer *t);

/* trainer_step.c: one optimizer step; *loss gets its mean token loss. */
int ct_trainer_step(ct_trainer *t, double *loss, double *grad_norm, int64_t *tokens);

/* trainer_step.c: adds d(sum of token losses / total_targets) of micro-batch `index` of the step
 * to the gradients; *loss_sum gets its summed token loss. */
int ct_trainer_micro_batch(ct_trainer *t, const ct_batch *host, int index, int64_t total_targets, double *loss_sum);

/* trainer_dist.c: the trainer under mpirun (docs/distributed.md). Without it (t->dist NULL) each
 * function is the single-process answer. */
int ct_trainer_dist_begin(const ct_recipe *recipe); /* same binary and recipe on every rank; the split */
int ct_trainer_dist_setup(ct_trainer *t);           /* after the trainable set, before the optimizer */
void ct_trainer_dist_free(ct_trainer *t);
bool ct_trainer_is_root(const ct_trainer *t);       /* rank 0: logs, evaluates, writes */
/* The trainable tensors whose AdamW moments this rank keeps: all, or its ZeRO-1 slice. */
int ct_trainer_dist_owned(const ct_trainer *t, int *begin, int *end);
int ct_trainer_dist_owner(const ct_trainer *t, int index); /* the rank keeping tensor index's moments */
/* The step's gradient from this rank's share of the micro-batches, added up over the ranks;
 * *loss_sum: the summed token loss of all of them. */
int ct_trainer_dist_accumulate(ct_trainer *t, const ct_batch *batches, int64_t total_targets, double *loss_sum);
int ct_trainer_dist_share_params(ct_trainer *t); /* ZeRO-1: each slice from its owner */
int ct_trainer_dist_send_moments(ct_trainer *t); /* ZeRO-1, during rank 0's checkpoint */
int ct_trainer_dist_agree(const ct_trainer *t, int status); /* every rank's status */
int ct_trainer_dist_any(const ct_trainer *t, bool flag, bool *any);

/* trainer_state.c: checkpoints. */
int ct_trainer_save(ct_trainer *t, char *path, size_t size);
int ct_trainer_resume(ct_trainer *t, const char *path);
/* trainer_resume_check.c: the checkpoint's model config, tensors and tokenizer against this run's;
 * the first difference is refused naming the key or tensor and both values. */
int ct_trainer_check_checkpoint(const ct_trainer *t, ct_h5_reader *rd, const char *path);
/* The model of a checkpoint file, with the tokenizer and recipe stored in it (NULL if absent). A
 * checkpoint of a partly frozen run holds only the trainable tensors: its base is loaded from the
 * path it names (refused, naming both hashes, when the frozen tensors there changed) and the
 * stored tensors are laid over it. */
ct_llama *ct_trainer_load_model_from_checkpoint(const char *path, ct_tokenizer **tokenizer, char **recipe_yaml);

/* trainer_eval.c: evaluation of the model on a split; fills the record's measured fields. Intent
 * accuracy scores the first max_examples examples (0 = all). */
int ct_trainer_evaluate(ct_trainer *t, const char *split, ct_examples *examples, const ct_seq_store *store,
                        int64_t max_examples, ct_eval_record *record);

/* trainer_select.c: checkpoint.select. */
const char *ct_trainer_select_name(const ct_trainer *t);   /* "last", "best_val_accuracy", ... */
const char *ct_trainer_select_metric(const ct_trainer *t); /* "accuracy", "loss", ... */
/* After a val evaluation: keeps a copy of the trainable weights when it is the best so far. */
int ct_trainer_select_consider(ct_trainer *t, const ct_eval_record *record);
/* After the last evaluation: the selected weights back into the model (nothing for select=last). */
int ct_trainer_select_restore(ct_trainer *t);
/* Checkpoints: the selection written with the step's state, read back by a resume. */
int ct_trainer_select_save(const ct_trainer *t, ct_h5_writer *w);
int ct_trainer_select_load(ct_trainer *t, ct_h5_reader *rd, const char *path);
void ct_trainer_select_free(ct_trainer *t);

#endif
