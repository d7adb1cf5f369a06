/* The run log and the progress line: metrics.jsonl lines parse back with cJSON to the same
 * doubles bit for bit (NaN and infinities as null plus a note), resume appends and the plot keeps
 * the later record of a step, a line cut short by a crash is skipped, a corrupt file or a run_dir
 * that is a file is refused with nothing changed; plot.svg is well-formed XML (a small tag checker
 * below) with every coordinate inside its view box. Progress: the line's text, its redraw rate
 * on a terminal, plain lines every log_every steps, and the smoothed ETA. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"
#include "core/rng.h"
#include "tests/ct_test.h"
#include "train/metrics.h"
#include "train/progress.h"

static char dir[64];
static ct_rng rng;

static const char *in_dir(const char *name) { return ct_test_path_in(dir, name); }

static void write_text(const char *path, const char *text, const char *mode) {
    FILE *f = fopen(path, mode);
    if (f) fputs(text, f), fclose(f);
}

static int same_bits(double a, double b) { return memcmp(&a, &b, sizeof a) == 0; }

/* ---- a small XML checker ------------------------------------------------------------------ */

/* Well-formedness as far as an SVG writer can get it wrong: balanced and properly nested tags,
 * quoted attributes, entities only from the predefined five or numeric ones, one root element. */
static int xml_well_formed(const char *text, char *why, size_t n) {
    char stack[64][32];
    int depth = 0, roots = 0;
    for (const char *c = text; *c; c++) {
        if (*c == '&') {
            static const char *const entities[] = {"&amp;", "&lt;", "&gt;", "&quot;", "&apos;", "&#"};
            int known = 0;
            for (int i = 0; i < 6; i++) known |= !strncmp(c, entities[i], strlen(entities[i]));
            if (!known) return snprintf(why, n, "bare '&' at offset %ld", (long)(c - text)), 0;
            continue;
        }
        if (*c == '>') return snprintf(why, n, "stray '>' at offset %ld", (long)(c - text)), 0;
        if (*c != '<') continue;
        if (!strncmp(c, "<?", 2) || !strncmp(c, "<!--", 4)) {
            const char *end = strstr(c, c[1] == '?' ? "?>" : "-->");
            if (!end) return snprintf(why, n, "unterminated declaration or comment"), 0;
            c = end + (c[1] == '?' ? 1 : 2);
            continue;
        }
        int closing = c[1] == '/';
        const char *name = c + 1 + closing;
        size_t len = strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:-_");
        if (len == 0 || len >= 32) return snprintf(why, n, "bad tag name at offset %ld", (long)(c - text)), 0;
        const char *p = name + len;
        char quote = 0;
        for (; *p && (quote || *p != '>'); p++) {
            if (quote && *p == '<') return snprintf(why, n, "'<' inside an attribute value"), 0;
            if (*p == '"' || *p == '\'') quote = quote == *p ? 0 : quote ? quote : *p;
        }
        if (!*p) return snprintf(why, n, "unterminated tag <%.*s", (int)len, name), 0;
        if (closing) {
            if (depth == 0 || strlen(stack[depth - 1]) != len || strncmp(stack[depth - 1], name, len))
                return snprintf(why, n, "</%.*s> closes <%s>", (int)len, name, depth ? stack[depth - 1] : "nothing"), 0;
            depth--;
        } else if (p[-1] != '/') {
            if (depth == 0) roots++;
            if (depth == 64) return snprintf(why, n, "nesting too deep"), 0;
            snprintf(stack[depth++], 32, "%.*s", (int)len, name);
        } else if (depth == 0) {
            roots++;
        }
        c = p;
    }
    if (depth != 0) return snprintf(why, n, "<%s> is never closed", stack[depth - 1]), 0;
    if (roots != 1) return snprintf(why, n, "%d root elements", roots), 0;
    return 1;
}

typedef struct {
    double width, height;
    int outside, points;
    double min_train_y; /* smallest y among the train line's points */
    int train_points;
} svg_scan;

static void check_coordinate(svg_scan *s, double x, double y) {
    s->points++;
    if (!(x >= 0 && x <= s->width && y >= 0 && y <= s->height)) s->outside++;
}

