/* Ranks of a data-parallel run over MPI: see train/dist.h. */
#include "train/dist.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/error.h"

bool ct_dist_launched(void) {
    /* Open MPI's mpirun sets OMPI_COMM_WORLD_SIZE; PMIx and PMI launchers (srun, MPICH's
     * hydra) set PMIX_RANK or PMI_SIZE. */
    return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMIX_RANK") || getenv("PMI_SIZE");
}

/* A collective that timed out or failed leaves the job unusable. */
static bool broken;
bool ct_dist_broken(void) { return broken; }

#ifndef CT_HAVE_MPI

int ct_dist_init(void) {
    return ct_fail("this ctune was built without MPI, so it cannot run as one of several ranks; install "
                   "libopenmpi-dev and rebuild (docs/distributed.md), or run it without mpirun");
}
bool ct_dist_active(void) { return false; }
void ct_dist_set_block(int64_t floats) { (void)floats; }
bool ct_dist_should_report(void) { return true; }
int ct_dist_rank(void) { return 0; }
int ct_dist_size(void) { return 1; }
void ct_dist_finalize(void) {}
void ct_dist_abort(int code) { exit(code); }
void ct_dist_set_timeout(double seconds) { (void)seconds; }
int ct_dist_check_same(uint64_t hash, const char *what, const char *fix) {
    (void)hash, (void)what, (void)fix;
    return 0;
}
int ct_dist_agree(int status) { return status; }
int ct_dist_allgather_doubles(const double *mine, int n, double *all) {
    memcpy(all, mine, sizeof *all * (size_t)n);
    return 0;
}
int ct_dist_sum_int64(int64_t *x, int n) {
    (void)x, (void)n;
    return 0;
}
int ct_dist_broadcast_bytes(void *data, int n) {
    (void)data, (void)n;
    return 0;
}
int ct_dist_local_rank(void) { return 0; }
int ct_dist_sum_floats_ordered(float *x, int64_t n, float *scratch) {
    (void)x, (void)n, (void)scratch;
    return 0;
}
int ct_dist_allgather_floats(float *x, const int64_t *offsets) {
    (void)x, (void)offsets;
    return 0;
}
int ct_dist_send_floats(int to, int tag, const float *x, int64_t n) {
    (void)to, (void)tag, (void)x, (void)n;
    return ct_fail("no other rank to send to (built without MPI)");
}
int ct_dist_recv_floats(int from, int tag, float *x, int64_t n) {
    (void)from, (void)tag, (void)x, (void)n;
    return ct_fail("no other rank to receive from (built without MPI)");
}

#else

#include <mpi.h>

static bool active;
static int rank, size = 1;
static double timeout_s = 600;

