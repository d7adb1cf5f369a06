/* Reading training examples: JSON Lines (intent, chat, dialog_intent) and plain text. Each
 * line is checked on its own, so a bad line is reported with its number and the rest of the
 * file is still read when bad lines are skipped. */
#include "datasets/examples.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <utf8proc.h>

#include "core/error.h"

static const char *const format_names[] = {NULL, "intent", "chat", "dialog_intent", "text"};

int ct_data_format_parse(const char *name, ct_data_format *format) {
    for (int i = CT_DATA_INTENT; i <= CT_DATA_TEXT; i++)
        if (name && !strcmp(name, format_names[i])) {
            *format = (ct_data_format)i;
            return 0;
        }
    return ct_fail("unknown data format \"%s\"; use intent, chat, dialog_intent or text",
                   name ? name : "(null)");
}

const char *ct_data_format_name(ct_data_format format) {
    return format >= CT_DATA_INTENT && format <= CT_DATA_TEXT ? format_names[format] : "unknown";
}

int64_t ct_utf8_first_invalid(const char *s, size_t len) {
    size_t i = 0;
    while (i < len) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t n = utf8proc_iterate((const utf8proc_uint8_t *)s + i,
                                              (utf8proc_ssize_t)(len - i), &cp);
        if (n <= 0) return (int64_t)i;
        i += (size_t)n;
    }
    return -1;
}

/* ---- the example set ---- */

static void free_example(ct_example *ex) {
    free((void *)ex->text);
    for (size_t i = 0; i < ex->n_messages; i++) {
        free((void *)ex->messages[i].role);
        free((void *)ex->messages[i].content);
    }
    free((void *)ex->messages);
}

void ct_examples_free(ct_examples *examples) {
    if (!examples) return;
    for (size_t i = 0; i < examples->count; i++) free_example(&examples->items[i]);
    free(examples->items);
    free(examples->path);
    free(examples->first_skipped);
    free(examples);
}

typedef struct {
    ct_examples *set;
    const ct_example_options *options;
    size_t cap;
    int64_t line;
} loader;

/* A line-level problem: the line may be skipped. A fatal one may not. */
enum { LINE_OK = 0, LINE_BAD = -1, LINE_FATAL = -2 };

