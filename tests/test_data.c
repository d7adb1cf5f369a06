/* Training data: label sets, the JSONL and text readers, and the conversion of examples to
 * token ids and loss masks (datasets/label_set.h, examples.h, sft.h).
 *
 * Happy path on the bundled corpus (counts stated in docs/datasets.md). Conversion with a
 * tokenizer trained here on pretrain_train.txt: decoding the ids must give exactly the ChatML
 * text written out by hand in this file, and the masked tokens exactly the answers. With the
 * real Qwen3 tokenizer (found through $CT_SHARED_DIR or ../shared), ids, masks and evaluation
 * candidates must equal tests/fixtures/data/qwen3_sft.jsonl, which
 * tests/reference/make_data_fixtures.py computes with the Hugging Face library; without it that
 * part is skipped and the test exits 77 when everything else passed (1 under CI=true). Bad input: small files
 * written into a temporary folder, each refused with the exact file:line. */
#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"
#include "datasets/batching.h"
#include "datasets/examples.h"
#include "datasets/label_set.h"
#include "datasets/sft.h"
#include "datasets/tokenizer.h"
#include "tests/ct_test.h"

static char tmp_dir[64];

static char *path_in(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static char *data_path(const char *name) { return path_in(ct_test_path("datasets/data"), name); }

/* Writes `len` bytes (strlen when len < 0) to tmp_dir/name; returns the path (caller frees). */
static char *write_tmp(const char *name, const char *content, long len) {
    char *path = path_in(tmp_dir, name);
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL, "cannot write %s", path);
    if (f) {
        fwrite(content, 1, len < 0 ? strlen(content) : (size_t)len, f);
        fclose(f);
    }
    return path;
}

/* ---- label sets ---- */

static void expect_labels_refused(const char *name, const char *json, const char *needle) {
    char *path = write_tmp(name, json, -1);
    ct_clear_error();
    ct_label_set *labels = ct_label_set_load(path);
    const char *err = ct_last_error();
    CHECK(!labels && strstr(err, path) && strstr(err, needle),
          "labels %s: expected an error naming the file and \"%s\", got: %s", name, needle, err);
    ct_label_set_free(labels);
    free(path);
}

static void check_label_sets(const ct_label_set *labels) {
    CHECK(ct_label_set_count(labels) == 15, "15 intents, got %d", ct_label_set_count(labels));
    CHECK(!strcmp(ct_label_set_id(labels, 0), "return_request") &&
              !strcmp(ct_label_set_display(labels, 0), "退货申请") &&
              !strcmp(ct_label_set_id(labels, 14), "other") &&
              !strcmp(ct_label_set_display(labels, 14), "其他"),
          "file order: return_request first, other last");
    CHECK(ct_label_set_index(labels, "payment_issue") == 9 &&
              ct_label_set_index_of_display(labels, "转人工") == 13 &&
              ct_label_set_index(labels, "refund") == -1 && ct_label_set_id(labels, 15) == NULL,
          "id <-> index <-> display");

    char *missing = path_in(tmp_dir, "no_labels.json");
    ct_clear_error();
    CHECK(!ct_label_set_load(missing) && strstr(ct_last_error(), missing) &&
              strstr(ct_last_error(), "cannot open"),
          "a missing labels file: %s", ct_last_error());
    free(missing);
    expect_labels_refused("l1.json", "{\"a\": \"A\",", "malformed JSON");
    expect_labels_refused("l2.json", "[\"a\", \"b\"]", "expected a JSON object");
    expect_labels_refused("l3.json", "{}", "no labels");
    expect_labels_refused("l4.json", "{\"a\": \"A\", \"b\": 3}", "label \"b\" needs a non-empty string");
    expect_labels_refused("l5.json", "{\"a\": \"A\", \"b\": \"\"}", "label \"b\" needs a non-empty string");
    expect_labels_refused("l6.json", "{\"a\": \"退货\", \"b\": \"退货\"}", "share the display text");
    expect_labels_refused("l7.json", "{\"a\": \" 退货\"}", "whitespace");
    expect_labels_refused("l8.json", "{\"a\": \"A\", \"a\": \"B\"}", "\"a\" appears twice");
}

/* ---- reading the bundled corpus ---- */

static ct_examples *load(const char *path, ct_data_format format, const ct_label_set *labels) {
    ct_example_options o = {.format = format, .labels = labels};
    ct_examples *set = ct_examples_load(path, &o);
    CHECK(set != NULL, "%s", ct_last_error());
    return set;
}

