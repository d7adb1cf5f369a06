/* Confusion matrix, per-class precision / recall / F1, macro averages, their JSON summary and
 * text table, and the perplexity accumulator. Conventions are in eval_metrics.h. */
#include "train/eval_metrics.h"

#include <math.h>
#include <string.h>
#include <utf8proc.h>

#include "core/error.h"
#include "train/metrics.h"

ct_confusion *ct_confusion_new(int n_classes) {
    if (n_classes < 1 || n_classes > 65536) {
        ct_fail("confusion matrix: %d classes; the label set needs between 1 and 65536 labels", n_classes);
        return NULL;
    }
    ct_confusion *c = ct_calloc(1, sizeof *c, "a confusion matrix");
    if (!c) return NULL;
    c->n_classes = n_classes;
    c->counts = ct_calloc((size_t)n_classes * (size_t)n_classes, sizeof *c->counts, "confusion matrix counts");
    if (!c->counts) {
        free(c);
        return NULL;
    }
    return c;
}

void ct_confusion_free(ct_confusion *confusion) {
    if (!confusion) return;
    free(confusion->counts);
    free(confusion);
}

int ct_confusion_add(ct_confusion *c, int true_label, int predicted_label) {
    if (true_label < 0 || true_label >= c->n_classes)
        return ct_fail("confusion matrix: true label %d is outside [0, %d); check the label set", true_label,
                       c->n_classes);
    if (predicted_label < 0 || predicted_label >= c->n_classes)
        return ct_fail("confusion matrix: predicted label %d is outside [0, %d); check the label set",
                       predicted_label, c->n_classes);
    c->counts[(size_t)true_label * (size_t)c->n_classes + (size_t)predicted_label]++;
    c->total++;
    c->correct += true_label == predicted_label;
    return 0;
}

int64_t ct_confusion_count(const ct_confusion *c, int true_label, int predicted_label) {
    return c->counts[(size_t)true_label * (size_t)c->n_classes + (size_t)predicted_label];
}

static double ratio_or_zero(int64_t num, int64_t den) { return den > 0 ? (double)num / (double)den : 0.0; }

static ct_class_metrics class_metrics(const ct_confusion *c, int k) {
    ct_class_metrics m = {0};
    int64_t tp = ct_confusion_count(c, k, k);
    for (int j = 0; j < c->n_classes; j++) {
        m.support += ct_confusion_count(c, k, j);
        m.predicted += ct_confusion_count(c, j, k);
    }
    m.precision = ratio_or_zero(tp, m.predicted);
    m.recall = ratio_or_zero(tp, m.support);
    m.f1 = m.precision + m.recall > 0 ? 2.0 * m.precision * m.recall / (m.precision + m.recall) : 0.0;
    return m;
}

int ct_classification_report_compute(const ct_confusion *c, ct_classification_report *r) {
    memset(r, 0, sizeof *r);
    r->per_class = ct_calloc((size_t)c->n_classes, sizeof *r->per_class, "per-class metrics");
    if (!r->per_class) return -1;
    r->n_classes = c->n_classes;
    r->total = c->total;
    r->correct = c->correct;
    r->accuracy = c->total > 0 ? (double)c->correct / (double)c->total : NAN;
    double sum_p = 0, sum_r = 0, sum_f1 = 0;
    for (int k = 0; k < c->n_classes; k++) {
        ct_class_metrics m = class_metrics(c, k);
        r->per_class[k] = m;
        if (m.support == 0 && m.predicted == 0) continue;
        r->n_classes_scored++;
        sum_p += m.precision;
        sum_r += m.recall;
        sum_f1 += m.f1;
    }
    double n = (double)r->n_classes_scored;
    r->macro_precision = n > 0 ? sum_p / n : NAN;
    r->macro_recall = n > 0 ? sum_r / n : NAN;
    r->macro_f1 = n > 0 ? sum_f1 / n : NAN;
    return 0;
}

