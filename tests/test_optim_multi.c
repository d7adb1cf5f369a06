/* The multi-tensor optimizer kernels of the CPU backend and train/optim.c on top of them:
 * AdamW over a parameter list is the per-tensor update bit for bit (5 steps, f32 and f64, odd
 * sizes, one weight decay per parameter, a learning rate that changes between steps, a
 * parameter without a gradient left alone); the global gradient norm and clipping equal a
 * plain double-precision computation; the memory counters of the CUDA allocator read 0 for the
 * CPU. (The GPU side of the same entries: tests/test_cuda_parity.c.) */
#include <string.h>

#include "core/arena.h"
#include "core/error.h"
#include "core/rng.h"
#include "kernels/backend.h"
#include "tests/ct_test.h"
#include "train/optim.h"

enum { N_PARAMS = 6, STEPS = 5 };

/* Odd sizes: one element, less than a reduction block, several blocks, above the parallel
 * threshold (so the OpenMP paths run), and an empty tensor. */
static const int64_t sizes[N_PARAMS] = {1, 7, 1001, 4097, 20011, 0};

static ct_rng rng;

static ct_tensor *param_of(ct_dtype dtype, int64_t n, const char *name) {
    ct_tensor *p = ct_tensor_new(dtype, 1, &n, name);
    ct_fill_normal(p, &rng, 0.0, 1.0);
    p->requires_grad = true;
    p->grad = ct_tensor_new(dtype, 1, &n, NULL);
    return p;
}

static ct_tensor *copy_of(const ct_tensor *t) {
    ct_tensor *c = ct_tensor_new(t->dtype, t->ndim, t->shape, NULL);
    memcpy(c->data, t->data, ct_nbytes(t));
    return c;
}

static bool same_bits(const ct_tensor *a, const ct_tensor *b) { return memcmp(a->data, b->data, ct_nbytes(a)) == 0; }

/* ct_adamw_step (adamw_multi underneath) against adamw_step called once per tensor. */
static void check_adamw_bit_identical(ct_dtype dtype) {
    const char *name = ct_dtype_name(dtype);
    ct_tensor *params[N_PARAMS], *ref_p[N_PARAMS], *ref_m[N_PARAMS], *ref_v[N_PARAMS];
    double decay[N_PARAMS];
    for (int i = 0; i < N_PARAMS; i++) {
        params[i] = param_of(dtype, sizes[i], "p");
        ref_p[i] = copy_of(params[i]);
        ref_m[i] = ct_tensor_new(dtype, 1, &sizes[i], NULL);
        ref_v[i] = ct_tensor_new(dtype, 1, &sizes[i], NULL);
        decay[i] = i % 3 == 1 ? 0.0 : 0.01 * (i + 1); /* norms and biases usually get none */
    }
    /* the fourth parameter gets no gradient: the update must skip it */
    ct_tensor_free(params[3]->grad);
    params[3]->grad = NULL;
    ct_adamw_hparams h = {.lr = 3e-3, .beta1 = 0.9, .beta2 = 0.95, .eps = 1e-8, .weight_decay = 0.5};
    ct_adamw *opt = ct_adamw_new(params, N_PARAMS, h);
    CHECK(opt != NULL, "adamw_new %s: %s", name, ct_last_error());
    if (!opt) return;
    for (int i = 0; i < N_PARAMS; i++) ct_adamw_set_weight_decay(opt, i, decay[i]);
    const ct_backend *cpu = ct_cpu_backend();
    double start = ct_get(params[4], 17);
    for (int64_t step = 1; step <= STEPS; step++) {
        opt->hparams.lr = 3e-3 * (1.0 - 0.1 * (double)step); /* a schedule */
        for (int i = 0; i < N_PARAMS; i++) {
            if (!params[i]->grad) continue;
            ct_fill_normal(params[i]->grad, &rng, 0.0, i == 2 ? 1e-6 : 1.0); /* one tiny gradient: eps matters */
            /* the reference: the same kernel on a list of one */
            CHECK(cpu->adamw_multi(1, &ref_p[i], &params[i]->grad, &ref_m[i], &ref_v[i], &decay[i], &opt->hparams,
                                   step) == 0, "adamw on one tensor");
        }
        CHECK(ct_adamw_step(opt) == 0, "ct_adamw_step %s: %s", name, ct_last_error());
    }
    int identical = 0;
    for (int i = 0; i < N_PARAMS; i++) {
        if (!params[i]->grad) {
            CHECK(same_bits(params[i], ref_p[i]), "%s: the parameter without a gradient changed", name);
            continue;
        }
        bool same = same_bits(params[i], ref_p[i]) && same_bits(opt->slots[i].m, ref_m[i]) &&
                    same_bits(opt->slots[i].v, ref_v[i]);
        CHECK(same, "%s parameter %d (%lld elements): multi-tensor AdamW differs from the per-tensor update", name,
              i, (long long)sizes[i]);
        identical += same;
    }
    /* and the updates did something */
    CHECK(ct_get(params[4], 17) != start && opt->step == STEPS, "%s: no step was taken", name);
    printf("adamw_multi %s: %d of %d updated parameters bit-identical to the per-tensor loop over %d steps\n", name,
           identical, N_PARAMS - 1, STEPS);
    ct_adamw_free(opt);
    for (int i = 0; i < N_PARAMS; i++) {
        ct_tensor_free(params[i]);
        ct_tensor_free(ref_p[i]);
        ct_tensor_free(ref_m[i]);
        ct_tensor_free(ref_v[i]);
    }
}

