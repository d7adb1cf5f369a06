// cuDNN operation graphs through the backend-descriptor API (see cudnn_graph.h). Each builder
// creates its descriptors through make(), which registers them with the graph first, so any
// failure later leaves nothing to free but the graph itself.
#include <stdbool.h>
#include <string.h>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cudnn_graph.h"

void ct_cudnn_graph_init(ct_cudnn_graph *g, int64_t first_virtual_uid) {
    memset(g, 0, sizeof *g);
    g->next_virtual_uid = first_virtual_uid;
}

void ct_cudnn_graph_destroy(ct_cudnn_graph *g) {
    /* Reverse order: the plan and operations go before the descriptors they point to. */
    for (int i = g->n_owned - 1; i >= 0; i--) cudnnBackendDestroyDescriptor(g->owned[i]);
    g->n_owned = g->n_ops = 0;
    g->plan = NULL;
    g->workspace_bytes = 0;
}

static int make(ct_cudnn_graph *g, cudnnBackendDescriptorType_t type, ct_cudnn_desc *out) {
    *out = NULL;
    if (g->n_owned == CT_CUDNN_MAX_DESCS)
        return ct_fail("cuDNN graph: more than %d descriptors (raise CT_CUDNN_MAX_DESCS)", CT_CUDNN_MAX_DESCS);
    CT_CUDNN_CHECK(cudnnBackendCreateDescriptor(type, out));
    g->owned[g->n_owned++] = *out;
    return 0;
}

static int add_op(ct_cudnn_graph *g, ct_cudnn_desc op) {
    if (g->n_ops == CT_CUDNN_MAX_OPS)
        return ct_fail("cuDNN graph: more than %d operations (raise CT_CUDNN_MAX_OPS)", CT_CUDNN_MAX_OPS);
    g->ops[g->n_ops++] = op;
    return 0;
}

static int set_desc(ct_cudnn_desc d, cudnnBackendAttributeName_t name, ct_cudnn_desc value) {
    CT_CUDNN_CHECK(cudnnBackendSetAttribute(d, name, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &value));
    return 0;
}

static int set_data_type(ct_cudnn_desc d, cudnnBackendAttributeName_t name, cudnnDataType_t value) {
    CT_CUDNN_CHECK(cudnnBackendSetAttribute(d, name, CUDNN_TYPE_DATA_TYPE, 1, &value));
    return 0;
}

/* ---- tensors ---- */

static int tensor(ct_cudnn_graph *g, int64_t uid, cudnnDataType_t dtype, const int64_t dims[4],
                  const int64_t strides[4], bool is_virtual, bool by_value, ct_cudnn_desc *out) {
    ct_cudnn_desc t;
    CT_TRY(make(g, CUDNN_BACKEND_TENSOR_DESCRIPTOR, &t));
    int64_t alignment = 16;
    CT_TRY(set_data_type(t, CUDNN_ATTR_TENSOR_DATA_TYPE, dtype));
    CT_CUDNN_CHECK(cudnnBackendSetAttribute(t, CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64, 4, dims));
    CT_CUDNN_CHECK(cudnnBackendSetAttribute(t, CUDNN_ATTR_TENSOR_STRIDES, CUDNN_TYPE_INT64, 4, strides));
    CT_CUDNN_CHECK(cudnnBackendSetAttribute(t, CUDNN_ATTR_TENSOR_UNIQUE_ID, CUDNN_TYPE_INT64, 1, &uid));
    CT_CUDNN_CHECK(cudnnBackendSetAttribute(t, CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, CUDNN_TYPE_INT64, 1, &alignment));
    CT_CUDNN_CHECK(cudnnBackendSetAttribute(t, CUDNN_ATTR_TENSOR_IS_VIRTUAL, CUDNN_TYPE_BOOLEAN, 1, &is_virtual));
    if (by_value)
        CT_CUDNN_CHECK(cudnnBackendSetAttribute(t, CUDNN_ATTR_TENSOR_IS_BY_VALUE, CUDNN_TYPE_BOOLEAN, 1, &by_value));
    CT_CUDNN_CHECK(cudnnBackendFinalize(t));
    *out = t;
    return 0;
}

