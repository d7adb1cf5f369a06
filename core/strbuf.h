/* A growable, always NUL-terminated byte string: what the tokenizer, the recipe writer and the
 * PII masker build their output in. Zero-initialise it; free it with ct_strbuf_free. */
#ifndef CT_STRBUF_H
#define CT_STRBUF_H

#include <stddef.h>

typedef struct {
    char *data; /* NUL-terminated once anything (even "") was appended; NULL before */
    size_t len, cap;
} ct_strbuf;

/* Makes room for `extra` more bytes (and the NUL). 0, or -1 with a message naming the size. */
int ct_strbuf_reserve(ct_strbuf *b, size_t extra);
int ct_strbuf_append(ct_strbuf *b, const void *data, size_t len);
int ct_strbuf_append_str(ct_strbuf *b, const char *s);
void ct_strbuf_free(ct_strbuf *b);

#endif
