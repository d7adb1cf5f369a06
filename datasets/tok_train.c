/* The byte-level BPE trainer. The corpus is cut into pre-tokens exactly as the tokenizer will
 * cut it at encode time (NFC, the Qwen2 regex), counted as distinct words, and the most frequent
 * adjacent pair is merged until the vocabulary is full.
 *
 * Pair counts are kept incrementally: each pair knows the words it occurs in, a merge rewrites
 * only those words and adjusts the counts of the pairs around each rewritten occurrence, and a
 * max-heap with lazy deletion finds the next best pair (an entry whose count went stale is
 * re-queued with its current count when it reaches the top). Ties go to the smallest pair of
 * ids, so training is deterministic. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem */
#endif
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "datasets/examples.h"

#include "core/error.h"
#include "datasets/tok_internal.h"

const char *const CT_QWEN2_SPLIT_REGEX =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*"
    "|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

const char *const ct_train_special_tokens[3] = {"<|endoftext|>", "<|im_start|>", "<|im_end|>"};

struct ct_train_word {
    const char *text;
    int32_t *symbols; /* token ids; shrinks as merges apply */
    int32_t n_symbols;
    int64_t count;
};

ct_bpe_trainer *ct_bpe_trainer_new(void) {
    ct_bpe_trainer *t = ct_calloc(1, sizeof *t, "a BPE trainer");
    if (!t) return NULL;
    t->pretok.utf8proc_options = UTF8PROC_STABLE | UTF8PROC_COMPOSE;
    if (ct_pretok_add_split(&t->pretok, CT_QWEN2_SPLIT_REGEX, false, "the Qwen2 regex") < 0 ||
        ct_strmap_init(&t->word_index, 1 << 16) < 0) {
        ct_bpe_trainer_free(t);
        return NULL;
    }
    return t;
}

void ct_bpe_trainer_free(ct_bpe_trainer *t) {
    if (!t) return;
    ct_pretok_free(&t->pretok);
    ct_pretok_scratch_free(&t->scratch);
    ct_strmap_free(&t->word_index);
    for (int64_t i = 0; i < t->n_distinct; i++) free(t->words[i].symbols);
    free(t->words);
    ct_tok_arena_free(&t->strings);
    free(t->tokens);
    free(t->merges);
    free(t);
}

/* ---- counting words ---- */

static int add_word(ct_bpe_trainer *t, const char *text, size_t len) {
    if (len > INT32_MAX) return ct_fail("BPE trainer: a pre-token of %zu bytes is too long", len);
    if (t->n_distinct == INT32_MAX) return ct_fail("BPE trainer: more than 2^31 distinct words");
    if (t->n_distinct == t->words_cap) {
        int64_t cap = t->words_cap ? 2 * t->words_cap : 4096;
        struct ct_train_word *grown = realloc(t->words, (size_t)cap * sizeof *grown);
        if (!grown) return ct_fail("out of memory: %lld trainer words", (long long)cap);
        t->words = grown;
        t->words_cap = cap;
    }
    /* The map keeps pointers to its keys, so a new word is copied before it is inserted. */
    char *copy = ct_tok_arena_copy(&t->strings, text, len);
    bool created;
    int32_t *slot = copy ? ct_strmap_upsert(&t->word_index, copy, len, &created) : NULL;
    if (!slot) return -1;
    *slot = (int32_t)t->n_distinct;
    t->words[t->n_distinct++] =
        (struct ct_train_word){.text = copy, .n_symbols = (int32_t)len, .count = 1};
    return 0;
}

static int count_word(void *ctx, const char *text, size_t len, size_t offset) {
    (void)offset;
    ct_bpe_trainer *t = ctx;
    t->n_words++;
    int32_t index = ct_strmap_get(&t->word_index, text, len);
    if (index < 0) return add_word(t, text, len);
    t->words[index].count++;
    return 0;
}

static int count_text(ct_bpe_trainer *t, const char *text, size_t len) {
    if (len == 0) return 0;
    char *normal;
    size_t normal_len;
    CT_TRY(ct_pretok_normalize(&t->pretok, text, len, &normal, &normal_len));
    int rc = ct_pretok_split(&t->pretok, &t->scratch, normal, normal_len, count_word, t);
    if (normal != text) free(normal);
    return rc;
}

