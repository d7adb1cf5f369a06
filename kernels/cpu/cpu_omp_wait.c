/* OpenMP's wait policy chosen at start from the machine's load (kernels/cpu/cpu_omp_wait.h). */
#include "kernels/cpu/cpu_omp_wait.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CHOSEN_ENV "CT_OMP_WAIT_CHOSEN"
#define SAMPLES 3

static char description[160];

int ct_loadavg_running(const char *text) {
    double one, five, fifteen;
    int running, total;
    if (!text || sscanf(text, "%lf %lf %lf %d/%d", &one, &five, &fifteen, &running, &total) != 5) return -1;
    return running;
}

static int sample_running(void) {
    char text[128] = {0};
    FILE *f = fopen("/proc/loadavg", "r");
    if (!f) return -1;
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    return ct_loadavg_running(text);
}

static int compare_ints(const void *a, const void *b) { return *(const int *)a - *(const int *)b; }

int ct_other_runnable_tasks(void) {
    int samples[SAMPLES];
    for (int i = 0; i < SAMPLES; i++) {
        if ((samples[i] = sample_running()) < 0) return -1;
        if (i + 1 < SAMPLES) nanosleep(&(struct timespec){0, 1000000}, NULL);
    }
    qsort(samples, SAMPLES, sizeof *samples, compare_ints);
    const int others = samples[SAMPLES / 2] - 1; /* the count includes this process, running */
    return others > 0 ? others : 0;
}

/* One other runnable task is enough: with 2 threads on 2 cores it takes a core's slices from one
 * of them, and the other would spin through its own slices at every barrier. */
bool ct_omp_wait_passive_for(int other_runnable) { return other_runnable >= 1; }

void ct_omp_wait_select(char **argv) {
    const char *chosen = getenv(CHOSEN_ENV), *policy = getenv("OMP_WAIT_POLICY"), *spin = getenv("GOMP_SPINCOUNT");
    if (chosen && policy) {
        snprintf(description, sizeof description, "omp wait: %s (chosen at start: %s other runnable tasks)", policy,
                 chosen);
        return;
    }
    if (policy || spin) {
        snprintf(description, sizeof description, "omp wait: set by the user (OMP_WAIT_POLICY=%s, GOMP_SPINCOUNT=%s)",
                 policy ? policy : "unset", spin ? spin : "unset");
        return;
    }
    const int others = ct_other_runnable_tasks();
    if (others < 0 || !ct_omp_wait_passive_for(others)) {
        snprintf(description, sizeof description, "omp wait: default (spin, then sleep; %s)",
                 others < 0 ? "/proc/loadavg unreadable" : "machine idle at start");
        return;
    }
    char value[16];
    snprintf(value, sizeof value, "%d", others);
    setenv(CHOSEN_ENV, value, 1);
    setenv("OMP_WAIT_POLICY", "passive", 1);
    fflush(NULL);
    execv("/proc/self/exe", argv);
    /* Still here: the policy libgomp already read stays. */
    unsetenv("OMP_WAIT_POLICY");
    unsetenv(CHOSEN_ENV);
    snprintf(description, sizeof description, "omp wait: default (could not run again with a passive policy)");
}

const char *ct_omp_wait_describe(void) {
    return description[0] ? description : "omp wait: default (not chosen: ct_omp_wait_select was not called)";
}
