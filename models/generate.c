/* Generation: sampling one token from logits, incremental UTF-8-safe decoding, the left-padded
 * KV-cached forward of a batch of prompts, and the loop that ties them together. The contract
 * is in models/generate.h. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/error.h"
#include "autograd/tape.h"
#include "models/generate.h"

/* ---- sampling ---- */

int ct_sampling_check(const ct_sampling *s) {
    if (!(s->temperature >= 0) || !isfinite(s->temperature))
        return ct_fail("sampling: temperature %g must be 0 (greedy) or a positive number", s->temperature);
    if (s->top_k < 0) return ct_fail("sampling: top_k %lld must be 0 (off) or positive", (long long)s->top_k);
    if (!(s->top_p > 0 && s->top_p <= 1))
        return ct_fail("sampling: top_p %g must be in (0, 1]; 1 turns nucleus sampling off", s->top_p);
    return 0;
}

int ct_sampler_init(ct_sampler *sampler, int64_t n) {
    memset(sampler, 0, sizeof *sampler);
    if (n <= 0) return ct_fail("sampler: %lld ids; need at least one", (long long)n);
    sampler->ranked = ct_malloc(sizeof *sampler->ranked * (size_t)n, "sampler ranking");
    sampler->probs = ct_malloc(sizeof(double) * (size_t)n, "sampler probabilities");
    if (!sampler->ranked || !sampler->probs) {
        ct_sampler_free(sampler);
        return -1;
    }
    sampler->n = n;
    return 0;
}

void ct_sampler_free(ct_sampler *sampler) {
    free(sampler->ranked);
    free(sampler->probs);
    memset(sampler, 0, sizeof *sampler);
}

static bool is_greedy(const ct_sampling *s) { return s->temperature == 0; }

/* The argmax, first index on ties (as torch.argmax), or -1 for a NaN or infinite logit. */
static int32_t argmax(const float *logits, int64_t n) {
    int32_t best = 0;
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(logits[i])) return -1;
        if (logits[i] > logits[best]) best = (int32_t)i;
    }
    return best;
}

/* qsort gives no order to equal elements; ties break by id so every platform agrees. */
static int by_logit_desc(const void *pa, const void *pb) {
    const ct_ranked_id *a = pa, *b = pb;
    if (a->logit != b->logit) return a->logit > b->logit ? -1 : 1;
    return (a->id > b->id) - (a->id < b->id);
}

/* The smallest of the thresholds exp(-1/2), exp(-1), exp(-2), ... (relative to the best id's
 * weight e = 1) whose ids surely hold every kept id: at least top_k of them, or without top_k a
 * mass that reaches top_p. e[i] are the ids' unnormalized probabilities, summing to all. Sorting
 * only those ids instead of a whole vocabulary (150,000 for Qwen) keeps sampling cheap. */
static double candidate_floor(const double *e, int64_t n, const ct_sampling *s, double all) {
    for (double delta = 0.5; delta < 1024; delta *= 2) {
        const double floor = exp(-delta);
        int64_t count = 0;
        double mass = 0;
        for (int64_t i = 0; i < n; i++)
            if (e[i] >= floor) count++, mass += e[i];
        if (s->top_k > 0 ? count >= s->top_k : mass >= s->top_p * all) return floor;
    }
    return 0; /* every id */
}

/* Leaves the kept ids in ranked[0, *kept) (by decreasing logit, except in id order when nothing
 * is cut), their unnormalized probabilities in probs[rank], and the sum of those in *total. */
