/* Pruning a LLaMA-family model (models/prune.h): choosing the tensors, computing every new mask
 * on host copies, then committing them all, so a failure leaves the model as it was. */
#include "models/prune.h"

#include <fnmatch.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/device.h"
#include "core/error.h"
#include "core/text_list.h"
#include "kernels/backend.h"
#include "models/llama.h"
#include "models/param_role.h"

static const char *const method_names[] = {"l1_unstructured", "global_unstructured", "ln_structured",
                                           "random_unstructured", "nm"};

const char *ct_prune_method_name(ct_prune_method method) { return method_names[method]; }

int ct_prune_method_parse(const char *name) {
    for (int i = 0; i < (int)(sizeof method_names / sizeof *method_names); i++)
        if (!strcmp(name, method_names[i])) return i;
    return -1;
}

int ct_prune_check_options(const ct_prune_options *o) {
    const ct_prune_amount *a = &o->amount;
    if (o->method != CT_PRUNE_NM && !a->is_count && !(a->fraction >= 0 && a->fraction <= 1))
        return ct_fail("prune amount %g is outside [0, 1]; give a fraction (0.3 prunes 30%%) or a count", a->fraction);
    if (o->method != CT_PRUNE_NM && a->is_count && a->count < 0)
        return ct_fail("prune count %lld is negative; give a count >= 0", (long long)a->count);
    if (o->method == CT_PRUNE_NM && (o->nm_m < 1 || o->nm_n < 0 || o->nm_n > o->nm_m))
        return ct_fail("prune N:M %d:%d: N must be at most M (2:4 keeps 2 of every 4)", o->nm_n, o->nm_m);
    if (o->method == CT_PRUNE_LN_STRUCTURED && o->dim != 0 && o->dim != 1)
        return ct_fail("prune dim %d: a projection weight has dims 0 (rows, outputs) and 1 (columns, inputs)", o->dim);
    if (o->mlp_channels && o->method != CT_PRUNE_LN_STRUCTURED)
        return ct_fail("prune: MLP channels are pruned by ln_structured, not %s", ct_prune_method_name(o->method));
    return 0;
}

/* ---- masks on the model ---- */

ct_tensor *ct_prune_mask_of(const ct_llama *m, const ct_tensor *param) {
    for (int i = 0; i < m->n_masks; i++)
        if (m->masked[i] == param) return m->masks[i];
    return NULL;
}

bool ct_prune_has_masks(const ct_llama *m) { return m->n_masks > 0; }

static void link(ct_linear *l, const ct_llama *m) {
    if (l->weight) l->mask = ct_prune_mask_of(m, l->weight);
}

void ct_prune_link_linears(ct_llama *m) {
    for (int i = 0; m->layers && i < m->config.num_hidden_layers; i++) {
        ct_llama_layer *L = &m->layers[i];
        ct_linear *all[] = {&L->q_proj, &L->k_proj, &L->v_proj, &L->o_proj, &L->gate_proj, &L->up_proj, &L->down_proj};
        for (size_t k = 0; k < sizeof all / sizeof *all; k++) link(all[k], m);
    }
    link(&m->lm_head, m);
}

void ct_prune_apply_mask(ct_tensor *x, const ct_tensor *mask) {
    const float *mk = mask->data;
    const int64_t n = ct_numel(x);
    if (x->dtype == CT_F64) {
        double *d = x->data;
        for (int64_t i = 0; i < n; i++) d[i] = mk[i] != 0 ? d[i] : 0;
    } else {
        float *d = x->data;
        for (int64_t i = 0; i < n; i++) d[i] = mk[i] != 0 ? d[i] : 0;
    }
}

/* The pruned weights to exactly zero, on whatever device the parameter lives. */
static int zero_pruned(ct_tensor *param, ct_tensor *mask) {
    if (mask->device != param->device || !ct_same_shape(mask, param) || mask->dtype != CT_F32)
        return ct_fail("prune: the mask of %s must be f32 of its shape on %s", param->name, ct_device_name(param->device));
    return ct_backend_for(param->device)->mask_multi(1, &param, (const ct_tensor *const *)&mask);
}

