/* A ctune HDF5 checkpoint, opened as `ctune eval` and `ctune export` open one (model, config,
 * tokenizer and recipe inside), then walked with the reader's own calls. libhdf5 parses the
 * file's structure; ctune checks what it reads from it (docs/reliability.md). */
#include "fuzz_util.h"

#include "checkpoints/hdf5_file.h"
#include "train/model_source.h"

static void walk(const char *path) {
    ct_h5_reader *r = ct_h5_open(path);
    if (!r) return;
    int64_t step;
    double elapsed;
    ct_h5_get_int64(r, "/state", "step", &step);
    ct_h5_get_double(r, "/state", "elapsed_s", &elapsed);
    free(ct_h5_get_string(r, "/", "format"));
    free(ct_h5_get_string(r, "/state", "recipe"));
    char **names = NULL;
    int n = ct_h5_list_tensors(r, "/model", &names);
    for (int i = 0; i < n && i < 8; i++) {
        ct_h5_tensor_info info;
        if (ct_h5_tensor_info_of(r, "/model", names[i], &info) == 0) {
            ct_tensor *t = ct_h5_read_tensor(r, "/model", names[i]);
            ct_tensor_free(t);
        }
    }
    if (n > 0) ct_h5_free_names(names, n);
    int64_t blob = ct_h5_blob_size(r, "/state", "data_cursor");
    if (blob > 0 && blob < (1 << 20)) {
        void *buf = malloc((size_t)blob);
        if (buf) ct_h5_read_blob(r, "/state", "data_cursor", buf, (size_t)blob);
        free(buf);
    }
    ct_h5_close(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = ct_fuzz_write("checkpoint.h5", data, size);
    ct_model_source source;
    if (ct_model_source_open(&source, path) == 0) ct_model_source_close(&source);
    walk(path);
    return 0;
}