static int nucleus(ct_sampler *sm, const float *logits, int64_t n, const ct_sampling *s, int64_t *kept,
                   double *total) {
    float best = logits[0];
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(logits[i]))
            return ct_fail("sampling: logit %lld is %g; the model produced non-finite values", (long long)i, logits[i]);
        best = logits[i] > best ? logits[i] : best;
    }
    const double T = s->temperature, top = best / T;
    double all = 0;
    for (int64_t i = 0; i < n; i++) all += sm->probs[i] = exp(logits[i] / T - top); /* by id for now */
    int64_t count = n;
    if (s->top_k > 0 || s->top_p < 1) {
        const double floor = candidate_floor(sm->probs, n, s, all);
        count = 0;
        for (int64_t i = 0; i < n; i++)
            if (sm->probs[i] >= floor) sm->ranked[count++] = (ct_ranked_id){logits[i], (int32_t)i};
        qsort(sm->ranked, (size_t)count, sizeof *sm->ranked, by_logit_desc);
        for (int64_t r = 0; r < count; r++) sm->probs[r] = exp(sm->ranked[r].logit / T - top); /* now by rank */
    } else {
        for (int64_t i = 0; i < n; i++) sm->ranked[i] = (ct_ranked_id){logits[i], (int32_t)i};
    }
    int64_t k = count;
    if (s->top_k > 0 && s->top_k < count) { /* ties with the k-th value stay, as in transformers */
        k = s->top_k;
        while (k < count && sm->ranked[k].logit == sm->ranked[k - 1].logit) k++;
    }
    /* The nucleus is measured against the mass after top_k: every id's mass without it. */
    double sum = all;
    if (s->top_k > 0)
        for (int64_t r = sum = 0; r < k; r++) sum += sm->probs[r];
    /* Keep a token while the mass of the more likely ones is below top_p: the smallest set that
     * reaches top_p, never empty. */
    int64_t keep = k;
    if (s->top_p < 1) {
        double before = 0;
        for (keep = 0; keep < k && before < s->top_p * sum; keep++) before += sm->probs[keep];
    }
    double kept_sum = 0;
    for (int64_t r = 0; r < keep; r++) kept_sum += sm->probs[r];
    *kept = keep;
    *total = kept_sum;
    return 0;
}

static int check_sampler(const ct_sampler *sm, int64_t n) {
    if (n <= 0 || n > sm->n)
        return ct_fail("sampling: %lld ids but the sampler was made for %lld", (long long)n, (long long)sm->n);
    return 0;
}

int ct_sampling_distribution(ct_sampler *sm, const float *logits, int64_t n, const ct_sampling *s, double *probs) {
    CT_TRY(ct_sampling_check(s));
    CT_TRY(check_sampler(sm, n));
    memset(probs, 0, sizeof(double) * (size_t)n);
    if (is_greedy(s)) {
        int32_t best = argmax(logits, n);
        if (best < 0) return ct_fail("sampling: the logits hold a non-finite value");
        probs[best] = 1;
        return 0;
    }
    int64_t kept;
    double total;
    CT_TRY(nucleus(sm, logits, n, s, &kept, &total));
    for (int64_t r = 0; r < kept; r++) probs[sm->ranked[r].id] = sm->probs[r] / total;
    return 0;
}

int32_t ct_sample(ct_sampler *sm, const float *logits, int64_t n, const ct_sampling *s, ct_rng *rng) {
    CT_TRY(ct_sampling_check(s));
    CT_TRY(check_sampler(sm, n));
    if (is_greedy(s)) {
        int32_t best = argmax(logits, n);
        return best >= 0 ? best : ct_fail("sampling: the logits hold a non-finite value");
    }
    int64_t kept;
    double total;
    CT_TRY(nucleus(sm, logits, n, s, &kept, &total));
    const double u = ct_rng_uniform(rng) * total;
    double acc = 0;
    for (int64_t r = 0; r < kept; r++) {
        acc += sm->probs[r];
        if (u < acc) return sm->ranked[r].id;
    }
    return sm->ranked[kept - 1].id; /* u within rounding of the total */
}

/* ---- incremental decoding ---- */

void ct_text_stream_init(ct_text_stream *s, const ct_tokenizer *tok) {
    memset(s, 0, sizeof *s);
    s->tok = tok;
}

void ct_text_stream_free(ct_text_stream *s) {
    free(s->held);
    free(s->out);
    memset(s, 0, sizeof *s);
}

/* The bytes that may follow lead byte c as its first continuation (Unicode's table 3-7: no
 * overlong forms, no surrogates, nothing above U+10FFFF); 0 for a byte that starts no character. */
