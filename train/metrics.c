/* The run log: metrics.jsonl written with cJSON, its history kept in memory (and read back on
 * resume) for plot.svg. The file format and the resume rules are in metrics.h; the plot is drawn
 * by hand as SVG 1.1 so a browser shows it with nothing else installed. */
#include "train/metrics.h"

#include <errno.h>
#include <locale.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>

#include "autograd/error.h"
#include "checkpoints/atomic_file.h"

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

/* ---- numbers ---------------------------------------------------------------------------- */

/* The shortest of %.15g, %.16g, %.17g that reads back to the same double (17 always does). */
static void format_exact(double value, char *buf, size_t n) {
    for (int digits = 15; digits <= 17; digits++) {
        snprintf(buf, n, "%.*g", digits, value);
        if (strtod(buf, NULL) == value) break;
    }
    /* JSON wants '.', whatever LC_NUMERIC the program chose. */
    char point = localeconv()->decimal_point[0];
    if (point != '.')
        for (char *c = buf; *c; c++)
            if (*c == point) *c = '.';
}

void ct_json_add_exact_number(cJSON *object, const char *key, double value) {
    if (!isfinite(value)) {
        cJSON_AddNullToObject(object, key);
        return;
    }
    char buf[40];
    format_exact(value, buf, sizeof buf);
    cJSON_AddRawToObject(object, key, buf);
}

/* Adds the field; a non-finite value also goes into the record's "nonfinite" note. */
static void add_field(cJSON *record, cJSON **nonfinite, const char *key, double value) {
    ct_json_add_exact_number(record, key, value);
    if (isfinite(value)) return;
    if (!*nonfinite) *nonfinite = cJSON_CreateObject();
    cJSON_AddStringToObject(*nonfinite, key, isnan(value) ? "nan" : value > 0 ? "inf" : "-inf");
}

int64_t ct_peak_rss_bytes(void) {
    struct rusage usage;
    if (getrusage(RUSAGE_SELF, &usage) != 0) return -1;
    return (int64_t)usage.ru_maxrss * 1024; /* Linux reports kilobytes */
}

/* ---- history ---------------------------------------------------------------------------- */

static int grow(void **items, size_t *cap, size_t need, size_t item_size) {
    if (need <= *cap) return 0;
    size_t cap_new = *cap ? *cap * 2 : 256;
    while (cap_new < need) cap_new *= 2;
    void *grown = realloc(*items, cap_new * item_size);
    if (!grown) return ct_fail("run log: out of memory keeping %zu records for the plot", need);
    *items = grown;
    *cap = cap_new;
    return 0;
}

/* A step at or before the series' last one means a resumed run is logging it again: the later
 * record wins, so the points from that step on are dropped first. */
static int history_add_train(ct_run_log *log, int64_t step, double loss) {
    while (log->n_train > 0 && log->train[log->n_train - 1].step >= step) log->n_train--;
    CT_TRY(grow((void **)&log->train, &log->cap_train, log->n_train + 1, sizeof *log->train));
    log->train[log->n_train++] = (train_point){step, loss};
    return 0;
}

static int split_index(ct_run_log *log, const char *split) {
    for (int i = 0; i < log->n_splits; i++)
        if (!strcmp(log->splits[i], split)) return i;
    char **grown = realloc(log->splits, (size_t)(log->n_splits + 1) * sizeof *grown);
    char *copy = grown ? ct_strdup(split) : NULL;
    if (grown) log->splits = grown;
    if (!copy) return ct_fail("run log: out of memory for split name '%s'", split);
    log->splits[log->n_splits] = copy;
    return log->n_splits++;
}

static int history_add_eval(ct_run_log *log, const char *split, eval_point point) {
    point.split = split_index(log, split);
    if (point.split < 0) return -1;
    size_t kept = 0;
    for (size_t i = 0; i < log->n_eval; i++)
        if (log->eval[i].split != point.split || log->eval[i].step < point.step) log->eval[kept++] = log->eval[i];
    log->n_eval = kept;
    CT_TRY(grow((void **)&log->eval, &log->cap_eval, log->n_eval + 1, sizeof *log->eval));
    log->eval[log->n_eval++] = point;
    return 0;
}

