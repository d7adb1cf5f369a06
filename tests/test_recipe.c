/* Recipes: the schema table, every recipe in recipes/, typed conversion of values, unknown keys
 * and their suggestions, wrong types with file and line, overrides, computed keys, validation,
 * the YAML round trip (fixed and random values), saving, and the help text in docs/recipes.md.
 * Expected values are written out by hand here, never taken from the code under test.
 *
 * `test_recipe --print-help` prints the key table for docs/recipes.md. */
#include <dirent.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"
#include "tests/ct_test.h"
#include "train/recipe.h"

static char tmpdir[256];
static uint64_t next_random(void);

static const char *shown(const char *key) { return key ? key : "(none)"; }

static const char *tmp_path(const char *name) {
    static char buf[512];
    snprintf(buf, sizeof buf, "%s/%s", tmpdir, name);
    return buf;
}

static void write_file(const char *path, const char *text, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f) return;
    fwrite(text, 1, len, f);
    fclose(f);
}

/* Loads YAML text on top of a default recipe; returns the status, the error in `error`. */
static int load_yaml(ct_recipe *r, const char *yaml, char *error, size_t size) {
    ct_clear_error();
    int rc = ct_recipe_load_text(r, yaml, strlen(yaml), "x.yaml");
    snprintf(error, size, "%s", rc < 0 ? ct_last_error() : "");
    return rc;
}

/* ---- the schema and the shipped recipes ---- */

static void test_schema(void) {
    CHECK(ct_recipe_schema_check() == 0, "schema check: %s", ct_last_error());
    size_t n;
    const ct_recipe_key *schema = ct_recipe_schema(&n);
    int keys = 0;
    for (size_t i = 0; i < n; i++) keys += schema[i].type != CT_RECIPE_SECTION;
    CHECK(keys >= 60, "the schema has %d keys, expected the whole key list", keys);
    /* Keys the task lists, spot-checked by name and type. */
    struct { const char *key; ct_recipe_type type; } listed[] = {
        {"name", CT_RECIPE_STRING}, {"seed", CT_RECIPE_INT}, {"device", CT_RECIPE_ENUM},
        {"model.tie_word_embeddings", CT_RECIPE_BOOL}, {"model.rope_theta", CT_RECIPE_FLOAT},
        {"tokenizer.train", CT_RECIPE_BOOL}, {"data.batch_tokens", CT_RECIPE_INT},
        {"data.loss_on", CT_RECIPE_ENUM}, {"optimizer.grad_clip", CT_RECIPE_FLOAT},
        {"schedule.min_lr_ratio", CT_RECIPE_FLOAT}, {"train.grad_accum", CT_RECIPE_INT},
        {"checkpoint.dir", CT_RECIPE_STRING}, {"eval.length_normalized", CT_RECIPE_BOOL}};
    for (size_t i = 0; i < sizeof listed / sizeof listed[0]; i++) {
        const ct_recipe_key *k = ct_recipe_find_key(listed[i].key);
        CHECK(k && k->type == listed[i].type, "key %s missing or of the wrong type", listed[i].key);
    }
    CHECK(ct_recipe_find_key("model") == NULL, "a section is not a key");
}

static void test_defaults(void) {
    ct_recipe r;
    CHECK(ct_recipe_init(&r) == 0, "init: %s", ct_last_error());
    CHECK(r.seed == 1234 && r.device == CT_CPU && r.threads == 0, "top-level defaults");
    CHECK(!strcmp(r.name, "") && !strcmp(r.output_dir, "") && !strcmp(r.model.path, ""), "empty strings");
    CHECK(r.model.arch == CT_RECIPE_LLAMA && r.model.tie_word_embeddings && !r.model.gradient_checkpointing,
          "model defaults");
    CHECK(r.model.rms_norm_eps == 1e-5 && r.model.rope_theta == 10000.0 && r.model.init_std == 0.02, "model floats");
    CHECK(r.optimizer.lr == 3e-4 && r.optimizer.beta1 == 0.9 && r.optimizer.beta2 == 0.999 &&
              r.optimizer.eps == 1e-8 && r.optimizer.grad_clip == 1.0 && r.optimizer.weight_decay == 0.01,
          "optimizer defaults");
    CHECK(r.data.format == CT_RECIPE_DATA_INTENT && r.data.truncation == CT_RECIPE_TRUNCATE_LEFT &&
              r.data.loss_on == CT_CHAT_MASK_ALL && r.data.shuffle && !r.data.packing,
          "data defaults");
    CHECK(r.schedule.name == CT_RECIPE_COSINE && r.train.epochs == 1 && r.train.precision == CT_RECIPE_FP32,
          "schedule and train defaults");
    ct_recipe_free(&r);
}

static bool has_suffix(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcmp(s + n - m, suffix);
}

static void test_shipped_recipes(void) {
    const char *dir = ct_test_path("recipes");
    char dir_copy[4096];
    snprintf(dir_copy, sizeof dir_copy, "%s", dir);
    DIR *d = opendir(dir_copy);
    CHECK(d != NULL, "cannot open %s", dir_copy);
    if (!d) return;
    int loaded = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!has_suffix(e->d_name, ".yaml") && !has_suffix(e->d_name, ".yml")) continue;
        if (has_suffix(e->d_name, "_pipeline.yaml")) continue; /* `ctune run` files (docs/pipeline.md) */
        char path[4096 + 256];
        snprintf(path, sizeof path, "%s/%s", dir_copy, e->d_name);
        ct_recipe r;
        int rc = ct_recipe_resolve(&r, path, 0, NULL);
        CHECK(rc == 0, "%s does not load: %s", e->d_name, ct_last_error());
        if (rc == 0) {
            CHECK(r.description[0] != '\0', "%s has no description", e->d_name);
            ct_recipe_free(&r);
            loaded++;
        }
    }
    closedir(d);
    CHECK(loaded >= 2, "only %d recipes loaded from %s", loaded, dir_copy);

    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    int listed = ct_recipe_print_list(out, dir_copy);
    fclose(out);
    CHECK(listed == loaded, "print_list listed %d of %d recipes", listed, loaded);
    CHECK(strstr(text, "pretrain_tiny_zh.yaml") && strstr(text, "full_finetune_intent_zh.yaml") &&
              !strstr(text, "does not load"),
          "recipe list:\n%s", text);
    free(text);
    CHECK(ct_recipe_print_list(stdout, tmp_path("no-such-folder")) < 0, "listing a missing folder fails");
}

