/* An LD_PRELOAD library that makes one write-side system call fail, to test what ctune does
 * when a save fails at any point (tests/reliability/write_faults.sh, docs/reliability.md).
 *
 *   CT_FAIL_IO_MATCH=TEXT   only files whose path contains TEXT are watched (e.g. "/checkpoints/")
 *   CT_FAIL_IO_NTH=N        the Nth watched call fails (1-based); 0 or unset: none fails
 *   CT_FAIL_IO_ERRNO=N      the errno it fails with (default EIO)
 *   CT_FAIL_IO_REPORT=FILE  at exit, "CALLS FAILED_CALL" is written there, so a first run counts
 *                           the calls a save makes and later runs fail each one in turn
 *
 * Watched calls: write, pwrite, pwrite64, ftruncate, fsync, fdatasync and close on a descriptor
 * opened (open, open64, openat, mkstemp, mkostemp) on a matching path (close only when it was
 * opened for writing); fwrite, fputs, fputc, fflush and fclose on a stream opened for writing
 * (fopen, fopen64, fdopen of a watched descriptor), since the C library's own writes under a
 * stream do not pass through write() here; and rename of a matching path. A failed close or
 * fclose still closes, as close(2) and fclose(3) do. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#define MAX_FD 4096

static unsigned char watched[MAX_FD]; /* 1: watched, 2: watched and opened for writing */
static long calls, nth = -1, failed_call;
static int fail_errno = EIO;
static const char *match;

static void report(void) {
    const char *path = getenv("CT_FAIL_IO_REPORT");
    if (!path) return;
    FILE *f = fopen(path, "w");
    if (f) {
        fprintf(f, "%ld %ld\n", calls, failed_call);
        fclose(f);
    }
}

__attribute__((constructor)) static void init(void) {
    match = getenv("CT_FAIL_IO_MATCH");
    const char *n = getenv("CT_FAIL_IO_NTH");
    nth = n ? atol(n) : 0;
    const char *e = getenv("CT_FAIL_IO_ERRNO");
    if (e) fail_errno = atoi(e);
    atexit(report);
}

/* Counts a watched call; true when this one must fail. */
static int fail_now(void) {
    calls++;
    if (nth > 0 && calls == nth) {
        failed_call = calls;
        return 1;
    }
    return 0;
}

static int matches(const char *path) { return match && path && strstr(path, match); }
static int is_watched(int fd) { return fd >= 0 && fd < MAX_FD && watched[fd]; }

static void track(int fd, const char *path, int flags) {
    if (fd < 0 || fd >= MAX_FD) return;
    watched[fd] = matches(path) ? ((flags & (O_WRONLY | O_RDWR)) ? 2 : 1) : 0;
}

#define REAL(name) ((__typeof__(&name))dlsym(RTLD_NEXT, #name))

static int open_common(const char *real_name, int at, int dirfd, const char *path, int flags, mode_t mode) {
    int fd;
    if (!at) {
        int (*real)(const char *, int, ...) = (int (*)(const char *, int, ...))dlsym(RTLD_NEXT, real_name);
        fd = real(path, flags, mode);
    } else {
        int (*real)(int, const char *, int, ...) = (int (*)(int, const char *, int, ...))dlsym(RTLD_NEXT, real_name);
        fd = real(dirfd, path, flags, mode);
    }
    track(fd, path, flags);
    return fd;
}

static mode_t mode_of(int flags, va_list ap) { return (flags & (O_CREAT | O_TMPFILE)) ? va_arg(ap, mode_t) : 0; }

int open(const char *path, int flags, ...) {
    va_list ap;
    va_start(ap, flags);
    mode_t mode = mode_of(flags, ap);
    va_end(ap);
    return open_common("open", 0, -1, path, flags, mode);
}

int open64(const char *path, int flags, ...) {
    va_list ap;
    va_start(ap, flags);
    mode_t mode = mode_of(flags, ap);
    va_end(ap);
    return open_common("open64", 0, -1, path, flags, mode);
}

int openat(int dirfd, const char *path, int flags, ...) {
    va_list ap;
    va_start(ap, flags);
    mode_t mode = mode_of(flags, ap);
    va_end(ap);
    return open_common("openat", 1, dirfd, path, flags, mode);
}

#define FAIL_IF_WATCHED(fd)                  \
    do {                                     \
        if (is_watched(fd) && fail_now()) {  \
            errno = fail_errno;              \
            return -1;                       \
        }                                    \
    } while (0)

