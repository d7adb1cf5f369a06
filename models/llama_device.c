/* Moving a LLaMA-family model between devices. Parameters move in place (new memory, same
 * ct_tensor), so whatever holds pointers to them (an optimizer, a tied lm_head, a checkpointed
 * block's parameter list) stays right. */
#include <stdio.h>

#include "core/error.h"
#include "kernels/backend.h"
#include "kernels/device.h"
#include "models/llama.h"

ct_device ct_llama_device(const ct_llama *m) { return m->embed_tokens->device; }

int ct_llama_check_device(ct_device device) {
    if (device == CT_CPU) return 0;
    if (!ct_cuda_backend()) return ct_fail("this build has no CUDA backend (it was built without the CUDA toolkit)");
    if (!ct_device_available(device)) return ct_fail("no usable GPU on this machine (the CUDA driver reports none)");
    return 0;
}

/* One persistent tensor's memory to `device`; the header stays. */
static int move_memory(ct_tensor *t, ct_device device) {
    if (t->device == device) return 0;
    if (t->base) return ct_fail("moving '%s': a view cannot move; move its base", t->name ? t->name : "a tensor");
    size_t nbytes = ct_nbytes(t);
    void *data = ct_device_alloc(device, nbytes);
    if (!data) return ct_fail_context("moving '%s' to %s: ", t->name ? t->name : "a tensor", ct_device_name(device));
    if (ct_device_copy(device, data, t->device, t->data, nbytes) < 0) {
        ct_device_free(device, data);
        return ct_fail_context("moving '%s' to %s: ", t->name ? t->name : "a tensor", ct_device_name(device));
    }
    ct_device_free(t->device, t->data);
    t->data = data;
    t->device = device;
    return 0;
}

/* A parameter with what hangs off it: its gradient and, for i8, its scales. */
static int move_param(ct_tensor *t, ct_device device) {
    CT_TRY(move_memory(t, device));
    if (t->grad) CT_TRY(move_memory(t->grad, device));
    if (t->scale) CT_TRY(move_memory(t->scale, device));
    return 0;
}

int ct_llama_to_device(ct_llama *m, ct_device device) {
    if (ct_llama_check_device(device) < 0) return ct_fail_context("%s: ", ct_device_name(device));
    const ct_device from = ct_llama_device(m);
    /* Pruning masks travel with their weights (they are moved first: nothing else to undo). */
    for (int i = 0; i < m->n_masks; i++)
        if (move_param(m->masks[i], device) < 0) {
            for (int j = 0; j < i; j++) move_param(m->masks[j], from);
            return -1;
        }
    for (int i = 0; i < m->n_params; i++) {
        if (move_param(m->params[i], device) == 0) continue;
        /* Back where they were, so the model stays usable on one device; the first error is kept. */
        char message[512];
        snprintf(message, sizeof message, "%s", ct_last_error());
        for (int j = 0; j <= i; j++) move_param(m->params[j], from);
        for (int j = 0; j < m->n_masks; j++) move_param(m->masks[j], from);
        return ct_fail("%s", message);
    }
    return 0;
}
