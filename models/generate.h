/* Text generation with a LLaMA-family model: a KV-cached decode loop, greedy and temperature /
 * top-k / top-p sampling, stop ids, and a streaming callback that receives whole UTF-8
 * characters.
 *
 * Batches of prompts of different lengths are left-padded: pad slots get segment 0 and position
 * 0, each prompt segment 1 and positions 0 .. len - 1, so no prompt token ever attends to a pad
 * and every row computes exactly what it would alone (the attention mask compares segment ids).
 * Each decode step then feeds one token per row at that row's next position. A row that has
 * stopped keeps being fed (its output is ignored) until every row has stopped.
 *
 * Ids at or above the vocabulary limit are never produced: a model may have more embedding rows
 * than its tokenizer has tokens (Qwen pads 151,665 tokens to 151,936 rows), and those rows are
 * left out before any softmax, top-k or argmax.
 *
 * Everything runs in no-grad mode; the per-step tensors live in a scope of their own, so memory
 * stays flat over any number of steps. docs/inference.md describes the API and the CLI. */
#ifndef CT_GENERATE_H
#define CT_GENERATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/rng.h"
#include "datasets/tokenizer.h"
#include "models/llama.h"

/* ---- sampling one token from a row of logits ---- */

/* transformers' order: logits / temperature, keep the top_k largest, keep the nucleus (the
 * smallest set of most likely tokens whose probability reaches top_p), renormalize, draw. */
typedef struct {
    double temperature; /* 0: greedy (argmax, first index on ties, no random draw); else > 0 */
    int64_t top_k;      /* 0: off */
    double top_p;       /* in (0, 1]; 1: off */
} ct_sampling;

/* One id and its logit, for sorting. */
typedef struct {
    float logit;
    int32_t id;
} ct_ranked_id;

/* Scratch space for sampling over up to n ids; reused from step to step. One sampler per
 * thread: it holds no other state. */
typedef struct {
    int64_t n;
    ct_ranked_id *ranked; /* the kept ids: by decreasing logit (ties by increasing id), except in
                             id order when nothing is cut (no top_k, top_p 1) */
    double *probs;        /* by rank: unnormalized probabilities of the kept ids */
} ct_sampler;

/* 0, or -1 with a message naming the bad value (temperature < 0 or not finite, top_k < 0,
 * top_p outside (0, 1]). */
int ct_sampling_check(const ct_sampling *s);
int ct_sampler_init(ct_sampler *sampler, int64_t n);
void ct_sampler_free(ct_sampler *sampler);
/* The distribution a draw uses over ids [0, n) (n <= sampler->n): probs[i] is 0 outside the
 * kept set. Greedy puts 1 on the argmax. 0 or -1 (non-finite logits). */
int ct_sampling_distribution(ct_sampler *sampler, const float *logits, int64_t n, const ct_sampling *s,
                             double *probs);
/* One id in [0, n): the argmax when greedy, else a draw from ct_sampling_distribution's
 * distribution with one ct_rng_uniform. -1 with a message for non-finite logits. */
int32_t ct_sample(ct_sampler *sampler, const float *logits, int64_t n, const ct_sampling *s, ct_rng *rng);

/* ---- incremental decoding for streaming ---- */

/* Turns ids into bytes one at a time and hands out only whole, valid UTF-8 characters: a
 * character whose bytes are split across tokens (common for Chinese with byte-level BPE) is held
 * back until its last byte arrives. Bytes that can never complete a character become U+FFFD, one
 * per maximal invalid subpart, as Python's bytes.decode(errors="replace") does, so what a stream
 * hands out is always valid UTF-8 (a terminal or a pipe never sees half a character). Special
 * tokens (<|im_end|>, ...) give no text. */
typedef struct {
    const ct_tokenizer *tok;
    char *held;     /* bytes of a character still incomplete (at most 3) */
    size_t held_len, held_cap;
    char *out;      /* the text handed out by the last call */
    size_t out_len, out_cap;
} ct_text_stream;

void ct_text_stream_init(ct_text_stream *s, const ct_tokenizer *tok);
/* Adds one id; *text / *len get the newly complete text (valid until the next call; may be
 * empty). 0, or -1 for an id the tokenizer does not know. */
