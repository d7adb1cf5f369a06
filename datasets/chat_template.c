/* Chat templates: ChatML as Qwen uses it and LLaMA 3's header format, rendered straight to ids.
 *
 *   ChatML:  <|im_start|>role\ncontent<|im_end|>\n ...  [<|im_start|>assistant\n]
 *   LLaMA 3: <|begin_of_text|><|start_header_id|>role<|end_header_id|>\n\ncontent<|eot_id|> ...
 *            [<|start_header_id|>assistant<|end_header_id|>\n\n]   (content trimmed, as Meta's
 *            template does)
 *
 * Markers are emitted as ids; the text between two markers is encoded as one piece, which is
 * what the Hugging Face library does with the rendered string, so the ids equal its encoding of
 * that string. Content is encoded with special-token matching off unless asked, so a customer
 * typing "<|im_end|>" cannot end a turn. The mask covers an assistant turn's content and its
 * closing marker; a token that straddles the role header and the content (ChatML content that
 * starts with a newline) counts as content. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/error.h"
#include "datasets/tok_internal.h"

static const struct {
    const char *marker, *family;
} other_families[] = {
    {"[INST]", "Mistral / LLaMA 2 ([INST])"},
    {"<start_of_turn>", "Gemma"},
    {"<|turn>", "Gemma"},
    {"<|user|>", "Phi-3 / Zephyr (<|user|>)"},
    {"<\xEF\xBD\x9CUser\xEF\xBD\x9C>", "DeepSeek"},
    {"<|START_OF_TURN_TOKEN|>", "Command-R"},
    {"GPT4 Correct", "OpenChat"},
    {"### Instruction", "Alpaca"},
};

int ct_chat_format_detect(const char *template_text, ct_chat_format *format) {
    if (strstr(template_text, "<|im_start|>")) {
        *format = CT_CHAT_CHATML;
        return 0;
    }
    if (strstr(template_text, "<|start_header_id|>")) {
        *format = CT_CHAT_LLAMA3;
        return 0;
    }
    for (size_t i = 0; i < sizeof other_families / sizeof other_families[0]; i++)
        if (strstr(template_text, other_families[i].marker))
            return ct_fail("chat_template is a %s template; ctune renders ChatML (Qwen) and LLaMA 3 "
                           "header templates", other_families[i].family);
    return ct_fail("chat_template has neither '<|im_start|>' (ChatML) nor '<|start_header_id|>' "
                   "(LLaMA 3); ctune renders only those two families");
}

static int marker(const ct_tokenizer *tok, const char *text, const char *family, int32_t *id) {
    *id = ct_tokenizer_token_id(tok, text);
    if (*id < 0)
        return ct_fail("%s: the tokenizer has no '%s' token, which the %s template needs",
                       ct_tokenizer_path(tok), text, family);
    return 0;
}

int ct_chat_template_init(ct_chat_template *tpl, const ct_tokenizer *tok, ct_chat_format format) {
    *tpl = (ct_chat_template){.tok = tok, .format = format, .begin_id = -1, .header_end_id = -1};
    if (format == CT_CHAT_CHATML) {
        CT_TRY(marker(tok, "<|im_start|>", "ChatML", &tpl->start_id));
        return marker(tok, "<|im_end|>", "ChatML", &tpl->end_id);
    }
    if (format != CT_CHAT_LLAMA3) return ct_fail("chat template: unknown format %d", (int)format);
    CT_TRY(marker(tok, "<|begin_of_text|>", "LLaMA 3", &tpl->begin_id));
    CT_TRY(marker(tok, "<|start_header_id|>", "LLaMA 3", &tpl->start_id));
    CT_TRY(marker(tok, "<|end_header_id|>", "LLaMA 3", &tpl->header_end_id));
    return marker(tok, "<|eot_id|>", "LLaMA 3", &tpl->end_id);
}

/* Without a chat_template, the tokenizer's own marker tokens tell the family. */
static int init_from_tokens(ct_chat_template *tpl, const ct_tokenizer *tok) {
    if (ct_tokenizer_token_id(tok, "<|im_start|>") >= 0)
        return ct_chat_template_init(tpl, tok, CT_CHAT_CHATML);
    if (ct_tokenizer_token_id(tok, "<|start_header_id|>") >= 0)
        return ct_chat_template_init(tpl, tok, CT_CHAT_LLAMA3);
    return ct_fail("%s: no chat_template and neither ChatML nor LLaMA 3 marker tokens; ctune renders "
                   "only those two families", ct_tokenizer_path(tok));
}

