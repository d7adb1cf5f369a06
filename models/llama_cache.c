/* The KV cache of a LLaMA-family model: per layer, the keys (after RoPE) and values of every
 * position seen so far, [batch, max_len, Hkv, D], and per slot its position and segment id.
 *
 * A forward with a cache writes the new tokens' slots [length, length + T) and attends over
 * slots [0, length + T). The attention op wants those as a contiguous [B, S, Hkv, D] tensor:
 * with one row the cache's own memory already is (a view, no copy); with several rows each row's
 * filled prefix is copied next to the others in the scope's arena, a copy as large as what
 * attention reads anyway. */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "autograd/ops.h"
#include "models/llama.h"
#include "models/llama_internal.h"

int ct_kv_cache_init(ct_kv_cache *cache, const ct_llama_config *cfg, int64_t batch, int64_t max_len) {
    memset(cache, 0, sizeof *cache);
    if (batch <= 0 || max_len <= 0)
        return ct_fail("KV cache: batch %lld and max_len %lld must be positive", (long long)batch, (long long)max_len);
    cache->n_layers = (int)cfg->num_hidden_layers;
    cache->batch = batch;
    cache->max_len = max_len;
    cache->k = ct_calloc((size_t)cache->n_layers, sizeof *cache->k, "KV cache keys");
    cache->v = ct_calloc((size_t)cache->n_layers, sizeof *cache->v, "KV cache values");
    const int64_t kv_shape[4] = {batch, max_len, cfg->num_key_value_heads, cfg->head_dim};
    const int64_t slot_shape[2] = {batch, max_len};
    int ok = cache->k && cache->v;
    for (int l = 0; ok && l < cache->n_layers; l++) {
        cache->k[l] = ct_tensor_new(CT_F32, 4, kv_shape, "kv_cache.k");
        cache->v[l] = ct_tensor_new(CT_F32, 4, kv_shape, "kv_cache.v");
        ok = cache->k[l] && cache->v[l];
    }
    if (ok) cache->positions = ct_tensor_new(CT_I32, 2, slot_shape, "kv_cache.positions");
    if (ok) cache->segments = ct_tensor_new(CT_I32, 2, slot_shape, "kv_cache.segments");
    if (!ok || !cache->positions || !cache->segments) {
        ct_kv_cache_free(cache);
        return ct_fail_context("KV cache for %lld x %lld positions: ", (long long)batch, (long long)max_len);
    }
    return 0;
}

void ct_kv_cache_free(ct_kv_cache *cache) {
    for (int l = 0; l < cache->n_layers; l++) {
        if (cache->k) ct_tensor_free(cache->k[l]);
        if (cache->v) ct_tensor_free(cache->v[l]);
    }
    free(cache->k);
    free(cache->v);
    ct_tensor_free(cache->positions);
    ct_tensor_free(cache->segments);
    memset(cache, 0, sizeof *cache);
}

void ct_kv_cache_reset(ct_kv_cache *cache) { cache->length = 0; }

int ct_llama_cache_check(const ct_kv_cache *cache, const ct_llama_config *cfg, int64_t batch, int64_t time) {
    if (cache->n_layers != cfg->num_hidden_layers || !cache->k || cache->k[0]->shape[2] != cfg->num_key_value_heads ||
        cache->k[0]->shape[3] != cfg->head_dim)
        return ct_fail("KV cache: made for another model shape; build it with ct_kv_cache_init for this config");
    if (cache->batch != batch)
        return ct_fail("KV cache: holds %lld rows but the input has %lld; use one cache per batch size",
                       (long long)cache->batch, (long long)batch);
    if (cache->length + time > cache->max_len)
        return ct_fail("KV cache: %lld cached + %lld new positions exceed its max_len %lld; make it larger",
                       (long long)cache->length, (long long)time, (long long)cache->max_len);
    if (cache->k[0]->device != CT_CPU) return ct_fail("KV cache: only CPU caches are implemented so far");
    return 0;
}

/* Rows of a [B, max_len, ...] buffer: copy src [B, T, ...] into slots [length, length + T). */
static void write_slots(ct_tensor *buf, const ct_tensor *src, int64_t length) {
    const int64_t B = buf->shape[0], T = src->shape[1], max_len = buf->shape[1];
    const size_t slot = ct_nbytes(buf) / (size_t)(B * max_len);
    for (int64_t b = 0; b < B; b++)
        memcpy((char *)buf->data + ((size_t)(b * max_len + length)) * slot, (const char *)src->data + (size_t)(b * T) * slot,
               (size_t)T * slot);
}

/* Slots [0, S) of every row as one contiguous [B, S, ...] tensor (a view when B == 1). */
static ct_tensor *filled_prefix(ct_tensor *buf, int64_t S) {
    int64_t shape[CT_MAX_DIMS];
    memcpy(shape, buf->shape, sizeof shape);
    shape[1] = S;
    const int64_t B = buf->shape[0], max_len = buf->shape[1];
    const size_t slot = ct_nbytes(buf) / (size_t)(B * max_len);
    if (B == 1) {
        int64_t flat[CT_MAX_DIMS];
        memcpy(flat, buf->shape + 1, sizeof(int64_t) * (size_t)(buf->ndim - 1));
        ct_tensor *rows = ct_slice_rows(ct_reshape(buf, buf->ndim - 1, flat), 0, S);
        return ct_reshape(rows, buf->ndim, shape);
    }
    ct_tensor *out = ct_empty_on(buf->device, buf->dtype, buf->ndim, shape);
    if (!out) return NULL;
    for (int64_t b = 0; b < B; b++)
        memcpy((char *)out->data + (size_t)(b * S) * slot, (const char *)buf->data + (size_t)(b * max_len) * slot,
               (size_t)S * slot);
    return out;
}

int ct_llama_cache_slots(ct_kv_cache *cache, ct_tensor *positions, ct_tensor *segments, ct_tensor **k_pos,
                         ct_tensor **k_seg) {
    const int64_t S = cache->length + positions->shape[1];
    write_slots(cache->positions, positions, cache->length);
    if (segments) write_slots(cache->segments, segments, cache->length);
    else {
        /* Segment 0 for every new slot, so a later call with segments sees these as one segment. */
        for (int64_t b = 0; b < cache->batch; b++)
            memset((int32_t *)cache->segments->data + b * cache->max_len + cache->length, 0,
                   sizeof(int32_t) * (size_t)positions->shape[1]);
    }
    *k_pos = filled_prefix(cache->positions, S);
    *k_seg = segments ? filled_prefix(cache->segments, S) : NULL;
    return *k_pos && (!segments || *k_seg) ? 0 : -1;
}

int ct_llama_cache_kv(ct_kv_cache *cache, int layer, int64_t time, ct_tensor **k, ct_tensor **v) {
    if ((*k)->requires_grad || (*v)->requires_grad)
        return ct_fail("KV cache: keys would lose their gradient in the cache; run cached forwards in no-grad "
                       "mode (ct_set_grad_enabled(false))");
    write_slots(cache->k[layer], *k, cache->length);
    write_slots(cache->v[layer], *v, cache->length);
    *k = filled_prefix(cache->k[layer], cache->length + time);
    *v = filled_prefix(cache->v[layer], cache->length + time);
    return *k && *v ? 0 : -1;
}
