/* Examples to token ids through the chat template (see sft.h for the conversion), candidate
 * answers for log-likelihood evaluation, and pretraining text cut into chunks. */
#include "datasets/sft.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"

/* The conversation of an example whose final answer is label `label` (intent and dialog_intent)
 * or the example's own messages (chat). The array points into the example and the label set. */
static ct_chat_message *conversation(const ct_sft_options *options, const ct_example *ex, int label,
                                     size_t *n) {
    size_t cap = ex->n_messages + 3;
    ct_chat_message *m = ct_malloc(cap * sizeof *m, "a conversation");
    if (!m) return NULL;
    *n = 0;
    if (!ex->messages) { /* intent: the utterance is the user turn */
        if (options->system_prompt && *options->system_prompt)
            m[(*n)++] = (ct_chat_message){"system", options->system_prompt};
        m[(*n)++] = (ct_chat_message){"user", ex->text};
    } else {
        /* A dialogue that brings its own system message keeps it alone, as the model folder's
         * chat template does with its default (datasets/chat_template_jinja.c). */
        bool with_answer = label >= 0, own_system = !strcmp(ex->messages[0].role, "system");
        if (with_answer && !own_system && options->system_prompt && *options->system_prompt)
            m[(*n)++] = (ct_chat_message){"system", options->system_prompt};
        for (size_t i = 0; i < ex->n_messages; i++) m[(*n)++] = ex->messages[i];
    }
    if (label >= 0) m[(*n)++] = (ct_chat_message){"assistant", ct_label_set_display(options->labels, label)};
    return m;
}

static int check_example(const ct_sft_options *options, const ct_example *ex) {
    if (!options->tpl) return ct_fail("SFT encoding: no chat template; load one with the tokenizer");
    if (!ex->messages && !ex->text)
        return ct_fail("SFT encoding: the example has neither text nor messages");
    if (ex->label < 0) return 0;
    if (!options->labels)
        return ct_fail("SFT encoding: a labelled example needs the label set; pass labels.json");
    if (ex->label >= ct_label_set_count(options->labels))
        return ct_fail("SFT encoding: label index %d is out of range (%d labels); load the examples "
                       "with the same label set", ex->label, ct_label_set_count(options->labels));
    return 0;
}

static int encode_as(const ct_sft_options *options, const ct_example *ex, int label,
                     ct_chat_mask_mode loss_on, ct_token_list *ids, uint8_t **mask) {
    *mask = NULL;
    if (!ex->messages && label < 0)
        return ct_fail("SFT encoding: an intent example (line %lld) has no label",
                       (long long)ex->line);
    size_t n;
    ct_chat_message *messages = conversation(options, ex, label, &n);
    if (!messages) return -1;
    ct_chat_options chat = {.mask = loss_on};
    int rc = ct_chat_encode(options->tpl, messages, n, &chat, ids, mask);
    free(messages);
    return rc;
}

int ct_sft_encode(const ct_sft_options *options, const ct_example *example, ct_token_list *ids,
                  uint8_t **mask) {
    *mask = NULL;
    CT_TRY(check_example(options, example));
    return encode_as(options, example, example->label, options->loss_on, ids, mask);
}

int ct_sft_encode_all(const ct_sft_options *options, const ct_examples *examples,
                      ct_seq_store *store) {
    if (examples->format == CT_DATA_TEXT)
        return ct_fail("%s: plain text is pretraining data; encode it with ct_text_encode_chunks",
                       examples->path);
    ct_token_list ids = {0};
    int rc = 0;
    for (size_t i = 0; i < examples->count && rc == 0; i++) {
        uint8_t *mask = NULL;
        rc = ct_sft_encode(options, &examples->items[i], &ids, &mask);
        if (rc == 0) rc = ct_seq_store_add(store, ids.ids, mask, ids.len);
        if (rc < 0) ct_fail_context("%s:%lld: ", examples->path, (long long)examples->items[i].line);
        free(mask);
    }
    ct_token_list_free(&ids);
    return rc;
}

/* ---- candidates for log-likelihood evaluation ---- */

void ct_sft_candidates_free(ct_sft_candidates *c) {
    ct_token_list_free(&c->prompt);
    for (int k = 0; k < c->n_labels; k++) ct_token_list_free(&c->answers[k]);
    free(c->answers);
    *c = (ct_sft_candidates){0};
}

