/* The run log's in-memory history, shared by train/metrics.c (the log) and train/metrics_plot.c
 * (plot.svg). Not a public header. */
#ifndef CT_METRICS_INTERNAL_H
#define CT_METRICS_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "train/metrics.h"

typedef struct {
    int64_t step;
    double loss;
} train_point;

typedef struct {
    int64_t step;
    int split;        /* index into ct_run_log.splits */
    unsigned present; /* CT_EVAL_* bits */
    double accuracy, accuracy_length_normalized, loss;
} eval_point;

struct ct_run_log {
    char *dir, *path;
    FILE *file;
    train_point *train;
    size_t n_train, cap_train;
    eval_point *eval;
    size_t n_eval, cap_eval;
    char **splits;
    int n_splits;
};

#endif
