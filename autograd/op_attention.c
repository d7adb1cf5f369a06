/* Fused causal attention: operand checks, position resolution and the tape node. The kernels
 * (kernels/cpu/cpu_attention.c) do the blocked online-softmax work; backward recomputes scores
 * from q, k, v and the saved row logsumexp, so nothing of size T x S is kept between passes.
 * bf16 q, k, v give a bf16 output; the row logsumexp and the gradients are f32. */
#include "autograd/op_attention.h"

#include <math.h>
#include <stdio.h>

#include "core/arena.h"
#include "core/error.h"
#include "autograd/ops.h"
#include "autograd/tape.h"

#define OP "attention"

typedef struct {
    ct_tensor *q_pos, *k_pos, *q_seg, *k_seg; /* resolved: positions always set */
    ct_tensor *lse;                           /* [B, Hq, T] */
    double scale;
} attention_ctx;

static int attention_backward(ct_node *node) {
    const attention_ctx *ctx = node->ctx;
    ct_tensor *q = node->inputs[0], *k = node->inputs[1], *v = node->inputs[2];
    ct_tensor *gq, *gk, *gv;
    CT_TRY(ct_grad_target(q, &gq));
    CT_TRY(ct_grad_target(k, &gk));
    CT_TRY(ct_grad_target(v, &gv));
    if (!gq && !gk && !gv) return 0;
    return ct_backend_for(q->device)->attention_backward(q, k, v, ctx->q_pos, ctx->k_pos, ctx->q_seg, ctx->k_seg,
                                                         ctx->scale, node->output, ctx->lse, node->output->grad,
                                                         gq, gk, gv);
}

/* An i32 [B, n] tensor on `device` (ids are read by the host side of every backend today). */
static bool check_ids(const char *what, const ct_tensor *ids, int64_t batch, int64_t n, const ct_tensor *q) {
    char sq[96], si[96];
    if (ids->dtype != CT_I32 || ids->ndim != 2 || ids->shape[0] != batch || ids->shape[1] != n) {
        ct_fail(OP ": q %s: %s %s must be i32 [%lld, %lld]", ct_shape_str(q, sq, sizeof sq), what,
                ct_shape_str(ids, si, sizeof si), (long long)batch, (long long)n);
        return false;
    }
    if (ids->device != q->device) {
        ct_fail(OP ": q %s: %s %s is on another device", ct_shape_str(q, sq, sizeof sq), what,
                ct_shape_str(ids, si, sizeof si));
        return false;
    }
    return true;
}

/* q, k and v share one dtype: f32, f64, or bf16 (widened to f32 by the kernels). */
static bool check_dtypes(const ct_tensor *q, const ct_tensor *k, const ct_tensor *v) {
    if (q->dtype == CT_BF16 && k->dtype == CT_BF16 && v->dtype == CT_BF16) {
        if (q->device == k->device && k->device == v->device) return true;
        ct_fail_shapes(OP, q, k, "operands are on different devices");
        return false;
    }
    if (q->dtype == CT_BF16 || k->dtype == CT_BF16 || v->dtype == CT_BF16) {
        ct_fail_shapes(OP, q, q->dtype == k->dtype ? v : k, "q, k and v must share one dtype (f32, f64 or bf16)");
        return false;
    }
    return ct_check_operands(OP, q, k) && ct_check_operands(OP, k, v);
}

static bool check_qkv(const ct_tensor *q, const ct_tensor *k, const ct_tensor *v) {
    if (!check_dtypes(q, k, v)) return false;
    if (q->ndim != 4 || k->ndim != 4 || v->ndim != 4) {
        ct_fail_shapes(OP, q, k, "q, k and v must be 4-D: q [B, T, Hq, D], k and v [B, S, Hkv, D]");
        return false;
    }
    if (!ct_same_shape(k, v)) {
        ct_fail_shapes(OP, k, v, "k and v must have the same shape [B, S, Hkv, D]");
        return false;
    }
    if (q->shape[0] != k->shape[0]) {
        ct_fail_shapes(OP, q, k, "batch sizes differ");
        return false;
    }
    if (q->shape[3] != k->shape[3]) {
        ct_fail_shapes(OP, q, k, "head dimensions D differ");
        return false;
    }
    if (k->shape[2] < 1 || q->shape[2] % k->shape[2] != 0) {
        char why[128];
        snprintf(why, sizeof why, "query heads (%lld) must be a multiple of kv heads (%lld)", (long long)q->shape[2],
                 (long long)k->shape[2]);
        ct_fail_shapes(OP, q, k, why);
        return false;
    }
    return true;
}

