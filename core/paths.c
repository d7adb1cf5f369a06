#include "core/paths.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/error.h"
#include "core/strbuf.h"

char *ct_path_join(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *path = ct_malloc(n, "a path");
    if (path) snprintf(path, n, "%s/%s", dir, name);
    return path;
}

int ct_make_dirs(const char *dir) {
    char *path = ct_strdup(dir);
    if (!path) return -1;
    int status = 0;
    for (char *slash = path + 1;; slash++) {
        int last = *slash == '\0';
        if (*slash != '/' && !last) continue;
        *slash = '\0';
        if (mkdir(path, 0755) != 0 && errno != EEXIST)
            status = ct_fail("cannot create directory %s: %s; check the path and its permissions", path, strerror(errno));
        else if (!ct_is_dir(path))
            status = ct_fail("%s exists and is not a directory; choose another path", path);
        if (last || status < 0) break;
        *slash = '/';
    }
    free(path);
    return status;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st, (void)flag, (void)ftw;
    if (remove(path) == 0 || errno == ENOENT) return 0;
    ct_fail("cannot remove %s: %s; check its permissions", path, strerror(errno));
    return 1; /* stops the walk; nftw returns it */
}

int ct_remove_tree(const char *path) {
    struct stat st;
    if (lstat(path, &st) != 0) return errno == ENOENT ? 0 : ct_fail("%s: %s", path, strerror(errno));
    /* Depth first, so each folder is empty when its turn comes. */
    int rc = nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    if (rc == -1) return ct_fail("cannot remove %s: %s", path, strerror(errno));
    return rc == 0 ? 0 : -1;
}

bool ct_is_file(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

bool ct_is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

char *ct_read_file(const char *path, size_t max_bytes, size_t *len) {
    const bool is_stdin = !strcmp(path, "-");
    FILE *f = is_stdin ? stdin : fopen(path, "rb");
    if (!f) {
        ct_fail("%s: cannot open (%s)", path, strerror(errno));
        return NULL;
    }
    ct_strbuf b = {0};
    char chunk[1 << 16];
    size_t n;
    int failed = ct_strbuf_append(&b, "", 0) < 0;
    while (!failed && (n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (b.len + n > max_bytes)
            failed = ct_fail("%s: larger than the %zu bytes such a file may have; is it the right file?", path, max_bytes);
        else failed = ct_strbuf_append(&b, chunk, n) < 0;
    }
    if (!failed && ferror(f)) failed = ct_fail("%s: read failed (%s)", path, strerror(errno));
    if (!is_stdin) fclose(f);
    if (failed) {
        ct_strbuf_free(&b);
        return NULL;
    }
    if (len) *len = b.len;
    return b.data;
}
