/* Where the sparsity went (models/prune.h): exact zeros of the weights, counted per tensor, per
 * layer and over all of them. Zeros are measured in the weights, not read from the masks, so the
 * same count applies to a saved file loaded back (what the recipe's "measured from the file"
 * means) and to a model whose masks are gone. */
#include <cjson/cJSON.h>
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/text_list.h"
#include "models/llama.h"
#include "models/prune.h"

static ct_sparsity_count count_zeros(const ct_tensor *t) {
    ct_sparsity_count c = {0, ct_numel(t)};
    for (int64_t i = 0; i < c.total; i++) c.zeros += ct_get(t, i) == 0;
    return c;
}

static bool chosen(const ct_llama *m, const ct_tensor *p, const char *patterns) {
    if (!patterns) return ct_prune_mask_of(m, p) != NULL;
    char item[512];
    for (const char *c = patterns; ct_list_next(&c, item, sizeof item) == 1;)
        if (fnmatch(item, p->name, 0) == 0) return true;
    return false;
}

static int layer_of(const char *name) {
    return !strncmp(name, "model.layers.", 13) ? atoi(name + 13) : -1;
}

static double ratio(ct_sparsity_count c) { return c.total ? (double)c.zeros / (double)c.total : 0; }

int ct_prune_report(const ct_llama *m, const char *patterns, FILE *out, void **json) {
    if (ct_llama_device(m) != CT_CPU) return ct_fail("prune report: move the model to the CPU first");
    const int layers = m->config.num_hidden_layers;
    ct_sparsity_count *per_layer = ct_calloc((size_t)layers + 1, sizeof *per_layer, "the sparsity report");
    if (!per_layer) return -1;
    cJSON *root = json ? cJSON_CreateObject() : NULL, *tensors = root ? cJSON_AddObjectToObject(root, "tensors") : NULL;
    ct_sparsity_count global = {0, 0}, all = {0, 0};
    if (out) fprintf(out, "sparsity per tensor:\n");
    for (int i = 0; i < m->n_params; i++) {
        const ct_tensor *p = m->params[i];
        ct_sparsity_count c = count_zeros(p);
        all.zeros += c.zeros, all.total += c.total;
        if (!chosen(m, p, patterns)) continue;
        global.zeros += c.zeros, global.total += c.total;
        int l = layer_of(p->name);
        if (l >= 0 && l < layers) per_layer[l].zeros += c.zeros, per_layer[l].total += c.total;
        if (out) fprintf(out, "  %-48s %6.2f%%  (%lld of %lld)\n", p->name, 100 * ratio(c), (long long)c.zeros,
                         (long long)c.total);
        if (tensors) cJSON_AddNumberToObject(tensors, p->name, ratio(c));
    }
    cJSON *by_layer = root ? cJSON_AddObjectToObject(root, "layers") : NULL;
    if (out) fprintf(out, "sparsity per layer:\n");
    for (int l = 0; l < layers; l++) {
        if (!per_layer[l].total) continue;
        if (out) fprintf(out, "  layer %-3d %6.2f%%\n", l, 100 * ratio(per_layer[l]));
        char key[16];
        snprintf(key, sizeof key, "%d", l);
        if (by_layer) cJSON_AddNumberToObject(by_layer, key, ratio(per_layer[l]));
    }
    if (out)
        fprintf(out, "sparsity global: %.4f of the pruned tensors (%lld of %lld weights), %.4f of all parameters\n",
                ratio(global), (long long)global.zeros, (long long)global.total, ratio(all));
    if (root) {
        cJSON_AddNumberToObject(root, "global", ratio(global));
        cJSON_AddNumberToObject(root, "zeros", (double)global.zeros);
        cJSON_AddNumberToObject(root, "total", (double)global.total);
        cJSON_AddNumberToObject(root, "all_params", ratio(all));
        *json = root;
    }
    free(per_layer);
    return 0;
}
