#include "core/tensor.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/error.h"
#include "core/rng.h"
#include "core/device.h"

static int set_shape(ct_tensor *t, int ndim, const int64_t *shape) {
    if (ndim < 0 || ndim > CT_MAX_DIMS) return ct_fail("tensor: %d dimensions (at most %d)", ndim, CT_MAX_DIMS);
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) return ct_fail("tensor: negative dimension %lld", (long long)shape[i]);
        t->shape[i] = shape[i];
    }
    return 0;
}

int64_t ct_numel(const ct_tensor *t) {
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
    return n;
}

size_t ct_nbytes(const ct_tensor *t) { return (size_t)ct_numel(t) * ct_dtype_size(t->dtype); }

int64_t ct_cols(const ct_tensor *t) { return t->ndim ? t->shape[t->ndim - 1] : 1; }

int64_t ct_rows(const ct_tensor *t) {
    int64_t cols = ct_cols(t);
    return cols ? ct_numel(t) / cols : 0;
}

bool ct_same_shape(const ct_tensor *a, const ct_tensor *b) {
    if (a->ndim != b->ndim) return false;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i]) return false;
    return true;
}

const char *ct_shape_str(const ct_tensor *t, char *buf, size_t size) {
    size_t used = (size_t)snprintf(buf, size, "[");
    for (int i = 0; i < t->ndim && used < size; i++)
        used += (size_t)snprintf(buf + used, size - used, i ? ", %lld" : "%lld", (long long)t->shape[i]);
    if (used < size) snprintf(buf + used, size - used, "] %s", ct_dtype_name(t->dtype));
    return buf;
}

/* A tensor may only live where an op table can compute on it: the CUDA backend registers the
 * device's memory only once its table is complete and a GPU answers (kernels/device.c). */
static int check_device(ct_device device) {
    if (device != CT_CPU && !ct_device_memory_of(device))
        return ct_fail("%s: no usable device in this process (a build without its backend, or no GPU found); use "
                       "device=cpu", ct_device_name(device));
    return 0;
}

ct_tensor *ct_tensor_new_on(ct_device device, ct_dtype dtype, int ndim, const int64_t *shape, const char *name) {
    if (check_device(device) < 0) return NULL;
    ct_tensor *t = ct_calloc(1, sizeof *t, "a tensor header");
    if (!t) return NULL;
    t->dtype = dtype;
    t->device = device;
    t->persistent = true;
    if (set_shape(t, ndim, shape) < 0) {
        free(t);
        return NULL;
    }
    size_t nbytes = ct_nbytes(t);
    t->name = name ? ct_strdup(name) : NULL;
    t->data = ct_device_alloc(device, nbytes);
    if (!t->data || (name && !t->name) || ct_device_memset_zero(device, t->data, nbytes) < 0) {
        ct_fail_context("tensor '%s' (%zu bytes): ", name ? name : "(unnamed)", nbytes);
        ct_tensor_free(t);
        return NULL;
    }
    return t;
}

ct_tensor *ct_tensor_new(ct_dtype dtype, int ndim, const int64_t *shape, const char *name) {
    return ct_tensor_new_on(CT_CPU, dtype, ndim, shape, name);
}

void ct_tensor_free(ct_tensor *t) {
    if (!t || !t->persistent) return;
    if (t->grad) ct_tensor_free(t->grad);
    if (t->scale) ct_tensor_free(t->scale);
    if (!t->base) ct_device_free(t->device, t->data);
    free(t->name);
    free(t);
}

ct_tensor *ct_empty_on(ct_device device, ct_dtype dtype, int ndim, const int64_t *shape) {
    if (check_device(device) < 0) return NULL;
    ct_tensor *t = ct_arena_calloc(sizeof *t);
    if (!t) return NULL;
    t->dtype = dtype;
    t->device = device;
    if (set_shape(t, ndim, shape) < 0) return NULL;
    t->data = ct_arena_alloc_on(device, ct_nbytes(t));
    return t->data ? t : NULL;
}

ct_tensor *ct_empty(ct_dtype dtype, int ndim, const int64_t *shape) { return ct_empty_on(CT_CPU, dtype, ndim, shape); }

static ct_tensor *zero_filled(ct_tensor *t) {
    if (t && ct_device_memset_zero(t->device, t->data, ct_nbytes(t)) < 0) return NULL;
    return t;
}

ct_tensor *ct_zeros_on(ct_device device, ct_dtype dtype, int ndim, const int64_t *shape) {
    return zero_filled(ct_empty_on(device, dtype, ndim, shape));
}

ct_tensor *ct_zeros(ct_dtype dtype, int ndim, const int64_t *shape) { return ct_zeros_on(CT_CPU, dtype, ndim, shape); }

