/* The normalizer (utf8proc) and the Split pre-tokenizer (PCRE2) of a tokenizer.json.
 *
 * tokenizer.json regexes are written for Oniguruma, which the Hugging Face library compiles them
 * with. PCRE2 in UTF + UCP mode reads them the same way except for its character classes:
 *  - PCRE2 also counts U+180E (a space before Unicode 6.3) as \s, so \s and \S are rewritten
 *    as the explicit White_Space class Oniguruma uses;
 *  - the library's Oniguruma knows Unicode 16, PCRE2 10.42 only Unicode 14, so \p{L} and \p{N}
 *    get the letters and numbers assigned since. The lists were found by probing every code
 *    point with both (tokenizers 0.23.3 against PCRE2 10.42); with a newer PCRE2 they are
 *    redundant, never wrong.
 * Invalid UTF-8 never matches (PCRE2_MATCH_INVALID_UTF), so it falls into the gaps between
 * matches and reaches BPE as raw bytes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "core/error.h"
#include "datasets/regex_jit.h"
#include "datasets/tok_internal.h"

#define SPACE_CLASS_BODY \
    "\\t\\n\\x{0B}\\f\\r\\x{20}\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}" \
    "\\x{202F}\\x{205F}\\x{3000}"

/* "\p{L}\x{1C89}-\x{1C8A}...": a class body with the newer ranges added. */
static int append_newer(ct_strbuf *out, const char *base, const uint32_t (*ranges)[2], size_t n) {
    CT_TRY(ct_strbuf_append(out, base, strlen(base)));
    for (size_t i = 0; i < n; i++) {
        char range[48];
        int len = snprintf(range, sizeof range, "\\x{%X}-\\x{%X}", (unsigned)ranges[i][0],
                           (unsigned)ranges[i][1]);
        CT_TRY(ct_strbuf_append(out, range, (size_t)len));
    }
    return 0;
}

/* Escapes rewritten as a class body: inside a bracket class the body goes in as it is, outside
 * it is wrapped in brackets ([^...] for \S). */
static const char *const class_escapes[] = {"\\s", "\\p{L}", "\\p{N}", "\\S"};

static int append_body(ct_strbuf *out, int which) {
    if (which == 1) return append_newer(out, "\\p{L}", ct_newer_letters, ct_n_newer_letters);
    if (which == 2) return append_newer(out, "\\p{N}", ct_newer_numbers, ct_n_newer_numbers);
    return ct_strbuf_append(out, SPACE_CLASS_BODY, strlen(SPACE_CLASS_BODY));
}

static int append_class(ct_strbuf *out, int which, bool in_class) {
    if (in_class) return append_body(out, which);
    CT_TRY(ct_strbuf_append(out, which == 3 ? "[^" : "[", which == 3 ? 2 : 1));
    CT_TRY(append_body(out, which));
    return ct_strbuf_append(out, "]", 1);
}

/* Rewrites \s, \p{L}, \p{N} and \S (see the file comment); everything else is copied as written.
 * \S outside a class becomes the negated space class; inside one it stays PCRE2's (there is no
 * class subtraction to express it). */
static char *translate_pattern(const char *pattern) {
    ct_strbuf out = {0};
    bool in_class = false;
    int rc = 0;
    for (const char *p = pattern; *p && rc == 0;) {
        int k = 0;
        while (k < 4 && strncmp(p, class_escapes[k], strlen(class_escapes[k]))) k++;
        if (k < 4 && !(k == 3 && in_class)) {
            rc = append_class(&out, k, in_class);
            p += strlen(class_escapes[k]);
        } else if (*p == '\\' && p[1]) {
            rc = ct_strbuf_append(&out, p, 2); /* an escaped character, never a class bracket */
            p += 2;
        } else {
            if (*p == '[') in_class = true;
            else if (*p == ']') in_class = false;
            rc = ct_strbuf_append(&out, p++, 1);
        }
    }
    if (rc < 0 || ct_strbuf_append(&out, "", 0) < 0) {
        ct_strbuf_free(&out);
        return NULL;
    }
    return out.data;
}