/* The earliest special-token string in text, or NULL. */
static const char *find_special(const char *text, size_t len, size_t *special_len) {
    const char *first = NULL;
    for (int i = 0; i < 3; i++) {
        size_t n = strlen(ct_train_special_tokens[i]);
        const char *at = memmem(text, len, ct_train_special_tokens[i], n);
        if (at && (!first || at < first)) first = at, *special_len = n;
    }
    return first;
}

int ct_bpe_trainer_add_text(ct_bpe_trainer *t, const char *text, size_t len) {
    if (t->trained) return ct_fail("BPE trainer: add texts before training");
    t->corpus_bytes += (int64_t)len;
    size_t special_len = 0;
    const char *at;
    while ((at = find_special(text, len, &special_len)) != NULL) {
        CT_TRY(count_text(t, text, (size_t)(at - text)));
        len -= (size_t)(at - text) + special_len;
        text = at + special_len;
    }
    return count_text(t, text, len);
}

/* ---- reading corpus files ---- */

/* Corpus text must be UTF-8, as `ctune train` requires of its data: a tokenizer learned from
 * other bytes would hold merges no valid text can reach. line_no 0: a whole file, whose line
 * is counted here. */
static int check_utf8(const char *path, const char *text, size_t len, long long line_no) {
    const int64_t invalid = ct_utf8_first_invalid(text, len);
    if (invalid < 0) return 0;
    const char *line_start = text;
    if (line_no == 0) {
        line_no = 1;
        for (const char *p = text; p < text + invalid; p++)
            if (*p == '\n') line_no++, line_start = p + 1;
    }
    return ct_fail("%s:%lld: invalid UTF-8 at byte %lld of the line; save the file as UTF-8", path, line_no,
                   (long long)(text + invalid - line_start) + 1);
}

/* Every string value of a JSON record, except ids and chat roles, is training text. */
static int add_json_strings(ct_bpe_trainer *t, const cJSON *item) {
    if (cJSON_IsString(item)) return ct_bpe_trainer_add_text(t, item->valuestring, strlen(item->valuestring));
    for (const cJSON *child = item->child; child; child = child->next) {
        if (child->string && (!strcmp(child->string, "id") || !strcmp(child->string, "role")))
            continue;
        CT_TRY(add_json_strings(t, child));
    }
    return 0;
}

static bool has_extension(const char *path, const char *extension) {
    const char *dot = strrchr(path, '.');
    return dot && !strcmp(dot, extension);
}

/* A .json file is one JSON value (a list of records, or one record). */
static int add_json_file(ct_bpe_trainer *t, const char *path) {
    size_t len;
    char *text = ct_tok_read_file(path, &len);
    if (!text) return -1;
    if (check_utf8(path, text, len, 0) < 0) {
        free(text);
        return -1;
    }
    cJSON *root = cJSON_ParseWithLength(text, len);
    free(text);
    if (!root) return ct_fail("%s: malformed JSON (a .json corpus is one JSON value; use .jsonl "
                              "for one record per line)", path);
    int rc = add_json_strings(t, root);
    cJSON_Delete(root);
    return rc;
}

