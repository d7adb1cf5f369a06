/* Open-addressing hash maps for the tokenizer's hot lookups (merge pairs, vocabulary strings,
 * trainer words) and an arena for the strings they point at. Linear probing, load <= 1/2. */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "datasets/tok_internal.h"

#define EMPTY_KEY UINT64_MAX

uint64_t ct_tok_hash_bytes(const void *data, size_t len) {
    const uint8_t *p = data;
    uint64_t h = 0x9E3779B97F4A7C15ull ^ (len * 0xFF51AFD7ED558CCDull);
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ w) * 0xC6A4A7935BD1E995ull;
        h ^= h >> 29;
        p += 8;
        len -= 8;
    }
    uint64_t tail = 0;
    memcpy(&tail, p, len);
    h = (h ^ tail) * 0xC6A4A7935BD1E995ull;
    h ^= h >> 32;
    h *= 0x9E3779B97F4A7C15ull;
    return h ^ (h >> 29);
}

static size_t capacity_for(size_t expected) {
    size_t cap = 16;
    while (cap < 2 * expected) cap *= 2;
    return cap;
}

static size_t u64_home(uint64_t key, size_t cap) {
    return (size_t)((key * 0x9E3779B97F4A7C15ull) >> 17) & (cap - 1);
}

int ct_u64map_init(ct_u64map *m, size_t expected) {
    m->cap = capacity_for(expected);
    m->count = 0;
    m->slots = ct_malloc(m->cap * sizeof *m->slots, "a hash map");
    if (!m->slots) return -1;
    for (size_t i = 0; i < m->cap; i++) m->slots[i].key = EMPTY_KEY;
    return 0;
}

void ct_u64map_free(ct_u64map *m) {
    free(m->slots);
    *m = (ct_u64map){0};
}

const uint64_t *ct_u64map_get(const ct_u64map *m, uint64_t key) {
    if (!m->cap) return NULL;
    for (size_t i = u64_home(key, m->cap);; i = (i + 1) & (m->cap - 1)) {
        const ct_u64map_slot *slot = &m->slots[i];
        if (slot->key == key) return &slot->value;
        if (slot->key == EMPTY_KEY) return NULL;
    }
}

static int u64map_grow(ct_u64map *m) {
    ct_u64map bigger;
    CT_TRY(ct_u64map_init(&bigger, m->cap));
    for (size_t i = 0; i < m->cap; i++) {
        if (m->slots[i].key == EMPTY_KEY) continue;
        size_t j = u64_home(m->slots[i].key, bigger.cap);
        while (bigger.slots[j].key != EMPTY_KEY) j = (j + 1) & (bigger.cap - 1);
        bigger.slots[j] = m->slots[i];
    }
    bigger.count = m->count;
    free(m->slots);
    *m = bigger;
    return 0;
}

uint64_t *ct_u64map_upsert(ct_u64map *m, uint64_t key) {
    if ((!m->cap && ct_u64map_init(m, 8) < 0) ||
        (2 * (m->count + 1) > m->cap && u64map_grow(m) < 0))
        return NULL;
    for (size_t i = u64_home(key, m->cap);; i = (i + 1) & (m->cap - 1)) {
        ct_u64map_slot *slot = &m->slots[i];
        if (slot->key == key) return &slot->value;
        if (slot->key == EMPTY_KEY) {
            slot->key = key;
            slot->value = 0;
            m->count++;
            return &slot->value;
        }
    }
}

int ct_strmap_init(ct_strmap *m, size_t expected) {
    m->cap = capacity_for(expected);
    m->count = 0;
    m->slots = ct_calloc(m->cap, sizeof *m->slots, "a string map");
    return m->slots ? 0 : -1;
}

void ct_strmap_free(ct_strmap *m) {
    free(m->slots);
    *m = (ct_strmap){0};
}

static ct_strmap_slot *strmap_find(const ct_strmap *m, const char *s, size_t len, uint32_t hash) {
    for (size_t i = hash & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        ct_strmap_slot *slot = &m->slots[i];
        if (!slot->str) return slot;
        if (slot->hash == hash && slot->len == len && !memcmp(slot->str, s, len)) return slot;
    }
}

int32_t ct_strmap_get(const ct_strmap *m, const char *s, size_t len) {
    if (!m->cap) return -1;
    const ct_strmap_slot *slot = strmap_find(m, s, len, (uint32_t)ct_tok_hash_bytes(s, len));
    return slot->str ? slot->value : -1;
}

static int strmap_grow(ct_strmap *m) {
    ct_strmap bigger;
    CT_TRY(ct_strmap_init(&bigger, m->cap));
    for (size_t i = 0; i < m->cap; i++) {
        const ct_strmap_slot *old = &m->slots[i];
        if (old->str) *strmap_find(&bigger, old->str, old->len, old->hash) = *old;
    }
    bigger.count = m->count;
    free(m->slots);
    *m = bigger;
    return 0;
}

int32_t *ct_strmap_upsert(ct_strmap *m, const char *s, size_t len, bool *created) {
    if ((!m->cap && ct_strmap_init(m, 8) < 0) ||
        (2 * (m->count + 1) > m->cap && strmap_grow(m) < 0))
        return NULL;
    uint32_t hash = (uint32_t)ct_tok_hash_bytes(s, len);
    ct_strmap_slot *slot = strmap_find(m, s, len, hash);
    *created = !slot->str;
    if (*created) {
        *slot = (ct_strmap_slot){.str = s, .len = (uint32_t)len, .hash = hash, .value = -1};
        m->count++;
    }
    return &slot->value;
}

struct ct_tok_arena_block {
    ct_tok_arena_block *next;
    size_t used, cap;
    char data[];
};

char *ct_tok_arena_copy(ct_tok_arena *a, const char *s, size_t len) {
    ct_tok_arena_block *b = a->head;
    if (!b || b->cap - b->used < len + 1) {
        size_t cap = len + 1 > (1u << 20) ? len + 1 : (1u << 20);
        b = ct_malloc(sizeof *b + cap, "tokenizer strings");
        if (!b) return NULL;
        b->next = a->head;
        b->used = 0;
        b->cap = cap;
        a->head = b;
    }
    char *copy = b->data + b->used;
    if (len) memcpy(copy, s, len);
    copy[len] = '\0';
    b->used += len + 1;
    return copy;
}

void ct_tok_arena_free(ct_tok_arena *a) {
    while (a->head) {
        ct_tok_arena_block *next = a->head->next;
        free(a->head);
        a->head = next;
    }
}
