/* The sequence store and the batcher (datasets/batching.h).
 *
 * A store of random sequences (odd lengths 1..95, random loss masks) is batched under every
 * combination of packing, length bucketing and truncation policy. Every token id encodes its
 * sequence and position (id = 1000 * sequence + position + 1), so each row of a batch can be
 * traced back to the store and compared with what the test derives on its own from the
 * store: the kept span of every sequence, its shifted targets, positions and segments. On top:
 * every kept sequence once per epoch, the token budget, seeded shuffling (equal for equal seeds,
 * different across seeds and epochs), a resumed cursor giving exactly the batches of an
 * uninterrupted run, and the errors for bad options and a foreign cursor. */
#include <stdint.h>
#include <string.h>

#include "core/arena.h"
#include "core/error.h"
#include "core/rng.h"
#include "datasets/batching.h"
#include "tests/ct_test.h"

#define N_SEQ 237
#define MAX_LEN 64
#define PAD_ID 0

static int32_t token_of(int64_t seq, int64_t pos) { return (int32_t)(1000 * seq + pos + 1); }
static int64_t seq_of(int32_t id) { return (id - 1) / 1000; }
static int64_t pos_of(int32_t id) { return (id - 1) % 1000; }

/* Random lengths 1..95 (a third are longer than MAX_LEN), random masks with about 60% ones;
 * every 17th sequence has no target at all. */
static void make_store(ct_seq_store *store, uint64_t seed) {
    ct_rng rng;
    ct_rng_seed(&rng, seed);
    int32_t ids[128];
    uint8_t mask[128];
    for (int64_t i = 0; i < N_SEQ; i++) {
        int64_t len = 1 + (int64_t)ct_rng_below(&rng, 95);
        for (int64_t t = 0; t < len; t++) {
            ids[t] = token_of(i, t);
            mask[t] = i % 17 == 5 ? 0 : ct_rng_uniform(&rng) < 0.6;
        }
        CHECK(ct_seq_store_add(store, ids, mask, (size_t)len) == 0, "%s", ct_last_error());
    }
}

/* What the test expects of sequence i: the kept span, or len 0 when dropped. */
typedef struct {
    int64_t start, len;
} span;

static span expected_span(const ct_seq_store *s, int64_t i, ct_truncation policy) {
    int64_t len = ct_seq_store_len(s, (size_t)i);
    if (len <= MAX_LEN) return (span){0, len};
    if (policy == CT_TRUNCATE_DROP) return (span){0, 0};
    return (span){policy == CT_TRUNCATE_LEFT ? len - MAX_LEN : 0, MAX_LEN};
}

typedef struct {
    int64_t seen[N_SEQ];
    int64_t order[N_SEQ]; /* sequences in the order batches gave them */
    int64_t n_order;
    int64_t batches, real, padded, targets;
    int errors;
} epoch_check;

static int32_t at(const ct_tensor *t, int64_t i) { return ((const int32_t *)t->data)[i]; }

/* One sequence found at columns [c0, c0 + n) of row `row`: compares ids, targets and positions
 * with the store. Returns the number of targets. */
static int64_t check_sequence(const ct_seq_store *s, const ct_batch *b, int64_t row, int64_t c0,
                              int64_t n, ct_truncation policy, epoch_check *ec) {
    int64_t T = b->len, base = row * T + c0;
    int64_t seq = seq_of(at(b->ids, base));
    if (seq < 0 || seq >= N_SEQ) {
        ec->errors++;
        return 0;
    }
    span sp = expected_span(s, seq, policy);
    const int32_t *ids = s->ids + s->offsets[seq] + sp.start;
    const uint8_t *mask = s->mask + s->offsets[seq] + sp.start;
    int64_t targets = 0;
    bool ok = n == sp.len;
    for (int64_t t = 0; ok && t < n; t++) {
        int32_t want = t + 1 < n && mask[t + 1] ? ids[t + 1] : -100;
        ok = at(b->ids, base + t) == ids[t] && at(b->targets, base + t) == want &&
             at(b->positions, base + t) == t;
        targets += want != -100;
    }
    if (!ok) ec->errors++;
    ec->seen[seq]++;
    ec->order[ec->n_order++ % N_SEQ] = seq;
    return targets;
}

