/* Matrix product. With op(A) [M, K] and op(B) [K, N]:
 *   dA' = dC @ op(B)^T  and  dB' = op(A)^T @ dC,
 * written back through the transpose flags so that no transposed copy is ever made. bf16 (and
 * i8) operands are widened by the GEMM kernel a tile at a time; C has a's dtype, and dC, dA and
 * dB are f32 whatever a and b are stored in. */
#include "core/arena.h"
#include "core/error.h"
#include "autograd/ops.h"
#include "autograd/tape.h"

typedef struct {
    bool transpose_a, transpose_b;
} matmul_ctx;

/* Whether the backward's GEMMs take the output gradient rounded to bf16: after a forward of two
 * bf16 operands (mixed precision) on a backend whose bf16 GEMM runs in hardware, so that both
 * products run bf16 x bf16, as autocast's backward does; otherwise they take the f32 gradient,
 * with bf16 operands widened beside it. */
static bool rounds_grad(const ct_node *node, const ct_backend *be) {
    const ct_tensor *a = node->inputs[0], *b = node->inputs[1];
    bool mixed = a->dtype == CT_BF16 && b->dtype == CT_BF16 && node->output->grad->dtype == CT_F32;
    return mixed && be->bf16_gemm_native && be->bf16_gemm_native();
}

static int matmul_gradients(const ct_node *node, const ct_backend *be, const ct_tensor *dc, ct_tensor *ga,
                            bool fresh_a, ct_tensor *gb, bool fresh_b) {
    const matmul_ctx *ctx = node->ctx;
    ct_tensor *a = node->inputs[0], *b = node->inputs[1];
    if (ga) {
        const double beta = fresh_a ? 0.0 : 1.0;
        if (!ctx->transpose_a) CT_TRY(be->gemm(dc, false, b, !ctx->transpose_b, ga, 1.0, beta));
        else CT_TRY(be->gemm(b, ctx->transpose_b, dc, true, ga, 1.0, beta));
    }
    if (gb) {
        const double beta = fresh_b ? 0.0 : 1.0;
        if (!ctx->transpose_b) CT_TRY(be->gemm(a, !ctx->transpose_a, dc, false, gb, 1.0, beta));
        else CT_TRY(be->gemm(dc, true, a, ctx->transpose_a, gb, 1.0, beta));
    }
    return 0;
}

static int matmul_backward(ct_node *node) {
    ct_tensor *dc = node->output->grad;
    const ct_backend *be = ct_backend_for(dc->device);
    ct_tensor *ga, *gb;
    bool fresh_a, fresh_b; /* a fresh buffer is written (beta 0), not zero-filled and added to */
    CT_TRY(ct_grad_target_fresh(node->inputs[0], &ga, &fresh_a));
    CT_TRY(ct_grad_target_fresh(node->inputs[1], &gb, &fresh_b));
    if (!rounds_grad(node, be)) return matmul_gradients(node, be, dc, ga, fresh_a, gb, fresh_b);
    /* A nested scope: the bf16 copy of the output gradient lives only while its GEMMs run. */
    CT_TRY(ct_scope_begin());
    ct_tensor *rounded = ct_empty_on(dc->device, CT_BF16, dc->ndim, dc->shape);
    int status = rounded ? be->convert(dc, rounded) : -1;
    if (status == 0) status = matmul_gradients(node, be, rounded, ga, fresh_a, gb, fresh_b);
    ct_scope_end();
    return status;
}

ct_tensor *ct_matmul(ct_tensor *a, ct_tensor *b, bool transpose_a, bool transpose_b) {
    if (!a || !b) return NULL;
    bool i8_weight = ct_dtype_is_f32_storage(a->dtype) && b->dtype == CT_I8;
    if (i8_weight && b->requires_grad)
        return ct_fail_shapes("matmul", a, b, "an i8 weight must be frozen (train an f32 copy or an adapter)");
    if (!i8_weight && !ct_check_storage_operands("matmul", a, b)) return NULL;
    if (b->ndim != 2) return ct_fail_shapes("matmul", a, b, "b must be 2-D");
    if (transpose_a && a->ndim != 2) return ct_fail_shapes("matmul", a, b, "a transposed must be 2-D");
    if (a->ndim < 1) return ct_fail_shapes("matmul", a, b, "a must have at least one dimension");
    int64_t k_a = transpose_a ? a->shape[0] : ct_cols(a);
    int64_t k_b = transpose_b ? b->shape[1] : b->shape[0];
    if (k_a != k_b) return ct_fail_shapes("matmul", a, b, "inner dimensions differ");

    int64_t shape[CT_MAX_DIMS];
    int ndim = transpose_a ? 2 : a->ndim;
    for (int i = 0; i < ndim - 1; i++) shape[i] = transpose_a ? a->shape[1] : a->shape[i];
    shape[ndim - 1] = transpose_b ? b->shape[0] : b->shape[1];
    ct_tensor *c = ct_empty_on(a->device, a->dtype, ndim, shape);
    if (!c) return NULL;
    if (ct_backend_for(a->device)->gemm(a, transpose_a, b, transpose_b, c, 1.0, 0.0) < 0) return NULL;

    ct_tensor *inputs[2] = {a, b};
    if (ct_needs_grad(inputs, 2)) {
        matmul_ctx *ctx = ct_arena_alloc(sizeof *ctx);
        if (!ctx) return NULL;
        *ctx = (matmul_ctx){transpose_a, transpose_b};
        if (!ct_record("matmul", matmul_backward, inputs, 2, c, ctx)) return NULL;
    }
    return c;
}
