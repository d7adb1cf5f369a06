/* One training step of the tiny LLaMA-style model of recipes/pretrain_tiny_zh.yaml: forward,
 * cross-entropy, backward, gradient clipping and AdamW, timed over N steps after a warm-up, and
 * where the step's time goes.
 *
 * The breakdown wraps the CPU backend's kernels (a copy of its op table installed with
 * ct_cpu_backend_override), so "gemm" is exactly the time spent inside the backend's gemm entry
 * (every projection and the lm_head, forward and backward); the fused attention kernel runs its
 * own tile GEMMs and is counted as attention. "optimizer" is the wall time of clipping plus
 * AdamW; "rest" is the step minus gemm, attention, cross-entropy and optimizer, and is itemized
 * into the other kernels and the time outside any kernel (op layer, tape, zeroing gradients).
 * tokens/s and ms/step come from the timed steps, which run on the plain table; with --profile 1
 * (the default) the same number of further steps then runs on the timing table, and the
 * breakdown's kernel times and shares are per step of that profiled pass (whose own step time is
 * printed too: the wrappers add two clock reads per kernel call, a few hundred calls a step).
 *
 * Batches are random token ids (seeded), drawn before timing; the targets are the ids shifted by
 * one (ct_llama_loss, the mean over B * (T - 1) predicted tokens). The learning rate is constant
 * (no schedule), weight decay applies to matrices only, as the trainer does.
 *
 * Prints two JSON lines: the step ("bench": "train_step") and its breakdown
 * ("bench": "train_step_breakdown"), times in ms per step. Threads: OMP_NUM_THREADS or --threads.
 *   usage: bench_train_step [--steps 20] [--warmup 3] [--batch 16] [--seq 128] [--vocab 3008]
 *          [--hidden 128] [--intermediate 352] [--layers 4] [--heads 4] [--kv-heads 2]
 *          [--lr 1e-3] [--grad-clip 1.0] [--seed 1234] [--threads N] [--profile 1]
 *          [--precision fp32|bf16]   (bf16: bf16 compute copies, f32 master weights, as train.precision) */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "core/arena.h"
#include "core/error.h"
#include "core/rng.h"
#include "autograd/tape.h"
#include "bench/bench_blas.h"
#include "kernels/backend.h"
#include "models/llama.h"
#include "train/optim.h"

typedef struct {
    int64_t steps, warmup, batch, seq, vocab, hidden, intermediate, layers, heads, kv_heads, threads;
    double lr, grad_clip;
    uint64_t seed;
    bool profile;
    bool bf16; /* --precision bf16: bf16 compute, f32 master weights (train.precision: bf16) */
} options;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- kernel timing: a copy of the CPU op table whose entries time the real ones ---- */

/* Order matters: the buckets before K_RMS_NORM are the breakdown's named parts and the
 * optimizer's kernels; those from K_RMS_NORM on are the other kernels of forward and backward. */
typedef enum {
    K_GEMM, K_ATTENTION, K_CROSS_ENTROPY, K_ADAMW, K_NORM_SQUARES, K_CLIP_SCALE, K_RMS_NORM, K_SWIGLU, K_ROPE,
    K_EMBEDDING, K_ELEMENTWISE, K_OTHER, K_COUNT
} kernel_bucket;

static const char *const bucket_names[K_COUNT] = {
    "gemm", "attention", "cross_entropy", "adamw", "grad_norm", "grad_clip_scale", "rms_norm", "swiglu", "rope",
    "embedding", "elementwise", "other"};

static struct {
    const ct_backend *real;
    double seconds[K_COUNT];
    int64_t calls[K_COUNT];
    double gemm_flop;
} timing;

/* Kernels never call back into the table (attention multiplies its tiles with ct_sgemm directly),
 * so the intervals do not nest and the buckets add up. */
#define TIMED(slot, bucket, params, args)                   \
    static int timed_##slot params {                        \
        double t0 = now();                                  \
        int rc = timing.real->slot args;                    \
        timing.seconds[bucket] += now() - t0;               \
        timing.calls[bucket]++;                             \
        return rc;                                          \
    }

