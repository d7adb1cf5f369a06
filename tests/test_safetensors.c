/* safetensors: writer/reader round trips (f32 exact, bf16/f16 within their rounding), a sharded
 * model through its index, a fixture written by the reference Python library, data at an odd
 * byte offset, and the message each kind of bad file must produce. Bad files are built here
 * byte by byte in a mkdtemp folder. */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <dirent.h>
#include <sys/stat.h>

#include "core/error.h"
#include "core/rng.h"
#include "checkpoints/safetensors.h"
#include "tests/ct_test.h"

static char dir[64];
static ct_rng rng;

static const char *in_dir(const char *name) { return ct_test_path_in(dir, name); }

static void write_raw(const char *path, const void *bytes, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(bytes, 1, n, f) != n) fprintf(stderr, "cannot write %s\n", path);
    if (f) fclose(f);
}

/* A file with the given header length field, header text and data bytes. */
static void write_st(const char *path, uint64_t header_len, const char *header, const void *data, size_t ndata) {
    size_t hlen = strlen(header);
    unsigned char *buf = malloc(8 + hlen + ndata + 1);
    for (int i = 0; i < 8; i++) buf[i] = (unsigned char)(header_len >> (8 * i));
    memcpy(buf + 8, header, hlen);
    if (ndata) memcpy(buf + 8 + hlen, data, ndata);
    write_raw(path, buf, 8 + hlen + ndata);
    free(buf);
}

/* A well-formed file: the header length is the header's own. */
static void write_st_ok(const char *path, const char *header, const void *data, size_t ndata) {
    write_st(path, strlen(header), header, data, ndata);
}

static void expect_open_error(const char *what, const char *path, const char *needle) {
    ct_clear_error();
    ct_safetensors *st = ct_safetensors_open(path);
    CHECK(st == NULL, "%s: opened a bad file", what);
    CHECK(strstr(ct_last_error(), needle) != NULL, "%s: message '%s' lacks '%s'", what, ct_last_error(), needle);
    CHECK(strstr(ct_last_error(), path) != NULL, "%s: message '%s' does not name the file", what, ct_last_error());
    ct_safetensors_close(st);
}

static ct_tensor *random_tensor(ct_dtype dtype, int ndim, const int64_t *shape, const char *name) {
    ct_tensor *t = ct_tensor_new(dtype, ndim, shape, name);
    if (t) ct_fill_normal(t, &rng, 0.0, 1.0);
    return t;
}