/* The pretraining recipe, key by key as written in the file. */
static void test_pretrain_recipe_values(void) {
    ct_recipe r;
    char path[4096];
    snprintf(path, sizeof path, "%s", ct_test_path("recipes/pretrain_tiny_zh.yaml"));
    if (ct_recipe_resolve(&r, path, 0, NULL) < 0) {
        CHECK(0, "pretrain recipe: %s", ct_last_error());
        return;
    }
    CHECK(!strcmp(r.name, "pretrain_tiny_zh") && !strcmp(r.output_dir, "runs/pretrain_tiny_zh"), "name, output_dir");
    CHECK(!strcmp(r.checkpoint.dir, "runs/pretrain_tiny_zh/checkpoints"), "checkpoint.dir: %s", r.checkpoint.dir);
    CHECK(r.model.hidden_size == 128 && r.model.num_layers == 4 && r.model.num_kv_heads == 2 &&
              r.model.max_seq_len == 128,
          "model shape");
    CHECK(r.tokenizer.train && r.tokenizer.vocab_size == 3000, "tokenizer");
    CHECK(r.data.format == CT_RECIPE_DATA_TEXT && r.data.packing && r.optimizer.lr == 1e-3 &&
              r.optimizer.beta2 == 0.95 && r.train.max_steps == 1000,
          "data, optimizer, train");
    ct_recipe_free(&r);
}

/* ---- typed conversion ---- */

typedef struct {
    const char *key, *text;
    bool ok;
    double expected; /* ints, floats, bools (0/1) and enums (index) */
    const char *message; /* on error: a piece the message must contain */
} conversion_case;

static const conversion_case conversions[] = {
    {"seed", "1000", true, 1000, NULL},
    {"seed", "1e3", true, 1000, NULL},
    {"seed", "1.5e3", true, 1500, NULL},
    {"seed", "2.0", true, 2, NULL},
    {"seed", "+7", true, 7, NULL},
    {"seed", "0", true, 0, NULL},
    {"seed", "2147483647", true, 2147483647.0, NULL},
    {"seed", "1.5", false, 0, "seed: '1.5' is not an integer"},
    {"seed", "1.0000000000000001", false, 0, "is not an integer"},
    {"seed", "12.5e1", true, 125, NULL},
    {"seed", "12.55e1", false, 0, "is not an integer"},
    {"seed", "1250e-1", true, 125, NULL},
    {"seed", "1255e-1", false, 0, "is not an integer"},
    {"seed", "0.0", true, 0, NULL},
    {"seed", ".5e1", true, 5, NULL},
    {"seed", "1e99999999999999999999", false, 0, "too large"},
    {"seed", "1e-99999999999999999999", false, 0, "is not an integer"},
    {"seed", "1e-3", false, 0, "is not an integer"},
    {"seed", "0x10", false, 0, "is not an integer"},
    {"seed", "1_000", false, 0, "is not an integer"},
    {"seed", "010", false, 0, "leading zero"},
    {"seed", "", false, 0, "is not an integer"},
    {"seed", " 5", false, 0, "is not an integer"},
    {"seed", "five", false, 0, "is not an integer"},
    {"seed", "2147483648", false, 0, "too large"},
    {"seed", "99999999999999999999", false, 0, "too large"},
    {"seed", "1e10", false, 0, "too large"},
    {"seed", "-1", false, 0, "seed: -1 is outside [0, )"},
    {"model.num_layers", "0", false, 0, "model.num_layers: 0 is outside [1, )"},
    {"tokenizer.vocab_size", "258", false, 0, "outside [259, )"},
    {"tokenizer.vocab_size", "259", true, 259, NULL},
    {"optimizer.lr", "1e-4", true, 1e-4, NULL},
    {"optimizer.lr", "3E-4", true, 3e-4, NULL},
    {"optimizer.lr", ".5", true, 0.5, NULL},
    {"optimizer.lr", "2", true, 2.0, NULL},
    {"optimizer.lr", "0", true, 0.0, NULL},
    {"optimizer.lr", "-0.5", false, 0, "optimizer.lr: -0.5 is outside [0, )"},
    {"optimizer.lr", "fast", false, 0, "optimizer.lr: 'fast' is not a number"},
    {"optimizer.lr", "inf", false, 0, "is not a number"},
    {"optimizer.lr", ".inf", false, 0, "is not a number"},
    {"optimizer.lr", "nan", false, 0, "is not a number"},
    {"optimizer.lr", "0x1p3", false, 0, "is not a number"},
    {"optimizer.lr", "1,5", false, 0, "is not a number"},
    {"optimizer.lr", "1e999", false, 0, "finite"},
    {"optimizer.beta1", "0", true, 0.0, NULL},
    {"optimizer.beta1", "1", false, 0, "optimizer.beta1: 1 is outside [0, 1)"},
    {"model.dropout", "0.999", true, 0.999, NULL},
    {"model.dropout", "1.0", false, 0, "outside [0, 1)"},
    {"schedule.min_lr_ratio", "1", true, 1.0, NULL},
    {"schedule.min_lr_ratio", "1.01", false, 0, "outside [0, 1]"},
    {"model.rope_theta", "0", false, 0, "model.rope_theta: 0 is outside (0, )"},
    {"model.rope_theta", "1e-300", true, 1e-300, NULL},
    {"data.packing", "true", true, 1, NULL},
    {"data.packing", "false", true, 0, NULL},
    {"data.packing", "no", false, 0, "data.packing: 'no' is not a boolean; write true or false"},
    {"data.packing", "yes", false, 0, "not a boolean"},
    {"data.packing", "on", false, 0, "not a boolean"},
    {"data.packing", "off", false, 0, "not a boolean"},
    {"data.packing", "True", false, 0, "not a boolean"},
    {"data.packing", "1", false, 0, "not a boolean"},
    {"data.packing", "", false, 0, "not a boolean"},
    {"device", "cuda", true, CT_CUDA, NULL},
    {"device", "gpu", false, 0, "device: 'gpu' is not one of cpu, cuda"},
    {"device", "CUDA", false, 0, "did you mean"},
    {"data.format", "intnet", false, 0,
     "data.format: 'intnet' is not one of intent, chat, dialog_intent, text; did you mean 'intent'?"},
};

