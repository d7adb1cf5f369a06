/* The pipeline file: a YAML mapping of a few top-level keys and one section per stage, read with
 * the recipes' YAML reader (dotted keys, line numbers) and overridden by `key=value` arguments the
 * same way. docs/pipeline.md lists the keys. */
#include <stdlib.h>
#include <string.h>

#include "cli/pipeline.h"
#include "core/error.h"
#include "core/paths.h"
#include "train/recipe.h"

static const char *const stage_names[CT_STAGE_COUNT] = {"teacher", "adapt",    "merge",  "distill",
                                                        "prune",   "quantize", "export", "serve"};
/* The stage whose outputs each stage reads. */
static const int stage_inputs[CT_STAGE_COUNT] = {-1, CT_STAGE_TEACHER, CT_STAGE_ADAPT, CT_STAGE_MERGE,
                                                 CT_STAGE_DISTILL, CT_STAGE_PRUNE, CT_STAGE_PRUNE, CT_STAGE_EXPORT};

const char *ct_stage_name(int stage) { return stage >= 0 && stage < CT_STAGE_COUNT ? stage_names[stage] : "?"; }

int ct_stage_find(const char *name) {
    for (int i = 0; i < CT_STAGE_COUNT; i++)
        if (!strcmp(name, stage_names[i])) return i;
    return -1;
}

const char *ct_stage_list(void) { return "teacher, adapt, merge, distill, prune, quantize, export, serve"; }

bool ct_stage_trains(int stage) {
    return stage == CT_STAGE_TEACHER || stage == CT_STAGE_ADAPT || stage == CT_STAGE_DISTILL || stage == CT_STAGE_PRUNE;
}

int ct_stage_input(int stage) { return stage >= 0 && stage < CT_STAGE_COUNT ? stage_inputs[stage] : -1; }

static int set_string(char **field, const char *value, size_t len) {
    char *copy = malloc(len + 1);
    if (!copy) return ct_fail("out of memory");
    memcpy(copy, value, len);
    copy[len] = '\0';
    free(*field);
    *field = copy;
    return 0;
}

static int set_int(int *field, const char *key, const char *value) {
    char *end;
    long n = strtol(value, &end, 10);
    if (end == value || *end || n < 0 || n > 1000000000) return ct_fail("%s: '%s' is not a whole number >= 0", key, value);
    *field = (int)n;
    return 0;
}

static int add_override(ct_stage_conf *c, const char *key, const char *value, size_t len) {
    char **grown = realloc(c->set, sizeof *grown * (size_t)(c->n_set + 1));
    if (!grown) return ct_fail("out of memory");
    c->set = grown;
    size_t klen = strlen(key);
    char *item = malloc(klen + len + 2);
    if (!item) return ct_fail("out of memory");
    memcpy(item, key, klen);
    item[klen] = '=';
    memcpy(item + klen + 1, value, len);
    item[klen + 1 + len] = '\0';
    c->set[c->n_set++] = item;
    return 0;
}

/* A stage's key: recipe, reuse (teacher), set.<recipe key> (training stages), type (export),
 * server and max_examples (serve). */
static int set_stage_key(ct_pipeline *p, int stage, const char *key, const char *value, size_t len) {
    ct_stage_conf *c = &p->stage[stage];
    bool trains = ct_stage_trains(stage);
    if (trains && !strncmp(key, "set.", 4) && key[4]) {
        if (!ct_recipe_find_key(key + 4))
            return ct_fail("%s.%s: '%s' is not a recipe key ('ctune train --help' lists them)", ct_stage_name(stage), key,
                           key + 4);
        return add_override(c, key + 4, value, len);
    }
    if (trains && !strcmp(key, "recipe")) return set_string(&c->recipe, value, len);
    if (stage == CT_STAGE_TEACHER && !strcmp(key, "reuse")) return set_string(&c->reuse, value, len);
    if (stage == CT_STAGE_EXPORT && !strcmp(key, "type")) return set_string(&c->type, value, len);
    if (stage == CT_STAGE_SERVE && !strcmp(key, "server")) return set_string(&c->server, value, len);
    if (stage == CT_STAGE_SERVE && !strcmp(key, "max_examples")) return set_int(&c->max_examples, "serve.max_examples", value);
    return ct_fail("%s.%s: not a key of stage %s (%s)", ct_stage_name(stage), key, ct_stage_name(stage),
                   trains ? (stage == CT_STAGE_TEACHER ? "recipe, reuse, set.KEY" : "recipe, set.KEY")
                   : stage == CT_STAGE_EXPORT ? "type"
                   : stage == CT_STAGE_SERVE  ? "server, max_examples"
                                              : "it has none");
}