static void check_corpus(const ct_label_set *labels) {
    char *path = data_path("intent_train.jsonl");
    ct_examples *set = load(path, CT_DATA_INTENT, labels);
    if (set) {
        int per_label[15] = {0};
        for (size_t i = 0; i < set->count; i++) per_label[set->items[i].label]++;
        bool balanced = true;
        for (int k = 0; k < 15; k++) balanced &= per_label[k] == 480;
        CHECK(set->count == 7200 && balanced && set->skipped == 0,
              "intent_train: 7,200 utterances, 480 per intent (got %zu)", set->count);
    }
    ct_examples_free(set);
    free(path);

    path = data_path("intent_val.jsonl");
    ct_example_options o = {.format = CT_DATA_INTENT, .labels = labels, .max_examples = 2};
    set = ct_examples_load(path, &o);
    CHECK(set && set->count == 2 && !strcmp(set->items[0].text, "没事哈") &&
              set->items[0].label == ct_label_set_index(labels, "other") &&
              set->items[1].line == 2 && !set->items[0].messages,
          "intent_val, first 2 lines: %s", set ? "wrong content" : ct_last_error());
    ct_examples_free(set);
    free(path);

    path = data_path("dialog_train.jsonl");
    set = load(path, CT_DATA_DIALOG_INTENT, labels);
    if (set) {
        bool ends_with_user = true;
        for (size_t i = 0; i < set->count; i++)
            ends_with_user &= !strcmp(set->items[i].messages[set->items[i].n_messages - 1].role, "user");
        CHECK(set->count == 3000 && ends_with_user, "dialog_train: 3,000 dialogues ending with a user turn");
    }
    ct_examples_free(set);
    free(path);

    /* The fourth validation dialogue, as the file has it. */
    path = data_path("dialog_val.jsonl");
    set = load(path, CT_DATA_DIALOG_INTENT, labels);
    if (set) {
        const ct_example *d = &set->items[3];
        CHECK(set->count == 300 && d->n_messages == 3 && !strcmp(d->messages[1].role, "assistant") &&
                  !strcmp(d->messages[1].content, "您好，这里是官方客服") &&
                  !strcmp(d->messages[2].content, "找你们负责人出来，给个交代，ok吗") &&
                  d->label == ct_label_set_index(labels, "complaint"),
              "dialog_val: 300 dialogues; the fourth one");
    }
    ct_examples_free(set);
    free(path);

    /* Pretraining text: 5,000 dialogues, one per paragraph; or one document per line. */
    path = data_path("pretrain_train.txt");
    set = load(path, CT_DATA_TEXT, NULL);
    const char *first = "用户：this is a scam\n客服：";
    CHECK(set && set->count == 5000 && !strncmp(set->items[0].text, first, strlen(first)) &&
              set->items[1].line == 6,
          "pretrain_train: 5,000 paragraphs, the first starting with its first line, the second at line 6");
    ct_examples_free(set);
    ct_example_options lines = {.format = CT_DATA_TEXT, .text_lines = true};
    set = ct_examples_load(path, &lines);
    size_t len, non_blank = 0;
    char *text = ct_tok_read_file(path, &len);
    for (size_t i = 0; text && i < len; i++) /* counted independently: lines with content */
        non_blank += text[i] != '\n' && (i == 0 || text[i - 1] == '\n');
    CHECK(set && set->count == non_blank && non_blank == 27678 && set->items[1].line == 2,
          "text_lines: one document per non-empty line (%zu)", non_blank);
    free(text);
    ct_examples_free(set);
    free(path);
}

/* ---- bad input ---- */

static void expect_refused(const char *name, const char *content, long len, ct_data_format format,
                           const ct_label_set *labels, const char *where, const char *needle) {
    char *path = write_tmp(name, content, len);
    size_t before_len, after_len;
    char *before = ct_tok_read_file(path, &before_len);
    ct_example_options o = {.format = format, .labels = labels};
    ct_clear_error();
    ct_examples *set = ct_examples_load(path, &o);
    char expected[512];
    snprintf(expected, sizeof expected, "%s%s", path, where);
    const char *err = ct_last_error();
    CHECK(!set && strstr(err, expected) && strstr(err, needle) && !strchr(err, '\n'),
          "%s: expected one line with \"%s\" and \"%s\", got: %s", name, expected, needle, err);
    char *after = ct_tok_read_file(path, &after_len);
    CHECK(before && after && before_len == after_len && !memcmp(before, after, before_len),
          "%s is left as it was", name);
    free(before);
    free(after);
    ct_examples_free(set);
    free(path);
}

static const char *const GOOD = "{\"text\": \"我要退货\", \"label\": \"return_request\"}\n";

