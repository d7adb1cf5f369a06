/* The sequence store and the batcher. An epoch's batches are planned at once from (seed,
 * epoch): the order of the sequences, how they are grouped into rows and batches, and the order
 * of the batches. The plan is a pure function of the store, the options, the seed and the epoch
 * number, which is what lets a cursor of a few integers resume a run exactly. */
#include "datasets/batching.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/rng.h"
#include "kernels/device.h"

#define IGNORE_INDEX (-100)
#define STREAM_EPOCH_ORDER 0x6261746368ull /* keys the per-epoch shuffling */

/* ---- the sequence store ---- */

static int grow(void **p, size_t *cap, size_t need, size_t elem, const char *what) {
    if (need <= *cap) return 0;
    size_t cap2 = *cap ? *cap : 1024;
    while (cap2 < need) cap2 *= 2;
    void *q = realloc(*p, cap2 * elem);
    if (!q) return ct_fail("out of memory: %zu %s for the sequence store", cap2, what);
    *p = q;
    *cap = cap2;
    return 0;
}

int ct_seq_store_add(ct_seq_store *store, const int32_t *ids, const uint8_t *mask, size_t len) {
    if (len == 0) return ct_fail("sequence store: a sequence of 0 tokens; skip empty sequences");
    size_t cap_tokens = store->cap_tokens, need = store->n_tokens + len;
    CT_TRY(grow((void **)&store->ids, &cap_tokens, need, sizeof *store->ids, "token ids"));
    cap_tokens = store->cap_tokens;
    CT_TRY(grow((void **)&store->mask, &cap_tokens, need, sizeof *store->mask, "mask bytes"));
    store->cap_tokens = cap_tokens;
    size_t cap_count = store->cap_count;
    CT_TRY(grow((void **)&store->offsets, &cap_count, store->count + 2, sizeof *store->offsets,
                "offsets"));
    store->cap_count = cap_count;
    memcpy(store->ids + store->n_tokens, ids, len * sizeof *ids);
    if (mask) memcpy(store->mask + store->n_tokens, mask, len);
    else memset(store->mask + store->n_tokens, 1, len);
    store->offsets[0] = 0;
    store->n_tokens = need;
    store->offsets[++store->count] = (int64_t)need;
    return 0;
}

void ct_seq_store_free(ct_seq_store *store) {
    free(store->ids);
    free(store->mask);
    free(store->offsets);
    *store = (ct_seq_store){0};
}

int ct_truncation_parse(const char *name, ct_truncation *truncation) {
    static const char *const names[] = {"right", "left", "drop"};
    for (int i = 0; i < 3; i++)
        if (name && !strcmp(name, names[i])) {
            *truncation = (ct_truncation)i;
            return 0;
        }
    return ct_fail("unknown truncation \"%s\"; use right (keep the start), left (keep the end) or "
                   "drop", name ? name : "(null)");
}

/* ---- the batcher ---- */

struct ct_batcher {
    const ct_seq_store *store;
    ct_batch_options options;
    /* per store sequence: the kept span [start, start + len), len 0 when dropped */
    int64_t *span_start, *span_len, *span_targets;
    int64_t *kept; /* store indices of the kept sequences */
    int64_t n_kept;
    ct_truncation_stats truncation;
    uint64_t fingerprint;
    int64_t epoch, next_batch;
    uint64_t seed;
    /* the plan of one epoch */
    bool planned;
    int64_t plan_epoch;
    uint64_t plan_seed;
    int64_t *order;     /* store indices, row by row */
    int64_t *row_start; /* row r holds order[row_start[r] .. row_start[r + 1]) */
    int64_t *row_len;   /* tokens in row r */
    int64_t *batch_row; /* batch k holds rows batch_row[k] .. batch_row[k + 1] - 1 */
    int64_t *batch_order;
    int64_t n_rows, n_batches;
    ct_epoch_stats stats;
    /* scratch for sorting and packing a window */
    int64_t *scratch_a, *scratch_b;
};

