/* bf16 GEMM in hardware through oneDNN's matmul primitive (kernels/cpu/cpu_bf16_gemm.h).
 *
 * A matmul primitive is built for one shape, layout and data type, and building it (a JIT
 * kernel) takes 10-90 us, as long as a small GEMM itself; a training step runs the same few
 * dozen shapes every step, so the primitives are kept in a small table keyed by everything that
 * shapes them, with their memory objects, whose data pointers are set per call. Transposes and
 * leading dimensions are strides of the memory descriptors: nothing is copied. beta = 1 is
 * oneDNN's "sum" post-op. */
#include "kernels/cpu/cpu_bf16_gemm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "kernels/cpu/cpu_sgemm.h"

#ifdef CT_HAVE_ONEDNN
#include <dnnl.h>
#include <omp.h>
#endif

static int available = -1; /* -1 until first asked */
static char path[80];

#ifdef CT_HAVE_ONEDNN
static const char *isa_name(dnnl_cpu_isa_t isa) {
    if ((isa & dnnl_cpu_isa_avx512_core_amx) == dnnl_cpu_isa_avx512_core_amx) return "avx512_core_amx";
    return "avx512_core_bf16";
}
#endif

static void decide(void) {
    const char *want = getenv("CT_GEMM_BF16");
    available = 0;
    snprintf(path, sizeof path, "widened to f32 (built without oneDNN)");
#ifdef CT_HAVE_ONEDNN
    dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa();
    if (want && !strcmp(want, "widen"))
        snprintf(path, sizeof path, "widened to f32 (CT_GEMM_BF16=widen)");
    else if (!ct_sgemm_uses_onednn())
        snprintf(path, sizeof path, "widened to f32 (CT_GEMM=openblas)");
    else if ((isa & dnnl_cpu_isa_avx512_core_bf16) != dnnl_cpu_isa_avx512_core_bf16)
        snprintf(path, sizeof path, "widened to f32 (no AVX512-BF16)");
    else {
        available = 1;
        snprintf(path, sizeof path, "oneDNN %s", isa_name(isa));
    }
#else
    (void)want;
#endif
}

bool ct_cpu_bf16_gemm_available(void) {
    if (available < 0) decide();
    return available == 1;
}

const char *ct_cpu_bf16_gemm_path(void) {
    if (available < 0) decide();
    return path;
}

#ifdef CT_HAVE_ONEDNN

/* What a primitive is built for. */
typedef struct {
    bool trans_a, trans_b, accumulate, c_bf16;
    int64_t M, N, K, lda, ldb;
} gemm_key;

typedef struct {
    gemm_key key;
    dnnl_primitive_t primitive;
    dnnl_memory_t a, b, c;
} cached_gemm;

/* A step of the tiny model runs about 30 distinct GEMM shapes; a 12-layer model the same kinds. */
#define CACHE_SIZE 96

static dnnl_engine_t engine;
static dnnl_stream_t stream;
static cached_gemm cache[CACHE_SIZE];
static int cache_used, cache_next; /* filled slots; the slot replaced next once full */

static int dnnl_check(dnnl_status_t status, const char *what) {
    return status == dnnl_success ? 0 : ct_fail("bf16 gemm: oneDNN's %s failed (status %d)", what, (int)status);
}

/* Row-major [rows, cols] stored with row stride ld, or read transposed from a [cols, rows] block. */
static int describe(dnnl_memory_desc_t *md, int64_t rows, int64_t cols, bool transposed, int64_t ld,
                    dnnl_data_type_t type) {
    dnnl_dims_t dims = {rows, cols}, strides = {transposed ? 1 : ld, transposed ? ld : 1};
    return dnnl_check(dnnl_memory_desc_init_by_strides(md, 2, dims, type, strides), "memory descriptor");
}

static void release(cached_gemm *g) {
    if (g->primitive) dnnl_primitive_destroy(g->primitive);
    if (g->a) dnnl_memory_destroy(g->a);
    if (g->b) dnnl_memory_destroy(g->b);
    if (g->c) dnnl_memory_destroy(g->c);
    memset(g, 0, sizeof *g);
}

