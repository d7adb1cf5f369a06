/* Log-likelihood scoring with a LLaMA-family model: how likely each of several candidate
 * continuations is after a prompt (intent classification by label likelihood), and the
 * per-token negative log-likelihood of a sequence (perplexity).
 *
 * Candidates are scored with the prompt run once: its keys and values go through a one-row KV
 * cache, are copied into every row of a K-row cache, and all K candidates then run as one
 * right-padded batch after it. The logits at the prompt's last token score every candidate's
 * first token; the batch scores the rest. Only positions that predict a candidate token reach
 * the vocabulary projection, so the cost is about one prompt plus the candidates' tokens.
 *
 * The softmax runs over the ids a tokenizer can produce, [0, vocab_limit): a model may have more
 * rows than its tokenizer has tokens (Qwen pads 151,665 tokens to 151,936 rows), and a token no
 * text can contain should hold no probability. With vocab_limit = config.vocab_size the numbers
 * are those of the model's raw logits (what transformers computes).
 *
 * Everything runs in no-grad mode inside a scope of its own: nothing is left in the caller's
 * arena. docs/inference.md has the details. */
#ifndef CT_SCORE_H
#define CT_SCORE_H

#include <stdint.h>

#include "datasets/tokenizer.h"
#include "models/llama.h"

typedef struct {
    /* The softmax's ids: [0, vocab_limit). 0: the model's tokenizer's size, or all of the
     * model's rows without a tokenizer. At most config.vocab_size. */
    int64_t vocab_limit;
} ct_score_options;

typedef struct {
    double logprob;   /* sum over the candidate's tokens of log p(token | prompt, earlier tokens) */
    int64_t n_tokens; /* its length: logprob / n_tokens is the per-token (length-normalized) score */
} ct_candidate_score;

/* Scores n_candidates non-empty continuations of a non-empty prompt; out gets one score per
 * candidate. Every id must be below the vocabulary limit. opt may be NULL. 0, or -1 with a
 * message. */
int ct_score_candidates(ct_llama *m, const int32_t *prompt, int64_t prompt_len, const ct_token_list *candidates,
                        int64_t n_candidates, const ct_score_options *opt, ct_candidate_score *out);

/* nll[t] = -log p(ids[t + 1] | ids[0 .. t]) for t in [0, n - 1): n - 1 values, n >= 2. The
 * sequence runs through a KV cache in chunks, so only one chunk's logits exist at a time;
 * perplexity is exp(mean(nll)). opt may be NULL. 0, or -1 with a message. */
int ct_score_sequence(ct_llama *m, const int32_t *ids, int64_t n, const ct_score_options *opt, double *nll);

#endif
