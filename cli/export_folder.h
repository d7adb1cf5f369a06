/* Folder exports (--format hf, peft, int8-safetensors) are written whole or not at all: into a
 * temporary folder beside --out (`<out>.tmp-XXXXXX`), renamed to --out at the end; an existing
 * --out is moved aside and removed only once the new folder is in place. A failure (a full disk,
 * an I/O error, a refused model) removes the temporary folder and leaves --out as it was; so does
 * SIGINT or SIGTERM (the folder is registered for ctune export's handler, core/interrupt_cleanup.h). */
#ifndef CT_EXPORT_FOLDER_H
#define CT_EXPORT_FOLDER_H

#include <stddef.h>

/* Checks --out (its parent exists; it is a folder or absent) and makes the temporary folder.
 * Its path (the caller frees it), or NULL with a one-line message. */
char *ct_export_folder_begin(const char *out);
/* Moves the finished temporary folder to --out (synced: its entries, the rename, the parent). */
int ct_export_folder_commit(const char *tmp, const char *out);
/* Removes the temporary folder after a failure and frees its path. */
void ct_export_folder_abort(char *tmp);

/* A private scratch folder /tmp/ctune-export-XXXXXX (tokenizer and task files taken out of a
 * checkpoint) in dir (CT_EXPORT_SCRATCH_SIZE bytes), registered for removal on an interrupt;
 * `what` says what it is for in the message. 0, or -1 with dir emptied. */
#define CT_EXPORT_SCRATCH_SIZE 32
int ct_export_scratch_make(char *dir, size_t size, const char *what);
/* Removes it (nothing when dir is empty). */
void ct_export_scratch_remove(const char *dir);

#endif