int ct_dist_init(void) {
    int provided = 0;
    if (MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
        return ct_fail("MPI_Init failed: check the mpirun command line (docs/distributed.md)");
    /* Errors come back as codes, so a failed call is a message, not MPI's own abort. */
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    active = true;
    return 0;
}

bool ct_dist_active(void) { return active; }
bool ct_dist_should_report(void) { return !active || rank == 0 || broken; }
int ct_dist_rank(void) { return active ? rank : 0; }
int ct_dist_size(void) { return active ? size : 1; }
void ct_dist_set_timeout(double seconds) { timeout_s = seconds > 0 ? seconds : 600; }

void ct_dist_finalize(void) {
    if (active) MPI_Finalize();
    active = false;
}

void ct_dist_abort(int code) {
    fflush(stdout);
    fflush(stderr);
    if (active) MPI_Abort(MPI_COMM_WORLD, code);
    exit(code);
}

/* Waits for a request until the deadline. MPI_Test also drives MPI's progress; between tests the
 * waiting rank sleeps briefly, so it does not take a core from a rank still computing. */
static int wait_for(MPI_Request *request, const char *what) {
    double deadline = MPI_Wtime() + timeout_s;
    for (long polls = 0;; polls++) {
        int done = 0;
        if (MPI_Test(request, &done, MPI_STATUS_IGNORE) != MPI_SUCCESS) {
            broken = true;
            return ct_fail("%s: MPI reported an error (a rank died?); the last checkpoint is intact", what);
        }
        if (done) return 0;
        if (MPI_Wtime() > deadline) {
            broken = true;
            return ct_fail("%s: not every one of the %d ranks answered within train.dist_timeout_s=%g s (a rank died "
                           "or hangs); stopped, the last checkpoint is intact",
                           what, size, timeout_s);
        }
        if (polls > 200) nanosleep(&(struct timespec){0, 100000}, NULL);
    }
}

static int started(int rc, MPI_Request *request, const char *what) {
    if (rc != MPI_SUCCESS) {
        broken = true;
        return ct_fail("%s: MPI could not start it (a rank died?)", what);
    }
    return wait_for(request, what);
}

int ct_dist_check_same(uint64_t hash, const char *what, const char *fix) {
    if (!active) return 0;
    uint64_t *all = ct_calloc((size_t)size, sizeof *all, "the ranks' hashes");
    if (!all) return -1;
    MPI_Request request;
    int rc = started(MPI_Iallgather(&hash, 1, MPI_UINT64_T, all, 1, MPI_UINT64_T, MPI_COMM_WORLD, &request), &request,
                     what);
    for (int r = 1; rc == 0 && r < size; r++)
        if (all[r] != all[0])
            rc = ct_fail("rank %d runs another %s than rank 0 (hash %016llx, rank 0 %016llx); %s", r, what,
                         (unsigned long long)all[r], (unsigned long long)all[0], fix);
    free(all);
    return rc;
}

/* One line of a rank's failure, carried to the others. */
enum { MESSAGE_BYTES = 480 };
typedef struct {
    int32_t status;
    char message[MESSAGE_BYTES];
} rank_status;

int ct_dist_agree(int status) {
    if (!active) return status;
    rank_status mine = {.status = status < 0 ? -1 : 0}, *all = ct_calloc((size_t)size, sizeof *all, "the ranks' status");
    if (!all) return -1;
    if (status < 0) snprintf(mine.message, sizeof mine.message, "%s", ct_last_error());
    MPI_Request request;
    int rc = started(MPI_Iallgather(&mine, (int)sizeof mine, MPI_BYTE, all, (int)sizeof mine, MPI_BYTE, MPI_COMM_WORLD,
                                    &request),
                     &request, "agreeing on the ranks' status");
    for (int r = 0; rc == 0 && status == 0 && r < size; r++)
        if (all[r].status < 0) {
            all[r].message[MESSAGE_BYTES - 1] = '\0';
            rc = ct_fail("rank %d stopped: %s", r, all[r].message);
        }
    free(all);
    return rc < 0 ? -1 : status;
}

int ct_dist_allgather_doubles(const double *mine, int n, double *all) {
    if (!active) {
        memcpy(all, mine, sizeof *all * (size_t)n);
        return 0;
    }
    MPI_Request request;
    return started(MPI_Iallgather(mine, n, MPI_DOUBLE, all, n, MPI_DOUBLE, MPI_COMM_WORLD, &request), &request,
                   "gathering the ranks' losses");
}

int ct_dist_sum_int64(int64_t *x, int n) {
    if (!active) return 0;
    MPI_Request request;
    return started(MPI_Iallreduce(MPI_IN_PLACE, x, n, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD, &request), &request,
                   "adding up the ranks' counts");
}

int ct_dist_broadcast_bytes(void *data, int n) {
    if (!active) return 0;
    MPI_Request request;
    return started(MPI_Ibcast(data, n, MPI_BYTE, 0, MPI_COMM_WORLD, &request), &request, "sharing rank 0's NCCL id");
}

int ct_dist_local_rank(void) {
    if (!active) return 0;
    MPI_Comm node;
    if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &node) != MPI_SUCCESS) return 0;
    int local = 0;
    MPI_Comm_rank(node, &local);
    MPI_Comm_free(&node);
    return local;
}

/* MPI counts are int: long vectors go in blocks. */
static int64_t block_floats = CT_DIST_BLOCK;

