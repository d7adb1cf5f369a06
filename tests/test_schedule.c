/* Learning-rate schedules: every step of transformers' own schedules (a fixture written by
 * tests/reference/make_schedule_fixture.py), the min_lr_ratio formula against hand-derived values,
 * the hold past the end, resume exactness, and the message of each bad setting. */
#include <cjson/cJSON.h>
#include <math.h>
#include <string.h>

#include "core/error.h"
#include "tests/ct_test.h"
#include "train/schedule.h"

/* |a - b| relative to the larger magnitude (absolute near zero). */
static double rel_diff(double a, double b) {
    double scale = fmax(fabs(a), fabs(b));
    return scale > 1e-300 ? fabs(a - b) / scale : fabs(a - b);
}

static void check_case(const cJSON *c) {
    const char *kind_name = cJSON_GetObjectItem(c, "kind")->valuestring;
    double base_lr = cJSON_GetObjectItem(c, "base_lr")->valuedouble;
    int64_t warmup = (int64_t)cJSON_GetObjectItem(c, "warmup_steps")->valuedouble;
    int64_t total = (int64_t)cJSON_GetObjectItem(c, "total_steps")->valuedouble;
    double ratio = cJSON_GetObjectItem(c, "min_lr_ratio")->valuedouble;
    const cJSON *lrs = cJSON_GetObjectItem(c, "lrs");
    ct_schedule_kind kind;
    ct_schedule s;
    CHECK(ct_schedule_kind_parse(kind_name, &kind) == 0, "%s", ct_last_error());
    CHECK(ct_schedule_init(&s, kind, base_lr, warmup, total, ratio) == 0, "%s", ct_last_error());
    double worst = 0;
    int64_t worst_step = -1, step = 0;
    const cJSON *lr;
    cJSON_ArrayForEach(lr, lrs) {
        double d = rel_diff(ct_schedule_lr(&s, step), lr->valuedouble);
        if (d > worst) worst = d, worst_step = step;
        step++;
    }
    CHECK(step > total, "%s fixture has %lld steps, expected more than %lld", kind_name, (long long)step,
          (long long)total);
    CHECK(worst < 1e-13, "%s warmup %lld total %lld ratio %g: step %lld differs from transformers by %.3g", kind_name,
          (long long)warmup, (long long)total, ratio, (long long)worst_step, worst);
}

static void test_against_transformers(void) {
    char *text = ct_test_read_file(ct_test_path("tests/fixtures/schedule/schedules.json"), NULL);
    CHECK(text != NULL, "cannot read the schedule fixture");
    if (!text) return;
    cJSON *root = cJSON_Parse(text);
    const cJSON *cases = cJSON_GetObjectItem(root, "cases"), *c;
    int n = 0;
    cJSON_ArrayForEach(c, cases) {
        check_case(c);
        n++;
    }
    CHECK(n == 14, "fixture has %d cases, expected 14", n);
    cJSON_Delete(root);
    free(text);
}

/* Hand derivations, W = 4 warmup, T = 24 total, so the decay phase has 20 steps:
 *   step 2 (warmup): 2/4 = 0.5, whatever the kind or ratio.
 *   linear, r = 0.25, step 14: p = 10/20 = 0.5, factor = 0.25 + 0.75 * 0.5 = 0.625.
 *   cosine, r = 0.25, step 9: p = 5/20 = 0.25, cos(pi/4) = sqrt(2)/2,
 *     factor = 0.25 + 0.75 * 0.5 * (1 + sqrt(2)/2) = 0.25 + 0.375 * 1.70710678... = 0.890165043...
 *   both at step 24 and every step after: factor = r = 0.25 (the cosine holds; it does not rise). */
static void test_min_lr_ratio_by_hand(void) {
    ct_schedule lin, cosine;
    CHECK(ct_schedule_init(&lin, CT_SCHEDULE_LINEAR, 2.0, 4, 24, 0.25) == 0, "%s", ct_last_error());
    CHECK(ct_schedule_init(&cosine, CT_SCHEDULE_COSINE, 2.0, 4, 24, 0.25) == 0, "%s", ct_last_error());
    CHECK(fabs(ct_schedule_factor(&lin, 2) - 0.5) < 1e-15, "warmup factor %.17g", ct_schedule_factor(&lin, 2));
    CHECK(fabs(ct_schedule_factor(&cosine, 2) - 0.5) < 1e-15, "warmup factor %.17g", ct_schedule_factor(&cosine, 2));
    CHECK(fabs(ct_schedule_factor(&lin, 14) - 0.625) < 1e-15, "linear mid %.17g", ct_schedule_factor(&lin, 14));
    CHECK(fabs(ct_schedule_lr(&lin, 14) - 1.25) < 1e-15, "linear lr %.17g", ct_schedule_lr(&lin, 14));
    double expected = 0.25 + 0.375 * (1.0 + sqrt(2.0) / 2.0);
    CHECK(fabs(ct_schedule_factor(&cosine, 9) - expected) < 1e-15, "cosine quarter %.17g vs %.17g",
          ct_schedule_factor(&cosine, 9), expected);
    CHECK(fabs(expected - 0.890165043) < 1e-9, "hand value %.12g", expected);
    for (int64_t step = 24; step < 200; step += 7) {
        CHECK(fabs(ct_schedule_factor(&lin, step) - 0.25) < 1e-15, "linear past end %lld: %.17g", (long long)step,
              ct_schedule_factor(&lin, step));
        CHECK(fabs(ct_schedule_factor(&cosine, step) - 0.25) < 1e-15, "cosine past end %lld: %.17g", (long long)step,
              ct_schedule_factor(&cosine, step));
    }
    CHECK(ct_schedule_factor(&cosine, -3) == 0.0, "a negative step counts as step 0");
}