static int timed_gemm(const ct_tensor *a, bool ta, const ct_tensor *b, bool tb, ct_tensor *c, double alpha,
                      double beta) {
    double t0 = now();
    int rc = timing.real->gemm(a, ta, b, tb, c, alpha, beta);
    timing.seconds[K_GEMM] += now() - t0;
    timing.calls[K_GEMM]++;
    /* c is [M, N]; the inner size is op(a)'s column count. */
    double inner = (double)(ta ? ct_rows(a) : ct_cols(a));
    timing.gemm_flop += 2.0 * (double)ct_rows(c) * (double)ct_cols(c) * inner;
    return rc;
}
TIMED(binary, K_ELEMENTWISE, (ct_binary_op op, const ct_tensor *a, const ct_tensor *b, ct_tensor *out),
      (op, a, b, out))
TIMED(convert, K_ELEMENTWISE, (const ct_tensor *x, ct_tensor *y), (x, y))
TIMED(axpby, K_ELEMENTWISE, (double alpha, const ct_tensor *x, double beta, ct_tensor *y), (alpha, x, beta, y))
TIMED(mul_accumulate, K_ELEMENTWISE, (const ct_tensor *x, const ct_tensor *y, ct_tensor *dst), (x, y, dst))
TIMED(sum_rows_accumulate, K_ELEMENTWISE, (const ct_tensor *x, const ct_tensor *y, ct_tensor *dst), (x, y, dst))
TIMED(add_scalar, K_ELEMENTWISE, (ct_tensor *dst, double value), (dst, value))
TIMED(sum, K_OTHER, (const ct_tensor *x, ct_tensor *out), (x, out))
TIMED(embedding_forward, K_EMBEDDING, (const ct_tensor *w, const ct_tensor *ids, ct_tensor *out), (w, ids, out))
TIMED(embedding_backward, K_EMBEDDING, (const ct_tensor *g, const ct_tensor *ids, ct_tensor *gw), (g, ids, gw))
TIMED(cross_entropy_forward, K_CROSS_ENTROPY,
      (const ct_tensor *logits, const ct_tensor *targets, ct_reduction r, ct_tensor *lse, ct_tensor *out),
      (logits, targets, r, lse, out))
TIMED(cross_entropy_backward, K_CROSS_ENTROPY,
      (const ct_tensor *logits, const ct_tensor *targets, ct_reduction r, const ct_tensor *lse,
       const ct_tensor *grad_out, ct_tensor *grad_logits),
      (logits, targets, r, lse, grad_out, grad_logits))
TIMED(adamw_multi, K_ADAMW,
      (int n, ct_tensor *const *p, ct_tensor *const *g, ct_tensor *const *m, ct_tensor *const *v, const double *wd,
       const ct_adamw_hparams *h, int64_t step),
      (n, p, g, m, v, wd, h, step))
TIMED(sum_squares_multi, K_NORM_SQUARES, (int n, const ct_tensor *const *x, double *result), (n, x, result))
TIMED(scale_multi, K_CLIP_SCALE, (int n, ct_tensor *const *x, double factor), (n, x, factor))
TIMED(attention_forward, K_ATTENTION,
      (const ct_tensor *q, const ct_tensor *k, const ct_tensor *v, const ct_tensor *qp, const ct_tensor *kp,
       const ct_tensor *qs, const ct_tensor *ks, double scale, ct_tensor *out, ct_tensor *lse),
      (q, k, v, qp, kp, qs, ks, scale, out, lse))
TIMED(attention_backward, K_ATTENTION,
      (const ct_tensor *q, const ct_tensor *k, const ct_tensor *v, const ct_tensor *qp, const ct_tensor *kp,
       const ct_tensor *qs, const ct_tensor *ks, double scale, const ct_tensor *out, const ct_tensor *lse,
       const ct_tensor *go, ct_tensor *gq, ct_tensor *gk, ct_tensor *gv),
      (q, k, v, qp, kp, qs, ks, scale, out, lse, go, gq, gk, gv))
