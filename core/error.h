/* Errors: library code never exits. A failing function records one line in a thread-local
 * buffer and returns -1 (or NULL); the caller passes it up, and only the CLI prints and exits. */
#ifndef CT_ERROR_H
#define CT_ERROR_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Records a formatted one-line message and returns -1, so `return ct_fail(...)` reads naturally. */
int ct_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prepends context ("reading x.h5: ") to the current message; returns -1. */
int ct_fail_context(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
const char *ct_last_error(void);
void ct_clear_error(void);

/* malloc/calloc that report the bytes asked for instead of returning a silent NULL. */
void *ct_malloc(size_t nbytes, const char *what);
void *ct_calloc(size_t count, size_t size, const char *what);
char *ct_strdup(const char *s);

#ifdef __cplusplus
}
#endif

#define CT_TRY(expr) do { if ((expr) < 0) return -1; } while (0)

#endif
