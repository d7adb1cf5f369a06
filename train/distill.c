/* Knowledge distillation in a run (train/distill.h). */
#include "train/distill.h"

#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/device.h"
#include "core/error.h"
#include "core/paths.h"
#include "core/text_list.h"
#include "checkpoints/safetensors.h"
#include "autograd/ops.h"
#include "autograd/tape.h"
#include "models/llama_lora.h"
#include "models/llama_peft.h"
#include "train/model_source.h"

struct ct_distill {
    ct_llama *teacher;
    ct_tokenizer *tokenizer;   /* the teacher's */
    bool owns_tokenizer;       /* not teacher->tokenizer */
    ct_kd_options options;
    int64_t vocab;             /* the shared tokenizer's size: logits columns past it are padding */
    const char *path;          /* distill.teacher, for messages (the recipe outlives this) */
};

static const ct_kd_divergence divergences[] = {CT_KD_FORWARD_KL, CT_KD_REVERSE_KL, CT_KD_SYMMETRIC_KL};
static const char *const divergence_names[] = {"forward_kl", "reverse_kl", "symmetric_kl"};

static bool always_frozen(const char *name, void *ctx) {
    (void)name, (void)ctx;
    return true;
}

static int open_teacher(ct_distill *d, const ct_recipe *r) {
    const char *path = r->distill.teacher;
    if (!ct_is_file(path) && !ct_is_dir(path))
        return ct_fail("distill.teacher=%s does not exist; if it is another run's output (runs/NAME), run that recipe "
                       "first, or point distill.teacher at a model folder, run or checkpoint", path);
    /* Every tensor of the teacher is frozen, so all of it loads in teacher_dtype (model.base_dtype's
     * loader: a bf16 or int8 weight never exists as an f32 copy). */
    static const ct_base_dtype dtypes[] = {CT_BASE_F32, CT_BASE_BF16, CT_BASE_INT8};
    ct_llama_load_options options = {.base_dtype = dtypes[r->distill.teacher_dtype], .frozen = always_frozen,
                                     .why = "distill.teacher"};
    ct_model_source source;
    if (ct_model_source_open_with(&source, path, &options) < 0) return ct_fail_context("distill.teacher: ");
    d->teacher = source.model;
    d->tokenizer = source.tokenizer;
    d->owns_tokenizer = source.tokenizer && source.tokenizer != source.model->tokenizer;
    free(source.tokenizer_dir);
    free(source.recipe_yaml);
    if (!d->tokenizer)
        return ct_fail("distill.teacher=%s has no tokenizer.json to compare with the student's; give the folder its "
                       "tokenizer", path);
    if (r->distill.teacher_adapter[0]) {
        if (ct_llama_apply_peft_dir(d->teacher, r->distill.teacher_adapter) < 0)
            return ct_fail_context("distill.teacher_adapter: ");
        /* f32: merged, one product per projection; a bf16 or int8 base keeps the adapter beside it */
        if (r->distill.teacher_dtype == CT_RECIPE_TEACHER_F32) CT_TRY(ct_llama_merge_lora(d->teacher));
    }
    for (int i = 0; i < d->teacher->n_params; i++) d->teacher->params[i]->requires_grad = false;
    return 0;
}

int ct_distill_open(ct_distill **out, const ct_recipe *r, FILE *log) {
    *out = NULL;
    if (!r->distill.teacher[0]) return 0;
    ct_distill *d = ct_calloc(1, sizeof *d, "distillation");
    if (!d) return -1;
    d->path = r->distill.teacher;
    double alpha = r->distill.kd_ratio;
    d->options = (ct_kd_options){.ce_weight = 1 - alpha, .kl_weight = alpha, .temperature = r->distill.temperature,
                                 .divergence = divergences[r->distill.loss]};
    if (open_teacher(d, r) < 0) {
        ct_distill_free(d);
        return -1;
    }
    if (log)
        fprintf(log, "distill: teacher %s (%lld parameters%s%s), kd_ratio %g, temperature %g, %s%s\n", d->path,
                (long long)ct_llama_num_params(d->teacher), r->distill.teacher_adapter[0] ? ", adapter " : "",
                r->distill.teacher_adapter, alpha, r->distill.temperature, divergence_names[r->distill.loss],
                alpha == 0 ? " (kd_ratio 0: cross-entropy only, the teacher is not run)" : "");
    *out = d;
    return 0;
}

void ct_distill_free(ct_distill *d) {
    if (!d) return;
    if (d->owns_tokenizer) ct_tokenizer_free(d->tokenizer);
    ct_llama_free(d->teacher);
    free(d);
}

int64_t ct_distill_teacher_params(const ct_distill *d) { return ct_llama_num_params(d->teacher); }

