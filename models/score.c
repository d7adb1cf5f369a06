/* Log-likelihood scoring: candidates after a shared prompt (the prompt's cache copied into one
 * row per candidate) and the per-token NLL of a sequence (chunks through a cache). The contract
 * is in models/score.h. */
#include <math.h>
#include <string.h>

#include "core/arena.h"
#include "core/error.h"
#include "autograd/tape.h"
#include "models/score.h"

/* Positions per forward in ct_score_sequence: bounds the logits held at once to CHUNK x V. */
#define CT_SCORE_CHUNK 256

static int resolve_limit(const ct_llama *m, const ct_score_options *opt, int64_t *limit) {
    const int64_t rows = m->config.vocab_size, asked = opt ? opt->vocab_limit : 0;
    *limit = asked ? asked : m->tokenizer ? ct_tokenizer_vocab_size(m->tokenizer) : rows;
    if (!asked && *limit > rows) *limit = rows;
    if (*limit <= 0 || *limit > rows)
        return ct_fail("score: vocab_limit %lld must be in [1, %lld], the model's rows", (long long)asked, (long long)rows);
    return 0;
}

static int check_ids(const int32_t *ids, int64_t n, int64_t limit, const char *what, int64_t index) {
    if (n <= 0) return ct_fail("score: %s %lld is empty; it needs at least one token", what, (long long)index);
    for (int64_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= limit)
            return ct_fail("score: %s %lld holds id %d at %lld, outside the vocabulary [0, %lld)", what,
                           (long long)index, (int)ids[i], (long long)i, (long long)limit);
    return 0;
}

/* log softmax(row[0, limit))[target], accumulated in f64. */
static double log_prob(const float *row, int64_t limit, int32_t target) {
    float top = row[0];
    for (int64_t i = 1; i < limit; i++) top = row[i] > top ? row[i] : top;
    double sum = 0;
    for (int64_t i = 0; i < limit; i++) sum += exp((double)row[i] - top);
    return (double)row[target] - top - log(sum);
}

/* Runs `fn` in no-grad mode inside a scope of its own, restoring both afterwards. */
static int in_no_grad_scope(int (*fn)(void *), void *ctx) {
    const bool was = ct_set_grad_enabled(false);
    int rc = ct_scope_begin() < 0 ? ct_fail("score: scopes nested too deeply") : 0;
    if (rc == 0) {
        rc = fn(ctx);
        ct_scope_end();
    }
    ct_set_grad_enabled(was);
    return rc;
}

/* ---- candidates ---- */

typedef struct {
    ct_llama *m;
    const int32_t *prompt;
    int64_t prompt_len, n, limit, longest;
    const ct_token_list *cands;
    ct_candidate_score *out;
    ct_kv_cache one, all; /* the prompt's cache; one copy of it per candidate */
} cand_run;

static ct_tensor *ids_tensor(const int32_t *ids, int64_t rows, int64_t cols) {
    ct_tensor *t = ct_empty(CT_I32, 2, (int64_t[]){rows, cols});
    if (t) memcpy(t->data, ids, sizeof(int32_t) * (size_t)(rows * cols));
    return t;
}

/* Slots [0, length) of row 0 of a [1, max_len, ...] buffer into every row of [B, max_len', ...]. */
static void copy_to_rows(ct_tensor *dst, const ct_tensor *src, int64_t length) {
    const size_t slot = ct_nbytes(src) / (size_t)(src->shape[0] * src->shape[1]);
    for (int64_t b = 0; b < dst->shape[0]; b++)
        memcpy((char *)dst->data + (size_t)(b * dst->shape[1]) * slot, src->data, (size_t)length * slot);
}

static void broadcast_prompt(cand_run *r) {
    for (int l = 0; l < r->one.n_layers; l++) {
        copy_to_rows(r->all.k[l], r->one.k[l], r->one.length);
        copy_to_rows(r->all.v[l], r->one.v[l], r->one.length);
    }
    copy_to_rows(r->all.positions, r->one.positions, r->one.length);
    copy_to_rows(r->all.segments, r->one.segments, r->one.length);
    r->all.length = r->one.length;
}

/* Candidate k's tokens but the last, right-padded with id 0 to longest - 1: each position
 * predicts the next token; padding comes after everything that counts, so causality hides it. */
static ct_tensor *candidate_inputs(const cand_run *r) {
    const int64_t T = r->longest - 1;
    ct_tensor *t = ct_zeros(CT_I32, 2, (int64_t[]){r->n, T});
    for (int64_t k = 0; t && k < r->n; k++)
        memcpy((int32_t *)t->data + k * T, r->cands[k].ids, sizeof(int32_t) * (r->cands[k].len - 1));
    return t;
}

/* Every candidate token after the first, from logits [n, longest - 1, V]: rows in parallel, then
 * each candidate's sum in token order, so the result does not depend on the thread count. */
