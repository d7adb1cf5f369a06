/* `ctune train RECIPE.yaml [key=value ...]`: run a recipe. Ctrl-C saves a checkpoint at the next
 * step boundary and exits cleanly; a second Ctrl-C exits at once. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "autograd/error.h"
#include "train/commands.h"
#include "train/trainer.h"

static volatile sig_atomic_t stop_flag;

static void on_interrupt(int sig) {
    if (stop_flag) _exit(128 + sig);
    stop_flag = 1;
}

static int usage(FILE *out) {
    fprintf(out,
            "usage: ctune train RECIPE.yaml [key=value ...]\n\n"
            "Runs a training recipe. Any key can be overridden on the command line, e.g.\n"
            "  ctune train recipes/full_finetune_intent_zh.yaml optimizer.lr=1e-4 data.train=my.jsonl\n"
            "  ctune train recipes/pretrain_tiny_zh.yaml resume=runs/pretrain_tiny_zh/checkpoints/step-00000100.h5\n"
            "Ctrl-C saves a checkpoint at the next step boundary and stops.\n\n"
            "Recipes in recipes/:\n");
    ct_recipe_print_list(out, "recipes");
    fprintf(out, "\nKeys (type, default, meaning):\n");
    ct_recipe_print_help(out);
    return 0;
}

static void print_result(const ct_recipe *recipe, const ct_train_result *result) {
    printf("steps %lld, final loss %.4f\n", (long long)result->steps, result->last_loss);
    bool intent = recipe->data.format == CT_RECIPE_DATA_INTENT || recipe->data.format == CT_RECIPE_DATA_DIALOG_INTENT;
    if (result->evaluated && intent)
        printf("val accuracy %.4f (length-normalized %.4f), macro F1 %.4f\n", result->accuracy,
               result->accuracy_length_normalized, result->macro_f1);
    if (result->evaluated) printf("val perplexity %.3f\n", result->perplexity);
    if (result->checkpoint[0]) printf("checkpoint %s\n", result->checkpoint);
    if (result->model_dir[0]) printf("model %s\n", result->model_dir);
}

int ct_cmd_train(int argc, char **argv) {
    if (argc < 2) return ct_usage_error("train", "a recipe file is needed");
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) return usage(stdout);
    if (argv[1][0] == '-') return ct_usage_error("train", "unknown option '%s'", argv[1]);
    for (int i = 2; i < argc; i++)
        if (!strchr(argv[i], '=')) return ct_usage_error("train", "'%s' is not a key=value override", argv[i]);
    ct_recipe recipe;
    if (ct_recipe_resolve(&recipe, argv[1], argc - 2, argv + 2) < 0) {
        fprintf(stderr, "ctune train: %s\n", ct_last_error());
        return 1;
    }
    struct sigaction action = {.sa_handler = on_interrupt};
    sigemptyset(&action.sa_mask);
    sigaction(SIGINT, &action, NULL);
    sigaction(SIGTERM, &action, NULL);
    ct_train_hooks hooks = {.stop_requested = &stop_flag};
    ct_train_result result;
    int rc = ct_train(&recipe, &hooks, &result);
    if (rc == 0) print_result(&recipe, &result);
    ct_recipe_free(&recipe);
    if (rc < 0) {
        fprintf(stderr, "ctune train: %s\n", ct_last_error());
        return 1;
    }
    if (result.interrupted) printf("interrupted: resume with resume=%s\n", result.checkpoint);
    return 0;
}
