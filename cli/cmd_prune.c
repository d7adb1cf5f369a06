/* `ctune prune`: prune a model once and write it as a Hugging Face folder with its sparsity
 * report (docs/pruning.md). The input is only read: the pruned model goes to --out, written
 * file by file through temporary names, and nothing is written when pruning fails. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli/commands.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "core/paths.h"
#include "models/prune.h"
#include "train/model_source.h"
#include "train/trainer.h"

#define CMD "prune"

typedef struct {
    const char *model, *out, *method, *amount, *count, *targets, *n, *dim, *nm, *seed;
    bool include_norms_embeddings, mlp_channels, compact;
} prune_args;

static int usage(void) {
    printf("usage: ctune prune --model PATH --method NAME (--amount F | --count K) --out DIR [options]\n\n"
           "Prunes a model with torch.nn.utils.prune's semantics and writes it as a Hugging Face folder\n"
           "(pruned weights are zeros in model.safetensors) with prune_report.json; prints the sparsity\n"
           "per tensor, per layer and overall.\n"
           "  --model PATH       a Hugging Face folder, a ctune run folder or an .h5 checkpoint\n"
           "  --method NAME      l1_unstructured, global_unstructured (one L1 threshold across the\n"
           "                     targets), ln_structured, random_unstructured, or nm\n"
           "  --amount F         the fraction to prune, in [0, 1] (round(F * n), half to even)\n"
           "  --count K          or a number of entries (channels for ln_structured) per tensor\n"
           "  --targets GLOBS    comma-separated fnmatch globs over HF names (default: every layer's\n"
           "                     q/k/v/o/gate/up/down projection)\n"
           "  --include-norms-embeddings  allow targets that are norms, biases, embed_tokens, lm_head\n"
           "  --n N              ln_structured: the norm order (default 1; inf works)\n"
           "  --dim D            ln_structured: 0 prunes rows (outputs, default), 1 columns (inputs)\n"
           "  --mlp-channels     ln_structured on MLP channels: rows of gate_proj and up_proj with the\n"
           "                     matching columns of down_proj\n"
           "  --compact          with --mlp-channels: cut the pruned channels out (a dense model with a\n"
           "                     smaller intermediate_size)\n"
           "  --nm N:M           nm: keep N of every M consecutive input weights of a row (default 2:4)\n"
           "  --seed S           random_unstructured's seed (default 1234)\n"
           "  --out DIR          the folder to write\n");
    return 0;
}

static int parse(int argc, char **argv, prune_args *a) {
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) return usage(), 1;
        bool *flag = !strcmp(arg, "--include-norms-embeddings") ? &a->include_norms_embeddings
                     : !strcmp(arg, "--mlp-channels")           ? &a->mlp_channels
                     : !strcmp(arg, "--compact")                ? &a->compact
                                                                : NULL;
        if (flag) {
            *flag = true;
            continue;
        }
        const char **slot = !strcmp(arg, "--model")     ? &a->model
                            : !strcmp(arg, "--out")     ? &a->out
                            : !strcmp(arg, "--method")  ? &a->method
                            : !strcmp(arg, "--amount")  ? &a->amount
                            : !strcmp(arg, "--count")   ? &a->count
                            : !strcmp(arg, "--targets") ? &a->targets
                            : !strcmp(arg, "--n")       ? &a->n
                            : !strcmp(arg, "--dim")     ? &a->dim
                            : !strcmp(arg, "--nm")      ? &a->nm
                            : !strcmp(arg, "--seed")    ? &a->seed
                                                        : NULL;
        if (!slot) return ct_usage_error(CMD, "unknown option '%s'", arg);
        if (i + 1 >= argc) return ct_usage_error(CMD, "%s needs a value", arg);
        *slot = argv[++i];
    }
    if (!a->model || !a->method || !a->out) return ct_usage_error(CMD, "--model, --method and --out are required");
    if (ct_prune_method_parse(a->method) < 0)
        return ct_usage_error(CMD, "--method %s: l1_unstructured, global_unstructured, ln_structured, "
                                   "random_unstructured or nm", a->method);
    if (a->amount && a->count) return ct_usage_error(CMD, "give --amount or --count, not both");
    if (!a->amount && !a->count && strcmp(a->method, "nm"))
        return ct_usage_error(CMD, "--method %s needs --amount or --count", a->method);
    if (a->compact && !a->mlp_channels) return ct_usage_error(CMD, "--compact cuts out MLP channels: add --mlp-channels");
    return 0;
}

static int number(const char *option, const char *text, double *out) {
    char *end;
    *out = strtod(text, &end);
    if (end == text || *end) return ct_fail("%s %s: not a number", option, text);
    return 0;
}

static int options_of(const prune_args *a, ct_prune_options *o) {
    *o = (ct_prune_options){.method = (ct_prune_method)ct_prune_method_parse(a->method), .norm_order = 1, .nm_n = 2,
                            .nm_m = 4, .targets = a->targets, .allow_norm_embedding = a->include_norms_embeddings,
                            .mlp_channels = a->mlp_channels, .seed = 1234};
    double v;
    if (a->amount) CT_TRY(number("--amount", a->amount, &o->amount.fraction));
    if (a->count) {
        char *end;
        long long k = strtoll(a->count, &end, 10);
        if (end == a->count || *end || k < 0) return ct_fail("--count %s: give a whole number >= 0", a->count);
        o->amount = (ct_prune_amount){.count = k, .is_count = true};
    }
    if (a->n) CT_TRY(number("--n", a->n, &o->norm_order));
    if (a->dim) {
        CT_TRY(number("--dim", a->dim, &v));
        o->dim = (int)v;
    }
    if (a->seed) {
        CT_TRY(number("--seed", a->seed, &v));
        o->seed = (uint64_t)v;
    }
    if (a->nm && sscanf(a->nm, "%d:%d", &o->nm_n, &o->nm_m) != 2)
        return ct_fail("--nm %s: write N:M, e.g. 2:4", a->nm);
    return ct_prune_check_options(o);
}

/* The serving files of a model folder (labels, task, chat template settings) come along. */
static int copy_serving_files(const char *from, const char *out) {
    static const char *const files[] = {"ctune_task.json", "labels.json"};
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        char *src = ct_path_join(from, files[i]), *dst = ct_path_join(out, files[i]);
        size_t len = 0;
        char *text = src && ct_is_file(src) ? ct_read_file(src, 1 << 26, &len) : NULL;
        int rc = text ? ct_atomic_write_file(dst, text, len) : 0;
        free(text);
        free(src);
        free(dst);
        CT_TRY(rc);
    }
    return 0;
}