int ct_cudnn_tensor(ct_cudnn_graph *g, int64_t uid, cudnnDataType_t dtype, const int64_t dims[4],
                    const int64_t strides[4], ct_cudnn_desc *out) {
    return tensor(g, uid, dtype, dims, strides, false, false, out);
}

int ct_cudnn_virtual(ct_cudnn_graph *g, cudnnDataType_t dtype, const int64_t dims[4], const int64_t strides[4],
                     ct_cudnn_desc *out) {
    return tensor(g, g->next_virtual_uid++, dtype, dims, strides, true, false, out);
}

int ct_cudnn_scalar(ct_cudnn_graph *g, int64_t uid, ct_cudnn_desc *out) {
    const int64_t one[4] = {1, 1, 1, 1};
    return tensor(g, uid, CUDNN_DATA_FLOAT, one, one, false, true, out);
}

/* ---- operations ---- */

static int pointwise_desc(ct_cudnn_graph *g, cudnnPointwiseMode_t mode, cudnnDataType_t compute, int64_t axis,
                          ct_cudnn_desc *out) {
    ct_cudnn_desc pw = NULL;
    CT_TRY(make(g, CUDNN_BACKEND_POINTWISE_DESCRIPTOR, &pw));
    CT_CUDNN_CHECK(cudnnBackendSetAttribute(pw, CUDNN_ATTR_POINTWISE_MODE, CUDNN_TYPE_POINTWISE_MODE, 1, &mode));
    CT_TRY(set_data_type(pw, CUDNN_ATTR_POINTWISE_MATH_PREC, compute));
    if (mode == CUDNN_POINTWISE_GEN_INDEX)
        CT_CUDNN_CHECK(cudnnBackendSetAttribute(pw, CUDNN_ATTR_POINTWISE_AXIS, CUDNN_TYPE_INT64, 1, &axis));
    CT_CUDNN_CHECK(cudnnBackendFinalize(pw));
    *out = pw;
    return 0;
}

static int pointwise_op(ct_cudnn_graph *g, ct_cudnn_desc pw, ct_cudnn_desc x, ct_cudnn_desc b, ct_cudnn_desc t,
                        ct_cudnn_desc y) {
    ct_cudnn_desc op = NULL;
    CT_TRY(make(g, CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR, &op));
    CT_TRY(set_desc(op, CUDNN_ATTR_OPERATION_POINTWISE_PW_DESCRIPTOR, pw));
    CT_TRY(set_desc(op, CUDNN_ATTR_OPERATION_POINTWISE_XDESC, x));
    if (b) CT_TRY(set_desc(op, CUDNN_ATTR_OPERATION_POINTWISE_BDESC, b));
    if (t) CT_TRY(set_desc(op, CUDNN_ATTR_OPERATION_POINTWISE_TDESC, t));
    CT_TRY(set_desc(op, CUDNN_ATTR_OPERATION_POINTWISE_YDESC, y));
    CT_CUDNN_CHECK(cudnnBackendFinalize(op));
    return add_op(g, op);
}

int ct_cudnn_pointwise(ct_cudnn_graph *g, cudnnPointwiseMode_t mode, cudnnDataType_t compute, ct_cudnn_desc x,
                       ct_cudnn_desc b, ct_cudnn_desc t, ct_cudnn_desc y) {
    ct_cudnn_desc pw = NULL;
    CT_TRY(pointwise_desc(g, mode, compute, -1, &pw));
    return pointwise_op(g, pw, x, b, t, y);
}

int ct_cudnn_gen_index(ct_cudnn_graph *g, ct_cudnn_desc x, int64_t axis, ct_cudnn_desc y) {
    /* f32 math as cuDNN's own causal-mask graphs use; the index lands in y's int32. */
    ct_cudnn_desc pw = NULL;
    CT_TRY(pointwise_desc(g, CUDNN_POINTWISE_GEN_INDEX, CUDNN_DATA_FLOAT, axis, &pw));
    return pointwise_op(g, pw, x, NULL, NULL, y);
}

