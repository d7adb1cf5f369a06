/* The fused attention op: gradient checks (causal MHA, GQA, packed sequences, KV-cache offset,
 * several blocks), values against a naive full-score-matrix reference in double precision,
 * proof that masks hold (keys of another sequence or of the future change nothing), results
 * that do not depend on the thread count, and the errors bad inputs must produce. */
#include <omp.h>
#include <string.h>

#include "core/arena.h"
#include "core/error.h"
#include "autograd/gradcheck.h"
#include "autograd/op_attention.h"
#include "autograd/ops.h"
#include "core/rng.h"
#include "autograd/tape.h"
#include "tests/ct_test.h"
#include "tests/ct_test_gradcheck.h"


static ct_rng rng;

static ct_tensor *rand_in(int ndim, const int64_t *shape) { return ct_random_input(&rng, ndim, shape); }

static ct_tensor *ids(int64_t rows, int64_t n, const int32_t *values) {
    ct_tensor *t = ct_empty(CT_I32, 2, (int64_t[]){rows, n});
    memcpy(t->data, values, sizeof(int32_t) * (size_t)(rows * n));
    return t;
}

static ct_tensor *fn_attention(ct_tensor *const *in, int n, void *user) {
    (void)n;
    return ct_attention(in[0], in[1], in[2], user);
}

static void expect_attention_gradcheck(const char *name, ct_tensor *q, ct_tensor *k, ct_tensor *v,
                                       ct_attention_args *args) {
    expect_gradcheck(name, fn_attention, (ct_tensor *[]){q, k, v}, 3, args);
}

/* Naive attention in double: the full score matrix of each (row, head), masked, softmaxed.
 * Positions default to the KV-cache layout; a query that sees nothing gets zeros. */
static ct_tensor *reference(const ct_tensor *q, const ct_tensor *k, const ct_tensor *v, const ct_attention_args *a) {
    int64_t B = q->shape[0], T = q->shape[1], Hq = q->shape[2], D = q->shape[3], S = k->shape[1], Hkv = k->shape[2];
    ct_tensor *out = ct_zeros(CT_F64, 4, q->shape);
    double *score = ct_arena_alloc(sizeof(double) * (size_t)S);
    double scale = a && a->scale != 0 ? a->scale : 1 / sqrt((double)D);
    int64_t offset = a ? a->kv_offset : S - T;
    const ct_tensor *kp = a && a->k_pos ? a->k_pos : a ? a->q_pos : NULL;
    const ct_tensor *ks = a && a->k_seg ? a->k_seg : a ? a->q_seg : NULL;
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < Hq; h++)
            for (int64_t t = 0; t < T; t++) {
                int64_t hk = h / (Hq / Hkv);
                double qp = a && a->q_pos ? ct_get(a->q_pos, b * T + t) : (double)(offset + t), mx = -INFINITY;
                for (int64_t s = 0; s < S; s++) {
                    double kpos = kp ? ct_get(kp, b * S + s) : (double)s;
                    bool seen = kpos <= qp && (!ks || ct_get(ks, b * S + s) == ct_get(a->q_seg, b * T + t));
                    double dot = 0;
                    for (int64_t d = 0; d < D; d++)
                        dot += ct_get(q, ((b * T + t) * Hq + h) * D + d) * ct_get(k, ((b * S + s) * Hkv + hk) * D + d);
                    score[s] = seen ? dot * scale : -INFINITY;
                    mx = fmax(mx, score[s]);
                }
                if (mx == -INFINITY) continue;
                double total = 0;
                for (int64_t s = 0; s < S; s++) total += score[s] = exp(score[s] - mx);
                for (int64_t s = 0; s < S; s++)
                    for (int64_t d = 0; d < D; d++) {
                        int64_t o = ((b * T + t) * Hq + h) * D + d;
                        ct_set(out, o, ct_get(out, o) + score[s] / total * ct_get(v, ((b * S + s) * Hkv + hk) * D + d));
                    }
            }
    return out;
}

static ct_tensor *to_f32(const ct_tensor *t) {
    ct_tensor *c = ct_empty(CT_F32, t->ndim, t->shape);
    ct_copy(c, t);
    return c;
}

