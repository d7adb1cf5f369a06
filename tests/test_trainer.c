/* The trainer end to end on tiny models: a run from scratch with a learned tokenizer that is
 * interrupted and resumed gives bit-identical losses (compared with %a) to an uninterrupted run,
 * with dropout on;
 * the loss of a step with gradient accumulation is normalized by the target tokens of all its
 * micro-batches; intent fine-tuning evaluates accuracy; a NaN loss stops the run naming the step
 * and leaves the last checkpoint loadable; a resume with another thread count is refused;
 * train.precision=bf16 trains (with and without gradient checkpointing, bit-identically) and
 * tracks the fp32 run; fp16, and device=cuda without a usable GPU, are refused before anything is
 * written (with a GPU, device=cuda runs and its losses are compared with the CPU's). */
#include <ftw.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/arena.h"
#include "core/error.h"
#include "autograd/ops.h"
#include "autograd/tape.h"
#include "checkpoints/hdf5_file.h"
#include "models/llama.h"
#include "tests/ct_test.h"
#include "tests/ct_test_train.h"
#include "train/model_source.h"
#include "train/trainer.h"

enum { STEPS = 6 };

static char tmp[256];


/* A tiny pretraining recipe on the validation text, with overrides. */
static int resolve(ct_recipe *recipe, const char *output_dir, int n_extra, char **extra) {
    static char out[512], data[4200];
    snprintf(out, sizeof out, "output_dir=%s", output_dir);
    snprintf(data, sizeof data, "data.train=%s", ct_test_path("datasets/data/pretrain_val.txt"));
    char *base[] = {"name=tiny",          out,
                    data,                 "data.format=text",
                    "tokenizer.train=true", "tokenizer.vocab_size=400",
                    "model.hidden_size=32", "model.intermediate_size=48",
                    "model.num_layers=2",   "model.num_heads=4",
                    "model.num_kv_heads=2", "model.max_seq_len=48",
                    "model.dropout=0.1",    "data.max_seq_len=48",
                    "data.batch_size=4",    "data.batch_tokens=192",
                    "data.val=",            "data.test=",
                    "optimizer.lr=3e-3",    "schedule.warmup_steps=2",
                    "train.max_steps=6",    "train.eval_every=0",
                    "train.log_every=1",    "checkpoint.every=3",
                    "checkpoint.keep_last=5", "threads=2",
                    "seed=7"};
    int n = (int)(sizeof base / sizeof *base);
    char *all[64];
    memcpy(all, base, sizeof base);
    for (int i = 0; i < n_extra; i++) all[n + i] = extra[i];
    return ct_recipe_resolve(recipe, NULL, n + n_extra, all);
}

static int run(const char *dir, int n_extra, char **extra, recorder *rec, ct_train_result *result) {
    ct_recipe recipe;
    if (resolve(&recipe, dir, n_extra, extra) < 0) return -1;
    FILE *log = fopen("/dev/null", "w");
    ct_train_hooks hooks = {.stop_requested = &rec->stop, .log = log, .on_step = on_step, .user = rec};
    int rc = ct_train(&recipe, &hooks, result);
    fclose(log);
    ct_recipe_free(&recipe);
    return rc;
}

