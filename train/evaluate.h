/* Evaluation of a causal LM on held-out data.
 *
 * Intent accuracy by log-likelihood: each example is converted exactly as for training
 * (datasets/sft.h): the prompt (system, dialogue, user turn, assistant header) followed by one
 * candidate answer per label (its display text and the end-of-turn token). Every candidate gets
 *   summed score            = sum of log p(answer token | everything before it)
 *   length-normalized score = summed score / number of answer tokens
 * and the label with the highest score is the prediction. Both rules are always computed and
 * reported; `length_normalized` picks which one is the primary accuracy (the recipe key
 * eval.length_normalized; summed by default, since the end token already penalizes a label
 * that stops too early or runs on).
 *
 * Perplexity: the mean token negative log-likelihood of the loss targets of a sequence store,
 * batched without shuffling, and exp of it. */
#ifndef CT_EVALUATE_H
#define CT_EVALUATE_H

#include <stdbool.h>
#include <stdint.h>

#include "datasets/batching.h"
#include "datasets/examples.h"
#include "datasets/sft.h"
#include "models/llama.h"
#include "train/eval_metrics.h"

typedef struct {
    ct_confusion *summed, *normalized;  /* one confusion matrix per scoring rule */
    ct_classification_report report;    /* of the primary rule */
    bool length_normalized;             /* which rule is primary */
    double accuracy;                    /* primary */
    double accuracy_summed, accuracy_length_normalized;
    int64_t examples;
} ct_intent_eval;

/* Scores every label for the first max_examples examples (0 = all) of an intent or
 * dialog_intent split. `out` must be zero-initialised; free it with ct_intent_eval_free. Scoring
 * uses the host-only KV cache: a model on a GPU is moved to the host (with its gradients) for
 * the call and moved back, two copies of the weights per evaluation. */
int ct_evaluate_intent(ct_llama *model, const ct_sft_options *options, const ct_examples *examples,
                       int64_t max_examples, bool length_normalized, ct_intent_eval *out);
void ct_intent_eval_free(ct_intent_eval *eval);

/* Adds the token NLLs of every loss target in `store` to `acc` (batches of at most batch_size
 * sequences and batch_tokens tokens; a longer sequence loses its beginning, as in training by
 * default, so an intent example keeps its answer). Runs on the
 * model's device and in its compute_dtype: each batch is copied there, the summed loss back. */
int ct_evaluate_nll(ct_llama *model, const ct_seq_store *store, int64_t max_seq_len, int64_t batch_size,
                    int64_t batch_tokens, int32_t pad_id, ct_perplexity *acc);

/* The mean next-token KL(reference ‖ model) = Σ_v p_ref(v) (log p_ref(v) - log p_model(v)),
 * averaged over every position of every sequence of `store` (each cut to its last max_seq_len
 * tokens), both models run in f32 on the CPU over their full vocabulary (which must be the same
 * size). How far a quantized model's predictions are from its f32 source on held-out text. */
int ct_evaluate_kl(ct_llama *reference, ct_llama *model, const ct_seq_store *store, int64_t max_seq_len,
                   double *mean_kl, int64_t *positions);

#endif
