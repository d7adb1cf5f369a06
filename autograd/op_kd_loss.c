/* The fused, chunked distillation loss (autograd/ops_transformer.h, ct_kd_loss). Both lm_heads
 * run inside the op a chunk of rows at a time: forward computes the chunk's student and teacher
 * logits, keeps CT_KD_STATS f64 numbers per row and drops the logits; backward computes them
 * again, turns them into the chunk's logit gradient and multiplies it straight into the hidden
 * states' and the student head's gradients. So at most one chunk of logits (and of their
 * gradient) exists at any time, for either model: never [rows, vocab]. When every row fits in
 * one chunk and a backward will follow, forward keeps that chunk's logits for it instead: the
 * backward would allocate the same chunk right away (the loss is the first node it visits), so
 * the peak stays the same and one lm_head GEMM per model is saved, with the same bits. */
#include <stdio.h>
#include <string.h>

#include "core/arena.h"
#include "core/error.h"
#include "autograd/ops.h"
#include "autograd/ops_transformer.h"
#include "autograd/tape.h"

typedef struct {
    ct_kd_params params;
    int64_t vocab, chunk;
    ct_tensor *teacher_hidden, *teacher_head, *targets; /* frozen: no gradient */
    ct_tensor *row_stats;                               /* f64 [rows, CT_KD_STATS] */
    ct_tensor *kept_student, *kept_teacher;             /* one chunk's logits from forward, or NULL */
} kd_ctx;

/* Rows [start, start + count) of a 2-D (or 1-D) tensor as a view that records nothing. */
static ct_tensor *rows_view(const ct_tensor *a, int64_t start, int64_t count) {
    ct_tensor *v = ct_arena_calloc(sizeof *v);
    if (!v) return NULL;
    *v = *a;
    v->persistent = false;
    v->grad = NULL;
    v->node = NULL;
    v->requires_grad = false;
    v->name = NULL;
    v->shape[0] = count;
    int64_t row = a->ndim > 1 ? a->shape[1] : 1;
    v->data = (char *)a->data + (size_t)(start * row) * ct_dtype_size(a->dtype);
    v->base = a->base ? a->base : (ct_tensor *)a;
    return v;
}

/* logits [count, vocab] = hidden[start : start + count] head[:vocab]^T, in the hidden's dtype. */
static ct_tensor *chunk_logits(const ct_tensor *hidden, const ct_tensor *head, int64_t start, int64_t count,
                               int64_t vocab) {
    ct_tensor *x = rows_view(hidden, start, count), *w = rows_view(head, 0, vocab);
    ct_tensor *out = ct_empty_on(hidden->device, hidden->dtype, 2, (int64_t[]){count, vocab});
    if (!x || !w || !out) return NULL;
    return ct_backend_for(hidden->device)->gemm(x, false, w, true, out, 1.0, 0.0) < 0 ? NULL : out;
}

/* keep: the op is one chunk and its backward will run; the logits stay in c for it. */
static int forward_chunk(kd_ctx *c, ct_tensor *sh, ct_tensor *sw, int64_t start, int64_t count, bool keep) {
    ct_tensor *s = chunk_logits(sh, sw, start, count, c->vocab);
    ct_tensor *t = c->teacher_hidden ? chunk_logits(c->teacher_hidden, c->teacher_head, start, count, c->vocab) : NULL;
    ct_tensor *y = rows_view(c->targets, start, count), *st = rows_view(c->row_stats, start, count);
    if (!s || (c->teacher_hidden && !t) || !y || !st) return -1;
    if (keep) c->kept_student = s, c->kept_teacher = t;
    return ct_backend_for(sh->device)->kd_rows_forward(s, t, y, &c->params, st);
}

