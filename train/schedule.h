/* Learning-rate schedules: constant, linear decay or cosine decay, each after a linear warmup.
 *
 * lr(step) = base_lr * factor(step), where step counts the updates already taken (the optimizer's
 * step before the update, starting at 0). With W warmup steps, T total steps and r = min_lr_ratio:
 *
 *   warmup   (step < W):  factor = step / max(1, W)          (so the first update has lr 0 when W > 0)
 *   progress p = min(1, (step - W) / max(1, T - W))
 *   constant:             factor = 1
 *   linear:               factor = r + (1 - r) * (1 - p)
 *   cosine:               factor = r + (1 - r) * 0.5 * (1 + cos(pi * p))
 *
 * With r = 0 this is, step for step, transformers' get_constant_schedule_with_warmup,
 * get_linear_schedule_with_warmup and get_cosine_schedule_with_warmup (num_cycles 0.5); with
 * r > 0 the cosine is its get_cosine_with_min_lr_schedule_with_warmup (min_lr_rate = r), and the
 * linear one ends at r the same way. One difference, on purpose: past T the cosine holds its final
 * value (p is clamped to 1) where transformers' cosine climbs back up.
 *
 * The schedule has no state besides the step the caller passes, so a resumed run gets exactly the
 * learning rates of an uninterrupted one. */
#ifndef CT_SCHEDULE_H
#define CT_SCHEDULE_H

#include <stdint.h>

typedef enum {
    CT_SCHEDULE_CONSTANT,
    CT_SCHEDULE_LINEAR,
    CT_SCHEDULE_COSINE,
} ct_schedule_kind;

typedef struct {
    ct_schedule_kind kind;
    double base_lr;       /* the peak learning rate, reached at the end of warmup */
    int64_t warmup_steps; /* 0 <= warmup_steps <= total_steps */
    int64_t total_steps;  /* the number of updates of the whole run, >= 1 */
    double min_lr_ratio;  /* final lr / base_lr for linear and cosine, in [0, 1] */
} ct_schedule;

/* Fills *schedule after checking every value; a bad one is an error naming it and its range. */
int ct_schedule_init(ct_schedule *schedule, ct_schedule_kind kind, double base_lr, int64_t warmup_steps,
                     int64_t total_steps, double min_lr_ratio);

/* The multiplier of base_lr for the update taken at `step` (negative steps count as 0). */
double ct_schedule_factor(const ct_schedule *schedule, int64_t step);
double ct_schedule_lr(const ct_schedule *schedule, int64_t step);

/* "constant", "linear" or "cosine" (the recipe key's values) to the kind, and back. */
int ct_schedule_kind_parse(const char *name, ct_schedule_kind *kind);
const char *ct_schedule_kind_name(ct_schedule_kind kind);

#endif
