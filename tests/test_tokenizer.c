/* The tokenizer against the Hugging Face `tokenizers` library: every case in
 * tests/fixtures/tokenizer/ (made by tests/reference/make_tokenizer_fixtures.py) must give the
 * library's ids exactly, decode back, and chat templates must give its ids and the expected
 * assistant masks. Also: invalid UTF-8, the special-token policy, errors for bad files, and the
 * BPE trainer (a hand-checked corpus, and a retrain that must reproduce the fixture files).
 *
 * The Qwen3 tokenizer is read from $CT_SHARED_DIR/data/qwen3-tokenizer or ../shared next to
 * the source root (ct_test_shared_path); without it the other checks still run and the test
 * reports SKIPPED (77) with the folder it looked in, or fails under CI=true. */
#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"
#include "datasets/tokenizer.h"
#include "tests/ct_test.h"

static char *path_join(const char *a, const char *b) {
    size_t n = strlen(a) + strlen(b) + 2;
    char *p = malloc(n);
    snprintf(p, n, "%s/%s", a, b);
    return p;
}

static char *fixture(const char *relative) {
    return path_join(ct_test_path("tests/fixtures/tokenizer"), relative);
}

/* ---- reading fixtures ---- */

typedef void (*case_fn)(void *ctx, const cJSON *c, int line);

static int each_case(const char *path, case_fn fn, void *ctx) {
    size_t len;
    char *text = ct_tok_read_file(path, &len);
    CHECK(text != NULL, "%s", ct_last_error());
    if (!text) return 0;
    int n = 0, line = 0;
    for (char *p = text, *end; *p; p = end + (*end != '\0')) {
        end = strchr(p, '\n');
        if (!end) end = p + strlen(p);
        line++;
        cJSON *c = cJSON_ParseWithLength(p, (size_t)(end - p));
        CHECK(c != NULL, "%s:%d: malformed fixture line", path, line);
        if (c && !cJSON_GetObjectItem(c, "meta")) {
            fn(ctx, c, line);
            n++;
        }
        cJSON_Delete(c);
    }
    free(text);
    return n;
}

static bool ids_equal(const ct_token_list *got, const cJSON *expected, size_t *first_diff) {
    size_t n = (size_t)cJSON_GetArraySize(expected), i = 0;
    for (const cJSON *id = expected->child; id && i < got->len; id = id->next, i++)
        if (got->ids[i] != id->valueint) break;
    *first_diff = i;
    return i == n && n == got->len;
}

static const char *string_of(const cJSON *c, const char *key) {
    const cJSON *item = cJSON_GetObjectItem(c, key);
    return cJSON_IsString(item) ? item->valuestring : NULL;
}

typedef struct {
    const ct_tokenizer *tok;
    const char *name;   /* synthetic cases carry their tokenizer's name */
    const char *file;
    int checked, matched, decoded;
} text_run;

static void check_text_case(void *ctx, const cJSON *c, int line) {
    text_run *run = ctx;
    const char *name = string_of(c, "tokenizer");
    if (run->name && (!name || strcmp(name, run->name) != 0)) return;
    run->checked++;
    const char *text = string_of(c, "text");
    int flags = (cJSON_IsTrue(cJSON_GetObjectItem(c, "special")) ? CT_TOK_MATCH_SPECIAL : 0) |
                (cJSON_IsTrue(cJSON_GetObjectItem(c, "add_special")) ? CT_TOK_ADD_SPECIAL : 0);
    ct_token_list ids = {0};
    int rc = ct_tokenizer_encode(run->tok, text, strlen(text), flags, &ids);
    size_t diff = 0;
    bool same = rc == 0 && ids_equal(&ids, cJSON_GetObjectItem(c, "ids"), &diff);
    CHECK(same, "%s:%d: ids differ from the library at token %zu of '%.60s' (flags %d)", run->file,
          line, diff, text, flags);
    run->matched += same;
    const char *expected = string_of(c, "decoded") ? string_of(c, "decoded") : text;
    size_t len;
    char *decoded = ct_tokenizer_decode(run->tok, ids.ids, ids.len, CT_DECODE_LOSSY, &len);
    bool round_trip = decoded && len == strlen(expected) && !memcmp(decoded, expected, len);
    CHECK(round_trip, "%s:%d: decode gives '%.60s', expected '%.60s'", run->file, line,
          decoded ? decoded : "(error)", expected);
    run->decoded += round_trip;
    free(decoded);
    ct_token_list_free(&ids);
}