static int utf8_length(unsigned char c, unsigned char *lo, unsigned char *hi) {
    *lo = 0x80, *hi = 0xBF;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) return 2;
    if (c >= 0xE0 && c <= 0xEF) {
        if (c == 0xE0) *lo = 0xA0;
        if (c == 0xED) *hi = 0x9F;
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (c == 0xF0) *lo = 0x90;
        if (c == 0xF4) *hi = 0x8F;
        return 4;
    }
    return 0;
}

/* How many bytes of b[0..n) form a valid prefix of the character b[0] starts (1..4), and in
 * *whole whether that prefix is the whole character. */
static size_t utf8_valid_prefix(const unsigned char *b, size_t n, bool *whole) {
    unsigned char lo, hi;
    const size_t need = (size_t)utf8_length(b[0], &lo, &hi);
    *whole = need == 1;
    if (need <= 1) return 1;
    size_t have = 1;
    while (have < need && have < n && b[have] >= lo && b[have] <= hi) {
        have++;
        lo = 0x80, hi = 0xBF;
    }
    *whole = have == need;
    return have;
}

static int append(char **buf, size_t *len, size_t *cap, const void *bytes, size_t n) {
    if (n == 0) return 0;
    if (*len + n > *cap) {
        size_t grown = *cap ? *cap : 64;
        while (grown < *len + n) grown *= 2;
        char *p = realloc(*buf, grown);
        if (!p) return ct_fail("text stream: out of memory for %zu bytes", grown);
        *buf = p;
        *cap = grown;
    }
    memcpy(*buf + *len, bytes, n);
    *len += n;
    return 0;
}

static const char replacement_char[] = "\xEF\xBF\xBD"; /* U+FFFD */

/* Moves the whole characters of the held bytes to the output, replacing invalid subparts, and
 * keeps an incomplete last character held (or replaces it too when the stream ends). */
static int stream_take(ct_text_stream *s, bool at_end) {
    const unsigned char *b = (const unsigned char *)s->held;
    const size_t n = s->held_len;
    size_t i = 0;
    while (i < n) {
        bool whole;
        const size_t k = utf8_valid_prefix(b + i, n - i, &whole);
        if (!whole && i + k == n && !at_end) break; /* may still complete */
        CT_TRY(whole ? append(&s->out, &s->out_len, &s->out_cap, b + i, k)
                     : append(&s->out, &s->out_len, &s->out_cap, replacement_char, 3));
        i += k;
    }
    if (i < n) memmove(s->held, s->held + i, n - i);
    s->held_len = n - i;
    return 0;
}

int ct_text_stream_push(ct_text_stream *s, int32_t id, const char **text, size_t *len) {
    *text = "";
    *len = 0;
    s->out_len = 0;
    size_t n = 0;
    char *bytes = ct_tokenizer_decode(s->tok, &id, 1, CT_DECODE_SKIP_SPECIAL, &n);
    if (!bytes) return -1;
    int rc = append(&s->held, &s->held_len, &s->held_cap, bytes, n);
    free(bytes);
    if (rc == 0) rc = stream_take(s, false);
    *text = s->out ? s->out : "";
    *len = s->out_len;
    return rc;
}

int ct_text_stream_flush(ct_text_stream *s, const char **text, size_t *len) {
    s->out_len = 0;
    int rc = stream_take(s, true);
    *text = s->out ? s->out : "";
    *len = s->out_len;
    return rc;
}

/* ---- the cached, left-padded forward ---- */

int ct_generator_init(ct_generator *g, ct_llama *m, int64_t batch, int64_t max_len) {
    memset(g, 0, sizeof *g);
    CT_TRY(ct_kv_cache_init(&g->cache, &m->config, batch, max_len));
    g->next_pos = ct_calloc((size_t)batch, sizeof *g->next_pos, "generator positions");
    if (!g->next_pos) {
        ct_kv_cache_free(&g->cache);
        return -1;
    }
    g->model = m;
    g->batch = batch;
    return 0;
}

void ct_generator_free(ct_generator *g) {
    if (g->cache.k) ct_kv_cache_free(&g->cache);
    free(g->next_pos);
    memset(g, 0, sizeof *g);
}

