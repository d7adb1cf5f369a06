/* Checkpoint directories: naming files by step, finding the newest, keeping the last N.
 *
 * A pattern such as "step-%08d.h5" is parsed here, never handed to printf, so a pattern from a
 * recipe cannot smuggle in other conversions. A file counts as a checkpoint only when its name
 * is exactly what the pattern makes of its step ("step-7.h5" is not "step-%08d.h5"'s, so two
 * spellings of one step cannot both count). "Newest" means the highest step, not the latest
 * modification time: copying a directory must not change which checkpoint resumes. */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"
#include "checkpoints/hdf5_file.h"

/* Steps have at most 18 digits: they fit an int64 without overflow checks. */
#define MAX_STEP_DIGITS 18

typedef struct step_pattern {
    char prefix[256], suffix[256];
    int width;
    bool zero_pad;
} step_pattern;

/* Appends c to buf (of size 256) at *len; false when full. */
static bool append_char(char *buf, size_t *len, char c) {
    if (*len + 1 >= 256) return false;
    buf[(*len)++] = c;
    buf[*len] = '\0';
    return true;
}

static int parse_pattern(const char *text, step_pattern *p) {
    memset(p, 0, sizeof *p);
    const char *fix = "use a file name with one integer conversion, such as step-%08d.h5";
    if (!text || !*text) return ct_fail("checkpoint pattern: empty; %s", fix);
    if (strchr(text, '/')) return ct_fail("checkpoint pattern '%s': holds a '/'; %s", text, fix);
    int conversions = 0;
    size_t prefix_len = 0, suffix_len = 0;
    for (const char *c = text; *c; c++) {
        char *part = conversions ? p->suffix : p->prefix;
        size_t *len = conversions ? &suffix_len : &prefix_len;
        if (*c != '%' || c[1] == '%') {
            if (!append_char(part, len, *c)) return ct_fail("checkpoint pattern '%s': too long; %s", text, fix);
            if (*c == '%') c++;
            continue;
        }
        c++;
        if (*c == '0') {
            p->zero_pad = true;
            c++;
        }
        while (*c >= '0' && *c <= '9' && p->width < 100) p->width = p->width * 10 + (*c++ - '0');
        if (*c == 'l') c++;
        if (*c == 'l') c++;
        if ((*c != 'd' && *c != 'i' && *c != 'u') || p->width > MAX_STEP_DIGITS || ++conversions > 1)
            return ct_fail("checkpoint pattern '%s': unsupported or repeated conversion; %s", text, fix);
    }
    if (conversions != 1) return ct_fail("checkpoint pattern '%s': no integer conversion; %s", text, fix);
    return 0;
}

static void format_name(const step_pattern *p, int64_t step, char *out, size_t size) {
    if (p->zero_pad) snprintf(out, size, "%s%0*lld%s", p->prefix, p->width, (long long)step, p->suffix);
    else snprintf(out, size, "%s%*lld%s", p->prefix, p->width, (long long)step, p->suffix);
}

/* The step of a file name that is exactly the pattern's, or -1. */
static int64_t step_of(const step_pattern *p, const char *name) {
    size_t n = strlen(name), pre = strlen(p->prefix), suf = strlen(p->suffix);
    if (n <= pre + suf || strncmp(name, p->prefix, pre) != 0 || strcmp(name + n - suf, p->suffix) != 0) return -1;
    size_t digits = n - pre - suf;
    const char *d = name + pre;
    /* A space-padded width ("%5d") puts spaces before the digits. */
    while (digits > 1 && *d == ' ') {
        d++;
        digits--;
    }
    if (digits > MAX_STEP_DIGITS) return -1;
    int64_t step = 0;
    for (size_t i = 0; i < digits; i++) {
        if (d[i] < '0' || d[i] > '9') return -1;
        step = step * 10 + (d[i] - '0');
    }
    char canonical[600];
    format_name(p, step, canonical, sizeof canonical);
    return strcmp(canonical, name) == 0 ? step : -1;
}

int ct_h5_checkpoint_path(const char *dir, const char *pattern, int64_t step, char *out, size_t size) {
    step_pattern p;
    CT_TRY(parse_pattern(pattern, &p));
    if (step < 0) return ct_fail("checkpoint pattern '%s': negative step %lld; steps start at 0", pattern, (long long)step);
    char name[600];
    format_name(&p, step, name, sizeof name);
    int n = snprintf(out, size, "%s/%s", dir && *dir ? dir : ".", name);
    if (n < 0 || (size_t)n >= size)
        return ct_fail("%s/%s: path longer than %zu bytes; use a shorter directory", dir, name, size);
    return 0;
}

