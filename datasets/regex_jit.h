/* Whether ctune JIT-compiles its PCRE2 regexes (pre-tokenizer, PII patterns): yes, unless the
 * environment sets CT_NO_REGEX_JIT=1. Valgrind cannot follow JIT-compiled code and reports its
 * reads as uninitialised (PCRE2 says so too, unless built with --enable-valgrind), which would
 * bury real errors; scripts/valgrind.sh sets it. The interpreter gives the same matches. */
#ifndef CT_REGEX_JIT_H
#define CT_REGEX_JIT_H

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static inline bool ct_regex_jit_wanted(void) {
    const char *v = getenv("CT_NO_REGEX_JIT");
    return !(v && *v && strcmp(v, "0") != 0);
}

#endif
