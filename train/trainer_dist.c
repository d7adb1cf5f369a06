/* The trainer under mpirun: N data-parallel ranks (docs/distributed.md).
 *
 *   data       every rank draws the step's train.grad_accum micro-batches (cheap: token ids) and
 *              runs only its own grad_accum / N of them, rank r the r-th run of them; so the step's
 *              target count, and every dropout key, is the one a single process would use.
 *   gradients  each micro-batch's gradient starts from zero and is added to a flat f32 buffer,
 *              in order; the ranks' buffers are then added up in rank order (train/dist.h), so
 *              with one micro-batch per rank the step's gradient is, bit for bit, what one rank
 *              running all of them adds up. Clipping, the norm and AdamW then run on the same
 *              numbers on every rank.
 *   ZeRO-1     with train.shard_optimizer each rank owns a run of whole trainable tensors (about
 *              1/N of the elements), keeps their moments and updates them; the updated tensors
 *              are broadcast by their owners. Checkpoints still hold every moment: rank 0
 *              receives the others' while it writes.
 *   rank 0     logs, evaluates, writes checkpoints and the final model; the others wait for its
 *              status (ct_dist_agree), so a failure anywhere stops every rank.
 *
 * A plain process (not launched by mpirun) never gets here: t->dist stays NULL. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/arena.h"
#include "core/device.h"
#include "core/error.h"
#include "autograd/tape.h"
#include "train/dist.h"
#include "train/trainer_internal.h"

struct ct_trainer_dist {
    int rank, size, local; /* local: micro-batches per rank and step */
    int n;                 /* trainable tensors */
    int64_t *offsets;      /* n + 1: where each trainable tensor sits in flat */
    float *flat, *scratch; /* offsets[n] and offsets[n] + size floats */
    int64_t *has_grad;     /* n: whether any rank's micro-batches gave the tensor a gradient */
    bool sharded;
    int *owner;            /* size + 1: rank r updates trainable tensors [owner[r], owner[r + 1]) */
    int64_t *owned_offsets; /* size + 1: the same as ranges of flat */
};

/* FNV-1a over bytes, for the start-up comparison of recipes and binaries. */
static uint64_t hash_bytes(uint64_t h, const void *data, size_t n) {
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ULL;
    return h;
}

static int binary_hash(uint64_t *hash) {
    FILE *f = fopen("/proc/self/exe", "rb");
    if (!f) return ct_fail("/proc/self/exe: cannot read this program to compare it with the other ranks'");
    unsigned char buffer[1 << 16];
    uint64_t h = 14695981039346656037ULL;
    size_t got;
    while ((got = fread(buffer, 1, sizeof buffer, f)) > 0) h = hash_bytes(h, buffer, got);
    fclose(f);
    *hash = h;
    return 0;
}

int ct_trainer_dist_begin(const ct_recipe *r) {
    if (!ct_dist_active()) return 0;
    ct_dist_set_timeout(r->train.dist_timeout_s);
    uint64_t binary = 0;
    int rc = binary_hash(&binary);
    CT_TRY(ct_dist_agree(rc));
    CT_TRY(ct_dist_check_same(binary, "ctune binary", "start every rank with the same ctune build"));
    char *yaml = ct_recipe_to_yaml(r);
    if (!yaml) rc = -1;
    uint64_t recipe = yaml ? hash_bytes(14695981039346656037ULL, yaml, strlen(yaml)) : 0;
    free(yaml);
    CT_TRY(ct_dist_agree(rc));
    CT_TRY(ct_dist_check_same(recipe, "recipe (after overrides)",
                              "start every rank with the same recipe file and key=value overrides"));
    int size = ct_dist_size();
    if (r->train.grad_accum % size != 0)
        return ct_fail("train.grad_accum=%d cannot be split over %d ranks: it counts the micro-batches of a step on "
                       "all ranks together, each rank runs grad_accum / ranks of them; set train.grad_accum to a "
                       "multiple of %d", r->train.grad_accum, size, size);
    if (r->device != CT_CPU)
        return ct_fail("device=%s under mpirun: this build reduces CPU tensors only; set device=cpu "
                       "(docs/distributed.md)", ct_device_name(r->device));
    if (size > 1 && (r->prune.method != CT_RECIPE_PRUNE_NONE || r->prune.keep_zeros))
        return ct_fail("prune.method / prune.keep_zeros under mpirun with %d ranks: pruning runs single-process; run "
                       "the prune stage without mpirun", size);
    return 0;
}

/* ZeRO-1's slices: rank r takes the tensors whose first element falls in [r, r + 1) * total / N. */
static void assign_owners(struct ct_trainer_dist *d) {
    int64_t total = d->offsets[d->n];
    int i = 0;
    for (int r = 0; r <= d->size; r++) {
        int64_t from = total * r / d->size;
        while (i < d->n && d->offsets[i] < from) i++;
        d->owner[r] = r == d->size ? d->n : i;
        d->owned_offsets[r] = d->offsets[d->owner[r]];
    }
}

