/* HDF5 reader: opens a file written by hdf5_write.c, lists and reads its tensors, attributes
 * and blobs. Every object is checked against what the caller expects (kind, dtype, shape, size)
 * before any byte is copied, and HDF5 verifies the Fletcher32 and metadata checksums as it
 * reads, so a damaged file fails with the dataset named instead of loading wrong numbers. */
#include <hdf5.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/error.h"
#include "checkpoints/hdf5_file.h"
#include "kernels/device.h"

struct ct_h5_reader {
    hid_t file;
    char *path;
};

static const char *const dtype_labels[CT_DTYPE_COUNT] = {
    [CT_F32] = "float32", [CT_F64] = "float64", [CT_BF16] = "bfloat16",
    [CT_F16] = "float16", [CT_I32] = "int32",   [CT_I8] = "int8",
};

const char *ct_h5_dtype_label(ct_dtype dtype) {
    return (unsigned)dtype < CT_DTYPE_COUNT ? dtype_labels[dtype] : NULL;
}

int ct_h5_dtype_from_label(const char *label, ct_dtype *dtype) {
    for (int d = 0; d < CT_DTYPE_COUNT; d++)
        if (dtype_labels[d] && strcmp(label, dtype_labels[d]) == 0) {
            *dtype = (ct_dtype)d;
            return 0;
        }
    return -1;
}

const char *ct_h5_reader_path(const ct_h5_reader *r) { return r->path; }

/* The class and size a dtype must have on disk (any byte order: HDF5 converts). */
static bool file_type_matches(hid_t type, ct_dtype dtype) {
    H5T_class_t cls = H5Tget_class(type);
    size_t size = H5Tget_size(type);
    if (size != ct_dtype_size(dtype)) return false;
    if (dtype == CT_F32 || dtype == CT_F64) return cls == H5T_FLOAT;
    H5T_sign_t sign = H5Tget_sign(type);
    if (dtype == CT_BF16 || dtype == CT_F16) return cls == H5T_INTEGER && sign == H5T_SGN_NONE;
    return cls == H5T_INTEGER && sign == H5T_SGN_2;
}

static hid_t memory_type(ct_dtype dtype) {
    switch (dtype) {
    case CT_F32: return H5T_NATIVE_FLOAT;
    case CT_F64: return H5T_NATIVE_DOUBLE;
    case CT_BF16:
    case CT_F16: return H5T_NATIVE_UINT16;
    case CT_I32: return H5T_NATIVE_INT32;
    default: return H5T_NATIVE_INT8;
    }
}

/* Reads a scalar string attribute (fixed or variable length) of loc: malloc'd, or NULL. */
static char *read_string_attribute(ct_h5_reader *r, hid_t loc, const char *what, const char *key) {
    char *value = NULL;
    hid_t attr = H5Aopen(loc, key, H5P_DEFAULT);
    hid_t type = attr < 0 ? -1 : H5Aget_type(attr);
    if (type < 0) {
        ct_h5_fail(r->path, what, "the file is damaged or was not written by ctune");
    } else if (H5Tget_class(type) != H5T_STRING) {
        ct_fail("%s: %s: is not a string; the file was not written by ctune", r->path, what);
    } else if (H5Tis_variable_str(type) > 0) {
        char *text = NULL;
        if (H5Aread(attr, type, &text) < 0) ct_h5_fail(r->path, what, "the file is damaged");
        else if (text) value = ct_strdup(text);
        if (text) H5free_memory(text);
    } else {
        size_t size = H5Tget_size(type);
        value = ct_malloc(size + 1, "an attribute string");
        if (value && H5Aread(attr, type, value) < 0) {
            ct_h5_fail(r->path, what, "the file is damaged");
            free(value);
            value = NULL;
        } else if (value) {
            value[size] = '\0'; /* space- or null-padded: the terminator is ours */
        }
    }
    if (type >= 0) H5Tclose(type);
    if (attr >= 0) H5Aclose(attr);
    return value;
}

