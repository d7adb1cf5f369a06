/* Generation and scoring against transformers.
 *
 * tests/fixtures/generate/ (tests/reference/make_generate_fixture.py) holds, for the tiny model
 * fixtures of tests/fixtures/models/, transformers' greedy generate() ids after a few prompts,
 * the log-likelihoods of candidate continuations, a sequence's per-token NLL, and the sampling
 * distributions of its temperature / top-k / top-p warpers. Checked here:
 *   (a) a left-padded batch of prompts through the KV cache, then token-by-token decoding, gives
 *       each row's full-forward logits (norm-wise 1e-5);
 *   (b) greedy generation equals transformers' (batched and one prompt at a time), and stops at
 *       a stop id;
 *   (c) candidate and sequence scores equal transformers' within 1e-4 relative, both over the
 *       tokenizer's ids and over every row;
 *   (d) sampling: the distribution equals transformers' warped softmax, 2,000 draws pass a
 *       chi-square test against it and never leave the nucleus, the same seed gives the same
 *       output, a tiny top_p is greedy, and padded vocabulary rows are never produced even when
 *       they would win;
 *   (e) `ctune generate` on a fixture folder prints transformers' ids, and its errors exit 1 or 2
 *       with one line;
 *   plus streaming text (whole UTF-8 characters only), memory staying flat, and bad inputs. */
#include <cjson/cJSON.h>
#include <libgen.h>
#include <math.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>

#include "core/arena.h"
#include "core/error.h"
#include "autograd/tape.h"
#include "datasets/tokenizer.h"
#include "models/generate.h"
#include "models/llama.h"
#include "models/score.h"
#include "tests/ct_test.h"

#define CACHE_TOLERANCE 1e-5
#define SCORE_TOLERANCE 1e-4
#define N_DRAWS 2000

static const char *const MODELS[] = {"llama", "qwen2", "qwen3", "mistral"};
static char ctune_binary[4096];

/* ---- fixtures ---- */

static cJSON *load_json(const char *relative) {
    char *text = ct_tok_read_file(ct_test_path(relative), NULL);
    cJSON *json = text ? cJSON_Parse(text) : NULL;
    free(text);
    CHECK(json != NULL, "cannot read %s: %s", relative, ct_last_error());
    return json;
}

static cJSON *load_generate_fixture(const char *name) {
    char path[256];
    snprintf(path, sizeof path, "tests/fixtures/generate/%s.json", name);
    return load_json(path);
}

static const char *model_dir(const char *name) {
    static char buf[4400];
    snprintf(buf, sizeof buf, "%s/%s", ct_test_path("tests/fixtures/models"), name);
    return buf;
}

static cJSON *item(const cJSON *obj, const char *key) { return cJSON_GetObjectItemCaseSensitive(obj, key); }

/* A JSON list of ids as a token list (the caller frees it). */
static ct_token_list ids_of(const cJSON *list) {
    ct_token_list out = {0};
    for (const cJSON *x = list ? list->child : NULL; x; x = x->next) ct_token_list_push(&out, (int32_t)x->valueint);
    return out;
}

static bool same_ids(const ct_token_list *a, const ct_token_list *b) {
    return a->len == b->len && (a->len == 0 || !memcmp(a->ids, b->ids, sizeof(int32_t) * a->len));
}

static void print_ids(const char *what, const ct_token_list *l) {
    fprintf(stderr, "  %s:", what);
    for (size_t i = 0; i < l->len; i++) fprintf(stderr, " %d", l->ids[i]);
    fputc('\n', stderr);
}

/* ‖a − b‖ / ‖b‖ in f64. */
static double rel_err(const float *a, const float *b, int64_t n) {
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        num += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        den += (double)b[i] * b[i];
    }
    return sqrt(num / den);
}

/* ---- (a) the cached, left-padded batch equals each row's full forward ---- */

/* Logits of prompt + continuation in one full forward (no cache), f32 [1, T, V]. */
static ct_tensor *full_logits(ct_llama *m, const ct_token_list *prompt, const ct_token_list *cont) {
    const int64_t T = (int64_t)(prompt->len + cont->len);
    ct_tensor *ids = ct_empty(CT_I32, 2, (int64_t[]){1, T});
    memcpy(ids->data, prompt->ids, sizeof(int32_t) * prompt->len);
    memcpy((int32_t *)ids->data + prompt->len, cont->ids, sizeof(int32_t) * cont->len);
    return ct_llama_forward(m, ids, NULL);
}

static void check_cached_batch(const char *name, ct_llama *m, const cJSON *fx) {
    const cJSON *greedy = item(fx, "greedy");
    const int n = cJSON_GetArraySize(greedy);
    ct_token_list prompts[8], conts[8];
    ct_tensor *full[8];
    int64_t longest = 0, shortest = 0, steps = 0;
    ct_scope_begin();
    const bool was = ct_set_grad_enabled(false);
    for (int b = 0; b < n; b++) {
        prompts[b] = ids_of(item(cJSON_GetArrayItem(greedy, b), "prompt"));
        conts[b] = ids_of(item(cJSON_GetArrayItem(greedy, b), "ids")); /* fed back, teacher-forced */
        full[b] = full_logits(m, &prompts[b], &conts[b]);
        longest = (int64_t)prompts[b].len > longest ? (int64_t)prompts[b].len : longest;
        shortest = b == 0 || (int64_t)prompts[b].len < shortest ? (int64_t)prompts[b].len : shortest;
        steps = b == 0 || (int64_t)conts[b].len < steps ? (int64_t)conts[b].len : steps;
    }
    ct_set_grad_enabled(was);
    const int64_t V = m->config.vocab_size;
    ct_generator g;
    CHECK(ct_generator_init(&g, m, n, longest + steps) == 0, "%s: generator: %s", name, ct_last_error());
    double worst = 0;
    int32_t next[8];
    for (int64_t s = 0; s <= steps; s++) {
        ct_tensor *logits = s == 0 ? ct_generator_prefill(&g, prompts) : ct_generator_step(&g, next);
        CHECK(logits && logits->shape[0] == n && logits->shape[1] == 1, "%s: step %lld: %s", name, (long long)s,
              ct_last_error());
        if (!logits) break;
        for (int b = 0; b < n; b++) {
            const int64_t t = (int64_t)prompts[b].len - 1 + s; /* the position whose logits these are */
            double e = rel_err((const float *)logits->data + b * V, (const float *)full[b]->data + t * V, V);
            worst = e > worst ? e : worst;
            if (s < steps) next[b] = conts[b].ids[s];
        }
    }
    CHECK(worst < CACHE_TOLERANCE, "%s: cached batch logits off by %.3g", name, worst);
    printf("%-8s (a) left-padded batch of %d prompts (%lld..%lld tokens) + %lld cached steps: worst %.2e\n", name, n,
           (long long)shortest, (long long)longest, (long long)steps, worst);
    ct_generator_free(&g);
    for (int b = 0; b < n; b++) {
        ct_token_list_free(&prompts[b]);
        ct_token_list_free(&conts[b]);
    }
    ct_scope_end();
}

