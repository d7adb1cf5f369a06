/* Before a resume reads anything into the run: the checkpoint must describe exactly the model this
 * run built. Every config.json value the checkpoint stores, every tensor of its /model and
 * /optimizer groups (names, shapes, dtypes, none missing, none extra: /model holds every
 * parameter, or only the trainable ones over a frozen base; the optimizer groups the trainable
 * ones), the hash of the frozen base and its tokenizer must agree; the first difference is refused, naming the key or tensor and both values. Reading
 * tensors by name alone would silently drop the layers a smaller configuration lacks. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/paths.h"
#include "train/trainer_internal.h"

#define STATE "/state"

/* The recipe key that sets a config.json key for a new model (model.path's config wins). */
static const char *recipe_key_of(const char *config_key) {
    static const char *const keys[][2] = {
        {"architectures", "model.arch"},           {"model_type", "model.arch"},
        {"attention_bias", "model.arch"},          {"hidden_size", "model.hidden_size"},
        {"intermediate_size", "model.intermediate_size"}, {"num_hidden_layers", "model.num_layers"},
        {"num_attention_heads", "model.num_heads"}, {"num_key_value_heads", "model.num_kv_heads"},
        {"head_dim", "model.head_dim"},           {"max_position_embeddings", "model.max_seq_len"},
        {"rms_norm_eps", "model.rms_norm_eps"},   {"rope_theta", "model.rope_theta"},
        {"initializer_range", "model.init_std"},  {"tie_word_embeddings", "model.tie_word_embeddings"},
    };
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
        if (!strcmp(keys[i][0], config_key)) return keys[i][1];
    return "the tokenizer"; /* vocab_size, the bos/eos/pad ids */
}

static int config_mismatch(const ct_trainer *t, const char *path, const char *key, const cJSON *stored,
                           const cJSON *current) {
    char *a = cJSON_PrintUnformatted(stored), *b = current ? cJSON_PrintUnformatted(current) : NULL;
    char from[4200];
    if (t->recipe->model.path[0]) snprintf(from, sizeof from, "model.path=%s", t->recipe->model.path);
    else snprintf(from, sizeof from, "%s", recipe_key_of(key));
    ct_fail("resume=%s: the checkpoint's model has %s %s but this run's has %s (%s); resume with the checkpoint's "
            "settings, or start a new run without resume",
            path, key, a ? a : "?", b ? b : "none", from);
    free(a);
    free(b);
    return -1;
}

/* Every key of the stored config.json against the one this run's model would write. */
static int check_config(const ct_trainer *t, ct_h5_reader *rd, const char *path) {
    char *stored_text = ct_h5_get_string(rd, STATE, "model_config");
    if (!stored_text) return ct_fail_context("resume=%s: ", path);
    char *current_text = ct_llama_config_to_json(&t->model->config, NULL, CT_F32);
    cJSON *stored = cJSON_Parse(stored_text), *current = current_text ? cJSON_Parse(current_text) : NULL;
    free(stored_text);
    free(current_text);
    int rc = 0;
    if (!cJSON_IsObject(stored)) rc = ct_fail("resume=%s: the stored model_config is not a JSON object; the file is damaged", path);
    else if (!current) rc = ct_fail("resume=%s: out of memory comparing the model configs", path);
    for (const cJSON *item = stored ? stored->child : NULL; rc == 0 && item; item = item->next) {
        const cJSON *mine = cJSON_GetObjectItemCaseSensitive(current, item->string);
        if (!mine || !cJSON_Compare(item, mine, true)) rc = config_mismatch(t, path, item->string, item, mine);
    }
    cJSON_Delete(stored);
    cJSON_Delete(current);
    return rc;
}

/* The tensors `group` must hold: the trainable ones, or every parameter in /model of a
 * checkpoint without a base reference. */
static void expected(const ct_trainer *t, const char *group, ct_tensor *const **list, int *n) {
    bool all = !strcmp(group, "/model") && !t->partial_checkpoints;
    *list = all ? t->model->params : t->trainable.params;
    *n = all ? t->model->n_params : t->trainable.n;
}

static const ct_tensor *named(ct_tensor *const *list, int n, const char *name) {
    for (int i = 0; i < n; i++)
        if (!strcmp(list[i]->name, name)) return list[i];
    return NULL;
}