/* ---- reading an earlier run's file back --------------------------------------------------- */

/* A number, or a null written for a non-finite value (its kind does not matter to the plot). */
static int read_value(const cJSON *record, const char *key, double *value) {
    const cJSON *item = cJSON_GetObjectItem(record, key);
    if (cJSON_IsNumber(item)) *value = item->valuedouble;
    else if (cJSON_IsNull(item)) *value = NAN;
    else return 0;
    return 1;
}

static int replay_eval(ct_run_log *log, const cJSON *record, int64_t step) {
    const cJSON *split = cJSON_GetObjectItem(record, "split");
    if (!cJSON_IsString(split) || !split->valuestring[0]) return ct_fail("an eval record without a split");
    eval_point point = {.step = step};
    if (read_value(record, "accuracy", &point.accuracy)) point.present |= CT_EVAL_ACCURACY;
    if (read_value(record, "accuracy_length_normalized", &point.accuracy_length_normalized))
        point.present |= CT_EVAL_ACCURACY_LENGTH_NORMALIZED;
    if (read_value(record, "loss", &point.loss)) point.present |= CT_EVAL_LOSS;
    return history_add_eval(log, split->valuestring, point);
}

/* Replays one complete line into the history. Records of other types ("start", or ones a later
 * version adds) are skipped. */
static int replay_line(ct_run_log *log, const char *line, size_t length) {
    cJSON *record = cJSON_ParseWithLength(line, length);
    if (!cJSON_IsObject(record)) {
        cJSON_Delete(record);
        return ct_fail("not a JSON object");
    }
    const cJSON *type = cJSON_GetObjectItem(record, "type"), *step = cJSON_GetObjectItem(record, "step");
    int status = 0;
    int is_train = cJSON_IsString(type) && !strcmp(type->valuestring, "train");
    int is_eval = cJSON_IsString(type) && !strcmp(type->valuestring, "eval");
    if ((is_train || is_eval) && !cJSON_IsNumber(step)) {
        status = ct_fail("a '%s' record has no step", type->valuestring);
    } else if ((is_train || is_eval) && !(step->valuedouble >= 0 && step->valuedouble <= 9007199254740992.0)) {
        status = ct_fail("a '%s' record has step %g, not a count of updates", type->valuestring,
                         step->valuedouble);
    } else if (is_train) {
        double loss = NAN;
        read_value(record, "loss", &loss);
        status = history_add_train(log, (int64_t)step->valuedouble, loss);
    } else if (is_eval) {
        status = replay_eval(log, record, (int64_t)step->valuedouble);
    }
    cJSON_Delete(record);
    return status;
}

static char *read_whole_file(FILE *f, size_t *length) {
    size_t cap = 1 << 16, n = 0;
    char *text = ct_malloc(cap, "reading the log back");
    while (text) {
        n += fread(text + n, 1, cap - n, f);
        if (n < cap) break;
        char *grown = realloc(text, cap * 2);
        if (!grown) {
            ct_fail("out of memory reading it back (%zu bytes so far)", n);
            free(text);
        }
        text = grown;
        cap *= 2;
    }
    if (text && ferror(f)) {
        ct_fail("read error: %s", strerror(errno));
        free(text);
        text = NULL;
    }
    *length = n;
    return text;
}

/* Reads an existing metrics.jsonl into the history. *cut_short is set when its last line has no
 * newline (a crash mid-write): that line is skipped and the next record starts a fresh line. */
