/* The tokenizer in GGUF metadata (datasets/tokenizer_gguf.h). */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "core/error.h"
#include "datasets/tok_internal.h"
#include "datasets/tokenizer_gguf.h"

/* LLaMA 3's split regex, as its tokenizer.json holds it. */
static const char LLAMA3_SPLIT_REGEX[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const int NFC = UTF8PROC_STABLE | UTF8PROC_COMPOSE;

enum { TYPE_NORMAL = 1, TYPE_CONTROL = 3, TYPE_USER_DEFINED = 4, TYPE_UNUSED = 5 };

const char *ct_tokenizer_gguf_pre(const ct_tokenizer *tok, const char **difference) {
    if (difference) *difference = NULL;
    const int norm = tok->pretok.utf8proc_options;
    if (tok->n_splits == 1 && tok->split_regex && !strcmp(tok->split_regex, CT_QWEN2_SPLIT_REGEX) &&
        (norm == 0 || norm == NFC)) {
        if (difference && norm)
            *difference = "llama.cpp applies no NFC normalization: text that is not already NFC (a decomposed "
                          "accent) may split into other tokens there";
        return "qwen2";
    }
    if (tok->n_splits == 1 && tok->split_regex && !strcmp(tok->split_regex, LLAMA3_SPLIT_REGEX) && norm == 0)
        return "llama-bpe";
    ct_fail("%s: its pre-tokenizer (%s) is neither Qwen2's nor LLaMA 3's, the byte-level splits llama.cpp "
            "knows as qwen2 and llama-bpe; GGUF export would tokenize differently there",
            tok->path, tok->n_splits == 1 && tok->split_regex ? tok->split_regex : "several or literal splits");
    return NULL;
}

/* Merges "A B" in rank order, from the BPE model's pair map. */
static char **merge_strings(const ct_tokenizer *tok, uint64_t *n) {
    const ct_u64map *map = &tok->bpe.merges;
    *n = map->count;
    char **out = ct_calloc(map->count ? map->count : 1, sizeof *out, "GGUF merges");
    if (!out) return NULL;
    for (size_t i = 0; i < map->cap; i++) {
        const ct_u64map_slot *s = &map->slots[i];
        if (s->key == UINT64_MAX) continue;
        uint64_t rank = s->value >> 32;
        const char *a = tok->id_text[s->key >> 32], *b = tok->id_text[s->key & 0xffffffffu];
        if (rank >= map->count || out[rank] || !a || !b) {
            ct_fail("%s: merge table is inconsistent", tok->path);
            break;
        }
        size_t len = strlen(a) + strlen(b) + 2;
        if (!(out[rank] = malloc(len))) {
            ct_fail("out of memory listing merges");
            break;
        }
        snprintf(out[rank], len, "%s %s", a, b);
    }
    bool ok = true;
    for (size_t i = 0; i < map->count; i++) ok = ok && out[i];
    if (!ok) {
        for (size_t i = 0; i < map->count; i++) free(out[i]);
        free(out);
        return NULL;
    }
    return out;
}

static int add_tokens(const ct_tokenizer *tok, ct_gguf_writer *w, int64_t n_rows) {
    char **texts = ct_calloc((size_t)n_rows, sizeof *texts, "GGUF tokens");
    int32_t *types = ct_calloc((size_t)n_rows, sizeof *types, "GGUF token types");
    int rc = texts && types ? 0 : -1;
    for (int64_t id = 0; rc == 0 && id < n_rows; id++) {
        const char *text = id < tok->size ? tok->id_text[id] : NULL;
        uint8_t flags = id < tok->size ? tok->id_flags[id] : 0;
        char pad[32];
        if (!text) snprintf(pad, sizeof pad, "[PAD%lld]", (long long)id);
        texts[id] = ct_strdup(text ? text : pad);
        types[id] = !text                     ? TYPE_UNUSED
                    : flags & CT_ID_SPECIAL   ? TYPE_CONTROL
                    : flags & CT_ID_ADDED     ? TYPE_USER_DEFINED
                                              : TYPE_NORMAL;
        if (!texts[id]) rc = -1;
    }
    if (rc == 0) rc = ct_gguf_set_string_array(w, "tokenizer.ggml.tokens", (const char *const *)texts, (uint64_t)n_rows);
    if (rc == 0) rc = ct_gguf_set_i32_array(w, "tokenizer.ggml.token_type", types, (uint64_t)n_rows);
    for (int64_t id = 0; texts && id < n_rows; id++) free(texts[id]);
    free(texts);
    free(types);
    return rc;
}

int ct_tokenizer_gguf_add(const ct_tokenizer *tok, ct_gguf_writer *w, const ct_tokenizer_gguf_options *o) {
    const char *pre = ct_tokenizer_gguf_pre(tok, NULL);
    if (!pre) return -1;
    if (o->n_rows < tok->size)
        return ct_fail("%s: %d tokens but the model has %lld embedding rows", tok->path, tok->size, (long long)o->n_rows);
    CT_TRY(ct_gguf_set_string(w, "tokenizer.ggml.model", "gpt2"));
    CT_TRY(ct_gguf_set_string(w, "tokenizer.ggml.pre", pre));
    CT_TRY(add_tokens(tok, w, o->n_rows));
    uint64_t n;
    char **merges = merge_strings(tok, &n);
    if (!merges) return -1;
    int rc = ct_gguf_set_string_array(w, "tokenizer.ggml.merges", (const char *const *)merges, n);
    for (uint64_t i = 0; i < n; i++) free(merges[i]);
    free(merges);
    CT_TRY(rc);
    const int64_t ids[3] = {o->bos, o->eos, o->pad};
    const char *keys[3] = {"tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id", "tokenizer.ggml.padding_token_id"};
    for (int i = 0; i < 3; i++)
        if (ids[i] >= 0) CT_TRY(ct_gguf_set_u32(w, keys[i], (uint32_t)ids[i]));
    /* the post-processor's single prefix token is LLaMA 3's BOS; Qwen and ctune add none */
    const bool add_bos = tok->n_prefix == 1 && o->bos >= 0 && tok->prefix_ids[0] == o->bos && tok->n_suffix == 0;
    CT_TRY(ct_gguf_set_bool(w, "tokenizer.ggml.add_bos_token", add_bos));
    CT_TRY(ct_gguf_set_bool(w, "tokenizer.ggml.add_eos_token", false));
    if (o->chat_template) CT_TRY(ct_gguf_set_string(w, "tokenizer.chat_template", o->chat_template));
    return 0;
}

/* ---- reading ---- */

static cJSON *split_pretokenizer(const char *regex) {
    cJSON *seq = cJSON_CreateObject(), *steps = cJSON_AddArrayToObject(seq, "pretokenizers");
    cJSON *split = cJSON_CreateObject(), *byte_level = cJSON_CreateObject();
    cJSON_AddStringToObject(seq, "type", "Sequence");
    cJSON_AddStringToObject(split, "type", "Split");
    cJSON_AddStringToObject(cJSON_AddObjectToObject(split, "pattern"), "Regex", regex);
    cJSON_AddStringToObject(split, "behavior", "Isolated");
    cJSON_AddFalseToObject(split, "invert");
    cJSON_AddStringToObject(byte_level, "type", "ByteLevel");
    cJSON_AddFalseToObject(byte_level, "add_prefix_space");
    cJSON_AddFalseToObject(byte_level, "use_regex");
    cJSON_AddItemToArray(steps, split);
    cJSON_AddItemToArray(steps, byte_level);
    return seq;
}

static cJSON *byte_level(void) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "type", "ByteLevel");
    cJSON_AddFalseToObject(o, "add_prefix_space");
    cJSON_AddFalseToObject(o, "trim_offsets");
    cJSON_AddFalseToObject(o, "use_regex");
    return o;
}

