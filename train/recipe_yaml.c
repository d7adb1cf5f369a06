/* The YAML side of recipes: libyaml reads a document into dotted keys with line numbers (the
 * schema in recipe.c decides what each value means), and a resolved recipe is written back as
 * YAML text that libyaml reads to the same values. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <yaml.h>

#include "core/error.h"
#include "core/strbuf.h"
#include "core/atomic_file.h"
#include "train/recipe.h"

/* ---- reading ---- */

/* Recipes nest a section or two; anything deeper is a mistake, or an alias that points at a
 * mapping enclosing itself. */
#define MAX_DEPTH 8
#define MAX_KEY 256

typedef struct {
    yaml_document_t *doc;
    const char *source;
    ct_yaml_visit_fn visit;
    void *ctx;
} walk_state;

static bool is_null_scalar(const yaml_node_t *node) {
    if (node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) return false;
    const char *v = (const char *)node->data.scalar.value;
    size_t n = node->data.scalar.length;
    return n == 0 || (n == 1 && v[0] == '~') ||
           (n == 4 && (!memcmp(v, "null", 4) || !memcmp(v, "Null", 4) || !memcmp(v, "NULL", 4)));
}

/* A sequence of scalars without commas as "a,b", or NULL (a nested item, a comma, no memory). */
static char *join_items(walk_state *s, yaml_node_t *seq) {
    size_t total = 1;
    for (yaml_node_item_t *it = seq->data.sequence.items.start; it < seq->data.sequence.items.top; it++) {
        yaml_node_t *item = yaml_document_get_node(s->doc, *it);
        if (!item || item->type != YAML_SCALAR_NODE) return NULL;
        const char *v = (const char *)item->data.scalar.value;
        size_t n = item->data.scalar.length;
        if (memchr(v, ',', n) || memchr(v, '\0', n)) return NULL;
        total += n + 1;
    }
    char *out = malloc(total), *end = out;
    if (!out) return NULL;
    for (yaml_node_item_t *it = seq->data.sequence.items.start; it < seq->data.sequence.items.top; it++) {
        yaml_node_t *item = yaml_document_get_node(s->doc, *it);
        if (end != out) *end++ = ',';
        memcpy(end, item->data.scalar.value, item->data.scalar.length);
        end += item->data.scalar.length;
    }
    *end = '\0';
    return out;
}

static int walk_mapping(walk_state *s, yaml_node_t *mapping, const char *prefix, int depth) {
    if (depth > MAX_DEPTH)
        return ct_fail("%s:%zu: mappings nested deeper than %d levels", s->source, mapping->start_mark.line + 1,
                       MAX_DEPTH);
    for (yaml_node_pair_t *pair = mapping->data.mapping.pairs.start; pair < mapping->data.mapping.pairs.top; pair++) {
        yaml_node_t *key_node = yaml_document_get_node(s->doc, pair->key);
        yaml_node_t *value = yaml_document_get_node(s->doc, pair->value);
        int line = key_node ? (int)key_node->start_mark.line + 1 : 0;
        if (!key_node || !value || key_node->type != YAML_SCALAR_NODE)
            return ct_fail("%s:%d: a key must be a plain name, not a list or mapping", s->source, line);
        const char *name = (const char *)key_node->data.scalar.value;
        size_t name_len = key_node->data.scalar.length;
        char key[MAX_KEY];
        if (memchr(name, '\0', name_len) || strlen(prefix) + name_len + 2 > sizeof key)
            return ct_fail("%s:%d: key '%.60s' is too long or holds a NUL character", s->source, line, name);
        snprintf(key, sizeof key, "%s%s%s", prefix, prefix[0] ? "." : "", name);
        int rc;
        if (value->type == YAML_SCALAR_NODE) {
            rc = s->visit(s->ctx, key, is_null_scalar(value) ? CT_YAML_NULL : CT_YAML_SCALAR,
                          (const char *)value->data.scalar.value, value->data.scalar.length, line);
        } else if (value->type == YAML_SEQUENCE_NODE) {
            char *joined = join_items(s, value);
            rc = s->visit(s->ctx, key, CT_YAML_SEQUENCE, joined, joined ? strlen(joined) : 0, line);
            free(joined);
        } else {
            size_t entries = (size_t)(value->data.mapping.pairs.top - value->data.mapping.pairs.start);
            rc = s->visit(s->ctx, key, CT_YAML_MAPPING, "", entries, line);
            if (rc == 1) rc = walk_mapping(s, value, key, depth + 1);
        }
        if (rc < 0) return -1;
    }
    return 0;
}