static void expect_matches_reference(const char *name, ct_tensor *q, ct_tensor *k, ct_tensor *v, ct_attention_args *a) {
    ct_tensor *expected = reference(q, k, v, a);
    double e64 = ct_relative_error(ct_attention(q, k, v, a), expected);
    double e32 = ct_relative_error(ct_attention(to_f32(q), to_f32(k), to_f32(v), a), expected);
    CHECK(e64 < 1e-12, "%s: f64 output differs from the reference by %.3g", name, e64);
    CHECK(e32 < 1e-5, "%s: f32 output differs from the reference by %.3g", name, e32);
    printf("%-36s reference: f64 %.2e  f32 %.2e\n", name, e64, e32);
}

/* Packed rows: three sequences in row 0 (positions restart at 0), two in row 1. */
static const int32_t packed_seg[2 * 9] = {0, 0, 0, 1, 1, 1, 1, 2, 2, 5, 5, 5, 5, 5, 7, 7, 7, 7};
static const int32_t packed_pos[2 * 9] = {0, 1, 2, 0, 1, 2, 3, 0, 1, 0, 1, 2, 3, 4, 0, 1, 2, 3};

static void check_gradients(void) {
    ct_tensor *q = rand_in(4, (int64_t[]){2, 7, 3, 5}), *k = rand_in(4, (int64_t[]){2, 7, 3, 5});
    ct_tensor *v = rand_in(4, (int64_t[]){2, 7, 3, 5});
    expect_attention_gradcheck("attention causal MHA", q, k, v, NULL);
    expect_matches_reference("attention causal MHA", q, k, v, NULL);

    ct_tensor *q6 = rand_in(4, (int64_t[]){2, 7, 6, 5});
    ct_tensor *k2 = rand_in(4, (int64_t[]){2, 7, 2, 5}), *v2 = rand_in(4, (int64_t[]){2, 7, 2, 5});
    ct_attention_args scaled = {.scale = 0.3};
    expect_attention_gradcheck("attention GQA 6/2", q6, k2, v2, NULL);
    expect_attention_gradcheck("attention GQA 6/2, scale 0.3", q6, k2, v2, &scaled);
    expect_matches_reference("attention GQA 6/2", q6, k2, v2, NULL);
    expect_matches_reference("attention GQA 6/2, scale 0.3", q6, k2, v2, &scaled);

    ct_attention_args packed = {.q_pos = ids(2, 9, packed_pos), .q_seg = ids(2, 9, packed_seg)};
    ct_tensor *qp = rand_in(4, (int64_t[]){2, 9, 4, 3});
    ct_tensor *kp = rand_in(4, (int64_t[]){2, 9, 2, 3}), *vp = rand_in(4, (int64_t[]){2, 9, 2, 3});
    expect_attention_gradcheck("attention packed GQA 4/2", qp, kp, vp, &packed);
    expect_matches_reference("attention packed GQA 4/2", qp, kp, vp, &packed);

    ct_attention_args cache = {.kv_offset = 5};
    ct_tensor *qc = rand_in(4, (int64_t[]){2, 3, 4, 5});
    ct_tensor *kc = rand_in(4, (int64_t[]){2, 8, 2, 5}), *vc = rand_in(4, (int64_t[]){2, 8, 2, 5});
    expect_attention_gradcheck("attention KV cache T=3 S=8", qc, kc, vc, &cache);
    expect_matches_reference("attention KV cache T=3 S=8", qc, kc, vc, &cache);

    /* More than one block each way, one (batch, kv head) pair: key ranges and dQ buffers. */
    ct_tensor *ql = rand_in(4, (int64_t[]){1, 67, 2, 3});
    ct_tensor *kl = rand_in(4, (int64_t[]){1, 67, 1, 3}), *vl = rand_in(4, (int64_t[]){1, 67, 1, 3});
    expect_attention_gradcheck("attention T=67 MQA 2/1 (two blocks)", ql, kl, vl, NULL);
}

/* Larger values against the reference: many blocks, packed rows whose sequences straddle block
 * boundaries, and a cache offset that is not a multiple of the block. */