void ct_batcher_free(ct_batcher *b) {
    if (!b) return;
    int64_t *arrays[] = {b->span_start, b->span_len, b->span_targets, b->kept, b->order,
                         b->row_start, b->row_len, b->batch_row, b->batch_order, b->scratch_a,
                         b->scratch_b};
    for (size_t i = 0; i < sizeof arrays / sizeof arrays[0]; i++) free(arrays[i]);
    free(b);
}

static int check_options(const ct_seq_store *store, ct_batch_options *o) {
    if (o->max_seq_len < 2)
        return ct_fail("batching: max_seq_len %lld is too small; use at least 2 (an input and a "
                       "target)", (long long)o->max_seq_len);
    if (o->batch_size < 1)
        return ct_fail("batching: batch_size %lld; use at least 1", (long long)o->batch_size);
    if (o->batch_tokens == 0) o->batch_tokens = o->batch_size * o->max_seq_len;
    if (o->batch_tokens < o->max_seq_len)
        return ct_fail("batching: batch_tokens %lld is smaller than max_seq_len %lld, so the "
                       "longest sequence fits no batch; raise batch_tokens or lower max_seq_len",
                       (long long)o->batch_tokens, (long long)o->max_seq_len);
    if (o->bucket_size < 0)
        return ct_fail("batching: bucket_size %lld; use 0 (no sorting) or a window size",
                       (long long)o->bucket_size);
    if ((unsigned)o->truncation > CT_TRUNCATE_DROP)
        return ct_fail("batching: unknown truncation %d; use right, left or drop", (int)o->truncation);
    if (store->count == 0)
        return ct_fail("batching: the sequence store is empty; load and encode some data first");
    return 0;
}

/* Applies the truncation policy once, for the whole run. */
static void plan_spans(ct_batcher *b) {
    const ct_seq_store *s = b->store;
    int64_t max = b->options.max_seq_len;
    b->truncation.sequences = (int64_t)s->count;
    for (size_t i = 0; i < s->count; i++) {
        int64_t len = ct_seq_store_len(s, i), start = 0;
        if (len > max) {
            if (b->options.truncation == CT_TRUNCATE_DROP) {
                b->truncation.dropped++;
                b->span_len[i] = 0;
                continue;
            }
            b->truncation.truncated++;
            if (b->options.truncation == CT_TRUNCATE_LEFT) start = len - max;
            len = max;
        }
        b->span_start[i] = start;
        b->span_len[i] = len;
        const uint8_t *mask = s->mask + s->offsets[i] + start;
        int64_t targets = 0;
        for (int64_t t = 1; t < len; t++) targets += mask[t];
        b->span_targets[i] = targets;
        b->truncation.no_targets += targets == 0;
        b->kept[b->n_kept++] = (int64_t)i;
    }
    b->truncation.kept = b->n_kept;
}

static uint64_t mix_in(uint64_t h, uint64_t value) { return ct_mix64(h ^ value) + 0x632be59bd9b4e019ull; }

/* Everything the plan depends on except the seed and the epoch. */
static uint64_t fingerprint(const ct_batcher *b) {
    const ct_seq_store *s = b->store;
    const ct_batch_options *o = &b->options;
    uint64_t h = mix_in(0, s->count);
    for (size_t i = 0; i <= s->count; i++) h = mix_in(h, (uint64_t)s->offsets[i]);
    for (size_t i = 0; i < s->n_tokens; i++)
        h = mix_in(h, (uint64_t)(uint32_t)s->ids[i] | (uint64_t)s->mask[i] << 32);
    uint64_t fields[] = {(uint64_t)o->max_seq_len, (uint64_t)o->batch_size, (uint64_t)o->batch_tokens,
                         (uint64_t)o->bucket_size, (uint64_t)o->truncation, o->packing, o->shuffle,
                         (uint64_t)(uint32_t)o->pad_id};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) h = mix_in(h, fields[i]);
    return h;
}

static int64_t *new_array(size_t n, const char *what) {
    return ct_calloc(n ? n : 1, sizeof(int64_t), what);
}