/* Every polyline point, circle centre and line end, against the viewBox. */
static svg_scan scan_svg(const char *svg) {
    svg_scan s = {.min_train_y = INFINITY};
    const char *vb = strstr(svg, "viewBox=\"");
    if (vb) sscanf(vb, "viewBox=\"0 0 %lf %lf\"", &s.width, &s.height);
    for (const char *c = strstr(svg, "<polyline"); c; c = strstr(c + 1, "<polyline")) {
        int is_train = !strncmp(c, "<polyline class=\"train\"", 23);
        const char *p = strstr(c, "points=\"") + 8;
        double x, y;
        int used;
        while (sscanf(p, "%lf,%lf %n", &x, &y, &used) == 2) {
            check_coordinate(&s, x, y);
            if (is_train) s.train_points++, s.min_train_y = fmin(s.min_train_y, y);
            p += used;
        }
    }
    for (const char *c = strstr(svg, "<circle"); c; c = strstr(c + 1, "<circle")) {
        double x = NAN, y = NAN;
        sscanf(strstr(c, "cx=\""), "cx=\"%lf\" cy=\"%lf\"", &x, &y);
        check_coordinate(&s, x, y);
    }
    for (const char *c = strstr(svg, "<line"); c; c = strstr(c + 1, "<line")) {
        double x1 = NAN, y1 = NAN, x2 = NAN, y2 = NAN;
        sscanf(c, "<line x1=\"%lf\" y1=\"%lf\" x2=\"%lf\" y2=\"%lf\"", &x1, &y1, &x2, &y2);
        check_coordinate(&s, x1, y1);
        check_coordinate(&s, x2, y2);
    }
    return s;
}

static void check_svg(const char *path, const char *what) {
    char *svg = ct_test_read_file(path, NULL);
    CHECK(svg != NULL, "%s: no plot at %s", what, path);
    if (!svg) return;
    char why[160] = "";
    CHECK(xml_well_formed(svg, why, sizeof why), "%s: plot is not well-formed: %s", what, why);
    svg_scan s = scan_svg(svg);
    CHECK(s.width > 0 && s.height > 0, "%s: no viewBox", what);
    CHECK(s.outside == 0 && s.points > 20, "%s: %d of %d coordinates outside the view box", what, s.outside, s.points);
    CHECK(strstr(svg, ">step</text>") && strstr(svg, ">loss</text>") && strstr(svg, ">accuracy</text>"),
          "%s: axis labels missing", what);
    CHECK(!strstr(svg, "nan") && !strstr(svg, "inf"), "%s: a non-finite number reached the plot", what);
    free(svg);
}

/* ---- metrics.jsonl ---------------------------------------------------------------------- */

static ct_train_record random_train_record(int64_t step) {
    return (ct_train_record){
        .step = step,
        .loss = 0.5 + 3 * ct_rng_uniform(&rng),
        .lr = 1e-4 * ct_rng_uniform(&rng),
        .grad_norm = 10 * ct_rng_uniform(&rng),
        .tokens_per_s = 5000 * ct_rng_uniform(&rng),
        .peak_memory_bytes = (int64_t)(ct_rng_next(&rng) >> 14),
        .elapsed_s = 0.37 * (double)step,
    };
}

/* Compares a parsed field with the value logged: the same bits, or null with the right note. */
static void check_field(const cJSON *record, const char *key, double expected, int64_t step) {
    const cJSON *item = cJSON_GetObjectItem(record, key);
    if (isfinite(expected)) {
        CHECK(cJSON_IsNumber(item) && same_bits(item->valuedouble, expected), "step %lld %s: %.17g read back as %.17g",
              (long long)step, key, expected, item ? item->valuedouble : NAN);
        CHECK(!cJSON_GetObjectItem(cJSON_GetObjectItem(record, "nonfinite"), key), "step %lld %s noted nonfinite",
              (long long)step, key);
        return;
    }
    const cJSON *note = cJSON_GetObjectItem(cJSON_GetObjectItem(record, "nonfinite"), key);
    const char *want = isnan(expected) ? "nan" : expected > 0 ? "inf" : "-inf";
    CHECK(cJSON_IsNull(item), "step %lld %s: non-finite not written as null", (long long)step, key);
    CHECK(cJSON_IsString(note) && !strcmp(note->valuestring, want), "step %lld %s: note is not '%s'", (long long)step,
          key, want);
}

