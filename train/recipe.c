/* Recipes: the schema table, typed conversion of text values, loading files and overrides,
 * computed keys, validation, help. The YAML reader and writer are in recipe_yaml.c. */
#include "train/recipe.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

/* Enum keys are written through an int pointer: each enum must be an int in size. */
_Static_assert(sizeof(ct_device) == sizeof(int), "ct_device must be int-sized");
_Static_assert(sizeof(ct_chat_mask_mode) == sizeof(int), "ct_chat_mask_mode must be int-sized");
_Static_assert(sizeof(ct_recipe_arch) == sizeof(int), "ct_recipe_arch must be int-sized");
_Static_assert(sizeof(ct_recipe_data_format) == sizeof(int), "ct_recipe_data_format must be int-sized");
_Static_assert(sizeof(ct_recipe_truncation) == sizeof(int), "ct_recipe_truncation must be int-sized");
_Static_assert(sizeof(ct_recipe_optimizer_name) == sizeof(int), "enum must be int-sized");
_Static_assert(sizeof(ct_recipe_schedule_name) == sizeof(int), "enum must be int-sized");
_Static_assert(sizeof(ct_recipe_precision) == sizeof(int), "enum must be int-sized");
_Static_assert(sizeof(ct_recipe_teacher_dtype) == sizeof(int), "enum must be int-sized");
_Static_assert(sizeof(ct_recipe_kd_loss) == sizeof(int), "enum must be int-sized");
_Static_assert(sizeof(ct_recipe_select) == sizeof(int), "enum must be int-sized");

/* ---- the schema table ---- */

/* Allowed values, in the order of the C enums in recipe.h. */
static const char *const device_choices[] = {"cpu", "cuda", NULL};
static const char *const arch_choices[] = {"llama", "qwen2", "qwen3", "mistral", NULL};
static const char *const format_choices[] = {"intent", "chat", "dialog_intent", "text", NULL};
static const char *const truncation_choices[] = {"right", "left", "drop", NULL};
static const char *const loss_on_choices[] = {"all_assistant", "last_assistant", NULL};
static const char *const optimizer_choices[] = {"adamw", NULL};
static const char *const schedule_choices[] = {"cosine", "linear", "constant", NULL};
static const char *const precision_choices[] = {"fp32", "bf16", "fp16", NULL};
static const char *const lora_init_choices[] = {"kaiming", "gaussian", NULL};
static const char *const prune_method_choices[] = {"none", "l1_unstructured", "global_unstructured", "ln_structured",
                                                   "random_unstructured", "nm", NULL};
static const char *const prune_schedule_choices[] = {"one_shot", "gradual", NULL};
static const char *const teacher_dtype_choices[] = {"f32", "bf16", "int8", NULL};
static const char *const kd_loss_choices[] = {"forward_kl", "reverse_kl", "symmetric_kl", NULL};
static const char *const base_dtype_choices[] = {"auto", "f32", "bf16", "int8", NULL};
static const char *const select_choices[] = {"last", "best_val_accuracy", "best_val_loss", NULL};

#define AT(field) offsetof(ct_recipe, field)
#define SECTION(name, help) {name, CT_RECIPE_SECTION, 0, NULL, help, NULL, NULL}
#define INT(key, field, def, range, help) {key, CT_RECIPE_INT, AT(field), def, help, NULL, range}
#define FLOAT(key, field, def, range, help) {key, CT_RECIPE_FLOAT, AT(field), def, help, NULL, range}
#define BOOL(key, field, def, help) {key, CT_RECIPE_BOOL, AT(field), def, help, NULL, NULL}
#define STRING(key, field, def, help) {key, CT_RECIPE_STRING, AT(field), def, help, NULL, NULL}
#define LIST(key, field, def, help) {key, CT_RECIPE_LIST, AT(field), def, help, NULL, NULL}
#define ENUM(key, field, choices, def, help) {key, CT_RECIPE_ENUM, AT(field), def, help, choices, NULL}

/* The one place every key is defined. Top-level keys come first, then each section's row and
 * its keys. A later section (lora, distill, prune, export) is a SECTION row, its keys, and the
 * fields they point at in recipe.h. */
