/* The trainer: one recipe (train/recipe.h) in, a trained model out.
 *
 *   setup     threads; the tokenizer (loaded, or learned from data.train); the model (a Hugging
 *             Face folder, a ctune checkpoint or run folder, or a new one from the model.* keys);
 *             the data (examples -> token ids and loss masks -> a batcher); AdamW with parameter
 *             groups (no weight decay on norms and biases); the schedule; and, with `resume`,
 *             everything a checkpoint holds.
 *   a step    train.grad_accum micro-batches are drawn first, so the loss can be normalized by
 *             the number of target tokens of all of them together (not per micro-batch: a short
 *             micro-batch must not weigh as much as a long one); each micro-batch adds
 *             sum(token losses) / total_targets to the gradients; then clipping, the schedule's
 *             learning rate and one AdamW update.
 *   around    evaluation every train.eval_every steps, checkpoints every checkpoint.every steps
 *             and at the end (HDF5, atomic, keep-last-N), metrics.jsonl and a progress line, and a
 *             Hugging Face folder of the final model in output_dir/model: the last step's, or
 *             the best val evaluation's (checkpoint.select, train/trainer_select.c).
 *
 * On the CPU a run is deterministic for a given seed and thread count, and a run resumed from a
 * checkpoint produces bit-identical losses to an uninterrupted one: the checkpoint holds the
 * weights, both AdamW moments, the step, the data cursor and the thread count (a resume with
 * another thread count is refused, since reductions would round differently). Dropout and data
 * order come from counter-based streams keyed on (seed, step), so there is no generator state.
 *
 * device=cuda keeps parameters, gradients and AdamW moments on the GPU and copies each
 * micro-batch there; train.precision=bf16 computes the forward and backward in bf16 storage from
 * f32 master weights (docs/training.md, "Precision" and "Device"). Both are checked before
 * anything is read or written.
 *
 * A NaN or infinite loss or gradient norm stops the run with the step number; checkpoints are
 * only written after a finite update, so the last one on disk stays good. */
#ifndef CT_TRAINER_H
#define CT_TRAINER_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "train/recipe.h"

typedef struct {
    /* Set (to non-zero) by a signal handler: the loop saves a checkpoint at the next step
     * boundary and returns with result->interrupted. Set before the run started (during setup):
     * it returns with result->interrupted, nothing written, result->checkpoint "". NULL: never. */
    volatile sig_atomic_t *stop_requested;
    /* Progress and messages; NULL = stderr. */
    FILE *log;
    /* Called after every optimizer step with the step's mean loss (tests compare them). */
    void (*on_step)(void *user, int64_t step, double loss);
    void *user;
} ct_train_hooks;

typedef struct {
    int64_t steps;            /* optimizer steps taken in all, counting those before a resume */
    double last_loss;
    bool interrupted;         /* stopped early on request, after saving a checkpoint */
    bool evaluated;           /* the final evaluation ran (a validation or test split was given) */
    double accuracy;          /* final evaluation (of the last step): intent accuracy (summed log-likelihood) */
    double accuracy_length_normalized;
    double macro_f1;
    double perplexity;        /* text data: perplexity of the held-out split */
    char checkpoint[4096];    /* the last checkpoint written */
    char model_dir[4096];     /* the Hugging Face folder of the final model ("" when interrupted) */
    int64_t model_step;       /* the step whose weights model_dir holds (checkpoint.select) */
} ct_train_result;

/* Runs the recipe (already resolved: ct_recipe_resolve). hooks may be NULL. Returns 0, or -1
 * with a one-line message. The run folder (output_dir) changes only once setup and a resume's
 * checks have passed; a fresh run into a folder holding an earlier run is refused unless
 * recipe->overwrite (train/run_folder.c). */
int ct_train(const ct_recipe *recipe, const ct_train_hooks *hooks, ct_train_result *result);

/* Writes the tokenizer files a checkpoint holds into dir (created): for a final model folder, or
 * an export from a checkpoint. 0 or -1. */
int ct_trainer_extract_tokenizer(const char *checkpoint, const char *dir);

#endif
