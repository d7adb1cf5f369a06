/* Reading GGUF v3 files (checkpoints/gguf.h).
 *
 * The file is mapped read-only and parsed once. Every count, length, type id and offset read
 * from it is checked against the bytes that remain before anything is allocated or indexed with
 * it, so a truncated, corrupt or hostile file fails with one line, never reads out of bounds and
 * never asks for memory the file's size does not justify. What the loader demands is demanded
 * here too: version 3, unique keys and tensor names, at most 4 dimensions, known types, offsets
 * contiguous in info order and inside the file. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checkpoints/gguf.h"
#include "core/error.h"

struct ct_gguf {
    char *path;
    void *map;
    uint64_t map_len;
    uint32_t alignment;
    uint64_t data_offset;
    ct_gguf_kv *kvs;
    int64_t n_kv;
    ct_gguf_tensor *tensors;
    int64_t n_tensors;
};

/* A cursor over the bytes. */
typedef struct {
    const uint8_t *base;
    uint64_t pos, len;
    const char *name;
} cursor;

static int bad(const cursor *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int bad(const cursor *c, const char *fmt, ...) {
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return ct_fail("%s: not a valid GGUF file: %s (at byte %llu of %llu); export it again", c->name, what,
                   (unsigned long long)c->pos, (unsigned long long)c->len);
}

static uint64_t left(const cursor *c) { return c->len - c->pos; }

static int take(cursor *c, uint64_t n, const void **out, const char *what) {
    if (n > left(c)) return bad(c, "%s needs %llu bytes but the file ends first (truncated?)", what, (unsigned long long)n);
    *out = c->base + c->pos;
    c->pos += n;
    return 0;
}

static int read_u32(cursor *c, uint32_t *v, const char *what) {
    const void *p = NULL;
    CT_TRY(take(c, 4, &p, what));
    memcpy(v, p, 4);
    return 0;
}

static int read_u64(cursor *c, uint64_t *v, const char *what) {
    const void *p = NULL;
    CT_TRY(take(c, 8, &p, what));
    memcpy(v, p, 8);
    return 0;
}

static int read_str(cursor *c, ct_gguf_str *s, const char *what) {
    const void *p = NULL;
    CT_TRY(read_u64(c, &s->len, what));
    if (s->len > left(c)) return bad(c, "%s claims %llu bytes, more than the file holds", what, (unsigned long long)s->len);
    CT_TRY(take(c, s->len, &p, what));
    s->data = p;
    return 0;
}

static bool str_is(const ct_gguf_str *s, const char *text) {
    size_t n = strlen(text);
    return s->len == n && !memcmp(s->data, text, n);
}

/* Bytes of one scalar of type t; 0 for strings and arrays. */
static uint64_t scalar_size(ct_gguf_vtype t) {
    static const uint8_t sizes[CT_GGUF_V_COUNT] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    return t < CT_GGUF_V_COUNT ? sizes[t] : 0;
}

static const char *vtype_name(ct_gguf_vtype t) {
    static const char *const names[CT_GGUF_V_COUNT] = {"u8",  "i8",  "u16", "i16", "u32", "i32", "f32",
                                                       "bool", "string", "array", "u64", "i64", "f64"};
    return t < CT_GGUF_V_COUNT ? names[t] : "unknown";
}

static int read_array(cursor *c, ct_gguf_kv *kv) {
    uint32_t elem;
    CT_TRY(read_u32(c, &elem, "an array's element type"));
    CT_TRY(read_u64(c, &kv->n, "an array's length"));
    if (elem >= CT_GGUF_V_COUNT) return bad(c, "key %.*s: unknown array element type %u", (int)kv->key.len, kv->key.data, elem);
    if (elem == CT_GGUF_V_ARRAY) return bad(c, "key %.*s: arrays of arrays are not allowed", (int)kv->key.len, kv->key.data);
    kv->elem_type = (ct_gguf_vtype)elem;
    if (elem != CT_GGUF_V_STRING) {
        uint64_t size = scalar_size(kv->elem_type);
        if (kv->n > left(c) / size)
            return bad(c, "key %.*s: %llu elements do not fit in the file", (int)kv->key.len, kv->key.data,
                       (unsigned long long)kv->n);
        const void *p = NULL;
        CT_TRY(take(c, kv->n * size, &p, "an array"));
        kv->value = p;
        return 0;
    }
    /* each string takes at least its 8-byte length: a count above that is a lie */
    if (kv->n > left(c) / 8)
        return bad(c, "key %.*s: %llu strings do not fit in the file", (int)kv->key.len, kv->key.data, (unsigned long long)kv->n);
    kv->strings = ct_calloc(kv->n ? (size_t)kv->n : 1, sizeof *kv->strings, "a GGUF string array");
    if (!kv->strings) return -1;
    for (uint64_t i = 0; i < kv->n; i++) CT_TRY(read_str(c, &kv->strings[i], "an array string"));
    return 0;
}

static int read_kv(cursor *c, ct_gguf_kv *kv) {
    CT_TRY(read_str(c, &kv->key, "a key"));
    if (kv->key.len == 0 || kv->key.len > 65535) return bad(c, "a key of %llu bytes", (unsigned long long)kv->key.len);
    uint32_t type;
    CT_TRY(read_u32(c, &type, "a value type"));
    if (type >= CT_GGUF_V_COUNT) return bad(c, "key %.*s: unknown value type %u", (int)kv->key.len, kv->key.data, type);
    kv->type = (ct_gguf_vtype)type;
    if (type == CT_GGUF_V_ARRAY) return read_array(c, kv);
    if (type == CT_GGUF_V_STRING) {
        kv->n = 1;
        kv->strings = ct_malloc(sizeof *kv->strings, "a GGUF string");
        return kv->strings ? read_str(c, kv->strings, "a string value") : -1;
    }
    const void *p = NULL;
    CT_TRY(take(c, scalar_size(kv->type), &p, "a value"));
    kv->value = p;
    return 0;
}

static int compare_str(const void *a, const void *b) {
    const ct_gguf_str *x = *(const ct_gguf_str *const *)a, *y = *(const ct_gguf_str *const *)b;
    uint64_t n = x->len < y->len ? x->len : y->len;
    int d = memcmp(x->data, y->data, (size_t)n);
    return d ? d : (x->len > y->len) - (x->len < y->len);
}

/* Names that occur twice (keys or tensor names): the first one found, or NULL. */
static int find_duplicate(const ct_gguf_str **names, int64_t n, const ct_gguf_str **dup) {
    *dup = NULL;
    if (n < 2) return 0;
    qsort(names, (size_t)n, sizeof *names, compare_str);
    for (int64_t i = 1; i < n && !*dup; i++)
        if (!compare_str(&names[i - 1], &names[i])) *dup = names[i];
    return 0;
}

static int check_unique_keys(const ct_gguf *g, const cursor *c) {
    const ct_gguf_str **names = ct_calloc(g->n_kv ? (size_t)g->n_kv : 1, sizeof *names, "GGUF keys");
    if (!names) return -1;
    for (int64_t i = 0; i < g->n_kv; i++) names[i] = &g->kvs[i].key;
    const ct_gguf_str *dup;
    find_duplicate(names, g->n_kv, &dup);
    int rc = dup ? bad(c, "key %.*s appears twice", (int)dup->len, dup->data) : 0;
    free(names);
    return rc;
}

static int read_alignment(ct_gguf *g, const cursor *c) {
    g->alignment = CT_GGUF_ALIGNMENT;
    const ct_gguf_kv *kv = ct_gguf_find(g, "general.alignment");
    if (!kv) return 0;
    if (kv->type != CT_GGUF_V_U32) return bad(c, "general.alignment is %s, not u32", vtype_name(kv->type));
    uint32_t a;
    memcpy(&a, kv->value, 4);
    if (a == 0 || (a & (a - 1)) || a > (1u << 20)) return bad(c, "general.alignment %u is not a power of two up to 1 MiB", a);
    g->alignment = a;
    return 0;
}

static int read_tensor_info(cursor *c, ct_gguf_tensor *t) {
    ct_gguf_str name;
    CT_TRY(read_str(c, &name, "a tensor name"));
    if (name.len == 0 || name.len >= CT_GGUF_MAX_NAME || memchr(name.data, 0, (size_t)name.len))
        return bad(c, "a tensor name of %llu bytes (1 to %d, no NUL)", (unsigned long long)name.len, CT_GGUF_MAX_NAME - 1);
    memcpy(t->name, name.data, (size_t)name.len);
    t->name[name.len] = 0;
    uint32_t n_dims, type;
    CT_TRY(read_u32(c, &n_dims, "a tensor's dimension count"));
    if (n_dims < 1 || n_dims > CT_GGUF_MAX_DIMS) return bad(c, "tensor %s has %u dimensions (1 to 4)", t->name, n_dims);
    t->n_dims = (int)n_dims;
    int64_t rows = 1;
    for (int d = 0; d < CT_GGUF_MAX_DIMS; d++) {
        uint64_t ne = 1;
        if (d < t->n_dims) CT_TRY(read_u64(c, &ne, "a tensor dimension"));
        if (ne < 1 || ne > (uint64_t)INT64_MAX / 64) return bad(c, "tensor %s: dimension %d is %llu", t->name, d, (unsigned long long)ne);
        t->ne[d] = (int64_t)ne;
        if (d > 0) {
            if (rows > INT64_MAX / t->ne[d]) return bad(c, "tensor %s: its element count overflows", t->name);
            rows *= t->ne[d];
        }
    }
    CT_TRY(read_u32(c, &type, "a tensor type"));
    if (type != CT_GGUF_F32 && type != CT_GGUF_F16 && type != CT_GGUF_BF16 && type != CT_GGUF_Q8_0)
        return bad(c, "tensor %s has ggml type %u; ctune reads F32, F16, BF16 and Q8_0", t->name, type);
    t->type = (ct_gguf_type)type;
    t->nbytes = ct_gguf_nbytes(t->type, t->ne[0], rows);
    if (!t->nbytes)
        return bad(c, "tensor %s: %s rows of %lld elements are impossible", t->name, ct_gguf_type_name(t->type),
                   (long long)t->ne[0]);
    return read_u64(c, &t->offset, "a tensor offset");
}

static int check_unique_tensors(const ct_gguf *g, const cursor *c) {
    const ct_gguf_str **names = ct_calloc(g->n_tensors ? (size_t)g->n_tensors : 1, sizeof *names, "GGUF names");
    ct_gguf_str *strs = ct_calloc(g->n_tensors ? (size_t)g->n_tensors : 1, sizeof *strs, "GGUF names");
    int rc = names && strs ? 0 : -1;
    for (int64_t i = 0; rc == 0 && i < g->n_tensors; i++) {
        strs[i] = (ct_gguf_str){g->tensors[i].name, strlen(g->tensors[i].name)};
        names[i] = &strs[i];
    }
    const ct_gguf_str *dup = NULL;
    if (rc == 0) find_duplicate(names, g->n_tensors, &dup);
    if (dup) rc = bad(c, "tensor %.*s appears twice", (int)dup->len, dup->data);
    free(names);
    free(strs);
    return rc;
}

/* Offsets must be the running sum of the padded sizes (what llama.cpp's loader checks), and the
 * data must end inside the file. */
static int place_tensors(ct_gguf *g, cursor *c) {
    uint64_t data = (c->pos + g->alignment - 1) / g->alignment * g->alignment;
    if (data > c->len) return bad(c, "the file ends before its data section");
    g->data_offset = data;
    uint64_t expect = 0, avail = c->len - data;
    for (int64_t i = 0; i < g->n_tensors; i++) {
        ct_gguf_tensor *t = &g->tensors[i];
        if (t->offset != expect)
            return bad(c, "tensor %s is at offset %llu, but the tensors before it end at %llu", t->name,
                       (unsigned long long)t->offset, (unsigned long long)expect);
        /* padded as llama.cpp reads it: a file cut inside the last padding is truncated too */
        uint64_t padded = (t->nbytes + g->alignment - 1) / g->alignment * g->alignment;
        if (padded > avail || t->offset > avail - padded)
            return bad(c, "tensor %s (%llu bytes at offset %llu) runs past the end of the file (truncated?)", t->name,
                       (unsigned long long)t->nbytes, (unsigned long long)t->offset);
        t->data = c->base + data + t->offset;
        expect += padded;
    }
    return 0;
}

static int parse_all(ct_gguf *g, cursor *c) {
    const void *magic = NULL;
    CT_TRY(take(c, 4, &magic, "the magic"));
    if (memcmp(magic, "GGUF", 4)) return bad(c, "it does not start with \"GGUF\"");
    uint32_t version;
    uint64_t n_tensors, n_kv;
    CT_TRY(read_u32(c, &version, "the version"));
    if (version != 3) return bad(c, "version %u; ctune reads GGUF version 3", version);
    CT_TRY(read_u64(c, &n_tensors, "the tensor count"));
    CT_TRY(read_u64(c, &n_kv, "the key-value count"));
    /* smallest possible entries: a key-value 13 bytes, a tensor info 32 */
    if (n_kv > left(c) / 13) return bad(c, "%llu key-values cannot fit in the file", (unsigned long long)n_kv);
    if (n_tensors > left(c) / 32) return bad(c, "%llu tensors cannot fit in the file", (unsigned long long)n_tensors);
    g->kvs = ct_calloc(n_kv ? (size_t)n_kv : 1, sizeof *g->kvs, "GGUF key-values");
    g->tensors = ct_calloc(n_tensors ? (size_t)n_tensors : 1, sizeof *g->tensors, "GGUF tensors");
    if (!g->kvs || !g->tensors) return -1;
    /* counted before it is read, so a failure frees what a half-read key-value allocated */
    for (uint64_t i = 0; i < n_kv; i++) {
        g->n_kv++;
        CT_TRY(read_kv(c, &g->kvs[i]));
    }
    CT_TRY(check_unique_keys(g, c));
    CT_TRY(read_alignment(g, c));
    for (uint64_t i = 0; i < n_tensors; i++, g->n_tensors++) CT_TRY(read_tensor_info(c, &g->tensors[i]));
    CT_TRY(check_unique_tensors(g, c));
    return place_tensors(g, c);
}

ct_gguf *ct_gguf_parse(const void *bytes, uint64_t len, const char *name) {
    ct_gguf *g = ct_calloc(1, sizeof *g, "a GGUF file");
    if (!g) return NULL;
    g->path = ct_strdup(name);
    cursor c = {bytes, 0, len, name};
    if (!g->path || parse_all(g, &c) < 0) {
        ct_gguf_close(g);
        return NULL;
    }
    return g;
}

ct_gguf *ct_gguf_open(const char *path) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        ct_fail("%s: cannot open it as a file (%s); give a .gguf file", path, fd < 0 ? strerror(errno) : "not a regular file");
        if (fd >= 0) close(fd);
        return NULL;
    }
    if (sb.st_size < 24) {
        close(fd);
        ct_fail("%s: not a valid GGUF file: %lld bytes, shorter than a GGUF header; export it again", path,
                (long long)sb.st_size);
        return NULL;
    }
    void *map = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) {
        ct_fail("%s: cannot map it (%s)", path, strerror(errno));
        return NULL;
    }
    ct_gguf *g = ct_gguf_parse(map, (uint64_t)sb.st_size, path);
    if (!g) {
        munmap(map, (size_t)sb.st_size);
        return NULL;
    }
    g->map = map;
    g->map_len = (uint64_t)sb.st_size;
    return g;
}