/* The attribute `key` of loc when it exists; "not found" with the fix otherwise. */
static int require_attribute(ct_h5_reader *r, hid_t loc, const char *what, const char *key, const char *fix) {
    htri_t exists = H5Aexists(loc, key);
    if (exists < 0) return ct_h5_fail(r->path, what, fix);
    if (exists == 0) return ct_fail("%s: %s: not found; %s", r->path, what, fix);
    return 0;
}

static int check_format(ct_h5_reader *r) {
    hid_t root = H5Gopen2(r->file, "/", H5P_DEFAULT);
    if (root < 0) return ct_h5_fail(r->path, NULL, "the file is damaged; load an earlier checkpoint");
    const char *fix = "this is not a ctune checkpoint; give a file written by ctune";
    int status = require_attribute(r, root, "attribute 'format' of group /", "format", fix);
    char *format = status < 0 ? NULL : read_string_attribute(r, root, "attribute 'format' of group /", "format");
    int64_t version = 0;
    if (status == 0 && !format) status = -1;
    if (status == 0 && strcmp(format, CT_H5_FORMAT) != 0)
        status = ct_fail("%s: format '%s'; %s", r->path, format, fix);
    H5Gclose(root);
    free(format);
    if (status == 0) status = ct_h5_get_int64(r, "/", "format_version", &version);
    if (status == 0 && (version < 1 || version > CT_H5_FORMAT_VERSION))
        status = ct_fail("%s: format version %lld, this ctune reads up to %d; use a newer ctune", r->path,
                         (long long)version, CT_H5_FORMAT_VERSION);
    return status;
}

ct_h5_reader *ct_h5_open(const char *path) {
    ct_h5_silence();
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        ct_fail("%s: is a directory; give a checkpoint file (ct_h5_latest_checkpoint finds one)", path);
        return NULL;
    }
    ct_h5_reader *r = ct_calloc(1, sizeof *r, "an HDF5 reader");
    if (!r) return NULL;
    r->file = -1;
    if (!(r->path = ct_strdup(path))) {
        ct_h5_close(r);
        return NULL;
    }
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl >= 0 && H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG) >= 0)
        r->file = H5Fopen(path, H5F_ACC_RDONLY, fapl);
    if (r->file < 0) ct_h5_fail(path, NULL, "check the path");
    if (fapl >= 0) H5Pclose(fapl);
    if (r->file < 0 || check_format(r) < 0) {
        ct_h5_close(r);
        return NULL;
    }
    return r;
}

void ct_h5_close(ct_h5_reader *r) {
    if (!r) return;
    if (r->file >= 0) H5Fclose(r->file);
    H5Eclear2(H5E_DEFAULT);
    free(r->path);
    free(r);
}

/* 1 when every link of the path exists, 0 when one is missing, -1 when HDF5 fails (a damaged
 * group: the error stack is left for ct_h5_fail). Walks one link at a time because H5Lexists
 * fails, rather than answering no, when an intermediate group is missing. */
static int path_exists(hid_t file, const char *group) {
    const char *g = ct_h5_group_or_root(group);
    size_t len = strlen(g);
    char *prefix = ct_strdup(g);
    if (!prefix) return -1;
    int exists = 1;
    for (size_t i = 1; i <= len && exists == 1; i++) {
        if (i < len && g[i] != '/') continue;
        prefix[i] = '\0';
        if (strcmp(prefix, "/") != 0) {
            htri_t found = H5Lexists(file, prefix, H5P_DEFAULT);
            exists = found < 0 ? -1 : found > 0;
        }
        if (i < len) prefix[i] = '/';
    }
    free(prefix);
    return exists;
}