static const ct_recipe_key schema[] = {
    STRING("name", name, "", "the run's name; empty = the recipe file's name without .yaml"),
    STRING("description", description, "", "one line saying what the recipe does (listed by ctune train --help)"),
    INT("seed", seed, "1234", "[0, )",
        "seeds initialization, data order and dropout: same seed and thread count, same run bit for bit"),
    ENUM("device", device, device_choices, "cpu",
         "where to train: parameters, gradients, AdamW moments and activations live there; cuda needs a "
         "CUDA build and a GPU (not yet run on one)"),
    INT("threads", threads, "0", "[0, )", "CPU threads (OpenMP); 0 = all cores"),
    STRING("output_dir", output_dir, "", "the run directory (resolved recipe, logs, checkpoints); empty = runs/<name>"),
    STRING("resume", resume, "",
           "a checkpoint to continue from (weights, optimizer, step, data position); empty = start fresh"),
    BOOL("overwrite", overwrite, "false",
         "a fresh run in an output_dir that holds an earlier run replaces it (checkpoints, model/, metrics, "
         "plot, recipe.yaml) once its own checks have passed; false = refuse to start there"),

    SECTION("model", "the network: pretrained weights to start from, or the shape of a new one"),
    STRING("model.path", model.path, "",
           "HF model folder (config.json + safetensors), ctune run folder (its model/, else its newest "
           "checkpoint) or .h5 checkpoint; empty = a new model shaped by the keys below, which a loaded "
           "model's config overrides"),
    ENUM("model.arch", model.arch, arch_choices, "llama",
         "family of a new model: qwen2 adds q/k/v biases, qwen3 q/k norms"),
    INT("model.hidden_size", model.hidden_size, "128", "[1, )", "width of the residual stream"),
    INT("model.intermediate_size", model.intermediate_size, "352", "[1, )", "width of the SwiGLU feed-forward layer"),
    INT("model.num_layers", model.num_layers, "4", "[1, )", "transformer blocks"),
    INT("model.num_heads", model.num_heads, "4", "[1, )", "query heads"),
    INT("model.num_kv_heads", model.num_kv_heads, "2", "[1, )",
        "key/value heads (grouped-query attention); must divide num_heads"),
    INT("model.head_dim", model.head_dim, "0", "[0, )", "width of one head; 0 = hidden_size / num_heads"),
    FLOAT("model.rope_theta", model.rope_theta, "10000", "(0, )", "RoPE base frequency"),
    FLOAT("model.rms_norm_eps", model.rms_norm_eps, "1e-5", "(0, )", "epsilon inside RMSNorm's square root"),
    INT("model.max_seq_len", model.max_seq_len, "256", "[1, )", "longest sequence the model is built for"),
    BOOL("model.tie_word_embeddings", model.tie_word_embeddings, "true",
         "share the token embedding matrix with the output projection"),
    FLOAT("model.init_std", model.init_std, "0.02", "(0, )", "standard deviation of a new model's initial weights"),
    FLOAT("model.dropout", model.dropout, "0", "[0, 1)", "dropout probability while training; 0 = none"),
    BOOL("model.gradient_checkpointing", model.gradient_checkpointing, "false",
         "recompute each block's activations in the backward pass: less memory, about a third more compute"),
    STRING("model.adapter", model.adapter, "",
           "a PEFT LoRA adapter folder (adapter_config.json + adapter_model.safetensors) applied on model.path: "
           "trained further with lora.enabled, else used as it is; empty = none"),
    ENUM("model.base_dtype", model.base_dtype, base_dtype_choices, "auto",
         "dtype of the frozen tensors of model.path (tensors that train are f32): auto keeps bf16 weights bf16 and "
         "widens the rest to f32; int8 quantizes the frozen projections per output row (LoRA on an INT8 base)"),

    SECTION("tokenizer", "the tokenizer: a Hugging Face tokenizer.json, or one trained on data.train"),
    STRING("tokenizer.path", tokenizer.path, "",
           "tokenizer.json or the folder holding it; empty = the trained one (tokenizer.train) or the one "
           "beside model.path's weights"),
    BOOL("tokenizer.train", tokenizer.train, "false",
         "first train a byte-level BPE tokenizer on data.train (as ctune tokenizer train does), saved in "
         "output_dir/tokenizer"),
    INT("tokenizer.vocab_size", tokenizer.vocab_size, "3000", "[259, )",
        "vocabulary of a trained tokenizer: 256 bytes + merges + 3 special tokens"),
    INT("tokenizer.min_frequency", tokenizer.min_frequency, "2", "[1, )",
        "a trained tokenizer stops merging when the best pair occurs fewer times"),

    SECTION("data", "the examples and how they become batches"),
    ENUM("data.format", data.format, format_choices, "intent",
         "intent: {text, label} lines; chat: {messages}; dialog_intent: {messages, label}, the label "
         "of the last user turn; text: plain paragraphs"),
    STRING("data.train", data.train, "", "training file: JSONL, or plain text for format text"),
    STRING("data.val", data.val, "", "validation file, evaluated during and after training; empty = none"),
    STRING("data.test", data.test, "", "test file, evaluated once at the end; empty = none"),
    STRING("data.labels", data.labels, "", "labels.json (label id -> answer text) for the intent formats"),
    STRING("data.system_prompt", data.system_prompt, "", "system message before each conversation; empty = none"),
    INT("data.max_seq_len", data.max_seq_len, "0", "[0, )",
        "tokens per sequence, longer ones are truncated; 0 = model.max_seq_len"),
    INT("data.batch_tokens", data.batch_tokens, "4096", "[1, )",
        "token budget of a batch (padding included): sequences of similar length share a batch"),
    INT("data.batch_size", data.batch_size, "64", "[1, )", "at most this many sequences in a batch"),
    BOOL("data.packing", data.packing, "false", "pack several examples into each row instead of padding"),
    ENUM("data.truncation", data.truncation, truncation_choices, "left",
         "what a too-long sequence loses: right its end (not for intent data), left its beginning (the answer stays), drop all of it"),
    BOOL("data.shuffle", data.shuffle, "true", "shuffle the training examples every epoch (seeded)"),
    ENUM("data.loss_on", data.loss_on, loss_on_choices, "all_assistant",
         "which assistant turns are training targets; prompts never are"),
    BOOL("data.skip_bad_lines", data.skip_bad_lines, "false",
         "skip malformed lines with a warning instead of stopping at the first"),
    INT("data.max_examples", data.max_examples, "0", "[0, )", "use at most this many training examples; 0 = all"),

    SECTION("optimizer", "the optimizer"),
    ENUM("optimizer.name", optimizer.name, optimizer_choices, "adamw", "AdamW: Adam with decoupled weight decay"),
    FLOAT("optimizer.lr", optimizer.lr, "3e-4", "[0, )", "peak learning rate"),
    FLOAT("optimizer.weight_decay", optimizer.weight_decay, "0.01", "[0, )", "decoupled weight decay"),
    FLOAT("optimizer.beta1", optimizer.beta1, "0.9", "[0, 1)", "decay rate of the gradient's running mean"),
    FLOAT("optimizer.beta2", optimizer.beta2, "0.999", "[0, 1)", "decay rate of the squared gradient's running mean"),
    FLOAT("optimizer.eps", optimizer.eps, "1e-8", "(0, )", "added to the denominator for stability"),
    FLOAT("optimizer.grad_clip", optimizer.grad_clip, "1.0", "[0, )", "clip the global gradient norm to this; 0 = off"),

    SECTION("schedule", "the learning rate over the steps"),
    ENUM("schedule.name", schedule.name, schedule_choices, "cosine", "shape of the decay after warmup"),
    INT("schedule.warmup_steps", schedule.warmup_steps, "0", "[0, )", "steps of linear warmup from 0 to optimizer.lr"),
    FLOAT("schedule.min_lr_ratio", schedule.min_lr_ratio, "0.1", "[0, 1]",
          "the last step's learning rate as a fraction of optimizer.lr (cosine, linear)"),

    SECTION("train", "the training loop"),
    INT("train.max_steps", train.max_steps, "0", "[0, )", "optimizer steps; 0 = train.epochs passes over data.train"),
    INT("train.epochs", train.epochs, "1", "[0, )", "passes over data.train when train.max_steps is 0"),
    INT("train.grad_accum", train.grad_accum, "1", "[1, )", "batches whose gradients add up to one optimizer step"),
    INT("train.log_every", train.log_every, "10", "[1, )", "report loss, learning rate and tokens/s every this many steps"),
    INT("train.eval_every", train.eval_every, "0", "[0, )", "evaluate data.val every this many steps; 0 = at the end only"),
    ENUM("train.precision", train.precision, precision_choices, "fp32",
         "bf16: matmuls and activations in bf16, f32 master weights, AdamW moments and loss (both "
         "devices); fp16 is refused (no loss scaling)"),
    LIST("train.trainable", train.trainable, "",
         "glob patterns (fnmatch) over HF parameter names that train, e.g. [\"*norm*\", \"lm_head.weight\"]; "
         "empty = every parameter (full fine-tuning); the others are frozen: no gradient, no AdamW moments"),
    LIST("train.freeze", train.freeze, "",
         "glob patterns of parameters to freeze among those train.trainable chose, e.g. "
         "[\"model.embed_tokens.weight\"]"),
    BOOL("train.shard_optimizer", train.shard_optimizer, "false",
         "under mpirun: ZeRO-1, each rank keeps the AdamW moments of its slice of the parameters (docs/distributed.md)"),
    FLOAT("train.dist_timeout_s", train.dist_timeout_s, "600", "(0, )",
          "under mpirun: the longest wait for another rank (longer than an evaluation or a checkpoint), then stop"),

    SECTION("checkpoint", "saved training state (HDF5)"),
    INT("checkpoint.every", checkpoint.every, "0", "[0, )", "save every this many steps; 0 = only at the end"),
    INT("checkpoint.keep_last", checkpoint.keep_last, "2", "[0, )", "keep this many newest checkpoints; 0 = all"),
    STRING("checkpoint.dir", checkpoint.dir, "", "where checkpoints go; empty = output_dir/checkpoints"),
    ENUM("checkpoint.select", checkpoint.select, select_choices, "last",
         "which weights become model/: the last step's, or those of the data.val evaluation (every "
         "train.eval_every steps and the last) with the highest accuracy (intent formats) or the lowest loss; "
         "a tie keeps the earlier step"),

    SECTION("eval", "evaluation"),
    INT("eval.max_examples", eval.max_examples, "0", "[0, )", "evaluate at most this many examples of a file; 0 = all"),
    BOOL("eval.length_normalized", eval.length_normalized, "false",
         "answer with the label of best mean log-probability per token, not best total (both are reported)"),
    INT("eval.batch_size", eval.batch_size, "32", "[1, )", "sequences per batch of the held-out loss (intent scoring batches each prompt's labels)"),

    SECTION("lora", "LoRA adapters as PEFT defines them: the base frozen, only the adapters (and lora.modules_to_save) train"),
    BOOL("lora.enabled", lora.enabled, "false", "add LoRA adapters to the projections lora.target_modules names"),
    INT("lora.r", lora.r, "8", "[1, )", "the adapters' rank"),
    FLOAT("lora.alpha", lora.alpha, "16", "(0, )", "scale numerator: the adapter's output is multiplied by alpha / r"),
    FLOAT("lora.dropout", lora.dropout, "0", "[0, 1)", "dropout on the adapters' input while training"),
    LIST("lora.target_modules", lora.target_modules, "q_proj,v_proj",
         "HF module names to adapt (q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj), or all-linear "
         "(every projection but lm_head, as PEFT)"),
    LIST("lora.layers", lora.layers, "", "layer indices to adapt, e.g. [0, 1]; empty = every layer"),
    BOOL("lora.use_rslora", lora.use_rslora, "false", "rank-stabilized LoRA: scale alpha / sqrt(r) instead of alpha / r"),
    BOOL("lora.use_dora", lora.use_dora, "false",
         "DoRA: a trained magnitude per output row times the direction W + s*B*A over its (detached) row norm, as peft"),
    ENUM("lora.init", lora.init, lora_init_choices, "kaiming",
         "A's initialization: kaiming (PEFT's default, uniform within 1/sqrt(in)) or gaussian (N(0, 1/r^2)); B starts at 0"),
    LIST("lora.modules_to_save", lora.modules_to_save, "",
         "modules trained fully beside the adapters (lm_head, embed_tokens), as PEFT's modules_to_save"),

    SECTION("prune", "pruning with torch.nn.utils.prune's semantics; masks keep pruned weights at zero through training "
                     "and into every export (docs/pruning.md)"),
    ENUM("prune.method", prune.method, prune_method_choices, "none",
         "none, l1_unstructured, global_unstructured (one L1 threshold across the targets), ln_structured, "
         "random_unstructured, or nm (N:M semi-structured)"),
    FLOAT("prune.amount", prune.amount, "0.3", "[0, 1]",
          "fraction to prune (of what remains, as torch); a gradual schedule's final sparsity"),
    INT("prune.count", prune.count, "0", "[0, )", "> 0: prune this many entries (or channels) per tensor instead of prune.amount"),
    LIST("prune.targets", prune.targets, "",
         "fnmatch globs over HF names; empty = every layer's q/k/v/o/gate/up/down projections"),
    BOOL("prune.include_norms_embeddings", prune.include_norms_embeddings, "false",
         "allow targets that are norms, biases, embed_tokens or lm_head (refused otherwise)"),
    FLOAT("prune.n", prune.n, "1", "[0, )", "ln_structured: the norm order (1, 2, ...; inf works too)"),
    INT("prune.dim", prune.dim, "0", "[0, )", "ln_structured: 0 prunes rows (output channels), 1 columns (inputs)"),
    BOOL("prune.mlp_channels", prune.mlp_channels, "false",
         "ln_structured on MLP channels: rows of gate_proj and up_proj with the matching columns of down_proj"),
    INT("prune.nm_n", prune.nm_n, "2", "[0, )", "nm: weights kept in each group"),
    INT("prune.nm_m", prune.nm_m, "4", "[1, )", "nm: consecutive input weights of a row per group"),
    ENUM("prune.schedule", prune.schedule, prune_schedule_choices, "one_shot",
         "one_shot (before the first step) or gradual (Zhu & Gupta's cubic schedule)"),
    FLOAT("prune.initial_sparsity", prune.initial_sparsity, "0", "[0, 1)", "gradual: the sparsity at prune.start_step"),
    INT("prune.start_step", prune.start_step, "0", "[0, )", "gradual: the step of the first pruning"),
    INT("prune.end_step", prune.end_step, "0", "[0, )", "gradual: the step reaching prune.amount; 0 = the last step"),
    INT("prune.every", prune.every, "10", "[1, )", "gradual: steps between pruning steps"),
    BOOL("prune.keep_zeros", prune.keep_zeros, "false",
         "mask the zeros model.path already has (a pruned folder trained further keeps its sparsity)"),
    SECTION("distill", "knowledge distillation: a frozen teacher; loss = (1 - kd_ratio) CE + kd_ratio T^2 KL"),
    STRING("distill.teacher", distill.teacher, "",
           "the teacher: a Hugging Face folder, a ctune run or checkpoint sharing the student's tokenizer; "
           "empty = no distillation"),
    STRING("distill.teacher_adapter", distill.teacher_adapter, "",
           "a PEFT LoRA adapter folder merged into the teacher; empty = none"),
    ENUM("distill.teacher_dtype", distill.teacher_dtype, teacher_dtype_choices, "f32",
         "how the frozen teacher's weights are kept: f32, bf16 (half the memory), or int8 (its projections "
         "quantized per output row at load, embedding and norms as stored)"),
    FLOAT("distill.kd_ratio", distill.kd_ratio, "0.5", "[0, 1]",
          "alpha: the KL term's weight; the cross-entropy gets 1 - alpha; 0 = the student alone, no teacher run"),
    FLOAT("distill.temperature", distill.temperature, "1", "(0, )",
          "T: both softmaxes of the KL divide the logits by T; the KL term is multiplied by T^2"),
    ENUM("distill.loss", distill.loss, kd_loss_choices, "forward_kl",
         "forward_kl = KL(teacher || student), reverse_kl = KL(student || teacher), symmetric_kl = their mean"),

    SECTION("student", "how a distilled student starts when model.path is empty"),
    LIST("student.init_from_teacher_layers", student.init_from_teacher_layers, "",
         "teacher layer indices the student keeps, e.g. [0, 2] (embedding, norms and lm_head copied too); empty "
         "= a new model of the model.* shape"),
    BOOL("student.init_from_teacher_embedding", student.init_from_teacher_embedding, "false",
         "a new student of the model.* shape (hidden_size equal to the teacher's) starts with the teacher's "
         "embedding, final norm and lm_head; its layers are new"),
};
static const size_t n_schema = sizeof schema / sizeof schema[0];

