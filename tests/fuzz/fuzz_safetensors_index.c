/* model.safetensors.index.json: the weight map naming the shard of each tensor. The input is
 * the index; the folder also holds the three real shards of the LLaMA fixture, so a map that
 * names them opens them. */
#include "fuzz_util.h"

#include <string.h>
#include <unistd.h>

#include "checkpoints/safetensors.h"

static const char *const shards[] = {"model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors",
                                     "model-00003-of-00003.safetensors"};

static void link_shards(void) {
    static int done;
    if (done) return;
    done = 1;
    for (size_t i = 0; i < sizeof shards / sizeof *shards; i++) {
        char from[512], to[4096];
        snprintf(from, sizeof from, "%s/%s", ct_fuzz_temp_dir(), shards[i]);
        snprintf(to, sizeof to, "%s", ct_fuzz_source_path("tests/fixtures/models/llama/"));
        strncat(to, shards[i], sizeof to - strlen(to) - 1);
        if (symlink(to, from) != 0) abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    link_shards();
    ct_fuzz_write("model.safetensors.index.json", data, size);
    ct_safetensors *st = ct_safetensors_open(ct_fuzz_temp_dir());
    if (st) {
        for (int i = 0; i < ct_safetensors_count(st); i++) ct_safetensors_at(st, i);
        ct_safetensors_find(st, "model.embed_tokens.weight");
    }
    ct_safetensors_close(st);
    return 0;
}