/* A folder holds tokenizer_config.json; any other file names its folder (tokenizer.json). */
static char *config_path(const char *path) {
    struct stat st;
    bool dir = stat(path, &st) == 0 && S_ISDIR(st.st_mode);
    size_t n = strlen(path) + sizeof "/tokenizer_config.json";
    char *file = ct_malloc(n, "a path");
    if (!file) return NULL;
    const char *slash = strrchr(path, '/');
    const char *name = slash ? slash + 1 : path;
    if (dir) snprintf(file, n, "%s/tokenizer_config.json", path);
    else if (!strcmp(name, "tokenizer_config.json")) snprintf(file, n, "%s", path);
    else if (slash) snprintf(file, n, "%.*s/tokenizer_config.json", (int)(slash - path), path);
    else snprintf(file, n, "tokenizer_config.json");
    return file;
}

/* chat_template is a string, or a list of {name, template} where "default" is the chat one. */
static const char *template_text(const cJSON *config) {
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(config, "chat_template");
    if (cJSON_IsString(t)) return t->valuestring;
    const char *first = NULL;
    for (const cJSON *entry = cJSON_IsArray(t) ? t->child : NULL; entry; entry = entry->next) {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(entry, "name");
        const cJSON *text = cJSON_GetObjectItemCaseSensitive(entry, "template");
        if (!cJSON_IsString(text)) continue;
        if (cJSON_IsString(name) && !strcmp(name->valuestring, "default")) return text->valuestring;
        if (!first) first = text->valuestring;
    }
    return first;
}

static int init_from_config(ct_chat_template *tpl, const ct_tokenizer *tok, const char *file,
                            const char *json, size_t len) {
    cJSON *config = cJSON_ParseWithLength(json, len);
    if (!config) return ct_fail("%s: malformed JSON", file);
    const char *text = template_text(config);
    ct_chat_format format;
    int rc;
    if (!text) rc = init_from_tokens(tpl, tok);
    else if ((rc = ct_chat_format_detect(text, &format)) < 0) ct_fail_context("%s: ", file);
    else rc = ct_chat_template_init(tpl, tok, format);
    cJSON_Delete(config);
    return rc;
}

int ct_chat_template_load(ct_chat_template *tpl, const ct_tokenizer *tok, const char *path) {
    char *file = path ? config_path(path) : NULL;
    if (path && !file) return -1;
    struct stat st;
    if (!file || stat(file, &st) != 0) {
        free(file);
        return init_from_tokens(tpl, tok);
    }
    size_t len;
    char *json = ct_tok_read_file(file, &len);
    int rc = json ? init_from_config(tpl, tok, file, json, len) : -1;
    free(json);
    free(file);
    return rc;
}

/* ---- encoding a conversation ---- */

typedef struct {
    const ct_chat_template *tpl;
    int flags;
    ct_token_list *out;
    ct_strbuf mask, text;
    ct_token_list ids, ends;
} chat_builder;

static int push(chat_builder *b, int32_t id, bool masked) {
    CT_TRY(ct_token_list_push(b->out, id));
    uint8_t m = masked;
    return ct_strbuf_append(&b->mask, &m, 1);
}

/* Encodes b->text as one piece; tokens ending past `header` bytes are masked when `masked`. */
static int push_text(chat_builder *b, size_t header, bool masked, int flags) {
    b->ids.len = b->ends.len = 0;
    CT_TRY(ct_tok_encode_ends(b->tpl->tok, b->text.data, b->text.len, flags, &b->ids, &b->ends));
    for (size_t i = 0; i < b->ids.len; i++)
        CT_TRY(push(b, b->ids.ids[i], masked && (size_t)b->ends.ids[i] > header));
    return 0;
}

static int set_text(chat_builder *b, const char *a, size_t a_len, const char *c, size_t c_len) {
    b->text.len = 0;
    CT_TRY(ct_strbuf_append(&b->text, a, a_len));
    return ct_strbuf_append(&b->text, c, c_len);
}

/* Jinja's trim (Python's str.strip): whitespace off both ends. */
static void trim(const char **s, size_t *len) {
    uint32_t cp;
    int n;
    while (*len && (n = ct_utf8_decode((const uint8_t *)*s, *len, &cp)) && ct_unicode_is_py_space(cp))
        *s += n, *len -= (size_t)n;
    size_t start;
    int64_t last;
    while (*len && (last = ct_utf8_decode_before(*s, *len, &start)) >= 0 &&
           ct_unicode_is_py_space((uint32_t)last))
        *len = start;
}

