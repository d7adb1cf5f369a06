/* Interrupts (SIGINT, SIGTERM) are delivered to a thread of their own.
 *
 * A signal handler runs on whichever thread the kernel picks, on top of whatever that thread was
 * doing, and the interrupted code has to survive that. oneDNN 2.6's sgemm does not always: on an
 * AVX-512 machine a Ctrl-C during a training step corrupted the heap (glibc: "corrupted size vs.
 * prev_size", inside dnnl_sgemm) in 3-4 of 20 tries of `ctune run tests/fixtures/pipeline_tiny.yaml
 * --stage teacher` interrupted after its first step, and in 0 of 25 with CT_GEMM=openblas; where
 * inside the library it breaks was not found. So main() calls ct_signal_thread_start before any
 * other thread exists: SIGINT and SIGTERM are blocked in the calling thread, and so in every
 * thread created after it (OpenMP's, the libraries'), and one thread is started that leaves them
 * unblocked and sleeps. The kernel then delivers them only to that thread, where the commands'
 * handlers (installed with sigaction, as before) run; no computation is ever interrupted.
 *
 * Consequences for the rest of the program: a handler's raise() reaches the thread that calls
 * it, so code outside the handlers re-raises with kill(getpid(), sig); and a child process is
 * started with the signal mask emptied (cli/pipeline_serve.c), since a blocked mask survives
 * exec. */
#ifndef CT_CLI_SIGNAL_THREAD_H
#define CT_CLI_SIGNAL_THREAD_H

/* 0, or -1 with ct_fail when the mask or the thread could not be set up (the signals are then
 * left unblocked, as before). */
int ct_signal_thread_start(void);

/* For a handler that ends the process after cleaning up (ctune export): stops the main thread
 * where it is (SIGRTMIN, whose handler never returns) and waits until it has stopped, so that it
 * writes nothing more while the temporaries are removed; the interrupted code never resumes,
 * which is what makes stopping it there safe. Does nothing on the main thread itself or when
 * ct_signal_thread_start did not run. Async-signal-safe. */
void ct_signal_thread_freeze_main(void);

#endif