static void test_resume_is_exact(void) {
    char a[300], b[300];
    snprintf(a, sizeof a, "%s/full", tmp);
    snprintf(b, sizeof b, "%s/interrupted", tmp);
    recorder full = {0}, first = {.stop_after = 3}, second = {0};
    ct_train_result r1, r2, r3;
    CHECK(run(a, 0, NULL, &full, &r1) == 0, "uninterrupted run: %s", ct_last_error());
    CHECK(full.last == STEPS && r1.steps == STEPS, "uninterrupted run stopped at %lld", (long long)full.last);
    CHECK(full.losses[STEPS] < full.losses[1], "loss did not fall: %g -> %g", full.losses[1], full.losses[STEPS]);
    CHECK(r1.model_dir[0] != 0, "no model folder was written");

    CHECK(run(b, 0, NULL, &first, &r2) == 0, "interrupted run: %s", ct_last_error());
    CHECK(r2.interrupted && first.last == 3, "the stop request was not honoured at step 3 (last %lld)", (long long)first.last);
    char resume[sizeof r2.checkpoint + 16];
    snprintf(resume, sizeof resume, "resume=%s", r2.checkpoint);
    CHECK(strstr(r2.checkpoint, "step-00000003.h5") != NULL, "checkpoint %s", r2.checkpoint);
    CHECK(run(b, 1, (char *[]){resume}, &second, &r3) == 0, "resumed run: %s", ct_last_error());
    CHECK(second.last == STEPS, "resumed run ended at %lld", (long long)second.last);
    for (int s = 1; s <= STEPS; s++) {
        double got = s <= 3 ? first.losses[s] : second.losses[s];
        CHECK(memcmp(&got, &full.losses[s], sizeof got) == 0, "step %d: loss %a after resume, %a uninterrupted", s, got,
              full.losses[s]);
    }
    printf("resume: losses %a .. %a bit-identical over %d steps\n", full.losses[1], full.losses[STEPS], STEPS);

    /* The final checkpoint is a whole model: the same weights as the model folder, its tokenizer
     * and recipe inside. */
    ct_model_source from_file, from_folder;
    CHECK(ct_model_source_open(&from_file, r3.checkpoint) == 0, "checkpoint as a model: %s", ct_last_error());
    CHECK(ct_model_source_open(&from_folder, b) == 0, "run folder as a model: %s", ct_last_error());
    if (from_file.model && from_folder.model) {
        int same = 0;
        for (int i = 0; i < from_file.model->n_params; i++)
            same += !memcmp(from_file.model->params[i]->data, from_folder.model->params[i]->data,
                            ct_nbytes(from_file.model->params[i]));
        CHECK(same == from_file.model->n_params, "%d of %d tensors equal", same, from_file.model->n_params);
        CHECK(from_file.tokenizer && from_file.recipe_yaml && strstr(from_file.recipe_yaml, "dropout"),
              "the checkpoint lacks its tokenizer or recipe");
        CHECK(from_folder.recipe_yaml != NULL, "the run folder's recipe.yaml was not found");
        CHECK(ct_tokenizer_vocab_size(from_file.tokenizer) == ct_tokenizer_vocab_size(from_folder.tokenizer),
              "tokenizers differ");
    }
    ct_tokenizer_free(from_file.tokenizer);
    ct_llama_free(from_file.model);
    ct_llama_free(from_folder.model);
    free(from_file.tokenizer_dir);
    free(from_file.recipe_yaml);
    free(from_folder.tokenizer_dir);
    free(from_folder.recipe_yaml);

    /* Another thread count cannot give the same bits: refused. */
    recorder other = {0};
    ct_train_result r4;
    char *threads[] = {resume, "threads=1"};
    CHECK(run(b, 2, threads, &other, &r4) < 0 && strstr(ct_last_error(), "threads"), "message: %s", ct_last_error());
}

/* Intent data from the tiny pretrained model of test_resume_is_exact, with overrides. */
static int run_intent(const char *dir, int n_extra, char **extra, recorder *rec, ct_train_result *result) {
    static char pre[300], train[512], val[512], labels[512];
    snprintf(pre, sizeof pre, "model.path=%s/full", tmp);
    snprintf(train, sizeof train, "data.train=%s", ct_test_path("datasets/data/intent_train.jsonl"));
    snprintf(val, sizeof val, "data.val=%s", ct_test_path("datasets/data/intent_val.jsonl"));
    snprintf(labels, sizeof labels, "data.labels=%s", ct_test_path("datasets/data/labels.json"));
    char *all[32] = {pre, "tokenizer.train=false", "data.format=intent", train, val, labels, "data.max_examples=40",
                     "eval.max_examples=12", "checkpoint.every=0", "data.truncation=left",
                     "data.loss_on=last_assistant"};
    int n = 11;
    for (int i = 0; i < n_extra; i++) all[n++] = extra[i];
    return run(dir, n, all, rec, result);
}

