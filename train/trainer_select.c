/* checkpoint.select: which weights become model/. `last` keeps the last step's; best_val_accuracy
 * and best_val_loss keep those of the data.val evaluation with the highest accuracy or the lowest
 * loss. A tie keeps the earlier step: it trained less for the same score (and so is the less
 * likely to be fitted to the validation split), and a later equal score must not change the
 * choice. Evaluations that did not measure the metric (a split with no target token) never win.
 *
 * Rank 0 evaluates, so it alone holds the selection: the step, its score and a host copy of the
 * trainable tensors at that step (in their own dtype; for LoRA only the adapters, for a frozen
 * base only what trains: the rest cannot differ between steps). At the end these are copied back
 * into the model before data.test and model/, so the test split scores the model that is saved,
 * and every way model/ is written (full weights, a LoRA adapter plus the merged model, a
 * distilled student, a one-shot pruned model) writes the selected weights.
 *
 * A checkpoint keeps the selection (docs/formats.md, "The trainer's groups"): /state attributes
 * select, best_step and best_value, and /best/<HF name> the copies. Written into the same atomic
 * file as the step's own state, the selection always belongs to that step, so a resume from any
 * checkpoint goes on with exactly the candidates the uninterrupted run had seen by then. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/device.h"
#include "core/error.h"
#include "train/trainer_internal.h"

#define STATE "/state"
#define BEST "/best"

static const char *const select_names[] = {"last", "best_val_accuracy", "best_val_loss"};

const char *ct_trainer_select_name(const ct_trainer *t) { return select_names[t->recipe->checkpoint.select]; }

static bool selects_best(const ct_trainer *t) { return t->recipe->checkpoint.select != CT_RECIPE_SELECT_LAST; }

/* The metric's name in the log and metrics.jsonl. */
const char *ct_trainer_select_metric(const ct_trainer *t) {
    if (t->recipe->checkpoint.select == CT_RECIPE_SELECT_BEST_VAL_LOSS) return "loss";
    return t->recipe->eval.length_normalized ? "accuracy_length_normalized" : "accuracy";
}

/* The selected metric of an evaluation; NAN when it was not measured. The accuracy is the one
 * eval.length_normalized makes the answer rule. */
static double metric_of(const ct_trainer *t, const ct_eval_record *r) {
    if (t->recipe->checkpoint.select == CT_RECIPE_SELECT_BEST_VAL_LOSS)
        return r->present & CT_EVAL_LOSS ? r->loss : NAN;
    if (!(r->present & CT_EVAL_ACCURACY)) return NAN;
    return t->recipe->eval.length_normalized ? r->accuracy_length_normalized : r->accuracy;
}

/* Strictly better only: a tie keeps the earlier step. */
static bool improves(const ct_trainer *t, double value) {
    if (!isfinite(value)) return false;
    if (t->best.step < 0) return true;
    return t->recipe->checkpoint.select == CT_RECIPE_SELECT_BEST_VAL_LOSS ? value < t->best.value
                                                                            : value > t->best.value;
}

/* The host copies, allocated on the first use (trainable tensors only, so for LoRA a few MiB). */
static int alloc_copies(ct_trainer *t) {
    if (t->best.weights) return 0;
    t->best.weights = ct_calloc((size_t)t->trainable.n, sizeof *t->best.weights, "the best weights' list");
    if (!t->best.weights) return -1;
    for (int i = 0; i < t->trainable.n; i++) {
        const ct_tensor *p = t->trainable.params[i];
        t->best.weights[i] = ct_tensor_new_on(CT_CPU, p->dtype, p->ndim, p->shape, p->name);
        if (!t->best.weights[i]) return ct_fail_context("checkpoint.select=%s: ", ct_trainer_select_name(t));
    }
    return 0;
}

static int copy_weights(ct_trainer *t) {
    CT_TRY(alloc_copies(t));
    for (int i = 0; i < t->trainable.n; i++) {
        const ct_tensor *p = t->trainable.params[i];
        CT_TRY(ct_device_copy(CT_CPU, t->best.weights[i]->data, p->device, p->data, ct_nbytes(p)));
    }
    return 0;
}