static void check_large_values(void) {
    enum { T = 150 };
    int32_t seg[2 * T], pos[2 * T];
    for (int b = 0; b < 2; b++)
        for (int t = 0, start = 0; t < T; t++) {
            int id = b == 0 ? t / 50 : (t < 7 ? 0 : t < 100 ? 1 : 2);
            if (t > 0 && id != seg[b * T + t - 1]) start = t;
            seg[b * T + t] = id;
            pos[b * T + t] = t - start;
        }
    ct_attention_args packed = {.q_pos = ids(2, T, pos), .q_seg = ids(2, T, seg)};
    ct_tensor *q = rand_in(4, (int64_t[]){2, T, 4, 16});
    ct_tensor *k = rand_in(4, (int64_t[]){2, T, 2, 16}), *v = rand_in(4, (int64_t[]){2, T, 2, 16});
    expect_matches_reference("attention T=150 causal GQA", q, k, v, NULL);
    expect_matches_reference("attention T=150 packed GQA", q, k, v, &packed);
    ct_attention_args cache = {.kv_offset = 70};
    ct_tensor *qc = rand_in(4, (int64_t[]){1, 80, 4, 16});
    expect_matches_reference("attention KV cache T=80 S=150", qc, ct_slice_rows(k, 0, 1), ct_slice_rows(v, 0, 1),
                             &cache);
}

/* Changing keys and values a query must not see leaves its output bit for bit unchanged. */
static void check_masks_hold(void) {
    ct_attention_args packed = {.q_pos = ids(2, 9, packed_pos), .q_seg = ids(2, 9, packed_seg)};
    ct_tensor *q = rand_in(4, (int64_t[]){2, 9, 2, 3});
    ct_tensor *k = rand_in(4, (int64_t[]){2, 9, 2, 3}), *v = rand_in(4, (int64_t[]){2, 9, 2, 3});
    ct_tensor *before = ct_attention(q, k, v, &packed);
    /* Key 4 of row 0 (segment 1) changes; segments 0 and 2 of row 0 and all of row 1 must not. */
    for (int d = 0; d < 6; d++) {
        ct_set(k, 4 * 6 + d, 10.0 + d);
        ct_set(v, 4 * 6 + d, -7.0 * d);
    }
    ct_tensor *after = ct_attention(q, k, v, &packed);
    int changed_other = 0, changed_own = 0;
    for (int64_t i = 0; i < ct_numel(q); i++) {
        int64_t b = i / (9 * 6), t = (i / 6) % 9;
        bool same = ct_get(before, i) == ct_get(after, i);
        bool sees = b == 0 && packed_seg[t] == 1 && packed_pos[t] >= 1; /* segment 1, at or after key 4 */
        if (!sees && !same) changed_other++;
        if (sees && !same) changed_own++;
    }
    CHECK(changed_other == 0, "packed: %d outputs changed by a key of another sequence or of the future",
          changed_other);
    CHECK(changed_own > 0, "packed: the key's own sequence did not notice it changed");

    /* Plain causal: the last key only reaches the last query. */
    ct_tensor *c_before = ct_attention(q, k, v, NULL);
    ct_set(k, 8 * 6, 42.0);
    ct_tensor *c_after = ct_attention(q, k, v, NULL);
    int changed_early = 0;
    for (int64_t i = 0; i < ct_numel(q); i++)
        if ((i / 6) % 9 != 8 && ct_get(c_before, i) != ct_get(c_after, i)) changed_early++;
    CHECK(changed_early == 0, "causal: %d outputs before the last position saw the last key", changed_early);
}

/* Gradients of L = sum(out * w) in f32 with 1 and 2 threads must be identical bit for bit. */
static void f32_grads(ct_tensor *const *in, const ct_tensor *w, ct_tensor **grads) {
    ct_tensor *q = to_f32(in[0]), *k = to_f32(in[1]), *v = to_f32(in[2]), *w32 = to_f32(w);
    q->requires_grad = k->requires_grad = v->requires_grad = true;
    ct_tensor *loss = ct_sum(ct_mul(ct_attention(q, k, v, NULL), w32));
    CHECK(loss && ct_backward(loss) == 0, "f32 backward: %s", ct_last_error());
    grads[0] = q->grad, grads[1] = k->grad, grads[2] = v->grad;
}