void ct_gguf_close(ct_gguf *g) {
    if (!g) return;
    for (int64_t i = 0; i < g->n_kv; i++) free(g->kvs[i].strings);
    free(g->kvs);
    free(g->tensors);
    if (g->map) munmap(g->map, (size_t)g->map_len);
    free(g->path);
    free(g);
}

const char *ct_gguf_path(const ct_gguf *g) { return g->path; }
uint32_t ct_gguf_alignment(const ct_gguf *g) { return g->alignment; }
uint64_t ct_gguf_data_offset(const ct_gguf *g) { return g->data_offset; }
int64_t ct_gguf_kv_count(const ct_gguf *g) { return g->n_kv; }
const ct_gguf_kv *ct_gguf_kv_at(const ct_gguf *g, int64_t i) { return i >= 0 && i < g->n_kv ? &g->kvs[i] : NULL; }
int64_t ct_gguf_tensor_count(const ct_gguf *g) { return g->n_tensors; }
const ct_gguf_tensor *ct_gguf_tensor_at(const ct_gguf *g, int64_t i) {
    return i >= 0 && i < g->n_tensors ? &g->tensors[i] : NULL;
}

const ct_gguf_kv *ct_gguf_find(const ct_gguf *g, const char *key) {
    for (int64_t i = 0; i < g->n_kv; i++)
        if (str_is(&g->kvs[i].key, key)) return &g->kvs[i];
    return NULL;
}

