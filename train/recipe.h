/* Recipes: the typed settings of one job (a training run, a fine-tune, ...), read from a YAML
 * file in recipes/ and from `key=value` overrides on the command line.
 *
 * One schema table (train/recipe.c) gives every key its dotted name, type, place in ct_recipe,
 * default and help. Files and overrides go through the same table: libyaml hands over text and
 * the key's type decides what the text means, so `1e-4` is a number wherever a float is
 * expected and `no` is never a boolean by accident. Unknown keys are errors that suggest the
 * nearest valid keys. docs/recipes.md lists the keys and the type rules.
 *
 * Adding a key (or a section such as lora.*): a field in the structs below and one row in the
 * schema table; the loader, the overrides, the YAML dump and the help follow from the row. */
#ifndef CT_RECIPE_H
#define CT_RECIPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "core/tensor.h"    /* ct_device: device */
#include "datasets/tokenizer.h" /* ct_chat_mask_mode: data.loss_on */

/* Enum keys are stored as C enums whose order is the order of the schema's allowed values. */
typedef enum { CT_RECIPE_LLAMA, CT_RECIPE_QWEN2, CT_RECIPE_QWEN3, CT_RECIPE_MISTRAL } ct_recipe_arch;
typedef enum {
    CT_RECIPE_DATA_INTENT,        /* {"text", "label"} lines: one user turn, the label's text answers */
    CT_RECIPE_DATA_CHAT,          /* {"messages": [...]} lines: learn the assistant turns */
    CT_RECIPE_DATA_DIALOG_INTENT, /* {"messages", "label"} lines: the label of the last user turn */
    CT_RECIPE_DATA_TEXT,          /* plain text, paragraphs separated by blank lines */
} ct_recipe_data_format;
typedef enum { CT_RECIPE_TRUNCATE_RIGHT, CT_RECIPE_TRUNCATE_LEFT, CT_RECIPE_TRUNCATE_DROP } ct_recipe_truncation;
typedef enum { CT_RECIPE_ADAMW } ct_recipe_optimizer_name;
typedef enum { CT_RECIPE_COSINE, CT_RECIPE_LINEAR, CT_RECIPE_CONSTANT } ct_recipe_schedule_name;
typedef enum { CT_RECIPE_FP32, CT_RECIPE_BF16, CT_RECIPE_FP16 } ct_recipe_precision;
typedef enum { CT_RECIPE_LORA_KAIMING, CT_RECIPE_LORA_GAUSSIAN } ct_recipe_lora_init;
typedef enum { CT_RECIPE_TEACHER_F32, CT_RECIPE_TEACHER_BF16, CT_RECIPE_TEACHER_INT8 } ct_recipe_teacher_dtype;
typedef enum { CT_RECIPE_FORWARD_KL, CT_RECIPE_REVERSE_KL, CT_RECIPE_SYMMETRIC_KL } ct_recipe_kd_loss;
typedef enum { CT_RECIPE_BASE_AUTO, CT_RECIPE_BASE_F32, CT_RECIPE_BASE_BF16, CT_RECIPE_BASE_INT8 } ct_recipe_base_dtype;
/* checkpoint.select: which evaluated step's weights become model/ (train/trainer_select.c). */
typedef enum { CT_RECIPE_SELECT_LAST, CT_RECIPE_SELECT_BEST_VAL_ACCURACY, CT_RECIPE_SELECT_BEST_VAL_LOSS } ct_recipe_select;

/* Strings are owned by the recipe and never NULL: an unset string is "". */
typedef struct {
    char *path; /* HF model folder or ctune checkpoint; "" = a new model from the keys below */
    ct_recipe_arch arch;
    int hidden_size, intermediate_size, num_layers, num_heads, num_kv_heads;
    int head_dim; /* 0 = hidden_size / num_heads */
    double rope_theta, rms_norm_eps;
    int max_seq_len;
    bool tie_word_embeddings;
    double init_std, dropout;
    bool gradient_checkpointing;
    char *adapter; /* a PEFT LoRA adapter folder applied on model.path; "" = none */
    ct_recipe_base_dtype base_dtype; /* the frozen tensors of a loaded model (models/llama.h ct_base_dtype) */
} ct_recipe_model;

