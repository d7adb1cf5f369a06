/* The file driver ctune's HDF5 writer writes through: POSIX I/O like HDF5's default "sec2"
 * driver, except that a failed write (a full disk, a file-size limit, an I/O error) is recorded
 * for the writer instead of being reported to HDF5.
 *
 * Why: HDF5 1.10 cannot survive a failed H5Fclose. When the flush inside it fails, the library
 * has already torn the file down but keeps its identifier, and at exit its own clean-up
 * (H5_term_library -> H5F__close_cb) closes that identifier again and crashes on freed memory;
 * a second H5Fclose crashes the same way. A writer on a full disk must close its file, so the
 * only safe close is one that cannot fail on I/O. Here the first failed write stores its errno in
 * the writer's ct_h5_io_status and every later write is dropped (as are all writes once the
 * writer sets `discard`, when it aborts): HDF5 sees success, the close always completes, and the
 * writer reports the recorded error and deletes the temporary file. Reads are never dropped;
 * nothing reads back what a failed writer wrote.
 *
 * The file format is HDF5's own (the driver stores no driver information in the superblock), so
 * readers open these files with the default driver. */
#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checkpoints/hdf5_file.h"

typedef struct checked_file {
    H5FD_t pub; /* first: HDF5 casts between the two */
    int fd;
    haddr_t eoa; /* end of the address space HDF5 has allocated */
    haddr_t eof; /* end of the bytes in the file */
    dev_t device;
    ino_t inode;
    ct_h5_io_status *status;
} checked_file;

/* What the file access list carries: where the writer wants failures recorded. */
typedef struct driver_info {
    ct_h5_io_status *status;
} driver_info;

/* The largest address pwrite takes (off_t is signed). */
#define MAX_ADDR (((haddr_t)1 << (8 * sizeof(off_t) - 1)) - 1)

static hid_t driver_id = -1;

static void record(checked_file *f, int error) {
    if (f->status && f->status->error == 0) f->status->error = error ? error : EIO;
}

static bool dropping(const checked_file *f) { return f->status && (f->status->error || f->status->discard); }

static void *info_copy(const void *info) {
    driver_info *copy = malloc(sizeof *copy);
    if (copy) *copy = *(const driver_info *)info;
    return copy;
}

static herr_t info_free(void *info) {
    free(info);
    return 0;
}

/* An open failure is HDF5's error like sec2's, "error message = '<strerror>'", which ct_h5_fail
 * turns into the reason. */
static H5FD_t *checked_open(const char *name, unsigned flags, hid_t fapl, haddr_t maxaddr) {
    if (!name || !*name || maxaddr == 0 || maxaddr == HADDR_UNDEF || maxaddr > MAX_ADDR) return NULL;
    int o_flags = (flags & H5F_ACC_RDWR ? O_RDWR : O_RDONLY) | O_CLOEXEC;
    if (flags & H5F_ACC_TRUNC) o_flags |= O_TRUNC;
    if (flags & H5F_ACC_CREAT) o_flags |= O_CREAT;
    if (flags & H5F_ACC_EXCL) o_flags |= O_EXCL;
    int fd = open(name, o_flags, 0666);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        int error = errno;
        if (fd >= 0) close(fd);
        H5Epush2(H5E_DEFAULT, __FILE__, __func__, __LINE__, H5E_ERR_CLS, H5E_FILE, H5E_CANTOPENFILE,
                 "unable to open file: name = '%s', errno = %d, error message = '%s'", name, error, strerror(error));
        return NULL;
    }
    checked_file *f = calloc(1, sizeof *f);
    if (!f) {
        close(fd);
        H5Epush2(H5E_DEFAULT, __FILE__, __func__, __LINE__, H5E_ERR_CLS, H5E_RESOURCE, H5E_NOSPACE,
                 "out of memory for a file driver");
        return NULL;
    }
    const driver_info *info = H5Pget_driver_info(fapl);
    f->fd = fd;
    f->eof = (haddr_t)st.st_size;
    f->device = st.st_dev;
    f->inode = st.st_ino;
    f->status = info ? info->status : NULL;
    return &f->pub;
}

static herr_t checked_close(H5FD_t *file) {
    checked_file *f = (checked_file *)file;
    if (close(f->fd) < 0) record(f, errno); /* NFS and some others report write errors only here */
    free(f);
    return 0;
}

static int checked_cmp(const H5FD_t *a, const H5FD_t *b) {
    const checked_file *f = (const checked_file *)a, *g = (const checked_file *)b;
    if (f->device != g->device) return f->device < g->device ? -1 : 1;
    if (f->inode != g->inode) return f->inode < g->inode ? -1 : 1;
    return 0;
}

