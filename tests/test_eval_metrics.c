/* Classification metrics and perplexity: a hand-derived example, a fixture computed with plain
 * Python arithmetic (tests/reference/make_eval_metrics_fixture.py) that reaches the
 * zero-division cases, the JSON summary read back, the text table's alignment with CJK names,
 * and the errors for bad labels and bad batches. */
#include <cjson/cJSON.h>
#include <math.h>
#include <string.h>

#include "core/error.h"
#include "tests/ct_test.h"
#include "train/eval_metrics.h"

static const char *const ids3[] = {"return_request", "exchange_request", "complaint"};
static const char *const names3[] = {"退货申请", "换货申请", "投诉"};

static int close_to(double a, double b) { return fabs(a - b) <= 1e-14 * fmax(1.0, fabs(b)); }

/* The hand example, 10 pairs over 3 classes (rows true, columns predicted):
 *            pred 0  pred 1  pred 2   support
 *   true 0      3       1       0        4
 *   true 1      2       2       0        4
 *   true 2      0       1       1        2
 *   predicted   5       4       1
 * class 0: P = 3/5, R = 3/4, F1 = 2 (0.45) / 1.35 = 2/3
 * class 1: P = 2/4, R = 2/4, F1 = 1/2
 * class 2: P = 1/1, R = 1/2, F1 = 2 (0.5) / 1.5 = 2/3
 * macro P = (0.6 + 0.5 + 1) / 3 = 0.7, macro R = (0.75 + 0.5 + 0.5) / 3 = 7/12,
 * macro F1 = (2/3 + 1/2 + 2/3) / 3 = 11/18, accuracy = 6/10.
 * The pairs are added in a shuffled order. */
static ct_confusion *hand_example(void) {
    static const int pairs[10][2] = {{1, 0}, {0, 0}, {2, 1}, {1, 1}, {0, 1}, {0, 0}, {1, 0}, {2, 2}, {0, 0}, {1, 1}};
    ct_confusion *c = ct_confusion_new(3);
    for (int i = 0; i < 10; i++) CHECK(ct_confusion_add(c, pairs[i][0], pairs[i][1]) == 0, "%s", ct_last_error());
    return c;
}

static void test_hand_example(void) {
    ct_confusion *c = hand_example();
    ct_classification_report r;
    CHECK(ct_classification_report_compute(c, &r) == 0, "%s", ct_last_error());
    static const int64_t expected_counts[3][3] = {{3, 1, 0}, {2, 2, 0}, {0, 1, 1}};
    for (int t = 0; t < 3; t++)
        for (int p = 0; p < 3; p++)
            CHECK(ct_confusion_count(c, t, p) == expected_counts[t][p], "count[%d][%d] = %lld", t, p,
                  (long long)ct_confusion_count(c, t, p));
    double precision[3] = {0.6, 0.5, 1.0}, recall[3] = {0.75, 0.5, 0.5}, f1[3] = {2.0 / 3, 0.5, 2.0 / 3};
    int64_t support[3] = {4, 4, 2}, predicted[3] = {5, 4, 1};
    for (int k = 0; k < 3; k++) {
        const ct_class_metrics *m = &r.per_class[k];
        CHECK(close_to(m->precision, precision[k]) && close_to(m->recall, recall[k]) && close_to(m->f1, f1[k]),
              "class %d: P %.17g R %.17g F1 %.17g", k, m->precision, m->recall, m->f1);
        CHECK(m->support == support[k] && m->predicted == predicted[k], "class %d: support %lld predicted %lld", k,
              (long long)m->support, (long long)m->predicted);
    }
    CHECK(close_to(r.macro_precision, 0.7), "macro P %.17g", r.macro_precision);
    CHECK(close_to(r.macro_recall, 7.0 / 12), "macro R %.17g", r.macro_recall);
    CHECK(close_to(r.macro_f1, 11.0 / 18), "macro F1 %.17g", r.macro_f1);
    CHECK(close_to(r.accuracy, 0.6) && r.total == 10 && r.correct == 6, "accuracy %.17g", r.accuracy);
    CHECK(r.n_classes_scored == 3, "scored %d classes", r.n_classes_scored);
    ct_classification_report_free(&r);
    ct_confusion_free(c);
}

