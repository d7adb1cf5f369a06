/* INT8 model folders: weight-only INT8 (W8A16) in the layout the compressed-tensors package
 * writes for a symmetric, 8-bit, per-output-channel integer scheme in its pack-quantized format,
 * which vLLM serves and transformers loads through compressed-tensors.
 *
 *   model.safetensors   every q/k/v/o/gate/up/down projection W [out, in] of the layers as
 *                         <name>.weight_packed  I32 [out, ceil(in/4)]  bytes q + 128, four to a
 *                                               little-endian word, element i at bits 8(i%4)
 *                         <name>.weight_scale   F32 [out, 1]           w ≈ q * scale
 *                         <name>.weight_shape   I64 [2]                {out, in}
 *                       embeddings, norms, biases and an untied lm_head.weight as F32
 *   config.json         the model's config plus "quantization_config" (quant_method
 *                       compressed-tensors, format pack-quantized, one config group targeting
 *                       Linear with weights {num_bits 8, type int, symmetric, strategy channel},
 *                       ignore [lm_head], quantization_status compressed)
 *
 * Quantization: models/quantize.h (compressed-tensors' own arithmetic). Loading such a folder
 * (ct_llama_load) keeps the projections int8 with per-row scales (no f32 copy) and the
 * unquantized tables (embedding, an untied lm_head) in bf16, as a W8A16 runtime holds them;
 * norms and biases stay f32. docs/export.md has the details. */
#ifndef CT_LLAMA_INT8_H
#define CT_LLAMA_INT8_H

#include <stdint.h>

#include "models/llama.h"
#include "models/quantize.h"

/* The compressed-tensors release whose layout and arithmetic this matches (written as the
 * config's "version"). */
#define CT_INT8_COMPRESSED_TENSORS_VERSION "0.20.1"

/* One quantized tensor, reported as it is done (index of count, for a progress line). */
typedef struct {
    const char *name;
    int64_t rows, cols;
    ct_quant_error error;
    int index, count;
} ct_int8_tensor_report;
typedef void (*ct_int8_report_fn)(const ct_int8_tensor_report *report, void *ctx);

/* Writes model.safetensors, config.json and the tokenizer files of tokenizer_dir (NULL: none)
 * into dir, which must exist. The model's projections must be f32 (merge adapters first). -1
 * with a message naming the tensor or file. */
int ct_llama_save_int8(const ct_llama *m, const char *dir, const char *tokenizer_dir, ct_int8_report_fn report,
                       void *ctx);

#endif
