/* The CPU backend's op table (kernels/device.c picks a device's table). */
#include "core/error.h"
#include "kernels/cpu/cpu_bf16_gemm.h"
#include "kernels/cpu/cpu_kernels.h"

static const ct_backend cpu_backend = {
    .name = "cpu",
    .gemm = ct_cpu_gemm,
    .bf16_gemm_native = ct_cpu_bf16_gemm_available,
    .binary = ct_cpu_binary,
    .convert = ct_cpu_convert,
    .axpby = ct_cpu_axpby,
    .mul_accumulate = ct_cpu_mul_accumulate,
    .sum_rows_accumulate = ct_cpu_sum_rows_accumulate,
    .add_scalar = ct_cpu_add_scalar,
    .tanh_forward = ct_cpu_tanh_forward,
    .tanh_backward = ct_cpu_tanh_backward,
    .sum = ct_cpu_sum,
    .embedding_forward = ct_cpu_embedding_forward,
    .embedding_backward = ct_cpu_embedding_backward,
    .log_softmax_forward = ct_cpu_log_softmax_forward,
    .log_softmax_backward = ct_cpu_log_softmax_backward,
    .cross_entropy_forward = ct_cpu_cross_entropy_forward,
    .cross_entropy_backward = ct_cpu_cross_entropy_backward,
    .adamw_multi = ct_cpu_adamw_multi,
    .sum_squares_multi = ct_cpu_sum_squares_multi,
    .scale_multi = ct_cpu_scale_multi,
    .mask_multi = ct_cpu_mask_multi,
    /* transformer ops */
    .rms_norm_forward = ct_cpu_rms_norm_forward,
    .rms_norm_backward = ct_cpu_rms_norm_backward,
    .swiglu_forward = ct_cpu_swiglu_forward,
    .swiglu_backward = ct_cpu_swiglu_backward,
    .rope = ct_cpu_rope,
    .dropout = ct_cpu_dropout,
    .kl_div_forward = ct_cpu_kl_div_forward,
    .kl_div_backward = ct_cpu_kl_div_backward,
    .kd_rows_forward = ct_cpu_kd_rows_forward,
    .kd_rows_backward = ct_cpu_kd_rows_backward,
    .dora_row_norms = ct_cpu_dora_row_norms,
    .attention_forward = ct_cpu_attention_forward,
    .attention_backward = ct_cpu_attention_backward,
};

/* Set only by profiling code (see ct_cpu_backend_override in backend.h). */
static const ct_backend *cpu_override;

const ct_backend *ct_cpu_backend(void) { return &cpu_backend; }

void ct_cpu_backend_override(const ct_backend *table) { cpu_override = table; }

const ct_backend *ct_cpu_backend_active(void) { return cpu_override ? cpu_override : &cpu_backend; }