static int check_ids(const ct_llama *m, const int32_t *ids, int64_t n, int64_t row) {
    for (int64_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= m->config.vocab_size)
            return ct_fail("generate: row %lld holds id %d at %lld, outside the model's %lld embedding rows",
                           (long long)row, (int)ids[i], (long long)i, (long long)m->config.vocab_size);
    return 0;
}

/* The cached forward in no-grad mode, whatever the caller's mode. */
static ct_tensor *cached_forward(ct_generator *g, ct_tensor *ids, ct_tensor *pos, ct_tensor *seg) {
    if (!ids || !pos || !seg) return NULL;
    ct_llama_forward_args args = {.position_ids = pos, .segment_ids = seg, .cache = &g->cache, .last_token_only = true};
    const bool was = ct_set_grad_enabled(false);
    ct_tensor *logits = ct_llama_forward(g->model, ids, &args);
    ct_set_grad_enabled(was);
    return logits;
}

ct_tensor *ct_generator_prefill(ct_generator *g, const ct_token_list *prompts) {
    const int64_t B = g->batch;
    if (g->cache.length != 0) {
        ct_fail("generate: prefill needs an empty cache; ct_kv_cache_reset it first");
        return NULL;
    }
    int64_t P = 0;
    for (int64_t b = 0; b < B; b++) {
        if (prompts[b].len == 0) {
            ct_fail("generate: prompt %lld is empty; give at least one token (a BOS or a chat header)", (long long)b);
            return NULL;
        }
        if (check_ids(g->model, prompts[b].ids, (int64_t)prompts[b].len, b) < 0) return NULL;
        P = (int64_t)prompts[b].len > P ? (int64_t)prompts[b].len : P;
    }
    const int64_t shape[2] = {B, P};
    ct_tensor *ids = ct_empty(CT_I32, 2, shape), *pos = ct_empty(CT_I32, 2, shape), *seg = ct_empty(CT_I32, 2, shape);
    if (!ids || !pos || !seg) return NULL;
    for (int64_t b = 0; b < B; b++) {
        const int64_t pad = P - (int64_t)prompts[b].len;
        int32_t *row_ids = (int32_t *)ids->data + b * P, *row_pos = (int32_t *)pos->data + b * P;
        int32_t *row_seg = (int32_t *)seg->data + b * P;
        for (int64_t t = 0; t < P; t++) {
            row_ids[t] = t < pad ? 0 : prompts[b].ids[t - pad];
            row_pos[t] = t < pad ? 0 : (int32_t)(t - pad);
            row_seg[t] = t < pad ? 0 : 1; /* pads form a segment of their own: never attended */
        }
        g->next_pos[b] = (int32_t)prompts[b].len;
    }
    return cached_forward(g, ids, pos, seg);
}

ct_tensor *ct_generator_step(ct_generator *g, const int32_t *next) {
    const int64_t B = g->batch;
    for (int64_t b = 0; b < B; b++)
        if (check_ids(g->model, &next[b], 1, b) < 0) return NULL;
    const int64_t shape[2] = {B, 1};
    ct_tensor *ids = ct_empty(CT_I32, 2, shape), *pos = ct_empty(CT_I32, 2, shape), *seg = ct_empty(CT_I32, 2, shape);
    if (!ids || !pos || !seg) return NULL;
    for (int64_t b = 0; b < B; b++) {
        ((int32_t *)ids->data)[b] = next[b];
        ((int32_t *)pos->data)[b] = g->next_pos[b];
        ((int32_t *)seg->data)[b] = 1;
    }
    ct_tensor *logits = cached_forward(g, ids, pos, seg);
    for (int64_t b = 0; logits && b < B; b++) g->next_pos[b]++;
    return logits;
}

/* ---- the loop ---- */

ct_generate_options ct_generate_defaults(void) {
    return (ct_generate_options){.max_new_tokens = 64, .sampling = {.temperature = 0, .top_k = 0, .top_p = 1}};
}

void ct_generation_free(ct_generation *gens, int64_t n) {
    for (int64_t i = 0; gens && i < n; i++) ct_token_list_free(&gens[i].ids);
}