static int load_history(ct_run_log *log, int *existed, int *cut_short) {
    FILE *f = fopen(log->path, "rb");
    if (!f) {
        if (errno == ENOENT) return 0;
        return ct_fail("run log: cannot read %s: %s; check its permissions", log->path, strerror(errno));
    }
    *existed = 1;
    size_t length = 0;
    char *text = read_whole_file(f, &length);
    fclose(f);
    if (!text) return ct_fail_context("run log: %s: ", log->path);
    int status = 0;
    int64_t line_number = 0;
    for (size_t start = 0; start < length && status == 0;) {
        char *end = memchr(text + start, '\n', length - start);
        line_number++;
        if (!end) {
            *cut_short = 1;
            break;
        }
        size_t line_length = (size_t)(end - (text + start));
        if (line_length > 0 && replay_line(log, text + start, line_length) < 0) {
            char reason[512];
            snprintf(reason, sizeof reason, "%s", ct_last_error());
            status = ct_fail("run log: %s line %lld: %s; move the file aside to start a fresh log", log->path,
                             (long long)line_number, reason);
        }
        start += line_length + 1;
    }
    free(text);
    return status;
}

/* ---- the file ------------------------------------------------------------------------- */

/* mkdir -p: each missing component is created; an existing one must be a directory. */
static int make_dirs(const char *dir) {
    char *path = ct_strdup(dir);
    if (!path) return -1;
    int status = 0;
    for (char *slash = path + 1;; slash++) {
        int last = *slash == '\0';
        if (*slash != '/' && !last) continue;
        *slash = '\0';
        struct stat st;
        if (mkdir(path, 0755) != 0 && errno != EEXIST)
            status = ct_fail("run log: cannot create directory %s: %s; check the run_dir path and its permissions",
                             path, strerror(errno));
        else if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
            status = ct_fail("run log: %s exists and is not a directory; choose another run_dir", path);
        if (last || status < 0) break;
        *slash = '/';
    }
    free(path);
    return status;
}

static int write_record(ct_run_log *log, cJSON *record) {
    char *text = record ? cJSON_PrintUnformatted(record) : NULL;
    cJSON_Delete(record);
    if (!text) return ct_fail("run log: out of memory formatting a record for %s", log->path);
    int ok = fputs(text, log->file) >= 0 && fputc('\n', log->file) != EOF && fflush(log->file) == 0;
    free(text);
    if (!ok) return ct_fail("run log: writing %s failed: %s; check free disk space", log->path, strerror(errno));
    return 0;
}

static char *join_path(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *path = ct_malloc(n, "a run directory path");
    if (path) snprintf(path, n, "%s/%s", dir, name);
    return path;
}

static void free_log(ct_run_log *log) {
    if (log->file) fclose(log->file);
    for (int i = 0; i < log->n_splits; i++) free(log->splits[i]);
    free(log->splits);
    free(log->train);
    free(log->eval);
    free(log->dir);
    free(log->path);
    free(log);
}

/* Opens for appending and marks the start; a cut-short last line is ended first. */
static int open_for_append(ct_run_log *log, int resumed, int cut_short) {
    log->file = fopen(log->path, "a");
    if (!log->file)
        return ct_fail("run log: cannot open %s for appending: %s; check its permissions", log->path, strerror(errno));
    if (cut_short && fputc('\n', log->file) == EOF)
        return ct_fail("run log: writing %s failed: %s", log->path, strerror(errno));
    cJSON *start = cJSON_CreateObject();
    cJSON_AddStringToObject(start, "type", "start");
    ct_json_add_exact_number(start, "unix_time", (double)time(NULL));
    cJSON_AddBoolToObject(start, "resumed", resumed);
    return write_record(log, start);
}

ct_run_log *ct_run_log_open(const char *run_dir) {
    if (!run_dir || !run_dir[0]) {
        ct_fail("run log: empty run_dir; set run_dir to the folder for this run's metrics");
        return NULL;
    }
    ct_run_log *log = ct_calloc(1, sizeof *log, "a run log");
    if (!log) return NULL;
    log->dir = ct_strdup(run_dir);
    log->path = log->dir ? join_path(run_dir, "metrics.jsonl") : NULL;
    int existed = 0, cut_short = 0;
    if (!log->path || make_dirs(run_dir) < 0 || load_history(log, &existed, &cut_short) < 0 ||
        open_for_append(log, existed, cut_short) < 0) {
        free_log(log);
        return NULL;
    }
    return log;
}

