/* LoRA adapters: creation, the adapter's term of a projection's output, merging (models/lora.h). */
#include "models/lora.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/ops.h"
#include "autograd/ops_transformer.h"
#include "core/arena.h"
#include "core/device.h"
#include "core/error.h"
#include "core/tensor.h"
#include "kernels/backend.h"
#include "core/rng.h"

double ct_lora_scale(const ct_lora_options *o) {
    return o->use_rslora ? o->alpha / sqrt((double)o->r) : o->alpha / (double)o->r;
}

int ct_lora_check_options(const ct_lora_options *o) {
    if (o->r <= 0) return ct_fail("lora.r=%lld: the rank must be a positive integer (8 or 16 are usual)", (long long)o->r);
    if (!(o->alpha > 0) || !isfinite(o->alpha))
        return ct_fail("lora.alpha=%g: must be positive (often 2 * lora.r)", o->alpha);
    if (!(o->dropout >= 0 && o->dropout < 1)) return ct_fail("lora.dropout=%g: must be in [0, 1)", o->dropout);
    if (o->init != CT_LORA_INIT_KAIMING && o->init != CT_LORA_INIT_GAUSSIAN)
        return ct_fail("lora.init: %d is not kaiming or gaussian", (int)o->init);
    return 0;
}

/* A's draws: kaiming_uniform(a = √5) gives gain √(2 / (1 + 5)) and bound gain · √(3 / fan_in)
 * = 1 / √in; gaussian is N(0, (1/r)²) (Box-Muller on two counter draws per element). */
static void init_a(ct_tensor *A, const ct_lora_options *o, uint64_t seed, uint32_t site) {
    const int64_t n = ct_numel(A), in = A->shape[1];
    float *a = A->data;
    const uint64_t stream = ((uint64_t)site << 1) | 1; /* distinct from any dropout stream of the site */
    for (int64_t i = 0; i < n; i++) {
        const double u = ct_counter_uniform(seed, stream, 2 * (uint64_t)i);
        if (o->init == CT_LORA_INIT_KAIMING) {
            const double bound = 1.0 / sqrt((double)in);
            a[i] = (float)((2 * u - 1) * bound);
        } else {
            const double v = ct_counter_uniform(seed, stream, 2 * (uint64_t)i + 1);
            const double z = sqrt(-2 * log(1 - u)) * cos(2 * M_PI * v);
            a[i] = (float)(z / (double)o->r);
        }
    }
}

static ct_tensor *named(const char *module, const char *suffix, int64_t rows, int64_t cols) {
    char name[600];
    if (snprintf(name, sizeof name, "%s.%s", module, suffix) >= (int)sizeof name) {
        ct_fail("lora: module name '%.40s...' is too long", module);
        return NULL;
    }
    const int64_t shape[2] = {rows, cols};
    ct_tensor *t = ct_tensor_new(CT_F32, 2, shape, name);
    if (t) t->requires_grad = true;
    return t;
}

ct_lora *ct_lora_new(const char *module, int64_t in, int64_t out, const ct_lora_options *o, uint64_t seed,
                     uint32_t site) {
    if (ct_lora_check_options(o) < 0) return NULL;
    if (in <= 0 || out <= 0) {
        ct_fail("lora: %s has shape [%lld, %lld]; cannot adapt an empty projection", module, (long long)out, (long long)in);
        return NULL;
    }
    ct_lora *l = ct_calloc(1, sizeof *l, "a LoRA adapter");
    if (!l) return NULL;
    l->A = named(module, "lora_A.weight", o->r, in);
    l->B = named(module, "lora_B.weight", out, o->r); /* zero-filled by ct_tensor_new */
    if (!l->A || !l->B) {
        ct_lora_free(l);
        return NULL;
    }
    if (o->use_dora) {
        char name[600];
        snprintf(name, sizeof name, "%s.lora_magnitude_vector", module);
        l->magnitude = ct_tensor_new(CT_F32, 1, &out, name);
        if (!l->magnitude) {
            ct_lora_free(l);
            return NULL;
        }
        l->magnitude->requires_grad = true;
    }
    init_a(l->A, o, seed, site);
    l->scale = ct_lora_scale(o);
    l->dropout = o->dropout;
    l->dropout_site = site;
    return l;
}

void ct_lora_free(ct_lora *l) {
    if (!l) return;
    ct_tensor_free(l->A);
    ct_tensor_free(l->B);
    ct_tensor_free(l->magnitude);
    free(l);
}

/* B·A·dropout(x), not yet scaled. */
static ct_tensor *lora_product(const ct_lora *l, ct_tensor *x, const ct_lora_dropout *drop) {
    if (!x) return NULL;
    ct_tensor *in = x;
    if (drop && l->dropout > 0) in = ct_dropout(x, l->dropout, drop->seed, ct_dropout_stream(drop->step, l->dropout_site));
    /* (x·Aᵀ)·Bᵀ: two thin GEMMs through the rank, never the [out, in] product B·A. */
    ct_tensor *down = ct_matmul(in, l->A, false, true);
    return ct_matmul(down, l->B, false, true);
}