void ct_classification_report_free(ct_classification_report *report) {
    if (!report) return;
    free(report->per_class);
    report->per_class = NULL;
}

/* Exact doubles, and null for NaN (an empty matrix's accuracy). */
static void add_metric(cJSON *obj, const char *key, double value) { ct_json_add_exact_number(obj, key, value); }

static cJSON *label_json(const ct_classification_report *r, int k, const char *const *ids, const char *const *names) {
    cJSON *label = cJSON_CreateObject();
    const ct_class_metrics *m = &r->per_class[k];
    cJSON_AddNumberToObject(label, "index", k);
    if (ids && ids[k]) cJSON_AddStringToObject(label, "id", ids[k]);
    if (names && names[k]) cJSON_AddStringToObject(label, "name", names[k]);
    add_metric(label, "precision", m->precision);
    add_metric(label, "recall", m->recall);
    add_metric(label, "f1", m->f1);
    cJSON_AddNumberToObject(label, "support", (double)m->support);
    cJSON_AddNumberToObject(label, "predicted", (double)m->predicted);
    return label;
}

static cJSON *matrix_json(const ct_confusion *c) {
    cJSON *matrix = cJSON_CreateObject();
    cJSON_AddStringToObject(matrix, "rows", "true");
    cJSON_AddStringToObject(matrix, "columns", "predicted");
    cJSON *rows = cJSON_AddArrayToObject(matrix, "counts");
    for (int t = 0; t < c->n_classes; t++) {
        cJSON *row = cJSON_CreateArray();
        for (int p = 0; p < c->n_classes; p++)
            cJSON_AddItemToArray(row, cJSON_CreateNumber((double)ct_confusion_count(c, t, p)));
        cJSON_AddItemToArray(rows, row);
    }
    return matrix;
}

cJSON *ct_classification_report_json(const ct_classification_report *r, const ct_confusion *c,
                                     const char *const *ids, const char *const *names) {
    if (r->n_classes != c->n_classes) {
        ct_fail("classification summary: report has %d classes but the confusion matrix %d; compute the report "
                "from this matrix", r->n_classes, c->n_classes);
        return NULL;
    }
    cJSON *root = cJSON_CreateObject();
    if (!root) {
        ct_fail("classification summary: out of memory building the JSON");
        return NULL;
    }
    cJSON_AddNumberToObject(root, "total", (double)r->total);
    cJSON_AddNumberToObject(root, "correct", (double)r->correct);
    add_metric(root, "accuracy", r->accuracy);
    add_metric(root, "macro_precision", r->macro_precision);
    add_metric(root, "macro_recall", r->macro_recall);
    add_metric(root, "macro_f1", r->macro_f1);
    cJSON_AddNumberToObject(root, "classes_scored", r->n_classes_scored);
    cJSON *labels = cJSON_AddArrayToObject(root, "labels");
    for (int k = 0; k < r->n_classes; k++) cJSON_AddItemToArray(labels, label_json(r, k, ids, names));
    cJSON_AddItemToObject(root, "confusion_matrix", matrix_json(c));
    return root;
}

/* Columns a terminal gives the UTF-8 text (CJK characters take two). Invalid bytes count one. */
static int display_width(const char *text) {
    const utf8proc_uint8_t *s = (const utf8proc_uint8_t *)text;
    utf8proc_ssize_t left = (utf8proc_ssize_t)strlen(text);
    int width = 0;
    while (left > 0) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t n = utf8proc_iterate(s, left, &cp);
        if (n <= 0) n = 1, cp = '?';
        width += utf8proc_charwidth(cp);
        s += n;
        left -= n;
    }
    return width;
}

static void print_padded(FILE *out, const char *text, int width) {
    fputs(text, out);
    for (int pad = width - display_width(text); pad > 0; pad--) fputc(' ', out);
}

static const char *label_text(const char *const *names, int k, char *fallback, size_t n) {
    if (names && names[k]) return names[k];
    snprintf(fallback, n, "class %d", k);
    return fallback;
}

