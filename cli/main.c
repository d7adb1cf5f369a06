/* The ctune command line: subcommand dispatch. Each subcommand lives in train/cmd_<name>.c. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/error.h"
#include "cli/signal_thread.h"
#include "kernels/cpu/cpu_blas.h"
#include "kernels/cpu/cpu_omp_wait.h"
#include "cli/cmd_tokenizer.h"
#include "cli/commands.h"


static const ct_command commands[] = {
    {"demo", ct_cmd_demo, "train a small MLP with AdamW and print its losses (a quick self-check)"},
    {"tokenize", ct_cmd_tokenize, "print the token ids of a text with a Hugging Face tokenizer.json"},
    {"generate", ct_cmd_generate, "generate a reply with a model folder or .gguf file (chat template, greedy or sampling)"},
    {"run", ct_cmd_run, "run a pipeline file: corpus to a served INT8 intent model, ctune run recipes/intent_zh_pipeline.yaml"},
    {"train", ct_cmd_train, "run a training recipe: ctune train recipes/NAME.yaml [key=value ...]"},
    {"eval", ct_cmd_eval, "evaluate a model or checkpoint on a data file (intent accuracy, perplexity)"},
    {"template", ct_cmd_template, "print the prompt a model folder's chat template renders for a conversation"},
    {"export", ct_cmd_export, "write a trained model for other programs: PEFT adapter, merged HF folder, GGUF (Q8_0), INT8 safetensors"},
    {"prune", ct_cmd_prune, "prune a model (L1, global, Ln-structured, random, N:M) into a Hugging Face folder with its sparsity report"},
    {"logits", ct_cmd_logits, "write a model's next-token logits at every position of token sequences (raw f32)"},
    {"tokenizer", ct_cmd_tokenizer, "'tokenizer train': train a byte-level BPE tokenizer on a corpus"},
};
static const int n_commands = (int)(sizeof commands / sizeof commands[0]);

static void print_help(FILE *out) {
    fprintf(out,
            "ctune %s: fine-tune, distill, prune and export LLaMA-family models\n\n"
            "usage: ctune <command> [options]\n       ctune --help | --version\n\ncommands:\n",
            CT_VERSION);
    for (int i = 0; i < n_commands; i++)
        fprintf(out, "  %-12s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\n'ctune <command> --help' describes a command.\n");
}

int ct_usage_error(const char *cmd, const char *fmt, ...) {
    char message[512];
    va_list args;
    va_start(args, fmt);
    vsnprintf(message, sizeof message, fmt, args);
    va_end(args);
    fprintf(stderr, "ctune %s: %s (try 'ctune %s --help')\n", cmd, message, cmd);
    return 2;
}

int main(int argc, char **argv) {
    /* Before any other thread exists: SIGINT and SIGTERM go to a thread of their own, so that
     * no handler ever interrupts a computation (cli/signal_thread.h). */
    if (ct_signal_thread_start() < 0) fprintf(stderr, "ctune: %s\n", ct_last_error());
    /* Then: these may run ctune again, with OpenMP's threads sleeping at barriers on a busy
     * machine and with OpenBLAS's kernels matched to the CPU. */
    ct_omp_wait_select(argv);
    if (ct_blas_select(argv) < 0) {
        fprintf(stderr, "ctune: %s\n", ct_last_error());
        return 1;
    }
    if (ct_blas_warning()) fprintf(stderr, "ctune: %s\n", ct_blas_warning());
    if (argc < 2) {
        print_help(stderr);
        return 2;
    }
    const char *name = argv[1];
    if (!strcmp(name, "--help") || !strcmp(name, "-h") || !strcmp(name, "help")) {
        print_help(stdout);
        return 0;
    }
    if (!strcmp(name, "--version") || !strcmp(name, "-V")) {
        printf("ctune %s\n%s\n", CT_VERSION, ct_blas_describe());
        return 0;
    }
    for (int i = 0; i < n_commands; i++)
        if (!strcmp(name, commands[i].name)) return commands[i].run(argc - 1, argv + 1);
    if (name[0] == '-')
        fprintf(stderr, "ctune: unknown option '%s' (try 'ctune --help')\n", name);
    else
        fprintf(stderr, "ctune: unknown command '%s' (try 'ctune --help')\n", name);
    return 2;
}
