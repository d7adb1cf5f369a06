/* `ctune tokenize`: the ids of a text or a conversation, as a model would see them.
 * `ctune tokenizer train`: learn a byte-level BPE tokenizer from a corpus. */
#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "core/error.h"
#include "datasets/tokenizer.h"
#include "cli/cmd_tokenizer.h"
#include "cli/commands.h"

/* ---- ctune tokenize ---- */

typedef struct {
    const char *tokenizer, *text, *file, *system;
    int allow_special, add_special, chat, generation_prompt, mask_last, verbose;
} tokenize_args;

static int tokenize_usage(void) {
    printf("usage: ctune tokenize --tokenizer DIR_OR_FILE [--text TEXT | --file FILE] [options]\n\n"
           "Prints the token ids of a text on one line. Without --text or --file the text is read\n"
           "from standard input.\n\n"
           "  --tokenizer PATH      tokenizer.json, or the model folder that holds it\n"
           "  --text TEXT           the text to encode\n"
           "  --file FILE           encode the bytes of FILE\n"
           "  --allow-special       match special-token text such as <|im_end|> in the input, as the\n"
           "                        Hugging Face library does by default (ctune's default: plain text)\n"
           "  --add-special-tokens  add the post-processor's tokens (LLaMA 3's <|begin_of_text|>)\n"
           "  --chat                the input is a conversation: a JSON list of {\"role\", \"content\"}\n"
           "                        (or {\"messages\": [...]}); any other input is one user message.\n"
           "                        The template (ChatML or LLaMA 3) comes from tokenizer_config.json\n"
           "  --system TEXT         with --chat and a plain-text input: a system prompt first\n"
           "  --generation-prompt   with --chat: end with the assistant header\n"
           "  --mask-last           with --chat: mask only the last assistant turn (default: all)\n"
           "  --verbose             then one line per token: id, its text (JSON-escaped), and with\n"
           "                        --chat the mask (1 = assistant target)\n");
    return 0;
}

static int tokenize_parse(int argc, char **argv, tokenize_args *a) {
    struct { const char *name; const char **value; } values[] = {
        {"--tokenizer", &a->tokenizer}, {"--text", &a->text}, {"--file", &a->file}, {"--system", &a->system}};
    struct { const char *name; int *value; } flags[] = {
        {"--allow-special", &a->allow_special}, {"--add-special-tokens", &a->add_special},
        {"--chat", &a->chat}, {"--generation-prompt", &a->generation_prompt},
        {"--mask-last", &a->mask_last}, {"--verbose", &a->verbose}};
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) return tokenize_usage(), 1;
        bool known = false;
        for (size_t k = 0; k < sizeof values / sizeof values[0] && !known; k++) {
            if (strcmp(arg, values[k].name) != 0) continue;
            if (i + 1 >= argc) return ct_usage_error("tokenize", "%s needs a value", arg);
            *values[k].value = argv[++i];
            known = true;
        }
        for (size_t k = 0; k < sizeof flags / sizeof flags[0] && !known; k++)
            if (!strcmp(arg, flags[k].name)) *flags[k].value = known = true;
        if (!known) return ct_usage_error("tokenize", "unknown option '%s'", arg);
    }
    if (!a->tokenizer) return ct_usage_error("tokenize", "--tokenizer is required");
    if (a->text && a->file) return ct_usage_error("tokenize", "give --text or --file, not both");
    if (!a->chat && (a->system || a->generation_prompt || a->mask_last))
        return ct_usage_error("tokenize", "--system, --generation-prompt and --mask-last need --chat");
    return 0;
}

/* A token's bytes as a JSON string; bytes that are not whole UTF-8 characters print as \xNN. */
static void print_escaped(const char *s, size_t len) {
    putchar('"');
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') printf("\\%c", c);
        else if (c == '\n') fputs("\\n", stdout);
        else if (c == '\t') fputs("\\t", stdout);
        else if (c == '\r') fputs("\\r", stdout);
        else if (c < 0x20 || c == 0x7F) printf("\\u%04x", c);
        else if (c < 0x80) putchar(c);
        else {
            size_t n = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 0;
            bool whole = n && i + n <= len;
            for (size_t k = 1; whole && k < n; k++) whole = ((unsigned char)s[i + k] & 0xC0) == 0x80;
            if (!whole) {
                printf("\\x%02x", c);
                continue;
            }
            fwrite(s + i, 1, n, stdout);
            i += n - 1;
        }
    }
    putchar('"');
}