/* Everything one run needs besides the generator. */
typedef struct {
    ct_llama *m;
    const ct_generate_options *opt;
    const ct_tokenizer *tok; /* for text; NULL: the callback gets none */
    int64_t limit;           /* ids [0, limit) can be produced */
    ct_sampler sampler;
    ct_rng rng;
    ct_text_stream *streams; /* per row, with a tokenizer and a callback */
    bool *done;
    int32_t *next;
    ct_generation *out;
    const ct_token_list *prompts;
    int64_t n, active;
} gen_run;

static int resolve_limit(gen_run *r) {
    const int64_t rows = r->m->config.vocab_size;
    int64_t limit = r->opt->vocab_limit;
    const ct_tokenizer *tok = r->opt->tokenizer ? r->opt->tokenizer : r->m->tokenizer;
    if (limit == 0) limit = tok ? ct_tokenizer_vocab_size(tok) : rows;
    if (limit > rows) limit = r->opt->vocab_limit ? -1 : rows;
    if (limit <= 0)
        return ct_fail("generate: vocab_limit %lld must be in [1, %lld], the model's rows",
                       (long long)r->opt->vocab_limit, (long long)rows);
    r->limit = limit;
    return 0;
}

static bool is_stop(const gen_run *r, int32_t id) {
    const ct_llama_config *cfg = &r->m->config;
    for (int i = 0; !r->opt->ignore_eos && i < cfg->n_eos; i++)
        if (cfg->eos_token_ids[i] == id) return true;
    for (int i = 0; i < r->opt->n_stop_ids; i++)
        if (r->opt->stop_ids[i] == id) return true;
    return false;
}

/* Hands a token (id >= 0) or a row's end (id -1) to the callback with its text. */
static int notify(gen_run *r, int64_t row, int32_t id) {
    if (!r->opt->on_token) return 0;
    const char *text = NULL;
    size_t len = 0;
    if (r->streams && id >= 0) CT_TRY(ct_text_stream_push(&r->streams[row], id, &text, &len));
    if (r->streams && id < 0) CT_TRY(ct_text_stream_flush(&r->streams[row], &text, &len));
    return r->opt->on_token(r->opt->user, row, id, text, len) ? 1 : 0;
}

static int finish_row(gen_run *r, int64_t row, ct_finish_reason why) {
    r->done[row] = true;
    r->out[row].finish = why;
    r->active--;
    return notify(r, row, -1);
}

/* Samples each active row's next token from logits [n, 1, V]. 1 when the callback stopped. */
static int take_step(gen_run *r, const ct_tensor *logits) {
    const int64_t V = logits->shape[2];
    for (int64_t b = 0; b < r->n; b++) {
        if (r->done[b]) continue;
        const int32_t id = ct_sample(&r->sampler, (const float *)logits->data + b * V, r->limit, &r->opt->sampling, &r->rng);
        if (id < 0 || ct_token_list_push(&r->out[b].ids, id) < 0) return -1;
        r->next[b] = id;
        int rc = notify(r, b, id);
        if (rc < 0) return -1;
        if (rc > 0) return 1;
        const int64_t made = (int64_t)r->out[b].ids.len;
        if (is_stop(r, id)) rc = finish_row(r, b, CT_FINISH_STOP);
        else if (made >= r->opt->max_new_tokens) rc = finish_row(r, b, CT_FINISH_LENGTH);
        else if ((int64_t)r->prompts[b].len + made >= r->m->config.max_position_embeddings)
            rc = finish_row(r, b, CT_FINISH_CONTEXT);
        if (rc != 0) return rc;
    }
    return 0;
}

static int run_steps(gen_run *r, ct_generator *g, const ct_token_list *prompts) {
    for (int64_t step = 0; r->active > 0; step++) {
        if (ct_scope_begin() < 0) return ct_fail("generate: scopes nested too deeply");
        ct_tensor *logits = step == 0 ? ct_generator_prefill(g, prompts) : ct_generator_step(g, r->next);
        int rc = logits ? take_step(r, logits) : -1;
        ct_scope_end();
        if (rc != 0) return rc;
    }
    return 0;
}