int ct_cudnn_reduction(ct_cudnn_graph *g, cudnnReduceTensorOp_t op_type, ct_cudnn_desc x, ct_cudnn_desc y) {
    ct_cudnn_desc red, op;
    CT_TRY(make(g, CUDNN_BACKEND_REDUCTION_DESCRIPTOR, &red));
    CT_CUDNN_CHECK(
        cudnnBackendSetAttribute(red, CUDNN_ATTR_REDUCTION_OPERATOR, CUDNN_TYPE_REDUCTION_OPERATOR_TYPE, 1, &op_type));
    CT_TRY(set_data_type(red, CUDNN_ATTR_REDUCTION_COMP_TYPE, CUDNN_DATA_FLOAT));
    CT_CUDNN_CHECK(cudnnBackendFinalize(red));
    CT_TRY(make(g, CUDNN_BACKEND_OPERATION_REDUCTION_DESCRIPTOR, &op));
    CT_TRY(set_desc(op, CUDNN_ATTR_OPERATION_REDUCTION_XDESC, x));
    CT_TRY(set_desc(op, CUDNN_ATTR_OPERATION_REDUCTION_YDESC, y));
    CT_TRY(set_desc(op, CUDNN_ATTR_OPERATION_REDUCTION_DESC, red));
    CT_CUDNN_CHECK(cudnnBackendFinalize(op));
    return add_op(g, op);
}

int ct_cudnn_matmul(ct_cudnn_graph *g, ct_cudnn_desc a, ct_cudnn_desc b, ct_cudnn_desc c) {
    ct_cudnn_desc mm, op;
    CT_TRY(make(g, CUDNN_BACKEND_MATMUL_DESCRIPTOR, &mm));
    CT_TRY(set_data_type(mm, CUDNN_ATTR_MATMUL_COMP_TYPE, CUDNN_DATA_FLOAT));
    CT_CUDNN_CHECK(cudnnBackendFinalize(mm));
    CT_TRY(make(g, CUDNN_BACKEND_OPERATION_MATMUL_DESCRIPTOR, &op));
    CT_TRY(set_desc(op, CUDNN_ATTR_OPERATION_MATMUL_ADESC, a));
    CT_TRY(set_desc(op, CUDNN_ATTR_OPERATION_MATMUL_BDESC, b));
    CT_TRY(set_desc(op, CUDNN_ATTR_OPERATION_MATMUL_CDESC, c));
    CT_TRY(set_desc(op, CUDNN_ATTR_OPERATION_MATMUL_DESC, mm));
    CT_CUDNN_CHECK(cudnnBackendFinalize(op));
    return add_op(g, op);
}

int ct_cudnn_reshape(ct_cudnn_graph *g, ct_cudnn_desc x, ct_cudnn_desc y) {
    ct_cudnn_desc op = NULL;
    CT_TRY(make(g, CUDNN_BACKEND_OPERATION_RESHAPE_DESCRIPTOR, &op));
    CT_TRY(set_desc(op, CUDNN_ATTR_OPERATION_RESHAPE_XDESC, x));
    CT_TRY(set_desc(op, CUDNN_ATTR_OPERATION_RESHAPE_YDESC, y));
    CT_CUDNN_CHECK(cudnnBackendFinalize(op));
    return add_op(g, op);
}

/* ---- operation graph, heuristics, plan ---- */

static int operation_graph(ct_cudnn_graph *g, cudnnHandle_t handle, ct_cudnn_desc *out) {
    ct_cudnn_desc graph;
    CT_TRY(make(g, CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR, &graph));
    CT_CUDNN_CHECK(cudnnBackendSetAttribute(graph, CUDNN_ATTR_OPERATIONGRAPH_OPS, CUDNN_TYPE_BACKEND_DESCRIPTOR,
                                            g->n_ops, g->ops));
    /* The handle attribute is marked deprecated in 9.x headers but is what every 9.x library
     * accepts; the device-property alternative does not exist in the older ones. */
    CT_CUDNN_CHECK(cudnnBackendSetAttribute(graph, CUDNN_ATTR_OPERATIONGRAPH_HANDLE, CUDNN_TYPE_HANDLE, 1, &handle));
    CT_CUDNN_CHECK(cudnnBackendFinalize(graph));
    *out = graph;
    return 0;
}

