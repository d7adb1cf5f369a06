/* `ctune eval --model MODEL_OR_CHECKPOINT --data FILE`: intent accuracy (with per-intent F1 and
 * the confusion matrix) and the held-out loss and perplexity, printed for people and as one JSON
 * summary line. Examples are converted exactly as training converts them: the system prompt,
 * label set and chat template come from the model folder (ctune_task.json, labels.json,
 * tokenizer_config.json) or else from the recipe the model was trained with. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "models/llama_peft.h"
#include "cli/commands.h"
#include "train/evaluate.h"
#include "train/model_source.h"
#include "train/model_task.h"
#include "train/recipe.h"

typedef struct {
    const char *model, *adapter, *data, *labels, *format, *system, *json_out;
    long long max_examples, max_seq_len;
    int length_normalized; /* -1: the recipe's choice */
} eval_args;

static int usage(FILE *out) {
    fprintf(out,
            "usage: ctune eval --model PATH --data FILE [options]\n\n"
            "Evaluates a model on a data file. PATH is a Hugging Face model folder, a ctune run folder,\n"
            "a ctune .h5 checkpoint or a .gguf file (Q8_0 weights stay int8). Intent data (one label\n"
            "per example) is scored by log-likelihood: every label's display text is scored as the\n"
            "assistant's answer and the best one is the prediction; accuracy uses the summed\n"
            "log-likelihood unless --length-normalized (both are reported). Every format also reports\n"
            "the mean token loss and perplexity of its targets.\n\n"
            "  --model PATH          the model\n"
            "  --adapter DIR         a PEFT LoRA adapter applied on the model\n"
            "  --data FILE           .jsonl (intent, dialog_intent or chat) or plain text\n"
            "  --format NAME         intent | dialog_intent | chat | text (default: guessed from the\n"
            "                        file's first line: {messages, label} is dialog_intent, {messages}\n"
            "                        chat, {text, label} intent, a file that is not JSON Lines text)\n"
            "  --labels FILE         labels.json (default: the label set the model was trained on: the\n"
            "                        model folder's labels.json or the recipe's data.labels; else\n"
            "                        labels.json beside FILE). A set other than the trained one is noted\n"
            "  --system TEXT         system prompt (default: the one the model was trained with, from\n"
            "                        the model folder's ctune_task.json or the recipe)\n"
            "  --max-examples N      score only the first N examples\n"
            "  --max-seq-len N       cut sequences for the loss at N tokens (default: the training one, or 512)\n"
            "  --length-normalized   make the length-normalized rule the primary accuracy\n"
            "  --json FILE           also write the JSON summary to FILE\n\n"
            "Output: 'accuracy <number>' (intent data), a per-intent table, 'loss', 'perplexity', and a\n"
            "last line 'json {...}' holding the machine-readable summary.\n");
    return 0;
}

static int parse_positive(const char *arg, const char *value, long long *out) {
    char *end;
    long long n = strtoll(value, &end, 10);
    if (*end || end == value || n <= 0) return ct_usage_error("eval", "%s needs a positive integer, got '%s'", arg, value);
    *out = n;
    return 0;
}

static int parse(int argc, char **argv, eval_args *a) {
    a->length_normalized = -1;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const char *value = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) return usage(stdout), 1;
        if (!strcmp(arg, "--length-normalized")) {
            a->length_normalized = 1;
            continue;
        }
        const char **text = !strcmp(arg, "--model")     ? &a->model
                            : !strcmp(arg, "--adapter") ? &a->adapter
                            : !strcmp(arg, "--data")   ? &a->data
                            : !strcmp(arg, "--labels") ? &a->labels
                            : !strcmp(arg, "--format") ? &a->format
                            : !strcmp(arg, "--system") ? &a->system
                            : !strcmp(arg, "--json")   ? &a->json_out
                                                       : NULL;
        long long *number = !strcmp(arg, "--max-examples") ? &a->max_examples
                            : !strcmp(arg, "--max-seq-len") ? &a->max_seq_len
                                                            : NULL;
        if (!text && !number) return ct_usage_error("eval", "unknown option '%s'", arg);
        if (!value) return ct_usage_error("eval", "%s needs a value", arg);
        i++;
        if (text) *text = value;
        else if (parse_positive(arg, value, number)) return 2;
    }
    if (!a->model || !a->data) return ct_usage_error("eval", "--model and --data are required");
    return 0;
}

