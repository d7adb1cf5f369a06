/* A YAML recipe. Invariant (train/recipe.h): a recipe that loads prints as YAML that loads
 * back to an equal recipe. */
#include "fuzz_util.h"

#include <string.h>

#include "core/error.h"
#include "train/recipe.h"

static void check_round_trip(const ct_recipe *r) {
    char *yaml = ct_recipe_to_yaml(r);
    CT_FUZZ_CHECK(yaml, "a loaded recipe prints as YAML");
    ct_recipe back;
    CT_FUZZ_CHECK(ct_recipe_init(&back) == 0, "recipe init");
    if (ct_recipe_load_text(&back, yaml, strlen(yaml), "printed") != 0) {
        fprintf(stderr, "%s\n%s\n", ct_last_error(), yaml);
        CT_FUZZ_CHECK(0, "the printed YAML loads back");
    }
    const char *diff = ct_recipe_first_difference(r, &back);
    if (diff) fprintf(stderr, "differs at %s\n%s\n", diff, yaml);
    CT_FUZZ_CHECK(!diff, "the printed YAML loads back equal");
    ct_recipe_free(&back);
    free(yaml);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ct_recipe r;
    if (ct_recipe_init(&r) != 0) return 0;
    if (ct_recipe_load_text(&r, (const char *)data, size, "recipe.yaml") == 0) {
        check_round_trip(&r);
        if (ct_recipe_finalize(&r, NULL) == 0) ct_recipe_validate(&r);
    }
    ct_recipe_free(&r);
    return 0;
}