ct_tensor *ct_empty_like(const ct_tensor *t) { return ct_empty_on(t->device, t->dtype, t->ndim, t->shape); }

ct_tensor *ct_zeros_like(const ct_tensor *t) { return zero_filled(ct_empty_like(t)); }

ct_tensor *ct_to_device(const ct_tensor *t, ct_device device) {
    ct_tensor *copy = ct_empty_on(device, t->dtype, t->ndim, t->shape);
    if (!copy || ct_device_copy(device, copy->data, t->device, t->data, ct_nbytes(t)) < 0) return NULL;
    if (t->scale) { /* an i8 tensor is only meaningful with its scales */
        copy->scale = ct_to_device(t->scale, device);
        if (!copy->scale) return NULL;
        copy->scale_block = t->scale_block;
    }
    return copy;
}

ct_tensor *ct_scalar(ct_dtype dtype, double value) {
    ct_tensor *t = ct_empty(dtype, 0, NULL);
    if (t) ct_set(t, 0, value);
    return t;
}

/* One element of a tensor in device memory, through a host copy: slow, for reading a loss or a
 * scalar, never for loops. An i8 element of a device tensor is read without its scale. */
static double get_on_device(const ct_tensor *t, int64_t i) {
    size_t size = ct_dtype_size(t->dtype);
    unsigned char element[8] = {0};
    if (ct_device_copy(CT_CPU, element, t->device, (const unsigned char *)t->data + (size_t)i * size, size) < 0)
        return NAN;
    ct_tensor host = *t;
    host.device = CT_CPU;
    host.data = element;
    host.scale = NULL;
    return ct_get(&host, 0);
}

static void set_on_device(ct_tensor *t, int64_t i, double value) {
    size_t size = ct_dtype_size(t->dtype);
    unsigned char element[8] = {0};
    ct_tensor host = *t;
    host.device = CT_CPU;
    host.data = element;
    ct_set(&host, 0, value);
    ct_device_copy(t->device, (unsigned char *)t->data + (size_t)i * size, CT_CPU, element, size);
}

double ct_get(const ct_tensor *t, int64_t i) {
    if (t->device != CT_CPU) return get_on_device(t, i);
    switch (t->dtype) {
    case CT_F32: return ((const float *)t->data)[i];
    case CT_F64: return ((const double *)t->data)[i];
    case CT_BF16: return ct_bf16_to_f32(((const uint16_t *)t->data)[i]);
    case CT_F16: return ct_f16_to_f32(((const uint16_t *)t->data)[i]);
    case CT_I32: return ((const int32_t *)t->data)[i];
    case CT_I8: {
        double q = ((const int8_t *)t->data)[i];
        if (!t->scale) return q;
        int64_t cols = ct_cols(t), row = i / cols;
        int64_t scale_index = t->scale_block ? row * ((cols + t->scale_block - 1) / t->scale_block) +
                                                   (i % cols) / t->scale_block
                                             : row;
        return q * ((const float *)t->scale->data)[scale_index];
    }
    default: return NAN;
    }
}

void ct_set(ct_tensor *t, int64_t i, double value) {
    if (t->device != CT_CPU) {
        set_on_device(t, i, value);
        return;
    }
    switch (t->dtype) {
    case CT_F32: ((float *)t->data)[i] = (float)value; break;
    case CT_F64: ((double *)t->data)[i] = value; break;
    case CT_BF16: ((uint16_t *)t->data)[i] = ct_f32_to_bf16((float)value); break;
    case CT_F16: ((uint16_t *)t->data)[i] = ct_f32_to_f16((float)value); break;
    case CT_I32: ((int32_t *)t->data)[i] = (int32_t)value; break;
    case CT_I8: ((int8_t *)t->data)[i] = (int8_t)lrint(value); break;
    default: break;
    }
}

/* ct_copy between dtypes when a side is off the CPU: one transfer each way around a host
 * conversion (heap buffers, so it works outside any scope). */
static int copy_through_host(ct_tensor *dst, const ct_tensor *src) {
    if (src->scale && src->scale->device != CT_CPU)
        return ct_fail("copy: converting an i8 tensor on %s needs its scales on the host", ct_device_name(src->device));
    size_t src_bytes = ct_nbytes(src), dst_bytes = ct_nbytes(dst);
    void *src_host = malloc(src_bytes ? src_bytes : 1), *dst_host = malloc(dst_bytes ? dst_bytes : 1);
    int rc = src_host && dst_host ? 0 : ct_fail("copy: out of host memory (%zu bytes)", src_bytes + dst_bytes);
    if (rc == 0) rc = ct_device_copy(CT_CPU, src_host, src->device, src->data, src_bytes);
    ct_tensor host_src = *src, host_dst = *dst;
    host_src.device = host_dst.device = CT_CPU;
    host_src.data = src_host, host_dst.data = dst_host;
    host_dst.scale = NULL;
    if (rc == 0) rc = ct_copy(&host_dst, &host_src);
    if (rc == 0) rc = ct_device_copy(dst->device, dst->data, CT_CPU, dst_host, dst_bytes);
    free(src_host);
    free(dst_host);
    return rc;
}

