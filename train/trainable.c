/* Trainable sets: glob patterns over HF names choose what trains (train/trainable.h). */
#include "train/trainable.h"

#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/text_list.h"

#define FNV_OFFSET 1469598103934665603ull
#define FNV_PRIME 1099511628211ull

static uint64_t fnv_bytes(uint64_t h, const void *bytes, size_t n) {
    const unsigned char *p = bytes;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * FNV_PRIME;
    return h;
}

static uint64_t fnv_int64(uint64_t h, int64_t v) {
    unsigned char le[8];
    for (int i = 0; i < 8; i++) le[i] = (unsigned char)((uint64_t)v >> (8 * i));
    return fnv_bytes(h, le, sizeof le);
}

uint64_t ct_tensors_hash(ct_tensor *const *tensors, int n) {
    uint64_t h = FNV_OFFSET;
    for (int i = 0; i < n; i++) {
        const ct_tensor *t = tensors[i];
        const char *name = t->name ? t->name : "";
        h = fnv_bytes(h, name, strlen(name) + 1);
        h = fnv_int64(h, t->dtype);
        h = fnv_int64(h, t->ndim);
        for (int d = 0; d < t->ndim; d++) h = fnv_int64(h, t->shape[d]);
        h = fnv_bytes(h, t->data, ct_nbytes(t));
        if (t->scale) h = fnv_bytes(h, t->scale->data, ct_nbytes(t->scale));
    }
    return h;
}

void ct_hash_format(uint64_t hash, char out[32]) { snprintf(out, 32, "fnv1a64:%016llx", (unsigned long long)hash); }

/* How far the pattern (its wildcards dropped) is from the nearest stretch of the name: edit
 * distance where the name's start and end are free, so '*.q_prj.weight' is 1 from every
 * '...q_proj.weight' and a typo in a full name is as far as the typo. */
static size_t edit_distance(const char *pattern, const char *name) {
    size_t n = strlen(name), row[512];
    if (n >= sizeof row / sizeof *row) n = sizeof row / sizeof *row - 1;
    for (size_t j = 0; j <= n; j++) row[j] = 0;
    size_t i = 0;
    for (const char *c = pattern; *c; c++) {
        if (*c == '*' || *c == '?') continue;
        i++;
        size_t diagonal = row[0];
        row[0] = i;
        for (size_t j = 1; j <= n; j++) {
            size_t up = row[j], cost = *c == name[j - 1] ? 0 : 1;
            size_t best = diagonal + cost;
            if (up + 1 < best) best = up + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            row[j] = best;
            diagonal = up;
        }
    }
    size_t best = row[0];
    for (size_t j = 1; j <= n; j++)
        if (row[j] < best) best = row[j];
    return best;
}

/* "'a', 'b', 'c'": the three names nearest to `pattern`. */
static void nearest_names(ct_tensor *const *params, int n, const char *pattern, char *out, size_t size) {
    int best[3] = {-1, -1, -1};
    size_t dist[3] = {(size_t)-1, (size_t)-1, (size_t)-1};
    for (int i = 0; i < n; i++) {
        size_t d = edit_distance(pattern, params[i]->name ? params[i]->name : "");
        for (int k = 0; k < 3; k++) {
            if (d >= dist[k]) continue;
            for (int m = 2; m > k; m--) {
                dist[m] = dist[m - 1];
                best[m] = best[m - 1];
            }
            dist[k] = d;
            best[k] = i;
            break;
        }
    }
    size_t used = 0;
    out[0] = '\0';
    for (int k = 0; k < 3 && best[k] >= 0 && used < size; k++)
        used += (size_t)snprintf(out + used, size - used, "%s'%s'", k ? ", " : "", params[best[k]]->name);
}

bool ct_trainable_matches(const char *patterns, const char *name) {
    char item[512];
    for (const char *p = patterns; ct_list_next(&p, item, sizeof item) == 1;)
        if (fnmatch(item, name, 0) == 0) return true;
    return false;
}

/* Every pattern of the list matches some parameter, else one line naming the nearest names. */
static int check_patterns(ct_tensor *const *params, int n, const char *patterns, const char *key) {
    char item[512], near[600];
    int got;
    for (const char *p = patterns; (got = ct_list_next(&p, item, sizeof item)) == 1;) {
        bool found = false;
        for (int i = 0; i < n && !found; i++) found = params[i]->name && fnmatch(item, params[i]->name, 0) == 0;
        if (!found) {
            nearest_names(params, n, item, near, sizeof near);
            return ct_fail("%s: pattern '%s' matches no parameter of the model; the nearest names are %s (patterns are "
                           "fnmatch globs over the full HF names, e.g. '*.q_proj.weight')", key, item, near);
        }
    }
    return got < 0 ? ct_fail_context("%s: ", key) : 0;
}

int ct_trainable_select(ct_trainable_set *set, ct_tensor *const *params, int n, const char *trainable,
                        const char *freeze) {
    memset(set, 0, sizeof *set);
    CT_TRY(check_patterns(params, n, trainable, "train.trainable"));
    CT_TRY(check_patterns(params, n, freeze, "train.freeze"));
    set->params = ct_calloc(n > 0 ? (size_t)n : 1, sizeof *set->params, "the trainable set");
    set->frozen = ct_calloc(n > 0 ? (size_t)n : 1, sizeof *set->frozen, "the frozen set");
    if (!set->params || !set->frozen) {
        ct_trainable_free(set);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        ct_tensor *p = params[i];
        const char *name = p->name ? p->name : "";
        bool trains = (!trainable[0] || ct_trainable_matches(trainable, name)) && !ct_trainable_matches(freeze, name);
        if (trains && p->dtype == CT_I8) {
            ct_trainable_free(set);
            return ct_fail("train.trainable: %s is an INT8 weight (model.base_dtype=int8, or an INT8 model) and takes "
                           "no gradient; freeze it (train.freeze), train adapters on it, or load the base in f32/bf16",
                           name);
        }
        p->requires_grad = trains;
        if (trains) set->params[set->n++] = p;
        else set->frozen[set->n_frozen++] = p;
        set->total_elements += ct_numel(p);
        if (trains) set->trainable_elements += ct_numel(p);
    }
    if (set->n == 0) {
        ct_trainable_free(set);
        return ct_fail("train.trainable=%s train.freeze=%s leave no parameter to train; freeze fewer parameters",
                       trainable[0] ? trainable : "(all)", freeze);
    }
    set->base_hash = set->n_frozen ? ct_tensors_hash(set->frozen, set->n_frozen) : 0;
    return 0;
}

void ct_trainable_free(ct_trainable_set *set) {
    free(set->params);
    free(set->frozen);
    memset(set, 0, sizeof *set);
}

/* 1234567 -> "1,234,567". */
static void with_commas(int64_t v, char *out, size_t size) {
    char digits[32];
    int n = snprintf(digits, sizeof digits, "%lld", (long long)v), used = 0;
    for (int i = 0; i < n && (size_t)used + 2 < size; i++) {
        if (i > 0 && (n - i) % 3 == 0 && digits[i - 1] != '-') out[used++] = ',';
        out[used++] = digits[i];
    }
    out[used] = '\0';
}

void ct_trainable_describe(const ct_trainable_set *set, char *out, size_t size) {
    char a[40], b[40];
    with_commas(set->trainable_elements, a, sizeof a);
    with_commas(set->total_elements, b, sizeof b);
    double pct = set->total_elements ? 100.0 * (double)set->trainable_elements / (double)set->total_elements : 0;
    snprintf(out, size, "%s trainable of %s (%.2f%%)", a, b, pct);
}
