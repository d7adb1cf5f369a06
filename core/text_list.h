/* Comma-separated lists: the form recipe list values take ("q_proj,v_proj"; train/recipe.c
 * trims the items and refuses empty ones when it stores them). One reader for every consumer:
 * trainable sets, LoRA targets, layers and modules_to_save. */
#ifndef CT_TEXT_LIST_H
#define CT_TEXT_LIST_H

#include <stdbool.h>
#include <stddef.h>

/* Copies the next item at *cursor (spaces around it removed, empty items skipped) into item and
 * moves the cursor past it. 1 when an item was read, 0 at the end, -1 with a message when the
 * item does not fit in size bytes. */
int ct_list_next(const char **cursor, char *item, size_t size);
/* Whether `item` is one of the list's items. */
bool ct_list_has(const char *list, const char *item);

#endif