void ct_dist_set_block(int64_t floats) {
    block_floats = floats >= 1 && floats <= CT_DIST_BLOCK ? floats : CT_DIST_BLOCK;
}

static int64_t chunk_start(int64_t n, int c) { return n * c / size; }

/* One block of ct_dist_sum_floats_ordered: rank c receives every rank's chunk c, adds them up in
 * rank order, and the sums are gathered back. */
static int sum_block(float *x, int64_t n, float *scratch, int *counts, int *displs, int *rcounts, int *rdispls) {
    int64_t mine = chunk_start(n, rank + 1) - chunk_start(n, rank);
    for (int c = 0; c < size; c++) {
        counts[c] = (int)(chunk_start(n, c + 1) - chunk_start(n, c));
        displs[c] = (int)chunk_start(n, c);
        rcounts[c] = (int)mine;
        rdispls[c] = (int)(mine * c);
    }
    MPI_Request request;
    CT_TRY(started(MPI_Ialltoallv(x, counts, displs, MPI_FLOAT, scratch, rcounts, rdispls, MPI_FLOAT, MPI_COMM_WORLD,
                                  &request),
                   &request, "reducing the gradients"));
    float *out = x + chunk_start(n, rank);
    for (int64_t i = 0; i < mine; i++) {
        float sum = scratch[i];
        for (int r = 1; r < size; r++) sum += scratch[(int64_t)r * mine + i];
        out[i] = sum;
    }
    return started(MPI_Iallgatherv(MPI_IN_PLACE, 0, MPI_FLOAT, x, counts, displs, MPI_FLOAT, MPI_COMM_WORLD, &request),
                   &request, "sharing the reduced gradients");
}

int ct_dist_sum_floats_ordered(float *x, int64_t n, float *scratch) {
    if (!active || size == 1) return 0;
    int *lists = ct_calloc((size_t)size * 4, sizeof *lists, "the reduction's counts");
    if (!lists) return -1;
    int rc = 0;
    for (int64_t done = 0; rc == 0 && done < n; done += block_floats) {
        int64_t len = n - done < block_floats ? n - done : block_floats;
        rc = sum_block(x + done, len, scratch, lists, lists + size, lists + 2 * size, lists + 3 * size);
    }
    free(lists);
    return rc;
}

/* One broadcast per rank (its range, in blocks), so no count or displacement exceeds an int. */
int ct_dist_allgather_floats(float *x, const int64_t *offsets) {
    if (!active || size == 1) return 0;
    for (int r = 0; r < size; r++)
        for (int64_t done = offsets[r]; done < offsets[r + 1]; done += block_floats) {
            int len = (int)(offsets[r + 1] - done < block_floats ? offsets[r + 1] - done : block_floats);
            MPI_Request request;
            CT_TRY(started(MPI_Ibcast(x + done, len, MPI_FLOAT, r, MPI_COMM_WORLD, &request), &request,
                           "sharing the updated parameters"));
        }
    return 0;
}

/* x to or from a peer in blocks, so no count exceeds an int; each block waits under the deadline. */
static int point_to_point(bool send, int peer, int tag, float *x, int64_t n) {
    for (int64_t done = 0; done < n; done += block_floats) {
        int len = (int)(n - done < block_floats ? n - done : block_floats);
        MPI_Request request;
        int status = send ? MPI_Isend(x + done, len, MPI_FLOAT, peer, tag, MPI_COMM_WORLD, &request)
                          : MPI_Irecv(x + done, len, MPI_FLOAT, peer, tag, MPI_COMM_WORLD, &request);
        CT_TRY(started(status, &request,
                       send ? "sending optimizer state to rank 0" : "receiving optimizer state from another rank"));
    }
    return 0;
}

/* MPI_Isend only reads x; the cast lets one helper serve both directions. */
int ct_dist_send_floats(int to, int tag, const float *x, int64_t n) { return point_to_point(true, to, tag, (float *)x, n); }

int ct_dist_recv_floats(int from, int tag, float *x, int64_t n) { return point_to_point(false, from, tag, x, n); }

#endif