const ct_recipe_key *ct_recipe_schema(size_t *count) {
    if (count) *count = n_schema;
    return schema;
}

const ct_recipe_key *ct_recipe_find_key(const char *key) {
    for (size_t i = 0; i < n_schema; i++)
        if (schema[i].type != CT_RECIPE_SECTION && !strcmp(schema[i].key, key)) return &schema[i];
    return NULL;
}

static const char *type_name(const ct_recipe_key *k) {
    switch (k->type) {
    case CT_RECIPE_INT: return "int";
    case CT_RECIPE_FLOAT: return "float";
    case CT_RECIPE_BOOL: return "bool";
    case CT_RECIPE_STRING: return "string";
    case CT_RECIPE_ENUM: return "enum";
    case CT_RECIPE_LIST: return "list";
    default: return "section";
    }
}

/* ---- fields ---- */

static void *field(ct_recipe *r, const ct_recipe_key *k) { return (char *)r + k->offset; }
/* Keys whose value is an owned char * (strings and lists). */
static bool is_text(const ct_recipe_key *k) { return k->type == CT_RECIPE_STRING || k->type == CT_RECIPE_LIST; }
static const void *cfield(const ct_recipe *r, const ct_recipe_key *k) { return (const char *)r + k->offset; }

/* ---- suggestions: nearest keys by edit distance ---- */

