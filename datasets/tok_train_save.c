/* Writing what the trainer learned as Hugging Face files: tokenizer.json laid out like Qwen2's
 * (NFC, Split with the Qwen2 regex, ByteLevel, BPE, the ChatML special tokens after the learned
 * vocabulary), so GGUF exporters can name its pre-tokenizer `qwen2`, and a tokenizer_config.json
 * with a ChatML chat template. Each file is written under a temporary name and renamed, so a
 * failed save leaves any earlier file whole. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/error.h"
#include "core/atomic_file.h"
#include "datasets/tok_internal.h"

static const char chatml_template[] =
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}";

static cJSON *byte_level_component(void) {
    cJSON *c = cJSON_CreateObject();
    cJSON_AddStringToObject(c, "type", "ByteLevel");
    cJSON_AddFalseToObject(c, "add_prefix_space");
    cJSON_AddFalseToObject(c, "trim_offsets");
    cJSON_AddFalseToObject(c, "use_regex");
    return c;
}

static cJSON *pre_tokenizer(void) {
    cJSON *split = cJSON_CreateObject();
    cJSON_AddStringToObject(split, "type", "Split");
    cJSON_AddStringToObject(cJSON_AddObjectToObject(split, "pattern"), "Regex", CT_QWEN2_SPLIT_REGEX);
    cJSON_AddStringToObject(split, "behavior", "Isolated");
    cJSON_AddFalseToObject(split, "invert");
    cJSON *sequence = cJSON_CreateObject();
    cJSON_AddStringToObject(sequence, "type", "Sequence");
    cJSON *steps = cJSON_AddArrayToObject(sequence, "pretokenizers");
    cJSON_AddItemToArray(steps, split);
    cJSON_AddItemToArray(steps, byte_level_component());
    return sequence;
}

static void add_token_flags(cJSON *entry, const char *content) {
    cJSON_AddStringToObject(entry, "content", content);
    cJSON_AddFalseToObject(entry, "single_word");
    cJSON_AddFalseToObject(entry, "lstrip");
    cJSON_AddFalseToObject(entry, "rstrip");
    cJSON_AddFalseToObject(entry, "normalized");
    cJSON_AddTrueToObject(entry, "special");
}

static cJSON *added_tokens(const ct_bpe_trainer *t) {
    cJSON *list = cJSON_CreateArray();
    for (int i = 0; i < 3; i++) {
        cJSON *entry = cJSON_CreateObject();
        cJSON_AddNumberToObject(entry, "id", t->n_tokens + i);
        add_token_flags(entry, ct_train_special_tokens[i]);
        cJSON_AddItemToArray(list, entry);
    }
    return list;
}

static char *byte_level_text(const ct_train_token *token) {
    ct_strbuf b = {0};
    if (ct_tok_buf_append_byte_level(&b, (const uint8_t *)token->bytes, token->len) < 0) return NULL;
    return b.data;
}

static int add_vocab_and_merges(const ct_bpe_trainer *t, cJSON *model) {
    cJSON *vocab = cJSON_AddObjectToObject(model, "vocab");
    char **texts = ct_calloc((size_t)t->n_tokens, sizeof *texts, "byte-level token texts");
    if (!vocab || !texts) return -1;
    int rc = 0;
    for (int32_t id = 0; id < t->n_tokens && rc == 0; id++) {
        texts[id] = byte_level_text(&t->tokens[id]);
        if (!texts[id] || !cJSON_AddNumberToObject(vocab, texts[id], id)) rc = -1;
    }
    /* "left right" strings: readable by every tokenizers version (byte-level text has no spaces). */
    cJSON *merges = cJSON_AddArrayToObject(model, "merges");
    ct_strbuf line = {0};
    for (int32_t i = 0; i < t->n_merges && rc == 0 && merges; i++) {
        line.len = 0;
        const char *left = texts[t->merges[i][0]], *right = texts[t->merges[i][1]];
        rc = ct_strbuf_append(&line, left, strlen(left));
        if (rc == 0) rc = ct_strbuf_append(&line, " ", 1);
        if (rc == 0) rc = ct_strbuf_append(&line, right, strlen(right));
        if (rc == 0 && !cJSON_AddItemToArray(merges, cJSON_CreateString(line.data))) rc = -1;
    }
    ct_strbuf_free(&line);
    for (int32_t id = 0; id < t->n_tokens; id++) free(texts[id]);
    free(texts);
    return merges ? rc : -1;
}