/* Monotone: warmup never decreases, decay never increases. Odd sizes, every kind. */
static void test_shape(void) {
    for (int kind = CT_SCHEDULE_CONSTANT; kind <= CT_SCHEDULE_COSINE; kind++) {
        ct_schedule s;
        CHECK(ct_schedule_init(&s, (ct_schedule_kind)kind, 7e-4, 13, 97, 0.05) == 0, "%s", ct_last_error());
        int ok = 1;
        for (int64_t step = 1; step <= 120; step++) {
            double before = ct_schedule_lr(&s, step - 1), now = ct_schedule_lr(&s, step);
            if (step <= 13 ? now < before : now > before) ok = 0;
        }
        CHECK(ok, "%s is not monotone on each side of its peak", ct_schedule_kind_name(s.kind));
        CHECK(ct_schedule_lr(&s, 13) == 7e-4, "%s peak %.17g", ct_schedule_kind_name(s.kind), ct_schedule_lr(&s, 13));
    }
}

/* A resumed run rebuilds the schedule from the recipe and asks for the same steps: the values are
 * bit-identical to the ones the uninterrupted run used. */
static void test_resume_is_exact(void) {
    ct_schedule first, resumed;
    CHECK(ct_schedule_init(&first, CT_SCHEDULE_COSINE, 3.3e-4, 17, 211, 0.1) == 0, "%s", ct_last_error());
    double lrs[211];
    for (int step = 0; step < 211; step++) lrs[step] = ct_schedule_lr(&first, step);
    CHECK(ct_schedule_init(&resumed, CT_SCHEDULE_COSINE, 3.3e-4, 17, 211, 0.1) == 0, "%s", ct_last_error());
    int same = 1;
    for (int step = 173; step < 211; step++) same &= memcmp(&lrs[step], &(double){ct_schedule_lr(&resumed, step)}, 8) == 0;
    CHECK(same, "a resumed schedule gives different learning rates");
}

static void expect_init_error(const char *what, ct_schedule_kind kind, double lr, int64_t warmup, int64_t total,
                              double ratio, const char *needle) {
    ct_schedule s = {0};
    ct_clear_error();
    CHECK(ct_schedule_init(&s, kind, lr, warmup, total, ratio) == -1, "%s: accepted", what);
    CHECK(strstr(ct_last_error(), needle) != NULL, "%s: message '%s' lacks '%s'", what, ct_last_error(), needle);
    CHECK(strchr(ct_last_error(), '\n') == NULL, "%s: message is not one line", what);
}

static void test_bad_settings(void) {
    expect_init_error("zero total", CT_SCHEDULE_COSINE, 1e-3, 0, 0, 0, "total_steps = 0");
    expect_init_error("warmup past total", CT_SCHEDULE_LINEAR, 1e-3, 12, 11, 0, "warmup_steps = 12");
    expect_init_error("negative warmup", CT_SCHEDULE_LINEAR, 1e-3, -1, 11, 0, "warmup_steps = -1");
    expect_init_error("ratio above one", CT_SCHEDULE_COSINE, 1e-3, 1, 11, 1.5, "min_lr_ratio = 1.5");
    expect_init_error("NaN ratio", CT_SCHEDULE_COSINE, 1e-3, 1, 11, NAN, "min_lr_ratio");
    expect_init_error("negative lr", CT_SCHEDULE_CONSTANT, -1e-3, 1, 11, 0, "lr = -0.001");
    expect_init_error("infinite lr", CT_SCHEDULE_CONSTANT, INFINITY, 1, 11, 0, "lr = inf");
    expect_init_error("unknown kind", (ct_schedule_kind)7, 1e-3, 1, 11, 0, "unknown kind 7");
    ct_schedule_kind kind = CT_SCHEDULE_LINEAR;
    CHECK(ct_schedule_kind_parse("cosine_restarts", &kind) == -1 && kind == CT_SCHEDULE_LINEAR, "unknown name accepted");
    CHECK(strstr(ct_last_error(), "'cosine_restarts'") != NULL, "message '%s'", ct_last_error());
    for (int k = CT_SCHEDULE_CONSTANT; k <= CT_SCHEDULE_COSINE; k++)
        CHECK(ct_schedule_kind_parse(ct_schedule_kind_name((ct_schedule_kind)k), &kind) == 0 && (int)kind == k,
              "name of kind %d does not parse back", k);
}

int main(void) {
    test_against_transformers();
    test_min_lr_ratio_by_hand();
    test_shape();
    test_resume_is_exact();
    test_bad_settings();
    return ct_test_finish("test_schedule");
}
