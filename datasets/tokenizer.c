/* Encoding and decoding with a loaded tokenizer.json, in the Hugging Face library's order:
 *   1. added tokens with normalized=false are cut out of the raw text;
 *   2. each remaining piece is normalized (NFC), then added tokens with normalized=true are cut
 *      out of it;
 *   3. each remaining piece is split by the pre-tokenizer regexes;
 *   4. each pre-token goes through byte-level BPE.
 * Added-token matching is leftmost-longest and honours lstrip, rstrip and single_word; a
 * special token found while special matching is off is passed over as text, like the
 * library's encode_special_tokens. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/error.h"
#include "datasets/tok_internal.h"

int ct_token_list_push(ct_token_list *list, int32_t id) {
    if (list->len == list->cap) {
        size_t cap = list->cap ? 2 * list->cap : 256;
        int32_t *ids = realloc(list->ids, cap * sizeof *ids);
        if (!ids) return ct_fail("out of memory: token list of %zu ids", cap);
        list->ids = ids;
        list->cap = cap;
    }
    list->ids[list->len++] = id;
    return 0;
}

void ct_token_list_free(ct_token_list *list) {
    free(list->ids);
    *list = (ct_token_list){0};
}

/* ---- added-token matching ---- */

static int build_matcher(ct_tokenizer *tok, ct_added_matcher *m, bool normalized) {
    m->order = ct_malloc((size_t)tok->n_added * sizeof *m->order, "added-token matcher");
    if (!m->order) return -1;
    int32_t count[257] = {0};
    for (int32_t i = 0; i < tok->n_added; i++)
        if (tok->added[i].normalized == normalized) count[(uint8_t)tok->added[i].pattern[0] + 1]++;
    for (int b = 0; b < 256; b++) count[b + 1] += count[b];
    memcpy(m->start, count, sizeof m->start);
    for (int32_t i = 0; i < tok->n_added; i++) {
        if (tok->added[i].normalized != normalized) continue;
        uint8_t b = (uint8_t)tok->added[i].pattern[0];
        /* Insertion keeps each first-byte group sorted longest first. */
        int32_t j = count[b]++;
        while (j > m->start[b] && tok->added[m->order[j - 1]].pattern_len < tok->added[i].pattern_len) {
            m->order[j] = m->order[j - 1];
            j--;
        }
        m->order[j] = i;
    }
    m->count = m->start[256];
    return 0;
}

int ct_tok_build_matchers(ct_tokenizer *tok) {
    CT_TRY(build_matcher(tok, &tok->raw_matcher, false));
    return build_matcher(tok, &tok->normalized_matcher, true);
}

/* The added token that matches longest at `pos`, or -1. */
static int32_t match_at(const ct_tokenizer *tok, const ct_added_matcher *m, const char *s,
                        size_t len, size_t pos) {
    uint8_t b = (uint8_t)s[pos];
    for (int32_t k = m->start[b]; k < m->start[b + 1]; k++) {
        const ct_added_token *t = &tok->added[m->order[k]];
        if (t->pattern_len <= len - pos && !memcmp(s + pos, t->pattern, t->pattern_len))
            return m->order[k];
    }
    return -1;
}

static int64_t char_at(const char *s, size_t len, size_t pos, size_t *next) {
    uint32_t cp;
    int n = ct_utf8_decode((const uint8_t *)s + pos, len - pos, &cp);
    *next = pos + (n ? (size_t)n : 1);
    return n ? (int64_t)cp : -1;
}

static bool single_word_ok(const char *s, size_t len, size_t start, size_t stop) {
    size_t unused;
    if (start > 0) {
        int64_t cp = ct_utf8_decode_before(s, start, &unused);
        if (cp >= 0 && ct_unicode_is_word((uint32_t)cp)) return false;
    }
    if (stop < len) {
        int64_t cp = char_at(s, len, stop, &unused);
        if (cp >= 0 && ct_unicode_is_word((uint32_t)cp)) return false;
    }
    return true;
}