/* ---- a student from the teacher's layers ---- */

/* dst (f32) = src, f32 or bf16 (a teacher loaded with teacher_dtype bf16); an int8 weight is
 * refused: a student starts from the weights, not from their quantization. */
static int copy_widened(ct_tensor *dst, const ct_tensor *src) {
    if (src->dtype == CT_F32) {
        memcpy(dst->data, src->data, ct_nbytes(dst));
        return 0;
    }
    if (src->dtype == CT_BF16) return ct_st_convert(dst->data, CT_F32, src->data, CT_BF16, (size_t)ct_numel(dst));
    return -1;
}

/* The teacher parameter a student parameter copies: layer i of the student is layers[i]. */
static const ct_tensor *source_param(const ct_distill *d, const char *name, const int *layers, char *buf, size_t size) {
    int layer, used = 0;
    if (sscanf(name, "model.layers.%d.%n", &layer, &used) == 1 && used > 0) {
        snprintf(buf, size, "model.layers.%d.%s", layers[layer], name + used);
        name = buf;
    }
    return ct_llama_param(d->teacher, name);
}

static int parse_layers(const char *list, int n_teacher, int *layers, int *n) {
    char item[32];
    int got;
    *n = 0;
    for (const char *p = list; (got = ct_list_next(&p, item, sizeof item)) == 1;) {
        char *end;
        long v = strtol(item, &end, 10);
        if (*end || v < 0 || v >= n_teacher)
            return ct_fail("student.init_from_teacher_layers: '%s' is not a layer of the teacher (0 .. %d)", item,
                           n_teacher - 1);
        if (*n == n_teacher)
            return ct_fail("student.init_from_teacher_layers lists more layers than the teacher's %d", n_teacher);
        layers[(*n)++] = (int)v;
    }
    if (got < 0) return ct_fail_context("student.init_from_teacher_layers: ");
    return *n ? 0 : ct_fail("student.init_from_teacher_layers is empty");
}

ct_llama *ct_distill_student_from_layers(const ct_distill *d, const char *list) {
    int n_teacher = (int)d->teacher->config.num_hidden_layers, n = 0;
    int *layers = ct_calloc((size_t)n_teacher, sizeof *layers, "student layers");
    if (!layers || parse_layers(list, n_teacher, layers, &n) < 0) {
        free(layers);
        return NULL;
    }
    ct_llama_config cfg = d->teacher->config;
    cfg.num_hidden_layers = n;
    ct_llama *m = ct_llama_new(&cfg);
    for (int i = 0; m && i < m->n_params; i++) {
        char buf[256];
        ct_tensor *p = m->params[i];
        const ct_tensor *src = source_param(d, p->name, layers, buf, sizeof buf);
        if (!src || ct_numel(src) != ct_numel(p) || copy_widened(p, src) < 0) {
            ct_fail("student.init_from_teacher_layers: the teacher's %s is missing, of another shape or int8 (a student copies f32 or bf16 weights: set distill.teacher_dtype=f32)", p->name);
            ct_llama_free(m);
            m = NULL;
            break;
        }
    }
    free(layers);
    return m;
}

static int copy_param(const ct_distill *d, ct_llama *student, const char *name) {
    ct_tensor *dst = ct_llama_param(student, name);
    const ct_tensor *src = ct_llama_param(d->teacher, name);
    if (!dst || !src || !ct_same_shape(dst, src) || copy_widened(dst, src) < 0) {
        char a[64] = "none", b[64] = "none";
        if (dst) ct_shape_str(dst, a, sizeof a);
        if (src) ct_shape_str(src, b, sizeof b);
        return ct_fail("student.init_from_teacher_embedding: the student's %s is %s, the teacher's %s; give the "
                       "student the teacher's model.hidden_size (%lld)", name, a, b,
                       (long long)d->teacher->config.hidden_size);
    }
    return 0;
}

int ct_distill_copy_embedding(const ct_distill *d, ct_llama *student) {
    CT_TRY(copy_param(d, student, "model.embed_tokens.weight"));
    CT_TRY(copy_param(d, student, "model.norm.weight"));
    bool tied_s = student->config.tie_word_embeddings, tied_t = d->teacher->config.tie_word_embeddings;
    if (!tied_s && !tied_t) return copy_param(d, student, "lm_head.weight");
    if (!tied_s) /* an untied student of a tied teacher: its head starts as the shared matrix */
        memcpy(student->lm_head.weight->data, student->embed_tokens->data, ct_nbytes(student->embed_tokens));
    return 0;
}

/* ---- checks before the first step ---- */

