#include "core/strbuf.h"
#include "datasets/pii_mask.h"

#include "core/error.h"
#include "datasets/regex_jit.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Digits in the patterns are \d, which under PCRE2_UCP also matches full-width and other
 * Unicode decimal digits; ASCII-only classes are spelled [0-9]. */
static const ct_pii_pattern default_patterns[] = {
    {"email", "[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\\.[A-Za-z0-9-]+)*\\.[A-Za-z]{2,}", "<EMAIL>"},
    {"id_card",
     "(?<![\\dA-Za-z])[1-9]\\d{5}(?:18|19|20)\\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\\d|3[01])"
     "\\d{3}[\\dXx](?![\\dA-Za-z])",
     "<ID>"},
    {"phone",
     "(?<![\\dA-Za-z])(?:(?:\\+|00)?86[- ]?)?[1\\x{FF11}][3-9\\x{FF13}-\\x{FF19}]\\d(?:[- ]?\\d{4}){2}"
     "(?!\\d)",
     "<PHONE>"},
    {"order",
     "(?<![\\dA-Za-z])\\d{12,}(?!\\d)"
     "|(?:订单编号|订单号|订单|(?i:order)[ \\t]*(?i:no\\.?|id|number|#)?)[ \\t:：#.]*\\K"
     "(?=[A-Za-z0-9-]*[0-9])[A-Za-z0-9][A-Za-z0-9-]{5,}",
     "<ORDER>"},
};
#define N_DEFAULT (sizeof default_patterns / sizeof default_patterns[0])

typedef struct {
    char *name;
    char *replacement;
    size_t replacement_len;
    pcre2_code *code;
    pcre2_match_data *match;
    size_t count;
} pii_entry;

struct ct_pii_masker {
    pii_entry *entries;
    size_t n, cap;
};

const ct_pii_pattern *ct_pii_default_patterns(size_t *count) {
    if (count) *count = N_DEFAULT;
    return default_patterns;
}

ct_pii_masker *ct_pii_masker_new(void) {
    return ct_calloc(1, sizeof(ct_pii_masker), "a PII masker");
}

ct_pii_masker *ct_pii_masker_new_default(void) {
    ct_pii_masker *m = ct_pii_masker_new();
    if (!m) return NULL;
    if (ct_pii_masker_add_defaults(m, NULL) < 0) {
        ct_pii_masker_free(m);
        return NULL;
    }
    return m;
}

static void entry_free(pii_entry *e) {
    free(e->name);
    free(e->replacement);
    pcre2_match_data_free(e->match);
    pcre2_code_free(e->code);
}

void ct_pii_masker_free(ct_pii_masker *m) {
    if (!m) return;
    for (size_t i = 0; i < m->n; i++) entry_free(&m->entries[i]);
    free(m->entries);
    free(m);
}

int ct_pii_masker_add(ct_pii_masker *m, const char *name, const char *regex, const char *replacement) {
    if (!m) return ct_fail("ct_pii_masker_add: masker is NULL");
    if (!name || !*name) return ct_fail("PII pattern: the name is empty; give each pattern a short name such as \"phone\"");
    if (!regex) return ct_fail("PII pattern \"%s\": the regex is NULL", name);
    if (!replacement) return ct_fail("PII pattern \"%s\": the replacement is NULL; use e.g. \"<PHONE>\"", name);
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->entries[i].name, name) == 0)
            return ct_fail("PII pattern \"%s\": a pattern with this name was already added; names must be unique", name);

    int errcode = 0;
    PCRE2_SIZE erroffset = 0;
    pcre2_code *code = pcre2_compile((PCRE2_SPTR)regex, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP,
                                     &errcode, &erroffset, NULL);
    if (!code) {
        PCRE2_UCHAR msg[256];
        if (pcre2_get_error_message(errcode, msg, sizeof msg) < 0) snprintf((char *)msg, sizeof msg, "error %d", errcode);
        return ct_fail("PII pattern \"%s\": bad regex at offset %zu: %s; fix the pattern (PCRE2 syntax, UTF mode)",
                       name, (size_t)erroffset, (const char *)msg);
    }
    if (ct_regex_jit_wanted()) /* optional speed-up; the interpreter is the fallback */
        (void)pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
    pcre2_match_data *match = pcre2_match_data_create_from_pattern(code, NULL);
    if (!match) {
        pcre2_code_free(code);
        return ct_fail("PII pattern \"%s\": out of memory for PCRE2 match data", name);
    }
    if (m->n == m->cap) {
        size_t cap = m->cap ? 2 * m->cap : 8;
        pii_entry *grown = realloc(m->entries, cap * sizeof *grown);
        if (!grown) {
            pcre2_match_data_free(match);
            pcre2_code_free(code);
            return ct_fail("PII pattern \"%s\": out of memory growing the pattern list", name);
        }
        m->entries = grown;
        m->cap = cap;
    }
    pii_entry e = {ct_strdup(name), ct_strdup(replacement), strlen(replacement), code, match, 0};
    if (!e.name || !e.replacement) {
        entry_free(&e);
        return ct_fail_context("PII pattern \"%s\": ", name);
    }
    m->entries[m->n++] = e;
    return 0;
}