static int add_jsonl_file(ct_bpe_trainer *t, const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return ct_fail("%s: cannot open (%s)", path, strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    long long line_no = 0;
    int rc = 0;
    while (rc == 0 && (n = getline(&line, &cap, f)) > 0) {
        line_no++;
        size_t skip = strspn(line, " \t\r\n");
        if (skip == (size_t)n) continue;
        if ((rc = check_utf8(path, line, (size_t)n, line_no)) < 0) break;
        cJSON *record = cJSON_ParseWithLength(line, (size_t)n);
        if (!record) {
            rc = ct_fail("%s:%lld: malformed JSON; each line must be one JSON record", path, line_no);
            break;
        }
        rc = add_json_strings(t, record);
        cJSON_Delete(record);
    }
    if (rc == 0 && ferror(f)) rc = ct_fail("%s: read failed", path);
    free(line);
    fclose(f);
    return rc;
}

int ct_bpe_trainer_add_file(ct_bpe_trainer *t, const char *path) {
    if (has_extension(path, ".jsonl")) return add_jsonl_file(t, path);
    if (has_extension(path, ".json")) return add_json_file(t, path);
    size_t len;
    char *text = ct_tok_read_file(path, &len);
    if (!text) return -1;
    int rc = check_utf8(path, text, len, 0);
    if (rc == 0) rc = ct_bpe_trainer_add_text(t, text, len);
    free(text);
    return rc;
}

/* ---- learning merges ---- */

typedef struct {
    int64_t count;
    int32_t *where; /* words the pair occurs in (may repeat, may be stale) */
    int32_t n_where, cap_where;
    uint32_t stamp; /* the merge that last touched it */
} pair_stat;

typedef struct {
    int64_t count;
    uint64_t pair;
} heap_entry;

typedef struct {
    ct_bpe_trainer *t;
    ct_u64map index; /* pair -> 1 + index into stats */
    pair_stat *stats;
    int64_t n_stats, cap_stats;
    heap_entry *heap;
    size_t heap_len, heap_cap;
    uint64_t *touched;
    size_t n_touched, cap_touched;
    uint32_t epoch;
    ct_strmap token_index; /* token bytes -> id */
} train_state;

static uint64_t pair_key(int32_t a, int32_t b) { return (uint64_t)(uint32_t)a << 32 | (uint32_t)b; }

static bool heap_before(heap_entry x, heap_entry y) {
    return x.count > y.count || (x.count == y.count && x.pair < y.pair);
}

static int heap_push(train_state *st, int64_t count, uint64_t pair) {
    if (st->heap_len == st->heap_cap) {
        size_t cap = st->heap_cap ? 2 * st->heap_cap : 1 << 16;
        heap_entry *grown = realloc(st->heap, cap * sizeof *grown);
        if (!grown) return ct_fail("out of memory: BPE trainer queue of %zu pairs", cap);
        st->heap = grown;
        st->heap_cap = cap;
    }
    heap_entry e = {count, pair};
    size_t i = st->heap_len++;
    while (i > 0 && heap_before(e, st->heap[(i - 1) / 2])) {
        st->heap[i] = st->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    st->heap[i] = e;
    return 0;
}

static heap_entry heap_pop(train_state *st) {
    heap_entry top = st->heap[0], last = st->heap[--st->heap_len];
    size_t n = st->heap_len, i = 0;
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= n) break;
        if (child + 1 < n && heap_before(st->heap[child + 1], st->heap[child])) child++;
        if (!heap_before(st->heap[child], last)) break;
        st->heap[i] = st->heap[child];
        i = child;
    }
    if (n) st->heap[i] = last;
    return top;
}

static pair_stat *stat_of(train_state *st, uint64_t pair) {
    const uint64_t *index = ct_u64map_get(&st->index, pair);
    return index ? &st->stats[*index - 1] : NULL;
}

static int append_int(int32_t **items, int32_t *n, int32_t *cap, int32_t value) {
    if (*n == *cap) {
        int32_t grown_cap = *cap ? 2 * *cap : 4;
        int32_t *grown = realloc(*items, (size_t)grown_cap * sizeof *grown);
        if (!grown) return ct_fail("out of memory: BPE trainer pair index");
        *items = grown;
        *cap = grown_cap;
    }
    (*items)[(*n)++] = value;
    return 0;
}

static pair_stat *stat_upsert(train_state *st, uint64_t pair) {
    uint64_t *index = ct_u64map_upsert(&st->index, pair);
    if (!index) return NULL;
    if (*index == 0) {
        if (st->n_stats == st->cap_stats) {
            int64_t cap = st->cap_stats ? 2 * st->cap_stats : 1 << 16;
            pair_stat *grown = realloc(st->stats, (size_t)cap * sizeof *grown);
            if (!grown) {
                ct_fail("out of memory: %lld BPE trainer pairs", (long long)cap);
                return NULL;
            }
            st->stats = grown;
            st->cap_stats = cap;
        }
        st->stats[st->n_stats] = (pair_stat){0};
        *index = (uint64_t)++st->n_stats;
    }
    return &st->stats[*index - 1];
}