int ct_copy(ct_tensor *dst, const ct_tensor *src) {
    int64_t n = ct_numel(src);
    if (ct_numel(dst) != n) {
        char a[64], b[64];
        return ct_fail("copy: %s into %s: element counts differ", ct_shape_str(src, a, sizeof a),
                       ct_shape_str(dst, b, sizeof b));
    }
    if (dst->dtype == src->dtype && !(src->dtype == CT_I8 && src->scale)) {
        if (dst->device == CT_CPU && src->device == CT_CPU) {
            memmove(dst->data, src->data, ct_nbytes(src));
            return 0;
        }
        return ct_device_copy(dst->device, dst->data, src->device, src->data, ct_nbytes(src));
    }
    if (dst->device != CT_CPU || src->device != CT_CPU) {
        /* f32 <-> bf16 on one device is a kernel; any other conversion goes through the host */
        bool f32_bf16 = (dst->dtype == CT_F32 && src->dtype == CT_BF16) || (dst->dtype == CT_BF16 && src->dtype == CT_F32);
        if (f32_bf16 && dst->device == src->device) return ct_device_memory_of(dst->device)->convert(src, dst);
        return copy_through_host(dst, src);
    }
    if (dst->dtype == CT_F32 && src->dtype == CT_BF16) {
        const uint16_t *s = src->data;
        float *d = dst->data;
#pragma omp parallel for schedule(static) if (n > 65536)
        for (int64_t i = 0; i < n; i++) d[i] = ct_bf16_to_f32(s[i]);
        return 0;
    }
    if (dst->dtype == CT_BF16 && src->dtype == CT_F32) {
        const float *s = src->data;
        uint16_t *d = dst->data;
#pragma omp parallel for schedule(static) if (n > 65536)
        for (int64_t i = 0; i < n; i++) d[i] = ct_f32_to_bf16(s[i]);
        return 0;
    }
    for (int64_t i = 0; i < n; i++) ct_set(dst, i, ct_get(src, i));
    return 0;
}

void ct_fill(ct_tensor *t, double value) {
    int64_t n = ct_numel(t);
    for (int64_t i = 0; i < n; i++) ct_set(t, i, value);
}

void ct_fill_normal(ct_tensor *t, ct_rng *rng, double mean, double std) {
    int64_t n = ct_numel(t);
    for (int64_t i = 0; i < n; i++) ct_set(t, i, mean + std * ct_rng_normal(rng));
}

void ct_fill_uniform(ct_tensor *t, ct_rng *rng, double low, double high) {
    int64_t n = ct_numel(t);
    for (int64_t i = 0; i < n; i++) ct_set(t, i, low + (high - low) * ct_rng_uniform(rng));
}

ct_tensor *ct_quantize_i8(const ct_tensor *src, int64_t block, bool persistent, const char *name) {
    if (src->ndim != 2) {
        ct_fail("quantize_i8: tensor '%s' has %d dimensions; expected a 2-D weight", name ? name : "", src->ndim);
        return NULL;
    }
    int64_t rows = src->shape[0], cols = src->shape[1];
    int64_t blocks_per_row = block ? (cols + block - 1) / block : 1;
    int64_t span = block ? block : cols;
    int64_t scale_shape[2] = {rows, blocks_per_row};
    ct_tensor *q = persistent ? ct_tensor_new(CT_I8, 2, src->shape, name) : ct_empty(CT_I8, 2, src->shape);
    ct_tensor *scale = persistent ? ct_tensor_new(CT_F32, 2, scale_shape, NULL) : ct_empty(CT_F32, 2, scale_shape);
    if (!q || !scale) {
        if (persistent) {
            ct_tensor_free(q);
            ct_tensor_free(scale);
        }
        return NULL;
    }
    int8_t *qd = q->data;
    float *sd = scale->data;
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t b = 0; b < blocks_per_row; b++) {
            int64_t start = b * span, end = start + span < cols ? start + span : cols;
            double amax = 0;
            for (int64_t c = start; c < end; c++) amax = fmax(amax, fabs(ct_get(src, r * cols + c)));
            float d = (float)(amax / 127.0);
            float inverse = d ? 1.0f / d : 0.0f;
            sd[r * blocks_per_row + b] = d;
            for (int64_t c = start; c < end; c++)
                qd[r * cols + c] = (int8_t)roundf((float)ct_get(src, r * cols + c) * inverse);
        }
    }
    q->scale = scale;
    q->scale_block = block;
    return q;
}
