/* HDF5 writer: tensors, attributes and blobs into a temporary file that replaces the target
 * only once it is complete and on disk.
 *
 * Order of a commit, and why: close the HDF5 file (the library flushes its metadata cache),
 * fsync it (the bytes are on disk before any name points at them), rename it over the target
 * (atomic on one filesystem, which is why the temporary lives beside the target), fsync the
 * directory (the rename itself survives a power cut). A crash before the rename leaves the old
 * target and a stray temporary; after it, the new file, complete.
 *
 * A failed write (a full disk) does not reach HDF5: the file driver of hdf5_driver.c records it
 * in `io` and drops later writes, because HDF5 1.10 crashes at exit after a failed H5Fclose.
 * Every put checks `io` when it returns, and the commit checks it after the close, so a failure
 * is still reported (by the put or commit that notices it), and the temporary file is removed. */
#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"
#include "core/atomic_file.h"
#include "checkpoints/hdf5_file.h"
#include "kernels/device.h"

/* Chunks of about this size: large enough that per-chunk costs (index entries, a 4-byte
 * checksum, a filter call) vanish, small enough that a reader of one slice reads little. */
#define CHUNK_BYTES ((size_t)1 << 20)
/* The most links and attributes HDF5 keeps in an object header (its 16-bit count). */
#define COMPACT_LIMIT 65535

struct ct_h5_writer {
    hid_t file;
    char *final_path;
    char *temp_path;
    bool failed; /* a put failed: the file may be incomplete, so it is never committed */
    ct_h5_io_status io; /* filled by the file driver */
};

const char *ct_h5_temp_path(const ct_h5_writer *w) { return w->temp_path; }

static hid_t writer_file_access(ct_h5_io_status *io) {
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    /* The 1.10 format checksums all of its metadata: superblock, object headers and the
     * fixed-array chunk indexes (the 1.8 format still indexes chunks with unchecksummed
     * B-trees). So corrupt metadata is detected too, not just corrupt tensor data. */
    if (fapl >= 0 && (H5Pset_libver_bounds(fapl, H5F_LIBVER_V110, H5F_LIBVER_LATEST) < 0 ||
                      H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG) < 0 || ct_h5_set_checked_driver(fapl, io) < 0)) {
        H5Pclose(fapl);
        return -1;
    }
    return fapl;
}

/* Group creation properties (the file creation list carries the root group's): links and
 * attributes stay in the group's object header, whose chunks are checksummed. Past the
 * default 8, HDF5 would move them to a fractal heap, which leaves large objects unchecksummed,
 * and whose corrupt link tables crash HDF5 1.10's own error path in H5Literate. */
static hid_t compact_group_creation(hid_t class_id) {
    hid_t plist = H5Pcreate(class_id);
    if (plist >= 0 && (H5Pset_link_phase_change(plist, COMPACT_LIMIT, COMPACT_LIMIT - 1) < 0 ||
                       H5Pset_attr_phase_change(plist, COMPACT_LIMIT, COMPACT_LIMIT - 1) < 0)) {
        H5Pclose(plist);
        return -1;
    }
    return plist;
}

/* A scalar attribute on loc. H5Aexists first: writing a key twice is the caller's mistake. */
static int write_attribute(ct_h5_writer *w, hid_t loc, const char *object, const char *key, hid_t type,
                           const void *value) {
    char what[512];
    snprintf(what, sizeof what, "attribute '%s' of %s", key, object);
    htri_t exists = H5Aexists(loc, key);
    if (exists < 0) return ct_h5_fail(w->temp_path, what, "check the attribute name");
    if (exists > 0) return ct_fail("%s: %s: written twice; write each key once", w->temp_path, what);
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t attr = space < 0 ? -1 : H5Acreate2(loc, key, type, space, H5P_DEFAULT, H5P_DEFAULT);
    int status = 0;
    if (attr < 0 || H5Awrite(attr, type, value) < 0)
        status = ct_h5_fail(w->temp_path, what, "check free disk space");
    if (attr >= 0) H5Aclose(attr);
    if (space >= 0) H5Sclose(space);
    return status;
}

