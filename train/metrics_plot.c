/* plot.svg: the run log's loss and accuracy against step, drawn by hand as SVG 1.1 so a browser
 * shows it with nothing else installed. */
#include <errno.h>
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/atomic_file.h"
#include "core/paths.h"
#include "train/metrics_internal.h"

/* ---- plot.svg ----------------------------------------------------------------------------- */

enum { SVG_WIDTH = 900, SVG_HEIGHT = 640, PANEL_LEFT = 80, PANEL_WIDTH = 620, PANEL_HEIGHT = 230 };
static const int panel_tops[2] = {60, 360};
static const char *const palette[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf"};
#define PALETTE_SIZE ((int)(sizeof palette / sizeof palette[0]))

/* Values beyond this are left out like NaN: they would squash every other point into a line. */
static int plottable(double v) { return isfinite(v) && fabs(v) <= 1e200; }

typedef struct {
    double lo, hi, step; /* axis range and tick spacing; lo and hi are multiples of step */
} axis;

/* Ticks at 1, 2 or 5 times a power of ten, about five of them. The y axes widen to whole ticks;
 * the step axis (whole_numbers) ends at the last step, so a run of 10,007 steps fills its width. */
static axis nice_axis(double lo, double hi, int whole_numbers) {
    if (!(hi > lo)) {
        double pad = lo != 0 ? fabs(lo) * 0.1 : 0.5;
        lo -= pad, hi += pad;
    }
    double raw = (hi - lo) / 5, magnitude = pow(10, floor(log10(raw))), ratio = raw / magnitude;
    double step = (ratio < 1.5 ? 1 : ratio < 3 ? 2 : ratio < 7 ? 5 : 10) * magnitude;
    if (whole_numbers && step < 1) step = 1;
    return (axis){floor(lo / step) * step, whole_numbers ? hi : ceil(hi / step) * step, step};
}

static void format_tick(double value, double step, char *buf, size_t n) {
    if (fabs(value) < step * 1e-6) value = 0; /* no "-0" or 1e-17 at the origin */
    int decimals = step >= 1 ? 0 : (int)ceil(-log10(step) - 1e-9);
    if (fabs(value) >= 1e7 || decimals > 6) snprintf(buf, n, "%g", value);
    else snprintf(buf, n, "%.*f", decimals, value);
}

typedef struct {
    axis x, y;
    double top;
} panel;

static double panel_x(const panel *p, double x) {
    double t = (x - p->x.lo) / (p->x.hi - p->x.lo);
    return PANEL_LEFT + PANEL_WIDTH * fmin(1.0, fmax(0.0, t));
}

static double panel_y(const panel *p, double y) {
    double t = (y - p->y.lo) / (p->y.hi - p->y.lo);
    return p->top + PANEL_HEIGHT * (1.0 - fmin(1.0, fmax(0.0, t)));
}

static void write_escaped(FILE *out, const char *text) {
    for (const char *c = text; *c; c++) {
        switch (*c) {
        case '&': fputs("&amp;", out); break;
        case '<': fputs("&lt;", out); break;
        case '>': fputs("&gt;", out); break;
        case '"': fputs("&quot;", out); break;
        default: fputc((unsigned char)*c < 0x20 ? '?' : *c, out); /* control characters are not XML */
        }
    }
}

static void draw_frame(FILE *out, const panel *p, const char *y_label) {
    char label[48];
    double bottom = p->top + PANEL_HEIGHT;
    int nx = (int)floor((p->x.hi - p->x.lo) / p->x.step + 1e-9), ny = (int)lround((p->y.hi - p->y.lo) / p->y.step);
    for (int i = 0; i <= ny; i++) {
        double v = p->y.lo + i * p->y.step, y = panel_y(p, v);
        format_tick(v, p->y.step, label, sizeof label);
        fprintf(out, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" class=\"grid\"/>\n", PANEL_LEFT, y,
                PANEL_LEFT + PANEL_WIDTH, y);
        fprintf(out, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n", PANEL_LEFT - 6, y + 4, label);
    }
    for (int i = 0; i <= nx; i++) {
        double v = p->x.lo + i * p->x.step, x = panel_x(p, v);
        format_tick(v, p->x.step, label, sizeof label);
        fprintf(out, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" class=\"axis\"/>\n", x, bottom, x,
                bottom + 5);
        fprintf(out, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>\n", x, bottom + 18, label);
    }
    fprintf(out, "<rect x=\"%d\" y=\"%.1f\" width=\"%d\" height=\"%d\" class=\"frame\"/>\n", PANEL_LEFT, p->top,
            PANEL_WIDTH, PANEL_HEIGHT);
    fprintf(out, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"middle\">step</text>\n", PANEL_LEFT + PANEL_WIDTH / 2,
            bottom + 36);
    double mid = p->top + PANEL_HEIGHT / 2.0;
    fprintf(out, "<text x=\"24\" y=\"%.1f\" text-anchor=\"middle\" transform=\"rotate(-90 24 %.1f)\">%s</text>\n",
            mid, mid, y_label);
}

/* A polyline through the plottable points, broken at the others. A series with many more points
 * than pixels keeps, per pixel column, its lowest and highest point, so spikes stay visible. */
typedef struct {
    FILE *out;
    const char *style;
    int open;
    double column, low, high; /* the pixel column being gathered and its y extent */
    int gathering;
} line_writer;

static void line_point(line_writer *w, double x, double y) {
    if (!w->open) fprintf(w->out, "<polyline %s points=\"", w->style), w->open = 1;
    fprintf(w->out, "%.1f,%.1f ", x, y);
}

static void line_flush_column(line_writer *w) {
    if (!w->gathering) return;
    line_point(w, w->column, w->low);
    if (w->high != w->low) line_point(w, w->column, w->high);
    w->gathering = 0;
}

static void line_break(line_writer *w) {
    line_flush_column(w);
    if (w->open) fputs("\"/>\n", w->out);
    w->open = 0;
}

static void draw_series(FILE *out, const panel *p, const double *xs, const double *ys, size_t n, const char *style) {
    line_writer w = {.out = out, .style = style};
    int decimate = n > 4 * PANEL_WIDTH;
    for (size_t i = 0; i < n; i++) {
        if (!plottable(ys[i])) {
            line_break(&w);
            continue;
        }
        double x = panel_x(p, xs[i]), y = panel_y(p, ys[i]);
        if (!decimate) {
            line_point(&w, x, y);
            continue;
        }
        double column = floor(x);
        if (w.gathering && column != w.column) line_flush_column(&w);
        if (!w.gathering) w.gathering = 1, w.column = column, w.low = w.high = y;
        w.low = fmin(w.low, y), w.high = fmax(w.high, y);
    }
    line_break(&w);
}

static void draw_markers(FILE *out, const panel *p, const double *xs, const double *ys, size_t n, const char *color) {
    if (n > 400) return; /* a line is clearer than a smear of dots */
    for (size_t i = 0; i < n; i++)
        if (plottable(ys[i]))
            fprintf(out, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\" fill=\"%s\"/>\n", panel_x(p, xs[i]),
                    panel_y(p, ys[i]), color);
}

static void draw_legend_entry(FILE *out, const panel *p, int row, const char *color, int dashed, const char *what,
                              const char *split) {
    double x = PANEL_LEFT + PANEL_WIDTH + 16, y = p->top + 14 + 18 * row;
    if (y > p->top + PANEL_HEIGHT) return; /* more series than room: the lines are still drawn */
    fprintf(out, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"2\"%s/>\n", x,
            y - 4, x + 22, y - 4, color, dashed ? " stroke-dasharray=\"5 3\"" : "");
    fprintf(out, "<text x=\"%.1f\" y=\"%.1f\">%s", x + 28, y, what);
    if (split) fputs(" (", out), write_escaped(out, split), fputc(')', out);
    fputs("</text>\n", out);
}

/* One split's values of one eval field, gathered into xs / ys (n_eval long). */
static size_t gather_eval(const ct_run_log *log, int split, unsigned field, double *xs, double *ys) {
    size_t n = 0;
    for (size_t i = 0; i < log->n_eval; i++) {
        const eval_point *e = &log->eval[i];
        if (e->split != split || !(e->present & field)) continue;
        xs[n] = (double)e->step;
        ys[n++] = field == CT_EVAL_ACCURACY ? e->accuracy
                  : field == CT_EVAL_LOSS   ? e->loss
                                            : e->accuracy_length_normalized;
    }
    return n;
}

static void draw_empty_note(FILE *out, const panel *p, const char *note) {
    fprintf(out, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"middle\" class=\"note\">%s</text>\n",
            PANEL_LEFT + PANEL_WIDTH / 2, p->top + PANEL_HEIGHT / 2.0, note);
}

static void draw_loss_panel(FILE *out, const ct_run_log *log, panel *p, double *xs, double *ys) {
    double lo = INFINITY, hi = -INFINITY;
    for (size_t i = 0; i < log->n_train; i++)
        if (plottable(log->train[i].loss)) lo = fmin(lo, log->train[i].loss), hi = fmax(hi, log->train[i].loss);
    for (size_t i = 0; i < log->n_eval; i++)
        if ((log->eval[i].present & CT_EVAL_LOSS) && plottable(log->eval[i].loss))
            lo = fmin(lo, log->eval[i].loss), hi = fmax(hi, log->eval[i].loss);
    int empty = lo > hi;
    p->y = nice_axis(empty ? 0 : lo, empty ? 1 : hi, 0);
    draw_frame(out, p, "loss");
    if (empty) {
        draw_empty_note(out, p, "no loss recorded yet");
        return;
    }
    for (size_t i = 0; i < log->n_train; i++) xs[i] = (double)log->train[i].step, ys[i] = log->train[i].loss;
    int row = 0;
    if (log->n_train > 0) {
        draw_series(out, p, xs, ys, log->n_train, "class=\"train\"");
        draw_legend_entry(out, p, row++, palette[0], 0, "train", NULL);
    }
    for (int s = 0; s < log->n_splits; s++) {
        size_t n = gather_eval(log, s, CT_EVAL_LOSS, xs, ys);
        if (n == 0) continue;
        const char *color = palette[1 + s % (PALETTE_SIZE - 1)];
        char style[64];
        snprintf(style, sizeof style, "class=\"series\" stroke=\"%s\"", color);
        draw_series(out, p, xs, ys, n, style);
        draw_markers(out, p, xs, ys, n, color);
        draw_legend_entry(out, p, row++, color, 0, "eval", log->splits[s]);
    }
}

static void draw_accuracy_panel(FILE *out, const ct_run_log *log, panel *p, double *xs, double *ys) {
    p->y = (axis){0.0, 1.0, 0.2};
    draw_frame(out, p, "accuracy");
    int row = 0;
    for (int s = 0; s < log->n_splits; s++) {
        const char *color = palette[1 + s % (PALETTE_SIZE - 1)];
        for (int dashed = 0; dashed <= 1; dashed++) {
            size_t n = gather_eval(log, s, dashed ? CT_EVAL_ACCURACY_LENGTH_NORMALIZED : CT_EVAL_ACCURACY, xs, ys);
            if (n == 0) continue;
            char style[96];
            snprintf(style, sizeof style, "class=\"series\" stroke=\"%s\"%s", color,
                     dashed ? " stroke-dasharray=\"5 3\"" : "");
            draw_series(out, p, xs, ys, n, style);
            draw_markers(out, p, xs, ys, n, color);
            draw_legend_entry(out, p, row++, color, dashed, dashed ? "length-norm." : "accuracy", log->splits[s]);
        }
    }
    if (row == 0) draw_empty_note(out, p, "no accuracy recorded yet");
}

static const char *dir_name(const char *dir, char *buf, size_t n) {
    size_t len = strlen(dir);
    while (len > 1 && dir[len - 1] == '/') len--;
    size_t start = len;
    while (start > 0 && dir[start - 1] != '/') start--;
    snprintf(buf, n, "%.*s", (int)(len - start), dir + start);
    return buf;
}

static void write_svg(FILE *out, const ct_run_log *log, double *xs, double *ys) {
    double last_step = 1;
    for (size_t i = 0; i < log->n_train; i++) last_step = fmax(last_step, (double)log->train[i].step);
    for (size_t i = 0; i < log->n_eval; i++) last_step = fmax(last_step, (double)log->eval[i].step);
    panel loss = {.x = nice_axis(0, last_step, 1), .top = panel_tops[0]};
    panel accuracy = {.x = loss.x, .top = panel_tops[1]};
    char name[256];
    fprintf(out,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
            "font-family=\"sans-serif\" font-size=\"12\">\n"
            "<style>.grid{stroke:#e4e4e4}.axis{stroke:#333}.frame{fill:none;stroke:#333}"
            ".train{fill:none;stroke:#1f77b4;stroke-width:1.2}.series{fill:none;stroke-width:1.8}"
            ".note{fill:#888}</style>\n"
            "<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" fill=\"white\"/>\n"
            "<text x=\"%d\" y=\"30\" font-size=\"16\">",
            SVG_WIDTH, SVG_HEIGHT, SVG_WIDTH, SVG_HEIGHT, SVG_WIDTH, SVG_HEIGHT, PANEL_LEFT);
    write_escaped(out, dir_name(log->dir, name, sizeof name));
    fputs(": loss and accuracy</text>\n", out);
    draw_loss_panel(out, log, &loss, xs, ys);
    draw_accuracy_panel(out, log, &accuracy, xs, ys);
    fputs("</svg>\n", out);
}

int ct_run_log_plot(ct_run_log *log) {
    size_t n = (log->n_train > log->n_eval ? log->n_train : log->n_eval) + 1;
    double *xs = ct_malloc(n * sizeof *xs, "plot coordinates"), *ys = ct_malloc(n * sizeof *ys, "plot coordinates");
    char *final_path = ct_path_join(log->dir, "plot.svg"), *temp_path = NULL;
    int status = -1;
    FILE *out = xs && ys && final_path ? ct_atomic_fopen(final_path, &temp_path) : NULL;
    if (out) {
        write_svg(out, log, xs, ys);
        int failed = ferror(out);
        if (fclose(out) != 0 || failed) {
            ct_fail("run log: writing %s failed: %s; check free disk space", temp_path, strerror(errno));
            ct_atomic_discard(temp_path);
        } else {
            status = ct_atomic_commit(temp_path, final_path);
        }
    } else if (xs && ys && final_path) {
        ct_fail_context("run log: ");
    }
    free(xs);
    free(ys);
    free(final_path);
    free(temp_path);
    return status;
}
