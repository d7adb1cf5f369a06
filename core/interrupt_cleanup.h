/* The temporary files and folders a command stopped by SIGINT or SIGTERM removes on its way out.
 *
 * Writers register each temporary name they create (ct_atomic_fopen its `<path>.tmp.XXXXXX`, a
 * folder export its `<out>.tmp-XXXXXX`) and forget it once it is renamed into place or removed.
 * A command whose signal handler calls ct_cleanup_remove_all() (ctune export) then leaves none of
 * them behind; without such a handler the registry is bookkeeping only. The handler side uses
 * only static storage and async-signal-safe calls, so it may run at any moment.
 *
 * The registry holds CT_CLEANUP_SLOTS names of up to CT_CLEANUP_PATH_MAX bytes: a temporary that
 * does not fit is not removed by an interrupt (as kill -9 leaves one), and is never taken for the
 * output either. Writers are one host thread (the library's state is per process). */
#ifndef CT_INTERRUPT_CLEANUP_H
#define CT_INTERRUPT_CLEANUP_H

#include <stdbool.h>

#define CT_CLEANUP_SLOTS 32
#define CT_CLEANUP_PATH_MAX 4096

/* A temporary file, or a folder of files (removed entry by entry, then the folder itself; a
 * sub-folder only when it is empty). */
void ct_cleanup_add_file(const char *path);
void ct_cleanup_add_folder(const char *path);
/* The path is renamed into place or removed: no longer to be removed. */
void ct_cleanup_forget(const char *path);
/* How many paths are registered now (for tests). */
int ct_cleanup_count(void);

/* For a signal handler (async-signal-safe): removes every registered file and folder and empties
 * the registry. */
void ct_cleanup_remove_all(void);

/* A few steps that an interrupt must not cut in two (moving an existing --out aside, then the new
 * folder into its place): a SIGINT/SIGTERM arriving in between is kept, and raised again by the
 * last release. Nestable. */
void ct_cleanup_hold(void);
void ct_cleanup_release(void);
/* For a signal handler (async-signal-safe): true when a hold is on, the signal then being kept
 * for ct_cleanup_release; the handler returns at once. False: the handler goes on and ends the
 * process; from then on a ct_cleanup_hold on another thread waits (for the end), so no swap
 * starts while the handler removes the temporaries. */
bool ct_cleanup_defer(int sig);
/* A handler that went on (ct_cleanup_defer returned false) but let the process live (tests):
 * holds stop waiting. */
void ct_cleanup_handler_survived(void);

#endif
