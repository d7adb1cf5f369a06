/* A two-layer perceptron, logits = W2 tanh(W1 x + b1) + b2: the smallest model that exercises
 * the whole stack (ops, tape, AdamW, scopes), used by the first-proof test and `ctune demo`. */
#ifndef CT_MLP_H
#define CT_MLP_H

#include <stdint.h>

#include "core/tensor.h"

typedef struct {
    ct_tensor *params[4]; /* w1 [hidden, in], b1 [hidden], w2 [classes, hidden], b2 [classes] */
} ct_mlp;

int ct_mlp_init(ct_mlp *mlp, int64_t inputs, int64_t hidden, int64_t classes, uint64_t seed);
void ct_mlp_free(ct_mlp *mlp);
ct_tensor *ct_mlp_forward(const ct_mlp *mlp, ct_tensor *x);

#endif
