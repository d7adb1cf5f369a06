/* The table the pipeline ends with, from the stages' records: each model's size, accuracy, speed
 * and training time, the corpus baselines beside them, the served model's numbers, the stage
 * times and the goals; printed, and written as OUT/report.json and OUT/report.md (the overview
 * page, with each training stage's plot.svg). */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/pipeline.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "core/paths.h"
#include "core/strbuf.h"

typedef struct {
    cJSON *rec[CT_STAGE_COUNT]; /* stage.json of each finished stage, or NULL */
    cJSON *baselines;
} report_data;

static cJSON *read_json(const char *path) {
    if (!ct_is_file(path)) return NULL;
    char *text = ct_read_file(path, 1 << 24, NULL);
    cJSON *root = text ? cJSON_Parse(text) : NULL;
    free(text);
    return root;
}

static double num(const cJSON *obj, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static const cJSON *metrics(const report_data *d, int stage) {
    return d->rec[stage] ? cJSON_GetObjectItemCaseSensitive(d->rec[stage], "metrics") : NULL;
}

/* The four models of the table: the stage that measured each and the stages its time adds up. */
typedef struct {
    const char *name;
    int stage;
    int time_stages[3];
} model_row;

static const model_row rows[] = {
    {"teacher (adapted, merged)", CT_STAGE_MERGE, {CT_STAGE_TEACHER, CT_STAGE_ADAPT, -1}},
    {"student (distilled)", CT_STAGE_DISTILL, {CT_STAGE_DISTILL, -1, -1}},
    {"pruned student", CT_STAGE_PRUNE, {CT_STAGE_PRUNE, -1, -1}},
    {"INT8 student", CT_STAGE_QUANTIZE, {CT_STAGE_QUANTIZE, -1, -1}},
};
#define N_ROWS ((int)(sizeof rows / sizeof rows[0]))

static double row_time(const report_data *d, const model_row *row) {
    double total = 0;
    for (int i = 0; i < 3 && row->time_stages[i] >= 0; i++) {
        double t = num(d->rec[row->time_stages[i]], "train_seconds");
        if (isnan(t)) return NAN;
        total += t;
    }
    return total;
}

/* "0.9342" or "-" */
static void fmt(char *out, size_t n, const char *format, double v) {
    if (isnan(v)) snprintf(out, n, "-");
    else snprintf(out, n, format, v);
}

static int appendf(ct_strbuf *b, const char *format, ...) __attribute__((format(printf, 2, 3)));
static int appendf(ct_strbuf *b, const char *format, ...) {
    char line[2048];
    va_list args;
    va_start(args, format);
    vsnprintf(line, sizeof line, format, args);
    va_end(args);
    return ct_strbuf_append_str(b, line);
}

/* One table in Markdown (pipes) or for a terminal (aligned columns): the same cells, each long enough
 * for a baseline's name with its settings ("baseline: char 1-3-gram logistic regression (l2=...)"). */
#define CELL 128
typedef struct {
    int n_cols;
    const char *head[9];
    char cell[12][9][CELL];
    int n_rows;
} table;

static void table_print(const table *t, ct_strbuf *md, FILE *out) {
    int width[9] = {0};
    for (int c = 0; c < t->n_cols; c++) {
        width[c] = (int)strlen(t->head[c]);
        for (int r = 0; r < t->n_rows; r++)
            if ((int)strlen(t->cell[r][c]) > width[c]) width[c] = (int)strlen(t->cell[r][c]);
    }
    for (int c = 0; c < t->n_cols; c++) {
        appendf(md, "| %s ", t->head[c]);
        if (out) fprintf(out, c ? "  %*s" : "%-*s", width[c], t->head[c]);
    }
    appendf(md, "|\n");
    if (out) fputc('\n', out);
    for (int c = 0; c < t->n_cols; c++) appendf(md, "| %s ", c ? "---:" : "---");
    appendf(md, "|\n");
    for (int r = 0; r < t->n_rows; r++) {
        for (int c = 0; c < t->n_cols; c++) {
            appendf(md, "| %s ", t->cell[r][c]);
            if (out) fprintf(out, c ? "  %*s" : "%-*s", width[c], t->cell[r][c]);
        }
        appendf(md, "|\n");
        if (out) fputc('\n', out);
    }
    appendf(md, "\n");
}

static void models_table(const report_data *d, table *t) {
    *t = (table){.n_cols = 7, .head = {"model", "parameters", "bytes on disk", "test acc (single-turn)",
                                       "test acc (multi-turn)", "eval tok/s", "training time s"}};
    for (int i = 0; i < N_ROWS; i++) {
        const cJSON *m = metrics(d, rows[i].stage);
        char (*c)[CELL] = t->cell[t->n_rows++];
        snprintf(c[0], CELL, "%s", rows[i].name);
        fmt(c[1], CELL, "%.0f", num(m, "parameters"));
        fmt(c[2], CELL, "%.0f", num(m, "bytes"));
        fmt(c[3], CELL, "%.4f", num(m, "test_accuracy"));
        fmt(c[4], CELL, "%.4f", num(m, "dialog_accuracy"));
        fmt(c[5], CELL, "%.0f", num(m, "eval_tokens_per_s"));
        fmt(c[6], CELL, "%.1f", m ? row_time(d, &rows[i]) : NAN);
    }
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(d->baselines, "baselines"), *b;
    cJSON_ArrayForEach(b, list) {
        if (t->n_rows >= 12) break;
        char (*c)[CELL] = t->cell[t->n_rows++];
        snprintf(c[0], CELL, "baseline: %s", cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(b, "name")));
        snprintf(c[1], CELL, "-");
        snprintf(c[2], CELL, "-");
        fmt(c[3], CELL, "%.3f", num(b, "test_accuracy"));
        fmt(c[4], CELL, "%.3f", num(b, "dialog_accuracy"));
        snprintf(c[5], CELL, "-");
        snprintf(c[6], CELL, "-");
    }
}