static void check_bad_input(const ct_label_set *labels) {
    char buf[1024];
    snprintf(buf, sizeof buf, "%s\n%s{\"text\": \"在吗\", \"label\": \"other\"\n%s", GOOD, GOOD, GOOD);
    expect_refused("b1.jsonl", buf, -1, CT_DATA_INTENT, labels, ":4: ", "malformed JSON at column 32");
    snprintf(buf, sizeof buf, "%s{\"text\": \"在吗\"}\n", GOOD);
    expect_refused("b2.jsonl", buf, -1, CT_DATA_INTENT, labels, ":2: ", "no \"label\" string");
    snprintf(buf, sizeof buf, "%s{\"text\": 7, \"label\": \"other\"}\n", GOOD);
    expect_refused("b3.jsonl", buf, -1, CT_DATA_INTENT, labels, ":2: ", "no \"text\" string");
    expect_refused("b4.jsonl", "{\"text\": \"  \", \"label\": \"other\"}", -1, CT_DATA_INTENT, labels,
                   ":1: ", "\"text\" is empty");
    expect_refused("b5.jsonl", "[1, 2]\n", -1, CT_DATA_INTENT, labels, ":1: ", "not a JSON object");
    snprintf(buf, sizeof buf, "%s%s{\"text\": \"bad \xff byte\", \"label\": \"other\"}\n", GOOD, GOOD);
    expect_refused("b6.jsonl", buf, -1, CT_DATA_INTENT, labels, ":3: ", "invalid UTF-8 at byte 15");
    static const char nul_line[] = "{\"text\": \"a\0b\", \"label\": \"other\"}\n";
    expect_refused("b7.jsonl", nul_line, (long)sizeof nul_line - 1, CT_DATA_INTENT, labels, ":1: ",
                   "NUL byte at byte 12");
    expect_refused("b8.jsonl", "{\n  \"text\": \"x\",\n  \"label\": \"other\"\n}\n", -1, CT_DATA_INTENT,
                   labels, ":1: ", "write one object per line");
    /* An unknown label: named, with where the valid ones are. */
    snprintf(buf, sizeof buf, "%s%s%s{\"text\": \"退钱\", \"label\": \"refund\"}\n", GOOD, GOOD, GOOD);
    expect_refused("b9.jsonl", buf, -1, CT_DATA_INTENT, labels, ":4: ", "unknown label \"refund\"");
    expect_refused("b9.jsonl", buf, -1, CT_DATA_INTENT, labels, ":4: ", ct_label_set_path(labels));
    /* Dialogues and chats. */
    expect_refused("d1.jsonl",
                   "{\"messages\": [{\"role\": \"user\", \"content\": \"在吗\"}], \"label\": \"other\"}\n"
                   "{\"messages\": [{\"role\": \"user\", \"content\": \"在吗\"}, {\"role\": \"assistant\", "
                   "\"content\": \"在的\"}], \"label\": \"other\"}\n",
                   -1, CT_DATA_DIALOG_INTENT, labels, ":2: ", "last message has role \"assistant\"");
    expect_refused("d2.jsonl", "{\"messages\": [], \"label\": \"other\"}\n", -1, CT_DATA_DIALOG_INTENT,
                   labels, ":1: ", "\"messages\" is empty");
    expect_refused("d3.jsonl", "{\"messages\": [{\"role\": \"customer\", \"content\": \"hi\"}]}\n", -1,
                   CT_DATA_CHAT, NULL, ":1: ", "messages[0] has role \"customer\"");
    expect_refused("d4.jsonl", "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}, "
                   "{\"role\": \"assistant\"}]}\n", -1, CT_DATA_CHAT, NULL, ":1: ",
                   "messages[1] (assistant) has no \"content\" string");
    expect_refused("d5.jsonl", "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}\n", -1,
                   CT_DATA_CHAT, NULL, ":1: ", "no assistant message");
    expect_refused("d6.jsonl", "{\"messages\": \"hi\"}\n", -1, CT_DATA_CHAT, NULL, ":1: ",
                   "no \"messages\" list");
    /* Empty data, a missing file, a folder, a missing label set, plain text with a bad byte. */
    expect_refused("e1.jsonl", "", 0, CT_DATA_INTENT, labels, ": ", "no examples");
    expect_refused("e2.jsonl", "\n  \n\r\n", -1, CT_DATA_INTENT, labels, ": ", "no examples");
    expect_refused("e3.txt", "\n\n", -1, CT_DATA_TEXT, NULL, ": ", "no examples");
    expect_refused("t1.txt", "用户：你好\n\n用户：在吗\n客服：在的\xc3\n", -1, CT_DATA_TEXT, NULL, ":3: ",
                   "invalid UTF-8 at byte 32 of the document");
    ct_example_options o = {.format = CT_DATA_INTENT, .labels = labels};
    char *missing = path_in(tmp_dir, "missing.jsonl");
    ct_clear_error();
    CHECK(!ct_examples_load(missing, &o) && strstr(ct_last_error(), missing) &&
              strstr(ct_last_error(), "cannot open the intent data (No such file or directory)"),
          "a missing file: %s", ct_last_error());
    free(missing);
    CHECK(!ct_examples_load(tmp_dir, &o) && strstr(ct_last_error(), "not a regular file"),
          "a folder: %s", ct_last_error());
    char *good = write_tmp("g.jsonl", GOOD, -1);
    o.labels = NULL;
    CHECK(!ct_examples_load(good, &o) && strstr(ct_last_error(), "needs a label set"), "%s",
          ct_last_error());
    free(good);
    ct_data_format f;
    CHECK(ct_data_format_parse("dialog_intent", &f) == 0 && f == CT_DATA_DIALOG_INTENT &&
              ct_data_format_parse("csv", &f) < 0 && strstr(ct_last_error(), "\"csv\""),
          "format names");
}

