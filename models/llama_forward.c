/* The forward pass of a LLaMA-family model (the equations are in models/llama.h) and its
 * causal-LM loss. Every step is an autograd op, so backward needs no code here. With
 * gradient_checkpointing each decoder block is one ct_checkpoint segment: its activations are
 * recomputed in backward instead of kept.
 *
 * Every projection, lm_head included, is ct_linear_forward (models/linear.h).
 *
 * Mixed precision (compute_dtype bf16): ct_linear_forward converts each f32 weight to a bf16 copy
 * where it is used, inside the block, so a checkpointed block converts again when it recomputes
 * instead of keeping the copies; the activation entering a projection is converted once
 * (ct_linear_input, shared by q/k/v and by gate/up), and every op
 * after it (projections, RoPE, attention, SwiGLU) then computes in f32 and stores bf16. The
 * residual stream stays f32: a block's branch output (bf16) is added to it, and ct_add keeps its
 * first operand's dtype. The index tensors (positions, rows to gather) are built on the host and
 * copied to the model's device. */
#include <string.h>

#include "core/arena.h"
#include "autograd/checkpoint.h"
#include "core/error.h"
#include "autograd/op_attention.h"
#include "autograd/ops.h"
#include "autograd/ops_transformer.h"
#include "autograd/tape.h"
#include "kernels/device.h"
#include "models/llama.h"
#include "models/linear.h"
#include "models/lora.h"
#include "models/llama_internal.h"
#include "models/param_list.h"

/* What one block needs besides its input; lives in the step's arena until backward is done. */
typedef struct {
    const ct_llama *m;
    int layer;
    ct_tensor *positions;   /* i32 [B, T]: the RoPE positions of the new tokens */
    ct_attention_args attn; /* masking: positions / segments of queries and keys */
    ct_kv_cache *cache;     /* NULL when training */
    double dropout;         /* residual dropout of training (ct_llama_forward_args) */
    uint64_t dropout_seed, step;
    bool training;          /* adapters apply their dropout, keyed on (dropout_seed, step) */
    ct_lora_dropout adapter_dropout;
    ct_dtype compute;       /* CT_F32, or CT_BF16 for the matmuls and the activations */
} block_ctx;

static ct_tensor *split_heads(ct_tensor *x, int64_t heads, int64_t head_dim) {
    if (!x) return NULL;
    return ct_reshape(x, 4, (int64_t[]){x->shape[0], x->shape[1], heads, head_dim});
}

/* A projection of the block: with its adapter's dropout in a training forward. */
static ct_tensor *project(const block_ctx *c, const ct_linear *l, ct_tensor *x) {
    return ct_linear_forward_train(l, x, c->compute, c->training ? &c->adapter_dropout : NULL);
}

static ct_tensor *self_attention(const block_ctx *c, ct_tensor *x) {
    const ct_llama_config *cfg = &c->m->config;
    const ct_llama_layer *L = &c->m->layers[c->layer];
    const int64_t D = cfg->head_dim, B = x->shape[0], T = x->shape[1];
    x = ct_linear_input(x, c->compute); /* once for the three projections */
    ct_tensor *q = split_heads(project(c, &L->q_proj, x), cfg->num_attention_heads, D);
    ct_tensor *k = split_heads(project(c, &L->k_proj, x), cfg->num_key_value_heads, D);
    ct_tensor *v = split_heads(project(c, &L->v_proj, x), cfg->num_key_value_heads, D);
    if (L->q_norm) { /* Qwen3: each head normalized over head_dim before rotation */
        q = ct_rms_norm(q, L->q_norm, cfg->rms_norm_eps);
        k = ct_rms_norm(k, L->k_norm, cfg->rms_norm_eps);
    }
    q = ct_rope(q, c->positions, cfg->rope_theta, c->m->inv_freq);
    k = ct_rope(k, c->positions, cfg->rope_theta, c->m->inv_freq);
    if (!q || !k || !v) return NULL;
    if (c->cache && ct_llama_cache_kv(c->cache, c->layer, T, &k, &v) < 0) return NULL;
    ct_tensor *out = ct_attention(q, k, v, &c->attn);
    out = ct_reshape(out, 3, (int64_t[]){B, T, cfg->num_attention_heads * D});
    return project(c, &L->o_proj, out);
}