static void check_train_line(const cJSON *line, const ct_train_record *r) {
    CHECK(!strcmp(cJSON_GetObjectItem(line, "type")->valuestring, "train"), "step %lld: not a train record",
          (long long)r->step);
    CHECK(cJSON_GetObjectItem(line, "step")->valuedouble == (double)r->step, "step %lld", (long long)r->step);
    check_field(line, "loss", r->loss, r->step);
    check_field(line, "lr", r->lr, r->step);
    check_field(line, "grad_norm", r->grad_norm, r->step);
    check_field(line, "tokens_per_s", r->tokens_per_s, r->step);
    check_field(line, "peak_memory_bytes", (double)r->peak_memory_bytes, r->step);
    check_field(line, "elapsed_s", r->elapsed_s, r->step);
}

static const ct_eval_record eval_records[3] = {
    {.step = 10, .split = "val", .accuracy = 0.6123, .accuracy_length_normalized = 0.5871, .macro_f1 = 0.4409,
     .loss = 1.9237, .present = CT_EVAL_ACCURACY | CT_EVAL_ACCURACY_LENGTH_NORMALIZED | CT_EVAL_MACRO_F1 | CT_EVAL_LOSS},
    {.step = 20, .split = "held-out <text> & more", .perplexity = INFINITY, .loss = 0.1 + 0.7,
     .present = CT_EVAL_PERPLEXITY | CT_EVAL_LOSS},
    {.step = 30, .split = "val", .accuracy = NAN, .accuracy_length_normalized = 0.79, .macro_f1 = 0.77, .loss = 1.5,
     .present = CT_EVAL_ACCURACY | CT_EVAL_ACCURACY_LENGTH_NORMALIZED | CT_EVAL_MACRO_F1 | CT_EVAL_LOSS},
};

static void check_eval_line(const cJSON *line, const ct_eval_record *r) {
    static const struct { unsigned bit; const char *key; } fields[] = {
        {CT_EVAL_ACCURACY, "accuracy"}, {CT_EVAL_ACCURACY_LENGTH_NORMALIZED, "accuracy_length_normalized"},
        {CT_EVAL_MACRO_F1, "macro_f1"}, {CT_EVAL_PERPLEXITY, "perplexity"}, {CT_EVAL_LOSS, "loss"}};
    const double values[] = {r->accuracy, r->accuracy_length_normalized, r->macro_f1, r->perplexity, r->loss};
    CHECK(!strcmp(cJSON_GetObjectItem(line, "split")->valuestring, r->split), "eval split");
    for (int i = 0; i < 5; i++) {
        if (r->present & fields[i].bit) check_field(line, fields[i].key, values[i], r->step);
        else CHECK(!cJSON_GetObjectItem(line, fields[i].key), "eval step %lld: %s not measured but written",
                   (long long)r->step, fields[i].key);
    }
}

/* Lines of a file, each parsed (NULL for a line that is not JSON); returns the count. */
static int parse_lines(const char *path, cJSON **lines, int max) {
    char *text = ct_test_read_file(path, NULL);
    int n = 0;
    for (char *line = text, *end; line && *line && n < max; line = end + 1) {
        end = strchr(line, '\n');
        if (!end) end = line + strlen(line) - 1;
        lines[n++] = cJSON_ParseWithLength(line, (size_t)(end - line));
    }
    free(text);
    return n;
}

