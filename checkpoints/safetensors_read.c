/* safetensors reader: maps each file, validates its whole header, then hands out descriptors
 * whose bytes are known to lie inside the mapping. Nothing in a header is trusted before it is
 * checked: lengths are bounded before allocating, offsets before indexing, sizes before
 * multiplying. */
#include "checkpoints/safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"
#include "core/paths.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors data is little-endian; this reader copies it as-is"
#endif

/* cJSON keeps numbers as doubles: integers past 2^53 are not exact, so no offset or dimension
 * may exceed it (no real file comes near). */
#define MAX_EXACT_INTEGER 9007199254740992.0
/* Below this many elements a conversion is not worth waking the OpenMP threads. */
#define PARALLEL_MIN_ELEMENTS ((size_t)1 << 18)
#define NAMES_LISTED 5

typedef struct st_file {
    char *path;
    void *map;
    size_t size;
    int nmeta;
    char **meta_keys;
    char **meta_values;
} st_file;

struct ct_safetensors {
    char *path;
    st_file *files;
    int nfiles;
    ct_st_tensor *tensors;
    int count, capacity;
};

static const struct {
    const char *name;
    ct_dtype dtype;
} known_dtypes[] = {{"F32", CT_F32}, {"BF16", CT_BF16}, {"F16", CT_F16},
                    {"F64", CT_F64}, {"I32", CT_I32},   {"I8", CT_I8},
                    {"I64", CT_I64}};

/* ---- conversion ---------------------------------------------------------------------------- */

static int is_float(ct_dtype d) { return d == CT_F32 || d == CT_F64 || d == CT_BF16 || d == CT_F16; }

static double load_real(const unsigned char *p, ct_dtype d) {
    switch (d) {
    case CT_F32: { float v; memcpy(&v, p, 4); return v; }
    case CT_F64: { double v; memcpy(&v, p, 8); return v; }
    case CT_BF16: { uint16_t v; memcpy(&v, p, 2); return ct_bf16_to_f32(v); }
    default: { uint16_t v; memcpy(&v, p, 2); return ct_f16_to_f32(v); }
    }
}

static void store_real(unsigned char *p, ct_dtype d, double x) {
    switch (d) {
    case CT_F32: { float v = (float)x; memcpy(p, &v, 4); break; }
    case CT_F64: memcpy(p, &x, 8); break;
    case CT_BF16: { uint16_t v = ct_f32_to_bf16((float)x); memcpy(p, &v, 2); break; }
    default: { uint16_t v = ct_f32_to_f16((float)x); memcpy(p, &v, 2); break; }
    }
}

int ct_st_convert(void *dst, ct_dtype dst_dtype, const void *src, ct_dtype src_dtype, size_t n) {
    unsigned char *d = dst;
    const unsigned char *s = src;
    const int64_t count = (int64_t)n;
    const int parallel = n >= PARALLEL_MIN_ELEMENTS;
    if (dst_dtype == src_dtype) {
        /* Chunked so the page faults of a fresh mapping are taken on all threads. */
        const size_t bytes = n * ct_dtype_size(src_dtype), chunk = (size_t)1 << 20;
        const int64_t chunks = (int64_t)((bytes + chunk - 1) / chunk);
#pragma omp parallel for schedule(static) if (parallel)
        for (int64_t c = 0; c < chunks; c++) {
            size_t begin = (size_t)c * chunk;
            memcpy(d + begin, s + begin, bytes - begin < chunk ? bytes - begin : chunk);
        }
        return 0;
    }
    if (!is_float(dst_dtype) || !is_float(src_dtype))
        return ct_fail("safetensors: cannot convert %s to %s; only floating dtypes convert",
                       ct_dtype_name(src_dtype), ct_dtype_name(dst_dtype));
    /* The loading hot paths get their own loops so the compiler can vectorize them. */
    if (src_dtype == CT_BF16 && dst_dtype == CT_F32) {
#pragma omp parallel for schedule(static) if (parallel)
        for (int64_t i = 0; i < count; i++) {
            uint16_t h;
            memcpy(&h, s + 2 * i, 2);
            float f = ct_bf16_to_f32(h);
            memcpy(d + 4 * i, &f, 4);
        }
    } else if (src_dtype == CT_F16 && dst_dtype == CT_F32) {
#pragma omp parallel for schedule(static) if (parallel)
        for (int64_t i = 0; i < count; i++) {
            uint16_t h;
            memcpy(&h, s + 2 * i, 2);
            float f = ct_f16_to_f32(h);
            memcpy(d + 4 * i, &f, 4);
        }
    } else if (src_dtype == CT_F32 && dst_dtype == CT_BF16) {
#pragma omp parallel for schedule(static) if (parallel)
        for (int64_t i = 0; i < count; i++) {
            float f;
            memcpy(&f, s + 4 * i, 4);
            uint16_t h = ct_f32_to_bf16(f);
            memcpy(d + 2 * i, &h, 2);
        }
    } else {
        const size_t ss = ct_dtype_size(src_dtype), ds = ct_dtype_size(dst_dtype);
#pragma omp parallel for schedule(static) if (parallel)
        for (int64_t i = 0; i < count; i++)
            store_real(d + ds * (size_t)i, dst_dtype, load_real(s + ss * (size_t)i, src_dtype));
    }
    return 0;
}

