/* Reading tokenizer.json: the BPE model, the normalizer, the pre-tokenizer steps, the decoder,
 * the post-processor and the added tokens. Anything ctune would encode differently from the
 * Hugging Face library is refused by name rather than approximated. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "core/error.h"
#include "datasets/tok_internal.h"

#define SUPPORTED "ctune supports byte-level BPE: Qwen2/2.5/3, LLaMA 3"

/* GPT-2's regex, used by a ByteLevel pre-tokenizer with use_regex. */
static const char gpt2_split_regex[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

static const char *type_of(const cJSON *component) {
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(component, "type");
    return cJSON_IsString(type) ? type->valuestring : "(no type)";
}

static bool flag(const cJSON *object, const char *key) {
    return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(object, key));
}

static const char *string_field(const cJSON *object, const char *key) {
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(object, key);
    return cJSON_IsString(item) ? item->valuestring : NULL;
}

/* Older files leave out the model type; the library then tells models apart by their fields. */
static const char *model_type(const cJSON *model) {
    const char *type = string_field(model, "type");
    if (type) return type;
    if (cJSON_GetObjectItemCaseSensitive(model, "merges")) return "BPE";
    if (cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(model, "vocab"))) return "Unigram";
    if (cJSON_GetObjectItemCaseSensitive(model, "max_input_chars_per_word")) return "WordPiece";
    return "WordLevel";
}

static int check_bpe_options(const char *file, const cJSON *model) {
    if (flag(model, "byte_fallback"))
        return ct_fail("%s: BPE with byte_fallback (SentencePiece-style, as LLaMA 2 and Mistral use) "
                       "is not supported (" SUPPORTED ")", file);
    const cJSON *dropout = cJSON_GetObjectItemCaseSensitive(model, "dropout");
    if (cJSON_IsNumber(dropout) && dropout->valuedouble != 0.0)
        return ct_fail("%s: BPE dropout %g is not supported: encoding would not be deterministic",
                       file, dropout->valuedouble);
    const char *affixes[] = {"continuing_subword_prefix", "end_of_word_suffix"};
    for (int i = 0; i < 2; i++) {
        const char *value = string_field(model, affixes[i]);
        if (value && *value)
            return ct_fail("%s: BPE %s '%s' is not supported (" SUPPORTED ")", file, affixes[i], value);
    }
    return 0;
}

/* The largest token id a tokenizer may use: about 64 times the largest real vocabulary (Gemma's
 * 262,144). The id table is as long as the largest id, so a file naming id 2^30 once asked for
 * 10 GB (found by fuzzing), and doubling the table's length past 2^30 overflowed. */
#define MAX_TOKEN_ID (1 << 24)

static int set_id_text(ct_tokenizer *tok, int32_t id, const char *text, uint8_t flags) {
    if (id > MAX_TOKEN_ID)
        return ct_fail("%s: token id %d of '%s' is past ctune's limit of %d; a tokenizer's ids count its tokens from 0",
                       tok->path, id, text, MAX_TOKEN_ID);
    if (id >= tok->n_ids) {
        int32_t n = tok->n_ids ? tok->n_ids : 1024;
        while (n <= id) n *= 2;
        const char **texts = realloc(tok->id_text, (size_t)n * sizeof *texts);
        if (texts) tok->id_text = texts;
        uint8_t *flag_bytes = realloc(tok->id_flags, (size_t)n);
        if (flag_bytes) tok->id_flags = flag_bytes;
        if (!texts || !flag_bytes) return ct_fail("out of memory: token table of %d entries", n);
        for (int32_t i = tok->n_ids; i < n; i++) tok->id_text[i] = NULL, tok->id_flags[i] = 0;
        tok->n_ids = n;
    }
    if (!(tok->id_flags[id] & CT_ID_ADDED)) tok->id_text[id] = text;
    tok->id_flags[id] |= flags;
    return 0;
}