static int set_list(ct_token_list *list, const int32_t *ids, size_t n) {
    list->len = 0;
    for (size_t i = 0; i < n; i++) CT_TRY(ct_token_list_push(list, ids[i]));
    return 0;
}

/* Splits label k's training sequence at its answer: [0, first masked) is the prompt, the
 * masked run is the answer (only the last assistant turn is masked here). */
static int split_answer(ct_sft_candidates *c, int k, const ct_token_list *ids, const uint8_t *mask,
                        const ct_label_set *labels) {
    size_t first = 0, last = ids->len;
    while (first < ids->len && !mask[first]) first++;
    while (last > first && !mask[last - 1]) last--;
    if (first == ids->len)
        return ct_fail("evaluation candidates: label \"%s\" gave no answer tokens",
                       ct_label_set_id(labels, k));
    if (k == 0) CT_TRY(set_list(&c->prompt, ids->ids, first));
    else if (first != c->prompt.len || memcmp(ids->ids, c->prompt.ids, first * sizeof *ids->ids))
        return ct_fail("evaluation candidates: the prompt's tokens change with the answer \"%s\" "
                       "(its first token merges with the header); such a label cannot be scored "
                       "on a shared prompt", ct_label_set_display(labels, k));
    return set_list(&c->answers[k], ids->ids + first, last - first);
}

static int reset_candidates(ct_sft_candidates *c, int n_labels) {
    if (c->n_labels == n_labels) return 0;
    ct_sft_candidates_free(c);
    c->answers = ct_calloc((size_t)n_labels, sizeof *c->answers, "evaluation candidates");
    if (!c->answers) return -1;
    c->n_labels = n_labels;
    return 0;
}

int ct_sft_candidates_build(const ct_sft_options *options, const ct_example *example,
                            ct_sft_candidates *out) {
    CT_TRY(check_example(options, example));
    if (!options->labels || (example->messages && example->label < 0))
        return ct_fail("evaluation candidates need an intent or dialog_intent example and its label "
                       "set (line %lld)", (long long)example->line);
    int n_labels = ct_label_set_count(options->labels);
    CT_TRY(reset_candidates(out, n_labels));
    ct_token_list ids = {0};
    int rc = 0;
    for (int k = 0; k < n_labels && rc == 0; k++) {
        uint8_t *mask = NULL;
        rc = encode_as(options, example, k, CT_CHAT_MASK_LAST, &ids, &mask);
        if (rc == 0) rc = split_answer(out, k, &ids, mask, options->labels);
        free(mask);
    }
    ct_token_list_free(&ids);
    return rc;
}

/* ---- pretraining text ---- */

int ct_text_encode_chunks(const ct_tokenizer *tok, const ct_examples *documents, int32_t eos_id,
                          int64_t chunk_len, ct_seq_store *store) {
    if (documents->format != CT_DATA_TEXT)
        return ct_fail("%s: chunks are made from plain text; load it with the text format",
                       documents->path);
    if (chunk_len < 2)
        return ct_fail("text chunks: chunk_len %lld is too small; use at least 2",
                       (long long)chunk_len);
    if (eos_id < 0 || eos_id >= ct_tokenizer_vocab_size(tok))
        return ct_fail("text chunks: end-of-text id %d is not in the tokenizer's vocabulary (%d "
                       "ids); look it up with ct_tokenizer_token_id", eos_id,
                       ct_tokenizer_vocab_size(tok));
    ct_token_list all = {0};
    int rc = 0;
    for (size_t i = 0; i < documents->count && rc == 0; i++) {
        const char *text = documents->items[i].text;
        rc = ct_tokenizer_encode(tok, text, strlen(text), 0, &all);
        if (rc == 0) rc = ct_token_list_push(&all, eos_id);
    }
    /* Chunks overlap by one token: the last token of one is the first input of the next. */
    for (size_t start = 0; rc == 0 && start + 1 < all.len; start += (size_t)chunk_len - 1) {
        size_t n = all.len - start < (size_t)chunk_len ? all.len - start : (size_t)chunk_len;
        rc = ct_seq_store_add(store, all.ids + start, NULL, n);
    }
    ct_token_list_free(&all);
    return rc;
}

int32_t ct_text_end_id(const ct_tokenizer *tok, int32_t fallback) {
    int32_t id = ct_tokenizer_token_id(tok, "<|endoftext|>");
    if (id < 0) id = ct_tokenizer_token_id(tok, "<|end_of_text|>");
    return id >= 0 ? id : fallback;
}
