/* safetensors: the tensor file format of Hugging Face checkpoints.
 *
 * Layout: an 8-byte little-endian header length N, N bytes of JSON mapping tensor names to
 * {"dtype", "shape", "data_offsets": [begin, end]} (plus an optional "__metadata__" object of
 * strings), then the data region; offsets are relative to the start of the data region.
 *
 * Reading maps the file (mmap) and validates every header entry before any tensor is handed
 * out, so a descriptor's bytes always lie inside the mapping. A sharded model is opened through
 * model.safetensors.index.json; its shards are presented as one set of names. The mapped bytes
 * have no alignment guarantee: read them with memcpy (ct_safetensors_load_into does). */
#ifndef CT_SAFETENSORS_H
#define CT_SAFETENSORS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/tensor.h"

/* safetensors allows any rank; 8 covers every model we load (ct_tensor holds up to 4). */
#define CT_ST_MAX_DIMS 8
/* Headers of real checkpoints are well under 1 MB; anything past this is corrupt or hostile. */
#define CT_ST_MAX_HEADER ((uint64_t)100 * 1000 * 1000)

typedef struct ct_st_tensor {
    const char *name;
    ct_dtype dtype;
    int ndim;
    int64_t shape[CT_ST_MAX_DIMS];
    const void *bytes; /* inside the mapping; unaligned */
    size_t nbytes;
    const char *file;  /* the file holding it, for messages */
} ct_st_tensor;

typedef struct ct_safetensors ct_safetensors;

/* A .safetensors file, a model.safetensors.index.json, or a directory holding either
 * (model.safetensors first). NULL with a message naming the file on any problem. */
ct_safetensors *ct_safetensors_open(const char *path_or_dir);
void ct_safetensors_close(ct_safetensors *st);

/* The path opened (the file or the index), for messages. */
const char *ct_safetensors_path(const ct_safetensors *st);
/* Tensors sorted by name: iterate i in [0, count). */
int ct_safetensors_count(const ct_safetensors *st);
const ct_st_tensor *ct_safetensors_at(const ct_safetensors *st, int i);
/* NULL (with a message) when no tensor has that name. */
const ct_st_tensor *ct_safetensors_find(const ct_safetensors *st, const char *name);
/* A "__metadata__" value (of the first shard holding it); NULL when absent. */
const char *ct_safetensors_metadata(const ct_safetensors *st, const char *key);

/* Tells the kernel the mapped pages of tensor `name` are not needed now (madvise DONTNEED; a
 * later read maps them in again): after a loader has converted a tensor into its own memory, the
 * file's pages stop counting in the process's resident memory. Only whole pages inside the
 * tensor are released. */
void ct_safetensors_release(const ct_safetensors *st, const char *name);

/* Copies tensor `name` into the CPU tensor dst, converting between f32, f64, bf16 and f16
 * (i32 only to i32). The shapes must agree exactly; a mismatch names both. */
int ct_safetensors_load_into(const ct_safetensors *st, const char *name, ct_tensor *dst);

/* Checks that the file holds exactly the `n` expected names (or at least them, when
 * allow_unexpected). The message lists up to five missing and five unexpected names. */
int ct_safetensors_check_names(const ct_safetensors *st, const char *const *expected, int n,
                               bool allow_unexpected);

/* Converts n elements from src (src_dtype) to dst (dst_dtype) between f32, f64, bf16 and f16,
 * or copies when the dtypes match. Neither buffer needs to be aligned; large conversions run on
 * the OpenMP threads. -1 for a pair it does not convert. Shared by the reader and the writer. */
int ct_st_convert(void *dst, ct_dtype dst_dtype, const void *src, ct_dtype src_dtype, size_t n);

/* Writing: one named CPU tensor per item. */
typedef struct ct_st_item {
    const char *name;
    const ct_tensor *tensor; /* f32, f64, bf16, f16 (converted to store_dtype) or i32 (kept) */
} ct_st_item;

/* Writes the items to `path` with floating tensors stored as store_dtype (CT_F32, CT_BF16 or
 * CT_F16), "__metadata__": {"format": "pt"}. Written to a temporary file in the same directory,
 * synced and renamed over the target, so a failure leaves an existing file untouched. */
int ct_safetensors_write(const char *path, const ct_st_item *items, int n, ct_dtype store_dtype);

#endif