static double numeric_value(const ct_recipe *r, const ct_recipe_key *k) {
    const char *p = (const char *)r + k->offset;
    switch (k->type) {
    case CT_RECIPE_INT: case CT_RECIPE_ENUM: return *(const int *)p;
    case CT_RECIPE_FLOAT: return *(const double *)p;
    case CT_RECIPE_BOOL: return *(const bool *)p;
    default: return NAN;
    }
}

static void test_conversions(void) {
    for (size_t i = 0; i < sizeof conversions / sizeof conversions[0]; i++) {
        const conversion_case *c = &conversions[i];
        ct_recipe r;
        ct_recipe_init(&r);
        ct_clear_error();
        int rc = ct_recipe_set(&r, c->key, c->text);
        if (c->ok) {
            const ct_recipe_key *k = ct_recipe_find_key(c->key);
            CHECK(rc == 0 && numeric_value(&r, k) == c->expected, "%s='%s': rc %d value %.17g, expected %.17g (%s)",
                  c->key, c->text, rc, numeric_value(&r, k), c->expected, rc ? ct_last_error() : "");
        } else {
            CHECK(rc < 0 && strstr(ct_last_error(), c->message), "%s='%s': rc %d, message '%s', expected '%s'", c->key,
                  c->text, rc, ct_last_error(), c->message);
            CHECK(!strchr(ct_last_error(), '\n'), "message is one line: %s", ct_last_error());
        }
        ct_recipe_free(&r);
    }
}

/* Every enum value lands on its C constant. */
static void test_enum_constants(void) {
    struct { const char *key, *text; int expected; } cases[] = {
        {"device", "cpu", CT_CPU}, {"device", "cuda", CT_CUDA},
        {"model.arch", "llama", CT_RECIPE_LLAMA}, {"model.arch", "qwen2", CT_RECIPE_QWEN2},
        {"model.arch", "qwen3", CT_RECIPE_QWEN3}, {"model.arch", "mistral", CT_RECIPE_MISTRAL},
        {"data.format", "intent", CT_RECIPE_DATA_INTENT}, {"data.format", "chat", CT_RECIPE_DATA_CHAT},
        {"data.format", "dialog_intent", CT_RECIPE_DATA_DIALOG_INTENT}, {"data.format", "text", CT_RECIPE_DATA_TEXT},
        {"data.truncation", "right", CT_RECIPE_TRUNCATE_RIGHT}, {"data.truncation", "left", CT_RECIPE_TRUNCATE_LEFT},
        {"data.truncation", "drop", CT_RECIPE_TRUNCATE_DROP},
        {"data.loss_on", "all_assistant", CT_CHAT_MASK_ALL}, {"data.loss_on", "last_assistant", CT_CHAT_MASK_LAST},
        {"optimizer.name", "adamw", CT_RECIPE_ADAMW},
        {"schedule.name", "cosine", CT_RECIPE_COSINE}, {"schedule.name", "linear", CT_RECIPE_LINEAR},
        {"schedule.name", "constant", CT_RECIPE_CONSTANT},
        {"train.precision", "fp32", CT_RECIPE_FP32}, {"train.precision", "bf16", CT_RECIPE_BF16},
        {"train.precision", "fp16", CT_RECIPE_FP16}};
    ct_recipe r;
    ct_recipe_init(&r);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = ct_recipe_set(&r, cases[i].key, cases[i].text);
        const ct_recipe_key *k = ct_recipe_find_key(cases[i].key);
        CHECK(rc == 0 && k && (int)numeric_value(&r, k) == cases[i].expected, "%s=%s", cases[i].key, cases[i].text);
    }
    CHECK(r.device == CT_CUDA && r.model.arch == CT_RECIPE_MISTRAL && r.data.loss_on == CT_CHAT_MASK_LAST,
          "typed fields read back");
    ct_recipe_free(&r);
}

static void test_strings(void) {
    ct_recipe r;
    ct_recipe_init(&r);
    CHECK(ct_recipe_set(&r, "data.system_prompt", "你是客服助手 🙂") == 0 && !strcmp(r.data.system_prompt, "你是客服助手 🙂"),
          "UTF-8 string");
    CHECK(ct_recipe_set(&r, "data.val", "") == 0 && !strcmp(r.data.val, ""), "empty string");
    CHECK(ct_recipe_set(&r, "data.train", "true") == 0 && !strcmp(r.data.train, "true"), "a string may say true");
    CHECK(ct_recipe_set(&r, "data.train", "a\xff" "b") < 0 && strstr(ct_last_error(), "data.train: the value is not valid UTF-8"),
          "invalid UTF-8: %s", ct_last_error());
    CHECK(ct_recipe_set(&r, "data.train", "\xed\xa0\x80") < 0, "a UTF-16 surrogate is not UTF-8");
    CHECK(ct_recipe_set(&r, "data.train", "\xc0\xaf") < 0, "an overlong encoding is not UTF-8");
    CHECK(!strcmp(r.data.train, "true"), "a failed set leaves the value");
    ct_recipe_free(&r);
}

/* ---- unknown keys ---- */