static ct_tensor *mlp(const block_ctx *c, const ct_llama_layer *L, ct_tensor *x) {
    x = ct_linear_input(x, c->compute); /* once for gate and up */
    ct_tensor *gate = project(c, &L->gate_proj, x);
    ct_tensor *up = project(c, &L->up_proj, x);
    return project(c, &L->down_proj, ct_swiglu(gate, up));
}

/* Dropout site `which` (0: attention, 1: MLP) of the block; identity when dropout is 0. Dropout
 * takes f32 only, so a bf16 branch is widened first (the residual it joins is f32 anyway). */
static ct_tensor *residual_dropout(const block_ctx *c, ct_tensor *x, uint32_t which) {
    if (c->dropout <= 0) return x;
    if (x && x->dtype == CT_BF16) x = ct_to_dtype(x, CT_F32);
    return ct_dropout(x, c->dropout, c->dropout_seed, ct_dropout_stream(c->step, 2 * (uint32_t)c->layer + which));
}

/* One decoder block: h + attention(norm(h)), then + mlp(norm(.)). A ct_segment_fn. */
static ct_tensor *block(void *ctx, ct_tensor *const *inputs, int n_inputs) {
    (void)n_inputs;
    const block_ctx *c = ctx;
    const ct_llama_layer *L = &c->m->layers[c->layer];
    const double eps = c->m->config.rms_norm_eps;
    ct_tensor *h = inputs[0];
    ct_tensor *x = ct_rms_norm(h, L->input_layernorm, eps);
    h = x ? ct_add(h, residual_dropout(c, self_attention(c, x), 0)) : NULL;
    return ct_add(h, residual_dropout(c, mlp(c, L, ct_rms_norm(h, L->post_attention_layernorm, eps)), 1));
}

/* Every tensor the block reads that can carry a gradient, for ct_checkpoint. */
static int layer_params(const ct_llama_layer *L, ct_param_list *list) {
    CT_TRY(ct_param_list_push(list, L->input_layernorm));
    CT_TRY(ct_linear_params(&L->q_proj, list));
    CT_TRY(ct_linear_params(&L->k_proj, list));
    CT_TRY(ct_linear_params(&L->v_proj, list));
    CT_TRY(ct_param_list_push(list, L->q_norm));
    CT_TRY(ct_param_list_push(list, L->k_norm));
    CT_TRY(ct_linear_params(&L->o_proj, list));
    CT_TRY(ct_param_list_push(list, L->post_attention_layernorm));
    CT_TRY(ct_linear_params(&L->gate_proj, list));
    CT_TRY(ct_linear_params(&L->up_proj, list));
    return ct_linear_params(&L->down_proj, list);
}

static ct_tensor *run_block(const ct_llama *m, block_ctx *c, ct_tensor *h) {
    /* Without a tape nothing reads a block's temporaries later: release them block by block. */
    if (!ct_grad_enabled()) return ct_segment_scoped(block, c, &h, 1);
    if (!m->gradient_checkpointing) return block(c, &h, 1);
    /* ct_checkpoint keeps ctx until backward: give each block its own copy in the arena. */
    block_ctx *saved = ct_arena_alloc(sizeof *saved);
    if (!saved) return NULL;
    *saved = *c;
    ct_param_list params = {0};
    ct_tensor *out = NULL;
    if (layer_params(&m->layers[c->layer], &params) == 0) /* ct_checkpoint copies the list */
        out = ct_checkpoint(block, saved, &h, 1, params.items, params.n);
    ct_param_list_free(&params);
    return out;
}

/* ---- argument checks and the positions the blocks use ---- */

static bool is_ids(const ct_tensor *t, const ct_tensor *like) {
    return t->dtype == CT_I32 && t->ndim == 2 && t->shape[0] == like->shape[0] && t->shape[1] == like->shape[1] &&
           t->device == like->device;
}