TIMED(rms_norm_forward, K_RMS_NORM,
      (const ct_tensor *x, const ct_tensor *w, double eps, ct_tensor *rstd, ct_tensor *y), (x, w, eps, rstd, y))
TIMED(rms_norm_backward, K_RMS_NORM,
      (const ct_tensor *x, const ct_tensor *w, const ct_tensor *rstd, const ct_tensor *gy, ct_tensor *gx,
       ct_tensor *gw),
      (x, w, rstd, gy, gx, gw))
TIMED(swiglu_forward, K_SWIGLU, (const ct_tensor *gate, const ct_tensor *up, ct_tensor *out), (gate, up, out))
TIMED(swiglu_backward, K_SWIGLU,
      (const ct_tensor *gate, const ct_tensor *up, const ct_tensor *go, ct_tensor *gg, ct_tensor *gu),
      (gate, up, go, gg, gu))
TIMED(rope, K_ROPE,
      (const ct_tensor *x, const ct_tensor *pos, const double *inv_freq, int dir, bool acc, ct_tensor *y),
      (x, pos, inv_freq, dir, acc, y))

/* The timed table: every kernel a training step of this model calls is wrapped. Entries left as
 * they are (tanh, dropout, KL, log-softmax) are not called by it. */
static void install_timed_backend(ct_backend *table) {
    timing.real = ct_cpu_backend();
    *table = *timing.real;
    table->gemm = timed_gemm;
    table->binary = timed_binary, table->convert = timed_convert, table->axpby = timed_axpby;
    table->mul_accumulate = timed_mul_accumulate, table->sum_rows_accumulate = timed_sum_rows_accumulate;
    table->add_scalar = timed_add_scalar, table->sum = timed_sum;
    table->embedding_forward = timed_embedding_forward, table->embedding_backward = timed_embedding_backward;
    table->cross_entropy_forward = timed_cross_entropy_forward;
    table->cross_entropy_backward = timed_cross_entropy_backward;
    table->adamw_multi = timed_adamw_multi;
    table->sum_squares_multi = timed_sum_squares_multi, table->scale_multi = timed_scale_multi;
    table->attention_forward = timed_attention_forward, table->attention_backward = timed_attention_backward;
    table->rms_norm_forward = timed_rms_norm_forward, table->rms_norm_backward = timed_rms_norm_backward;
    table->swiglu_forward = timed_swiglu_forward, table->swiglu_backward = timed_swiglu_backward;
    table->rope = timed_rope;
    ct_cpu_backend_override(table);
}

static void reset_timing(void) {
    memset(timing.seconds, 0, sizeof timing.seconds);
    memset(timing.calls, 0, sizeof timing.calls);
    timing.gemm_flop = 0;
}

/* ---- command line ---- */

static int usage(const char *why) {
    fprintf(stderr, "bench_train_step: %s\nusage: bench_train_step [--steps 20] [--warmup 3] [--batch 16] "
                    "[--seq 128] [--vocab 3008] [--hidden 128] [--intermediate 352] [--layers 4] [--heads 4] "
                    "[--kv-heads 2] [--lr 1e-3] [--grad-clip 1.0] [--seed 1234] [--threads N] [--profile 0|1] "
                    "[--precision fp32|bf16]\n",
            why);
    return 2;
}

static int64_t *int_option(options *o, const char *flag) {
    static const char *const names[] = {"--steps", "--warmup", "--batch", "--seq", "--vocab", "--hidden",
                                        "--intermediate", "--layers", "--heads", "--kv-heads", "--threads"};
    int64_t *fields[] = {&o->steps, &o->warmup, &o->batch, &o->seq, &o->vocab, &o->hidden,
                         &o->intermediate, &o->layers, &o->heads, &o->kv_heads, &o->threads};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(flag, names[i]) == 0) return fields[i];
    return NULL;
}

