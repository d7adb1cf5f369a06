/* Training data files in every format (intent, chat, dialog_intent, text). The first byte picks
 * the format and the options (skip_bad_lines, text_lines, max_examples); the rest is the file.
 * Labels: the bundled label set. */
#include "fuzz_util.h"

#include "datasets/examples.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static ct_label_set *labels;
    if (!labels) {
        labels = ct_label_set_load(ct_fuzz_source_path("datasets/data/labels.json"));
        CT_FUZZ_CHECK(labels, "the bundled labels load");
    }
    if (size < 1) return 0;
    static const ct_data_format formats[] = {CT_DATA_INTENT, CT_DATA_CHAT, CT_DATA_DIALOG_INTENT, CT_DATA_TEXT};
    ct_example_options o = {
        .format = formats[data[0] & 3],
        .labels = labels,
        .skip_bad_lines = (data[0] >> 2) & 1,
        .text_lines = (data[0] >> 3) & 1,
        .max_examples = (data[0] >> 4) & 3,
    };
    const char *path = ct_fuzz_write("data.jsonl", data + 1, size - 1);
    ct_examples *ex = ct_examples_load(path, &o);
    if (ex) {
        for (size_t i = 0; i < ex->count; i++)
            CT_FUZZ_CHECK(ex->items[i].line >= 1, "examples carry their line");
    }
    ct_examples_free(ex);
    ct_utf8_first_invalid((const char *)data, size);
    return 0;
}
