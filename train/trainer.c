/* The training loop: steps, logging, evaluation, checkpoints, the final model. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/error.h"
#include "kernels/cuda/cuda_nccl.h"
#include "train/dist.h"
#include "train/model_task.h"
#include "models/llama_lora.h"
#include "train/lora_setup.h"
#include "train/trainer_internal.h"
#include "models/prune.h"
#include "train/prune_train.h"

static bool stop_requested(const ct_trainer *t) {
    return t->hooks && t->hooks->stop_requested && *t->hooks->stop_requested;
}

/* Under mpirun: a signal that reached any rank stops them all at the same step. */
static int stop_requested_anywhere(const ct_trainer *t, bool *stop) {
    return ct_trainer_dist_any(t, stop_requested(t), stop);
}

/* metrics.jsonl's peak memory: on a GPU the most device memory the caching allocator held from
 * the driver, else the process's resident set. */
static int64_t peak_memory_bytes(const ct_trainer *t) {
    if (t->recipe->device != CT_CPU) return (int64_t)ct_memory_get_stats(t->recipe->device).device_peak_reserved;
    return ct_peak_rss_bytes();
}

static void log_step(ct_trainer *t, double loss, double grad_norm, int64_t tokens, double step_seconds) {
    double rate = step_seconds > 0 ? (double)tokens / step_seconds : 0;
    t->tokens_per_s = t->tokens_per_s > 0 ? 0.9 * t->tokens_per_s + 0.1 * rate : rate;
    double lr = t->optimizer->hparams.lr;
    ct_train_record record = {.step = t->step, .loss = loss, .lr = lr, .grad_norm = grad_norm,
                              .tokens_per_s = t->tokens_per_s, .peak_memory_bytes = peak_memory_bytes(t),
                              .elapsed_s = t->elapsed_before + (ct_seconds_now() - t->started_at)};
    if (t->run_log && ct_run_log_train(t->run_log, &record) < 0) fprintf(t->log, "warning: %s\n", ct_last_error());
    ct_progress_update(&t->progress, t->step, loss, lr, t->tokens_per_s);
    if (t->hooks && t->hooks->on_step) t->hooks->on_step(t->hooks->user, t->step, loss);
}

/* Evaluates the validation split (when there is one) and logs it. */
static int evaluate_val_here(ct_trainer *t, ct_train_result *result) {
    if (!t->val_examples) return 0;
    ct_eval_record record = {.step = t->step, .split = "val"};
    ct_progress_break(&t->progress);
    CT_TRY(ct_trainer_evaluate(t, "val", t->val_examples, &t->val_store, t->recipe->eval.max_examples, &record));
    CT_TRY(ct_run_log_eval(t->run_log, &record));
    CT_TRY(ct_trainer_select_consider(t, &record));
    result->evaluated = true;
    result->accuracy = record.accuracy;
    result->accuracy_length_normalized = record.accuracy_length_normalized;
    result->macro_f1 = record.macro_f1;
    result->perplexity = record.perplexity;
    return 0;
}

/* data.test, once, on the final model: every example (eval.max_examples trims only the
 * validation runs during training), logged as split "test". */
static int evaluate_test_here(ct_trainer *t) {
    t->test_accuracy = NAN;
    if (!t->test_examples) return 0;
    ct_eval_record record = {.step = t->step, .split = "test"};
    ct_progress_break(&t->progress);
    CT_TRY(ct_trainer_evaluate(t, "test", t->test_examples, &t->test_store, 0, &record));
    CT_TRY(ct_run_log_eval(t->run_log, &record));
    if (record.present & CT_EVAL_ACCURACY) t->test_accuracy = record.accuracy;
    return 0;
}

/* Under mpirun rank 0 evaluates and the others wait for its status. */
static int evaluate_val(ct_trainer *t, ct_train_result *result) {
    return ct_trainer_dist_agree(t, ct_trainer_is_root(t) ? evaluate_val_here(t, result) : 0);
}

static int evaluate_test(ct_trainer *t) {
    t->test_accuracy = NAN;
    return ct_trainer_dist_agree(t, ct_trainer_is_root(t) ? evaluate_test_here(t) : 0);
}

/* Every rank takes part (ZeRO-1 moments travel to rank 0); rank 0 writes. */
static int checkpoint(ct_trainer *t, ct_train_result *result) {
    CT_TRY(ct_trainer_dist_agree(t, ct_trainer_save(t, result->checkpoint, sizeof result->checkpoint)));
    ct_progress_break(&t->progress);
    fprintf(t->log, "checkpoint: %s\n", result->checkpoint);
    return 0;
}

static bool every(int64_t step, int n) { return n > 0 && step % n == 0; }

static int loop(ct_trainer *t, ct_train_result *result) {
    const ct_recipe *r = t->recipe;
    while (t->step < t->total_steps) {
        bool stop;
        CT_TRY(stop_requested_anywhere(t, &stop));
        if (stop) {
            result->interrupted = true;
            ct_progress_break(&t->progress);
            fprintf(t->log, "stop requested: saving a checkpoint at step %lld\n", (long long)t->step);
            return checkpoint(t, result);
        }
        double loss, grad_norm, start = ct_seconds_now();
        int64_t tokens;
        CT_TRY(ct_prune_train_step(t)); /* a gradual schedule's pruning step, when one is due */
        CT_TRY(ct_trainer_step(t, &loss, &grad_norm, &tokens));
        result->last_loss = loss;
        result->steps = t->step;
        log_step(t, loss, grad_norm, tokens, ct_seconds_now() - start);
        bool last = t->step == t->total_steps;
        /* The evaluation first: the checkpoint of the step then holds its place in the selection
         * (checkpoint.select), the last step's included, so a resume with more steps keeps it. */
        if (last || every(t->step, r->train.eval_every)) CT_TRY(evaluate_val(t, result));
        if (last || every(t->step, r->checkpoint.every)) CT_TRY(checkpoint(t, result));
    }
    /* data.test scores the model that model/ will hold: checkpoint.select's, on rank 0. */
    CT_TRY(ct_trainer_dist_agree(t, ct_trainer_is_root(t) ? ct_trainer_select_restore(t) : 0));
    return evaluate_test(t);
}

