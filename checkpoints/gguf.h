/* GGUF v3 files (llama.cpp's format): a writer, a validating reader and the Q8_0 quantizer.
 *
 *   "GGUF" u32 version 3, i64 tensor count, i64 key-value count, the key-values, the tensor
 *   infos (name, n_dims, ne[] innermost first, ggml type, offset), padding to general.alignment,
 *   then the tensor data, each tensor padded to the alignment, in info order.
 *
 * docs/formats.md and docs/export.md describe what ctune writes; this layer knows nothing of
 * models: it stores key-values and tensors. The reader trusts no count, length or offset in the
 * file: each is checked against the bytes that are really there before it is used, and every
 * failure is one line naming the file and what is wrong. */
#ifndef CT_GGUF_H
#define CT_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ggml tensor types ctune reads and writes (ids as in ggml). */
typedef enum { CT_GGUF_F32 = 0, CT_GGUF_F16 = 1, CT_GGUF_Q8_0 = 8, CT_GGUF_BF16 = 30 } ct_gguf_type;

/* Key-value types (ids as in the GGUF spec). */
typedef enum {
    CT_GGUF_V_U8 = 0, CT_GGUF_V_I8 = 1, CT_GGUF_V_U16 = 2, CT_GGUF_V_I16 = 3, CT_GGUF_V_U32 = 4,
    CT_GGUF_V_I32 = 5, CT_GGUF_V_F32 = 6, CT_GGUF_V_BOOL = 7, CT_GGUF_V_STRING = 8, CT_GGUF_V_ARRAY = 9,
    CT_GGUF_V_U64 = 10, CT_GGUF_V_I64 = 11, CT_GGUF_V_F64 = 12, CT_GGUF_V_COUNT
} ct_gguf_vtype;

#define CT_GGUF_MAX_DIMS 4
#define CT_GGUF_MAX_NAME 64 /* tensor names are shorter than this (ggml's limit) */
#define CT_GGUF_ALIGNMENT 32
#define CT_GGUF_Q8_0_BLOCK 32
#define CT_GGUF_Q8_0_BYTES 34 /* fp16 scale + 32 int8 */

const char *ct_gguf_type_name(ct_gguf_type type);
/* Bytes of a tensor of `type` with ne[0] = row elements and `rows` rows; 0 when ne[0] does not
 * suit the type (Q8_0 needs a multiple of 32). */
uint64_t ct_gguf_nbytes(ct_gguf_type type, int64_t row, int64_t rows);

/* ---- Q8_0 (gguf_q8.c) ---- */

/* One row of n values (n a multiple of 32) into n/32 blocks of 34 bytes, exactly as ggml's
 * reference quantizer: d = max|x| / 127 in fp32, q = roundf(x / d) (half away from zero,
 * computed as x * (1/d)), d stored as fp16. */
void ct_gguf_q8_0_quantize_row(const float *x, int64_t n, uint8_t *out);
/* The inverse: q * fp16 d. */
void ct_gguf_q8_0_dequantize_row(const uint8_t *blocks, int64_t n, float *out);

/* ---- writing (gguf_write.c) ---- */

typedef struct ct_gguf_writer ct_gguf_writer;

ct_gguf_writer *ct_gguf_writer_new(void);
void ct_gguf_writer_free(ct_gguf_writer *w);

/* Key-values, written in the order they are set. Keys must be unique; strings are copied. */
int ct_gguf_set_u32(ct_gguf_writer *w, const char *key, uint32_t value);
int ct_gguf_set_i32(ct_gguf_writer *w, const char *key, int32_t value);
int ct_gguf_set_f32(ct_gguf_writer *w, const char *key, float value);
int ct_gguf_set_bool(ct_gguf_writer *w, const char *key, bool value);
int ct_gguf_set_string(ct_gguf_writer *w, const char *key, const char *value);
int ct_gguf_set_string_n(ct_gguf_writer *w, const char *key, const char *value, size_t len);
/* Arrays: strings (each NUL-terminated) or i32. The elements are copied. */
int ct_gguf_set_string_array(ct_gguf_writer *w, const char *key, const char *const *values, uint64_t n);
int ct_gguf_set_i32_array(ct_gguf_writer *w, const char *key, const int32_t *values, uint64_t n);

/* A tensor: name, type, ne (innermost first: the PyTorch shape reversed) and its bytes, which
 * must be ct_gguf_nbytes long. With `owned` the writer frees data (malloc'd) when it is freed;
 * otherwise the caller keeps data alive until ct_gguf_write returns. */