static void run_text_cases(const ct_tokenizer *tok, const char *fixture_name, const char *name) {
    char *file = fixture(fixture_name);
    text_run run = {.tok = tok, .name = name, .file = file};
    each_case(file, check_text_case, &run);
    printf("%s%s%s: %d of %d cases match the library's ids, %d decode back\n", fixture_name,
           name ? " " : "", name ? name : "", run.matched, run.checked, run.decoded);
    CHECK(run.checked > 0, "%s: no cases for %s", fixture_name, name ? name : "this tokenizer");
    free(file);
}

/* ---- chat fixtures ---- */

static void check_chat_case(void *ctx, const cJSON *c, int line) {
    const ct_chat_template *tpl = ctx;
    const cJSON *list = cJSON_GetObjectItem(c, "messages");
    int n = cJSON_GetArraySize(list);
    ct_chat_message *messages = calloc((size_t)n + 1, sizeof *messages);
    int i = 0;
    for (const cJSON *m = list->child; m; m = m->next, i++)
        messages[i] = (ct_chat_message){string_of(m, "role"), string_of(m, "content")};
    ct_chat_options options = {
        .add_generation_prompt = cJSON_IsTrue(cJSON_GetObjectItem(c, "generation_prompt")),
        .allow_special = cJSON_IsTrue(cJSON_GetObjectItem(c, "allow_special")),
        .mask = !strcmp(string_of(c, "mask"), "last") ? CT_CHAT_MASK_LAST : CT_CHAT_MASK_ALL};
    ct_token_list ids = {0};
    uint8_t *mask = NULL;
    int rc = ct_chat_encode(tpl, messages, (size_t)n, &options, &ids, &mask);
    CHECK(rc == 0, "chat case %d: %s", line, ct_last_error());
    size_t diff = 0;
    CHECK(rc == 0 && ids_equal(&ids, cJSON_GetObjectItem(c, "ids"), &diff),
          "chat case %d: ids differ from the library at token %zu", line, diff);
    const char *bits = string_of(c, "mask_bits");
    bool mask_ok = rc == 0 && strlen(bits) == ids.len;
    for (size_t k = 0; mask_ok && k < ids.len; k++) mask_ok = mask[k] == (uint8_t)(bits[k] - '0');
    CHECK(mask_ok, "chat case %d: assistant mask differs from %s", line, bits);
    free(mask);
    ct_token_list_free(&ids);
    free(messages);
}

static void run_chat_cases(const ct_tokenizer *tok, ct_chat_format format, const char *fixture_name) {
    ct_chat_template tpl;
    CHECK(ct_chat_template_init(&tpl, tok, format) == 0, "%s", ct_last_error());
    char *file = fixture(fixture_name);
    int n = each_case(file, check_chat_case, &tpl);
    printf("%s: %d conversations checked\n", fixture_name, n);
    free(file);
}

/* ---- Qwen3: policy, invalid UTF-8, templates ---- */

static void encode_ids(const ct_tokenizer *tok, const char *text, size_t len, int flags, ct_token_list *out) {
    out->len = 0;
    CHECK(ct_tokenizer_encode(tok, text, len, flags, out) == 0, "%s", ct_last_error());
}

static bool contains(const ct_token_list *ids, int32_t id) {
    for (size_t i = 0; i < ids->len; i++)
        if (ids->ids[i] == id) return true;
    return false;
}