static int load_vocab(ct_tokenizer *tok, const cJSON *vocab) {
    if (!cJSON_IsObject(vocab)) return ct_fail("%s: model.vocab is not an object", tok->path);
    CT_TRY(ct_strmap_init(&tok->bpe.vocab, (size_t)cJSON_GetArraySize(vocab)));
    for (const cJSON *entry = vocab->child; entry; entry = entry->next) {
        double id = cJSON_IsNumber(entry) ? entry->valuedouble : -1;
        if (id < 0 || id > INT32_MAX - 1 || id != (int32_t)id)
            return ct_fail("%s: model.vocab['%s'] is not a valid id", tok->path, entry->string);
        size_t len = strlen(entry->string);
        char *text = ct_tok_arena_copy(&tok->strings, entry->string, len);
        bool created;
        int32_t *slot = text ? ct_strmap_upsert(&tok->bpe.vocab, text, len, &created) : NULL;
        if (!slot) return -1;
        *slot = (int32_t)id;
        CT_TRY(set_id_text(tok, (int32_t)id, text, 0));
    }
    return 0;
}

static int32_t vocab_id(const ct_tokenizer *tok, const char *text, size_t len) {
    return ct_strmap_get(&tok->bpe.vocab, text, len);
}

/* A merge is "left right" (older files) or ["left", "right"]. */
static int merge_parts(const cJSON *merge, const char **left, size_t *left_len, const char **right) {
    if (cJSON_IsString(merge)) {
        const char *space = strchr(merge->valuestring, ' ');
        if (!space || strchr(space + 1, ' ')) return -1;
        *left = merge->valuestring;
        *left_len = (size_t)(space - merge->valuestring);
        *right = space + 1;
        return 0;
    }
    if (cJSON_GetArraySize(merge) != 2) return -1;
    const cJSON *a = cJSON_GetArrayItem(merge, 0), *b = cJSON_GetArrayItem(merge, 1);
    if (!cJSON_IsString(a) || !cJSON_IsString(b)) return -1;
    *left = a->valuestring;
    *left_len = strlen(a->valuestring);
    *right = b->valuestring;
    return 0;
}

static int load_merges(ct_tokenizer *tok, const cJSON *merges) {
    if (!cJSON_IsArray(merges)) return ct_fail("%s: model.merges is not an array", tok->path);
    CT_TRY(ct_u64map_init(&tok->bpe.merges, (size_t)cJSON_GetArraySize(merges)));
    ct_strbuf joined = {0};
    uint32_t rank = 0;
    int rc = 0;
    for (const cJSON *merge = merges->child; merge && rc == 0; merge = merge->next, rank++) {
        const char *left, *right;
        size_t left_len;
        if (merge_parts(merge, &left, &left_len, &right) < 0) {
            rc = ct_fail("%s: model.merges[%u] is not a pair of tokens", tok->path, rank);
            break;
        }
        size_t right_len = strlen(right);
        joined.len = 0;
        if ((rc = ct_strbuf_append(&joined, left, left_len)) < 0 ||
            (rc = ct_strbuf_append(&joined, right, right_len)) < 0)
            break;
        int32_t a = vocab_id(tok, left, left_len), b = vocab_id(tok, right, right_len);
        int32_t merged = vocab_id(tok, joined.data, joined.len);
        if (a < 0 || b < 0 || merged < 0) {
            rc = ct_fail("%s: model.merges[%u] ('%.*s' + '%s') names a token missing from the "
                         "vocabulary", tok->path, rank, (int)left_len, left, right);
            break;
        }
        /* A repeated pair keeps its last rank, as the library's map does. */
        uint64_t *slot = ct_u64map_upsert(&tok->bpe.merges, (uint64_t)(uint32_t)a << 32 | (uint32_t)b);
        if (!slot) rc = -1;
        else *slot = (uint64_t)rank << 32 | (uint32_t)merged;
    }
    ct_strbuf_free(&joined);
    return rc;
}

static int load_model(ct_tokenizer *tok, const cJSON *model) {
    if (!cJSON_IsObject(model)) return ct_fail("%s: no \"model\" object", tok->path);
    const char *type = model_type(model);
    if (strcmp(type, "BPE") != 0)
        return ct_fail("%s: model type '%s' is not supported (" SUPPORTED ")", tok->path, type);
    CT_TRY(check_bpe_options(tok->path, model));
    CT_TRY(load_vocab(tok, cJSON_GetObjectItemCaseSensitive(model, "vocab")));
    CT_TRY(load_merges(tok, cJSON_GetObjectItemCaseSensitive(model, "merges")));
    tok->bpe.ignore_merges = flag(model, "ignore_merges");
    for (int b = 0; b < 256; b++) {
        char text[4];
        size_t n = ct_utf8_encode(ct_byte_to_char((uint8_t)b), text);
        tok->bpe.byte_ids[b] = vocab_id(tok, text, n);
    }
    return 0;
}

