/* `ctune demo`: what exists so far, end to end — an MLP trained with AdamW on a toy task, the
 * memory the arenas hold, and a second run proving the losses are bit-identical. The one-command
 * pipeline (`ctune run recipes/intent_zh_pipeline.yaml`) replaces it once it exists. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/error.h"
#include "cli/commands.h"
#include "train/toy_task.h"

static int demo_usage(void) {
    printf("usage: ctune demo [--steps N] [--seed S]\n\n"
           "Trains a small MLP (tanh, AdamW, gradient clipping) to memorize random points, prints\n"
           "its loss curve and memory use, then trains it again to show the losses are bit-identical.\n");
    return 0;
}

static int parse_args(int argc, char **argv, ct_toy_config *config) {
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) return demo_usage(), 1;
        if ((!strcmp(arg, "--steps") || !strcmp(arg, "--seed")) && i + 1 < argc) {
            char *end;
            unsigned long long value = strtoull(argv[++i], &end, 10);
            if (*end || value == 0 || (arg[2] == 's' && arg[3] == 't' && value > 1000000))
                return ct_usage_error("demo", "%s needs a positive integer, got '%s'", arg, argv[i]);
            if (arg[3] == 't') config->steps = (int)value;
            else config->seed = value;
            continue;
        }
        return ct_usage_error("demo", "unknown option '%s'", arg);
    }
    return 0;
}

int ct_cmd_demo(int argc, char **argv) {
    ct_toy_config config = ct_toy_default_config();
    int parsed = parse_args(argc, argv, &config);
    if (parsed) return parsed == 1 ? 0 : parsed;
    double *first = calloc((size_t)config.steps, sizeof *first), *second = calloc((size_t)config.steps, sizeof *second);
    if (!first || !second) {
        fprintf(stderr, "ctune demo: out of memory for %d losses\n", config.steps);
        return 1;
    }
    ct_toy_report a = {.losses = first}, b = {.losses = second};
    printf("ctune demo: MLP %lld-%lld-%lld on %lld random points, AdamW lr %g, %d threads\n",
           (long long)config.inputs, (long long)config.hidden, (long long)config.classes, (long long)config.points,
           config.lr, omp_get_max_threads());
    int status = ct_toy_train(&config, &a) == 0 && ct_toy_train(&config, &b) == 0 ? 0 : 1;
    if (status) {
        fprintf(stderr, "ctune demo: %s\n", ct_last_error());
    } else {
        int every = config.steps >= 10 ? config.steps / 10 : 1;
        for (int s = 0; s < config.steps; s++)
            if (s % every == 0 || s == config.steps - 1) printf("step %5d  loss %.6f\n", s + 1, first[s]);
        int identical = memcmp(first, second, (size_t)config.steps * sizeof *first) == 0;
        printf("activation memory: %zu bytes reserved after step 1, %zu after step %d\n", a.reserved_after_first,
               a.reserved_at_end, config.steps);
        printf("second run: final loss %a vs %a: %s\n", first[config.steps - 1], second[config.steps - 1],
               identical ? "bit-identical" : "DIFFERENT");
        status = identical ? 0 : 1;
    }
    free(first);
    free(second);
    ct_memory_release_all();
    return status;
}
