/* Helpers of the fuzz harnesses (fuzz_util.h). */
#include "fuzz_util.h"

#include <string.h>
#include <unistd.h>

#include "core/error.h"
#include "core/paths.h"

#ifndef CT_FUZZ_SOURCE_DIR
#define CT_FUZZ_SOURCE_DIR "."
#endif

static char temp_dir[256];

const char *ct_fuzz_source_dir(void) {
    const char *env = getenv("CT_SOURCE_DIR");
    return env && *env ? env : CT_FUZZ_SOURCE_DIR;
}

const char *ct_fuzz_source_path(const char *rel) {
    static char buf[4096];
    snprintf(buf, sizeof buf, "%s/%s", ct_fuzz_source_dir(), rel);
    return buf;
}

static void remove_temp_dir(void) {
    if (temp_dir[0]) ct_remove_tree(temp_dir);
}

const char *ct_fuzz_temp_dir(void) {
    if (!temp_dir[0]) {
        const char *base = getenv("TMPDIR");
        snprintf(temp_dir, sizeof temp_dir, "%s/ctune-fuzz-XXXXXX", base && *base ? base : "/tmp");
        if (!mkdtemp(temp_dir)) {
            perror("fuzz: mkdtemp");
            abort();
        }
        atexit(remove_temp_dir);
    }
    return temp_dir;
}

const char *ct_fuzz_write(const char *name, const uint8_t *data, size_t size) {
    static char path[8][512];
    static int next;
    char *p = path[next++ % 8];
    snprintf(p, sizeof path[0], "%s/%s", ct_fuzz_temp_dir(), name);
    FILE *f = fopen(p, "wb");
    if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f) != 0) {
        perror("fuzz: writing the input");
        abort();
    }
    return p;
}

char *ct_fuzz_cstr(const uint8_t *data, size_t size) {
    char *s = malloc(size + 1);
    if (!s) abort();
    if (size) memcpy(s, data, size);
    s[size] = '\0';
    return s;
}