static void print_class_rows(const ct_classification_report *r, const char *const *names, int name_width, FILE *out) {
    char fallback[32];
    fprintf(out, "%4s  ", "#");
    print_padded(out, "label", name_width);
    fprintf(out, "  %9s  %9s  %9s  %9s\n", "precision", "recall", "f1", "support");
    for (int k = 0; k < r->n_classes; k++) {
        const ct_class_metrics *m = &r->per_class[k];
        fprintf(out, "%4d  ", k);
        print_padded(out, label_text(names, k, fallback, sizeof fallback), name_width);
        fprintf(out, "  %9.4f  %9.4f  %9.4f  %9lld\n", m->precision, m->recall, m->f1, (long long)m->support);
    }
    fprintf(out, "%4s  ", "");
    print_padded(out, "macro avg", name_width);
    fprintf(out, "  %9.4f  %9.4f  %9.4f  %9lld\n", r->macro_precision, r->macro_recall, r->macro_f1,
            (long long)r->total);
    fprintf(out, "%4s  ", "");
    print_padded(out, "accuracy", name_width);
    fprintf(out, "  %9s  %9s  %9.4f  %9lld\n", "", "", r->accuracy, (long long)r->total);
}

static void print_matrix(const ct_confusion *c, FILE *out) {
    int64_t largest = 0;
    for (size_t i = 0; i < (size_t)c->n_classes * (size_t)c->n_classes; i++)
        if (c->counts[i] > largest) largest = c->counts[i];
    int width = snprintf(NULL, 0, "%lld", (long long)largest);
    int index_width = snprintf(NULL, 0, "%d", c->n_classes - 1);
    if (width < index_width) width = index_width;
    fprintf(out, "\nconfusion matrix (rows: true label, columns: predicted label, by index)\n%4s", "");
    for (int p = 0; p < c->n_classes; p++) fprintf(out, " %*d", width, p);
    fputc('\n', out);
    for (int t = 0; t < c->n_classes; t++) {
        fprintf(out, "%4d", t);
        for (int p = 0; p < c->n_classes; p++) fprintf(out, " %*lld", width, (long long)ct_confusion_count(c, t, p));
        fputc('\n', out);
    }
}

int ct_classification_report_print(const ct_classification_report *r, const ct_confusion *c,
                                   const char *const *names, FILE *out) {
    if (r->n_classes != c->n_classes)
        return ct_fail("classification table: report has %d classes but the confusion matrix %d; compute the "
                       "report from this matrix", r->n_classes, c->n_classes);
    char fallback[32];
    int name_width = display_width("macro avg");
    for (int k = 0; k < r->n_classes; k++) {
        int w = display_width(label_text(names, k, fallback, sizeof fallback));
        if (w > name_width) name_width = w;
    }
    print_class_rows(r, names, name_width, out);
    print_matrix(c, out);
    if (ferror(out)) return ct_fail("classification table: writing the table failed (disk full or closed stream?)");
    return 0;
}

int ct_perplexity_add(ct_perplexity *acc, double nll_sum, int64_t tokens) {
    if (!isfinite(nll_sum) || nll_sum < 0)
        return ct_fail("perplexity: a batch's summed NLL is %g; it must be finite and >= 0 (check the loss)", nll_sum);
    if (tokens < 0) return ct_fail("perplexity: a batch has %lld tokens; the count must be >= 0", (long long)tokens);
    acc->nll_sum += nll_sum;
    acc->tokens += tokens;
    return 0;
}

int ct_perplexity_result(const ct_perplexity *acc, double *mean_nll, double *perplexity) {
    if (acc->tokens <= 0)
        return ct_fail("perplexity: no token was scored; the held-out text is empty or every token was masked");
    double mean = acc->nll_sum / (double)acc->tokens;
    if (mean_nll) *mean_nll = mean;
    if (perplexity) *perplexity = exp(mean);
    return 0;
}
