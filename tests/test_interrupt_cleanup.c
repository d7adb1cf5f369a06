/* The registry of temporaries an interrupted export removes (core/interrupt_cleanup.h): what is
 * registered is removed, what is forgotten is kept, atomic writes register and forget their
 * temporary file, a held stretch defers a signal to its release. */
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/atomic_file.h"
#include "core/interrupt_cleanup.h"
#include "ct_test.h"

static int exists(const char *path) { return access(path, F_OK) == 0; }

static void touch(const char *path) {
    FILE *f = fopen(path, "w");
    if (f) {
        fputs("x", f);
        fclose(f);
    }
}

static void test_remove_and_forget(const char *dir) {
    char file[512], kept[512], folder[512], inner[600], empty_sub[600], full_sub[600], deep[700];
    snprintf(file, sizeof file, "%s/a.tmp.1", dir);
    snprintf(kept, sizeof kept, "%s/kept.tmp.2", dir);
    snprintf(folder, sizeof folder, "%s/out.tmp-3", dir);
    touch(file);
    touch(kept);
    mkdir(folder, 0755);
    /* more entries than one 4 KB getdents64 read returns, unlinked while being read */
    for (int i = 0; i < 300; i++) {
        snprintf(inner, sizeof inner, "%s/a-file-with-a-rather-long-name-%03d.safetensors", folder, i);
        touch(inner);
    }
    snprintf(empty_sub, sizeof empty_sub, "%s/empty", folder);
    mkdir(empty_sub, 0755);
    ct_cleanup_add_file(file);
    ct_cleanup_add_file(kept);
    ct_cleanup_add_folder(folder);
    CHECK(ct_cleanup_count() == 3, "3 registered, got %d", ct_cleanup_count());
    ct_cleanup_forget(kept);
    CHECK(ct_cleanup_count() == 2, "kept.tmp.2 forgotten: 2 registered, got %d", ct_cleanup_count());
    ct_cleanup_remove_all();
    CHECK(!exists(file), "%s removed", file);
    CHECK(!exists(folder), "%s and its 300 files and empty sub-folder removed", folder);
    CHECK(exists(kept), "%s, forgotten, kept", kept);
    CHECK(ct_cleanup_count() == 0, "the registry is empty after removing, got %d", ct_cleanup_count());

    /* a sub-folder with files in it is not flat: it stays, and so does the folder */
    mkdir(folder, 0755);
    snprintf(full_sub, sizeof full_sub, "%s/sub", folder);
    mkdir(full_sub, 0755);
    snprintf(deep, sizeof deep, "%s/f", full_sub);
    touch(deep);
    snprintf(inner, sizeof inner, "%s/top", folder);
    touch(inner);
    ct_cleanup_add_folder(folder);
    ct_cleanup_remove_all();
    CHECK(!exists(inner) && exists(deep) && exists(folder), "a non-empty sub-folder is left, with its folder");
}

static void test_limits(const char *dir) {
    char path[CT_CLEANUP_PATH_MAX + 16];
    memset(path, 'a', sizeof path - 1);
    path[sizeof path - 1] = '\0';
    ct_cleanup_add_file(path);
    CHECK(ct_cleanup_count() == 0, "a path past CT_CLEANUP_PATH_MAX is not registered");
    char name[512];
    for (int i = 0; i < CT_CLEANUP_SLOTS + 5; i++) {
        snprintf(name, sizeof name, "%s/n%d", dir, i);
        ct_cleanup_add_file(name);
    }
    CHECK(ct_cleanup_count() == CT_CLEANUP_SLOTS, "a full registry holds %d, got %d", CT_CLEANUP_SLOTS,
          ct_cleanup_count());
    ct_cleanup_remove_all(); /* none of them exists: removing them is fine */
    CHECK(ct_cleanup_count() == 0, "emptied");
}

static void test_atomic_writes(const char *dir) {
    char target[512];
    snprintf(target, sizeof target, "%s/model.bin", dir);
    char *tmp = NULL;
    FILE *f = ct_atomic_fopen(target, &tmp);
    CHECK(f && ct_cleanup_count() == 1, "ct_atomic_fopen registers its temporary file");
    if (!f) return;
    fputs("data", f);
    fclose(f);
    CHECK(ct_atomic_commit(tmp, target) == 0 && ct_cleanup_count() == 0, "committed: forgotten");
    free(tmp);
    f = ct_atomic_fopen(target, &tmp);
    fclose(f);
    ct_atomic_discard(tmp);
    CHECK(!exists(tmp) && ct_cleanup_count() == 0, "discarded: removed and forgotten");
    free(tmp);
    /* an interrupt between open and commit: the temporary goes, the committed file stays */
    f = ct_atomic_fopen(target, &tmp);
    fclose(f);
    ct_cleanup_remove_all();
    CHECK(!exists(tmp) && exists(target), "an interrupt removes %s and keeps %s", tmp, target);
    free(tmp);
}

static volatile sig_atomic_t deferred, handled;

static void on_usr1(int sig) {
    if (ct_cleanup_defer(sig)) {
        deferred++;
    } else {
        handled++;
        ct_cleanup_handler_survived(); /* a real handler ends the process here */
    }
}

static void test_hold(void) {
    struct sigaction action = {.sa_handler = on_usr1};
    sigemptyset(&action.sa_mask);
    sigaction(SIGUSR1, &action, NULL);
    raise(SIGUSR1);
    CHECK(handled == 1 && deferred == 0, "no hold: handled at once");
    ct_cleanup_hold();
    ct_cleanup_hold();
    raise(SIGUSR1);
    CHECK(deferred == 1 && handled == 1, "held: deferred");
    ct_cleanup_release();
    CHECK(handled == 1, "still held once: not raised yet");
    ct_cleanup_release();
    CHECK(handled == 2 && deferred == 1, "the last release raises it again, handled then");
    ct_cleanup_hold();
    ct_cleanup_release();
    CHECK(handled == 2, "a release with nothing kept raises nothing");
    signal(SIGUSR1, SIG_DFL);
}

int main(void) {
    char dir[64];
    if (!ct_test_temp_dir(dir, sizeof dir, "interrupt_cleanup")) return 1;
    test_remove_and_forget(dir);
    test_limits(dir);
    test_atomic_writes(dir);
    test_hold();
    ct_test_remove_tree(dir);
    return ct_test_finish("test_interrupt_cleanup");
}