/* Finds the default pattern named by the n bytes at p; N_DEFAULT when there is none. */
static size_t default_index(const char *p, size_t n) {
    for (size_t i = 0; i < N_DEFAULT; i++)
        if (strlen(default_patterns[i].name) == n && strncmp(default_patterns[i].name, p, n) == 0) return i;
    return N_DEFAULT;
}

/* Splits a comma/space separated list: returns the next name's start and sets *len; NULL at the end. */
static const char *next_name(const char **cursor, size_t *len) {
    const char *p = *cursor;
    while (*p == ',' || *p == ' ') p++;
    const char *end = p;
    while (*end && *end != ',' && *end != ' ') end++;
    *cursor = end;
    *len = (size_t)(end - p);
    return *len ? p : NULL;
}

int ct_pii_masker_add_defaults(ct_pii_masker *m, const char *names) {
    if (!m) return ct_fail("ct_pii_masker_add_defaults: masker is NULL");
    int all = !names || !*names || strcmp(names, "all") == 0;
    size_t chosen[N_DEFAULT * 4], n_chosen = 0, len;
    if (all) {
        for (size_t i = 0; i < N_DEFAULT; i++) chosen[n_chosen++] = i;
    } else {
        /* validate every name first, so a typo adds nothing */
        const char *cursor = names, *name;
        while ((name = next_name(&cursor, &len)) != NULL) {
            size_t i = default_index(name, len);
            if (i == N_DEFAULT)
                return ct_fail("PII defaults: unknown pattern \"%.*s\"; the built-in ones are email, id_card, phone, order (or \"all\")",
                               (int)len, name);
            if (n_chosen == sizeof chosen / sizeof chosen[0])
                return ct_fail("PII defaults: too many names in \"%s\"", names);
            chosen[n_chosen++] = i;
        }
    }
    size_t n0 = m->n;
    for (size_t k = 0; k < n_chosen; k++) {
        const ct_pii_pattern *d = &default_patterns[chosen[k]];
        if (ct_pii_masker_add(m, d->name, d->regex, d->replacement) < 0) {
            while (m->n > n0) entry_free(&m->entries[--m->n]); /* all or nothing */
            return -1;
        }
    }
    return 0;
}

#define NO_MATCH SIZE_MAX

/* Finds the next match of entry i starting at or after pos; fills start and end, or sets
 * start to NO_MATCH. Returns -1 (with ct_fail) on a matching error. */
static int next_match(pii_entry *e, const char *text, size_t len, size_t pos, uint32_t options,
                      size_t *start, size_t *end) {
    int rc = pcre2_match(e->code, (PCRE2_SPTR)text, len, pos, options | PCRE2_NOTEMPTY, e->match, NULL);
    if (rc == PCRE2_ERROR_NOMATCH) {
        *start = NO_MATCH;
        return 0;
    }
    if (rc < 0) {
        PCRE2_UCHAR msg[256];
        if (pcre2_get_error_message(rc, msg, sizeof msg) < 0) snprintf((char *)msg, sizeof msg, "error %d", rc);
        if (rc <= PCRE2_ERROR_UTF8_ERR1 && rc >= PCRE2_ERROR_UTF8_ERR21)
            return ct_fail("PII masking: the text is not valid UTF-8 at byte %zu: %s; fix or drop the input line",
                           (size_t)pcre2_get_startchar(e->match), (const char *)msg);
        return ct_fail("PII pattern \"%s\": matching failed at byte %zu: %s; simplify the pattern",
                       e->name, pos, (const char *)msg);
    }
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(e->match);
    if (ov[1] < ov[0]) return ct_fail("PII pattern \"%s\": match ends before it starts (\\K in a look-around?)", e->name);
    *start = ov[0];
    *end = ov[1];
    return 0;
}