static char lower(char c) { return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c; }

/* Optimal string alignment distance (insert, delete, substitute, swap two neighbours), blind to
 * ASCII case so that `CUDA` finds `cuda`. */
static int edit_distance(const char *a, const char *b) {
    size_t n = strlen(a), m = strlen(b);
    if (n > 64 || m > 64) return 1000;
    int d[65][65];
    for (size_t i = 0; i <= n; i++) d[i][0] = (int)i;
    for (size_t j = 0; j <= m; j++) d[0][j] = (int)j;
    for (size_t i = 1; i <= n; i++)
        for (size_t j = 1; j <= m; j++) {
            int cost = lower(a[i - 1]) != lower(b[j - 1]);
            int best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best) best = d[i][j - 1] + 1;
            if (d[i - 1][j - 1] + cost < best) best = d[i - 1][j - 1] + cost;
            if (i > 1 && j > 1 && lower(a[i - 1]) == lower(b[j - 2]) && lower(a[i - 2]) == lower(b[j - 1]) &&
                d[i - 2][j - 2] + 1 < best)
                best = d[i - 2][j - 2] + 1;
            d[i][j] = best;
        }
    return d[n][m];
}

static const char *leaf(const char *key) {
    const char *dot = strrchr(key, '.');
    return dot ? dot + 1 : key;
}

/* How far `wanted` is from `candidate`: the whole dotted names, or the last parts plus one when
 * no section was typed and two for another section (so `lr` finds `optimizer.lr` and
 * `training.max_steps` finds `train.max_steps`, but `model.pathh` does not find `tokenizer.path`);
 * a name cut short is one edit from the keys it begins. */
static int key_distance(const char *wanted, const char *candidate) {
    size_t typed = strlen(wanted);
    if (typed >= 3 && !strncmp(candidate, wanted, typed)) return 1; /* cut short: `eval.batch` */
    int whole = edit_distance(wanted, candidate);
    int last = edit_distance(leaf(wanted), leaf(candidate)) + (leaf(wanted) == wanted ? 1 : 2);
    return whole < last ? whole : last;
}

/* Appends "; did you mean 'a', 'b' or 'c'?" for up to three names within a distance that
 * grows with the length of what was typed, or nothing when none is near. */
static void append_suggestions(char *out, size_t size, const char *wanted, const char *const *names, size_t n) {
    size_t typed = strlen(leaf(wanted));
    int limit = typed <= 3 ? 1 : typed <= 6 ? 2 : 3;
    const char *best[3];
    int best_d[3], found = 0;
    for (size_t i = 0; i < n; i++) {
        int d = key_distance(wanted, names[i]);
        if (d > limit) continue;
        int at = found < 3 ? found : 3; /* insertion sort; ties keep table order */
        while (at > 0 && best_d[at - 1] > d) at--;
        if (at >= 3) continue;
        for (int t = (found < 3 ? found : 2); t > at; t--) best[t] = best[t - 1], best_d[t] = best_d[t - 1];
        best[at] = names[i], best_d[at] = d;
        if (found < 3) found++;
    }
    size_t used = strlen(out);
    for (int s = 0; s < found && used < size; s++)
        used += (size_t)snprintf(out + used, size - used, "%s'%s'",
                                 s == 0 ? "; did you mean " : s == found - 1 ? " or " : ", ", best[s]);
    if (found && used < size) snprintf(out + used, size - used, "?");
}

static int fail_unknown_key(const char *key) {
    const char *names[sizeof schema / sizeof schema[0]];
    size_t n = 0;
    for (size_t i = 0; i < n_schema; i++)
        if (schema[i].type != CT_RECIPE_SECTION) names[n++] = schema[i].key;
    char message[512];
    snprintf(message, sizeof message, "unknown key '%.80s'", key);
    append_suggestions(message, sizeof message, key, names, n);
    if (!strstr(message, "did you mean")) snprintf(message + strlen(message), sizeof message - strlen(message),
                                                   " ('ctune train --help' lists the keys)");
    return ct_fail("%s", message);
}

/* ---- typed conversion ---- */

/* A decimal number as YAML and C write it: digits, optional fraction, optional exponent.
 * Hex, underscores, inf and nan are not numbers here. */
static bool is_decimal_number(const char *s) {
    if (*s == '+' || *s == '-') s++;
    size_t digits = strspn(s, "0123456789");
    s += digits;
    if (*s == '.') {
        size_t fraction = strspn(s + 1, "0123456789");
        digits += fraction;
        s += 1 + fraction;
    }
    if (!digits) return false;
    if (*s == 'e' || *s == 'E') {
        s++;
        if (*s == '+' || *s == '-') s++;
        size_t exponent = strspn(s, "0123456789");
        if (!exponent) return false;
        s += exponent;
    }
    return *s == '\0';
}

/* Parses "[lo, hi)" style ranges; an empty end is unbounded. */
typedef struct {
    bool has_lo, has_hi, lo_open, hi_open;
    double lo, hi;
} value_range;

static int parse_range(const char *text, value_range *out) {
    memset(out, 0, sizeof *out);
    if (!text) return 0;
    char lo[32], hi[32], open, close;
    if (sscanf(text, " %c %31[^, ] , %31[^])] %c", &open, lo, hi, &close) == 4) {
        out->has_lo = out->has_hi = true;
    } else if (sscanf(text, " %c %31[^, ] , %c", &open, lo, &close) == 3) {
        out->has_lo = true;
    } else if (sscanf(text, " %c , %31[^])] %c", &open, hi, &close) == 3) {
        out->has_hi = true;
    } else {
        return ct_fail("range '%s' is not like \"[0, 1)\"", text);
    }
    if ((open != '[' && open != '(') || (close != ']' && close != ')'))
        return ct_fail("range '%s' must open with [ or ( and close with ] or )", text);
    if ((out->has_lo && !is_decimal_number(lo)) || (out->has_hi && !is_decimal_number(hi)))
        return ct_fail("range '%s' has an end that is not a number", text);
    out->lo_open = open == '(';
    out->hi_open = close == ')';
    if (out->has_lo) out->lo = strtod(lo, NULL);
    if (out->has_hi) out->hi = strtod(hi, NULL);
    return 0;
}

