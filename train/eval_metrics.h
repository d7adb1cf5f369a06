/* Classification metrics from (true label, predicted label) pairs over K classes, and a
 * perplexity accumulator. Used for intent accuracy (one confusion matrix per scoring rule:
 * summed and length-normalized log-likelihood) and for held-out perplexity.
 *
 * Conventions (those of scikit-learn's defaults, stated here so nobody has to guess):
 *   precision_c = TP / (TP + FP), 0 when class c was never predicted;
 *   recall_c    = TP / (TP + FN), 0 when class c never occurs;
 *   F1_c        = 2 P R / (P + R), 0 when P + R = 0;
 *   macro F1 (and macro precision / recall) averages over the classes that occur as a true or a
 *   predicted label at least once; a class absent from both has no defined score and is left out.
 *   accuracy = correct / total. */
#ifndef CT_EVAL_METRICS_H
#define CT_EVAL_METRICS_H

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>

typedef struct {
    int n_classes;
    int64_t *counts; /* n_classes x n_classes, row = true label, column = predicted label */
    int64_t total, correct;
} ct_confusion;

typedef struct {
    double precision, recall, f1;
    int64_t support;   /* how often the class is the true label */
    int64_t predicted; /* how often it is the predicted label */
} ct_class_metrics;

typedef struct {
    int n_classes;
    int64_t total, correct;
    double accuracy;                  /* NaN when no pair was added */
    double macro_precision, macro_recall, macro_f1;
    int n_classes_scored;             /* classes counted in the macro averages */
    ct_class_metrics *per_class;      /* n_classes entries, owned */
} ct_classification_report;

ct_confusion *ct_confusion_new(int n_classes);
void ct_confusion_free(ct_confusion *confusion);
/* Adds one pair; a label outside [0, n_classes) is an error naming it (nothing is counted). */
int ct_confusion_add(ct_confusion *confusion, int true_label, int predicted_label);
int64_t ct_confusion_count(const ct_confusion *confusion, int true_label, int predicted_label);

/* Computes every metric; free the result with ct_classification_report_free. */
int ct_classification_report_compute(const ct_confusion *confusion, ct_classification_report *report);
void ct_classification_report_free(ct_classification_report *report);

/* The summary as JSON: {"total", "correct", "accuracy", "macro_precision", "macro_recall",
 * "macro_f1", "classes_scored", "labels": [{"index", "id", "name", "precision", "recall", "f1",
 * "support", "predicted"}...], "confusion_matrix": {"rows": "true", "columns": "predicted",
 * "counts": [[...]...]}}. ids (e.g. "return_request") and names (display text, e.g. "退货申请")
 * may each be NULL, and are then left out. A NaN metric is written as null. The caller owns the
 * object and may add its own fields (perplexity, the other scoring rule's accuracy) before
 * printing it. */
cJSON *ct_classification_report_json(const ct_classification_report *report, const ct_confusion *confusion,
                                     const char *const *ids, const char *const *names);

/* A text table: one row per class (index, name, precision, recall, F1, support), the macro and
 * accuracy lines, then the confusion matrix with columns numbered by class index. Names (or ids
 * when names is NULL) are padded by their display width, so CJK labels line up on a terminal. */
int ct_classification_report_print(const ct_classification_report *report, const ct_confusion *confusion,
                                   const char *const *names, FILE *out);

/* Perplexity over held-out text: the summed negative log-likelihood (natural log) of the tokens
 * scored and their count; batches add their sums, so the mean is over tokens, not batches. */
typedef struct {
    double nll_sum;
    int64_t tokens;
} ct_perplexity;

/* Adds a batch: nll_sum must be finite and >= 0, tokens >= 0 (an error otherwise, nothing added). */
int ct_perplexity_add(ct_perplexity *acc, double nll_sum, int64_t tokens);
/* mean NLL per token and exp of it; an error when no token was added. */
int ct_perplexity_result(const ct_perplexity *acc, double *mean_nll, double *perplexity);

#endif
