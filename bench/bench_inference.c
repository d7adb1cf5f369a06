/* Inference speed on a random model of the tiny recipe's shape (hidden 128, intermediate 352,
 * 4 layers, 4 query and 2 key/value heads, 3,008 rows): log-likelihood scoring of 20 candidates
 * (3-7 tokens) after each of 400 prompts (30-49 tokens), as intent evaluation does; greedy and
 * top-p generation of 200 tokens after a 32-token prompt; the per-token NLL of 1,024 tokens; and
 * the cost of one draw over 151,936 random logits (Qwen's vocabulary) for each sampling rule.
 * Everything is seeded; prints one JSON line per measurement. Threads: OMP_NUM_THREADS.
 *
 *   usage: bench_inference */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "core/error.h"
#include "core/rng.h"
#include "bench/bench_blas.h"
#include "models/generate.h"
#include "models/score.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static ct_llama *tiny_model(void) {
    ct_llama_config c;
    ct_llama_config_defaults(&c, CT_ARCH_LLAMA);
    c.hidden_size = 128;
    c.intermediate_size = 352;
    c.num_hidden_layers = 4;
    c.num_attention_heads = 4;
    c.num_key_value_heads = 2;
    c.head_dim = 32;
    c.vocab_size = 3008;
    c.max_position_embeddings = 2048;
    c.tie_word_embeddings = true;
    c.n_eos = 0;
    ct_llama *m = ct_llama_new(&c);
    if (m) ct_llama_init_random(m, 7);
    return m;
}

static void random_ids(ct_rng *rng, ct_token_list *list, int64_t n, int64_t vocab) {
    list->len = 0;
    for (int64_t i = 0; i < n; i++) ct_token_list_push(list, (int32_t)ct_rng_below(rng, (uint64_t)vocab));
}

static int bench_scoring(ct_llama *m, ct_rng *rng) {
    enum { PROMPTS = 400, CANDIDATES = 20 };
    ct_token_list prompt = {0}, candidates[CANDIDATES] = {{0}};
    ct_candidate_score scores[CANDIDATES];
    double start = now();
    int rc = 0;
    for (int p = 0; p < PROMPTS && rc == 0; p++) {
        random_ids(rng, &prompt, 30 + (int64_t)ct_rng_below(rng, 20), m->config.vocab_size);
        for (int k = 0; k < CANDIDATES; k++)
            random_ids(rng, &candidates[k], 3 + (int64_t)ct_rng_below(rng, 5), m->config.vocab_size);
        rc = ct_score_candidates(m, prompt.ids, (int64_t)prompt.len, candidates, CANDIDATES, NULL, scores);
    }
    double seconds = now() - start;
    if (rc == 0)
        printf("{\"bench\": \"score_candidates\", \"prompts\": %d, \"candidates\": %d, \"seconds\": %.3f, "
               "\"prompts_per_s\": %.1f, \"threads\": %d, %s}\n",
               PROMPTS, CANDIDATES, seconds, PROMPTS / seconds, omp_get_max_threads(), bench_blas_json());
    ct_token_list_free(&prompt);
    for (int k = 0; k < CANDIDATES; k++) ct_token_list_free(&candidates[k]);
    return rc;
}

static int bench_generation(ct_llama *m, ct_rng *rng, const char *name, ct_sampling sampling) {
    ct_token_list prompt = {0};
    random_ids(rng, &prompt, 32, m->config.vocab_size);
    ct_generate_options opt = ct_generate_defaults();
    opt.max_new_tokens = 200;
    opt.sampling = sampling;
    opt.seed = 3;
    opt.ignore_eos = true;
    ct_generation out = {0};
    double start = now();
    int rc = ct_generate(m, &prompt, 1, &opt, &out);
    double seconds = now() - start;
    if (rc == 0)
        printf("{\"bench\": \"generate\", \"sampling\": \"%s\", \"prompt\": 32, \"new_tokens\": %zu, \"seconds\": %.3f, "
               "\"tokens_per_s\": %.0f, \"threads\": %d, %s}\n",
               name, out.ids.len, seconds, (double)out.ids.len / seconds, omp_get_max_threads(), bench_blas_json());
    ct_generation_free(&out, 1);
    ct_token_list_free(&prompt);
    return rc;
}

static int bench_sequence(ct_llama *m, ct_rng *rng) {
    enum { N = 1024 };
    ct_token_list ids = {0};
    random_ids(rng, &ids, N, m->config.vocab_size);
    double *nll = malloc(sizeof(double) * N);
    double start = now();
    int rc = nll ? ct_score_sequence(m, ids.ids, N, NULL, nll) : -1;
    double seconds = now() - start;
    if (rc == 0)
        printf("{\"bench\": \"score_sequence\", \"tokens\": %d, \"seconds\": %.3f, \"threads\": %d, %s}\n", N, seconds,
               omp_get_max_threads(), bench_blas_json());
    free(nll);
    ct_token_list_free(&ids);
    return rc;
}

/* One draw over a Qwen-sized row of N(0, 2.5^2) logits, averaged over repeats. */
static int bench_sampler(ct_rng *rng) {
    enum { VOCAB = 151936, REPEATS = 50 };
    const struct {
        const char *name;
        ct_sampling s;
    } rules[] = {{"greedy", {0, 0, 1}},
                 {"temperature 0.8", {0.8, 0, 1}},
                 {"top-k 50, top-p 0.95", {0.8, 50, 0.95}},
                 {"top-p 0.9, temperature 0.7", {0.7, 0, 0.9}}};
    float *logits = malloc(sizeof(float) * VOCAB);
    ct_sampler sampler;
    if (!logits || ct_sampler_init(&sampler, VOCAB) < 0) return -1;
    for (int i = 0; i < VOCAB; i++) logits[i] = (float)(2.5 * ct_rng_normal(rng));
    for (size_t r = 0; r < sizeof rules / sizeof *rules; r++) {
        double start = now();
        for (int i = 0; i < REPEATS; i++) ct_sample(&sampler, logits, VOCAB, &rules[r].s, rng);
        printf("{\"bench\": \"sample\", \"rule\": \"%s\", \"vocab\": %d, \"ms_per_token\": %.3f, %s}\n", rules[r].name,
               VOCAB, 1e3 * (now() - start) / REPEATS, bench_blas_json());
    }
    ct_sampler_free(&sampler);
    free(logits);
    return 0;
}

int main(int argc, char **argv) {
    bench_blas_start(argv);
    (void)argv;
    if (argc > 1) {
        fprintf(stderr, "usage: bench_inference (no arguments; threads from OMP_NUM_THREADS)\n");
        return 2;
    }
    ct_rng rng;
    ct_rng_seed(&rng, 11);
    ct_llama *m = tiny_model();
    int rc = m ? 0 : -1;
    if (rc == 0) rc = bench_scoring(m, &rng);
    if (rc == 0) rc = bench_generation(m, &rng, "greedy", (ct_sampling){0, 0, 1});
    if (rc == 0) rc = bench_generation(m, &rng, "top-p 0.9, temperature 0.8", (ct_sampling){0.8, 0, 0.9});
    if (rc == 0) rc = bench_sequence(m, &rng);
    if (rc == 0) rc = bench_sampler(&rng);
    ct_llama_free(m);
    if (rc < 0) {
        fprintf(stderr, "bench_inference: %s\n", ct_last_error());
        return 1;
    }
    return 0;
}