int ct_text_stream_push(ct_text_stream *s, int32_t id, const char **text, size_t *len);
/* Ends the stream: an incomplete character still held comes out as U+FFFD. 0, or -1 when out of
 * memory. */
int ct_text_stream_flush(ct_text_stream *s, const char **text, size_t *len);
void ct_text_stream_free(ct_text_stream *s);

/* ---- the cached forward of a batch of prompts ---- */

/* Left-padded rows over a KV cache. Fields are read-only for callers. */
typedef struct {
    ct_llama *model;
    ct_kv_cache cache;
    int64_t batch;
    int32_t *next_pos; /* per row: the position the next token gets */
} ct_generator;

/* A cache for `batch` rows of prompt + new tokens up to max_len in all. 0 or -1. */
int ct_generator_init(ct_generator *g, ct_llama *m, int64_t batch, int64_t max_len);
void ct_generator_free(ct_generator *g);
/* Runs the prompts (one per row, non-empty, ids below the model's rows) left-padded through
 * the empty cache; returns the logits after each prompt's last token, f32 [batch, 1, V] in the
 * current scope. NULL with a message. */
ct_tensor *ct_generator_prefill(ct_generator *g, const ct_token_list *prompts);
/* Feeds ids[b] to row b at its next position; returns its logits [batch, 1, V] in the current
 * scope. NULL with a message (the cache full, an id out of range). */
ct_tensor *ct_generator_step(ct_generator *g, const int32_t *ids);

/* ---- the generation loop ---- */

/* Called for every new token of every row, in row order within a step. text / len: the text
 * that became complete (maybe empty; NULL without a tokenizer); at the end of a row a last call
 * with id -1 flushes held bytes. Return 0 to go on; non-zero stops the whole generation (its
 * rows end with CT_FINISH_CALLBACK). */
typedef int (*ct_token_callback)(void *user, int64_t row, int32_t id, const char *text, size_t len);

typedef struct {
    int64_t max_new_tokens; /* > 0 */
    ct_sampling sampling;
    uint64_t seed;          /* the ct_rng seed: the same seed gives the same output */
    /* Ids >= this are never produced. 0: the tokenizer's size (options' tokenizer, else the
     * model's), or the model's rows without a tokenizer. At most config.vocab_size. */
    int64_t vocab_limit;
    /* Extra ids that end a row (a chat template's end token), beside the config's eos ids. */
    const int32_t *stop_ids;
    int n_stop_ids;
    bool ignore_eos;        /* do not stop at the config's eos ids (stop_ids still apply) */
    const ct_tokenizer *tokenizer; /* for the callback's text; NULL: the model's */
    ct_token_callback on_token;    /* NULL: none */
    void *user;
} ct_generate_options;

/* max_new_tokens 64, greedy, top_p 1, seed 0, everything else off. */
ct_generate_options ct_generate_defaults(void);

typedef enum {
    CT_FINISH_STOP = 1,     /* produced a stop id (it is the last id) */
    CT_FINISH_LENGTH = 2,   /* reached max_new_tokens */
    CT_FINISH_CALLBACK = 3, /* the callback asked to stop */
    CT_FINISH_CONTEXT = 4,  /* prompt + new ids filled the model's max_position_embeddings */
} ct_finish_reason;

typedef struct {
    ct_token_list ids; /* the new ids only, the stop id last when one ended the row */
    ct_finish_reason finish;
} ct_generation;

/* Generates after each of n_prompts prompts as one left-padded batch; out[i] gets row i (zero
 * it first; free with ct_generation_free). A row never runs past the model's context: prompt +
 * new ids stop at config.max_position_embeddings (CT_FINISH_CONTEXT). 0, or -1 with a message
 * (bad options, an empty prompt or one that leaves no room in the context, a prompt id out of
 * range, a failed forward); on failure out holds what was made so far. */
int ct_generate(ct_llama *m, const ct_token_list *prompts, int64_t n_prompts, const ct_generate_options *opt,
                ct_generation *out);
void ct_generation_free(ct_generation *gens, int64_t n);

#endif