/* Adds `delta` occurrences of (a, b); a gain also records the word it happened in. */
static int pair_change(train_state *st, int32_t a, int32_t b, int64_t delta, int32_t word) {
    uint64_t pair = pair_key(a, b);
    pair_stat *stat = stat_upsert(st, pair);
    if (!stat) return -1;
    stat->count += delta;
    if (delta > 0 && (stat->n_where == 0 || stat->where[stat->n_where - 1] != word))
        CT_TRY(append_int(&stat->where, &stat->n_where, &stat->cap_where, word));
    if (stat->stamp != st->epoch) {
        stat->stamp = st->epoch;
        if (st->n_touched == st->cap_touched) {
            size_t cap = st->cap_touched ? 2 * st->cap_touched : 1024;
            uint64_t *grown = realloc(st->touched, cap * sizeof *grown);
            if (!grown) return ct_fail("out of memory: BPE trainer pair list");
            st->touched = grown;
            st->cap_touched = cap;
        }
        st->touched[st->n_touched++] = pair;
    }
    return 0;
}

/* Queues every pair the last step changed, with its current count. */
static int queue_touched(train_state *st) {
    for (size_t i = 0; i < st->n_touched; i++) {
        const pair_stat *stat = stat_of(st, st->touched[i]);
        if (stat->count > 0) CT_TRY(heap_push(st, stat->count, st->touched[i]));
    }
    st->n_touched = 0;
    st->epoch++;
    return 0;
}

/* Rewrites every (a, b) of one word as `merged`, adjusting the neighbouring pairs' counts. */
static int merge_word(train_state *st, int32_t w, int32_t a, int32_t b, int32_t merged) {
    struct ct_train_word *word = &st->t->words[w];
    int32_t *s = word->symbols, n = word->n_symbols, out = 0, r = 0;
    int64_t c = word->count;
    while (r < n) {
        if (r + 1 < n && s[r] == a && s[r + 1] == b) {
            if (out > 0) {
                CT_TRY(pair_change(st, s[out - 1], a, -c, w));
                CT_TRY(pair_change(st, s[out - 1], merged, c, w));
            }
            if (r + 2 < n) {
                CT_TRY(pair_change(st, b, s[r + 2], -c, w));
                CT_TRY(pair_change(st, merged, s[r + 2], c, w));
            }
            s[out++] = merged;
            r += 2;
        } else {
            s[out++] = s[r++];
        }
    }
    word->n_symbols = out;
    return 0;
}

static int add_token(train_state *st, const char *bytes, size_t len, int32_t *id) {
    ct_bpe_trainer *t = st->t;
    int32_t existing = ct_strmap_get(&st->token_index, bytes, len);
    if (existing >= 0) { /* two merges can spell the same string; they share one id */
        *id = existing;
        return 0;
    }
    if (t->n_tokens == t->tokens_cap) {
        int32_t cap = t->tokens_cap ? 2 * t->tokens_cap : 1024;
        ct_train_token *grown = realloc(t->tokens, (size_t)cap * sizeof *grown);
        if (!grown) return ct_fail("out of memory: BPE trainer vocabulary");
        t->tokens = grown;
        t->tokens_cap = cap;
    }
    char *copy = ct_tok_arena_copy(&t->strings, bytes, len);
    bool created;
    int32_t *slot = copy ? ct_strmap_upsert(&st->token_index, copy, len, &created) : NULL;
    if (!slot) return -1;
    *slot = *id = t->n_tokens;
    t->tokens[t->n_tokens++] = (ct_train_token){copy, (uint32_t)len};
    return 0;
}

/* Ids 0-255 are the bytes, ordered by the code point that stands for them (as the library's
 * trainer orders its initial alphabet); words start as one symbol per byte. */
static int init_state(train_state *st) {
    ct_bpe_trainer *t = st->t;
    int32_t byte_id[256];
    CT_TRY(ct_strmap_init(&st->token_index, 4096));
    for (uint32_t cp = 0; cp < 324; cp++) {
        int byte = ct_char_to_byte(cp);
        if (byte < 0) continue;
        char b = (char)byte;
        CT_TRY(add_token(st, &b, 1, &byte_id[byte]));
    }
    st->epoch = 1;
    for (int32_t w = 0; w < (int32_t)t->n_distinct; w++) {
        struct ct_train_word *word = &t->words[w];
        word->symbols = ct_malloc((size_t)word->n_symbols * sizeof(int32_t), "trainer words");
        if (!word->symbols) return -1;
        for (int32_t i = 0; i < word->n_symbols; i++)
            word->symbols[i] = byte_id[(uint8_t)word->text[i]];
        for (int32_t i = 0; i + 1 < word->n_symbols; i++)
            CT_TRY(pair_change(st, word->symbols[i], word->symbols[i + 1], word->count, w));
    }
    return queue_touched(st);
}