static cJSON *bos_processor(const char *bos_text, int32_t bos) {
    cJSON *p = cJSON_CreateObject(), *single = cJSON_AddArrayToObject(p, "single");
    cJSON_AddStringToObject(p, "type", "TemplateProcessing");
    cJSON *first = cJSON_CreateObject(), *seq = cJSON_CreateObject();
    cJSON *special = cJSON_AddObjectToObject(first, "SpecialToken");
    cJSON_AddStringToObject(special, "id", bos_text);
    cJSON_AddNumberToObject(special, "type_id", 0);
    cJSON *a = cJSON_AddObjectToObject(seq, "Sequence");
    cJSON_AddStringToObject(a, "id", "A");
    cJSON_AddNumberToObject(a, "type_id", 0);
    cJSON_AddItemToArray(single, first);
    cJSON_AddItemToArray(single, seq);
    cJSON *entry = cJSON_AddObjectToObject(cJSON_AddObjectToObject(p, "special_tokens"), bos_text);
    cJSON_AddStringToObject(entry, "id", bos_text);
    cJSON_AddItemToArray(cJSON_AddArrayToObject(entry, "ids"), cJSON_CreateNumber(bos));
    cJSON_AddItemToArray(cJSON_AddArrayToObject(entry, "tokens"), cJSON_CreateString(bos_text));
    return p;
}