/* What the evaluation needs to know: the flags first, then how the model was trained (its
 * folder's ctune_task.json, else the run's recipe), then the data file itself. */
typedef struct {
    ct_data_format format;
    char *labels, *system;
    int64_t max_seq_len;
    bool length_normalized;
    char *trained_labels; /* the label set the model was trained on, when known */
} eval_settings;

/* The trained task of a model folder's ctune_task.json or of the recipe it came with. */
static int trained_task(const ct_model_source *source, ct_model_task *task, bool *known) {
    *known = false;
    if (source->model->source_dir) {
        CT_TRY(ct_model_task_load(source->model->source_dir, task, known));
        if (*known) return 0;
    }
    if (!source->recipe_yaml) return 0;
    ct_recipe recipe;
    CT_TRY(ct_recipe_init(&recipe));
    /* A recipe that no longer loads (an older ctune's) leaves the task unknown. */
    int rc = 0;
    if (ct_recipe_load_text(&recipe, source->recipe_yaml, strlen(source->recipe_yaml), "the model's recipe") == 0) {
        rc = ct_model_task_from_recipe(task, &recipe);
        *known = rc == 0;
    } else {
        ct_clear_error();
    }
    ct_recipe_free(&recipe);
    return rc;
}

/* The first non-blank line of a file, or NULL. */
static char *first_line(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, f)) >= 0 && strspn(line, " \t\r\n") == (size_t)n) continue;
    fclose(f);
    if (n < 0) {
        free(line);
        return NULL;
    }
    return line;
}

/* The format a data file holds, from the keys of its first line: {"messages", "label"} is
 * dialog_intent, {"messages"} chat, {"text", "label"} intent; a file that is not JSON Lines is
 * text. A line that tells nothing (malformed, other keys) leaves the trained format, or intent,
 * and the loader names the line. */
static ct_data_format guess_format(const char *path, const ct_model_task *trained) {
    ct_data_format fallback = trained ? trained->format : CT_DATA_INTENT;
    size_t n = strlen(path);
    bool jsonl = n >= 6 && !strcmp(path + n - 6, ".jsonl");
    char *line = first_line(path);
    bool bom = line && !strncmp(line, "\xEF\xBB\xBF", 3);
    cJSON *root = line ? cJSON_Parse(line + (bom ? 3 : 0)) : NULL;
    free(line);
    ct_data_format format = !cJSON_IsObject(root) ? (jsonl ? fallback : CT_DATA_TEXT)
                            : cJSON_HasObjectItem(root, "messages")
                                ? (cJSON_HasObjectItem(root, "label") ? CT_DATA_DIALOG_INTENT : CT_DATA_CHAT)
                            : cJSON_HasObjectItem(root, "text") && cJSON_HasObjectItem(root, "label") ? CT_DATA_INTENT
                                                                                                      : fallback;
    cJSON_Delete(root);
    return format;
}

static char *labels_beside(const char *data) {
    const char *slash = strrchr(data, '/');
    size_t dir = slash ? (size_t)(slash - data) : 1;
    char *path = malloc(dir + sizeof "/labels.json");
    if (path) snprintf(path, dir + sizeof "/labels.json", "%.*s/labels.json", (int)dir, slash ? data : ".");
    return path;
}