/* Walks a batch row by row: real tokens, then padding. */
static void check_batch(const ct_seq_store *s, const ct_batch *b, const ct_batch_options *o,
                        epoch_check *ec) {
    int64_t B = b->rows, T = b->len, real = 0, targets = 0, sequences = 0;
    CHECK(B >= 1 && B <= o->batch_size && T <= MAX_LEN && B * T <= o->batch_tokens,
          "batch [%lld, %lld]: at most %lld rows, %d columns, %lld tokens", (long long)B,
          (long long)T, (long long)o->batch_size, MAX_LEN, (long long)o->batch_tokens);
    CHECK((b->segments != NULL) == o->packing, "segments exactly when packed");
    for (int64_t r = 0; r < B; r++) {
        int64_t c = 0;
        int32_t segment = 0;
        while (c < T && at(b->ids, r * T + c) != PAD_ID) {
            int64_t start = c;
            int32_t seg = o->packing ? at(b->segments, r * T + c) : 0;
            /* a sequence runs while its segment holds and its positions count up from 0 */
            while (c < T && at(b->ids, r * T + c) != PAD_ID &&
                   (!o->packing || at(b->segments, r * T + c) == seg) &&
                   (c == start || pos_of(at(b->ids, r * T + c)) == pos_of(at(b->ids, r * T + c - 1)) + 1))
                c++;
            if (o->packing && seg != segment) ec->errors++; /* segments 0, 1, 2, ... per row */
            segment++;
            targets += check_sequence(s, b, r, start, c - start, o->truncation, ec);
            real += c - start;
            sequences++;
            if (!o->packing) break; /* one sequence per row */
        }
        for (; c < T; c++) {
            int64_t i = r * T + c;
            bool pad_ok = at(b->ids, i) == PAD_ID && at(b->targets, i) == -100 &&
                          (!o->packing || at(b->segments, i) == -1);
            if (!pad_ok) ec->errors++;
        }
    }
    CHECK(b->n_real == real && b->n_padded == B * T - real && b->n_targets == targets &&
              b->n_sequences == sequences,
          "batch counts: real %lld (counted %lld), targets %lld (%lld), sequences %lld (%lld)",
          (long long)b->n_real, (long long)real, (long long)b->n_targets, (long long)targets,
          (long long)b->n_sequences, (long long)sequences);
    ec->real += real;
    ec->padded += B * T - real;
    ec->targets += targets;
}

static void run_epoch(const ct_seq_store *s, ct_batcher *bt, const ct_batch_options *o,
                      int64_t epoch, epoch_check *ec) {
    memset(ec, 0, sizeof *ec);
    ct_epoch_stats stats;
    CHECK(ct_batcher_epoch_stats(bt, &stats) == 0, "%s", ct_last_error());
    for (int64_t k = 0; k < stats.batches; k++) {
        ct_scope_begin();
        ct_batch b;
        if (ct_batcher_next(bt, &b) < 0) {
            CHECK(0, "%s", ct_last_error());
            ct_scope_end();
            return;
        }
        CHECK(b.epoch == epoch && b.index == k, "batch %lld of epoch %lld reported as %lld of %lld",
              (long long)k, (long long)epoch, (long long)b.index, (long long)b.epoch);
        check_batch(s, &b, o, ec);
        ec->batches++;
        ct_scope_end();
    }
    CHECK(stats.real_tokens == ec->real && stats.padded_tokens == ec->padded &&
              stats.target_tokens == ec->targets,
          "epoch stats (real %lld, padded %lld, targets %lld) equal the batches' sums (%lld, %lld, %lld)",
          (long long)stats.real_tokens, (long long)stats.padded_tokens, (long long)stats.target_tokens,
          (long long)ec->real, (long long)ec->padded, (long long)ec->targets);
}

