// The CUDA op table. The GPU kernels of the op table (cuBLASLt GEMM, cuDNN attention, fused
// norm/rope/loss/optimizer kernels) are not written yet; until they are, this returns NULL and
// tensors cannot be placed on the GPU (autograd/tensor.c refuses with a clear message), so no
// op can ever reach a missing kernel. Device memory itself is in cuda_memory.cu.
#include "kernels/backend.h"

extern "C" const ct_backend *ct_cuda_backend(void) { return NULL; }
