/* Pruning inside a training run (train/prune_train.h): the recipe's prune section, its test
 * evaluations, the gradual schedule, the optimizer following the masks, and checkpointed masks. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "checkpoints/hdf5_file.h"
#include "core/error.h"
#include "core/strbuf.h"
#include "models/prune.h"
#include "train/trainer_internal.h"
#include "train/prune_train.h"

struct ct_prune_run {
    double acc_before, acc_after, acc_recovered; /* NAN until measured */
    int64_t end;                                 /* gradual: the step reaching prune.amount */
};

double ct_prune_cubic_sparsity(double s_initial, double s_final, int64_t t0, int64_t end, int64_t step) {
    if (step < t0) return -1;
    if (step >= end || end <= t0) return s_final;
    const double left = 1.0 - (double)(step - t0) / (double)(end - t0);
    return s_final + (s_initial - s_final) * left * left * left;
}

bool ct_prune_gradual_due(int64_t t0, int64_t end, int every, int64_t step) {
    if (step < t0 || step > end || every < 1) return false;
    return (step - t0) % every == 0 || step == end;
}

static bool active(const ct_recipe *r) { return r->prune.method != CT_RECIPE_PRUNE_NONE || r->prune.keep_zeros; }

static ct_prune_options options_of(const ct_recipe *r) {
    const ct_recipe_prune *p = &r->prune;
    ct_prune_options o = {.method = (ct_prune_method)(p->method - 1), .norm_order = p->n, .dim = p->dim,
                          .nm_n = p->nm_n, .nm_m = p->nm_m, .targets = p->targets,
                          .allow_norm_embedding = p->include_norms_embeddings, .mlp_channels = p->mlp_channels,
                          .seed = (uint64_t)r->seed};
    o.amount = p->count > 0 ? (ct_prune_amount){.count = p->count, .is_count = true}
                            : (ct_prune_amount){.fraction = p->amount};
    return o;
}

/* ---- setup ---- */

int ct_prune_train_check(ct_trainer *t) {
    const ct_recipe *r = t->recipe;
    const ct_recipe_prune *pr = &r->prune;
    if (!active(r)) return 0;
    if (pr->method != CT_RECIPE_PRUNE_NONE) {
        ct_prune_options o = options_of(r);
        if (ct_prune_check_options(&o) < 0) return ct_fail_context("prune: ");
    }
    const int64_t end = pr->end_step > 0 ? pr->end_step : t->total_steps;
    if (pr->schedule == CT_RECIPE_PRUNE_GRADUAL) {
        if (pr->method == CT_RECIPE_PRUNE_NONE) return ct_fail("prune.schedule=gradual needs a prune.method");
        if (pr->method == CT_RECIPE_PRUNE_NM)
            return ct_fail("prune.method=nm has a fixed sparsity (N of M); use prune.schedule=one_shot");
        if (pr->count > 0)
            return ct_fail("prune.count=%d: a gradual schedule prunes to the fraction prune.amount; set prune.count=0",
                           pr->count);
        if (pr->start_step >= end)
            return ct_fail("prune.start_step=%d must come before prune.end_step (%lld, the run has %lld steps)",
                           pr->start_step, (long long)end, (long long)t->total_steps);
        if (pr->initial_sparsity > pr->amount)
            return ct_fail("prune.initial_sparsity=%g is above prune.amount=%g, the final sparsity", pr->initial_sparsity,
                           pr->amount);
    }
    struct ct_prune_run *p = ct_calloc(1, sizeof *p, "the pruning state");
    if (!p) return -1;
    t->prune = p;
    p->acc_before = p->acc_after = p->acc_recovered = NAN;
    p->end = end;
    return 0;
}

void ct_prune_train_free(ct_trainer *t) {
    struct ct_prune_run *p = t->prune;
    if (!p) return;
    free(p);
    t->prune = NULL;
}

/* ---- the model's masks, the optimizer's masks ---- */