static int settle(const eval_args *a, const ct_model_source *source, eval_settings *s) {
    ct_model_task task = {0};
    bool known;
    CT_TRY(trained_task(source, &task, &known));
    const ct_model_task *trained = known ? &task : NULL;
    int rc = 0;
    if (a->format) rc = ct_data_format_parse(a->format, &s->format);
    else {
        s->format = guess_format(a->data, trained);
        if (!trained || trained->format != s->format)
            fprintf(stderr, "ctune eval: reading %s as %s data (guessed from the file; --format sets it)\n", a->data,
                    ct_data_format_name(s->format));
    }
    s->labels = a->labels ? strdup(a->labels) : trained && trained->labels ? strdup(trained->labels) : labels_beside(a->data);
    s->system = strdup(a->system ? a->system : trained ? trained->system_prompt : "");
    s->trained_labels = trained && trained->labels ? strdup(trained->labels) : NULL;
    s->max_seq_len = a->max_seq_len ? a->max_seq_len : trained ? trained->max_seq_len : 512;
    s->length_normalized = a->length_normalized >= 0 ? a->length_normalized : trained && trained->length_normalized;
    if (rc == 0 && (!s->labels || !s->system || (trained && trained->labels && !s->trained_labels)))
        rc = ct_fail("out of memory");
    ct_model_task_free(&task);
    return rc;
}

static bool same_labels(const ct_label_set *a, const ct_label_set *b) {
    if (ct_label_set_count(a) != ct_label_set_count(b)) return false;
    for (int i = 0; i < ct_label_set_count(a); i++)
        if (strcmp(ct_label_set_id(a, i), ct_label_set_id(b, i)) ||
            strcmp(ct_label_set_display(a, i), ct_label_set_display(b, i)))
            return false;
    return true;
}

/* --labels may differ from the trained set on purpose (a subset, renamed answers): say so once. */
static void note_other_labels(const eval_settings *s, const ct_label_set *labels) {
    if (!s->trained_labels || !strcmp(s->trained_labels, s->labels)) return;
    ct_label_set *trained = ct_label_set_load(s->trained_labels);
    if (trained && !same_labels(trained, labels))
        fprintf(stderr, "ctune eval: note: --labels %s (%d labels) differs from the label set the model was trained on "
                        "(%s, %d labels); answers are scored over --labels\n",
                s->labels, ct_label_set_count(labels), s->trained_labels, ct_label_set_count(trained));
    ct_label_set_free(trained);
    ct_clear_error();
}

typedef struct {
    ct_model_source source;
    eval_settings settings;
    ct_label_set *labels;
    ct_examples *examples;
    ct_chat_template chat;
    ct_seq_store store;
    cJSON *summary;
} eval_run;

static int load_data(eval_run *e, const eval_args *a) {
    eval_settings *s = &e->settings;
    bool intent = s->format == CT_DATA_INTENT || s->format == CT_DATA_DIALOG_INTENT;
    if (intent) {
        e->labels = ct_label_set_load(s->labels);
        if (!e->labels) return ct_fail_context("--labels: ");
        note_other_labels(s, e->labels);
    }
    ct_example_options options = {.format = s->format, .labels = e->labels,
                                  .max_examples = (size_t)a->max_examples};
    e->examples = ct_examples_load(a->data, &options);
    if (!e->examples) return -1;
    CT_TRY(ct_chat_template_load(&e->chat, e->source.tokenizer,
                                 e->source.tokenizer_dir ? e->source.tokenizer_dir : a->model));
    if (s->format == CT_DATA_TEXT) {
        int32_t eos = ct_text_end_id(e->source.tokenizer, e->chat.end_id);
        return ct_text_encode_chunks(e->source.tokenizer, e->examples, eos, s->max_seq_len, &e->store);
    }
    ct_sft_options sft = {.tpl = &e->chat, .labels = e->labels, .system_prompt = s->system, .loss_on = CT_CHAT_MASK_LAST};
    return ct_sft_encode_all(&sft, e->examples, &e->store);
}