static void check_config(const ct_seq_store *s, bool packing, int64_t bucket, ct_truncation policy) {
    ct_batch_options o = {.max_seq_len = MAX_LEN, .batch_size = 7, .batch_tokens = 300,
                          .bucket_size = bucket, .truncation = policy, .packing = packing,
                          .shuffle = true, .seed = 11, .pad_id = PAD_ID};
    ct_batcher *bt = ct_batcher_new(s, &o);
    CHECK(bt != NULL, "%s", ct_last_error());
    if (!bt) return;
    int64_t expected_kept = 0, expected_no_targets = 0;
    for (int64_t i = 0; i < N_SEQ; i++) {
        span sp = expected_span(s, i, policy);
        expected_kept += sp.len > 0;
        int64_t targets = 0;
        for (int64_t t = 1; t < sp.len; t++) targets += s->mask[s->offsets[i] + sp.start + t];
        expected_no_targets += sp.len > 0 && targets == 0;
    }
    ct_truncation_stats ts = ct_batcher_truncation_stats(bt);
    CHECK(ts.kept == expected_kept && ts.sequences == N_SEQ && ts.no_targets == expected_no_targets &&
              (policy == CT_TRUNCATE_DROP ? ts.dropped == N_SEQ - expected_kept && ts.truncated == 0
                                          : ts.truncated > 0 && ts.dropped == 0),
          "truncation: kept %lld of %lld (expected %lld), truncated %lld, dropped %lld, no targets "
          "%lld (expected %lld)", (long long)ts.kept, (long long)ts.sequences, (long long)expected_kept,
          (long long)ts.truncated, (long long)ts.dropped, (long long)ts.no_targets,
          (long long)expected_no_targets);
    int64_t first_order[N_SEQ];
    bool epochs_differ = false;
    for (int64_t epoch = 0; epoch < 3; epoch++) {
        epoch_check ec;
        run_epoch(s, bt, &o, epoch, &ec);
        int64_t missing = 0;
        for (int64_t i = 0; i < N_SEQ; i++)
            missing += ec.seen[i] != (expected_span(s, i, policy).len > 0);
        CHECK(ec.errors == 0 && missing == 0 && ec.n_order == expected_kept,
              "packing %d bucket %lld truncation %d epoch %lld: %d content errors, %lld sequences "
              "not seen exactly once", packing, (long long)bucket, policy, (long long)epoch, ec.errors,
              (long long)missing);
        if (epoch == 0) memcpy(first_order, ec.order, sizeof first_order);
        else epochs_differ |= memcmp(first_order, ec.order, (size_t)expected_kept * sizeof *first_order) != 0;
        if (epoch == 0)
            printf("packing=%d bucket_size=%lld truncation=%d: %lld batches, padding waste %.3f\n",
                   packing, (long long)bucket, policy, (long long)ec.batches,
                   (double)ec.padded / (double)(ec.real + ec.padded));
    }
    CHECK(epochs_differ, "each epoch has its own order");
    ct_batcher_free(bt);
}

/* ---- determinism, seeds, cursor ---- */

/* A digest of the next n batches (every tensor, every count). */
static void digests(ct_batcher *bt, uint64_t *out, int64_t n) {
    for (int64_t k = 0; k < n; k++) {
        ct_scope_begin();
        ct_batch b;
        uint64_t h = 0;
        if (ct_batcher_next(bt, &b) == 0) {
            const ct_tensor *ts[] = {b.ids, b.targets, b.positions, b.segments};
            for (int j = 0; j < 4; j++)
                for (int64_t i = 0; ts[j] && i < b.rows * b.len; i++)
                    h = ct_mix64(h ^ (uint64_t)(uint32_t)at(ts[j], i));
            h = ct_mix64(h ^ (uint64_t)(b.rows << 32 | b.len));
            h = ct_mix64(h ^ (uint64_t)(b.epoch << 32 | b.index));
        }
        out[k] = h;
        ct_scope_end();
    }
}

