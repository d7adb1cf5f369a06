/* The toy task of the first proof: an MLP memorizes random points with random labels, trained
 * with AdamW and gradient clipping, each step inside its own memory scope. */
#ifndef CT_TOY_TASK_H
#define CT_TOY_TASK_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    int64_t points, inputs, hidden, classes;
    int steps;
    double lr, weight_decay, max_grad_norm;
    uint64_t seed;
} ct_toy_config;

typedef struct {
    double *losses;               /* steps entries, filled by the run (caller-owned) */
    size_t reserved_after_first;  /* arena bytes held after step 1 */
    size_t reserved_at_end;       /* ... and after the last step */
    uint64_t chunk_allocations_after_first, chunk_allocations_at_end;
} ct_toy_report;

ct_toy_config ct_toy_default_config(void);
int ct_toy_train(const ct_toy_config *config, ct_toy_report *report);

#endif
