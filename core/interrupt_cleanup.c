/* The registry of temporaries an interrupted command removes (core/interrupt_cleanup.h).
 *
 * A slot's state is atomic and written last when a path is added (first when it is forgotten),
 * so the handler, which may interrupt an add or a forget half way, reads only whole paths. */
#include "core/interrupt_cleanup.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

enum { SLOT_FREE, SLOT_CLAIMED, SLOT_FILE, SLOT_FOLDER };

static struct {
    atomic_int state;
    char path[CT_CLEANUP_PATH_MAX];
} slots[CT_CLEANUP_SLOTS];

static atomic_int holds;
static atomic_int pending_signal;
/* Set while a handler decides whether to defer; stays set once it has decided not to (the
 * process is then ending): a hold taken meanwhile waits, so no swap starts under a dying handler
 * that runs on another thread (cli/signal_thread.h). */
static atomic_int deciding;

static void add(const char *path, int kind) {
    size_t len = strlen(path);
    if (len >= CT_CLEANUP_PATH_MAX) return;
    for (int i = 0; i < CT_CLEANUP_SLOTS; i++) {
        int expected = SLOT_FREE;
        if (!atomic_compare_exchange_strong(&slots[i].state, &expected, SLOT_CLAIMED)) continue;
        memcpy(slots[i].path, path, len + 1);
        atomic_store(&slots[i].state, kind);
        return;
    }
}

void ct_cleanup_add_file(const char *path) { add(path, SLOT_FILE); }

void ct_cleanup_add_folder(const char *path) { add(path, SLOT_FOLDER); }

void ct_cleanup_forget(const char *path) {
    for (int i = 0; i < CT_CLEANUP_SLOTS; i++) {
        int state = atomic_load(&slots[i].state);
        if ((state == SLOT_FILE || state == SLOT_FOLDER) && !strcmp(slots[i].path, path)) {
            atomic_store(&slots[i].state, SLOT_FREE);
            return;
        }
    }
}

int ct_cleanup_count(void) {
    int n = 0;
    for (int i = 0; i < CT_CLEANUP_SLOTS; i++) {
        int state = atomic_load(&slots[i].state);
        n += state == SLOT_FILE || state == SLOT_FOLDER;
    }
    return n;
}

/* The kernel's record of one folder entry (getdents64); glibc declares none. */
typedef struct {
    uint64_t ino;
    int64_t off;
    unsigned short reclen;
    unsigned char type;
    char name[];
} dirent64_record;

/* One pass over the folder's entries, unlinking each; how many were removed. readdir is not
 * async-signal-safe (it may allocate), getdents64 on a descriptor is a plain system call. */
static int unlink_entries(int fd) {
    _Alignas(8) char buffer[4096];
    int removed = 0;
    long n;
    lseek(fd, 0, SEEK_SET);
    while ((n = syscall(SYS_getdents64, fd, buffer, sizeof buffer)) > 0) {
        for (long at = 0; at < n;) {
            const dirent64_record *e = (const dirent64_record *)(buffer + at);
            at += e->reclen;
            if (!strcmp(e->name, ".") || !strcmp(e->name, "..")) continue;
            /* export folders are flat; an empty sub-folder goes too, a full one stays */
            if (unlinkat(fd, e->name, 0) == 0 || (errno == EISDIR && unlinkat(fd, e->name, AT_REMOVEDIR) == 0))
                removed++;
        }
    }
    return removed;
}

static void remove_folder(const char *path) {
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return;
    /* Unlinking while reading may skip entries: read again until a pass removes nothing. */
    for (int pass = 0; pass < 8; pass++)
        if (unlink_entries(fd) == 0) break;
    close(fd);
    rmdir(path); /* if something is left in it, so is the folder */
}

void ct_cleanup_remove_all(void) {
    /* files first: one may lie in a registered folder, which then empties */
    for (int kind = SLOT_FILE; kind <= SLOT_FOLDER; kind++)
        for (int i = 0; i < CT_CLEANUP_SLOTS; i++) {
            if (atomic_load(&slots[i].state) != kind) continue;
            if (kind == SLOT_FILE) unlink(slots[i].path);
            else remove_folder(slots[i].path);
            atomic_store(&slots[i].state, SLOT_FREE);
        }
}

void ct_cleanup_hold(void) {
    atomic_fetch_add(&holds, 1);
    /* A handler on another thread is deciding: it sees this hold and defers (clearing the flag),
     * or it had seen none and ends the process while this waits. */
    while (atomic_load(&deciding)) nanosleep(&(struct timespec){0, 100000}, NULL);
}

void ct_cleanup_release(void) {
    if (atomic_fetch_sub(&holds, 1) != 1) return;
    int sig = atomic_exchange(&pending_signal, 0);
    /* kill, not raise: raise targets this thread, where the signal may be blocked (it is when a
     * signal thread receives them); kill reaches the thread that takes it. */
    if (sig) kill(getpid(), sig);
}

bool ct_cleanup_defer(int sig) {
    atomic_store(&deciding, 1);
    if (atomic_load(&holds) == 0) return false; /* `deciding` stays set: no swap starts now */
    atomic_store(&pending_signal, sig);
    /* Released meanwhile (the handler runs on another thread than the holder): the release may
     * have looked before the signal was stored, so this handler goes on instead. */
    if (atomic_load(&holds) == 0 && atomic_exchange(&pending_signal, 0) == sig) return false;
    atomic_store(&deciding, 0);
    return true;
}

void ct_cleanup_handler_survived(void) { atomic_store(&deciding, 0); }