/* The same tokens, id by id; the first differing ids named. */
static int compare_tokenizers(const ct_distill *d, const ct_tokenizer *student) {
    int32_t nt = ct_tokenizer_vocab_size(d->tokenizer), ns = ct_tokenizer_vocab_size(student);
    if (nt != ns)
        return ct_fail("distill.teacher=%s: its tokenizer has %d tokens, the student's %d; teacher and student must "
                       "share one tokenizer (set tokenizer.path to the teacher's)", d->path, (int)nt, (int)ns);
    char ids[160] = "";
    size_t len = 0;
    int differ = 0;
    for (int32_t id = 0; id < nt; id++) {
        const char *a = ct_tokenizer_token_text(d->tokenizer, id), *b = ct_tokenizer_token_text(student, id);
        if ((a && b && !strcmp(a, b)) || (!a && !b)) continue;
        if (differ++ < 5) len += (size_t)snprintf(ids + len, sizeof ids - len, "%s%d", len ? ", " : "", (int)id);
        if (len >= sizeof ids) len = sizeof ids - 1;
    }
    if (differ)
        return ct_fail("distill.teacher=%s: its tokenizer differs from the student's at %d of %d ids (%s%s); teacher "
                       "and student must share one tokenizer (set tokenizer.path to the teacher's)",
                       d->path, differ, (int)nt, ids, differ > 5 ? ", ..." : "");
    return 0;
}

int ct_distill_prepare(ct_distill *d, const ct_llama *student, const ct_tokenizer *tokenizer, int64_t seq_len,
                       ct_device device) {
    CT_TRY(compare_tokenizers(d, tokenizer));
    d->vocab = ct_tokenizer_vocab_size(tokenizer);
    if (d->teacher->config.vocab_size < d->vocab)
        return ct_fail("distill.teacher=%s: its lm_head has %lld rows, fewer than the tokenizer's %lld tokens", d->path,
                       (long long)d->teacher->config.vocab_size, (long long)d->vocab);
    if (student->lm_head.adapter || student->lm_head.weight->dtype != CT_F32)
        return ct_fail("distill: the student's lm_head must be a plain f32 weight (no adapter)");
    if (d->teacher->config.max_position_embeddings < seq_len)
        return ct_fail("distill.teacher=%s reads at most %lld positions, fewer than the data's %lld "
                       "(data.max_seq_len): lower data.max_seq_len", d->path,
                       (long long)d->teacher->config.max_position_embeddings, (long long)seq_len);
    if (device != CT_CPU && ct_llama_to_device(d->teacher, device) < 0)
        return ct_fail_context("distill.teacher on %s: ", ct_device_name(device));
    return 0;
}

/* ---- the loss of a micro-batch ---- */

/* The teacher's final hidden states at the target rows, computed in a nested no-grad scope so its
 * activations are gone before the student's backward: only [n, H_teacher] stays. */
static ct_tensor *teacher_hidden(ct_distill *d, const ct_batch *batch, const ct_llama_forward_args *student_args,
                                 ct_tensor *rows) {
    int64_t shape[2] = {rows->shape[0], d->teacher->config.hidden_size};
    ct_tensor *out = ct_empty_on(rows->device, CT_F32, 2, shape);
    if (!out || ct_scope_begin() < 0) return NULL;
    bool was = ct_set_grad_enabled(false);
    ct_llama_forward_args args = {.position_ids = student_args->position_ids, .segment_ids = batch->segments,
                                  .hidden_only = true};
    ct_tensor *h = ct_llama_gather_rows(ct_llama_forward(d->teacher, batch->ids, &args), rows);
    int rc = h ? ct_backend_for(out->device)->convert(h, out) : -1;
    ct_set_grad_enabled(was);
    ct_scope_end();
    if (rc < 0) ct_fail_context("distill.teacher forward: ");
    return rc < 0 ? NULL : out;
}

ct_tensor *ct_distill_loss(ct_distill *d, ct_llama *student, const ct_batch *host, const ct_batch *batch,
                           const ct_llama_forward_args *args) {
    ct_tensor *rows, *targets;
    if (ct_llama_target_rows(host->targets, d->vocab, ct_llama_device(student), &rows, &targets) < 0) return NULL;
    ct_tensor *th = NULL;
    if (d->options.kl_weight > 0 && !(th = teacher_hidden(d, batch, args, rows))) return NULL;
    ct_llama_forward_args student_args = *args;
    student_args.hidden_only = true;
    ct_tensor *sh = ct_llama_gather_rows(ct_llama_forward(student, batch->ids, &student_args), rows);
    return ct_kd_loss(sh, student->lm_head.weight, th, th ? d->teacher->lm_head.weight : NULL, targets, d->vocab,
                      &d->options);
}