int ct_prune_train_attach(ct_trainer *t) {
    ct_llama *m = t->model;
    for (int i = 0; i < m->n_masks; i++) ct_adamw_set_mask(t->optimizer, m->masked[i], m->masks[i]);
    return ct_adamw_mask_state(t->optimizer);
}

/* Pruning runs on host memory: a model on a GPU comes home for it and goes back. */
static int prune_on_host(ct_trainer *t, const ct_prune_options *o, bool from_zeros) {
    const ct_device device = ct_llama_device(t->model);
    if (device != CT_CPU) CT_TRY(ct_llama_to_device(t->model, CT_CPU));
    int rc = from_zeros ? ct_prune_masks_from_zeros(t->model, t->recipe->prune.targets) : ct_prune_model(t->model, o);
    if (device != CT_CPU && ct_llama_to_device(t->model, device) < 0) rc = -1;
    if (rc < 0) return ct_fail_context("prune at step %lld: ", (long long)t->step);
    return ct_prune_train_attach(t);
}

/* ---- reporting ---- */

static int log_sparsity(ct_trainer *t, const ct_llama *m, const char *patterns, FILE *table, double *global) {
    void *json = NULL;
    CT_TRY(ct_prune_report(m, patterns, table, &json));
    cJSON *root = json;
    *global = cJSON_GetNumberValue(cJSON_GetObjectItem(root, "global"));
    int rc = t->run_log ? ct_run_log_prune(t->run_log, t->step, root) : 0;
    cJSON_Delete(root);
    return rc;
}

static int report_host(ct_trainer *t, FILE *table, double *global) {
    const ct_device device = ct_llama_device(t->model);
    if (device != CT_CPU) CT_TRY(ct_llama_to_device(t->model, CT_CPU));
    int rc = log_sparsity(t, t->model, NULL, table, global);
    if (device != CT_CPU && ct_llama_to_device(t->model, device) < 0) rc = -1;
    return rc;
}

/* data.test (the trainer's test split) before and right after pruning; the trainer itself
 * evaluates the final model (t->test_accuracy). */
static int eval_test(ct_trainer *t, const char *split, double *accuracy) {
    if (!t->test_examples) return 0;
    ct_eval_record record = {.step = t->step, .split = split};
    CT_TRY(ct_trainer_evaluate(t, split, t->test_examples, &t->test_store, 0, &record));
    CT_TRY(ct_run_log_eval(t->run_log, &record));
    *accuracy = record.present & CT_EVAL_ACCURACY ? record.accuracy : NAN;
    return 0;
}

/* ---- the run ---- */

int ct_prune_train_start(ct_trainer *t) {
    const ct_recipe *r = t->recipe;
    struct ct_prune_run *p = t->prune;
    if (!p || t->step > 0) /* resumed: the checkpoint's masks are on the model */
        return t->model->n_masks ? ct_prune_train_attach(t) : 0; /* resumed: the checkpoint's masks are on the model */
    if (r->prune.keep_zeros) {
        CT_TRY(prune_on_host(t, NULL, true));
        fprintf(t->log, "prune: %d tensors keep the zeros of model.path as masks\n", t->model->n_masks);
    }
    if (r->prune.method == CT_RECIPE_PRUNE_NONE) return 0;
    CT_TRY(eval_test(t, "test_unpruned", &p->acc_before));
    if (r->prune.schedule == CT_RECIPE_PRUNE_GRADUAL) return 0;
    const ct_prune_options o = options_of(r);
    CT_TRY(prune_on_host(t, &o, false));
    double global;
    fprintf(t->log, "prune: %s, %s %g, one-shot before training\n", ct_prune_method_name(o.method),
            o.amount.is_count ? "count" : "amount", o.amount.is_count ? (double)o.amount.count : o.amount.fraction);
    CT_TRY(report_host(t, t->log, &global));
    return eval_test(t, "test_pruned", &p->acc_after);
}