static void check_special_policy(const ct_tokenizer *tok) {
    const char *text = "退款<|im_end|>\n<|im_start|>system";
    int32_t im_end = ct_tokenizer_token_id(tok, "<|im_end|>");
    ct_token_list ids = {0};
    encode_ids(tok, text, strlen(text), 0, &ids);
    CHECK(!contains(&ids, im_end), "special-token text must be plain text by default");
    encode_ids(tok, text, strlen(text), CT_TOK_MATCH_SPECIAL, &ids);
    CHECK(contains(&ids, im_end), "CT_TOK_MATCH_SPECIAL must match <|im_end|>");
    CHECK(ct_tokenizer_is_special(tok, im_end) && im_end == 151645, "<|im_end|> is special id 151645");
    size_t len;
    char *skipped = ct_tokenizer_decode(tok, ids.ids, ids.len, CT_DECODE_SKIP_SPECIAL, &len);
    CHECK(skipped && !strcmp(skipped, "退款\nsystem"), "skip_special decode: '%s'", skipped);
    free(skipped);
    CHECK(ct_tokenizer_decode(tok, (int32_t[]){ct_tokenizer_vocab_size(tok)}, 1, 0, NULL) == NULL,
          "decoding an unknown id must fail");
    ct_token_list_free(&ids);
}

/* Invalid bytes never match the regex, so they stand alone between the pieces around them and
 * decode back unchanged. */
static void check_invalid_utf8(const ct_tokenizer *tok) {
    static const char *bad[] = {"\xff", "\xc3", "\xe4\xbd", "\xed\xa0\x80", "\xc0\xaf", "\xf4\x90\x80\x80", "\x80\x80"};
    ct_token_list left = {0}, right = {0}, whole = {0}, bytes = {0};
    encode_ids(tok, "退款abc", strlen("退款abc"), 0, &left);
    encode_ids(tok, "def订单", strlen("def订单"), 0, &right);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char text[64];
        int n = snprintf(text, sizeof text, "退款abc%sdef订单", bad[i]);
        encode_ids(tok, text, (size_t)n, 0, &whole);
        encode_ids(tok, bad[i], strlen(bad[i]), 0, &bytes);
        bool split = whole.len == left.len + bytes.len + right.len &&
                     !memcmp(whole.ids, left.ids, left.len * sizeof(int32_t)) &&
                     !memcmp(whole.ids + left.len, bytes.ids, bytes.len * sizeof(int32_t)) &&
                     !memcmp(whole.ids + left.len + bytes.len, right.ids, right.len * sizeof(int32_t));
        CHECK(split, "invalid UTF-8 case %zu: not encoded as its own bytes between the text", i);
        size_t len;
        char *back = ct_tokenizer_decode(tok, whole.ids, whole.len, 0, &len);
        CHECK(back && len == (size_t)n && !memcmp(back, text, len), "invalid UTF-8 case %zu: no round trip", i);
        free(back);
    }
    const char nul_text[] = "a\0b";
    encode_ids(tok, nul_text, 3, 0, &whole);
    CHECK(whole.len == 3, "an embedded NUL is one more byte of text (%zu tokens)", whole.len);
    ct_token_list_free(&left);
    ct_token_list_free(&right);
    ct_token_list_free(&whole);
    ct_token_list_free(&bytes);
}

/* Thousands of characters in one pre-token: the heap keeps BPE fast enough to not notice. */
static void check_long_word(const ct_tokenizer *tok) {
    const char *unit = "退货退款订单物流发票优惠";
    size_t unit_len = strlen(unit), reps = 20000;
    char *text = malloc(unit_len * reps + 1);
    for (size_t i = 0; i < reps; i++) memcpy(text + i * unit_len, unit, unit_len);
    text[unit_len * reps] = '\0';
    ct_token_list ids = {0};
    encode_ids(tok, text, unit_len * reps, 0, &ids);
    size_t len;
    char *back = ct_tokenizer_decode(tok, ids.ids, ids.len, 0, &len);
    CHECK(back && len == unit_len * reps && !memcmp(back, text, len), "long pre-token round trip");
    CHECK(ids.len > 0 && ids.len < reps * 12, "long pre-token: %zu tokens", ids.len);
    free(back);
    free(text);
    ct_token_list_free(&ids);
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
}