int ct_trainer_select_consider(ct_trainer *t, const ct_eval_record *record) {
    if (!selects_best(t)) return 0;
    const double value = metric_of(t, record);
    if (!improves(t, value)) return 0;
    CT_TRY(copy_weights(t));
    t->best.step = record->step;
    t->best.value = value;
    fprintf(t->log, "eval %s at step %lld: best %s so far (%.4f), kept for model/ (checkpoint.select=%s)\n",
            record->split, (long long)record->step, ct_trainer_select_metric(t), value, ct_trainer_select_name(t));
    return 0;
}

int ct_trainer_select_restore(ct_trainer *t) {
    if (!selects_best(t)) return 0;
    if (t->best.step < 0) {
        fprintf(t->log, "checkpoint.select=%s: no evaluation measured the val %s; model/ is the last step's\n",
                ct_trainer_select_name(t), ct_trainer_select_metric(t));
        return 0;
    }
    if (t->best.step == t->step) return 0; /* the live weights are the selected ones */
    for (int i = 0; i < t->trainable.n; i++) {
        ct_tensor *p = t->trainable.params[i];
        CT_TRY(ct_device_copy(p->device, p->data, CT_CPU, t->best.weights[i]->data, ct_nbytes(p)));
    }
    fprintf(t->log, "model: the weights of step %lld (best val %s %.4f) replace those of step %lld\n",
            (long long)t->best.step, ct_trainer_select_metric(t), t->best.value, (long long)t->step);
    return 0;
}

int ct_trainer_select_save(const ct_trainer *t, ct_h5_writer *w) {
    if (!selects_best(t)) return 0;
    CT_TRY(ct_h5_put_string(w, STATE, "select", ct_trainer_select_name(t)));
    CT_TRY(ct_h5_put_int64(w, STATE, "best_step", t->best.step));
    CT_TRY(ct_h5_put_double(w, STATE, "best_value", t->best.step >= 0 ? t->best.value : 0));
    for (int i = 0; t->best.step >= 0 && i < t->trainable.n; i++)
        CT_TRY(ct_h5_put_tensor(w, BEST, t->best.weights[i]->name, t->best.weights[i]));
    return 0;
}

/* The checkpoint's checkpoint.select, or "last" when it stored none (select=last, or a file
 * written before the key existed). */
static char *stored_select(ct_h5_reader *rd) {
    if (!ct_h5_exists(rd, STATE, NULL)) return ct_strdup("last");
    char *name = ct_h5_get_string(rd, STATE, "select");
    return name ? name : ct_strdup("last");
}

int ct_trainer_select_load(ct_trainer *t, ct_h5_reader *rd, const char *path) {
    if (!selects_best(t)) return 0; /* a selection stored there is of no use to select=last */
    char *stored = stored_select(rd);
    if (!stored) return -1;
    int rc = 0;
    if (strcmp(stored, ct_trainer_select_name(t)) != 0)
        rc = ct_fail("resume=%s: written with checkpoint.select=%s, which did not keep the best evaluations so far "
                     "for checkpoint.select=%s; resume with checkpoint.select=%s",
                     path, stored, ct_trainer_select_name(t), stored);
    free(stored);
    CT_TRY(rc);
    int64_t step;
    double value;
    CT_TRY(ct_h5_get_int64(rd, STATE, "best_step", &step));
    CT_TRY(ct_h5_get_double(rd, STATE, "best_value", &value));
    if (step < 0 || !ct_trainer_is_root(t)) return 0; /* none yet, or not the rank that evaluates */
    CT_TRY(alloc_copies(t));
    for (int i = 0; i < t->trainable.n; i++)
        if (ct_h5_read_tensor_into(rd, BEST, t->best.weights[i]->name, t->best.weights[i]) < 0)
            return ct_fail_context("resume=%s: its best weights (checkpoint.select=%s): ", path,
                                   ct_trainer_select_name(t));
    t->best.step = step;
    t->best.value = value;
    fprintf(t->log, "resume: best val %s so far %.4f, at step %lld\n", ct_trainer_select_metric(t), value,
            (long long)step);
    return 0;
}

void ct_trainer_select_free(ct_trainer *t) {
    for (int i = 0; t->best.weights && i < t->trainable.n; i++) ct_tensor_free(t->best.weights[i]);
    free(t->best.weights);
    t->best.weights = NULL;
}
