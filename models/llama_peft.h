/* PEFT adapter folders on the LLaMA family: applying one to a model (ctune eval/generate/train
 * with model.adapter) and listing a model's adapters for writing one (checkpoints/peft.h holds the
 * file format; models/llama_lora.h the adapters). */
#ifndef CT_LLAMA_PEFT_H
#define CT_LLAMA_PEFT_H

#include "checkpoints/peft.h"
#include "models/llama.h"

/* Attaches an adapter to every projection the folder's config targets and loads its A and B;
 * a modules_to_save lm_head or embed_tokens replaces that weight (lm_head is untied first, as
 * PEFT's copy is). Every tensor of the file must find its place: a key for a module this model
 * lacks, or of another shape, is refused naming the key and both shapes. On failure the model
 * may hold part of the adapter: free it. 0 or -1. */
int ct_llama_apply_peft(ct_llama *m, const ct_peft_adapter *adapter);

/* ct_llama_apply_peft of the adapter folder `dir`; errors name it. 0 or -1. */
int ct_llama_apply_peft_dir(ct_llama *m, const char *dir);

/* The items ct_peft_adapter_write takes for the model's adapters (every lora_A / lora_B) and for
 * the modules named in modules_to_save ("lm_head", "embed_tokens"; NULL: none), into *items
 * (heap; free it). 0 or -1. */
int ct_llama_peft_items(const ct_llama *m, const char *const *modules_to_save, int n_save, ct_peft_item **items,
                        int *n);

#endif