static hid_t reader_group(ct_h5_reader *r, const char *group) {
    char what[512];
    ct_h5_describe(what, sizeof what, "group", group, NULL);
    int exists = path_exists(r->file, group);
    if (exists == 0) ct_fail("%s: %s: not found; the file holds no such group", r->path, what);
    hid_t g = exists == 1 ? H5Gopen2(r->file, ct_h5_group_or_root(group), H5P_DEFAULT) : -1;
    if (g < 0 && exists != 0) ct_h5_fail(r->path, what, "the file is damaged; load an earlier checkpoint");
    return g;
}

bool ct_h5_exists(ct_h5_reader *r, const char *group, const char *name) {
    bool exists = path_exists(r->file, group) == 1;
    if (exists && name) {
        hid_t g = H5Gopen2(r->file, ct_h5_group_or_root(group), H5P_DEFAULT);
        exists = g >= 0 && *name && !strchr(name, '/') && H5Lexists(g, name, H5P_DEFAULT) > 0;
        if (g >= 0) H5Gclose(g);
    }
    H5Eclear2(H5E_DEFAULT);
    return exists;
}

/* Opens group/name as a dataset of the given kind ("tensor", "scale" or "blob"). */
static hid_t open_dataset(ct_h5_reader *r, hid_t group, const char *what, const char *name, const char *kind) {
    htri_t exists = !*name || strchr(name, '/') ? 0 : H5Lexists(group, name, H5P_DEFAULT);
    if (exists < 0) {
        ct_h5_fail(r->path, what, "the file is damaged; load an earlier checkpoint");
        return -1;
    }
    if (exists == 0) {
        ct_fail("%s: %s: not found; the checkpoint does not hold it (another model or configuration?)", r->path,
                what);
        return -1;
    }
    hid_t dset = H5Dopen2(group, name, H5P_DEFAULT);
    if (dset < 0) {
        ct_h5_fail(r->path, what, "it is not a dataset, or the file is damaged");
        return -1;
    }
    const char *fix = "the file was not written by ctune";
    char *stored = require_attribute(r, dset, what, "kind", fix) < 0 ? NULL : read_string_attribute(r, dset, what, "kind");
    if (stored && strcmp(stored, kind) != 0)
        ct_fail("%s: %s: is a %s, not a %s; read it with the matching function", r->path, what, stored, kind);
    if (!stored || strcmp(stored, kind) != 0) {
        free(stored);
        H5Dclose(dset);
        return -1;
    }
    free(stored);
    return dset;
}

/* Fills info from an open tensor dataset, checking that its dtype attribute, type and rank are
 * ones ctune writes. */
static int dataset_info(ct_h5_reader *r, hid_t dset, const char *what, ct_h5_tensor_info *info) {
    memset(info, 0, sizeof *info);
    const char *fix = "the file was not written by ctune";
    char *label = require_attribute(r, dset, what, "dtype", fix) < 0 ? NULL : read_string_attribute(r, dset, what, "dtype");
    if (!label) return -1;
    int status = 0;
    if (ct_h5_dtype_from_label(label, &info->dtype) < 0)
        status = ct_fail("%s: %s: unknown dtype '%s'; %s", r->path, what, label, fix);
    hid_t type = status < 0 ? -1 : H5Dget_type(dset);
    hid_t space = status < 0 ? -1 : H5Dget_space(dset);
    if (status == 0 && (type < 0 || space < 0)) status = ct_h5_fail(r->path, what, "the file is damaged");
    if (status == 0 && !file_type_matches(type, info->dtype))
        status = ct_fail("%s: %s: its stored type does not hold %s values; %s", r->path, what, label, fix);
    int ndim = status < 0 ? 0 : H5Sget_simple_extent_ndims(space);
    if (status == 0 && (ndim < 0 || ndim > CT_MAX_DIMS))
        status = ct_fail("%s: %s: %d dimensions, ctune tensors have at most %d; %s", r->path, what, ndim, CT_MAX_DIMS, fix);
    if (status == 0) {
        hsize_t dims[CT_MAX_DIMS];
        H5Sget_simple_extent_dims(space, dims, NULL);
        info->ndim = ndim;
        for (int d = 0; d < ndim; d++) info->shape[d] = (int64_t)dims[d];
    }
    if (type >= 0) H5Tclose(type);
    if (space >= 0) H5Sclose(space);
    free(label);
    return status;
}