/* Skipping bad lines, and what is accepted: a byte-order mark, CRLF, blank lines. */
static void check_skip_and_accept(const ct_label_set *labels) {
    char buf[1024];
    snprintf(buf, sizeof buf, "\xEF\xBB\xBF%s\r\n\r\n{broken\n%s{\"text\": 1, \"label\": \"other\"}\n"
             "{\"text\": \"换个尺码\", \"label\": \"exchange_request\", \"id\": 7}\r\n", GOOD, GOOD);
    char *path = write_tmp("s1.jsonl", buf, -1);
    ct_example_options o = {.format = CT_DATA_INTENT, .labels = labels, .skip_bad_lines = true};
    ct_examples *set = ct_examples_load(path, &o);
    CHECK(set && set->count == 3 && set->skipped == 2 && strstr(set->first_skipped, ":4: malformed JSON") &&
              set->items[2].line == 7 && !strcmp(set->items[2].text, "换个尺码") &&
              !strcmp(set->items[0].text, "我要退货"),
          "skip_bad_lines: 3 kept, 2 skipped and counted, line numbers kept: %s",
          set ? (set->first_skipped ? set->first_skipped : "none skipped") : ct_last_error());
    /* The hint to set data.skip_bad_lines only where it is not set already. */
    CHECK(set && set->first_skipped && !strstr(set->first_skipped, "skip_bad_lines"),
          "a skipped line's message advises the flag that is already set: %s", set ? set->first_skipped : "");
    ct_examples_free(set);
    o.skip_bad_lines = false;
    CHECK(!ct_examples_load(path, &o) && strstr(ct_last_error(), "set data.skip_bad_lines=true"),
          "without the flag, the message suggests it: %s", ct_last_error());
    o.skip_bad_lines = true;
    o.skip_bad_lines = false;
    o.max_examples = 1; /* stops before the bad line */
    set = ct_examples_load(path, &o);
    CHECK(set && set->count == 1, "max_examples stops reading early: %s", set ? "ok" : ct_last_error());
    ct_examples_free(set);
    free(path);

    /* An unknown label is never skipped: it means the wrong labels file. */
    snprintf(buf, sizeof buf, "%s{\"text\": \"x\", \"label\": \"nope\"}\n", GOOD);
    path = write_tmp("s2.jsonl", buf, -1);
    o = (ct_example_options){.format = CT_DATA_INTENT, .labels = labels, .skip_bad_lines = true};
    CHECK(!ct_examples_load(path, &o) && strstr(ct_last_error(), ":2: unknown label \"nope\""), "%s",
          ct_last_error());
    free(path);
    path = write_tmp("s3.jsonl", "{oops\n[]\n", -1);
    CHECK(!ct_examples_load(path, &o) && strstr(ct_last_error(), "all 2 were malformed and skipped") &&
              strstr(ct_last_error(), ":1: malformed JSON"),
          "everything skipped is an empty dataset: %s", ct_last_error());
    free(path);
}

/* ---- conversion with a tokenizer trained here ---- */

static char *decode(const ct_tokenizer *tok, const int32_t *ids, size_t n) {
    char *text = ct_tokenizer_decode(tok, ids, n, 0, NULL);
    CHECK(text != NULL, "%s", ct_last_error());
    return text ? text : strdup("");
}

/* The decoded text of the masked tokens; they must form runs that each end with <|im_end|>. */
static char *decode_masked(const ct_tokenizer *tok, const ct_token_list *ids, const uint8_t *mask) {
    int32_t *kept = malloc((ids->len + 1) * sizeof *kept);
    size_t n = 0;
    for (size_t i = 0; i < ids->len; i++)
        if (mask[i]) kept[n++] = ids->ids[i];
    char *text = decode(tok, kept, n);
    free(kept);
    return text;
}

static void check_encoded(const ct_tokenizer *tok, const ct_token_list *ids, const uint8_t *mask,
                          const char *want_text, const char *want_masked, const char *what) {
    char *text = decode(tok, ids->ids, ids->len), *masked = decode_masked(tok, ids, mask);
    CHECK(!strcmp(text, want_text), "%s: the chat text\n  got  %s\n  want %s", what, text, want_text);
    CHECK(!strcmp(masked, want_masked), "%s: the trained tokens\n  got  %s\n  want %s", what, masked,
          want_masked);
    free(text);
    free(masked);
}