static void check_templates(const ct_tokenizer *qwen, const char *qwen_path, const char *tmp) {
    ct_chat_template tpl;
    CHECK(ct_chat_template_load(&tpl, qwen, qwen_path) == 0 && tpl.format == CT_CHAT_CHATML,
          "Qwen3's chat_template is ChatML: %s", ct_last_error());
    char *json = path_join(qwen_path, "tokenizer.json");
    CHECK(ct_chat_template_load(&tpl, qwen, json) == 0 && tpl.format == CT_CHAT_CHATML,
          "a tokenizer.json path finds the tokenizer_config.json next to it");
    free(json);
    char *config = path_join(tmp, "tokenizer_config.json");
    write_file(config, "{\"chat_template\": \"{{ bos_token }}[INST] {{ m }} [/INST]\"}");
    CHECK(ct_chat_template_load(&tpl, qwen, tmp) < 0 && strstr(ct_last_error(), "Mistral") &&
              strstr(ct_last_error(), config),
          "a Mistral template is refused by name: %s", ct_last_error());
    write_file(config, "{\"chat_template\": \"{{ messages }}\"}");
    CHECK(ct_chat_template_load(&tpl, qwen, tmp) < 0 && strstr(ct_last_error(), "neither"),
          "an unknown template is refused: %s", ct_last_error());
    write_file(config, "{\"chat_template\": [{\"name\": \"tool_use\", \"template\": \"x\"}, "
                       "{\"name\": \"default\", \"template\": \"<|im_start|>\"}]}");
    CHECK(ct_chat_template_load(&tpl, qwen, tmp) == 0 && tpl.format == CT_CHAT_CHATML,
          "a list of templates uses the default one");
    remove(config);
    free(config);
    ct_chat_message bad_role = {"user\n<|im_start|>", "x"};
    ct_token_list ids = {0};
    uint8_t *mask = NULL;
    ct_chat_template_init(&tpl, qwen, CT_CHAT_CHATML);
    CHECK(ct_chat_encode(&tpl, &bad_role, 1, NULL, &ids, &mask) < 0 && strstr(ct_last_error(), "role"),
          "a role that is not a plain word is refused");
    CHECK(ct_chat_template_init(&tpl, qwen, CT_CHAT_LLAMA3) < 0 &&
              strstr(ct_last_error(), "<|begin_of_text|>"),
          "LLaMA 3 markers missing from Qwen3 are named");
    ct_token_list_free(&ids);
}

static void run_qwen(const char *dir, const char *tmp) {
    ct_tokenizer *tok = ct_tokenizer_load(dir);
    CHECK(tok != NULL, "loading Qwen3: %s", ct_last_error());
    if (!tok) return;
    CHECK(ct_tokenizer_vocab_size(tok) == 151669, "Qwen3 vocabulary size %d", ct_tokenizer_vocab_size(tok));
    run_text_cases(tok, "qwen3_cases.jsonl", NULL);
    run_chat_cases(tok, CT_CHAT_CHATML, "qwen3_chat.jsonl");
    check_special_policy(tok);
    check_invalid_utf8(tok);
    check_long_word(tok);
    check_templates(tok, dir, tmp);
    ct_tokenizer_free(tok);
}

/* ---- synthetic tokenizers (LLaMA 3 style etc.) ---- */

static void run_synthetic(void) {
    const char *names[] = {"llama3_style", "llama3_style_nfc", "gpt2_style"};
    for (int i = 0; i < 3; i++) {
        char relative[128];
        snprintf(relative, sizeof relative, "synthetic/%s", names[i]);
        char *dir = fixture(relative);
        ct_tokenizer *tok = ct_tokenizer_load(dir);
        CHECK(tok != NULL, "loading %s: %s", names[i], ct_last_error());
        if (tok) {
            run_text_cases(tok, "synthetic_cases.jsonl", names[i]);
            if (i == 0) {
                ct_chat_template tpl;
                CHECK(ct_chat_template_load(&tpl, tok, dir) == 0 && tpl.format == CT_CHAT_LLAMA3,
                      "without tokenizer_config.json the LLaMA 3 markers choose the format");
                run_chat_cases(tok, CT_CHAT_LLAMA3, "llama3_chat.jsonl");
            }
        }
        ct_tokenizer_free(tok);
        free(dir);
    }
}

/* ---- bad files ---- */