int ct_gguf_add_tensor(ct_gguf_writer *w, const char *name, ct_gguf_type type, int n_dims, const int64_t *ne,
                       const void *data, bool owned);

/* A tensor whose bytes are made while the file is written, one tensor at a time, so an export
 * never holds a second copy of the model: fill(ctx, out) writes the ct_gguf_nbytes bytes into
 * out and returns 0, or -1 with a message. ctx must live until ct_gguf_write returns. */
typedef int (*ct_gguf_fill_fn)(void *ctx, uint8_t *out);
int ct_gguf_add_tensor_fill(ct_gguf_writer *w, const char *name, ct_gguf_type type, int n_dims, const int64_t *ne,
                            ct_gguf_fill_fn fill, void *ctx);

/* Called after each tensor's bytes are written, for a progress line. */
typedef void (*ct_gguf_progress_fn)(void *ctx, int done, int total, uint64_t bytes_done, uint64_t bytes_total);

/* Writes the file to a temporary name beside `path`, then renames it (core/atomic_file.h): a
 * failure leaves no partial file and whatever was at `path` untouched. */
int ct_gguf_write(const ct_gguf_writer *w, const char *path, ct_gguf_progress_fn progress, void *ctx);

/* ---- reading (gguf_read.c) ---- */

typedef struct {
    const char *data; /* not NUL-terminated */
    uint64_t len;
} ct_gguf_str;

typedef struct {
    ct_gguf_str key;
    ct_gguf_vtype type;
    ct_gguf_vtype elem_type; /* arrays: the element type */
    uint64_t n;              /* arrays: element count */
    const uint8_t *value;    /* scalars and arrays of numbers: the little-endian bytes in the file */
    ct_gguf_str *strings;    /* arrays of strings: n of them; a string value: one */
} ct_gguf_kv;

typedef struct {
    char name[CT_GGUF_MAX_NAME];
    int n_dims;
    int64_t ne[CT_GGUF_MAX_DIMS]; /* unused dimensions are 1 */
    ct_gguf_type type;
    uint64_t offset; /* from the data section */
    uint64_t nbytes;
    const uint8_t *data;
} ct_gguf_tensor;

typedef struct ct_gguf ct_gguf;

/* Maps `path` read-only and parses it; NULL with a one-line message naming the file. */
ct_gguf *ct_gguf_open(const char *path);
/* Parses `len` bytes in memory (kept by the caller while the result lives); `name` names them. */
ct_gguf *ct_gguf_parse(const void *bytes, uint64_t len, const char *name);
void ct_gguf_close(ct_gguf *g);

const char *ct_gguf_path(const ct_gguf *g);
uint32_t ct_gguf_alignment(const ct_gguf *g);
uint64_t ct_gguf_data_offset(const ct_gguf *g); /* where the data section starts in the file */
int64_t ct_gguf_kv_count(const ct_gguf *g);
const ct_gguf_kv *ct_gguf_kv_at(const ct_gguf *g, int64_t i);
const ct_gguf_kv *ct_gguf_find(const ct_gguf *g, const char *key);
int64_t ct_gguf_tensor_count(const ct_gguf *g);
const ct_gguf_tensor *ct_gguf_tensor_at(const ct_gguf *g, int64_t i);
const ct_gguf_tensor *ct_gguf_find_tensor(const ct_gguf *g, const char *name);

/* Typed getters. A missing key: with `required` a one-line error naming the key, else *found
 * (when not NULL) is set false and 0 returned. A key of another type fails naming both types. */
int ct_gguf_get_u32(const ct_gguf *g, const char *key, bool required, uint32_t *out, bool *found);
int ct_gguf_get_f32(const ct_gguf *g, const char *key, bool required, float *out, bool *found);
int ct_gguf_get_bool(const ct_gguf *g, const char *key, bool required, bool *out, bool *found);
/* A string value as a new NUL-terminated copy (a string holding a NUL is refused). */
int ct_gguf_get_string(const ct_gguf *g, const char *key, bool required, char **out);
/* An array of `elem` elements; NULL with a message when missing or of another type. */
const ct_gguf_kv *ct_gguf_get_array(const ct_gguf *g, const char *key, ct_gguf_vtype elem);
/* Element i of an i32 array (i < kv->n, checked by the caller). */
int32_t ct_gguf_array_i32(const ct_gguf_kv *kv, uint64_t i);

#endif
