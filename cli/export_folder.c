/* Folder exports written whole or not at all (cli/export_folder.h). */
#include "cli/export_folder.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/interrupt_cleanup.h"
#include "core/paths.h"

static int check_parent(const char *out) {
    char *parent = ct_strdup(out);
    if (!parent) return -1;
    size_t n = strlen(parent);
    while (n > 1 && parent[n - 1] == '/') parent[--n] = '\0';
    char *slash = strrchr(parent, '/');
    if (!slash) strcpy(parent, ".");
    else if (slash == parent) slash[1] = '\0';
    else *slash = '\0';
    int rc = ct_is_dir(parent) ? 0 : ct_fail("--out %s: the folder %s does not exist; create it first or choose "
                                             "another --out", out, parent);
    free(parent);
    if (rc == 0 && !ct_is_dir(out) && access(out, F_OK) == 0)
        rc = ct_fail("--out %s: exists and is not a folder; choose another --out", out);
    return rc;
}

char *ct_export_folder_begin(const char *out) {
    if (check_parent(out) < 0) return NULL;
    size_t len = strlen(out) + sizeof ".tmp-XXXXXX";
    char *tmp = ct_malloc(len, "a path");
    if (!tmp) return NULL;
    snprintf(tmp, len, "%s.tmp-XXXXXX", out);
    ct_cleanup_hold(); /* registered as soon as it exists, so an interrupt removes it */
    bool made = mkdtemp(tmp) != NULL;
    if (made) ct_cleanup_add_folder(tmp);
    ct_cleanup_release();
    if (!made) {
        ct_fail("--out %s: cannot make a temporary folder beside it (%s); check that its folder is writable", out,
                strerror(errno));
        free(tmp);
        return NULL;
    }
    chmod(tmp, 0755); /* mkdtemp makes it private; the export is an ordinary folder */
    return tmp;
}

int ct_export_folder_commit(const char *tmp, const char *out) {
    size_t len = strlen(out) + sizeof ".old-XXXXXX";
    char *old = ct_malloc(len, "a path");
    if (!old) return -1;
    snprintf(old, len, "%s.old-XXXXXX", out);
    bool had = ct_is_dir(out);
    int rc = 0;
    /* An interrupt between moving the old --out aside and renaming the new one into its place
     * would leave neither under --out: it waits for the end of these steps. */
    ct_cleanup_hold();
    if (had && (!mkdtemp(old) || rename(out, old) != 0))
        rc = ct_fail("--out %s: cannot move the existing folder aside (%s); check that its folder is writable", out,
                     strerror(errno));
    /* fsync of the folder, the rename, fsync of its parent: the files in it were synced as written */
    if (rc == 0 && ct_atomic_commit(tmp, out) != 0) {
        rc = -1;
        if (had && !ct_is_dir(out)) rename(old, out);
    }
    if (rc == 0 && had) ct_cleanup_add_folder(old); /* an interrupt while it is removed finishes the job */
    ct_cleanup_release();
    if (rc == 0 && had) {
        ct_remove_tree(old);
        ct_cleanup_forget(old);
    }
    free(old);
    return rc;
}

void ct_export_folder_abort(char *tmp) {
    if (tmp) {
        ct_remove_tree(tmp);
        ct_cleanup_forget(tmp);
    }
    free(tmp);
}

int ct_export_scratch_make(char *dir, size_t size, const char *what) {
    snprintf(dir, size, "%s", "/tmp/ctune-export-XXXXXX");
    ct_cleanup_hold();
    bool made = mkdtemp(dir) != NULL;
    if (made) ct_cleanup_add_folder(dir);
    ct_cleanup_release();
    if (!made) {
        dir[0] = '\0';
        return ct_fail("cannot make a scratch folder in /tmp for %s (%s); check that /tmp is writable", what,
                       strerror(errno));
    }
    return 0;
}

void ct_export_scratch_remove(const char *dir) {
    if (!dir[0]) return;
    ct_remove_tree(dir);
    ct_cleanup_forget(dir);
}