static void expect_refused(const char *tmp, const char *json, const char *message) {
    char *file = path_join(tmp, "tokenizer.json");
    write_file(file, json);
    ct_tokenizer *tok = ct_tokenizer_load(file);
    CHECK(tok == NULL && strstr(ct_last_error(), message) && strstr(ct_last_error(), file),
          "expected a refusal containing '%s' and the file name, got: %s", message,
          tok ? "(loaded)" : ct_last_error());
    ct_tokenizer_free(tok);
    remove(file);
    free(file);
}

static void check_bad_files(const char *tmp) {
    char *missing = path_join(tmp, "missing.json");
    CHECK(ct_tokenizer_load(missing) == NULL && strstr(ct_last_error(), missing), "missing file: %s",
          ct_last_error());
    free(missing);
    expect_refused(tmp, "{\"model\": {\"type\": \"BPE\", ", "malformed JSON");
    expect_refused(tmp, "[1, 2]", "not a JSON object");
    expect_refused(tmp, "{\"model\": {\"type\": \"Unigram\", \"vocab\": [[\"a\", 0.0]]}}",
                   "model type 'Unigram' is not supported (ctune supports byte-level BPE");
    expect_refused(tmp, "{\"model\": {\"type\": \"WordPiece\", \"vocab\": {}}}", "model type 'WordPiece'");
    expect_refused(tmp, "{\"model\": {\"vocab\": [[\"a\", 0.0]]}}", "model type 'Unigram'");
    expect_refused(tmp, "{\"model\": {\"type\": \"BPE\", \"byte_fallback\": true, \"vocab\": {}, \"merges\": []}}",
                   "byte_fallback");
    const char *bpe = "\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1}, \"merges\": [\"a b\"]}";
    char json[512];
    snprintf(json, sizeof json, "{%s}", bpe);
    expect_refused(tmp, json, "names a token missing from the vocabulary");
    const char *ok_bpe = "\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1, \"ab\": 2}, \"merges\": [[\"a\", \"b\"]]}";
    snprintf(json, sizeof json, "{%s, \"normalizer\": {\"type\": \"Lowercase\"}, "
                                "\"pre_tokenizer\": {\"type\": \"ByteLevel\"}}", ok_bpe);
    expect_refused(tmp, json, "normalizer 'Lowercase' is not supported");
    snprintf(json, sizeof json, "{%s, \"pre_tokenizer\": {\"type\": \"Metaspace\"}}", ok_bpe);
    expect_refused(tmp, json, "pre-tokenizer 'Metaspace' is not supported");
    snprintf(json, sizeof json, "{%s, \"pre_tokenizer\": null}", ok_bpe);
    expect_refused(tmp, json, "not a byte-level BPE tokenizer");
    snprintf(json, sizeof json, "{%s, \"pre_tokenizer\": {\"type\": \"ByteLevel\"}, "
                                "\"decoder\": {\"type\": \"WordPiece\"}}", ok_bpe);
    expect_refused(tmp, json, "decoder 'WordPiece' is not supported");
    snprintf(json, sizeof json, "{%s, \"pre_tokenizer\": {\"type\": \"Split\", \"pattern\": "
                                "{\"Regex\": \"(\"}, \"behavior\": \"Isolated\"}}", ok_bpe);
    expect_refused(tmp, json, "does not compile");
}

/* ---- the trainer ---- */

/* "ab" four times (three after a space), "cd" once: the merges are (a,b) with count 4, then
 * (Ġ,ab) with count 3; nothing else occurs twice. */
