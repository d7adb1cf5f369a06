/* HDF5 files of named tensors, attributes and byte blobs: training checkpoints, and later LoRA
 * adapters, pruning masks and INT8 weights. Layout, dtypes and guarantees: docs/formats.md,
 * section "HDF5 training checkpoints".
 *
 * Writing is all or nothing. ct_h5_begin(final) creates `<final>.tmp-<pid>` beside the target;
 * put_* calls fill it; ct_h5_commit closes it, fsyncs it, renames it over the target and fsyncs
 * the directory. A failure anywhere (or a crash, or ct_h5_abort) leaves an existing target as
 * it was, so the previous checkpoint stays loadable.
 *
 * Integrity: every tensor and blob with data is stored chunked with HDF5's Fletcher32 filter,
 * and the file uses the HDF5 1.10 format, which checksums all metadata (groups keep their links
 * and attributes in their checksummed object headers); the library verifies both on every
 * read, and a mismatch fails the read with the dataset or group named.
 *
 * Groups are paths ("/", "/model", "/optimizer/m"; a leading '/' is optional). Tensor and blob
 * names are single HDF5 link names kept verbatim, dots included ("model.layers.0.mlp.up_proj.
 * weight"), so they must not contain '/'. Every error is one line:
 * "<file>: dataset <group>/<name>: <reason>; <fix>" (or "<file>: <reason>; <fix>"), with
 * HDF5's own error stack silenced and its innermost message used as the reason.
 *
 * Not thread-safe (neither is the serial HDF5 library): use a writer or reader from one thread. */
#ifndef CT_HDF5_FILE_H
#define CT_HDF5_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/tensor.h"

/* Root attribute "format" holds this; "format_version" the version below. */
#define CT_H5_FORMAT "ctune"
#define CT_H5_FORMAT_VERSION 1
/* The longest string attribute, in bytes. */
#define CT_H5_MAX_STRING 60000

/* ---- Writing ------------------------------------------------------------------------------ */

typedef struct ct_h5_writer ct_h5_writer;

/* Creates `<final_path>.tmp-<pid>` (replacing a leftover of the same name). NULL with a message
 * naming the file when it cannot be created (missing directory, no permission). */
ct_h5_writer *ct_h5_begin(const char *final_path);
/* The temporary file being written (for messages and tests). */
const char *ct_h5_temp_path(const ct_h5_writer *w);

/* Stores a CPU or CUDA tensor of any dtype as dataset `group/name`, creating the group (and its
 * parents) when missing. f32, f64, i32, i8 keep their type; bf16 and f16 are stored as uint16
 * with the attribute dtype = "bfloat16" / "float16". An i8 tensor's scales go beside it as the
 * f32 dataset `<name>_scale` (a name no other tensor of the group may use). A name already
 * present is an error. */
int ct_h5_put_tensor(ct_h5_writer *w, const char *group, const char *name, const ct_tensor *t);
/* Scalar attributes on a group (created when missing). A key already present is an error. */
int ct_h5_put_int64(ct_h5_writer *w, const char *group, const char *key, int64_t value);
int ct_h5_put_double(ct_h5_writer *w, const char *group, const char *key, double value);
/* A UTF-8 string of at most CT_H5_MAX_STRING bytes (a recipe's YAML text): attributes are
 * checksummed only while they fit in an object header. Longer text goes in a blob. */
int ct_h5_put_string(ct_h5_writer *w, const char *group, const char *key, const char *value);
/* n opaque bytes (RNG state, data cursor) as a checksummed uint8 dataset `group/name`. */
int ct_h5_put_blob(ct_h5_writer *w, const char *group, const char *name, const void *bytes, size_t n);

/* Closes, fsyncs and renames the temporary over the final path, then fsyncs the directory.
 * Refuses (and aborts) a writer on which a put failed. Frees the writer in every case. */
int ct_h5_commit(ct_h5_writer *w);
/* Closes and removes the temporary file; frees the writer. NULL is allowed. */
void ct_h5_abort(ct_h5_writer *w);

/* ---- Reading ------------------------------------------------------------------------------ */

typedef struct ct_h5_reader ct_h5_reader;

/* What a stored tensor is: enough to allocate a destination for ct_h5_read_tensor_into. */
typedef struct ct_h5_tensor_info {
    ct_dtype dtype;
    int ndim;
    int64_t shape[CT_MAX_DIMS];
    bool has_scale;      /* i8 with a `<name>_scale` dataset */
    int64_t scale_block; /* i8: 0 = one scale per row, else elements per scale */
} ct_h5_tensor_info;

/* Opens a file written by ct_h5_commit. NULL with a message naming the file when it is missing,
 * not an HDF5 file, truncated, has a corrupt superblock or is not a ctune file. */
ct_h5_reader *ct_h5_open(const char *path);
void ct_h5_close(ct_h5_reader *r);
const char *ct_h5_reader_path(const ct_h5_reader *r);

