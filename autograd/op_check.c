/* Operand checks shared by the ops: one-line messages naming the op and both shapes. */
#include "autograd/error.h"
#include "autograd/ops.h"

ct_tensor *ct_fail_shapes(const char *op, const ct_tensor *a, const ct_tensor *b, const char *why) {
    char sa[96], sb[96];
    ct_fail("%s: a %s and b %s: %s", op, ct_shape_str(a, sa, sizeof sa), ct_shape_str(b, sb, sizeof sb), why);
    return NULL;
}

bool ct_check_operands(const char *op, const ct_tensor *a, const ct_tensor *b) {
    if (!ct_dtype_is_real(a->dtype) || a->dtype != b->dtype) {
        ct_fail_shapes(op, a, b, "operands must share a real dtype (f32 or f64); convert one first");
        return false;
    }
    if (a->device != b->device) {
        ct_fail_shapes(op, a, b, "operands are on different devices");
        return false;
    }
    return true;
}
