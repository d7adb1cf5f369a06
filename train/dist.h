/* Ranks of a data-parallel run (docs/distributed.md), over MPI.
 *
 * A process started by mpirun (OMPI_COMM_WORLD_SIZE, PMIX_RANK or PMI_SIZE in its environment)
 * joins the job with ct_dist_init; any other process never calls into MPI and is rank 0 of 1, so
 * a plain `ctune train` runs exactly as a build without MPI does. Built without MPI
 * (CT_HAVE_MPI undefined), every function is the one-rank answer and ct_dist_init refuses.
 *
 * Every collective here waits with a deadline (ct_dist_set_timeout) instead of blocking: a rank
 * that died or hangs makes the others fail with a one-line message naming the collective, not
 * wait forever. Reductions are done in a fixed order (rank 0's part, plus rank 1's, plus ...),
 * so a result never depends on timing or on the MPI library's algorithm.
 *
 * The state is per process (one host thread calls these), like the tape and the arenas. */
#ifndef CT_DIST_H
#define CT_DIST_H

#include <stdbool.h>
#include <stdint.h>

/* Whether mpirun (or another PMI launcher) started this process. */
bool ct_dist_launched(void);
/* Joins the job (MPI_Init). 0, or -1 with a message (no MPI in this build, or MPI failed). */
int ct_dist_init(void);
/* Whether ct_dist_init succeeded: the trainer then takes the distributed path, even with one rank. */
bool ct_dist_active(void);
int ct_dist_rank(void); /* 0 when not active */
int ct_dist_size(void); /* 1 when not active */
/* Leaves the job cleanly (every rank must call it), or, after a failure that left a collective
 * pending or a rank unanswered, ends every rank of the job with `code`. */
void ct_dist_finalize(void);
void ct_dist_abort(int code);
/* Seconds a collective may wait for the slowest rank (default 600). */
void ct_dist_set_timeout(double seconds);

/* Refuses, on every rank, values of `hash` that differ between ranks: "what" names the thing
 * hashed and "fix" says what to do ("start every rank with the same recipe"). */
int ct_dist_check_same(uint64_t hash, const char *what, const char *fix);
/* Every rank's status (0 or -1): 0 when all are 0. A rank whose status was 0 while another's
 * was not gets -1 with a message naming the failed rank and carrying its message. */
int ct_dist_agree(int status);
/* Whether this process should print the error it failed with: rank 0 always (another rank's
 * failure reaches it through ct_dist_agree), the others only when a collective timed out or MPI
 * failed (rank 0 may be the rank that is gone). */
bool ct_dist_should_report(void);
/* Whether a collective timed out or failed: the job must end with ct_dist_abort, not finalize. */
bool ct_dist_broken(void);
/* all[r * n + i] = rank r's mine[i]. */
int ct_dist_allgather_doubles(const double *mine, int n, double *all);
/* sum[i] over ranks of x[i] (int64, exact). */
int ct_dist_sum_int64(int64_t *x, int n);
/* Rank 0's n bytes to every rank (NCCL's unique id). */
int ct_dist_broadcast_bytes(void *data, int n);
/* This rank's index among the ranks on its node: the GPU it takes. */
int ct_dist_local_rank(void);

/* The most floats one MPI call moves: longer vectors go in blocks of this many. */
#define CT_DIST_BLOCK ((int64_t)1 << 26)
/* Tests only: blocks of `floats` (1 .. CT_DIST_BLOCK), so short vectors take the blocked path. */
void ct_dist_set_block(int64_t floats);

/* In place: x[i] becomes ((x_0[i] + x_1[i]) + x_2[i]) + ... over the ranks' x, in float, the
 * same on every rank. scratch holds min(n, CT_DIST_BLOCK) + ranks floats. The sum is split so
 * that rank c adds up chunk c of each block (an all-to-all, then an all-gather): each rank sends
 * and receives about 2n floats. */
int ct_dist_sum_floats_ordered(float *x, int64_t n, float *scratch);
/* In place: every rank's x gets, for each rank r, the range [offsets[r], offsets[r + 1]) of rank
 * r's x (offsets has size + 1 entries). */
int ct_dist_allgather_floats(float *x, const int64_t *offsets);
/* Point to point, for gathering sharded state on rank 0: tag tells messages apart. */
int ct_dist_send_floats(int to, int tag, const float *x, int64_t n);
int ct_dist_recv_floats(int from, int tag, float *x, int64_t n);

#endif