/* The plain computation: every squared element in double, in one running sum. */
static double naive_norm(ct_tensor *const *params, int n) {
    double total = 0;
    for (int i = 0; i < n; i++)
        for (int64_t k = 0; params[i]->grad && k < ct_numel(params[i]->grad); k++) {
            double g = ct_get(params[i]->grad, k);
            total += g * g;
        }
    return sqrt(total);
}

/* A mixed f32/f64 list (the kernels take each tensor in its dtype) with one gradient missing. */
static void check_norm_and_clipping(void) {
    ct_tensor *params[N_PARAMS];
    for (int i = 0; i < N_PARAMS; i++) params[i] = param_of(i % 2 ? CT_F64 : CT_F32, sizes[i], "p");
    ct_tensor_free(params[1]->grad);
    params[1]->grad = NULL;
    for (int i = 0; i < N_PARAMS; i++)
        if (params[i]->grad) ct_fill_normal(params[i]->grad, &rng, 0.0, 0.3 * (i + 1));

    double expected = naive_norm(params, N_PARAMS), norm = 0;
    CHECK(ct_grad_global_norm(params, N_PARAMS, &norm) == 0, "global norm: %s", ct_last_error());
    CHECK(fabs(norm - expected) <= 1e-12 * expected, "norm %.17g, plain sum %.17g", norm, expected);

    /* below the limit: nothing changes */
    ct_tensor *before[N_PARAMS];
    for (int i = 0; i < N_PARAMS; i++) before[i] = params[i]->grad ? copy_of(params[i]->grad) : NULL;
    double got = 0;
    CHECK(ct_clip_grad_norm(params, N_PARAMS, expected * 2, &got) == 0 && got == norm, "clip above the norm");
    for (int i = 0; i < N_PARAMS; i++)
        if (before[i]) CHECK(same_bits(before[i], params[i]->grad), "gradient %d changed without clipping", i);
    CHECK(ct_clip_grad_norm(params, N_PARAMS, 0.0, &got) == 0, "max_norm 0 (no clipping)");
    for (int i = 0; i < N_PARAMS; i++)
        if (before[i]) CHECK(same_bits(before[i], params[i]->grad), "gradient %d changed with max_norm 0", i);

    /* above: every element is scaled by max_norm / (norm + 1e-6) in its dtype */
    double max_norm = expected / 3, factor = max_norm / (norm + 1e-6);
    CHECK(ct_clip_grad_norm(params, N_PARAMS, max_norm, &got) == 0 && got == norm, "clip: %s", ct_last_error());
    int64_t wrong = 0;
    for (int i = 0; i < N_PARAMS; i++) {
        for (int64_t k = 0; before[i] && k < ct_numel(before[i]); k++) {
            double old = ct_get(before[i], k), now = ct_get(params[i]->grad, k);
            double want = before[i]->dtype == CT_F32 ? (double)((float)old * (float)factor) : old * factor;
            wrong += now != want;
        }
    }
    CHECK(wrong == 0, "%lld clipped elements differ from g * factor", (long long)wrong);
    double after = 0;
    ct_grad_global_norm(params, N_PARAMS, &after);
    CHECK(fabs(after - max_norm) <= 1e-6 * max_norm, "norm after clipping %.9g, expected %.9g", after, max_norm);
    printf("global norm %.9g (plain double sum %.9g); clipped to %.9g (asked %.9g)\n", norm, expected, after, max_norm);

    /* a NaN anywhere is reported, whichever tensor holds it */
    ct_set(params[4]->grad, 20010, NAN);
    CHECK(ct_clip_grad_norm(params, N_PARAMS, 1.0, &got) < 0 && strstr(ct_last_error(), "not finite"), "NaN: %s",
          ct_last_error());

    /* the empty list */
    double empty = -1;
    CHECK(ct_cpu_backend()->sum_squares_multi(0, NULL, &empty) == 0 && empty == 0, "empty list: %g", empty);
    CHECK(ct_grad_global_norm(params, 0, &got) == 0 && got == 0, "norm of no parameters: %g", got);
    for (int i = 0; i < N_PARAMS; i++) {
        ct_tensor_free(before[i]);
        ct_tensor_free(params[i]);
    }
}

/* The CUDA allocator's fields read 0 for the CPU; on CUDA they are the allocator's counters
 * (which test_cuda_train checks on a GPU). */
static void check_memory_stats_fields(void) {
    ct_scope_begin();
    ct_tensor *t = ct_zeros(CT_F32, 1, (int64_t[]){12345});
    ct_memory_stats cpu = ct_memory_get_stats(CT_CPU);
    CHECK(t && cpu.in_use > 0, "no CPU arena use recorded");
    CHECK(cpu.device_in_use == 0 && cpu.device_peak_in_use == 0 && cpu.device_reserved == 0 &&
              cpu.device_peak_reserved == 0 && cpu.device_malloc_calls == 0,
          "CUDA allocator fields are not 0 for the CPU");
    ct_scope_end();
    ct_memory_reset_peak();
    CHECK(ct_memory_get_stats(CT_CPU).peak_in_use == ct_memory_get_stats(CT_CPU).in_use, "peak not reset");
}

int main(void) {
    ct_rng_seed(&rng, 4242);
    check_adamw_bit_identical(CT_F32);
    check_adamw_bit_identical(CT_F64);
    check_norm_and_clipping();
    check_memory_stats_fields();
    ct_memory_release_all();
    return ct_test_finish("test_optim_multi");
}
