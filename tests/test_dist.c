/* The ranks' collectives (train/dist.h), run by tests/cli/mpi_dist.cmake as
 * `mpirun -np 3 test_dist`; started without mpirun it checks the one-rank answers instead.
 *
 *   ordered sum   three ranks' vectors whose float sum depends on the association: the result is
 *                 ((x0 + x1) + x2) on every rank, element for element, through blocks of 7
 *                 floats and chunks of unequal length (the test checks that x0 + (x1 + x2)
 *                 differs somewhere, so a reordered sum fails it)
 *   gather        ranges of unequal length (one empty) from their ranks to all
 *   agree         a failure on rank 1 reaches the others with its message
 *   check_same    a hash that differs on rank 2 is refused on every rank, naming rank 2 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "core/error.h"
#include "tests/ct_test.h"
#include "train/dist.h"

enum { N = 1000 };

/* Rank r's element i: large values of opposite signs plus a small one, so the order of the two
 * additions changes the rounded result for many i. */
static float value(int r, int i) {
    if (r == 0) return 1.0e8f + (float)i * 3.0f;
    if (r == 1) return -1.0e8f + (float)i * 0.5f;
    return 0.3f + (float)i * 1.0e-3f;
}

static void check_ordered_sum(int rank, int size) {
    static float x[N], scratch[N + 16];
    for (int i = 0; i < N; i++) x[i] = value(rank, i);
    ct_dist_set_block(7);
    CHECK(ct_dist_sum_floats_ordered(x, N, scratch) == 0, "ordered sum: %s", ct_last_error());
    ct_dist_set_block(CT_DIST_BLOCK);
    int wrong = 0, order_matters = 0;
    for (int i = 0; i < N; i++) {
        float expected = value(0, i);
        for (int r = 1; r < size; r++) expected += value(r, i);
        float other = value(0, i) + (value(1, i) + value(2, i));
        if (x[i] != expected) wrong++;
        if (other != expected) order_matters++;
    }
    CHECK(wrong == 0, "rank %d: %d of %d elements differ from ((x0 + x1) + x2)", rank, wrong, N);
    CHECK(order_matters > 100, "the values do not tell the two associations apart (%d of %d)", order_matters, N);
}

static void check_gather(int rank, int size) {
    static float x[N];
    int64_t offsets[4] = {0, 400, 400, N}; /* rank 1's range is empty */
    for (int i = 0; i < N; i++) x[i] = -1;
    for (int64_t i = offsets[rank]; i < offsets[rank + 1]; i++) x[i] = (float)(rank * 10000 + i);
    ct_dist_set_block(13);
    CHECK(ct_dist_allgather_floats(x, offsets) == 0, "gather: %s", ct_last_error());
    ct_dist_set_block(CT_DIST_BLOCK);
    int wrong = 0;
    for (int r = 0; r < size; r++)
        for (int64_t i = offsets[r]; i < offsets[r + 1]; i++) wrong += x[i] != (float)(r * 10000 + i);
    CHECK(wrong == 0, "rank %d: %d gathered elements are wrong", rank, wrong);
}

static void check_agree(int rank) {
    int status = rank == 1 ? ct_fail("data.train=x.jsonl: boom") : 0;
    int rc = ct_dist_agree(status);
    CHECK(rc < 0, "rank %d: a failure on rank 1 was not seen", rank);
    if (rank != 1)
        CHECK(strstr(ct_last_error(), "rank 1 stopped: data.train=x.jsonl: boom") != NULL,
              "rank %d: the message is '%s'", rank, ct_last_error());
    CHECK(ct_dist_agree(0) == 0, "rank %d: all well is not 0", rank);
}

static void check_same(int rank) {
    CHECK(ct_dist_check_same(42, "recipe", "fix it") == 0, "equal hashes refused: %s", ct_last_error());
    int rc = ct_dist_check_same(rank == 2 ? 7 : 42, "recipe", "start every rank with the same recipe");
    CHECK(rc < 0 && strstr(ct_last_error(), "rank 2 runs another recipe than rank 0") &&
              strstr(ct_last_error(), "start every rank with the same recipe"),
          "rank %d: rc %d, '%s'", rank, rc, ct_last_error());
}

/* Without mpirun: one rank, and every collective is the identity. */
static int single_process(void) {
    static float x[N], scratch[N];
    for (int i = 0; i < N; i++) x[i] = value(0, i);
    CHECK(!ct_dist_active() && ct_dist_rank() == 0 && ct_dist_size() == 1, "a plain process is rank 0 of 1");
    CHECK(ct_dist_sum_floats_ordered(x, N, scratch) == 0 && x[5] == value(0, 5), "the sum over one rank");
    CHECK(ct_dist_agree(0) == 0 && ct_dist_check_same(1, "recipe", "") == 0, "agree and check_same on one rank");
    return ct_test_finish("test_dist (one process)");
}

int main(void) {
    if (!ct_dist_launched()) return single_process();
    if (ct_dist_init() < 0) {
        printf("SKIPPED: %s\n", ct_last_error());
        return 77;
    }
    int rank = ct_dist_rank(), size = ct_dist_size();
    ct_dist_set_timeout(60);
    CHECK(size == 3, "run with mpirun -np 3 (got %d ranks)", size);
    if (size == 3) {
        check_ordered_sum(rank, size);
        check_gather(rank, size);
        check_agree(rank);
        check_same(rank);
    }
    char name[32];
    snprintf(name, sizeof name, "test_dist rank %d", rank);
    int rc = ct_test_finish(name);
    ct_dist_finalize();
    return rc;
}
