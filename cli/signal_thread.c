/* The thread that receives SIGINT and SIGTERM (cli/signal_thread.h). */
#include "cli/signal_thread.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/error.h"

static pthread_t main_thread;
static atomic_bool started, main_frozen;

/* SIGRTMIN's handler on the main thread: it never returns, so whatever it interrupted (a GEMM in
 * a library included) never runs on. */
static void freeze(int sig) {
    (void)sig;
    atomic_store(&main_frozen, true);
    for (;;) pause();
}

void ct_signal_thread_freeze_main(void) {
    if (!atomic_load(&started) || pthread_equal(pthread_self(), main_thread)) return;
    if (pthread_kill(main_thread, SIGRTMIN) != 0) return;
    for (int i = 0; i < 1000 && !atomic_load(&main_frozen); i++) /* a second at most */
        nanosleep(&(struct timespec){0, 1000000}, NULL);
}

static void interrupt_signals(sigset_t *set) {
    sigemptyset(set);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGTERM);
}

/* Unblocks the two signals for this thread alone and sleeps: their handlers run here. */
static void *receive_interrupts(void *unused) {
    (void)unused;
    sigset_t set;
    interrupt_signals(&set);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    for (;;) pause();
    return NULL;
}

int ct_signal_thread_start(void) {
    sigset_t set, before;
    interrupt_signals(&set);
    int rc = pthread_sigmask(SIG_BLOCK, &set, &before);
    if (rc != 0) return ct_fail("signal mask: %s", strerror(rc));
    pthread_attr_t attr;
    pthread_t thread;
    rc = pthread_attr_init(&attr);
    if (rc == 0) {
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        pthread_attr_setstacksize(&attr, 1 << 20); /* the export's handler formats paths of 4 KiB */
        rc = pthread_create(&thread, &attr, receive_interrupts, NULL);
        pthread_attr_destroy(&attr);
    }
    if (rc != 0) {
        pthread_sigmask(SIG_SETMASK, &before, NULL);
        return ct_fail("the thread for SIGINT and SIGTERM could not start: %s", strerror(rc));
    }
    main_thread = pthread_self();
    struct sigaction action = {.sa_handler = freeze};
    sigemptyset(&action.sa_mask);
    if (sigaction(SIGRTMIN, &action, NULL) == 0) atomic_store(&started, true);
    return 0;
}