static ct_batch_options resume_options(bool packing) {
    return (ct_batch_options){.max_seq_len = MAX_LEN, .batch_size = 5, .batch_tokens = 200,
                              .bucket_size = 24, .truncation = CT_TRUNCATE_LEFT, .packing = packing,
                              .shuffle = true, .seed = 2024, .pad_id = PAD_ID};
}

static void check_seeds(const ct_seq_store *s) {
    ct_batch_options o = resume_options(false);
    ct_batcher *a = ct_batcher_new(s, &o), *b = ct_batcher_new(s, &o);
    o.seed = 2025;
    ct_batcher *c = ct_batcher_new(s, &o);
    uint64_t da[40], db[40], dc[40];
    digests(a, da, 40);
    digests(b, db, 40);
    digests(c, dc, 40);
    CHECK(!memcmp(da, db, sizeof da), "the same seed gives the same batches");
    CHECK(memcmp(da, dc, sizeof da) != 0, "another seed gives other batches");
    ct_batcher_free(a);
    ct_batcher_free(b);
    ct_batcher_free(c);

    /* Without shuffling or bucketing the batches follow the store's order. */
    o = (ct_batch_options){.max_seq_len = MAX_LEN, .batch_size = 4, .batch_tokens = 4 * MAX_LEN,
                           .pad_id = PAD_ID};
    a = ct_batcher_new(s, &o);
    epoch_check ec;
    run_epoch(s, a, &o, 0, &ec);
    bool in_order = ec.n_order == N_SEQ;
    for (int64_t i = 0; in_order && i < N_SEQ; i++) in_order = ec.order[i] == i;
    CHECK(in_order && ec.errors == 0, "no shuffle: store order, batches of 4 rows");
    ct_batcher_free(a);
}

static void check_resume_at(const ct_seq_store *s, bool packing, int64_t stop, const uint64_t *full,
                            int64_t n_full) {
    ct_batch_options o = resume_options(packing);
    ct_batcher *first = ct_batcher_new(s, &o);
    uint64_t scratch[256];
    digests(first, scratch, stop);
    int64_t saved[4];
    ct_data_cursor cursor = ct_batcher_cursor(first);
    ct_data_cursor_pack(&cursor, saved);
    ct_batcher_free(first);

    ct_batcher *resumed = ct_batcher_new(s, &o);
    ct_data_cursor loaded = ct_data_cursor_unpack(saved);
    CHECK(ct_batcher_restore(resumed, &loaded) == 0, "%s", ct_last_error());
    uint64_t rest[256];
    digests(resumed, rest, n_full - stop);
    CHECK(!memcmp(rest, full + stop, (size_t)(n_full - stop) * sizeof *rest),
          "packing %d: resumed after %lld batches (epoch %lld, batch %lld), the run goes on exactly "
          "as without the stop", packing, (long long)stop, (long long)loaded.epoch,
          (long long)loaded.batch);
    ct_batcher_free(resumed);
}

static void check_resume(const ct_seq_store *s, bool packing) {
    ct_batch_options o = resume_options(packing);
    ct_batcher *bt = ct_batcher_new(s, &o);
    ct_epoch_stats e0;
    ct_batcher_epoch_stats(bt, &e0);
    int64_t n_full = 2 * e0.batches + 9; /* into the third epoch */
    uint64_t full[256];
    CHECK(n_full <= 256, "test sizes");
    digests(bt, full, n_full);
    ct_batcher_free(bt);
    check_resume_at(s, packing, 0, full, n_full);
    check_resume_at(s, packing, 3, full, n_full);            /* mid epoch */
    check_resume_at(s, packing, e0.batches, full, n_full);   /* on an epoch boundary */
    check_resume_at(s, packing, e0.batches + 5, full, n_full);
}