static int bad(const loader *ld, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int bad(const loader *ld, const char *fmt, ...) {
    char what[768];
    va_list args;
    va_start(args, fmt);
    vsnprintf(what, sizeof what, fmt, args);
    va_end(args);
    ct_fail("%s:%lld: %s", ld->set->path, (long long)ld->line, what);
    return LINE_BAD;
}

static const char *schema(ct_data_format format) {
    switch (format) {
    case CT_DATA_INTENT: return "an intent line is {\"text\": \"...\", \"label\": \"<id>\"}";
    case CT_DATA_CHAT:
        return "a chat line is {\"messages\": [{\"role\": \"user\", \"content\": \"...\"}, "
               "{\"role\": \"assistant\", \"content\": \"...\"}]}";
    default:
        return "a dialog_intent line is {\"messages\": [{\"role\": \"user\", \"content\": \"...\"}, "
               "...], \"label\": \"<id>\"} ending with a user turn";
    }
}

static int add_example(loader *ld, ct_example *ex) {
    ct_examples *set = ld->set;
    if (set->count == ld->cap) {
        size_t cap = ld->cap ? 2 * ld->cap : 256;
        ct_example *items = realloc(set->items, cap * sizeof *items);
        if (!items) return ct_fail("out of memory: %zu examples of %s", cap, set->path);
        set->items = items;
        ld->cap = cap;
    }
    set->items[set->count++] = *ex;
    return 0;
}

static bool is_blank(const char *s) {
    for (; *s; s++)
        if (*s != ' ' && *s != '\t' && *s != '\r' && *s != '\v' && *s != '\f') return false;
    return true;
}

/* ---- one JSON line ---- */

static int parse_label(const loader *ld, const cJSON *root, ct_example *ex) {
    const ct_label_set *labels = ld->options->labels;
    const cJSON *label = cJSON_GetObjectItemCaseSensitive(root, "label");
    if (!cJSON_IsString(label)) return bad(ld, "no \"label\" string; %s", schema(ld->options->format));
    ex->label = ct_label_set_index(labels, label->valuestring);
    if (ex->label >= 0) return LINE_OK;
    char known[256] = "";
    int n = ct_label_set_count(labels);
    for (int i = 0; i < n && i < 4; i++)
        snprintf(known + strlen(known), sizeof known - strlen(known), "%s%s", i ? ", " : "",
                 ct_label_set_id(labels, i));
    ct_fail("%s:%lld: unknown label \"%.80s\"; the valid ids are the keys of %s (%d: %s%s); fix the "
            "label or add it there", ld->set->path, (long long)ld->line, label->valuestring,
            ct_label_set_path(labels), n, known, n > 4 ? ", ..." : "");
    return LINE_FATAL;
}

static bool known_role(const char *role) {
    return !strcmp(role, "system") || !strcmp(role, "user") || !strcmp(role, "assistant") ||
           !strcmp(role, "tool");
}

static int parse_message(const loader *ld, const cJSON *item, int i, ct_chat_message *m) {
    const char *fix = schema(ld->options->format);
    if (!cJSON_IsObject(item)) return bad(ld, "messages[%d] is not an object; %s", i, fix);
    const cJSON *role = cJSON_GetObjectItemCaseSensitive(item, "role");
    const cJSON *content = cJSON_GetObjectItemCaseSensitive(item, "content");
    if (!cJSON_IsString(role)) return bad(ld, "messages[%d] has no \"role\" string; %s", i, fix);
    if (!known_role(role->valuestring))
        return bad(ld, "messages[%d] has role \"%.40s\"; use system, user, assistant or tool", i,
                   role->valuestring);
    if (!cJSON_IsString(content))
        return bad(ld, "messages[%d] (%s) has no \"content\" string; %s", i, role->valuestring, fix);
    m->role = ct_strdup(role->valuestring);
    m->content = ct_strdup(content->valuestring);
    return m->role && m->content ? LINE_OK : LINE_FATAL;
}

static int parse_messages(const loader *ld, const cJSON *root, ct_example *ex) {
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(root, "messages");
    const char *fix = schema(ld->options->format);
    if (!cJSON_IsArray(list)) return bad(ld, "no \"messages\" list; %s", fix);
    int n = cJSON_GetArraySize(list);
    if (n == 0) return bad(ld, "\"messages\" is empty; %s", fix);
    ct_chat_message *messages = ct_calloc((size_t)n, sizeof *messages, "chat messages");
    if (!messages) return LINE_FATAL;
    ex->messages = messages;
    ex->n_messages = (size_t)n; /* free_example releases what was filled; the rest is NULL */
    int i = 0, rc = LINE_OK;
    for (const cJSON *item = list->child; item && rc == LINE_OK; item = item->next, i++)
        rc = parse_message(ld, item, i, &messages[i]);
    return rc;
}

static int check_roles(const loader *ld, const ct_example *ex) {
    const char *last = ex->messages[ex->n_messages - 1].role;
    if (ld->options->format == CT_DATA_DIALOG_INTENT && strcmp(last, "user"))
        return bad(ld, "the last message has role \"%s\"; the label is the intent of the last "
                       "user turn, so the dialogue must end with a user message", last);
    if (ld->options->format == CT_DATA_CHAT) {
        for (size_t i = 0; i < ex->n_messages; i++)
            if (!strcmp(ex->messages[i].role, "assistant")) return LINE_OK;
        return bad(ld, "no assistant message, so nothing to train on; add the assistant's reply");
    }
    return LINE_OK;
}

/* A line of another format than the one asked for names the format it looks like, since the
 * usual cause is a format left at its default (eval's guess, the recipe's data.format). */
static int wrong_format(const loader *ld, const cJSON *root) {
    bool messages = cJSON_HasObjectItem(root, "messages"), label = cJSON_HasObjectItem(root, "label");
    const char *fit = messages ? (label ? "dialog_intent" : "chat") : cJSON_HasObjectItem(root, "text") ? "intent" : NULL;
    if (!fit || !strcmp(fit, format_names[ld->options->format])) return LINE_OK;
    return bad(ld, "this line is %s data, not %s; read the file with the %s format (--format %s, or data.format: "
                   "%s in a recipe)",
               fit, format_names[ld->options->format], fit, fit, fit);
}

/* A {"text", "label"} line in dialog_intent data is a dialogue of one user turn, so one file can
 * hold single messages and dialogues alike (they encode exactly as the intent format would). */
static int parse_single_turn(const loader *ld, const cJSON *root, const cJSON *text, ct_example *ex) {
    if (is_blank(text->valuestring)) return bad(ld, "\"text\" is empty; give the utterance");
    int rc = parse_label(ld, root, ex);
    if (rc != LINE_OK) return rc;
    ct_chat_message *message = ct_calloc(1, sizeof *message, "chat messages");
    if (!message) return LINE_FATAL;
    ex->messages = message;
    ex->n_messages = 1; /* free_example releases what was filled */
    message->role = ct_strdup("user");
    message->content = ct_strdup(text->valuestring);
    return message->role && message->content ? LINE_OK : LINE_FATAL;
}

static int parse_object(const loader *ld, const cJSON *root, ct_example *ex) {
    ct_data_format format = ld->options->format;
    const cJSON *text = cJSON_GetObjectItemCaseSensitive(root, "text");
    if (format == CT_DATA_DIALOG_INTENT && !cJSON_HasObjectItem(root, "messages") && cJSON_IsString(text))
        return parse_single_turn(ld, root, text, ex);
    if (format == CT_DATA_INTENT) {
        if (!cJSON_IsString(text) && wrong_format(ld, root) != LINE_OK) return LINE_BAD;
        if (!cJSON_IsString(text)) return bad(ld, "no \"text\" string; %s", schema(format));
        if (is_blank(text->valuestring)) return bad(ld, "\"text\" is empty; give the utterance");
        int rc = parse_label(ld, root, ex);
        if (rc != LINE_OK) return rc;
        ex->text = ct_strdup(text->valuestring);
        return ex->text ? LINE_OK : LINE_FATAL;
    }
    int rc = parse_messages(ld, root, ex);
    if (rc == LINE_OK) rc = check_roles(ld, ex);
    if (rc == LINE_OK && format == CT_DATA_DIALOG_INTENT) rc = parse_label(ld, root, ex);
    if (rc == LINE_BAD) wrong_format(ld, root); /* a better message, when there is one */
    return rc;
}

/* Counts code points, so the column matches what an editor shows. */
static long column_of(const char *line, const char *at) {
    long column = 1;
    for (const char *p = line; p < at && *p; p++) column += ((unsigned char)*p & 0xC0) != 0x80;
    return column;
}

/* Text must be UTF-8 without NUL bytes (which would cut a C string short). */
static int check_bytes(const loader *ld, const char *text, size_t len, const char *where) {
    const char *nul = memchr(text, '\0', len);
    if (nul) return bad(ld, "a NUL byte at byte %lld%s; remove it", (long long)(nul - text) + 1, where);
    int64_t invalid = ct_utf8_first_invalid(text, len);
    if (invalid >= 0)
        return bad(ld, "invalid UTF-8 at byte %lld%s; save the file as UTF-8", (long long)invalid + 1,
                   where);
    return LINE_OK;
}

static int parse_line(loader *ld, char *line, size_t len, ct_example *ex) {
    if (check_bytes(ld, line, len, "") != LINE_OK) return LINE_BAD;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithOpts(line, &end, 1);
    if (!root) {
        const char *at = cJSON_GetErrorPtr();
        bool pretty = !strcmp(line, "{") || !strcmp(line, "[") || !strcmp(line, "[{");
        return bad(ld, "malformed JSON at column %ld; %s", column_of(line, at ? at : line),
                   pretty                          ? "this looks like a JSON document; write one object per line (JSON Lines)"
                   : ld->options->skip_bad_lines ? "fix or remove the line"
                                                 : "fix or remove the line (or set data.skip_bad_lines=true to skip such lines)");
    }
    int rc = cJSON_IsObject(root) ? parse_object(ld, root, ex)
                                  : bad(ld, "not a JSON object; %s", schema(ld->options->format));
    cJSON_Delete(root);
    return rc;
}

/* A skipped line is counted; its message is kept if it is the first. */
static int skip_or_fail(loader *ld, int rc) {
    if (rc == LINE_FATAL || !ld->options->skip_bad_lines) return -1;
    ct_examples *set = ld->set;
    if (!set->first_skipped && !(set->first_skipped = ct_strdup(ct_last_error()))) return -1;
    set->skipped++;
    ct_clear_error();
    return 0;
}

/* The next line of buffer[*cursor..end), NUL-terminated in place with a trailing CR removed;
 * *len gets its length (a NUL byte inside the line does not end it). */
static char *next_line(char **cursor, const char *end, size_t *len) {
    char *line = *cursor;
    if (!line || line >= end) return NULL;
    char *nl = memchr(line, '\n', (size_t)(end - line));
    char *stop = nl ? nl : line + (end - line);
    *cursor = nl ? nl + 1 : NULL;
    if (stop > line && stop[-1] == '\r') stop--;
    *stop = '\0';
    *len = (size_t)(stop - line);
    return line;
}

static bool full(const loader *ld) {
    return ld->options->max_examples && ld->set->count >= ld->options->max_examples;
}

static int load_jsonl(loader *ld, char *text, const char *end) {
    char *cursor = text, *line;
    size_t len;
    while (!full(ld) && (line = next_line(&cursor, end, &len))) {
        ld->line++;
        if (len == strlen(line) && is_blank(line)) continue;
        ct_example ex = {.label = -1, .line = ld->line};
        int rc = parse_line(ld, line, len, &ex);
        if (rc == LINE_OK) rc = add_example(ld, &ex) < 0 ? LINE_FATAL : LINE_OK;
        if (rc != LINE_OK) {
            free_example(&ex);
            CT_TRY(skip_or_fail(ld, rc));
        }
    }
    return 0;
}

/* ---- plain text ---- */

static int add_document(loader *ld, const char *text, size_t len, int64_t first_line) {
    int64_t line = ld->line;
    ld->line = first_line;
    int rc = check_bytes(ld, text, len, " of the document that starts here");
    ld->line = line;
    if (rc != LINE_OK) return skip_or_fail(ld, rc);
    char *copy = ct_malloc(len + 1, "a text document");
    if (!copy) return -1;
    memcpy(copy, text, len);
    copy[len] = '\0';
    ct_example ex = {.text = copy, .label = -1, .line = first_line};
    if (add_example(ld, &ex) < 0) {
        free(copy);
        return -1;
    }
    return 0;
}

/* A document is a run of non-blank lines (or one line with text_lines); its lines are joined
 * with '\n' by moving them together inside the buffer. */
static int load_text(loader *ld, char *text, const char *end) {
    char *cursor = text, *line, *doc = NULL, *doc_end = NULL;
    int64_t doc_line = 0;
    size_t len = 0;
    while (!full(ld)) {
        line = next_line(&cursor, end, &len);
        if (line) ld->line++;
        bool blank = !line || (len == strlen(line) && is_blank(line));
        if (doc && (blank || ld->options->text_lines)) {
            CT_TRY(add_document(ld, doc, (size_t)(doc_end - doc), doc_line));
            doc = NULL;
        }
        if (!line) break;
        if (blank || full(ld)) continue;
        if (!doc) {
            doc = doc_end = line;
            doc_line = ld->line;
        } else {
            *doc_end++ = '\n';
        }
        memmove(doc_end, line, len);
        doc_end += len;
    }
    return 0;
}

/* ---- loading a file ---- */

static int check_options(const char *path, const ct_example_options *options) {
    ct_data_format format = options->format;
    if (format < CT_DATA_INTENT || format > CT_DATA_TEXT)
        return ct_fail("%s: unknown data format %d; use intent, chat, dialog_intent or text", path,
                       (int)format);
    if ((format == CT_DATA_INTENT || format == CT_DATA_DIALOG_INTENT) && !options->labels)
        return ct_fail("%s: the %s format needs a label set; load labels.json first", path,
                       format_names[format]);
    struct stat st;
    int missing = stat(path, &st) != 0;
    if (missing || !S_ISREG(st.st_mode))
        return ct_fail("%s: cannot open the %s data (%s); check the data path", path,
                       format_names[format], missing ? strerror(errno) : "not a regular file");
    return 0;
}

static int fail_empty(const ct_examples *set) {
    if (set->skipped)
        return ct_fail("%s: no examples: all %zu were malformed and skipped (first: %s)", set->path,
                       set->skipped, set->first_skipped);
    return ct_fail("%s: no examples (the file is empty or blank); point the data path at a file "
                   "with at least one %s example", set->path, format_names[set->format]);
}

ct_examples *ct_examples_load(const char *path, const ct_example_options *options) {
    if (check_options(path, options) < 0) return NULL;
    size_t len;
    char *text = ct_tok_read_file(path, &len);
    if (!text) return NULL;
    ct_examples *set = ct_calloc(1, sizeof *set, "an example set");
    loader ld = {.set = set, .options = options};
    int rc = -1;
    if (set && (set->path = ct_strdup(path))) {
        set->format = options->format;
        set->labels = options->labels;
        char *start = len >= 3 && !memcmp(text, "\xEF\xBB\xBF", 3) ? text + 3 : text;
        rc = options->format == CT_DATA_TEXT ? load_text(&ld, start, text + len)
                                             : load_jsonl(&ld, start, text + len);
        if (rc == 0 && set->count == 0) rc = fail_empty(set);
    }
    free(text);
    if (rc < 0) {
        ct_examples_free(set);
        return NULL;
    }
    return set;
}
