/* The tokenizer in GGUF metadata (tokenizer.ggml.*), both ways.
 *
 * Writing: tokenizer.ggml.model "gpt2" (byte-level BPE), tokens in their byte-level form, token
 * types (1 normal, 3 control for special added tokens, 4 user-defined for other added tokens,
 * 5 unused for the [PAD{i}] rows past the tokenizer), merges "A B" in rank order, the pre type
 * llama.cpp splits text with, bos/eos/pad ids, add_bos_token and the chat template.
 *
 * The pre type: llama.cpp knows pre-tokenizers by name, each a fixed regex. ctune's own
 * tokenizers (and Qwen2/2.5/3's) split with the Qwen2 regex after an NFC normalizer: that is
 * llama.cpp's "qwen2", whose regex is the same, but llama.cpp applies no normalizer, so text that
 * is not already NFC (a decomposed "é") can tokenize differently there. LLaMA 3's regex without a
 * normalizer is "llama-bpe", an exact match. Any other pre-tokenizer is refused by name.
 *
 * Reading: tokenizer.json text rebuilt from those keys (pre qwen2: NFC + the Qwen2 regex, as the
 * tokenizers these files come from do; llama-bpe: the LLaMA 3 regex), which ct_tokenizer_load_text
 * loads like any other. */
#ifndef CT_TOKENIZER_GGUF_H
#define CT_TOKENIZER_GGUF_H

#include <stdbool.h>
#include <stdint.h>

#include "checkpoints/gguf.h"
#include "datasets/tokenizer.h"

/* The llama.cpp pre type of tok ("qwen2", "llama-bpe"), or NULL with a message naming the
 * tokenizer. *difference (when not NULL) gets what llama.cpp does differently, or NULL when
 * nothing. */
const char *ct_tokenizer_gguf_pre(const ct_tokenizer *tok, const char **difference);

typedef struct {
    int64_t n_rows;            /* the embedding's rows: tokens past the tokenizer become [PAD{i}] */
    int64_t bos, eos, pad;     /* -1: not written */
    const char *chat_template; /* NULL: not written */
} ct_tokenizer_gguf_options;

/* Adds the tokenizer.ggml.* keys (and tokenizer.chat_template) to w. */
int ct_tokenizer_gguf_add(const ct_tokenizer *tok, ct_gguf_writer *w, const ct_tokenizer_gguf_options *options);

/* tokenizer.json text (a new string) equivalent to the file's tokenizer keys; NULL with a
 * message naming the key (a model or pre type ctune cannot rebuild included). */
char *ct_tokenizer_json_from_gguf(const ct_gguf *g);

#endif
