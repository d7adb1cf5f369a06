#include "train/evaluate.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/error.h"
#include "autograd/ops.h"
#include "autograd/tape.h"
#include "models/score.h"

/* ---- intent accuracy ---- */

static int argmax(const double *score, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (score[i] > score[best]) best = i;
    return best;
}

/* Scores every label of one example and adds the two predictions. */
static int evaluate_example(ct_llama *model, const ct_sft_options *options, const ct_example *example,
                            ct_sft_candidates *candidates, ct_candidate_score *scores, double *summed,
                            double *normalized, ct_intent_eval *out) {
    CT_TRY(ct_sft_candidates_build(options, example, candidates));
    int k = candidates->n_labels;
    CT_TRY(ct_score_candidates(model, candidates->prompt.ids, (int64_t)candidates->prompt.len, candidates->answers, k,
                               NULL, scores));
    for (int i = 0; i < k; i++) {
        summed[i] = scores[i].logprob;
        normalized[i] = scores[i].logprob / (double)scores[i].n_tokens;
    }
    CT_TRY(ct_confusion_add(out->summed, example->label, argmax(summed, k)));
    return ct_confusion_add(out->normalized, example->label, argmax(normalized, k));
}

static int evaluate_intent_here(ct_llama *model, const ct_sft_options *options, const ct_examples *examples,
                                int64_t max_examples, bool length_normalized, ct_intent_eval *out) {
    if (!options->labels) return ct_fail("intent evaluation needs a label set");
    int k = ct_label_set_count(options->labels);
    out->summed = ct_confusion_new(k);
    out->normalized = ct_confusion_new(k);
    out->length_normalized = length_normalized;
    double *summed = malloc(sizeof(double) * (size_t)k), *normalized = malloc(sizeof(double) * (size_t)k);
    ct_candidate_score *scores = malloc(sizeof *scores * (size_t)k);
    int rc = out->summed && out->normalized && summed && normalized && scores ? 0 : ct_fail("out of memory");
    int64_t n = (int64_t)examples->count;
    if (max_examples > 0 && max_examples < n) n = max_examples;
    ct_sft_candidates candidates = {0};
    for (int64_t i = 0; rc == 0 && i < n; i++)
        rc = evaluate_example(model, options, &examples->items[i], &candidates, scores, summed, normalized, out);
    ct_sft_candidates_free(&candidates);
    free(scores);
    free(summed);
    free(normalized);
    if (rc < 0) return ct_fail_context("%s: ", examples->path);
    out->examples = n;
    const ct_confusion *primary = length_normalized ? out->normalized : out->summed;
    CT_TRY(ct_classification_report_compute(primary, &out->report));
    out->accuracy_summed = (double)out->summed->correct / (double)(n ? n : 1);
    out->accuracy_length_normalized = (double)out->normalized->correct / (double)(n ? n : 1);
    out->accuracy = length_normalized ? out->accuracy_length_normalized : out->accuracy_summed;
    return 0;
}

/* Scoring runs through a KV cache, which lives on the host (models/score.h): a model on a GPU
 * visits the host for it, parameters and gradients both, and goes back. */
int ct_evaluate_intent(ct_llama *model, const ct_sft_options *options, const ct_examples *examples,
                       int64_t max_examples, bool length_normalized, ct_intent_eval *out) {
    const ct_device device = ct_llama_device(model);
    if (device != CT_CPU && ct_llama_to_device(model, CT_CPU) < 0) return ct_fail_context("intent evaluation: ");
    int rc = evaluate_intent_here(model, options, examples, max_examples, length_normalized, out);
    if (device != CT_CPU && ct_llama_to_device(model, device) < 0) {
        ct_fail_context("intent evaluation: moving the model back: ");
        rc = -1;
    }
    return rc;
}

void ct_intent_eval_free(ct_intent_eval *eval) {
    ct_confusion_free(eval->summed);
    ct_confusion_free(eval->normalized);
    ct_classification_report_free(&eval->report);
    memset(eval, 0, sizeof *eval);
}

/* ---- perplexity ---- */

static int batch_nll(ct_llama *model, const ct_batch *host, ct_perplexity *acc) {
    if (host->n_targets == 0) return 0;
    if (ct_scope_begin() < 0) return -1;
    ct_batch b = *host; /* built on the host; the model may be on a GPU */
    ct_tensor *sum = NULL;
    if (ct_batch_to_device(&b, ct_llama_device(model)) == 0) {
        ct_tensor *positions = ct_batch_positions_plain(host) ? NULL : b.positions;
        ct_llama_forward_args args = {.position_ids = positions, .segment_ids = b.segments};
        sum = ct_llama_loss_sum(model, b.ids, b.targets, host->targets, &args);
    }
    int rc = sum ? ct_perplexity_add(acc, ct_get(sum, 0), b.n_targets) : -1;
    ct_scope_end();
    return rc;
}

int ct_evaluate_nll(ct_llama *model, const ct_seq_store *store, int64_t max_seq_len, int64_t batch_size,
                    int64_t batch_tokens, int32_t pad_id, ct_perplexity *acc) {
    ct_batch_options options = {.max_seq_len = max_seq_len, .batch_size = batch_size, .batch_tokens = batch_tokens,
                                .bucket_size = 1024, .pad_id = pad_id,
                                /* the end holds the targets of intent data (its answer): keep it */
                                .truncation = CT_TRUNCATE_LEFT};
    ct_batcher *batcher = ct_batcher_new(store, &options);
    if (!batcher) return -1;
    ct_epoch_stats stats;
    int rc = ct_batcher_epoch_stats(batcher, &stats);
    bool was_enabled = ct_set_grad_enabled(false);
    for (int64_t i = 0; rc == 0 && i < stats.batches; i++) {
        ct_batch b;
        if (ct_scope_begin() < 0) {
            rc = -1;
            break;
        }
        rc = ct_batcher_next(batcher, &b);
        if (rc == 0) rc = batch_nll(model, &b, acc);
        ct_scope_end();
    }
    ct_set_grad_enabled(was_enabled);
    ct_batcher_free(batcher);
    return rc;
}