ct_batcher *ct_batcher_new(const ct_seq_store *store, const ct_batch_options *options) {
    ct_batch_options o = *options;
    if (check_options(store, &o) < 0) return NULL;
    ct_batcher *b = ct_calloc(1, sizeof *b, "a batcher");
    if (!b) return NULL;
    b->store = store;
    b->options = o;
    b->seed = o.seed;
    size_t n = store->count;
    b->span_start = new_array(n, "sequence spans");
    b->span_len = new_array(n, "sequence spans");
    b->span_targets = new_array(n, "sequence spans");
    b->kept = new_array(n, "kept sequences");
    b->order = new_array(n, "the epoch order");
    b->row_start = new_array(n + 1, "rows");
    b->row_len = new_array(n, "rows");
    b->batch_row = new_array(n + 1, "batches");
    b->batch_order = new_array(n, "batches");
    b->scratch_a = new_array(2 * n, "sorting");
    b->scratch_b = new_array(2 * n, "packing");
    if (!b->span_start || !b->span_len || !b->span_targets || !b->kept || !b->order ||
        !b->row_start || !b->row_len || !b->batch_row || !b->batch_order || !b->scratch_a ||
        !b->scratch_b) {
        ct_batcher_free(b);
        return NULL;
    }
    plan_spans(b);
    if (b->n_kept == 0) {
        ct_fail("batching: all %zu sequences are longer than max_seq_len %lld and truncation is "
                "drop; raise max_seq_len or truncate right or left", n, (long long)o.max_seq_len);
        ct_batcher_free(b);
        return NULL;
    }
    b->fingerprint = fingerprint(b);
    return b;
}

/* ---- planning an epoch ---- */

static void shuffle(int64_t *a, int64_t n, ct_rng *rng) {
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)ct_rng_below(rng, (uint64_t)i + 1);
        int64_t t = a[i];
        a[i] = a[j];
        a[j] = t;
    }
}

/* Sorting keys: (length, position in the shuffled order), so ties keep the shuffled order. */
typedef struct {
    const int64_t *len;
    int direction; /* +1 ascending, -1 descending */
} sort_ctx;

static _Thread_local sort_ctx sorting;

static int compare_by_length(const void *pa, const void *pb) {
    const int64_t *a = pa, *b = pb; /* pairs: (store index, position) */
    int64_t la = sorting.len[a[0]], lb = sorting.len[b[0]];
    if (la != lb) return (la < lb ? -1 : 1) * sorting.direction;
    return (a[1] > b[1]) - (a[1] < b[1]);
}

static void sort_window(ct_batcher *b, int64_t *seqs, int64_t n, int direction) {
    int64_t *pairs = b->scratch_a;
    for (int64_t i = 0; i < n; i++) pairs[2 * i] = seqs[i], pairs[2 * i + 1] = i;
    sorting = (sort_ctx){b->span_len, direction};
    qsort(pairs, (size_t)n, 2 * sizeof *pairs, compare_by_length);
    for (int64_t i = 0; i < n; i++) seqs[i] = pairs[2 * i];
}

static void add_row(ct_batcher *b, int64_t len) {
    b->row_len[b->n_rows] = len;
    b->n_rows++;
}

/* One sequence per row. */
static void rows_unpacked(ct_batcher *b, int64_t *seqs, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        b->row_start[b->n_rows] = seqs - b->order + i;
        add_row(b, b->span_len[seqs[i]]);
    }
}

/* Next fit: a sequence joins the current row when it fits, else starts a new one. */
static void rows_next_fit(ct_batcher *b, int64_t *seqs, int64_t n) {
    int64_t fill = 0, max = b->options.max_seq_len;
    for (int64_t i = 0; i < n; i++) {
        int64_t len = b->span_len[seqs[i]];
        if (i == 0 || fill + len > max) {
            if (i) b->row_len[b->n_rows - 1] = fill;
            b->row_start[b->n_rows] = seqs - b->order + i;
            add_row(b, 0);
            fill = 0;
        }
        fill += len;
    }
    if (n) b->row_len[b->n_rows - 1] = fill;
}

