/* A label set: the intents of a classification task, read from a labels.json object that maps
 * each id to its display text ({"return_request": "退货申请", ...}). The file's order is kept:
 * a label's index is its position in the file, so indices (and confusion matrices) are stable
 * across runs. The display text is what the model is trained to answer and what evaluation
 * scores, so it must be non-empty, unique and free of surrounding whitespace (LLaMA 3's
 * template trims content, which would make the scored answer differ from the text). */
#ifndef CT_LABEL_SET_H
#define CT_LABEL_SET_H

typedef struct ct_label_set ct_label_set;

/* Loads `path`. NULL on failure, with a one-line message naming the file (missing, malformed
 * JSON, not an object, no labels, a display text that is not a non-empty trimmed string, two
 * labels with the same display text). */
ct_label_set *ct_label_set_load(const char *path);
void ct_label_set_free(ct_label_set *labels);

int ct_label_set_count(const ct_label_set *labels);
/* The index of an id, or -1 when the set has no such id (no error is recorded). */
int ct_label_set_index(const ct_label_set *labels, const char *id);
/* The id and display text of index i (0 <= i < count), or NULL when i is out of range. */
const char *ct_label_set_id(const ct_label_set *labels, int i);
const char *ct_label_set_display(const ct_label_set *labels, int i);
/* The index whose display text is `display`, or -1. */
int ct_label_set_index_of_display(const ct_label_set *labels, const char *display);
/* The file the set was read from. */
const char *ct_label_set_path(const ct_label_set *labels);

#endif