static cJSON *model_json(const ct_bpe_trainer *t) {
    cJSON *model = cJSON_CreateObject();
    cJSON_AddStringToObject(model, "type", "BPE");
    cJSON_AddNullToObject(model, "dropout");
    cJSON_AddNullToObject(model, "unk_token");
    cJSON_AddStringToObject(model, "continuing_subword_prefix", "");
    cJSON_AddStringToObject(model, "end_of_word_suffix", "");
    cJSON_AddFalseToObject(model, "fuse_unk");
    cJSON_AddFalseToObject(model, "byte_fallback");
    cJSON_AddFalseToObject(model, "ignore_merges");
    if (add_vocab_and_merges(t, model) < 0) {
        cJSON_Delete(model);
        return NULL;
    }
    return model;
}

static cJSON *tokenizer_json(const ct_bpe_trainer *t) {
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "version", "1.0");
    cJSON_AddNullToObject(root, "truncation");
    cJSON_AddNullToObject(root, "padding");
    cJSON_AddItemToObject(root, "added_tokens", added_tokens(t));
    cJSON_AddStringToObject(cJSON_AddObjectToObject(root, "normalizer"), "type", "NFC");
    cJSON_AddItemToObject(root, "pre_tokenizer", pre_tokenizer());
    cJSON_AddItemToObject(root, "post_processor", byte_level_component());
    cJSON_AddItemToObject(root, "decoder", byte_level_component());
    cJSON *model = model_json(t);
    if (!model) {
        cJSON_Delete(root);
        return NULL;
    }
    cJSON_AddItemToObject(root, "model", model);
    return root;
}

static cJSON *config_json(const ct_bpe_trainer *t) {
    cJSON *root = cJSON_CreateObject();
    cJSON_AddFalseToObject(root, "add_bos_token");
    cJSON_AddFalseToObject(root, "add_prefix_space");
    cJSON *decoder = cJSON_AddObjectToObject(root, "added_tokens_decoder");
    for (int i = 0; i < 3; i++) {
        char id[16];
        snprintf(id, sizeof id, "%d", t->n_tokens + i);
        add_token_flags(cJSON_AddObjectToObject(decoder, id), ct_train_special_tokens[i]);
    }
    cJSON *extra = cJSON_AddArrayToObject(root, "additional_special_tokens");
    cJSON_AddItemToArray(extra, cJSON_CreateString(ct_train_special_tokens[1]));
    cJSON_AddItemToArray(extra, cJSON_CreateString(ct_train_special_tokens[2]));
    cJSON_AddNullToObject(root, "bos_token");
    cJSON_AddStringToObject(root, "chat_template", chatml_template);
    cJSON_AddFalseToObject(root, "clean_up_tokenization_spaces");
    cJSON_AddStringToObject(root, "eos_token", ct_train_special_tokens[2]);
    cJSON_AddStringToObject(root, "errors", "replace");
    cJSON_AddStringToObject(root, "pad_token", ct_train_special_tokens[0]);
    cJSON_AddFalseToObject(root, "split_special_tokens");
    cJSON_AddStringToObject(root, "tokenizer_class", "PreTrainedTokenizerFast");
    cJSON_AddNullToObject(root, "unk_token");
    return root;
}

/* dir/name holds text and a newline, written atomically. */
static int write_atomically(const char *dir, const char *name, const char *text) {
    size_t n = strlen(dir) + strlen(name) + 2, len = strlen(text);
    char *path = ct_malloc(n, "a path"), *data = ct_malloc(len + 1, "a file");
    int rc = path && data ? 0 : -1;
    if (rc == 0) {
        snprintf(path, n, "%s/%s", dir, name);
        memcpy(data, text, len);
        data[len] = '\n';
        rc = ct_atomic_write_file(path, data, len + 1);
    }
    free(path);
    free(data);
    return rc;
}

static int write_json(const char *dir, const char *name, cJSON *root) {
    char *text = root ? cJSON_Print(root) : NULL;
    cJSON_Delete(root);
    if (!text) return ct_fail("%s/%s: out of memory formatting JSON", dir, name);
    int rc = write_atomically(dir, name, text);
    cJSON_free(text);
    return rc;
}

static int ensure_dir(const char *dir) {
    struct stat st;
    if (stat(dir, &st) == 0)
        return S_ISDIR(st.st_mode) ? 0 : ct_fail("%s: exists and is not a folder", dir);
    if (mkdir(dir, 0755) != 0)
        return ct_fail("%s: cannot create the folder (%s); does its parent exist?", dir, strerror(errno));
    return 0;
}

int ct_bpe_trainer_save(const ct_bpe_trainer *t, const char *dir) {
    if (!t->trained) return ct_fail("BPE trainer: nothing to save before training");
    CT_TRY(ensure_dir(dir));
    CT_TRY(write_json(dir, "tokenizer.json", tokenizer_json(t)));
    return write_json(dir, "tokenizer_config.json", config_json(t));
}