int ct_prune_set_mask(ct_llama *m, ct_tensor *param, ct_tensor *mask) {
    for (int i = 0; i < m->n_masks; i++)
        if (m->masked[i] == param) {
            ct_tensor_free(m->masks[i]);
            m->masks[i] = mask;
            ct_prune_link_linears(m);
            return zero_pruned(param, mask);
        }
    ct_tensor **masks = realloc(m->masks, (size_t)(m->n_masks + 1) * sizeof *masks);
    if (masks) m->masks = masks;
    ct_tensor **masked = masks ? realloc(m->masked, (size_t)(m->n_masks + 1) * sizeof *masked) : NULL;
    if (masked) m->masked = masked;
    if (!masks || !masked) {
        ct_tensor_free(mask);
        return ct_fail("out of memory for the pruning masks");
    }
    m->masks[m->n_masks] = mask;
    m->masked[m->n_masks++] = param;
    ct_prune_link_linears(m);
    return zero_pruned(param, mask);
}

void ct_prune_release_masks(ct_llama *m) {
    for (int i = 0; i < m->n_masks; i++) ct_tensor_free(m->masks[i]);
    free(m->masks);
    free(m->masked);
    m->masks = m->masked = NULL;
    m->n_masks = 0;
    ct_prune_link_linears(m);
}

/* ---- choosing the tensors ---- */

static bool is_default_target(const ct_tensor *p) {
    return p->ndim == 2 && !strncmp(p->name, "model.layers.", 13) && ct_param_role_of(p->name) == CT_ROLE_PROJECTION;
}

static bool matches(const char *patterns, const char *name) {
    char item[512];
    for (const char *c = patterns; ct_list_next(&c, item, sizeof item) == 1;)
        if (fnmatch(item, name, 0) == 0) return true;
    return false;
}

/* The chosen parameters, in model order, into list (m->n_params slots); *n gets their count. */
static int choose(const ct_llama *m, const ct_prune_options *o, ct_tensor **list, int *n) {
    *n = 0;
    const bool given = o->targets && o->targets[0];
    if (given) { /* every pattern must match something */
        char item[512];
        int got;
        for (const char *c = o->targets; (got = ct_list_next(&c, item, sizeof item)) == 1;) {
            bool found = false;
            for (int i = 0; i < m->n_params && !found; i++) found = fnmatch(item, m->params[i]->name, 0) == 0;
            if (!found)
                return ct_fail("prune targets: pattern '%s' matches no tensor of the model (patterns are fnmatch "
                               "globs over HF names, e.g. 'model.layers.*.mlp.*_proj.weight')", item);
        }
        if (got < 0) return ct_fail_context("prune targets: ");
    }
    for (int i = 0; i < m->n_params; i++) {
        ct_tensor *p = m->params[i];
        if (given ? !matches(o->targets, p->name) : !is_default_target(p)) continue;
        ct_param_role role = ct_param_role_of(p->name);
        if (role == CT_ROLE_ADAPTER)
            return ct_fail("prune: %s is a LoRA adapter; prune the base weights (the mask also applies to the "
                           "adapter's product)", p->name);
        if (role != CT_ROLE_PROJECTION && !o->allow_norm_embedding)
            return ct_fail("prune: %s is a%s %s; pruning it needs an explicit opt-in (--include-norms-embeddings, "
                           "or prune.include_norms_embeddings=true), or narrow the target patterns", p->name,
                           role == CT_ROLE_EMBEDDING ? "n" : "", ct_param_role_name(role));
        if (p->dtype != CT_F32 || p->device != CT_CPU)
            return ct_fail("prune: %s is %s on %s; prune f32 weights on the CPU", p->name, ct_dtype_name(p->dtype),
                           ct_device_name(p->device));
        list[(*n)++] = p;
    }
    if (*n == 0) return ct_fail("prune: no tensor to prune (the model has no layer projections)");
    return 0;
}

/* ---- computing the masks ---- */

/* ln_structured over MLP channels of one layer: channel j is [gate row j, up row j, down column
 * j] laid out as row j of an [I, 3H] matrix, so the channel ranking is ct_prune_ln_mask's. */