static int build(cached_gemm *g, const gemm_key *k) {
    dnnl_memory_desc_t a_md, b_md, c_md;
    CT_TRY(describe(&a_md, k->M, k->K, k->trans_a, k->lda, dnnl_bf16));
    CT_TRY(describe(&b_md, k->K, k->N, k->trans_b, k->ldb, dnnl_bf16));
    CT_TRY(describe(&c_md, k->M, k->N, false, k->N, k->c_bf16 ? dnnl_bf16 : dnnl_f32));
    dnnl_matmul_desc_t desc;
    CT_TRY(dnnl_check(dnnl_matmul_desc_init(&desc, &a_md, &b_md, NULL, &c_md), "matmul descriptor"));
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t post_ops = NULL;
    if (k->accumulate) { /* C += op(A) op(B): the sum post-op adds the old C, scale 1 */
        CT_TRY(dnnl_check(dnnl_primitive_attr_create(&attr), "attribute"));
        if (dnnl_check(dnnl_post_ops_create(&post_ops), "post-ops") < 0 ||
            dnnl_check(dnnl_post_ops_append_sum(post_ops, 1.0f), "sum post-op") < 0 ||
            dnnl_check(dnnl_primitive_attr_set_post_ops(attr, post_ops), "post-op attribute") < 0) {
            if (post_ops) dnnl_post_ops_destroy(post_ops);
            dnnl_primitive_attr_destroy(attr);
            return -1;
        }
        dnnl_post_ops_destroy(post_ops);
    }
    dnnl_primitive_desc_t pd;
    dnnl_status_t status = dnnl_primitive_desc_create(&pd, &desc, attr, engine, NULL);
    if (attr) dnnl_primitive_attr_destroy(attr);
    CT_TRY(dnnl_check(status, "matmul primitive descriptor"));
    status = dnnl_primitive_create(&g->primitive, pd);
    dnnl_primitive_desc_destroy(pd);
    CT_TRY(dnnl_check(status, "matmul primitive"));
    memcpy(&g->key, k, sizeof *k); /* padding included, as lookup compares */
    if (dnnl_check(dnnl_memory_create(&g->a, &a_md, engine, DNNL_MEMORY_NONE), "memory") < 0 ||
        dnnl_check(dnnl_memory_create(&g->b, &b_md, engine, DNNL_MEMORY_NONE), "memory") < 0 ||
        dnnl_check(dnnl_memory_create(&g->c, &c_md, engine, DNNL_MEMORY_NONE), "memory") < 0) {
        release(g);
        return -1;
    }
    return 0;
}

/* The cached primitive for k, built on first use; NULL with ct_fail on an error. */
static cached_gemm *lookup(const gemm_key *k) {
    for (int i = 0; i < cache_used; i++)
        if (!memcmp(&cache[i].key, k, sizeof *k)) return &cache[i];
    if (!engine) {
        if (dnnl_check(dnnl_engine_create(&engine, dnnl_cpu, 0), "engine") < 0) return NULL;
        if (dnnl_check(dnnl_stream_create(&stream, engine, dnnl_stream_default_flags), "stream") < 0) {
            dnnl_engine_destroy(engine);
            engine = NULL;
            return NULL;
        }
    }
    cached_gemm *g;
    if (cache_used < CACHE_SIZE) {
        g = &cache[cache_used++];
    } else { /* full: replace the oldest */
        g = &cache[cache_next];
        cache_next = (cache_next + 1) % CACHE_SIZE;
    }
    release(g); /* a failed build leaves the slot zeroed: its key (M = 0) matches no call */
    return build(g, k) < 0 ? NULL : g;
}

int ct_cpu_bf16_gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const uint16_t *a, int64_t lda,
                     const uint16_t *b, int64_t ldb, bool accumulate, void *c, bool c_bf16) {
    if (!ct_cpu_bf16_gemm_available() || K <= 0 || omp_in_parallel()) return 1;
    if (M <= 0 || N <= 0) return 0;
    gemm_key k;
    memset(&k, 0, sizeof k); /* padding too: keys are compared with memcmp */
    k.trans_a = trans_a, k.trans_b = trans_b, k.accumulate = accumulate, k.c_bf16 = c_bf16;
    k.M = M, k.N = N, k.K = K, k.lda = lda, k.ldb = ldb;
    cached_gemm *g = lookup(&k);
    if (!g) return -1;
    CT_TRY(dnnl_check(dnnl_memory_set_data_handle(g->a, (void *)a), "set data"));
    CT_TRY(dnnl_check(dnnl_memory_set_data_handle(g->b, (void *)b), "set data"));
    CT_TRY(dnnl_check(dnnl_memory_set_data_handle(g->c, c), "set data"));
    dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, g->a}, {DNNL_ARG_WEIGHTS, g->b}, {DNNL_ARG_DST, g->c}};
    CT_TRY(dnnl_check(dnnl_primitive_execute(g->primitive, stream, 3, args), "matmul"));
    return dnnl_check(dnnl_stream_wait(stream), "stream wait");
}

#else

int ct_cpu_bf16_gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const uint16_t *a, int64_t lda,
                     const uint16_t *b, int64_t ldb, bool accumulate, void *c, bool c_bf16) {
    (void)trans_a, (void)trans_b, (void)M, (void)N, (void)K, (void)a, (void)lda, (void)b, (void)ldb, (void)accumulate,
        (void)c, (void)c_bf16;
    return 1;
}

#endif