int ct_prune_train_step(ct_trainer *t) {
    const ct_recipe_prune *pr = &t->recipe->prune;
    struct ct_prune_run *p = t->prune;
    if (!p || pr->method == CT_RECIPE_PRUNE_NONE || pr->schedule != CT_RECIPE_PRUNE_GRADUAL) return 0;
    if (!ct_prune_gradual_due(pr->start_step, p->end, pr->every, t->step)) return 0;
    const double s = ct_prune_cubic_sparsity(pr->initial_sparsity, pr->amount, pr->start_step, p->end, t->step);
    ct_prune_options o = options_of(t->recipe);
    o.amount = (ct_prune_amount){.fraction = s, .to_total = true};
    CT_TRY(prune_on_host(t, &o, false));
    double global;
    CT_TRY(report_host(t, NULL, &global));
    ct_progress_break(&t->progress);
    fprintf(t->log, "prune: step %lld, target sparsity %.4f, measured %.4f\n", (long long)t->step, s, global);
    return 0;
}

/* The comma list of the masked tensors' names: what the report of the saved file counts. */
static char *masked_names(const ct_llama *m) {
    ct_strbuf b = {0};
    for (int i = 0; i < m->n_masks; i++)
        if ((i && ct_strbuf_append_str(&b, ",") < 0) || ct_strbuf_append_str(&b, m->masked[i]->name) < 0) {
            ct_strbuf_free(&b);
            return NULL;
        }
    if (ct_strbuf_append(&b, "", 1) < 0) return NULL;
    return b.data;
}

static void print_accuracy(FILE *log, const char *what, double accuracy) {
    if (isnan(accuracy)) fprintf(log, "  %-22s -\n", what);
    else fprintf(log, "  %-22s %.4f\n", what, accuracy);
}

int ct_prune_train_finish(ct_trainer *t, const char *model_dir) {
    struct ct_prune_run *p = t->prune;
    if (!p || !t->model->n_masks) return 0;
    char *names = masked_names(t->model);
    ct_llama *saved = names ? ct_llama_load(model_dir) : NULL;
    double global = NAN;
    int rc = saved ? log_sparsity(t, saved, names, NULL, &global) : -1;
    ct_llama_free(saved);
    free(names);
    if (rc < 0) return ct_fail_context("prune: measuring %s: ", model_dir);
    p->acc_recovered = t->test_accuracy;
    fprintf(t->log, "prune summary (test split %s):\n", t->test_examples ? t->recipe->data.test : "not given");
    print_accuracy(t->log, "before pruning", p->acc_before);
    print_accuracy(t->log, "right after pruning", p->acc_after);
    print_accuracy(t->log, "after training", p->acc_recovered);
    fprintf(t->log, "  sparsity of %s/model.safetensors (measured from the file): %.4f of the %d pruned tensors\n",
            model_dir, global, t->model->n_masks);
    return 0;
}

/* ---- checkpoints ---- */

#define MASKS "/masks"

int ct_prune_masks_save(ct_h5_writer *w, const ct_llama *m) {
    for (int i = 0; i < m->n_masks; i++) CT_TRY(ct_h5_put_tensor(w, MASKS, m->masked[i]->name, m->masks[i]));
    return 0;
}

int ct_prune_masks_load(ct_h5_reader *rd, ct_llama *m, const char *path) {
    if (!ct_h5_exists(rd, MASKS, NULL)) return 0;
    char **names = NULL;
    int n = ct_h5_list_tensors(rd, MASKS, &names), rc = n < 0 ? -1 : 0;
    for (int i = 0; rc == 0 && i < n; i++) {
        ct_tensor *param = ct_llama_param(m, names[i]);
        if (!param) {
            rc = ct_fail("%s: mask %s/%s belongs to no parameter of the model; the file is not this model's", path,
                         MASKS, names[i]);
            break;
        }
        char name[600];
        snprintf(name, sizeof name, "%s.mask", names[i]);
        ct_tensor *mask = ct_tensor_new_on(param->device, CT_F32, param->ndim, param->shape, name);
        rc = mask ? ct_h5_read_tensor_into(rd, MASKS, names[i], mask) : -1;
        if (rc == 0) rc = ct_prune_set_mask(m, param, mask);
        else ct_tensor_free(mask);
    }
    ct_h5_free_names(names, n);
    return rc;
}