/* One dotted key of the file or the command line. A NULL value is a sequence or mapping that
 * is not a plain list. */
static int set_key(ct_pipeline *p, const char *key, const char *value, size_t len) {
    char **text = !strcmp(key, "name")          ? &p->name
                  : !strcmp(key, "description") ? &p->description
                  : !strcmp(key, "output_dir")  ? &p->output_dir
                  : !strcmp(key, "test")        ? &p->test
                  : !strcmp(key, "dialog_test") ? &p->dialog_test
                  : !strcmp(key, "baselines")   ? &p->baselines
                                                : NULL;
    if (!value) return ct_fail("%s: a value, not a nested list, is expected", key);
    if (text) return set_string(text, value, len);
    if (!strcmp(key, "threads")) return set_int(&p->threads, key, value);
    if (!strcmp(key, "eval_max_examples")) return set_int(&p->eval_max_examples, key, value);
    const char *dot = strchr(key, '.');
    char stage_name[64];
    size_t n = dot ? (size_t)(dot - key) : strlen(key);
    snprintf(stage_name, sizeof stage_name, "%.*s", (int)n, key);
    int stage = ct_stage_find(stage_name);
    if (stage < 0)
        return ct_fail("unknown stage or key '%s' (stages: %s; keys: name, description, output_dir, threads, test, "
                       "dialog_test, baselines, eval_max_examples)",
                       stage_name, ct_stage_list());
    if (!dot && !len) return 0; /* `merge:` with nothing under it: the stage's defaults */
    if (!dot) return ct_fail("%s: a stage is a mapping of its keys", key);
    return set_stage_key(p, stage, dot + 1, value, len);
}

typedef struct {
    ct_pipeline *p;
} visit_ctx;

static int visit(void *ctx, const char *key, ct_yaml_kind kind, const char *value, size_t len, int line) {
    ct_pipeline *p = ((visit_ctx *)ctx)->p;
    if (kind == CT_YAML_MAPPING) {
        /* Descend into stages and their set: sections; a mapping anywhere else is a mistake. */
        const char *dot = strchr(key, '.');
        char head[64];
        snprintf(head, sizeof head, "%.*s", (int)(dot ? (size_t)(dot - key) : strlen(key)), key);
        if (ct_stage_find(head) >= 0) return 1;
        return ct_fail("%s:%d: unknown stage '%s' (stages: %s)", p->file, line, head, ct_stage_list());
    }
    if (kind == CT_YAML_NULL) value = "", len = 0;
    if (set_key(p, key, value, value ? len : 0) < 0) return ct_fail_context("%s:%d: ", p->file, line);
    return 0;
}

static int init(ct_pipeline *p, const char *path) {
    memset(p, 0, sizeof *p);
    char **strings[] = {&p->file, &p->name, &p->description, &p->output_dir, &p->test, &p->dialog_test, &p->baselines};
    const char *defaults[] = {path, "", "", "", "datasets/data/intent_test.jsonl", "datasets/data/dialog_test.jsonl", ""};
    for (size_t i = 0; i < sizeof strings / sizeof strings[0]; i++)
        if (!(*strings[i] = strdup(defaults[i]))) return ct_fail("out of memory");
    for (int s = 0; s < CT_STAGE_COUNT; s++) {
        ct_stage_conf *c = &p->stage[s];
        c->recipe = strdup("");
        c->reuse = strdup("");
        c->type = strdup(s == CT_STAGE_EXPORT ? "q8_0" : "");
        c->server = strdup("");
        if (!c->recipe || !c->reuse || !c->type || !c->server) return ct_fail("out of memory");
    }
    return 0;
}