/* The heuristics' engine configs, best first, into configs[] (created here; the caller destroys
 * them). */
static int engine_configs(ct_cudnn_graph *g, ct_cudnn_desc graph, ct_cudnn_desc *configs, int64_t *count) {
    ct_cudnn_desc heur;
    cudnnBackendHeurMode_t mode = CUDNN_HEUR_MODE_A;
    *count = 0;
    CT_TRY(make(g, CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR, &heur));
    CT_TRY(set_desc(heur, CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, graph));
    CT_CUDNN_CHECK(cudnnBackendSetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE, 1, &mode));
    CT_CUDNN_CHECK(cudnnBackendFinalize(heur));
    int64_t available = 0;
    CT_CUDNN_CHECK(cudnnBackendGetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR, 0,
                                            &available, NULL));
    int64_t wanted = available < CT_CUDNN_MAX_ENGINE_CONFIGS ? available : CT_CUDNN_MAX_ENGINE_CONFIGS;
    for (int64_t i = 0; i < wanted; i++) {
        cudnnStatus_t status = cudnnBackendCreateDescriptor(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR, &configs[i]);
        if (status != CUDNN_STATUS_SUCCESS) {
            for (int64_t j = 0; j < i; j++) cudnnBackendDestroyDescriptor(configs[j]);
            return ct_fail("cuDNN: cudnnBackendCreateDescriptor(ENGINECFG) failed at %s:%d: %s", __FILE__, __LINE__,
                           cudnnGetErrorString(status));
        }
    }
    cudnnStatus_t status = wanted > 0 ? cudnnBackendGetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_RESULTS,
                                                                 CUDNN_TYPE_BACKEND_DESCRIPTOR, wanted, count, configs)
                                      : CUDNN_STATUS_SUCCESS;
    if (status != CUDNN_STATUS_SUCCESS) {
        for (int64_t j = 0; j < wanted; j++) cudnnBackendDestroyDescriptor(configs[j]);
        *count = 0;
        return ct_fail("cuDNN: cudnnBackendGetAttribute(ENGINEHEUR_RESULTS) failed at %s:%d: %s", __FILE__, __LINE__,
                       cudnnGetErrorString(status));
    }
    /* Configs beyond what was returned were created but not filled: free them now. */
    for (int64_t j = *count; j < wanted; j++) cudnnBackendDestroyDescriptor(configs[j]);
    return 0;
}

/* An execution plan for one engine config: the plan, or NULL with the status that refused it. */
static ct_cudnn_desc try_plan(cudnnHandle_t handle, ct_cudnn_desc config, cudnnStatus_t *status) {
    ct_cudnn_desc plan = NULL;
    *status = cudnnBackendCreateDescriptor(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR, &plan);
    if (*status != CUDNN_STATUS_SUCCESS) return NULL;
    *status = cudnnBackendSetAttribute(plan, CUDNN_ATTR_EXECUTION_PLAN_HANDLE, CUDNN_TYPE_HANDLE, 1, &handle);
    if (*status == CUDNN_STATUS_SUCCESS)
        *status = cudnnBackendSetAttribute(plan, CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG,
                                           CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &config);
    if (*status == CUDNN_STATUS_SUCCESS) *status = cudnnBackendFinalize(plan);
    if (*status == CUDNN_STATUS_SUCCESS) return plan;
    cudnnBackendDestroyDescriptor(plan);
    return NULL;
}

