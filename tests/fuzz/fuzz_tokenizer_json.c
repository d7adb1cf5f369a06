/* A tokenizer.json (model, vocabulary, merges, added tokens, normalizer, pre-tokenizer regexes);
 * a tokenizer that loads then encodes and decodes a short mixed text. */
#include "fuzz_util.h"

#include <string.h>

#include "datasets/tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ct_tokenizer *tok = ct_tokenizer_load_text((const char *)data, size, "tokenizer.json");
    if (!tok) return 0;
    static const char text[] = "Hello 你好, <|im_end|> 123 \xff\xfe!";
    ct_token_list ids = {0};
    if (ct_tokenizer_encode(tok, text, sizeof text - 1, CT_TOK_MATCH_SPECIAL | CT_TOK_ADD_SPECIAL, &ids) == 0) {
        char *back = ct_tokenizer_decode(tok, ids.ids, ids.len, 0, NULL);
        free(back);
    }
    ct_token_list_free(&ids);
    int32_t n = ct_tokenizer_vocab_size(tok);
    for (int32_t id = 0; id < n && id < 64; id++) ct_tokenizer_token_text(tok, id);
    ct_tokenizer_free(tok);
    return 0;
}