ssize_t write(int fd, const void *buf, size_t n) {
    FAIL_IF_WATCHED(fd);
    return REAL(write)(fd, buf, n);
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t offset) {
    FAIL_IF_WATCHED(fd);
    return REAL(pwrite)(fd, buf, n, offset);
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off64_t offset) {
    FAIL_IF_WATCHED(fd);
    return REAL(pwrite64)(fd, buf, n, offset);
}

int ftruncate(int fd, off_t length) {
    FAIL_IF_WATCHED(fd);
    return REAL(ftruncate)(fd, length);
}

int fsync(int fd) {
    FAIL_IF_WATCHED(fd);
    return REAL(fsync)(fd);
}

int fdatasync(int fd) {
    FAIL_IF_WATCHED(fd);
    return REAL(fdatasync)(fd);
}

int close(int fd) {
    int fail = fd >= 0 && fd < MAX_FD && watched[fd] == 2 && fail_now();
    if (fd >= 0 && fd < MAX_FD) watched[fd] = 0;
    int rc = REAL(close)(fd);
    if (fail) {
        errno = fail_errno;
        return -1;
    }
    return rc;
}

/* ---- descriptors made by mkstemp (the C library opens them without calling open()) ---- */

int mkstemp(char *template) {
    int fd = REAL(mkstemp)(template);
    track(fd, template, O_RDWR);
    return fd;
}

int mkostemp(char *template, int flags) {
    int fd = REAL(mkostemp)(template, flags);
    track(fd, template, O_RDWR);
    return fd;
}

/* ---- streams ---- */

#define MAX_STREAMS 64
static FILE *streams[MAX_STREAMS];

static int stream_index(FILE *f) {
    for (int i = 0; f && i < MAX_STREAMS; i++)
        if (streams[i] == f) return i;
    return -1;
}

static void watch_stream(FILE *f) {
    int i;
    for (i = 0; i < MAX_STREAMS && streams[i]; i++) {}
    if (f && i < MAX_STREAMS) streams[i] = f;
}

static int writes(const char *mode) { return strpbrk(mode, "wa+") != NULL; }

FILE *fopen(const char *path, const char *mode) {
    FILE *f = REAL(fopen)(path, mode);
    if (f && matches(path) && writes(mode)) watch_stream(f);
    return f;
}

FILE *fopen64(const char *path, const char *mode) {
    FILE *f = REAL(fopen64)(path, mode);
    if (f && matches(path) && writes(mode)) watch_stream(f);
    return f;
}

FILE *fdopen(int fd, const char *mode) {
    FILE *f = REAL(fdopen)(fd, mode);
    if (f && is_watched(fd) && writes(mode)) watch_stream(f);
    return f;
}

#define FAIL_IF_STREAM(f, value)                        \
    do {                                                \
        if (stream_index(f) >= 0 && fail_now()) {       \
            errno = fail_errno;                         \
            return value;                               \
        }                                               \
    } while (0)

size_t fwrite(const void *buf, size_t size, size_t n, FILE *f) {
    if (size == 0 || n == 0) return REAL(fwrite)(buf, size, n, f); /* writes nothing: cannot fail */
    FAIL_IF_STREAM(f, 0);
    return REAL(fwrite)(buf, size, n, f);
}

int fputs(const char *s, FILE *f) {
    FAIL_IF_STREAM(f, EOF);
    return REAL(fputs)(s, f);
}

int fputc(int c, FILE *f) {
    FAIL_IF_STREAM(f, EOF);
    return REAL(fputc)(c, f);
}

int fflush(FILE *f) {
    FAIL_IF_STREAM(f, EOF);
    return REAL(fflush)(f);
}

int fclose(FILE *f) {
    int i = stream_index(f);
    int fail = i >= 0 && fail_now();
    if (i >= 0) streams[i] = NULL;
    if (f && fileno(f) >= 0 && fileno(f) < MAX_FD) watched[fileno(f)] = 0;
    int rc = REAL(fclose)(f);
    if (fail) {
        errno = fail_errno;
        return EOF;
    }
    return rc;
}

int rename(const char *from, const char *to) {
    if ((matches(from) || matches(to)) && fail_now()) {
        errno = fail_errno;
        return -1;
    }
    return REAL(rename)(from, to);
}