static void test_records_read_back(void) {
    char run[256];
    snprintf(run, sizeof run, "%s", in_dir("runs/a/first"));
    ct_run_log *log = ct_run_log_open(run);
    CHECK(log != NULL, "open: %s", ct_last_error());
    if (!log) return;
    ct_train_record records[41];
    for (int i = 0; i < 41; i++) records[i] = random_train_record(i + 1);
    records[3].loss = 0.1 + 0.2; /* 0.30000000000000004: cJSON 1.7's own printing writes 0.3 */
    records[4].grad_norm = NAN;
    records[5].tokens_per_s = INFINITY;
    records[6].loss = -INFINITY;
    records[7].peak_memory_bytes = ((int64_t)1 << 50) + 3;
    records[8].lr = 3e-4;
    records[9].elapsed_s = 1.0 / 3.0;
    for (int i = 0; i < 41; i++) {
        CHECK(ct_run_log_train(log, &records[i]) == 0, "train %d: %s", i, ct_last_error());
        if (i % 10 == 9 && i / 10 < 3)
            CHECK(ct_run_log_eval(log, &eval_records[i / 10]) == 0, "eval: %s", ct_last_error());
    }
    CHECK(ct_run_log_close(log) == 0, "close: %s", ct_last_error());
    cJSON *lines[64];
    int n = parse_lines(in_dir("runs/a/first/metrics.jsonl"), lines, 64);
    CHECK(n == 1 + 41 + 3, "%d lines", n);
    CHECK(n > 0 && lines[0] && !strcmp(cJSON_GetObjectItem(lines[0], "type")->valuestring, "start") &&
              cJSON_IsFalse(cJSON_GetObjectItem(lines[0], "resumed")),
          "first line is not a fresh start record");
    for (int i = 0, line = 1, evals = 0; i < 41 && line < n; i++) {
        CHECK(lines[line] != NULL, "line %d is not JSON", line + 1);
        if (lines[line]) check_train_line(lines[line], &records[i]);
        line++;
        if (i % 10 == 9 && i / 10 < 3 && line < n) {
            if (lines[line]) check_eval_line(lines[line], &eval_records[evals]);
            line++, evals++;
        }
    }
    for (int i = 0; i < n; i++) cJSON_Delete(lines[i]);
    check_svg(in_dir("runs/a/first/plot.svg"), "first run");
    char *svg = ct_test_read_file(in_dir("runs/a/first/plot.svg"), NULL);
    CHECK(svg && strstr(svg, "held-out &lt;text&gt; &amp; more"), "the split name is not escaped in the legend");
    free(svg);
}

/* Steps 1..40, then a resumed run from a checkpoint at step 30 logs 31..55 again: the file keeps
 * every line, and the plot's train line has the 55 distinct steps, not 65. */
static void test_resume(void) {
    char run[256];
    snprintf(run, sizeof run, "%s", in_dir("runs/resumed"));
    ct_run_log *log = ct_run_log_open(run);
    for (int step = 1; step <= 40; step++) {
        ct_train_record r = random_train_record(step);
        CHECK(ct_run_log_train(log, &r) == 0, "%s", ct_last_error());
    }
    CHECK(ct_run_log_close(log) == 0, "%s", ct_last_error());
    char *before = ct_test_read_file(in_dir("runs/resumed/metrics.jsonl"), NULL);
    log = ct_run_log_open(run);
    CHECK(log != NULL, "reopen: %s", ct_last_error());
    if (!log) return free(before);
    for (int step = 31; step <= 55; step++) {
        ct_train_record r = random_train_record(step);
        CHECK(ct_run_log_train(log, &r) == 0, "%s", ct_last_error());
    }
    CHECK(ct_run_log_close(log) == 0, "%s", ct_last_error());
    char *after = ct_test_read_file(in_dir("runs/resumed/metrics.jsonl"), NULL);
    CHECK(before && after && !strncmp(before, after, strlen(before)), "resume changed the earlier lines");
    cJSON *lines[80];
    int n = parse_lines(in_dir("runs/resumed/metrics.jsonl"), lines, 80);
    CHECK(n == 1 + 40 + 1 + 25, "%d lines after resume", n);
    CHECK(n > 41 && cJSON_IsTrue(cJSON_GetObjectItem(lines[41], "resumed")), "no resumed start record");
    for (int i = 0; i < n; i++) cJSON_Delete(lines[i]);
    char *svg = ct_test_read_file(in_dir("runs/resumed/plot.svg"), NULL);
    svg_scan s = scan_svg(svg ? svg : "");
    CHECK(s.train_points == 55, "plot has %d train points, expected 55", s.train_points);
    check_svg(in_dir("runs/resumed/plot.svg"), "resumed run");
    free(svg);
    free(before);
    free(after);
}