/* ---- (b) greedy equals transformers' ---- */

static void check_greedy(const char *name, ct_llama *m, const cJSON *fx) {
    const cJSON *greedy = item(fx, "greedy");
    const int n = cJSON_GetArraySize(greedy);
    ct_token_list prompts[8], expect[8];
    for (int b = 0; b < n; b++) {
        prompts[b] = ids_of(item(cJSON_GetArrayItem(greedy, b), "prompt"));
        expect[b] = ids_of(item(cJSON_GetArrayItem(greedy, b), "ids"));
    }
    ct_generate_options opt = ct_generate_defaults();
    opt.max_new_tokens = item(fx, "max_new_tokens")->valueint;
    /* All prompts as one left-padded batch, then each alone. */
    ct_generation batch[8] = {0};
    CHECK(ct_generate(m, prompts, n, &opt, batch) == 0, "%s: batched greedy: %s", name, ct_last_error());
    int equal = 0;
    for (int b = 0; b < n; b++) {
        ct_generation one = {0};
        CHECK(ct_generate(m, &prompts[b], 1, &opt, &one) == 0, "%s: greedy: %s", name, ct_last_error());
        bool ok = same_ids(&batch[b].ids, &expect[b]) && same_ids(&one.ids, &expect[b]);
        equal += ok;
        CHECK(ok, "%s: greedy ids of prompt %d differ from transformers'", name, b);
        if (!ok) {
            print_ids("transformers", &expect[b]);
            print_ids("batched", &batch[b].ids);
            print_ids("alone", &one.ids);
        }
        const bool stopped = expect[b].len < (size_t)opt.max_new_tokens;
        CHECK(batch[b].finish == (stopped ? CT_FINISH_STOP : CT_FINISH_LENGTH), "%s: finish %d", name, batch[b].finish);
        ct_generation_free(&one, 1);
    }
    /* A stop id ends a row right after it appears (it is the last id): transformers' ids cut at
     * the stop id's first occurrence. The id is the one that first occurs latest in any row. */
    int row = 0;
    size_t first = 0;
    for (int b = 0; b < n; b++)
        for (size_t i = first + 1; i + 1 < expect[b].len; i++) {
            bool seen = false;
            for (size_t j = 0; j < i; j++) seen |= expect[b].ids[j] == expect[b].ids[i];
            if (!seen) row = b, first = i;
        }
    int32_t stop = expect[row].ids[first];
    opt.stop_ids = &stop;
    opt.n_stop_ids = 1;
    ct_generation cut = {0};
    CHECK(ct_generate(m, &prompts[row], 1, &opt, &cut) == 0, "%s: stop id: %s", name, ct_last_error());
    CHECK(cut.finish == CT_FINISH_STOP && cut.ids.len == first + 1 &&
              !memcmp(cut.ids.ids, expect[row].ids, sizeof(int32_t) * (first + 1)),
          "%s: stop id %d: %zu ids, finish %d", name, stop, cut.ids.len, cut.finish);
    printf("%-8s (b) greedy = transformers for %d/%d prompts (batched and alone); stop id after %zu tokens\n", name,
           equal, n, first + 1);
    ct_generation_free(&cut, 1);
    ct_generation_free(batch, n);
    for (int b = 0; b < n; b++) {
        ct_token_list_free(&prompts[b]);
        ct_token_list_free(&expect[b]);
    }
}

/* ---- (c) scores equal transformers' ---- */

static double rel_diff(double a, double b) { return fabs(a - b) / fabs(b); }

