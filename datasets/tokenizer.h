/* The tokenizer: Hugging Face tokenizer.json for byte-level BPE models (Qwen2/2.5/3, LLaMA 3),
 * reproducing the `tokenizers` library's ids exactly; chat templates (ChatML, LLaMA 3 headers)
 * with a mask of the assistant's tokens; and a byte-level BPE trainer that writes files the
 * library loads. docs/tokenizer.md describes what is supported and how exactness is tested.
 *
 * A loaded tokenizer is read-only, so one tokenizer may encode from several threads at once. */
#ifndef CT_TOKENIZER_H
#define CT_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

typedef struct ct_tokenizer ct_tokenizer;

/* A growable list of token ids. Zero-initialise it; encoders append to it. */
typedef struct {
    int32_t *ids;
    size_t len, cap;
} ct_token_list;

int ct_token_list_push(ct_token_list *list, int32_t id);
void ct_token_list_free(ct_token_list *list);

/* Loads `path`: a tokenizer.json file, or a folder holding one. Components ctune does not
 * implement (a Unigram or WordPiece model, SentencePiece-style BPE, an unknown normalizer or
 * pre-tokenizer) are refused by name. NULL on failure (ct_last_error names the file). */
ct_tokenizer *ct_tokenizer_load(const char *path);
/* The same from tokenizer.json text in memory (a copy kept in a checkpoint); `source` names it
 * in messages and is what ct_tokenizer_path returns. */
ct_tokenizer *ct_tokenizer_load_text(const char *json, size_t len, const char *source);
void ct_tokenizer_free(ct_tokenizer *tok);

/* Encoding flags. By default a special added token's text (e.g. "<|im_end|>") inside the input
 * is encoded as ordinary text, so user or dataset text cannot inject control tokens; this equals
 * the library with `encode_special_tokens = True`. Non-special added tokens (Qwen's <think>)
 * still match, as they do in the library. */
enum {
    CT_TOK_MATCH_SPECIAL = 1 << 0, /* match special tokens in the text: the library's default */
    CT_TOK_ADD_SPECIAL = 1 << 1,   /* add the post-processor's tokens (LLaMA 3's BOS) */
};

/* Appends the ids of `len` bytes of `text` to `out`. Any bytes are accepted: invalid UTF-8 is
 * kept as its own raw bytes, which decode back unchanged. Returns 0, or -1. */
int ct_tokenizer_encode(const ct_tokenizer *tok, const char *text, size_t len, int flags,
                        ct_token_list *out);

/* Decoding flags. */
enum {
    CT_DECODE_SKIP_SPECIAL = 1 << 0, /* leave out special added tokens */
    CT_DECODE_LOSSY = 1 << 1,        /* replace invalid UTF-8 by U+FFFD, as the library's str does */
};

/* The bytes the ids stand for (ByteLevel decoder), NUL-terminated, in a buffer the caller
 * frees; *out_len (if not NULL) gets the length. By default the bytes are returned as they are,
 * so any encoded input, even invalid UTF-8, decodes back exactly. Unknown ids fail. */
char *ct_tokenizer_decode(const ct_tokenizer *tok, const int32_t *ids, size_t n, int flags,
                          size_t *out_len);

/* One past the largest id (model vocabulary and added tokens). */
int32_t ct_tokenizer_vocab_size(const ct_tokenizer *tok);
/* The id of a token written as in tokenizer.json (added-token content, or the byte-level form
 * of a vocabulary entry such as "Ġthe"), or -1. */
int32_t ct_tokenizer_token_id(const ct_tokenizer *tok, const char *token);
/* The tokenizer.json form of an id (byte-level for vocabulary entries), or NULL. */
const char *ct_tokenizer_token_text(const ct_tokenizer *tok, int32_t id);
int ct_tokenizer_is_special(const ct_tokenizer *tok, int32_t id);
/* The file it was loaded from. */
const char *ct_tokenizer_path(const ct_tokenizer *tok);

/* Reads a whole file ("-": standard input) into a NUL-terminated buffer the caller frees;
 * *len (if not NULL) gets its length. Fails naming the path. */
char *ct_tok_read_file(const char *path, size_t *len);

/* ---- chat templates ---- */

typedef enum { CT_CHAT_CHATML = 1, CT_CHAT_LLAMA3 = 2 } ct_chat_format;

typedef struct {
    const char *role; /* a plain word: system, user, assistant, tool, ... */
    const char *content;
} ct_chat_message;

typedef enum {
    CT_CHAT_MASK_ALL = 0,  /* every assistant turn is a training target */
    CT_CHAT_MASK_LAST = 1, /* only the last assistant turn */
} ct_chat_mask_mode;