static int print_tokens(const ct_tokenizer *tok, const ct_token_list *ids, const uint8_t *mask,
                        bool verbose) {
    for (size_t i = 0; i < ids->len; i++) printf(i ? " %d" : "%d", ids->ids[i]);
    putchar('\n');
    for (size_t i = 0; verbose && i < ids->len; i++) {
        size_t len;
        char *text = ct_tokenizer_decode(tok, &ids->ids[i], 1, 0, &len);
        if (!text) return -1;
        printf("%d\t", ids->ids[i]);
        print_escaped(text, len);
        if (mask) printf("\t%d", mask[i]);
        putchar('\n');
        free(text);
    }
    return 0;
}

/* A JSON list of messages (or {"messages": [...]}) becomes a conversation; other text is one
 * user message, after the --system prompt if any. */
static int chat_messages(const tokenize_args *a, const char *input, cJSON **json,
                         ct_chat_message **messages, size_t *n) {
    *json = cJSON_Parse(input);
    const cJSON *list = cJSON_IsObject(*json) ? cJSON_GetObjectItemCaseSensitive(*json, "messages") : *json;
    size_t count = cJSON_IsArray(list) ? (size_t)cJSON_GetArraySize(list) : 2;
    *messages = ct_calloc(count, sizeof **messages, "chat messages");
    if (!*messages) return -1;
    if (!cJSON_IsArray(list)) {
        if (a->system) (*messages)[(*n)++] = (ct_chat_message){"system", a->system};
        (*messages)[(*n)++] = (ct_chat_message){"user", input};
        return 0;
    }
    for (const cJSON *m = list->child; m; m = m->next) {
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");
        if (!cJSON_IsString(role) || !cJSON_IsString(content))
            return ct_fail("chat input: message %zu needs string \"role\" and \"content\"", *n);
        (*messages)[(*n)++] = (ct_chat_message){role->valuestring, content->valuestring};
    }
    return 0;
}

static int tokenize_chat(const tokenize_args *a, const ct_tokenizer *tok, const char *input) {
    ct_chat_template tpl;
    CT_TRY(ct_chat_template_load(&tpl, tok, a->tokenizer));
    cJSON *json = NULL;
    ct_chat_message *messages = NULL;
    size_t n = 0;
    ct_token_list ids = {0};
    uint8_t *mask = NULL;
    ct_chat_options options = {.add_generation_prompt = a->generation_prompt,
                               .allow_special = a->allow_special,
                               .mask = a->mask_last ? CT_CHAT_MASK_LAST : CT_CHAT_MASK_ALL};
    int rc = chat_messages(a, input, &json, &messages, &n);
    if (rc == 0) rc = ct_chat_encode(&tpl, messages, n, &options, &ids, &mask);
    if (rc == 0) rc = print_tokens(tok, &ids, mask, a->verbose);
    free(mask);
    ct_token_list_free(&ids);
    free(messages);
    cJSON_Delete(json);
    return rc;
}

static int tokenize_run(const tokenize_args *a) {
    ct_tokenizer *tok = ct_tokenizer_load(a->tokenizer);
    if (!tok) return -1;
    size_t len = a->text ? strlen(a->text) : 0;
    char *owned = a->text ? NULL : ct_tok_read_file(a->file ? a->file : "-", &len);
    const char *input = a->text ? a->text : owned;
    int rc = input ? 0 : -1;
    if (rc == 0 && a->chat) rc = tokenize_chat(a, tok, input);
    else if (rc == 0) {
        ct_token_list ids = {0};
        int flags = (a->allow_special ? CT_TOK_MATCH_SPECIAL : 0) | (a->add_special ? CT_TOK_ADD_SPECIAL : 0);
        rc = ct_tokenizer_encode(tok, input, len, flags, &ids);
        if (rc == 0) rc = print_tokens(tok, &ids, NULL, a->verbose);
        ct_token_list_free(&ids);
    }
    free(owned);
    ct_tokenizer_free(tok);
    return rc;
}

int ct_cmd_tokenize(int argc, char **argv) {
    tokenize_args args = {0};
    int parsed = tokenize_parse(argc, argv, &args);
    if (parsed) return parsed == 1 ? 0 : parsed;
    if (tokenize_run(&args) < 0) {
        fprintf(stderr, "ctune tokenize: %s\n", ct_last_error());
        return 1;
    }
    return 0;
}

/* ---- ctune tokenizer train ---- */