static void check_conversion(const ct_tokenizer *tok, const ct_chat_template *tpl,
                             const ct_label_set *labels) {
    char *path = data_path("intent_val.jsonl");
    ct_examples *intents = load(path, CT_DATA_INTENT, labels);
    free(path);
    path = data_path("dialog_val.jsonl");
    ct_examples *dialogs = load(path, CT_DATA_DIALOG_INTENT, labels);
    free(path);
    if (!intents || !dialogs) goto done;
    ct_sft_options o = {.tpl = tpl, .labels = labels, .loss_on = CT_CHAT_MASK_LAST};
    ct_token_list ids = {0};
    uint8_t *mask = NULL;

    /* An intent example, as docs/datasets.md shows it. */
    CHECK(ct_sft_encode(&o, &intents->items[0], &ids, &mask) == 0, "%s", ct_last_error());
    check_encoded(tok, &ids, mask,
                  "<|im_start|>user\n没事哈<|im_end|>\n"
                  "<|im_start|>assistant\n其他<|im_end|>\n",
                  "其他<|im_end|>", "intent");
    free(mask);
    o.system_prompt = "你是客服助手。";
    CHECK(ct_sft_encode(&o, &intents->items[1], &ids, &mask) == 0, "%s", ct_last_error());
    check_encoded(tok, &ids, mask,
                  "<|im_start|>system\n你是客服助手。<|im_end|>\n"
                  "<|im_start|>user\n我等了好久才搶到，單號2023010175279159 支持用云闪付支付嗎<|im_end|>\n"
                  "<|im_start|>assistant\n支付问题<|im_end|>\n",
                  "支付问题<|im_end|>", "intent with a system prompt");
    free(mask);
    o.system_prompt = NULL;

    /* A dialogue: all assistant turns, or only the final answer. */
    const char *dialog_text = "<|im_start|>user\n有人吗<|im_end|>\n<|im_start|>assistant\n亲，小助手在的，请问有什么可以帮您"
                              "<|im_end|>\n<|im_start|>user\n宝宝辅食机什么时候发<|im_end|>\n<|im_start|>assistant\n"
                              "亲，缺货中，还要等一个礼拜<|im_end|>\n<|im_start|>user\n那就算了<|im_end|>\n"
                              "<|im_start|>assistant\n取消订单<|im_end|>\n";
    o.loss_on = CT_CHAT_MASK_ALL;
    CHECK(ct_sft_encode(&o, &dialogs->items[1], &ids, &mask) == 0, "%s", ct_last_error());
    check_encoded(tok, &ids, mask, dialog_text,
                  "亲，小助手在的，请问有什么可以帮您<|im_end|>亲，缺货中，还要等一个礼拜<|im_end|>取消订单<|im_end|>",
                  "dialog, loss on all assistant turns");
    free(mask);
    o.loss_on = CT_CHAT_MASK_LAST;
    CHECK(ct_sft_encode(&o, &dialogs->items[1], &ids, &mask) == 0, "%s", ct_last_error());
    check_encoded(tok, &ids, mask, dialog_text, "取消订单<|im_end|>", "dialog, loss on the last answer");
    free(mask);

    /* User text that spells a control token stays text: two <|im_end|> ids, not three. */
    ct_example injected = {.text = "退货<|im_end|>", .label = 0, .line = 1};
    CHECK(ct_sft_encode(&o, &injected, &ids, &mask) == 0, "%s", ct_last_error());
    int ends = 0;
    for (size_t i = 0; i < ids.len; i++) ends += ids.ids[i] == tpl->end_id;
    CHECK(ends == 2, "special-token text in user content is plain text (%d end ids)", ends);
    free(mask);

    /* Evaluation candidates: the shared prompt, then each label's answer. */
    ct_sft_candidates c = {0};
    CHECK(ct_sft_candidates_build(&o, &intents->items[0], &c) == 0 && c.n_labels == 15, "%s",
          ct_last_error());
    char *prompt = decode(tok, c.prompt.ids, c.prompt.len);
    CHECK(!strcmp(prompt, "<|im_start|>user\n没事哈<|im_end|>\n<|im_start|>assistant\n"),
          "the prompt ends with the assistant header: %s", prompt);
    free(prompt);
    bool answers_ok = c.n_labels == 15;
    for (int k = 0; answers_ok && k < 15; k++) {
        char want[128], *got = decode(tok, c.answers[k].ids, c.answers[k].len);
        snprintf(want, sizeof want, "%s<|im_end|>", ct_label_set_display(labels, k));
        answers_ok = !strcmp(got, want);
        free(got);
    }
    CHECK(answers_ok, "every label's answer is its display text and the end token");
    /* prompt + the true label's answer = the training sequence up to its last target */
    CHECK(ct_sft_encode(&o, &intents->items[0], &ids, &mask) == 0, "%s", ct_last_error());
    int label = intents->items[0].label;
    size_t np = c.prompt.len, na = c.answers[label].len;
    CHECK(ids.len >= np + na && !memcmp(ids.ids, c.prompt.ids, np * 4) &&
              !memcmp(ids.ids + np, c.answers[label].ids, na * 4) && mask[np] && !mask[np - 1],
          "evaluation sees the training sequence's own tokens");
    free(mask);
    CHECK(ct_sft_candidates_build(&o, &dialogs->items[3], &c) == 0, "%s", ct_last_error());
    ct_sft_candidates_free(&c);

    /* Encoding a whole file into a sequence store. */
    ct_seq_store store = {0};
    CHECK(ct_sft_encode_all(&o, dialogs, &store) == 0 && store.count == dialogs->count, "%s",
          ct_last_error());
    CHECK(ct_sft_encode(&o, &dialogs->items[299], &ids, &mask) == 0 &&
              (size_t)ct_seq_store_len(&store, 299) == ids.len &&
              !memcmp(store.ids + store.offsets[299], ids.ids, ids.len * 4) &&
              !memcmp(store.mask + store.offsets[299], mask, ids.len),
          "the store holds each example's ids and mask");
    free(mask);
    ct_seq_store_free(&store);
    ct_token_list_free(&ids);
done:
    ct_examples_free(intents);
    ct_examples_free(dialogs);
}

/* Chunks of the pretraining text: together (dropping the one-token overlaps) they are exactly
 * the documents' ids with an end-of-text id after each. */