/* A prompt must leave room for at least one new id inside the model's positions. */
static int check_context(const ct_llama *m, const ct_token_list *prompts, int64_t n_prompts) {
    const int64_t context = m->config.max_position_embeddings;
    for (int64_t b = 0; b < n_prompts; b++)
        if ((int64_t)prompts[b].len >= context)
            return ct_fail("generate: prompt %lld has %zu tokens, but the model's context is %lld positions "
                           "(max_position_embeddings); shorten it to at most %lld tokens",
                           (long long)b, prompts[b].len, (long long)context, (long long)context - 1);
    return 0;
}

static int check_options(const ct_generate_options *opt, int64_t n_prompts) {
    if (n_prompts <= 0) return ct_fail("generate: %lld prompts; give at least one", (long long)n_prompts);
    if (opt->max_new_tokens <= 0)
        return ct_fail("generate: max_new_tokens %lld must be positive", (long long)opt->max_new_tokens);
    if (opt->n_stop_ids < 0 || (opt->n_stop_ids > 0 && !opt->stop_ids))
        return ct_fail("generate: n_stop_ids %d without stop_ids", opt->n_stop_ids);
    return ct_sampling_check(&opt->sampling);
}

static void run_free(gen_run *r) {
    for (int64_t b = 0; r->streams && b < r->n; b++) ct_text_stream_free(&r->streams[b]);
    free(r->streams);
    free(r->done);
    free(r->next);
    ct_sampler_free(&r->sampler);
}

static int run_init(gen_run *r) {
    r->tok = r->opt->tokenizer ? r->opt->tokenizer : r->m->tokenizer;
    CT_TRY(resolve_limit(r));
    CT_TRY(ct_sampler_init(&r->sampler, r->limit));
    ct_rng_seed(&r->rng, r->opt->seed);
    r->done = ct_calloc((size_t)r->n, sizeof *r->done, "generate rows");
    r->next = ct_calloc((size_t)r->n, sizeof *r->next, "generate rows");
    if (!r->done || !r->next) return -1;
    if (r->tok && r->opt->on_token) {
        r->streams = ct_calloc((size_t)r->n, sizeof *r->streams, "text streams");
        if (!r->streams) return -1;
        for (int64_t b = 0; b < r->n; b++) ct_text_stream_init(&r->streams[b], r->tok);
    }
    r->active = r->n;
    return 0;
}

int ct_generate(ct_llama *m, const ct_token_list *prompts, int64_t n_prompts, const ct_generate_options *opt,
                ct_generation *out) {
    CT_TRY(check_options(opt, n_prompts));
    CT_TRY(check_context(m, prompts, n_prompts));
    gen_run r = {.m = m, .opt = opt, .out = out, .prompts = prompts, .n = n_prompts};
    int64_t longest = 0, most_new = 0;
    for (int64_t b = 0; b < n_prompts; b++) {
        const int64_t len = (int64_t)prompts[b].len, room = m->config.max_position_embeddings - len;
        const int64_t new_ids = opt->max_new_tokens < room ? opt->max_new_tokens : room;
        longest = len > longest ? len : longest;
        most_new = new_ids > most_new ? new_ids : most_new;
    }
    /* Left-padded rows share cache slots: the longest prompt, then one slot per step of the row
     * that runs longest; the last new token is never fed back. */
    const int64_t max_len = longest + most_new - 1 > 0 ? longest + most_new - 1 : 1;
    ct_generator g = {0};
    int rc = run_init(&r);
    if (rc == 0) rc = ct_generator_init(&g, m, n_prompts, max_len);
    const bool was = ct_set_grad_enabled(false);
    if (rc == 0) rc = run_steps(&r, &g, prompts);
    ct_set_grad_enabled(was);
    if (rc > 0) { /* the callback stopped it */
        for (int64_t b = 0; b < n_prompts; b++)
            if (!r.done[b]) {
                r.done[b] = true;
                out[b].finish = CT_FINISH_CALLBACK;
            }
        rc = 0;
    }
    ct_generator_free(&g);
    run_free(&r);
    return rc < 0 ? -1 : 0;
}