typedef struct step_list {
    int64_t *steps;
    int count, capacity;
} step_list;

static int add_step(step_list *list, int64_t step) {
    if (list->count == list->capacity) {
        int capacity = list->capacity ? 2 * list->capacity : 32;
        int64_t *grown = realloc(list->steps, (size_t)capacity * sizeof *grown);
        if (!grown) return ct_fail("out of memory listing checkpoints");
        list->steps = grown;
        list->capacity = capacity;
    }
    list->steps[list->count++] = step;
    return 0;
}

/* The steps of every complete checkpoint in dir. */
static int list_steps(const char *dir, const step_pattern *p, step_list *list) {
    DIR *d = opendir(dir);
    if (!d) return ct_fail("%s: cannot list the checkpoint directory (%s); check the path", dir, strerror(errno));
    int status = 0;
    for (struct dirent *e; status == 0 && (e = readdir(d));) {
        int64_t step = step_of(p, e->d_name);
        if (step >= 0) status = add_step(list, step);
    }
    closedir(d);
    return status;
}

int ct_h5_latest_checkpoint(const char *dir, const char *pattern, char *path, size_t size, int64_t *step) {
    step_pattern p;
    CT_TRY(parse_pattern(pattern, &p));
    step_list list = {0};
    int status = list_steps(dir, &p, &list);
    int64_t best = -1;
    for (int i = 0; status == 0 && i < list.count; i++)
        if (list.steps[i] > best) best = list.steps[i];
    free(list.steps);
    if (status < 0) return -1;
    if (best < 0) return 0;
    CT_TRY(ct_h5_checkpoint_path(dir, pattern, best, path, size));
    if (step) *step = best;
    return 1;
}

static int descending(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* "<checkpoint>.tmp-<pid>" of a process that no longer exists: a writer that crashed. */
static bool stale_temporary(const step_pattern *p, const char *name) {
    const char *mark = strstr(name, ".tmp-");
    if (!mark) return false;
    const char *digits = mark + 5;
    if (!*digits || strspn(digits, "0123456789") != strlen(digits) || strlen(digits) > 9) return false;
    char base[600];
    size_t base_len = (size_t)(mark - name);
    if (base_len >= sizeof base) return false;
    memcpy(base, name, base_len);
    base[base_len] = '\0';
    if (step_of(p, base) < 0) return false;
    pid_t pid = (pid_t)atol(digits);
    return pid != getpid() && kill(pid, 0) < 0 && errno == ESRCH;
}

static int remove_file(const char *dir, const char *name, int *removed) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (unlink(path) < 0 && errno != ENOENT)
        return ct_fail("%s: cannot delete an old checkpoint (%s); check the directory's permissions", path,
                       strerror(errno));
    (*removed)++;
    return 0;
}

static int remove_stale_temporaries(const char *dir, const step_pattern *p, int *removed) {
    DIR *d = opendir(dir);
    if (!d) return ct_fail("%s: cannot list the checkpoint directory (%s); check the path", dir, strerror(errno));
    int status = 0;
    for (struct dirent *e; status == 0 && (e = readdir(d));)
        if (stale_temporary(p, e->d_name)) status = remove_file(dir, e->d_name, removed);
    closedir(d);
    return status;
}

int ct_h5_keep_last(const char *dir, const char *pattern, int keep) {
    step_pattern p;
    CT_TRY(parse_pattern(pattern, &p));
    if (keep < 1) return ct_fail("%s: keep_last %d; keep at least the newest checkpoint (1 or more)", dir, keep);
    step_list list = {0};
    int removed = 0;
    int status = list_steps(dir, &p, &list);
    if (status == 0 && list.count > keep) qsort(list.steps, (size_t)list.count, sizeof *list.steps, descending);
    for (int i = keep; status == 0 && i < list.count; i++) {
        char name[600];
        format_name(&p, list.steps[i], name, sizeof name);
        status = remove_file(dir, name, &removed);
    }
    free(list.steps);
    if (status == 0) status = remove_stale_temporaries(dir, &p, &removed);
    return status < 0 ? -1 : removed;
}
