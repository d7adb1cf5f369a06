/* Twenty training steps on the GPU against the same twenty on the CPU.
 *
 * A tiny decoder (embedding, two LLaMA-style GQA blocks from tests/ct_test_block.h with dropout,
 * final RMSNorm, lm_head; the model of tests/test_tiny_decoder.c) starts from identical weights
 * on both devices and sees identical batches; each step is forward, backward, global-norm
 * clipping and AdamW with per-parameter weight decay, all through train/optim.h. The losses must
 * agree step by step:
 *   f32:  |loss_gpu - loss_cpu| <= 1e-3 (absolute; the losses start near ln 11 = 2.4);
 *   bf16: the forward on bf16 copies of the f32 master weights (ct_to_dtype, so activations are
 *         bf16 and gradients reach the masters in f32), without dropout (it takes f32 only),
 *         against the CPU's bf16 run: |loss_gpu - loss_cpu| <= 1e-2 (absolute). Both devices
 *         compute in f32 and round to bf16 the same way; only the order of additions differs,
 *         which flips an occasional bf16 rounding, hence the looser bound.
 * The gradient norm of step 1 (same weights, same batch) must agree within 1e-4 relative, and
 * the loss must fall over the run (so two runs that both do nothing cannot pass).
 * From step 3 on the GPU run may not call cudaMalloc: the arenas, the optimizer's descriptor
 * lists and every scratch buffer come from what the first two steps left cached. The CUDA
 * allocator's counters in ct_memory_get_stats must move while the model is loaded and stay flat
 * after that.
 *
 * Needs a GPU: exits 77 (skipped) without one, and in a build without CUDA. */
#include <stdio.h>
#include <string.h>

#include "core/arena.h"
#include "core/error.h"
#include "autograd/tape.h"
#include "kernels/device.h"
#include "tests/ct_test.h"
#include "tests/ct_test_block.h"
#include "train/optim.h"

#ifndef CT_HAVE_CUDA
int main(void) {
    ct_test_note_skip("test_cuda_train", "built without CUDA (nvcc not found, or -DCT_ENABLE_CUDA=OFF)");
    return 77;
}
#else
#include "kernels/cuda/cuda_memory.h"

enum { VOCAB = 11, DIM = 32, FFN = 64, HEADS = 4, KV_HEADS = 2, BATCH = 4, SEQ = 19, STEPS = 20 };
enum { N_PARAMS = 3 + 2 * BLOCK_N_PARAMS };

#define F32_LOSS_TOLERANCE 1e-3
#define BF16_LOSS_TOLERANCE 1e-2
#define FIRST_NORM_TOLERANCE 1e-4
#define MAX_GRAD_NORM 0.5 /* low enough to clip on some steps: AdamW hardly minds the scale */

static const int32_t pattern[] = {5, 2, 5, 7, 5, 3};

typedef struct {
    ct_device device;
    bool bf16;
    test_block blocks[2];
    ct_tensor *embedding, *final_norm, *lm_head;
    ct_tensor *params[N_PARAMS];
    ct_tensor *ids, *targets; /* persistent i32 [B, T] on the device, refilled every step */
} decoder;

typedef struct {
    double losses[STEPS], norms[STEPS];
    ct_memory_stats loaded, after_two, at_end;
} run_record;

static void collect_params(decoder *d) {
    int n = 0;
    d->params[n++] = d->embedding;
    d->params[n++] = d->final_norm;
    d->params[n++] = d->lm_head;
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < BLOCK_N_PARAMS; j++) d->params[n++] = d->blocks[i].p[j];
}

/* The weights are drawn on the CPU from one seed, then copied to the device: identical starts. */
static int decoder_init(decoder *d, ct_device device, bool bf16) {
    memset(d, 0, sizeof *d);
    d->device = device;
    d->bf16 = bf16;
    ct_rng init;
    ct_rng_seed(&init, 11);
    decoder host;
    memset(&host, 0, sizeof host);
    host.embedding = test_block_param("embedding", VOCAB, DIM, &init, 1.0);
    host.final_norm = test_block_param("final_norm", DIM, 0, &init, 0);
    host.lm_head = test_block_param("lm_head", VOCAB, DIM, &init, 1 / sqrt((double)DIM));
    for (int i = 0; i < 2; i++) {
        test_block_init(&host.blocks[i], DIM, FFN, HEADS, KV_HEADS, (uint32_t)i, &init);
        host.blocks[i].dropout = bf16 ? 0.0 : 0.1; /* dropout takes f32 activations only */
        host.blocks[i].seed = 99;
    }
    collect_params(&host);
    int status = 0;
    d->embedding = test_param_copy_on(device, host.embedding);
    d->final_norm = test_param_copy_on(device, host.final_norm);
    d->lm_head = test_param_copy_on(device, host.lm_head);
    if (!d->embedding || !d->final_norm || !d->lm_head) status = -1;
    for (int i = 0; i < 2 && status == 0; i++) status = test_block_copy_on(device, &host.blocks[i], &d->blocks[i]);
    for (int i = 0; i < N_PARAMS; i++) ct_tensor_free(host.params[i]);
    if (status < 0) return -1;
    collect_params(d);
    d->ids = ct_tensor_new_on(device, CT_I32, 2, (int64_t[]){BATCH, SEQ}, "ids");
    d->targets = ct_tensor_new_on(device, CT_I32, 2, (int64_t[]){BATCH, SEQ}, "targets");
    return d->ids && d->targets ? 0 : -1;
}

