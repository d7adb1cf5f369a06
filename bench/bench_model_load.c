/* Loading a Qwen2.5-0.5B-shaped model (494M parameters, tied embedding, q/k/v biases) from a
 * bf16 Hugging Face folder into f32 parameters with ct_llama_load: config.json parsing, header
 * validation, the name and shape check, allocation and bf16->f32 conversion. The folder is
 * written first by ct_llama_save from a randomly initialized model (ct_llama_init_random), so
 * the file is in the page cache, as it is when a model was just downloaded or used. Prints one
 * JSON line; the goal is under 2 s. The folder is deleted afterwards.
 *
 *     OMP_NUM_THREADS=2 ./build/bench_model_load [repeats] [tokenizer folder]
 *
 * With a tokenizer folder (e.g. a Qwen tokenizer.json + tokenizer_config.json), its files are
 * saved beside the weights and the timed load includes loading and checking the tokenizer. */
#include <omp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/error.h"
#include "bench/bench_blas.h"
#include "models/llama.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Qwen2.5-0.5B's published shapes. */
static void qwen25_05b(ct_llama_config *c) {
    ct_llama_config_defaults(c, CT_ARCH_QWEN2);
    c->hidden_size = 896;
    c->intermediate_size = 4864;
    c->num_hidden_layers = 24;
    c->num_attention_heads = 14;
    c->num_key_value_heads = 2;
    c->head_dim = 64;
    c->vocab_size = 151936;
    c->max_position_embeddings = 32768;
    c->rope_theta = 1000000.0;
    c->tie_word_embeddings = true;
    c->torch_dtype = CT_BF16;
}

static void remove_folder(const char *dir) {
    const char *files[] = {"model.safetensors", "config.json", "tokenizer.json", "tokenizer_config.json"};
    char path[512];
    for (int i = 0; i < 4; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        unlink(path);
    }
    rmdir(dir);
}

static int fail(const char *dir) {
    fprintf(stderr, "bench_model_load: %s\n", ct_last_error());
    remove_folder(dir);
    return 1;
}

int main(int argc, char **argv) {
    bench_blas_start(argv);
    int repeats = argc > 1 ? atoi(argv[1]) : 3;
    const char *tokenizer_dir = argc > 2 ? argv[2] : NULL;
    if (repeats < 1) repeats = 1;
    char dir[] = "/tmp/ctune_bench_model_XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    ct_llama_config cfg;
    qwen25_05b(&cfg);
    double t0 = now();
    ct_llama *m = ct_llama_new(&cfg);
    if (!m) return fail(dir);
    ct_llama_init_random(m, 42);
    double init_s = now() - t0;
    const long long params = (long long)ct_llama_num_params(m);
    t0 = now();
    int rc = ct_llama_save(m, dir, tokenizer_dir, CT_BF16);
    double save_s = now() - t0;
    /* A probe to compare after loading: bf16 rounding of one weight. */
    const float probe_before = ((const float *)m->layers[11].up_proj.weight->data)[12345];
    ct_llama_free(m);
    if (rc < 0) return fail(dir);

    char path[512];
    struct stat sb;
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    const double file_gb = stat(path, &sb) == 0 ? (double)sb.st_size / 1e9 : 0;
    double best = 1e30, worst = 0;
    float probe_after = 0;
    bool with_tokenizer = false;
    for (int r = 0; r < repeats; r++) {
        t0 = now();
        ct_llama *loaded = ct_llama_load(dir);
        double s = now() - t0;
        if (!loaded) return fail(dir);
        probe_after = ((const float *)loaded->layers[11].up_proj.weight->data)[12345];
        with_tokenizer = loaded->tokenizer != NULL;
        ct_llama_free(loaded);
        best = s < best ? s : best;
        worst = s > worst ? s : worst;
    }
    remove_folder(dir);
    printf("{\"bench\": \"model_load\", \"model\": \"Qwen2.5-0.5B shapes, bf16 file -> f32\", \"params\": %lld, "
           "\"file_gb\": %.3f, \"init_seconds\": %.3f, \"save_seconds\": %.3f, \"load_seconds_best\": %.3f, "
           "\"load_seconds_worst\": %.3f, \"with_tokenizer\": %s, \"repeats\": %d, \"threads\": %d, "
           "\"probe_rel_diff\": %.2g, %s}\n",
           params, file_gb, init_s, save_s, best, worst, with_tokenizer ? "true" : "false", repeats, omp_get_max_threads(),
           (double)((probe_after - probe_before) / probe_before), bench_blas_json());
    return 0;
}