const ct_gguf_tensor *ct_gguf_find_tensor(const ct_gguf *g, const char *name) {
    for (int64_t i = 0; i < g->n_tensors; i++)
        if (!strcmp(g->tensors[i].name, name)) return &g->tensors[i];
    return NULL;
}

/* The key of the given type: 1 found, 0 absent (allowed), -1 with a message. */
static int typed(const ct_gguf *g, const char *key, ct_gguf_vtype type, bool required, const ct_gguf_kv **kv) {
    *kv = ct_gguf_find(g, key);
    if (!*kv) return required ? ct_fail("%s: GGUF key %s is missing; export the model again with ctune", g->path, key) : 0;
    if ((*kv)->type != type)
        return ct_fail("%s: GGUF key %s is %s, expected %s", g->path, key, vtype_name((*kv)->type), vtype_name(type));
    return 1;
}

static int get_scalar(const ct_gguf *g, const char *key, ct_gguf_vtype type, bool required, void *out, size_t size,
                      bool *found) {
    const ct_gguf_kv *kv;
    int rc = typed(g, key, type, required, &kv);
    if (found) *found = rc == 1;
    if (rc == 1) memcpy(out, kv->value, size);
    return rc < 0 ? -1 : 0;
}

int ct_gguf_get_u32(const ct_gguf *g, const char *key, bool required, uint32_t *out, bool *found) {
    return get_scalar(g, key, CT_GGUF_V_U32, required, out, 4, found);
}