static void check_scores(const char *name, ct_llama *m, const cJSON *fx) {
    const cJSON *sc = item(fx, "score");
    ct_token_list prompt = ids_of(item(sc, "prompt"));
    const int K = cJSON_GetArraySize(item(sc, "candidates"));
    ct_token_list cands[8];
    for (int k = 0; k < K; k++) cands[k] = ids_of(cJSON_GetArrayItem(item(sc, "candidates"), k));
    ct_candidate_score got[8], got_all[8];
    const ct_score_options all_rows = {.vocab_limit = m->config.vocab_size};
    CHECK(ct_score_candidates(m, prompt.ids, (int64_t)prompt.len, cands, K, NULL, got) == 0, "%s: score: %s", name,
          ct_last_error());
    CHECK(ct_score_candidates(m, prompt.ids, (int64_t)prompt.len, cands, K, &all_rows, got_all) == 0, "%s: score: %s",
          name, ct_last_error());
    double worst = 0;
    for (int k = 0; k < K; k++) {
        double e1 = rel_diff(got[k].logprob, cJSON_GetArrayItem(item(sc, "logprob"), k)->valuedouble);
        double e2 = rel_diff(got_all[k].logprob, cJSON_GetArrayItem(item(sc, "logprob_all_rows"), k)->valuedouble);
        worst = fmax(worst, fmax(e1, e2));
        CHECK(got[k].n_tokens == (int64_t)cands[k].len, "%s: candidate %d: %lld tokens", name, k,
              (long long)got[k].n_tokens);
    }
    CHECK(worst < SCORE_TOLERANCE, "%s: candidate log-likelihoods off by %.3g", name, worst);
    /* Per-token NLL of a sequence, both normalizations. */
    const cJSON *nl = item(fx, "nll");
    ct_token_list seq = ids_of(item(nl, "ids"));
    double nll[256], nll_all[256], num = 0, num_all = 0, den = 0, den_all = 0;
    CHECK(ct_score_sequence(m, seq.ids, (int64_t)seq.len, NULL, nll) == 0, "%s: nll: %s", name, ct_last_error());
    CHECK(ct_score_sequence(m, seq.ids, (int64_t)seq.len, &all_rows, nll_all) == 0, "%s: nll: %s", name, ct_last_error());
    for (size_t t = 0; t + 1 < seq.len; t++) {
        double want = cJSON_GetArrayItem(item(nl, "nll"), (int)t)->valuedouble;
        double want_all = cJSON_GetArrayItem(item(nl, "nll_all_rows"), (int)t)->valuedouble;
        num += (nll[t] - want) * (nll[t] - want), den += want * want;
        num_all += (nll_all[t] - want_all) * (nll_all[t] - want_all), den_all += want_all * want_all;
    }
    double e_seq = fmax(sqrt(num / den), sqrt(num_all / den_all));
    CHECK(e_seq < SCORE_TOLERANCE, "%s: sequence NLL off by %.3g", name, e_seq);
    printf("%-8s (c) %d candidate scores: worst rel. %.2e; NLL of %zu tokens: rel. %.2e\n", name, K, worst, seq.len,
           e_seq);
    for (int k = 0; k < K; k++) ct_token_list_free(&cands[k]);
    ct_token_list_free(&prompt);
    ct_token_list_free(&seq);
}

/* ---- (d) sampling ---- */

/* Chi-square of counts against probabilities; bins expecting fewer than 5 draws are pooled. */
static double chi_square(const int *counts, const double *probs, int n, int draws, int *df) {
    double chi = 0, pooled_expect = 0, pooled_count = 0;
    int bins = 0;
    for (int i = 0; i < n; i++) {
        if (probs[i] == 0) continue;
        double expect = draws * probs[i];
        if (expect < 5) {
            pooled_expect += expect, pooled_count += counts[i];
            continue;
        }
        chi += (counts[i] - expect) * (counts[i] - expect) / expect, bins++;
    }
    if (pooled_expect > 0) chi += (pooled_count - pooled_expect) * (pooled_count - pooled_expect) / pooled_expect, bins++;
    *df = bins - 1;
    return chi;
}