static int check_tensor(const ct_tensor *p) {
    if (p->dtype != CT_F32 || p->device != CT_CPU)
        return ct_fail("trainable tensor %s is %s on %s: under mpirun ranks exchange f32 CPU tensors only", p->name,
                       ct_dtype_name(p->dtype), ct_device_name(p->device));
    return 0;
}

int ct_trainer_dist_setup(ct_trainer *t) {
    if (!ct_dist_active()) return 0;
    struct ct_trainer_dist *d = ct_calloc(1, sizeof *d, "the distributed state");
    if (!d) return -1;
    t->dist = d;
    d->rank = ct_dist_rank();
    d->size = ct_dist_size();
    d->local = t->recipe->train.grad_accum / d->size;
    d->n = t->trainable.n;
    d->sharded = t->recipe->train.shard_optimizer;
    d->offsets = ct_calloc((size_t)d->n + 1, sizeof *d->offsets, "the gradient layout");
    d->has_grad = ct_calloc((size_t)d->n + 1, sizeof *d->has_grad, "the gradient flags");
    d->owner = ct_calloc((size_t)d->size + 1, sizeof *d->owner, "the optimizer slices");
    d->owned_offsets = ct_calloc((size_t)d->size + 1, sizeof *d->owned_offsets, "the optimizer slices");
    if (!d->offsets || !d->has_grad || !d->owner || !d->owned_offsets) return -1;
    for (int i = 0; i < d->n; i++) {
        CT_TRY(check_tensor(t->trainable.params[i]));
        d->offsets[i + 1] = d->offsets[i] + ct_numel(t->trainable.params[i]);
    }
    int64_t total = d->offsets[d->n];
    d->flat = ct_calloc((size_t)total + 1, sizeof *d->flat, "the flat gradient buffer");
    d->scratch = d->size > 1 ? ct_calloc((size_t)(total + d->size), sizeof *d->scratch, "the reduction buffer") : NULL;
    if (!d->flat || (d->size > 1 && !d->scratch)) return -1;
    assign_owners(d);
    fprintf(t->log, "distributed: %d ranks, %d micro-batch(es) per rank and step, %s\n", d->size, d->local,
            d->sharded ? "AdamW moments sharded (ZeRO-1)" : "AdamW moments on every rank");
    return 0;
}

void ct_trainer_dist_free(ct_trainer *t) {
    struct ct_trainer_dist *d = t->dist;
    if (!d) return;
    free(d->offsets);
    free(d->flat);
    free(d->scratch);
    free(d->has_grad);
    free(d->owner);
    free(d->owned_offsets);
    free(d);
    t->dist = NULL;
}

bool ct_trainer_is_root(const ct_trainer *t) { return !t->dist || t->dist->rank == 0; }

int ct_trainer_dist_owned(const ct_trainer *t, int *begin, int *end) {
    *begin = 0;
    *end = t->trainable.n;
    if (t->dist && t->dist->sharded) {
        *begin = t->dist->owner[t->dist->rank];
        *end = t->dist->owner[t->dist->rank + 1];
    }
    return 0;
}

/* flat (+)= the gradients of the trainable tensors; *filled says whether flat holds any yet. */
static void add_to_flat(ct_trainer *t, bool *filled) {
    struct ct_trainer_dist *d = t->dist;
    for (int i = 0; i < d->n; i++) {
        const ct_tensor *g = t->trainable.params[i]->grad;
        float *out = d->flat + d->offsets[i];
        int64_t len = d->offsets[i + 1] - d->offsets[i];
        if (!g) {
            if (!*filled) memset(out, 0, sizeof *out * (size_t)len);
            continue;
        }
        d->has_grad[i] = 1;
        const float *in = g->data;
        if (!*filled) memcpy(out, in, sizeof *out * (size_t)len);
        else
            for (int64_t k = 0; k < len; k++) out[k] += in[k];
    }
    *filled = true;
}

/* The reduced gradients back into the tensors that some rank's micro-batches reached. */
static int unflatten(ct_trainer *t) {
    struct ct_trainer_dist *d = t->dist;
    for (int i = 0; i < d->n; i++) {
        if (!d->has_grad[i]) continue;
        ct_tensor *g = ct_grad_of(t->trainable.params[i]);
        if (!g) return -1;
        memcpy(g->data, d->flat + d->offsets[i], sizeof(float) * (size_t)(d->offsets[i + 1] - d->offsets[i]));
    }
    return 0;
}

