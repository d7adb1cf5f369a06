/* kernels/cuda/cuda_nccl.h in a build without CUDA: no GPU, so no NCCL; each call refuses. */
#ifndef CT_HAVE_CUDA

#include "core/error.h"
#include "kernels/cuda/cuda_nccl.h"

static int no_nccl(void) {
    return ct_fail("this ctune was built without CUDA, so GPU tensors cannot be reduced across ranks; set device=cpu");
}

bool ct_nccl_available(void) { return false; }
int ct_nccl_unique_id(unsigned char id[CT_NCCL_ID_BYTES]) {
    (void)id;
    return no_nccl();
}
int ct_nccl_init(int rank, int size, const unsigned char id[CT_NCCL_ID_BYTES], int device) {
    (void)rank, (void)size, (void)id, (void)device;
    return no_nccl();
}
void ct_nccl_free(void) {}
int ct_nccl_sum(ct_tensor *const *tensors, int n) {
    (void)tensors, (void)n;
    return no_nccl();
}
int ct_nccl_broadcast(ct_tensor *const *tensors, const int *owners, int n) {
    (void)tensors, (void)owners, (void)n;
    return no_nccl();
}

#endif