static void check_sampling_fixture(void) {
    cJSON *fx = load_json("tests/fixtures/generate/sampling.json");
    if (!fx) return;
    const cJSON *lj = item(fx, "logits");
    const int n = cJSON_GetArraySize(lj);
    float logits[64];
    for (int i = 0; i < n; i++) logits[i] = (float)cJSON_GetArrayItem(lj, i)->valuedouble;
    ct_sampler sm;
    ct_sampler_init(&sm, n);
    for (const cJSON *c = item(fx, "cases")->child; c; c = c->next) {
        ct_sampling s = {.temperature = item(c, "temperature")->valuedouble, .top_k = item(c, "top_k")->valueint,
                         .top_p = item(c, "top_p")->valuedouble};
        double want[64], got[64], worst = 0;
        for (int i = 0; i < n; i++) want[i] = cJSON_GetArrayItem(item(c, "probs"), i)->valuedouble;
        CHECK(ct_sampling_distribution(&sm, logits, n, &s, got) == 0, "distribution: %s", ct_last_error());
        for (int i = 0; i < n; i++) worst = fmax(worst, fabs(got[i] - want[i]));
        CHECK(worst < 1e-9, "T=%g k=%lld p=%g: distribution off by %.3g", s.temperature, (long long)s.top_k, s.top_p,
              worst);
        int counts[64] = {0}, outside = 0, df;
        ct_rng rng;
        ct_rng_seed(&rng, 99);
        for (int d = 0; d < N_DRAWS; d++) {
            int32_t id = ct_sample(&sm, logits, n, &s, &rng);
            CHECK(id >= 0 && id < n, "sample %d", id);
            if (id < 0 || id >= n) break;
            counts[id]++;
            outside += want[id] == 0;
        }
        double chi = chi_square(counts, want, n, N_DRAWS, &df);
        /* About the 1e-4 tail of chi-square(df) for df <= 40. */
        double bound = df + 4 * sqrt(2.0 * df) + 12;
        CHECK(chi < bound && outside == 0, "T=%g k=%lld p=%g: chi-square %.2f (bound %.1f, df %d), %d draws outside",
              s.temperature, (long long)s.top_k, s.top_p, chi, bound, df, outside);
        printf("sampling (d) T=%.1f top_k=%-2lld top_p=%.2g: %d ids kept, distribution off by %.1e, "
               "chi-square %.1f (df %d, bound %.1f), 0 outside the nucleus\n",
               s.temperature, (long long)s.top_k, s.top_p, item(c, "kept")->valueint, worst, chi, df, bound);
    }
    /* Edge cases derived by hand. (1) One logit 0 and 2,000 at -20, top_p 0.999999: the nucleus
     * reaches into the tied -20s (ids in order): it keeps id r >= 1 while 1 + (r - 1) e < P,
     * P = top_p (1 + 2000 e), e = exp(-20), so 1 + ceil((P - 1) / e) ids in all. The sampler must
     * look far beyond the best logit to find them. */
    {
        enum { N = 2001 };
        static float flat[N];
        static double p[N];
        flat[0] = 0;
        for (int i = 1; i < N; i++) flat[i] = -20;
        const double e = exp(-20.0), top_p = 0.999999, P = top_p * (1 + 2000 * e);
        const int want_kept = 1 + (int)ceil((P - 1) / e);
        ct_sampler big;
        ct_sampler_init(&big, N);
        ct_sampling s = {.temperature = 1, .top_k = 0, .top_p = top_p};
        CHECK(ct_sampling_distribution(&big, flat, N, &s, p) == 0, "flat tail: %s", ct_last_error());
        int kept = 0;
        for (int i = 0; i < N; i++) kept += p[i] > 0;
        const double z = 1 + (want_kept - 1) * e;
        CHECK(kept == want_kept && fabs(p[0] * z - 1) < 1e-12 && fabs(p[want_kept - 1] * z / e - 1) < 1e-12 &&
                  p[want_kept] == 0,
              "flat tail: %d ids kept, want %d; p0 %.17g want %.17g", kept, want_kept, p[0], 1 / z);
        /* (2) All logits equal, top_k 5: ties with the 5th value stay, so all 100 ids, uniform. */
        for (int i = 0; i < 100; i++) flat[i] = 0.5f;
        s = (ct_sampling){.temperature = 0.8, .top_k = 5, .top_p = 1};
        ct_sampling_distribution(&big, flat, 100, &s, p);
        double worst = 0;
        for (int i = 0; i < 100; i++) worst = fmax(worst, fabs(p[i] - 0.01));
        CHECK(worst < 1e-15, "tied top_k: off by %.3g from uniform", worst);
        printf("sampling (d) nucleus of a 1 + 2000-way tail: %d ids kept (hand-derived %d); top_k 5 of 100 ties keeps "
               "all, uniform\n", kept, want_kept);
        ct_sampler_free(&big);
    }
    /* Greedy: all the mass on the first maximum. */
    double probs[64];
    ct_sampling greedy = {.temperature = 0, .top_p = 1};
    ct_sampling_distribution(&sm, logits, n, &greedy, probs);
    int best = 0;
    for (int i = 1; i < n; i++) best = logits[i] > logits[best] ? i : best;
    CHECK(probs[best] == 1, "greedy distribution");
    /* Bad values and non-finite logits. */
    ct_sampling bad[] = {{-1, 0, 1}, {NAN, 0, 1}, {1, -2, 1}, {1, 0, 0}, {1, 0, 1.5}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK(ct_sample(&sm, logits, n, &bad[i], NULL) < 0 && strstr(ct_last_error(), "sampling:"), "bad sampling %zu: '%s'",
              i, ct_last_error());
    logits[3] = NAN;
    ct_sampling t1 = {1, 0, 1};
    CHECK(ct_sample(&sm, logits, n, &t1, NULL) < 0 && strstr(ct_last_error(), "non-finite"), "NaN logits: '%s'",
          ct_last_error());
    CHECK(ct_sample(&sm, logits, n, &greedy, NULL) < 0, "NaN logits, greedy");
    ct_sampler_free(&sm);
    cJSON_Delete(fx);
}

/* Same seed, same output; another seed, another; top_p tiny = greedy. */
static void check_seeded(const char *name, ct_llama *m, const cJSON *fx) {
    const cJSON *g0 = cJSON_GetArrayItem(item(fx, "greedy"), 0);
    ct_token_list prompt = ids_of(item(g0, "prompt")), expect = ids_of(item(g0, "ids"));
    ct_generate_options opt = ct_generate_defaults();
    opt.max_new_tokens = (int64_t)expect.len;
    opt.sampling = (ct_sampling){.temperature = 1.0, .top_k = 40, .top_p = 0.95};
    opt.seed = 7;
    ct_generation a = {0}, b = {0}, c = {0}, tiny = {0};
    ct_generate(m, &prompt, 1, &opt, &a);
    ct_generate(m, &prompt, 1, &opt, &b);
    opt.seed = 8;
    ct_generate(m, &prompt, 1, &opt, &c);
    CHECK(a.ids.len > 0 && same_ids(&a.ids, &b.ids), "%s: the same seed gave different ids", name);
    CHECK(!same_ids(&a.ids, &c.ids), "%s: seeds 7 and 8 gave the same %zu ids", name, a.ids.len);
    opt.sampling = (ct_sampling){.temperature = 1.0, .top_k = 0, .top_p = 1e-9};
    ct_generate(m, &prompt, 1, &opt, &tiny);
    CHECK(same_ids(&tiny.ids, &expect), "%s: top_p 1e-9 differs from greedy", name);
    printf("%-8s (d) seeded sampling reproducible, seeds differ, top_p=1e-9 = transformers' greedy\n", name);
    ct_generation_free(&a, 1), ct_generation_free(&b, 1), ct_generation_free(&c, 1), ct_generation_free(&tiny, 1);
    ct_token_list_free(&prompt);
    ct_token_list_free(&expect);
}

/* A model whose rows beyond the vocabulary limit would win every step: with every layer's
 * weights 0, the hidden state is the (positive) embedding row, and padded lm_head rows of 5s
 * give logits ~80 against ~1 for the real ones. */
static void check_padded_rows(void) {
    enum { LIMIT = 30 };
    ct_llama_config cfg;
    ct_llama_config_defaults(&cfg, CT_ARCH_LLAMA);
    cfg.hidden_size = 16, cfg.intermediate_size = 24, cfg.num_hidden_layers = 1, cfg.num_attention_heads = 2;
    cfg.num_key_value_heads = 1, cfg.head_dim = 8, cfg.vocab_size = 37, cfg.max_position_embeddings = 64;
    ct_llama *m = ct_llama_new(&cfg);
    CHECK(m != NULL, "padded model: %s", ct_last_error());
    if (!m) return;
    ct_rng rng;
    ct_rng_seed(&rng, 5);
    float *emb = m->embed_tokens->data, *head = m->lm_head.weight->data;
    for (int64_t i = 0; i < 37 * 16; i++) {
        emb[i] = 0.5f + (float)ct_rng_uniform(&rng);
        head[i] = i / 16 < LIMIT ? 0.3f * (float)ct_rng_normal(&rng) : 5.0f;
    }
    ct_token_list prompt = {0};
    for (int32_t id = 3; id < 9; id++) ct_token_list_push(&prompt, id);
    /* The premise: without the limit the padded rows do win. */
    ct_generate_options opt = ct_generate_defaults();
    opt.max_new_tokens = 20;
    ct_generation unlimited = {0};
    ct_generate(m, &prompt, 1, &opt, &unlimited);
    bool padded_won = unlimited.ids.len > 0 && unlimited.ids.ids[0] >= LIMIT;
    CHECK(padded_won, "padded rows do not win without a limit: the test proves nothing");
    opt.vocab_limit = LIMIT;
    int produced_padded = 0, draws = 0;
    const ct_sampling modes[] = {{0, 0, 1}, {1.0, 0, 1}, {3.0, 0, 1}, {1.5, 5, 0.99}};
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
        opt.sampling = modes[i];
        ct_generation g = {0};
        CHECK(ct_generate(m, &prompt, 1, &opt, &g) == 0, "padded model: %s", ct_last_error());
        for (size_t t = 0; t < g.ids.len; t++) produced_padded += g.ids.ids[t] >= LIMIT, draws++;
        ct_generation_free(&g, 1);
    }
    CHECK(produced_padded == 0 && draws == 80, "%d of %d ids were padded rows", produced_padded, draws);
    /* Scoring refuses ids beyond the limit. */
    ct_token_list cand = {0};
    ct_token_list_push(&cand, LIMIT + 2);
    ct_candidate_score sc;
    ct_score_options so = {.vocab_limit = LIMIT};
    CHECK(ct_score_candidates(m, prompt.ids, (int64_t)prompt.len, &cand, 1, &so, &sc) < 0 &&
              strstr(ct_last_error(), "outside the vocabulary"),
          "padded candidate: '%s'", ct_last_error());
    printf("padded   (d) rows >= %d win unrestricted (first id %d) but 0 of %d greedy/sampled ids use them\n", LIMIT,
           unlimited.ids.len ? unlimited.ids.ids[0] : -1, draws);
    ct_generation_free(&unlimited, 1);
    ct_token_list_free(&prompt);
    ct_token_list_free(&cand);
    ct_llama_free(m);
}

