/* Internals shared by the tokenizer's files (tokenizer.c, tok_load.c, tok_bpe.c, tok_pretok.c,
 * tok_text.c, tok_hash.c, tok_train.c, chat_template.c). Not a public interface. */
#ifndef CT_TOK_INTERNAL_H
#define CT_TOK_INTERNAL_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include "core/strbuf.h"
#include <pcre2.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "datasets/tokenizer.h"

/* ---- UTF-8 and character classes (tok_text.c) ---- */

/* Length (1-4) of the valid UTF-8 character at s, storing its code point, or 0 when the bytes
 * there are not valid UTF-8 (overlong forms, surrogates and values past U+10FFFF included). */
int ct_utf8_decode(const uint8_t *s, size_t len, uint32_t *cp);
/* The code point that ends at `pos` (> 0), its first byte's offset in *start, or -1 when the
 * bytes just before `pos` are not one valid character. */
int64_t ct_utf8_decode_before(const char *s, size_t pos, size_t *start);
size_t ct_utf8_encode(uint32_t cp, char out[4]);
/* The Unicode White_Space property: Rust's char::is_whitespace and Oniguruma's \s. */
bool ct_unicode_is_space(uint32_t cp);
/* Rust regex \w: letters, marks, decimal digits, connector punctuation, joiners. */
bool ct_unicode_is_word(uint32_t cp);
/* Code point ranges of the letters and numbers Unicode 15-16 added (the library knows them,
 * PCRE2 10.42 and utf8proc 2.6 do not). */
extern const uint32_t ct_newer_letters[][2];
extern const size_t ct_n_newer_letters;
extern const uint32_t ct_newer_numbers[][2];
extern const size_t ct_n_newer_numbers;
/* Python's str.isspace (what Jinja's trim strips). */
bool ct_unicode_is_py_space(uint32_t cp);

/* GPT-2's byte-level alphabet: every byte stands for one printable code point. */
uint32_t ct_byte_to_char(uint8_t byte);
/* The byte a code point stands for, or -1 when it is not in the alphabet. */
int ct_char_to_byte(uint32_t cp);

/* Appends the byte-level form (one code point per byte, UTF-8) of `len` raw bytes. */
int ct_tok_buf_append_byte_level(ct_strbuf *b, const uint8_t *bytes, size_t len);


/* ---- hash maps and a string arena (tok_hash.c) ---- */

uint64_t ct_tok_hash_bytes(const void *data, size_t len);

/* uint64 -> uint64, open addressing; UINT64_MAX is not a valid key. */
typedef struct {
    uint64_t key, value;
} ct_u64map_slot;
typedef struct {
    ct_u64map_slot *slots;
    size_t cap, count; /* cap is a power of two */
} ct_u64map;
int ct_u64map_init(ct_u64map *m, size_t expected);
void ct_u64map_free(ct_u64map *m);
const uint64_t *ct_u64map_get(const ct_u64map *m, uint64_t key);
/* The value slot of `key`, inserted (value 0) if absent; NULL when out of memory. The pointer
 * stays valid until the next insertion. */
uint64_t *ct_u64map_upsert(ct_u64map *m, uint64_t key);

/* bytes -> int32, open addressing; keys are not copied and must outlive the map. */
typedef struct {
    const char *str;
    uint32_t len;
    uint32_t hash;
    int32_t value;
} ct_strmap_slot;
typedef struct {
    ct_strmap_slot *slots;
    size_t cap, count;
} ct_strmap;
int ct_strmap_init(ct_strmap *m, size_t expected);
void ct_strmap_free(ct_strmap *m);
int32_t ct_strmap_get(const ct_strmap *m, const char *s, size_t len); /* -1 when absent */
/* The value slot of the key, inserted with value -1 if absent (*created says which). */
int32_t *ct_strmap_upsert(ct_strmap *m, const char *s, size_t len, bool *created);

/* Many small strings freed together. */
typedef struct ct_tok_arena_block ct_tok_arena_block;
typedef struct {
    ct_tok_arena_block *head;
} ct_tok_arena;
char *ct_tok_arena_copy(ct_tok_arena *a, const char *s, size_t len); /* NUL-terminated copy */
void ct_tok_arena_free(ct_tok_arena *a);

/* ---- normalizer and pre-tokenizer (tok_pretok.c) ---- */

typedef struct {
    int utf8proc_options; /* 0: no normalizer */
    pcre2_code **regexes; /* Split steps, applied in order */
    /* Without JIT only: the same regexes compiled for valid UTF-8 alone. PCRE2's interpreter
     * looks for the end of the valid stretch of a subject compiled with PCRE2_MATCH_INVALID_UTF
     * on every call, which made splitting a long text quadratic (a 1.6 MB corpus: minutes); a
     * text found valid once is matched with these and PCRE2_NO_UTF_CHECK instead. */
    pcre2_code **strict;
    int n_regexes;
} ct_pretok;

/* Per-call state, so a ct_pretok can be shared between threads. */
typedef struct {
    pcre2_match_data *match;
    pcre2_match_context *context;
    pcre2_jit_stack *jit_stack;
} ct_pretok_scratch;