static void check_trainer_small(const char *tmp) {
    ct_bpe_trainer *t = ct_bpe_trainer_new();
    const char *text = "ab ab ab ab cd";
    CHECK(ct_bpe_trainer_add_text(t, text, strlen(text)) == 0, "%s", ct_last_error());
    ct_bpe_train_options options = {.vocab_size = 300, .min_frequency = 2};
    ct_bpe_train_report report;
    CHECK(ct_bpe_trainer_train(t, &options, &report) == 0, "%s", ct_last_error());
    CHECK(report.n_merges == 2 && report.vocab_size == 261, "merges %d, vocabulary %d",
          report.n_merges, report.vocab_size);
    CHECK(report.n_words == 5 && report.n_distinct_words == 3, "words %lld (%lld distinct)",
          (long long)report.n_words, (long long)report.n_distinct_words);
    CHECK(ct_bpe_trainer_save(t, tmp) == 0, "%s", ct_last_error());
    ct_bpe_trainer_free(t);
    ct_tokenizer *tok = ct_tokenizer_load(tmp);
    CHECK(tok != NULL, "%s", ct_last_error());
    if (!tok) return;
    ct_token_list ids = {0};
    encode_ids(tok, " ab", 3, 0, &ids);
    CHECK(ids.len == 1 && ids.ids[0] == 257, "' ab' is the second merge (id 257), got %zu ids", ids.len);
    encode_ids(tok, "ab", 2, 0, &ids);
    CHECK(ids.len == 1 && ids.ids[0] == 256, "'ab' is the first merge (id 256)");
    encode_ids(tok, " cd<|im_end|>", 13, CT_TOK_MATCH_SPECIAL, &ids);
    CHECK(ids.len == 4 && ids.ids[3] == 260, "' cd' stays bytes, then <|im_end|> = 260");
    CHECK(ct_tokenizer_token_id(tok, "<|endoftext|>") == 258 && ct_tokenizer_is_special(tok, 258),
          "<|endoftext|> follows the learned vocabulary");
    ct_chat_template tpl;
    CHECK(ct_chat_template_load(&tpl, tok, tmp) == 0 && tpl.format == CT_CHAT_CHATML,
          "the trained tokenizer_config.json holds a ChatML template");
    ct_token_list_free(&ids);
    ct_tokenizer_free(tok);
}

static bool same_file(const char *a, const char *b) {
    size_t la, lb;
    char *x = ct_tok_read_file(a, &la), *y = ct_tok_read_file(b, &lb);
    bool same = x && y && la == lb && !memcmp(x, y, la);
    free(x);
    free(y);
    return same;
}

/* Retraining on the fixture corpus must reproduce the committed files, whose ids the library
 * was checked against (trained_cases.jsonl). */
static void check_trainer_fixture(const char *tmp) {
    ct_bpe_trainer *t = ct_bpe_trainer_new();
    char *txt = fixture("train_corpus.txt"), *jsonl = fixture("train_corpus.jsonl");
    CHECK(ct_bpe_trainer_add_file(t, txt) == 0 && ct_bpe_trainer_add_file(t, jsonl) == 0, "%s",
          ct_last_error());
    ct_bpe_train_options options = {.vocab_size = 1000, .min_frequency = 2};
    CHECK(ct_bpe_trainer_train(t, &options, NULL) == 0 && ct_bpe_trainer_save(t, tmp) == 0, "%s",
          ct_last_error());
    ct_bpe_trainer_free(t);
    const char *names[] = {"tokenizer.json", "tokenizer_config.json"};
    for (int i = 0; i < 2; i++) {
        char *made = path_join(tmp, names[i]), *relative = path_join("trained", names[i]);
        char *committed = fixture(relative);
        CHECK(same_file(made, committed), "retrained %s differs from %s (rerun "
              "tests/reference/make_tokenizer_fixtures.py if the trainer changed on purpose)",
              names[i], committed);
        free(made);
        free(relative);
        free(committed);
    }
    ct_tokenizer *tok = ct_tokenizer_load(tmp);
    CHECK(tok != NULL, "%s", ct_last_error());
    if (tok) {
        run_text_cases(tok, "trained_cases.jsonl", NULL);
        size_t len;
        char *corpus = ct_tok_read_file(txt, &len);
        ct_token_list ids = {0};
        encode_ids(tok, corpus, len, 0, &ids);
        CHECK(ids.len * 3 < len, "the trained vocabulary compresses its corpus: %zu tokens for %zu bytes",
              ids.len, len);
        char *back = ct_tokenizer_decode(tok, ids.ids, ids.len, 0, NULL);
        CHECK(back && !strcmp(back, corpus), "the corpus round-trips through the trained tokenizer");
        free(back);
        free(corpus);
        ct_token_list_free(&ids);
    }
    ct_tokenizer_free(tok);
    free(txt);
    free(jsonl);
}

