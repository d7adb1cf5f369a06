/* BPE on one pre-token, as the Hugging Face library does it: start from one symbol per byte,
 * then repeatedly apply the lowest-ranked merge, leftmost first. A min-heap of (rank, position)
 * over adjacent pairs and a doubly linked list of symbols make this O(n log n), which matters
 * because an unspaced Chinese sentence is a single pre-token of hundreds of bytes. Heap entries
 * go stale when a neighbour merges; they are recognised on pop (the pair at that position no
 * longer has that rank) and dropped, exactly as the library does. */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "datasets/tok_internal.h"

static int scratch_reserve(ct_bpe_scratch *s, size_t n) {
    if (n > s->cap) {
        size_t cap = s->cap ? s->cap : 64;
        while (cap < n) cap *= 2;
        int32_t *arrays[4] = {s->id, s->prev, s->next, s->len};
        for (int i = 0; i < 4; i++) {
            int32_t *grown = realloc(arrays[i], cap * sizeof(int32_t));
            if (!grown) return ct_fail("out of memory: BPE scratch for a %zu-byte word", n);
            arrays[i] = grown;
            s->id = arrays[0], s->prev = arrays[1], s->next = arrays[2], s->len = arrays[3];
        }
        s->cap = cap;
    }
    return 0;
}

static int heap_push(ct_bpe_scratch *s, size_t *size, uint64_t entry) {
    if (*size == s->heap_cap) {
        size_t cap = s->heap_cap ? 2 * s->heap_cap : 64;
        uint64_t *grown = realloc(s->heap, cap * sizeof *grown);
        if (!grown) return ct_fail("out of memory: BPE merge queue");
        s->heap = grown;
        s->heap_cap = cap;
    }
    uint64_t *h = s->heap;
    size_t i = (*size)++;
    while (i > 0 && h[(i - 1) / 2] > entry) {
        h[i] = h[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h[i] = entry;
    return 0;
}

static uint64_t heap_pop(ct_bpe_scratch *s, size_t *size) {
    uint64_t *h = s->heap;
    uint64_t top = h[0], last = h[--*size];
    size_t n = *size, i = 0;
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= n) break;
        if (child + 1 < n && h[child + 1] < h[child]) child++;
        if (h[child] >= last) break;
        h[i] = h[child];
        i = child;
    }
    if (n) h[i] = last;
    return top;
}

/* Queues the merge of the pair starting at symbol `pos`, if the pair has one. */
static int queue_pair(const ct_bpe_model *m, ct_bpe_scratch *s, size_t *heap_size, int32_t pos) {
    if (pos < 0 || s->next[pos] < 0) return 0;
    int32_t right = s->next[pos];
    uint64_t key = (uint64_t)(uint32_t)s->id[pos] << 32 | (uint32_t)s->id[right];
    const uint64_t *merge = ct_u64map_get(&m->merges, key);
    if (!merge) return 0;
    return heap_push(s, heap_size, (*merge & 0xFFFFFFFF00000000ull) | (uint32_t)pos);
}

static int emit(ct_token_list *out, ct_token_list *ends, int32_t id, size_t end) {
    CT_TRY(ct_token_list_push(out, id));
    return ends ? ct_token_list_push(ends, (int32_t)end) : 0;
}

/* One symbol per byte the vocabulary knows; the library drops a character it cannot map when
 * there is no unk token, so an unknown byte is skipped the same way. */
static int32_t init_symbols(const ct_bpe_model *m, ct_bpe_scratch *s, const uint8_t *bytes,
                            size_t len) {
    int32_t n = 0;
    for (size_t i = 0; i < len; i++) {
        int32_t id = m->byte_ids[bytes[i]];
        if (id < 0) {
            if (n > 0) s->len[n - 1]++;
            continue;
        }
        s->id[n] = id;
        s->len[n] = 1;
        s->prev[n] = n - 1;
        s->next[n] = n + 1;
        n++;
    }
    if (n > 0) s->next[n - 1] = -1;
    return n;
}

static int merge_all(const ct_bpe_model *m, ct_bpe_scratch *s, int32_t n) {
    size_t heap_size = 0;
    for (int32_t i = 0; i + 1 < n; i++) CT_TRY(queue_pair(m, s, &heap_size, i));
    while (heap_size > 0) {
        uint64_t top = heap_pop(s, &heap_size);
        int32_t pos = (int32_t)(top & 0xFFFFFFFFu);
        int32_t right = s->next[pos];
        if (s->len[pos] == 0 || right < 0) continue;
        uint64_t key = (uint64_t)(uint32_t)s->id[pos] << 32 | (uint32_t)s->id[right];
        const uint64_t *merge = ct_u64map_get(&m->merges, key);
        if (!merge || (*merge >> 32) != (top >> 32)) continue; /* stale entry */
        s->id[pos] = (int32_t)(*merge & 0xFFFFFFFFu);
        s->len[pos] += s->len[right];
        s->len[right] = 0;
        s->next[pos] = s->next[right];
        if (s->next[pos] >= 0) s->prev[s->next[pos]] = pos;
        CT_TRY(queue_pair(m, s, &heap_size, s->prev[pos]));
        CT_TRY(queue_pair(m, s, &heap_size, pos));
    }
    return 0;
}

int ct_bpe_encode_word(const ct_bpe_model *m, ct_bpe_scratch *s, const uint8_t *bytes, size_t len,
                       ct_token_list *out, ct_token_list *ends, size_t offset) {
    if (len == 0) return 0;
    if (len == 1 && m->byte_ids[bytes[0]] >= 0)
        return emit(out, ends, m->byte_ids[bytes[0]], offset + 1);
    if (m->ignore_merges) {
        s->text.len = 0;
        CT_TRY(ct_tok_buf_append_byte_level(&s->text, bytes, len));
        int32_t id = ct_strmap_get(&m->vocab, s->text.data, s->text.len);
        if (id >= 0) return emit(out, ends, id, offset + len);
    }
    if (len > INT32_MAX / 2) return ct_fail("BPE: a single pre-token of %zu bytes is too long", len);
    CT_TRY(scratch_reserve(s, len));
    int32_t n = init_symbols(m, s, bytes, len);
    if (n == 0) return 0;
    CT_TRY(merge_all(m, s, n));
    size_t end = offset;
    for (size_t i = 0; i < len && m->byte_ids[bytes[i]] < 0; i++) end++; /* leading unknown bytes */
    for (int32_t i = 0; i >= 0; i = s->next[i]) {
        end += (size_t)s->len[i];
        CT_TRY(emit(out, ends, s->id[i], end));
    }
    return 0;
}

void ct_bpe_scratch_free(ct_bpe_scratch *s) {
    free(s->id);
    free(s->prev);
    free(s->next);
    free(s->len);
    free(s->heap);
    ct_strbuf_free(&s->text);
    *s = (ct_bpe_scratch){0};
}

void ct_bpe_model_free(ct_bpe_model *m) {
    ct_strmap_free(&m->vocab);
    ct_u64map_free(&m->merges);
}