/* Positions 0..n-1 shifted by offset, for every row. */
static ct_tensor *position_range(int64_t batch, int64_t n, int64_t offset) {
    ct_tensor *t = ct_empty(CT_I32, 2, (int64_t[]){batch, n});
    if (!t) return NULL;
    int32_t *p = t->data;
    for (int64_t b = 0; b < batch; b++)
        for (int64_t i = 0; i < n; i++) p[b * n + i] = (int32_t)(offset + i);
    return t;
}

/* Fills ctx's positions and segments from args, checking every id tensor. */
static bool resolve_mask(const ct_tensor *q, const ct_tensor *k, const ct_attention_args *args, attention_ctx *ctx) {
    int64_t batch = q->shape[0], T = q->shape[1], S = k->shape[1];
    char sq[96], sk[96];
    ct_attention_args none = {.kv_offset = S - T};
    if (!args) args = &none;
    ctx->q_pos = args->q_pos;
    ctx->k_pos = args->k_pos;
    ctx->q_seg = args->q_seg;
    ctx->k_seg = args->k_seg;
    /* Self-attention (S == T): an id tensor given for the queries describes the keys too. */
    if (S == T && ctx->q_pos && !ctx->k_pos) ctx->k_pos = ctx->q_pos;
    if (S == T && ctx->q_seg && !ctx->k_seg) ctx->k_seg = ctx->q_seg;
    if (!ctx->q_pos != !ctx->k_pos || !ctx->q_seg != !ctx->k_seg) {
        ct_fail(OP ": q %s and k %s: give position ids (and segment ids) for both queries and keys",
                ct_shape_str(q, sq, sizeof sq), ct_shape_str(k, sk, sizeof sk));
        return false;
    }
    if (ctx->q_pos) {
        if (!check_ids("q_pos", ctx->q_pos, batch, T, q) || !check_ids("k_pos", ctx->k_pos, batch, S, q)) return false;
    } else {
        if (args->kv_offset < 0 || args->kv_offset + T != S) {
            ct_fail(OP ": q %s and k %s: derived positions need S == kv_offset + T (kv_offset %lld)",
                    ct_shape_str(q, sq, sizeof sq), ct_shape_str(k, sk, sizeof sk), (long long)args->kv_offset);
            return false;
        }
        if (S > INT32_MAX) {
            ct_fail(OP ": k %s: more keys than i32 positions can number", ct_shape_str(k, sk, sizeof sk));
            return false;
        }
        ctx->q_pos = position_range(batch, T, args->kv_offset);
        ctx->k_pos = position_range(batch, S, 0);
        if (!ctx->q_pos || !ctx->k_pos) return false;
    }
    if (ctx->q_seg && (!check_ids("q_seg", ctx->q_seg, batch, T, q) || !check_ids("k_seg", ctx->k_seg, batch, S, q)))
        return false;
    ctx->scale = args->scale != 0 ? args->scale : 1.0 / sqrt((double)q->shape[3]);
    return true;
}

ct_tensor *ct_attention(ct_tensor *q, ct_tensor *k, ct_tensor *v, const ct_attention_args *args) {
    if (!q || !k || !v) return NULL;
    if (!check_qkv(q, k, v)) return NULL;
    const ct_backend *be = ct_backend_for(q->device);
    if (!be->attention_forward || !be->attention_backward) {
        ct_fail_shapes(OP, q, k, "this device's backend has no attention kernel");
        return NULL;
    }
    attention_ctx *ctx = ct_arena_alloc(sizeof *ctx);
    if (!ctx || !resolve_mask(q, k, args, ctx)) return NULL;

    int64_t lse_shape[3] = {q->shape[0], q->shape[2], q->shape[1]};
    ct_tensor *out = ct_empty_like(q);
    ctx->lse = ct_empty_on(q->device, q->dtype == CT_F64 ? CT_F64 : CT_F32, 3, lse_shape);
    if (!out || !ctx->lse) return NULL;
    if (be->attention_forward(q, k, v, ctx->q_pos, ctx->k_pos, ctx->q_seg, ctx->k_seg, ctx->scale, out, ctx->lse) < 0)
        return NULL;

    ct_tensor *inputs[3] = {q, k, v};
    if (ct_needs_grad(inputs, 3) && !ct_record(OP, attention_backward, inputs, 3, out, ctx)) return NULL;
    return out;
}
