/* A minimal test harness: CHECK records failures and keeps going; ct_test_finish prints the
 * summary line ("N passed, N failed") and returns the exit code for main. Exit 77 = skipped. */
#ifndef CT_TEST_H
#define CT_TEST_H

#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int ct_test_passed, ct_test_failed;

#define CHECK(cond, ...)                                                         \
    do {                                                                         \
        if (cond) {                                                              \
            ct_test_passed++;                                                    \
        } else {                                                                 \
            ct_test_failed++;                                                    \
            fprintf(stderr, "%s:%d: CHECK(%s) failed: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                        \
            fputc('\n', stderr);                                                 \
        }                                                                        \
    } while (0)

/* Absolute path of a file in the source tree (tests run from the source root under ctest). */
static inline const char *ct_test_path(const char *relative) {
    static char buf[4096];
    const char *root = getenv("CT_SOURCE_DIR");
    snprintf(buf, sizeof buf, "%s/%s", root ? root : ".", relative);
    return buf;
}

/* A whole file, NUL-terminated, in a buffer the caller frees; NULL when it cannot be read.
 * *len (if not NULL) gets its length. */
static inline char *ct_test_read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *text = n >= 0 ? malloc((size_t)n + 1) : NULL;
    size_t got = text ? fread(text, 1, (size_t)n, f) : 0;
    fclose(f);
    if (text) text[got] = '\0';
    if (len) *len = got;
    return text;
}

/* A new empty folder /tmp/ct_test_<name>_XXXXXX in buf (at least 64 bytes); NULL (with the
 * reason printed) when it cannot be made. */
static inline const char *ct_test_temp_dir(char *buf, size_t size, const char *name) {
    snprintf(buf, size, "/tmp/ct_test_%s_XXXXXX", name);
    if (mkdtemp(buf)) return buf;
    perror("mkdtemp");
    return NULL;
}

static inline int ct_test_remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

/* Removes a folder and everything below it (best effort). */
static inline void ct_test_remove_tree(const char *path) {
    if (nftw(path, ct_test_remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0) fprintf(stderr, "could not remove %s\n", path);
}

/* dir/name in one of four rotating buffers, so a call can take a few paths at once. */
static inline const char *ct_test_path_in(const char *dir, const char *name) {
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

/* ---- data kept outside the repository ---------------------------------------------------
 * The shared folder holds what is too large, or not ours, to commit (the Qwen3 tokenizer in
 * data/qwen3-tokenizer): $CT_SHARED_DIR, else ../shared next to the source root. This is the one
 * place the tests look for it. */

/* root/relative in a buffer the caller frees; *looked_in (if not NULL) gets it as well, in a
 * static buffer, for messages. NULL when relative/probe is not there. */
static inline char *ct_test_shared_path(const char *relative, const char *probe, const char **looked_in) {
    static char where[4096];
    const char *root = getenv("CT_SHARED_DIR");
    int n = root && *root ? snprintf(where, sizeof where, "%s/%s", root, relative)
                          : snprintf(where, sizeof where, "%s/%s", ct_test_path("../shared"), relative);
    if (looked_in) *looked_in = where;
    char file[4200];
    int m = snprintf(file, sizeof file, "%s/%s", where, probe);
    if (n < 0 || (size_t)n >= sizeof where || m < 0 || (size_t)m >= sizeof file) return NULL;
    FILE *f = fopen(file, "rb");
    if (!f) return NULL;
    fclose(f);
    char *path = malloc((size_t)n + 1);
    if (path) memcpy(path, where, (size_t)n + 1);
    return path;
}

/* Why a test skipped, printed and also left for ctest's summary: when ctest runs the test,
 * CT_SKIP_NOTES names a folder, and tests/report_skips.cmake prints every note in it after
 * ctest's own "The following tests did not run" list, which gives no reason. */
static inline void ct_test_note_skip(const char *test, const char *reason) {
    printf("SKIPPED: %s\n", reason);
    const char *notes = getenv("CT_SKIP_NOTES");
    if (!notes || !*notes) return;
    char path[4200];
    snprintf(path, sizeof path, "%s/%s.txt", notes, test);
    FILE *f = fopen(path, "w");
    if (!f) return;
    fprintf(f, "%s: %s\n", test, reason);
    fclose(f);
}

/* The end of a test whose own checks passed but whose checks against shared data (`relative`,
 * looked for in `looked_in`) could not run: skipped (77) with the reason, or failed (1) under
 * CI=true, where the data must be present. */
static inline int ct_test_missing_shared(const char *test, const char *relative, const char *looked_in) {
    char reason[4600];
    snprintf(reason, sizeof reason, "%s not found (looked in %s); set CT_SHARED_DIR to the folder holding %s, "
             "or put it in ../shared next to the source root; the other checks passed", relative, looked_in, relative);
    const char *ci = getenv("CI");
    if (ci && strcmp(ci, "true") == 0) {
        fprintf(stderr, "%s: FAILED under CI=true: %s\n", test, reason);
        return 1;
    }
    ct_test_note_skip(test, reason);
    return 77;
}

static inline int ct_test_finish(const char *name) {
    printf("%s: %d passed, %d failed\n", name, ct_test_passed, ct_test_failed);
    return ct_test_failed ? 1 : 0;
}

#endif
