/* Learning-rate schedules; the formulas are in schedule.h. The arithmetic follows transformers'
 * order of operations (a float division, then the cosine), so with min_lr_ratio 0 the factors
 * agree with its lambdas to the last bit or two. */
#include "train/schedule.h"

#include <math.h>
#include <string.h>

#include "core/error.h"

static const char *const kind_names[] = {"constant", "linear", "cosine"};

int ct_schedule_init(ct_schedule *schedule, ct_schedule_kind kind, double base_lr, int64_t warmup_steps,
                     int64_t total_steps, double min_lr_ratio) {
    if ((int)kind < CT_SCHEDULE_CONSTANT || kind > CT_SCHEDULE_COSINE)
        return ct_fail("lr schedule: unknown kind %d; use constant, linear or cosine", (int)kind);
    if (!isfinite(base_lr) || base_lr < 0)
        return ct_fail("lr schedule: lr = %g is not a finite number >= 0; set the recipe's lr", base_lr);
    if (total_steps < 1)
        return ct_fail("lr schedule: total_steps = %lld must be at least 1; set the run's step count",
                       (long long)total_steps);
    if (warmup_steps < 0 || warmup_steps > total_steps)
        return ct_fail("lr schedule: warmup_steps = %lld must be in [0, total_steps = %lld]", (long long)warmup_steps,
                       (long long)total_steps);
    if (!(min_lr_ratio >= 0 && min_lr_ratio <= 1))
        return ct_fail("lr schedule: min_lr_ratio = %g must be in [0, 1]", min_lr_ratio);
    schedule->kind = kind;
    schedule->base_lr = base_lr;
    schedule->warmup_steps = warmup_steps;
    schedule->total_steps = total_steps;
    schedule->min_lr_ratio = min_lr_ratio;
    return 0;
}

/* max(1, n) as a double: transformers' guard against an empty warmup or decay phase. */
static double at_least_one(int64_t n) { return (double)(n > 1 ? n : 1); }

/* 1 at the end of warmup, 0 at total_steps and after. transformers writes (T - step) / (T - W),
 * which is 1 - progress up to rounding; its form keeps the two bit-close. */
static double linear_decay(const ct_schedule *s, int64_t step) {
    if (step >= s->total_steps) return 0.0;
    return (double)(s->total_steps - step) / at_least_one(s->total_steps - s->warmup_steps);
}

/* 1 at the end of warmup, 0 at total_steps; held at 0 after it. */
static double cosine_decay(const ct_schedule *s, int64_t step) {
    double progress = (double)(step - s->warmup_steps) / at_least_one(s->total_steps - s->warmup_steps);
    if (progress > 1.0) progress = 1.0;
    return 0.5 * (1.0 + cos(M_PI * progress));
}

double ct_schedule_factor(const ct_schedule *s, int64_t step) {
    if (step < 0) step = 0;
    if (step < s->warmup_steps) return (double)step / at_least_one(s->warmup_steps);
    double decay;
    switch (s->kind) {
    case CT_SCHEDULE_LINEAR: decay = linear_decay(s, step); break;
    case CT_SCHEDULE_COSINE: decay = cosine_decay(s, step); break;
    default: return 1.0;
    }
    double factor = decay * (1.0 - s->min_lr_ratio) + s->min_lr_ratio;
    return factor > 0.0 ? factor : 0.0;
}

double ct_schedule_lr(const ct_schedule *schedule, int64_t step) {
    return schedule->base_lr * ct_schedule_factor(schedule, step);
}

int ct_schedule_kind_parse(const char *name, ct_schedule_kind *kind) {
    for (int k = 0; k < (int)(sizeof kind_names / sizeof kind_names[0]); k++) {
        if (name && !strcmp(name, kind_names[k])) {
            *kind = (ct_schedule_kind)k;
            return 0;
        }
    }
    return ct_fail("lr schedule: unknown name '%s'; use constant, linear or cosine", name ? name : "(null)");
}

const char *ct_schedule_kind_name(ct_schedule_kind kind) {
    return (int)kind >= 0 && kind <= CT_SCHEDULE_COSINE ? kind_names[kind] : "unknown";
}
