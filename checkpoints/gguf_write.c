/* Writing GGUF v3 files (checkpoints/gguf.h).
 *
 * Key-values are serialized as they are set, into one buffer; tensors are kept as pointers until
 * ct_gguf_write, which lays the infos out with offsets contiguous in info order (each tensor
 * padded to the alignment, as llama.cpp's loader demands) and streams the data to a temporary
 * file that is renamed over the target only once it is whole. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checkpoints/gguf.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "core/strbuf.h"

typedef struct {
    char name[CT_GGUF_MAX_NAME];
    ct_gguf_type type;
    int n_dims;
    int64_t ne[CT_GGUF_MAX_DIMS];
    const void *data;
    ct_gguf_fill_fn fill; /* or this makes the bytes at write time */
    void *fill_ctx;
    uint64_t nbytes;
    bool owned;
} writer_tensor;

struct ct_gguf_writer {
    ct_strbuf kv;    /* the serialized key-values */
    int64_t n_kv;
    char **keys;     /* to refuse a key set twice */
    writer_tensor *tensors;
    int64_t n_tensors, cap_tensors;
};

ct_gguf_writer *ct_gguf_writer_new(void) { return ct_calloc(1, sizeof(ct_gguf_writer), "a GGUF writer"); }

void ct_gguf_writer_free(ct_gguf_writer *w) {
    if (!w) return;
    for (int64_t i = 0; i < w->n_kv; i++) free(w->keys[i]);
    free(w->keys);
    for (int64_t i = 0; i < w->n_tensors; i++)
        if (w->tensors[i].owned) free((void *)w->tensors[i].data);
    free(w->tensors);
    ct_strbuf_free(&w->kv);
    free(w);
}

static int put(ct_gguf_writer *w, const void *bytes, size_t n) { return ct_strbuf_append(&w->kv, bytes, n); }
static int put_u32(ct_gguf_writer *w, uint32_t v) { return put(w, &v, 4); }
static int put_u64(ct_gguf_writer *w, uint64_t v) { return put(w, &v, 8); }
static int put_str(ct_gguf_writer *w, const char *s, size_t len) {
    CT_TRY(put_u64(w, len));
    return put(w, s, len);
}

/* The key and its type id; refuses a duplicate (llama.cpp refuses such a file). */
static int begin_kv(ct_gguf_writer *w, const char *key, ct_gguf_vtype type) {
    for (int64_t i = 0; i < w->n_kv; i++)
        if (!strcmp(w->keys[i], key)) return ct_fail("GGUF key %s set twice", key);
    char **keys = realloc(w->keys, sizeof *keys * (size_t)(w->n_kv + 1));
    if (!keys) return ct_fail("out of memory adding GGUF key %s", key);
    w->keys = keys;
    if (!(keys[w->n_kv] = ct_strdup(key))) return -1;
    w->n_kv++;
    CT_TRY(put_str(w, key, strlen(key)));
    return put_u32(w, (uint32_t)type);
}

int ct_gguf_set_u32(ct_gguf_writer *w, const char *key, uint32_t value) {
    CT_TRY(begin_kv(w, key, CT_GGUF_V_U32));
    return put_u32(w, value);
}

int ct_gguf_set_i32(ct_gguf_writer *w, const char *key, int32_t value) {
    CT_TRY(begin_kv(w, key, CT_GGUF_V_I32));
    return put(w, &value, 4);
}

int ct_gguf_set_f32(ct_gguf_writer *w, const char *key, float value) {
    CT_TRY(begin_kv(w, key, CT_GGUF_V_F32));
    return put(w, &value, 4);
}

int ct_gguf_set_bool(ct_gguf_writer *w, const char *key, bool value) {
    CT_TRY(begin_kv(w, key, CT_GGUF_V_BOOL));
    uint8_t b = value ? 1 : 0;
    return put(w, &b, 1);
}

int ct_gguf_set_string_n(ct_gguf_writer *w, const char *key, const char *value, size_t len) {
    CT_TRY(begin_kv(w, key, CT_GGUF_V_STRING));
    return put_str(w, value, len);
}

