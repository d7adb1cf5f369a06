// cuDNN fused SDPA (cuda_attention.h): not written yet. The backend-descriptor graph (SDPA forward
// with a causal mask and softmax stats, SDPA backward) goes here; until it does, both entry points
// decline every call (return 0) and ct_cuda_attention_* run the hand-written kernels.
#include "kernels/cuda/cuda_attention.h"

extern "C" int ct_cudnn_sdpa_forward(const ct_tensor *, const ct_tensor *, const ct_tensor *, double, ct_tensor *,
                                     ct_tensor *) {
    return 0;
}

extern "C" int ct_cudnn_sdpa_backward(const ct_tensor *, const ct_tensor *, const ct_tensor *, double,
                                      const ct_tensor *, const ct_tensor *, const ct_tensor *, ct_tensor *,
                                      ct_tensor *, ct_tensor *) {
    return 0;
}