static char *scale_name_of(const char *name) {
    size_t len = strlen(name) + 8;
    char *s = ct_malloc(len, "a dataset name");
    if (s) snprintf(s, len, "%s_scale", name);
    return s;
}

/* A scalar numeric attribute of loc read as `mem_type`, after checking its class: an integer
 * is not silently read as a double, nor a double truncated to an integer. */
static int read_number_attribute(ct_h5_reader *r, hid_t loc, const char *what, const char *key,
                                 H5T_class_t want, hid_t mem_type, void *value) {
    CT_TRY(require_attribute(r, loc, what, key, "the file was written without it (by an older ctune?)"));
    hid_t attr = H5Aopen(loc, key, H5P_DEFAULT);
    hid_t type = attr < 0 ? -1 : H5Aget_type(attr);
    hid_t space = attr < 0 ? -1 : H5Aget_space(attr);
    int status = 0;
    if (type < 0 || space < 0) {
        status = ct_h5_fail(r->path, what, "the file is damaged");
    } else if (H5Tget_class(type) != want || H5Sget_simple_extent_npoints(space) != 1) {
        H5T_class_t cls = H5Tget_class(type);
        const char *held = cls == H5T_STRING ? "a string" : cls == H5T_FLOAT ? "a floating-point number"
                         : cls == H5T_INTEGER ? "an integer" : "a non-scalar value";
        if (H5Sget_simple_extent_npoints(space) != 1) held = "more than one value";
        status = ct_fail("%s: %s: holds %s, expected %s; read it with the matching ct_h5_get_* function", r->path,
                         what, held, want == H5T_INTEGER ? "one integer" : "one floating-point number");
    } else if (H5Aread(attr, mem_type, value) < 0) {
        status = ct_h5_fail(r->path, what, "the file is damaged");
    }
    if (space >= 0) H5Sclose(space);
    if (type >= 0) H5Tclose(type);
    if (attr >= 0) H5Aclose(attr);
    return status;
}

/* Opens group/name as a tensor and fills info, scales included. Returns the dataset or -1. */
static hid_t open_tensor(ct_h5_reader *r, hid_t g, const char *name, const char *what, ct_h5_tensor_info *info) {
    hid_t dset = open_dataset(r, g, what, name, "tensor");
    if (dset < 0) return -1;
    int status = dataset_info(r, dset, what, info);
    htri_t has_scale = status < 0 || info->dtype != CT_I8 ? 0 : H5Aexists(dset, "scale_block");
    if (has_scale > 0) {
        char attr_what[600];
        snprintf(attr_what, sizeof attr_what, "attribute 'scale_block' of %s", what);
        info->has_scale = true;
        status = read_number_attribute(r, dset, attr_what, "scale_block", H5T_INTEGER, H5T_NATIVE_INT64,
                                       &info->scale_block);
        if (status == 0 && info->scale_block < 0)
            status = ct_fail("%s: %s: negative (%lld); the file is damaged", r->path, attr_what,
                             (long long)info->scale_block);
    }
    if (status < 0) {
        H5Dclose(dset);
        return -1;
    }
    return dset;
}

int ct_h5_tensor_info_of(ct_h5_reader *r, const char *group, const char *name, ct_h5_tensor_info *info) {
    char what[512];
    ct_h5_describe(what, sizeof what, "dataset", group, name);
    hid_t g = reader_group(r, group);
    if (g < 0) return -1;
    hid_t dset = open_tensor(r, g, name, what, info);
    H5Gclose(g);
    if (dset < 0) return -1;
    H5Dclose(dset);
    return 0;
}

