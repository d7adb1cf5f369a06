/* What the trainer tests record of a run through ct_train_hooks: each step's loss, the last step,
 * and a stop request after a chosen step (an interrupted run, for resume tests). */
#ifndef CT_TEST_TRAIN_H
#define CT_TEST_TRAIN_H

#include <signal.h>
#include <stdint.h>

typedef struct {
    double losses[64];
    int64_t last;
    int64_t stop_after; /* set the stop flag after this step (0 = never) */
    volatile sig_atomic_t stop;
} recorder;

/* ct_train_hooks.on_step with a recorder as user. */
static inline void on_step(void *user, int64_t step, double loss) {
    recorder *r = user;
    if (step > 0 && step < 64) r->losses[step] = loss;
    r->last = step;
    if (r->stop_after && step == r->stop_after) r->stop = 1;
}

#endif