/* ---- streaming text ---- */

/* Whether s[0, n) is valid UTF-8 (written here independently: lead bytes, continuation bytes,
 * no overlong forms, no surrogates, nothing above U+10FFFF). */
static bool valid_utf8(const unsigned char *s, size_t n) {
    static const uint32_t min_cp[] = {0, 0x80, 0x800, 0x10000};
    for (size_t i = 0; i < n;) {
        const unsigned c = s[i];
        unsigned need;
        uint32_t cp;
        if (c < 0x80) need = 0, cp = c;
        else if ((c & 0xE0) == 0xC0) need = 1, cp = c & 0x1F;
        else if ((c & 0xF0) == 0xE0) need = 2, cp = c & 0x0F;
        else if ((c & 0xF8) == 0xF0) need = 3, cp = c & 0x07;
        else return false;
        if (i + need >= n && need) return false;
        for (unsigned k = 1; k <= need; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return false;
            cp = cp << 6 | (s[i + k] & 0x3F);
        }
        if (cp < min_cp[need] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
        i += need + 1;
    }
    return true;
}

/* The bytes of s that belong to valid characters (each tested alone with valid_utf8), in order. */
static size_t valid_chars_only(const char *s, size_t n, char *out) {
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        const unsigned char c = (unsigned char)s[i];
        const size_t len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 1;
        if (i + len <= n && valid_utf8((const unsigned char *)s + i, len)) {
            memcpy(out + k, s + i, len);
            k += len, i += len;
        } else {
            i++;
        }
    }
    return k;
}

/* s without its U+FFFD characters. */
static size_t drop_replacements(const char *s, size_t n, char *out) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (i + 3 <= n && !memcmp(s + i, "\xEF\xBF\xBD", 3)) {
            i += 2;
            continue;
        }
        out[k++] = s[i];
    }
    return k;
}

typedef struct {
    char text[4096];
    size_t len;
    int calls, held, ends, invalid, stop_after;
} collected;

static int collect(void *user, int64_t row, int32_t id, const char *text, size_t len) {
    (void)row;
    collected *c = user;
    c->calls += id >= 0;
    c->ends += id < 0;
    c->held += id >= 0 && len == 0;
    c->invalid += !valid_utf8((const unsigned char *)text, len);
    if (len && c->len + len < sizeof c->text) memcpy(c->text + c->len, text, len), c->len += len;
    return c->stop_after && c->calls >= c->stop_after;
}