/* A string of the array as a NUL-terminated copy in a cJSON string, or NULL when it holds a NUL. */
static cJSON *json_string(const ct_gguf_str *s) {
    if (memchr(s->data, 0, (size_t)s->len)) return NULL;
    char *copy = malloc((size_t)s->len + 1);
    if (!copy) return NULL;
    memcpy(copy, s->data, (size_t)s->len);
    copy[s->len] = 0;
    cJSON *j = cJSON_CreateString(copy);
    free(copy);
    return j;
}

static int add_vocab(const ct_gguf *g, cJSON *root, cJSON *vocab, const ct_gguf_kv *tokens, const ct_gguf_kv *types) {
    cJSON *added = cJSON_AddArrayToObject(root, "added_tokens");
    for (uint64_t id = 0; id < tokens->n; id++) {
        int32_t type = ct_gguf_array_i32(types, id);
        if (type == TYPE_UNUSED) continue;
        cJSON *text = json_string(&tokens->strings[id]);
        if (!text) return ct_fail("%s: tokenizer.ggml.tokens[%llu] holds a NUL byte", ct_gguf_path(g), (unsigned long long)id);
        if (type == TYPE_CONTROL || type == TYPE_USER_DEFINED) {
            cJSON *t = cJSON_CreateObject();
            cJSON_AddNumberToObject(t, "id", (double)id);
            cJSON_AddItemToObject(t, "content", text);
            cJSON_AddBoolToObject(t, "special", type == TYPE_CONTROL);
            cJSON_AddFalseToObject(t, "normalized");
            cJSON_AddItemToArray(added, t);
        } else {
            /* a token text that appears twice keeps its first id, as the library does */
            if (!cJSON_GetObjectItemCaseSensitive(vocab, text->valuestring))
                cJSON_AddNumberToObject(vocab, text->valuestring, (double)id);
            cJSON_Delete(text);
        }
    }
    return 0;
}

static int add_merges(const ct_gguf *g, cJSON *model) {
    const ct_gguf_kv *merges = ct_gguf_get_array(g, "tokenizer.ggml.merges", CT_GGUF_V_STRING);
    if (!merges) return -1;
    cJSON *list = cJSON_AddArrayToObject(model, "merges");
    for (uint64_t i = 0; i < merges->n; i++) {
        cJSON *m = json_string(&merges->strings[i]);
        if (!m) return ct_fail("%s: tokenizer.ggml.merges[%llu] holds a NUL byte", ct_gguf_path(g), (unsigned long long)i);
        cJSON_AddItemToArray(list, m);
    }
    return 0;
}