/* A crash left half a line: reopening skips it and starts the next record on a fresh line. */
static void test_cut_short_line(void) {
    char run[256];
    snprintf(run, sizeof run, "%s", in_dir("runs/crashed"));
    ct_run_log *log = ct_run_log_open(run);
    ct_train_record r = random_train_record(1);
    CHECK(ct_run_log_train(log, &r) == 0, "%s", ct_last_error());
    ct_run_log_close(log);
    write_text(in_dir("runs/crashed/metrics.jsonl"), "{\"type\":\"train\",\"step\":2,\"lo", "a");
    log = ct_run_log_open(run);
    CHECK(log != NULL, "reopen after a crash: %s", ct_last_error());
    r = random_train_record(2);
    CHECK(log && ct_run_log_train(log, &r) == 0, "%s", ct_last_error());
    CHECK(ct_run_log_close(log) == 0, "%s", ct_last_error());
    cJSON *lines[8];
    int n = parse_lines(in_dir("runs/crashed/metrics.jsonl"), lines, 8);
    CHECK(n == 5, "%d lines", n);
    for (int i = 0; i < n; i++) {
        CHECK((lines[i] == NULL) == (i == 2), "line %d: parse result unexpected", i + 1);
        cJSON_Delete(lines[i]);
    }
}

static void test_refusals(void) {
    /* A complete line in the middle that is not JSON: refused, file and folder unchanged. */
    char run[256];
    snprintf(run, sizeof run, "%s", in_dir("runs/corrupt"));
    mkdir(in_dir("runs/corrupt"), 0755);
    const char *content = "{\"type\":\"train\",\"step\":1,\"loss\":2.5}\nnot json at all\n{\"type\":\"train\",\"step\":2}\n";
    write_text(in_dir("runs/corrupt/metrics.jsonl"), content, "w");
    ct_clear_error();
    CHECK(ct_run_log_open(run) == NULL, "a corrupt metrics.jsonl was accepted");
    const char *message = ct_last_error();
    CHECK(strstr(message, "metrics.jsonl line 2") && strstr(message, "move the file aside") && !strchr(message, '\n'),
          "message '%s'", message);
    char *now = ct_test_read_file(in_dir("runs/corrupt/metrics.jsonl"), NULL);
    CHECK(now && !strcmp(now, content), "the corrupt file was changed");
    free(now);
    CHECK(access(in_dir("runs/corrupt/plot.svg"), F_OK) != 0, "a plot was written for a refused log");
    /* Records without a usable step are refused the same way. */
    write_text(in_dir("runs/corrupt/metrics.jsonl"), "{\"type\":\"train\",\"loss\":2.5}\n", "w");
    CHECK(ct_run_log_open(run) == NULL && strstr(ct_last_error(), "line 1: a 'train' record has no step"), "'%s'",
          ct_last_error());
    write_text(in_dir("runs/corrupt/metrics.jsonl"), "{\"type\":\"start\"}\n{\"type\":\"eval\",\"step\":-3}\n", "w");
    CHECK(ct_run_log_open(run) == NULL && strstr(ct_last_error(), "line 2: a 'eval' record has step -3"), "'%s'",
          ct_last_error());
    /* run_dir (or a parent of it) is a regular file. */
    write_text(in_dir("afile"), "keep me\n", "w");
    CHECK(ct_run_log_open(in_dir("afile")) == NULL && strstr(ct_last_error(), "is not a directory"), "'%s'",
          ct_last_error());
    CHECK(ct_run_log_open(in_dir("afile/sub")) == NULL && strstr(ct_last_error(), "afile"), "'%s'", ct_last_error());
    now = ct_test_read_file(in_dir("afile"), NULL);
    CHECK(now && !strcmp(now, "keep me\n"), "the file in the way was changed");
    free(now);
    CHECK(ct_run_log_open("") == NULL && strstr(ct_last_error(), "run_dir"), "'%s'", ct_last_error());
    /* Bad records are refused with nothing written. */
    ct_run_log *log = ct_run_log_open(in_dir("runs/bad_records"));
    ct_eval_record no_split = {.step = 3, .accuracy = 0.5, .present = CT_EVAL_ACCURACY};
    CHECK(ct_run_log_eval(log, &no_split) == -1 && strstr(ct_last_error(), "split"), "'%s'", ct_last_error());
    ct_train_record negative = random_train_record(-2);
    CHECK(ct_run_log_train(log, &negative) == -1 && strstr(ct_last_error(), "step -2"), "'%s'", ct_last_error());
    ct_run_log_close(log);
    cJSON *lines[4];
    int n = parse_lines(in_dir("runs/bad_records/metrics.jsonl"), lines, 4);
    CHECK(n == 1, "refused records were written (%d lines)", n);
    for (int i = 0; i < n; i++) cJSON_Delete(lines[i]);
    CHECK(ct_run_log_close(NULL) == 0, "closing NULL");
}

