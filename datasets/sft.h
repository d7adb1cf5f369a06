/* Examples to token ids: the one conversion that training and evaluation share.
 *
 * Every intent task is a chat. An intent example becomes
 *     [system(system_prompt)] user(text) assistant(display text of the label)
 * a dialog_intent example becomes [system(system_prompt)], its messages, then
 *     assistant(display text of the label)
 * (a dialogue that starts with its own system message gets no second one, as the model folder's
 * chat template gives its default only to a conversation without one)
 * and a chat example is rendered as given. The chat template (ChatML or LLaMA 3) renders and
 * encodes the conversation; the loss mask marks the assistant content tokens and the end token
 * that closes each trained turn. With CT_CHAT_MASK_ALL every assistant turn is trained, so a
 * dialog_intent example also trains the agent's earlier replies in its context; with
 * CT_CHAT_MASK_LAST only the final answer is (what intent training wants: the earlier replies
 * are context, and evaluation scores the final answer alone).
 *
 * Evaluation by log-likelihood uses ct_sft_candidates: the prompt (everything before the
 * answer's content, including the assistant header) and, for every label, the answer tokens
 * (its display text and the end token) exactly as they appear in a training sequence. They are
 * cut from the encoded training sequence itself, so training and evaluation cannot drift apart.
 *
 * Plain text for pretraining: each document's ids followed by an end-of-text id, all documents
 * back to back, cut into chunks of chunk_len tokens that overlap by one token, so every token
 * after the first is a target exactly once. */
#ifndef CT_SFT_H
#define CT_SFT_H

#include <stddef.h>
#include <stdint.h>

#include "datasets/batching.h"
#include "datasets/examples.h"
#include "datasets/tokenizer.h"

typedef struct {
    const ct_chat_template *tpl;  /* the template (and through it the tokenizer) */
    const ct_label_set *labels;   /* intent and dialog_intent */
    const char *system_prompt;    /* intent and dialog_intent: a system turn first (unless the
                                   * dialogue has its own); NULL/"": none */
    ct_chat_mask_mode loss_on;    /* CT_CHAT_MASK_ALL (all assistant turns) or CT_CHAT_MASK_LAST */
} ct_sft_options;

/* Encodes one intent, dialog_intent or chat example. `ids` is reset and filled; *mask gets a
 * new array of ids->len bytes (the caller frees), 1 on the tokens that are loss targets. */
int ct_sft_encode(const ct_sft_options *options, const ct_example *example, ct_token_list *ids,
                  uint8_t **mask);

/* Encodes every example into `store` (appending). A sequence without any target token (a
 * chat whose assistant turns are all outside the loss) is still stored; the batcher counts it. */
int ct_sft_encode_all(const ct_sft_options *options, const ct_examples *examples,
                      ct_seq_store *store);

/* What log-likelihood evaluation scores for one intent or dialog_intent example. */
typedef struct {
    ct_token_list prompt;   /* the conversation through the assistant header */
    int n_labels;
    ct_token_list *answers; /* answers[k]: label k's answer tokens, end token included */
} ct_sft_candidates;

/* Fills `out` (zero-initialise it first; reusable across calls). The example's own label is
 * ignored: every label of the set gets its answer. */
int ct_sft_candidates_build(const ct_sft_options *options, const ct_example *example,
                            ct_sft_candidates *out);
void ct_sft_candidates_free(ct_sft_candidates *candidates);

/* Pretraining text: appends chunks of at most chunk_len (>= 2) tokens to `store`, every token a
 * target. eos_id (e.g. the id of "<|endoftext|>") follows each document. */
/* The id that ends a document in pretraining text: <|endoftext|> (Qwen, ctune's trained
 * tokenizers) or <|end_of_text|> (LLaMA 3), else `fallback`. */
int32_t ct_text_end_id(const ct_tokenizer *tok, int32_t fallback);
int ct_text_encode_chunks(const ct_tokenizer *tok, const ct_examples *documents, int32_t eos_id,
                          int64_t chunk_len, ct_seq_store *store);

#endif