typedef struct {
    char *path; /* "" = the tokenizer.json next to model.path's weights */
    bool train; /* learn a byte-level BPE tokenizer on data.train first */
    int vocab_size, min_frequency;
} ct_recipe_tokenizer;

typedef struct {
    ct_recipe_data_format format;
    char *train, *val, *test, *labels, *system_prompt;
    int max_seq_len; /* 0 = model.max_seq_len */
    int batch_tokens, batch_size;
    bool packing;
    ct_recipe_truncation truncation;
    bool shuffle;
    ct_chat_mask_mode loss_on;
    bool skip_bad_lines;
    int max_examples; /* 0 = all */
} ct_recipe_data;

typedef struct {
    ct_recipe_optimizer_name name;
    double lr, weight_decay, beta1, beta2, eps;
    double grad_clip; /* 0 = off */
} ct_recipe_optimizer;

typedef struct {
    ct_recipe_schedule_name name;
    int warmup_steps;
    double min_lr_ratio;
} ct_recipe_schedule;

typedef struct {
    int max_steps; /* 0 = train.epochs over data.train */
    int epochs, grad_accum, log_every, eval_every;
    ct_recipe_precision precision;
    char *trainable; /* list: fnmatch globs over HF parameter names; "" = every parameter */
    char *freeze;    /* list: globs of parameters frozen after train.trainable chose */
    bool shard_optimizer;  /* under mpirun: ZeRO-1, each rank keeps the AdamW moments of its slice */
    double dist_timeout_s; /* under mpirun: the longest wait for another rank */
} ct_recipe_train;

typedef struct {
    int every; /* steps between checkpoints; 0 = only at the end */
    int keep_last;
    char *dir; /* "" before ct_recipe_finalize = output_dir/checkpoints */
    ct_recipe_select select; /* last, or the best validation evaluation */
} ct_recipe_checkpoint;

typedef struct {
    int max_examples; /* 0 = all */
    bool length_normalized;
    int batch_size;
} ct_recipe_eval;

/* LoRA as PEFT defines it (models/lora.h): adapters on the projections target_modules names, the
 * base frozen. */
typedef struct {
    bool enabled;
    int r;
    double alpha, dropout;
    char *target_modules;  /* list: q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj, or all-linear */
    char *layers;          /* list of layer indices; "" = every layer */
    bool use_rslora;
    bool use_dora;         /* DoRA: a magnitude vector per adapted projection */
    ct_recipe_lora_init init;
    char *modules_to_save; /* list: lm_head, embed_tokens: trained fully beside the adapters */
} ct_recipe_lora;

/* Pruning (models/prune.h, docs/pruning.md): methods in the order of ct_prune_method after none. */
typedef enum {
    CT_RECIPE_PRUNE_NONE,
    CT_RECIPE_PRUNE_L1_UNSTRUCTURED,
    CT_RECIPE_PRUNE_GLOBAL_UNSTRUCTURED,
    CT_RECIPE_PRUNE_LN_STRUCTURED,
    CT_RECIPE_PRUNE_RANDOM_UNSTRUCTURED,
    CT_RECIPE_PRUNE_NM,
} ct_recipe_prune_method;
typedef enum { CT_RECIPE_PRUNE_ONE_SHOT, CT_RECIPE_PRUNE_GRADUAL } ct_recipe_prune_schedule;