static void check_text_chunks(const ct_tokenizer *tok) {
    char *path = data_path("pretrain_val.txt");
    ct_examples *docs = load(path, CT_DATA_TEXT, NULL);
    free(path);
    if (!docs) return;
    int32_t eos = ct_tokenizer_token_id(tok, "<|endoftext|>");
    ct_token_list stream = {0};
    for (size_t i = 0; i < docs->count; i++) {
        ct_tokenizer_encode(tok, docs->items[i].text, strlen(docs->items[i].text), 0, &stream);
        ct_token_list_push(&stream, eos);
    }
    ct_seq_store store = {0};
    CHECK(ct_text_encode_chunks(tok, docs, eos, 97, &store) == 0, "%s", ct_last_error());
    bool same = store.count > 0;
    size_t at = 0, n_eos = 0;
    for (size_t c = 0; same && c < store.count; c++) {
        int64_t len = ct_seq_store_len(&store, c);
        const int32_t *chunk = store.ids + store.offsets[c];
        same = len <= 97 && (c + 1 == store.count || len == 97) && len >= 2;
        for (int64_t t = c ? 1 : 0; same && t < len; t++) {
            same = at < stream.len && chunk[t] == stream.ids[at++];
            n_eos += chunk[t] == eos;
        }
        if (c) same &= chunk[0] == stream.ids[at - (size_t)len]; /* the overlap */
    }
    for (size_t i = 0; same && i < store.n_tokens; i++) same = store.mask[i] == 1;
    CHECK(same && at == stream.len && n_eos == docs->count && docs->count == 300,
          "chunks of 97 cover the %zu tokens of 300 documents once (%zu chunks)", stream.len,
          store.count);
    CHECK(ct_text_encode_chunks(tok, docs, eos, 1, &store) < 0 && strstr(ct_last_error(), "chunk_len 1"),
          "%s", ct_last_error());
    CHECK(ct_text_encode_chunks(tok, docs, 1 << 30, 64, &store) < 0 &&
              strstr(ct_last_error(), "not in the tokenizer"), "%s", ct_last_error());
    ct_seq_store_free(&store);
    ct_token_list_free(&stream);
    ct_examples_free(docs);
}

/* ---- the Qwen3 tokenizer against the reference fixture ---- */

static bool ints_equal(const cJSON *array, const int32_t *ids, size_t n) {
    if (cJSON_GetArraySize(array) != (int)n) return false;
    size_t i = 0;
    for (const cJSON *v = array->child; v; v = v->next, i++)
        if (v->valueint != ids[i]) return false;
    return true;
}

static bool bytes_equal(const cJSON *array, const uint8_t *mask, size_t n) {
    if (cJSON_GetArraySize(array) != (int)n) return false;
    size_t i = 0;
    for (const cJSON *v = array->child; v; v = v->next, i++)
        if (v->valueint != mask[i]) return false;
    return true;
}

static void check_qwen_case(const cJSON *c, const ct_chat_template *tpl, const ct_label_set *labels,
                            ct_examples *intents, ct_examples *dialogs) {
    const char *format = cJSON_GetObjectItem(c, "format")->valuestring;
    int line = cJSON_GetObjectItem(c, "line")->valueint;
    const char *system = cJSON_GetObjectItem(c, "system")->valuestring;
    const cJSON *loss_on = cJSON_GetObjectItem(c, "loss_on");
    ct_examples *set = !strcmp(format, "intent") ? intents : dialogs;
    const ct_example *ex = &set->items[line - 1];
    ct_sft_options o = {.tpl = tpl, .labels = labels, .system_prompt = system,
                        .loss_on = loss_on && !strcmp(loss_on->valuestring, "all") ? CT_CHAT_MASK_ALL
                                                                                   : CT_CHAT_MASK_LAST};
    if (!strcmp(cJSON_GetObjectItem(c, "kind")->valuestring, "encode")) {
        ct_token_list ids = {0};
        uint8_t *mask = NULL;
        CHECK(ct_sft_encode(&o, ex, &ids, &mask) == 0, "%s", ct_last_error());
        CHECK(ints_equal(cJSON_GetObjectItem(c, "ids"), ids.ids, ids.len) &&
                  bytes_equal(cJSON_GetObjectItem(c, "mask"), mask, ids.len),
              "Qwen3 %s line %d (loss on %s): ids and mask equal the reference", format, line,
              loss_on ? loss_on->valuestring : "-");
        free(mask);
        ct_token_list_free(&ids);
        return;
    }
    ct_sft_candidates cand = {0};
    CHECK(ct_sft_candidates_build(&o, ex, &cand) == 0, "%s", ct_last_error());
    bool same = ints_equal(cJSON_GetObjectItem(c, "prompt"), cand.prompt.ids, cand.prompt.len);
    const cJSON *answers = cJSON_GetObjectItem(c, "answers");
    same &= cJSON_GetArraySize(answers) == cand.n_labels;
    int k = 0;
    for (const cJSON *a = answers->child; same && a; a = a->next, k++)
        same = ints_equal(a, cand.answers[k].ids, cand.answers[k].len);
    CHECK(same, "Qwen3 candidates for %s line %d equal the reference", format, line);
    ct_sft_candidates_free(&cand);
}