/* 0, or the exit status of a usage error (already printed). */
static int parse_options(int argc, char **argv, options *o) {
    *o = (options){.steps = 20, .warmup = 3, .batch = 16, .seq = 128, .vocab = 3008, .hidden = 128,
                   .intermediate = 352, .layers = 4, .heads = 4, .kv_heads = 2, .threads = 0, .lr = 1e-3,
                   .grad_clip = 1.0, .seed = 1234, .profile = true};
    for (int i = 1; i < argc; i += 2) {
        if (i + 1 >= argc) return usage("every flag takes a value");
        const char *flag = argv[i], *value = argv[i + 1];
        char *end;
        int64_t *field = int_option(o, flag);
        if (field) {
            long long v = strtoll(value, &end, 10);
            bool may_be_zero = field == &o->threads || field == &o->warmup;
            if (*end || v < (may_be_zero ? 0 : 1)) return usage("integer flags take a positive whole number");
            *field = v;
        } else if (strcmp(flag, "--lr") == 0 || strcmp(flag, "--grad-clip") == 0) {
            double v = strtod(value, &end);
            if (*end || v < 0) return usage("--lr and --grad-clip take a non-negative number");
            *(flag[2] == 'l' ? &o->lr : &o->grad_clip) = v;
        } else if (strcmp(flag, "--seed") == 0) {
            o->seed = strtoull(value, &end, 10);
            if (*end) return usage("--seed takes a whole number");
        } else if (strcmp(flag, "--precision") == 0) {
            if (strcmp(value, "fp32") && strcmp(value, "bf16")) return usage("--precision takes fp32 or bf16");
            o->bf16 = value[0] == 'b';
        } else if (strcmp(flag, "--profile") == 0) {
            if (strcmp(value, "0") && strcmp(value, "1")) return usage("--profile takes 0 or 1");
            o->profile = value[0] == '1';
        } else {
            return usage("unknown flag");
        }
    }
    if (o->heads % o->kv_heads || o->hidden % o->heads || (o->hidden / o->heads) % 2)
        return usage("heads must be a multiple of kv-heads, and hidden / heads an even whole number");
    return 0;
}

/* ---- the model, the data, one step ---- */

static ct_llama *tiny_model(const options *o) {
    ct_llama_config cfg;
    ct_llama_config_defaults(&cfg, CT_ARCH_LLAMA);
    cfg.hidden_size = o->hidden, cfg.intermediate_size = o->intermediate;
    cfg.num_hidden_layers = o->layers, cfg.num_attention_heads = o->heads, cfg.num_key_value_heads = o->kv_heads;
    cfg.head_dim = o->hidden / o->heads, cfg.vocab_size = o->vocab, cfg.max_position_embeddings = o->seq;
    cfg.rms_norm_eps = 1e-5, cfg.rope_theta = 10000.0, cfg.initializer_range = 0.02;
    cfg.tie_word_embeddings = true;
    ct_llama *m = ct_llama_new(&cfg);
    if (m) ct_llama_init_random(m, o->seed);
    return m;
}

static ct_adamw *tiny_optimizer(ct_llama *m, const options *o) {
    ct_adamw_hparams h = {.lr = o->lr, .beta1 = 0.9, .beta2 = 0.95, .eps = 1e-8, .weight_decay = 0.1};
    ct_adamw *opt = ct_adamw_new(m->params, m->n_params, h);
    if (!opt) return NULL;
    for (int i = 0; i < m->n_params; i++)
        if (!ct_llama_param_decays(m->params[i])) ct_adamw_set_weight_decay(opt, i, 0);
    return opt;
}

/* Persistent i32 [B, T] batches of uniform random ids, all drawn before timing. */
static ct_tensor **random_batches(const options *o, int64_t n) {
    ct_tensor **batches = ct_calloc((size_t)n, sizeof *batches, "token batches");
    if (!batches) return NULL;
    ct_rng rng;
    ct_rng_seed(&rng, o->seed + 1);
    for (int64_t i = 0; i < n; i++) {
        batches[i] = ct_tensor_new(CT_I32, 2, (int64_t[]){o->batch, o->seq}, "input_ids");
        if (!batches[i]) return NULL;
        int32_t *ids = batches[i]->data;
        for (int64_t j = 0; j < o->batch * o->seq; j++) ids[j] = (int32_t)ct_rng_below(&rng, (uint64_t)o->vocab);
    }
    return batches;
}