static int check_args(const ct_llama *m, ct_tensor *ids, const ct_llama_forward_args *a) {
    char buf[64];
    if (ids->dtype != CT_I32 || ids->ndim != 2 || ids->shape[1] < 1)
        return ct_fail("llama forward: input_ids %s must be i32 [batch, time]", ct_shape_str(ids, buf, sizeof buf));
    const ct_device device = ct_llama_device(m);
    if (ids->device != device)
        return ct_fail("llama forward: input_ids are on %s but the model is on %s; copy them with ct_to_device",
                       ct_device_name(ids->device), ct_device_name(device));
    if (a->cache && device != CT_CPU)
        return ct_fail("llama forward: a KV cache needs the model on the CPU (it is on %s)", ct_device_name(device));
    if (m->compute_dtype != CT_F32 && m->compute_dtype != CT_BF16)
        return ct_fail("llama forward: compute_dtype %s must be f32 or bf16", ct_dtype_name(m->compute_dtype));
    if (a->position_ids && !is_ids(a->position_ids, ids))
        return ct_fail("llama forward: position_ids %s must be i32 of input_ids' shape",
                       ct_shape_str(a->position_ids, buf, sizeof buf));
    if (a->segment_ids && !is_ids(a->segment_ids, ids))
        return ct_fail("llama forward: segment_ids %s must be i32 of input_ids' shape",
                       ct_shape_str(a->segment_ids, buf, sizeof buf));
    if (a->cache) CT_TRY(ct_llama_cache_check(a->cache, &m->config, ids->shape[0], ids->shape[1]));
    return 0;
}

/* A host tensor on `device` (itself on the CPU): index tensors are built on the host. */
static ct_tensor *on_device(ct_tensor *host, ct_device device) {
    if (!host || device == CT_CPU) return host;
    return ct_to_device(host, device);
}

/* 0 .. T-1 in every row, shifted by the cache's length, on the ids' device. */
static ct_tensor *default_positions(const ct_tensor *ids, int64_t start) {
    ct_tensor *p = ct_empty(CT_I32, 2, ids->shape);
    if (!p) return NULL;
    int32_t *d = p->data;
    for (int64_t b = 0; b < ids->shape[0]; b++)
        for (int64_t t = 0; t < ids->shape[1]; t++) d[b * ids->shape[1] + t] = (int32_t)(start + t);
    return on_device(p, ids->device);
}

/* Inside the window every visible key is closer than sliding_window, so full causal attention is
 * exactly the windowed one; past it ctune would silently compute a different model. */
static int check_window(const ct_llama_config *cfg, const ct_tensor *positions) {
    if (cfg->sliding_window <= 0) return 0;
    if (positions->device != CT_CPU && !(positions = ct_to_device(positions, CT_CPU))) return -1;
    const int32_t *p = positions->data;
    for (int64_t i = 0; i < ct_numel(positions); i++)
        if (p[i] >= cfg->sliding_window)
            return ct_fail("llama forward: position %d reaches the sliding window of %lld; sliding-window attention "
                           "is not implemented, keep sequences shorter than the window",
                           (int)p[i], (long long)cfg->sliding_window);
    return 0;
}

static int setup_positions(const ct_llama *m, ct_tensor *ids, const ct_llama_forward_args *a, block_ctx *c) {
    const int64_t start = a->cache ? a->cache->length : 0;
    c->positions = a->position_ids ? a->position_ids : default_positions(ids, start);
    if (!c->positions) return -1;
    CT_TRY(check_window(&m->config, c->positions));
    memset(&c->attn, 0, sizeof c->attn);
    if (a->cache) {
        c->attn.q_pos = c->positions;
        c->attn.q_seg = a->segment_ids;
        return ct_llama_cache_slots(a->cache, c->positions, a->segment_ids, &c->attn.k_pos, &c->attn.k_seg);
    }
    /* Without a cache keys are the queries: a query-side id alone serves both. Positions not
     * given are derived by attention itself (host ids, which every backend accepts), and that is
     * what lets the GPU take cuDNN's fused causal kernel, which handles only plain positions. */
    c->attn.q_pos = a->position_ids;
    c->attn.q_seg = a->segment_ids;
    return 0;
}