/* The name (the file's name without .yaml) and output_dir (runs/<name>) when the file leaves
 * them out; every training stage has a recipe file that exists, unless the teacher is reused. */
static int finish(ct_pipeline *p) {
    if (!p->name[0]) {
        const char *base = strrchr(p->file, '/');
        base = base ? base + 1 : p->file;
        size_t n = strcspn(base, ".");
        CT_TRY(set_string(&p->name, base, n));
    }
    if (!p->output_dir[0]) {
        char *dir = ct_path_join("runs", p->name);
        if (!dir) return -1;
        free(p->output_dir);
        p->output_dir = dir;
    }
    for (int s = 0; s < CT_STAGE_COUNT; s++) {
        const ct_stage_conf *c = &p->stage[s];
        if (!ct_stage_trains(s) || (s == CT_STAGE_TEACHER && c->reuse[0])) continue;
        if (!c->recipe[0])
            return ct_fail("%s: stage %s has no recipe; set %s.recipe to a recipe file (recipes/*.yaml)", p->file,
                           ct_stage_name(s), ct_stage_name(s));
        if (!ct_is_file(c->recipe))
            return ct_fail("%s: %s.recipe: recipe '%s' not found; name a file in recipes/ ('ctune train --help' lists "
                           "them)",
                           p->file, ct_stage_name(s), c->recipe);
    }
    if (p->stage[CT_STAGE_TEACHER].reuse[0] && !ct_is_dir(p->stage[CT_STAGE_TEACHER].reuse))
        return ct_fail("%s: teacher.reuse: '%s' is not a folder; give a finished pretraining run (with model/ and "
                       "tokenizer/) or leave it empty to train the teacher",
                       p->file, p->stage[CT_STAGE_TEACHER].reuse);
    return 0;
}

static int load(ct_pipeline *p, const char *path, int n_overrides, char *const *overrides) {
    CT_TRY(init(p, path));
    size_t len;
    char *text = ct_read_file(path, 1 << 20, &len);
    if (!text) {
        /* ct_last_error() names the file and the reason; copied, since ct_fail rewrites it */
        char why[1024];
        snprintf(why, sizeof why, "%s", ct_last_error());
        return ct_fail("pipeline file %s; give one such as recipes/intent_zh_pipeline.yaml", why);
    }
    visit_ctx ctx = {p};
    int rc = ct_yaml_visit(text, len, path, visit, &ctx);
    free(text);
    CT_TRY(rc);
    for (int i = 0; i < n_overrides; i++) {
        const char *eq = strchr(overrides[i], '=');
        if (!eq) return ct_fail("'%s' is not a key=value override", overrides[i]);
        char key[256];
        snprintf(key, sizeof key, "%.*s", (int)(eq - overrides[i]), overrides[i]);
        if (set_key(p, key, eq + 1, strlen(eq + 1)) < 0) return ct_fail_context("command line: ");
    }
    return finish(p);
}

int ct_pipeline_load(ct_pipeline *p, const char *path, int n_overrides, char *const *overrides) {
    int rc = load(p, path, n_overrides, overrides);
    if (rc < 0) ct_pipeline_free(p);
    return rc;
}

void ct_pipeline_free(ct_pipeline *p) {
    char *strings[] = {p->file, p->name, p->description, p->output_dir, p->test, p->dialog_test, p->baselines};
    for (size_t i = 0; i < sizeof strings / sizeof strings[0]; i++) free(strings[i]);
    for (int s = 0; s < CT_STAGE_COUNT; s++) {
        ct_stage_conf *c = &p->stage[s];
        free(c->recipe);
        free(c->reuse);
        free(c->type);
        free(c->server);
        for (int i = 0; i < c->n_set; i++) free(c->set[i]);
        free(c->set);
    }
    memset(p, 0, sizeof *p);
}