/* The log line of model/, and with checkpoint.select=best_* its record in metrics.jsonl. */
static int report_model(ct_trainer *t, ct_train_result *result) {
    bool best = t->recipe->checkpoint.select != CT_RECIPE_SELECT_LAST && t->best.step >= 0;
    result->model_step = best ? t->best.step : t->step;
    if (!best) {
        fprintf(t->log, "model: %s\n", result->model_dir);
        return 0;
    }
    fprintf(t->log, "model: %s (step %lld, best val %s %.4f)\n", result->model_dir, (long long)t->best.step,
            ct_trainer_select_metric(t), t->best.value);
    if (!t->run_log) return 0;
    return ct_run_log_model(t->run_log, t->best.step, ct_trainer_select_name(t), ct_trainer_select_metric(t),
                            t->best.value);
}

static int save_model(ct_trainer *t, ct_train_result *result) {
    snprintf(result->model_dir, sizeof result->model_dir, "%s/%s", t->recipe->output_dir, CT_RUN_MODEL_DIR);
    /* safetensors are written from host memory; training is over, so the model itself comes home. */
    if (ct_llama_device(t->model) != CT_CPU) CT_TRY(ct_llama_to_device(t->model, CT_CPU));
    if (t->recipe->lora.enabled && ct_prune_has_masks(t->model)) {
        /* B·A is dense: an adapter folder would bring the pruned weights back wherever it is
         * applied, so only the merged model (which keeps the masks) is written. */
        fprintf(t->log, "adapter: not written: the base is pruned and a runtime would add the dense B·A over it; "
                        "model/ is the merged, still pruned model\n");
        CT_TRY(ct_llama_merge_lora(t->model));
    } else if (t->recipe->lora.enabled) {
        /* The adapter as PEFT files, then model/ as the merged model that serves without them. */
        char adapter[4200];
        snprintf(adapter, sizeof adapter, "%s/%s", t->recipe->output_dir, CT_RUN_ADAPTER_DIR);
        CT_TRY(ct_lora_write_adapter(t->model, t->recipe, adapter));
        fprintf(t->log, "adapter: %s (PEFT: adapter_config.json, adapter_model.safetensors)\n", adapter);
        CT_TRY(ct_llama_merge_lora(t->model));
    }
    CT_TRY(ct_llama_dequantize(t->model)); /* an INT8 frozen base (model.base_dtype) is saved as f32 */
    CT_TRY(ct_llama_save(t->model, result->model_dir, t->tokenizer_dir, CT_F32));
    CT_TRY(ct_model_folder_write_serving(result->model_dir, t->recipe, t->chat.format));
    CT_TRY(report_model(t, result));
    return ct_prune_train_finish(t, result->model_dir);
}

static int run(ct_trainer *t, const ct_recipe *recipe, ct_train_result *result) {
    /* Every check first (the resume's included): the run folder changes only once they passed.
     * Under mpirun every rank reads the checkpoint (a ZeRO-1 rank its slice of the moments). */
    if (recipe->resume[0]) CT_TRY(ct_trainer_dist_agree(t, ct_trainer_resume(t, recipe->resume)));
    result->steps = t->step;
    bool stop;
    CT_TRY(stop_requested_anywhere(t, &stop));
    if (stop) { /* asked to stop during setup: nothing written, nothing to save */
        result->interrupted = true;
        return 0;
    }
    CT_TRY(ct_trainer_dist_agree(t, ct_trainer_is_root(t) ? ct_run_folder_start(t) : 0));
    CT_TRY(ct_prune_train_start(t));
    int log_every = recipe->train.log_every > 0 ? recipe->train.log_every : 1;
    ct_progress_init(&t->progress, t->log, t->total_steps, t->step, log_every);
    CT_TRY(loop(t, result));
    ct_progress_break(&t->progress);
    if (result->interrupted) return 0;
    return ct_trainer_dist_agree(t, ct_trainer_is_root(t) ? save_model(t, result) : 0);
}

int ct_train(const ct_recipe *recipe, const ct_train_hooks *hooks, ct_train_result *result) {
    memset(result, 0, sizeof *result);
    ct_trainer t;
    memset(&t, 0, sizeof t);
    /* Under mpirun: the same binary and recipe everywhere, then every rank's setup must pass. */
    int rc = ct_trainer_dist_begin(recipe);
    bool set_up = rc == 0;
    if (rc == 0) rc = ct_dist_agree(ct_trainer_setup(&t, recipe, hooks));
    if (rc == 0) {
        t.started_at = ct_seconds_now();
        rc = run(&t, recipe, result);
    }
    if (set_up) ct_trainer_teardown(&t);
    if (ct_dist_active() && recipe->device != CT_CPU) ct_nccl_free(); /* joined in ct_trainer_dist_begin */
    ct_memory_release_all();
    return rc;
}