static void check_streaming(ct_llama *m) {
    const ct_tokenizer *tok = m->tokenizer;
    /* A Chinese text whose characters the fixture tokenizer splits into byte tokens. */
    const char *text = "退货申请已提交，请耐心等待审核。Hello 🙂 end";
    ct_token_list ids = {0};
    ct_tokenizer_encode(tok, text, strlen(text), 0, &ids);
    ct_text_stream s;
    ct_text_stream_init(&s, tok);
    collected c = {0};
    for (size_t i = 0; i < ids.len; i++) {
        const char *piece;
        size_t len;
        CHECK(ct_text_stream_push(&s, ids.ids[i], &piece, &len) == 0, "push: %s", ct_last_error());
        collect(&c, 0, ids.ids[i], piece, len);
    }
    const char *rest;
    size_t rest_len;
    ct_text_stream_flush(&s, &rest, &rest_len);
    collect(&c, 0, -1, rest, rest_len);
    CHECK(c.len == strlen(text) && !memcmp(c.text, text, c.len) && c.invalid == 0 && rest_len == 0,
          "streamed text differs: '%.*s' (%d chunks not UTF-8)", (int)c.len, c.text, c.invalid);
    CHECK(c.held > 0, "no token ended mid-character: the test does not exercise holding bytes back");
    /* An incomplete character at the end (generation stopped mid-character) comes out of flush
     * as one U+FFFD, as Python's decode(errors="replace") gives: never half a character. */
    const char cut[] = "\xe9\x80"; /* the first two bytes of 退 */
    ct_token_list tail = {0};
    ct_tokenizer_encode(tok, cut, 2, 0, &tail);
    const char *piece;
    size_t len;
    for (size_t i = 0; i < tail.len; i++) ct_text_stream_push(&s, tail.ids[i], &piece, &len);
    CHECK(ct_text_stream_flush(&s, &rest, &rest_len) == 0, "flush: %s", ct_last_error());
    CHECK(rest_len == 3 && !memcmp(rest, "\xEF\xBF\xBD", 3), "flush of a cut character gave %zu bytes: '%.*s'",
          rest_len, (int)rest_len, rest);
    /* Bytes that can never form a character: each maximal invalid subpart becomes one U+FFFD,
     * the valid characters around them pass (Python: b"a\xe9\x80b\xff\xc0\xaf\xf0\x9f\x99\x82".decode(
     * errors="replace") == "a\ufffdb\ufffd\ufffd\ufffd\U0001f642"). */
    const char messy[] = "a\xe9\x80" "b\xff\xc0\xaf\xf0\x9f\x99\x82";
    const char expect[] = "a\xEF\xBF\xBD" "b\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xf0\x9f\x99\x82";
    ct_token_list messy_ids = {0};
    ct_tokenizer_encode(tok, messy, sizeof messy - 1, 0, &messy_ids);
    collected mc = {0};
    for (size_t i = 0; i < messy_ids.len; i++) {
        CHECK(ct_text_stream_push(&s, messy_ids.ids[i], &piece, &len) == 0, "push: %s", ct_last_error());
        collect(&mc, 0, messy_ids.ids[i], piece, len);
    }
    ct_text_stream_flush(&s, &rest, &rest_len);
    collect(&mc, 0, -1, rest, rest_len);
    CHECK(mc.len == sizeof expect - 1 && !memcmp(mc.text, expect, mc.len) && mc.invalid == 0,
          "invalid bytes streamed as %.*s (%d chunks not UTF-8)", (int)mc.len, mc.text, mc.invalid);
    ct_token_list_free(&messy_ids);
    CHECK(ct_text_stream_push(&s, 100000, &piece, &len) < 0, "unknown id accepted");
    printf("stream   %zu tokens -> %d chunks, %d held mid-character, all whole UTF-8, joined = the text\n", ids.len,
           c.calls, c.held);
    ct_text_stream_free(&s);
    ct_token_list_free(&ids);
    ct_token_list_free(&tail);

    /* Through ct_generate: the callback's text is the decode of the new ids (specials left out). */
    ct_token_list prompt = {0};
    ct_tokenizer_encode(tok, "您好", strlen("您好"), 0, &prompt);
    ct_generate_options opt = ct_generate_defaults();
    opt.max_new_tokens = 40;
    opt.sampling = (ct_sampling){.temperature = 1.0, .top_p = 1};
    opt.seed = 3;
    opt.on_token = collect;
    collected g = {0};
    opt.user = &g;
    ct_generation out = {0};
    CHECK(ct_generate(m, &prompt, 1, &opt, &out) == 0, "streamed generate: %s", ct_last_error());
    size_t dlen;
    char *decoded = ct_tokenizer_decode(tok, out.ids.ids, out.ids.len, CT_DECODE_SKIP_SPECIAL, &dlen);
    /* Sampled ids of a random model form invalid byte runs too: the callback's text is valid
     * UTF-8, and it is the decode's valid characters, in order, with U+FFFD where the rest was. */
    char kept_decode[4096], kept_stream[4096];
    const size_t n_decode = valid_chars_only(decoded, dlen, kept_decode);
    const size_t n_stream = drop_replacements(g.text, g.len, kept_stream);
    CHECK(decoded && n_decode == n_stream && !memcmp(kept_decode, kept_stream, n_decode) && g.invalid == 0 &&
              g.calls == (int)out.ids.len && g.ends == 1 && (n_decode == dlen) == (g.len == dlen),
          "callback text (%zu bytes, %d calls, %d ends) differs from the decode (%zu bytes)", g.len, g.calls, g.ends, dlen);
    free(decoded);
    ct_generation_free(&out, 1);
    /* A callback that returns non-zero stops generation there. */
    collected stop = {.stop_after = 5};
    opt.user = &stop;
    CHECK(ct_generate(m, &prompt, 1, &opt, &out) == 0 && out.ids.len == 5 && out.finish == CT_FINISH_CALLBACK,
          "callback stop: %zu ids, finish %d", out.ids.len, out.finish);
    ct_generation_free(&out, 1);
    ct_token_list_free(&prompt);
}

/* ---- memory and bad inputs ---- */

static void check_memory_flat(ct_llama *m) {
    ct_token_list prompt = {0};
    for (int32_t id = 10; id < 30; id++) ct_token_list_push(&prompt, id);
    ct_generate_options opt = ct_generate_defaults();
    opt.max_new_tokens = 60;
    opt.ignore_eos = true;
    ct_generation out = {0};
    ct_generate(m, &prompt, 1, &opt, &out);
    ct_generation_free(&out, 1);
    uint64_t chunks = ct_memory_get_stats(CT_CPU).chunk_allocations;
    CHECK(ct_generate(m, &prompt, 1, &opt, &out) == 0 && out.ids.len == 60, "generate: %s", ct_last_error());
    uint64_t again = ct_memory_get_stats(CT_CPU).chunk_allocations;
    CHECK(again == chunks, "a second generation asked for %llu more arena chunks", (unsigned long long)(again - chunks));
    CHECK(ct_grad_enabled(), "generate left grad mode off");
    ct_generation_free(&out, 1);
    ct_token_list_free(&prompt);
}

