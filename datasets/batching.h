/* Sequences and batches.
 *
 * A sequence store holds tokenized training sequences back to back: ids and a loss mask
 * (mask[i] = 1: token i is a target, predicted from the tokens before it).
 *
 * The batcher turns a store into batches, epoch after epoch:
 *   1. Truncation. A sequence longer than max_seq_len keeps its start (right), keeps its end
 *      (left: for chats, where the answer is at the end), or is left out and counted (drop).
 *   2. Order. Seeded shuffling per epoch: the order of epoch e depends only on (seed, e).
 *   3. Dynamic batching. Within windows of bucket_size sequences of that order, sequences are
 *      sorted by length (up in one window, down in the next, so that windows meet at similar
 *      lengths), then batches are filled greedily along the epoch with at most batch_size rows
 *      and at most batch_tokens tokens counted with padding (rows * padded length). The order
 *      of the batches is shuffled again, so lengths do not rise and fall in a saw-tooth.
 *   4. Packing (optional). Several sequences share a row of at most max_seq_len tokens
 *      (first-fit, longest first, within each window); segment ids tell them apart and
 *      positions restart at 0 in each, so attention (autograd/op_attention.h) keeps every
 *      sequence to itself.
 * A batch holds i32 tensors [B, T] from the current scope's arena (core/arena.h):
 *   ids        token ids, pad_id on padding
 *   targets    already shifted: targets[b, t] = the next token of the same sequence when that
 *              token is a loss target, else -100; -100 at each sequence's last token and on
 *              padding, so no target crosses a sequence boundary
 *   positions  0, 1, ... within each sequence; padding continues the row's count when not
 *              packed, and counts from 0 in its own segment when packed
 *   segments   packed only (NULL otherwise): 0, 1, ... per sequence in the row, -1 on padding
 *
 * A cursor (epoch, batch index within the epoch, seed, and a fingerprint of the data and the
 * options) is a few integers; restoring it makes the batcher produce exactly the batches an
 * uninterrupted run would have produced from that point. */
#ifndef CT_BATCHING_H
#define CT_BATCHING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/tensor.h"

/* ---- the sequence store ---- */

typedef struct {
    int32_t *ids;
    uint8_t *mask;
    int64_t *offsets; /* sequence i is [offsets[i], offsets[i + 1]) */
    size_t count;     /* sequences */
    size_t n_tokens;
    size_t cap_tokens, cap_count;
} ct_seq_store;

/* Appends a sequence of len >= 1 tokens; mask NULL means every token is a target. */
int ct_seq_store_add(ct_seq_store *store, const int32_t *ids, const uint8_t *mask, size_t len);
void ct_seq_store_free(ct_seq_store *store);
static inline int64_t ct_seq_store_len(const ct_seq_store *store, size_t i) {
    return store->offsets[i + 1] - store->offsets[i];
}

/* ---- the batcher ---- */

typedef enum {
    CT_TRUNCATE_RIGHT = 0, /* keep the first max_seq_len tokens */
    CT_TRUNCATE_LEFT = 1,  /* keep the last max_seq_len tokens */
    CT_TRUNCATE_DROP = 2,  /* leave the sequence out, and count it */
} ct_truncation;

/* "right", "left" or "drop". */
int ct_truncation_parse(const char *name, ct_truncation *truncation);

typedef struct {
    int64_t max_seq_len;  /* >= 2: the longest sequence (or packed row) */
    int64_t batch_size;   /* >= 1: the most rows in a batch */
    int64_t batch_tokens; /* the most rows * padded length; 0 = batch_size * max_seq_len */
    int64_t bucket_size;  /* sort by length within windows of this many; 0 or 1 = no sorting */
    ct_truncation truncation;
    bool packing;
    bool shuffle;  /* false: the store's order, every epoch */
    uint64_t seed;
    int32_t pad_id;
} ct_batch_options;

typedef struct {
    ct_tensor *ids, *targets, *positions, *segments; /* segments: NULL unless packed */
    int64_t rows, len;    /* B and T */
    int64_t n_sequences;
    int64_t n_targets;    /* targets that are not -100 */
    int64_t n_real;       /* real tokens */
    int64_t n_padded;     /* padding tokens: rows * len - n_real */
    int64_t epoch, index; /* where in the run the batch comes from */
} ct_batch;

/* Totals of one epoch's plan. padding waste = padded_tokens / (real_tokens + padded_tokens). */
typedef struct {
    int64_t batches, rows, sequences;
    int64_t real_tokens, padded_tokens, target_tokens;
} ct_epoch_stats;

/* Once for the run: what truncation did to the store. */
typedef struct {
    int64_t sequences;  /* in the store */
    int64_t kept;       /* batched every epoch */
    int64_t truncated;  /* longer than max_seq_len and cut (right or left) */
    int64_t dropped;    /* longer than max_seq_len and left out (drop) */
    int64_t no_targets; /* kept but without any target after truncation */
} ct_truncation_stats;

typedef struct {
    int64_t epoch;
    int64_t batch; /* index of the next batch within the epoch's order */
    uint64_t seed;
    uint64_t fingerprint; /* of the store's contents and the batching options (not the seed) */
} ct_data_cursor;

typedef struct ct_batcher ct_batcher;

/* The store must outlive the batcher and stay unchanged. NULL on bad options, an empty store,
 * or nothing left after truncation. */
ct_batcher *ct_batcher_new(const ct_seq_store *store, const ct_batch_options *options);
void ct_batcher_free(ct_batcher *batcher);

/* The next batch (moving on to the next epoch after the last batch of one). Its tensors come
 * from the current scope's arena. Returns 0, or -1. */
int ct_batcher_next(ct_batcher *batcher, ct_batch *batch);

/* Replaces the batch's tensors by copies on `device` from the current scope's arena (the batcher
 * builds them on the host); nothing to do on the CPU. Returns 0, or -1. */
int ct_batch_to_device(ct_batch *batch, ct_device device);
/* Whether a (host) batch's positions are 0 .. T-1 in every row and it has no segments, as
 * unpacked batches are: a forward may then derive the positions itself, the same numbers, which
 * lets attention use a fused kernel for plain causal masks (cuDNN on a GPU). */
bool ct_batch_positions_plain(const ct_batch *batch);

/* The plan of the epoch the cursor is in (the batches ct_batcher_next will give). */
int ct_batcher_epoch_stats(ct_batcher *batcher, ct_epoch_stats *stats);
ct_truncation_stats ct_batcher_truncation_stats(const ct_batcher *batcher);
double ct_epoch_padding_waste(const ct_epoch_stats *stats);

ct_data_cursor ct_batcher_cursor(const ct_batcher *batcher);
/* Fails, changing nothing, when the fingerprint differs (other data or options) or the batch
 * index is past the end of its epoch. */
int ct_batcher_restore(ct_batcher *batcher, const ct_data_cursor *cursor);
/* The cursor as four int64 values (for a checkpoint file) and back. */
void ct_data_cursor_pack(const ct_data_cursor *cursor, int64_t out[4]);
ct_data_cursor ct_data_cursor_unpack(const int64_t in[4]);

#endif