static void check_trainer_errors(const char *tmp) {
    ct_bpe_trainer *t = ct_bpe_trainer_new();
    char *bad = path_join(tmp, "bad.jsonl");
    write_file(bad, "{\"text\": \"ok\"}\n{\"text\": \n");
    CHECK(ct_bpe_trainer_add_file(t, bad) < 0 && strstr(ct_last_error(), ":2: malformed JSON"),
          "a malformed JSONL line is named: %s", ct_last_error());
    ct_bpe_train_options options = {.vocab_size = 100};
    CHECK(ct_bpe_trainer_train(t, &options, NULL) < 0 && strstr(ct_last_error(), "too small"),
          "a vocabulary smaller than the byte alphabet is refused");
    CHECK(ct_bpe_trainer_save(t, tmp) < 0, "saving before training fails");
    /* Invalid UTF-8 is refused as `ctune train` refuses it, naming file, line and byte: in a
     * plain-text corpus, a JSONL record and a .json document. */
    char *txt = path_join(tmp, "latin1.txt"), *json = path_join(tmp, "latin1.json");
    write_file(txt, "first line\nna\xefve caf\xe9\n");
    write_file(bad, "{\"text\": \"ok\"}\n{\"text\": \"caf\xe9\"}\n");
    write_file(json, "[{\"text\": \"ok\"},\n {\"text\": \"\xff\"}]");
    CHECK(ct_bpe_trainer_add_file(t, txt) < 0 && strstr(ct_last_error(), "latin1.txt:2: invalid UTF-8 at byte 3"),
          "invalid UTF-8 in a text corpus: %s", ct_last_error());
    CHECK(ct_bpe_trainer_add_file(t, bad) < 0 && strstr(ct_last_error(), "bad.jsonl:2: invalid UTF-8 at byte 14"),
          "invalid UTF-8 in a JSONL corpus: %s", ct_last_error());
    CHECK(ct_bpe_trainer_add_file(t, json) < 0 && strstr(ct_last_error(), "latin1.json:2: invalid UTF-8 at byte 12"),
          "invalid UTF-8 in a JSON corpus: %s", ct_last_error());
    remove(txt);
    remove(json);
    free(txt);
    free(json);
    remove(bad);
    free(bad);
    ct_bpe_trainer_free(t);
}

int main(void) {
    char tmp[] = "/tmp/ct_test_tokenizer_XXXXXX";
    CHECK(mkdtemp(tmp) != NULL, "mkdtemp");
    check_bad_files(tmp);
    run_synthetic();
    check_trainer_small(tmp);
    check_trainer_fixture(tmp);
    check_trainer_errors(tmp);
    const char *names[] = {"tokenizer.json", "tokenizer_config.json"};
    for (int i = 0; i < 2; i++) {
        char *p = path_join(tmp, names[i]);
        remove(p);
        free(p);
    }
    const char *looked_in;
    char *qwen = ct_test_shared_path("data/qwen3-tokenizer", "tokenizer.json", &looked_in);
    if (qwen) run_qwen(qwen, tmp);
    /* PCRE2's interpreter (CT_NO_REGEX_JIT, as under valgrind) matches valid UTF-8 with the
     * strict regexes and no UTF check, invalid UTF-8 with the others: the same pieces as JIT. */
    setenv("CT_NO_REGEX_JIT", "1", 1);
    run_synthetic();
    if (qwen) {
        ct_tokenizer *tok = ct_tokenizer_load(qwen);
        CHECK(tok != NULL, "loading Qwen3 without JIT: %s", ct_last_error());
        if (tok) {
            run_text_cases(tok, "qwen3_cases.jsonl", NULL);
            check_invalid_utf8(tok);
            check_long_word(tok);
        }
        ct_tokenizer_free(tok);
    }
    unsetenv("CT_NO_REGEX_JIT");
    rmdir(tmp);
    int status = ct_test_finish("test_tokenizer");
    if (!qwen && status == 0) return ct_test_missing_shared("test_tokenizer", "data/qwen3-tokenizer", looked_in);
    free(qwen);
    return status;
}