/* 10,007 noisy steps with one spike: the plot keeps at most two points per pixel column, stays in
 * its box, and the spike still reaches the top of the loss panel (100 is a whole tick, so the
 * axis ends there). */
static void test_long_run_plot(void) {
    ct_run_log *log = ct_run_log_open(in_dir("runs/long"));
    for (int step = 1; step <= 10007; step++) {
        ct_train_record r = random_train_record(step);
        r.loss = step == 5003 ? 100.0 : 2.0 + 0.3 * ct_rng_normal(&rng) + 3.0 / (double)step;
        if (step == 7000) r.loss = NAN;
        CHECK(ct_run_log_train(log, &r) == 0, "%s", ct_last_error());
    }
    CHECK(ct_run_log_close(log) == 0, "%s", ct_last_error());
    check_svg(in_dir("runs/long/plot.svg"), "long run");
    char *svg = ct_test_read_file(in_dir("runs/long/plot.svg"), NULL);
    svg_scan s = scan_svg(svg ? svg : "");
    double frame_top = NAN;
    const char *frame = svg ? strstr(svg, "class=\"frame\"") : NULL;
    while (frame && frame > svg && strncmp(frame, "<rect", 5)) frame--;
    if (frame) sscanf(frame, "<rect x=\"%*d\" y=\"%lf\"", &frame_top);
    CHECK(s.train_points > 300 && s.train_points <= 2 * 700, "%d train points for 10007 steps", s.train_points);
    CHECK(fabs(s.min_train_y - frame_top) < 1.0, "the spike is at y %.1f, the panel top at %.1f", s.min_train_y,
          frame_top);
    free(svg);
}

/* ---- progress ------------------------------------------------------------------------- */

static char *stream_text(FILE *f) {
    long n = ftell(f);
    rewind(f);
    char *text = calloc((size_t)n + 1, 1);
    if (fread(text, 1, (size_t)n, f) != (size_t)n) text[0] = '\0';
    return text;
}

static int count_char(const char *s, char c) {
    int n = 0;
    for (; *s; s++) n += *s == c;
    return n;
}

static void test_progress_line(void) {
    ct_progress p;
    /* Plain mode with a huge log_every: the updates only feed the timing, nothing is printed. */
    ct_progress_init_at(&p, stderr, 0, 600, 0, 1000000, 100.0);
    CHECK(ct_progress_eta_s(&p, 0) < 0, "an ETA before any step");
    for (int step = 1; step <= 120; step++) ct_progress_update_at(&p, step, 2.31, 3e-4, 1234.4, 100.0 + 0.15 * step);
    char line[256];
    ct_progress_format(&p, line, sizeof line, 1, 120, 2.31, 3e-4, 1234.4);
    CHECK(!strcmp(line, "step 120/600 [####................] loss 2.31 lr 3.0e-4 1234 tok/s ETA 1m12s"), "line '%s'",
          line);
    ct_progress_format(&p, line, sizeof line, 0, 120, NAN, 2.5e-5, 87.6);
    CHECK(!strcmp(line, "step 120/600 loss nan lr 2.5e-5 88 tok/s ETA 1m12s"), "plain line '%s'", line);
    static const struct { double s; const char *text; } durations[] = {
        {45, "45s"}, {72, "1m12s"}, {7500, "2h05m"}, {3 * 86400 + 4 * 3600 + 59, "3d04h"}, {-1, "?"}, {NAN, "?"}};
    for (int i = 0; i < 6; i++) {
        ct_format_duration(durations[i].s, line, sizeof line);
        CHECK(!strcmp(line, durations[i].text), "%g s formatted '%s', expected '%s'", durations[i].s, line,
              durations[i].text);
    }
}