/* A header-only tensor for formatting a stored shape with ct_shape_str. */
static const char *info_shape_str(const ct_h5_tensor_info *info, char *buf, size_t size) {
    ct_tensor t = {.dtype = info->dtype, .ndim = info->ndim};
    memcpy(t.shape, info->shape, sizeof t.shape);
    return ct_shape_str(&t, buf, size);
}

static int check_destination(ct_h5_reader *r, const char *what, const ct_h5_tensor_info *info,
                             const ct_tensor *dst) {
    bool same = dst->dtype == info->dtype && dst->ndim == info->ndim;
    for (int d = 0; same && d < info->ndim; d++) same = dst->shape[d] == info->shape[d];
    if (same) return 0;
    char stored[128], wanted[128];
    return ct_fail("%s: %s: stored as %s, the destination is %s; load a checkpoint of the same model and "
                   "settings", r->path, what, info_shape_str(info, stored, sizeof stored),
                   ct_shape_str(dst, wanted, sizeof wanted));
}

/* Reads an open dataset into a tensor's memory on any device (through host memory for a GPU). */
static int read_into(ct_h5_reader *r, hid_t dset, const char *what, ct_tensor *dst) {
    size_t nbytes = ct_nbytes(dst);
    if (nbytes == 0) return 0;
    void *host = dst->device == CT_CPU ? dst->data : ct_malloc(nbytes, "a host copy of a tensor");
    if (!host) return -1;
    int status = 0;
    if (H5Dread(dset, memory_type(dst->dtype), H5S_ALL, H5S_ALL, H5P_DEFAULT, host) < 0)
        status = ct_h5_fail(r->path, what, "the file is damaged; load an earlier checkpoint");
    if (status == 0 && host != dst->data) status = ct_device_copy(dst->device, dst->data, CT_CPU, host, nbytes);
    if (host != dst->data) free(host);
    return status;
}

/* The i8 tensor's scales from `<name>_scale` into dst->scale, allocated with dst's lifetime
 * when missing. */
static int read_scales(ct_h5_reader *r, hid_t g, const char *group, const char *name,
                       const ct_h5_tensor_info *tensor_info, ct_tensor *dst) {
    char *scale_name = scale_name_of(name);
    if (!scale_name) return -1;
    char what[512];
    ct_h5_describe(what, sizeof what, "dataset", group, scale_name);
    ct_h5_tensor_info info;
    hid_t dset = open_dataset(r, g, what, scale_name, "scale");
    int status = dset < 0 ? -1 : dataset_info(r, dset, what, &info);
    int64_t cols = tensor_info->ndim ? tensor_info->shape[tensor_info->ndim - 1] : 1;
    int64_t rows = 1;
    for (int d = 0; d + 1 < tensor_info->ndim; d++) rows *= tensor_info->shape[d];
    int64_t blocks = tensor_info->scale_block ? (cols + tensor_info->scale_block - 1) / tensor_info->scale_block : 1;
    int64_t count = 1;
    for (int d = 0; status == 0 && d < info.ndim; d++) count *= info.shape[d];
    if (status == 0 && (info.dtype != CT_F32 || count != rows * blocks))
        status = ct_fail("%s: %s: holds %lld %s values, the tensor needs %lld f32 scales; the file is damaged",
                         r->path, what, (long long)count, ct_dtype_name(info.dtype), (long long)(rows * blocks));
    if (status == 0 && !dst->scale) {
        dst->scale = dst->persistent ? ct_tensor_new_on(dst->device, CT_F32, info.ndim, info.shape, NULL)
                                     : ct_empty_on(dst->device, CT_F32, info.ndim, info.shape);
        if (!dst->scale) status = -1;
    }
    if (status == 0 && (dst->scale->dtype != CT_F32 || ct_numel(dst->scale) != count)) {
        char stored[128], wanted[128];
        status = ct_fail("%s: %s: stored as %s, the destination's scales are %s; free dst->scale or give it the "
                         "stored shape", r->path, what, info_shape_str(&info, stored, sizeof stored),
                         ct_shape_str(dst->scale, wanted, sizeof wanted));
    }
    if (status == 0) status = read_into(r, dset, what, dst->scale);
    if (status == 0) dst->scale_block = tensor_info->scale_block;
    if (dset >= 0) H5Dclose(dset);
    free(scale_name);
    return status;
}