static void test_accumulation_normalizes_by_all_targets(void) {
    /* Two micro-batches of 2 rows make the same step as one batch of the 4 rows only when the
     * loss is normalized by the targets of all of them: normalizing each micro-batch by its own
     * targets would weigh the answers of the batch with fewer target tokens more (intent answers
     * differ in length, so the counts differ). With shuffle off and a large token budget both runs
     * see the same sequences in the same order (and no dropout, whose masks are drawn per
     * micro-batch), so the loss after the first update must agree to
     * rounding. A large AdamW eps keeps rounding-level gradient differences from being amplified
     * by the update's normalization (tiny components would otherwise move by a whole lr). */
    char a[300], b[300];
    snprintf(a, sizeof a, "%s/accum", tmp);
    snprintf(b, sizeof b, "%s/whole", tmp);
    recorder ra = {0}, rb = {0};
    ct_train_result r;
    char *accum[] = {"train.grad_accum=2", "data.batch_size=2", "data.shuffle=false", "data.batch_tokens=100000",
                     "train.max_steps=2", "data.val=", "optimizer.eps=1e-3", "schedule.warmup_steps=0",
                     "model.dropout=0"};
    char *whole[] = {"train.grad_accum=1", "data.batch_size=4", "data.shuffle=false", "data.batch_tokens=100000",
                     "train.max_steps=2", "data.val=", "optimizer.eps=1e-3", "schedule.warmup_steps=0",
                     "model.dropout=0"};
    CHECK(run_intent(a, 9, accum, &ra, &r) == 0, "accumulated run: %s", ct_last_error());
    CHECK(run_intent(b, 9, whole, &rb, &r) == 0, "whole-batch run: %s", ct_last_error());
    for (int s = 1; s <= 2; s++) {
        double rel = fabs(ra.losses[s] - rb.losses[s]) / rb.losses[s];
        CHECK(rel < 1e-6, "step %d: accumulated loss %.9g vs whole batch %.9g", s, ra.losses[s], rb.losses[s]);
    }
    printf("accumulation: step 2 loss %.9g (2 x 2 rows) vs %.9g (4 rows)\n", ra.losses[2], rb.losses[2]);
}

static void test_intent_finetune_evaluates(void) {
    char dir[300];
    snprintf(dir, sizeof dir, "%s/intent", tmp);
    recorder rec = {0};
    ct_train_result r;
    CHECK(run_intent(dir, 1, (char *[]){"train.max_steps=2"}, &rec, &r) == 0, "intent run: %s", ct_last_error());
    CHECK(r.evaluated, "no evaluation ran");
    CHECK(r.accuracy >= 0 && r.accuracy <= 1 && r.accuracy_length_normalized >= 0, "accuracy %g", r.accuracy);
    printf("intent: 2 steps, val accuracy %.3f (length-normalized %.3f) on 12 examples\n", r.accuracy,
           r.accuracy_length_normalized);
}

static void test_finetune_from_checkpoint_file(void) {
    /* model.path may be a checkpoint file: the run gets the tokenizer it holds, and its final
     * model folder is complete. */
    ct_train_result r;
    char dir[300], model[800], latest[700], checkpoints[400], tokenizer_json[sizeof r.model_dir + 32];
    snprintf(dir, sizeof dir, "%s/from_file", tmp);
    snprintf(checkpoints, sizeof checkpoints, "%s/full/checkpoints", tmp);
    CHECK(ct_h5_latest_checkpoint(checkpoints, "step-%08d.h5", latest, sizeof latest, NULL) == 1, "no checkpoint");
    snprintf(model, sizeof model, "model.path=%s", latest);
    recorder rec = {0};
    char *extra[] = {model, "train.max_steps=1", "data.val="};
    CHECK(run_intent(dir, 3, extra, &rec, &r) == 0, "fine-tune from a checkpoint file: %s", ct_last_error());
    snprintf(tokenizer_json, sizeof tokenizer_json, "%s/tokenizer.json", r.model_dir);
    struct stat st;
    CHECK(stat(tokenizer_json, &st) == 0 && st.st_size > 1000, "%s is missing", tokenizer_json);
}