/* The best pair whose queued count is current, or count 0 when none is left. */
static heap_entry best_pair(train_state *st) {
    while (st->heap_len > 0) {
        heap_entry top = heap_pop(st);
        const pair_stat *stat = stat_of(st, top.pair);
        if (stat->count == top.count) return top;
        if (stat->count > 0 && heap_push(st, stat->count, top.pair) < 0) break;
    }
    return (heap_entry){0, 0};
}

static int apply_merge(train_state *st, uint64_t pair) {
    ct_bpe_trainer *t = st->t;
    int32_t a = (int32_t)(pair >> 32), b = (int32_t)(pair & 0xFFFFFFFFu), merged;
    ct_strbuf joined = {0};
    int rc = ct_strbuf_append(&joined, t->tokens[a].bytes, t->tokens[a].len);
    if (rc == 0) rc = ct_strbuf_append(&joined, t->tokens[b].bytes, t->tokens[b].len);
    if (rc == 0) rc = add_token(st, joined.data, joined.len, &merged);
    ct_strbuf_free(&joined);
    CT_TRY(rc);
    t->merges[t->n_merges][0] = a;
    t->merges[t->n_merges][1] = b;
    t->n_merges++;
    pair_stat *stat = stat_of(st, pair);
    int32_t *where = stat->where, n_where = stat->n_where;
    *stat = (pair_stat){.stamp = stat->stamp}; /* the words list is ours now */
    for (int32_t i = 0; i < n_where && rc == 0; i++) rc = merge_word(st, where[i], a, b, merged);
    free(where);
    stat = stat_of(st, pair);
    stat->count = 0; /* every occurrence is merged (decrements may have counted it again) */
    return rc < 0 ? rc : queue_touched(st);
}

static void free_state(train_state *st) {
    for (int64_t i = 0; i < st->n_stats; i++) free(st->stats[i].where);
    free(st->stats);
    ct_u64map_free(&st->index);
    free(st->heap);
    free(st->touched);
    ct_strmap_free(&st->token_index);
}

static int learn(train_state *st, const ct_bpe_train_options *options) {
    ct_bpe_trainer *t = st->t;
    int32_t target = options->vocab_size - 3;
    t->merges = ct_malloc((size_t)(target - 256) * sizeof *t->merges, "BPE merges");
    if (!t->merges) return -1;
    CT_TRY(init_state(st));
    int64_t min_frequency = options->min_frequency > 1 ? options->min_frequency : 1;
    while (t->n_tokens < target && t->n_merges < target - 256) {
        heap_entry best = best_pair(st);
        if (best.count < min_frequency) break;
        CT_TRY(apply_merge(st, best.pair));
    }
    return 0;
}

int ct_bpe_trainer_train(ct_bpe_trainer *t, const ct_bpe_train_options *options,
                         ct_bpe_train_report *report) {
    if (t->trained) return ct_fail("BPE trainer: already trained");
    if (options->vocab_size < 256 + 3 + 1)
        return ct_fail("BPE trainer: vocab size %d is too small (at least 260: 256 bytes, 3 special "
                       "tokens and one merge)", options->vocab_size);
    train_state st = {.t = t};
    int rc = learn(&st, options);
    free_state(&st);
    for (int64_t i = 0; i < t->n_distinct; i++) {
        free(t->words[i].symbols);
        t->words[i].symbols = NULL;
    }
    if (rc < 0) return -1;
    t->trained = true;
    if (report)
        *report = (ct_bpe_train_report){
            .vocab_size = t->n_tokens + 3,
            .n_merges = t->n_merges,
            .n_words = t->n_words,
            .n_distinct_words = t->n_distinct,
            .corpus_bytes = t->corpus_bytes,
        };
    return 0;
}