/* Fixed-length UTF-8: stored in the (checksummed) object header, unlike variable-length
 * strings, which live in the unchecksummed global heap. An object header message holds at most
 * 64 KiB; a longer attribute would go to a fractal heap as an unchecksummed "huge" object, so
 * longer strings are refused. */
static int write_string_attribute(ct_h5_writer *w, hid_t loc, const char *object, const char *key,
                                  const char *value) {
    size_t len = strlen(value);
    if (len > CT_H5_MAX_STRING)
        return ct_fail("%s: attribute '%s' of %s: %zu bytes, at most %d fit a checksummed attribute; store longer "
                       "text with ct_h5_put_blob", w->temp_path, key, object, len, CT_H5_MAX_STRING);
    hid_t type = H5Tcopy(H5T_C_S1);
    int status = -1;
    if (type >= 0 && H5Tset_size(type, len + 1) >= 0 && H5Tset_cset(type, H5T_CSET_UTF8) >= 0 &&
        H5Tset_strpad(type, H5T_STR_NULLTERM) >= 0)
        status = write_attribute(w, loc, object, key, type, value);
    else
        ct_h5_fail(w->temp_path, object, "out of memory?");
    if (type >= 0) H5Tclose(type);
    return status;
}

static int write_int64_attribute(ct_h5_writer *w, hid_t loc, const char *object, const char *key, int64_t v) {
    return write_attribute(w, loc, object, key, H5T_STD_I64LE, &v);
}

/* The failed write the driver recorded, as this writer's error about `what`. */
static int check_io(const ct_h5_writer *w, const char *what) {
    if (!w->io.error) return 0;
    if (what) return ct_fail("%s: %s: %s; check free disk space", w->temp_path, what, strerror(w->io.error));
    return ct_fail("%s: %s; check free disk space", w->temp_path, strerror(w->io.error));
}

ct_h5_writer *ct_h5_begin(const char *final_path) {
    ct_h5_silence();
    ct_h5_writer *w = ct_calloc(1, sizeof *w, "an HDF5 writer");
    if (!w) return NULL;
    w->file = -1;
    size_t len = strlen(final_path) + 32;
    w->final_path = ct_strdup(final_path);
    w->temp_path = ct_malloc(len, "a path");
    if (!w->final_path || !w->temp_path) {
        ct_h5_abort(w);
        return NULL;
    }
    /* The pid makes the name unique among concurrent writers of the same target, and lets
     * ct_h5_keep_last tell a crashed writer's leftover from a running writer's file. */
    snprintf(w->temp_path, len, "%s.tmp-%ld", final_path, (long)getpid());
    hid_t fapl = writer_file_access(&w->io);
    hid_t fcpl = compact_group_creation(H5P_FILE_CREATE);
    if (fapl >= 0 && fcpl >= 0) w->file = H5Fcreate(w->temp_path, H5F_ACC_TRUNC, fcpl, fapl);
    if (w->file < 0) ct_h5_fail(w->temp_path, NULL, "check that the directory exists and is writable");
    if (fcpl >= 0) H5Pclose(fcpl);
    if (w->file < 0) {
        if (fapl >= 0) H5Pclose(fapl);
        free(w->temp_path);
        w->temp_path = NULL; /* nothing of ours to remove */
        ct_h5_abort(w);
        return NULL;
    }
    H5Pclose(fapl);
    hid_t root = H5Gopen2(w->file, "/", H5P_DEFAULT);
    int status = root < 0 ? ct_h5_fail(w->temp_path, "group /", "check free disk space") : 0;
    if (status == 0) status = write_string_attribute(w, root, "group /", "format", CT_H5_FORMAT);
    if (status == 0) status = write_int64_attribute(w, root, "group /", "format_version", CT_H5_FORMAT_VERSION);
    if (root >= 0) H5Gclose(root);
    if (status == 0) status = check_io(w, "group /");
    if (status < 0) {
        ct_h5_abort(w);
        return NULL;
    }
    return w;
}

