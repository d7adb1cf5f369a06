/* Replays fuzz inputs through a harness's LLVMFuzzerTestOneInput without libFuzzer, so the
 * normal build (gcc) and the ASan/UBSan build run every committed seed and every input that
 * once crashed (tests/fuzz/corpus/NAME, tests/fuzz/regressions/NAME) under ctest.
 * usage: fuzz_replay_NAME FILE_OR_FOLDER...   (a folder: each regular file in it, sorted) */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/error.h"
#include "fuzz_util.h"

static int run_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return -1;
    }
    size_t cap = 4096, len = 0;
    uint8_t *buf = malloc(cap);
    size_t n;
    while (buf && (n = fread(buf + len, 1, cap - len, f)) > 0) {
        len += n;
        if (len == cap) buf = realloc(buf, cap *= 2);
    }
    fclose(f);
    if (!buf) return -1;
    /* An exact-size copy, so ASan sees a read past the input as libFuzzer would. */
    uint8_t *input = malloc(len ? len : 1);
    if (!input) return -1;
    memcpy(input, buf, len);
    free(buf);
    ct_clear_error();
    LLVMFuzzerTestOneInput(input, len);
    /* CT_FUZZ_VERBOSE=1: the last error each input left, to see which path a seed takes. */
    if (getenv("CT_FUZZ_VERBOSE")) printf("%s: %s\n", path, *ct_last_error() ? ct_last_error() : "(no error)");
    free(input);
    return 0;
}

static int compare(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int run_dir(const char *dir, int *count) {
    DIR *d = opendir(dir);
    if (!d) {
        perror(dir);
        return -1;
    }
    char **names = NULL;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        names = realloc(names, (n + 1) * sizeof *names);
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof *names, compare);
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        struct stat st;
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
            if (run_file(path) < 0) rc = -1;
            (*count)++;
        }
        free(names[i]);
    }
    free(names);
    return rc;
}

int main(int argc, char **argv) {
    int count = 0, rc = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) continue; /* a harness without regressions yet */
        if (S_ISDIR(st.st_mode) ? run_dir(argv[i], &count) < 0 : run_file(argv[i]) < 0) rc = 1;
        if (!S_ISDIR(st.st_mode)) count++;
    }
    if (count == 0) {
        fprintf(stderr, "no inputs found\n");
        return 1;
    }
    printf("%d inputs replayed\n", count);
    return rc;
}
