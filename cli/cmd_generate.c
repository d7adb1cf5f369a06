/* `ctune generate`: a reply from a Hugging Face model folder, printed as it is made. The prompt
 * becomes the user turn of the model's chat template unless --raw is given. */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "core/clock.h"
#include "core/error.h"
#include "datasets/tokenizer.h"
#include "train/model_source.h"
#include "models/generate.h"
#include "models/llama.h"
#include "models/llama_peft.h"
#include "cli/commands.h"
#include "train/model_task.h"

int ct_cmd_generate(int argc, char **argv);

#define CMD "generate"

typedef struct {
    const char *model, *adapter, *prompt, *system;
    ct_generate_options gen;
    bool raw, ids, temperature_given, nucleus_given;
} generate_args;

static int generate_usage(void) {
    printf("usage: ctune generate --model DIR --prompt TEXT [options]\n\n"
           "Generates a reply with a Hugging Face model folder (config.json, safetensors, tokenizer.json)\n"
           "and prints it as it is made. The prompt is the user turn of the model's chat template\n"
           "(ChatML or LLaMA 3, from tokenizer_config.json), followed by an open assistant turn.\n"
           "Generation stops at the config's eos ids, the template's end token, --max-new-tokens, or\n"
           "the model's context (max_position_embeddings: prompt + reply never run past it; a longer\n"
           "prompt is refused).\n\n"
           "  --model DIR           the model folder\n"
           "  --adapter DIR         a PEFT LoRA adapter applied on the model\n"
           "  --prompt TEXT         the user message (with --raw: the whole input)\n"
           "  --system TEXT         a system message before it (default: the system prompt the model was\n"
           "                        trained with, from the folder's ctune_task.json, if it has one)\n"
           "  --max-new-tokens N    at most N new tokens (default 128)\n"
           "  --temperature T       0: greedy; > 0: sample from softmax(logits / T). Default 0, or 1\n"
           "                        when --top-p or --top-k is given\n"
           "  --top-p P             keep the most likely tokens up to probability P, in (0, 1] (default 1)\n"
           "  --top-k K             keep the K most likely tokens (default 0: all)\n"
           "  --seed S              the sampling seed (default 0): the same seed, the same reply\n"
           "  --raw                 no chat template: encode TEXT as the Hugging Face tokenizer does by\n"
           "                        default (special-token text matched, BOS added if the tokenizer adds one)\n"
           "  --ids                 print the new token ids on one line instead of the text\n");
    return 0;
}

/* ---- flags ---- */

static int parse_int(const char *arg, const char *value, long long min, long long *out) {
    char *end;
    errno = 0;
    long long n = strtoll(value, &end, 10);
    if (errno || *end || end == value || n < min)
        return ct_usage_error(CMD, "%s needs an integer >= %lld, got '%s'", arg, min, value);
    *out = n;
    return 0;
}

static int parse_real(const char *arg, const char *value, double *out) {
    char *end;
    errno = 0;
    double x = strtod(value, &end);
    if (errno || *end || end == value || !isfinite(x))
        return ct_usage_error(CMD, "%s needs a number, got '%s'", arg, value);
    *out = x;
    return 0;
}

/* One option with a value at argv[i + 1]. 0, or 2 for a usage error. */
static int parse_value(generate_args *a, const char *arg, const char *value) {
    long long n;
    ct_sampling *s = &a->gen.sampling;
    if (!strcmp(arg, "--model")) a->model = value;
    else if (!strcmp(arg, "--prompt")) a->prompt = value;
    else if (!strcmp(arg, "--system")) a->system = value;
    else if (!strcmp(arg, "--adapter")) a->adapter = value;
    else if (!strcmp(arg, "--max-new-tokens")) {
        if (parse_int(arg, value, 1, &n)) return 2;
        a->gen.max_new_tokens = n;
    } else if (!strcmp(arg, "--top-k")) {
        if (parse_int(arg, value, 0, &n)) return 2;
        s->top_k = n;
        a->nucleus_given = true;
    } else if (!strcmp(arg, "--seed")) {
        if (parse_int(arg, value, 0, &n)) return 2;
        a->gen.seed = (uint64_t)n;
    } else if (!strcmp(arg, "--temperature")) {
        if (parse_real(arg, value, &s->temperature)) return 2;
        if (s->temperature < 0) return ct_usage_error(CMD, "--temperature must be 0 (greedy) or positive, got '%s'", value);
        a->temperature_given = true;
    } else if (!strcmp(arg, "--top-p")) {
        if (parse_real(arg, value, &s->top_p)) return 2;
        if (!(s->top_p > 0 && s->top_p <= 1)) return ct_usage_error(CMD, "--top-p must be in (0, 1], got '%s'", value);
        a->nucleus_given = true;
    } else return ct_usage_error(CMD, "unknown option '%s'", arg);
    return 0;
}

/* 0 to run, 1 after --help, 2 for a usage error. */
static int generate_parse(int argc, char **argv, generate_args *a) {
    static const char *const with_value[] = {"--model", "--adapter", "--prompt", "--system", "--max-new-tokens", "--temperature",
                                             "--top-p", "--top-k", "--seed"};
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) return generate_usage(), 1;
        if (!strcmp(arg, "--raw")) a->raw = true;
        else if (!strcmp(arg, "--ids")) a->ids = true;
        else {
            bool takes_value = false;
            for (size_t k = 0; k < sizeof with_value / sizeof *with_value; k++) takes_value |= !strcmp(arg, with_value[k]);
            if (!takes_value) return ct_usage_error(CMD, "unknown option '%s'", arg);
            if (i + 1 >= argc) return ct_usage_error(CMD, "%s needs a value", arg);
            if (parse_value(a, arg, argv[++i])) return 2;
        }
    }
    if (!a->model || !a->prompt) return ct_usage_error(CMD, "--model and --prompt are required");
    if (a->raw && a->system) return ct_usage_error(CMD, "--system needs the chat template; leave out --raw");
    if (a->nucleus_given && !a->temperature_given) a->gen.sampling.temperature = 1;
    return 0;
}

