/* `ctune run PIPELINE.yaml [--stage NAME] [key=value ...]`: the stages of a pipeline file
 * (cli/pipeline.h, docs/pipeline.md), finished ones skipped, then the table.
 *
 * Ctrl-C: a training stage saves a checkpoint at the next step boundary, another stage finishes
 * its command; the pipeline stops there and exits 130. Running it again continues from the last
 * finished stage. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/commands.h"
#include "cli/pipeline.h"
#include "core/error.h"

static volatile sig_atomic_t stop_flag;

static void on_interrupt(int sig) {
    if (stop_flag) _exit(128 + sig);
    stop_flag = 1;
    static const char text[] = "\nctune run: interrupted: stopping after the current step or command; press Ctrl-C "
                               "again to quit at once\n";
    ssize_t ignored = write(STDERR_FILENO, text, sizeof text - 1);
    (void)ignored;
}

static int usage(void) {
    printf("usage: ctune run PIPELINE.yaml [--stage NAME] [key=value ...]\n\n"
           "Runs the stages of a pipeline file into its run folder (output_dir) and prints the table of\n"
           "the models it made: recipes/intent_zh_pipeline.yaml goes from the bundled corpus to a served\n"
           "INT8 intent model. Stages: %s.\n"
           "A stage that finished with the same configuration, data and input is skipped; one whose\n"
           "configuration or input changed runs again; one whose files were edited after it finished is\n"
           "refused. An interrupted pipeline continues from the last finished stage.\n\n"
           "  --stage NAME   run only this stage (its input stage must have finished)\n"
           "  key=value      a key of the pipeline file: output_dir=DIR, adapt.recipe=recipes/lora_intent_zh.yaml,\n"
           "                 distill.set.train.max_steps=200 (a recipe key of a stage), serve.server=PATH\n\n"
           "docs/pipeline.md describes the stages, the records and the table.\n",
           ct_stage_list());
    return 0;
}

int ct_cmd_run(int argc, char **argv) {
    if (argc < 2) return ct_usage_error("run", "a pipeline file is needed");
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) return usage();
    if (argv[1][0] == '-') return ct_usage_error("run", "unknown option '%s'", argv[1]);
    ct_pipeline_options options = {.only_stage = -1, .stop_requested = &stop_flag};
    char *overrides[256];
    int n = 0;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--stage")) {
            if (i + 1 >= argc) return ct_usage_error("run", "--stage needs a stage name (%s)", ct_stage_list());
            options.only_stage = ct_stage_find(argv[++i]);
            if (options.only_stage < 0)
                return ct_usage_error("run", "--stage %s: no such stage (%s)", argv[i], ct_stage_list());
        } else if (argv[i][0] == '-') {
            return ct_usage_error("run", "unknown option '%s'", argv[i]);
        } else if (!strchr(argv[i], '=')) {
            return ct_usage_error("run", "'%s' is not a key=value override", argv[i]);
        } else if (n < (int)(sizeof overrides / sizeof overrides[0])) {
            overrides[n++] = argv[i];
        } else {
            return ct_usage_error("run", "too many overrides");
        }
    }
    ct_pipeline p;
    if (ct_pipeline_load(&p, argv[1], n, overrides) < 0) {
        fprintf(stderr, "ctune run: %s\n", ct_last_error());
        return 1;
    }
    struct sigaction action = {.sa_handler = on_interrupt};
    sigemptyset(&action.sa_mask);
    sigaction(SIGINT, &action, NULL);
    sigaction(SIGTERM, &action, NULL);
    int rc = ct_pipeline_run(&p, &options);
    if (rc < 0) fprintf(stderr, "ctune run: %s\n", ct_last_error());
    if (rc == 1)
        fprintf(stderr, "ctune run: interrupted; run the same command again to continue from the last finished stage\n");
    ct_pipeline_free(&p);
    return rc < 0 ? 1 : rc == 1 ? 130 : 0;
}
