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
#include "kernels/cuda/cuda_nccl.h"
#include "kernels/device.h"
#include "train/dist.h"
#include "train/trainer_internal.h"

struct ct_trainer_dist {
    int rank, size, local; /* local: micro-batches per rank and step */
    ct_device device;      /* the run's: CPU tensors travel over MPI, CUDA ones over NCCL */
    int n;                 /* trainable tensors */
    int64_t *offsets;      /* n + 1: where each trainable tensor sits in flat */
    float *flat;           /* offsets[n] floats on the device */
    float *scratch;        /* CPU: one block (train/dist.h) */
    int64_t *has_grad;     /* n: whether any rank's micro-batches gave the tensor a gradient */
    bool sharded;
    int *owner;            /* size + 1: rank r updates trainable tensors [owner[r], owner[r + 1]) */
    int64_t *owned_offsets; /* size + 1: the same as ranges of flat */
};

/* FNV-1a over bytes, for the start-up comparison of recipes and binaries. */
#define FNV_OFFSET 14695981039346656037ULL
static uint64_t hash_bytes(uint64_t h, const void *data, size_t n) {
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ULL;
    return h;
}

static int binary_hash(uint64_t *hash) {
    FILE *f = fopen("/proc/self/exe", "rb");
    if (!f) return ct_fail("/proc/self/exe: cannot read this program to compare it with the other ranks'");
    unsigned char buffer[1 << 16];
    uint64_t h = FNV_OFFSET;
    size_t got;
    while ((got = fread(buffer, 1, sizeof buffer, f)) > 0) h = hash_bytes(h, buffer, got);
    fclose(f);
    *hash = h;
    return 0;
}

/* device=cuda: one GPU per rank (the rank's index on its node), and the ranks' NCCL communicator,
 * its id made by rank 0 and sent over MPI. Before anything touches the GPU. */