/* ---- running ---- */

static int check_folder(const char *dir) {
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return ct_fail("model folder '%s' not found; give a folder with config.json, *.safetensors and tokenizer.json", dir);
    char path[4096];
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    if (stat(path, &st) != 0)
        return ct_fail("%s is missing; generate needs the model's tokenizer to encode the prompt and print the reply", path);
    return 0;
}

/* The prompt's ids, and in *stop the template's end token (-1 with --raw). */
static int encode_prompt(const generate_args *a, const ct_llama *m, const char *folder, ct_token_list *ids,
                         int32_t *stop) {
    *stop = -1;
    if (a->raw)
        return ct_tokenizer_encode(m->tokenizer, a->prompt, strlen(a->prompt), CT_TOK_MATCH_SPECIAL | CT_TOK_ADD_SPECIAL,
                                   ids);
    ct_chat_template tpl;
    if (ct_chat_template_load(&tpl, m->tokenizer, folder) < 0)
        return ct_fail_context("chat template (use --raw to encode the prompt as it is): ");
    /* Without --system, the system prompt the model was trained with (its folder's task file). */
    ct_model_task task;
    bool found;
    CT_TRY(ct_model_task_load(folder, &task, &found));
    tpl.default_system = found ? task.system_prompt : NULL;
    ct_chat_message messages[2];
    size_t n = 0;
    if (a->system) messages[n++] = (ct_chat_message){"system", a->system};
    messages[n++] = (ct_chat_message){"user", a->prompt};
    ct_chat_options options = {.add_generation_prompt = 1, .allow_special = 0, .mask = CT_CHAT_MASK_ALL};
    uint8_t *mask = NULL;
    int rc = ct_chat_encode(&tpl, messages, n, &options, ids, &mask);
    free(mask);
    ct_model_task_free(&task);
    *stop = tpl.end_id;
    return rc;
}

static int print_text(void *user, int64_t row, int32_t id, const char *text, size_t len) {
    (void)user, (void)row, (void)id;
    if (len) fwrite(text, 1, len, stdout);
    fflush(stdout);
    return 0;
}

static const char *finish_text(const ct_generation *out, const ct_llama *m) {
    static char context[96];
    switch (out->finish) {
    case CT_FINISH_STOP: return "stopped at an end token";
    case CT_FINISH_CONTEXT:
        snprintf(context, sizeof context, "stopped at the model's context of %lld positions",
                 (long long)m->config.max_position_embeddings);
        return context;
    default: return "reached --max-new-tokens";
    }
}

/* The model: a folder, or a .gguf file (kept int8 when Q8_0) whose task files the source puts in
 * a scratch folder; *folder gets where the chat template and task file are. */
static ct_llama *open_model(const generate_args *a, ct_model_source *src, const char **folder) {
    *folder = a->model;
    ct_llama *m = NULL;
    if (ct_model_source_is_gguf(a->model)) {
        if (ct_model_source_open_gguf(src, a->model) == 0) m = src->model;
        *folder = src->scratch_dir;
    } else if (check_folder(a->model) == 0) {
        m = ct_llama_load(a->model);
    }
    if (m && a->adapter && ct_llama_apply_peft_dir(m, a->adapter) < 0) {
        if (m != src->model) ct_llama_free(m);
        m = NULL;
    }
    return m;
}

static int generate_run(generate_args *a) {
    ct_model_source src = {0};
    const char *folder;
    ct_llama *m = open_model(a, &src, &folder);
    if (!m) {
        ct_model_source_close(&src);
        return -1;
    }
    ct_token_list prompt = {0};
    ct_generation out = {0};
    int32_t stop;
    int rc = m->tokenizer ? encode_prompt(a, m, folder, &prompt, &stop)
                          : ct_fail("%s: no tokenizer was loaded with the model", a->model);
    if (rc == 0) {
        a->gen.stop_ids = stop >= 0 ? &stop : NULL;
        a->gen.n_stop_ids = stop >= 0 ? 1 : 0;
        a->gen.on_token = a->ids ? NULL : print_text;
        const double start = ct_seconds_now();
        rc = ct_generate(m, &prompt, 1, &a->gen, &out);
        const double seconds = ct_seconds_now() - start;
        if (rc == 0 && a->ids)
            for (size_t i = 0; i < out.ids.len; i++) printf(i ? " %d" : "%d", out.ids.ids[i]);
        if (rc == 0) {
            putchar('\n');
            fflush(stdout); /* the reply before the summary on a shared terminal */
            fprintf(stderr, "ctune generate: %zu prompt tokens, %zu new in %.2f s (%.1f tokens/s), %s\n", prompt.len,
                    out.ids.len, seconds, (double)out.ids.len / (seconds > 0 ? seconds : 1e-9),
                    finish_text(&out, m));
        }
    }
    ct_generation_free(&out, 1);
    ct_token_list_free(&prompt);
    if (src.model) ct_model_source_close(&src);
    else ct_llama_free(m);
    return rc;
}

int ct_cmd_generate(int argc, char **argv) {
    generate_args args = {.gen = ct_generate_defaults()};
    args.gen.max_new_tokens = 128;
    int parsed = generate_parse(argc, argv, &args);
    if (parsed) return parsed == 1 ? 0 : parsed;
    if (generate_run(&args) < 0) {
        fprintf(stderr, "ctune generate: %s\n", ct_last_error());
        return 1;
    }
    return 0;
}
