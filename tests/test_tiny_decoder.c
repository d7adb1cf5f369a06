/* A tiny decoder (embedding, 2 GQA blocks, final RMSNorm, lm_head) learns a repeating token
 * pattern in which the next token depends on more than the current one, so attention has to
 * look back: in the period 5 2 5 7 5 3, what follows a 5 is fixed by the token before it.
 * Every row starts at a random phase; the first target of a row is ignored (-100) because a
 * lone 5 is ambiguous. The loss must fall from about ln(vocab) to near zero, with and without
 * gradient checkpointing (which must not change a single loss bit). */
#include <string.h>

#include "core/arena.h"
#include "core/error.h"
#include "autograd/tape.h"
#include "tests/ct_test.h"
#include "tests/ct_test_block.h"
#include "train/optim.h"

enum { VOCAB = 11, DIM = 32, FFN = 64, HEADS = 4, KV_HEADS = 2, BATCH = 4, SEQ = 19, STEPS = 150 };

static const int32_t pattern[] = {5, 2, 5, 7, 5, 3};

typedef struct {
    test_block blocks[2];
    ct_tensor *embedding, *final_norm, *lm_head;
    ct_tensor *params[3 + 2 * BLOCK_N_PARAMS];
    int n_params;
} decoder;

static void decoder_init(decoder *d, ct_rng *rng) {
    memset(d, 0, sizeof *d);
    d->embedding = test_block_param("embedding", VOCAB, DIM, rng, 1.0);
    d->final_norm = test_block_param("final_norm", DIM, 0, rng, 0);
    d->lm_head = test_block_param("lm_head", VOCAB, DIM, rng, 1 / sqrt((double)DIM));
    d->params[d->n_params++] = d->embedding;
    d->params[d->n_params++] = d->final_norm;
    d->params[d->n_params++] = d->lm_head;
    for (int i = 0; i < 2; i++) {
        test_block_init(&d->blocks[i], DIM, FFN, HEADS, KV_HEADS, (uint32_t)i, rng);
        for (int j = 0; j < BLOCK_N_PARAMS; j++) d->params[d->n_params++] = d->blocks[i].p[j];
    }
}

static void decoder_free(decoder *d) {
    ct_release_grad(d->params, d->n_params);
    for (int i = 0; i < d->n_params; i++) ct_tensor_free(d->params[i]);
}

/* One batch of pattern rows at random phases: ids [B, T] and next-token targets [B, T]. */
static void make_batch(ct_rng *rng, ct_tensor *ids, ct_tensor *targets) {
    int32_t *x = ids->data, *y = targets->data;
    int period = (int)(sizeof pattern / sizeof *pattern);
    for (int b = 0; b < BATCH; b++) {
        int phase = (int)ct_rng_below(rng, (uint64_t)period);
        for (int t = 0; t < SEQ; t++) {
            x[b * SEQ + t] = pattern[(phase + t) % period];
            y[b * SEQ + t] = t == 0 ? -100 : pattern[(phase + t + 1) % period];
        }
    }
}

static ct_tensor *decoder_loss(decoder *d, ct_tensor *ids, ct_tensor *targets, bool checkpointed) {
    ct_tensor *positions = test_block_positions(BATCH, SEQ);
    ct_tensor *x = ct_embedding(d->embedding, ids);
    for (int i = 0; i < 2; i++) {
        d->blocks[i].positions = positions;
        x = test_block_apply(&d->blocks[i], x, checkpointed);
    }
    ct_tensor *logits = ct_matmul(ct_rms_norm(x, d->final_norm, 1e-5), d->lm_head, false, true);
    return ct_cross_entropy(logits, targets, CT_REDUCE_MEAN);
}

/* Trains a fresh decoder; the losses of every step go into losses[STEPS]. */
static int train(bool checkpointed, double *losses) {
    ct_rng init, data;
    ct_rng_seed(&init, 11);
    ct_rng_seed(&data, 12);
    decoder d;
    decoder_init(&d, &init);
    ct_adamw *opt = ct_adamw_new(d.params, d.n_params,
                                 (ct_adamw_hparams){.lr = 1e-2, .beta1 = 0.9, .beta2 = 0.99, .eps = 1e-8, .weight_decay = 0});
    int status = opt ? 0 : -1;
    ct_tensor *ids = ct_tensor_new(CT_I32, 2, (int64_t[]){BATCH, SEQ}, "ids");
    ct_tensor *targets = ct_tensor_new(CT_I32, 2, (int64_t[]){BATCH, SEQ}, "targets");
    for (int step = 0; step < STEPS && status == 0; step++) {
        make_batch(&data, ids, targets);
        ct_zero_grad(d.params, d.n_params);
        ct_scope_begin();
        for (int i = 0; i < 2; i++) d.blocks[i].step = (uint64_t)step;
        ct_tensor *loss = decoder_loss(&d, ids, targets, checkpointed);
        status = loss ? ct_backward(loss) : -1;
        if (status == 0) losses[step] = ct_get(loss, 0);
        ct_scope_end();
        if (status == 0) status = ct_adamw_step(opt);
    }
    ct_tensor_free(ids);
    ct_tensor_free(targets);
    ct_adamw_free(opt);
    decoder_free(&d);
    return status;
}

int main(void) {
    double plain[STEPS], ckpt[STEPS];
    CHECK(train(false, plain) == 0, "training: %s", ct_last_error());
    CHECK(train(true, ckpt) == 0, "training with checkpointing: %s", ct_last_error());
    double last = 0;
    for (int i = STEPS - 10; i < STEPS; i++) last += plain[i] / 10;
    printf("tiny decoder: loss %.4f at step 1, %.5f over the last 10 of %d steps (ln %d = %.3f)\n", plain[0], last,
           STEPS, VOCAB, log(VOCAB));
    CHECK(plain[0] > 1.5, "the first loss %.3f is already low: the task is not being learned", plain[0]);
    CHECK(last < 0.02, "the loss only reached %.5f", last);
    CHECK(memcmp(plain, ckpt, sizeof plain) == 0, "checkpointing changed the losses");
    ct_memory_release_all();
    return ct_test_finish("test_tiny_decoder");
}