static int check_shape(ct_h5_reader *rd, const char *path, const char *group, const ct_tensor *p) {
    ct_h5_tensor_info info;
    if (!ct_h5_exists(rd, group, p->name))
        return ct_fail("resume=%s: tensor %s of this run's model is not in the checkpoint's %s; the checkpoint is of "
                       "another model, or froze %s (resume with its train.trainable and train.freeze)",
                       path, p->name, group, p->name);
    CT_TRY(ct_h5_tensor_info_of(rd, group, p->name, &info));
    bool same = info.dtype == p->dtype && info.ndim == p->ndim;
    for (int d = 0; same && d < p->ndim; d++) same = info.shape[d] == p->shape[d];
    if (same) return 0;
    char stored[128], mine[128];
    size_t n = (size_t)snprintf(stored, sizeof stored, "[");
    for (int d = 0; d < info.ndim && n < sizeof stored; d++)
        n += (size_t)snprintf(stored + n, sizeof stored - n, d ? ", %lld" : "%lld", (long long)info.shape[d]);
    if (n < sizeof stored) snprintf(stored + n, sizeof stored - n, "] %s", ct_dtype_name(info.dtype));
    return ct_fail("resume=%s: tensor %s/%s is %s in the checkpoint but %s in this run", path, group, p->name, stored,
                   ct_shape_str(p, mine, sizeof mine));
}

/* The group holds exactly the trainable parameters, each with this run's shape and dtype. */
static int check_group(const ct_trainer *t, ct_h5_reader *rd, const char *path, const char *group) {
    char **names = NULL;
    int n = ct_h5_list_tensors(rd, group, &names);
    if (n < 0) return ct_fail_context("resume=%s: ", path);
    int rc = 0, n_expected;
    ct_tensor *const *list;
    expected(t, group, &list, &n_expected);
    for (int i = 0; rc == 0 && i < n; i++)
        if (!named(list, n_expected, names[i]) && named(t->model->params, t->model->n_params, names[i]))
            rc = ct_fail("resume=%s: the checkpoint's %s holds tensor %s, which this run freezes; resume with the "
                         "checkpoint's train.trainable and train.freeze", path, group, names[i]);
        else if (!named(list, n_expected, names[i]))
            rc = ct_fail("resume=%s: the checkpoint's %s holds tensor %s, which this run's model does not have; the "
                         "checkpoint is of another model (check model.num_layers and the other model.* keys)",
                         path, group, names[i]);
    ct_h5_free_names(names, n);
    for (int i = 0; rc == 0 && i < n_expected; i++) rc = check_shape(rd, path, group, list[i]);
    return rc;
}

/* The tokenizer.json the checkpoint holds against this run's, byte for byte. */
static int check_tokenizer(const ct_trainer *t, ct_h5_reader *rd, const char *path) {
    int64_t size = ct_h5_blob_size(rd, STATE, "tokenizer_json");
    char *file = t->tokenizer_dir ? ct_path_join(t->tokenizer_dir, "tokenizer.json") : NULL;
    if (size < 0 || !file || !ct_is_file(file)) {
        free(file);
        return 0; /* nothing to compare */
    }
    size_t len = 0;
    char *mine = ct_tok_read_file(file, &len), *stored = malloc((size_t)size + 1);
    int rc = mine && stored ? ct_h5_read_blob(rd, STATE, "tokenizer_json", stored, (size_t)size)
                            : ct_fail("resume=%s: cannot read %s to compare it with the checkpoint's tokenizer", path, file);
    if (rc == 0 && (len != (size_t)size || memcmp(mine, stored, len) != 0))
        rc = ct_fail("resume=%s: the checkpoint's tokenizer differs from this run's (%s); resume with the tokenizer "
                     "the run was trained with", path, file);
    free(mine);
    free(stored);
    free(file);
    return rc;
}

/* After the groups agree (so both runs freeze the same tensors): the frozen tensors this run
 * loaded must be those the checkpoint was trained over. */
static int check_base(const ct_trainer *t, ct_h5_reader *rd, const char *path) {
    if (!t->partial_checkpoints) return 0;
    char *stored = ct_h5_get_string(rd, STATE, "base_hash"), *stored_path = ct_h5_get_string(rd, STATE, "base_path");
    char mine[32];
    ct_hash_format(t->trainable.base_hash, mine);
    int rc = 0;
    if (!stored) rc = ct_fail("resume=%s: the checkpoint names no frozen base (base_hash) but this run freezes %d "
                              "tensors of model.path=%s; the file is not of this run", path, t->trainable.n_frozen,
                              t->recipe->model.path);
    else if (strcmp(stored, mine) != 0)
        rc = ct_fail("resume=%s: the checkpoint was trained over base %s with frozen tensors %s, but model.path=%s "
                     "holds %s; resume with the base it was trained on", path, stored_path ? stored_path : "?",
                     stored, t->recipe->model.path, mine);
    free(stored);
    free(stored_path);
    return rc;
}

int ct_trainer_check_checkpoint(const ct_trainer *t, ct_h5_reader *rd, const char *path) {
    CT_TRY(check_config(t, rd, path));
    static const char *const groups[] = {"/model", "/optimizer/m", "/optimizer/v"};
    for (size_t i = 0; i < sizeof groups / sizeof *groups; i++) CT_TRY(check_group(t, rd, path, groups[i]));
    CT_TRY(check_base(t, rd, path));
    return check_tokenizer(t, rd, path);
}
