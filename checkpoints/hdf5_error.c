/* HDF5's error stack turned into ctune's one-line errors.
 *
 * HDF5 prints a multi-line trace to stderr for every failed call unless told not to; library
 * code must not print, so the automatic printer is switched off and, when a call fails, the
 * stack is walked from its innermost entry (where the problem was detected: "data error
 * detected by Fletcher32 checksum", "truncated file: eof = ...") outwards. The innermost
 * message becomes the reason; a few cases a user meets in practice get a plainer reason and a
 * fix of their own. */
#include <hdf5.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "core/error.h"
#include "checkpoints/hdf5_file.h"

void ct_h5_silence(void) {
    static _Thread_local bool silenced;
    if (silenced) return;
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    silenced = true;
}

typedef struct stack_summary {
    char innermost[400]; /* the first entry walking upward: the most specific one */
    int entries;
    bool checksum;       /* a metadata or Fletcher32 checksum did not match */
    bool truncated;      /* the file is shorter than its superblock says */
    bool not_hdf5;       /* no HDF5 signature */
    bool lock;           /* the filesystem refused HDF5's file lock */
} stack_summary;

/* Copies at most size-1 bytes, turning line breaks into spaces (HDF5 puts some in its messages,
 * and ctune's errors are one line). */
static void copy_one_line(char *dst, size_t size, const char *src) {
    size_t i = 0;
    for (; src[i] && i + 1 < size; i++) dst[i] = (src[i] == '\n' || src[i] == '\r') ? ' ' : src[i];
    dst[i] = '\0';
}

static herr_t visit_entry(unsigned n, const H5E_error2_t *entry, void *data) {
    stack_summary *s = data;
    const char *desc = entry->desc ? entry->desc : "";
    if (n == 0) {
        if (*desc) copy_one_line(s->innermost, sizeof s->innermost, desc);
        else H5Eget_msg(entry->min_num, NULL, s->innermost, sizeof s->innermost);
    }
    if (strstr(desc, "checksum") || strstr(desc, "Fletcher32")) s->checksum = true;
    if (entry->min_num == H5E_TRUNCATED) s->truncated = true;
    if (entry->min_num == H5E_NOTHDF5) s->not_hdf5 = true;
    if (strstr(desc, "unable to lock file")) s->lock = true;
    s->entries++;
    return 0;
}

/* HDF5's file-open messages embed strerror text ("... error message = 'No such file or
 * directory', flags = ..."): that text alone is the useful part. */
static bool system_error_text(const char *desc, char *out, size_t size) {
    const char *key = "error message = '";
    const char *start = strstr(desc, key);
    if (!start) return false;
    start += strlen(key);
    const char *end = strchr(start, '\'');
    size_t n = end ? (size_t)(end - start) : strlen(start);
    if (n >= size) n = size - 1;
    memcpy(out, start, n);
    out[n] = '\0';
    return true;
}

int ct_h5_fail(const char *file, const char *object, const char *fix) {
    stack_summary s = {.innermost = ""};
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, visit_entry, &s);
    H5Eclear2(H5E_DEFAULT);

    char reason[480];
    char system_text[160];
    if (s.entries == 0) {
        snprintf(reason, sizeof reason, "the HDF5 library reported a failure without a message");
    } else if (s.checksum) {
        snprintf(reason, sizeof reason, "checksum mismatch, the stored bytes are corrupt (%s)", s.innermost);
        fix = "the file is damaged; load an earlier checkpoint";
    } else if (s.truncated) {
        snprintf(reason, sizeof reason, "the file is truncated (%s)", s.innermost);
        fix = "it was cut short (an interrupted copy or a full disk); load an earlier checkpoint";
    } else if (s.not_hdf5) {
        snprintf(reason, sizeof reason, "not an HDF5 file (no HDF5 signature)");
        fix = "give a checkpoint written by ctune";
    } else if (s.lock) {
        snprintf(reason, sizeof reason, "cannot lock the file (%s)", s.innermost);
        fix = "another process holds it, or the filesystem has no locks: then set HDF5_USE_FILE_LOCKING=FALSE";
    } else if (system_error_text(s.innermost, system_text, sizeof system_text)) {
        snprintf(reason, sizeof reason, "%s", system_text);
    } else {
        snprintf(reason, sizeof reason, "%s", s.innermost);
    }
    if (object) return ct_fail("%s: %s: %s; %s", file, object, reason, fix);
    return ct_fail("%s: %s; %s", file, reason, fix);
}

const char *ct_h5_group_or_root(const char *group) { return group && *group ? group : "/"; }

const char *ct_h5_describe(char *buf, size_t size, const char *kind, const char *group, const char *name) {
    const char *g = ct_h5_group_or_root(group);
    const char *lead = g[0] == '/' ? "" : "/";
    const char *sep = name && strcmp(g, "/") != 0 ? "/" : "";
    snprintf(buf, size, "%s %s%s%s%s", kind, lead, g, sep, name ? name : "");
    return buf;
}