static void test_nan_stops_and_keeps_checkpoint(void) {
    char dir[300];
    snprintf(dir, sizeof dir, "%s/nan", tmp);
    recorder rec = {0};
    ct_train_result r;
    char *extra[] = {"optimizer.lr=1e30", "schedule.warmup_steps=0", "schedule.name=constant", "checkpoint.every=1",
                     "optimizer.grad_clip=0", "train.max_steps=20"};
    int rc = run(dir, 6, extra, &rec, &r);
    CHECK(rc < 0, "a diverging run succeeded");
    const char *msg = ct_last_error();
    CHECK(strstr(msg, "step ") && strstr(msg, "intact"), "message: %s", msg);
    printf("diverging run: %s\n", msg);
    char checkpoints[600], path[700];
    int64_t step = -1;
    snprintf(checkpoints, sizeof checkpoints, "%s/checkpoints", dir);
    CHECK(ct_h5_latest_checkpoint(checkpoints, "step-%08d.h5", path, sizeof path, &step) == 1 && step >= 1,
          "no checkpoint was left (%lld)", (long long)step);
    ct_h5_reader *rd = ct_h5_open(path);
    CHECK(rd != NULL, "the last checkpoint does not open: %s", ct_last_error());
    if (rd) {
        int64_t saved = 0;
        CHECK(ct_h5_get_int64(rd, "/state", "step", &saved) == 0 && saved == step, "step attribute %lld", (long long)saved);
        ct_h5_close(rd);
    }
}

/* A few steps in bf16 on the tiny recipe: it trains, writes its checkpoint and model folder, stays
 * close to the fp32 run (the bound of tests/test_mixed_precision.c, 1e-2 relative) and gives the
 * same bits with gradient checkpointing. */
static void test_bf16_trains(void) {
    char f32_dir[300], bf16_dir[300], ckpt_dir[300];
    snprintf(f32_dir, sizeof f32_dir, "%s/fp32", tmp);
    snprintf(bf16_dir, sizeof bf16_dir, "%s/bf16", tmp);
    snprintf(ckpt_dir, sizeof ckpt_dir, "%s/bf16_checkpointed", tmp);
    recorder f32 = {0}, bf16 = {0}, ckpt = {0};
    ct_train_result r1, r2, r3;
    char *steps = "train.max_steps=4";
    CHECK(run(f32_dir, 1, (char *[]){steps}, &f32, &r1) == 0, "fp32 run: %s", ct_last_error());
    CHECK(run(bf16_dir, 2, (char *[]){steps, "train.precision=bf16"}, &bf16, &r2) == 0, "bf16 run: %s", ct_last_error());
    char *checkpointed[] = {steps, "train.precision=bf16", "model.gradient_checkpointing=true"};
    CHECK(run(ckpt_dir, 3, checkpointed, &ckpt, &r3) == 0, "checkpointed bf16 run: %s", ct_last_error());
    CHECK(bf16.last == 4 && r2.model_dir[0] && r2.checkpoint[0], "bf16 run: %lld steps, model '%s', checkpoint '%s'",
          (long long)bf16.last, r2.model_dir, r2.checkpoint);
    double worst = 0;
    int same = 0;
    for (int s = 1; s <= 4; s++) {
        worst = fmax(worst, fabs(bf16.losses[s] - f32.losses[s]) / f32.losses[s]);
        same += !memcmp(&bf16.losses[s], &ckpt.losses[s], sizeof(double));
    }
    CHECK(worst > 0 && worst <= 1e-2, "bf16 losses differ from fp32 by %.3g (0: bf16 was not used)", worst);
    CHECK(same == 4, "gradient checkpointing changed %d of 4 bf16 losses", 4 - same);
    printf("bf16: 4 steps, loss %.6f (fp32 %.6f), largest gap %.2e\n", bf16.losses[4], f32.losses[4], worst);
}

static bool exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