/* 1,000 steps of 10 ms: a terminal gets about ten redraws a second, not a thousand. */
static void test_progress_terminal(void) {
    FILE *f = tmpfile();
    ct_progress p;
    ct_progress_init_at(&p, f, 1, 1000, 0, 50, 0.0);
    for (int step = 1; step <= 1000; step++) ct_progress_update_at(&p, step, 1.5, 1e-3, 900, 0.01 * step);
    char *text = stream_text(f);
    fclose(f);
    int redraws = count_char(text, '\r');
    CHECK(redraws >= 95 && redraws <= 102, "%d redraws over 10 s", redraws);
    CHECK(count_char(text, '\n') == 1 && text[strlen(text) - 1] == '\n', "the finished bar does not end its line");
    CHECK(strstr(text, "step 1000/1000 [####################]") != NULL, "the last step was not drawn");
    free(text);
    /* A break ends the open line once; the next update starts a fresh one. */
    f = tmpfile();
    ct_progress_init_at(&p, f, 1, 50, 0, 5, 0.0);
    ct_progress_update_at(&p, 7, 1.0, 1e-3, 10, 1.0);
    ct_progress_break(&p);
    ct_progress_break(&p);
    ct_progress_update_at(&p, 8, 1.0, 1e-3, 10, 2.0);
    text = stream_text(f);
    fclose(f);
    CHECK(count_char(text, '\n') == 1 && count_char(text, '\r') == 2, "break output '%s'", text);
    free(text);
}

static void test_progress_plain(void) {
    FILE *f = tmpfile();
    ct_progress p;
    ct_progress_init_at(&p, f, 0, 110, 0, 25, 0.0);
    for (int step = 1; step <= 110; step++) ct_progress_update_at(&p, step, 1.5, 1e-3, 900, 0.01 * step);
    char *text = stream_text(f);
    fclose(f);
    CHECK(count_char(text, '\n') == 5 && count_char(text, '\r') == 0 && !strchr(text, '['), "plain output:\n%s", text);
    CHECK(strstr(text, "step 25/110 ") && strstr(text, "step 110/110 "), "plain output:\n%s", text);
    free(text);
    /* Resumed at step 50: lines at 75, 100 and the end. */
    f = tmpfile();
    ct_progress_init_at(&p, f, 0, 110, 50, 25, 0.0);
    for (int step = 51; step <= 110; step++) ct_progress_update_at(&p, step, 1.5, 1e-3, 900, 0.01 * step);
    text = stream_text(f);
    fclose(f);
    CHECK(count_char(text, '\n') == 3 && !strncmp(text, "step 75/110 ", 12), "resumed output:\n%s", text);
    free(text);
}

/* 0.1 s per step for 100 steps, then 0.2 s: 60 steps later the smoothed step time is within 1% of
 * 0.2 (0.9^60 = 0.0018 of the old speed left), so the ETA for 340 steps left is 68 s +- 1%. */
static void test_progress_eta(void) {
    ct_progress p;
    ct_progress_init_at(&p, stderr, 0, 500, 0, 1000000, 0.0);
    double t = 0;
    for (int step = 1; step <= 100; step++) ct_progress_update_at(&p, step, 1, 1, 1, t += 0.1);
    CHECK(fabs(ct_progress_eta_s(&p, 100) - 40.0) < 1e-6, "ETA at constant speed %.9g, expected 40",
          ct_progress_eta_s(&p, 100));
    for (int step = 101; step <= 160; step++) ct_progress_update_at(&p, step, 1, 1, 1, t += 0.2);
    double eta = ct_progress_eta_s(&p, 160);
    CHECK(fabs(eta - 68.0) < 0.68, "ETA %.4g after the slow-down, expected 68", eta);
    /* Updates every 4 steps spread the time over the steps they cover. */
    ct_progress_init_at(&p, stderr, 0, 400, 0, 1000000, 0.0);
    for (int step = 4; step <= 200; step += 4) ct_progress_update_at(&p, step, 1, 1, 1, 0.05 * step);
    CHECK(fabs(ct_progress_eta_s(&p, 200) - 10.0) < 1e-6, "ETA %.9g with sparse updates, expected 10",
          ct_progress_eta_s(&p, 200));
}

int main(void) {
    ct_rng_seed(&rng, 20241121);
    if (!ct_test_temp_dir(dir, sizeof dir, "metrics")) return 1;
    test_records_read_back();
    test_resume();
    test_cut_short_line();
    test_refusals();
    test_long_run_plot();
    test_progress_line();
    test_progress_terminal();
    test_progress_plain();
    test_progress_eta();
    int status = ct_test_finish("test_metrics");
    if (status == 0) {
        ct_test_remove_tree(dir);
    } else {
        fprintf(stderr, "files kept in %s\n", dir);
    }
    return status;
}
