/* OpenMP's wait policy chosen from the load at start (kernels/cpu/cpu_omp_wait.h): reading
 * /proc/loadavg, seeing a competing process, the decision. */
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kernels/cpu/cpu_omp_wait.h"
#include "tests/ct_test.h"

static void check_loadavg_parsing(void) {
    CHECK(ct_loadavg_running("0.50 0.61 0.70 3/245 12345\n") == 3, "running of '3/245'");
    CHECK(ct_loadavg_running("26.38 25.12 18.40 28/249 23139") == 28, "running of '28/249'");
    CHECK(ct_loadavg_running("garbage") == -1, "garbage must read as -1");
    CHECK(ct_loadavg_running(NULL) == -1, "NULL must read as -1");
}

static void check_decision(void) {
    CHECK(!ct_omp_wait_passive_for(0), "an idle machine keeps libgomp's spinning");
    CHECK(ct_omp_wait_passive_for(1), "one competing process must make idle threads sleep");
    CHECK(ct_omp_wait_passive_for(25), "a busy machine must make idle threads sleep");
}

/* A busy child is one more runnable task: the count must see at least it. */
static void check_a_competitor_is_seen(void) {
    pid_t child = fork();
    if (child == 0) {
        for (volatile unsigned long i = 0;; i++) {}
    }
    CHECK(child > 0, "fork failed");
    if (child <= 0) return;
    usleep(50000);
    const int others = ct_other_runnable_tasks();
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    printf("other runnable tasks with one busy child: %d\n", others);
    CHECK(others >= 1, "a busy child process was not counted (%d other runnable tasks)", others);
}

int main(void) {
    check_loadavg_parsing();
    check_decision();
    check_a_competitor_is_seen();
    printf("%s\n", ct_omp_wait_describe());
    return ct_test_finish("test_omp_wait");
}