static int normalizer_options(const char *file, const cJSON *normalizer, int *options) {
    if (!normalizer || cJSON_IsNull(normalizer)) return 0;
    const char *type = type_of(normalizer);
    if (!strcmp(type, "Sequence")) {
        const cJSON *steps = cJSON_GetObjectItemCaseSensitive(normalizer, "normalizers");
        for (const cJSON *step = steps ? steps->child : NULL; step; step = step->next)
            CT_TRY(normalizer_options(file, step, options));
        return 0;
    }
    static const struct { const char *name; int options; } forms[] = {
        {"NFC", UTF8PROC_STABLE | UTF8PROC_COMPOSE},
        {"NFD", UTF8PROC_STABLE | UTF8PROC_DECOMPOSE},
        {"NFKC", UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT},
        {"NFKD", UTF8PROC_STABLE | UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT},
    };
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        if (strcmp(type, forms[i].name) != 0) continue;
        if (*options && *options != forms[i].options)
            return ct_fail("%s: a normalizer Sequence of two Unicode forms is not supported", file);
        *options = forms[i].options;
        return 0;
    }
    return ct_fail("%s: normalizer '%s' is not supported (ctune supports NFC, NFD, NFKC, NFKD; "
                   SUPPORTED ")", file, type);
}

/* The split regexes, kept as text so an export can name the pre-tokenizer (GGUF's pre type). */
static int remember_split(ct_tokenizer *tok, const char *regex) {
    tok->n_splits++;
    if (!regex) return 0; /* a literal split: no pre type matches it */
    tok->split_regex = ct_tok_arena_copy(&tok->strings, regex, strlen(regex));
    return tok->split_regex ? 0 : ct_fail("out of memory reading %s", tok->path);
}

static int add_split_step(ct_tokenizer *tok, const cJSON *step) {
    const char *behavior = string_field(step, "behavior");
    if (!behavior || strcmp(behavior, "Isolated") != 0 || flag(step, "invert"))
        return ct_fail("%s: Split pre-tokenizer with behavior '%s'%s is not supported (ctune "
                       "supports Isolated, as Qwen2/2.5/3 and LLaMA 3 use)", tok->path,
                       behavior ? behavior : "?", flag(step, "invert") ? " and invert" : "");
    const cJSON *pattern = cJSON_GetObjectItemCaseSensitive(step, "pattern");
    const char *regex = string_field(pattern, "Regex"), *literal = string_field(pattern, "String");
    if (!regex && !literal) return ct_fail("%s: Split pre-tokenizer without a pattern", tok->path);
    CT_TRY(remember_split(tok, regex));
    return ct_pretok_add_split(&tok->pretok, regex ? regex : literal, !regex, tok->path);
}

/* Pre-tokenizer steps in order; ByteLevel must come last (it maps bytes to its alphabet, which
 * BPE then works on). */
static int add_pretokenizer(ct_tokenizer *tok, const cJSON *step, bool *byte_level) {
    const char *type = type_of(step);
    if (*byte_level)
        return ct_fail("%s: pre-tokenizer '%s' after ByteLevel is not supported", tok->path, type);
    if (!strcmp(type, "Sequence")) {
        const cJSON *steps = cJSON_GetObjectItemCaseSensitive(step, "pretokenizers");
        for (const cJSON *s = steps ? steps->child : NULL; s; s = s->next)
            CT_TRY(add_pretokenizer(tok, s, byte_level));
        return 0;
    }
    if (!strcmp(type, "Split")) return add_split_step(tok, step);
    if (!strcmp(type, "ByteLevel")) {
        if (flag(step, "add_prefix_space"))
            return ct_fail("%s: ByteLevel add_prefix_space is not supported (" SUPPORTED ")",
                           tok->path);
        *byte_level = true;
        const cJSON *use_regex = cJSON_GetObjectItemCaseSensitive(step, "use_regex");
        if (!use_regex || cJSON_IsTrue(use_regex)) {
            CT_TRY(remember_split(tok, gpt2_split_regex));
            return ct_pretok_add_split(&tok->pretok, gpt2_split_regex, false, tok->path);
        }
        return 0;
    }
    return ct_fail("%s: pre-tokenizer '%s' is not supported (" SUPPORTED ")", tok->path, type);
}

