// NCCL for data-parallel training: see kernels/cuda/cuda_nccl.h.
#include "kernels/cuda/cuda_nccl.h"

#include <string.h>

#include "core/error.h"

#ifdef CT_HAVE_NCCL

#include <nccl.h>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_stream.h"

#define CT_NCCL_CHECK(call)                                                                           \
    do {                                                                                              \
        ncclResult_t ct_status_ = (call);                                                             \
        if (ct_status_ != ncclSuccess)                                                                \
            return ct_fail("NCCL: %s failed at %s:%d: %s", #call, __FILE__, __LINE__,                 \
                           ncclGetErrorString(ct_status_));                                           \
    } while (0)

static_assert(sizeof(ncclUniqueId) == CT_NCCL_ID_BYTES, "CT_NCCL_ID_BYTES is sizeof(ncclUniqueId)");

namespace {
ncclComm_t comm;
bool joined;

int check_tensor(const ct_tensor *t, const char *what) {
    if (t->dtype != CT_F32 || t->device != CT_CUDA)
        return ct_fail("%s: tensor %s must be f32 on the GPU", what, t->name ? t->name : "(unnamed)");
    return 0;
}
}  // namespace

extern "C" bool ct_nccl_available(void) { return true; }

extern "C" int ct_nccl_unique_id(unsigned char id[CT_NCCL_ID_BYTES]) {
    ncclUniqueId unique;
    CT_NCCL_CHECK(ncclGetUniqueId(&unique));
    memcpy(id, &unique, sizeof unique);
    return 0;
}

extern "C" int ct_nccl_init(int rank, int size, const unsigned char id[CT_NCCL_ID_BYTES], int device) {
    if (joined) return ct_fail("NCCL: this process already joined a communicator");
    CT_CUDA_CHECK(cudaSetDevice(device));
    ncclUniqueId unique;
    memcpy(&unique, id, sizeof unique);
    CT_NCCL_CHECK(ncclCommInitRank(&comm, size, unique, rank));
    joined = true;
    return 0;
}

extern "C" void ct_nccl_free(void) {
    if (joined) ncclCommDestroy(comm);
    joined = false;
}

extern "C" int ct_nccl_sum(ct_tensor *const *tensors, int n) {
    if (!joined) return ct_fail("NCCL: ct_nccl_init first");
    cudaStream_t stream;
    CT_TRY(ct_cuda_stream_get(&stream));
    for (int i = 0; i < n; i++) CT_TRY(check_tensor(tensors[i], "NCCL sum"));
    CT_NCCL_CHECK(ncclGroupStart());
    for (int i = 0; i < n; i++) {
        ncclResult_t status = ncclAllReduce(tensors[i]->data, tensors[i]->data, (size_t)ct_numel(tensors[i]),
                                            ncclFloat32, ncclSum, comm, stream);
        if (status != ncclSuccess) {
            ncclGroupEnd();
            return ct_fail("NCCL: all-reduce of %s: %s", tensors[i]->name ? tensors[i]->name : "(unnamed)",
                           ncclGetErrorString(status));
        }
    }
    CT_NCCL_CHECK(ncclGroupEnd());
    return 0;
}

extern "C" int ct_nccl_broadcast(ct_tensor *const *tensors, const int *owners, int n) {
    if (!joined) return ct_fail("NCCL: ct_nccl_init first");
    cudaStream_t stream;
    CT_TRY(ct_cuda_stream_get(&stream));
    for (int i = 0; i < n; i++) CT_TRY(check_tensor(tensors[i], "NCCL broadcast"));
    CT_NCCL_CHECK(ncclGroupStart());
    for (int i = 0; i < n; i++) {
        ncclResult_t status = ncclBroadcast(tensors[i]->data, tensors[i]->data, (size_t)ct_numel(tensors[i]),
                                            ncclFloat32, owners[i], comm, stream);
        if (status != ncclSuccess) {
            ncclGroupEnd();
            return ct_fail("NCCL: broadcast of %s: %s", tensors[i]->name ? tensors[i]->name : "(unnamed)",
                           ncclGetErrorString(status));
        }
    }
    CT_NCCL_CHECK(ncclGroupEnd());
    return 0;
}

#else

static int no_nccl(void) {
    return ct_fail("this ctune was built without NCCL (nccl.h and libnccl beside CUDA), so GPU tensors cannot be "
                   "reduced across ranks; set device=cpu under mpirun or rebuild with NCCL");
}

extern "C" bool ct_nccl_available(void) { return false; }
extern "C" int ct_nccl_unique_id(unsigned char id[CT_NCCL_ID_BYTES]) {
    (void)id;
    return no_nccl();
}
extern "C" int ct_nccl_init(int rank, int size, const unsigned char id[CT_NCCL_ID_BYTES], int device) {
    (void)rank, (void)size, (void)id, (void)device;
    return no_nccl();
}
extern "C" void ct_nccl_free(void) {}
extern "C" int ct_nccl_sum(ct_tensor *const *tensors, int n) {
    (void)tensors, (void)n;
    return no_nccl();
}
extern "C" int ct_nccl_broadcast(ct_tensor *const *tensors, const int *owners, int n) {
    (void)tensors, (void)owners, (void)n;
    return no_nccl();
}

#endif