int ct_h5_read_tensor_into(ct_h5_reader *r, const char *group, const char *name, ct_tensor *dst) {
    char what[512];
    ct_h5_describe(what, sizeof what, "dataset", group, name);
    if (!dst) return ct_fail("%s: %s: NULL destination; pass a tensor to fill", r->path, what);
    hid_t g = reader_group(r, group);
    if (g < 0) return -1;
    ct_h5_tensor_info info;
    hid_t dset = open_tensor(r, g, name, what, &info);
    int status = dset < 0 ? -1 : check_destination(r, what, &info, dst);
    if (status == 0) status = read_into(r, dset, what, dst);
    if (status == 0 && info.has_scale) status = read_scales(r, g, group, name, &info, dst);
    if (dset >= 0) H5Dclose(dset);
    H5Gclose(g);
    return status;
}

ct_tensor *ct_h5_read_tensor(ct_h5_reader *r, const char *group, const char *name) {
    ct_h5_tensor_info info;
    if (ct_h5_tensor_info_of(r, group, name, &info) < 0) return NULL;
    ct_tensor *t = ct_tensor_new(info.dtype, info.ndim, info.shape, name);
    if (t && ct_h5_read_tensor_into(r, group, name, t) < 0) {
        ct_tensor_free(t);
        return NULL;
    }
    return t;
}

typedef struct name_list {
    ct_h5_reader *r;
    char **names;
    int count, capacity;
    int status;
} name_list;

/* Keeps a link when it is a dataset whose kind is "tensor". */
static herr_t collect_tensor(hid_t group, const char *name, const H5L_info_t *link, void *data) {
    name_list *list = data;
    if (link->type != H5L_TYPE_HARD) return 0;
    hid_t obj = H5Oopen(group, name, H5P_DEFAULT);
    if (obj < 0) {
        list->status = ct_h5_fail(list->r->path, name, "the file is damaged");
        return -1;
    }
    bool keep = false;
    if (H5Iget_type(obj) == H5I_DATASET && H5Aexists(obj, "kind") > 0) {
        char *kind = read_string_attribute(list->r, obj, name, "kind");
        keep = kind && strcmp(kind, "tensor") == 0;
        free(kind);
    }
    H5Oclose(obj);
    if (!keep) return 0;
    if (list->count == list->capacity) {
        int capacity = list->capacity ? 2 * list->capacity : 64;
        char **grown = realloc(list->names, (size_t)capacity * sizeof *grown);
        if (!grown) {
            list->status = ct_fail("out of memory listing the tensors of %s", list->r->path);
            return -1;
        }
        list->names = grown;
        list->capacity = capacity;
    }
    if (!(list->names[list->count] = ct_strdup(name))) {
        list->status = -1;
        return -1;
    }
    list->count++;
    return 0;
}

static int compare_names(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int ct_h5_list_tensors(ct_h5_reader *r, const char *group, char ***names) {
    *names = NULL;
    hid_t g = reader_group(r, group);
    if (g < 0) return -1;
    name_list list = {.r = r};
    herr_t walked = H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, NULL, collect_tensor, &list);
    if (walked < 0 && list.status == 0) {
        char what[512];
        list.status = ct_h5_fail(r->path, ct_h5_describe(what, sizeof what, "group", group, NULL), "the file is damaged");
    }
    H5Gclose(g);
    if (list.status < 0) {
        ct_h5_free_names(list.names, list.count);
        return -1;
    }
    if (list.count) qsort(list.names, (size_t)list.count, sizeof *list.names, compare_names);
    *names = list.names;
    return list.count;
}

void ct_h5_free_names(char **names, int count) {
    for (int i = 0; names && i < count; i++) free(names[i]);
    free(names);
}

