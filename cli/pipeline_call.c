/* What the stages share below the stage logic: a command's entry function called in-process with
 * its output in the stage's log, and the hash of the files a stage wrote. */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/pipeline.h"
#include "core/error.h"
#include "core/paths.h"

/* The last non-empty line of a file (a command's one-line error), into out. */
static void last_line(const char *path, char *out, size_t size) {
    out[0] = '\0';
    FILE *f = fopen(path, "r");
    if (!f) return;
    char line[1024];
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = '\0';
        if (line[0] && strlen(line) < size) memcpy(out, line, strlen(line) + 1);
    }
    fclose(f);
}

int ct_pipeline_call(ct_command_fn fn, const char *log, int argc, char **argv) {
    return ct_pipeline_call_capture(fn, log, NULL, argc, argv);
}

int ct_pipeline_call_capture(ct_command_fn fn, const char *log, const char *out, int argc, char **argv) {
    fflush(stdout);
    fflush(stderr);
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
    int out_fd = out ? open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644) : dup(fd);
    if (fd < 0 || out_fd < 0) {
        if (fd >= 0) close(fd);
        if (out_fd >= 0) close(out_fd);
        ct_fail("cannot open %s", fd < 0 ? log : out);
        return 1;
    }
    int saved_out = dup(STDOUT_FILENO), saved_err = dup(STDERR_FILENO);
    if (saved_out < 0 || saved_err < 0 || dup2(out_fd, STDOUT_FILENO) < 0 || dup2(fd, STDERR_FILENO) < 0) {
        close(fd);
        close(out_fd);
        ct_fail("cannot send the output of ctune %s to %s", argv[0], log);
        return 1;
    }
    close(fd);
    close(out_fd);
    int rc = fn(argc, argv);
    fflush(stdout);
    fflush(stderr);
    dup2(saved_out, STDOUT_FILENO);
    dup2(saved_err, STDERR_FILENO);
    close(saved_out);
    close(saved_err);
    if (rc != 0) {
        char line[1024];
        last_line(log, line, sizeof line);
        ct_fail("%s (log: %s)", line[0] ? line : "failed without a message", log);
    }
    return rc;
}

/* ---- hashing ---------------------------------------------------------------------------- */

uint64_t ct_pipeline_hash_bytes(uint64_t hash, const void *data, size_t n) {
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) hash = (hash ^ p[i]) * 1099511628211ull;
    return hash;
}

static int hash_file(const char *path, uint64_t *hash) {
    FILE *f = fopen(path, "rb");
    if (!f) return ct_fail("%s: cannot read it to hash it", path);
    unsigned char buf[1 << 16];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) *hash = ct_pipeline_hash_bytes(*hash, buf, n);
    int bad = ferror(f);
    fclose(f);
    return bad ? ct_fail("%s: read error while hashing it", path) : 0;
}

static int by_name(const struct dirent **a, const struct dirent **b) { return strcmp((*a)->d_name, (*b)->d_name); }

/* The stage's own record and log are not among its outputs. */
static int is_output(const struct dirent *e) {
    return strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && strcmp(e->d_name, "stage.json") &&
           strcmp(e->d_name, "stage.log") && !strstr(e->d_name, ".tmp.");
}

static int hash_tree(const char *path, const char *relative, uint64_t *hash) {
    struct stat st;
    if (lstat(path, &st) != 0) return ct_fail("%s: not found", path);
    *hash = ct_pipeline_hash_bytes(*hash, relative, strlen(relative) + 1);
    if (S_ISREG(st.st_mode)) return hash_file(path, hash);
    if (!S_ISDIR(st.st_mode)) return 0;
    struct dirent **entries;
    int n = scandir(path, &entries, is_output, by_name);
    if (n < 0) return ct_fail("%s: cannot list it", path);
    int rc = 0;
    for (int i = 0; i < n; i++) {
        if (rc == 0) {
            char *child = ct_path_join(path, entries[i]->d_name), *rel = ct_path_join(relative, entries[i]->d_name);
            rc = child && rel ? hash_tree(child, rel, hash) : -1;
            free(child);
            free(rel);
        }
        free(entries[i]);
    }
    free(entries);
    return rc;
}

int ct_pipeline_hash_tree(const char *path, uint64_t *hash) { return hash_tree(path, ".", hash); }
