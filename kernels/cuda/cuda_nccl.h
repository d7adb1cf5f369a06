/* NCCL for data-parallel training on GPUs (docs/distributed.md): one GPU per rank, gradients
 * summed with ncclAllReduce and ZeRO-1's updated slices broadcast from their owners, both on
 * ctune's compute stream. The unique id travels between ranks over MPI (train/dist.c); this file
 * knows nothing of MPI, so a single rank needs none (the smoke test, tests/test_cuda_nccl.c).
 *
 * Built when nvcc and NCCL (nccl.h and libnccl in the CUDA toolkit) are found (CT_HAVE_NCCL);
 * otherwise every function fails with a one-line message. */
#ifndef CT_CUDA_NCCL_H
#define CT_CUDA_NCCL_H

#include <stdbool.h>

#include "core/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

enum { CT_NCCL_ID_BYTES = 128 }; /* sizeof(ncclUniqueId) */

/* Whether this build has NCCL. */
bool ct_nccl_available(void);
/* Rank 0 makes the job's id; the others receive it (over MPI) before ct_nccl_init. */
int ct_nccl_unique_id(unsigned char id[CT_NCCL_ID_BYTES]);
/* Selects GPU `device` for this process and joins the communicator of `size` ranks. */
int ct_nccl_init(int rank, int size, const unsigned char id[CT_NCCL_ID_BYTES], int device);
void ct_nccl_free(void);
/* In place, every f32 CUDA tensor becomes its sum over the ranks (one NCCL group). With two
 * ranks each element is one addition, a + b, the same on both and equal to one rank adding the
 * two; with more, NCCL's ring fixes the order for a given topology. */
int ct_nccl_sum(ct_tensor *const *tensors, int n);
/* Tensor i from rank owners[i] to all (one NCCL group). */
int ct_nccl_broadcast(ct_tensor *const *tensors, const int *owners, int n);

#ifdef __cplusplus
}
#endif

#endif
