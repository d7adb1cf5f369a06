/* LLaMA-family models in GGUF files, as llama.cpp reads them (architectures llama, qwen2, qwen3).
 *
 * Names: HF "model.layers.3.self_attn.q_proj.weight" is GGUF "blk.3.attn_q.weight"; an HF
 * [out, in] weight is written byte for byte with ne = {in, out}. Architecture `llama` expects
 * q and k (weights and biases) with interleaved RoPE pairs where HF rotates halves, so their rows
 * are permuted within each head on export and permuted back on load; qwen2 and qwen3 use the HF
 * layout as it is. docs/export.md lists the keys written. */
#ifndef CT_LLAMA_GGUF_H
#define CT_LLAMA_GGUF_H

#include <stdbool.h>
#include <stdint.h>

#include "checkpoints/gguf.h"
#include "models/llama.h"

/* "llama", "qwen2" or "qwen3"; NULL for an architecture GGUF export does not express. */
const char *ct_llama_gguf_arch(ct_llama_arch arch);
/* The GGUF name of an HF parameter name into out; -1 with a message when it has none. */
int ct_llama_gguf_name(const char *hf_name, char *out, size_t size);
/* Row permutation of a q or k projection ([n_head * head_dim, cols], any element size), HF's
 * rotate-half layout to llama.cpp's interleaved one: new row 2i + k of a head = old row
 * k * head_dim / 2 + i. `undo` applies the inverse. src and dst must not overlap. */
void ct_llama_rope_permute_rows(const void *src, void *dst, size_t row_bytes, int64_t n_head, int64_t head_dim,
                                bool undo);
/* Whether parameter `hf_name` is permuted for architecture llama; *n_head gets the head count. */
bool ct_llama_gguf_permuted(const ct_llama *m, const char *hf_name, int64_t *n_head);

/* What quantization did to one tensor. */
typedef struct {
    char name[CT_GGUF_MAX_NAME];
    ct_gguf_type type;       /* the type written */
    bool fell_back;          /* Q8_0 asked, rows not a multiple of 32: written F16 */
    int64_t rows, cols;
    double rel_rms, max_abs; /* ||w - w'|| / ||w|| and max |w - w'| against the f32 weights */
} ct_gguf_tensor_report;

typedef struct {
    ct_gguf_tensor_report *tensors;
    int n;
    void *pending; /* what the writer's fill callbacks read; freed with the report */
} ct_gguf_report;
void ct_gguf_report_free(ct_gguf_report *r);

/* Adds general.architecture, the model keys and every parameter of m (f32, on the CPU) to w:
 * 2-D weights in `type` (F32, F16, BF16 or Q8_0), 1-D ones in F32; rope_freqs.weight for llama 3
 * RoPE scaling. Tensors are converted while ct_gguf_write writes them (one at a time, no copy of
 * the model), so m and the report must live until then; the report's errors are filled in then.
 * -1 with a message naming the architecture or the tensor. */
int ct_llama_gguf_add(const ct_llama *m, ct_gguf_writer *w, ct_gguf_type type, ct_gguf_report *report);

/* The LoRA adapters attached to m as a llama.cpp LoRA GGUF: general.type adapter, adapter.type
 * lora, adapter.lora.alpha = scale · r (rsLoRA's alpha·√r), tensors "<base>.lora_a" ne {in, r}
 * and "<base>.lora_b" ne {r, out} in F32, lora_b of llama's q/k RoPE-permuted like their base.
 * Adapters of different scales are refused. *alpha gets the alpha written. */
int ct_llama_gguf_add_lora(const ct_llama *m, ct_gguf_writer *w, double *alpha);

/* A model from a GGUF file (no tokenizer): Q8_0 weights become frozen i8 tensors with one f32
 * scale per block of 32 (ct_linear's layout), BF16 stays bf16, F32 f32, F16 is widened to f32
 * (the GEMM reads f32, bf16 and i8). Every parameter is frozen. The tensor set and shapes are
 * checked against the config the keys imply before parameter memory is allocated. NULL with a
 * one-line message. */
ct_llama *ct_llama_load_gguf(const ct_gguf *g);

#endif