static int chatml_turn(chat_builder *b, const ct_chat_message *m, bool masked) {
    const ct_chat_template *tpl = b->tpl;
    size_t role_len = strlen(m->role);
    CT_TRY(push(b, tpl->start_id, false));
    CT_TRY(set_text(b, m->role, role_len, "\n", 1));
    CT_TRY(ct_strbuf_append(&b->text, m->content, strlen(m->content)));
    CT_TRY(push_text(b, role_len + 1, masked, b->flags));
    CT_TRY(push(b, tpl->end_id, masked));
    CT_TRY(set_text(b, "\n", 1, "", 0));
    return push_text(b, 0, false, 0);
}

static int llama3_header(chat_builder *b, const char *role) {
    CT_TRY(push(b, b->tpl->start_id, false));
    CT_TRY(set_text(b, role, strlen(role), "", 0));
    CT_TRY(push_text(b, 0, false, 0));
    return push(b, b->tpl->header_end_id, false);
}

static int llama3_turn(chat_builder *b, const ct_chat_message *m, bool masked) {
    CT_TRY(llama3_header(b, m->role));
    const char *content = m->content;
    size_t len = strlen(content);
    trim(&content, &len);
    CT_TRY(set_text(b, "\n\n", 2, content, len));
    CT_TRY(push_text(b, 2, masked, b->flags));
    return push(b, b->tpl->end_id, masked);
}

static int generation_prompt(chat_builder *b) {
    if (b->tpl->format == CT_CHAT_LLAMA3) {
        CT_TRY(llama3_header(b, "assistant"));
        CT_TRY(set_text(b, "\n\n", 2, "", 0));
        return push_text(b, 0, false, 0);
    }
    CT_TRY(push(b, b->tpl->start_id, false));
    CT_TRY(set_text(b, "assistant\n", 10, "", 0));
    return push_text(b, 0, false, 0);
}

/* Roles are rendered as text between markers, so they must be plain words. */
static int check_messages(const ct_chat_message *messages, size_t n) {
    for (size_t i = 0; i < n; i++) {
        const char *role = messages[i].role;
        if (!role || !*role || strspn(role, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                            "0123456789_-") != strlen(role))
            return ct_fail("chat message %zu: role '%s' is not a plain word (system, user, "
                           "assistant, tool, ...)", i, role ? role : "(null)");
        if (!messages[i].content) return ct_fail("chat message %zu (%s): no content", i, role);
    }
    return 0;
}

/* The template's default system message goes first when the conversation brings none, as the
 * Jinja template ct_chat_template_jinja writes does. It is never a training target. */
static int default_system_turn(chat_builder *b, const ct_chat_message *messages, size_t n) {
    const char *text = b->tpl->default_system;
    if (!text || !*text || (n > 0 && !strcmp(messages[0].role, "system"))) return 0;
    ct_chat_message system = {"system", text};
    return b->tpl->format == CT_CHAT_LLAMA3 ? llama3_turn(b, &system, false) : chatml_turn(b, &system, false);
}

static int render(chat_builder *b, const ct_chat_message *messages, size_t n,
                  const ct_chat_options *options) {
    size_t last_assistant = n;
    for (size_t i = 0; i < n; i++)
        if (!strcmp(messages[i].role, "assistant")) last_assistant = i;
    if (b->tpl->format == CT_CHAT_LLAMA3) CT_TRY(push(b, b->tpl->begin_id, false));
    CT_TRY(default_system_turn(b, messages, n));
    for (size_t i = 0; i < n; i++) {
        bool masked = !strcmp(messages[i].role, "assistant") &&
                      (options->mask == CT_CHAT_MASK_ALL || i == last_assistant);
        CT_TRY(b->tpl->format == CT_CHAT_LLAMA3 ? llama3_turn(b, &messages[i], masked)
                                                : chatml_turn(b, &messages[i], masked));
    }
    return options->add_generation_prompt ? generation_prompt(b) : 0;
}

int ct_chat_encode(const ct_chat_template *tpl, const ct_chat_message *messages, size_t n_messages,
                   const ct_chat_options *options, ct_token_list *out, uint8_t **mask) {
    *mask = NULL;
    out->len = 0;
    CT_TRY(check_messages(messages, n_messages));
    ct_chat_options defaults = {0};
    chat_builder b = {.tpl = tpl, .out = out};
    if (!options) options = &defaults;
    b.flags = options->allow_special ? CT_TOK_MATCH_SPECIAL : 0;
    int rc = ct_strbuf_append(&b.mask, "", 0);
    if (rc == 0) rc = render(&b, messages, n_messages, options);
    ct_strbuf_free(&b.text);
    ct_token_list_free(&b.ids);
    ct_token_list_free(&b.ends);
    if (rc < 0) {
        ct_strbuf_free(&b.mask);
        return -1;
    }
    *mask = (uint8_t *)b.mask.data;
    return 0;
}
