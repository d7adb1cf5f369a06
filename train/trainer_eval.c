/* Evaluation during training: the held-out loss and perplexity on every data format, intent
 * accuracy (both scoring rules) and macro F1 on intent data. */
#include <math.h>

#include "core/error.h"
#include "train/evaluate.h"
#include "train/trainer_internal.h"

static int evaluate_loss(ct_trainer *t, const ct_seq_store *store, ct_eval_record *record) {
    const ct_recipe *r = t->recipe;
    ct_perplexity acc = {0};
    CT_TRY(ct_evaluate_nll(t->model, store, ct_recipe_seq_len(r), r->eval.batch_size, r->data.batch_tokens, t->pad_id, &acc));
    if (acc.tokens == 0) return 0;
    CT_TRY(ct_perplexity_result(&acc, &record->loss, &record->perplexity));
    record->present |= CT_EVAL_LOSS | CT_EVAL_PERPLEXITY;
    return 0;
}

int ct_trainer_evaluate(ct_trainer *t, const char *split, ct_examples *examples, const ct_seq_store *store,
                        int64_t max_examples, ct_eval_record *record) {
    const ct_recipe *r = t->recipe;
    double start = ct_seconds_now();
    CT_TRY(evaluate_loss(t, store, record));
    bool intent = examples->format == CT_DATA_INTENT || examples->format == CT_DATA_DIALOG_INTENT;
    if (intent) {
        ct_sft_options options = ct_trainer_sft_options(t);
        ct_intent_eval eval = {0};
        int rc = ct_evaluate_intent(t->model, &options, examples, max_examples, r->eval.length_normalized, &eval);
        if (rc == 0) {
            record->accuracy = eval.accuracy_summed;
            record->accuracy_length_normalized = eval.accuracy_length_normalized;
            record->macro_f1 = eval.report.macro_f1;
            record->present |= CT_EVAL_ACCURACY | CT_EVAL_ACCURACY_LENGTH_NORMALIZED | CT_EVAL_MACRO_F1;
        }
        ct_intent_eval_free(&eval);
        CT_TRY(rc);
        fprintf(t->log, "eval %s at step %lld: accuracy %.4f (length-normalized %.4f), macro F1 %.4f, loss %.4f (%.1f s)\n",
                split, (long long)t->step, record->accuracy, record->accuracy_length_normalized, record->macro_f1,
                record->loss, ct_seconds_now() - start);
    } else {
        fprintf(t->log, "eval %s at step %lld: loss %.4f, perplexity %.3f (%.1f s)\n", split, (long long)t->step,
                record->loss, record->perplexity, ct_seconds_now() - start);
    }
    return 0;
}
