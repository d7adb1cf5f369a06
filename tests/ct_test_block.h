/* A LLaMA-style decoder block built from the autograd ops, for the tests of gradient
 * checkpointing and of a tiny decoder (the real model lives in models/; this one is small on
 * purpose and has dropout, which the models of real checkpoints do not use):
 *   h = x + dropout(o_proj(attention(rope(q_proj(norm1(x))), rope(k_proj(.)), v_proj(.))))
 *   y = h + dropout(down(swiglu(gate(norm2(h)), up(norm2(h)))))
 * Weights are HF-layout [out, in]; q has n_heads heads, k and v n_kv_heads (GQA). */
#ifndef CT_TEST_BLOCK_H
#define CT_TEST_BLOCK_H

#include "autograd/checkpoint.h"
#include "autograd/op_attention.h"
#include "autograd/ops.h"
#include "autograd/ops_transformer.h"
#include "core/rng.h"
#include "kernels/device.h"

enum { BLOCK_NORM1, BLOCK_Q, BLOCK_K, BLOCK_V, BLOCK_O, BLOCK_NORM2, BLOCK_GATE, BLOCK_UP, BLOCK_DOWN, BLOCK_N_PARAMS };

typedef struct {
    int64_t dim, ffn, n_heads, n_kv_heads, head_dim;
    ct_tensor *p[BLOCK_N_PARAMS];
    ct_tensor *positions; /* i32 [B, T], set per batch */
    double dropout;
    uint64_t seed, step;
    uint32_t index;       /* the block's place in the stack: its dropout sites are 2*index, 2*index+1 */
} test_block;

static inline ct_tensor *test_block_param(const char *name, int64_t rows, int64_t cols, ct_rng *rng, double std) {
    ct_tensor *t = cols ? ct_tensor_new(CT_F32, 2, (int64_t[]){rows, cols}, name)
                        : ct_tensor_new(CT_F32, 1, (int64_t[]){rows}, name);
    if (cols) ct_fill_normal(t, rng, 0, std);
    else ct_fill_uniform(t, rng, 0.8, 1.2);
    t->requires_grad = true;
    return t;
}

static inline void test_block_init(test_block *b, int64_t dim, int64_t ffn, int64_t n_heads, int64_t n_kv_heads,
                                   uint32_t index, ct_rng *rng) {
    int64_t hd = dim / n_heads, kv = n_kv_heads * hd;
    double std = 1 / sqrt((double)dim);
    *b = (test_block){.dim = dim, .ffn = ffn, .n_heads = n_heads, .n_kv_heads = n_kv_heads, .head_dim = hd,
                      .index = index};
    b->p[BLOCK_NORM1] = test_block_param("norm1", dim, 0, rng, 0);
    b->p[BLOCK_Q] = test_block_param("q", dim, dim, rng, std);
    b->p[BLOCK_K] = test_block_param("k", kv, dim, rng, std);
    b->p[BLOCK_V] = test_block_param("v", kv, dim, rng, std);
    b->p[BLOCK_O] = test_block_param("o", dim, dim, rng, std);
    b->p[BLOCK_NORM2] = test_block_param("norm2", dim, 0, rng, 0);
    b->p[BLOCK_GATE] = test_block_param("gate", ffn, dim, rng, std);
    b->p[BLOCK_UP] = test_block_param("up", ffn, dim, rng, std);
    b->p[BLOCK_DOWN] = test_block_param("down", dim, ffn, rng, 1 / sqrt((double)ffn));
}

static inline void test_block_free(test_block *b) {
    ct_release_grad(b->p, BLOCK_N_PARAMS);
    for (int i = 0; i < BLOCK_N_PARAMS; i++) ct_tensor_free(b->p[i]);
}

static inline ct_tensor *test_block_heads(ct_tensor *x, int64_t heads, int64_t head_dim) {
    if (!x) return NULL;
    return ct_reshape(x, 4, (int64_t[]){x->shape[0], x->shape[1], heads, head_dim});
}