static int add_later_tokens(cand_run *r, const ct_tensor *logits) {
    const int64_t T = logits->shape[1], V = logits->shape[2];
    double *lp = ct_arena_alloc(sizeof(double) * (size_t)(r->n * T));
    if (!lp) return -1;
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t k = 0; k < r->n; k++)
        for (int64_t t = 0; t < T; t++)
            if (t + 1 < (int64_t)r->cands[k].len)
                lp[k * T + t] = log_prob((const float *)logits->data + (k * T + t) * V, r->limit, r->cands[k].ids[t + 1]);
    for (int64_t k = 0; k < r->n; k++)
        for (int64_t t = 0; t + 1 < (int64_t)r->cands[k].len; t++) r->out[k].logprob += lp[k * T + t];
    return 0;
}

static int score_candidates(void *ctx) {
    cand_run *r = ctx;
    ct_llama_forward_args args = {.cache = &r->one, .last_token_only = true};
    ct_tensor *first = ct_llama_forward(r->m, ids_tensor(r->prompt, 1, r->prompt_len), &args);
    if (!first) return -1;
    for (int64_t k = 0; k < r->n; k++) {
        r->out[k].n_tokens = (int64_t)r->cands[k].len;
        r->out[k].logprob = log_prob(first->data, r->limit, r->cands[k].ids[0]);
    }
    if (r->longest < 2) return 0;
    broadcast_prompt(r);
    args.cache = &r->all;
    args.last_token_only = false;
    ct_tensor *logits = ct_llama_forward(r->m, candidate_inputs(r), &args);
    return logits ? add_later_tokens(r, logits) : -1;
}

int ct_score_candidates(ct_llama *m, const int32_t *prompt, int64_t prompt_len, const ct_token_list *candidates,
                        int64_t n_candidates, const ct_score_options *opt, ct_candidate_score *out) {
    cand_run r = {.m = m, .prompt = prompt, .prompt_len = prompt_len, .n = n_candidates, .cands = candidates, .out = out};
    CT_TRY(resolve_limit(m, opt, &r.limit));
    if (n_candidates <= 0) return ct_fail("score: %lld candidates; give at least one", (long long)n_candidates);
    CT_TRY(check_ids(prompt, prompt_len, r.limit, "prompt", 0));
    for (int64_t k = 0; k < n_candidates; k++) {
        CT_TRY(check_ids(candidates[k].ids, (int64_t)candidates[k].len, r.limit, "candidate", k));
        r.longest = (int64_t)candidates[k].len > r.longest ? (int64_t)candidates[k].len : r.longest;
    }
    int rc = ct_kv_cache_init(&r.one, &m->config, 1, prompt_len);
    if (rc == 0 && r.longest > 1) rc = ct_kv_cache_init(&r.all, &m->config, n_candidates, prompt_len + r.longest - 1);
    if (rc == 0) rc = in_no_grad_scope(score_candidates, &r);
    if (r.one.k) ct_kv_cache_free(&r.one);
    if (r.all.k) ct_kv_cache_free(&r.all);
    return rc;
}

/* ---- one sequence ---- */

typedef struct {
    ct_llama *m;
    const int32_t *ids;
    int64_t n, limit;
    double *nll;
    ct_kv_cache cache;
} seq_run;

static int score_chunk(seq_run *r, int64_t start, int64_t len) {
    ct_llama_forward_args args = {.cache = &r->cache};
    ct_tensor *logits = ct_llama_forward(r->m, ids_tensor(r->ids + start, 1, len), &args);
    if (!logits) return -1;
    const int64_t V = logits->shape[2];
#pragma omp parallel for schedule(static)
    for (int64_t t = 0; t < len; t++)
        r->nll[start + t] = -log_prob((const float *)logits->data + t * V, r->limit, r->ids[start + t + 1]);
    return 0;
}

static int score_sequence(void *ctx) {
    seq_run *r = ctx;
    for (int64_t start = 0; start < r->n - 1; start += CT_SCORE_CHUNK) {
        const int64_t len = r->n - 1 - start < CT_SCORE_CHUNK ? r->n - 1 - start : CT_SCORE_CHUNK;
        if (ct_scope_begin() < 0) return ct_fail("score: scopes nested too deeply");
        int rc = score_chunk(r, start, len); /* each chunk's logits die with its scope */
        ct_scope_end();
        CT_TRY(rc);
    }
    return 0;
}

int ct_score_sequence(ct_llama *m, const int32_t *ids, int64_t n, const ct_score_options *opt, double *nll) {
    seq_run r = {.m = m, .ids = ids, .n = n, .nll = nll};
    CT_TRY(resolve_limit(m, opt, &r.limit));
    if (n < 2) return ct_fail("score: a sequence of %lld tokens has nothing to predict; give at least 2", (long long)n);
    CT_TRY(check_ids(ids, n, r.limit, "sequence", 0));
    CT_TRY(ct_kv_cache_init(&r.cache, &m->config, 1, n - 1));
    int rc = in_no_grad_scope(score_sequence, &r);
    ct_kv_cache_free(&r.cache);
    return rc;
}