/* Called for each pre-token: bytes [text, text+len) found at `offset` of the split input. */
typedef int (*ct_piece_fn)(void *ctx, const char *text, size_t len, size_t offset);

/* `pattern` in Oniguruma syntax as tokenizer.json holds it (literal: a plain string). */
int ct_pretok_add_split(ct_pretok *p, const char *pattern, bool literal, const char *file);
void ct_pretok_free(ct_pretok *p);
void ct_pretok_scratch_free(ct_pretok_scratch *s);
/* Normalized text: *out is `text` itself when unchanged, else a new buffer the caller frees. */
int ct_pretok_normalize(const ct_pretok *p, const char *text, size_t len, char **out,
                        size_t *out_len);
/* Splits with every regex in turn (Isolated: matches and the gaps between them are pieces). */
int ct_pretok_split(const ct_pretok *p, ct_pretok_scratch *s, const char *text, size_t len,
                    ct_piece_fn fn, void *ctx);

/* ---- the BPE model (tok_bpe.c) ---- */

typedef struct {
    ct_strmap vocab;   /* byte-level token text -> id */
    ct_u64map merges;  /* (left << 32 | right) -> (rank << 32 | merged id) */
    int32_t byte_ids[256]; /* the id of each single byte, -1 if the vocabulary lacks it */
    bool ignore_merges;
} ct_bpe_model;

/* Scratch for one word: symbol links and the pair heap. */
typedef struct {
    int32_t *id, *prev, *next, *len;
    uint64_t *heap;
    size_t cap, heap_cap;
    ct_strbuf text;
} ct_bpe_scratch;

/* Appends the ids of one pre-token (raw bytes) to `out`; with `ends`, also the end offset of
 * each token, counted from `offset`. */
int ct_bpe_encode_word(const ct_bpe_model *m, ct_bpe_scratch *s, const uint8_t *bytes, size_t len,
                       ct_token_list *out, ct_token_list *ends, size_t offset);
void ct_bpe_scratch_free(ct_bpe_scratch *s);
void ct_bpe_model_free(ct_bpe_model *m);

/* ---- the tokenizer ---- */

typedef struct {
    char *content;
    size_t len;
    char *pattern; /* what is matched: the content, normalized when `normalized` is set */
    size_t pattern_len;
    int32_t id;
    bool special, lstrip, rstrip, single_word, normalized;
} ct_added_token;

/* Added tokens of one kind (raw or normalized) grouped by first byte, longest first, so the
 * first that matches at a position is the leftmost-longest match. */
typedef struct {
    int32_t *order;     /* indices into ct_tokenizer.added */
    int32_t start[257]; /* order[start[b] .. start[b+1]) begin with byte b */
    int32_t count;
} ct_added_matcher;

struct ct_tokenizer {
    char *path;
    ct_bpe_model bpe;
    ct_pretok pretok; /* the decoder is always ByteLevel: others are refused */
    const char *split_regex; /* the last regex Split step's pattern (in strings), or NULL */
    int n_splits;            /* Split steps, regex or literal */

    ct_added_token *added;
    int32_t n_added;
    ct_added_matcher raw_matcher, normalized_matcher;

    const char **id_text; /* id -> tokenizer.json text (vocabulary or added content) */
    uint8_t *id_flags;    /* CT_ID_* */
    int32_t n_ids;        /* capacity of the two tables */
    int32_t size;         /* one past the largest id */
    ct_strmap added_by_content;

    int32_t *prefix_ids, *suffix_ids; /* TemplateProcessing "single", around the text */
    int32_t n_prefix, n_suffix;

    ct_tok_arena strings;
};

enum { CT_ID_ADDED = 1, CT_ID_SPECIAL = 2 };

/* Encode with each token's end offset in `text` (inside a region the normalizer changed, the
 * offset is counted in the normalized text and clamped to the region). */
int ct_tok_encode_ends(const ct_tokenizer *tok, const char *text, size_t len, int flags,
                       ct_token_list *out, ct_token_list *ends);

/* tok_load.c: parses tokenizer.json into `tok` (path already set). */
int ct_tok_load_json(ct_tokenizer *tok, const char *json, size_t len);
/* Builds the two added-token matchers once the added tokens are known. */
int ct_tok_build_matchers(ct_tokenizer *tok);

/* ---- the trainer (tok_train.c learns, tok_train_save.c writes) ---- */

typedef struct {
    const char *bytes; /* raw bytes, in the trainer's arena */
    uint32_t len;
} ct_train_token;

struct ct_bpe_trainer {
    ct_pretok pretok;
    ct_pretok_scratch scratch;
    ct_strmap word_index; /* word bytes -> index into words */
    struct ct_train_word *words;
    int64_t n_distinct, words_cap, n_words, corpus_bytes;
    ct_tok_arena strings;

    ct_train_token *tokens; /* by id: 256 bytes (ordered by their byte-level character), then merges */
    int32_t n_tokens, tokens_cap;
    int32_t (*merges)[2];
    int32_t n_merges;
    bool trained;
};

/* The three ChatML special tokens the trainer adds after the learned vocabulary. */
extern const char *const ct_train_special_tokens[3];

#endif
