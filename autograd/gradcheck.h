/* Gradient checks, used by every op's test.
 *
 * fn builds an output from its inputs with ops. The check draws fixed random weights R of the
 * output's shape and differentiates L = sum(fn(inputs) * R) two ways, in f64:
 *   analytic: the tape's backward;
 *   numeric:  central differences (L(x + h) - L(x - h)) / 2h, element by element.
 * Errors are norm-wise, ||analytic - numeric|| / ||numeric||. It then runs fn on f32 copies of
 * the inputs and compares the f32 output and gradients with the f64 ones the same way. */
#ifndef CT_GRADCHECK_H
#define CT_GRADCHECK_H

#include "core/tensor.h"

typedef ct_tensor *(*ct_gradcheck_fn)(ct_tensor *const *inputs, int n_inputs, void *user);

typedef struct {
    double grad_error;       /* f64 analytic vs numeric, worst input */
    double f32_output_error; /* f32 output vs f64 output */
    double f32_grad_error;   /* f32 gradients vs f64 gradients, worst input */
    int64_t elements_checked;
} ct_gradcheck_result;

/* inputs: f64 leaves (those with requires_grad are differentiated) and i32 index tensors, all on
 * one device: on CUDA the ops run on the GPU (its f64 kernels) and the differences are taken
 * there too, perturbing one element at a time through ct_set. The f32 run uses f32 copies on
 * the same device. Runs in its own scope; the inputs are left as they were. */
int ct_gradcheck(ct_gradcheck_fn fn, ct_tensor *const *inputs, int n_inputs, void *user, double step,
                 ct_gradcheck_result *result);

/* ||a - b|| / ||b|| over all elements (0 when both are zero; inf when only b is), for real
 * tensors on any device (device ones are copied to the host once); NaN when a copy fails. */
double ct_relative_error(const ct_tensor *a, const ct_tensor *b);

/* An arena f64 tensor of the given shape filled from N(0, 1) (never zeros), requiring grad. */
ct_tensor *ct_random_input(struct ct_rng *rng, int ndim, const int64_t *shape);

#endif
