/* Where a model comes from, for `model.path`, `ctune eval --model` and the later stages of a
 * pipeline: a Hugging Face folder (config.json, safetensors, tokenizer.json), a ctune run folder
 * (its model/ folder or, for a run that has none yet because it was interrupted, the newest
 * checkpoint in its checkpoints/ folder), or a ctune HDF5 checkpoint (weights, config, tokenizer
 * and recipe inside).
 * Also finds the recipe the model was trained with, so evaluation can convert examples the same
 * way training did (the same system prompt, the same chat template). */
#ifndef CT_MODEL_SOURCE_H
#define CT_MODEL_SOURCE_H

#include <stdbool.h>

#include "datasets/tokenizer.h"
#include "models/llama.h"

typedef struct {
    ct_llama *model;
    ct_tokenizer *tokenizer; /* the model's own (model->tokenizer) for a folder; NULL if none */
    char *tokenizer_dir;     /* the folder holding tokenizer.json and tokenizer_config.json, or NULL */
    char *recipe_yaml;       /* the training recipe's resolved YAML, or NULL when unknown */
    char loaded_from[4096];  /* the folder or checkpoint file the weights were read from */
    const char *kind;        /* what that is, for messages: "Hugging Face folder", ... */
    char *scratch_dir;       /* a GGUF file's serving files, written out for the readers of folders; or NULL */
} ct_model_source;

/* Fills *source (the caller frees the model with ct_llama_free, a tokenizer that is not the
 * model's with ct_tokenizer_free, and the strings with free). -1 with a message naming the path
 * and what was looked for. */
int ct_model_source_open(ct_model_source *source, const char *path);
/* A .gguf file (ctune's GGUF export or llama.cpp's): the model as stored (Q8_0 int8 with block
 * scales, models/llama_gguf.h), the tokenizer rebuilt from its tokenizer.ggml.* keys, and what
 * ctune's export adds under ctune.* (task, labels) with the chat template put in a scratch folder
 * (source->scratch_dir, removed by ct_model_source_close) that is the model's source_dir and
 * tokenizer_dir, so evaluation reads them as it reads a model folder's. */
int ct_model_source_open_gguf(ct_model_source *source, const char *path);
/* Whether path names a GGUF file (ends in .gguf): what ct_model_source_open opens as one. */
bool ct_model_source_is_gguf(const char *path);
/* Frees what the source holds and removes its scratch folder. */
void ct_model_source_close(ct_model_source *source);
/* The same, a Hugging Face folder (or a run's model/) loaded with these options (its frozen
 * tensors in o->base_dtype, ct_llama_load_with); o NULL is ct_model_source_open. A checkpoint
 * loads as its own recipe says. */
int ct_model_source_open_with(ct_model_source *source, const char *path, const ct_llama_load_options *o);
/* The newest checkpoint of a run folder's checkpoints/, whatever else the folder holds (a LoRA
 * run's adapters live there, its model/ is merged); `kind` says so in messages. 1 when opened, 0
 * when the run has no checkpoint, -1 with a message. */
int ct_model_source_open_newest_checkpoint(ct_model_source *source, const char *run, const char *kind);

#endif
