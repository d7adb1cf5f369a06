#include "models/param_list.h"

#include <stdlib.h>

#include "core/error.h"

int ct_param_list_push(ct_param_list *list, ct_tensor *t) {
    if (!t) return 0;
    if (list->n == list->capacity) {
        int capacity = list->capacity ? 2 * list->capacity : 16;
        ct_tensor **items = realloc(list->items, sizeof *items * (size_t)capacity);
        if (!items) return ct_fail("parameter list: out of memory growing to %d entries", capacity);
        list->items = items;
        list->capacity = capacity;
    }
    list->items[list->n++] = t;
    return 0;
}

void ct_param_list_free(ct_param_list *list) {
    free(list->items);
    *list = (ct_param_list){0};
}