int ct_pretok_add_split(ct_pretok *p, const char *pattern, bool literal, const char *file) {
    char *translated = literal ? ct_strdup(pattern) : translate_pattern(pattern);
    if (!translated) return -1;
    int error;
    PCRE2_SIZE error_at;
    uint32_t options = PCRE2_UTF | PCRE2_UCP | (literal ? PCRE2_LITERAL : 0);
    pcre2_code *code = pcre2_compile((PCRE2_SPTR)translated, PCRE2_ZERO_TERMINATED,
                                     options | PCRE2_MATCH_INVALID_UTF, &error, &error_at, NULL);
    /* Without JIT (some platforms) the interpreter gives the same matches, only slower. */
    const bool jit = ct_regex_jit_wanted();
    pcre2_code *strict = code && !jit ? pcre2_compile((PCRE2_SPTR)translated, PCRE2_ZERO_TERMINATED, options,
                                                      &error, &error_at, NULL) : NULL;
    free(translated);
    if (!code || (!jit && !strict)) {
        pcre2_code_free(code);
        PCRE2_UCHAR message[256];
        pcre2_get_error_message(error, message, sizeof message);
        return ct_fail("%s: pre-tokenizer regex does not compile (%s): %s", file, message, pattern);
    }
    if (jit) pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
    pcre2_code **grown = realloc(p->regexes, (size_t)(p->n_regexes + 1) * sizeof *grown);
    pcre2_code **grown_strict = grown ? realloc(p->strict, (size_t)(p->n_regexes + 1) * sizeof *grown_strict) : NULL;
    if (grown) p->regexes = grown;
    if (grown_strict) p->strict = grown_strict;
    if (!grown || !grown_strict) {
        pcre2_code_free(code);
        pcre2_code_free(strict);
        return ct_fail("out of memory adding a pre-tokenizer regex");
    }
    p->strict[p->n_regexes] = strict;
    p->regexes[p->n_regexes++] = code;
    return 0;
}

void ct_pretok_free(ct_pretok *p) {
    for (int i = 0; i < p->n_regexes; i++) {
        pcre2_code_free(p->regexes[i]);
        pcre2_code_free(p->strict[i]);
    }
    free(p->regexes);
    free(p->strict);
    *p = (ct_pretok){0};
}

void ct_pretok_scratch_free(ct_pretok_scratch *s) {
    pcre2_match_data_free(s->match);
    pcre2_match_context_free(s->context);
    pcre2_jit_stack_free(s->jit_stack);
    *s = (ct_pretok_scratch){0};
}

/* Characters whose NFC quick-check is Yes with combining class 0: a text made only of them is
 * already NFC, so the common Chinese, Japanese, Korean and ASCII text skips utf8proc. */
static bool nfc_inert(uint32_t cp) {
    if (cp < 0x300) return true;
    if (cp >= 0x4E00 && cp <= 0x9FFF) return true;
    if (cp >= 0x3000 && cp <= 0x30FA) return !(cp >= 0x302A && cp <= 0x302F) &&
                                             !(cp >= 0x3097 && cp <= 0x30A0);
    if (cp >= 0xFF01 && cp <= 0xFFEF) return true;
    if (cp >= 0xAC00 && cp <= 0xD7A3) return true;
    if (cp >= 0x3400 && cp <= 0x4DBF) return true;
    if (cp >= 0x2010 && cp <= 0x2027) return true;
    if (cp >= 0x200B && cp <= 0x200F) return true;
    if (cp >= 0xFE00 && cp <= 0xFE0F) return true;
    return cp >= 0x1F300 && cp <= 0x1FAFF;
}

static bool already_normal(const uint8_t *s, size_t len) {
    size_t i = 0;
    while (i < len) {
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        uint32_t cp;
        int n = ct_utf8_decode(s + i, len - i, &cp);
        if (n == 0) {
            i++; /* invalid bytes are kept as they are */
            continue;
        }
        if (!nfc_inert(cp)) return false;
        i += (size_t)n;
    }
    return true;
}

/* utf8proc 2.6 composes a Hangul LV syllable with U+11A7, the jamo just before the trailing
 * consonants, and so drops it; Unicode (and the library) leave it alone. Nothing composes with
 * it, so it is kept out of utf8proc's runs. */
#define HANGUL_T_BASE 0x11A7

/* Normalizes one run of valid UTF-8. */
static int normalize_run(ct_strbuf *out, const uint8_t *s, size_t len, int options) {
    utf8proc_uint8_t *mapped = NULL;
    utf8proc_ssize_t n = utf8proc_map(s, (utf8proc_ssize_t)len, &mapped, (utf8proc_option_t)options);
    if (n < 0) return ct_fail("normalizer: %s", utf8proc_errmsg(n));
    int rc = ct_strbuf_append(out, mapped, (size_t)n);
    free(mapped);
    return rc;
}

int ct_pretok_normalize(const ct_pretok *p, const char *text, size_t len, char **out,
                        size_t *out_len) {
    const uint8_t *s = (const uint8_t *)text;
    if (!p->utf8proc_options || (p->utf8proc_options & UTF8PROC_COMPOSE &&
                                 !(p->utf8proc_options & UTF8PROC_COMPAT) && already_normal(s, len))) {
        *out = (char *)text;
        *out_len = len;
        return 0;
    }
    ct_strbuf buf = {0};
    size_t run = 0, i = 0;
    while (i <= len) {
        uint32_t cp = 0;
        int n = i < len ? ct_utf8_decode(s + i, len - i, &cp) : 0;
        if (n > 0 && cp != HANGUL_T_BASE) {
            i += (size_t)n;
            continue;
        }
        /* A run of normalizable text ends here (at the end, an invalid byte or U+11A7). */
        size_t kept = n > 0 ? (size_t)n : i < len ? 1 : 0;
        if (i > run && normalize_run(&buf, s + run, i - run, p->utf8proc_options) < 0) break;
        if (kept && ct_strbuf_append(&buf, s + i, kept) < 0) break;
        i += kept ? kept : 1;
        run = i;
    }
    if (i <= len) {
        ct_strbuf_free(&buf);
        return -1;
    }
    if (!buf.data && ct_strbuf_append(&buf, "", 0) < 0) return -1;
    *out = buf.data;
    *out_len = buf.len;
    return 0;
}