/* Opens group, creating it and its parents when missing, one level at a time so that each
 * gets the compact creation properties (intermediate groups HDF5 creates itself would not). */
static hid_t writer_group(ct_h5_writer *w, const char *group) {
    const char *path = ct_h5_group_or_root(group);
    char what[512];
    ct_h5_describe(what, sizeof what, "group", group, NULL);
    char *prefix = ct_strdup(path);
    hid_t gcpl = compact_group_creation(H5P_GROUP_CREATE);
    hid_t g = -1;
    if (!prefix || gcpl < 0) {
        if (gcpl < 0) ct_h5_fail(w->temp_path, what, "out of memory?");
        free(prefix);
        return -1;
    }
    size_t len = strlen(path);
    bool ok = true;
    for (size_t i = 1; i <= len && ok; i++) {
        if (i < len && path[i] != '/') continue;
        prefix[i] = '\0';
        htri_t exists = H5Lexists(w->file, prefix, H5P_DEFAULT);
        if (exists == 0) {
            hid_t created = H5Gcreate2(w->file, prefix, H5P_DEFAULT, gcpl, H5P_DEFAULT);
            ok = created >= 0;
            if (ok) H5Gclose(created);
        } else {
            ok = exists > 0;
        }
        if (i < len) prefix[i] = '/';
    }
    if (ok) g = H5Gopen2(w->file, path, H5P_DEFAULT);
    if (g < 0) ct_h5_fail(w->temp_path, what, "use a group path that names no dataset");
    H5Pclose(gcpl);
    free(prefix);
    return g;
}

/* Every put refuses to run after a failed one, and a failed one marks the writer. */
static int writer_usable(const ct_h5_writer *w) {
    if (!w) return ct_fail("hdf5: NULL writer (ct_h5_begin failed?)");
    if (w->failed)
        return ct_fail("%s: an earlier write into it failed; abort it (ct_h5_abort) and start again", w->temp_path);
    return 0;
}

/* The end of every put: a write the driver saw fail, in this put or (through HDF5's caches) an
 * earlier one, fails it too. */
static int mark(ct_h5_writer *w, const char *what, int status) {
    if (status == 0) status = check_io(w, what);
    if (status < 0) w->failed = true;
    return status;
}

static int check_link_name(const ct_h5_writer *w, const char *what, const char *name) {
    if (!name || !*name || strchr(name, '/') || strcmp(name, ".") == 0)
        return ct_fail("%s: %s: '%s' is not a valid name; names must be non-empty and hold no '/'", w->temp_path,
                       what, name ? name : "(null)");
    return 0;
}

/* Chunk dimensions of about CHUNK_BYTES: whole trailing dimensions, cut along the leading
 * ones. HDF5 requires every chunk dimension to be at most the dataset's. */
static void choose_chunk(int ndim, const hsize_t *dims, size_t elem, hsize_t *chunk) {
    for (int d = 0; d < ndim; d++) chunk[d] = dims[d];
    for (int d = 0; d < ndim; d++) {
        size_t inner = elem;
        for (int e = d + 1; e < ndim; e++) inner *= (size_t)dims[e];
        hsize_t fit = inner >= CHUNK_BYTES ? 1 : (hsize_t)(CHUNK_BYTES / inner);
        if (fit < chunk[d]) chunk[d] = fit;
        if (inner <= CHUNK_BYTES) break; /* the dimensions after d fit whole */
    }
}

/* Creation properties: chunked with Fletcher32 when there is data to protect. A 0-d dataset
 * cannot be chunked, and an empty one has nothing to checksum: both are compact, which keeps
 * their few bytes in the checksummed object header. */
