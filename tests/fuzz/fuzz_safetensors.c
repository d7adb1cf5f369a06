/* A .safetensors file: the JSON header (names, dtypes, shapes, offsets) and the data it points
 * at, then every tensor converted to f32 as a model load does. */
#include "fuzz_util.h"

#include "checkpoints/safetensors.h"
#include "core/tensor.h"

static void load_each(const ct_safetensors *st) {
    for (int i = 0; i < ct_safetensors_count(st); i++) {
        const ct_st_tensor *t = ct_safetensors_at(st, i);
        if (t->ndim < 1 || t->ndim > 4) continue;
        int64_t n = 1;
        for (int d = 0; d < t->ndim; d++) n *= t->shape[d];
        if (n <= 0 || n > (1 << 20)) continue; /* the file's bytes bound it; this bounds memory */
        ct_tensor *dst = ct_tensor_new(CT_F32, t->ndim, t->shape, "fuzz");
        if (dst) ct_safetensors_load_into(st, t->name, dst);
        ct_tensor_free(dst);
    }
    ct_safetensors_metadata(st, "format");
    ct_safetensors_find(st, "lm_head.weight");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = ct_fuzz_write("model.safetensors", data, size);
    ct_safetensors *st = ct_safetensors_open(path);
    if (st) load_each(st);
    ct_safetensors_close(st);
    return 0;
}