static void compare_with_fixture(const ct_classification_report *r, const ct_confusion *c, const cJSON *expected) {
    CHECK(close_to(r->accuracy, cJSON_GetObjectItem(expected, "accuracy")->valuedouble), "accuracy %.17g", r->accuracy);
    CHECK(r->correct == (int64_t)cJSON_GetObjectItem(expected, "correct")->valuedouble, "correct %lld",
          (long long)r->correct);
    CHECK(close_to(r->macro_precision, cJSON_GetObjectItem(expected, "macro_precision")->valuedouble), "macro P");
    CHECK(close_to(r->macro_recall, cJSON_GetObjectItem(expected, "macro_recall")->valuedouble), "macro R");
    CHECK(close_to(r->macro_f1, cJSON_GetObjectItem(expected, "macro_f1")->valuedouble), "macro F1 %.17g", r->macro_f1);
    CHECK(r->n_classes_scored == cJSON_GetObjectItem(expected, "classes_scored")->valueint, "scored %d",
          r->n_classes_scored);
    int k = 0;
    const cJSON *cls;
    cJSON_ArrayForEach(cls, cJSON_GetObjectItem(expected, "classes")) {
        const ct_class_metrics *m = &r->per_class[k];
        CHECK(close_to(m->precision, cJSON_GetObjectItem(cls, "precision")->valuedouble) &&
                  close_to(m->recall, cJSON_GetObjectItem(cls, "recall")->valuedouble) &&
                  close_to(m->f1, cJSON_GetObjectItem(cls, "f1")->valuedouble),
              "class %d differs from the fixture", k);
        CHECK(m->support == cJSON_GetObjectItem(cls, "support")->valueint &&
                  m->predicted == cJSON_GetObjectItem(cls, "predicted")->valueint,
              "class %d counts differ", k);
        k++;
    }
    int t = 0;
    const cJSON *row, *cell;
    cJSON_ArrayForEach(row, cJSON_GetObjectItem(expected, "counts")) {
        int p = 0;
        cJSON_ArrayForEach(cell, row) {
            CHECK(ct_confusion_count(c, t, p) == cell->valueint, "count[%d][%d]", t, p);
            p++;
        }
        t++;
    }
}

static void test_fixture(void) {
    char *text = ct_test_read_file(ct_test_path("tests/fixtures/eval_metrics/pairs.json"), NULL);
    CHECK(text != NULL, "cannot read the eval metrics fixture");
    if (!text) return;
    cJSON *root = cJSON_Parse(text);
    int n_classes = cJSON_GetObjectItem(root, "n_classes")->valueint;
    ct_confusion *c = ct_confusion_new(n_classes);
    const cJSON *pair;
    cJSON_ArrayForEach(pair, cJSON_GetObjectItem(root, "pairs"))
        CHECK(ct_confusion_add(c, cJSON_GetArrayItem(pair, 0)->valueint, cJSON_GetArrayItem(pair, 1)->valueint) == 0,
              "%s", ct_last_error());
    ct_classification_report r;
    CHECK(ct_classification_report_compute(c, &r) == 0, "%s", ct_last_error());
    compare_with_fixture(&r, c, cJSON_GetObjectItem(root, "expected"));
    /* The edge cases the fixture was shaped for. */
    CHECK(r.per_class[5].predicted == 0 && r.per_class[5].precision == 0 && r.per_class[5].f1 == 0, "never predicted");
    CHECK(r.per_class[3].support == 0 && r.per_class[3].recall == 0, "never true");
    CHECK(r.per_class[6].support == 0 && r.per_class[6].predicted == 0 && r.n_classes_scored == 6, "absent class");
    ct_classification_report_free(&r);
    ct_confusion_free(c);
    cJSON_Delete(root);
    free(text);
}

static double number_at(const cJSON *obj, const char *key) {
    const cJSON *item = cJSON_GetObjectItem(obj, key);
    return cJSON_IsNumber(item) ? item->valuedouble : NAN;
}

