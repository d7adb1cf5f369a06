/* labels.json: an object of id -> display text, kept in file order. */
#include "datasets/label_set.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <stdbool.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/error.h"
#include "datasets/tokenizer.h"

struct ct_label_set {
    char *path;
    int count;
    char **ids;
    char **displays;
};

void ct_label_set_free(ct_label_set *labels) {
    if (!labels) return;
    for (int i = 0; i < labels->count; i++) {
        free(labels->ids[i]);
        free(labels->displays[i]);
    }
    free(labels->ids);
    free(labels->displays);
    free(labels->path);
    free(labels);
}

static bool has_outer_space(const char *s) {
    size_t n = strlen(s);
    return n && (isspace((unsigned char)s[0]) || isspace((unsigned char)s[n - 1]));
}

/* One entry: a non-empty id mapped to a non-empty, trimmed, unique display text. */
static int check_entry(const ct_label_set *labels, const cJSON *entry) {
    const char *id = entry->string, *path = labels->path;
    if (!id || !*id) return ct_fail("%s: a label has an empty id; give every label a name", path);
    if (ct_label_set_index(labels, id) >= 0)
        return ct_fail("%s: label \"%s\" appears twice; keep one", path, id);
    if (!cJSON_IsString(entry) || !*entry->valuestring)
        return ct_fail("%s: label \"%s\" needs a non-empty string display text (the model's answer)",
                       path, id);
    if (has_outer_space(entry->valuestring))
        return ct_fail("%s: the display text of \"%s\" starts or ends with whitespace; trim it", path,
                       id);
    int other = ct_label_set_index_of_display(labels, entry->valuestring);
    if (other >= 0)
        return ct_fail("%s: labels \"%s\" and \"%s\" share the display text \"%s\", so evaluation "
                       "could not tell them apart; make the display texts unique",
                       path, labels->ids[other], id, entry->valuestring);
    return 0;
}

static int fill(ct_label_set *labels, const cJSON *root) {
    const char *path = labels->path;
    if (!cJSON_IsObject(root))
        return ct_fail("%s: expected a JSON object of label id -> display text", path);
    int n = cJSON_GetArraySize(root);
    if (n == 0) return ct_fail("%s: no labels; add at least one \"id\": \"display text\" entry", path);
    labels->ids = ct_calloc((size_t)n, sizeof *labels->ids, "label ids");
    labels->displays = ct_calloc((size_t)n, sizeof *labels->displays, "label display texts");
    if (!labels->ids || !labels->displays) return -1;
    for (const cJSON *entry = root->child; entry; entry = entry->next) {
        CT_TRY(check_entry(labels, entry));
        int i = labels->count;
        labels->ids[i] = ct_strdup(entry->string);
        labels->displays[i] = ct_strdup(entry->valuestring);
        if (!labels->ids[i] || !labels->displays[i]) {
            labels->count++; /* so that free releases the half-made entry */
            return -1;
        }
        labels->count++;
    }
    return 0;
}

ct_label_set *ct_label_set_load(const char *path) {
    struct stat st;
    int missing = stat(path, &st) != 0;
    if (missing || !S_ISREG(st.st_mode)) {
        ct_fail("%s: cannot open the label set (%s); point the labels path at a labels.json file",
                path, missing ? strerror(errno) : "not a regular file");
        return NULL;
    }
    size_t len;
    char *text = ct_tok_read_file(path, &len);
    if (!text) return NULL;
    cJSON *root = cJSON_ParseWithLength(text, len);
    free(text);
    ct_label_set *labels = ct_calloc(1, sizeof *labels, "a label set");
    int rc = -1;
    if (!root) ct_fail("%s: malformed JSON; expected {\"id\": \"display text\", ...}", path);
    else if (labels && (labels->path = ct_strdup(path))) rc = fill(labels, root);
    cJSON_Delete(root);
    if (rc < 0) {
        ct_label_set_free(labels);
        return NULL;
    }
    return labels;
}

int ct_label_set_count(const ct_label_set *labels) { return labels->count; }

int ct_label_set_index(const ct_label_set *labels, const char *id) {
    for (int i = 0; i < labels->count; i++)
        if (!strcmp(labels->ids[i], id)) return i;
    return -1;
}

int ct_label_set_index_of_display(const ct_label_set *labels, const char *display) {
    for (int i = 0; i < labels->count; i++)
        if (!strcmp(labels->displays[i], display)) return i;
    return -1;
}

const char *ct_label_set_id(const ct_label_set *labels, int i) {
    return i >= 0 && i < labels->count ? labels->ids[i] : NULL;
}

const char *ct_label_set_display(const ct_label_set *labels, int i) {
    return i >= 0 && i < labels->count ? labels->displays[i] : NULL;
}

const char *ct_label_set_path(const ct_label_set *labels) { return labels->path; }
