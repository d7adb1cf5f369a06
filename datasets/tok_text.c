/* Text helpers for the tokenizer: strict UTF-8, the few Unicode classes the Hugging Face
 * library tests with (White_Space, \w), GPT-2's byte-level alphabet, a byte buffer. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "autograd/error.h"
#include "datasets/tok_internal.h"

int ct_utf8_decode(const uint8_t *s, size_t len, uint32_t *cp) {
    if (len == 0) return 0;
    uint8_t b0 = s[0];
    if (b0 < 0x80) {
        *cp = b0;
        return 1;
    }
    int n;
    uint32_t c, min;
    if (b0 >= 0xC2 && b0 <= 0xDF) n = 2, c = b0 & 0x1F, min = 0x80;
    else if (b0 >= 0xE0 && b0 <= 0xEF) n = 3, c = b0 & 0x0F, min = 0x800;
    else if (b0 >= 0xF0 && b0 <= 0xF4) n = 4, c = b0 & 0x07, min = 0x10000;
    else return 0;
    if ((size_t)n > len) return 0;
    for (int i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        c = (c << 6) | (s[i] & 0x3F);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) return 0;
    *cp = c;
    return n;
}

size_t ct_utf8_encode(uint32_t cp, char out[4]) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

bool ct_unicode_is_space(uint32_t cp) {
    if (cp <= 0x20) return cp == 0x20 || (cp >= 0x09 && cp <= 0x0D);
    switch (cp) {
    case 0x85: case 0xA0: case 0x1680: case 0x2028: case 0x2029: case 0x202F: case 0x205F:
    case 0x3000:
        return true;
    default:
        return cp >= 0x2000 && cp <= 0x200A;
    }
}

bool ct_unicode_is_py_space(uint32_t cp) {
    return ct_unicode_is_space(cp) || (cp >= 0x1C && cp <= 0x1F);
}

bool ct_unicode_is_word(uint32_t cp) {
    if (cp < 0x80) return (cp >= '0' && cp <= '9') || (cp >= 'a' && cp <= 'z') ||
                          (cp >= 'A' && cp <= 'Z') || cp == '_';
    if (cp == 0x200C || cp == 0x200D) return true;
    switch (utf8proc_category((utf8proc_int32_t)cp)) {
    case UTF8PROC_CATEGORY_LU: case UTF8PROC_CATEGORY_LL: case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM: case UTF8PROC_CATEGORY_LO: case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_MN: case UTF8PROC_CATEGORY_MC: case UTF8PROC_CATEGORY_ME:
    case UTF8PROC_CATEGORY_ND: case UTF8PROC_CATEGORY_PC:
        return true;
    default:
        return false;
    }
}

/* GPT-2 keeps the printable Latin-1 bytes as themselves and moves the other 68 (controls,
 * space, DEL, NBSP, soft hyphen) to U+0100.. in byte order, so every byte prints. */
uint32_t ct_byte_to_char(uint8_t b) {
    if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174) return b;
    if (b <= 32) return 256u + b;
    if (b <= 160) return 256u + 33u + (b - 127u);
    return 256u + 67u; /* 173 */
}

int ct_char_to_byte(uint32_t cp) {
    if ((cp >= 33 && cp <= 126) || (cp >= 161 && cp <= 172) || (cp >= 174 && cp <= 255))
        return (int)cp;
    if (cp >= 256 && cp <= 288) return (int)(cp - 256);
    if (cp >= 289 && cp <= 322) return (int)(cp - 289 + 127);
    if (cp == 323) return 173;
    return -1;
}

int ct_tok_buf_reserve(ct_tok_buf *b, size_t extra) {
    if (b->len + extra + 1 <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + extra + 1) cap *= 2;
    char *data = realloc(b->data, cap);
    if (!data) return ct_fail("out of memory: %zu bytes asked for a text buffer", cap);
    b->data = data;
    b->cap = cap;
    return 0;
}

int ct_tok_buf_append(ct_tok_buf *b, const void *data, size_t len) {
    CT_TRY(ct_tok_buf_reserve(b, len));
    if (len) memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
    return 0;
}

int ct_tok_buf_append_byte_level(ct_tok_buf *b, const uint8_t *bytes, size_t len) {
    CT_TRY(ct_tok_buf_reserve(b, 2 * len));
    for (size_t i = 0; i < len; i++)
        b->len += ct_utf8_encode(ct_byte_to_char(bytes[i]), b->data + b->len);
    b->data[b->len] = '\0';
    return 0;
}

void ct_tok_buf_free(ct_tok_buf *b) {
    free(b->data);
    *b = (ct_tok_buf){0};
}

char *ct_tok_read_file(const char *path, size_t *len) {
    bool is_stdin = !strcmp(path, "-");
    FILE *f = is_stdin ? stdin : fopen(path, "rb");
    if (!f) {
        ct_fail("%s: cannot open (%s)", path, strerror(errno));
        return NULL;
    }
    ct_tok_buf b = {0};
    char chunk[1 << 16];
    size_t n;
    int failed = ct_tok_buf_append(&b, "", 0) < 0;
    while (!failed && (n = fread(chunk, 1, sizeof chunk, f)) > 0)
        failed = ct_tok_buf_append(&b, chunk, n) < 0;
    if (!failed && ferror(f)) failed = ct_fail("%s: read failed (%s)", path, strerror(errno));
    if (!is_stdin) fclose(f);
    if (failed) {
        ct_tok_buf_free(&b);
        return NULL;
    }
    if (len) *len = b.len;
    return b.data;
}
