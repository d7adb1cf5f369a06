/* Mean next-token KL(reference ‖ model): how far a quantized (or otherwise changed) model's
 * next-token distributions are from a reference's on the same tokens (see evaluate.h). */
#include <math.h>
#include <string.h>

#include "core/arena.h"
#include "core/error.h"
#include "autograd/tape.h"
#include "train/evaluate.h"

static double log_sum_exp(const float *x, int64_t n) {
    double max = -INFINITY, sum = 0;
    for (int64_t i = 0; i < n; i++) max = fmax(max, x[i]);
    for (int64_t i = 0; i < n; i++) sum += exp(x[i] - max);
    return max + log(sum);
}

/* Σ_v p(v) (log p(v) - log q(v)) for one position's logits. */
static double position_kl(const float *ref, const float *model, int64_t vocab) {
    const double lse_r = log_sum_exp(ref, vocab), lse_m = log_sum_exp(model, vocab);
    double kl = 0;
    for (int64_t v = 0; v < vocab; v++) {
        const double lp = ref[v] - lse_r;
        kl += exp(lp) * (lp - (model[v] - lse_m));
    }
    return kl;
}

static ct_tensor *cpu_logits(ct_llama *m, ct_tensor *ids) {
    ct_tensor *logits = ct_llama_forward(m, ids, NULL);
    if (logits && logits->dtype != CT_F32) return ct_fail("KL evaluation: the logits are %s; evaluate in f32",
                                                           ct_dtype_name(logits->dtype)), NULL;
    return logits;
}

static int sequence_kl(ct_llama *reference, ct_llama *model, const int32_t *tokens, int64_t len, double *sum) {
    const int64_t shape[2] = {1, len}, vocab = model->config.vocab_size;
    ct_tensor *ids = ct_empty(CT_I32, 2, shape);
    if (!ids) return -1;
    memcpy(ids->data, tokens, (size_t)len * sizeof *tokens);
    ct_tensor *r = cpu_logits(reference, ids), *m = r ? cpu_logits(model, ids) : NULL;
    if (!m) return -1;
    for (int64_t t = 0; t < len; t++)
        *sum += position_kl((const float *)r->data + t * vocab, (const float *)m->data + t * vocab, vocab);
    return 0;
}

int ct_evaluate_kl(ct_llama *reference, ct_llama *model, const ct_seq_store *store, int64_t max_seq_len,
                   double *mean_kl, int64_t *positions) {
    if (reference->config.vocab_size != model->config.vocab_size)
        return ct_fail("KL evaluation: the reference has %lld vocabulary rows and the model %lld; compare models of "
                       "the same vocabulary",
                       (long long)reference->config.vocab_size, (long long)model->config.vocab_size);
    if (ct_llama_device(reference) != CT_CPU || ct_llama_device(model) != CT_CPU)
        return ct_fail("KL evaluation runs on the CPU; load both models there");
    double sum = 0;
    int64_t count = 0;
    int rc = 0;
    bool was_enabled = ct_set_grad_enabled(false);
    for (size_t i = 0; rc == 0 && i < store->count; i++) {
        int64_t len = ct_seq_store_len(store, i), skip = len > max_seq_len ? len - max_seq_len : 0;
        if (ct_scope_begin() < 0) {
            rc = -1;
            break;
        }
        /* the end holds an intent example's answer: keep it, as the loss evaluation does */
        rc = sequence_kl(reference, model, store->ids + store->offsets[i] + skip, len - skip, &sum);
        ct_scope_end();
        count += len - skip;
    }
    ct_set_grad_enabled(was_enabled);
    if (rc == 0 && count == 0) rc = ct_fail("KL evaluation: no tokens to compare");
    if (rc == 0) {
        *mean_kl = sum / (double)count;
        *positions = count;
    }
    return rc;
}
