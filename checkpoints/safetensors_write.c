/* safetensors writer: a JSON header built with cJSON, then the tensors back to back.
 *
 * Durability: the bytes go to a temporary file in the target's directory (same filesystem, so
 * the rename is atomic), which is fsynced, renamed over the target, and the directory fsynced so
 * the rename itself survives a crash. Any failure unlinks the temporary and leaves an existing
 * target as it was. */
#include "checkpoints/safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"
#include "core/atomic_file.h"

/* Conversions are staged through a buffer of this many elements, bounding the extra memory. */
#define STAGE_ELEMENTS ((size_t)1 << 20)

typedef struct entry {
    const char *name;
    const ct_tensor *tensor;
    ct_dtype store;
    size_t nbytes;
} entry;

static const char *st_dtype_name(ct_dtype d) {
    switch (d) {
    case CT_F32: return "F32";
    case CT_F64: return "F64";
    case CT_BF16: return "BF16";
    case CT_F16: return "F16";
    case CT_I32: return "I32";
    case CT_I64: return "I64";
    default: return "I8";
    }
}

/* Larger elements first, then by name: offsets stay multiples of each element's size (readers
 * that cast get aligned data, and there are no holes), and the order never depends on the
 * caller's. This is also the order the reference Python library writes. */
static int entry_order(const void *a, const void *b) {
    const entry *x = a, *y = b;
    size_t sx = ct_dtype_size(x->store), sy = ct_dtype_size(y->store);
    if (sx != sy) return sx > sy ? -1 : 1;
    return strcmp(x->name, y->name);
}

static int write_all(int fd, const void *buf, size_t n, const char *path) {
    const unsigned char *p = buf;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0)
            return ct_fail("%s: write failed (%s); check free disk space", path, w < 0 ? strerror(errno) : "no progress");
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int write_tensor(int fd, const entry *e, void *stage, const char *path) {
    const ct_tensor *t = e->tensor;
    size_t n = (size_t)ct_numel(t);
    if (t->dtype == e->store) return write_all(fd, t->data, e->nbytes, path);
    size_t in = ct_dtype_size(t->dtype), out = ct_dtype_size(e->store);
    for (size_t done = 0; done < n; done += STAGE_ELEMENTS) {
        size_t k = n - done < STAGE_ELEMENTS ? n - done : STAGE_ELEMENTS;
        CT_TRY(ct_st_convert(stage, e->store, (const unsigned char *)t->data + done * in, t->dtype, k));
        CT_TRY(write_all(fd, stage, k * out, path));
    }
    return 0;
}

/* The header: {"__metadata__": {"format": "pt"}, name: {dtype, shape, data_offsets}, ...},
 * padded with spaces so the data region starts at a multiple of 8. */
static char *build_header(const entry *entries, int n, size_t *padded_len) {
    cJSON *root = cJSON_CreateObject();
    cJSON *meta = cJSON_AddObjectToObject(root, "__metadata__");
    int ok = root && meta && cJSON_AddStringToObject(meta, "format", "pt");
    uint64_t offset = 0;
    for (int i = 0; ok && i < n; i++) {
        const entry *e = &entries[i];
        cJSON *obj = cJSON_AddObjectToObject(root, e->name);
        cJSON *shape = cJSON_CreateArray(), *offsets = cJSON_CreateArray();
        ok = obj && shape && offsets;
        if (!ok) {
            cJSON_Delete(shape);
            cJSON_Delete(offsets);
            break;
        }
        cJSON_AddStringToObject(obj, "dtype", st_dtype_name(e->store));
        cJSON_AddItemToObject(obj, "shape", shape);
        cJSON_AddItemToObject(obj, "data_offsets", offsets);
        for (int d = 0; d < e->tensor->ndim; d++) cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)e->tensor->shape[d]));
        cJSON_AddItemToArray(offsets, cJSON_CreateNumber((double)offset));
        offset += e->nbytes;
        cJSON_AddItemToArray(offsets, cJSON_CreateNumber((double)offset));
    }
    char *json = ok ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    if (!json) {
        ct_fail("safetensors: out of memory building the header");
        return NULL;
    }
    size_t len = strlen(json), padded = (len + 7) / 8 * 8;
    char *out = ct_malloc(padded, "a safetensors header");
    if (out) {
        memcpy(out, json, len);
        memset(out + len, ' ', padded - len);
        *padded_len = padded;
    }
    free(json);
    return out;
}

static int check_items(const ct_st_item *items, int n, ct_dtype store_dtype, entry *entries, const char *path) {
    if (store_dtype != CT_F32 && store_dtype != CT_BF16 && store_dtype != CT_F16)
        return ct_fail("%s: cannot store tensors as %s; use f32, bf16 or f16", path, ct_dtype_name(store_dtype));
    for (int i = 0; i < n; i++) {
        const ct_tensor *t = items[i].tensor;
        const char *name = items[i].name;
        if (!name || !name[0] || strcmp(name, "__metadata__") == 0 || !t)
            return ct_fail("%s: item %d needs a tensor and a name other than \"__metadata__\"", path, i);
        if (t->device != CT_CPU)
            return ct_fail("%s: tensor '%s' is on the GPU; copy it to the CPU before writing", path, name);
        if (t->dtype == CT_I8)
            return ct_fail("%s: tensor '%s' is i8 with separate scales; dequantize it before writing", path, name);
        entries[i].name = name;
        entries[i].tensor = t;
        entries[i].store = t->dtype == CT_I32 || t->dtype == CT_I64 ? t->dtype : store_dtype;
        entries[i].nbytes = (size_t)ct_numel(t) * ct_dtype_size(entries[i].store);
    }
    qsort(entries, (size_t)n, sizeof *entries, entry_order);
    for (int i = 1; i < n; i++)
        if (strcmp(entries[i].name, entries[i - 1].name) == 0)
            return ct_fail("%s: tensor name '%s' is given twice; names must be unique", path, entries[i].name);
    return 0;
}

int ct_safetensors_write(const char *path, const ct_st_item *items, int n, ct_dtype store_dtype) {
    entry *entries = ct_calloc((size_t)(n > 0 ? n : 1), sizeof *entries, "safetensors entries");
    if (!entries) return -1;
    char *header = NULL, *tmp = NULL;
    void *stage = NULL;
    size_t header_len = 0;
    int status = check_items(items, n, store_dtype, entries, path);
    if (status == 0 && !(header = build_header(entries, n, &header_len))) status = -1;
    if (status == 0 && !(stage = ct_malloc(STAGE_ELEMENTS * 8, "a safetensors write buffer"))) status = -1;
    FILE *f = NULL;
    if (status == 0 && !(f = ct_atomic_fopen(path, &tmp))) status = -1;
    if (status == 0) {
        int fd = fileno(f);
        unsigned char len8[8];
        for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)header_len >> (8 * i));
        status = write_all(fd, len8, 8, path);
        if (status == 0) status = write_all(fd, header, header_len, path);
        for (int i = 0; status == 0 && i < n; i++) status = write_tensor(fd, &entries[i], stage, path);
        if (fclose(f) != 0 && status == 0) status = ct_fail("%s: close failed (%s)", path, strerror(errno));
        if (status < 0) ct_atomic_discard(tmp);
        else status = ct_atomic_commit(tmp, path);
    }
    free(tmp);
    free(stage);
    free(header);
    free(entries);
    return status;
}