/* fp16 and an unusable device stop the run at once, with one line, leaving no run folder. */
static void test_refusals(void) {
    char dir[300];
    snprintf(dir, sizeof dir, "%s/refused", tmp);
    recorder rec = {0};
    ct_train_result r;
    CHECK(run(dir, 1, (char *[]){"train.precision=fp16"}, &rec, &r) < 0 && strstr(ct_last_error(), "fp16") &&
              strstr(ct_last_error(), "loss scaling") && !strchr(ct_last_error(), '\n'),
          "fp16: %s", ct_last_error());
    CHECK(!exists(dir), "a refused fp16 run created %s", dir);
    if (ct_llama_check_device(CT_CUDA) < 0) {
        CHECK(run(dir, 1, (char *[]){"device=cuda"}, &rec, &r) < 0 && !strncmp(ct_last_error(), "device=cuda: ", 13) &&
                  strstr(ct_last_error(), "; set device=cpu") && !strchr(ct_last_error(), '\n') &&
                  !strstr(ct_last_error() + 13, "device=cuda"),
              "device=cuda: %s", ct_last_error());
        CHECK(!exists(dir), "a refused device=cuda run created %s", dir);
        printf("device=cuda refused here: %s\n", ct_last_error());
        return;
    }
    /* A usable GPU: 4 fp32 steps there track the CPU's (reductions round in another order). */
    char cpu_dir[300], gpu_dir[300];
    snprintf(cpu_dir, sizeof cpu_dir, "%s/cpu", tmp);
    snprintf(gpu_dir, sizeof gpu_dir, "%s/cuda", tmp);
    recorder cpu = {0}, gpu = {0};
    char *common[] = {"train.max_steps=4", "model.dropout=0"};
    CHECK(run(cpu_dir, 2, common, &cpu, &r) == 0, "cpu run: %s", ct_last_error());
    CHECK(run(gpu_dir, 3, (char *[]){common[0], common[1], "device=cuda"}, &gpu, &r) == 0, "cuda run: %s",
          ct_last_error());
    for (int s = 1; s <= 4; s++)
        CHECK(fabs(gpu.losses[s] - cpu.losses[s]) <= 1e-3 * cpu.losses[s], "step %d: cuda loss %.9g, cpu %.9g", s,
              gpu.losses[s], cpu.losses[s]);
}

/* ---- the run folder ---- */

/* Every file below a folder, with its size and an FNV-1a hash of its bytes, one line each in
 * path order (nftw visits a folder's entries in readdir order, so the lines are sorted after). */
static char snapshot_lines[512][400];
static int snapshot_count;
static size_t snapshot_root;

static int snapshot_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)ftw;
    if (flag != FTW_F || snapshot_count == 512) return 0;
    size_t len = 0;
    char *bytes = ct_test_read_file(path, &len);
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; bytes && i < len; i++) h = (h ^ (unsigned char)bytes[i]) * 1099511628211ull;
    free(bytes);
    snprintf(snapshot_lines[snapshot_count++], sizeof snapshot_lines[0], "%s %lld %016llx", path + snapshot_root,
             (long long)st->st_size, (unsigned long long)h);
    return 0;
}

static int compare_lines(const void *a, const void *b) { return strcmp(a, b); }

/* The snapshot as one string (the caller frees it); "" for a missing folder. */
static char *snapshot(const char *dir) {
    snapshot_count = 0;
    snapshot_root = strlen(dir);
    nftw(dir, snapshot_entry, 16, FTW_PHYS);
    qsort(snapshot_lines, (size_t)snapshot_count, sizeof snapshot_lines[0], compare_lines);
    char *all = calloc((size_t)snapshot_count + 1, sizeof snapshot_lines[0] + 1);
    for (int i = 0; all && i < snapshot_count; i++) strcat(strcat(all, snapshot_lines[i]), "\n");
    return all;
}

static int count_in_file(const char *path, const char *needle) {
    char *text = ct_test_read_file(path, NULL);
    int n = 0;
    for (const char *p = text; p && (p = strstr(p, needle)); p += strlen(needle)) n++;
    free(text);
    return n;
}

/* A second run into a folder that holds a run is refused with one line naming the fixes and
 * changes nothing; overwrite=true replaces the run, but only once its own checks have passed. */
