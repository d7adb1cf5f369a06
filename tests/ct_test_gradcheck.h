/* The gradient-check assertion every op test makes: f64 analytic vs numeric gradient, and f32
 * output and gradients vs f64, each under its tolerance; prints one line per check. */
#ifndef CT_TEST_GRADCHECK_H
#define CT_TEST_GRADCHECK_H

#include "core/error.h"
#include "autograd/gradcheck.h"
#include "tests/ct_test.h"

#define GRAD_TOLERANCE 1e-6
#define F32_OUTPUT_TOLERANCE 1e-5
#define F32_GRAD_TOLERANCE 1e-4

static inline void expect_gradcheck(const char *name, ct_gradcheck_fn fn, ct_tensor *const *inputs, int n,
                                    void *user) {
    ct_gradcheck_result r;
    int status = ct_gradcheck(fn, inputs, n, user, 1e-6, &r);
    CHECK(status == 0, "%s: gradcheck failed to run: %s", name, ct_last_error());
    if (status) return;
    CHECK(r.grad_error < GRAD_TOLERANCE, "%s: f64 gradient error %.3g", name, r.grad_error);
    CHECK(r.f32_output_error < F32_OUTPUT_TOLERANCE, "%s: f32 output error %.3g", name, r.f32_output_error);
    CHECK(r.f32_grad_error < F32_GRAD_TOLERANCE, "%s: f32 gradient error %.3g", name, r.f32_grad_error);
    CHECK(r.elements_checked > 0, "%s: nothing was checked", name);
    printf("%-36s grad %.2e  f32 out %.2e  f32 grad %.2e  (%lld elements)\n", name, r.grad_error,
           r.f32_output_error, r.f32_grad_error, (long long)r.elements_checked);
}

#endif