static void test_unknown_keys(void) {
    struct { const char *yaml, *message; } cases[] = {
        {"seed: 1\noptimizer:\n  lrr: 1e-4\n", "x.yaml:3: unknown key 'optimizer.lrr'; did you mean 'optimizer.lr'?"},
        {"optimizer.lrr: 1e-4\n", "x.yaml:1: unknown key 'optimizer.lrr'; did you mean 'optimizer.lr'?"},
        {"lr: 1e-4\n", "x.yaml:1: unknown key 'lr'; did you mean 'optimizer.lr'?"},
        {"training:\n  max_steps: 3\n", "x.yaml:2: unknown key 'training.max_steps'; did you mean 'train.max_steps'?"},
        {"optimiser:\n  lr: 1\n", "x.yaml:2: unknown key 'optimiser.lr'; did you mean 'optimizer.lr'?"},
        {"max_seq_len: 64\n",
         "x.yaml:1: unknown key 'max_seq_len'; did you mean 'model.max_seq_len' or 'data.max_seq_len'?"},
        {"optimizer:\n  beta: 0.9\n",
         "x.yaml:2: unknown key 'optimizer.beta'; did you mean 'optimizer.beta1' or 'optimizer.beta2'?"},
        {"model:\n  num_head: 4\n", "x.yaml:2: unknown key 'model.num_head'; did you mean 'model.num_heads'?"},
        {"data:\n  batchsize: 8\n", "did you mean 'data.batch_size' or 'eval.batch_size'?"},
        {"zebra_crossing: 1\n", "x.yaml:1: unknown key 'zebra_crossing' ('ctune train --help' lists the keys)"},
        {"lora:\n  rank: 8\n", "x.yaml:2: unknown key 'lora.rank'"},
        {"zebra: {}\n", "x.yaml:1: unknown key 'zebra'"},
        {"zebra:\n", "x.yaml:1: unknown key 'zebra'"},
        {"eval:\n  batch: 8\n", "x.yaml:2: unknown key 'eval.batch'; did you mean 'eval.batch_size'?"},
        {"data.t: 8\n", "x.yaml:1: unknown key 'data.t'; did you mean 'data.train', 'data.test' or 'data.truncation'?"},
        {"data.batch: 8\n", "did you mean 'data.batch_tokens' or 'data.batch_size'?"},
        {"Optimizer:\n  LR: 1\n", "unknown key 'Optimizer.LR'; did you mean 'optimizer.lr'?"},
        {"\n\n\nmodel:\n  path: a\n  pathh: b\n", "x.yaml:6: unknown key 'model.pathh'; did you mean 'model.path'?"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ct_recipe r;
        ct_recipe_init(&r);
        char error[1024];
        int rc = load_yaml(&r, cases[i].yaml, error, sizeof error);
        CHECK(rc < 0 && strstr(error, cases[i].message), "yaml %zu: got '%s', expected '%s'", i, error,
              cases[i].message);
        ct_recipe_free(&r);
    }
    /* The suggestions stop at three, whatever is typed. */
    const char *typed[] = {"a", "ab.cd", "model.x", "data.", ".", "eval.batch", "checkpoint.every_x", "ssed"};
    for (size_t i = 0; i < sizeof typed / sizeof typed[0]; i++) {
        ct_recipe r;
        ct_recipe_init(&r);
        ct_recipe_set(&r, typed[i], "1");
        int quotes = 0;
        for (const char *c = ct_last_error(); *c; c++) quotes += *c == '\'';
        CHECK(quotes <= 2 + 6 && strstr(ct_last_error(), "unknown key"), "'%s': %s", typed[i], ct_last_error());
        ct_recipe_free(&r);
    }
}

/* ---- values of the wrong shape or type in a file ---- */

static void test_file_errors(void) {
    struct { const char *yaml, *message; } cases[] = {
        {"data:\n  packing: no\n", "x.yaml:2: data.packing: 'no' is not a boolean; write true or false"},
        {"optimizer:\n  lr: fast\n", "x.yaml:2: optimizer.lr: 'fast' is not a number"},
        {"train:\n  max_steps: 1.5\n", "x.yaml:2: train.max_steps: '1.5' is not an integer"},
        {"device: gpu\n", "x.yaml:1: device: 'gpu' is not one of cpu, cuda"},
        {"data:\n  train: [a.jsonl, b.jsonl]\n", "x.yaml:2: data.train expects a single string value, found a list"},
        {"data:\n  train:\n    - a.jsonl\n", "x.yaml:2: data.train expects a single string value, found a list"},
        {"optimizer:\n  lr:\n    value: 1\n", "x.yaml:2: optimizer.lr expects a single float value, found a mapping"},
        {"model: big\n", "x.yaml:1: 'model' is a section: put its keys under it (e.g. model.path), not a value"},
        {"model: [1, 2]\n", "x.yaml:1: 'model' is a section"},
        {"seed: 1\nseed: 2\n", "x.yaml:2: seed is set twice in this file (first at line 1)"},
        {"optimizer.lr: 1\noptimizer:\n  lr: 2\n", "x.yaml:3: optimizer.lr is set twice in this file (first at line 1)"},
        {"optimizer:\n  lr:\n", "x.yaml:2: optimizer.lr has no value"},
        {"seed: ~\n", "x.yaml:1: seed has no value"},
        {"model:\n  path: [unclosed\n", "x.yaml:"},
        {"model:\n  path: [unclosed\n", "YAML syntax error"},
        {"a: b: c\n", "x.yaml:1:"},
        {"- a\n- b\n", "x.yaml:1: a recipe is a mapping of keys (key: value), not a list"},
        {"just a sentence\n", "not a single value"},
        {"seed: 1\n---\nseed: 2\n", "x.yaml:2: a second YAML document"},
        {"name: \xff\n", "x.yaml:1: not a YAML text"},
        {"? [a, b]\n: 1\n", "x.yaml:1: a key must be a plain name"},
        {"seed: *nowhere\n", "x.yaml:1:"},
        {"model: &m\n  model: *m\n", "x.yaml:1: mappings nested deeper than 8 levels"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ct_recipe r;
        ct_recipe_init(&r);
        char error[1024];
        int rc = load_yaml(&r, cases[i].yaml, error, sizeof error);
        CHECK(rc < 0 && strstr(error, cases[i].message) && !strchr(error, '\n'),
              "yaml case %zu: got '%s', expected '%s'", i, error, cases[i].message);
        ct_recipe_free(&r);
    }
}

/* Loading is all or nothing: a bad line leaves the recipe as it was. */
static void test_load_is_atomic(void) {
    ct_recipe r, before;
    ct_recipe_init(&r);
    ct_recipe_set(&r, "data.train", "keep.jsonl");
    ct_recipe_copy(&before, &r);
    char error[512];
    int rc = load_yaml(&r, "seed: 99\ndata:\n  train: other.jsonl\n  packing: maybe\n", error, sizeof error);
    CHECK(rc < 0 && strstr(error, "x.yaml:4: data.packing"), "error: %s", error);
    CHECK(ct_recipe_first_difference(&r, &before) == NULL, "a failed load changed %s",
          shown(ct_recipe_first_difference(&r, &before)));
    ct_recipe_free(&r);
    ct_recipe_free(&before);
}

static void test_file_forms(void) {
    const char *yaml =
        "# comment\n"
        "name: 'quoted name'\n"
        "seed: \"42\"\n"
        "optimizer.lr: 1e-4\n"
        "optimizer:\n"
        "  beta2: 0.95   # trailing comment\n"
        "data:\n"
        "  val: ~\n"
        "  test:\n"
        "  labels: null\n"
        "  train: \"null\"\n"
        "  system_prompt: |\n"
        "    第一行\n"
        "    second line\n"
        "  packing: true\n"
        "model: {num_layers: 3, arch: qwen3}\n"
        "tokenizer:\n";
    ct_recipe r;
    ct_recipe_init(&r);
    ct_recipe_set(&r, "data.val", "set before");
    char error[512];
    CHECK(load_yaml(&r, yaml, error, sizeof error) == 0, "forms: %s", error);
    CHECK(!strcmp(r.name, "quoted name") && r.seed == 42, "quoted string and quoted int");
    CHECK(r.optimizer.lr == 1e-4 && r.optimizer.beta2 == 0.95, "dotted key and nested key");
    CHECK(!strcmp(r.data.val, "") && !strcmp(r.data.test, "") && !strcmp(r.data.labels, ""), "null strings are empty");
    CHECK(!strcmp(r.data.train, "null"), "a quoted null is text: %s", r.data.train);
    CHECK(!strcmp(r.data.system_prompt, "第一行\nsecond line\n"), "block scalar: '%s'", r.data.system_prompt);
    CHECK(r.data.packing && r.model.num_layers == 3 && r.model.arch == CT_RECIPE_QWEN3, "flow mapping");
    ct_recipe reference;
    ct_recipe_init(&reference);
    CHECK(load_yaml(&reference, "", error, sizeof error) == 0 && ct_recipe_first_difference(&reference, &r) != NULL,
          "an empty text loads");
    ct_recipe defaults;
    ct_recipe_init(&defaults);
    CHECK(load_yaml(&reference, "# only a comment\n", error, sizeof error) == 0 &&
              ct_recipe_first_difference(&reference, &defaults) == NULL,
          "a comment-only text changes nothing");
    ct_recipe_free(&defaults);
    ct_recipe_free(&reference);
    ct_recipe_free(&r);
}

/* Damaged recipes (bytes replaced, cut short) load or fail with one line; they never crash. */
static void test_damaged_text(void) {
    size_t len;
    char *original = ct_test_read_file(ct_test_path("recipes/full_finetune_intent_zh.yaml"), &len);
    CHECK(original != NULL, "cannot read the fine-tuning recipe");
    if (!original) return;
    static const char noise[] = ":-[]{}#&*!|>'\"%@`,?\n\t \xff\xe4\x00";
    char *text = malloc(len + 1);
    int failed = 0, multiline = 0;
    for (int trial = 0; trial < 2000; trial++) {
        memcpy(text, original, len + 1);
        size_t n = trial % 10 == 9 ? next_random() % len : len; /* some are cut short */
        for (int edits = 1 + (int)(next_random() % 4); edits > 0; edits--)
            text[next_random() % n] = noise[next_random() % (sizeof noise - 1)];
        ct_recipe r;
        ct_recipe_init(&r);
        ct_clear_error();
        if (ct_recipe_load_text(&r, text, n, "damaged.yaml") < 0) {
            failed++;
            multiline += strchr(ct_last_error(), '\n') != NULL || strncmp(ct_last_error(), "damaged.yaml", 12) != 0;
        }
        ct_recipe_free(&r);
    }
    CHECK(failed > 1000, "only %d of 2000 damaged recipes were refused", failed);
    CHECK(multiline == 0, "%d errors were not one line starting with the file name", multiline);
    free(text);
    free(original);
}

/* ---- files on disk ---- */

static void test_load_file_errors(void) {
    ct_recipe r;
    ct_recipe_init(&r);
    CHECK(ct_recipe_load_file(&r, tmp_path("missing.yaml")) < 0 && strstr(ct_last_error(), "cannot open recipe") &&
              strstr(ct_last_error(), "missing.yaml"),
          "missing file: %s", ct_last_error());
    CHECK(ct_recipe_load_file(&r, tmpdir) < 0 && strstr(ct_last_error(), "cannot read recipe"), "a folder: %s",
          ct_last_error());
    size_t big = (1u << 20) + 10;
    char *text = malloc(big);
    memset(text, '#', big);
    write_file(tmp_path("big.yaml"), text, big);
    free(text);
    CHECK(ct_recipe_load_file(&r, tmp_path("big.yaml")) < 0 && strstr(ct_last_error(), "larger than 1 MiB"),
          "big file: %s", ct_last_error());
    const char *bad = "model:\n  hidden_size: 64\n  num_heads: four\n";
    write_file(tmp_path("bad.yaml"), bad, strlen(bad));
    CHECK(ct_recipe_load_file(&r, tmp_path("bad.yaml")) < 0 && strstr(ct_last_error(), "bad.yaml:3: model.num_heads"),
          "names file, line and key: %s", ct_last_error());
    CHECK(r.model.hidden_size == 128, "a failed file load changes nothing");
    ct_recipe_free(&r);
}

/* ---- command-line overrides ---- */

static void test_overrides(void) {
    ct_recipe r;
    ct_recipe_init(&r);
    CHECK(ct_recipe_override(&r, "optimizer.lr=1e-4") == 0 && r.optimizer.lr == 1e-4, "float override");
    CHECK(ct_recipe_override(&r, "optimizer.lr=2e-4") == 0 && r.optimizer.lr == 2e-4, "later wins");
    CHECK(ct_recipe_override(&r, "data.train=my.jsonl") == 0 && !strcmp(r.data.train, "my.jsonl"), "string override");
    CHECK(ct_recipe_override(&r, "data.system_prompt=a=b c") == 0 && !strcmp(r.data.system_prompt, "a=b c"),
          "the value is everything after the first '='");
    CHECK(ct_recipe_override(&r, "data.val=") == 0 && !strcmp(r.data.val, ""), "empty value");
    CHECK(ct_recipe_override(&r, "data.train=\"q.jsonl\"") == 0 && !strcmp(r.data.train, "\"q.jsonl\""),
          "command-line values are verbatim");
    CHECK(ct_recipe_override(&r, "data.packing=true") == 0 && r.data.packing, "bool override");
    struct { const char *arg, *message; } bad[] = {
        {"data.packing=no", "command line: data.packing: 'no' is not a boolean; write true or false"},
        {"data.packing=1", "command line: data.packing: '1' is not a boolean"},
        {"optimizer.lrr=1e-4", "command line: unknown key 'optimizer.lrr'; did you mean 'optimizer.lr'?"},
        {"train.max_steps=1e-3", "command line: train.max_steps: '1e-3' is not an integer"},
        {"novalue", "command line: 'novalue' is not key=value"},
        {"=3", "is not key=value"},
        {"model=3", "command line: 'model' is a section; set one of its keys (e.g. model.path=...)"},
        {"device=tpu", "command line: device: 'tpu' is not one of cpu, cuda"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ct_clear_error();
        int rc = ct_recipe_override(&r, bad[i].arg);
        CHECK(rc < 0 && strstr(ct_last_error(), bad[i].message), "override '%s': got '%s'", bad[i].arg, ct_last_error());
    }
    CHECK(r.data.packing && r.optimizer.lr == 2e-4, "failed overrides change nothing");
    ct_recipe_free(&r);
}

static void test_resolve(void) {
    char path[4096];
    snprintf(path, sizeof path, "%s", ct_test_path("recipes/full_finetune_intent_zh.yaml"));
    char *args[] = {"optimizer.lr=1e-4", "data.train=my.jsonl"};
    ct_recipe r;
    int rc = ct_recipe_resolve(&r, path, 2, args);
    CHECK(rc == 0, "resolve: %s", ct_last_error());
    if (rc == 0) {
        CHECK(r.optimizer.lr == 1e-4 && !strcmp(r.data.train, "my.jsonl"), "overrides after the file");
        CHECK(r.data.format == CT_RECIPE_DATA_DIALOG_INTENT && !strcmp(r.data.labels, "datasets/data/labels.json"),
              "the file's values");
        CHECK(!strcmp(r.name, "full_finetune_intent_zh") && !strcmp(r.output_dir, "runs/full_finetune_intent_zh") &&
                  !strcmp(r.checkpoint.dir, "runs/full_finetune_intent_zh/checkpoints"),
              "computed keys: %s %s %s", r.name, r.output_dir, r.checkpoint.dir);
        CHECK(!strcmp(r.data.system_prompt, "") && r.data.loss_on == CT_CHAT_MASK_LAST && r.data.max_seq_len == 128,
              "system prompt, loss_on, max_seq_len");
        ct_recipe_free(&r);
    }
    char *bad_args[] = {"optimizer.lr=1e-4", "data.shuffle=yes"};
    CHECK(ct_recipe_resolve(&r, path, 2, bad_args) < 0 && strstr(ct_last_error(), "command line: data.shuffle"),
          "bad override: %s", ct_last_error());
    char *cross[] = {"model.path=", "tokenizer.path=", "tokenizer.train=false"};
    CHECK(ct_recipe_resolve(&r, path, 3, cross) < 0 && strstr(ct_last_error(), "full_finetune_intent_zh.yaml: ") &&
              strstr(ct_last_error(), "needs a tokenizer"),
          "validation names the recipe: %s", ct_last_error());
    CHECK(ct_recipe_resolve(&r, tmp_path("none.yaml"), 0, NULL) < 0 && strstr(ct_last_error(), "none.yaml"),
          "missing recipe: %s", ct_last_error());
    char *only[] = {"tokenizer.path=tok.json", "name=solo"};
    CHECK(ct_recipe_resolve(&r, NULL, 2, only) == 0 && !strcmp(r.output_dir, "runs/solo"), "no file: %s",
          ct_last_error());
    ct_recipe_free(&r);
}

/* ---- computed keys and validation ---- */

static void test_finalize(void) {
    ct_recipe r;
    ct_recipe_init(&r);
    CHECK(ct_recipe_finalize(&r, "some/where/my_run.yml") == 0 && !strcmp(r.name, "my_run") &&
              !strcmp(r.output_dir, "runs/my_run") && !strcmp(r.checkpoint.dir, "runs/my_run/checkpoints"),
          "stem: %s %s", r.name, r.output_dir);
    ct_recipe_free(&r);
    ct_recipe_init(&r);
    ct_recipe_set(&r, "name", "kept");
    ct_recipe_set(&r, "output_dir", "/tmp/out");
    CHECK(ct_recipe_finalize(&r, "x.yaml") == 0 && !strcmp(r.name, "kept") && !strcmp(r.output_dir, "/tmp/out") &&
              !strcmp(r.checkpoint.dir, "/tmp/out/checkpoints"),
          "explicit keys are kept");
    ct_recipe_free(&r);
    ct_recipe_init(&r);
    CHECK(ct_recipe_finalize(&r, NULL) == 0 && !strcmp(r.name, "run"), "no file: %s", r.name);
    ct_recipe_free(&r);
    ct_recipe_init(&r);
    ct_recipe_set(&r, "name", "a/b");
    CHECK(ct_recipe_finalize(&r, NULL) < 0 && strstr(ct_last_error(), "name 'a/b'"), "slash: %s", ct_last_error());
    ct_recipe_free(&r);
}

static void test_validate(void) {
    struct { const char *args[4]; const char *message; } cases[] = {
        {{"tokenizer.path=t", "model.num_heads=6", "model.num_kv_heads=4"}, "model.num_heads (6) must be a multiple of model.num_kv_heads (4)"},
        {{"tokenizer.path=t", "model.hidden_size=130"}, "model.hidden_size (130) must be a multiple of model.num_heads (4)"},
        {{"tokenizer.path=t", "model.head_dim=33"}, "must be even"},
        {{"model.path="}, "needs a tokenizer"},
        {{"tokenizer.path=t", "tokenizer.train=true", "data.train=d"}, "use one of them"},
        {{"tokenizer.train=true"}, "tokenizer.train needs data.train"},
        {{"tokenizer.path=t", "train.max_steps=0", "train.epochs=0"}, "set one of them"},
        {{"tokenizer.path=t", "data.max_seq_len=512"}, "data.max_seq_len (512) exceeds model.max_seq_len (256)"},
        {{"tokenizer.path=t", "data.batch_tokens=100"}, "data.batch_tokens (100) is smaller than one sequence"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ct_recipe r;
        ct_recipe_init(&r);
        for (int a = 0; a < 4 && cases[i].args[a]; a++) ct_recipe_override(&r, cases[i].args[a]);
        CHECK(ct_recipe_validate(&r) < 0 && strstr(ct_last_error(), cases[i].message), "validate %zu: %s", i,
              ct_last_error());
        ct_recipe_free(&r);
    }
    ct_recipe r;
    ct_recipe_init(&r);
    ct_recipe_override(&r, "tokenizer.path=t");
    CHECK(ct_recipe_validate(&r) == 0, "defaults plus a tokenizer are valid: %s", ct_last_error());
    ct_recipe_override(&r, "model.head_dim=48"); /* a head width not hidden/heads is allowed */
    CHECK(ct_recipe_validate(&r) == 0, "explicit head_dim: %s", ct_last_error());
    ct_recipe_free(&r);
}

/* ---- the YAML round trip ---- */

static void check_round_trip(const ct_recipe *r, const char *what) {
    char *yaml = ct_recipe_to_yaml(r);
    CHECK(yaml != NULL, "%s: to_yaml: %s", what, ct_last_error());
    if (!yaml) return;
    ct_recipe back;
    ct_recipe_init(&back);
    int rc = ct_recipe_load_text(&back, yaml, strlen(yaml), "dump.yaml");
    CHECK(rc == 0, "%s: the dump does not load: %s\n%s", what, ct_last_error(), yaml);
    const char *diff = ct_recipe_first_difference(r, &back);
    CHECK(rc < 0 || diff == NULL, "%s: %s differs after the round trip", what, shown(diff));
    ct_recipe_free(&back);
    free(yaml);
}

static void test_round_trip_fixed(void) {
    ct_recipe r;
    ct_recipe_init(&r);
    check_round_trip(&r, "defaults");
    const char *strings[][2] = {
        {"name", "quote \" backslash \\ tab\t newline\n cr\r end"},
        {"description", "true"}, {"output_dir", "1e-4"}, {"resume", "null"}, {"model.path", "~"},
        {"tokenizer.path", "  leading and trailing  "}, {"data.train", "#not a comment"},
        {"data.val", "key: value"}, {"data.test", "- dash"}, {"data.labels", "'single' and \"double\""},
        {"data.system_prompt", "中文，emoji 😀👍🏽, controls \x01\x1f\x7f, C1 \xc2\x80\xc2\x85\xc2\x9f, "
                               "separators \xe2\x80\xa8\xe2\x80\xa9, bom \xef\xbb\xbf, nonchars \xef\xbf\xbe\xef\xbf\xbf"},
        {"checkpoint.dir", ""}};
    for (size_t i = 0; i < sizeof strings / sizeof strings[0]; i++)
        CHECK(ct_recipe_set(&r, strings[i][0], strings[i][1]) == 0, "set %s: %s", strings[i][0], ct_last_error());
    const char *numbers[][2] = {
        {"optimizer.lr", "1e-4"}, {"optimizer.weight_decay", "0.1"}, {"optimizer.beta1", "0.3333333333333333"},
        {"optimizer.eps", "5e-324"}, {"model.rope_theta", "1e300"}, {"model.init_std", "123456789.123"},
        {"schedule.min_lr_ratio", "1"}, {"seed", "2147483647"}, {"threads", "0"}, {"device", "cuda"},
        {"model.arch", "qwen2"}, {"data.loss_on", "last_assistant"}, {"model.tie_word_embeddings", "false"},
        {"data.packing", "true"}};
    for (size_t i = 0; i < sizeof numbers / sizeof numbers[0]; i++)
        CHECK(ct_recipe_set(&r, numbers[i][0], numbers[i][1]) == 0, "set %s: %s", numbers[i][0], ct_last_error());
    check_round_trip(&r, "awkward values");

    char *yaml = ct_recipe_to_yaml(&r);
    CHECK(yaml && strstr(yaml, "\noptimizer:\n  name: adamw\n  lr: 0.0001\n"), "sections and floats:\n%s", shown(yaml));
    CHECK(yaml && strstr(yaml, "  rope_theta: 1.0e+300\n") && strstr(yaml, "  min_lr_ratio: 1.0\n") &&
              strstr(yaml, "  eps: 5.0e-324\n") && strstr(yaml, "  init_std: 123456789.123\n"),
          "floats always have a '.':\n%s", shown(yaml));
    ct_recipe_set(&r, "model.rope_theta", "1e4");
    ct_recipe_set(&r, "optimizer.eps", "1e-8");
    free(yaml);
    yaml = ct_recipe_to_yaml(&r);
    CHECK(yaml && strstr(yaml, "  rope_theta: 10000.0\n") && strstr(yaml, "  eps: 1.0e-08\n"),
          "whole numbers in full, a '.' before the exponent:\n%s", shown(yaml));
    CHECK(yaml && strstr(yaml, "\nname: \"quote \\\" backslash \\\\ tab\\t newline\\n cr\\r end\"\n"),
          "escapes:\n%s", shown(yaml));
    CHECK(yaml && strstr(yaml, "\\u0085") && strstr(yaml, "\\u2028") && strstr(yaml, "\\uFEFF") && strstr(yaml, "中文"),
          "line-break characters escaped, Chinese kept");
    free(yaml);

    /* A string that bypassed ct_recipe_set and is not UTF-8 cannot be written. */
    free(r.data.train);
    r.data.train = ct_strdup("bad \xff byte");
    CHECK(ct_recipe_to_yaml(&r) == NULL && strstr(ct_last_error(), "data.train: the value is not valid UTF-8"),
          "invalid UTF-8 in a dump: %s", ct_last_error());
    ct_recipe_free(&r);
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t next_random(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}
static double uniform(void) { return (double)(next_random() >> 11) / 9007199254740992.0; }

static size_t put_utf8(char *out, uint32_t cp) {
    if (cp < 0x80) return out[0] = (char)cp, 1;
    if (cp < 0x800) return out[0] = (char)(0xC0 | cp >> 6), out[1] = (char)(0x80 | (cp & 0x3F)), 2;
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | cp >> 12), out[1] = (char)(0x80 | ((cp >> 6) & 0x3F)), out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | cp >> 18), out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F)), out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

static void random_string(char *out, size_t size) {
    static const uint32_t specials[] = {'"', '\\', '\'', ':', '#', '-', ' ', '\n', '\t', '\r', 0x01, 0x7F, 0x85,
                                        0xA0, 0x2028, 0x2029, 0xFEFF, 0xFFFE, 0xFFFF, 0x10FFFF, '&', '*', '!', '%'};
    size_t n = next_random() % 24, used = 0;
    for (size_t i = 0; i < n && used + 5 < size; i++) {
        uint32_t cp;
        switch (next_random() % 5) {
        case 0: cp = 0x20 + (uint32_t)(next_random() % 95); break;
        case 1: cp = 0x4E00 + (uint32_t)(next_random() % 0x5200); break;
        case 2: cp = 0x1F300 + (uint32_t)(next_random() % 0x300); break;
        case 3: cp = 1 + (uint32_t)(next_random() % 0xD7FF); break;
        default: cp = specials[next_random() % (sizeof specials / sizeof specials[0])]; break;
        }
        used += put_utf8(out + used, cp);
    }
    out[used] = '\0';
}

/* A random value the key accepts: candidates are drawn until one converts. */
static void set_random(ct_recipe *r, const ct_recipe_key *k) {
    char text[256];
    for (int attempt = 0; attempt < 200; attempt++) {
        switch (k->type) {
        case CT_RECIPE_INT:
            snprintf(text, sizeof text, "%d", (int)(next_random() % 2 ? next_random() % 1000 : next_random() % INT_MAX));
            break;
        case CT_RECIPE_FLOAT:
            snprintf(text, sizeof text, "%.17g", next_random() % 2 ? uniform() : ldexp(uniform(), (int)(next_random() % 200) - 100));
            break;
        case CT_RECIPE_BOOL: snprintf(text, sizeof text, "%s", next_random() % 2 ? "true" : "false"); break;
        case CT_RECIPE_ENUM: {
            size_t n = 0;
            while (k->choices[n]) n++;
            snprintf(text, sizeof text, "%s", k->choices[next_random() % n]);
            break;
        }
        case CT_RECIPE_STRING: random_string(text, sizeof text); break;
        case CT_RECIPE_LIST: snprintf(text, sizeof text, "%s", next_random() % 2 ? "" : "model.*.weight,lm_head?w"); break;
        default: return;
        }
        if (ct_recipe_set(r, k->key, text) == 0) return;
    }
    CHECK(0, "no random value accepted for %s", k->key);
}

static void test_round_trip_random(void) {
    size_t n;
    const ct_recipe_key *schema = ct_recipe_schema(&n);
    for (int trial = 0; trial < 300; trial++) {
        ct_recipe r;
        ct_recipe_init(&r);
        for (size_t i = 0; i < n; i++)
            if (next_random() % 4 != 0) set_random(&r, &schema[i]);
        char what[32];
        snprintf(what, sizeof what, "random trial %d", trial);
        check_round_trip(&r, what);
        ct_recipe_free(&r);
    }
}

/* The resolved shipped recipe survives a save and a load from disk. */
static void test_save(void) {
    char path[4096];
    snprintf(path, sizeof path, "%s", ct_test_path("recipes/full_finetune_intent_zh.yaml"));
    ct_recipe r;
    if (ct_recipe_resolve(&r, path, 0, NULL) < 0) {
        CHECK(0, "resolve: %s", ct_last_error());
        return;
    }
    const char *saved = tmp_path("recipe.yaml");
    char saved_path[512];
    snprintf(saved_path, sizeof saved_path, "%s", saved);
    CHECK(ct_recipe_save(&r, saved_path) == 0, "save: %s", ct_last_error());
    ct_recipe back;
    ct_recipe_init(&back);
    CHECK(ct_recipe_load_file(&back, saved_path) == 0, "load saved: %s", ct_last_error());
    CHECK(ct_recipe_first_difference(&r, &back) == NULL, "saved recipe differs at %s",
          shown(ct_recipe_first_difference(&r, &back)));
    ct_recipe_free(&back);

    /* A failed save leaves the old file whole and no temporary behind. */
    size_t before_len, after_len;
    char *before = ct_test_read_file(saved_path, &before_len);
    free(r.name);
    r.name = ct_strdup("\xff");
    CHECK(ct_recipe_save(&r, saved_path) < 0 && strstr(ct_last_error(), saved_path), "save of a bad recipe: %s",
          ct_last_error());
    char *after = ct_test_read_file(saved_path, &after_len);
    CHECK(before && after && before_len == after_len && !memcmp(before, after, before_len), "old file kept");
    free(before);
    free(after);
    CHECK(ct_recipe_save(&r, tmp_path("no/such/dir/recipe.yaml")) < 0, "save into a missing folder fails");
    int entries = 0;
    DIR *d = opendir(tmpdir);
    for (struct dirent *e; d && (e = readdir(d));) entries += strstr(e->d_name, ".tmp") != NULL;
    if (d) closedir(d);
    CHECK(entries == 0, "%d temporary files left", entries);
    ct_recipe_free(&r);
}

/* ---- help ---- */

static char *help_text(void) {
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    ct_recipe_print_help(out);
    fclose(out);
    return text;
}

static void test_help(void) {
    char *help = help_text();
    size_t n;
    const ct_recipe_key *schema = ct_recipe_schema(&n);
    for (size_t i = 0; i < n; i++) {
        char needle[128];
        snprintf(needle, sizeof needle, schema[i].type == CT_RECIPE_SECTION ? "\n%s: " : "  %s ", schema[i].key);
        CHECK(strstr(help, needle) != NULL, "help lacks %s", schema[i].key);
    }
    CHECK(strstr(help, "  optimizer.lr") && strstr(help, "float [0, )") && strstr(help, "3e-4") &&
              strstr(help, "one of cpu, cuda") && strstr(help, "peak learning rate"),
          "help shows type, range, default and meaning");
    size_t doc_len;
    char *doc = ct_test_read_file(ct_test_path("docs/recipes.md"), &doc_len);
    CHECK(doc && strstr(doc, help), "docs/recipes.md does not hold the current key table: regenerate it with "
                                    "`build/test_recipe --print-help`");
    free(doc);
    free(help);
}

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "--print-help")) {
        ct_recipe_print_help(stdout);
        return 0;
    }
    if (!ct_test_temp_dir(tmpdir, sizeof tmpdir, "recipe")) return 1;
    test_schema();
    test_defaults();
    test_shipped_recipes();
    test_pretrain_recipe_values();
    test_conversions();
    test_enum_constants();
    test_strings();
    test_unknown_keys();
    test_file_errors();
    test_load_is_atomic();
    test_file_forms();
    test_damaged_text();
    test_load_file_errors();
    test_overrides();
    test_resolve();
    test_finalize();
    test_validate();
    test_round_trip_fixed();
    test_round_trip_random();
    test_save();
    test_help();
    ct_test_remove_tree(tmpdir);
    return ct_test_finish("test_recipe");
}