static void decoder_free(decoder *d) {
    ct_release_grad(d->params, N_PARAMS);
    for (int i = 0; i < N_PARAMS; i++) ct_tensor_free(d->params[i]);
    ct_tensor_free(d->ids);
    ct_tensor_free(d->targets);
}

/* Pattern rows at random phases, written on the host and copied into the device's buffers. */
static int load_batch(decoder *d, ct_rng *rng) {
    int32_t x[BATCH * SEQ], y[BATCH * SEQ];
    int period = (int)(sizeof pattern / sizeof *pattern);
    for (int b = 0; b < BATCH; b++) {
        int phase = (int)ct_rng_below(rng, (uint64_t)period);
        for (int t = 0; t < SEQ; t++) {
            x[b * SEQ + t] = pattern[(phase + t) % period];
            y[b * SEQ + t] = t == 0 ? -100 : pattern[(phase + t + 1) % period];
        }
    }
    CT_TRY(ct_device_copy(d->device, d->ids->data, CT_CPU, x, sizeof x));
    return ct_device_copy(d->device, d->targets->data, CT_CPU, y, sizeof y);
}

/* The weights the forward reads: the f32 masters, or their bf16 copies (recorded on the tape,
 * so the masters get f32 gradients). */
static ct_tensor *forward_weight(const decoder *d, ct_tensor *master) {
    return d->bf16 ? ct_to_dtype(master, CT_BF16) : master;
}

static ct_tensor *decoder_loss(decoder *d, uint64_t step) {
    ct_tensor *positions = test_block_positions_on(d->device, BATCH, SEQ);
    ct_tensor *x = ct_embedding(forward_weight(d, d->embedding), d->ids);
    for (int i = 0; i < 2 && x; i++) {
        test_block b = d->blocks[i];
        for (int j = 0; j < BLOCK_N_PARAMS; j++) b.p[j] = forward_weight(d, d->blocks[i].p[j]);
        b.positions = positions;
        b.step = step;
        x = test_block_apply(&b, x, false);
    }
    ct_tensor *h = ct_rms_norm(x, forward_weight(d, d->final_norm), 1e-5);
    ct_tensor *logits = ct_matmul(h, forward_weight(d, d->lm_head), false, true);
    return ct_cross_entropy(logits, d->targets, CT_REDUCE_MEAN);
}

static int train_step(decoder *d, ct_adamw *opt, ct_rng *data, int step, run_record *r) {
    CT_TRY(load_batch(d, data));
    CT_TRY(ct_zero_grad(d->params, N_PARAMS));
    if (ct_scope_begin() < 0) return -1;
    ct_tensor *loss = decoder_loss(d, (uint64_t)step);
    int status = loss ? ct_backward(loss) : -1;
    if (status == 0) r->losses[step] = ct_get(loss, 0);
    ct_scope_end();
    if (status == 0) status = ct_clip_grad_norm(d->params, N_PARAMS, MAX_GRAD_NORM, &r->norms[step]);
    if (status == 0) status = ct_adamw_step(opt);
    return status;
}

static int train(ct_device device, bool bf16, run_record *r) {
    memset(r, 0, sizeof *r);
    decoder d;
    if (decoder_init(&d, device, bf16) < 0) return ct_fail_context("model on %s: ", ct_device_name(device));
    r->loaded = ct_memory_get_stats(device);
    ct_adamw *opt = ct_adamw_new(d.params, N_PARAMS,
                                 (ct_adamw_hparams){.lr = 1e-2, .beta1 = 0.9, .beta2 = 0.99, .eps = 1e-8,
                                                    .weight_decay = 0.01});
    int status = opt ? 0 : -1;
    for (int i = 0; opt && i < N_PARAMS; i++)
        if (d.params[i]->ndim == 1) ct_adamw_set_weight_decay(opt, i, 0.0); /* norms get none */
    ct_rng data;
    ct_rng_seed(&data, 12);
    for (int step = 0; step < STEPS && status == 0; step++) {
        status = train_step(&d, opt, &data, step, r);
        if (step == 1) r->after_two = ct_memory_get_stats(device);
    }
    if (status == 0 && device == CT_CUDA) status = ct_cuda_synchronize();
    r->at_end = ct_memory_get_stats(device);
    ct_adamw_free(opt);
    decoder_free(&d);
    return status;
}

