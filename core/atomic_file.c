#include "core/atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"
#include "core/interrupt_cleanup.h"

FILE *ct_atomic_fopen(const char *path, char **tmp) {
    size_t n = strlen(path) + sizeof ".tmp.XXXXXX";
    *tmp = ct_malloc(n, "a path");
    if (!*tmp) return NULL;
    snprintf(*tmp, n, "%s.tmp.XXXXXX", path);
    /* registered as soon as it exists, so an interrupted export removes it (core/interrupt_cleanup.h) */
    ct_cleanup_hold();
    int fd = mkstemp(*tmp);
    if (fd >= 0) ct_cleanup_add_file(*tmp);
    ct_cleanup_release();
    FILE *f = NULL;
    /* mkstemp makes the file 0600; outputs are meant to be shared like any other file. */
    if (fd >= 0 && fchmod(fd, 0644) == 0) f = fdopen(fd, "wb");
    if (!f) {
        ct_fail("%s: cannot create a temporary file beside it (%s); check that the directory exists and is writable",
                path, strerror(errno));
        if (fd >= 0) {
            close(fd);
            ct_atomic_discard(*tmp);
        }
        free(*tmp);
        *tmp = NULL;
    }
    return f;
}

static int fsync_path(const char *path, int flags) {
    int fd = open(path, flags | O_RDONLY | O_CLOEXEC);
    int status = fd >= 0 && fsync(fd) == 0 ? 0 : -1;
    int saved = errno;
    if (fd >= 0) close(fd);
    errno = saved;
    return status;
}

static int fsync_parent_directory(const char *path) {
    char *dir = ct_strdup(path);
    if (!dir) return -1;
    char *slash = strrchr(dir, '/');
    if (!slash) strcpy(dir, ".");
    else if (slash == dir) slash[1] = '\0';
    else *slash = '\0';
    int status = fsync_path(dir, O_DIRECTORY);
    /* The rename is done and the file complete; only its survival of a power loss is unsure. */
    if (status < 0)
        ct_fail("%s: written, but its directory %s could not be synced (%s); the file is complete, but check the disk "
                "before relying on it", path, dir, strerror(errno));
    free(dir);
    return status;
}

void ct_atomic_discard(const char *tmp) {
    unlink(tmp);
    ct_cleanup_forget(tmp);
}

int ct_atomic_commit(const char *tmp, const char *path) {
    if (fsync_path(tmp, 0) < 0) {
        ct_fail("%s: cannot sync the new file %s (%s); check the disk", path, tmp, strerror(errno));
        ct_atomic_discard(tmp);
        return -1;
    }
    /* the rename and the registry agree: an interrupt finds tmp either registered or in place */
    ct_cleanup_hold();
    int renamed = rename(tmp, path) == 0;
    int saved = errno;
    if (renamed) ct_cleanup_forget(tmp);
    ct_cleanup_release();
    if (!renamed) {
        ct_fail("%s: cannot rename %s over it (%s); %s", path, tmp, strerror(saved),
                saved == EISDIR || saved == ENOTEMPTY ? "check that it is not a directory" : "check the disk");
        ct_atomic_discard(tmp);
        return -1;
    }
    return fsync_parent_directory(path);
}

int ct_atomic_write_file(const char *path, const void *data, size_t len) {
    char *tmp;
    FILE *f = ct_atomic_fopen(path, &tmp);
    if (!f) return -1;
    int written = fwrite(data, 1, len, f) == len;
    int write_errno = errno;
    int closed = fclose(f) == 0;
    /* the error of the call that failed: a close that fails after a good write (the buffered
     * bytes could not be flushed) has its own errno; the write's was "Success" */
    int saved = written ? errno : write_errno;
    int ok = written && closed;
    int status = 0;
    if (!ok) {
        status = ct_fail("%s: writing %s failed (%s); check free disk space", path, tmp, strerror(saved));
        ct_atomic_discard(tmp);
    } else {
        status = ct_atomic_commit(tmp, path);
    }
    free(tmp);
    return status;
}
