#include "core/strbuf.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"

int ct_strbuf_reserve(ct_strbuf *b, size_t extra) {
    if (b->len + extra + 1 <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + extra + 1) cap *= 2;
    char *data = realloc(b->data, cap);
    if (!data) return ct_fail("out of memory: %zu bytes asked for a text buffer", cap);
    b->data = data;
    b->cap = cap;
    return 0;
}

int ct_strbuf_append(ct_strbuf *b, const void *data, size_t len) {
    CT_TRY(ct_strbuf_reserve(b, len));
    if (len) memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
    return 0;
}

int ct_strbuf_append_str(ct_strbuf *b, const char *s) { return ct_strbuf_append(b, s, strlen(s)); }

void ct_strbuf_free(ct_strbuf *b) {
    free(b->data);
    *b = (ct_strbuf){0};
}