/* libyaml's reader reports a byte offset; the others a line and column. */
static int fail_parse(const yaml_parser_t *p, const char *source, const char *text, size_t len) {
    if (p->error == YAML_MEMORY_ERROR) return ct_fail("%s: out of memory while parsing YAML", source);
    size_t line = p->problem_mark.line + 1, column = p->problem_mark.column + 1;
    if (p->error == YAML_READER_ERROR) {
        line = 1;
        for (size_t i = 0; i < p->problem_offset && i < len; i++) line += text[i] == '\n';
        return ct_fail("%s:%zu: not a YAML text: %s (a recipe is UTF-8 text)", source, line,
                       p->problem ? p->problem : "unreadable");
    }
    return ct_fail("%s:%zu:%zu: YAML syntax error: %s%s%s", source, line, column, p->problem ? p->problem : "?",
                   p->context ? " " : "", p->context ? p->context : "");
}

static int visit_document(yaml_parser_t *parser, yaml_document_t *doc, const char *source, ct_yaml_visit_fn visit,
                          void *ctx) {
    yaml_node_t *root = yaml_document_get_root_node(doc);
    if (!root) return 0;
    if (root->type == YAML_SCALAR_NODE && is_null_scalar(root)) return 0;
    if (root->type != YAML_MAPPING_NODE)
        return ct_fail("%s:%zu: a recipe is a mapping of keys (key: value), not a %s", source,
                       root->start_mark.line + 1, root->type == YAML_SEQUENCE_NODE ? "list" : "single value");
    walk_state state = {doc, source, visit, ctx};
    CT_TRY(walk_mapping(&state, root, "", 0));
    /* One document per recipe: a second one would be silently ignored otherwise. */
    yaml_document_t next;
    if (!yaml_parser_load(parser, &next)) return -2;
    bool more = yaml_document_get_root_node(&next) != NULL;
    int line = more ? (int)next.start_mark.line + 1 : 0;
    yaml_document_delete(&next);
    if (more) return ct_fail("%s:%d: a second YAML document; a recipe is one document", source, line);
    return 0;
}

int ct_yaml_visit(const char *text, size_t len, const char *source, ct_yaml_visit_fn visit, void *ctx) {
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser)) return ct_fail("%s: cannot start the YAML parser", source);
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    yaml_document_t doc;
    int rc;
    if (!yaml_parser_load(&parser, &doc)) {
        rc = fail_parse(&parser, source, text, len);
    } else {
        rc = visit_document(&parser, &doc, source, visit, ctx);
        if (rc == -2) rc = fail_parse(&parser, source, text, len);
        yaml_document_delete(&doc);
    }
    yaml_parser_delete(&parser);
    return rc;
}

/* ---- writing ---- */

/* The shortest %g form that strtod reads back to the same double, written out in full when it is
 * a whole number below 1e16 (10000.0, not 1e+04), and always with a '.' in the mantissa
 * (1.0e-08), which YAML 1.1 readers need to see a float rather than a string. */
static void format_double(double v, char *buf, size_t size) {
    for (int precision = 1; precision <= 17; precision++) {
        snprintf(buf, size, "%.*g", precision, v);
        if (strtod(buf, NULL) == v) break;
    }
    if (strstr(buf, "e+") && fabs(v) < 1e16) snprintf(buf, size, "%.0f", v); /* exactly integral here */
    if (strchr(buf, '.')) return;
    char *exponent = strchr(buf, 'e');
    char tail[16] = "";
    if (exponent) {
        snprintf(tail, sizeof tail, "%s", exponent);
        *exponent = '\0';
    }
    snprintf(buf + strlen(buf), size - strlen(buf), ".0%s", tail);
}

int ct_recipe_format_value(const ct_recipe *r, const ct_recipe_key *k, char *buf, size_t size) {
    const void *p = (const char *)r + k->offset;
    char number[40];
    const char *text = number;
    switch (k->type) {
    case CT_RECIPE_INT: snprintf(number, sizeof number, "%d", *(const int *)p); break;
    case CT_RECIPE_FLOAT: format_double(*(const double *)p, number, sizeof number); break;
    case CT_RECIPE_BOOL: text = *(const bool *)p ? "true" : "false"; break;
    case CT_RECIPE_ENUM: {
        int index = *(const int *)p, n = 0;
        while (k->choices[n]) n++;
        if (index < 0 || index >= n) return ct_fail("%s: %d is not one of its %d values", k->key, index, n);
        text = k->choices[index];
        break;
    }
    case CT_RECIPE_STRING: case CT_RECIPE_LIST: text = *(char *const *)p; break;
    default: return ct_fail("%s is a section, not a key", k->key);
    }
    if (strlen(text) >= size) return ct_fail("%s: value longer than %zu bytes", k->key, size);
    memcpy(buf, text, strlen(text) + 1);
    return 0;
}

