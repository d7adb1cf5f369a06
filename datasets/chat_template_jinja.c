/* The Jinja chat template a model folder carries, written to match ct_chat_encode exactly.
 *
 * transformers (apply_chat_template), vLLM and llama.cpp render prompts from the chat_template
 * of tokenizer_config.json, not from ctune's C renderer. A fine-tuned model is only served as it
 * was trained when that template renders the same text, system prompt included, so the trainer
 * writes this one into the final model folder: ChatML or LLaMA 3 as ctune renders them, with the
 * training system prompt as the default system message of a conversation that brings none (the
 * way Qwen2.5's templates carry theirs). The prompt is a single-quoted Jinja string literal;
 * backslash, quote and control characters are escaped, other characters (UTF-8) stay as they are,
 * so "{{" or "%}" inside it is just text. tests/integration/test_chat_template.py renders it with
 * transformers and compares with `ctune template`. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/atomic_file.h"
#include "core/paths.h"
#include "datasets/tok_internal.h"

static int append_literal(ct_strbuf *b, const char *text) {
    CT_TRY(ct_strbuf_append(b, "'", 1));
    for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
        char escaped[8];
        const char *piece = escaped;
        if (*p == '\\') piece = "\\\\";
        else if (*p == '\'') piece = "\\'";
        else if (*p == '\n') piece = "\\n";
        else if (*p == '\r') piece = "\\r";
        else if (*p == '\t') piece = "\\t";
        else if (*p < 0x20) snprintf(escaped, sizeof escaped, "\\x%02x", *p);
        else {
            escaped[0] = (char)*p;
            escaped[1] = '\0';
        }
        CT_TRY(ct_strbuf_append_str(b, piece));
    }
    return ct_strbuf_append(b, "'", 1);
}

/* Each format: what opens the text, the system turn around the default (LLaMA 3 trims content,
 * so the default is trimmed too), a turn, the generation prompt. */
typedef struct {
    const char *begin, *system_open, *system_close, *turn, *generation;
} jinja_parts;

static const jinja_parts chatml = {
    "",
    "{{- '<|im_start|>system\\n' + ",
    " + '<|im_end|>\\n' }}\n",
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}\n",
    "{{- '<|im_start|>assistant\\n' }}\n",
};

static const jinja_parts llama3 = {
    "{{- '<|begin_of_text|>' }}\n",
    "{{- '<|start_header_id|>system<|end_header_id|>\\n\\n' + (",
    " | trim) + '<|eot_id|>' }}\n",
    "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + (message['content'] | trim) + "
    "'<|eot_id|>' }}\n",
    "{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}\n",
};

static int build(ct_strbuf *b, const jinja_parts *f, const char *default_system) {
    CT_TRY(ct_strbuf_append_str(b, "{#- Written by ctune: renders what ctune trained on. -#}\n"));
    CT_TRY(ct_strbuf_append_str(b, f->begin));
    if (default_system && *default_system) {
        CT_TRY(ct_strbuf_append_str(b, "{%- if messages | length == 0 or messages[0]['role'] != 'system' %}\n"));
        CT_TRY(ct_strbuf_append_str(b, f->system_open));
        CT_TRY(append_literal(b, default_system));
        CT_TRY(ct_strbuf_append_str(b, f->system_close));
        CT_TRY(ct_strbuf_append_str(b, "{%- endif %}\n"));
    }
    CT_TRY(ct_strbuf_append_str(b, "{%- for message in messages %}\n"));
    CT_TRY(ct_strbuf_append_str(b, f->turn));
    CT_TRY(ct_strbuf_append_str(b, "{%- endfor %}\n{%- if add_generation_prompt %}\n"));
    CT_TRY(ct_strbuf_append_str(b, f->generation));
    return ct_strbuf_append_str(b, "{%- endif %}"); /* no newline after it: not every renderer trims blocks */
}

char *ct_chat_template_jinja(ct_chat_format format, const char *default_system) {
    if (format != CT_CHAT_CHATML && format != CT_CHAT_LLAMA3) {
        ct_fail("chat template: unknown format %d", (int)format);
        return NULL;
    }
    ct_strbuf b = {0};
    if (build(&b, format == CT_CHAT_LLAMA3 ? &llama3 : &chatml, default_system) < 0) {
        ct_strbuf_free(&b);
        return NULL;
    }
    return b.data;
}

/* tokenizer_config.json with chat_template replaced (or the file's first object). */
static char *config_with_template(const char *path, const char *jinja) {
    cJSON *root = NULL;
    if (ct_is_file(path)) {
        size_t len;
        char *text = ct_tok_read_file(path, &len);
        if (!text) return NULL;
        root = cJSON_ParseWithLength(text, len);
        free(text);
        if (!cJSON_IsObject(root)) {
            cJSON_Delete(root);
            ct_fail("%s: not a JSON object; restore the tokenizer's tokenizer_config.json", path);
            return NULL;
        }
    } else if (!(root = cJSON_CreateObject())) {
        ct_fail("%s: out of memory", path);
        return NULL;
    }
    cJSON *value = cJSON_CreateString(jinja);
    bool ok = value && (cJSON_GetObjectItemCaseSensitive(root, "chat_template")
                            ? cJSON_ReplaceItemInObjectCaseSensitive(root, "chat_template", value)
                            : cJSON_AddItemToObject(root, "chat_template", value));
    if (!ok) cJSON_Delete(value);
    char *out = ok ? cJSON_Print(root) : NULL;
    cJSON_Delete(root);
    if (!out) ct_fail("%s: out of memory writing the chat template", path);
    return out;
}

int ct_chat_template_save(const char *dir, ct_chat_format format, const char *default_system) {
    char *jinja = ct_chat_template_jinja(format, default_system);
    char *config_path = ct_path_join(dir, "tokenizer_config.json");
    char *jinja_path = ct_path_join(dir, "chat_template.jinja");
    char *config = jinja && config_path ? config_with_template(config_path, jinja) : NULL;
    int rc = config ? ct_atomic_write_file(config_path, config, strlen(config)) : -1;
    if (rc == 0 && jinja_path && ct_is_file(jinja_path)) rc = ct_atomic_write_file(jinja_path, jinja, strlen(jinja));
    if (!jinja_path) rc = -1;
    cJSON_free(config);
    free(jinja);
    free(config_path);
    free(jinja_path);
    return rc;
}