static int tokenizer_usage(FILE *out) {
    fprintf(out, "usage: ctune tokenizer train --data FILE [--data FILE ...] --vocab-size N --out DIR\n"
           "                             [--min-frequency N]\n\n"
           "Learns a byte-level BPE tokenizer (NFC, the Qwen2 pre-tokenizer regex, ByteLevel) and\n"
           "writes DIR/tokenizer.json and DIR/tokenizer_config.json (ChatML chat template,\n"
           "<|endoftext|> <|im_start|> <|im_end|>), which the Hugging Face library loads.\n\n"
           "  --data FILE          a corpus: .jsonl or .json (every string value except those of\n"
           "                       \"id\" and \"role\") or plain text; repeat for several files\n"
           "  --vocab-size N       the whole vocabulary: 256 bytes + merges + 3 special tokens\n"
           "  --out DIR            where to write (created if missing)\n"
           "  --min-frequency N    stop merging when the best pair occurs fewer times (default 2)\n");
    return 0;
}

typedef struct {
    const char **data;
    int n_data;
    long long vocab_size, min_frequency;
    const char *out;
} train_args;

static int parse_count(const char *cmd, const char *arg, const char *value, long long max,
                       long long *out) {
    char *end;
    long long n = strtoll(value, &end, 10);
    if (*end || end == value || n <= 0 || n > max)
        return ct_usage_error(cmd, "%s needs a positive integer up to %lld, got '%s'", arg, max, value);
    *out = n;
    return 0;
}

static int train_parse(int argc, char **argv, train_args *a) {
    const char *cmd = "tokenizer train";
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) return tokenizer_usage(stdout), 1;
        bool has_value = i + 1 < argc;
        if (!strcmp(arg, "--data") && has_value) a->data[a->n_data++] = argv[++i];
        else if (!strcmp(arg, "--out") && has_value) a->out = argv[++i];
        else if (!strcmp(arg, "--vocab-size") && has_value) {
            if (parse_count(cmd, arg, argv[++i], 1 << 24, &a->vocab_size)) return 2;
        } else if (!strcmp(arg, "--min-frequency") && has_value) {
            if (parse_count(cmd, arg, argv[++i], 1LL << 40, &a->min_frequency)) return 2;
        } else if (!strcmp(arg, "--data") || !strcmp(arg, "--out") || !strcmp(arg, "--vocab-size") ||
                   !strcmp(arg, "--min-frequency"))
            return ct_usage_error(cmd, "%s needs a value", arg);
        else return ct_usage_error(cmd, "unknown option '%s'", arg);
    }
    if (!a->n_data || !a->vocab_size || !a->out)
        return ct_usage_error(cmd, "--data, --vocab-size and --out are required");
    return 0;
}

static int train_run(const train_args *a) {
    double start = ct_seconds_now();
    ct_bpe_trainer *trainer = ct_bpe_trainer_new();
    if (!trainer) return -1;
    ct_bpe_train_options options = {.vocab_size = (int32_t)a->vocab_size, .min_frequency = a->min_frequency};
    ct_bpe_train_report report;
    int rc = 0;
    for (int i = 0; i < a->n_data && rc == 0; i++) rc = ct_bpe_trainer_add_file(trainer, a->data[i]);
    if (rc == 0) rc = ct_bpe_trainer_train(trainer, &options, &report);
    if (rc == 0) rc = ct_bpe_trainer_save(trainer, a->out);
    ct_bpe_trainer_free(trainer);
    if (rc < 0) return -1;
    printf("ctune tokenizer train: %.2f MB, %lld pre-tokens (%lld distinct) -> vocabulary %d "
           "(%d merges + 256 bytes + 3 special) in %.2f s\n",
           (double)report.corpus_bytes / 1e6, (long long)report.n_words,
           (long long)report.n_distinct_words, report.vocab_size, report.n_merges,
           ct_seconds_now() - start);
    if (report.vocab_size < options.vocab_size)
        printf("note: the corpus ran out of pairs occurring %lld+ times before vocabulary %lld\n",
               a->min_frequency, a->vocab_size);
    printf("wrote %s/tokenizer.json and %s/tokenizer_config.json\n", a->out, a->out);
    return 0;
}

int ct_cmd_tokenizer(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        tokenizer_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "train") != 0)
        return ct_usage_error("tokenizer", "unknown subcommand '%s' (there is: train)", argv[1]);
    const char **data = ct_calloc((size_t)argc, sizeof *data, "arguments");
    if (!data) return 1;
    train_args args = {.data = data, .min_frequency = 2};
    int parsed = train_parse(argc - 1, argv + 1, &args);
    int status = parsed == 1 ? 0 : parsed;
    if (!parsed && train_run(&args) < 0) {
        fprintf(stderr, "ctune tokenizer train: %s\n", ct_last_error());
        status = 1;
    }
    free(data);
    return status;
}