static int check_range(const ct_recipe_key *k, double v, const char *text) {
    value_range range;
    CT_TRY(parse_range(k->range, &range));
    bool below = range.has_lo && (range.lo_open ? v <= range.lo : v < range.lo);
    bool above = range.has_hi && (range.hi_open ? v >= range.hi : v > range.hi);
    if (below || above) return ct_fail("%s: %s is outside %s", k->key, text, k->range);
    return 0;
}

/* Values quoted in messages are cut short, so one bad line stays one line. */
#define SHOWN "'%.60s'"

/* Whether a decimal number's text denotes a whole number exactly (`1.5e3` does, `1.0000000000000001`
 * does not, though it rounds to 1.0 as a double): no non-zero digit after the decimal point once
 * the exponent has moved it. */
static bool is_whole_number(const char *text) {
    const char *p = text + (*text == '+' || *text == '-');
    char digits[128];
    size_t n = 0, point = 0;
    for (; (*p >= '0' && *p <= '9') || *p == '.'; p++) {
        if (*p == '.') point = n + 1; /* 1 + digits before the point */
        else if (n < sizeof digits) digits[n++] = *p;
        else if (*p != '0' || point) return false; /* more digits than any int has */
    }
    long position = point ? (long)point - 1 : (long)n;
    if (*p == 'e' || *p == 'E') {
        long exponent = strtol(p + 1, NULL, 10); /* clamped: only its sign and size matter */
        position += exponent > 1000 ? 1000 : exponent < -1000 ? -1000 : exponent;
    }
    for (size_t i = position < 0 ? 0 : (size_t)position; i < n; i++)
        if (digits[i] != '0') return false;
    return true;
}

static int convert_int(const ct_recipe_key *k, const char *text, int *out) {
    const char *digits = text + (*text == '+' || *text == '-');
    if (!is_decimal_number(text) || !is_whole_number(text))
        return ct_fail("%s: " SHOWN " is not an integer (write e.g. %s)", k->key, text, k->default_text);
    if (digits[0] == '0' && digits[1] >= '0' && digits[1] <= '9')
        return ct_fail("%s: " SHOWN " has a leading zero; write it without (YAML 1.1 reads it as octal)", k->key, text);
    double v = strtod(text, NULL);
    if (!isfinite(v) || v < INT_MIN || v > INT_MAX)
        return ct_fail("%s: " SHOWN " is too large for an integer key", k->key, text);
    if (strspn(digits, "0123456789") == strlen(digits)) { /* exact digits: no rounding through double */
        errno = 0;
        long long exact = strtoll(text, NULL, 10);
        if (errno || exact < INT_MIN || exact > INT_MAX)
            return ct_fail("%s: " SHOWN " is too large for an integer key", k->key, text);
        v = (double)exact;
    }
    CT_TRY(check_range(k, v, text));
    *out = (int)v;
    return 0;
}

static int convert_float(const ct_recipe_key *k, const char *text, double *out) {
    if (!is_decimal_number(text))
        return ct_fail("%s: " SHOWN " is not a number (write e.g. %s)", k->key, text, k->default_text);
    double v = strtod(text, NULL);
    if (!isfinite(v)) return ct_fail("%s: " SHOWN " is too large to be a finite number", k->key, text);
    CT_TRY(check_range(k, v, text));
    *out = v;
    return 0;
}

static int convert_bool(const ct_recipe_key *k, const char *text, bool *out) {
    if (!strcmp(text, "true")) return *out = true, 0;
    if (!strcmp(text, "false")) return *out = false, 0;
    return ct_fail("%s: " SHOWN " is not a boolean; write true or false (yes, no, on, off, 1 and 0 are "
                   "not accepted)", k->key, text);
}

static int convert_enum(const ct_recipe_key *k, const char *text, int *out) {
    size_t n = 0;
    for (; k->choices[n]; n++)
        if (!strcmp(text, k->choices[n])) return *out = (int)n, 0;
    char message[512], *end = message;
    end += snprintf(message, sizeof message, "%s: " SHOWN " is not one of ", k->key, text);
    for (size_t i = 0; i < n && end < message + sizeof message - 40; i++)
        end += snprintf(end, (size_t)(message + sizeof message - end), "%s%s", i ? ", " : "", k->choices[i]);
    append_suggestions(message, sizeof message, text, k->choices, n);
    return ct_fail("%s", message);
}

/* Checks UTF-8 well-formedness, so every string the recipe holds can be written back as YAML. */
static bool is_utf8(const unsigned char *s) {
    while (*s) {
        int extra = *s < 0x80 ? 0 : (*s & 0xE0) == 0xC0 ? 1 : (*s & 0xF0) == 0xE0 ? 2 : (*s & 0xF8) == 0xF0 ? 3 : -1;
        if (extra < 0 || (extra == 1 && *s < 0xC2)) return false;
        uint32_t cp = *s & (0x7F >> extra);
        for (int i = 1; i <= extra; i++) {
            if ((s[i] & 0xC0) != 0x80) return false;
            cp = (cp << 6) | (s[i] & 0x3F);
        }
        if ((extra == 2 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) || (extra == 3 && (cp < 0x10000 || cp > 0x10FFFF)))
            return false;
        s += extra + 1;
    }
    return true;
}

/* "a, b" -> "a,b": items trimmed, none empty, so the text is the list's one spelling (the YAML
 * dump writes it back as a sequence that loads to the same text). */
static int convert_list(const ct_recipe_key *k, const char *text, char **slot) {
    if (!is_utf8((const unsigned char *)text)) return ct_fail("%s: the value is not valid UTF-8", k->key);
    char *out = malloc(strlen(text) + 1);
    if (!out) return ct_fail("%s: out of memory", k->key);
    size_t n = 0;
    for (const char *p = text; *text;) {
        const char *end = strchr(p, ',');
        if (!end) end = p + strlen(p);
        const char *a = p, *b = end;
        while (a < b && (*a == ' ' || *a == '\t')) a++;
        while (b > a && (b[-1] == ' ' || b[-1] == '\t')) b--;
        if (a == b) {
            free(out);
            return ct_fail("%s: an empty item in the list " SHOWN "; separate items by single commas", k->key, text);
        }
        if (n) out[n++] = ',';
        memcpy(out + n, a, (size_t)(b - a));
        n += (size_t)(b - a);
        if (!*end) break;
        p = end + 1;
    }
    out[n] = '\0';
    free(*slot);
    *slot = out;
    return 0;
}

static int set_value(ct_recipe *r, const ct_recipe_key *k, const char *text) {
    switch (k->type) {
    case CT_RECIPE_INT: return convert_int(k, text, field(r, k));
    case CT_RECIPE_FLOAT: return convert_float(k, text, field(r, k));
    case CT_RECIPE_BOOL: return convert_bool(k, text, field(r, k));
    case CT_RECIPE_ENUM: return convert_enum(k, text, field(r, k));
    case CT_RECIPE_STRING: {
        if (!is_utf8((const unsigned char *)text)) return ct_fail("%s: the value is not valid UTF-8", k->key);
        char *copy = ct_strdup(text);
        if (!copy) return -1;
        char **slot = field(r, k);
        free(*slot);
        *slot = copy;
        return 0;
    }
    case CT_RECIPE_LIST: return convert_list(k, text, field(r, k));
    default: return ct_fail("%s is a section, not a key", k->key);
    }
}

