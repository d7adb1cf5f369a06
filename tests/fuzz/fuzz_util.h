/* Shared by the fuzz harnesses (tests/fuzz/fuzz_*.c, docs/reliability.md): each harness defines
 * LLVMFuzzerTestOneInput, which libFuzzer calls (CT_FUZZ=ON, clang) and which replay.c calls on
 * every file of a corpus (the normal build, gcc, under ctest). Readers that take a path get the
 * input written to a file of a private temporary folder first.
 *
 * A harness checks only what must hold for every input: no crash, no leak, no undefined
 * behaviour, and the documented invariants it names (an encoding decodes back to its text, a
 * recipe printed as YAML loads back). A broken invariant aborts, so the fuzzer keeps the input. */
#ifndef CT_FUZZ_UTIL_H
#define CT_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The source tree (fixtures the harnesses load once): CT_SOURCE_DIR from the environment, else
 * the folder CMake configured. */
const char *ct_fuzz_source_dir(void);
/* source_dir/rel in a static buffer. */
const char *ct_fuzz_source_path(const char *rel);
/* A private folder for this process, made on first use and removed at exit. */
const char *ct_fuzz_temp_dir(void);
/* Writes data to temp_dir/name and returns the path (a static buffer per name slot). */
const char *ct_fuzz_write(const char *name, const uint8_t *data, size_t size);
/* data as a NUL-terminated copy the caller frees. */
char *ct_fuzz_cstr(const uint8_t *data, size_t size);
/* Stops the process when an invariant fails: the fuzzer records the input. */
#define CT_FUZZ_CHECK(cond, what)                                                        \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            fprintf(stderr, "fuzz invariant broken: %s (%s:%d)\n", what, __FILE__, __LINE__); \
            abort();                                                                     \
        }                                                                                \
    } while (0)

#endif
