/* Loading a Qwen2.5-0.5B-sized bf16 checkpoint (~1 GB) into f32 tensors: open + header
 * validation + bf16->f32 conversion of every tensor, with the file in the page cache (it was just
 * written). Prints one JSON line; the target is under 2 s. The temporary file is deleted. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/error.h"
#include "core/rng.h"
#include "bench/bench_blas.h"
#include "checkpoints/safetensors.h"

#define LAYERS 24
#define HIDDEN 896
#define INTERMEDIATE 4864
#define VOCAB 151936
#define KV_DIM (2 * 64)
#define MAX_TENSORS (2 + LAYERS * 12)

typedef struct spec {
    char name[96];
    int ndim;
    int64_t shape[2];
} spec;

static int nspecs;
static spec specs[MAX_TENSORS];

static void add(const char *name, int64_t rows, int64_t cols) {
    spec *s = &specs[nspecs++];
    snprintf(s->name, sizeof s->name, "%s", name);
    s->ndim = cols ? 2 : 1;
    s->shape[0] = rows;
    s->shape[1] = cols;
}

static void build_specs(void) {
    char name[96];
    add("model.embed_tokens.weight", VOCAB, HIDDEN); /* tied with lm_head, as in Qwen2.5-0.5B */
    for (int l = 0; l < LAYERS; l++) {
        static const struct { const char *what; int64_t rows, cols; } layer[] = {
            {"self_attn.q_proj.weight", HIDDEN, HIDDEN}, {"self_attn.q_proj.bias", HIDDEN, 0},
            {"self_attn.k_proj.weight", KV_DIM, HIDDEN}, {"self_attn.k_proj.bias", KV_DIM, 0},
            {"self_attn.v_proj.weight", KV_DIM, HIDDEN}, {"self_attn.v_proj.bias", KV_DIM, 0},
            {"self_attn.o_proj.weight", HIDDEN, HIDDEN}, {"mlp.gate_proj.weight", INTERMEDIATE, HIDDEN},
            {"mlp.up_proj.weight", INTERMEDIATE, HIDDEN}, {"mlp.down_proj.weight", HIDDEN, INTERMEDIATE},
            {"input_layernorm.weight", HIDDEN, 0}, {"post_attention_layernorm.weight", HIDDEN, 0}};
        for (size_t k = 0; k < sizeof layer / sizeof layer[0]; k++) {
            snprintf(name, sizeof name, "model.layers.%d.%s", l, layer[k].what);
            add(name, layer[k].rows, layer[k].cols);
        }
    }
    add("model.norm.weight", HIDDEN, 0);
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Cheap hashed values: Box-Muller over half a billion elements would dominate the setup. */
static void fill_bf16(ct_tensor *t, uint64_t stream) {
    uint16_t *d = t->data;
    int64_t n = ct_numel(t);
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) {
        double u = (double)(ct_counter_hash(42, stream, (uint64_t)i) >> 11) / 9007199254740992.0;
        d[i] = ct_f32_to_bf16((float)((u - 0.5) * 0.04));
    }
}

int main(int argc, char **argv) {
    (void)argc;
    bench_blas_start(argv);
    build_specs();
    char path[] = "/tmp/ctune_bench_st_XXXXXX";
    int fd = mkstemp(path); /* reserves a unique name; the writer replaces it */
    if (fd < 0) {
        perror("mkstemp");
        return 1;
    }
    close(fd);

    ct_tensor **src = calloc((size_t)nspecs, sizeof *src);
    ct_st_item *items = calloc((size_t)nspecs, sizeof *items);
    int64_t params = 0;
    for (int i = 0; i < nspecs; i++) {
        src[i] = ct_tensor_new(CT_BF16, specs[i].ndim, specs[i].shape, NULL);
        if (!src[i]) {
            fprintf(stderr, "bench_safetensors_load: %s\n", ct_last_error());
            unlink(path);
            return 1;
        }
        fill_bf16(src[i], (uint64_t)i);
        items[i] = (ct_st_item){specs[i].name, src[i]};
        params += ct_numel(src[i]);
    }
    double t0 = now();
    int rc = ct_safetensors_write(path, items, nspecs, CT_BF16);
    double write_s = now() - t0;
    for (int i = 0; i < nspecs; i++) ct_tensor_free(src[i]);
    free(src);
    free(items);
    if (rc < 0) {
        fprintf(stderr, "bench_safetensors_load: %s\n", ct_last_error());
        unlink(path);
        return 1;
    }

    /* Timed: everything a model load does for these weights. */
    ct_tensor **dst = calloc((size_t)nspecs, sizeof *dst);
    t0 = now();
    ct_safetensors *st = ct_safetensors_open(path);
    double open_s = now() - t0;
    size_t file_bytes = 0;
    for (int i = 0; st && i < nspecs; i++) {
        dst[i] = ct_tensor_new(CT_F32, specs[i].ndim, specs[i].shape, specs[i].name);
        if (!dst[i] || ct_safetensors_load_into(st, specs[i].name, dst[i]) < 0) {
            rc = -1;
            break;
        }
        file_bytes += ct_safetensors_find(st, specs[i].name)->nbytes;
    }
    double load_s = now() - t0;
    if (!st) rc = -1;
    if (rc < 0) fprintf(stderr, "bench_safetensors_load: %s\n", ct_last_error());
    /* A spot check so the conversion cannot be optimized into nothing unnoticed. */
    double probe = rc == 0 ? (double)((float *)dst[nspecs / 2]->data)[12345] : 0.0;
    ct_safetensors_close(st);
    for (int i = 0; i < nspecs; i++) ct_tensor_free(dst[i]);
    free(dst);
    unlink(path);
    if (rc < 0) return 1;
    printf("{\"bench\": \"safetensors_load\", \"tensors\": %d, \"params\": %lld, \"file_gb\": %.3f, "
           "\"write_seconds\": %.3f, \"open_seconds\": %.4f, \"seconds\": %.3f, \"gb_per_s\": %.2f, "
           "\"f32_gb_per_s\": %.2f, \"threads\": %d, \"probe\": %.6g, %s}\n",
           nspecs, (long long)params, (double)file_bytes / 1e9, write_s, open_s, load_s,
           (double)file_bytes / 1e9 / load_s, (double)file_bytes * 2 / 1e9 / load_s, omp_get_max_threads(), probe, bench_blas_json());
    return 0;
}