int ct_gguf_set_string(ct_gguf_writer *w, const char *key, const char *value) {
    return ct_gguf_set_string_n(w, key, value, strlen(value));
}

int ct_gguf_set_string_array(ct_gguf_writer *w, const char *key, const char *const *values, uint64_t n) {
    CT_TRY(begin_kv(w, key, CT_GGUF_V_ARRAY));
    CT_TRY(put_u32(w, CT_GGUF_V_STRING));
    CT_TRY(put_u64(w, n));
    for (uint64_t i = 0; i < n; i++) CT_TRY(put_str(w, values[i], strlen(values[i])));
    return 0;
}

int ct_gguf_set_i32_array(ct_gguf_writer *w, const char *key, const int32_t *values, uint64_t n) {
    CT_TRY(begin_kv(w, key, CT_GGUF_V_ARRAY));
    CT_TRY(put_u32(w, CT_GGUF_V_I32));
    CT_TRY(put_u64(w, n));
    return put(w, values, (size_t)n * 4);
}

static int add_info(ct_gguf_writer *w, const char *name, ct_gguf_type type, int n_dims, const int64_t *ne,
                    writer_tensor **out) {
    if (strlen(name) >= CT_GGUF_MAX_NAME) return ct_fail("GGUF tensor name %s is %d bytes or longer", name, CT_GGUF_MAX_NAME);
    if (n_dims < 1 || n_dims > CT_GGUF_MAX_DIMS) return ct_fail("GGUF tensor %s: %d dimensions", name, n_dims);
    int64_t rows = 1;
    for (int d = 1; d < n_dims; d++) rows *= ne[d];
    uint64_t nbytes = ct_gguf_nbytes(type, ne[0], rows);
    if (!nbytes)
        return ct_fail("GGUF tensor %s: %s cannot hold rows of %lld elements", name, ct_gguf_type_name(type), (long long)ne[0]);
    for (int64_t i = 0; i < w->n_tensors; i++)
        if (!strcmp(w->tensors[i].name, name)) return ct_fail("GGUF tensor %s added twice", name);
    if (w->n_tensors == w->cap_tensors) {
        int64_t cap = w->cap_tensors ? 2 * w->cap_tensors : 64;
        writer_tensor *t = realloc(w->tensors, sizeof *t * (size_t)cap);
        if (!t) return ct_fail("out of memory adding GGUF tensor %s", name);
        w->tensors = t;
        w->cap_tensors = cap;
    }
    writer_tensor *t = &w->tensors[w->n_tensors++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->type = type;
    t->n_dims = n_dims;
    for (int d = 0; d < n_dims; d++) t->ne[d] = ne[d];
    t->nbytes = nbytes;
    *out = t;
    return 0;
}

int ct_gguf_add_tensor(ct_gguf_writer *w, const char *name, ct_gguf_type type, int n_dims, const int64_t *ne,
                       const void *data, bool owned) {
    writer_tensor *t;
    if (add_info(w, name, type, n_dims, ne, &t) < 0) {
        if (owned) free((void *)data);
        return -1;
    }
    t->data = data;
    t->owned = owned;
    return 0;
}

int ct_gguf_add_tensor_fill(ct_gguf_writer *w, const char *name, ct_gguf_type type, int n_dims, const int64_t *ne,
                            ct_gguf_fill_fn fill, void *ctx) {
    writer_tensor *t;
    CT_TRY(add_info(w, name, type, n_dims, ne, &t));
    t->fill = fill;
    t->fill_ctx = ctx;
    return 0;
}

static uint64_t pad_to(uint64_t n, uint64_t align) { return (n + align - 1) / align * align; }

/* The header, key-values and tensor infos, padded to the alignment. */
static int header(const ct_gguf_writer *w, ct_strbuf *h) {
    const uint32_t version = 3;
    const int64_t n_tensors = w->n_tensors, n_kv = w->n_kv;
    CT_TRY(ct_strbuf_append(h, "GGUF", 4));
    CT_TRY(ct_strbuf_append(h, &version, 4));
    CT_TRY(ct_strbuf_append(h, &n_tensors, 8));
    CT_TRY(ct_strbuf_append(h, &n_kv, 8));
    if (w->kv.len) CT_TRY(ct_strbuf_append(h, w->kv.data, w->kv.len));
    uint64_t offset = 0;
    for (int64_t i = 0; i < w->n_tensors; i++) {
        const writer_tensor *t = &w->tensors[i];
        uint64_t len = strlen(t->name);
        uint32_t n_dims = (uint32_t)t->n_dims, type = (uint32_t)t->type;
        CT_TRY(ct_strbuf_append(h, &len, 8));
        CT_TRY(ct_strbuf_append(h, t->name, len));
        CT_TRY(ct_strbuf_append(h, &n_dims, 4));
        CT_TRY(ct_strbuf_append(h, t->ne, 8 * (size_t)t->n_dims));
        CT_TRY(ct_strbuf_append(h, &type, 4));
        CT_TRY(ct_strbuf_append(h, &offset, 8));
        offset += pad_to(t->nbytes, CT_GGUF_ALIGNMENT);
    }
    static const char zeros[CT_GGUF_ALIGNMENT];
    return ct_strbuf_append(h, zeros, pad_to(h->len, CT_GGUF_ALIGNMENT) - h->len);
}

/* 0, -1 with a message from a fill, or 1 for an I/O error (errno). */
static int write_all(FILE *f, const ct_gguf_writer *w, const ct_strbuf *h, ct_gguf_progress_fn progress, void *ctx) {
    static const char zeros[CT_GGUF_ALIGNMENT];
    if (fwrite(h->data, 1, h->len, f) != h->len) return 1;
    uint64_t total = 0, done = 0, biggest = 0;
    for (int64_t i = 0; i < w->n_tensors; i++) {
        total += w->tensors[i].nbytes;
        if (w->tensors[i].fill && w->tensors[i].nbytes > biggest) biggest = w->tensors[i].nbytes;
    }
    uint8_t *buffer = biggest ? ct_malloc(biggest, "a tensor's bytes") : NULL;
    if (biggest && !buffer) return -1;
    int rc = 0;
    for (int64_t i = 0; i < w->n_tensors && rc == 0; i++) {
        const writer_tensor *t = &w->tensors[i];
        size_t pad = (size_t)(pad_to(t->nbytes, CT_GGUF_ALIGNMENT) - t->nbytes);
        const void *bytes = t->data;
        if (t->fill) {
            if (t->fill(t->fill_ctx, buffer) < 0) rc = -1;
            bytes = buffer;
        }
        if (rc == 0 && (fwrite(bytes, 1, (size_t)t->nbytes, f) != t->nbytes || fwrite(zeros, 1, pad, f) != pad)) rc = 1;
        done += t->nbytes;
        if (rc == 0 && progress) progress(ctx, (int)i + 1, (int)w->n_tensors, done, total);
    }
    free(buffer);
    return rc;
}

int ct_gguf_write(const ct_gguf_writer *w, const char *path, ct_gguf_progress_fn progress, void *ctx) {
    ct_strbuf h = {0};
    if (header(w, &h) < 0) {
        ct_strbuf_free(&h);
        return ct_fail_context("%s: ", path);
    }
    char *tmp = NULL;
    FILE *f = ct_atomic_fopen(path, &tmp);
    if (!f) {
        ct_strbuf_free(&h);
        return -1;
    }
    int written = write_all(f, w, &h, progress, ctx);
    int saved = errno;
    int closed = fclose(f) == 0;
    ct_strbuf_free(&h);
    if (written != 0 || !closed) {
        ct_atomic_discard(tmp);
        free(tmp);
        if (written < 0) return ct_fail_context("%s: ", path);
        return ct_fail("%s: writing failed (%s); check free disk space; nothing was written there", path,
                       strerror(saved ? saved : errno));
    }
    int rc = ct_atomic_commit(tmp, path);
    free(tmp);
    return rc;
}
