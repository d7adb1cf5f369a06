/* Operand checks shared by the ops: one-line messages naming the op and both shapes. */
#include "core/error.h"
#include "autograd/ops.h"

ct_tensor *ct_fail_shapes(const char *op, const ct_tensor *a, const ct_tensor *b, const char *why) {
    char sa[96], sb[96];
    ct_fail("%s: a %s and b %s: %s", op, ct_shape_str(a, sa, sizeof sa), ct_shape_str(b, sb, sizeof sb), why);
    return NULL;
}

static bool same_device(const char *op, const ct_tensor *a, const ct_tensor *b) {
    if (a->device != b->device) {
        ct_fail_shapes(op, a, b, "operands are on different devices");
        return false;
    }
    return true;
}

bool ct_check_operands(const char *op, const ct_tensor *a, const ct_tensor *b) {
    if (!ct_dtype_is_real(a->dtype) || a->dtype != b->dtype) {
        ct_fail_shapes(op, a, b, "operands must share a real dtype (f32 or f64); convert one first");
        return false;
    }
    return same_device(op, a, b);
}

bool ct_dtype_is_f32_storage(ct_dtype dtype) { return dtype == CT_F32 || dtype == CT_BF16; }

bool ct_check_storage_operands(const char *op, const ct_tensor *a, const ct_tensor *b) {
    bool both_f64 = a->dtype == CT_F64 && b->dtype == CT_F64;
    if (!both_f64 && !(ct_dtype_is_f32_storage(a->dtype) && ct_dtype_is_f32_storage(b->dtype))) {
        ct_fail_shapes(op, a, b,
                       "operands must share a real dtype (f32 or f64), or be f32 / bf16 in any mix; "
                       "convert one first (ct_to_dtype)");
        return false;
    }
    return same_device(op, a, b);
}
