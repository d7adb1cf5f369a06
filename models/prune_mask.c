/* Pruning masks of plain arrays (models/prune.h): what torch.nn.utils.prune's methods compute,
 * including PruningContainer's compounding (only unpruned entries are ranked, and a fraction is
 * of those). Host code: masks are computed once per pruning step, not per training step. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/rng.h"
#include "models/prune.h"

int ct_prune_amount_count(ct_prune_amount a, int64_t remaining, int64_t total, const char *what, int64_t *k) {
    if (a.is_count) {
        if (a.count < 0) return ct_fail("prune %s: amount %lld is negative; give a count >= 0", what, (long long)a.count);
        if (a.count > remaining)
            return ct_fail("prune %s: amount %lld is more than the %lld entries or channels left to prune; give at "
                           "most %lld", what, (long long)a.count, (long long)remaining, (long long)remaining);
        *k = a.count;
        return 0;
    }
    if (!(a.fraction >= 0 && a.fraction <= 1))
        return ct_fail("prune %s: amount %g is outside [0, 1]; give a fraction of what remains (or a count)", what,
                       a.fraction);
    /* Python's round(): half to even, which rint does in the default rounding mode. */
    if (!a.to_total) {
        *k = (int64_t)rint(a.fraction * (double)remaining);
        return 0;
    }
    const int64_t target = (int64_t)rint(a.fraction * (double)total), pruned = total - remaining;
    *k = target > pruned ? target - pruned : 0;
    return 0;
}

/* An entry to rank: its importance, and where it is (tensor, index) to break ties in order. */
typedef struct {
    double key;
    int tensor;
    int64_t index;
} ranked;

static int by_key_ascending(const void *pa, const void *pb) {
    const ranked *a = pa, *b = pb;
    if (a->key != b->key) return a->key < b->key ? -1 : 1;
    if (a->tensor != b->tensor) return a->tensor < b->tensor ? -1 : 1;
    return a->index < b->index ? -1 : a->index > b->index;
}

int ct_prune_global_mask(const float *const *w, float *const *mask, const int64_t *n, int k, ct_prune_amount a,
                         const char *what) {
    int64_t remaining = 0, total = 0;
    for (int t = 0; t < k; t++) {
        total += n[t];
        for (int64_t i = 0; i < n[t]; i++) remaining += mask[t][i] != 0;
    }
    int64_t prune;
    CT_TRY(ct_prune_amount_count(a, remaining, total, what, &prune));
    if (prune == 0) return 0;
    ranked *r = ct_calloc((size_t)remaining, sizeof *r, "the pruning ranking");
    if (!r) return -1;
    int64_t used = 0;
    for (int t = 0; t < k; t++)
        for (int64_t i = 0; i < n[t]; i++)
            if (mask[t][i] != 0) r[used++] = (ranked){fabs((double)w[t][i]), t, i};
    qsort(r, (size_t)remaining, sizeof *r, by_key_ascending);
    for (int64_t j = 0; j < prune; j++) mask[r[j].tensor][r[j].index] = 0;
    free(r);
    return 0;
}

int ct_prune_l1_mask(const float *w, float *mask, int64_t n, ct_prune_amount a, const char *what) {
    return ct_prune_global_mask(&w, &mask, &n, 1, a, what);
}

int ct_prune_random_mask(float *mask, int64_t n, ct_prune_amount a, uint64_t seed, const char *what) {
    int64_t remaining = 0;
    for (int64_t i = 0; i < n; i++) remaining += mask[i] != 0;
    int64_t prune;
    CT_TRY(ct_prune_amount_count(a, remaining, n, what, &prune));
    int64_t *left = ct_calloc(remaining > 0 ? (size_t)remaining : 1, sizeof *left, "the unpruned entries");
    if (!left) return -1;
    int64_t used = 0;
    for (int64_t i = 0; i < n; i++)
        if (mask[i] != 0) left[used++] = i;
    /* A partial Fisher-Yates shuffle: the first `prune` draws are a uniform subset. */
    ct_rng rng;
    ct_rng_seed(&rng, seed);
    for (int64_t j = 0; j < prune; j++) {
        int64_t pick = j + (int64_t)ct_rng_below(&rng, (uint64_t)(remaining - j));
        int64_t tmp = left[j];
        left[j] = left[pick];
        left[pick] = tmp;
        mask[left[j]] = 0;
    }
    free(left);
    return 0;
}