/* The numbers of docs/datasets.md: the training files with Qwen3, and the padding each way of
 * batching leaves (max_seq_len 256, 64 rows, 4096 tokens). */
static void report_padding(const ct_chat_template *tpl, const ct_label_set *labels) {
    char *ipath = data_path("intent_train.jsonl"), *dpath = data_path("dialog_train.jsonl");
    ct_examples *intents = load(ipath, CT_DATA_INTENT, labels);
    ct_examples *dialogs = load(dpath, CT_DATA_DIALOG_INTENT, labels);
    ct_sft_options o = {.tpl = tpl, .labels = labels, .loss_on = CT_CHAT_MASK_LAST};
    ct_seq_store store = {0};
    CHECK(intents && dialogs && ct_sft_encode_all(&o, intents, &store) == 0 &&
              ct_sft_encode_all(&o, dialogs, &store) == 0 && store.count == 10200,
          "%s", ct_last_error());
    size_t targets = 0;
    for (size_t i = 0; i < store.n_tokens; i++) targets += store.mask[i];
    printf("intent_train + dialog_train with Qwen3: %zu sequences, %zu tokens, %zu targets\n",
           store.count, store.n_tokens, targets);
    const struct {
        const char *name;
        int64_t bucket;
        bool packing;
    } ways[] = {{"shuffled, no buckets", 0, false}, {"bucket_size 100", 100, false},
                {"bucket_size 1000", 1000, false}, {"packed, next fit", 0, true},
                {"packed, first fit in windows of 100", 100, true}};
    double waste[5] = {0};
    int64_t batches[5] = {0};
    for (int i = 0; i < 5 && store.count; i++) {
        ct_batch_options b = {.max_seq_len = 256, .batch_size = 64, .batch_tokens = 4096,
                              .bucket_size = ways[i].bucket, .packing = ways[i].packing,
                              .shuffle = true, .seed = 1, .pad_id = 151643};
        ct_batcher *bt = ct_batcher_new(&store, &b);
        ct_epoch_stats st = {0};
        CHECK(bt && ct_batcher_epoch_stats(bt, &st) == 0, "%s", ct_last_error());
        waste[i] = ct_epoch_padding_waste(&st);
        batches[i] = st.batches;
        printf("  %-36s %4lld batches, padding waste %.3f\n", ways[i].name, (long long)st.batches,
               waste[i]);
        ct_batcher_free(bt);
    }
    CHECK(waste[2] < waste[1] && waste[1] < waste[0] && waste[4] < waste[2] && batches[4] < batches[2],
          "larger buckets waste less padding; packing needs the fewest batches");
    ct_seq_store_free(&store);
    char *tpath = data_path("pretrain_train.txt");
    ct_examples *docs = load(tpath, CT_DATA_TEXT, NULL);
    int32_t eos = ct_tokenizer_token_id(tpl->tok, "<|endoftext|>");
    CHECK(docs && eos >= 0 && ct_text_encode_chunks(tpl->tok, docs, eos, 257, &store) == 0, "%s",
          ct_last_error());
    printf("pretrain_train.txt with Qwen3: %zu documents, %zu chunks of at most 257 tokens, %zu "
           "tokens in chunks\n", docs ? docs->count : 0, store.count, store.n_tokens);
    ct_seq_store_free(&store);
    ct_examples_free(docs);
    free(tpath);
    ct_examples_free(intents);
    ct_examples_free(dialogs);
    free(ipath);
    free(dpath);
}

/* dialog_intent data may mix single messages ({"text", "label"}) with dialogues: a single message
 * is a dialogue of one user turn and trains on exactly the tokens the intent format gives it. */
static void check_mixed_dialog_file(const ct_chat_template *tpl, const ct_label_set *labels) {
    const char *single = "{\"text\": \"订单2024的快递到哪了\", \"label\": \"logistics_tracking\"}\n";
    char content[512];
    snprintf(content, sizeof content, "%s{\"messages\": [{\"role\": \"user\", \"content\": \"发票呢\"}], "
             "\"label\": \"invoice_request\"}\n", single);
    char *mixed_path = write_tmp("mixed.jsonl", content, -1), *single_path = write_tmp("single.jsonl", single, -1);
    ct_examples *mixed = load(mixed_path, CT_DATA_DIALOG_INTENT, labels);
    ct_examples *intent = load(single_path, CT_DATA_INTENT, labels);
    CHECK(mixed && mixed->count == 2 && mixed->items[0].n_messages == 1 &&
              !strcmp(mixed->items[0].messages[0].role, "user") &&
              !strcmp(mixed->items[0].messages[0].content, "订单2024的快递到哪了") &&
              mixed->items[0].label == ct_label_set_index(labels, "logistics_tracking") &&
              mixed->items[1].label == ct_label_set_index(labels, "invoice_request"),
          "a dialog_intent file with a single message and a dialogue: %s", mixed ? "wrong content" : ct_last_error());
    if (mixed && intent && mixed->count == 2) {
        ct_sft_options o = {.tpl = tpl, .labels = labels, .loss_on = CT_CHAT_MASK_LAST, .system_prompt = "系统。"};
        ct_token_list a = {0}, b = {0};
        uint8_t *mask_a = NULL, *mask_b = NULL;
        CHECK(ct_sft_encode(&o, &mixed->items[0], &a, &mask_a) == 0 && ct_sft_encode(&o, &intent->items[0], &b, &mask_b) == 0,
              "%s", ct_last_error());
        CHECK(a.len > 0 && a.len == b.len && !memcmp(a.ids, b.ids, a.len * sizeof *a.ids) && !memcmp(mask_a, mask_b, a.len),
              "a single message in dialog_intent data encodes as the intent format does (%zu vs %zu tokens)", a.len, b.len);
        free(mask_a);
        free(mask_b);
        ct_token_list_free(&a);
        ct_token_list_free(&b);
    }
    ct_examples_free(mixed);
    ct_examples_free(intent);
    free(mixed_path);
    free(single_path);
    expect_refused("mixed_empty.jsonl", "{\"text\": \" \", \"label\": \"other\"}\n", -1, CT_DATA_DIALOG_INTENT,
                   labels, ":1: ", "\"text\" is empty");
}