int ct_recipe_set(ct_recipe *r, const char *key, const char *value) {
    const ct_recipe_key *k = ct_recipe_find_key(key);
    if (!k) return fail_unknown_key(key);
    return set_value(r, k, value);
}

/* ---- life cycle ---- */

int ct_recipe_init(ct_recipe *r) {
    memset(r, 0, sizeof *r);
    for (size_t i = 0; i < n_schema; i++) {
        if (schema[i].type == CT_RECIPE_SECTION) continue;
        if (set_value(r, &schema[i], schema[i].default_text) < 0) {
            ct_recipe_free(r);
            return ct_fail_context("default of ");
        }
    }
    return 0;
}

void ct_recipe_free(ct_recipe *r) {
    for (size_t i = 0; i < n_schema; i++) {
        if (!is_text(&schema[i])) continue;
        char **slot = field(r, &schema[i]);
        free(*slot);
        *slot = NULL;
    }
}

int ct_recipe_copy(ct_recipe *dst, const ct_recipe *src) {
    *dst = *src;
    for (size_t i = 0; i < n_schema; i++) {
        if (is_text(&schema[i])) *(char **)field(dst, &schema[i]) = NULL;
    }
    for (size_t i = 0; i < n_schema; i++) {
        if (!is_text(&schema[i])) continue;
        char *copy = ct_strdup(*(char *const *)cfield(src, &schema[i]));
        if (!copy) {
            ct_recipe_free(dst);
            return -1;
        }
        *(char **)field(dst, &schema[i]) = copy;
    }
    return 0;
}

/* ---- files ---- */

typedef struct {
    ct_recipe *recipe;
    const char *source;
    int first_line[sizeof schema / sizeof schema[0]]; /* where each key was set in this file */
} load_context;

/* The first key under `prefix` ("model" -> "model.path"), or NULL when `prefix` is no section. */
static const char *first_key_under(const char *prefix) {
    size_t len = strlen(prefix);
    for (size_t i = 0; i < n_schema; i++)
        if (!strncmp(schema[i].key, prefix, len) && schema[i].key[len] == '.') return schema[i].key;
    return NULL;
}

static const char *kind_name(ct_yaml_kind kind) {
    return kind == CT_YAML_SEQUENCE ? "a list" : kind == CT_YAML_MAPPING ? "a mapping" : "a value";
}

static int visit_entry(void *ctx_, const char *key, ct_yaml_kind kind, const char *value, size_t len, int line) {
    load_context *ctx = ctx_;
    const ct_recipe_key *k = ct_recipe_find_key(key);
    if (!k) {
        const char *example = first_key_under(key);
        /* Under an unknown section, each key is reported whole, where suggestions can find it. */
        if (kind == CT_YAML_MAPPING && len > 0) return 1;
        if (example) {
            if (kind == CT_YAML_MAPPING) return 0;
            if (kind == CT_YAML_NULL) return 0; /* "model:" with nothing under it */
            ct_fail("'%s' is a section: put its keys under it (e.g. %s), not %s", key, example, kind_name(kind));
        } else {
            fail_unknown_key(key);
        }
        return ct_fail_context("%s:%d: ", ctx->source, line);
    }
    if (kind == CT_YAML_SEQUENCE && k->type == CT_RECIPE_LIST && !value) {
        ct_fail("%s: list items must be single values without commas", key);
        return ct_fail_context("%s:%d: ", ctx->source, line);
    }
    if ((kind == CT_YAML_SEQUENCE && k->type != CT_RECIPE_LIST) || kind == CT_YAML_MAPPING) {
        ct_fail("%s expects a single %s value, found %s", key, type_name(k), kind_name(kind));
        return ct_fail_context("%s:%d: ", ctx->source, line);
    }
    size_t index = (size_t)(k - schema);
    if (ctx->first_line[index]) {
        ct_fail("%s is set twice in this file (first at line %d)", key, ctx->first_line[index]);
        return ct_fail_context("%s:%d: ", ctx->source, line);
    }
    ctx->first_line[index] = line;
    if (memchr(value, '\0', len)) {
        ct_fail("%s: the value contains a NUL character", key);
        return ct_fail_context("%s:%d: ", ctx->source, line);
    }
    /* An unquoted empty, ~ or null value is "no value": an empty string, an error elsewhere. */
    if (kind == CT_YAML_NULL && !is_text(k)) {
        ct_fail("%s has no value (write a %s, e.g. %s)", key, type_name(k), k->default_text);
        return ct_fail_context("%s:%d: ", ctx->source, line);
    }
    if (set_value(ctx->recipe, k, kind == CT_YAML_NULL ? "" : value) < 0)
        return ct_fail_context("%s:%d: ", ctx->source, line);
    return 0;
}

int ct_recipe_load_text(ct_recipe *r, const char *text, size_t len, const char *source) {
    ct_recipe work;
    CT_TRY(ct_recipe_copy(&work, r));
    load_context *ctx = ct_calloc(1, sizeof *ctx, "a recipe's load state");
    if (!ctx) {
        ct_recipe_free(&work);
        return -1;
    }
    ctx->recipe = &work;
    ctx->source = source;
    int rc = ct_yaml_visit(text, len, source, visit_entry, ctx);
    free(ctx);
    if (rc < 0) {
        ct_recipe_free(&work);
        return -1;
    }
    ct_recipe_free(r);
    *r = work;
    return 0;
}

/* Recipes are small; a larger file is almost certainly the wrong file. */
#define MAX_RECIPE_BYTES (1 << 20)

int ct_recipe_load_file(ct_recipe *r, const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return ct_fail("cannot open recipe '%s': %s", path, strerror(errno));
    char *text = ct_malloc(MAX_RECIPE_BYTES + 1, "a recipe file");
    if (!text) {
        fclose(f);
        return -1;
    }
    size_t len = fread(text, 1, MAX_RECIPE_BYTES + 1, f);
    int read_error = ferror(f) ? errno : 0;
    fclose(f);
    int rc;
    if (read_error) rc = ct_fail("cannot read recipe '%s': %s", path, strerror(read_error));
    else if (len > MAX_RECIPE_BYTES) rc = ct_fail("%s: larger than 1 MiB; is it a recipe?", path);
    else rc = ct_recipe_load_text(r, text, len, path);
    free(text);
    return rc;
}

int ct_recipe_override(ct_recipe *r, const char *assignment) {
    const char *eq = strchr(assignment, '=');
    if (!eq || eq == assignment)
        return ct_fail("command line: '%.80s' is not key=value (e.g. optimizer.lr=1e-4)", assignment);
    char key[128];
    size_t key_len = (size_t)(eq - assignment);
    if (key_len >= sizeof key) return ct_fail("command line: the key of '%.80s...' is too long", assignment);
    memcpy(key, assignment, key_len);
    key[key_len] = '\0';
    const ct_recipe_key *k = ct_recipe_find_key(key);
    const char *example = k ? NULL : first_key_under(key);
    if (example) return ct_fail("command line: '%s' is a section; set one of its keys (e.g. %s=...)", key, example);
    if (!k) {
        fail_unknown_key(key);
        return ct_fail_context("command line: ");
    }
    if (set_value(r, k, eq + 1) < 0) return ct_fail_context("command line: ");
    return 0;
}