static int backward_chunk(const kd_ctx *c, ct_tensor *sh, ct_tensor *sw, ct_tensor *grad_out, ct_tensor *gh,
                          ct_tensor *gw, int64_t start, int64_t count) {
    const ct_backend *be = ct_backend_for(sh->device);
    ct_tensor *s = c->kept_student, *t = c->kept_teacher;
    if (!s) {
        s = chunk_logits(sh, sw, start, count, c->vocab);
        t = c->teacher_hidden ? chunk_logits(c->teacher_hidden, c->teacher_head, start, count, c->vocab) : NULL;
    }
    ct_tensor *y = rows_view(c->targets, start, count), *st = rows_view(c->row_stats, start, count);
    if (!s || (c->teacher_hidden && !t) || !y || !st) return -1;
    ct_tensor *g = ct_empty_on(s->device, s->dtype, 2, s->shape);
    if (!g) return -1;
    CT_TRY(be->kd_rows_backward(s, t, y, &c->params, st, grad_out, g));
    if (gh) { /* d hidden[rows] += g head[:vocab] */
        ct_tensor *w = rows_view(sw, 0, c->vocab), *dst = rows_view(gh, start, count);
        if (!w || !dst || be->gemm(g, false, w, false, dst, 1.0, 1.0) < 0) return -1;
    }
    if (gw) { /* d head[:vocab] += g^T hidden[rows] */
        ct_tensor *x = rows_view(sh, start, count), *dst = rows_view(gw, 0, c->vocab);
        if (!x || !dst || be->gemm(g, true, x, false, dst, 1.0, 1.0) < 0) return -1;
    }
    return 0;
}

static int kd_backward(ct_node *node) {
    ct_tensor *sh = node->inputs[0], *sw = node->inputs[1], *gh, *gw;
    CT_TRY(ct_grad_target(sh, &gh));
    CT_TRY(ct_grad_target(sw, &gw));
    if (!gh && !gw) return 0;
    const kd_ctx *c = node->ctx;
    int64_t rows = sh->shape[0];
    for (int64_t start = 0; start < rows; start += c->chunk) {
        int64_t count = rows - start < c->chunk ? rows - start : c->chunk;
        if (ct_scope_begin() < 0) return -1;
        int rc = backward_chunk(c, sh, sw, node->output->grad, gh, gw, start, count);
        ct_scope_end();
        CT_TRY(rc);
    }
    return 0;
}

static ct_tensor *check_head(const char *what, ct_tensor *hidden, ct_tensor *head, int64_t vocab) {
    char why[160];
    if (hidden->ndim != 2 || head->ndim != 2 || hidden->shape[1] != head->shape[1])
        snprintf(why, sizeof why, "%s hidden states must be [rows, H] and its lm_head [V, H]", what);
    else if (head->shape[0] < vocab)
        snprintf(why, sizeof why, "the %s lm_head has %lld rows, fewer than the %lld vocabulary columns asked", what,
                 (long long)head->shape[0], (long long)vocab);
    else if (hidden->dtype != CT_F32 && hidden->dtype != CT_F64)
        snprintf(why, sizeof why, "%s hidden states must be f32 or f64", what);
    else
        return hidden;
    return ct_fail_shapes("kd_loss", hidden, head, why);
}

/* A head kept as loaded may be narrower than its f32 hidden states (a frozen bf16 or int8 base, an
 * INT8 model's table): the GEMM widens it a tile at a time. An i8 head cannot take a gradient. */
static int check_head_dtype(const char *what, const ct_tensor *hidden, const ct_tensor *head) {
    bool ok = hidden->dtype == CT_F64 ? head->dtype == CT_F64
                                      : head->dtype == CT_F32 || head->dtype == CT_BF16 || head->dtype == CT_I8;
    if (head->dtype == CT_I8 && head->requires_grad) ok = false;
    if (ok && head->device == hidden->device) return 0;
    char why[160];
    snprintf(why, sizeof why, "the %s head must be f32, bf16 or a frozen i8 (f64 with f64 hidden states), on the "
             "hidden states' device", what);
    return ct_fail_shapes("kd_loss", hidden, head, why), -1;
}

