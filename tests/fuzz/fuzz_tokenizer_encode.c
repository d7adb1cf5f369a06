/* The tokenizer on arbitrary bytes. Two real tokenizers (the trained Qwen2-style one and the
 * LLaMA 3-style synthetic one); the first byte picks the tokenizer and the flags. Invariant
 * (datasets/tokenizer.h): any bytes encode, and with the tokenizer that has no normalizer (the
 * LLaMA 3-style one; the other applies NFC, which changes "e\u0301" to "\u00e9"), the ids decode back
 * to exactly those bytes when special tokens are neither matched nor added, and no (non-special)
 * added token was matched. Added tokens do not round-trip in the tokenizers library either, and
 * ctune matches it: "caf\u00e9" decodes through the ByteLevel decoder, which turns "\u00e9" into
 * the byte 0xE9 (Tokenizer.decode([714]) == "caf\ufffd"), and one with lstrip eats the space
 * before it (" [BOTH]" decodes as "[BOTH]"). */
#include "fuzz_util.h"

#include <stdbool.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "datasets/tokenizer.h"

static ct_tokenizer *tokenizers[2];

static ct_tokenizer *tokenizer(int which) {
    static const char *const files[] = {"tests/fixtures/tokenizer/trained/tokenizer.json",
                                        "tests/fixtures/tokenizer/synthetic/llama3_style/tokenizer.json"};
    if (!tokenizers[which]) {
        tokenizers[which] = ct_tokenizer_load(ct_fuzz_source_path(files[which]));
        CT_FUZZ_CHECK(tokenizers[which], "the fixture tokenizer loads");
    }
    return tokenizers[which];
}

/* Ids of the LLaMA 3-style fixture's added tokens. */
static int32_t added[64];
static int n_added = -1;

static void find_added(void) {
    size_t len;
    char *json = ct_tok_read_file(ct_fuzz_source_path("tests/fixtures/tokenizer/synthetic/llama3_style/tokenizer.json"), &len);
    cJSON *root = json ? cJSON_ParseWithLength(json, len) : NULL;
    CT_FUZZ_CHECK(root, "the fixture tokenizer parses");
    n_added = 0;
    const cJSON *t;
    cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(root, "added_tokens")) {
        if (n_added < 64) added[n_added++] = (int32_t)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(t, "id"));
    }
    cJSON_Delete(root);
    free(json);
}

static bool round_trips(const ct_token_list *ids) {
    if (n_added < 0) find_added();
    for (size_t i = 0; i < ids->len; i++)
        for (int k = 0; k < n_added; k++)
            if (ids->ids[i] == added[k]) return false;
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    int which = data[0] & 1;
    const ct_tokenizer *tok = tokenizer(which);
    int flags = (data[0] & 2 ? CT_TOK_MATCH_SPECIAL : 0) | (data[0] & 4 ? CT_TOK_ADD_SPECIAL : 0);
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    ct_token_list ids = {0};
    CT_FUZZ_CHECK(ct_tokenizer_encode(tok, text, len, flags, &ids) == 0, "any bytes encode");
    size_t back_len = 0;
    char *back = ct_tokenizer_decode(tok, ids.ids, ids.len, 0, &back_len);
    CT_FUZZ_CHECK(back, "encoded ids decode");
    if (which == 1 && !(flags & (CT_TOK_MATCH_SPECIAL | CT_TOK_ADD_SPECIAL)) && round_trips(&ids))
        CT_FUZZ_CHECK(back_len == len && memcmp(back, text, len) == 0, "decode(encode(text)) == text");
    free(back);
    back = ct_tokenizer_decode(tok, ids.ids, ids.len, CT_DECODE_LOSSY | CT_DECODE_SKIP_SPECIAL, NULL);
    free(back);
    ct_token_list_free(&ids);
    return 0;
}
