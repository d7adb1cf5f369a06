/* Training examples read from files: JSON Lines in one of three schemas, or plain text for
 * pretraining (docs/datasets.md, "Training data formats").
 *
 *   intent          {"text": "...", "label": "<id>"}
 *   chat            {"messages": [{"role": "system"|"user"|"assistant"|"tool", "content": "..."}, ...]}
 *                   with at least one assistant message (the training targets)
 *   dialog_intent   {"messages": [...], "label": "<id>"}: the label of the last message, which
 *                   must be a user turn, read in the context of the ones before it; a
 *                   {"text", "label"} line is a dialogue of that one user turn, so single
 *                   messages and dialogues can share a file
 *   text            a text file; one document per paragraph (lines up to a blank line), or per
 *                   non-empty line with text_lines
 *
 * Files are UTF-8; a byte-order mark and CRLF line ends are accepted, blank lines are ignored,
 * keys other than those above are ignored. A malformed line (bad JSON, invalid UTF-8, a missing
 * or mistyped field) fails with "file:line: what; fix", or, with skip_bad_lines, is skipped and
 * counted. A label that the label set does not have always fails: it usually means the wrong
 * labels file, and dropping a class silently would be worse. */
#ifndef CT_EXAMPLES_H
#define CT_EXAMPLES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "datasets/label_set.h"
#include "datasets/tokenizer.h"

typedef enum {
    CT_DATA_INTENT = 1,
    CT_DATA_CHAT = 2,
    CT_DATA_DIALOG_INTENT = 3,
    CT_DATA_TEXT = 4,
} ct_data_format;

/* "intent", "chat", "dialog_intent" or "text". */
int ct_data_format_parse(const char *name, ct_data_format *format);
const char *ct_data_format_name(ct_data_format format);

typedef struct {
    const char *text;                /* intent: the utterance; text: the document */
    const ct_chat_message *messages; /* chat, dialog_intent */
    size_t n_messages;
    int label;    /* intent, dialog_intent: index in the label set; -1 for the others */
    int64_t line; /* 1-based line of the file where the example starts */
} ct_example;

typedef struct {
    ct_data_format format;
    const ct_label_set *labels; /* required by intent and dialog_intent; must outlive the set */
    bool skip_bad_lines;        /* skip and count malformed lines instead of failing */
    size_t max_examples;        /* keep only the first N examples; 0 = all */
    bool text_lines;            /* text: one document per non-empty line, not per paragraph */
} ct_example_options;

typedef struct {
    ct_data_format format;
    const ct_label_set *labels;
    char *path;
    ct_example *items;
    size_t count;
    size_t skipped;      /* malformed lines (or text documents) skipped */
    char *first_skipped; /* the message of the first one skipped, or NULL */
} ct_examples;

/* Reads `path`. NULL on failure with a one-line message: a missing file, a malformed line
 * (file:line), an unknown label (file:line, naming it), or no examples at all. */
ct_examples *ct_examples_load(const char *path, const ct_example_options *options);
void ct_examples_free(ct_examples *examples);

/* The byte offset of the first invalid UTF-8 sequence in s[0..len), or -1 when it is valid. */
int64_t ct_utf8_first_invalid(const char *s, size_t len);

#endif