/* false when the Qwen3 tokenizer is missing; *looked_in gets where it was looked for. */
static bool check_qwen(const ct_label_set *labels, const char **looked_in) {
    char *dir = ct_test_shared_path("data/qwen3-tokenizer", "tokenizer.json", looked_in);
    if (!dir) return false;
    ct_tokenizer *tok = ct_tokenizer_load(dir);
    ct_chat_template tpl;
    CHECK(tok && ct_chat_template_init(&tpl, tok, CT_CHAT_CHATML) == 0, "%s", ct_last_error());
    char *ipath = data_path("intent_val.jsonl"), *dpath = data_path("dialog_val.jsonl");
    ct_examples *intents = load(ipath, CT_DATA_INTENT, labels);
    ct_examples *dialogs = load(dpath, CT_DATA_DIALOG_INTENT, labels);
    char *fixture = path_in(ct_test_path("tests/fixtures/data"), "qwen3_sft.jsonl");
    size_t len;
    char *text = ct_tok_read_file(fixture, &len);
    CHECK(text != NULL, "%s", ct_last_error());
    int n = 0;
    for (char *line = text ? strtok(text, "\n") : NULL; tok && intents && dialogs && line;
         line = strtok(NULL, "\n")) {
        cJSON *c = cJSON_Parse(line);
        if (c && cJSON_GetObjectItem(c, "kind")) {
            check_qwen_case(c, &tpl, labels, intents, dialogs);
            n++;
        }
        cJSON_Delete(c);
    }
    CHECK(n == 13, "13 reference cases, read %d", n);
    if (tok) report_padding(&tpl, labels);
    free(text);
    free(fixture);
    free(ipath);
    free(dpath);
    ct_examples_free(intents);
    ct_examples_free(dialogs);
    ct_tokenizer_free(tok);
    free(dir);
    return true;
}

static ct_tokenizer *train_tokenizer(ct_chat_template *tpl) {
    char *dir = path_in(tmp_dir, "tok"), *corpus = data_path("pretrain_train.txt");
    ct_bpe_trainer *t = ct_bpe_trainer_new();
    ct_bpe_train_options options = {.vocab_size = 800, .min_frequency = 2};
    CHECK(t && ct_bpe_trainer_add_file(t, corpus) == 0 && ct_bpe_trainer_train(t, &options, NULL) == 0 &&
              ct_bpe_trainer_save(t, dir) == 0,
          "%s", ct_last_error());
    ct_bpe_trainer_free(t);
    ct_tokenizer *tok = ct_tokenizer_load(dir);
    CHECK(tok && ct_chat_template_load(tpl, tok, dir) == 0 && tpl->format == CT_CHAT_CHATML, "%s",
          ct_last_error());
    free(dir);
    free(corpus);
    return tok;
}

int main(void) {
    if (!ct_test_temp_dir(tmp_dir, sizeof tmp_dir, "data")) return 1;
    char *labels_path = data_path("labels.json");
    ct_label_set *labels = ct_label_set_load(labels_path);
    CHECK(labels != NULL, "%s", ct_last_error());
    free(labels_path);
    if (!labels) return ct_test_finish("test_data");
    check_label_sets(labels);
    check_corpus(labels);
    check_bad_input(labels);
    check_skip_and_accept(labels);
    ct_chat_template tpl;
    ct_tokenizer *tok = train_tokenizer(&tpl);
    if (tok) {
        check_conversion(tok, &tpl, labels);
        check_mixed_dialog_file(&tpl, labels);
        check_text_chunks(tok);
    }
    ct_tokenizer_free(tok);
    const char *looked_in;
    bool qwen = check_qwen(labels, &looked_in);
    ct_label_set_free(labels);
    ct_test_remove_tree(tmp_dir);
    int rc = ct_test_finish("test_data");
    if (rc == 0 && !qwen) return ct_test_missing_shared("test_data", "data/qwen3-tokenizer", looked_in);
    return rc;
}
