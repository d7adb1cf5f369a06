#include "core/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static _Thread_local char last_error[1024];

int ct_fail(const char *fmt, ...) {
    va_list args;
    va_start(args, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, args);
    va_end(args);
    return -1;
}

int ct_fail_context(const char *fmt, ...) {
    char prefix[512];
    char previous[sizeof last_error];
    va_list args;
    va_start(args, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, args);
    va_end(args);
    memcpy(previous, last_error, sizeof previous);
    size_t prefix_len = strlen(prefix);
    size_t keep = sizeof last_error - 1 - prefix_len;
    memcpy(last_error, prefix, prefix_len);
    size_t previous_len = strnlen(previous, keep);
    memcpy(last_error + prefix_len, previous, previous_len);
    last_error[prefix_len + previous_len] = '\0';
    return -1;
}

const char *ct_last_error(void) { return last_error[0] ? last_error : "unknown error"; }

void ct_clear_error(void) { last_error[0] = '\0'; }

void *ct_malloc(size_t nbytes, const char *what) {
    void *p = malloc(nbytes ? nbytes : 1);
    if (!p) ct_fail("out of memory: %zu bytes asked for %s", nbytes, what);
    return p;
}

void *ct_calloc(size_t count, size_t size, const char *what) {
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p) ct_fail("out of memory: %zu x %zu bytes asked for %s", count, size, what);
    return p;
}

char *ct_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *copy = ct_malloc(n, "a string");
    if (copy) memcpy(copy, s, n);
    return copy;
}