static size_t strip_left(const char *s, size_t start, size_t floor) {
    while (start > floor) {
        size_t before;
        int64_t cp = ct_utf8_decode_before(s, start, &before);
        if (cp < 0 || !ct_unicode_is_space((uint32_t)cp)) break;
        start = before;
    }
    return start < floor ? floor : start;
}

static size_t strip_right(const char *s, size_t len, size_t stop) {
    while (stop < len) {
        size_t next;
        int64_t cp = char_at(s, len, stop, &next);
        if (cp < 0 || !ct_unicode_is_space((uint32_t)cp)) break;
        stop = next;
    }
    return stop;
}

/* ---- the encoder ---- */

typedef struct {
    const ct_tokenizer *tok;
    int flags;
    ct_token_list *out, *ends;
    ct_pretok_scratch pre;
    ct_bpe_scratch bpe;
    size_t base; /* where the text being pre-tokenized starts in the caller's text */
} encoder;

typedef int (*gap_fn)(encoder *e, const char *text, size_t len, size_t offset);

static int push_token(encoder *e, int32_t id, size_t end) {
    CT_TRY(ct_token_list_push(e->out, id));
    return e->ends ? ct_token_list_push(e->ends, (int32_t)end) : 0;
}

/* Cuts the added tokens of matcher `m` out of `text`: gaps go to `gap`, tokens to the output. */
static int split_added(encoder *e, const ct_added_matcher *m, const char *text, size_t len,
                       size_t offset, gap_fn gap) {
    const ct_tokenizer *tok = e->tok;
    size_t done = 0, pos = 0;
    while (m->count > 0 && pos < len) {
        int32_t k = match_at(tok, m, text, len, pos);
        if (k < 0) {
            pos++;
            continue;
        }
        const ct_added_token *t = &tok->added[k];
        size_t start = pos, stop = pos + t->pattern_len;
        pos = stop; /* matches never overlap, even those passed over */
        if ((t->special && !(e->flags & CT_TOK_MATCH_SPECIAL)) ||
            (t->single_word && !single_word_ok(text, len, start, stop)))
            continue;
        if (t->lstrip) start = strip_left(text, start, done);
        if (t->rstrip) stop = pos = strip_right(text, len, stop);
        if (start > done) CT_TRY(gap(e, text + done, start - done, offset + done));
        CT_TRY(push_token(e, t->id, offset + stop));
        done = stop;
    }
    return done < len ? gap(e, text + done, len - done, offset + done) : 0;
}

static int encode_pretoken(void *ctx, const char *text, size_t len, size_t offset) {
    encoder *e = ctx;
    return ct_bpe_encode_word(&e->tok->bpe, &e->bpe, (const uint8_t *)text, len, e->out, e->ends,
                              e->base + offset);
}

static int pretokenize(encoder *e, const char *text, size_t len, size_t offset) {
    e->base = offset;
    return ct_pretok_split(&e->tok->pretok, &e->pre, text, len, encode_pretoken, e);
}

/* A piece between raw added tokens: normalize it, then cut out the normalized added tokens. */
static int encode_piece(encoder *e, const char *text, size_t len, size_t offset) {
    char *normal;
    size_t normal_len;
    CT_TRY(ct_pretok_normalize(&e->tok->pretok, text, len, &normal, &normal_len));
    size_t first = e->out->len;
    int rc = split_added(e, &e->tok->normalized_matcher, normal, normal_len, offset, pretokenize);
    if (normal != text) {
        free(normal);
        for (size_t i = first; e->ends && i < e->ends->len; i++)
            if ((size_t)e->ends->ids[i] > offset + len) e->ends->ids[i] = (int32_t)(offset + len);
    }
    return rc;
}

static int push_all(encoder *e, const int32_t *ids, int32_t n, size_t end) {
    for (int32_t i = 0; i < n; i++) CT_TRY(push_token(e, ids[i], end));
    return 0;
}