/* torch.norm(x, p) of channel c, reading `count` entries `stride` apart from `first`. */
static double channel_norm(const float *w, int64_t first, int64_t count, int64_t stride, double p) {
    double acc = p == -INFINITY ? INFINITY : 0;
    for (int64_t i = 0; i < count; i++) {
        double x = fabs((double)w[first + i * stride]);
        if (p == INFINITY) acc = x > acc ? x : acc;
        else if (p == -INFINITY) acc = x < acc ? x : acc;
        else if (p == 0) acc += x != 0;
        else acc += pow(x, p);
    }
    return (isinf(p) || p == 0) ? acc : pow(acc, 1.0 / p);
}

int ct_prune_ln_mask(const float *w, float *mask, int64_t rows, int64_t cols, double norm_order, int dim,
                     ct_prune_amount a, const char *what) {
    if (dim != 0 && dim != 1)
        return ct_fail("prune %s: dim %d is not a dimension of a 2-D weight; give 0 (rows) or 1 (columns)", what, dim);
    if (!(norm_order >= 0) && norm_order != -INFINITY)
        return ct_fail("prune %s: norm order n=%g; give n >= 0, inf or -inf", what, norm_order);
    const int64_t channels = dim == 0 ? rows : cols, length = dim == 0 ? cols : rows;
    const int64_t step = dim == 0 ? cols : 1, stride = dim == 0 ? 1 : cols;
    ranked *r = ct_calloc(channels > 0 ? (size_t)channels : 1, sizeof *r, "the channel ranking");
    if (!r) return -1;
    /* PruningContainer: a channel with any unpruned entry is still there; only those are ranked. */
    int64_t remaining = 0;
    for (int64_t c = 0; c < channels; c++) {
        bool alive = false;
        for (int64_t i = 0; i < length && !alive; i++) alive = mask[c * step + i * stride] != 0;
        if (alive) r[remaining++] = (ranked){channel_norm(w, c * step, length, stride, norm_order), 0, c};
    }
    int64_t prune;
    int rc = ct_prune_amount_count(a, remaining, channels, what, &prune);
    if (rc == 0 && prune > 0) {
        qsort(r, (size_t)remaining, sizeof *r, by_key_ascending);
        for (int64_t j = 0; j < prune; j++)
            for (int64_t i = 0; i < length; i++) mask[r[j].index * step + i * stride] = 0;
    }
    free(r);
    return rc;
}

int ct_prune_nm_mask(const float *w, float *mask, int64_t rows, int64_t cols, int n, int m, const char *what) {
    if (m <= 0 || n < 0 || n > m)
        return ct_fail("prune %s: N:M sparsity %d:%d needs 0 <= N <= M and M >= 1 (2:4 is usual)", what, n, m);
    if (m > 64) return ct_fail("prune %s: M=%d; groups of at most 64 are supported", what, m);
    if (cols % m != 0)
        return ct_fail("prune %s: a row holds %lld weights, not a multiple of M=%d; choose an M that divides it", what,
                       (long long)cols, m);
    for (int64_t row = 0; row < rows; row++)
        for (int64_t g = 0; g < cols; g += m) {
            float *mk = mask + row * cols + g;
            const float *wg = w + row * cols + g;
            /* Keep the n largest: an entry stays when fewer than n others beat it (larger, or
             * equal and earlier). m is small (4, 8), so the quadratic count is cheapest. */
            bool keep[64];
            for (int i = 0; i < m; i++) {
                double wi = mk[i] != 0 ? fabs((double)wg[i]) : 0;
                int beaten = 0;
                for (int j = 0; j < m; j++) {
                    double wj = mk[j] != 0 ? fabs((double)wg[j]) : 0;
                    beaten += wj > wi || (wj == wi && j < i);
                }
                keep[i] = beaten < n;
            }
            for (int i = 0; i < m; i++)
                if (!keep[i]) mk[i] = 0;
        }
    return 0;
}
