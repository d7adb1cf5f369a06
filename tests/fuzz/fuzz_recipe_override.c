/* Command-line overrides (key=value), one per input line, applied to the tiny pretraining
 * recipe, then finalized and validated. Invariant: the result prints as YAML that loads back
 * to an equal recipe. */
#include "fuzz_util.h"

#include <string.h>

#include "core/error.h"
#include "train/recipe.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ct_recipe r;
    if (ct_recipe_init(&r) != 0) return 0;
    CT_FUZZ_CHECK(ct_recipe_load_file(&r, ct_fuzz_source_path("recipes/pretrain_tiny_zh.yaml")) == 0,
                  "the tiny recipe loads");
    char *text = ct_fuzz_cstr(data, size);
    for (char *line = text, *next; line; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = '\0';
        ct_recipe_override(&r, line);
    }
    free(text);
    if (ct_recipe_finalize(&r, NULL) == 0) ct_recipe_validate(&r);
    char *yaml = ct_recipe_to_yaml(&r);
    CT_FUZZ_CHECK(yaml, "the recipe prints");
    ct_recipe back;
    CT_FUZZ_CHECK(ct_recipe_init(&back) == 0, "recipe init");
    if (ct_recipe_load_text(&back, yaml, strlen(yaml), "printed") != 0) fprintf(stderr, "%s\n", ct_last_error());
    const char *diff = ct_recipe_first_difference(&r, &back);
    if (diff) fprintf(stderr, "differs at %s\n%s\n", diff, yaml);
    CT_FUZZ_CHECK(!diff, "overridden recipe round-trips through YAML");
    ct_recipe_free(&back);
    free(yaml);
    ct_recipe_free(&r);
    return 0;
}
