/* A growable list of tensor pointers: the tensors a block reads that can carry gradients, handed
 * to gradient checkpointing. It grows as layers gain tensors (adapters, masks, scales), so no
 * caller sizes a fixed array for it. Heap memory: free it with ct_param_list_free. */
#ifndef CT_PARAM_LIST_H
#define CT_PARAM_LIST_H

#include "core/tensor.h"

typedef struct {
    ct_tensor **items;
    int n, capacity;
} ct_param_list;

/* Appends t; a NULL t (an absent bias, a layer without head norms) is skipped. 0, or -1 with a
 * message when memory runs out. */
int ct_param_list_push(ct_param_list *list, ct_tensor *t);
/* Frees the items and empties the list (it can be used again). */
void ct_param_list_free(ct_param_list *list);

#endif