int ct_gguf_get_f32(const ct_gguf *g, const char *key, bool required, float *out, bool *found) {
    return get_scalar(g, key, CT_GGUF_V_F32, required, out, 4, found);
}

int ct_gguf_get_bool(const ct_gguf *g, const char *key, bool required, bool *out, bool *found) {
    uint8_t b = 0;
    bool f = false;
    CT_TRY(get_scalar(g, key, CT_GGUF_V_BOOL, required, &b, 1, &f));
    if (found) *found = f;
    if (f) *out = b != 0;
    return 0;
}

int ct_gguf_get_string(const ct_gguf *g, const char *key, bool required, char **out) {
    *out = NULL;
    const ct_gguf_kv *kv;
    int rc = typed(g, key, CT_GGUF_V_STRING, required, &kv);
    if (rc <= 0) return rc;
    const ct_gguf_str *s = kv->strings;
    if (memchr(s->data, 0, (size_t)s->len)) return ct_fail("%s: GGUF key %s holds a NUL byte", g->path, key);
    *out = ct_malloc((size_t)s->len + 1, "a GGUF string");
    if (!*out) return -1;
    memcpy(*out, s->data, (size_t)s->len);
    (*out)[s->len] = 0;
    return 0;
}

const ct_gguf_kv *ct_gguf_get_array(const ct_gguf *g, const char *key, ct_gguf_vtype elem) {
    const ct_gguf_kv *kv;
    if (typed(g, key, CT_GGUF_V_ARRAY, true, &kv) < 0) return NULL;
    if (kv->elem_type != elem) {
        ct_fail("%s: GGUF key %s is an array of %s, expected %s", g->path, key, vtype_name(kv->elem_type), vtype_name(elem));
        return NULL;
    }
    return kv;
}

int32_t ct_gguf_array_i32(const ct_gguf_kv *kv, uint64_t i) {
    int32_t v;
    memcpy(&v, kv->value + 4 * i, 4);
    return v;
}