/* ||a - b|| / ||a|| over all elements, in double. */
static double rel_error(const ct_tensor *a, const ct_tensor *b) {
    double num = 0, den = 0;
    for (int64_t i = 0; i < ct_numel(a); i++) {
        double d = ct_get(a, i) - ct_get(b, i);
        num += d * d;
        den += ct_get(a, i) * ct_get(a, i);
    }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

static ct_tensor *load(const ct_safetensors *st, const char *name, ct_dtype dtype) {
    const ct_st_tensor *d = ct_safetensors_find(st, name);
    CHECK(d != NULL, "find %s: %s", name, ct_last_error());
    if (!d) return NULL;
    int64_t shape[CT_MAX_DIMS];
    for (int i = 0; i < d->ndim; i++) shape[i] = d->shape[i];
    ct_tensor *t = ct_tensor_new(dtype, d->ndim, shape, name);
    int rc = t ? ct_safetensors_load_into(st, name, t) : -1;
    CHECK(rc == 0, "load %s: %s", name, ct_last_error());
    return t;
}

static void test_roundtrip(void) {
    const int64_t s0[] = {37, 13}, s1[] = {5, 7, 3}, s2[] = {1}, s3[] = {11};
    ct_tensor *src[] = {random_tensor(CT_F32, 2, s0, "b.weight"), random_tensor(CT_F32, 3, s1, "a.odd"),
                        random_tensor(CT_F32, 1, s2, "c.one"), ct_tensor_new(CT_I32, 1, s3, "ids")};
    for (int i = 0; i < 11; i++) ((int32_t *)src[3]->data)[i] = i * 1000003 - 7;
    ct_st_item items[] = {{"model.b.weight", src[0]}, {"model.a.odd", src[1]}, {"c.one", src[2]}, {"ids", src[3]}};
    const char *names[] = {"model.b.weight", "model.a.odd", "c.one", "ids"};
    const ct_dtype stores[] = {CT_F32, CT_BF16, CT_F16};
    const double tolerance[] = {0.0, 1.0 / 256, 1.0 / 2048};
    for (int s = 0; s < 3; s++) {
        const char *path = in_dir("rt.safetensors");
        int rc = ct_safetensors_write(path, items, 4, stores[s]);
        CHECK(rc == 0, "write %s: %s", ct_dtype_name(stores[s]), ct_last_error());
        ct_safetensors *st = ct_safetensors_open(path);
        CHECK(st != NULL, "open %s: %s", ct_dtype_name(stores[s]), ct_last_error());
        if (!st) continue;
        CHECK(ct_safetensors_count(st) == 4, "count %d", ct_safetensors_count(st));
        /* Iteration is by name. */
        for (int i = 1; i < ct_safetensors_count(st); i++)
            CHECK(strcmp(ct_safetensors_at(st, i - 1)->name, ct_safetensors_at(st, i)->name) < 0, "order");
        const char *format = ct_safetensors_metadata(st, "format");
        CHECK(format && strcmp(format, "pt") == 0, "format metadata");
        CHECK(ct_safetensors_check_names(st, names, 4, false) == 0, "names: %s", ct_last_error());
        CHECK(ct_safetensors_find(st, "model.a.odd")->dtype == stores[s], "stored dtype");
        for (int i = 0; i < 3; i++) {
            ct_tensor *back = load(st, items[i].name, CT_F32);
            if (!back) continue;
            double err = rel_error(src[i], back);
            CHECK(s == 0 ? err == 0.0 : err < tolerance[s], "%s as %s: relative error %.3g", items[i].name,
                  ct_dtype_name(stores[s]), err);
            ct_tensor_free(back);
            /* A bf16 destination gets the f32 value rounded once. */
            ct_tensor *b16 = load(st, items[i].name, CT_BF16);
            if (b16 && s != 2)
                for (int64_t k = 0; k < ct_numel(b16); k++) {
                    uint16_t want = ct_f32_to_bf16(((float *)src[i]->data)[k]);
                    if (((uint16_t *)b16->data)[k] != want) {
                        CHECK(0, "%s as %s into bf16: element %lld differs", items[i].name, ct_dtype_name(stores[s]), (long long)k);
                        break;
                    }
                }
            ct_tensor_free(b16);
        }
        ct_tensor *ids = load(st, "ids", CT_I32);
        CHECK(ids && memcmp(ids->data, src[3]->data, 44) == 0, "i32 kept exactly");
        ct_tensor_free(ids);
        /* The header length is a multiple of 8, so the data region is 8-aligned in the file. */
        FILE *f = fopen(path, "rb");
        unsigned char len8[8] = {0};
        CHECK(f && fread(len8, 1, 8, f) == 8, "read header length");
        if (f) fclose(f);
        CHECK(len8[0] % 8 == 0, "header length %u is not a multiple of 8", len8[0]);
        ct_safetensors_close(st);
    }
    /* For tests/reference/check_safetensors_roundtrip.py, run by hand against the library. */
    CHECK(ct_safetensors_write("/tmp/ctune_st_roundtrip.safetensors", items, 4, CT_F32) == 0, "%s", ct_last_error());

    /* A failing write leaves the existing file as it was and no temporary behind. */
    const char *path = in_dir("rt.safetensors");
    ct_safetensors *before = ct_safetensors_open(path);
    ct_st_item dup[] = {{"x", src[0]}, {"x", src[1]}};
    CHECK(ct_safetensors_write(path, dup, 2, CT_F32) < 0 && strstr(ct_last_error(), "twice"), "duplicate names: %s",
          ct_last_error());
    CHECK(ct_safetensors_write(in_dir("no/such/dir.safetensors"), items, 1, CT_F32) < 0 &&
              strstr(ct_last_error(), "temporary"), "missing directory: %s", ct_last_error());
    ct_safetensors *after = ct_safetensors_open(path);
    CHECK(after && ct_safetensors_count(after) == 4, "existing file intact after failed writes");
    ct_safetensors_close(before);
    ct_safetensors_close(after);
    DIR *d = opendir(dir);
    struct dirent *e;
    int temporaries = 0;
    while (d && (e = readdir(d)) != NULL) temporaries += strstr(e->d_name, ".tmp.") != NULL;
    if (d) closedir(d);
    CHECK(temporaries == 0, "%d temporary files left behind", temporaries);
    for (int i = 0; i < 4; i++) ct_tensor_free(src[i]);
}

static void test_sharded(void) {
    const int64_t sa[] = {9, 5}, sb[] = {3};
    ct_tensor *a = random_tensor(CT_F32, 2, sa, NULL), *b = random_tensor(CT_F32, 1, sb, NULL);
    char sub[128];
    snprintf(sub, sizeof sub, "%s/sharded", dir);
    CHECK(mkdir(sub, 0755) == 0, "mkdir %s", sub);
    char p1[192], p2[192], idx[192];
    snprintf(p1, sizeof p1, "%s/model-00001-of-00002.safetensors", sub);
    snprintf(p2, sizeof p2, "%s/model-00002-of-00002.safetensors", sub);
    snprintf(idx, sizeof idx, "%s/model.safetensors.index.json", sub);
    ct_st_item i1[] = {{"model.embed.weight", a}}, i2[] = {{"model.norm.weight", b}, {"lm_head.weight", a}};
    CHECK(ct_safetensors_write(p1, i1, 1, CT_F32) == 0, "%s", ct_last_error());
    CHECK(ct_safetensors_write(p2, i2, 2, CT_BF16) == 0, "%s", ct_last_error());
    const char *index = "{\"metadata\": {\"total_size\": 0}, \"weight_map\": {"
                        "\"model.embed.weight\": \"model-00001-of-00002.safetensors\","
                        "\"model.norm.weight\": \"model-00002-of-00002.safetensors\","
                        "\"lm_head.weight\": \"model-00002-of-00002.safetensors\"}}";
    write_raw(idx, index, strlen(index));
    ct_safetensors *st = ct_safetensors_open(sub); /* the directory: finds the index */
    CHECK(st != NULL, "sharded open: %s", ct_last_error());
    if (st) {
        CHECK(ct_safetensors_count(st) == 3, "sharded count %d", ct_safetensors_count(st));
        ct_tensor *x = load(st, "model.embed.weight", CT_F32), *y = load(st, "lm_head.weight", CT_F32);
        ct_tensor *z = load(st, "model.norm.weight", CT_F32);
        CHECK(x && rel_error(a, x) == 0.0, "shard 1 exact");
        CHECK(y && rel_error(a, y) < 1.0 / 256, "shard 2 bf16");
        CHECK(z && rel_error(b, z) < 1.0 / 256, "shard 2 bf16 (norm)");
        CHECK(strstr(ct_safetensors_find(st, "lm_head.weight")->file, "00002") != NULL, "descriptor names its shard");
        ct_tensor_free(x);
        ct_tensor_free(y);
        ct_tensor_free(z);
        ct_safetensors_close(st);
    }
    /* An index that misplaces a tensor, or names a shard outside the folder. */
    const char *wrong = "{\"weight_map\": {\"model.embed.weight\": \"model-00002-of-00002.safetensors\"}}";
    write_raw(idx, wrong, strlen(wrong));
    expect_open_error("misplaced tensor", idx, "no shard holds it");
    const char *escape = "{\"weight_map\": {\"x\": \"../rt.safetensors\"}}";
    write_raw(idx, escape, strlen(escape));
    expect_open_error("shard outside the folder", idx, "same directory");
    ct_tensor_free(a);
    ct_tensor_free(b);
}

/* A file written by the reference safetensors library, with its expected values. */
static void test_fixture(void) {
    ct_safetensors *st = ct_safetensors_open(ct_test_path("tests/fixtures/safetensors/small.safetensors"));
    CHECK(st != NULL, "fixture: %s", ct_last_error());
    FILE *f = fopen(ct_test_path("tests/fixtures/safetensors/small.json"), "rb");
    char text[16384];
    size_t n = f ? fread(text, 1, sizeof text - 1, f) : 0;
    if (f) fclose(f);
    text[n] = '\0';
    cJSON *root = cJSON_Parse(text);
    CHECK(root != NULL, "fixture json");
    if (!st || !root) {
        ct_safetensors_close(st);
        cJSON_Delete(root);
        return;
    }
    const char *version = ct_safetensors_metadata(st, "safetensors");
    CHECK(version != NULL, "fixture records the library version");
    const cJSON *item;
    int seen = 0;
    cJSON_ArrayForEach(item, cJSON_GetObjectItem(root, "tensors")) {
        const char *name = cJSON_GetObjectItem(item, "name")->valuestring;
        const ct_st_tensor *d = ct_safetensors_find(st, name);
        CHECK(d != NULL, "fixture tensor %s", name);
        if (!d) continue;
        CHECK(strcasecmp(ct_dtype_name(d->dtype), cJSON_GetObjectItem(item, "dtype")->valuestring) == 0, "%s dtype %s",
              name, ct_dtype_name(d->dtype));
        const cJSON *shape = cJSON_GetObjectItem(item, "shape");
        CHECK(d->ndim == cJSON_GetArraySize(shape), "%s rank", name);
        for (int i = 0; i < d->ndim && i < cJSON_GetArraySize(shape); i++)
            CHECK(d->shape[i] == (int64_t)cJSON_GetArrayItem(shape, i)->valuedouble, "%s dim %d", name, i);
        ct_tensor *t = load(st, name, CT_F32);
        if (!t) continue;
        double sum = 0;
        for (int64_t i = 0; i < ct_numel(t); i++) sum += ((float *)t->data)[i];
        double want = cJSON_GetObjectItem(item, "sum")->valuedouble;
        CHECK(fabs(sum - want) <= 1e-9 * (1 + fabs(want)), "%s sum %.17g, expected %.17g", name, sum, want);
        const cJSON *sample;
        cJSON_ArrayForEach(sample, cJSON_GetObjectItem(item, "samples")) {
            int64_t at = (int64_t)cJSON_GetArrayItem(sample, 0)->valuedouble;
            double v = cJSON_GetArrayItem(sample, 1)->valuedouble;
            CHECK(((float *)t->data)[at] == (float)v, "%s[%lld] = %.9g, expected %.9g", name, (long long)at,
                  ((float *)t->data)[at], v);
        }
        ct_tensor_free(t);
        seen++;
    }
    CHECK(seen == 5 && ct_safetensors_count(st) == 5, "fixture has 5 tensors (saw %d)", seen);
    cJSON_Delete(root);
    ct_safetensors_close(st);
}

/* Tensor data at odd byte offsets: the reader must not assume alignment. */
static void test_odd_offset(void) {
    /* The data region starts at an even byte (8 + even header length) and "x" one byte into it,
     * so x and y sit at odd addresses of the page-aligned mapping. */
    char header[256];
    snprintf(header, sizeof header, "{\"pad\":{\"dtype\":\"I8\",\"shape\":[1],\"data_offsets\":[0,1]},"
                                    "\"x\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[1,13]},"
                                    "\"y\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[13,17]}}");
    if (strlen(header) % 2 == 1) strcat(header, " ");
    unsigned char data[17];
    const float xs[3] = {1.5f, -2.25f, 3.0e-3f};
    const uint16_t ys[2] = {ct_f32_to_bf16(0.75f), ct_f32_to_bf16(-96.0f)};
    data[0] = 0x7f;
    memcpy(data + 1, xs, 12);
    memcpy(data + 13, ys, 4);
    const char *path = in_dir("odd.safetensors");
    write_st_ok(path, header, data, sizeof data);
    ct_safetensors *st = ct_safetensors_open(path);
    CHECK(st != NULL, "odd offset: %s", ct_last_error());
    if (!st) return;
    const ct_st_tensor *x = ct_safetensors_find(st, "x");
    CHECK(x && ((uintptr_t)x->bytes & 1) == 1, "x really is at an odd address");
    ct_tensor *tx = load(st, "x", CT_F32), *ty = load(st, "y", CT_F32);
    CHECK(tx && memcmp(tx->data, xs, 12) == 0, "odd f32 values");
    CHECK(ty && ((float *)ty->data)[0] == 0.75f && ((float *)ty->data)[1] == -96.0f, "odd bf16 values");
    const int64_t one[] = {1};
    ct_tensor *pad = ct_tensor_new(CT_I8, 1, one, NULL);
    CHECK(ct_safetensors_load_into(st, "pad", pad) < 0 && strstr(ct_last_error(), "cannot load into a i8"),
          "i8 refused (its scales are not in the file): %s", ct_last_error());
    ct_tensor_free(pad);
    ct_tensor_free(tx);
    ct_tensor_free(ty);
    ct_safetensors_close(st);
    ct_clear_error();
}

static void test_bad_files(void) {
    const char *p = in_dir("bad.safetensors");
    unsigned char zeros[64] = {0};

    write_raw(p, "\x10\0\0\0\0", 5);
    expect_open_error("truncated file", p, "too short");

    write_st(p, 4096, "{}", NULL, 0);
    expect_open_error("header longer than the file", p, "larger than the");

    write_st(p, (uint64_t)1 << 60, "{}", NULL, 0);
    expect_open_error("2^60 header length", p, "exceeds the");

    write_st_ok(p, "this is not json", NULL, 0);
    expect_open_error("non-JSON header", p, "not valid JSON");

    write_st_ok(p, "[1, 2]", NULL, 0);
    expect_open_error("header not an object", p, "not a JSON object");

    write_st_ok(p, "{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", zeros, 8);
    expect_open_error("offsets outside the file (data truncated)", p, "outside the 8-byte data region");

    write_st_ok(p, "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,4]}}", zeros, 8);
    expect_open_error("end before begin", p, "outside the");

    write_st_ok(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
                   "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", zeros, 16);
    expect_open_error("overlapping offsets", p, "overlap");

    write_st_ok(p, "{\"w\":{\"dtype\":\"F32\",\"shape\":[3,3],\"data_offsets\":[0,16]}}", zeros, 16);
    expect_open_error("size/shape disagreement", p, "needs 36");

    write_st_ok(p, "{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],\"data_offsets\":[0,16]}}",
                zeros, 16);
    expect_open_error("element count overflow", p, "overflows");

    write_st_ok(p, "{\"w\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]}}", zeros, 4);
    expect_open_error("unknown dtype", p, "dtype 'U8', which ctune does not read");

    write_st_ok(p, "{\"w\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", zeros, 4);
    expect_open_error("negative dimension", p, "not a non-negative integer");

    write_st_ok(p, "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                   "\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", zeros, 8);
    expect_open_error("repeated name", p, "appears twice");

    expect_open_error("missing file", in_dir("absent.safetensors"), "cannot open");
    expect_open_error("folder without a model", dir, "holds neither");

    /* Missing, unexpected and mismatched tensors in a good file. */
    const int64_t shape[] = {64, 32}, other[] = {48, 32};
    ct_tensor *w = random_tensor(CT_F32, 2, shape, NULL);
    ct_st_item items[] = {{"model.layers.0.mlp.up_proj.weight", w}, {"model.extra", w}};
    CHECK(ct_safetensors_write(p, items, 2, CT_BF16) == 0, "%s", ct_last_error());
    ct_safetensors *st = ct_safetensors_open(p);
    CHECK(st != NULL, "%s", ct_last_error());
    if (st) {
        CHECK(ct_safetensors_find(st, "model.norm.weight") == NULL && strstr(ct_last_error(), "no tensor named 'model.norm.weight'"),
              "missing tensor: %s", ct_last_error());
        ct_tensor *dst = ct_tensor_new(CT_F32, 2, other, NULL);
        CHECK(ct_safetensors_load_into(st, "model.layers.0.mlp.up_proj.weight", dst) < 0 &&
                  strstr(ct_last_error(), "bad.safetensors: tensor 'model.layers.0.mlp.up_proj.weight' has shape "
                                          "[64, 32]; the model expects [48, 32]"),
              "shape mismatch: %s", ct_last_error());
        ct_tensor_free(dst);
        const char *expected[] = {"model.layers.0.mlp.up_proj.weight", "model.norm.weight", "lm_head.weight"};
        CHECK(ct_safetensors_check_names(st, expected, 3, false) < 0 &&
                  strstr(ct_last_error(), "2 tensors missing ('lm_head.weight', 'model.norm.weight') and 1 unexpected ('model.extra')"),
              "names: %s", ct_last_error());
        CHECK(ct_safetensors_check_names(st, expected, 1, true) == 0, "allow unexpected: %s", ct_last_error());
        const char *many[8] = {"m0", "m1", "m2", "m3", "m4", "m5", "m6", "model.extra"};
        CHECK(ct_safetensors_check_names(st, many, 8, false) < 0 && strstr(ct_last_error(), "7 tensors missing") &&
                  strstr(ct_last_error(), "'m4', ...") && !strstr(ct_last_error(), "'m5'"),
              "long lists are cut: %s", ct_last_error());
        ct_safetensors_close(st);
    }
    ct_tensor_free(w);
}

int main(void) {
    ct_rng_seed(&rng, 1234);
    if (!ct_test_temp_dir(dir, sizeof dir, "safetensors")) return 1;
    test_roundtrip();
    test_sharded();
    test_fixture();
    test_odd_offset();
    test_bad_files();
    ct_test_remove_tree(dir);
    return ct_test_finish("test_safetensors");
}