static void test_rerun_refused_or_overwritten(void) {
    char dir[300], expected[900], checkpoints[400];
    snprintf(dir, sizeof dir, "%s/rerun", tmp);
    snprintf(checkpoints, sizeof checkpoints, "%s/checkpoints", dir);
    recorder rec = {0};
    ct_train_result r;
    CHECK(run(dir, 0, NULL, &rec, &r) == 0, "first run: %s", ct_last_error());
    char *before = snapshot(dir);
    CHECK(before && strstr(before, "/checkpoints/step-00000006.h5 ") && strstr(before, "/model/model.safetensors "),
          "the first run left: %s", before);

    CHECK(run(dir, 1, (char *[]){"train.max_steps=2"}, &rec, &r) < 0, "a second run into %s was not refused", dir);
    snprintf(expected, sizeof expected,
             "output_dir=%s already holds a run (recipe.yaml, metrics.jsonl, model/, checkpoints); continue it with "
             "resume=%s/step-00000006.h5, train into another output_dir=..., or set overwrite=true to replace it",
             dir, checkpoints);
    CHECK(!strcmp(ct_last_error(), expected), "message: %s", ct_last_error());
    char *after = snapshot(dir);
    CHECK(before && after && !strcmp(before, after), "the refused run changed the folder:\n%s---\n%s", before, after);
    free(after);

    /* overwrite=true with a run that fails in setup (after its tokenizer is learned): the earlier
     * run is untouched. */
    char *broken[] = {"overwrite=true", "model.path=/nonexistent/model"};
    CHECK(run(dir, 2, broken, &rec, &r) < 0 && strstr(ct_last_error(), "/nonexistent/model"), "message: %s",
          ct_last_error());
    after = snapshot(dir);
    CHECK(before && after && !strcmp(before, after), "a failed overwrite changed the folder:\n%s---\n%s", before, after);
    free(after);

    char *again[] = {"overwrite=true", "train.max_steps=2", "checkpoint.every=0"};
    CHECK(run(dir, 3, again, &rec, &r) == 0, "overwrite=true: %s", ct_last_error());
    after = snapshot(dir);
    CHECK(after && strstr(after, "/checkpoints/step-00000002.h5 ") && !strstr(after, "step-00000003") &&
              !strstr(after, "step-00000006"),
          "the earlier run's checkpoints survived the overwrite (or the new one was pruned):\n%s", after);
    char metrics[400];
    snprintf(metrics, sizeof metrics, "%s/metrics.jsonl", dir);
    CHECK(count_in_file(metrics, "\"type\":\"start\"") == 1 && count_in_file(metrics, "\"step\":6") == 0,
          "metrics.jsonl mixes the two runs");
    free(after);
    free(before);

    /* A fresh run that fails after learning its tokenizer leaves no folder behind. */
    char fresh[300];
    snprintf(fresh, sizeof fresh, "%s/never_started", tmp);
    CHECK(run(fresh, 1, (char *[]){"model.path=/nonexistent/model"}, &rec, &r) < 0, "a broken run started");
    struct stat st;
    CHECK(stat(fresh, &st) != 0, "a run that never started left %s", fresh);
}

/* Resuming the 2-layer checkpoint of test_resume_is_exact with another shape is refused naming
 * the key and both values, and a failed resume changes nothing in the run folder. */
static void test_resume_mismatch_refused(void) {
    char dir[300], checkpoints[400], latest[700], resume[800];
    snprintf(dir, sizeof dir, "%s/interrupted", tmp);
    snprintf(checkpoints, sizeof checkpoints, "%s/checkpoints", dir);
    CHECK(ct_h5_latest_checkpoint(checkpoints, "step-%08d.h5", latest, sizeof latest, NULL) == 1, "no checkpoint");
    snprintf(resume, sizeof resume, "resume=%s", latest);
    char *before = snapshot(dir);
    recorder rec = {0};
    ct_train_result r;
    struct {
        const char *override, *key, *stored, *mine;
    } cases[] = {
        {"model.num_layers=1", "num_hidden_layers", " 2 ", " 1 "},
        {"model.num_layers=3", "num_hidden_layers", " 2 ", " 3 "},
        {"model.hidden_size=64", "hidden_size", " 32 ", " 64 "},
        {"model.intermediate_size=64", "intermediate_size", " 48 ", " 64 "},
        {"model.num_kv_heads=1", "num_key_value_heads", " 2 ", " 1 "},
        {"model.tie_word_embeddings=false", "tie_word_embeddings", " true ", " false "},
        {"model.rope_theta=500000", "rope_theta", " 10000 ", " 500000 "},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *extra[] = {resume, (char *)cases[i].override, "train.max_steps=8"};
        int rc = run(dir, 3, extra, &rec, &r);
        const char *msg = ct_last_error();
        const char *key = strstr(msg, cases[i].key);
        CHECK(rc < 0 && key && strstr(key, cases[i].stored) && strstr(key, cases[i].mine) && !strchr(msg, '\n'),
              "%s: resumed, or the message lacks %s%s/%s: %s", cases[i].override, cases[i].key, cases[i].stored,
              cases[i].mine, rc < 0 ? msg : "(no error)");
        char *after = snapshot(dir);
        CHECK(before && after && !strcmp(before, after), "%s: the failed resume changed the run folder",
              cases[i].override);
        free(after);
    }
    /* Another thread count is refused too, with the folder unchanged. */
    char *threads[] = {resume, "threads=1", "train.max_steps=8"};
    CHECK(run(dir, 3, threads, &rec, &r) < 0 && strstr(ct_last_error(), "threads"), "message: %s", ct_last_error());
    char *after = snapshot(dir);
    CHECK(before && after && !strcmp(before, after), "threads=1: the failed resume changed the run folder");
    free(after);
    /* An older checkpoint while a later one of the same run sits beside it: refused, since
     * keep_last would prune the new checkpoints in favour of the abandoned later one. */
    char older[800];
    snprintf(older, sizeof older, "resume=%s/step-00000003.h5", checkpoints);
    char *branch[] = {older, "train.max_steps=8"};
    CHECK(strstr(latest, "step-00000006.h5") && run(dir, 2, branch, &rec, &r) < 0 &&
              strstr(ct_last_error(), "later checkpoint of this run") && strstr(ct_last_error(), "(step 6)"),
          "resume from step 3 beside step 6: %s", ct_last_error());
    after = snapshot(dir);
    CHECK(before && after && !strcmp(before, after), "the refused older resume changed the run folder");
    free(after);
    free(before);
    printf("resume refusals: %s\n", ct_last_error());
}