/* Decodes one UTF-8 character; returns its length, or 0 when the bytes are not UTF-8. */
static int utf8_decode(const unsigned char *s, uint32_t *cp) {
    int n = s[0] < 0x80 ? 1 : (s[0] & 0xE0) == 0xC0 ? 2 : (s[0] & 0xF0) == 0xE0 ? 3 : (s[0] & 0xF8) == 0xF0 ? 4 : 0;
    if (!n) return 0;
    *cp = n == 1 ? s[0] : (uint32_t)(s[0] & (0x7F >> n));
    for (int i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        *cp = (*cp << 6) | (s[i] & 0x3F);
    }
    return n;
}

/* A YAML double-quoted string. Characters libyaml refuses in a text (C0 and C1 controls, DEL,
 * U+FFFE, U+FFFF) and those it reads as line breaks (U+0085, U+2028, U+2029) or strips (U+FEFF)
 * are escaped; everything else, Chinese included, is written as it is. */
static int put_quoted(ct_strbuf *b, const char *key, const char *s) {
    CT_TRY(ct_strbuf_append(b, "\"", 1));
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        uint32_t cp;
        int n = utf8_decode(p, &cp);
        if (!n) return ct_fail("%s: the value is not valid UTF-8", key);
        char escape[16] = "";
        if (cp == '"' || cp == '\\') snprintf(escape, sizeof escape, "\\%c", (char)cp);
        else if (cp == '\n') snprintf(escape, sizeof escape, "\\n");
        else if (cp == '\t') snprintf(escape, sizeof escape, "\\t");
        else if (cp == '\r') snprintf(escape, sizeof escape, "\\r");
        else if (cp < 0x20 || (cp >= 0x7F && cp <= 0x9F) || cp == 0x2028 || cp == 0x2029 || cp == 0xFEFF ||
                 cp == 0xFFFE || cp == 0xFFFF)
            snprintf(escape, sizeof escape, "\\u%04X", (unsigned)cp);
        CT_TRY(escape[0] ? ct_strbuf_append_str(b, escape) : ct_strbuf_append(b, (const char *)p, (size_t)n));
        p += n;
    }
    return ct_strbuf_append(b, "\"", 1);
}

/* A list's comma-separated text as a YAML flow sequence of quoted items: ["a", "b"], or []. */
static int put_list(ct_strbuf *b, const char *key, const char *items) {
    CT_TRY(ct_strbuf_append_str(b, "["));
    for (const char *p = items; *p;) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        char *item = malloc(n + 1);
        if (!item) return ct_fail("%s: out of memory", key);
        memcpy(item, p, n);
        item[n] = '\0';
        int rc = ct_strbuf_append_str(b, p == items ? "" : ", ");
        if (rc == 0) rc = put_quoted(b, key, item);
        free(item);
        CT_TRY(rc);
        p += n + (end ? 1 : 0);
    }
    return ct_strbuf_append_str(b, "]");
}

static int put_entry(ct_strbuf *b, const ct_recipe *r, const ct_recipe_key *k) {
    const char *dot = strchr(k->key, '.');
    CT_TRY(ct_strbuf_append_str(b, dot ? "  " : ""));
    CT_TRY(ct_strbuf_append_str(b, dot ? dot + 1 : k->key));
    CT_TRY(ct_strbuf_append_str(b, ": "));
    if (k->type == CT_RECIPE_STRING) CT_TRY(put_quoted(b, k->key, *(char *const *)((const char *)r + k->offset)));
    else if (k->type == CT_RECIPE_LIST) CT_TRY(put_list(b, k->key, *(char *const *)((const char *)r + k->offset)));
    else {
        char value[64];
        CT_TRY(ct_recipe_format_value(r, k, value, sizeof value));
        CT_TRY(ct_strbuf_append_str(b, value));
    }
    return ct_strbuf_append_str(b, "\n");
}

char *ct_recipe_to_yaml(const ct_recipe *r) {
    ct_strbuf b = {0};
    size_t n;
    const ct_recipe_key *schema = ct_recipe_schema(&n);
    int rc = ct_strbuf_append_str(&b, "# ctune recipe, resolved: every key with its value, defaults included\n");
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (schema[i].type == CT_RECIPE_SECTION) {
            rc = ct_strbuf_append_str(&b, "\n");
            if (rc == 0) rc = ct_strbuf_append_str(&b, schema[i].key);
            if (rc == 0) rc = ct_strbuf_append_str(&b, ":\n");
        } else {
            rc = put_entry(&b, r, &schema[i]);
        }
    }
    if (rc < 0) {
        free(b.data);
        return NULL;
    }
    return b.data;
}

int ct_recipe_save(const ct_recipe *r, const char *path) {
    char *text = ct_recipe_to_yaml(r);
    if (!text) return ct_fail_context("saving recipe %s: ", path);
    int rc = ct_atomic_write_file(path, text, strlen(text));
    free(text);
    return rc < 0 ? ct_fail_context("cannot write recipe: ") : 0;
}