static void check_cursor_errors(const ct_seq_store *s) {
    ct_batch_options o = resume_options(false);
    ct_batcher *bt = ct_batcher_new(s, &o);
    ct_data_cursor good = ct_batcher_cursor(bt);

    ct_data_cursor past = good;
    past.batch = 100000;
    CHECK(ct_batcher_restore(bt, &past) < 0 && strstr(ct_last_error(), "past the"), "%s",
          ct_last_error());

    /* Other options, and other data (one token changed), have other fingerprints. */
    o.batch_size = 6;
    ct_batcher *other = ct_batcher_new(s, &o);
    CHECK(ct_batcher_restore(other, &good) < 0 && strstr(ct_last_error(), "fingerprint"),
          "a cursor from other options is refused: %s", ct_last_error());
    ct_batcher_free(other);
    ct_seq_store changed = {0};
    make_store(&changed, 7); /* the same sequences as the store, but for one token */
    o = resume_options(false);
    changed.ids[17] = 5;
    other = ct_batcher_new(&changed, &o);
    ct_data_cursor before = ct_batcher_cursor(other);
    CHECK(ct_batcher_restore(other, &good) < 0 && strstr(ct_last_error(), "same data"),
          "a cursor from other data is refused: %s", ct_last_error());
    ct_data_cursor after = ct_batcher_cursor(other);
    CHECK(!memcmp(&before, &after, sizeof before), "a refused cursor changes nothing");
    ct_batcher_free(other);
    ct_seq_store_free(&changed);
    ct_batcher_free(bt);
}

/* ---- dynamic batching and bad options ---- */

static double epoch_waste(const ct_seq_store *s, const ct_batch_options *o, int64_t *batches) {
    ct_batcher *bt = ct_batcher_new(s, o);
    ct_epoch_stats st;
    ct_batcher_epoch_stats(bt, &st);
    ct_batcher_free(bt);
    *batches = st.batches;
    return ct_epoch_padding_waste(&st);
}

static void check_bucketing_saves_padding(const ct_seq_store *s) {
    ct_batch_options o = {.max_seq_len = MAX_LEN, .batch_size = 16, .batch_tokens = 512,
                          .shuffle = true, .seed = 5, .pad_id = PAD_ID};
    int64_t n_plain, n_bucketed, n_packed;
    double plain = epoch_waste(s, &o, &n_plain);
    o.bucket_size = 100;
    double bucketed = epoch_waste(s, &o, &n_bucketed);
    o.packing = true;
    double packed = epoch_waste(s, &o, &n_packed);
    printf("padding waste, 512-token batches: shuffled %.3f (%lld batches), bucketed by 100 %.3f "
           "(%lld), packed %.3f (%lld)\n", plain, (long long)n_plain, bucketed, (long long)n_bucketed,
           packed, (long long)n_packed);
    CHECK(bucketed < plain && packed < bucketed && n_packed < n_bucketed,
          "bucketing wastes less padding than random batches, packing less still");
}

static void expect_refused(const ct_seq_store *s, ct_batch_options o, const char *needle) {
    ct_clear_error();
    ct_batcher *bt = ct_batcher_new(s, &o);
    CHECK(bt == NULL && strstr(ct_last_error(), needle), "expected an error with \"%s\", got: %s",
          needle, bt ? "a batcher" : ct_last_error());
    ct_batcher_free(bt);
}