static int scratch_ready(ct_pretok_scratch *s) {
    if (s->match) return 0;
    s->match = pcre2_match_data_create(1, NULL);
    if (!s->match) return ct_fail("out of memory for regex match data");
    return 0;
}

/* Long runs of spaces backtrack through `\s+(?!\S)`; give JIT a bigger stack when asked. */
static int grow_jit_stack(ct_pretok_scratch *s) {
    if (s->jit_stack) return ct_fail("pre-tokenizer regex: JIT stack limit reached at 64 MiB");
    s->context = pcre2_match_context_create(NULL);
    s->jit_stack = pcre2_jit_stack_create(1 << 16, 64 << 20, NULL);
    if (!s->context || !s->jit_stack) return ct_fail("out of memory for the regex JIT stack");
    pcre2_jit_stack_assign(s->context, NULL, s->jit_stack);
    return 0;
}

static int next_match(const pcre2_code *re, uint32_t options, ct_pretok_scratch *s, const char *text, size_t len,
                      size_t from, size_t *start, size_t *end) {
    for (;;) {
        int rc = pcre2_match(re, (PCRE2_SPTR)text, len, from, options, s->match, s->context);
        if (rc == PCRE2_ERROR_NOMATCH) return 0;
        if (rc == PCRE2_ERROR_JIT_STACKLIMIT) {
            CT_TRY(grow_jit_stack(s));
            continue;
        }
        if (rc < 0) {
            PCRE2_UCHAR message[256];
            pcre2_get_error_message(rc, message, sizeof message);
            return ct_fail("pre-tokenizer regex: %s", message);
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(s->match);
        *start = ov[0];
        *end = ov[1];
        return 1;
    }
}

typedef struct {
    const ct_pretok *p;
    bool valid_utf8; /* without JIT: match with p->strict and no UTF check */
    ct_pretok_scratch *s;
    ct_piece_fn fn;
    void *ctx;
} split_job;

static int split_level(const split_job *job, int level, const char *text, size_t len,
                       size_t offset);

static int emit(const split_job *job, int level, const char *text, size_t len, size_t offset) {
    if (level + 1 < job->p->n_regexes) return split_level(job, level + 1, text, len, offset);
    return job->fn(job->ctx, text, len, offset);
}

/* An empty match splits nothing (none of the supported regexes has one): search on from the
 * next character. */
static int split_level(const split_job *job, int level, const char *text, size_t len,
                       size_t offset) {
    const pcre2_code *re = job->valid_utf8 ? job->p->strict[level] : job->p->regexes[level];
    const uint32_t options = job->valid_utf8 ? PCRE2_NO_UTF_CHECK : 0;
    size_t pos = 0, from = 0, start, end;
    while (from < len) {
        int found = next_match(re, options, job->s, text, len, from, &start, &end);
        if (found < 0) return -1;
        if (found == 0) break;
        if (end == start) {
            uint32_t cp;
            int n = ct_utf8_decode((const uint8_t *)text + end, len - end, &cp);
            from = end + (n ? (size_t)n : 1);
            continue;
        }
        if (start > pos) CT_TRY(emit(job, level, text + pos, start - pos, offset + pos));
        CT_TRY(emit(job, level, text + start, end - start, offset + start));
        pos = from = end;
    }
    if (pos < len) CT_TRY(emit(job, level, text + pos, len - pos, offset + pos));
    return 0;
}

static bool utf8_valid(const char *text, size_t len) {
    uint32_t cp;
    for (size_t at = 0; at < len;) {
        int n = ct_utf8_decode((const uint8_t *)text + at, len - at, &cp);
        if (n == 0) return false;
        at += (size_t)n;
    }
    return true;
}

int ct_pretok_split(const ct_pretok *p, ct_pretok_scratch *s, const char *text, size_t len,
                    ct_piece_fn fn, void *ctx) {
    if (len == 0) return 0;
    if (p->n_regexes == 0) return fn(ctx, text, len, 0);
    CT_TRY(scratch_ready(s));
    split_job job = {p, p->strict && p->strict[0] && utf8_valid(text, len), s, fn, ctx};
    return split_level(&job, 0, text, len, 0);
}
