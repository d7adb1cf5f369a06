/* OpenMP's wait policy, chosen when a program starts from how busy the machine is.
 *
 * libgomp's default lets a thread that reaches a barrier spin for up to 300,000 iterations before
 * it sleeps. On idle cores that is what makes a step's thousands of short parallel regions cheap;
 * on a machine where other processes want the cores too, a spinning thread burns the time slice
 * its descheduled partner needs, and a step slows several times more than its share of the CPU
 * (docs/PERF.md, "Steady under contention"). libgomp reads OMP_WAIT_POLICY only when it loads, so
 * ct_omp_wait_select, called first thing in main(), runs the program again with
 * OMP_WAIT_POLICY=passive when other processes are runnable at start (CT_OMP_WAIT_CHOSEN marks
 * the new process). A user's OMP_WAIT_POLICY or GOMP_SPINCOUNT is kept. Results do not change:
 * the thread count stays what the recipe says; only how idle threads wait does. */
#ifndef CT_CPU_OMP_WAIT_H
#define CT_CPU_OMP_WAIT_H

#include <stdbool.h>

/* The running count of /proc/loadavg's fourth field ("running/total"), or -1 if unreadable. */
int ct_loadavg_running(const char *loadavg_text);
/* Runnable tasks on the machine other than the caller: the median of a few samples of
 * /proc/loadavg taken a millisecond apart, less one; -1 if /proc/loadavg cannot be read. */
int ct_other_runnable_tasks(void);
/* Whether idle OpenMP threads should sleep at once (passive) given that many other runnable tasks. */
bool ct_omp_wait_passive_for(int other_runnable);
/* May replace the process (execv of /proc/self/exe with the same arguments); returns otherwise. */
void ct_omp_wait_select(char **argv);
/* One line for run logs: "omp wait: passive (chosen at start: 3 other runnable tasks)",
 * "omp wait: default (spin, then sleep; machine idle at start)" or "... set by the user (...)". */
const char *ct_omp_wait_describe(void);

#endif
