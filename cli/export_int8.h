/* `ctune export --format int8-safetensors`: the model as weight-only INT8 safetensors in
 * compressed-tensors' pack-quantized layout (models/llama_int8.h), for vLLM and transformers. */
#ifndef CT_EXPORT_INT8_H
#define CT_EXPORT_INT8_H

#include "train/model_source.h"

/* Writes what a run's model folder adds for serving (system prompt, labels, chat template). */
typedef int (*ct_export_serving_fn)(const ct_model_source *src, const char *dir);

/* Merges any adapter, quantizes, and writes the folder `out` whole: everything goes to a
 * temporary folder beside it that is renamed to `out` at the end (an existing `out` is replaced
 * only then), so a failure leaves nothing partial. Prints a line per quantized tensor and writes
 * quantization_report.json. -1 with a one-line message. */
int ct_export_int8_safetensors(ct_model_source *src, const char *out, ct_export_serving_fn serving);

#endif