static int mlp_channels(int layer, float *const *mask, const ct_tensor *const *w, const ct_prune_options *o) {
    const int64_t I = w[0]->shape[0], H = w[0]->shape[1], width = 3 * H;
    float *cw = ct_calloc((size_t)(I * width), sizeof *cw, "MLP channels");
    float *cm = cw ? ct_calloc((size_t)(I * width), sizeof *cm, "MLP channel masks") : NULL;
    if (!cm) {
        free(cw);
        return -1;
    }
    const float *g = w[0]->data, *u = w[1]->data, *d = w[2]->data;
    for (int64_t j = 0; j < I; j++)
        for (int64_t h = 0; h < H; h++) {
            cw[j * width + h] = g[j * H + h], cm[j * width + h] = mask[0][j * H + h];
            cw[j * width + H + h] = u[j * H + h], cm[j * width + H + h] = mask[1][j * H + h];
            cw[j * width + 2 * H + h] = d[h * I + j], cm[j * width + 2 * H + h] = mask[2][h * I + j];
        }
    char what[64];
    snprintf(what, sizeof what, "layer %d MLP channels", layer);
    int rc = ct_prune_ln_mask(cw, cm, I, width, o->norm_order, 0, o->amount, what);
    for (int64_t j = 0; rc == 0 && j < I; j++)
        for (int64_t h = 0; h < H; h++) {
            mask[0][j * H + h] = cm[j * width + h];
            mask[1][j * H + h] = cm[j * width + H + h];
            mask[2][h * I + j] = cm[j * width + 2 * H + h];
        }
    free(cw);
    free(cm);
    return rc;
}

static int mlp_masks(const ct_llama *m, ct_tensor **list, float **masks, const ct_prune_options *o) {
    for (int l = 0; l < m->config.num_hidden_layers; l++) {
        const ct_llama_layer *L = &m->layers[l];
        const ct_tensor *w[3] = {L->gate_proj.weight, L->up_proj.weight, L->down_proj.weight};
        float *mk[3] = {masks[3 * l], masks[3 * l + 1], masks[3 * l + 2]};
        for (int k = 0; k < 3; k++) list[3 * l + k] = (ct_tensor *)w[k];
        for (int k = 0; k < 3; k++)
            if (w[k]->dtype != CT_F32)
                return ct_fail("prune: %s is %s; prune f32 weights", w[k]->name, ct_dtype_name(w[k]->dtype));
        CT_TRY(mlp_channels(l, mk, w, o));
    }
    return 0;
}

static int one_tensor(const ct_tensor *p, float *mask, const ct_prune_options *o, int index) {
    const float *w = p->data;
    const int64_t n = ct_numel(p), rows = p->ndim == 2 ? p->shape[0] : 1, cols = n / (rows ? rows : 1);
    switch (o->method) {
    case CT_PRUNE_L1_UNSTRUCTURED: return ct_prune_l1_mask(w, mask, n, o->amount, p->name);
    case CT_PRUNE_RANDOM_UNSTRUCTURED:
        return ct_prune_random_mask(mask, n, o->amount, o->seed * 0x9E3779B97F4A7C15ull + (uint64_t)index, p->name);
    case CT_PRUNE_NM: return ct_prune_nm_mask(w, mask, rows, cols, o->nm_n, o->nm_m, p->name);
    case CT_PRUNE_LN_STRUCTURED:
        if (p->ndim != 2)
            return ct_fail("prune %s: ln_structured needs a 2-D weight (it prunes rows or columns); this one is %d-D",
                           p->name, p->ndim);
        return ct_prune_ln_mask(w, mask, rows, cols, o->norm_order, o->dim, o->amount, p->name);
    case CT_PRUNE_GLOBAL_UNSTRUCTURED: break;
    }
    return ct_fail("prune: method %d is not one tensor's", (int)o->method);
}

/* The new masks of the chosen tensors, as host arrays starting from their current masks. */
static float **start_masks(const ct_llama *m, ct_tensor *const *list, int n) {
    float **masks = ct_calloc((size_t)n, sizeof *masks, "the new masks");
    for (int i = 0; masks && i < n; i++) {
        const int64_t size = ct_numel(list[i]);
        masks[i] = ct_calloc((size_t)size, sizeof **masks, "a pruning mask");
        if (!masks[i]) {
            for (int j = 0; j < i; j++) free(masks[j]);
            free(masks);
            return NULL;
        }
        const ct_tensor *old = ct_prune_mask_of(m, list[i]);
        for (int64_t k = 0; k < size; k++) masks[i][k] = old ? ((const float *)old->data)[k] : 1.0f;
    }
    return masks;
}

static void free_masks(float **masks, int n) {
    for (int i = 0; masks && i < n; i++) free(masks[i]);
    free(masks);
}