/* OUT/accuracy.svg from the models' and baselines' accuracies; a failure only loses the picture. */
static void accuracy_chart(const ct_pipeline *p, const report_data *d, ct_strbuf *md) {
    const char *names[12];
    double single[12], multi[12];
    int n = 0;
    for (int i = 0; i < N_ROWS; i++, n++) {
        names[n] = rows[i].name;
        single[n] = num(metrics(d, rows[i].stage), "test_accuracy");
        multi[n] = num(metrics(d, rows[i].stage), "dialog_accuracy");
    }
    const cJSON *b;
    cJSON_ArrayForEach(b, cJSON_GetObjectItemCaseSensitive(d->baselines, "baselines")) {
        const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(b, "name"));
        if (n >= 12 || !name) break;
        names[n] = name;
        single[n] = num(b, "test_accuracy");
        multi[n++] = num(b, "dialog_accuracy");
    }
    char *path = ct_path_join(p->output_dir, "accuracy.svg");
    if (path && ct_pipeline_accuracy_svg(path, names, single, multi, n) == 0)
        appendf(md, "![test accuracy of each model and baseline](accuracy.svg)\n\n");
    free(path);
    ct_clear_error();
}

static void stages_table(const report_data *d, table *t) {
    *t = (table){.n_cols = 3, .head = {"stage", "seconds", "of which training/export"}};
    for (int s = 0; s < CT_STAGE_COUNT; s++) {
        char (*c)[CELL] = t->cell[t->n_rows++];
        snprintf(c[0], CELL, "%s", ct_stage_name(s));
        fmt(c[1], CELL, "%.1f", num(d->rec[s], "seconds"));
        fmt(c[2], CELL, "%.1f", num(d->rec[s], "train_seconds"));
    }
}

static void serve_section(const report_data *d, ct_strbuf *md, FILE *out) {
    const cJSON *m = metrics(d, CT_STAGE_SERVE);
    const char *note = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(m, "note"));
    if (!m || note) {
        const char *text = note ? note : "the serve stage has not run";
        appendf(md, "Served INT8 model (GGUF Q8_0, llama-server): %s\n\n", text);
        if (out) fprintf(out, "served INT8 model (GGUF Q8_0, llama-server): %s\n", text);
        return;
    }
    table t = {.n_cols = 6, .head = {"clients", "requests", "p50 latency ms", "p95 latency ms", "requests/s", "tokens/s"}};
    const cJSON *runs = cJSON_GetObjectItemCaseSensitive(m, "load"), *run;
    cJSON_ArrayForEach(run, runs) {
        if (t.n_rows >= 12) break;
        char (*c)[CELL] = t.cell[t.n_rows++];
        fmt(c[0], CELL, "%.0f", num(run, "clients"));
        fmt(c[1], CELL, "%.0f", num(run, "requests"));
        fmt(c[2], CELL, "%.1f", num(run, "p50_ms"));
        fmt(c[3], CELL, "%.1f", num(run, "p95_ms"));
        fmt(c[4], CELL, "%.1f", num(run, "requests_per_s"));
        fmt(c[5], CELL, "%.1f", num(run, "tokens_per_s"));
    }
    char line[512];
    snprintf(line, sizeof line,
             "served INT8 model (GGUF Q8_0, llama-server): exact-label accuracy %.4f on %.0f test prompts; answers "
             "equal to ctune's greedy ones on the same file: %.2f%%",
             num(m, "served_accuracy"), num(m, "prompts"), 100 * num(m, "agreement"));
    appendf(md, "%s.\n\n", line);
    if (out) fprintf(out, "%s\n", line);
    table_print(&t, md, out);
}

