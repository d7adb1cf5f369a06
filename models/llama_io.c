/* A LLaMA-family model from and to a Hugging Face folder.
 *
 * Loading reads config.json, refuses what it cannot run (by name: architecture, rope type,
 * tokenizer model), opens the safetensors (one file or an index of shards; the reader validates
 * every header entry against the file size first), checks that the file holds exactly the
 * tensors the config implies with exactly their shapes, and only then allocates the f32
 * parameters and converts the data into them. So a lying config or checkpoint fails in
 * milliseconds with a message naming the tensor, not after gigabytes of allocation.
 *
 * Saving writes model.safetensors, config.json and the tokenizer files, each to a temporary
 * name in the target folder that is synced and renamed over the old file
 * (core/atomic_file.h). */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"
#include "core/atomic_file.h"
#include "checkpoints/safetensors.h"
#include "datasets/tokenizer.h"
#include "models/llama.h"
#include "models/llama_internal.h"

/* Files of an HF folder that belong to the tokenizer and generation, copied on save. */
static const char *const TOKENIZER_FILES[] = {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                                              "generation_config.json", "chat_template.jinja"};

static bool file_exists(const char *dir, const char *name) {
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return access(path, R_OK) == 0;
}

static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

static const char *shape_text(int ndim, const int64_t *shape, char *buf, size_t size) {
    int off = snprintf(buf, size, "[");
    for (int i = 0; i < ndim && off < (int)size; i++)
        off += snprintf(buf + off, size - (size_t)off, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (off < (int)size) snprintf(buf + off, size - (size_t)off, "]");
    return buf;
}

int ct_llama_check_tokenizer(const ct_llama *m, const struct ct_tokenizer *tok) {
    const int32_t n = ct_tokenizer_vocab_size(tok);
    if (n > m->config.vocab_size)
        return ct_fail("%s: the tokenizer has %d ids but the model only %lld embedding rows; the tokenizer and the "
                       "model do not belong together",
                       ct_tokenizer_path(tok), (int)n, (long long)m->config.vocab_size);
    return 0;
}

/* tokenizer.json when present (the tokenizer loader refuses unsupported models by name);
 * a folder with only LLaMA 2's SentencePiece tokenizer.model is refused here. */
static int load_tokenizer(ct_llama *m, const char *dir) {
    char path[PATH_MAX];
    if (!file_exists(dir, "tokenizer.json")) {
        if (file_exists(dir, "tokenizer.model"))
            return ct_fail("%s/tokenizer.model: SentencePiece tokenizers (LLaMA 2 and older) are not supported; ctune "
                           "reads byte-level BPE tokenizer.json files (LLaMA 3, Qwen2/2.5/3)",
                           dir);
        return 0; /* a weights-only folder: the caller brings a tokenizer */
    }
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    m->tokenizer = ct_tokenizer_load(path);
    if (!m->tokenizer) return -1;
    return ct_llama_check_tokenizer(m, m->tokenizer);
}

/* Names the file lists that the config does not explain. rotary_emb.inv_freq buffers (older
 * exports) and a tied model's redundant lm_head.weight are ignored, as transformers does. */
static int check_unexpected(const ct_safetensors *st, const ct_llama_param_spec *specs, int n, bool tied) {
    char listed[512] = "";
    int unexpected = 0;
    for (int i = 0; i < ct_safetensors_count(st); i++) {
        const char *name = ct_safetensors_at(st, i)->name;
        bool known = ends_with(name, ".rotary_emb.inv_freq") || (tied && !strcmp(name, "lm_head.weight"));
        for (int j = 0; j < n && !known; j++) known = !strcmp(specs[j].name, name);
        if (known) continue;
        if (unexpected++ < 5) {
            size_t len = strlen(listed);
            snprintf(listed + len, sizeof listed - len, "%s%s", len ? ", " : "", name);
        }
    }
    if (unexpected)
        return ct_fail("%s: %d tensors that config.json does not describe (%s%s); is config.json from another model?",
                       ct_safetensors_path(st), unexpected, listed, unexpected > 5 ? ", ..." : "");
    return 0;
}

static int check_checkpoint(const ct_safetensors *st, const ct_llama_param_spec *specs, int n, bool tied) {
    const char **names = ct_calloc((size_t)n, sizeof *names, "parameter names");
    if (!names) return -1;
    for (int i = 0; i < n; i++) names[i] = specs[i].name;
    int rc = ct_safetensors_check_names(st, names, n, true);
    free(names);
    CT_TRY(rc);
    CT_TRY(check_unexpected(st, specs, n, tied));
    for (int i = 0; i < n; i++) {
        const ct_st_tensor *t = ct_safetensors_find(st, specs[i].name);
        bool same = t->ndim == specs[i].ndim;
        for (int d = 0; same && d < t->ndim; d++) same = t->shape[d] == specs[i].shape[d];
        if (!same) {
            char have[96], want[96];
            return ct_fail("%s: tensor %s has shape %s but config.json implies %s; the checkpoint and its config.json "
                           "disagree",
                           t->file, specs[i].name, shape_text(t->ndim, t->shape, have, sizeof have),
                           shape_text(specs[i].ndim, specs[i].shape, want, sizeof want));
        }
    }
    return 0;
}

static int load_weights(ct_llama *m, const ct_safetensors *st, const ct_llama_load_options *o) {
    int n;
    ct_llama_param_spec *specs = ct_llama_param_specs(m, &n);
    if (!specs) return -1;
    int rc = check_checkpoint(st, specs, n, m->config.tie_word_embeddings);
    free(specs);
    CT_TRY(rc);
    if (o && o->frozen) return ct_llama_load_frozen_base(m, st, o);
    CT_TRY(ct_llama_allocate(m));
    for (int i = 0; i < m->n_params; i++) {
        CT_TRY(ct_safetensors_load_into(st, m->params[i]->name, m->params[i]));
        ct_safetensors_release(st, m->params[i]->name); /* the file's pages leave resident memory */
    }
    return 0;
}

ct_llama *ct_llama_load(const char *dir) { return ct_llama_load_with(dir, NULL); }

ct_llama *ct_llama_load_with(const char *dir, const ct_llama_load_options *o) {
    struct stat sb;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        ct_fail("%s: not a folder; give the folder holding config.json and model.safetensors", dir);
        return NULL;
    }
    ct_llama_config cfg;
    if (ct_llama_config_load(dir, &cfg) < 0) return NULL;
    ct_llama *m = ct_llama_skeleton(&cfg);
    if (!m) return NULL;
    m->source_dir = ct_strdup(dir);
    if (!m->source_dir || load_tokenizer(m, dir) < 0) {
        ct_llama_free(m);
        return NULL;
    }
    ct_safetensors *st = ct_safetensors_open(dir);
    int rc = st ? load_weights(m, st, o) : -1;
    ct_safetensors_close(st);
    if (rc < 0) {
        ct_llama_free(m);
        return NULL;
    }
    return m;
}

