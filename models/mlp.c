#include "models/mlp.h"

#include <math.h>
#include <string.h>

#include "autograd/ops.h"
#include "core/rng.h"

int ct_mlp_init(ct_mlp *mlp, int64_t inputs, int64_t hidden, int64_t classes, uint64_t seed) {
    memset(mlp, 0, sizeof *mlp);
    const int64_t shapes[4][2] = {{hidden, inputs}, {hidden, 0}, {classes, hidden}, {classes, 0}};
    static const char *const names[4] = {"w1", "b1", "w2", "b2"};
    ct_rng rng;
    ct_rng_seed(&rng, seed);
    for (int i = 0; i < 4; i++) {
        int ndim = shapes[i][1] ? 2 : 1;
        mlp->params[i] = ct_tensor_new(CT_F32, ndim, shapes[i], names[i]);
        if (!mlp->params[i]) {
            ct_mlp_free(mlp);
            return -1;
        }
        mlp->params[i]->requires_grad = true;
        /* Uniform(-1/sqrt(fan_in), 1/sqrt(fan_in)), as torch.nn.Linear initializes. */
        double bound = 1.0 / sqrt((double)(i < 2 ? inputs : hidden));
        ct_fill_uniform(mlp->params[i], &rng, -bound, bound);
    }
    return 0;
}

void ct_mlp_free(ct_mlp *mlp) {
    for (int i = 0; i < 4; i++) {
        ct_tensor_free(mlp->params[i]);
        mlp->params[i] = NULL;
    }
}

ct_tensor *ct_mlp_forward(const ct_mlp *mlp, ct_tensor *x) {
    ct_tensor *const *p = mlp->params;
    ct_tensor *hidden = ct_tanh(ct_add(ct_matmul(x, p[0], false, true), p[1]));
    return ct_add(ct_matmul(hidden, p[2], false, true), p[3]);
}
