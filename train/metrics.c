/* The run log: metrics.jsonl written with cJSON, its history kept in memory (and read back on
 * resume) for plot.svg (train/metrics_plot.c). The file format and the resume rules are in
 * metrics.h. */
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

#include "core/error.h"
#include "core/atomic_file.h"
#include "core/paths.h"
#include "train/metrics_internal.h"

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

/* The plot keeps the sparsity as a series of the accuracy panel. */
static int history_add_sparsity(ct_run_log *log, int64_t step, double sparsity) {
    eval_point point = {.step = step, .present = CT_EVAL_ACCURACY, .accuracy = sparsity};
    return history_add_eval(log, "sparsity", point);
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
    if (cJSON_IsString(type) && !strcmp(type->valuestring, "prune") && cJSON_IsNumber(step)) {
        double sparsity = NAN;
        read_value(record, "sparsity", &sparsity);
        status = history_add_sparsity(log, (int64_t)step->valuedouble, sparsity);
    } else if ((is_train || is_eval) && !cJSON_IsNumber(step)) {
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

static int write_record(ct_run_log *log, cJSON *record) {
    char *text = record ? cJSON_PrintUnformatted(record) : NULL;
    cJSON_Delete(record);
    if (!text) return ct_fail("run log: out of memory formatting a record for %s", log->path);
    int ok = fputs(text, log->file) >= 0 && fputc('\n', log->file) != EOF && fflush(log->file) == 0;
    free(text);
    if (!ok) return ct_fail("run log: writing %s failed: %s; check free disk space", log->path, strerror(errno));
    return 0;
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
    log->path = log->dir ? ct_path_join(run_dir, "metrics.jsonl") : NULL;
    int existed = 0, cut_short = 0;
    if (!log->path || ct_make_dirs(run_dir) < 0 || load_history(log, &existed, &cut_short) < 0 ||
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

int ct_run_log_prune(ct_run_log *log, int64_t step, const cJSON *report) {
    if (step < 0) return ct_fail("run log: prune record with step %lld; steps count from 0", (long long)step);
    cJSON *record = cJSON_CreateObject(), *nonfinite = NULL;
    cJSON_AddStringToObject(record, "type", "prune");
    ct_json_add_exact_number(record, "step", (double)step);
    const double sparsity = cJSON_GetNumberValue(cJSON_GetObjectItem(report, "global"));
    add_field(record, &nonfinite, "sparsity", sparsity);
    static const char *const copied[] = {"zeros", "total", "all_params", "layers", "tensors"};
    for (size_t i = 0; i < sizeof copied / sizeof *copied; i++) {
        const cJSON *item = cJSON_GetObjectItem(report, copied[i]);
        if (item) cJSON_AddItemToObject(record, copied[i], cJSON_Duplicate(item, 1));
    }
    if (nonfinite) cJSON_AddItemToObject(record, "nonfinite", nonfinite);
    CT_TRY(write_record(log, record));
    return history_add_sparsity(log, step, sparsity);
}

int ct_run_log_model(ct_run_log *log, int64_t step, const char *select, const char *metric, double value) {
    if (step < 0) return ct_fail("run log: model record with step %lld; steps count from 0", (long long)step);
    cJSON *record = cJSON_CreateObject(), *nonfinite = NULL;
    cJSON_AddStringToObject(record, "type", "model");
    ct_json_add_exact_number(record, "step", (double)step);
    cJSON_AddStringToObject(record, "select", select);
    cJSON_AddStringToObject(record, "metric", metric);
    add_field(record, &nonfinite, "value", value);
    if (nonfinite) cJSON_AddItemToObject(record, "nonfinite", nonfinite);
    return write_record(log, record);
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