const char *ct_run_log_path(const ct_run_log *log) { return log->path; }

int ct_run_log_train(ct_run_log *log, const ct_train_record *r) {
    if (r->step < 0) return ct_fail("run log: train record with step %lld; steps count from 0", (long long)r->step);
    cJSON *record = cJSON_CreateObject(), *nonfinite = NULL;
    cJSON_AddStringToObject(record, "type", "train");
    ct_json_add_exact_number(record, "step", (double)r->step);
    add_field(record, &nonfinite, "loss", r->loss);
    add_field(record, &nonfinite, "lr", r->lr);
    add_field(record, &nonfinite, "grad_norm", r->grad_norm);
    add_field(record, &nonfinite, "tokens_per_s", r->tokens_per_s);
    ct_json_add_exact_number(record, "peak_memory_bytes", (double)r->peak_memory_bytes);
    add_field(record, &nonfinite, "elapsed_s", r->elapsed_s);
    if (nonfinite) cJSON_AddItemToObject(record, "nonfinite", nonfinite);
    CT_TRY(write_record(log, record));
    return history_add_train(log, r->step, r->loss);
}

int ct_run_log_eval(ct_run_log *log, const ct_eval_record *r) {
    if (r->step < 0) return ct_fail("run log: eval record with step %lld; steps count from 0", (long long)r->step);
    if (!r->split || !r->split[0]) return ct_fail("run log: eval record without a split name; name it (\"val\")");
    cJSON *record = cJSON_CreateObject(), *nonfinite = NULL;
    cJSON_AddStringToObject(record, "type", "eval");
    ct_json_add_exact_number(record, "step", (double)r->step);
    cJSON_AddStringToObject(record, "split", r->split);
    static const struct { unsigned bit; const char *key; size_t offset; } fields[] = {
        {CT_EVAL_ACCURACY, "accuracy", offsetof(ct_eval_record, accuracy)},
        {CT_EVAL_ACCURACY_LENGTH_NORMALIZED, "accuracy_length_normalized",
         offsetof(ct_eval_record, accuracy_length_normalized)},
        {CT_EVAL_MACRO_F1, "macro_f1", offsetof(ct_eval_record, macro_f1)},
        {CT_EVAL_PERPLEXITY, "perplexity", offsetof(ct_eval_record, perplexity)},
        {CT_EVAL_LOSS, "loss", offsetof(ct_eval_record, loss)},
    };
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        if (r->present & fields[i].bit)
            add_field(record, &nonfinite, fields[i].key, *(const double *)((const char *)r + fields[i].offset));
    if (nonfinite) cJSON_AddItemToObject(record, "nonfinite", nonfinite);
    CT_TRY(write_record(log, record));
    eval_point point = {.step = r->step, .present = r->present, .accuracy = r->accuracy,
                        .accuracy_length_normalized = r->accuracy_length_normalized, .loss = r->loss};
    return history_add_eval(log, r->split, point);
}

int ct_run_log_close(ct_run_log *log) {
    if (!log) return 0;
    int status = ct_run_log_plot(log);
    if (fclose(log->file) != 0 && status == 0)
        status = ct_fail("run log: closing %s failed: %s; check free disk space", log->path, strerror(errno));
    log->file = NULL;
    free_log(log);
    return status;
}

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
    char *final_path = join_path(log->dir, "plot.svg"), *temp_path = NULL;
    int status = -1;
    FILE *out = xs && ys && final_path ? ct_atomic_fopen(final_path, &temp_path) : NULL;
    if (out) {
        write_svg(out, log, xs, ys);
        int failed = ferror(out);
        if (fclose(out) != 0 || failed) {
            ct_fail("run log: writing %s failed: %s; check free disk space", temp_path, strerror(errno));
            remove(temp_path);
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
