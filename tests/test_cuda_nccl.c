/* NCCL, one rank (kernels/cuda/cuda_nccl.h): the communicator forms from a unique id with no MPI,
 * the gradient sum over one rank and a broadcast from rank 0 leave f32 GPU tensors exactly as
 * they were (values with every mantissa bit in use, so any scaling or rounding shows), and a CPU
 * tensor is refused with one line. The data-parallel trainer's GPU path runs these calls; its
 * multi-rank behaviour needs several GPUs (docs/distributed.md).
 *
 * Needs a GPU and a build with NCCL: exits 77 (skipped) otherwise. */
#include <stdio.h>
#include <string.h>

#include "core/error.h"
#include "kernels/cuda/cuda_nccl.h"
#include "kernels/device.h"
#include "tests/ct_test.h"

enum { ROWS = 37, COLS = 29 };

/* A GPU tensor holding 1/3 + i/7 (f32 values using all their mantissa bits), and its host copy. */
static ct_tensor *filled(const char *name, float *host) {
    int64_t shape[2] = {ROWS, COLS};
    ct_tensor *t = ct_tensor_new_on(CT_CUDA, CT_F32, 2, shape, name);
    for (int i = 0; i < ROWS * COLS; i++) host[i] = (float)(1.0 / 3.0 + i / 7.0);
    if (t && ct_device_copy(CT_CUDA, t->data, CT_CPU, host, sizeof *host * ROWS * COLS) < 0) return NULL;
    return t;
}

static bool unchanged(const ct_tensor *t, const float *host) {
    static float back[ROWS * COLS];
    if (ct_device_copy(CT_CPU, back, CT_CUDA, t->data, sizeof back) < 0) return false;
    return memcmp(back, host, sizeof back) == 0;
}

int main(void) {
    if (!ct_nccl_available()) {
        ct_test_note_skip("test_cuda_nccl", "built without CUDA or NCCL (nccl.h and libnccl beside CUDA)");
        return 77;
    }
    if (!ct_device_available(CT_CUDA)) {
        ct_test_note_skip("test_cuda_nccl", "no usable CUDA device (docs/gpu.md runs the GPU tests on a GPU machine)");
        return 77;
    }
    unsigned char id[CT_NCCL_ID_BYTES];
    CHECK(ct_nccl_unique_id(id) == 0, "unique id: %s", ct_last_error());
    CHECK(ct_nccl_init(0, 1, id, 0) == 0, "init: %s", ct_last_error());
    static float host_a[ROWS * COLS], host_b[ROWS * COLS];
    ct_tensor *a = filled("a", host_a), *b = filled("b", host_b);
    CHECK(a && b, "GPU tensors: %s", ct_last_error());
    if (a && b) {
        ct_tensor *list[2] = {a, b};
        int owners[2] = {0, 0};
        CHECK(ct_nccl_sum(list, 2) == 0, "sum: %s", ct_last_error());
        CHECK(unchanged(a, host_a) && unchanged(b, host_b), "the sum over one rank changed a tensor");
        CHECK(ct_nccl_broadcast(list, owners, 2) == 0, "broadcast: %s", ct_last_error());
        CHECK(unchanged(a, host_a) && unchanged(b, host_b), "a broadcast from rank 0 to itself changed a tensor");
    }
    int64_t shape[1] = {4};
    ct_tensor *cpu = ct_tensor_new(CT_F32, 1, shape, "on_cpu");
    CHECK(cpu && ct_nccl_sum(&cpu, 1) < 0 && strstr(ct_last_error(), "tensor on_cpu must be f32 on the GPU"),
          "a CPU tensor is refused naming it: %s", ct_last_error());
    ct_tensor_free(cpu);
    ct_tensor_free(a);
    ct_tensor_free(b);
    ct_nccl_free();
    return ct_test_finish("test_cuda_nccl");
}