int ct_tok_encode_ends(const ct_tokenizer *tok, const char *text, size_t len, int flags,
                       ct_token_list *out, ct_token_list *ends) {
    if (len > INT32_MAX) return ct_fail("tokenizer: a text of %zu bytes is too long (2 GiB max)", len);
    encoder e = {.tok = tok, .flags = flags, .out = out, .ends = ends};
    int rc = 0;
    if (flags & CT_TOK_ADD_SPECIAL) rc = push_all(&e, tok->prefix_ids, tok->n_prefix, 0);
    if (rc == 0) rc = split_added(&e, &tok->raw_matcher, text, len, 0, encode_piece);
    if (rc == 0 && (flags & CT_TOK_ADD_SPECIAL))
        rc = push_all(&e, tok->suffix_ids, tok->n_suffix, len);
    ct_pretok_scratch_free(&e.pre);
    ct_bpe_scratch_free(&e.bpe);
    return rc;
}

int ct_tokenizer_encode(const ct_tokenizer *tok, const char *text, size_t len, int flags,
                        ct_token_list *out) {
    return ct_tok_encode_ends(tok, text, len, flags, out, NULL);
}

/* ---- decoding ---- */

/* The ByteLevel decoder maps each character of a token back to its byte; a token with any
 * character outside the byte alphabet (an added token such as "<|im_end|>" maps, one with a
 * plain space would not) is copied as it is written. */
static int decode_token(ct_strbuf *out, const char *text) {
    size_t len = strlen(text), mark = out->len, i = 0;
    CT_TRY(ct_strbuf_reserve(out, len));
    while (i < len) {
        uint32_t cp;
        int n = ct_utf8_decode((const uint8_t *)text + i, len - i, &cp);
        int byte = n ? ct_char_to_byte(cp) : -1;
        if (byte < 0) break;
        out->data[out->len++] = (char)byte;
        i += (size_t)n;
    }
    if (i == len) {
        out->data[out->len] = '\0';
        return 0;
    }
    out->len = mark;
    return ct_strbuf_append(out, text, len);
}

/* Each maximal invalid subsequence (the longest start of a valid character, or one byte)
 * becomes one U+FFFD, as Rust's from_utf8_lossy does. */
static size_t invalid_prefix(const uint8_t *s, size_t len) {
    uint8_t b0 = s[0], low = 0x80, high = 0xBF;
    size_t need;
    if (b0 >= 0xC2 && b0 <= 0xDF) need = 1;
    else if (b0 >= 0xE0 && b0 <= 0xEF) need = 2;
    else if (b0 >= 0xF0 && b0 <= 0xF4) need = 3;
    else return 1;
    if (b0 == 0xE0) low = 0xA0;
    else if (b0 == 0xED) high = 0x9F;
    else if (b0 == 0xF0) low = 0x90;
    else if (b0 == 0xF4) high = 0x8F;
    size_t n = 1;
    while (n <= need && n < len && s[n] >= (n == 1 ? low : 0x80) && s[n] <= (n == 1 ? high : 0xBF)) n++;
    return n;
}

static int make_lossy(ct_strbuf *b) {
    ct_strbuf out = {0};
    int rc = ct_strbuf_append(&out, "", 0);
    for (size_t i = 0; i < b->len && rc == 0;) {
        uint32_t cp;
        int n = ct_utf8_decode((const uint8_t *)b->data + i, b->len - i, &cp);
        if (n > 0) {
            rc = ct_strbuf_append(&out, b->data + i, (size_t)n);
            i += (size_t)n;
        } else {
            rc = ct_strbuf_append(&out, "\xEF\xBF\xBD", 3);
            i += invalid_prefix((const uint8_t *)b->data + i, b->len - i);
        }
    }
    ct_strbuf_free(b);
    *b = out;
    return rc;
}

