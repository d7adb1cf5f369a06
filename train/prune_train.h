/* Pruning inside a training run: the recipe's prune section (docs/pruning.md).
 *
 *   one_shot  prune.method with prune.amount (or prune.count) before the first step, then the run
 *             trains with the masks (a recovery fine-tune)
 *   gradual   Zhu & Gupta (2017): at steps t0, t0 + k, ..., end the total sparsity is
 *               s_t = s_f + (s_i - s_f) (1 - (t - t0) / (end - t0))^3
 *             and each pruning step removes (s_t - s_prev) / (1 - s_prev) of what remains; it is
 *             computed as round(s_t * n) minus what is already pruned, so compounding lands
 *             exactly on round(s_f * n)
 *
 * With data.test a run that prunes evaluates the test split before pruning, right after it and
 * after training, and measures the saved model's sparsity from the file it wrote. */
#ifndef CT_PRUNE_TRAIN_H
#define CT_PRUNE_TRAIN_H

#include <stdbool.h>
#include <stdint.h>

/* s_t of the cubic schedule at `step` (before t0: no pruning yet, returns -1; after end: s_f). */
double ct_prune_cubic_sparsity(double s_initial, double s_final, int64_t t0, int64_t end, int64_t step);
/* Whether the gradual schedule prunes before update step + 1 (step = updates taken). */
bool ct_prune_gradual_due(int64_t t0, int64_t end, int every, int64_t step);

struct ct_h5_writer;
struct ct_h5_reader;
struct ct_llama;
/* /masks/<HF name> of a checkpoint: every mask of the model (f32 0/1). */
int ct_prune_masks_save(struct ct_h5_writer *w, const struct ct_llama *m);
/* Reads back every mask /masks holds (none: nothing to do), onto the model's device. */
int ct_prune_masks_load(struct ct_h5_reader *rd, struct ct_llama *m, const char *path);

#ifdef CT_TRAINER_INTERNAL_H
/* The trainer's hooks (train/trainer*.c). */
int ct_prune_train_check(ct_trainer *t);               /* setup: the section against the run */
int ct_prune_train_start(ct_trainer *t);               /* the run has started: test, prune, test */
int ct_prune_train_step(ct_trainer *t);                /* before each update: a gradual step */
int ct_prune_train_finish(ct_trainer *t, const char *model_dir); /* after saving: sparsity, test */
void ct_prune_train_free(ct_trainer *t);
/* The optimizer follows the model's masks (after they changed). */
int ct_prune_train_attach(ct_trainer *t);
#endif

#endif