/* h [B, T, H] -> h [B, 1, H] at the last position, as a differentiable row gather. */
static ct_tensor *last_positions(ct_tensor *h) {
    const int64_t B = h->shape[0], T = h->shape[1], H = h->shape[2];
    ct_tensor *rows = ct_empty(CT_I32, 2, (int64_t[]){B, 1});
    if (!rows) return NULL;
    for (int64_t b = 0; b < B; b++) ((int32_t *)rows->data)[b] = (int32_t)(b * T + T - 1);
    return ct_embedding(ct_reshape(h, 2, (int64_t[]){B * T, H}), on_device(rows, h->device));
}

ct_tensor *ct_llama_forward(ct_llama *m, ct_tensor *input_ids, const ct_llama_forward_args *args) {
    if (!m || !input_ids) return NULL;
    const ct_llama_forward_args none = {0};
    const ct_llama_forward_args *a = args ? args : &none;
    block_ctx c = {.m = m, .cache = a->cache, .dropout = a->dropout, .dropout_seed = a->dropout_seed, .step = a->step,
                   .training = a->training && !a->cache, .adapter_dropout = {a->dropout_seed, a->step},
                   .compute = a->cache ? CT_F32 : m->compute_dtype};
    if (a->dropout < 0 || a->dropout >= 1 || (a->dropout > 0 && a->cache)) {
        ct_fail("llama forward: dropout %g must be in [0, 1), and 0 with a KV cache", a->dropout);
        return NULL;
    }
    if (check_args(m, input_ids, a) < 0 || setup_positions(m, input_ids, a, &c) < 0) return NULL;
    ct_tensor *h = ct_embedding(m->embed_tokens, input_ids);
    /* The residual stream is f32 whatever dtype a frozen table is held in (model.base_dtype, an
     * INT8 folder's bf16 table). */
    if (h && h->dtype == CT_BF16) h = ct_to_dtype(h, CT_F32);
    for (int l = 0; h && l < m->config.num_hidden_layers; l++) {
        c.layer = l;
        h = run_block(m, &c, h);
    }
    if (!h) return NULL;
    if (a->cache) a->cache->length += input_ids->shape[1];
    if (a->last_token_only) h = last_positions(h);
    if (a->hidden_only) return ct_rms_norm(h, m->norm, m->config.rms_norm_eps);
    /* With tied embeddings this is the embedding's one bf16 copy: the lookup above read the master. */
    return ct_linear_forward(&m->lm_head, ct_rms_norm(h, m->norm, m->config.rms_norm_eps), c.compute);
}

ct_tensor *ct_llama_logits(ct_llama *m, ct_tensor *hidden) {
    return hidden ? ct_linear_forward(&m->lm_head, hidden, m->compute_dtype) : NULL;
}

ct_tensor *ct_llama_shift_labels(ct_tensor *labels) {
    if (!labels) return NULL;
    char buf[64];
    if (labels->dtype != CT_I32 || labels->ndim != 2) {
        ct_fail("llama loss: labels %s must be i32 [batch, time]", ct_shape_str(labels, buf, sizeof buf));
        return NULL;
    }
    /* Shifted on the host; labels on a device go there and back (a small i32 tensor). */
    const ct_tensor *host = labels->device == CT_CPU ? labels : ct_to_device(labels, CT_CPU);
    ct_tensor *out = host ? ct_empty(CT_I32, 2, labels->shape) : NULL;
    if (!out) return NULL;
    const int64_t B = labels->shape[0], T = labels->shape[1];
    const int32_t *src = host->data;
    int32_t *dst = out->data;
    for (int64_t b = 0; b < B; b++) {
        if (T > 1) memcpy(dst + b * T, src + b * T + 1, sizeof(int32_t) * (size_t)(T - 1));
        dst[b * T + T - 1] = -100; /* the last position predicts nothing */
    }
    return on_device(out, labels->device);
}

ct_tensor *ct_llama_loss(ct_tensor *logits, ct_tensor *labels) {
    if (!logits || !labels) return NULL;
    if (logits->ndim != 3 || labels->ndim != 2 || logits->shape[0] != labels->shape[0] ||
        logits->shape[1] != labels->shape[1])
        return ct_fail_shapes("llama loss", logits, labels, "logits must be [B, T, V] and labels [B, T]");
    return ct_cross_entropy(logits, ct_llama_shift_labels(labels), CT_REDUCE_MEAN);
}