char *ct_pii_mask(ct_pii_masker *m, const char *text, size_t *n_masked) {
    if (!m) {
        ct_fail("ct_pii_mask: masker is NULL");
        return NULL;
    }
    if (!text) {
        ct_fail("ct_pii_mask: text is NULL");
        return NULL;
    }
    size_t len = strlen(text);
    ct_strbuf out = {0};
    if (ct_strbuf_append(&out, "", 0) < 0) return NULL;
    size_t *starts = ct_malloc((2 * m->n + 1) * sizeof(size_t), "PII match positions");
    if (!starts) {
        free(out.data);
        return NULL;
    }
    size_t *ends = starts + m->n;
    size_t *counts = ct_calloc(m->n + 1, sizeof(size_t), "PII match counts");
    if (!counts) {
        free(starts);
        free(out.data);
        return NULL;
    }

    /* The first search of every pattern checks the whole subject for valid UTF-8; later
     * searches start at match boundaries of already checked text and skip the check. */
    int failed = 0;
    size_t pos = 0;
    for (size_t i = 0; i < m->n && !failed; i++)
        if (next_match(&m->entries[i], text, len, 0, 0, &starts[i], &ends[i]) < 0) failed = 1;
    while (!failed) {
        size_t best = m->n;
        for (size_t i = 0; i < m->n; i++) {
            if (starts[i] != NO_MATCH && starts[i] < pos &&
                next_match(&m->entries[i], text, len, pos, PCRE2_NO_UTF_CHECK, &starts[i], &ends[i]) < 0) {
                failed = 1;
                break;
            }
            if (starts[i] != NO_MATCH && (best == m->n || starts[i] < starts[best])) best = i;
        }
        if (failed || best == m->n) break;
        pii_entry *e = &m->entries[best];
        if (ct_strbuf_append(&out, text + pos, starts[best] - pos) < 0 ||
            ct_strbuf_append(&out, e->replacement, e->replacement_len) < 0) {
            failed = 1;
            break;
        }
        counts[best]++;
        pos = ends[best];
    }
    if (!failed && ct_strbuf_append(&out, text + pos, len - pos) < 0) failed = 1;
    free(starts);
    if (failed) {
        free(counts);
        free(out.data);
        return NULL;
    }
    size_t total = 0;
    for (size_t i = 0; i < m->n; i++) {
        m->entries[i].count += counts[i];
        total += counts[i];
    }
    free(counts);
    if (n_masked) *n_masked += total;
    return out.data;
}

size_t ct_pii_masker_size(const ct_pii_masker *m) { return m ? m->n : 0; }

const char *ct_pii_masker_name(const ct_pii_masker *m, size_t i) {
    return (m && i < m->n) ? m->entries[i].name : NULL;
}

size_t ct_pii_masker_count(const ct_pii_masker *m, size_t i) {
    return (m && i < m->n) ? m->entries[i].count : 0;
}

long ct_pii_masker_count_by_name(const ct_pii_masker *m, const char *name) {
    if (m && name)
        for (size_t i = 0; i < m->n; i++)
            if (strcmp(m->entries[i].name, name) == 0) return (long)m->entries[i].count;
    return ct_fail("PII counts: no pattern named \"%s\"", name ? name : "(null)");
}

size_t ct_pii_masker_total(const ct_pii_masker *m) {
    size_t total = 0;
    for (size_t i = 0; m && i < m->n; i++) total += m->entries[i].count;
    return total;
}

void ct_pii_masker_reset_counts(ct_pii_masker *m) {
    for (size_t i = 0; m && i < m->n; i++) m->entries[i].count = 0;
}

int ct_pii_masker_summary(const ct_pii_masker *m, char *buf, size_t cap) {
    size_t need = 0;
    char item[320];
    if (cap) buf[0] = '\0';
    for (size_t i = 0; m && i <= m->n; i++) {
        int n = i < m->n ? snprintf(item, sizeof item, "%.250s=%zu ", m->entries[i].name, m->entries[i].count)
                         : snprintf(item, sizeof item, "total=%zu", ct_pii_masker_total(m));
        if (n < 0) return -1;
        if (cap && need < cap - 1) {
            size_t room = cap - 1 - need, k = (size_t)n < room ? (size_t)n : room;
            memcpy(buf + need, item, k);
            buf[need + k] = '\0';
        }
        need += (size_t)n;
    }
    return (int)need;
}