/* ---- small helpers ------------------------------------------------------------------------- */

static const char *shape_str(const int64_t *shape, int ndim, char *buf, size_t size) {
    size_t used = (size_t)snprintf(buf, size, "[");
    for (int i = 0; i < ndim && used < size; i++)
        used += (size_t)snprintf(buf + used, size - used, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (used < size) snprintf(buf + used, size - used, "]");
    return buf;
}

/* A JSON number that is a non-negative integer cJSON holds exactly. */
static int json_uint(const cJSON *item, uint64_t *out) {
    if (!cJSON_IsNumber(item)) return -1;
    double v = item->valuedouble;
    if (!(v >= 0.0) || v > MAX_EXACT_INTEGER || v != (double)(uint64_t)v) return -1;
    *out = (uint64_t)v;
    return 0;
}

static int mul_overflows(uint64_t a, uint64_t b, uint64_t *out) {
    if (a != 0 && b > UINT64_MAX / a) return 1;
    *out = a * b;
    return 0;
}

static int push_tensor(ct_safetensors *st, const ct_st_tensor *t) {
    if (st->count == st->capacity) {
        int cap = st->capacity ? st->capacity * 2 : 64;
        ct_st_tensor *grown = realloc(st->tensors, (size_t)cap * sizeof *grown);
        if (!grown) return ct_fail("out of memory: %d tensor descriptors", cap);
        st->tensors = grown;
        st->capacity = cap;
    }
    st->tensors[st->count++] = *t;
    return 0;
}

static int by_name(const void *a, const void *b) {
    return strcmp(((const ct_st_tensor *)a)->name, ((const ct_st_tensor *)b)->name);
}

/* qsort and bsearch must not see a null array, which a file with no tensors has. */
static void sort_tensors(ct_safetensors *st) {
    if (st->count > 0) qsort(st->tensors, (size_t)st->count, sizeof *st->tensors, by_name);
}

static const ct_st_tensor *lookup(const ct_safetensors *st, const char *name) {
    ct_st_tensor key = {.name = name};
    return st->count > 0 ? bsearch(&key, st->tensors, (size_t)st->count, sizeof key, by_name) : NULL;
}

typedef struct span {
    uint64_t begin, end;
    const char *name;
} span;

static int by_begin(const void *a, const void *b) {
    const span *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

/* ---- one file ------------------------------------------------------------------------------ */

static int parse_metadata(st_file *f, const cJSON *meta) {
    if (!cJSON_IsObject(meta))
        return ct_fail("%s: \"__metadata__\" is not an object of strings; the header is corrupt", f->path);
    /* cJSON keeps a repeated key; a second "__metadata__" would append past the arrays sized
     * for the first (a heap overflow found by tests/fuzz/fuzz_safetensors.c) */
    if (f->meta_keys)
        return ct_fail("%s: \"__metadata__\" appears twice in the header; the header is corrupt", f->path);
    int n = cJSON_GetArraySize(meta);
    f->meta_keys = ct_calloc((size_t)n, sizeof(char *), "safetensors metadata");
    f->meta_values = ct_calloc((size_t)n, sizeof(char *), "safetensors metadata");
    if (!f->meta_keys || !f->meta_values) return -1;
    const cJSON *item;
    cJSON_ArrayForEach(item, meta) {
        if (!cJSON_IsString(item))
            return ct_fail("%s: \"__metadata__\" value '%s' is not a string; the header is corrupt",
                           f->path, item->string);
        f->meta_keys[f->nmeta] = ct_strdup(item->string);
        f->meta_values[f->nmeta] = ct_strdup(item->valuestring);
        if (!f->meta_keys[f->nmeta] || !f->meta_values[f->nmeta]) return -1;
        f->nmeta++;
    }
    return 0;
}

/* Validates one header entry and fills t (except the name). */
static int parse_entry(const st_file *f, const char *name, const cJSON *entry, const unsigned char *data,
                       uint64_t data_len, ct_st_tensor *t, span *sp) {
    if (!cJSON_IsObject(entry))
        return ct_fail("%s: tensor '%s' is not a JSON object; the header is corrupt", f->path, name);
    const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(entry, "dtype");
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(entry, "shape");
    const cJSON *offsets = cJSON_GetObjectItemCaseSensitive(entry, "data_offsets");
    if (!cJSON_IsString(dtype) || !cJSON_IsArray(shape) || !cJSON_IsArray(offsets))
        return ct_fail("%s: tensor '%s' lacks a string \"dtype\", an array \"shape\" or an array "
                       "\"data_offsets\"; the header is corrupt", f->path, name);
    int found = 0;
    for (size_t i = 0; i < sizeof known_dtypes / sizeof known_dtypes[0]; i++)
        if (strcmp(dtype->valuestring, known_dtypes[i].name) == 0) {
            t->dtype = known_dtypes[i].dtype;
            found = 1;
        }
    if (!found)
        return ct_fail("%s: tensor '%s' has dtype '%s', which ctune does not read (supported: F32, "
                       "BF16, F16, F64, I32, I8, I64); convert the checkpoint first", f->path, name,
                       dtype->valuestring);
    int ndim = cJSON_GetArraySize(shape);
    if (ndim > CT_ST_MAX_DIMS)
        return ct_fail("%s: tensor '%s' has %d dimensions; at most %d are supported", f->path, name, ndim,
                       CT_ST_MAX_DIMS);
    t->ndim = ndim;
    uint64_t numel = 1;
    int d = 0;
    const cJSON *dim;
    cJSON_ArrayForEach(dim, shape) {
        uint64_t v;
        if (json_uint(dim, &v) < 0)
            return ct_fail("%s: tensor '%s' has a shape entry that is not a non-negative integer; the "
                           "header is corrupt", f->path, name);
        t->shape[d++] = (int64_t)v;
        if (mul_overflows(numel, v, &numel))
            return ct_fail("%s: tensor '%s' has a shape whose element count overflows; the header is "
                           "corrupt", f->path, name);
    }
    uint64_t begin, end, need = 0;
    if (cJSON_GetArraySize(offsets) != 2 || json_uint(cJSON_GetArrayItem(offsets, 0), &begin) < 0 ||
        json_uint(cJSON_GetArrayItem(offsets, 1), &end) < 0)
        return ct_fail("%s: tensor '%s' needs \"data_offsets\": [begin, end] of non-negative integers; "
                       "the header is corrupt", f->path, name);
    if (end < begin || end > data_len)
        return ct_fail("%s: tensor '%s' has data_offsets [%llu, %llu] outside the %llu-byte data region; "
                       "the file is truncated or corrupt", f->path, name, (unsigned long long)begin,
                       (unsigned long long)end, (unsigned long long)data_len);
    char buf[160];
    if (mul_overflows(numel, ct_dtype_size(t->dtype), &need) || need != end - begin)
        return ct_fail("%s: tensor '%s' has %llu bytes of data but shape %s of %s needs %llu; the header "
                       "is inconsistent", f->path, name, (unsigned long long)(end - begin),
                       shape_str(t->shape, ndim, buf, sizeof buf), dtype->valuestring,
                       (unsigned long long)need);
    t->bytes = data + begin;
    t->nbytes = (size_t)(end - begin);
    t->file = f->path;
    sp->begin = begin;
    sp->end = end;
    sp->name = name;
    return 0;
}

static int parse_header(ct_safetensors *st, st_file *f, const unsigned char *data, uint64_t data_len,
                        const cJSON *root) {
    int n = cJSON_GetArraySize(root);
    span *spans = ct_calloc((size_t)n, sizeof *spans, "safetensors offsets");
    if (!spans) return -1;
    int nspans = 0, status = 0;
    const cJSON *entry;
    cJSON_ArrayForEach(entry, root) {
        if (strcmp(entry->string, "__metadata__") == 0) {
            if ((status = parse_metadata(f, entry)) < 0) break;
            continue;
        }
        ct_st_tensor t = {0};
        if ((status = parse_entry(f, entry->string, entry, data, data_len, &t, &spans[nspans])) < 0) break;
        if (!(t.name = ct_strdup(entry->string)) || (status = push_tensor(st, &t)) < 0) {
            free((char *)t.name);
            status = -1;
            break;
        }
        nspans++;
    }
    /* Overlap check: sorted by start, each tensor must begin at or after the previous end. */
    if (status == 0) {
        qsort(spans, (size_t)nspans, sizeof *spans, by_begin);
        int last = -1; /* the non-empty span reaching furthest so far */
        for (int i = 0; i < nspans; i++) {
            if (spans[i].end == spans[i].begin) continue; /* empty tensors occupy no bytes */
            if (last >= 0 && spans[i].begin < spans[last].end) {
                status = ct_fail("%s: tensors '%s' [%llu, %llu] and '%s' [%llu, %llu] overlap; the file "
                                 "is corrupt", f->path, spans[last].name, (unsigned long long)spans[last].begin,
                                 (unsigned long long)spans[last].end, spans[i].name,
                                 (unsigned long long)spans[i].begin, (unsigned long long)spans[i].end);
                break;
            }
            if (last < 0 || spans[i].end > spans[last].end) last = i;
        }
    }
    free(spans);
    return status;
}

static int open_file(ct_safetensors *st, st_file *f) {
    int fd = open(f->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return ct_fail("%s: cannot open (%s); check the path", f->path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return ct_fail("%s: not a regular file", f->path);
    }
    uint64_t size = (uint64_t)sb.st_size;
    if (size < 8) {
        close(fd);
        return ct_fail("%s: file is %llu bytes, too short for the 8-byte header length; the file is "
                       "truncated or not safetensors", f->path, (unsigned long long)size);
    }
    /* MAP_PRIVATE + PROT_READ: the mapping is never written, and a file changed under us by
     * another writer's rename keeps our pages. */
    void *map = mmap(NULL, (size_t)size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) return ct_fail("%s: cannot map %llu bytes (%s)", f->path, (unsigned long long)size, strerror(errno));
    f->map = map;
    f->size = (size_t)size;
    const unsigned char *bytes = map;
    uint64_t header_len = 0;
    for (int i = 7; i >= 0; i--) header_len = header_len << 8 | bytes[i];
    /* Both bounds before anything is allocated or parsed. */
    if (header_len > CT_ST_MAX_HEADER)
        return ct_fail("%s: header length %llu exceeds the %llu-byte limit; the file is corrupt or not "
                       "safetensors", f->path, (unsigned long long)header_len,
                       (unsigned long long)CT_ST_MAX_HEADER);
    if (header_len > size - 8)
        return ct_fail("%s: header length %llu is larger than the %llu bytes that follow it; the file is "
                       "truncated or corrupt", f->path, (unsigned long long)header_len,
                       (unsigned long long)(size - 8));
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts((const char *)bytes + 8, (size_t)header_len, &end, 0);
    if (!root) {
        size_t at = end ? (size_t)(end - (const char *)bytes) : 8;
        return ct_fail("%s: header is not valid JSON (parse stopped near byte %zu); the file is corrupt "
                       "or not safetensors", f->path, at);
    }
    /* Only padding may follow the JSON value inside the declared header. */
    for (const char *p = end; p && p < (const char *)bytes + 8 + header_len; p++)
        if (*p != ' ' && *p != '\n' && *p != '\r' && *p != '\t' && *p != '\0') {
            cJSON_Delete(root);
            return ct_fail("%s: header has bytes after its JSON object; the file is corrupt", f->path);
        }
    int status = cJSON_IsObject(root)
                     ? parse_header(st, f, bytes + 8 + header_len, size - 8 - header_len, root)
                     : ct_fail("%s: header is not a JSON object; the file is corrupt", f->path);
    cJSON_Delete(root);
    return status;
}

/* ---- opening: file, index or directory ----------------------------------------------------- */

static char *join(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = ct_malloc(n, "a path");
    if (p) snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static int is_dir(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

static int exists(const char *path) { return access(path, F_OK) == 0; }

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}


static int shard_name_ok(const char *s) {
    return s[0] && strchr(s, '/') == NULL && strcmp(s, ".") != 0 && strcmp(s, "..") != 0;
}

static int open_index(ct_safetensors *st, const char *index_path) {
    size_t len = 0;
    char *text = ct_read_file(index_path, CT_ST_MAX_HEADER, &len);
    if (!text) return -1;
    cJSON *root = cJSON_ParseWithLength(text, len);
    free(text);
    const cJSON *map = root ? cJSON_GetObjectItemCaseSensitive(root, "weight_map") : NULL;
    if (!cJSON_IsObject(map)) {
        cJSON_Delete(root);
        return ct_fail("%s: not JSON with a \"weight_map\" object; the index is corrupt", index_path);
    }
    /* Index files live beside their shards. */
    char *dir = ct_strdup(index_path);
    if (!dir) {
        cJSON_Delete(root);
        return -1;
    }
    char *slash = strrchr(dir, '/');
    if (slash) *slash = '\0';
    else strcpy(dir, ".");
    int n = cJSON_GetArraySize(map), status = 0;
    st->files = ct_calloc((size_t)(n ? n : 1), sizeof *st->files, "safetensors shards");
    const char **shard_names = ct_calloc((size_t)(n ? n : 1), sizeof *shard_names, "safetensors shards");
    if (!st->files || !shard_names) status = -1;
    const cJSON *item;
    if (status == 0) cJSON_ArrayForEach(item, map) {
        if (!cJSON_IsString(item) || !shard_name_ok(item->valuestring)) {
            status = ct_fail("%s: weight_map entry '%s' must name a shard file in the same directory",
                             index_path, item->string);
            break;
        }
        int k = 0;
        while (k < st->nfiles && strcmp(shard_names[k], item->valuestring) != 0) k++;
        if (k < st->nfiles) continue;
        shard_names[k] = item->valuestring;
        if (!(st->files[k].path = join(dir, item->valuestring))) {
            status = -1;
            break;
        }
        st->nfiles++;
        if ((status = open_file(st, &st->files[k])) < 0) break;
    }
    if (status == 0) {
        sort_tensors(st);
        /* Every mapped name must be in the shard the index says. */
        cJSON_ArrayForEach(item, map) {
            const ct_st_tensor *t = lookup(st, item->string);
            char *want = join(dir, item->valuestring);
            if (!want) {
                status = -1;
                break;
            }
            int ok = t && strcmp(t->file, want) == 0;
            free(want);
            if (!ok) {
                status = ct_fail("%s: weight_map puts tensor '%s' in %s, but %s; the index and shards "
                                 "disagree", index_path, item->string, item->valuestring,
                                 t ? "it is in another shard" : "no shard holds it");
                break;
            }
        }
    }
    free(shard_names);
    free(dir);
    cJSON_Delete(root);
    return status;
}

void ct_safetensors_close(ct_safetensors *st) {
    if (!st) return;
    for (int i = 0; i < st->count; i++) free((char *)st->tensors[i].name);
    free(st->tensors);
    for (int i = 0; st->files && i < st->nfiles; i++) {
        st_file *f = &st->files[i];
        if (f->map) munmap(f->map, f->size);
        for (int k = 0; k < f->nmeta; k++) {
            free(f->meta_keys[k]);
            free(f->meta_values[k]);
        }
        free(f->meta_keys);
        free(f->meta_values);
        free(f->path);
    }
    free(st->files);
    free(st->path);
    free(st);
}

ct_safetensors *ct_safetensors_open(const char *path_or_dir) {
    ct_safetensors *st = ct_calloc(1, sizeof *st, "a safetensors reader");
    if (!st) return NULL;
    int status = 0;
    if (is_dir(path_or_dir)) {
        char *single = join(path_or_dir, "model.safetensors");
        char *index = join(path_or_dir, "model.safetensors.index.json");
        if (!single || !index) status = -1;
        else if (exists(single)) st->path = single, single = NULL;
        else if (exists(index)) st->path = index, index = NULL;
        else status = ct_fail("%s: holds neither model.safetensors nor model.safetensors.index.json; "
                              "point at a Hugging Face model folder", path_or_dir);
        free(single);
        free(index);
    } else if (!(st->path = ct_strdup(path_or_dir))) {
        status = -1;
    }
    if (status == 0 && ends_with(st->path, ".index.json")) {
        status = open_index(st, st->path);
    } else if (status == 0) {
        st->files = ct_calloc(1, sizeof *st->files, "a safetensors file");
        if (!st->files || !(st->files[0].path = ct_strdup(st->path))) status = -1;
        else {
            st->nfiles = 1;
            status = open_file(st, &st->files[0]);
        }
        if (status == 0) sort_tensors(st);
    }
    /* Names must be unique: JSON allows repeated keys, and shards could repeat each other. */
    for (int i = 1; status == 0 && i < st->count; i++)
        if (strcmp(st->tensors[i].name, st->tensors[i - 1].name) == 0)
            status = ct_fail("%s: tensor '%s' appears twice; the checkpoint is corrupt", st->path,
                             st->tensors[i].name);
    if (status < 0) {
        ct_safetensors_close(st);
        return NULL;
    }
    return st;
}

/* ---- queries ------------------------------------------------------------------------------- */

const char *ct_safetensors_path(const ct_safetensors *st) { return st->path; }

int ct_safetensors_count(const ct_safetensors *st) { return st->count; }

const ct_st_tensor *ct_safetensors_at(const ct_safetensors *st, int i) {
    return i >= 0 && i < st->count ? &st->tensors[i] : NULL;
}

const ct_st_tensor *ct_safetensors_find(const ct_safetensors *st, const char *name) {
    const ct_st_tensor *t = lookup(st, name);
    if (!t) ct_fail("%s: no tensor named '%s' (the checkpoint has %d tensors)", st->path, name, st->count);
    return t;
}

const char *ct_safetensors_metadata(const ct_safetensors *st, const char *key) {
    for (int i = 0; i < st->nfiles; i++)
        for (int k = 0; k < st->files[i].nmeta; k++)
            if (strcmp(st->files[i].meta_keys[k], key) == 0) return st->files[i].meta_values[k];
    return NULL;
}

int ct_safetensors_load_into(const ct_safetensors *st, const char *name, ct_tensor *dst) {
    const ct_st_tensor *t = ct_safetensors_find(st, name);
    if (!t) return -1;
    if (dst->device != CT_CPU)
        return ct_fail("%s: tensor '%s': load into a CPU tensor, then copy it to the device", t->file, name);
    int same = dst->ndim == t->ndim;
    for (int i = 0; same && i < t->ndim; i++) same = dst->shape[i] == t->shape[i];
    if (!same) {
        char have[160], want[160];
        return ct_fail("%s: tensor '%s' has shape %s; the model expects %s", t->file, name,
                       shape_str(t->shape, t->ndim, have, sizeof have),
                       shape_str(dst->shape, dst->ndim, want, sizeof want));
    }
    if (dst->dtype == CT_I8 || (t->dtype != dst->dtype && (!is_float(t->dtype) || !is_float(dst->dtype))))
        return ct_fail("%s: tensor '%s' is %s and cannot load into a %s tensor; load into f32 or bf16",
                       t->file, name, ct_dtype_name(t->dtype), ct_dtype_name(dst->dtype));
    size_t n = (size_t)ct_numel(dst);
    return ct_st_convert(dst->data, dst->dtype, t->bytes, t->dtype, n);
}

static int str_less(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

/* Appends ", 'name'" to a list of at most NAMES_LISTED names. */
static void list_name(char *buf, size_t size, int index, const char *name) {
    size_t used = strlen(buf);
    if (index < NAMES_LISTED && used < size)
        snprintf(buf + used, size - used, "%s'%s'", index ? ", " : "", name);
    else if (index == NAMES_LISTED && used < size)
        snprintf(buf + used, size - used, ", ...");
}

int ct_safetensors_check_names(const ct_safetensors *st, const char *const *expected, int n,
                               bool allow_unexpected) {
    const char **sorted = ct_malloc((size_t)(n ? n : 1) * sizeof *sorted, "expected tensor names");
    if (!sorted) return -1;
    memcpy(sorted, expected, (size_t)n * sizeof *sorted);
    qsort(sorted, (size_t)n, sizeof *sorted, str_less);
    char missing[768] = "", unexpected[768] = "";
    int nmissing = 0, nunexpected = 0;
    /* Both lists are sorted: one merge pass finds names only on either side. */
    int i = 0, j = 0;
    while (i < n || j < st->count) {
        int c = i >= n ? 1 : j >= st->count ? -1 : strcmp(sorted[i], st->tensors[j].name);
        if (c < 0) list_name(missing, sizeof missing, nmissing++, sorted[i++]);
        else if (c > 0) list_name(unexpected, sizeof unexpected, nunexpected++, st->tensors[j++].name);
        else i++, j++;
    }
    free(sorted);
    if (allow_unexpected) nunexpected = 0;
    if (nmissing && nunexpected)
        return ct_fail("%s: %d tensors missing (%s) and %d unexpected (%s); the checkpoint does not match "
                       "the model", st->path, nmissing, missing, nunexpected, unexpected);
    if (nmissing)
        return ct_fail("%s: %d tensors missing (%s); the checkpoint does not match the model", st->path,
                       nmissing, missing);
    if (nunexpected)
        return ct_fail("%s: %d unexpected tensors (%s); the checkpoint does not match the model", st->path,
                       nunexpected, unexpected);
    return 0;
}

void ct_safetensors_release(const ct_safetensors *st, const char *name) {
    const ct_st_tensor *t = ct_safetensors_find(st, name);
    const long page = sysconf(_SC_PAGESIZE);
    if (!t || page <= 0 || t->nbytes == 0) return;
    const uintptr_t start = ((uintptr_t)t->bytes + (uintptr_t)page - 1) / (uintptr_t)page * (uintptr_t)page;
    const uintptr_t end = ((uintptr_t)t->bytes + t->nbytes) / (uintptr_t)page * (uintptr_t)page;
    if (end > start) (void)madvise((void *)start, end - start, MADV_DONTNEED);
}
