/* The run log: run_dir/metrics.jsonl, one JSON object per line, and run_dir/plot.svg.
 *
 *   {"type":"start","unix_time":1732200000,"resumed":false}
 *   {"type":"train","step":120,"loss":2.31,"lr":0.0003,"grad_norm":0.82,"tokens_per_s":1234.5,
 *    "peak_memory_bytes":123456789,"elapsed_s":97.25}
 *   {"type":"eval","step":120,"split":"val","accuracy":0.9,"accuracy_length_normalized":0.88,
 *    "macro_f1":0.87,"perplexity":5.1,"loss":1.63}
 *   {"type":"model","step":120,"select":"best_val_loss","metric":"loss","value":1.63}
 *
 * Numbers are written in the shortest form that reads back to the same double, bit for bit. A
 * NaN or infinite value is written as null, and the record gets a "nonfinite" object naming the
 * field and what it was: "loss":null,"nonfinite":{"loss":"nan"} ("inf", "-inf" likewise). An
 * eval record holds only the fields that were measured (see ct_eval_record.present).
 *
 * Resuming: opening a run directory that already has a metrics.jsonl appends to it (a "start"
 * record with "resumed":true marks the place) and reads the earlier records back for the plot. A
 * resumed run logs again the steps after its checkpoint, so the file may hold a step twice;
 * readers keep the later record, and so does the plot (a record whose step is not after the last
 * one of its series drops the points at and after that step). A last line cut short by a crash is
 * left as it is and skipped, and the next record starts on a fresh line. Every line is flushed
 * as it is written, so a crash loses at most the line being written. */
#ifndef CT_METRICS_H
#define CT_METRICS_H

#include <cjson/cJSON.h>
#include <stdint.h>

typedef struct ct_run_log ct_run_log;

typedef struct {
    int64_t step;              /* updates taken, counting this one */
    double loss;               /* mean loss of the step's batch */
    double lr;                 /* the learning rate the update used */
    double grad_norm;          /* global gradient norm before clipping */
    double tokens_per_s;       /* trained tokens per second, smoothed or of this step: the caller's choice */
    int64_t peak_memory_bytes; /* peak memory so far (device memory on a GPU, resident set on the CPU) */
    double elapsed_s;          /* seconds since the run (not this process) began */
} ct_train_record;

/* Which fields of an eval record were measured; the others are left out of the line. */
enum {
    CT_EVAL_ACCURACY = 1u << 0,
    CT_EVAL_ACCURACY_LENGTH_NORMALIZED = 1u << 1,
    CT_EVAL_MACRO_F1 = 1u << 2,
    CT_EVAL_PERPLEXITY = 1u << 3,
    CT_EVAL_LOSS = 1u << 4,
};

typedef struct {
    int64_t step;
    const char *split; /* "val", "test", ...: a non-empty name */
    double accuracy;   /* intent accuracy, summed log-likelihood scoring */
    double accuracy_length_normalized; /* the same, log-likelihood divided by the label's token count */
    double macro_f1;
    double perplexity;
    double loss; /* mean token NLL on the split */
    unsigned present; /* CT_EVAL_* bits */
} ct_eval_record;

/* Creates run_dir (and its parents) when missing, reads back an existing metrics.jsonl, opens it
 * for appending and writes the "start" record. NULL on error (a path that is not a directory, a
 * line in the middle of the file that is not JSON, ...), with nothing on disk changed. */
ct_run_log *ct_run_log_open(const char *run_dir);
int ct_run_log_train(ct_run_log *log, const ct_train_record *record);
int ct_run_log_eval(ct_run_log *log, const ct_eval_record *record);
/* A pruning report (models/prune.h's JSON: global, layers, tensors, zeros, total, all_params) as
 *   {"type":"prune","step":120,"sparsity":0.3,"zeros":..,"total":..,"all_params":..,
 *    "layers":{"0":0.3,...},"tensors":{"model.layers.0.self_attn.q_proj.weight":0.3,...}}
 * The plot draws the global sparsity in the accuracy panel (a 0-1 scale), as series "sparsity". */
int ct_run_log_prune(ct_run_log *log, int64_t step, const cJSON *report);
/* The step model/ holds when checkpoint.select chose one by a validation metric:
 *   {"type":"model","step":400,"select":"best_val_accuracy","metric":"accuracy","value":0.93} */
int ct_run_log_model(ct_run_log *log, int64_t step, const char *select, const char *metric, double value);
/* (Re)writes run_dir/plot.svg from every record so far: a loss panel (train, and eval per split)
 * above an accuracy panel (per split, summed scoring solid, length-normalized dashed), both
 * against step. Written to a temporary file and renamed, so a reader never sees half a plot. */
int ct_run_log_plot(ct_run_log *log);
/* Writes the plot, closes the file and frees the log (also when the plot fails); NULL is fine. */
int ct_run_log_close(ct_run_log *log);
const char *ct_run_log_path(const ct_run_log *log); /* run_dir/metrics.jsonl */

/* Adds key: value to a JSON object in the shortest text that reads back to the same double (cJSON
 * 1.7's own printing may drop the last bit); NaN and infinities become null. */
void ct_json_add_exact_number(cJSON *object, const char *key, double value);

/* The process's peak resident set size in bytes (getrusage), or -1 if the system cannot tell. */
int64_t ct_peak_rss_bytes(void);

#endif