typedef struct {
    double forward, backward, optimizer, total; /* seconds, summed over the timed steps */
    double last_loss;
} step_times;

static int train_step(ct_llama *m, ct_adamw *opt, ct_tensor *ids, double grad_clip, step_times *t) {
    double t0 = now();
    ct_zero_grad(m->params, m->n_params);
    if (ct_scope_begin() < 0) return -1;
    ct_tensor *loss = ct_llama_loss(ct_llama_forward(m, ids, NULL), ids);
    double t1 = now();
    int rc = loss ? ct_backward(loss) : -1;
    t->last_loss = loss ? ct_get(loss, 0) : 0;
    ct_scope_end();
    double t2 = now();
    double norm;
    if (rc == 0) rc = grad_clip > 0 ? ct_clip_grad_norm(m->params, m->n_params, grad_clip, &norm)
                                    : ct_grad_global_norm(m->params, m->n_params, &norm);
    if (rc == 0) rc = ct_adamw_step(opt);
    double t3 = now();
    t->forward += t1 - t0, t->backward += t2 - t1, t->optimizer += t3 - t2, t->total += t3 - t0;
    return rc;
}

/* ---- output ---- */

static double max_rss_mib(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0; /* Linux reports KiB */
}

static void print_step(const options *o, const ct_llama *m, const step_times *t, double first_loss,
                       const ct_memory_stats *mem, uint64_t chunk_allocations_while_timed) {
    double per_step = t->total / (double)o->steps;
    printf("{\"bench\": \"train_step\", \"impl\": \"ctune\", \"threads\": %d, \"batch\": %lld, \"seq\": %lld, "
           "\"vocab\": %lld, \"hidden\": %lld, \"intermediate\": %lld, \"layers\": %lld, \"heads\": %lld, "
           "\"kv_heads\": %lld, \"params\": %lld, \"warmup\": %lld, \"steps\": %lld, \"profiled\": %s, "
           "\"tokens_per_s\": %.1f, \"ms_per_step\": %.3f, \"first_loss\": %.4f, \"last_loss\": %.4f, "
           "\"peak_arena_bytes\": %zu, \"arena_reserved_bytes\": %zu, \"arena_chunk_allocations_while_timed\": "
           "%llu, \"max_rss_mib\": %.1f, \"omp_wait\": \"%s\", \"precision\": \"%s\", %s}\n",
           omp_get_max_threads(), (long long)o->batch, (long long)o->seq, (long long)o->vocab, (long long)o->hidden,
           (long long)o->intermediate, (long long)o->layers, (long long)o->heads, (long long)o->kv_heads,
           (long long)ct_llama_num_params(m), (long long)o->warmup, (long long)o->steps,
           o->profile ? "true" : "false", (double)(o->batch * o->seq) / per_step, 1e3 * per_step, first_loss,
           t->last_loss, mem->peak_in_use, mem->reserved, (unsigned long long)chunk_allocations_while_timed,
           max_rss_mib(), ct_omp_wait_describe(), o->bf16 ? "bf16" : "fp32", bench_blas_json());
}

