#include "checkpoints/paths.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "autograd/error.h"

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

bool ct_is_file(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

bool ct_is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}
