/* A cuDNN operation graph through cuDNN's C backend-descriptor API (cudnn_graph.h of cuDNN 9):
 * tensors, pointwise / reduction / matmul / reshape operations, the operation graph, an execution
 * plan from the heuristics, and the variant pack that binds device pointers at each run.
 * cudnn-frontend (C++) is not installed, so this is the small subset of graph building ctune needs,
 * written against the C API. C++ (.cu) only.
 *
 * A ct_cudnn_graph owns every descriptor made through it and ct_cudnn_graph_destroy frees them
 * all, so a builder that fails halfway only destroys the graph. Descriptors stay alive as long as
 * the plan, because the operations and the plan refer to them. Every cuDNN call is checked: a
 * failure is one ct_fail line naming the call, its file and line, and cuDNN's status string.
 *
 * Tensors are 4-D (cuDNN's attention graphs are [batch, heads, rows, cols]); virtual tensors live
 * only inside the fused kernel and get uids counting up from the graph's first virtual uid;
 * by-value tensors are f32 scalars passed by host pointer in the variant pack. */
#ifndef CT_CUDNN_GRAPH_H
#define CT_CUDNN_GRAPH_H

#include <cudnn.h>
#include <stdint.h>

#define CT_CUDNN_MAX_DESCS 192
#define CT_CUDNN_MAX_OPS 48
#define CT_CUDNN_MAX_ENGINE_CONFIGS 64

typedef cudnnBackendDescriptor_t ct_cudnn_desc;

typedef struct {
    ct_cudnn_desc owned[CT_CUDNN_MAX_DESCS]; /* every descriptor, destroyed in reverse order */
    int n_owned;
    ct_cudnn_desc ops[CT_CUDNN_MAX_OPS]; /* the operations, in the order they were added */
    int n_ops;
    int64_t next_virtual_uid;
    ct_cudnn_desc plan; /* NULL until ct_cudnn_graph_plan succeeds */
    int64_t workspace_bytes;
    int engine_configs_tried; /* what ct_cudnn_graph_plan went through (for its error line) */
} ct_cudnn_graph;

void ct_cudnn_graph_init(ct_cudnn_graph *g, int64_t first_virtual_uid);
void ct_cudnn_graph_destroy(ct_cudnn_graph *g);

/* A tensor in device memory bound by uid at run time, 16-byte aligned. */
int ct_cudnn_tensor(ct_cudnn_graph *g, int64_t uid, cudnnDataType_t dtype, const int64_t dims[4],
                    const int64_t strides[4], ct_cudnn_desc *out);
/* An intermediate of the fused kernel (no memory of its own). */
int ct_cudnn_virtual(ct_cudnn_graph *g, cudnnDataType_t dtype, const int64_t dims[4], const int64_t strides[4],
                     ct_cudnn_desc *out);
/* An f32 scalar [1, 1, 1, 1] whose value is read from a host pointer at run time. */
int ct_cudnn_scalar(ct_cudnn_graph *g, int64_t uid, ct_cudnn_desc *out);

/* y = mode(x[, b[, t]]) computed in `compute`; b and t may be NULL (unary and binary modes).
 * BINARY_SELECT is y = t ? x : b. */
int ct_cudnn_pointwise(ct_cudnn_graph *g, cudnnPointwiseMode_t mode, cudnnDataType_t compute, ct_cudnn_desc x,
                       ct_cudnn_desc b, ct_cudnn_desc t, ct_cudnn_desc y);
/* y[..., i, ...] = i along `axis` of x's shape (int32 y). */
int ct_cudnn_gen_index(ct_cudnn_graph *g, ct_cudnn_desc x, int64_t axis, ct_cudnn_desc y);
/* y = reduce(x) over the dims where y has extent 1 (or a head group: x's heads fold onto y's). */
int ct_cudnn_reduction(ct_cudnn_graph *g, cudnnReduceTensorOp_t op, ct_cudnn_desc x, ct_cudnn_desc y);
/* c = a @ b over the last two dims, batched over the first two (b's heads may divide a's). */
int ct_cudnn_matmul(ct_cudnn_graph *g, ct_cudnn_desc a, ct_cudnn_desc b, ct_cudnn_desc c);
/* y = x seen with y's dims and strides (a transpose when the strides swap). */
int ct_cudnn_reshape(ct_cudnn_graph *g, ct_cudnn_desc x, ct_cudnn_desc y);

/* Finalizes the operation graph, asks the heuristics (mode A) for engine configs and keeps the
 * first one whose execution plan finalizes; workspace_bytes is that plan's workspace. -1 with a
 * message (the last cuDNN status) when none does. */
int ct_cudnn_graph_plan(ct_cudnn_graph *g, cudnnHandle_t handle);

/* Runs the plan on the handle's stream: pointers[i] is the memory (or, for by-value scalars, the
 * host value) of the tensor with uids[i]; workspace holds workspace_bytes. */
int ct_cudnn_graph_execute(const ct_cudnn_graph *g, cudnnHandle_t handle, int n, const int64_t *uids,
                           void *const *pointers, void *workspace);

/* cuDNN's last detailed error message (empty when there is none), for one-line reports. */
const char *ct_cudnn_last_error_detail(void);

#endif