/* First fit over sequences sorted longest first; then the window is rewritten row by row. */
static void rows_first_fit(ct_batcher *b, int64_t *seqs, int64_t n) {
    int64_t *row_of = b->scratch_b, *fill = b->scratch_b + n, n_open = 0, max = b->options.max_seq_len;
    for (int64_t i = 0; i < n; i++) {
        int64_t len = b->span_len[seqs[i]], r = 0;
        while (r < n_open && fill[r] + len > max) r++;
        if (r == n_open) fill[n_open++] = 0;
        fill[r] += len;
        row_of[i] = r;
    }
    /* A counting sort by row, which keeps the longest-first order inside each row. */
    int64_t *laid = b->scratch_a, *slot = b->scratch_a + n, first = seqs - b->order;
    for (int64_t r = 0; r < n_open; r++) slot[r] = 0;
    for (int64_t i = 0; i < n; i++) slot[row_of[i]]++;
    for (int64_t r = 0, at = 0; r < n_open; r++) {
        int64_t count = slot[r];
        slot[r] = at;
        b->row_start[b->n_rows] = first + at;
        add_row(b, fill[r]);
        at += count;
    }
    for (int64_t i = 0; i < n; i++) laid[slot[row_of[i]]++] = seqs[i];
    memcpy(seqs, laid, (size_t)n * sizeof *seqs);
}

/* Groups rows [first, n_rows) into batches, in order: at most batch_size rows and
 * batch_tokens tokens counted as rows * the longest row. stats.padded_tokens collects the
 * batches' slots here; plan_epoch subtracts the real tokens. */
static void group_rows(ct_batcher *b, int64_t first) {
    int64_t rows = 0, longest = 0;
    for (int64_t r = first; r < b->n_rows; r++) {
        int64_t len = b->row_len[r], wider = len > longest ? len : longest;
        if (rows && (rows + 1 > b->options.batch_size || (rows + 1) * wider > b->options.batch_tokens)) {
            b->stats.padded_tokens += rows * longest;
            rows = 0;
            longest = 0;
            wider = len;
        }
        if (rows == 0) b->batch_row[b->n_batches++] = r;
        rows++;
        longest = wider;
    }
    if (rows) b->stats.padded_tokens += rows * longest;
}

static void plan_epoch(ct_batcher *b) {
    const ct_batch_options *o = &b->options;
    ct_rng rng;
    ct_rng_seed(&rng, ct_counter_hash(b->seed, STREAM_EPOCH_ORDER, (uint64_t)b->epoch));
    memcpy(b->order, b->kept, (size_t)b->n_kept * sizeof *b->order);
    if (o->shuffle) shuffle(b->order, b->n_kept, &rng);
    bool sorted = o->bucket_size > 1;
    int64_t window = sorted ? o->bucket_size : b->n_kept;
    b->n_rows = b->n_batches = 0;
    b->stats = (ct_epoch_stats){0};
    /* Unpacked windows are sorted up, down, up, ...: neighbouring windows meet at similar
     * lengths, so batches can run across window ends without mixing short and long rows.
     * Packing sorts longest first, which is what first fit wants. */
    for (int64_t w = 0, i = 0; w < b->n_kept; w += window, i++) {
        int64_t n = b->n_kept - w < window ? b->n_kept - w : window;
        int64_t *seqs = b->order + w;
        if (sorted) sort_window(b, seqs, n, o->packing || i % 2 ? -1 : 1);
        if (!o->packing) rows_unpacked(b, seqs, n);
        else if (sorted) rows_first_fit(b, seqs, n);
        else rows_next_fit(b, seqs, n);
    }
    group_rows(b, 0);
    b->row_start[b->n_rows] = b->n_kept;
    b->batch_row[b->n_batches] = b->n_rows;
    for (int64_t k = 0; k < b->n_batches; k++) b->batch_order[k] = k;
    if (o->shuffle && sorted) shuffle(b->batch_order, b->n_batches, &rng);
    for (int64_t i = 0; i < b->n_kept; i++) {
        b->stats.real_tokens += b->span_len[b->order[i]];
        b->stats.target_tokens += b->span_targets[b->order[i]];
    }
    b->stats.padded_tokens -= b->stats.real_tokens;
    b->stats.batches = b->n_batches;
    b->stats.rows = b->n_rows;
    b->stats.sequences = b->n_kept;
    b->planned = true;
    b->plan_epoch = b->epoch;
    b->plan_seed = b->seed;
}