/* The features of sec2: HDF5 batches metadata and small raw data before calling write. */
static herr_t checked_query(const H5FD_t *file, unsigned long *flags) {
    (void)file;
    *flags = H5FD_FEAT_AGGREGATE_METADATA | H5FD_FEAT_ACCUMULATE_METADATA | H5FD_FEAT_DATA_SIEVE |
             H5FD_FEAT_AGGREGATE_SMALLDATA | H5FD_FEAT_POSIX_COMPAT_HANDLE | H5FD_FEAT_DEFAULT_VFD_COMPATIBLE;
    return 0;
}

static haddr_t checked_get_eoa(const H5FD_t *file, H5FD_mem_t type) {
    (void)type;
    return ((const checked_file *)file)->eoa;
}

static herr_t checked_set_eoa(H5FD_t *file, H5FD_mem_t type, haddr_t addr) {
    (void)type;
    ((checked_file *)file)->eoa = addr;
    return 0;
}

static haddr_t checked_get_eof(const H5FD_t *file, H5FD_mem_t type) {
    (void)type;
    return ((const checked_file *)file)->eof;
}

static herr_t checked_get_handle(H5FD_t *file, hid_t fapl, void **handle) {
    (void)fapl;
    *handle = &((checked_file *)file)->fd;
    return 0;
}

/* Bytes past the end of the file read as zeros, as with sec2. */
static herr_t checked_read(H5FD_t *file, H5FD_mem_t type, hid_t dxpl, haddr_t addr, size_t size, void *buf) {
    (void)type, (void)dxpl;
    checked_file *f = (checked_file *)file;
    char *out = buf;
    while (size > 0) {
        ssize_t n = pread(f->fd, out, size, (off_t)addr);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            int error = errno;
            H5Epush2(H5E_DEFAULT, __FILE__, __func__, __LINE__, H5E_ERR_CLS, H5E_IO, H5E_READERROR,
                     "file read failed: errno = %d, error message = '%s'", error, strerror(error));
            return -1;
        }
        if (n == 0) {
            memset(out, 0, size);
            break;
        }
        out += n, addr += (haddr_t)n, size -= (size_t)n;
    }
    return 0;
}

static herr_t checked_write(H5FD_t *file, H5FD_mem_t type, hid_t dxpl, haddr_t addr, size_t size,
                            const void *buf) {
    (void)type, (void)dxpl;
    checked_file *f = (checked_file *)file;
    const char *in = buf;
    while (size > 0 && !dropping(f)) {
        ssize_t n = pwrite(f->fd, in, size, (off_t)addr);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            record(f, n < 0 ? errno : ENOSPC);
            break;
        }
        in += n, addr += (haddr_t)n, size -= (size_t)n;
        if (addr > f->eof) f->eof = addr;
    }
    return 0;
}

/* HDF5 sets the file's length to its allocated end when flushing and closing. */
static herr_t checked_truncate(H5FD_t *file, hid_t dxpl, hbool_t closing) {
    (void)dxpl, (void)closing;
    checked_file *f = (checked_file *)file;
    if (f->eoa == f->eof || dropping(f)) return 0;
    if (ftruncate(f->fd, (off_t)f->eoa) < 0) record(f, errno);
    else f->eof = f->eoa;
    return 0;
}

static const H5FD_class_t checked_class = {
    .name = "ctune_checked",
    .maxaddr = MAX_ADDR,
    .fc_degree = H5F_CLOSE_WEAK,
    .fapl_size = sizeof(driver_info),
    .fapl_copy = info_copy,
    .fapl_free = info_free,
    .open = checked_open,
    .close = checked_close,
    .cmp = checked_cmp,
    .query = checked_query,
    .get_eoa = checked_get_eoa,
    .set_eoa = checked_set_eoa,
    .get_eof = checked_get_eof,
    .get_handle = checked_get_handle,
    .read = checked_read,
    .write = checked_write,
    .truncate = checked_truncate,
    .fl_map = H5FD_FLMAP_DICHOTOMY,
};

int ct_h5_set_checked_driver(hid_t fapl, ct_h5_io_status *status) {
    /* Registered once per library lifetime: H5close (or exit) releases the identifier. */
    if (driver_id < 0 || H5Iis_valid(driver_id) <= 0) driver_id = H5FDregister(&checked_class);
    if (driver_id < 0) return -1;
    driver_info info = {.status = status};
    return H5Pset_driver(fapl, driver_id, &info) < 0 ? -1 : 0;
}