static int write_report(const char *out, cJSON *report, const prune_args *a) {
    cJSON_AddStringToObject(report, "method", a->method);
    cJSON_AddStringToObject(report, "model", a->model);
    char *text = cJSON_Print(report);
    char *path = ct_path_join(out, "prune_report.json");
    int rc = text && path ? ct_atomic_write_file(path, text, strlen(text)) : ct_fail("out of memory");
    free(text);
    free(path);
    return rc;
}

static int run(const prune_args *a, ct_model_source *src) {
    ct_prune_options o;
    CT_TRY(options_of(a, &o));
    CT_TRY(ct_prune_model(src->model, &o));
    ct_llama *written = src->model, *small = NULL;
    if (a->compact) {
        small = ct_prune_compact_mlp(src->model);
        if (!small) return -1;
        written = small;
        printf("compact: intermediate_size %lld -> %lld\n", (long long)src->model->config.intermediate_size,
               (long long)small->config.intermediate_size);
    }
    void *json = NULL;
    int rc = ct_prune_report(src->model, NULL, stdout, &json);
    char scratch[] = "/tmp/ctune-prune-XXXXXX";
    const char *tokenizer_dir = src->tokenizer_dir;
    if (rc == 0 && !tokenizer_dir) { /* a checkpoint carries its tokenizer files inside */
        if (!mkdtemp(scratch)) rc = ct_fail("cannot make a scratch folder in /tmp for the tokenizer files");
        else if ((rc = ct_trainer_extract_tokenizer(src->loaded_from, scratch)) == 0) tokenizer_dir = scratch;
    }
    if (rc == 0) rc = ct_llama_save(written, a->out, tokenizer_dir, CT_F32);
    if (rc == 0 && ct_is_dir(src->loaded_from)) rc = copy_serving_files(src->loaded_from, a->out);
    if (rc == 0) rc = write_report(a->out, json, a);
    if (tokenizer_dir == scratch) ct_remove_tree(scratch);
    cJSON_Delete(json);
    ct_llama_free(small);
    return rc;
}

int ct_cmd_prune(int argc, char **argv) {
    prune_args a = {0};
    int parsed = parse(argc, argv, &a);
    if (parsed) return parsed == 1 ? 0 : 2;
    ct_model_source src;
    if (ct_model_source_open(&src, a.model) < 0) {
        fprintf(stderr, "ctune " CMD ": %s\n", ct_last_error());
        return 1;
    }
    int rc = run(&a, &src);
    if (rc == 0) printf("pruned model: %s (from %s)\n", a.out, src.loaded_from);
    else fprintf(stderr, "ctune " CMD ": %s\n", ct_last_error());
    if (src.tokenizer != src.model->tokenizer) ct_tokenizer_free(src.tokenizer);
    ct_llama_free(src.model);
    free(src.tokenizer_dir);
    free(src.recipe_yaml);
    return rc < 0 ? 1 : 0;
}