static void compare_runs(const char *name, const run_record *cpu, const run_record *gpu, double tolerance) {
    double worst = 0, worst_norm = 0;
    int clipped = 0;
    for (int s = 0; s < STEPS; s++) {
        clipped += gpu->norms[s] > MAX_GRAD_NORM;
        double diff = fabs(gpu->losses[s] - cpu->losses[s]);
        double norm_diff = fabs(gpu->norms[s] - cpu->norms[s]) / cpu->norms[s];
        if (!(diff <= worst)) worst = diff;
        if (!(norm_diff <= worst_norm)) worst_norm = norm_diff;
        CHECK(diff <= tolerance, "%s step %d: loss %.9f on the GPU, %.9f on the CPU (|diff| %.3g > %.1g)", name,
              s + 1, gpu->losses[s], cpu->losses[s], diff, tolerance);
    }
    double first_norm = fabs(gpu->norms[0] - cpu->norms[0]) / cpu->norms[0];
    printf("%s: loss %.6f -> %.6f (cpu), %.6f -> %.6f (gpu); max |loss diff| %.3g (bound %.1g); grad norm "
           "rel. diff %.3g at step 1, %.3g at most; %d of %d steps clipped\n",
           name, cpu->losses[0], cpu->losses[STEPS - 1], gpu->losses[0], gpu->losses[STEPS - 1], worst, tolerance,
           first_norm, worst_norm, clipped, STEPS);
    CHECK(first_norm <= FIRST_NORM_TOLERANCE, "%s: step-1 gradient norm %.9g on the GPU, %.9g on the CPU", name,
          gpu->norms[0], cpu->norms[0]);
    CHECK(cpu->losses[STEPS - 1] < cpu->losses[0] - 0.1 && gpu->losses[STEPS - 1] < gpu->losses[0] - 0.1,
          "%s: the loss did not fall (cpu %.4f -> %.4f, gpu %.4f -> %.4f)", name, cpu->losses[0],
          cpu->losses[STEPS - 1], gpu->losses[0], gpu->losses[STEPS - 1]);
}

static void check_gpu_memory(const char *name, const run_record *r) {
    printf("%s on cuda: allocator in use %zu, peak %zu, reserved %zu bytes; cudaMalloc calls %llu loaded, %llu after "
           "step 2, %llu at the end; arena chunks %llu after step 2, %llu at the end\n",
           name, r->at_end.device_in_use, r->at_end.device_peak_in_use, r->at_end.device_reserved,
           (unsigned long long)r->loaded.device_malloc_calls, (unsigned long long)r->after_two.device_malloc_calls,
           (unsigned long long)r->at_end.device_malloc_calls, (unsigned long long)r->after_two.chunk_allocations,
           (unsigned long long)r->at_end.chunk_allocations);
    CHECK(r->loaded.device_malloc_calls > 0 && r->loaded.device_in_use > 0, "%s: the allocator counters did not move "
          "when the model was loaded", name);
    CHECK(r->loaded.device_reserved >= r->loaded.device_in_use && r->at_end.device_peak_in_use >= r->at_end.device_in_use,
          "%s: inconsistent allocator counters", name);
    CHECK(r->at_end.device_malloc_calls == r->after_two.device_malloc_calls,
          "%s: %llu cudaMalloc calls after step 2", name,
          (unsigned long long)(r->at_end.device_malloc_calls - r->after_two.device_malloc_calls));
    CHECK(r->at_end.chunk_allocations == r->after_two.chunk_allocations, "%s: the arenas grew after step 2", name);
    CHECK(r->at_end.device_reserved == r->after_two.device_reserved, "%s: reserved bytes grew from %zu to %zu", name,
          r->after_two.device_reserved, r->at_end.device_reserved);
}

static void run_variant(const char *name, bool bf16, double tolerance) {
    static run_record cpu, gpu;
    int cpu_status = train(CT_CPU, bf16, &cpu);
    CHECK(cpu_status == 0, "%s on the CPU: %s", name, ct_last_error());
    int gpu_status = train(CT_CUDA, bf16, &gpu);
    CHECK(gpu_status == 0, "%s on the GPU: %s", name, ct_last_error());
    if (cpu_status || gpu_status) return;
    compare_runs(name, &cpu, &gpu, tolerance);
    check_gpu_memory(name, &gpu);
}

int main(void) {
    if (!ct_device_available(CT_CUDA)) {
        ct_test_note_skip("test_cuda_train", "no usable CUDA device (docs/gpu.md runs the GPU tests on a GPU machine)");
        return 77;
    }
    if (!ct_cuda_backend()) {
        printf("test_cuda_train: the CUDA op table is incomplete, so no tensor can live on the GPU\n");
        return 1;
    }
    run_variant("f32", false, F32_LOSS_TOLERANCE);
    run_variant("bf16 forward, f32 masters", true, BF16_LOSS_TOLERANCE);
    ct_memory_release_all();
    return ct_test_finish("test_cuda_train");
}
#endif