static void check_bad_inputs(ct_llama *m) {
    const int depth = ct_scope_depth();
    ct_token_list empty = {0}, ok = {0}, big = {0};
    ct_token_list_push(&ok, 5);
    ct_token_list_push(&ok, 6);
    ct_token_list_push(&big, 5);
    ct_token_list_push(&big, (int32_t)m->config.vocab_size);
    ct_generate_options opt = ct_generate_defaults();
    ct_generation out[2];
    memset(out, 0, sizeof out);
    CHECK(ct_generate(m, &empty, 1, &opt, out) < 0 && strstr(ct_last_error(), "empty"), "empty prompt: '%s'",
          ct_last_error());
    ct_generation_free(out, 1);
    CHECK(ct_generate(m, &big, 1, &opt, out) < 0 && strstr(ct_last_error(), "outside the model"),
          "prompt id out of range: '%s'", ct_last_error());
    ct_generation_free(out, 1);
    opt.max_new_tokens = 0;
    CHECK(ct_generate(m, &ok, 1, &opt, out) < 0 && strstr(ct_last_error(), "max_new_tokens"), "max_new_tokens 0: '%s'",
          ct_last_error());
    opt = ct_generate_defaults();
    opt.vocab_limit = m->config.vocab_size + 1;
    CHECK(ct_generate(m, &ok, 1, &opt, out) < 0 && strstr(ct_last_error(), "vocab_limit"), "vocab_limit: '%s'",
          ct_last_error());
    opt = ct_generate_defaults();
    opt.sampling.top_p = 0;
    CHECK(ct_generate(m, &ok, 1, &opt, out) < 0 && strstr(ct_last_error(), "top_p"), "top_p 0: '%s'", ct_last_error());
    ct_candidate_score sc[2];
    CHECK(ct_score_candidates(m, ok.ids, 2, &empty, 1, NULL, sc) < 0 && strstr(ct_last_error(), "candidate 0 is empty"),
          "empty candidate: '%s'", ct_last_error());
    CHECK(ct_score_candidates(m, ok.ids, 0, &ok, 1, NULL, sc) < 0 && strstr(ct_last_error(), "prompt 0 is empty"),
          "empty prompt: '%s'", ct_last_error());
    CHECK(ct_score_candidates(m, ok.ids, 2, &ok, 0, NULL, sc) < 0, "no candidates");
    double nll[2];
    CHECK(ct_score_sequence(m, ok.ids, 1, NULL, nll) < 0 && strstr(ct_last_error(), "at least 2"), "short sequence: '%s'",
          ct_last_error());
    CHECK(ct_score_sequence(m, big.ids, 2, NULL, nll) < 0 && strstr(ct_last_error(), "outside the vocabulary"),
          "sequence id: '%s'", ct_last_error());
    CHECK(ct_scope_depth() == depth && ct_grad_enabled(), "scope depth %d (was %d) or grad mode changed",
          ct_scope_depth(), depth);
    ct_token_list_free(&ok);
    ct_token_list_free(&big);
}

/* The model's context bounds prompt + reply: a prompt that fills it is refused naming both
 * sizes, and generation stops at the last position (each row of a batch at its own), with the
 * same ids as an unbounded run up to there. */
static void check_context_limit(ct_llama *m) {
    const int64_t saved = m->config.max_position_embeddings;
    ct_token_list short_prompt = {0}, long_prompt = {0};
    for (int i = 0; i < 5; i++) ct_token_list_push(&short_prompt, 11 + 7 * i);
    for (int i = 0; i < 9; i++) ct_token_list_push(&long_prompt, 13 + 5 * i);
    ct_generate_options opt = ct_generate_defaults();
    opt.max_new_tokens = 20;
    opt.ignore_eos = true;
    ct_generation free_run[1], bounded[2];
    memset(free_run, 0, sizeof free_run);
    memset(bounded, 0, sizeof bounded);
    CHECK(ct_generate(m, &short_prompt, 1, &opt, free_run) == 0 && free_run[0].ids.len == 20, "unbounded run: %s",
          ct_last_error());

    m->config.max_position_embeddings = 12;
    CHECK(ct_generate(m, &short_prompt, 1, &opt, bounded) == 0 && bounded[0].ids.len == 7 &&
              !memcmp(bounded[0].ids.ids, free_run[0].ids.ids, 7 * sizeof(int32_t)),
          "one bounded row: %zu ids, or they differ from the unbounded run's (%s)", bounded[0].ids.len, ct_last_error());
    ct_generation_free(bounded, 1);
    memset(bounded, 0, sizeof bounded);
    ct_token_list both[2] = {short_prompt, long_prompt};
    CHECK(ct_generate(m, both, 2, &opt, bounded) == 0, "bounded run: %s", ct_last_error());
    CHECK(bounded[0].ids.len == 7 && bounded[0].finish == CT_FINISH_CONTEXT, "5-token prompt in 12 positions: %zu new, "
          "finish %d (want 7, context)", bounded[0].ids.len, (int)bounded[0].finish);
    CHECK(bounded[1].ids.len == 3 && bounded[1].finish == CT_FINISH_CONTEXT, "9-token prompt in 12 positions: %zu new, "
          "finish %d (want 3, context)", bounded[1].ids.len, (int)bounded[1].finish);
    ct_generation_free(bounded, 2);
    memset(bounded, 0, sizeof bounded);

    m->config.max_position_embeddings = 9;
    CHECK(ct_generate(m, both, 2, &opt, bounded) < 0 && strstr(ct_last_error(), "prompt 1 has 9 tokens") &&
              strstr(ct_last_error(), "context is 9 positions"),
          "a prompt filling the context: '%s'", ct_last_error());
    ct_generation_free(bounded, 2);
    m->config.max_position_embeddings = saved;
    ct_generation_free(free_run, 1);
    ct_token_list_free(&short_prompt);
    ct_token_list_free(&long_prompt);
    printf("context  prompt + reply stop at max_position_embeddings per row; a prompt filling it is refused\n");
}

/* ---- (e) the command line ---- */

/* Runs `PRE ctune generate ARGS` in the shell; returns the exit status (-1 if it did not exit),
 * the first line of its output and the number of lines. */
