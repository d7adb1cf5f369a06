/* A structurally pruned MLP made smaller (models/prune.h): the channels ln_structured removed
 * (rows of gate_proj and up_proj, columns of down_proj) are cut out, so the model is dense again
 * with a smaller intermediate_size, faster and smaller in any runtime that reads the config. */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "models/llama.h"
#include "models/prune.h"

/* Channel j of layer l is kept when gate_proj's mask row j holds a 1. Each kept channel must be
 * whole in all three masks, each pruned one gone from all three: else cutting it changes the
 * function. */
static int kept_channels(const ct_llama *m, int l, int64_t *kept, int64_t *n_kept) {
    const ct_llama_layer *L = &m->layers[l];
    const int64_t I = m->config.intermediate_size, H = m->config.hidden_size;
    const ct_tensor *mg = ct_prune_mask_of(m, L->gate_proj.weight), *mu = ct_prune_mask_of(m, L->up_proj.weight),
                    *md = ct_prune_mask_of(m, L->down_proj.weight);
    if (!mg || !mu || !md)
        return ct_fail("compact: layer %d's MLP is not channel-pruned (prune ln_structured with MLP channels first)", l);
    const float *g = mg->data, *u = mu->data, *d = md->data;
    *n_kept = 0;
    for (int64_t j = 0; j < I; j++) {
        int64_t ones = 0;
        for (int64_t h = 0; h < H; h++) ones += (g[j * H + h] != 0) + (u[j * H + h] != 0) + (d[h * I + j] != 0);
        if (ones != 0 && ones != 3 * H)
            return ct_fail("compact: channel %lld of layer %d is only partly pruned; --compact needs whole MLP channels "
                           "(ln_structured with --mlp-channels)", (long long)j, l);
        if (ones) kept[(*n_kept)++] = j;
    }
    return 0;
}

static void copy_rows(const ct_tensor *from, ct_tensor *to, const int64_t *rows, int64_t n) {
    const int64_t cols = from->shape[1];
    for (int64_t r = 0; r < n; r++)
        memcpy((float *)to->data + r * cols, (const float *)from->data + rows[r] * cols, (size_t)cols * sizeof(float));
}

static void copy_columns(const ct_tensor *from, ct_tensor *to, const int64_t *cols, int64_t n) {
    const int64_t rows = from->shape[0], width = from->shape[1];
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < n; c++) ((float *)to->data)[r * n + c] = ((const float *)from->data)[r * width + cols[c]];
}

static int fill(const ct_llama *m, ct_llama *out, int64_t *kept) {
    for (int i = 0; i < out->n_params; i++) { /* everything outside the MLPs as it is */
        ct_tensor *to = out->params[i];
        if (strstr(to->name, ".mlp.")) continue;
        const ct_tensor *from = ct_llama_param(m, to->name);
        if (!from) return ct_fail("compact: %s is missing from the source model", to->name);
        CT_TRY(ct_copy(to, from));
    }
    for (int l = 0; l < m->config.num_hidden_layers; l++) {
        int64_t n;
        CT_TRY(kept_channels(m, l, kept, &n));
        if (n != out->config.intermediate_size)
            return ct_fail("compact: layer %d keeps %lld MLP channels but layer 0 keeps %lld; HF configs hold one "
                           "intermediate_size, so prune the same amount in every layer", l, (long long)n,
                           (long long)out->config.intermediate_size);
        const ct_llama_layer *from = &m->layers[l];
        ct_llama_layer *to = &out->layers[l];
        copy_rows(from->gate_proj.weight, to->gate_proj.weight, kept, n);
        copy_rows(from->up_proj.weight, to->up_proj.weight, kept, n);
        copy_columns(from->down_proj.weight, to->down_proj.weight, kept, n);
    }
    return 0;
}

ct_llama *ct_prune_compact_mlp(const ct_llama *m) {
    if (ct_llama_device(m) != CT_CPU || m->config.num_hidden_layers < 1) {
        ct_fail("compact: the model must be on the CPU with at least one layer");
        return NULL;
    }
    int64_t *kept = ct_calloc((size_t)m->config.intermediate_size, sizeof *kept, "the kept channels");
    if (!kept) return NULL;
    int64_t n0 = 0;
    ct_llama *out = NULL;
    if (kept_channels(m, 0, kept, &n0) == 0) {
        if (n0 == 0) ct_fail("compact: every MLP channel of layer 0 is pruned; prune a smaller amount");
        else {
            ct_llama_config cfg = m->config;
            cfg.intermediate_size = n0;
            out = ct_llama_new(&cfg);
        }
    }
    if (out && fill(m, out, kept) < 0) {
        ct_llama_free(out);
        out = NULL;
    }
    free(kept);
    return out;
}