/* Whether group (name == NULL) or group/name exists. Never sets an error. */
bool ct_h5_exists(ct_h5_reader *r, const char *group, const char *name);
/* The tensors of a group, sorted by name (scales and blobs are left out): *names gets a
 * malloc'd array of malloc'd strings; returns the count, or -1. Free with ct_h5_free_names. */
int ct_h5_list_tensors(ct_h5_reader *r, const char *group, char ***names);
void ct_h5_free_names(char **names, int count);

int ct_h5_tensor_info_of(ct_h5_reader *r, const char *group, const char *name, ct_h5_tensor_info *info);
/* Reads group/name into dst (CPU or CUDA), which must have the stored dtype and shape exactly;
 * a mismatch names the dataset and both shapes. Checksums are verified. For i8, dst->scale is
 * filled (allocated with dst's lifetime when NULL) and dst->scale_block set. */
int ct_h5_read_tensor_into(ct_h5_reader *r, const char *group, const char *name, ct_tensor *dst);
/* A new persistent CPU tensor named `name` holding group/name; NULL on error. */
ct_tensor *ct_h5_read_tensor(ct_h5_reader *r, const char *group, const char *name);

/* Attributes of a group, with their type checked (an integer is not read as a double or the
 * other way round). ct_h5_get_string returns a malloc'd string, or NULL. */
int ct_h5_get_int64(ct_h5_reader *r, const char *group, const char *key, int64_t *value);
int ct_h5_get_double(ct_h5_reader *r, const char *group, const char *key, double *value);
char *ct_h5_get_string(ct_h5_reader *r, const char *group, const char *key);

/* A blob's size in bytes, or -1. */
int64_t ct_h5_blob_size(ct_h5_reader *r, const char *group, const char *name);
/* Reads a blob of exactly `size` bytes into buf (checksum verified); another size is an error. */
int ct_h5_read_blob(ct_h5_reader *r, const char *group, const char *name, void *buf, size_t size);

/* ---- Checkpoint directories ------------------------------------------------------------- */

/* A pattern is a file name with one integer conversion: "step-%08d.h5", "ckpt-%d.h5" (flags:
 * '0' and a width; length modifiers l/ll accepted; "%%" is a literal '%'). A file is a
 * complete checkpoint when its name is exactly what the pattern makes of some step >= 0:
 * temporary files never are (they carry a ".tmp-<pid>" suffix). */

/* dir/pattern(step) into out. */
int ct_h5_checkpoint_path(const char *dir, const char *pattern, int64_t step, char *out, size_t size);
/* The complete checkpoint with the highest step: 1 and its path and step when found, 0 when the
 * directory holds none, -1 on error (unreadable directory, bad pattern). step may be NULL. */
int ct_h5_latest_checkpoint(const char *dir, const char *pattern, char *path, size_t size, int64_t *step);
/* Deletes all but the `keep` (>= 1) complete checkpoints with the highest steps, and temporary
 * files of checkpoints whose writer process is gone. Returns how many files it deleted, or -1. */
int ct_h5_keep_last(const char *dir, const char *pattern, int keep);

/* ---- Shared by checkpoints/hdf5_*.c --------------------------------------------------- */

/* Where the writer's file driver (checkpoints/hdf5_driver.c) records the first failed write:
 * error is its errno (0 while every write succeeded). Once error or discard is set, writes are
 * dropped, so closing the file cannot fail on I/O (HDF5 1.10 crashes at exit after a failed
 * H5Fclose). */
typedef struct ct_h5_io_status {
    int error;
    bool discard; /* the writer is aborting: nothing more needs to reach the disk */
} ct_h5_io_status;
/* Makes fapl write through that driver, recording into *status (which must outlive the file).
 * 0, or -1 with HDF5's error stack set. */
int ct_h5_set_checked_driver(int64_t fapl, ct_h5_io_status *status);

/* Silences HDF5's automatic error printing (once per thread: thread-safe HDF5 builds keep one
 * error stack per thread). Every entry point calls it before touching the library. */
void ct_h5_silence(void);
/* Records "<file>: <object>: <reason>; <fix>" with the reason taken from HDF5's error stack
 * (innermost message; known cases such as checksum failures and truncated files get their own
 * reason and fix), then clears the stack. object may be NULL. Returns -1. Call it right after
 * the failing HDF5 call: any other HDF5 call resets the stack. */
int ct_h5_fail(const char *file, const char *object, const char *fix);
/* "dataset /model/x" (kind, group, name) into buf, for messages: group NULL, "" and "/" are the
 * root, a missing leading '/' is added, name may be NULL (the group itself). Returns buf. */
const char *ct_h5_describe(char *buf, size_t size, const char *kind, const char *group, const char *name);
/* The group as HDF5 takes it: "/" for NULL or "". */
const char *ct_h5_group_or_root(const char *group);
/* "bfloat16", "float32", ...: the dtype attribute's value for a ct dtype; NULL if none. */
const char *ct_h5_dtype_label(ct_dtype dtype);
/* The inverse; -1 for an unknown label. */
int ct_h5_dtype_from_label(const char *label, ct_dtype *dtype);

#endif
