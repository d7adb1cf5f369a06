/* Reading the reference tensors of a fixture's reference.safetensors (made by tests/reference/). */
#ifndef CT_TEST_REFERENCE_H
#define CT_TEST_REFERENCE_H

#include "checkpoints/safetensors.h"
#include "core/tensor.h"

/* A tensor of the reference file, in the current scope, in its own dtype (f32 or i32); NULL when
 * the file has no such tensor. */
static inline ct_tensor *ct_test_ref_tensor(const ct_safetensors *ref, const char *name) {
    const ct_st_tensor *t = ct_safetensors_find(ref, name);
    if (!t) return NULL;
    ct_tensor *out = ct_empty(t->dtype == CT_I32 ? CT_I32 : CT_F32, t->ndim, t->shape);
    if (!out || ct_safetensors_load_into(ref, name, out) < 0) return NULL;
    return out;
}

#endif