/* The goals, each checked against the measured numbers. */
static void goals_section(const report_data *d, ct_strbuf *md, FILE *out) {
    const cJSON *t = metrics(d, CT_STAGE_MERGE), *s = metrics(d, CT_STAGE_DISTILL), *p = metrics(d, CT_STAGE_PRUNE),
                *q = metrics(d, CT_STAGE_QUANTIZE), *v = metrics(d, CT_STAGE_SERVE);
    double ta = num(t, "test_accuracy"), td = num(t, "dialog_accuracy"), sa = num(s, "test_accuracy"),
           pa = num(p, "test_accuracy"), qa = num(q, "test_accuracy");
    double share = num(s, "parameters") / num(t, "parameters");
    struct {
        const char *what;
        double value, goal;
        int higher; /* 1: value >= goal; 0: value <= goal */
        const char *unit;
    } goals[] = {
        {"teacher single-turn accuracy", ta, 0.93, 1, ""},
        {"teacher multi-turn accuracy", td, 0.85, 1, ""},
        {"student accuracy / teacher's", sa / ta, 0.97, 1, ""},
        {"student parameters / teacher's", share, 0.40, 0, ""},
        {"pruned - student accuracy (points)", 100 * (pa - sa), -1.0, 1, ""},
        {"INT8 - pruned f32 accuracy (points)", 100 * (qa - pa), -0.5, 1, ""},
        {"served answers equal to ctune greedy", num(v, "agreement"), 0.99, 1, ""},
    };
    appendf(md, "| goal | measured | target | met |\n| --- | ---: | ---: | --- |\n");
    if (out) fprintf(out, "goals:\n");
    for (size_t i = 0; i < sizeof goals / sizeof goals[0]; i++) {
        char value[32];
        fmt(value, sizeof value, "%.4f", goals[i].value);
        const char *met = isnan(goals[i].value)                                 ? "not measured"
                          : (goals[i].higher ? goals[i].value >= goals[i].goal - 1e-12
                                             : goals[i].value <= goals[i].goal + 1e-12) ? "yes"
                                                                                        : "NO";
        appendf(md, "| %s | %s | %s %.2f | %s |\n", goals[i].what, value, goals[i].higher ? ">=" : "<=", goals[i].goal, met);
        if (out)
            fprintf(out, "  %-40s %10s  %s %.2f  %s\n", goals[i].what, value, goals[i].higher ? ">=" : "<=", goals[i].goal,
                    met);
    }
    appendf(md, "\n");
}

static void plots_section(const ct_pipeline *p, ct_strbuf *md) {
    appendf(md, "## Training curves\n\n");
    for (int s = 0; s < CT_STAGE_COUNT; s++) {
        if (!ct_stage_trains(s)) continue;
        char dir[4096], model[4096], svg[4200];
        if (ct_stage_paths(p, s, dir, sizeof dir, model, sizeof model) < 0) continue;
        snprintf(svg, sizeof svg, "%s/plot.svg", dir);
        if (!ct_is_file(svg)) continue;
        /* A reused teacher's run lies outside the run folder: its absolute path. */
        char *outside = s == CT_STAGE_TEACHER && p->stage[s].reuse[0] ? realpath(dir, NULL) : NULL;
        appendf(md, "### %s\n\n![%s: loss and accuracy](%s/plot.svg)\n\n", ct_stage_name(s), ct_stage_name(s),
                outside ? outside : ct_stage_name(s));
        free(outside);
    }
    ct_clear_error();
}

static int write_files(const ct_pipeline *p, const report_data *d, const ct_strbuf *md) {
    cJSON *root = cJSON_CreateObject(), *stages = cJSON_AddObjectToObject(root, "stages");
    cJSON_AddStringToObject(root, "pipeline", p->file);
    cJSON_AddNumberToObject(root, "unix_time", (double)time(NULL));
    for (int s = 0; s < CT_STAGE_COUNT; s++)
        if (d->rec[s]) cJSON_AddItemReferenceToObject(stages, ct_stage_name(s), d->rec[s]);
    if (d->baselines) cJSON_AddItemReferenceToObject(root, "baselines", d->baselines);
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    char *json = ct_path_join(p->output_dir, "report.json"), *mdpath = ct_path_join(p->output_dir, "report.md");
    int rc = text && json && mdpath ? ct_atomic_write_file(json, text, strlen(text)) : ct_fail("out of memory");
    if (rc == 0) rc = ct_atomic_write_file(mdpath, md->data, md->len);
    free(text);
    free(json);
    free(mdpath);
    return rc;
}