/* Opens a group attribute's group and describes the attribute for messages. */
static hid_t attribute_group(ct_h5_reader *r, const char *group, const char *key, char *what, size_t size) {
    char group_what[512];
    snprintf(what, size, "attribute '%s' of %s", key ? key : "", ct_h5_describe(group_what, sizeof group_what, "group", group, NULL));
    if (!key || !*key) {
        ct_fail("%s: %s: empty attribute name; give a key", r->path, what);
        return -1;
    }
    return reader_group(r, group);
}

int ct_h5_get_int64(ct_h5_reader *r, const char *group, const char *key, int64_t *value) {
    char what[600];
    hid_t g = attribute_group(r, group, key, what, sizeof what);
    if (g < 0) return -1;
    int status = read_number_attribute(r, g, what, key, H5T_INTEGER, H5T_NATIVE_INT64, value);
    H5Gclose(g);
    return status;
}

int ct_h5_get_double(ct_h5_reader *r, const char *group, const char *key, double *value) {
    char what[600];
    hid_t g = attribute_group(r, group, key, what, sizeof what);
    if (g < 0) return -1;
    int status = read_number_attribute(r, g, what, key, H5T_FLOAT, H5T_NATIVE_DOUBLE, value);
    H5Gclose(g);
    return status;
}

char *ct_h5_get_string(ct_h5_reader *r, const char *group, const char *key) {
    char what[600];
    hid_t g = attribute_group(r, group, key, what, sizeof what);
    if (g < 0) return NULL;
    char *value = NULL;
    if (require_attribute(r, g, what, key, "the file was written without it (by an older ctune?)") == 0)
        value = read_string_attribute(r, g, what, key);
    H5Gclose(g);
    return value;
}

/* Opens group/name as a blob; its size in *size. */
static hid_t open_blob(ct_h5_reader *r, const char *group, const char *name, char *what, size_t what_size,
                       int64_t *size) {
    ct_h5_describe(what, what_size, "blob", group, name);
    hid_t g = reader_group(r, group);
    if (g < 0) return -1;
    hid_t dset = open_dataset(r, g, what, name, "blob");
    H5Gclose(g);
    if (dset < 0) return -1;
    hid_t space = H5Dget_space(dset);
    hid_t type = H5Dget_type(dset);
    int status = 0;
    if (space < 0 || type < 0) status = ct_h5_fail(r->path, what, "the file is damaged");
    else if (H5Sget_simple_extent_ndims(space) != 1 || H5Tget_class(type) != H5T_INTEGER || H5Tget_size(type) != 1)
        status = ct_fail("%s: %s: not a 1-D array of bytes; the file was not written by ctune", r->path, what);
    else *size = (int64_t)H5Sget_simple_extent_npoints(space);
    if (space >= 0) H5Sclose(space);
    if (type >= 0) H5Tclose(type);
    if (status < 0) {
        H5Dclose(dset);
        return -1;
    }
    return dset;
}

int64_t ct_h5_blob_size(ct_h5_reader *r, const char *group, const char *name) {
    char what[512];
    int64_t size = -1;
    hid_t dset = open_blob(r, group, name, what, sizeof what, &size);
    if (dset < 0) return -1;
    H5Dclose(dset);
    return size;
}

int ct_h5_read_blob(ct_h5_reader *r, const char *group, const char *name, void *buf, size_t size) {
    char what[512];
    int64_t stored = -1;
    hid_t dset = open_blob(r, group, name, what, sizeof what, &stored);
    if (dset < 0) return -1;
    int status = 0;
    if ((uint64_t)stored != size)
        status = ct_fail("%s: %s: holds %lld bytes, %zu expected; the checkpoint was written by another version "
                         "or configuration", r->path, what, (long long)stored, size);
    else if (size && H5Dread(dset, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0)
        status = ct_h5_fail(r->path, what, "the file is damaged; load an earlier checkpoint");
    H5Dclose(dset);
    return status;
}
