/* Comma-separated lists (core/text_list.h). */
#include "core/text_list.h"

#include <string.h>

#include "core/error.h"

int ct_list_next(const char **cursor, char *item, size_t size) {
    const char *p = *cursor;
    while (*p == ' ' || *p == '\t' || *p == ',') p++;
    if (!*p) {
        *cursor = p;
        return 0;
    }
    const char *end = strchr(p, ',');
    if (!end) end = p + strlen(p);
    size_t n = (size_t)(end - p);
    while (n && (p[n - 1] == ' ' || p[n - 1] == '\t')) n--;
    if (n >= size) return ct_fail("list item '%.40s...' is longer than %zu bytes", p, size - 1);
    memcpy(item, p, n);
    item[n] = '\0';
    *cursor = end;
    return 1;
}

bool ct_list_has(const char *list, const char *item) {
    char each[256];
    for (const char *p = list; ct_list_next(&p, each, sizeof each) == 1;)
        if (!strcmp(each, item)) return true;
    return false;
}