static void check_thread_independence(void) {
    ct_tensor *in[3] = {rand_in(4, (int64_t[]){1, 130, 4, 8}), rand_in(4, (int64_t[]){1, 130, 2, 8}),
                        rand_in(4, (int64_t[]){1, 130, 2, 8})};
    ct_tensor *w = rand_in(4, (int64_t[]){1, 130, 4, 8}), *one[3], *two[3];
    int threads = omp_get_max_threads();
    omp_set_num_threads(1);
    f32_grads(in, w, one);
    omp_set_num_threads(2);
    f32_grads(in, w, two);
    omp_set_num_threads(threads);
    for (int i = 0; i < 3; i++)
        CHECK(one[i] && two[i] && memcmp(one[i]->data, two[i]->data, ct_nbytes(one[i])) == 0,
              "gradient %d differs between 1 and 2 threads", i);
}

static void expect_error(ct_tensor *result, const char *needle, const char *what) {
    CHECK(result == NULL, "%s: expected an error", what);
    CHECK(strstr(ct_last_error(), needle) != NULL, "%s: message '%s' lacks '%s'", what, ct_last_error(), needle);
}

static void check_bad_input(void) {
    ct_tensor *q = rand_in(4, (int64_t[]){2, 7, 6, 5}), *k = rand_in(4, (int64_t[]){2, 7, 4, 5});
    expect_error(ct_attention(q, k, k, NULL), "attention: a [2, 7, 6, 5] f64 and b [2, 7, 4, 5] f64", "heads");
    expect_error(ct_attention(q, k, k, NULL), "multiple of kv heads", "heads reason");
    ct_tensor *k4 = rand_in(4, (int64_t[]){2, 7, 2, 4});
    expect_error(ct_attention(q, k4, k4, NULL), "attention: a [2, 7, 6, 5] f64 and b [2, 7, 2, 4] f64: head dim",
                 "head dim");
    ct_tensor *k2 = rand_in(4, (int64_t[]){2, 7, 2, 5}), *q32 = to_f32(q);
    expect_error(ct_attention(q32, k2, k2, NULL), "attention: a [2, 7, 6, 5] f32 and b [2, 7, 2, 5] f64", "dtype");
    expect_error(ct_attention(q, k2, rand_in(4, (int64_t[]){2, 7, 2, 3}), NULL), "same shape", "v shape");
    expect_error(ct_attention(rand_in(3, (int64_t[]){2, 7, 5}), k2, k2, NULL), "4-D", "3-D q");
    ct_attention_args bad_offset = {.kv_offset = 2};
    expect_error(ct_attention(q, k2, k2, &bad_offset), "S == kv_offset + T", "offset");
    ct_attention_args f64_pos = {.q_pos = rand_in(2, (int64_t[]){2, 7})};
    expect_error(ct_attention(q, k2, k2, &f64_pos), "q_pos [2, 7] f64 must be i32 [2, 7]", "position dtype");
    ct_attention_args short_seg = {.q_seg = ids(1, 7, packed_seg)};
    expect_error(ct_attention(q, k2, k2, &short_seg), "q_seg [1, 7] i32 must be i32 [2, 7]", "segment shape");
    ct_tensor *kc = rand_in(4, (int64_t[]){2, 9, 2, 5});
    ct_attention_args only_q = {.q_pos = ids(2, 7, packed_pos)};
    expect_error(ct_attention(q, kc, kc, &only_q), "for both queries and keys", "keys need ids");
    ct_fail("first failure");
    CHECK(ct_attention(NULL, k2, k2, NULL) == NULL && strcmp(ct_last_error(), "first failure") == 0,
          "NULL propagation");
}

int main(void) {
    ct_rng_seed(&rng, 2025);
    ct_scope_begin();
    check_gradients();
    check_large_values();
    check_masks_hold();
    check_thread_independence();
    check_bad_input();
    ct_scope_end();
    return ct_test_finish("test_attention");
}