static int evaluate_intent(eval_run *e, const eval_args *a) {
    eval_settings *s = &e->settings;
    ct_sft_options sft = {.tpl = &e->chat, .labels = e->labels, .system_prompt = s->system, .loss_on = CT_CHAT_MASK_LAST};
    ct_intent_eval eval = {0};
    int rc = ct_evaluate_intent(e->source.model, &sft, e->examples, a->max_examples, s->length_normalized, &eval);
    if (rc == 0) {
        int k = ct_label_set_count(e->labels);
        const char **ids = malloc(sizeof *ids * (size_t)k), **names = malloc(sizeof *names * (size_t)k);
        for (int i = 0; ids && names && i < k; i++) {
            ids[i] = ct_label_set_id(e->labels, i);
            names[i] = ct_label_set_display(e->labels, i);
        }
        const ct_confusion *primary = s->length_normalized ? eval.normalized : eval.summed;
        printf("accuracy %.4f\n", eval.accuracy);
        printf("scoring: %s log-likelihood (primary); summed %.4f, length-normalized %.4f, %lld examples\n",
               s->length_normalized ? "length-normalized" : "summed", eval.accuracy_summed,
               eval.accuracy_length_normalized, (long long)eval.examples);
        if (ids && names) ct_classification_report_print(&eval.report, primary, names, stdout);
        e->summary = ids && names ? ct_classification_report_json(&eval.report, primary, ids, names) : NULL;
        if (e->summary) {
            cJSON_AddStringToObject(e->summary, "scoring", s->length_normalized ? "length_normalized" : "summed");
            cJSON_AddNumberToObject(e->summary, "accuracy_summed", eval.accuracy_summed);
            cJSON_AddNumberToObject(e->summary, "accuracy_length_normalized", eval.accuracy_length_normalized);
        } else {
            rc = ct_fail("out of memory building the summary");
        }
        free(ids);
        free(names);
    }
    ct_intent_eval_free(&eval);
    return rc;
}

static int evaluate_loss(eval_run *e) {
    ct_perplexity acc = {0};
    int32_t pad = e->chat.end_id;
    CT_TRY(ct_evaluate_nll(e->source.model, &e->store, e->settings.max_seq_len, 32, 4096, pad, &acc));
    double loss, perplexity;
    CT_TRY(ct_perplexity_result(&acc, &loss, &perplexity));
    printf("loss %.4f\nperplexity %.4f (%lld target tokens)\n", loss, perplexity, (long long)acc.tokens);
    if (!e->summary) e->summary = cJSON_CreateObject();
    if (!e->summary) return ct_fail("out of memory building the summary");
    cJSON_AddNumberToObject(e->summary, "loss", loss);
    cJSON_AddNumberToObject(e->summary, "perplexity", perplexity);
    cJSON_AddNumberToObject(e->summary, "target_tokens", (double)acc.tokens);
    return 0;
}

static int write_summary(eval_run *e, const eval_args *a) {
    cJSON_AddStringToObject(e->summary, "model", a->model);
    cJSON_AddStringToObject(e->summary, "data", a->data);
    char *text = cJSON_PrintUnformatted(e->summary);
    if (!text) return ct_fail("out of memory printing the summary");
    printf("json %s\n", text);
    int rc = 0;
    if (a->json_out) {
        FILE *f = fopen(a->json_out, "w");
        if (!f || fprintf(f, "%s\n", text) < 0) rc = ct_fail("--json %s: cannot write it", a->json_out);
        if (f && fclose(f) != 0 && rc == 0) rc = ct_fail("--json %s: cannot write it", a->json_out);
    }
    free(text);
    return rc;
}

static int run(eval_run *e, const eval_args *a) {
    CT_TRY(ct_model_source_open(&e->source, a->model));
    if (!e->source.tokenizer) return ct_fail("%s: no tokenizer.json with the model", a->model);
    if (a->adapter) CT_TRY(ct_llama_apply_peft_dir(e->source.model, a->adapter));
    CT_TRY(settle(a, &e->source, &e->settings));
    CT_TRY(load_data(e, a));
    if (e->labels) CT_TRY(evaluate_intent(e, a));
    CT_TRY(evaluate_loss(e));
    return write_summary(e, a);
}

int ct_cmd_eval(int argc, char **argv) {
    eval_args args = {0};
    int parsed = parse(argc, argv, &args);
    if (parsed) return parsed == 1 ? 0 : parsed;
    eval_run e = {0};
    int rc = run(&e, &args);
    if (rc < 0) fprintf(stderr, "ctune eval: %s\n", ct_last_error());
    cJSON_Delete(e.summary);
    ct_seq_store_free(&e.store);
    ct_examples_free(e.examples);
    ct_label_set_free(e.labels);
    ct_model_source_close(&e.source);
    free(e.settings.labels);
    free(e.settings.system);
    free(e.settings.trained_labels);
    return rc < 0 ? 1 : 0;
}