/* The baselines as tools/corpus/baselines.py writes them (datasets/data/baselines.json: "models",
 * each with its single_turn_test and multi_turn_test accuracy), turned into the list the table and
 * the chart read: {"source", "baselines": [{name, test_accuracy, dialog_accuracy}]}. */
static cJSON *read_baselines(const char *path) {
    cJSON *file = read_json(path);
    const cJSON *models = cJSON_GetObjectItemCaseSensitive(file, "models"), *m;
    if (!cJSON_IsObject(models)) {
        cJSON_Delete(file);
        return NULL; /* the caller notes that the baselines were not read */
    }
    cJSON *out = cJSON_CreateObject(), *list = cJSON_AddArrayToObject(out, "baselines");
    const char *command = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(file, "command"));
    const char *features = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(file, "features"));
    char source[1024];
    snprintf(source, sizeof source, "classifiers trained on the same training data, measured by `%s` (%s)",
             command ? command : "tools/corpus/baselines.py", features ? features : "docs/datasets.md");
    cJSON_AddStringToObject(out, "source", source);
    cJSON_ArrayForEach(m, models) {
        const cJSON *single = cJSON_GetObjectItemCaseSensitive(m, "single_turn_test");
        const cJSON *multi = cJSON_GetObjectItemCaseSensitive(m, "multi_turn_test");
        cJSON *b = cJSON_CreateObject();
        const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(m, "name"));
        cJSON_AddStringToObject(b, "name", name ? name : m->string);
        cJSON_AddNumberToObject(b, "test_accuracy", num(single, "accuracy"));
        cJSON_AddNumberToObject(b, "dialog_accuracy", num(multi, "accuracy"));
        cJSON_AddItemToArray(list, b);
    }
    cJSON_Delete(file);
    return out;
}

int ct_pipeline_report(const ct_pipeline *p, FILE *out) {
    report_data d = {0};
    for (int s = 0; s < CT_STAGE_COUNT; s++) {
        char path[4200];
        snprintf(path, sizeof path, "%s/%s/stage.json", p->output_dir, ct_stage_name(s));
        d.rec[s] = read_json(path);
    }
    if (p->baselines[0]) {
        d.baselines = read_baselines(p->baselines);
        if (!d.baselines) fprintf(stderr, "ctune run: note: baselines %s not read; the table leaves them out\n", p->baselines);
    }
    ct_strbuf md = {0};
    char date[32];
    time_t now = time(NULL);
    strftime(date, sizeof date, "%Y-%m-%d %H:%M UTC", gmtime(&now));
    appendf(&md, "# %s\n\n%s\n\nPipeline file `%s`, run folder `%s`, report written %s. Test splits: `%s` "
                 "(single-turn), `%s` (multi-turn).\n\n## Models\n\n",
            p->name, p->description, p->file, p->output_dir, date, p->test, p->dialog_test);
    table t;
    models_table(&d, &t);
    if (out) fprintf(out, "\n%s: models on %s and %s\n", p->name, p->test, p->dialog_test);
    table_print(&t, &md, out);
    const char *source = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(d.baselines, "source"));
    if (source) appendf(&md, "Baselines (`%s`): %s.\n\n", p->baselines, source);
    accuracy_chart(p, &d, &md);
    appendf(&md, "## Serving\n\n");
    if (out) fputc('\n', out);
    serve_section(&d, &md, out);
    appendf(&md, "## Stages\n\n");
    if (out) fputc('\n', out);
    stages_table(&d, &t);
    table_print(&t, &md, out);
    appendf(&md, "## Goals\n\n");
    if (out) fputc('\n', out);
    goals_section(&d, &md, out);
    plots_section(p, &md);
    int rc = md.data ? write_files(p, &d, &md) : ct_fail("out of memory writing the report");
    if (rc == 0 && out) fprintf(out, "\nreport: %s/report.md, %s/report.json\n", p->output_dir, p->output_dir);
    ct_strbuf_free(&md);
    for (int s = 0; s < CT_STAGE_COUNT; s++) cJSON_Delete(d.rec[s]);
    cJSON_Delete(d.baselines);
    return rc;
}
