/* Chat templates: a tokenizer_config.json (its chat_template picks the format) bound to the
 * trained ChatML tokenizer, then a conversation rendered and encoded with its assistant mask.
 * Input: the config, a NUL byte, then one message per line: a role letter (s, u, a, t; another
 * letter is an unknown role) and the content. Invariant: the mask has one byte per token. */
#include "fuzz_util.h"

#include <string.h>

#include "datasets/tokenizer.h"

static const char *role_of(char c) {
    switch (c) {
    case 's': return "system";
    case 'u': return "user";
    case 'a': return "assistant";
    case 't': return "tool";
    default: return "narrator";
    }
}

static void encode(const ct_chat_template *tpl, char *messages_text, uint8_t options) {
    ct_chat_message messages[16];
    size_t n = 0;
    for (char *line = messages_text, *next; line && n < 16; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = '\0';
        if (!*line) continue;
        messages[n].role = role_of(line[0]);
        messages[n].content = line + 1;
        n++;
    }
    ct_chat_options o = {.add_generation_prompt = options & 1, .allow_special = (options >> 1) & 1,
                         .mask = (options >> 2) & 1 ? CT_CHAT_MASK_LAST : CT_CHAT_MASK_ALL};
    ct_token_list ids = {0};
    uint8_t *mask = NULL;
    if (ct_chat_encode(tpl, messages, n, &o, &ids, &mask) == 0)
        CT_FUZZ_CHECK(mask || ids.len == 0, "a mask comes with the ids");
    free(mask);
    ct_token_list_free(&ids);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static ct_tokenizer *tok;
    if (!tok) {
        tok = ct_tokenizer_load(ct_fuzz_source_path("tests/fixtures/tokenizer/trained/tokenizer.json"));
        CT_FUZZ_CHECK(tok, "the fixture tokenizer loads");
    }
    const uint8_t *nul = memchr(data, 0, size);
    size_t config_len = nul ? (size_t)(nul - data) : size;
    const char *path = ct_fuzz_write("tokenizer_config.json", data, config_len);
    char *config = ct_fuzz_cstr(data, config_len);
    ct_chat_format format;
    ct_chat_format_detect(config, &format);
    free(config);
    ct_chat_template tpl;
    if (ct_chat_template_load(&tpl, tok, path) != 0) return 0;
    size_t rest = nul ? size - config_len - 1 : 0;
    char *messages = ct_fuzz_cstr(nul ? nul + 1 : data, rest);
    tpl.default_system = rest > 1 && messages[0] == 'd' ? messages + 1 : NULL;
    if (tpl.default_system) {
        char *line_end = strchr(messages, '\n');
        if (line_end) *line_end = '\0';
        free(ct_chat_template_jinja(tpl.format, tpl.default_system));
        encode(&tpl, line_end ? line_end + 1 : messages + rest, rest ? messages[0] : 0);
    } else {
        encode(&tpl, messages, rest ? (uint8_t)messages[0] : 0);
    }
    free(messages);
    return 0;
}