typedef struct {
    ct_recipe_prune_method method;
    double amount;             /* a fraction; the final sparsity of a gradual schedule */
    int count;                 /* > 0: prune this many entries (channels) per tensor instead (one-shot) */
    char *targets;             /* list: globs over HF names; "" = every layer's projections */
    bool include_norms_embeddings;
    double n;                  /* ln_structured's norm order */
    int dim;                   /* ln_structured's dim */
    bool mlp_channels;         /* ln_structured on MLP channels (gate/up rows with down columns) */
    int nm_n, nm_m;            /* N:M */
    ct_recipe_prune_schedule schedule;
    double initial_sparsity;   /* gradual: s_i */
    int start_step, end_step;  /* gradual: t0 and t0 + n * every (0 = the last step) */
    int every;                 /* gradual: steps between pruning steps */
    bool keep_zeros;           /* masks from model.path's zeros (a pruned folder trained further) */
} ct_recipe_prune;
/* Knowledge distillation (train/distill.h): a frozen teacher, loss = (1 - kd_ratio) CE +
 * kd_ratio T^2 KL over the target tokens. Off while teacher is "". */
typedef struct {
    char *teacher;         /* HF folder, ctune run or checkpoint; "" = no distillation */
    char *teacher_adapter; /* a PEFT LoRA adapter folder merged into the teacher; "" = none */
    ct_recipe_teacher_dtype teacher_dtype;
    double kd_ratio, temperature;
    ct_recipe_kd_loss loss;
} ct_recipe_distill;

/* How a distilled student starts when model.path is empty. */
typedef struct {
    char *init_from_teacher_layers; /* list of teacher layer indices; "" = a new model from model.* */
    bool init_from_teacher_embedding; /* a new model.* student starts with the teacher's embedding and norm */
} ct_recipe_student;

typedef struct {
    char *name, *description;
    int seed;
    ct_device device;
    int threads; /* 0 = all cores */
    char *output_dir; /* "" before ct_recipe_finalize = runs/<name> */
    char *resume;
    bool overwrite; /* a fresh run may replace an earlier run in output_dir */
    ct_recipe_model model;
    ct_recipe_tokenizer tokenizer;
    ct_recipe_data data;
    ct_recipe_optimizer optimizer;
    ct_recipe_schedule schedule;
    ct_recipe_train train;
    ct_recipe_checkpoint checkpoint;
    ct_recipe_eval eval;
    ct_recipe_lora lora;
    ct_recipe_prune prune;
    ct_recipe_distill distill;
    ct_recipe_student student;
} ct_recipe;

/* ---- the schema ---- */

typedef enum {
    CT_RECIPE_SECTION, /* a row that opens a section ("model"); its keys follow it */
    CT_RECIPE_INT,
    CT_RECIPE_FLOAT,
    CT_RECIPE_BOOL,
    CT_RECIPE_STRING,
    CT_RECIPE_ENUM,
    CT_RECIPE_LIST, /* a list of strings, held as one char * of comma-separated items ("" = empty):
                     * a YAML sequence in a file, `key=a,b` on the command line */
} ct_recipe_type;

typedef struct {
    const char *key;          /* dotted: "optimizer.lr"; a section row holds the section name */
    ct_recipe_type type;
    size_t offset;            /* offsetof(ct_recipe, field) */
    const char *default_text; /* converted by the key's type, like a value in a file */
    const char *help;         /* one line */
    const char *const *choices; /* enum: the allowed values, NULL-terminated, in C enum order */
    const char *range;        /* int/float, optional: "[0, 1)", "[1, )": closed or open ends */
} ct_recipe_key;

/* The table, sections in order, each section's keys after its row. */
const ct_recipe_key *ct_recipe_schema(size_t *count);
/* The key row named `key` (not a section), or NULL. */
const ct_recipe_key *ct_recipe_find_key(const char *key);
/* Checks the table itself: unique keys under their section rows, defaults that convert, ranges
 * that parse and hold the default, enum choices. Returns 0, or -1 naming the row. */
int ct_recipe_schema_check(void);

/* ---- a recipe's life: defaults, file, overrides, finalize, validate ---- */

/* Every key at its default; the functions below take a recipe made by this one (or by
 * ct_recipe_copy / ct_recipe_resolve). Returns 0, or -1 (out of memory). */
int ct_recipe_init(ct_recipe *r);
void ct_recipe_free(ct_recipe *r);
int ct_recipe_copy(ct_recipe *dst, const ct_recipe *src);

/* Sets one key from text, converted by the key's type. Errors name the key but no place:
 * callers with a place (file:line, command line) use the functions below. */
