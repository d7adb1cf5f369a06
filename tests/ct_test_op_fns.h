/* The functions the gradient checks differentiate (autograd/gradcheck.h's ct_gradcheck_fn): one
 * op, or a short chain, of the inputs. Shared by the CPU checks (tests/test_ops.c,
 * tests/test_transformer_ops.c) and the same checks on the GPU (tests/test_cuda_gradcheck.c). */
#ifndef CT_TEST_OP_FNS_H
#define CT_TEST_OP_FNS_H

#include "autograd/ops.h"
#include "autograd/ops_transformer.h"

/* ---- core ops (user: what each says) ---- */

/* user: int[2], whether a and b are transposed */
static inline ct_tensor *fn_matmul(ct_tensor *const *in, int n, void *user) {
    (void)n;
    const int *flags = user;
    return ct_matmul(in[0], in[1], flags[0], flags[1]);
}
static inline ct_tensor *fn_add(ct_tensor *const *in, int n, void *user) {
    (void)n; (void)user;
    return ct_add(in[0], in[1]);
}
static inline ct_tensor *fn_mul(ct_tensor *const *in, int n, void *user) {
    (void)n; (void)user;
    return ct_mul(in[0], in[1]);
}
static inline ct_tensor *fn_scale(ct_tensor *const *in, int n, void *user) {
    (void)n; (void)user;
    return ct_scale(in[0], -1.7);
}
static inline ct_tensor *fn_add_scaled(ct_tensor *const *in, int n, void *user) {
    (void)n; (void)user;
    return ct_add_scaled(in[0], in[1], -1.7);
}
static inline ct_tensor *fn_tanh(ct_tensor *const *in, int n, void *user) {
    (void)n; (void)user;
    return ct_tanh(in[0]);
}
static inline ct_tensor *fn_sum(ct_tensor *const *in, int n, void *user) {
    (void)n; (void)user;
    return ct_sum(in[0]);
}
static inline ct_tensor *fn_mean(ct_tensor *const *in, int n, void *user) {
    (void)n; (void)user;
    return ct_mean(in[0]);
}
static inline ct_tensor *fn_embedding(ct_tensor *const *in, int n, void *user) {
    (void)n; (void)user;
    return ct_embedding(in[0], in[1]);
}
static inline ct_tensor *fn_log_softmax(ct_tensor *const *in, int n, void *user) {
    (void)n; (void)user;
    return ct_log_softmax(in[0]);
}
/* user: a ct_reduction */
static inline ct_tensor *fn_cross_entropy(ct_tensor *const *in, int n, void *user) {
    (void)n;
    return ct_cross_entropy(in[0], in[1], *(const ct_reduction *)user);
}
/* [5, 6] -> rows 1..3 -> [3, 2, 3] -> times itself (the view is used twice) */
static inline ct_tensor *fn_views(ct_tensor *const *in, int n, void *user) {
    (void)n; (void)user;
    ct_tensor *rows = ct_slice_rows(in[0], 1, 3);
    ct_tensor *shaped = ct_reshape(rows, 3, (int64_t[]){3, 2, 3});
    return ct_mul(shaped, shaped);
}

/* ---- transformer ops (user: an op_args) ---- */

typedef struct {
    double eps, theta, p, temperature;
    const float *inv_freq;
    uint64_t seed, stream;
} op_args;

static inline ct_tensor *fn_rms_norm(ct_tensor *const *in, int n, void *user) {
    (void)n;
    return ct_rms_norm(in[0], in[1], ((op_args *)user)->eps);
}
static inline ct_tensor *fn_silu(ct_tensor *const *in, int n, void *user) {
    (void)n; (void)user;
    return ct_silu(in[0]);
}
static inline ct_tensor *fn_swiglu(ct_tensor *const *in, int n, void *user) {
    (void)n; (void)user;
    return ct_swiglu(in[0], in[1]);
}
static inline ct_tensor *fn_rope(ct_tensor *const *in, int n, void *user) {
    (void)n;
    const op_args *a = user;
    return ct_rope(in[0], in[1], a->theta, a->inv_freq);
}
static inline ct_tensor *fn_dropout(ct_tensor *const *in, int n, void *user) {
    (void)n;
    const op_args *a = user;
    return ct_dropout(in[0], a->p, a->seed, a->stream);
}
/* in[2], when given, is the row mask */
static inline ct_tensor *fn_kl(ct_tensor *const *in, int n, void *user) {
    return ct_kl_div(in[0], in[1], n > 2 ? in[2] : NULL, ((op_args *)user)->temperature);
}
/* A small block: norm -> rope -> dropout, as attention inputs see them. */
static inline ct_tensor *fn_chain(ct_tensor *const *in, int n, void *user) {
    (void)n;
    const op_args *a = user;
    return ct_dropout(ct_rope(ct_rms_norm(in[0], in[1], a->eps), in[2], a->theta, NULL), a->p, a->seed, a->stream);
}

#endif