static int compute(const ct_llama *m, ct_tensor **list, int n, float **masks, const ct_prune_options *o) {
    if (o->mlp_channels) return mlp_masks(m, list, masks, o);
    if (o->method == CT_PRUNE_GLOBAL_UNSTRUCTURED) {
        const float **w = ct_calloc((size_t)n, sizeof *w, "the global ranking");
        int64_t *sizes = w ? ct_calloc((size_t)n, sizeof *sizes, "the global ranking") : NULL;
        int rc = sizes ? 0 : -1;
        for (int i = 0; rc == 0 && i < n; i++) w[i] = list[i]->data, sizes[i] = ct_numel(list[i]);
        if (rc == 0) rc = ct_prune_global_mask(w, masks, sizes, n, o->amount, "global_unstructured");
        free(w);
        free(sizes);
        return rc;
    }
    for (int i = 0; i < n; i++) CT_TRY(one_tensor(list[i], masks[i], o, i));
    return 0;
}

/* Every new mask becomes a persistent tensor first; only then does the model change. */
static int commit(ct_llama *m, ct_tensor *const *list, int n, float *const *masks) {
    ct_tensor **made = ct_calloc((size_t)n, sizeof *made, "the new masks");
    if (!made) return -1;
    for (int i = 0; i < n; i++) {
        char name[600];
        snprintf(name, sizeof name, "%s.mask", list[i]->name);
        made[i] = ct_tensor_new(CT_F32, list[i]->ndim, list[i]->shape, name);
        if (!made[i]) {
            for (int j = 0; j < i; j++) ct_tensor_free(made[j]);
            free(made);
            return -1;
        }
        memcpy(made[i]->data, masks[i], (size_t)ct_numel(list[i]) * sizeof(float));
    }
    int rc = 0;
    for (int i = 0; i < n; i++) /* after the first failure the rest are freed, not attached */
        if (rc == 0) rc = ct_prune_set_mask(m, list[i], made[i]);
        else ct_tensor_free(made[i]);
    free(made);
    return rc;
}

int ct_prune_model(ct_llama *m, const ct_prune_options *o) {
    CT_TRY(ct_prune_check_options(o));
    if (ct_llama_device(m) != CT_CPU) return ct_fail("prune: move the model to the CPU first");
    const int capacity = o->mlp_channels ? 3 * m->config.num_hidden_layers : m->n_params;
    ct_tensor **list = ct_calloc((size_t)(capacity > 0 ? capacity : 1), sizeof *list, "the pruned tensors");
    if (!list) return -1;
    int n = 0, rc = 0;
    if (o->mlp_channels) {
        n = capacity;
        for (int l = 0; l < m->config.num_hidden_layers; l++) {
            const ct_llama_layer *L = &m->layers[l];
            list[3 * l] = L->gate_proj.weight, list[3 * l + 1] = L->up_proj.weight, list[3 * l + 2] = L->down_proj.weight;
        }
    } else {
        rc = choose(m, o, list, &n);
    }
    float **masks = rc == 0 ? start_masks(m, list, n) : NULL;
    if (rc == 0 && !masks) rc = -1;
    if (rc == 0) rc = compute(m, list, n, masks, o);
    if (rc == 0) rc = commit(m, list, n, masks);
    free_masks(masks, n);
    free(list);
    return rc;
}

int ct_prune_masks_from_zeros(ct_llama *m, const char *patterns) {
    for (int i = 0; i < m->n_params; i++) {
        ct_tensor *p = m->params[i];
        if (!(patterns && patterns[0] ? matches(patterns, p->name) : is_default_target(p))) continue;
        if (p->dtype != CT_F32 || p->device != CT_CPU) continue;
        const float *w = p->data;
        int64_t n = ct_numel(p), zeros = 0;
        for (int64_t k = 0; k < n; k++) zeros += w[k] == 0;
        if (zeros == 0) continue;
        char name[600];
        snprintf(name, sizeof name, "%s.mask", p->name);
        ct_tensor *mask = ct_tensor_new(CT_F32, p->ndim, p->shape, name);
        if (!mask) return -1;
        float *mk = mask->data;
        for (int64_t k = 0; k < n; k++) mk[k] = w[k] != 0;
        CT_TRY(ct_prune_set_mask(m, p, mask));
    }
    return 0;
}
