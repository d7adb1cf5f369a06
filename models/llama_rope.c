/* The RoPE frequency table of a LLaMA-family config: theta^(-2i/D), and LLaMA 3.x's "llama3"
 * rescaling, which stretches long wavelengths so a model trained on a short context (8192)
 * reaches a longer one (128K):
 *   wavelength w = 2 pi / f, low = original / low_freq_factor, high = original / high_freq_factor
 *   w < high:  f unchanged (fast rotations, local detail)
 *   w > low:   f / factor
 *   otherwise: blend s = (original / w - low_freq_factor) / (high_freq_factor - low_freq_factor),
 *              f = (1 - s) * f / factor + s * f
 * Computed in double and rounded to f32 once; transformers computes it in f32, so the two agree
 * to an ulp or two (checked against its table in tests/test_llama.c). */
#include <math.h>

#include "autograd/ops_transformer.h"
#include "models/llama_config.h"

static double llama3_scale(const ct_llama_config *cfg, double f) {
    const double factor = cfg->rope_scaling.factor, lo = cfg->rope_scaling.low_freq_factor,
                 hi = cfg->rope_scaling.high_freq_factor;
    const double original = (double)cfg->rope_scaling.original_max_position_embeddings;
    const double wavelength = 2.0 * M_PI / f;
    if (wavelength < original / hi) return f;
    if (wavelength > original / lo) return f / factor;
    const double s = (original / wavelength - lo) / (hi - lo);
    return (1.0 - s) * f / factor + s * f;
}

void ct_llama_rope_inv_freq(const ct_llama_config *cfg, float *inv_freq) {
    const int64_t half = cfg->head_dim / 2;
    double plain[CT_LLAMA_MAX_HEAD_DIM / 2];
    ct_rope_default_inv_freq(cfg->rope_theta, cfg->head_dim, plain);
    for (int64_t i = 0; i < half; i++) {
        double f = cfg->rope_scaling.type == CT_ROPE_LLAMA3 ? llama3_scale(cfg, plain[i]) : plain[i];
        inv_freq[i] = (float)f;
    }
}