static void check_bad_options(const ct_seq_store *s) {
    ct_batch_options ok = {.max_seq_len = MAX_LEN, .batch_size = 4, .pad_id = PAD_ID};
    ct_batch_options o = ok;
    o.max_seq_len = 1;
    expect_refused(s, o, "max_seq_len 1 is too small");
    o = ok;
    o.batch_size = 0;
    expect_refused(s, o, "batch_size 0");
    o = ok;
    o.batch_tokens = MAX_LEN - 1;
    expect_refused(s, o, "batch_tokens 63 is smaller than max_seq_len 64");
    o = ok;
    o.bucket_size = -3;
    expect_refused(s, o, "bucket_size -3");
    ct_seq_store empty = {0};
    expect_refused(&empty, ok, "store is empty");
    ct_seq_store longs = {0};
    int32_t ids[70];
    for (int i = 0; i < 70; i++) ids[i] = i + 1;
    ct_seq_store_add(&longs, ids, NULL, 70);
    ct_seq_store_add(&longs, ids, NULL, 65);
    o = ok;
    o.truncation = CT_TRUNCATE_DROP;
    expect_refused(&longs, o, "all 2 sequences are longer than max_seq_len 64");
    ct_seq_store_free(&longs);
    CHECK(ct_seq_store_add(&empty, ids, NULL, 0) < 0 && strstr(ct_last_error(), "0 tokens"),
          "an empty sequence is refused");
    ct_truncation t;
    CHECK(ct_truncation_parse("left", &t) == 0 && t == CT_TRUNCATE_LEFT &&
              ct_truncation_parse("middle", &t) < 0 && strstr(ct_last_error(), "\"middle\""),
          "truncation names");
}

/* A hand-made packed batch: two sequences [a b c] (targets on b, c) and [d e] (target on e)
 * share a row of max_seq_len 6; the other row holds [f g h i] (targets on g, i). */
static void check_hand_example(void) {
    ct_seq_store s = {0};
    int32_t a[] = {11, 12, 13}, d[] = {14, 15}, f[] = {16, 17, 18, 19};
    uint8_t ma[] = {0, 1, 1}, md[] = {0, 1}, mf[] = {1, 1, 0, 1};
    ct_seq_store_add(&s, f, mf, 4);
    ct_seq_store_add(&s, a, ma, 3);
    ct_seq_store_add(&s, d, md, 2);
    ct_batch_options o = {.max_seq_len = 6, .batch_size = 2, .bucket_size = 3, .packing = true,
                          .pad_id = 0};
    ct_batcher *bt = ct_batcher_new(&s, &o);
    ct_scope_begin();
    ct_batch b;
    CHECK(bt && ct_batcher_next(bt, &b) == 0, "%s", ct_last_error());
    /* first fit, longest first: [f g h i] opens row 0; [a b c] does not fit (4 + 3 > 6) and
     * opens row 1; [d e] fits row 0 (4 + 2 = 6). */
    const int32_t ids[] = {16, 17, 18, 19, 14, 15, 11, 12, 13, 0, 0, 0};
    const int32_t targets[] = {17, -100, 19, -100, 15, -100, 12, 13, -100, -100, -100, -100};
    const int32_t positions[] = {0, 1, 2, 3, 0, 1, 0, 1, 2, 0, 1, 2};
    const int32_t segments[] = {0, 0, 0, 0, 1, 1, 0, 0, 0, -1, -1, -1};
    bool same = bt && b.rows == 2 && b.len == 6;
    for (int i = 0; same && i < 12; i++)
        same = at(b.ids, i) == ids[i] && at(b.targets, i) == targets[i] &&
               at(b.positions, i) == positions[i] && at(b.segments, i) == segments[i];
    CHECK(same, "the hand-packed batch");
    CHECK(same && b.n_targets == 5 && b.n_real == 9 && b.n_padded == 3 && b.n_sequences == 3,
          "counts: 5 targets, 9 real, 3 padded, 3 sequences");
    ct_scope_end();
    ct_batcher_free(bt);
    ct_seq_store_free(&s);
}

int main(void) {
    ct_seq_store store = {0};
    make_store(&store, 7);
    check_hand_example();
    for (int policy = CT_TRUNCATE_RIGHT; policy <= CT_TRUNCATE_DROP; policy++) {
        check_config(&store, false, 0, (ct_truncation)policy);
        check_config(&store, false, 16, (ct_truncation)policy);
        check_config(&store, true, 0, (ct_truncation)policy);
        check_config(&store, true, 32, (ct_truncation)policy);
    }
    check_seeds(&store);
    check_resume(&store, false);
    check_resume(&store, true);
    check_cursor_errors(&store);
    check_bucketing_saves_padding(&store);
    check_bad_options(&store);
    ct_seq_store_free(&store);
    return ct_test_finish("test_batching");
}
