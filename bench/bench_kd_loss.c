/* The distillation loss at Qwen2.5-0.5B's shape: the loss op and the lm_heads alone (not the
 * transformer blocks), forward + backward, three ways:
 *   ce_unfused  lm_head as a matmul, then ct_cross_entropy: the trainer's CE step, whose
 *               [tokens, vocab] logits and their gradient are whole tensors;
 *   ce_fused    ct_kd_loss with kd_ratio 0: CE with the lm_head fused and chunked, no teacher;
 *   kd          ct_kd_loss with kd_ratio 0.5, T 1, forward KL: both lm_heads fused and chunked.
 * Memory of a step = the arenas' peak (activations, chunks, scoped gradients) + the persistent
 * tensors the step needs (student head and its gradient, the hidden states and their gradient,
 * and for kd the teacher's head). kd - ce_fused is what distillation adds to a fused CE step: the
 * teacher's head + its hidden states + one chunk of logits; the teacher's transformer blocks add
 * their weights (their activations live in a nested scope that ends before the loss).
 * Prints one JSON object per mode and one for the differences.
 *   usage: bench_kd_loss [tokens=4096] [vocab=151936] [hidden=896] [teacher_hidden=896] */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "core/arena.h"
#include "core/error.h"
#include "core/rng.h"
#include "autograd/ops.h"
#include "autograd/ops_transformer.h"
#include "autograd/tape.h"
#include "kernels/cpu/cpu_blas.h"

typedef enum { CE_UNFUSED, CE_FUSED, KD } mode;
static const char *const mode_names[] = {"ce_unfused", "ce_fused", "kd"};

typedef struct {
    double seconds, cpu_seconds, loss;
    size_t arena_peak, persistent;
} result;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static ct_tensor *param(ct_rng *rng, int64_t rows, int64_t cols, double std, bool trains, const char *name) {
    ct_tensor *t = ct_tensor_new(CT_F32, 2, (int64_t[]){rows, cols}, name);
    if (!t) {
        fprintf(stderr, "%s\n", ct_last_error());
        exit(1);
    }
    ct_fill_normal(t, rng, 0.0, std);
    t->requires_grad = trains;
    return t;
}

static result run(mode m, int64_t tokens, int64_t vocab, int64_t hidden, int64_t teacher_hidden) {
    ct_rng rng;
    ct_rng_seed(&rng, 7);
    ct_tensor *head = param(&rng, vocab, hidden, 0.02, true, "lm_head.weight");
    ct_tensor *h = param(&rng, tokens, hidden, 1.0, true, "hidden");
    ct_tensor *t_head = m == KD ? param(&rng, vocab, teacher_hidden, 0.02, false, "teacher.lm_head.weight") : NULL;
    ct_tensor *t_h = m == KD ? param(&rng, tokens, teacher_hidden, 1.0, false, "teacher.hidden") : NULL;
    ct_tensor *targets = ct_tensor_new(CT_I32, 1, &tokens, "targets");
    if (!targets) exit(1);
    for (int64_t i = 0; i < tokens; i++) ((int32_t *)targets->data)[i] = (int32_t)ct_rng_below(&rng, (uint64_t)vocab);
    result r = {0};
    ct_memory_reset_peak();
    double t0 = now();
    clock_t c0 = clock();
    ct_scope_begin();
    ct_tensor *loss;
    if (m == CE_UNFUSED) {
        loss = ct_cross_entropy(ct_matmul(h, head, false, true), targets, CT_REDUCE_SUM);
    } else {
        ct_kd_options o = {.ce_weight = m == KD ? 0.5 : 1.0, .kl_weight = m == KD ? 0.5 : 0.0, .temperature = 1,
                           .divergence = CT_KD_FORWARD_KL};
        loss = ct_kd_loss(h, head, t_h, t_head, targets, vocab, &o);
    }
    if (!loss || ct_backward(loss) < 0) {
        fprintf(stderr, "bench_kd_loss %s: %s\n", mode_names[m], ct_last_error());
        exit(1);
    }
    r.loss = ct_get(loss, 0) / (double)tokens;
    ct_scope_end();
    r.cpu_seconds = (double)(clock() - c0) / CLOCKS_PER_SEC;
    r.seconds = now() - t0;
    r.arena_peak = ct_memory_get_stats(CT_CPU).peak_in_use;
    r.persistent = 2 * ct_nbytes(head) + 2 * ct_nbytes(h) + (t_head ? ct_nbytes(t_head) + ct_nbytes(t_h) : 0);
    printf("{\"bench\": \"kd_loss\", \"mode\": \"%s\", \"tokens\": %lld, \"vocab\": %lld, \"hidden\": %lld, "
           "\"teacher_hidden\": %lld, \"seconds\": %.2f, \"cpu_seconds\": %.2f, \"loss_per_token\": %.6f, "
           "\"arena_peak_bytes\": %zu, \"persistent_bytes\": %zu, \"step_bytes\": %zu}\n",
           mode_names[m], (long long)tokens, (long long)vocab, (long long)hidden, (long long)teacher_hidden,
           r.seconds, r.cpu_seconds, r.loss, r.arena_peak, r.persistent, r.arena_peak + r.persistent);
    fflush(stdout);
    ct_tensor_free(head);
    ct_tensor_free(h);
    ct_tensor_free(t_head);
    ct_tensor_free(t_h);
    ct_tensor_free(targets);
    return r;
}

int main(int argc, char **argv) {
    ct_blas_select(argv);
    int64_t tokens = argc > 1 ? atoll(argv[1]) : 4096, vocab = argc > 2 ? atoll(argv[2]) : 151936;
    int64_t hidden = argc > 3 ? atoll(argv[3]) : 896, teacher_hidden = argc > 4 ? atoll(argv[4]) : 896;
    result r[3];
    for (int m = 0; m < 3; m++) r[m] = run((mode)m, tokens, vocab, hidden, teacher_hidden);
    long long chunk_rows = CT_KD_CHUNK_ELEMENTS / vocab;
    size_t teacher = (size_t)(vocab + tokens) * (size_t)teacher_hidden * sizeof(float);
    size_t one_chunk = (size_t)chunk_rows * (size_t)vocab * sizeof(float);
    size_t full_logits = (size_t)tokens * (size_t)vocab * sizeof(float);
    printf("{\"bench\": \"kd_loss\", \"summary\": true, \"kd_minus_ce_fused_bytes\": %lld, "
           "\"kd_minus_ce_unfused_bytes\": %lld, \"teacher_head_and_hidden_bytes\": %zu, \"chunk_rows\": %lld, "
           "\"one_chunk_bytes\": %zu, \"full_logits_bytes\": %zu, \"kd_over_ce_fused_time\": %.2f}\n",
           (long long)(r[KD].arena_peak + r[KD].persistent) - (long long)(r[CE_FUSED].arena_peak + r[CE_FUSED].persistent),
           (long long)(r[KD].arena_peak + r[KD].persistent) -
               (long long)(r[CE_UNFUSED].arena_peak + r[CE_UNFUSED].persistent),
           teacher, chunk_rows, one_chunk, full_logits, r[KD].cpu_seconds / r[CE_FUSED].cpu_seconds);
    return 0;
}
