/* Paths and folders of a run's outputs. */
#ifndef CT_PATHS_H
#define CT_PATHS_H

#include <stdbool.h>
#include <stddef.h>

/* "dir/name" in a new string (the caller frees it); NULL with a message when out of memory. */
char *ct_path_join(const char *dir, const char *name);
/* Creates a folder and its missing parents (mkdir -p); an existing component must be a folder.
 * 0, or -1 with a message naming the component. */
int ct_make_dirs(const char *path);
/* Removes a file, or a folder and everything below it (rm -rf; symbolic links are removed, never
 * followed). A path that does not exist is fine. 0, or -1 with a message naming what could not
 * be removed. */
int ct_remove_tree(const char *path);
bool ct_is_file(const char *path);
bool ct_is_dir(const char *path);
/* A whole file ("-": standard input) in a new NUL-terminated string (the caller frees it); *len
 * (may be NULL) gets its length. A file larger than max_bytes is refused, naming both sizes, so
 * a config or an index cannot make the reader allocate without bound. NULL with a message. */
char *ct_read_file(const char *path, size_t max_bytes, size_t *len);

#endif