static void test_json_summary(void) {
    ct_confusion *c = hand_example();
    ct_classification_report r;
    CHECK(ct_classification_report_compute(c, &r) == 0, "%s", ct_last_error());
    cJSON *summary = ct_classification_report_json(&r, c, ids3, names3);
    char *printed = cJSON_PrintUnformatted(summary);
    cJSON *back = cJSON_Parse(printed);
    CHECK(back != NULL, "the summary does not parse back");
    CHECK(number_at(back, "accuracy") == r.accuracy && number_at(back, "macro_f1") == r.macro_f1,
          "accuracy / macro F1 do not read back");
    CHECK(number_at(back, "total") == 10 && number_at(back, "correct") == 6 && number_at(back, "classes_scored") == 3,
          "counts do not read back");
    const cJSON *labels = cJSON_GetObjectItem(back, "labels");
    CHECK(cJSON_GetArraySize(labels) == 3, "%d labels", cJSON_GetArraySize(labels));
    for (int k = 0; k < 3 && k < cJSON_GetArraySize(labels); k++) {
        const cJSON *label = cJSON_GetArrayItem(labels, k);
        CHECK(number_at(label, "index") == k, "label %d index", k);
        CHECK(!strcmp(cJSON_GetObjectItem(label, "id")->valuestring, ids3[k]), "label %d id", k);
        CHECK(!strcmp(cJSON_GetObjectItem(label, "name")->valuestring, names3[k]), "label %d name", k);
        CHECK(number_at(label, "f1") == r.per_class[k].f1 && number_at(label, "support") == r.per_class[k].support,
              "label %d metrics", k);
    }
    const cJSON *matrix = cJSON_GetObjectItem(back, "confusion_matrix");
    CHECK(!strcmp(cJSON_GetObjectItem(matrix, "rows")->valuestring, "true"), "rows are not the true labels");
    const cJSON *row1 = cJSON_GetArrayItem(cJSON_GetObjectItem(matrix, "counts"), 1);
    CHECK(cJSON_GetArrayItem(row1, 0)->valueint == 2 && cJSON_GetArrayItem(row1, 1)->valueint == 2 &&
              cJSON_GetArrayItem(row1, 2)->valueint == 0,
          "matrix row 1 differs");
    cJSON_Delete(back);
    free(printed);
    cJSON_Delete(summary);
    /* Without ids and names the fields are left out; an empty matrix has a null accuracy. */
    ct_confusion *empty = ct_confusion_new(3);
    ct_classification_report er;
    CHECK(ct_classification_report_compute(empty, &er) == 0, "%s", ct_last_error());
    cJSON *bare = ct_classification_report_json(&er, empty, NULL, NULL);
    CHECK(cJSON_IsNull(cJSON_GetObjectItem(bare, "accuracy")), "empty accuracy is not null");
    CHECK(cJSON_IsNull(cJSON_GetObjectItem(bare, "macro_f1")), "empty macro F1 is not null");
    CHECK(!cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(bare, "labels"), 0), "id"), "id without ids");
    cJSON_Delete(bare);
    ct_classification_report_free(&er);
    ct_confusion_free(empty);
    ct_classification_report_free(&r);
    ct_confusion_free(c);
}

/* Terminal columns of a UTF-8 line whose non-ASCII characters are all CJK (3 bytes, 2 columns). */
static int cjk_line_width(const char *line, size_t n) {
    int width = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char b = (unsigned char)line[i];
        if (b < 0x80) width += 1;
        else if (b >= 0xE0 && b < 0xF0) width += 2;
    }
    return width;
}

