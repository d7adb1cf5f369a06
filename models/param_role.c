#include "models/param_role.h"

#include <stdbool.h>
#include <string.h>

static bool ends_with(const char *s, const char *tail) {
    size_t n = strlen(s), m = strlen(tail);
    return n >= m && !strcmp(s + n - m, tail);
}

ct_param_role ct_param_role_of(const char *name) {
    if (!name) return CT_ROLE_PROJECTION;
    if (strstr(name, ".lora_") || strstr(name, "lora_magnitude_vector")) return CT_ROLE_ADAPTER;
    if (ends_with(name, ".bias")) return CT_ROLE_BIAS;
    if (strstr(name, "norm")) return CT_ROLE_NORM;
    if (strstr(name, "embed_tokens") || strstr(name, "lm_head")) return CT_ROLE_EMBEDDING;
    return CT_ROLE_PROJECTION;
}

const char *ct_param_role_name(ct_param_role role) {
    static const char *const names[] = {"embedding", "projection", "bias", "norm", "adapter"};
    return (unsigned)role < sizeof names / sizeof *names ? names[role] : "?";
}
