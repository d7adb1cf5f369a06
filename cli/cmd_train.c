/* `ctune train RECIPE.yaml [key=value ...]`: run a recipe.
 *
 * Ctrl-C (SIGINT) or SIGTERM: the first saves a checkpoint at the next step boundary, says how to
 * resume, and the command exits 128 + the signal (130 for Ctrl-C, 143 for SIGTERM), so a script
 * running stages one after another stops; a second one quits at once without saving.
 *
 * Started by mpirun (docs/distributed.md), the process joins the job first and is one rank of a
 * data-parallel run; rank 0 prints results and errors. A signal then ends the rank at once: it
 * comes from mpirun ending the job, and a checkpoint would need every rank. Started any other
 * way the process never touches MPI. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"
#include "cli/commands.h"
#include "train/dist.h"
#include "train/trainer.h"

static volatile sig_atomic_t stop_flag, stop_signal;
/* Under mpirun a signal comes from the launcher tearing the job down (a rank failed, or the job
 * was cancelled), and a checkpoint needs every rank: the rank quits at once, rank 0 saying so. */
static char dist_stop_message[160];

/* Only async-signal-safe calls here: write and _exit. */
static void say(const char *text) {
    ssize_t ignored = write(STDERR_FILENO, text, strlen(text));
    (void)ignored;
}

static void on_interrupt(int sig) {
    if (ct_dist_active()) {
        say(dist_stop_message);
        _exit(128 + sig);
    }
    if (stop_flag) {
        say("\nctune train: quitting without saving; the steps since the last checkpoint are lost\n");
        _exit(128 + sig);
    }
    stop_flag = 1;
    stop_signal = sig;
    say(sig == SIGINT ? "\nctune train: interrupted: saving a checkpoint; press Ctrl-C again to quit without saving\n"
                      : "\nctune train: terminated: saving a checkpoint; send the signal again to quit without saving\n");
}

static int usage(FILE *out) {
    fprintf(out,
            "usage: ctune train RECIPE.yaml [key=value ...]\n\n"
            "Runs a training recipe. Any key can be overridden on the command line, e.g.\n"
            "  ctune train recipes/full_finetune_intent_zh.yaml optimizer.lr=1e-4 data.train=my.jsonl\n"
            "  ctune train recipes/pretrain_tiny_zh.yaml resume=runs/pretrain_tiny_zh/checkpoints/step-00000100.h5\n"
            "An output_dir that holds an earlier run is refused unless resume= continues it or overwrite=true\n"
            "replaces it. Ctrl-C saves a checkpoint at the next step boundary and exits 130; a second Ctrl-C\n"
            "quits at once without saving.\n"
            "Under mpirun (mpirun -np N ctune train ...) each process is one of N data-parallel ranks;\n"
            "train.grad_accum then counts the micro-batches of all ranks (docs/distributed.md).\n\n"
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
    if (recipe->checkpoint.select != CT_RECIPE_SELECT_LAST && result->model_dir[0])
        printf("model/ holds step %lld (checkpoint.select)\n", (long long)result->model_step);
    /* The checkpoint and model paths were logged as they were written. */
}

/* An interrupted run: 128 + the signal, so a script running stages one after another stops. */
static int interrupted(const ct_train_result *result) {
    if (result->checkpoint[0])
        printf("interrupted at step %lld: resume with resume=%s\n", (long long)result->steps, result->checkpoint);
    else
        printf("interrupted before the first step: nothing was written\n");
    fflush(stdout);
    return 128 + (stop_signal ? stop_signal : SIGINT);
}

/* The error of a failed run: printed by the rank that should (train/dist.h). */
static void report(void) {
    if (ct_dist_should_report()) fprintf(stderr, "ctune train: %s\n", ct_last_error());
}

/* Leaves the MPI job: cleanly, or, when a rank is gone or a collective is pending, by ending the
 * whole job (mpirun then stops the ranks that still wait). */
static int leave(int status) {
    if (!ct_dist_active()) return status;
    if (ct_dist_broken()) ct_dist_abort(status ? status : 1);
    ct_dist_finalize();
    return status;
}

static int train(int argc, char **argv) {
    if (argc < 2) return ct_usage_error("train", "a recipe file is needed");
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) return usage(stdout);
    if (argv[1][0] == '-') return ct_usage_error("train", "unknown option '%s'", argv[1]);
    for (int i = 2; i < argc; i++)
        if (!strchr(argv[i], '=')) return ct_usage_error("train", "'%s' is not a key=value override", argv[i]);
    ct_recipe recipe;
    if (ct_recipe_resolve(&recipe, argv[1], argc - 2, argv + 2) < 0) { /* this rank's own mistake */
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
    bool root = ct_dist_rank() == 0;
    if (rc == 0 && !result.interrupted && root) print_result(&recipe, &result);
    ct_recipe_free(&recipe);
    if (rc < 0) {
        report();
        return 1;
    }
    if (result.interrupted && !root) return 128 + (stop_signal ? stop_signal : SIGINT);
    return result.interrupted ? interrupted(&result) : 0;
}

int ct_cmd_train(int argc, char **argv) {
    if (ct_dist_launched() && argc >= 2 && argv[1][0] != '-' && ct_dist_init() < 0) {
        fprintf(stderr, "ctune train: %s\n", ct_last_error());
        return 1;
    }
    if (ct_dist_active() && ct_dist_rank() == 0)
        snprintf(dist_stop_message, sizeof dist_stop_message,
                 "ctune train: stopped by mpirun's signal (another rank failed, or the job was cancelled); the last "
                 "checkpoint is intact\n");
    return leave(train(argc, argv));
}
