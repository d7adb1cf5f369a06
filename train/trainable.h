/* The trainable set of a run: which parameters train, chosen once at setup from the recipe's
 * train.trainable and train.freeze globs over HF names. The optimizer, zero_grad, clipping, the
 * gradient-norm log and the checkpoint writer all take `params`; the frozen tensors get
 * requires_grad = false, so the tape never allocates a gradient for them, and no AdamW moments.
 *
 * The frozen tensors are the run's base: `base_hash` fingerprints them (names, dtypes, shapes and
 * bytes as loaded) so a checkpoint that stores only the trainable tensors can name the base it
 * needs and refuse another. The hash is FNV-1a 64, a checksum against mix-ups (a retrained or
 * edited base folder), not a cryptographic digest. */
#ifndef CT_TRAINABLE_H
#define CT_TRAINABLE_H

#include <stdint.h>

#include "core/tensor.h"

typedef struct {
    ct_tensor **params; /* trainable, in the model's order */
    int n;
    ct_tensor **frozen; /* the others, in the model's order */
    int n_frozen;
    int64_t trainable_elements, total_elements;
    uint64_t base_hash; /* ct_tensors_hash of `frozen` (0 = no frozen tensor) */
} ct_trainable_set;

/* Whether name matches one of the comma-separated fnmatch globs of `patterns`. */
bool ct_trainable_matches(const char *patterns, const char *name);
/* Chooses among `params` (not owned): those matching a pattern of `trainable` (comma-separated
 * fnmatch globs; "" = all), minus those matching `freeze`. A pattern that matches no parameter
 * is refused naming the three nearest names; a set with nothing trainable is refused, and so is
 * an INT8 tensor that would train. Sets each
 * parameter's requires_grad. The tensors must be in host memory (for the hash). */
int ct_trainable_select(ct_trainable_set *set, ct_tensor *const *params, int n, const char *trainable,
                        const char *freeze);
void ct_trainable_free(ct_trainable_set *set);

/* FNV-1a 64 over each tensor's name, dtype, shape and bytes, in list order. Host tensors only. */
uint64_t ct_tensors_hash(ct_tensor *const *tensors, int n);
/* "fnv1a64:0123456789abcdef" (24 characters and the NUL). */
void ct_hash_format(uint64_t hash, char out[32]);

/* "12,345 trainable of 1,123,456 (1.10%)" for the run log. */
void ct_trainable_describe(const ct_trainable_set *set, char *out, size_t size);

#endif