/* model.path = a run folder without model/ (interrupted): the weights of its newest checkpoint. */
static void test_model_path_run_with_checkpoints_only(void) {
    char dir[300], fine[300], model[400];
    snprintf(dir, sizeof dir, "%s/stopped", tmp);
    snprintf(fine, sizeof fine, "%s/from_stopped", tmp);
    recorder first = {.stop_after = 2}, rec = {0};
    ct_train_result r, r2;
    CHECK(run(dir, 0, NULL, &first, &r) == 0 && r.interrupted && !r.model_dir[0], "interrupted run: %s", ct_last_error());
    ct_model_source from_run, from_file;
    CHECK(ct_model_source_open(&from_run, dir) == 0, "model.path=<run without model/>: %s", ct_last_error());
    CHECK(ct_model_source_open(&from_file, r.checkpoint) == 0, "the checkpoint: %s", ct_last_error());
    if (from_run.model && from_file.model) {
        int same = 0;
        for (int i = 0; i < from_file.model->n_params; i++)
            same += !memcmp(from_run.model->params[i]->data, from_file.model->params[i]->data,
                            ct_nbytes(from_file.model->params[i]));
        CHECK(same == from_file.model->n_params && from_run.model->n_params == same, "%d of %d tensors equal", same,
              from_file.model->n_params);
    }
    ct_model_source *sources[] = {&from_run, &from_file};
    for (int i = 0; i < 2; i++) {
        if (sources[i]->tokenizer != (sources[i]->model ? sources[i]->model->tokenizer : NULL))
            ct_tokenizer_free(sources[i]->tokenizer);
        ct_llama_free(sources[i]->model);
        free(sources[i]->tokenizer_dir);
        free(sources[i]->recipe_yaml);
    }
    snprintf(model, sizeof model, "model.path=%s", dir);
    char *extra[] = {model, "train.max_steps=1", "data.val="};
    CHECK(run_intent(fine, 3, extra, &rec, &r2) == 0, "fine-tune from the stopped run: %s", ct_last_error());
}

static void test_bad_model_path(void) {
    recorder rec = {0};
    ct_train_result r;
    char dir[300];
    snprintf(dir, sizeof dir, "%s/bad", tmp);
    char *extra[] = {"model.path=/nonexistent/model", "tokenizer.train=false"};
    CHECK(run(dir, 2, extra, &rec, &r) < 0 && strstr(ct_last_error(), "/nonexistent/model"), "message: %s",
          ct_last_error());
}

int main(void) {
    if (!ct_test_temp_dir(tmp, sizeof tmp, "trainer")) return 1;
    test_resume_is_exact(); /* leaves the tiny model the intent tests start from */
    test_accumulation_normalizes_by_all_targets();
    test_intent_finetune_evaluates();
    test_finetune_from_checkpoint_file();
    test_nan_stops_and_keeps_checkpoint();
    test_bf16_trains();
    test_refusals();
    test_bad_model_path();
    test_rerun_refused_or_overwritten();
    test_resume_mismatch_refused();
    test_model_path_run_with_checkpoints_only();
    ct_test_remove_tree(tmp);
    return ct_test_finish("test_trainer");
}
