/* Training progress for a person watching: on a terminal one line redrawn in place,
 *
 *   step 120/600 [####................] loss 2.31 lr 3.0e-4 1234 tok/s ETA 1m12s
 *
 * at most about ten times a second (and always at the last step); into a file or a pipe, the same
 * line without the bar, once every log_every steps and at the last step, so logs stay short.
 *
 * ETA = (steps left) x (smoothed seconds per step): an exponential moving average (weight 0.1 on
 * the newest step, bias-corrected so the first steps are not pulled toward zero), which follows a
 * change of speed within a few dozen steps without jumping at every slow batch.
 *
 * The caller owns the stream (stderr in the CLI); this module only writes the lines to it. */
#ifndef CT_PROGRESS_H
#define CT_PROGRESS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct {
    FILE *out;
    int redraw;          /* 1: terminal (\r redraws with a bar); 0: plain lines */
    int64_t total_steps;
    int64_t log_every;   /* plain mode: a line every log_every steps */
    double min_interval; /* terminal mode: seconds between redraws (0.1) */
    /* state */
    int64_t last_step;   /* the step of the previous update (the start step before the first) */
    double last_time;    /* its time */
    double last_draw;    /* when the line was last drawn; -inf before the first */
    double step_time_avg; /* the moving average, not yet bias-corrected */
    double avg_weight;   /* 1 - 0.9^k after k observations: the bias correction */
    int line_open;       /* terminal mode: a drawn line is waiting for its newline */
} ct_progress;

/* Prepares progress for steps start_step+1 .. total_steps (start_step > 0 when resuming). Draws
 * in place when `out` is a terminal. log_every < 1 counts as 1. */
void ct_progress_init(ct_progress *progress, FILE *out, int64_t total_steps, int64_t start_step, int64_t log_every);
/* The same with the clock reading and the mode given: for tests and replays. */
void ct_progress_init_at(ct_progress *progress, FILE *out, int redraw, int64_t total_steps, int64_t start_step,
                         int64_t log_every, double now_s);

/* Reports that `step` updates are done; draws or prints when it is time. */
void ct_progress_update(ct_progress *progress, int64_t step, double loss, double lr, double tokens_per_s);
void ct_progress_update_at(ct_progress *progress, int64_t step, double loss, double lr, double tokens_per_s,
                           double now_s);

/* Ends a redrawn line with a newline, so other output (an eval report) starts on its own line;
 * the next update draws a new line. Does nothing in plain mode. Call it at the end too. */
void ct_progress_break(ct_progress *progress);

/* Seconds left at the smoothed rate; a negative number when there is no estimate yet. */
double ct_progress_eta_s(const ct_progress *progress, int64_t step);

/* The text of one line (no \r or newline): with_bar adds the [###...] bar. Returns its length. */
size_t ct_progress_format(const ct_progress *progress, char *buf, size_t n, int with_bar, int64_t step, double loss,
                          double lr, double tokens_per_s);

/* "45s", "1m12s", "2h05m", "3d04h"; "?" for a negative or non-finite time. */
void ct_format_duration(double seconds, char *buf, size_t n);

#endif