static int check_operands(ct_tensor *sh, ct_tensor *sw, ct_tensor *th, ct_tensor *tw, ct_tensor *targets,
                          int64_t vocab, const ct_kd_options *o) {
    CT_TRY(check_head_dtype("student", sh, sw));
    if (vocab < 1) return ct_fail("kd_loss: vocab = %lld must be >= 1", (long long)vocab);
    if (!check_head("student", sh, sw, vocab)) return -1;
    if (targets->dtype != CT_I32 || ct_numel(targets) != sh->shape[0] || targets->device != sh->device)
        return ct_fail_shapes("kd_loss", sh, targets, "targets must be i32, one per row, on the hidden's device"), -1;
    if (!(o->temperature > 0)) return ct_fail("kd_loss: temperature = %g must be > 0", o->temperature);
    if (!(o->kl_weight >= 0) || !(o->ce_weight >= 0))
        return ct_fail("kd_loss: ce_weight = %g and kl_weight = %g must be >= 0", o->ce_weight, o->kl_weight);
    if (!th || !tw) {
        if (o->kl_weight != 0) return ct_fail("kd_loss: kl_weight = %g needs the teacher's hidden and head", o->kl_weight);
        return 0;
    }
    CT_TRY(check_head_dtype("teacher", th, tw)); /* may stay as loaded (distill.teacher_dtype) */
    if (!check_head("teacher", th, tw, vocab)) return -1;
    if (th->shape[0] != sh->shape[0] || th->device != sh->device || th->dtype != sh->dtype)
        return ct_fail_shapes("kd_loss", sh, th,
                              "student and teacher hidden states need the same rows, dtype and device"), -1;
    return 0;
}

ct_tensor *ct_kd_loss(ct_tensor *student_hidden, ct_tensor *student_head, ct_tensor *teacher_hidden,
                      ct_tensor *teacher_head, ct_tensor *targets, int64_t vocab, const ct_kd_options *o) {
    if (!student_hidden || !student_head || !targets || !o) return NULL;
    if (o->kl_weight == 0) teacher_hidden = teacher_head = NULL; /* CE only: the teacher is not read */
    if (check_operands(student_hidden, student_head, teacher_hidden, teacher_head, targets, vocab, o) < 0) return NULL;
    const ct_backend *be = ct_backend_for(student_hidden->device);
    if (!be->kd_rows_forward) return ct_fail_shapes("kd_loss", student_hidden, student_head, "this device has no kernel");
    int64_t rows = student_hidden->shape[0];
    kd_ctx *c = ct_arena_calloc(sizeof *c);
    ct_tensor *out = ct_empty_on(student_hidden->device, student_hidden->dtype, 0, NULL);
    if (!c || !out) return NULL;
    *c = (kd_ctx){.params = {.ce_weight = o->ce_weight, .kl_weight = o->kl_weight, .temperature = o->temperature,
                             .divergence = o->divergence},
                  .vocab = vocab, .teacher_hidden = teacher_hidden, .teacher_head = teacher_head, .targets = targets};
    int64_t chunk = o->chunk_rows > 0 ? o->chunk_rows : CT_KD_CHUNK_ELEMENTS / vocab;
    c->chunk = chunk < 1 ? 1 : chunk;
    if (!(c->row_stats = ct_empty_on(student_hidden->device, CT_F64, 2, (int64_t[]){rows, CT_KD_STATS}))) return NULL;
    ct_tensor *inputs[2] = {student_hidden, student_head};
    bool backward_follows = ct_needs_grad(inputs, 2);
    if (rows <= c->chunk && backward_follows) { /* one chunk, in the op's scope, kept for backward */
        if (rows > 0 && forward_chunk(c, student_hidden, student_head, 0, rows, true) < 0) return NULL;
    } else {
        for (int64_t start = 0; start < rows; start += c->chunk) {
            int64_t count = rows - start < c->chunk ? rows - start : c->chunk;
            if (ct_scope_begin() < 0) return NULL;
            int rc = forward_chunk(c, student_hidden, student_head, start, count, false);
            ct_scope_end();
            if (rc < 0) return NULL;
        }
    }
    /* The total in row order on the host: rows * CT_KD_STATS numbers, whatever the vocabulary. */
    const ct_tensor *stats = c->row_stats->device == CT_CPU ? c->row_stats : ct_to_device(c->row_stats, CT_CPU);
    if (!stats) return NULL;
    double total = 0;
    for (int64_t r = 0; r < rows; r++) total += ((const double *)stats->data)[CT_KD_STATS * r + 4];
    ct_set(out, 0, total);
    if (backward_follows && !ct_record("kd_loss", kd_backward, inputs, 2, out, c)) return NULL;
    return out;
}