/* ct_segment_fn: inputs[0] = x [B, T, dim]. */
static inline ct_tensor *test_block_forward(void *ctx, ct_tensor *const *inputs, int n_inputs) {
    (void)n_inputs;
    test_block *b = ctx;
    ct_tensor *x = inputs[0], **p = b->p;
    int64_t B = x->shape[0], T = x->shape[1];
    ct_tensor *h = ct_rms_norm(x, p[BLOCK_NORM1], 1e-5);
    ct_tensor *q = test_block_heads(ct_matmul(h, p[BLOCK_Q], false, true), b->n_heads, b->head_dim);
    ct_tensor *k = test_block_heads(ct_matmul(h, p[BLOCK_K], false, true), b->n_kv_heads, b->head_dim);
    ct_tensor *v = test_block_heads(ct_matmul(h, p[BLOCK_V], false, true), b->n_kv_heads, b->head_dim);
    q = ct_rope(q, b->positions, 10000, NULL);
    k = ct_rope(k, b->positions, 10000, NULL);
    ct_attention_args args = {.q_pos = b->positions};
    ct_tensor *a = ct_attention(q, k, v, &args);
    if (a) a = ct_reshape(a, 3, (int64_t[]){B, T, b->dim});
    ct_tensor *o = ct_matmul(a, p[BLOCK_O], false, true);
    /* dropout takes f32/f64 only; p = 0 is the identity, so a bf16 forward skips it */
    if (b->dropout > 0) o = ct_dropout(o, b->dropout, b->seed, ct_dropout_stream(b->step, 2 * b->index));
    ct_tensor *mid = ct_add(x, o);
    ct_tensor *h2 = ct_rms_norm(mid, p[BLOCK_NORM2], 1e-5);
    ct_tensor *s = ct_swiglu(ct_matmul(h2, p[BLOCK_GATE], false, true), ct_matmul(h2, p[BLOCK_UP], false, true));
    ct_tensor *d = ct_matmul(s, p[BLOCK_DOWN], false, true);
    if (b->dropout > 0) d = ct_dropout(d, b->dropout, b->seed, ct_dropout_stream(b->step, 2 * b->index + 1));
    return ct_add(mid, d);
}

/* The block, checkpointed or not. */
static inline ct_tensor *test_block_apply(test_block *b, ct_tensor *x, bool checkpointed) {
    if (!checkpointed) return test_block_forward(b, &x, 1);
    return ct_checkpoint(test_block_forward, b, &x, 1, b->p, BLOCK_N_PARAMS);
}

/* Positions 0..T-1 in every row. */
static inline ct_tensor *test_block_positions(int64_t B, int64_t T) {
    ct_tensor *pos = ct_empty(CT_I32, 2, (int64_t[]){B, T});
    int32_t *d = pos->data;
    for (int64_t i = 0; i < B * T; i++) d[i] = (int32_t)(i % T);
    return pos;
}

/* The same on a device (written on the host, then copied); NULL with ct_last_error on failure. */
static inline ct_tensor *test_block_positions_on(ct_device device, int64_t B, int64_t T) {
    ct_tensor *pos = test_block_positions(B, T);
    return device == CT_CPU || !pos ? pos : ct_to_device(pos, device);
}

/* A persistent copy of a parameter on a device (same dtype, values, name and requires_grad):
 * how a test puts the CPU model's initial weights on the GPU. NULL with ct_last_error. */
static inline ct_tensor *test_param_copy_on(ct_device device, const ct_tensor *src) {
    ct_tensor *t = ct_tensor_new_on(device, src->dtype, src->ndim, src->shape, src->name);
    if (!t) return NULL;
    if (ct_device_copy(device, t->data, src->device, src->data, ct_nbytes(src)) < 0) {
        ct_tensor_free(t);
        return NULL;
    }
    t->requires_grad = src->requires_grad;
    return t;
}

/* A copy of block src whose parameters live on device (persistent; test_block_free frees them). */
static inline int test_block_copy_on(ct_device device, const test_block *src, test_block *dst) {
    *dst = *src;
    for (int i = 0; i < BLOCK_N_PARAMS; i++) dst->p[i] = NULL;
    for (int i = 0; i < BLOCK_N_PARAMS; i++)
        if (!(dst->p[i] = test_param_copy_on(device, src->p[i]))) return -1;
    dst->positions = NULL;
    return 0;
}

#endif