static void ensure_plan(ct_batcher *b) {
    if (!b->planned || b->plan_epoch != b->epoch || b->plan_seed != b->seed) plan_epoch(b);
}

/* ---- materializing a batch ---- */

/* Lays one sequence into a row at column `at`; returns the targets it holds. */
static int64_t lay_sequence(const ct_batcher *b, int64_t seq, int64_t at, int32_t segment, int32_t *ids,
                            int32_t *targets, int32_t *positions, int32_t *segments) {
    const ct_seq_store *s = b->store;
    int64_t start = s->offsets[seq] + b->span_start[seq], len = b->span_len[seq], n_targets = 0;
    const int32_t *tok = s->ids + start;
    const uint8_t *mask = s->mask + start;
    for (int64_t t = 0; t < len; t++) {
        bool target = t + 1 < len && mask[t + 1];
        ids[at + t] = tok[t];
        targets[at + t] = target ? tok[t + 1] : IGNORE_INDEX;
        positions[at + t] = (int32_t)t;
        if (segments) segments[at + t] = segment;
        n_targets += target;
    }
    return n_targets;
}

/* Columns [from, to) of the row that starts at flat index `row`. */
static void pad_row(const ct_batcher *b, int64_t row, int64_t from, int64_t to, int32_t *ids,
                    int32_t *targets, int32_t *positions, int32_t *segments) {
    for (int64_t t = from; t < to; t++) {
        ids[row + t] = b->options.pad_id;
        targets[row + t] = IGNORE_INDEX;
        positions[row + t] = (int32_t)(segments ? t - from : t);
        if (segments) segments[row + t] = -1;
    }
}

static int alloc_batch(ct_batch *batch, bool packed) {
    int64_t shape[2] = {batch->rows, batch->len};
    batch->ids = ct_empty(CT_I32, 2, shape);
    batch->targets = ct_empty(CT_I32, 2, shape);
    batch->positions = ct_empty(CT_I32, 2, shape);
    batch->segments = packed ? ct_empty(CT_I32, 2, shape) : NULL;
    if (!batch->ids || !batch->targets || !batch->positions || (packed && !batch->segments))
        return ct_fail_context("allocating a batch of [%lld, %lld] tokens: ", (long long)shape[0],
                               (long long)shape[1]);
    return 0;
}

static int fill_batch(const ct_batcher *b, int64_t k, ct_batch *batch) {
    int64_t r0 = b->batch_row[k], r1 = b->batch_row[k + 1], longest = 0;
    for (int64_t r = r0; r < r1; r++) longest = b->row_len[r] > longest ? b->row_len[r] : longest;
    *batch = (ct_batch){.rows = r1 - r0, .len = longest};
    CT_TRY(alloc_batch(batch, b->options.packing));
    int32_t *ids = batch->ids->data, *targets = batch->targets->data;
    int32_t *positions = batch->positions->data, *segments = batch->segments ? batch->segments->data : NULL;
    for (int64_t r = r0; r < r1; r++) {
        int64_t row = (r - r0) * longest, at = 0;
        for (int64_t i = b->row_start[r]; i < b->row_start[r + 1]; i++) {
            int64_t seq = b->order[i];
            batch->n_targets += lay_sequence(b, seq, row + at, (int32_t)(i - b->row_start[r]), ids,
                                             targets, positions, segments);
            at += b->span_len[seq];
            batch->n_sequences++;
        }
        batch->n_real += at;
        pad_row(b, row, at, longest, ids, targets, positions, segments);
    }
    batch->n_padded = batch->rows * batch->len - batch->n_real;
    return 0;
}

