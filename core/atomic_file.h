/* Files that are either wholly the old version or wholly the new one, whatever happens.
 *
 * A file is written under a temporary name beside its target (the same filesystem, so the
 * rename is atomic), fsynced (its bytes are on disk before any name points at them), renamed
 * over the target, and the directory is fsynced (so the rename itself survives a power cut).
 * A failure or a crash at any point leaves the target as it was; a failure removes the
 * temporary file. Used by every writer of ctune: checkpoints, safetensors, configs, tokenizers,
 * recipes, plots. The temporary file is registered for removal by an interrupted command
 * (core/interrupt_cleanup.h) from its creation until it is renamed or discarded. */
#ifndef CT_ATOMIC_FILE_H
#define CT_ATOMIC_FILE_H

#include <stddef.h>
#include <stdio.h>

/* Creates `<path>.tmp.XXXXXX` (mode 0644) and opens it for writing; *tmp gets its name (the
 * caller frees it). NULL with a message naming path when the directory is missing or read-only. */
FILE *ct_atomic_fopen(const char *path, char **tmp);
/* Removes a temporary file from ct_atomic_fopen that will not be committed (a failed write). */
void ct_atomic_discard(const char *tmp);
/* For a temporary file the caller has written and closed: fsync it, rename it over `path`, fsync
 * the directory. On failure it is removed. 0, or -1 with a message naming path. */
int ct_atomic_commit(const char *tmp, const char *path);
/* A whole buffer written to path this way. */
int ct_atomic_write_file(const char *path, const void *data, size_t len);

#endif
