/* PII masking: a dataset transform that replaces phone numbers, ID-card numbers, emails, order
 * numbers (and any caller-defined pattern) in customer text before it is used for training.
 *
 * A masker holds an ordered list of named PCRE2 patterns (compiled with PCRE2_UTF | PCRE2_UCP).
 * Masking scans the text once, left to right: at each step the leftmost match of any pattern is
 * replaced by that pattern's literal replacement; when two patterns match at the same position,
 * the one added first wins. Matching always runs on the original text (so look-behinds see the
 * real neighbours, never a replacement), and replaced text is never scanned again.
 * Default patterns, in priority order:
 *   email    name@host.tld                                                     -> <EMAIL>
 *   id_card  18-character resident ID (6-digit area, 19xx/20xx birth date, 3 digits, check
 *            digit or X), not inside a longer run of digits or letters           -> <ID>
 *   phone    Chinese mobile 1[3-9]xxxxxxxxx, optional +86/0086/86 prefix, optional "-" or " "
 *            after the 3rd and 7th digit, full-width digits accepted; never inside a longer
 *            digit run nor right after a Latin letter (so SF1380013xxxx is left alone)  -> <PHONE>
 *   order    a run of 12 or more digits, or the code after 订单/订单号/订单编号/order no. (6+
 *            letters, digits or '-', at least one digit)                        -> <ORDER>
 * Counts of what was masked are kept per pattern, cumulated over calls.
 * Errors follow core/error.h: functions return -1 or NULL after ct_fail(); nothing exits
 * or prints. A masker is not thread-safe; use one per thread. */
#ifndef CT_PII_MASK_H
#define CT_PII_MASK_H

#include <stddef.h>

typedef struct ct_pii_pattern {
    const char *name;        /* short identifier used in counts and error messages, e.g. "phone" */
    const char *regex;       /* PCRE2 pattern; \K may be used to keep a prefix unmasked */
    const char *replacement; /* literal text written instead of each match, e.g. "<PHONE>" */
} ct_pii_pattern;

typedef struct ct_pii_masker ct_pii_masker;

/* The built-in patterns (email, id_card, phone, order), in priority order; *count gets 4. */
const ct_pii_pattern *ct_pii_default_patterns(size_t *count);

/* An empty masker (masks nothing until patterns are added). NULL on out-of-memory. */
ct_pii_masker *ct_pii_masker_new(void);
/* A masker with all default patterns. */
ct_pii_masker *ct_pii_masker_new_default(void);
void ct_pii_masker_free(ct_pii_masker *m);

/* Appends a pattern (lowest priority so far). Fails on an empty or duplicate name, a NULL
 * regex or replacement, or a regex PCRE2 rejects (message names the pattern, the offset and
 * PCRE2's reason). */
int ct_pii_masker_add(ct_pii_masker *m, const char *name, const char *regex, const char *replacement);
/* Appends default patterns chosen by name: a comma-separated list such as "phone,email", or
 * NULL / "" / "all" for every default. Fails on an unknown name, listing the valid ones. */
int ct_pii_masker_add_defaults(ct_pii_masker *m, const char *names);

/* Returns a newly allocated masked copy of the NUL-terminated UTF-8 text (free() it), and adds
 * the number of replacements made to *n_masked when n_masked is not NULL. NULL on invalid UTF-8
 * (message gives the byte offset), a PCRE2 matching error, or out-of-memory. */
char *ct_pii_mask(ct_pii_masker *m, const char *text, size_t *n_masked);

size_t ct_pii_masker_size(const ct_pii_masker *m);
const char *ct_pii_masker_name(const ct_pii_masker *m, size_t i);
/* Replacements made by pattern i since creation or the last reset. */
size_t ct_pii_masker_count(const ct_pii_masker *m, size_t i);
/* Same, by pattern name; -1 (and ct_fail) when no pattern has that name. */
long ct_pii_masker_count_by_name(const ct_pii_masker *m, const char *name);
size_t ct_pii_masker_total(const ct_pii_masker *m);
void ct_pii_masker_reset_counts(ct_pii_masker *m);
/* Writes "email=1 id_card=0 phone=3 order=2 total=6" into buf (truncated to cap bytes, always
 * NUL-terminated when cap > 0); returns the length the full summary needs, like snprintf. */
int ct_pii_masker_summary(const ct_pii_masker *m, char *buf, size_t cap);

#endif