int ct_cudnn_graph_plan(ct_cudnn_graph *g, cudnnHandle_t handle) {
    ct_cudnn_desc graph = NULL, configs[CT_CUDNN_MAX_ENGINE_CONFIGS];
    int64_t count = 0;
    CT_TRY(operation_graph(g, handle, &graph));
    CT_TRY(engine_configs(g, graph, configs, &count));
    /* An engine config may still refuse the graph when finalized (shape, shared memory, arch):
     * take the first that finalizes, as the heuristics rank them. */
    cudnnStatus_t last = CUDNN_STATUS_NOT_SUPPORTED;
    int64_t chosen = -1;
    g->engine_configs_tried = 0;
    for (int64_t i = 0; i < count && chosen < 0; i++) {
        g->engine_configs_tried++;
        ct_cudnn_desc plan = try_plan(handle, configs[i], &last);
        if (plan) {
            chosen = i;
            g->plan = plan;
        }
    }
    for (int64_t i = 0; i < count; i++)
        if (i != chosen) cudnnBackendDestroyDescriptor(configs[i]);
    if (chosen < 0)
        return ct_fail("cuDNN: no execution plan: %lld engine config(s) from the heuristics, none finalized "
                       "(last status: %s) at %s:%d",
                       (long long)count, count ? cudnnGetErrorString(last) : "no engine config", __FILE__, __LINE__);
    /* The plan refers to its engine config: both are owned from here on (config first, so the
     * reverse-order destroy frees the plan before it). Room was checked by make() only for
     * earlier descriptors, so check again. */
    if (g->n_owned + 2 > CT_CUDNN_MAX_DESCS) {
        cudnnBackendDestroyDescriptor(g->plan);
        cudnnBackendDestroyDescriptor(configs[chosen]);
        g->plan = NULL;
        return ct_fail("cuDNN graph: more than %d descriptors (raise CT_CUDNN_MAX_DESCS)", CT_CUDNN_MAX_DESCS);
    }
    g->owned[g->n_owned++] = configs[chosen];
    g->owned[g->n_owned++] = g->plan;
    int64_t got = 0;
    CT_CUDNN_CHECK(cudnnBackendGetAttribute(g->plan, CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE, CUDNN_TYPE_INT64, 1,
                                            &got, &g->workspace_bytes));
    return 0;
}

/* ---- execution ---- */

int ct_cudnn_graph_execute(const ct_cudnn_graph *g, cudnnHandle_t handle, int n, const int64_t *uids,
                           void *const *pointers, void *workspace) {
    if (!g->plan) return ct_fail("cuDNN graph: execute without a plan");
    ct_cudnn_desc pack = NULL;
    CT_CUDNN_CHECK(cudnnBackendCreateDescriptor(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR, &pack));
    cudnnStatus_t status =
        cudnnBackendSetAttribute(pack, CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, CUDNN_TYPE_INT64, n, uids);
    const char *what = "cudnnBackendSetAttribute(VARIANT_PACK_UNIQUE_IDS)";
    if (status == CUDNN_STATUS_SUCCESS) {
        status = cudnnBackendSetAttribute(pack, CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, CUDNN_TYPE_VOID_PTR, n,
                                          pointers);
        what = "cudnnBackendSetAttribute(VARIANT_PACK_DATA_POINTERS)";
    }
    if (status == CUDNN_STATUS_SUCCESS) {
        status = cudnnBackendSetAttribute(pack, CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR, 1, &workspace);
        what = "cudnnBackendSetAttribute(VARIANT_PACK_WORKSPACE)";
    }
    if (status == CUDNN_STATUS_SUCCESS) {
        status = cudnnBackendFinalize(pack);
        what = "cudnnBackendFinalize(variant pack)";
    }
    if (status == CUDNN_STATUS_SUCCESS) {
        status = cudnnBackendExecute(handle, g->plan, pack);
        what = "cudnnBackendExecute";
    }
    cudnnBackendDestroyDescriptor(pack);
    if (status != CUDNN_STATUS_SUCCESS)
        return ct_fail("cuDNN: %s failed at %s:%d: %s %s", what, __FILE__, __LINE__, cudnnGetErrorString(status),
                       ct_cudnn_last_error_detail());
    return 0;
}

const char *ct_cudnn_last_error_detail(void) {
    static char detail[512];
    detail[0] = '\0';
    cudnnGetLastErrorString(detail, sizeof detail);
    /* One line: the message may carry newlines. */
    for (char *c = detail; *c; c++)
        if (*c == '\n' || *c == '\r') *c = ' ';
    return detail;
}