/* ---- computed keys and cross-key checks ---- */

static int set_string(char **slot, const char *value) {
    char *copy = ct_strdup(value);
    if (!copy) return -1;
    free(*slot);
    *slot = copy;
    return 0;
}

/* The file name without its folder and a .yaml or .yml ending. */
static void recipe_stem(const char *path, char *out, size_t size) {
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t len = strlen(base);
    if (len > 5 && !strcmp(base + len - 5, ".yaml")) len -= 5;
    else if (len > 4 && !strcmp(base + len - 4, ".yml")) len -= 4;
    snprintf(out, size, "%.*s", (int)len, base);
}

int ct_recipe_finalize(ct_recipe *r, const char *recipe_path) {
    char buf[4096];
    if (!r->name[0]) {
        recipe_stem(recipe_path ? recipe_path : "run", buf, sizeof buf);
        CT_TRY(set_string(&r->name, buf[0] ? buf : "run"));
    }
    if (!r->output_dir[0]) {
        if (strchr(r->name, '/') || !strcmp(r->name, ".") || !strcmp(r->name, ".."))
            return ct_fail("name '%.80s' cannot name a folder under runs/: leave out '/' or set output_dir", r->name);
        snprintf(buf, sizeof buf, "runs/%s", r->name);
        CT_TRY(set_string(&r->output_dir, buf));
    }
    if (!r->checkpoint.dir[0]) {
        if (snprintf(buf, sizeof buf, "%s/checkpoints", r->output_dir) >= (int)sizeof buf)
            return ct_fail("output_dir is longer than %zu bytes", sizeof buf - 20);
        CT_TRY(set_string(&r->checkpoint.dir, buf));
    }
    return 0;
}

static int validate_distill(const ct_recipe *r) {
    if (!r->distill.teacher[0]) {
        if (r->student.init_from_teacher_layers[0] || r->student.init_from_teacher_embedding)
            return ct_fail("student.init_from_teacher_%s needs a teacher: set distill.teacher",
                           r->student.init_from_teacher_layers[0] ? "layers" : "embedding");
        if (r->distill.teacher_adapter[0])
            return ct_fail("distill.teacher_adapter is set but distill.teacher is empty: set distill.teacher");
        return 0;
    }
    if (r->student.init_from_teacher_layers[0] && r->model.path[0])
        return ct_fail("student.init_from_teacher_layers and model.path both choose the student's start; empty one");
    if (r->student.init_from_teacher_embedding && (r->model.path[0] || r->student.init_from_teacher_layers[0]))
        return ct_fail("student.init_from_teacher_embedding is for a new student of the model.* shape: empty "
                       "model.path and student.init_from_teacher_layers");
    return 0;
}

/* checkpoint.select=best_*: something to choose among, and the metric it names. */
static int validate_select(const ct_recipe *r) {
    const ct_recipe_select s = r->checkpoint.select;
    if (s == CT_RECIPE_SELECT_LAST) return 0;
    const char *name = s == CT_RECIPE_SELECT_BEST_VAL_ACCURACY ? "best_val_accuracy" : "best_val_loss";
    if (!r->data.val[0])
        return ct_fail("checkpoint.select=%s chooses among evaluations of data.val, which is empty: set data.val or "
                       "checkpoint.select=last", name);
    if (r->train.eval_every <= 0)
        return ct_fail("checkpoint.select=%s needs evaluations to choose from, but train.eval_every is 0 (the last "
                       "step only): set train.eval_every or checkpoint.select=last", name);
    if (s == CT_RECIPE_SELECT_BEST_VAL_ACCURACY && r->data.format != CT_RECIPE_DATA_INTENT &&
        r->data.format != CT_RECIPE_DATA_DIALOG_INTENT)
        return ct_fail("checkpoint.select=best_val_accuracy needs labels to score, but data.format=%s has none: use "
                       "checkpoint.select=best_val_loss", format_choices[r->data.format]);
    if (r->prune.schedule == CT_RECIPE_PRUNE_GRADUAL && r->prune.method != CT_RECIPE_PRUNE_NONE)
        return ct_fail("checkpoint.select=%s would keep a model of an earlier step, less sparse than a gradual "
                       "prune.schedule's prune.amount: use checkpoint.select=last or prune.schedule=one_shot", name);
    return 0;
}

int ct_recipe_validate(const ct_recipe *r) {
    const ct_recipe_model *m = &r->model;
    if (!m->path[0]) {
        if (m->num_heads % m->num_kv_heads)
            return ct_fail("model.num_heads (%d) must be a multiple of model.num_kv_heads (%d)", m->num_heads,
                           m->num_kv_heads);
        if (!m->head_dim && m->hidden_size % m->num_heads)
            return ct_fail("model.hidden_size (%d) must be a multiple of model.num_heads (%d), or set model.head_dim",
                           m->hidden_size, m->num_heads);
        if ((m->head_dim ? m->head_dim : m->hidden_size / m->num_heads) % 2)
            return ct_fail("the head width (model.head_dim, or hidden_size / num_heads) must be even for RoPE");
        if (!r->tokenizer.path[0] && !r->tokenizer.train)
            return ct_fail("a new model (model.path empty) needs a tokenizer: set tokenizer.path or tokenizer.train: true");
    }
    if (r->tokenizer.train && r->tokenizer.path[0])
        return ct_fail("tokenizer.train is true and tokenizer.path is set: use one of them");
    if (r->tokenizer.train && !r->data.train[0])
        return ct_fail("tokenizer.train needs data.train to learn from");
    if (!r->train.max_steps && !r->train.epochs)
        return ct_fail("train.max_steps and train.epochs are both 0: set one of them");
    CT_TRY(validate_distill(r));
    CT_TRY(validate_select(r));
    /* An intent example's only target is its answer, at the very end: cutting the end of a long
     * one leaves a sequence that trains nothing. */
    if (r->data.truncation == CT_RECIPE_TRUNCATE_RIGHT &&
        (r->data.format == CT_RECIPE_DATA_INTENT || r->data.format == CT_RECIPE_DATA_DIALOG_INTENT))
        return ct_fail("data.truncation=right would cut the answer, the only target, off a long %s example; use "
                       "left (keeps the answer) or drop",
                       r->data.format == CT_RECIPE_DATA_INTENT ? "intent" : "dialog_intent");
    if (!m->path[0] && r->data.max_seq_len > m->max_seq_len)
        return ct_fail("data.max_seq_len (%d) exceeds model.max_seq_len (%d)", r->data.max_seq_len, m->max_seq_len);
    /* A loaded model's own max_seq_len is not known here, so only a known length is checked. */
    int seq = r->data.max_seq_len ? r->data.max_seq_len : m->path[0] ? 0 : m->max_seq_len;
    if (r->data.batch_tokens < seq)
        return ct_fail("data.batch_tokens (%d) is smaller than one sequence of data.max_seq_len (%d) tokens",
                       r->data.batch_tokens, seq);
    return 0;
}