/* This rank's micro-batches [first, first + local): status and their loss sums. */
static int run_local(ct_trainer *t, const ct_batch *batches, int64_t total_targets, double *parts) {
    struct ct_trainer_dist *d = t->dist;
    int first = d->rank * d->local;
    bool filled = false;
    memset(d->has_grad, 0, sizeof *d->has_grad * (size_t)d->n);
    for (int j = 0; j < d->local; j++) {
        parts[j] = 0;
        if (batches[first + j].n_targets == 0) continue;
        /* Each micro-batch from zero, added to flat in order: the sum a single rank would form. */
        CT_TRY(ct_zero_grad(t->trainable.params, t->trainable.n));
        CT_TRY(ct_trainer_micro_batch(t, &batches[first + j], first + j, total_targets, &parts[j]));
        add_to_flat(t, &filled);
    }
    if (!filled) memset(d->flat, 0, sizeof *d->flat * (size_t)d->offsets[d->n]);
    return 0;
}

/* A test hook (tests/cli/mpi_faults.cmake): CTUNE_DIST_FAULT=RANK:STEP:exit or RANK:STEP:hang
 * makes rank RANK, as step STEP begins, vanish without a word or stop answering: what a crashed
 * or stuck rank does to the others. */
static void injected_fault(const ct_trainer *t) {
    const char *fault = getenv("CTUNE_DIST_FAULT");
    int rank = -1;
    long long step = -1;
    char what[8] = "";
    if (!fault || sscanf(fault, "%d:%lld:%7s", &rank, &step, what) != 3) return;
    if (rank != t->dist->rank || step != (long long)t->step + 1) return;
    if (!strcmp(what, "exit")) _exit(3);
    if (!strcmp(what, "hang"))
        for (;;) pause();
}

int ct_trainer_dist_accumulate(ct_trainer *t, const ct_batch *batches, int64_t total_targets, double *loss_sum) {
    struct ct_trainer_dist *d = t->dist;
    injected_fault(t);
    int accum = d->local * d->size;
    double *parts = ct_arena_alloc(sizeof *parts * (size_t)accum * 2);
    if (!parts) return -1;
    double *all = parts + accum;
    CT_TRY(ct_dist_agree(run_local(t, batches, total_targets, parts)));
    CT_TRY(ct_dist_allgather_doubles(parts, d->local, all));
    *loss_sum = 0;
    for (int i = 0; i < accum; i++)
        if (batches[i].n_targets > 0) *loss_sum += all[i]; /* in micro-batch order, as one rank adds */
    CT_TRY(ct_dist_sum_int64(d->has_grad, d->n));
    CT_TRY(ct_dist_sum_floats_ordered(d->flat, d->offsets[d->n], d->scratch));
    return unflatten(t);
}

int ct_trainer_dist_share_params(ct_trainer *t) {
    struct ct_trainer_dist *d = t->dist;
    if (!d || !d->sharded || d->size == 1) return 0;
    for (int i = d->owner[d->rank]; i < d->owner[d->rank + 1]; i++)
        memcpy(d->flat + d->offsets[i], t->trainable.params[i]->data,
               sizeof(float) * (size_t)(d->offsets[i + 1] - d->offsets[i]));
    CT_TRY(ct_dist_allgather_floats(d->flat, d->owned_offsets));
    for (int i = 0; i < d->n; i++) {
        if (i >= d->owner[d->rank] && i < d->owner[d->rank + 1]) continue;
        memcpy(t->trainable.params[i]->data, d->flat + d->offsets[i],
               sizeof(float) * (size_t)(d->offsets[i + 1] - d->offsets[i]));
    }
    return 0;
}

int ct_trainer_dist_owner(const ct_trainer *t, int index) {
    const struct ct_trainer_dist *d = t->dist;
    if (!d || !d->sharded) return 0;
    int r = 0;
    while (r + 1 < d->size && index >= d->owner[r + 1]) r++;
    return r;
}

int ct_trainer_dist_send_moments(ct_trainer *t) {
    const struct ct_trainer_dist *d = t->dist;
    if (!d || !d->sharded || d->rank == 0) return 0;
    for (int i = d->owner[d->rank]; i < d->owner[d->rank + 1]; i++) {
        const ct_adamw_slot *s = &t->optimizer->slots[i];
        CT_TRY(ct_dist_send_floats(0, 2 * i, s->m->data, ct_numel(s->m)));
        CT_TRY(ct_dist_send_floats(0, 2 * i + 1, s->v->data, ct_numel(s->v)));
    }
    return 0;
}

int ct_trainer_dist_agree(const ct_trainer *t, int status) { return t->dist ? ct_dist_agree(status) : status; }

int ct_trainer_dist_any(const ct_trainer *t, bool flag, bool *any) {
    *any = flag;
    if (!t->dist) return 0;
    int64_t count = flag ? 1 : 0;
    CT_TRY(ct_dist_sum_int64(&count, 1));
    *any = count > 0;
    return 0;
}