static void test_table(void) {
    ct_confusion *c = hand_example();
    ct_classification_report r;
    CHECK(ct_classification_report_compute(c, &r) == 0, "%s", ct_last_error());
    FILE *f = tmpfile();
    CHECK(ct_classification_report_print(&r, c, names3, f) == 0, "%s", ct_last_error());
    long n = ftell(f);
    rewind(f);
    char *text = calloc((size_t)n + 1, 1);
    CHECK(fread(text, 1, (size_t)n, f) == (size_t)n, "cannot read the table back");
    fclose(f);
    for (int k = 0; k < 3; k++) CHECK(strstr(text, names3[k]) != NULL, "table lacks %s", names3[k]);
    CHECK(strstr(text, "0.6111") != NULL, "table lacks the macro F1 0.6111:\n%s", text);
    CHECK(strstr(text, "   0    3    1    0") || strstr(text, "   0 3 1 0"), "table lacks matrix row 0:\n%s", text);
    /* The header, 3 class rows, macro and accuracy lines all end in the same column. */
    int widths[6], lines = 0;
    for (const char *line = text; *line && lines < 6; lines++) {
        const char *end = strchr(line, '\n');
        widths[lines] = cjk_line_width(line, (size_t)(end - line));
        line = end + 1;
    }
    int aligned = lines == 6;
    for (int i = 1; i < lines; i++) aligned &= widths[i] == widths[0];
    CHECK(aligned, "table rows are not aligned:\n%s", text);
    free(text);
    ct_classification_report_free(&r);
    ct_confusion_free(c);
}

/* Three batches: (3.5 nats, 2 tokens), (1.25, 3), (0, 0): mean = 4.75 / 5 = 0.95 nats per token,
 * perplexity = e^0.95 = 2.585709659315846 (Python math.exp). */
static void test_perplexity(void) {
    ct_perplexity acc = {0};
    CHECK(ct_perplexity_add(&acc, 3.5, 2) == 0 && ct_perplexity_add(&acc, 1.25, 3) == 0 &&
              ct_perplexity_add(&acc, 0.0, 0) == 0,
          "%s", ct_last_error());
    double mean = 0, ppl = 0;
    CHECK(ct_perplexity_result(&acc, &mean, &ppl) == 0, "%s", ct_last_error());
    CHECK(close_to(mean, 0.95) && close_to(ppl, 2.585709659315846), "mean %.17g ppl %.17g", mean, ppl);
    ct_perplexity before = acc;
    CHECK(ct_perplexity_add(&acc, NAN, 3) == -1 && strstr(ct_last_error(), "nan"), "NaN NLL: '%s'", ct_last_error());
    CHECK(ct_perplexity_add(&acc, -0.5, 3) == -1 && strstr(ct_last_error(), "-0.5"), "negative NLL accepted");
    CHECK(ct_perplexity_add(&acc, 1.0, -4) == -1 && strstr(ct_last_error(), "-4 tokens"), "negative count accepted");
    CHECK(acc.nll_sum == before.nll_sum && acc.tokens == before.tokens, "a rejected batch changed the sums");
    ct_perplexity none = {0};
    CHECK(ct_perplexity_result(&none, &mean, &ppl) == -1 && strstr(ct_last_error(), "no token"), "'%s'",
          ct_last_error());
}

static void test_bad_labels(void) {
    ct_clear_error();
    CHECK(ct_confusion_new(0) == NULL && strstr(ct_last_error(), "0 classes"), "'%s'", ct_last_error());
    ct_confusion *c = ct_confusion_new(5);
    CHECK(ct_confusion_add(c, 5, 1) == -1 && strstr(ct_last_error(), "true label 5 is outside [0, 5)"), "'%s'",
          ct_last_error());
    CHECK(ct_confusion_add(c, 2, -1) == -1 && strstr(ct_last_error(), "predicted label -1"), "'%s'", ct_last_error());
    CHECK(c->total == 0 && c->correct == 0, "a rejected pair was counted");
    ct_confusion *other = hand_example();
    ct_classification_report r;
    CHECK(ct_classification_report_compute(other, &r) == 0, "%s", ct_last_error());
    CHECK(ct_classification_report_json(&r, c, NULL, NULL) == NULL && strstr(ct_last_error(), "3 classes"),
          "mismatched report accepted: '%s'", ct_last_error());
    ct_classification_report_free(&r);
    ct_confusion_free(other);
    ct_confusion_free(c);
}

int main(void) {
    test_hand_example();
    test_fixture();
    test_json_summary();
    test_table();
    test_perplexity();
    test_bad_labels();
    return ct_test_finish("test_eval_metrics");
}