char *ct_tokenizer_decode(const ct_tokenizer *tok, const int32_t *ids, size_t n, int flags,
                          size_t *out_len) {
    ct_strbuf out = {0};
    int rc = ct_strbuf_append(&out, "", 0);
    for (size_t i = 0; i < n && rc == 0; i++) {
        const char *text = ct_tokenizer_token_text(tok, ids[i]);
        if (!text) {
            rc = ct_fail("%s: cannot decode id %d (vocabulary size %d)", tok->path, ids[i], tok->size);
            break;
        }
        if ((flags & CT_DECODE_SKIP_SPECIAL) && (tok->id_flags[ids[i]] & CT_ID_SPECIAL)) continue;
        rc = decode_token(&out, text);
    }
    if (rc == 0 && (flags & CT_DECODE_LOSSY)) rc = make_lossy(&out);
    if (rc < 0) {
        ct_strbuf_free(&out);
        return NULL;
    }
    if (out_len) *out_len = out.len;
    return out.data;
}

/* ---- loading and lookups ---- */

static char *tokenizer_file(const char *path) {
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        size_t n = strlen(path) + sizeof "/tokenizer.json";
        char *file = ct_malloc(n, "a path");
        if (file) snprintf(file, n, "%s/tokenizer.json", path);
        return file;
    }
    return ct_strdup(path);
}

static ct_tokenizer *tokenizer_from_json(char *path, const char *json, size_t len) {
    ct_tokenizer *tok = ct_calloc(1, sizeof *tok, "a tokenizer");
    if (!tok) {
        free(path);
        return NULL;
    }
    tok->path = path;
    if (!path || !json || ct_tok_load_json(tok, json, len) < 0) {
        ct_tokenizer_free(tok);
        return NULL;
    }
    for (int32_t id = tok->n_ids - 1; id >= 0 && !tok->size; id--)
        if (tok->id_text[id]) tok->size = id + 1;
    return tok;
}

ct_tokenizer *ct_tokenizer_load(const char *path) {
    char *file = tokenizer_file(path);
    size_t len = 0;
    char *json = file ? ct_tok_read_file(file, &len) : NULL;
    ct_tokenizer *tok = json ? tokenizer_from_json(file, json, len) : NULL;
    if (!json) free(file);
    free(json);
    return tok;
}

ct_tokenizer *ct_tokenizer_load_text(const char *json, size_t len, const char *source) {
    return tokenizer_from_json(ct_strdup(source), json, len);
}

void ct_tokenizer_free(ct_tokenizer *tok) {
    if (!tok) return;
    free(tok->path);
    ct_bpe_model_free(&tok->bpe);
    ct_pretok_free(&tok->pretok);
    free(tok->added);
    free(tok->raw_matcher.order);
    free(tok->normalized_matcher.order);
    free(tok->id_text);
    free(tok->id_flags);
    ct_strmap_free(&tok->added_by_content);
    free(tok->prefix_ids);
    free(tok->suffix_ids);
    ct_tok_arena_free(&tok->strings);
    free(tok);
}

int32_t ct_tokenizer_vocab_size(const ct_tokenizer *tok) { return tok->size; }

int32_t ct_tokenizer_token_id(const ct_tokenizer *tok, const char *token) {
    size_t len = strlen(token);
    int32_t id = ct_strmap_get(&tok->added_by_content, token, len);
    return id >= 0 ? id : ct_strmap_get(&tok->bpe.vocab, token, len);
}

const char *ct_tokenizer_token_text(const ct_tokenizer *tok, int32_t id) {
    return id >= 0 && id < tok->size ? tok->id_text[id] : NULL;
}

int ct_tokenizer_is_special(const ct_tokenizer *tok, int32_t id) {
    return id >= 0 && id < tok->size && (tok->id_flags[id] & CT_ID_SPECIAL) != 0;
}

const char *ct_tokenizer_path(const ct_tokenizer *tok) { return tok->path; }