int ct_recipe_resolve(ct_recipe *r, const char *path, int n_overrides, char *const *overrides) {
    CT_TRY(ct_recipe_init(r));
    int rc = path ? ct_recipe_load_file(r, path) : 0;
    for (int i = 0; i < n_overrides && rc == 0; i++) rc = ct_recipe_override(r, overrides[i]);
    if (rc == 0) rc = ct_recipe_finalize(r, path);
    if (rc == 0 && ct_recipe_validate(r) < 0) rc = ct_fail_context("%s: ", path ? path : "recipe");
    if (rc < 0) ct_recipe_free(r);
    return rc;
}

/* ---- output ---- */

const char *ct_recipe_first_difference(const ct_recipe *a, const ct_recipe *b) {
    for (size_t i = 0; i < n_schema; i++) {
        const ct_recipe_key *k = &schema[i];
        const void *pa = cfield(a, k), *pb = cfield(b, k);
        bool same = true;
        switch (k->type) {
        case CT_RECIPE_INT: case CT_RECIPE_ENUM: same = *(const int *)pa == *(const int *)pb; break;
        case CT_RECIPE_FLOAT: same = *(const double *)pa == *(const double *)pb; break;
        case CT_RECIPE_BOOL: same = *(const bool *)pa == *(const bool *)pb; break;
        case CT_RECIPE_STRING: case CT_RECIPE_LIST: same = !strcmp(*(char *const *)pa, *(char *const *)pb); break;
        default: break;
        }
        if (!same) return k->key;
    }
    return NULL;
}

/* Help lines wrap at this width, continuing under the meaning column. */
#define HELP_WIDTH 112
#define HELP_COLUMN 55

static void print_wrapped(FILE *out, const char *text, int column) {
    int width = HELP_WIDTH - HELP_COLUMN;
    const char *p = text;
    while (*p) {
        /* Count characters, not bytes, so Chinese help would wrap at the same width. */
        const char *end = p, *cut = NULL;
        for (int chars = 0; *end && chars < width; chars++) {
            end++;
            while ((*end & 0xC0) == 0x80) end++;
            if (*end == ' ' || !*end) cut = end;
        }
        if (!*end || !cut) cut = end;
        if (p != text) fprintf(out, "\n%*s", column, "");
        fprintf(out, "%.*s", (int)(cut - p), p);
        p = cut;
        while (*p == ' ') p++;
    }
    fputc('\n', out);
}

static void print_key_line(FILE *out, const ct_recipe_key *k) {
    char type[32], help[512];
    snprintf(type, sizeof type, "%s%s%s", type_name(k), k->range ? " " : "", k->range ? k->range : "");
    size_t used = (size_t)snprintf(help, sizeof help, "%s", k->help);
    for (size_t i = 0; k->type == CT_RECIPE_ENUM && k->choices[i] && used < sizeof help; i++)
        used += (size_t)snprintf(help + used, sizeof help - used, "%s%s", i ? ", " : "; one of ", k->choices[i]);
    const char *def = k->type == CT_RECIPE_LIST && !k->default_text[0] ? "[]"
                      : k->type == CT_RECIPE_STRING && !k->default_text[0] ? "\"\"" : k->default_text;
    fprintf(out, "  %-28s %-14s %-8s ", k->key, type, def);
    print_wrapped(out, help, HELP_COLUMN);
}

void ct_recipe_print_help(FILE *out) {
    fprintf(out, "Recipe keys: set them in a recipe file (nested as section: key: value) or after it as\n"
                 "key=value; later settings win. Types: int (1000, 1e3), float (3e-4), bool (true or false\n"
                 "only), string, enum (one of the names listed). Ranges: [ ] include the end, ( ) exclude it.\n\n");
    fprintf(out, "  %-28s %-14s %-8s %s\n", "key", "type", "default", "meaning");
    for (size_t i = 0; i < n_schema; i++) {
        if (schema[i].type == CT_RECIPE_SECTION) fprintf(out, "\n%s: %s\n", schema[i].key, schema[i].help);
        else print_key_line(out, &schema[i]);
    }
}

static int compare_names(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* *_pipeline.yaml files beside the recipes are pipeline files for `ctune run`, not recipes. */
static bool is_recipe_name(const char *name) {
    size_t len = strlen(name);
    if (len > 14 && !strcmp(name + len - 14, "_pipeline.yaml")) return false;
    return name[0] != '.' && ((len > 5 && !strcmp(name + len - 5, ".yaml")) || (len > 4 && !strcmp(name + len - 4, ".yml")));
}

int ct_recipe_print_list(FILE *out, const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return ct_fail("cannot list recipes in '%s': %s", dir, strerror(errno));
    char *names[256];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < 256) {
        if (!is_recipe_name(e->d_name)) continue;
        names[n] = ct_strdup(e->d_name);
        if (names[n]) n++;
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof names[0], compare_names);
    for (int i = 0; i < n; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        ct_recipe r;
        if (ct_recipe_init(&r) == 0 && ct_recipe_load_file(&r, path) == 0) {
            fprintf(out, "  %-40s %s\n", path, r.description);
            ct_recipe_free(&r);
        } else {
            fprintf(out, "  %-40s (does not load: %s)\n", path, ct_last_error());
        }
        free(names[i]);
    }
    return n;
}

/* ---- the table's own check ---- */

static int check_row(const ct_recipe_key *k, const char *section) {
    if (!k->key || !k->key[0] || !k->help || !k->help[0]) return ct_fail("a schema row lacks its key or help");
    if (k->type == CT_RECIPE_SECTION) return strchr(k->key, '.') ? ct_fail("section '%s' has a dot", k->key) : 0;
    size_t slen = section ? strlen(section) : 0;
    bool placed = section ? !strncmp(k->key, section, slen) && k->key[slen] == '.' && !strchr(k->key + slen + 1, '.')
                          : !strchr(k->key, '.');
    if (!placed) return ct_fail("key '%s' is not under its section row '%s'", k->key, section ? section : "(top)");
    for (const char *c = k->key; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_' || *c == '.'))
            return ct_fail("key '%s': use lowercase letters, digits and underscores", k->key);
    if (!k->default_text) return ct_fail("key '%s' has no default", k->key);
    if (k->type == CT_RECIPE_ENUM && (!k->choices || !k->choices[0])) return ct_fail("enum '%s' has no choices", k->key);
    if (k->range && k->type != CT_RECIPE_INT && k->type != CT_RECIPE_FLOAT)
        return ct_fail("key '%s': only numbers have ranges", k->key);
    value_range unused;
    if (parse_range(k->range, &unused) < 0) return ct_fail_context("key '%s': ", k->key);
    ct_recipe scratch;
    memset(&scratch, 0, sizeof scratch);
    int rc = set_value(&scratch, k, k->default_text);
    ct_recipe_free(&scratch);
    return rc < 0 ? ct_fail_context("default of '%s': ", k->key) : 0;
}

int ct_recipe_schema_check(void) {
    const char *section = NULL;
    for (size_t i = 0; i < n_schema; i++) {
        CT_TRY(check_row(&schema[i], section));
        if (schema[i].type == CT_RECIPE_SECTION) section = schema[i].key;
        for (size_t j = 0; j < i; j++)
            if (!strcmp(schema[i].key, schema[j].key)) return ct_fail("schema key '%s' appears twice", schema[i].key);
    }
    return 0;
}

int64_t ct_recipe_seq_len(const ct_recipe *r) { return r->data.max_seq_len ? r->data.max_seq_len : r->model.max_seq_len; }