int ct_batcher_next(ct_batcher *b, ct_batch *batch) {
    ensure_plan(b);
    CT_TRY(fill_batch(b, b->batch_order[b->next_batch], batch));
    batch->epoch = b->epoch;
    batch->index = b->next_batch;
    if (++b->next_batch == b->n_batches) {
        b->epoch++;
        b->next_batch = 0;
    }
    return 0;
}

int ct_batch_to_device(ct_batch *batch, ct_device device) {
    ct_tensor **tensors[] = {&batch->ids, &batch->targets, &batch->positions, &batch->segments};
    for (size_t i = 0; i < sizeof tensors / sizeof tensors[0]; i++) {
        ct_tensor *t = *tensors[i];
        if (!t || t->device == device) continue;
        *tensors[i] = ct_to_device(t, device);
        if (!*tensors[i]) return ct_fail_context("copying a batch to %s: ", ct_device_name(device));
    }
    return 0;
}

bool ct_batch_positions_plain(const ct_batch *batch) {
    if (batch->segments) return false;
    if (!batch->positions) return true;
    const int32_t *p = batch->positions->data;
    int64_t rows = batch->positions->shape[0], T = batch->positions->shape[1];
    for (int64_t r = 0; r < rows; r++)
        for (int64_t t = 0; t < T; t++)
            if (p[r * T + t] != (int32_t)t) return false;
    return true;
}

int ct_batcher_epoch_stats(ct_batcher *b, ct_epoch_stats *stats) {
    ensure_plan(b);
    *stats = b->stats;
    return 0;
}

ct_truncation_stats ct_batcher_truncation_stats(const ct_batcher *b) { return b->truncation; }

double ct_epoch_padding_waste(const ct_epoch_stats *stats) {
    int64_t total = stats->real_tokens + stats->padded_tokens;
    return total ? (double)stats->padded_tokens / (double)total : 0.0;
}

/* ---- the cursor ---- */

ct_data_cursor ct_batcher_cursor(const ct_batcher *b) {
    return (ct_data_cursor){.epoch = b->epoch, .batch = b->next_batch, .seed = b->seed,
                            .fingerprint = b->fingerprint};
}

int ct_batcher_restore(ct_batcher *b, const ct_data_cursor *cursor) {
    if (cursor->fingerprint != b->fingerprint)
        return ct_fail("data cursor: saved for other data or batching options (fingerprint %016llx, "
                       "now %016llx); resume with the same data files, tokenizer and batch settings",
                       (unsigned long long)cursor->fingerprint, (unsigned long long)b->fingerprint);
    if (cursor->epoch < 0 || cursor->batch < 0)
        return ct_fail("data cursor: negative epoch %lld or batch %lld; the checkpoint is damaged",
                       (long long)cursor->epoch, (long long)cursor->batch);
    int64_t epoch = b->epoch, next = b->next_batch;
    uint64_t seed = b->seed;
    b->epoch = cursor->epoch;
    b->seed = cursor->seed;
    ensure_plan(b);
    if (cursor->batch > b->n_batches) {
        int64_t n = b->n_batches;
        b->epoch = epoch, b->next_batch = next, b->seed = seed;
        return ct_fail("data cursor: batch %lld is past the %lld batches of epoch %lld; the "
                       "checkpoint is damaged", (long long)cursor->batch, (long long)n,
                       (long long)cursor->epoch);
    }
    b->next_batch = cursor->batch;
    if (b->next_batch == b->n_batches) b->epoch++, b->next_batch = 0;
    return 0;
}

void ct_data_cursor_pack(const ct_data_cursor *cursor, int64_t out[4]) {
    out[0] = cursor->epoch;
    out[1] = cursor->batch;
    memcpy(&out[2], &cursor->seed, sizeof cursor->seed);
    memcpy(&out[3], &cursor->fingerprint, sizeof cursor->fingerprint);
}

ct_data_cursor ct_data_cursor_unpack(const int64_t in[4]) {
    ct_data_cursor cursor = {.epoch = in[0], .batch = in[1]};
    memcpy(&cursor.seed, &in[2], sizeof cursor.seed);
    memcpy(&cursor.fingerprint, &in[3], sizeof cursor.fingerprint);
    return cursor;
}
