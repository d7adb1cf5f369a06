/* The progress line; what it shows and when is described in progress.h. */
#include "train/progress.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { BAR_WIDTH = 20 };
static const double AVG_DECAY = 0.9; /* weight of the history in the step-time average */

static double monotonic_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void ct_progress_init_at(ct_progress *p, FILE *out, int redraw, int64_t total_steps, int64_t start_step,
                         int64_t log_every, double now_s) {
    memset(p, 0, sizeof *p);
    p->out = out;
    p->redraw = redraw;
    p->total_steps = total_steps;
    p->log_every = log_every < 1 ? 1 : log_every;
    p->min_interval = 0.1;
    p->last_step = start_step;
    p->last_time = now_s;
    p->last_draw = -INFINITY;
}

void ct_progress_init(ct_progress *p, FILE *out, int64_t total_steps, int64_t start_step, int64_t log_every) {
    ct_progress_init_at(p, out, isatty(fileno(out)), total_steps, start_step, log_every, monotonic_seconds());
}

void ct_format_duration(double seconds, char *buf, size_t n) {
    if (!(seconds >= 0) || !isfinite(seconds) || seconds > 1e9) {
        snprintf(buf, n, "?");
        return;
    }
    long long s = llround(seconds);
    if (s < 60) snprintf(buf, n, "%llds", s);
    else if (s < 3600) snprintf(buf, n, "%lldm%02llds", s / 60, s % 60);
    else if (s < 86400) snprintf(buf, n, "%lldh%02lldm", s / 3600, s % 3600 / 60);
    else snprintf(buf, n, "%lldd%02lldh", s / 86400, s % 86400 / 3600);
}

double ct_progress_eta_s(const ct_progress *p, int64_t step) {
    if (p->avg_weight <= 0) return -1;
    int64_t left = p->total_steps > step ? p->total_steps - step : 0;
    return (double)left * p->step_time_avg / p->avg_weight;
}

/* "3.0e-4": one decimal and no padded exponent, shorter than printf's "3.0e-04". */
static void format_lr(double lr, char *buf, size_t n) {
    char raw[32];
    snprintf(raw, sizeof raw, "%.1e", lr);
    char *e = strchr(raw, 'e');
    if (!e || !isfinite(lr)) {
        snprintf(buf, n, "%s", raw);
        return;
    }
    *e = '\0';
    snprintf(buf, n, "%.8se%d", raw, atoi(e + 1));
}

size_t ct_progress_format(const ct_progress *p, char *buf, size_t n, int with_bar, int64_t step, double loss,
                          double lr, double tokens_per_s) {
    char bar[BAR_WIDTH + 4] = "", lr_text[32], eta[32];
    if (with_bar) {
        double done = p->total_steps > 0 ? (double)step / (double)p->total_steps : 0;
        int filled = (int)(fmin(1.0, fmax(0.0, done)) * BAR_WIDTH);
        bar[0] = '[';
        for (int i = 0; i < BAR_WIDTH; i++) bar[1 + i] = i < filled ? '#' : '.';
        bar[BAR_WIDTH + 1] = ']';
        bar[BAR_WIDTH + 2] = ' ';
        bar[BAR_WIDTH + 3] = '\0';
    }
    format_lr(lr, lr_text, sizeof lr_text);
    ct_format_duration(ct_progress_eta_s(p, step), eta, sizeof eta);
    int len = snprintf(buf, n, "step %lld/%lld %sloss %.3g lr %s %.0f tok/s ETA %s", (long long)step,
                       (long long)p->total_steps, bar, loss, lr_text, tokens_per_s, eta);
    return len < 0 ? 0 : (size_t)len < n ? (size_t)len : n - 1;
}

/* Folds the time since the previous update into the average, spread over the steps it covered. */
static void observe(ct_progress *p, int64_t step, double now_s) {
    int64_t steps = step - p->last_step;
    if (steps > 0 && now_s >= p->last_time) {
        double per_step = (now_s - p->last_time) / (double)steps;
        p->step_time_avg = AVG_DECAY * p->step_time_avg + (1 - AVG_DECAY) * per_step;
        p->avg_weight = AVG_DECAY * p->avg_weight + (1 - AVG_DECAY);
    }
    p->last_step = step;
    p->last_time = now_s;
}

void ct_progress_update_at(ct_progress *p, int64_t step, double loss, double lr, double tokens_per_s, double now_s) {
    observe(p, step, now_s);
    int last = step >= p->total_steps;
    char line[256];
    if (p->redraw) {
        if (!last && now_s - p->last_draw < p->min_interval) return;
        ct_progress_format(p, line, sizeof line, 1, step, loss, lr, tokens_per_s);
        fprintf(p->out, "\r%s\033[K", line); /* \033[K clears what a longer previous line left */
        p->line_open = 1;
        if (last) ct_progress_break(p);
    } else {
        if (!last && step % p->log_every != 0) return;
        ct_progress_format(p, line, sizeof line, 0, step, loss, lr, tokens_per_s);
        fprintf(p->out, "%s\n", line);
    }
    p->last_draw = now_s;
    fflush(p->out);
}

void ct_progress_update(ct_progress *p, int64_t step, double loss, double lr, double tokens_per_s) {
    ct_progress_update_at(p, step, loss, lr, tokens_per_s, monotonic_seconds());
}

void ct_progress_break(ct_progress *p) {
    if (!p->line_open) return;
    fputc('\n', p->out);
    fflush(p->out);
    p->line_open = 0;
}
