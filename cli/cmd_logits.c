/* `ctune logits`: the next-token logits at every position of given token sequences, written as
 * raw little-endian f32, so another runtime's logits can be compared with ctune's bit for bit
 * (tests/integration/ compares llama.cpp's with these). */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/tape.h"
#include "core/arena.h"
#include "core/error.h"
#include "models/llama_peft.h"
#include "cli/commands.h"
#include "train/model_source.h"

#define CMD "logits"

typedef struct {
    const char *model, *adapter, *ids_file, *out;
} logits_args;

static int logits_usage(void) {
    printf("usage: ctune logits --model MODEL --ids-file FILE --out FILE [--adapter DIR]\n\n"
           "Runs the model on each line of FILE (token ids separated by spaces, one sequence a line)\n"
           "and writes the logits at every position of every sequence, in order, to --out as raw\n"
           "little-endian f32: sum of the lengths x vocab_size values (vocab_size = the model's\n"
           "embedding rows). Prints one line per sequence: its length and vocab_size.\n\n"
           "  --model MODEL    a model folder, run folder or checkpoint (as for ctune eval)\n"
           "  --adapter DIR    a PEFT LoRA adapter applied on the model\n"
           "  --ids-file FILE  the token ids\n"
           "  --out FILE       where the logits go\n");
    return 0;
}

/* 0 to run, 1 after --help, 2 for a usage error. */
static int logits_parse(int argc, char **argv, logits_args *a) {
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) return logits_usage(), 1;
        const char **slot = !strcmp(arg, "--model")      ? &a->model
                            : !strcmp(arg, "--adapter")  ? &a->adapter
                            : !strcmp(arg, "--ids-file") ? &a->ids_file
                            : !strcmp(arg, "--out")      ? &a->out
                                                         : NULL;
        if (!slot) return ct_usage_error(CMD, "unknown option '%s'", arg);
        if (i + 1 >= argc) return ct_usage_error(CMD, "%s needs a value", arg);
        *slot = argv[++i];
    }
    if (!a->model || !a->ids_file || !a->out) return ct_usage_error(CMD, "--model, --ids-file and --out are required");
    return 0;
}

/* The ids of one line into ids[0 .. *n); -1 with a message naming the line. */
static int parse_line(const char *file, int line_no, char *line, int64_t vocab, int32_t **ids, int64_t *n,
                      int64_t *cap) {
    *n = 0;
    for (char *tok = strtok(line, " \t\r\n"); tok; tok = strtok(NULL, " \t\r\n")) {
        char *end;
        errno = 0;
        long v = strtol(tok, &end, 10);
        if (errno || *end || v < 0 || v >= vocab)
            return ct_fail("%s:%d: '%s' is not a token id in [0, %lld)", file, line_no, tok, (long long)vocab);
        if (*n == *cap) {
            int64_t grown = *cap ? 2 * *cap : 64;
            int32_t *bigger = realloc(*ids, sizeof(int32_t) * (size_t)grown);
            if (!bigger) return ct_fail("%s:%d: out of memory", file, line_no);
            *ids = bigger, *cap = grown;
        }
        (*ids)[(*n)++] = (int32_t)v;
    }
    return 0;
}

/* One sequence's logits [T, V] appended to out. */
static int write_sequence(ct_llama *m, const int32_t *ids, int64_t T, FILE *out, const char *path) {
    if (ct_scope_begin() < 0) return ct_fail("logits: scopes nested too deeply");
    int rc = 0;
    ct_tensor *input = ct_empty(CT_I32, 2, (int64_t[]){1, T});
    ct_tensor *logits = NULL;
    if (!input) rc = -1;
    else {
        memcpy(input->data, ids, sizeof(int32_t) * (size_t)T);
        logits = ct_llama_forward(m, input, NULL);
        if (!logits) rc = -1;
        else if (logits->dtype != CT_F32) rc = ct_fail("logits: the model computes in a dtype other than f32");
    }
    const size_t count = (size_t)T * (size_t)m->config.vocab_size;
    if (rc == 0 && fwrite(logits->data, sizeof(float), count, out) != count) rc = ct_fail("%s: cannot write it", path);
    ct_scope_end();
    return rc;
}

static int logits_run(const logits_args *a, ct_model_source *src) {
    CT_TRY(ct_model_source_open(src, a->model));
    if (a->adapter) CT_TRY(ct_llama_apply_peft_dir(src->model, a->adapter));
    FILE *in = fopen(a->ids_file, "r");
    if (!in) return ct_fail("--ids-file %s: cannot open it", a->ids_file);
    FILE *out = fopen(a->out, "wb");
    if (!out) {
        fclose(in);
        return ct_fail("--out %s: cannot create it (does its folder exist?)", a->out);
    }
    const bool was = ct_set_grad_enabled(false);
    const int64_t V = src->model->config.vocab_size;
    char line[1 << 16];
    int32_t *ids = NULL;
    int64_t n = 0, cap = 0;
    int rc = 0, line_no = 0;
    while (rc == 0 && fgets(line, sizeof line, in)) {
        line_no++;
        if (!strchr(line, '\n') && !feof(in)) rc = ct_fail("%s:%d: line longer than %zu bytes", a->ids_file, line_no, sizeof line);
        if (rc == 0) rc = parse_line(a->ids_file, line_no, line, V, &ids, &n, &cap);
        if (rc == 0 && n == 0) rc = ct_fail("%s:%d: no token ids on the line", a->ids_file, line_no);
        if (rc == 0) rc = write_sequence(src->model, ids, n, out, a->out);
        if (rc == 0) printf("%lld %lld\n", (long long)n, (long long)V);
    }
    ct_set_grad_enabled(was);
    free(ids);
    fclose(in);
    if (fclose(out) != 0 && rc == 0) rc = ct_fail("%s: cannot write it", a->out);
    return rc;
}

int ct_cmd_logits(int argc, char **argv) {
    logits_args args = {0};
    int parsed = logits_parse(argc, argv, &args);
    if (parsed) return parsed == 1 ? 0 : parsed;
    ct_model_source src = {0};
    int rc = logits_run(&args, &src);
    if (rc < 0) fprintf(stderr, "ctune logits: %s\n", ct_last_error());
    if (src.tokenizer != (src.model ? src.model->tokenizer : NULL)) ct_tokenizer_free(src.tokenizer);
    ct_llama_free(src.model);
    free(src.tokenizer_dir);
    free(src.recipe_yaml);
    return rc < 0 ? 1 : 0;
}
