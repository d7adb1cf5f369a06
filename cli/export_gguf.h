/* `ctune export --format gguf | gguf-lora` (cli/export_gguf.c), called from cmd_export.c. */
#ifndef CT_CLI_EXPORT_GGUF_H
#define CT_CLI_EXPORT_GGUF_H

#include "train/model_source.h"

/* "f32" | "f16" | "bf16" | "q8_0": 0, or -1 with a message. */
int ct_export_gguf_check_type(const char *type);
/* A merged model (adapters already attached are merged) as a GGUF file at out. */
int ct_export_gguf(ct_model_source *src, const char *type, const char *out);
/* The attached LoRA adapters (or the run's adapter/ folder) as a llama.cpp LoRA GGUF. */
int ct_export_gguf_lora(ct_model_source *src, const char *run_or_dir, bool adapter_given, const char *out);

#endif