typedef struct {
    int add_generation_prompt; /* end with the assistant header, as for generation */
    int allow_special;         /* match special-token text inside content (the library's way) */
    ct_chat_mask_mode mask;
} ct_chat_options;

/* A template bound to a tokenizer (which must outlive it): the format and its marker ids. */
typedef struct {
    const ct_tokenizer *tok;
    ct_chat_format format;
    int32_t begin_id;      /* LLaMA 3: <|begin_of_text|> */
    int32_t start_id;      /* <|im_start|> or <|start_header_id|> */
    int32_t header_end_id; /* LLaMA 3: <|end_header_id|> */
    int32_t end_id;        /* <|im_end|> or <|eot_id|>: closes a turn, masked with the content */
    /* The system message rendered first when a conversation does not start with one (the
     * prompt a model was trained with; see ct_chat_template_jinja). NULL or "": none. Borrowed:
     * the caller keeps it alive. The loaders leave it NULL. */
    const char *default_system;
} ct_chat_template;

/* The family a Jinja chat_template renders, found by its marker strings; templates of other
 * families are refused by name. Returns 0, or -1. */
int ct_chat_format_detect(const char *template_text, ct_chat_format *format);
/* Binds `format` to `tok`, looking up the marker tokens. */
int ct_chat_template_init(ct_chat_template *tpl, const ct_tokenizer *tok, ct_chat_format format);
/* Reads the chat_template of tokenizer_config.json (`path` is the file or its folder). Without
 * that file, or without a chat_template in it, the format follows the tokenizer's marker tokens. */
int ct_chat_template_load(ct_chat_template *tpl, const ct_tokenizer *tok, const char *path);

/* The Jinja chat_template (for tokenizer_config.json) that renders exactly what ct_chat_encode
 * renders for `format`, with `default_system` (NULL or "": none) as the system message of a
 * conversation that brings none: what transformers' apply_chat_template and llama.cpp use. The
 * text is embedded as an escaped Jinja string literal. A new string the caller frees, or NULL. */
char *ct_chat_template_jinja(ct_chat_format format, const char *default_system);
/* Sets that template as the chat_template of dir/tokenizer_config.json (created when missing,
 * other keys kept) and of dir/chat_template.jinja when the folder has one (newer transformers
 * read that file first). Each file is replaced atomically. */
int ct_chat_template_save(const char *dir, ct_chat_format format, const char *default_system);

/* Renders and encodes a conversation. `out` is reset and filled; *mask gets a new array (the
 * caller frees) of out->len bytes, 1 for the assistant content tokens and the end token that
 * closes each masked turn, 0 elsewhere (markers, role headers, other turns). */
int ct_chat_encode(const ct_chat_template *tpl, const ct_chat_message *messages, size_t n_messages,
                   const ct_chat_options *options, ct_token_list *out, uint8_t **mask);

/* ---- the byte-level BPE trainer ---- */

typedef struct ct_bpe_trainer ct_bpe_trainer;

typedef struct {
    int32_t vocab_size;   /* the whole vocabulary: 256 bytes + merges + 3 special tokens */
    int64_t min_frequency; /* stop when the best pair occurs fewer times (at least 1) */
} ct_bpe_train_options;

typedef struct {
    int32_t vocab_size; /* reached (less than asked when the corpus runs out of pairs) */
    int32_t n_merges;
    int64_t n_words, n_distinct_words;
    int64_t corpus_bytes;
} ct_bpe_train_report;

ct_bpe_trainer *ct_bpe_trainer_new(void);
void ct_bpe_trainer_free(ct_bpe_trainer *trainer);
/* Counts the pre-tokens of a text (NFC, then the Qwen2 split regex; the ChatML special tokens
 * are boundaries, not text). */
int ct_bpe_trainer_add_text(ct_bpe_trainer *trainer, const char *text, size_t len);
/* Adds a corpus file: JSONL (.jsonl, one record per line) or JSON (.json, one value): every
 * string value except those under keys named "id" and "role"; any other file is plain text,
 * read whole. */
int ct_bpe_trainer_add_file(ct_bpe_trainer *trainer, const char *path);
/* Learns the merges. Call once, after the texts. */
int ct_bpe_trainer_train(ct_bpe_trainer *trainer, const ct_bpe_train_options *options,
                         ct_bpe_train_report *report);
/* Writes tokenizer.json and tokenizer_config.json (ChatML template) into `dir`, creating it if
 * needed; each file is written under a temporary name, then renamed. */
int ct_bpe_trainer_save(const ct_bpe_trainer *trainer, const char *dir);

/* The Qwen2 pre-tokenizer regex the trainer writes. */
extern const char *const CT_QWEN2_SPLIT_REGEX;

#endif