ct_tensor *ct_lora_delta(const ct_lora *l, ct_tensor *x, const ct_lora_dropout *drop) {
    ct_tensor *up = lora_product(l, x, drop);
    return up ? ct_scale(up, l->scale) : NULL;
}

ct_tensor *ct_lora_add_delta(const ct_lora *l, ct_tensor *y, ct_tensor *x, const ct_lora_dropout *drop) {
    if (!y) return NULL;
    ct_tensor *up = lora_product(l, x, drop);
    return up ? ct_add_scaled(y, up, l->scale) : NULL;
}

/* n (or 1/n) per row of weight + s·B·A, in the current scope, without the tape: detached. */
static ct_tensor *dora_norms(const ct_lora *l, const ct_tensor *weight, bool reciprocal) {
    const ct_dtype dtype = l->A->dtype == CT_F64 ? CT_F64 : CT_F32;
    ct_tensor *n = ct_empty_on(l->A->device, dtype, 1, &weight->shape[0]);
    if (!n) return NULL;
    if (weight->device != l->A->device) {
        ct_fail("dora: %s is on %s but its adapter on %s", weight->name ? weight->name : "the weight",
                ct_device_name(weight->device), ct_device_name(l->A->device));
        return NULL;
    }
    return ct_backend_for(n->device)->dora_row_norms(weight, l->A, l->B, l->scale, reciprocal, n) < 0 ? NULL : n;
}

int ct_lora_dora_init(ct_lora *l, const ct_tensor *weight) {
    if (!l->magnitude) return ct_fail("dora: %s has no magnitude vector (lora.use_dora is off)", l->A->name);
    CT_TRY(ct_scope_begin());
    ct_tensor *n = dora_norms(l, weight, false);
    const int status = n ? ct_copy(l->magnitude, n) : -1;
    ct_scope_end();
    return status;
}

ct_tensor *ct_lora_dora_term(const ct_lora *l, const ct_tensor *stored, ct_tensor *weight, ct_tensor *x,
                             ct_tensor *base, const ct_lora_dropout *drop) {
    if (!x || !base) return NULL;
    ct_tensor *inv = dora_norms(l, stored, true);
    ct_tensor *minus_one = inv ? ct_zeros_like(inv) : NULL;
    if (!minus_one || ct_backend_for(minus_one->device)->add_scalar(minus_one, -1.0) < 0) return NULL;
    ct_tensor *in = x;
    if (drop && l->dropout > 0) {
        in = ct_dropout(x, l->dropout, drop->seed, ct_dropout_stream(drop->step, l->dropout_site));
        base = ct_matmul(in, weight, false, true); /* peft: base_result from the dropped x */
    }
    ct_tensor *factor = ct_mul(l->magnitude, inv); /* m / n, n a constant: m gets the gradient */
    ct_tensor *lora = ct_matmul(ct_matmul(in, l->A, false, true), l->B, false, true);
    ct_tensor *adapted = ct_mul(ct_scale(lora, l->scale), factor);
    return ct_add(ct_mul(base, ct_add(factor, minus_one)), adapted);
}

int ct_lora_merge_into(const ct_lora *l, ct_tensor *weight) {
    if (weight->dtype != CT_F32 && weight->dtype != CT_BF16)
        return ct_fail("lora merge: %s is %s; merge into an f32 or bf16 weight (dequantize an INT8 base first)",
                       weight->name ? weight->name : "the weight", ct_dtype_name(weight->dtype));
    if (weight->device != CT_CPU || l->A->device != CT_CPU)
        return ct_fail("lora merge: %s: merge on the CPU (copy the weight and the adapter to the host)",
                       weight->name ? weight->name : "the weight");
    const int64_t out = l->B->shape[0], r = l->A->shape[0], in = l->A->shape[1];
    if (weight->ndim != 2 || weight->shape[0] != out || weight->shape[1] != in)
        return ct_fail("lora merge: %s is [%lld, %lld] but the adapter makes [%lld, %lld]",
                       weight->name ? weight->name : "the weight", (long long)weight->shape[0],
                       (long long)weight->shape[1], (long long)out, (long long)in);
    const float *A = l->A->data, *B = l->B->data, *m = l->magnitude ? l->magnitude->data : NULL;
    double *row = ct_calloc((size_t)in, sizeof *row, "a merged row");
    if (!row) return -1;
    for (int64_t o = 0; o < out; o++) {
#pragma omp parallel for schedule(static) if (in * r > 16384)
        for (int64_t i = 0; i < in; i++) {
            double sum = 0;
            for (int64_t k = 0; k < r; k++) sum += (double)B[o * r + k] * (double)A[k * in + i];
            row[i] = ct_get(weight, o * in + i) + l->scale * sum;
        }
        double norm2 = 0; /* in order: the same bits whatever the thread count */
        for (int64_t i = 0; i < in; i++) norm2 += row[i] * row[i];
        /* DoRA: the direction W + s·B·A scaled to the magnitude, one factor per row */
        const double factor = m ? (double)m[o] / sqrt(norm2) : 1.0;
        for (int64_t i = 0; i < in; i++) ct_set(weight, o * in + i, row[i] * factor);
    }
    free(row);
    return 0;
}