/* ---- saving ---- */

static int make_folder(const char *dir) {
    struct stat sb;
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return ct_fail("%s: cannot create the folder (%s)", dir, strerror(errno));
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) return ct_fail("%s: exists and is not a folder; choose another path", dir);
    return 0;
}

static int write_config(const ct_llama *m, const char *dir, ct_dtype store_dtype) {
    char path[PATH_MAX];
    char *base = NULL;
    if (m->source_dir && file_exists(m->source_dir, "config.json")) {
        snprintf(path, sizeof path, "%s/config.json", m->source_dir);
        base = ct_tok_read_file(path, NULL);
        if (!base) return -1;
    }
    char *text = ct_llama_config_to_json(&m->config, base, store_dtype);
    free(base);
    if (!text) return -1;
    snprintf(path, sizeof path, "%s/config.json", dir);
    int rc = ct_atomic_write_file(path, text, strlen(text));
    free(text);
    return rc;
}

static bool same_folder(const char *a, const char *b) {
    struct stat sa, sb;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

static int copy_tokenizer_files(const char *from, const char *dir) {
    if (!from || same_folder(from, dir)) return 0;
    for (size_t i = 0; i < sizeof TOKENIZER_FILES / sizeof TOKENIZER_FILES[0]; i++) {
        if (!file_exists(from, TOKENIZER_FILES[i])) continue;
        char src[PATH_MAX], dst[PATH_MAX];
        snprintf(src, sizeof src, "%s/%s", from, TOKENIZER_FILES[i]);
        snprintf(dst, sizeof dst, "%s/%s", dir, TOKENIZER_FILES[i]);
        size_t len = 0;
        char *bytes = ct_tok_read_file(src, &len);
        if (!bytes) return -1;
        int rc = ct_atomic_write_file(dst, bytes, len);
        free(bytes);
        CT_TRY(rc);
    }
    return 0;
}

int ct_llama_save(const ct_llama *m, const char *dir, const char *tokenizer_dir, ct_dtype store_dtype) {
    if (store_dtype != CT_F32 && store_dtype != CT_BF16 && store_dtype != CT_F16)
        return ct_fail("saving %s: store dtype %s is not one of f32, bf16, f16", dir, ct_dtype_name(store_dtype));
    if (tokenizer_dir && !file_exists(tokenizer_dir, "tokenizer.json"))
        return ct_fail("saving %s: %s holds no tokenizer.json to copy; give the folder of the model's tokenizer",
                       dir, tokenizer_dir);
    CT_TRY(make_folder(dir));
    ct_st_item *items = ct_calloc((size_t)m->n_params, sizeof *items, "safetensors items");
    if (!items) return -1;
    for (int i = 0; i < m->n_params; i++) items[i] = (ct_st_item){m->params[i]->name, m->params[i]};
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    int rc = ct_safetensors_write(path, items, m->n_params, store_dtype);
    free(items);
    CT_TRY(rc);
    CT_TRY(write_config(m, dir, store_dtype));
    return copy_tokenizer_files(tokenizer_dir ? tokenizer_dir : m->source_dir, dir);
}