static hid_t dataset_creation(int ndim, const hsize_t *dims, size_t elem, size_t nelem) {
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    if (dcpl < 0) return -1;
    herr_t ok;
    if (ndim == 0 || nelem == 0) {
        ok = H5Pset_layout(dcpl, H5D_COMPACT);
    } else {
        hsize_t chunk[CT_MAX_DIMS];
        choose_chunk(ndim, dims, elem, chunk);
        ok = H5Pset_chunk(dcpl, ndim, chunk);
        if (ok >= 0) ok = H5Pset_fletcher32(dcpl);
        /* Every byte is written at once: filling chunks first would write them twice. */
        if (ok >= 0) ok = H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER);
    }
    if (ok < 0) {
        H5Pclose(dcpl);
        return -1;
    }
    return dcpl;
}

typedef struct dataset_spec {
    const char *name;
    hid_t file_type, mem_type;
    int ndim;
    hsize_t dims[CT_MAX_DIMS];
    size_t elem;
    const void *data;
    const char *kind;  /* "tensor", "scale" or "blob" */
    const char *label; /* the dtype attribute */
    const int64_t *scale_block; /* i8 with scales: the scale_block attribute; else NULL */
} dataset_spec;

static int write_dataset(ct_h5_writer *w, hid_t group, const char *what, const dataset_spec *s) {
    htri_t exists = H5Lexists(group, s->name, H5P_DEFAULT);
    if (exists < 0) return ct_h5_fail(w->temp_path, what, "check the name");
    if (exists > 0) return ct_fail("%s: %s: written twice; every name in a group must be unique", w->temp_path, what);
    size_t nelem = 1;
    for (int d = 0; d < s->ndim; d++) nelem *= (size_t)s->dims[d];
    hid_t space = s->ndim ? H5Screate_simple(s->ndim, s->dims, NULL) : H5Screate(H5S_SCALAR);
    hid_t dcpl = dataset_creation(s->ndim, s->dims, s->elem, nelem);
    hid_t dset = space < 0 || dcpl < 0
                     ? -1
                     : H5Dcreate2(group, s->name, s->file_type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    int status = 0;
    if (dset < 0 || (nelem && H5Dwrite(dset, s->mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, s->data) < 0))
        status = ct_h5_fail(w->temp_path, what, "check free disk space");
    if (status == 0) status = write_string_attribute(w, dset, what, "kind", s->kind);
    if (status == 0) status = write_string_attribute(w, dset, what, "dtype", s->label);
    if (status == 0 && s->scale_block) status = write_int64_attribute(w, dset, what, "scale_block", *s->scale_block);
    if (dset >= 0) H5Dclose(dset);
    if (dcpl >= 0) H5Pclose(dcpl);
    if (space >= 0) H5Sclose(space);
    return status;
}

/* File type (little-endian, as every reader expects) and memory type for each dtype. bf16 and
 * f16 are plain uint16 on disk: HDF5 has no bfloat16, and a uint16 with a dtype attribute reads
 * back the same in every tool. */
static void hdf5_types(ct_dtype dtype, hid_t *file_type, hid_t *mem_type) {
    switch (dtype) {
    case CT_F32: *file_type = H5T_IEEE_F32LE; *mem_type = H5T_NATIVE_FLOAT; break;
    case CT_F64: *file_type = H5T_IEEE_F64LE; *mem_type = H5T_NATIVE_DOUBLE; break;
    case CT_BF16:
    case CT_F16: *file_type = H5T_STD_U16LE; *mem_type = H5T_NATIVE_UINT16; break;
    case CT_I32: *file_type = H5T_STD_I32LE; *mem_type = H5T_NATIVE_INT32; break;
    default: *file_type = H5T_STD_I8LE; *mem_type = H5T_NATIVE_INT8; break;
    }
}

static dataset_spec tensor_spec(const char *name, const ct_tensor *t, const void *host_data, const char *kind) {
    dataset_spec s = {.name = name, .ndim = t->ndim, .elem = ct_dtype_size(t->dtype), .data = host_data,
                      .kind = kind, .label = ct_h5_dtype_label(t->dtype)};
    hdf5_types(t->dtype, &s.file_type, &s.mem_type);
    for (int d = 0; d < t->ndim; d++) s.dims[d] = (hsize_t)t->shape[d];
    return s;
}

/* The tensor's bytes in host memory: its own data on the CPU, a malloc'd copy from a GPU. */
static const void *host_bytes(const ct_tensor *t, void **copy) {
    *copy = NULL;
    if (t->device == CT_CPU) return t->data;
    *copy = ct_malloc(ct_nbytes(t), "a host copy of a tensor");
    if (*copy && ct_device_copy(CT_CPU, *copy, t->device, t->data, ct_nbytes(t)) < 0) {
        free(*copy);
        *copy = NULL;
    }
    return *copy;
}

static int check_tensor(const ct_h5_writer *w, const char *what, const ct_tensor *t) {
    if (!t) return ct_fail("%s: %s: NULL tensor; pass the tensor to store", w->temp_path, what);
    if ((unsigned)t->dtype >= CT_DTYPE_COUNT || !ct_h5_dtype_label(t->dtype))
        return ct_fail("%s: %s: unsupported dtype %d; store f32, f64, bf16, f16, i32 or i8", w->temp_path, what,
                       (int)t->dtype);
    if (t->ndim < 0 || t->ndim > CT_MAX_DIMS)
        return ct_fail("%s: %s: %d dimensions; at most %d are stored", w->temp_path, what, t->ndim, CT_MAX_DIMS);
    const ct_tensor *s = t->scale;
    if (t->dtype == CT_I8 && s && t->scale_block < 0)
        return ct_fail("%s: %s: scale_block %lld; it must be 0 (per row) or positive", w->temp_path, what,
                       (long long)t->scale_block);
    if (t->dtype == CT_I8 && s) {
        int64_t blocks = t->scale_block ? (ct_cols(t) + t->scale_block - 1) / t->scale_block : 1;
        if (s->dtype != CT_F32 || ct_numel(s) != ct_rows(t) * blocks)
            return ct_fail("%s: %s: its scales hold %lld %s values, expected %lld f32 (one per %s)", w->temp_path,
                           what, (long long)ct_numel(s), ct_dtype_name(s->dtype), (long long)(ct_rows(t) * blocks),
                           t->scale_block ? "block" : "row");
    }
    return 0;
}

/* An i8 tensor's scales: the f32 dataset `<name>_scale` beside it, and the scale_block
 * attribute on the tensor, so readers need no convention beyond the name. */
static int put_scales(ct_h5_writer *w, hid_t group, const char *group_path, const char *name, const ct_tensor *t) {
    size_t len = strlen(name) + 8;
    char *scale_name = ct_malloc(len, "a dataset name");
    if (!scale_name) return -1;
    snprintf(scale_name, len, "%s_scale", name);
    char what[512];
    ct_h5_describe(what, sizeof what, "dataset", group_path, scale_name);
    void *copy;
    const void *bytes = host_bytes(t->scale, &copy);
    int status = -1;
    if (bytes) {
        dataset_spec s = tensor_spec(scale_name, t->scale, bytes, "scale");
        status = write_dataset(w, group, what, &s);
    }
    free(copy);
    free(scale_name);
    return status;
}

int ct_h5_put_tensor(ct_h5_writer *w, const char *group, const char *name, const ct_tensor *t) {
    CT_TRY(writer_usable(w));
    char what[512];
    ct_h5_describe(what, sizeof what, "dataset", group, name);
    if (check_link_name(w, what, name) < 0 || check_tensor(w, what, t) < 0) return mark(w, what, -1);
    hid_t g = writer_group(w, group);
    if (g < 0) return mark(w, what, -1);
    void *copy;
    const void *bytes = host_bytes(t, &copy);
    int status = -1;
    if (bytes) {
        dataset_spec s = tensor_spec(name, t, bytes, "tensor");
        if (t->dtype == CT_I8 && t->scale) s.scale_block = &t->scale_block;
        status = write_dataset(w, g, what, &s);
    }
    free(copy);
    if (status == 0 && t->dtype == CT_I8 && t->scale) status = put_scales(w, g, group, name, t);
    H5Gclose(g);
    return mark(w, what, status);
}

int ct_h5_put_blob(ct_h5_writer *w, const char *group, const char *name, const void *bytes, size_t n) {
    CT_TRY(writer_usable(w));
    char what[512];
    ct_h5_describe(what, sizeof what, "blob", group, name);
    if (check_link_name(w, what, name) < 0) return mark(w, what, -1);
    if (n && !bytes) return mark(w, what, ct_fail("%s: %s: NULL bytes; pass the data to store", w->temp_path, what));
    hid_t g = writer_group(w, group);
    if (g < 0) return mark(w, what, -1);
    dataset_spec s = {.name = name, .file_type = H5T_STD_U8LE, .mem_type = H5T_NATIVE_UINT8, .ndim = 1,
                      .dims = {(hsize_t)n}, .elem = 1, .data = bytes, .kind = "blob", .label = "uint8"};
    int status = write_dataset(w, g, what, &s);
    H5Gclose(g);
    return mark(w, what, status);
}

/* The three attribute puts: open (or create) the group, then write one scalar. */
static int put_group_attribute(ct_h5_writer *w, const char *group, const char *key, hid_t type, const void *value,
                               const char *string) {
    CT_TRY(writer_usable(w));
    char what[512];
    ct_h5_describe(what, sizeof what, "group", group, NULL);
    if (!key || !*key) return mark(w, what, ct_fail("%s: %s: empty attribute name; give a key", w->temp_path, what));
    hid_t g = writer_group(w, group);
    if (g < 0) return mark(w, what, -1);
    int status = string ? write_string_attribute(w, g, what, key, string) : write_attribute(w, g, what, key, type, value);
    H5Gclose(g);
    return mark(w, what, status);
}

int ct_h5_put_int64(ct_h5_writer *w, const char *group, const char *key, int64_t value) {
    return put_group_attribute(w, group, key, H5T_STD_I64LE, &value, NULL);
}

int ct_h5_put_double(ct_h5_writer *w, const char *group, const char *key, double value) {
    return put_group_attribute(w, group, key, H5T_IEEE_F64LE, &value, NULL);
}

int ct_h5_put_string(ct_h5_writer *w, const char *group, const char *key, const char *value) {
    if (!value) {
        if (w) w->failed = true;
        return ct_fail("%s: attribute '%s': NULL string; pass the text to store", w ? w->temp_path : "hdf5",
                       key ? key : "");
    }
    return put_group_attribute(w, group, key, -1, NULL, value);
}

static void free_writer(ct_h5_writer *w) {
    free(w->final_path);
    free(w->temp_path);
    free(w);
}

int ct_h5_commit(ct_h5_writer *w) {
    if (!w) return ct_fail("hdf5: commit of a NULL writer (ct_h5_begin failed?)");
    if (w->failed) {
        ct_fail_context("%s: not committed, an earlier write failed: ", w->final_path);
        ct_h5_abort(w);
        return -1;
    }
    /* The close flushes HDF5's caches: the last writes happen here, and a failure among them
     * is in w->io afterwards (the close itself does not fail on I/O). */
    herr_t closed = H5Fclose(w->file);
    w->file = -1;
    int status = closed < 0 ? ct_h5_fail(w->temp_path, NULL, "check free disk space") : check_io(w, NULL);
    if (status < 0) {
        ct_h5_abort(w);
        return -1;
    }
    status = ct_atomic_commit(w->temp_path, w->final_path); /* removes the temporary on failure */
    free_writer(w);
    return status;
}

void ct_h5_abort(ct_h5_writer *w) {
    if (!w) return;
    if (w->file >= 0) {
        w->io.discard = true; /* the file is deleted: its cached bytes need not be written */
        H5Fclose(w->file);
        H5Eclear2(H5E_DEFAULT);
    }
    if (w->temp_path) unlink(w->temp_path);
    free_writer(w);
}