static int run_cli(const char *pre, const char *args, bool with_stderr, char *line, size_t size, int *lines) {
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "%s '%s' generate %s %s", pre, ctune_binary, args, with_stderr ? "2>&1" : "2>/dev/null");
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    char extra[4096];
    line[0] = 0;
    *lines = fgets(line, (int)size, p) ? 1 : 0;
    while (fgets(extra, sizeof extra, p)) ++*lines;
    int status = pclose(p);
    line[strcspn(line, "\n")] = 0;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void check_cli(ct_llama *qwen2, const cJSON *fx) {
    const cJSON *chat = item(fx, "chat");
    ct_token_list want_prompt = ids_of(item(chat, "prompt")), want = ids_of(item(chat, "ids"));
    const char *user = item(chat, "user")->valuestring;
    /* The premise: the folder's chat template renders the user turn as transformers' ChatML ids. */
    ct_chat_template tpl;
    ct_token_list prompt = {0};
    uint8_t *mask = NULL;
    ct_chat_message msg = {"user", user};
    ct_chat_options copt = {.add_generation_prompt = 1};
    CHECK(ct_chat_template_load(&tpl, qwen2->tokenizer, model_dir("qwen2")) == 0 &&
              ct_chat_encode(&tpl, &msg, 1, &copt, &prompt, &mask) == 0 && same_ids(&prompt, &want_prompt),
          "chat prompt ids differ from the fixture's: %s", ct_last_error());
    free(mask);
    char want_line[1024] = "", line[4096], args[8192];
    for (size_t i = 0; i < want.len; i++)
        snprintf(want_line + strlen(want_line), sizeof want_line - strlen(want_line), i ? " %d" : "%d", want.ids[i]);
    snprintf(args, sizeof args, "--model '%s' --prompt '%s' --max-new-tokens %zu --ids", model_dir("qwen2"), user,
             want.len);
    int lines, rc = run_cli("", args, false, line, sizeof line, &lines);
    CHECK(rc == 0 && lines == 1 && !strcmp(line, want_line), "ctune generate --ids: exit %d, '%s', want '%s'", rc, line,
          want_line);
    /* --raw with the template typed out gives the same ids (the _ keeps $(...) from eating the
     * final newline). */
    char pre[512];
    snprintf(pre, sizeof pre, "p=$(printf '<|im_start|>user\\n%s<|im_end|>\\n<|im_start|>assistant\\n_');", user);
    snprintf(args, sizeof args, "--model '%s' --raw --prompt \"${p%%_}\" --max-new-tokens %zu --ids", model_dir("qwen2"),
             want.len);
    rc = run_cli(pre, args, false, line, sizeof line, &lines);
    CHECK(rc == 0 && !strcmp(line, want_line), "ctune generate --raw --ids: exit %d, '%s'", rc, line);
    /* Text mode with sampling and a system prompt runs. */
    snprintf(args, sizeof args, "--model '%s' --prompt hello --system 'be brief' --temperature 0.7 --top-p 0.9 "
             "--top-k 20 --seed 4 --max-new-tokens 6", model_dir("llama"));
    rc = run_cli("", args, false, line, sizeof line, &lines);
    CHECK(rc == 0 && lines == 1, "ctune generate (text): exit %d, %d lines", rc, lines);
    /* Errors: one line, exit 1 at run time, 2 for usage. */
    struct { const char *args; int status; const char *needle; } bad[] = {
        {"--model /nonexistent/model --prompt hi", 1, "not found"},
        {"--model '%s' --prompt hi", 1, "tokenizer.json"}, /* the models folder itself: no tokenizer */
        {"--model '%s/qwen2' --prompt hi --max-new-tokens 0", 2, "--max-new-tokens"},
        {"--model '%s/qwen2' --prompt hi --max-new-tokens x", 2, "--max-new-tokens"},
        {"--model '%s/qwen2' --prompt hi --temperature -1", 2, "--temperature"},
        {"--model '%s/qwen2' --prompt hi --temperature nan", 2, "--temperature"},
        {"--model '%s/qwen2' --prompt hi --top-p 0", 2, "--top-p"},
        {"--model '%s/qwen2' --prompt hi --top-p 1.5", 2, "--top-p"},
        {"--model '%s/qwen2' --prompt hi --top-k -3", 2, "--top-k"},
        {"--model '%s/qwen2' --prompt hi --seed", 2, "needs a value"},
        {"--model '%s/qwen2' --prompt hi --frobnicate", 2, "unknown option"},
        {"--model '%s/qwen2' --raw --system x --prompt hi", 2, "--system"},
        {"--prompt hi", 2, "required"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(args, sizeof args, bad[i].args, ct_test_path("tests/fixtures/models"));
        rc = run_cli("", args, true, line, sizeof line, &lines);
        CHECK(rc == bad[i].status && lines == 1 && strstr(line, "ctune generate: ") == line && strstr(line, bad[i].needle),
              "'%s': exit %d (want %d), %d lines, '%s'", args, rc, bad[i].status, lines, line);
    }
    printf("cli      (e) ctune generate --ids = transformers' greedy ids after the ChatML prompt (%zu ids), --raw "
           "the same; %zu bad invocations exit 1/2 with one line\n",
           want.len, sizeof bad / sizeof bad[0]);
    ct_token_list_free(&prompt);
    ct_token_list_free(&want_prompt);
    ct_token_list_free(&want);
}

/* ---- main ---- */

static void check_model(const char *name) {
    ct_llama *m = ct_llama_load(model_dir(name));
    cJSON *fx = load_generate_fixture(name);
    CHECK(m && fx, "%s: %s", name, ct_last_error());
    if (m && fx) {
        CHECK(m->tokenizer && ct_tokenizer_vocab_size(m->tokenizer) == item(fx, "tokenizer_size")->valueint,
              "%s: tokenizer size", name);
        check_cached_batch(name, m, fx);
        check_greedy(name, m, fx);
        check_scores(name, m, fx);
        check_seeded(name, m, fx);
        if (!strcmp(name, "qwen2")) {
            check_streaming(m);
            check_memory_flat(m);
            check_bad_inputs(m);
            check_context_limit(m);
            check_cli(m, fx);
        }
    }
    cJSON_Delete(fx);
    ct_llama_free(m);
}

int main(int argc, char **argv) {
    (void)argc;
    char self[4096];
    snprintf(self, sizeof self, "%s", argv[0]);
    snprintf(ctune_binary, sizeof ctune_binary, "%s/ctune", dirname(self));
    for (size_t i = 0; i < sizeof MODELS / sizeof MODELS[0]; i++) check_model(MODELS[i]);
    check_sampling_fixture();
    check_padded_rows();
    return ct_test_finish("test_generate");
}