static int check_decoder(const ct_tokenizer *tok, const cJSON *decoder) {
    const char *type = decoder && !cJSON_IsNull(decoder) ? type_of(decoder) : "(none)";
    if (!strcmp(type, "Sequence")) {
        const cJSON *steps = cJSON_GetObjectItemCaseSensitive(decoder, "decoders");
        for (const cJSON *s = steps ? steps->child : NULL; s; s = s->next)
            CT_TRY(check_decoder(tok, s));
        return 0;
    }
    if (strcmp(type, "ByteLevel") != 0)
        return ct_fail("%s: decoder '%s' is not supported (" SUPPORTED ")", tok->path, type);
    return 0;
}

static int append_ids(int32_t **ids, int32_t *n, const cJSON *list) {
    for (const cJSON *id = list ? list->child : NULL; id; id = id->next) {
        int32_t *grown = realloc(*ids, (size_t)(*n + 1) * sizeof **ids);
        if (!grown) return ct_fail("out of memory reading the post-processor");
        *ids = grown;
        (*ids)[(*n)++] = (int32_t)id->valueint;
    }
    return 0;
}

/* TemplateProcessing's "single" template: special tokens around the sequence "A". */
static int load_template(ct_tokenizer *tok, const cJSON *processor) {
    const cJSON *single = cJSON_GetObjectItemCaseSensitive(processor, "single");
    const cJSON *specials = cJSON_GetObjectItemCaseSensitive(processor, "special_tokens");
    bool after = false;
    for (const cJSON *piece = single ? single->child : NULL; piece; piece = piece->next) {
        if (cJSON_GetObjectItemCaseSensitive(piece, "Sequence")) {
            after = true;
            continue;
        }
        const char *name = string_field(cJSON_GetObjectItemCaseSensitive(piece, "SpecialToken"), "id");
        const cJSON *entry = name ? cJSON_GetObjectItemCaseSensitive(specials, name) : NULL;
        if (!entry) return ct_fail("%s: post_processor names an unknown special token", tok->path);
        const cJSON *ids = cJSON_GetObjectItemCaseSensitive(entry, "ids");
        CT_TRY(after ? append_ids(&tok->suffix_ids, &tok->n_suffix, ids)
                     : append_ids(&tok->prefix_ids, &tok->n_prefix, ids));
    }
    return 0;
}

static int load_post_processor(ct_tokenizer *tok, const cJSON *processor) {
    if (!processor || cJSON_IsNull(processor)) return 0;
    const char *type = type_of(processor);
    if (!strcmp(type, "Sequence")) {
        const cJSON *steps = cJSON_GetObjectItemCaseSensitive(processor, "processors");
        for (const cJSON *s = steps ? steps->child : NULL; s; s = s->next)
            CT_TRY(load_post_processor(tok, s));
        return 0;
    }
    if (!strcmp(type, "ByteLevel")) return 0; /* it only adjusts offsets */
    if (!strcmp(type, "TemplateProcessing")) return load_template(tok, processor);
    return ct_fail("%s: post_processor '%s' is not supported (" SUPPORTED ")", tok->path, type);
}

/* The library does not take an added token's id from the file: it reuses the vocabulary's id
 * for the same text, or gives the next id after the vocabulary (its entry count). A file whose
 * ids disagree would encode differently there, so it is refused. */
static int check_added_id(const ct_tokenizer *tok, const ct_added_token *t, int32_t *n_new) {
    int32_t expected = ct_strmap_get(&tok->added_by_content, t->content, t->len);
    if (expected < 0) expected = vocab_id(tok, t->content, t->len);
    if (expected < 0) expected = (int32_t)tok->bpe.vocab.count + (*n_new)++;
    if (t->id != expected)
        return ct_fail("%s: added token '%s' has id %d, but the Hugging Face library gives it %d "
                       "(added tokens follow the %zu vocabulary entries in order); the file is "
                       "inconsistent", tok->path, t->content, t->id, expected, tok->bpe.vocab.count);
    return 0;
}