static int check_tokenizer_keys(const ct_gguf *g, const char *model, const char *pre, const char **regex) {
    if (!model || strcmp(model, "gpt2"))
        return ct_fail("%s: tokenizer.ggml.model is %s; ctune rebuilds only byte-level BPE (gpt2) tokenizers "
                       "(Qwen2/2.5/3, LLaMA 3, ctune's own)", ct_gguf_path(g), model ? model : "missing");
    *regex = !pre ? NULL : !strcmp(pre, "qwen2") ? CT_QWEN2_SPLIT_REGEX : !strcmp(pre, "llama-bpe") ? LLAMA3_SPLIT_REGEX : NULL;
    if (!*regex)
        return ct_fail("%s: tokenizer.ggml.pre is %s; ctune rebuilds the qwen2 and llama-bpe pre-tokenizers only "
                       "(evaluate the model's Hugging Face folder instead)", ct_gguf_path(g), pre ? pre : "missing");
    return 0;
}

static cJSON *rebuild(const ct_gguf *g, const char *pre, const char *regex) {
    const ct_gguf_kv *tokens = ct_gguf_get_array(g, "tokenizer.ggml.tokens", CT_GGUF_V_STRING);
    const ct_gguf_kv *types = tokens ? ct_gguf_get_array(g, "tokenizer.ggml.token_type", CT_GGUF_V_I32) : NULL;
    if (!types) return NULL;
    if (types->n != tokens->n || tokens->n > INT32_MAX) {
        ct_fail("%s: %llu tokens but %llu token types", ct_gguf_path(g), (unsigned long long)tokens->n,
                (unsigned long long)types->n);
        return NULL;
    }
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "version", "1.0");
    cJSON *model = cJSON_CreateObject();
    int rc = add_vocab(g, root, cJSON_AddObjectToObject(model, "vocab"), tokens, types);
    if (rc == 0) rc = add_merges(g, model);
    cJSON_AddStringToObject(model, "type", "BPE");
    cJSON_AddItemToObject(root, "model", model);
    if (!strcmp(pre, "qwen2")) cJSON_AddStringToObject(cJSON_AddObjectToObject(root, "normalizer"), "type", "NFC");
    cJSON_AddItemToObject(root, "pre_tokenizer", split_pretokenizer(regex));
    cJSON_AddItemToObject(root, "decoder", byte_level());
    bool add_bos = false, found;
    uint32_t bos = 0;
    if (rc == 0) rc = ct_gguf_get_bool(g, "tokenizer.ggml.add_bos_token", false, &add_bos, &found);
    if (rc == 0 && add_bos) rc = ct_gguf_get_u32(g, "tokenizer.ggml.bos_token_id", true, &bos, &found);
    if (rc == 0 && add_bos && bos >= tokens->n) rc = ct_fail("%s: bos_token_id %u is not a token", ct_gguf_path(g), bos);
    cJSON *bos_text = rc == 0 && add_bos ? json_string(&tokens->strings[bos]) : NULL;
    cJSON_AddItemToObject(root, "post_processor", bos_text ? bos_processor(bos_text->valuestring, (int32_t)bos) : byte_level());
    cJSON_Delete(bos_text);
    if (rc < 0) {
        cJSON_Delete(root);
        return NULL;
    }
    return root;
}

char *ct_tokenizer_json_from_gguf(const ct_gguf *g) {
    char *model = NULL, *pre = NULL;
    const char *regex = NULL;
    int rc = ct_gguf_get_string(g, "tokenizer.ggml.model", false, &model);
    if (rc == 0) rc = ct_gguf_get_string(g, "tokenizer.ggml.pre", false, &pre);
    if (rc == 0) rc = check_tokenizer_keys(g, model, pre, &regex);
    cJSON *root = rc == 0 ? rebuild(g, pre, regex) : NULL;
    free(model);
    free(pre);
    char *text = root ? cJSON_PrintUnformatted(root) : NULL;
    if (root && !text) ct_fail("out of memory rebuilding the tokenizer of %s", ct_gguf_path(g));
    cJSON_Delete(root);
    return text;
}