static int join_nccl(void) {
    unsigned char id[CT_NCCL_ID_BYTES] = {0};
    int rc = ct_nccl_available() ? 0
                                 : ct_fail("device=cuda under mpirun needs NCCL, and this ctune was built without it; "
                                           "set device=cpu or rebuild with CUDA and NCCL (docs/distributed.md)");
    if (rc == 0 && ct_dist_rank() == 0) rc = ct_nccl_unique_id(id);
    CT_TRY(ct_dist_agree(rc));
    CT_TRY(ct_dist_broadcast_bytes(id, (int)sizeof id));
    return ct_dist_agree(ct_nccl_init(ct_dist_rank(), ct_dist_size(), id, ct_dist_local_rank()));
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
    uint64_t recipe = yaml ? hash_bytes(FNV_OFFSET, yaml, strlen(yaml)) : 0;
    free(yaml);
    CT_TRY(ct_dist_agree(rc));
    CT_TRY(ct_dist_check_same(recipe, "recipe (after overrides)",
                              "start every rank with the same recipe file and key=value overrides"));
    int size = ct_dist_size();
    if (r->train.grad_accum % size != 0)
        return ct_fail("train.grad_accum=%d cannot be split over %d ranks: it counts the micro-batches of a step on "
                       "all ranks together, each rank runs grad_accum / ranks of them; set train.grad_accum to a "
                       "multiple of %d", r->train.grad_accum, size, size);
    if (size > 1 && (r->prune.method != CT_RECIPE_PRUNE_NONE || r->prune.keep_zeros))
        return ct_fail("prune.method / prune.keep_zeros under mpirun with %d ranks: pruning runs single-process; run "
                       "the prune stage without mpirun", size);
    if (r->device != CT_CPU) CT_TRY(join_nccl());
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

static int check_tensor(const ct_tensor *p, ct_device device) {
    if (p->dtype != CT_F32 || p->device != device)
        return ct_fail("trainable tensor %s is %s on %s: under mpirun ranks exchange f32 tensors on the run's device "
                       "(%s)", p->name, ct_dtype_name(p->dtype), ct_device_name(p->device), ct_device_name(device));
    return 0;
}

/* A 1-D tensor over n floats of flat from `start`, for the backend's axpby and NCCL. */
static ct_tensor flat_view(const struct ct_trainer_dist *d, int64_t start, int64_t n) {
    return (ct_tensor){.dtype = CT_F32, .device = d->device, .ndim = 1, .shape = {n}, .data = d->flat + start};
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
    d->device = t->recipe->device;
    d->offsets = ct_calloc((size_t)d->n + 1, sizeof *d->offsets, "the gradient layout");
    d->has_grad = ct_calloc((size_t)d->n + 1, sizeof *d->has_grad, "the gradient flags");
    d->owner = ct_calloc((size_t)d->size + 1, sizeof *d->owner, "the optimizer slices");
    d->owned_offsets = ct_calloc((size_t)d->size + 1, sizeof *d->owned_offsets, "the optimizer slices");
    if (!d->offsets || !d->has_grad || !d->owner || !d->owned_offsets) return -1;
    for (int i = 0; i < d->n; i++) {
        CT_TRY(check_tensor(t->trainable.params[i], d->device));
        d->offsets[i + 1] = d->offsets[i] + ct_numel(t->trainable.params[i]);
    }
    int64_t total = d->offsets[d->n];
    d->flat = ct_device_alloc(d->device, sizeof *d->flat * (size_t)(total + 1));
    if (!d->flat) return ct_fail_context("the flat gradient buffer (%lld floats): ", (long long)total);
    CT_TRY(ct_device_memset_zero(d->device, d->flat, sizeof *d->flat * (size_t)(total + 1)));
    int64_t block = total < CT_DIST_BLOCK ? total : CT_DIST_BLOCK;
    bool over_mpi = d->device == CT_CPU && d->size > 1;
    d->scratch = over_mpi ? ct_calloc((size_t)(block + d->size), sizeof *d->scratch, "the reduction buffer") : NULL;
    if (over_mpi && !d->scratch) return -1;
    assign_owners(d);
    fprintf(t->log, "distributed: %d ranks, %d micro-batch(es) per rank and step, %s\n", d->size, d->local,
            d->sharded ? "AdamW moments sharded (ZeRO-1)" : "AdamW moments on every rank");
    return 0;
}

void ct_trainer_dist_free(ct_trainer *t) {
    struct ct_trainer_dist *d = t->dist;
    if (!d) return;
    free(d->offsets);
    if (d->flat) ct_device_free(d->device, d->flat);
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

static size_t bytes_of(const struct ct_trainer_dist *d, int i) {
    return sizeof(float) * (size_t)(d->offsets[i + 1] - d->offsets[i]);
}

/* flat = 0 before the first micro-batch, then flat += each one's gradients, in order (1 * g + 1 *
 * flat is g + flat exactly, on either device). */
static int add_to_flat(ct_trainer *t) {
    struct ct_trainer_dist *d = t->dist;
    const ct_backend *backend = ct_backend_for(d->device);
    for (int i = 0; i < d->n; i++) {
        const ct_tensor *g = t->trainable.params[i]->grad;
        if (!g) continue;
        d->has_grad[i] = 1;
        ct_tensor out = flat_view(d, d->offsets[i], d->offsets[i + 1] - d->offsets[i]), in = out;
        in.data = g->data;
        CT_TRY(backend->axpby(1.0, &in, 1.0, &out));
    }
    return 0;
}

/* The reduced gradients back into the tensors that some rank's micro-batches reached. */
static int unflatten(ct_trainer *t) {
    struct ct_trainer_dist *d = t->dist;
    for (int i = 0; i < d->n; i++) {
        if (!d->has_grad[i]) continue;
        ct_tensor *g = ct_grad_of(t->trainable.params[i]);
        if (!g) return -1;
        CT_TRY(ct_device_copy(d->device, g->data, d->device, d->flat + d->offsets[i], bytes_of(d, i)));
    }
    return 0;
}

/* In place over the ranks: MPI's fixed-order sum for CPU tensors, NCCL's for GPU ones. */
static int sum_over_ranks(struct ct_trainer_dist *d) {
    if (d->device == CT_CPU) return ct_dist_sum_floats_ordered(d->flat, d->offsets[d->n], d->scratch);
    ct_tensor all = flat_view(d, 0, d->offsets[d->n]), *list = &all;
    return ct_nccl_sum(&list, 1);
}

/* This rank's micro-batches [first, first + local): status and their loss sums. */
static int run_local(ct_trainer *t, const ct_batch *batches, int64_t total_targets, double *parts) {
    struct ct_trainer_dist *d = t->dist;
    int first = d->rank * d->local;
    memset(d->has_grad, 0, sizeof *d->has_grad * (size_t)d->n);
    CT_TRY(ct_device_memset_zero(d->device, d->flat, sizeof *d->flat * (size_t)d->offsets[d->n]));
    for (int j = 0; j < d->local; j++) {
        parts[j] = 0;
        if (batches[first + j].n_targets == 0) continue;
        /* Each micro-batch from zero, added to flat in order: the sum a single rank would form. */
        CT_TRY(ct_zero_grad(t->trainable.params, t->trainable.n));
        CT_TRY(ct_trainer_micro_batch(t, &batches[first + j], first + j, total_targets, &parts[j]));
        CT_TRY(add_to_flat(t));
    }
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
    CT_TRY(sum_over_ranks(d));
    return unflatten(t);
}

/* Each rank's slice of flat from that rank to all. */
static int share_slices(struct ct_trainer_dist *d) {
    if (d->device == CT_CPU) return ct_dist_allgather_floats(d->flat, d->owned_offsets);
    ct_tensor *views = ct_calloc((size_t)d->size, sizeof *views, "the slices"), **list = NULL;
    int *owners = ct_calloc((size_t)d->size, sizeof *owners, "the slices' owners"), n = 0;
    list = views && owners ? ct_calloc((size_t)d->size, sizeof *list, "the slice list") : NULL;
    int rc = list ? 0 : -1;
    for (int r = 0; rc == 0 && r < d->size; r++) {
        if (d->owned_offsets[r + 1] == d->owned_offsets[r]) continue;
        views[n] = flat_view(d, d->owned_offsets[r], d->owned_offsets[r + 1] - d->owned_offsets[r]);
        list[n] = &views[n];
        owners[n++] = r;
    }
    if (rc == 0) rc = ct_nccl_broadcast(list, owners, n);
    free(views);
    free(owners);
    free(list);
    return rc;
}

int ct_trainer_dist_share_params(ct_trainer *t) {
    struct ct_trainer_dist *d = t->dist;
    if (!d || !d->sharded || d->size == 1) return 0;
    for (int i = d->owner[d->rank]; i < d->owner[d->rank + 1]; i++)
        CT_TRY(ct_device_copy(d->device, d->flat + d->offsets[i], d->device, t->trainable.params[i]->data,
                              bytes_of(d, i)));
    CT_TRY(share_slices(d));
    for (int i = 0; i < d->n; i++) {
        if (i >= d->owner[d->rank] && i < d->owner[d->rank + 1]) continue;
        CT_TRY(ct_device_copy(d->device, t->trainable.params[i]->data, d->device, d->flat + d->offsets[i],
                              bytes_of(d, i)));
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
    int rc = 0;
    for (int i = d->owner[d->rank]; rc == 0 && i < d->owner[d->rank + 1]; i++) {
        const ct_adamw_slot *s = &t->optimizer->slots[i];
        /* MPI sends host memory: a GPU's moments come home first (one tensor at a time). */
        float *host = d->device == CT_CPU ? NULL : malloc(bytes_of(d, i));
        if (d->device != CT_CPU && !host) return ct_fail("out of host memory for the moments of %s", s->param->name);
        const ct_tensor *moments[2] = {s->m, s->v};
        for (int k = 0; rc == 0 && k < 2; k++) {
            const float *data = moments[k]->data;
            if (host) {
                rc = ct_device_copy(CT_CPU, host, d->device, data, bytes_of(d, i));
                data = host;
            }
            if (rc == 0) rc = ct_dist_send_floats(0, 2 * i + k, data, ct_numel(moments[k]));
        }
        free(host);
    }
    return rc;
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