static int load_added_token(ct_tokenizer *tok, const cJSON *item, ct_added_token *t,
                            int32_t *n_new) {
    const char *content = string_field(item, "content");
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(item, "id");
    if (!content || !*content || !cJSON_IsNumber(id) || id->valuedouble < 0 ||
        id->valuedouble > INT32_MAX - 1)
        return ct_fail("%s: an added_tokens entry lacks a content or a valid id", tok->path);
    t->len = strlen(content);
    t->content = ct_tok_arena_copy(&tok->strings, content, t->len);
    if (!t->content) return -1;
    t->id = (int32_t)id->valuedouble;
    CT_TRY(check_added_id(tok, t, n_new));
    t->special = flag(item, "special");
    t->lstrip = flag(item, "lstrip");
    t->rstrip = flag(item, "rstrip");
    t->single_word = flag(item, "single_word");
    t->normalized = flag(item, "normalized");
    t->pattern = t->content;
    t->pattern_len = t->len;
    if (t->normalized) {
        char *normal;
        size_t normal_len;
        CT_TRY(ct_pretok_normalize(&tok->pretok, t->content, t->len, &normal, &normal_len));
        if (normal != t->content) {
            t->pattern = ct_tok_arena_copy(&tok->strings, normal, normal_len);
            t->pattern_len = normal_len;
            free(normal);
            if (!t->pattern) return -1;
        }
    }
    bool created;
    int32_t *slot = ct_strmap_upsert(&tok->added_by_content, t->content, t->len, &created);
    if (!slot) return -1;
    *slot = t->id;
    return set_id_text(tok, t->id, t->content,
                       (uint8_t)(CT_ID_ADDED | (t->special ? CT_ID_SPECIAL : 0)));
}

static int load_added_tokens(ct_tokenizer *tok, const cJSON *list) {
    int n = cJSON_IsArray(list) ? cJSON_GetArraySize(list) : 0;
    tok->added = ct_calloc((size_t)n, sizeof *tok->added, "added tokens");
    if (!tok->added) return -1;
    int32_t n_new = 0;
    for (const cJSON *item = n ? list->child : NULL; item; item = item->next)
        CT_TRY(load_added_token(tok, item, &tok->added[tok->n_added++], &n_new));
    return ct_tok_build_matchers(tok);
}

static int load_components(ct_tokenizer *tok, const cJSON *root) {
    CT_TRY(load_model(tok, cJSON_GetObjectItemCaseSensitive(root, "model")));
    CT_TRY(normalizer_options(tok->path, cJSON_GetObjectItemCaseSensitive(root, "normalizer"),
                              &tok->pretok.utf8proc_options));
    const cJSON *pre = cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer");
    bool byte_level = false;
    if (pre && !cJSON_IsNull(pre)) CT_TRY(add_pretokenizer(tok, pre, &byte_level));
    if (!byte_level)
        return ct_fail("%s: the pre-tokenizer has no ByteLevel step, so this is not a byte-level "
                       "BPE tokenizer (" SUPPORTED ")", tok->path);
    CT_TRY(check_decoder(tok, cJSON_GetObjectItemCaseSensitive(root, "decoder")));
    CT_TRY(load_post_processor(tok, cJSON_GetObjectItemCaseSensitive(root, "post_processor")));
    return load_added_tokens(tok, cJSON_GetObjectItemCaseSensitive(root, "added_tokens"));
}

int ct_tok_load_json(ct_tokenizer *tok, const char *json, size_t len) {
    cJSON *root = cJSON_ParseWithLength(json, len);
    if (!root) {
        const char *at = cJSON_GetErrorPtr();
        long offset = at && at >= json && at <= json + len ? (long)(at - json) : -1;
        return ct_fail("%s: malformed JSON (near byte %ld); is this a tokenizer.json?", tok->path,
                       offset);
    }
    int rc = cJSON_IsObject(root) ? load_components(tok, root)
                                  : ct_fail("%s: not a JSON object", tok->path);
    cJSON_Delete(root);
    return rc;
}