/* Phases from the timed steps; kernels from the profiled ones (t = that pass's times). */
static void print_breakdown(const options *o, const step_times *timed, const step_times *t) {
    double ms = 1e3 / (double)o->steps;
    printf("{\"bench\": \"train_step_breakdown\", \"impl\": \"ctune\", \"ms_per_step\": %.3f, "
           "\"forward_ms\": %.3f, \"backward_ms\": %.3f, \"optimizer_ms\": %.3f",
           timed->total * ms, timed->forward * ms, timed->backward * ms, timed->optimizer * ms);
    if (!o->profile) {
        printf(", %s}\n", bench_blas_json());
        return;
    }
    double *s = timing.seconds;
    double rest = t->total - s[K_GEMM] - s[K_ATTENTION] - s[K_CROSS_ENTROPY] - t->optimizer;
    double other_kernels = 0;
    for (int k = K_RMS_NORM; k < K_COUNT; k++) other_kernels += s[k];
    double total = t->total;
    printf(", \"profiled_ms_per_step\": %.3f, \"profiled_optimizer_ms\": %.3f", total * ms, t->optimizer * ms);
    printf(", \"gemm_ms\": %.3f, \"attention_ms\": %.3f, \"cross_entropy_ms\": %.3f, \"rest_ms\": %.3f",
           s[K_GEMM] * ms, s[K_ATTENTION] * ms, s[K_CROSS_ENTROPY] * ms, rest * ms);
    printf(", \"gemm_share\": %.3f, \"attention_share\": %.3f, \"cross_entropy_share\": %.3f, "
           "\"optimizer_share\": %.3f, \"rest_share\": %.3f",
           s[K_GEMM] / total, s[K_ATTENTION] / total, s[K_CROSS_ENTROPY] / total, t->optimizer / total, rest / total);
    printf(", \"gemm_gflops\": %.2f, \"gemm_calls_per_step\": %.1f, \"rest_outside_kernels_ms\": %.3f",
           timing.gemm_flop / s[K_GEMM] * 1e-9, (double)timing.calls[K_GEMM] / (double)o->steps,
           (rest - other_kernels) * ms);
    printf(", \"kernels_ms\": {");
    for (int k = 0; k < K_COUNT; k++) printf("%s\"%s\": %.3f", k ? ", " : "", bucket_names[k], s[k] * ms);
    printf("}, %s}\n", bench_blas_json());
}

int main(int argc, char **argv) {
    bench_blas_start(argv);
    options o;
    int status = parse_options(argc, argv, &o);
    if (status) return status;
    if (o.threads > 0) omp_set_num_threads((int)o.threads);
    ct_llama *m = tiny_model(&o);
    if (m) m->compute_dtype = o.bf16 ? CT_BF16 : CT_F32;
    ct_adamw *opt = m ? tiny_optimizer(m, &o) : NULL;
    ct_tensor **batches = opt ? random_batches(&o, o.warmup + o.steps) : NULL;
    if (!batches) {
        fprintf(stderr, "bench_train_step: %s\n", ct_last_error());
        return 1;
    }
    /* The first step's loss (about ln(vocab) after a fresh init) and the last timed one are a
     * sanity check: the PyTorch script trains the same model on the same kind of data, so its
     * two losses should agree with these to about two decimals. */
    step_times warm = {0}, timed = {0};
    double first_loss = 0;
    for (int64_t i = 0; i < o.warmup; i++) {
        if (train_step(m, opt, batches[i], o.grad_clip, &warm) < 0) goto failed;
        if (i == 0) first_loss = warm.last_loss;
    }
    ct_memory_reset_peak();
    uint64_t chunks_before = ct_memory_get_stats(CT_CPU).chunk_allocations;
    for (int64_t i = 0; i < o.steps; i++) {
        if (train_step(m, opt, batches[o.warmup + i], o.grad_clip, &timed) < 0) goto failed;
        if (i == 0 && o.warmup == 0) first_loss = timed.last_loss;
    }
    ct_memory_stats mem = ct_memory_get_stats(CT_CPU);
    step_times profiled = {0};
    if (o.profile) {
        ct_backend timing_table;
        install_timed_backend(&timing_table);
        reset_timing();
        for (int64_t i = 0; i < o.steps; i++)
            if (train_step(m, opt, batches[o.warmup + i], o.grad_clip, &profiled) < 0) goto failed;
        ct_cpu_backend_override(NULL);
    }
    print_step(&o, m, &timed, first_loss, &mem, mem.chunk_allocations - chunks_before);
    print_breakdown(&o, &timed, &profiled);
    status = 0;
    goto done;
failed:
    fprintf(stderr, "bench_train_step: %s\n", ct_last_error());
    status = 1;
done:
    ct_cpu_backend_override(NULL);
    for (int64_t i = 0; i < o.warmup + o.steps; i++) ct_tensor_free(batches[i]);
    free(batches);
    ct_adamw_free(opt);
    ct_llama_free(m);
    return status;
}