int ct_recipe_set(ct_recipe *r, const char *key, const char *value);
/* Applies the keys of a YAML recipe file on top of `r`. Nested mappings are dotted keys
 * (`optimizer: {lr: 1e-4}` is `optimizer.lr`; `optimizer.lr: 1e-4` works too). All or nothing:
 * on error `r` is unchanged and the one-line message names the file, line and key. */
int ct_recipe_load_file(ct_recipe *r, const char *path);
/* The same for YAML text in memory (a recipe stored in a checkpoint); `source` names it. */
int ct_recipe_load_text(ct_recipe *r, const char *text, size_t len, const char *source);
/* One command-line override, "key=value": the value is taken verbatim (no YAML quoting rules;
 * the shell has already removed quotes), so `data.val=` sets an empty string. */
int ct_recipe_override(ct_recipe *r, const char *assignment);
/* Fills the keys computed from others: name (the recipe file's name without .yaml, when empty;
 * `recipe_path` may be NULL), output_dir (runs/<name>), checkpoint.dir (output_dir/checkpoints). */
int ct_recipe_finalize(ct_recipe *r, const char *recipe_path);
/* The longest training sequence: data.max_seq_len, or model.max_seq_len when that is 0. */
int64_t ct_recipe_seq_len(const ct_recipe *r);
/* Checks what no single key can: head counts that divide, a tokenizer source, a step budget. */
int ct_recipe_validate(const ct_recipe *r);
/* All of it: defaults, the file (NULL for none), the overrides in order (later ones win),
 * finalize, validate. On error `r` holds nothing to free and ct_last_error says why. */
int ct_recipe_resolve(ct_recipe *r, const char *path, int n_overrides, char *const *overrides);

/* ---- output ---- */

/* The value of `key` as text: numbers in the shortest form that reads back exactly, booleans
 * true/false, enums by name, strings as they are. Returns 0, or -1 when `buf` is too small. */
int ct_recipe_format_value(const ct_recipe *r, const ct_recipe_key *key, char *buf, size_t size);
/* The fully resolved recipe as YAML text (every key, defaults included), which loads back to an
 * equal recipe. The caller frees it. NULL on failure. */
char *ct_recipe_to_yaml(const ct_recipe *r);
/* Writes ct_recipe_to_yaml to `path` through a temporary file and a rename. */
int ct_recipe_save(const ct_recipe *r, const char *path);
/* The first key whose value differs, or NULL when the recipes are equal. */
const char *ct_recipe_first_difference(const ct_recipe *a, const ct_recipe *b);
/* Sections and keys with type, default and help: `ctune train --help`. */
void ct_recipe_print_help(FILE *out);
/* One line per recipe file (*.yaml, *.yml) in `dir`, sorted: its path and description. A file
 * that does not load is listed with its error. Returns the number listed, or -1 (no folder). */
int ct_recipe_print_list(FILE *out, const char *dir);

/* ---- the YAML reader underneath (train/recipe_yaml.c) ---- */

typedef enum { CT_YAML_SCALAR, CT_YAML_NULL, CT_YAML_SEQUENCE, CT_YAML_MAPPING } ct_yaml_kind;

/* Called for each value of the document's top-level mapping and, depth first, of the mappings
 * under it, with its dotted key and 1-based line. `value`/`len` hold a scalar's text (also for
 * CT_YAML_NULL: "", "~" or "null", unquoted); a sequence's items joined by commas when every item
 * is a scalar without one (else `value` is NULL); for a mapping `len` is its number of entries:
 * return 1 to visit them, 0 to skip them. Return -1 (after ct_fail) to stop. */
typedef int (*ct_yaml_visit_fn)(void *ctx, const char *key, ct_yaml_kind kind, const char *value,
                                size_t len, int line);
/* Parses one YAML document (an empty one has no entries) whose top level is a mapping. Syntax
 * errors, non-scalar keys and several documents fail with "source:line: ...". */
int ct_yaml_visit(const char *text, size_t len, const char *source, ct_yaml_visit_fn visit, void *ctx);

#endif
