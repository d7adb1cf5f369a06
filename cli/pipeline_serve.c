/* The serve stage: llama-server serves the export stage's GGUF on a loopback port, and the test
 * split's prompts are sent to /v1/chat/completions without a system message (the chat template
 * embedded in the GGUF supplies the trained one), greedy, at most 16 new tokens: first by one
 * client, then by four at once (the server runs four slots). Recorded: the exact-label accuracy
 * of the answers, how many equal `ctune generate` on the same file (ct_cmd_generate called
 * in-process per prompt), and the latency (p50, p95) and throughput at each client count.
 * Without a llama-server the stage records a one-line note instead: never a failure. */
#include <cjson/cJSON.h>
#include <fcntl.h>
#include <glob.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "cli/http_client.h"
#include "cli/pipeline.h"
#include "core/error.h"
#include "core/paths.h"
#include "datasets/examples.h"
#include "datasets/label_set.h"

extern char **environ;

enum { SLOTS = 4, MAX_NEW_TOKENS = 16, READY_S = 120 };
/* Both programs refuse a prompt longer than the model's context: the two refusals agree. */
static const char refused[] = "<refused: longer than the model's context>";

/* serve.server, else $CT_LLAMA_SERVER, else the integration tests' build in the CI cache. */
static bool find_server(const ct_pipeline *p, char *out, size_t n) {
    const char *given = p->stage[CT_STAGE_SERVE].server[0] ? p->stage[CT_STAGE_SERVE].server : getenv("CT_LLAMA_SERVER");
    if (given && given[0]) {
        snprintf(out, n, "%s", given);
        return access(out, X_OK) == 0;
    }
    const char *cache = getenv("CT_CACHE_DIR"), *home = getenv("HOME");
    char pattern[4096];
    if (cache && cache[0]) snprintf(pattern, sizeof pattern, "%s/llama.cpp-*/build/bin/llama-server", cache);
    else snprintf(pattern, sizeof pattern, "%s/.cache/ctune-ci/llama.cpp-*/build/bin/llama-server", home ? home : "");
    glob_t g;
    bool found = false;
    if (glob(pattern, 0, NULL, &g) == 0) {
        for (size_t i = g.gl_pathc; i-- > 0 && !found;) /* the newest version sorts last */
            if (access(g.gl_pathv[i], X_OK) == 0) snprintf(out, n, "%s", g.gl_pathv[i]), found = true;
        globfree(&g);
    }
    if (!found) snprintf(out, n, "%s", pattern);
    return found;
}

/* ---- the server ---------------------------------------------------------------------------- */

static int start_server(const char *server, const char *gguf, const char *log, int port, pid_t *pid) {
    char port_text[16], ctx[16];
    snprintf(port_text, sizeof port_text, "%d", port);
    snprintf(ctx, sizeof ctx, "%d", 256 * SLOTS);
    char *argv[] = {(char *)server, "-m", (char *)gguf, "--host", "127.0.0.1", "--port", port_text, "-c", ctx,
                    "-np", "4", "-t", "2", "--jinja", "--no-ui", NULL};
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log, O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
    posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    /* The server starts with no signal blocked: ctune's threads block SIGINT and SIGTERM (they
     * go to its signal thread, cli/signal_thread.h), and a blocked mask survives exec. */
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t none;
    sigemptyset(&none);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
    int rc = posix_spawn(pid, server, &actions, &attr, argv, environ);
    posix_spawnattr_destroy(&attr);
    posix_spawn_file_actions_destroy(&actions);
    return rc == 0 ? 0 : ct_fail("%s: cannot start it: %s", server, strerror(rc));
}

static int wait_ready(pid_t pid, int port, const char *log) {
    double deadline = ct_seconds_now() + READY_S;
    while (ct_seconds_now() < deadline) {
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid)
            return ct_fail("llama-server exited before it was ready (see %s)", log);
        char *body = NULL;
        int code = 0;
        if (ct_http_request(port, "GET", "/health", NULL, 2, &code, &body) == 0 && code == 200) {
            free(body);
            return 0;
        }
        free(body);
        usleep(250 * 1000);
    }
    return ct_fail("llama-server not ready after %d s (see %s)", READY_S, log);
}

static void stop_server(pid_t pid) {
    kill(pid, SIGTERM);
    for (int i = 0; i < 100; i++) {
        if (waitpid(pid, NULL, WNOHANG) == pid) return;
        usleep(100 * 1000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

/* ---- the clients --------------------------------------------------------------------------- */

typedef struct {
    int port;
    const ct_examples *prompts;
    size_t next;         /* the next prompt to send, under lock */
    pthread_mutex_t lock;
    char **answers;      /* per prompt */
    double *latency_ms;  /* per prompt */
    long long tokens;    /* completion tokens, under lock */
    char error[512];     /* the first failure */
    volatile sig_atomic_t *stop; /* Ctrl-C: no more requests */
} load_run;

static char *chat_body(const char *text) {
    cJSON *root = cJSON_CreateObject(), *messages = cJSON_AddArrayToObject(root, "messages");
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "role", "user");
    cJSON_AddStringToObject(m, "content", text);
    cJSON_AddItemToArray(messages, m);
    cJSON_AddNumberToObject(root, "temperature", 0);
    cJSON_AddNumberToObject(root, "max_tokens", MAX_NEW_TOKENS);
    char *body = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return body;
}

/* One request: the answer text (or the refusal marker), its completion tokens. */
static int ask(int port, const char *text, char **answer, long long *tokens) {
    char *body = chat_body(text), *reply = NULL;
    int code = 0;
    int rc = body ? ct_http_request(port, "POST", "/v1/chat/completions", body, 300, &code, &reply) : ct_fail("out of memory");
    free(body);
    if (rc < 0) return -1;
    cJSON *root = cJSON_Parse(reply);
    if (code == 400 && reply && strstr(reply, "exceeds the available context size")) {
        *answer = strdup(refused);
    } else if (code != 200) {
        rc = ct_fail("llama-server answered %d: %.200s", code, reply ? reply : "");
    } else {
        cJSON *choice = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(root, "choices"), 0);
        cJSON *message = cJSON_GetObjectItemCaseSensitive(choice, "message");
        const char *content = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(message, "content"));
        cJSON *usage = cJSON_GetObjectItemCaseSensitive(root, "usage");
        cJSON *completion = cJSON_GetObjectItemCaseSensitive(usage, "completion_tokens");
        *tokens = cJSON_IsNumber(completion) ? (long long)completion->valuedouble : 0;
        *answer = content ? strdup(content) : NULL;
        if (!content) rc = ct_fail("llama-server's reply has no choices[0].message.content: %.200s", reply);
    }
    cJSON_Delete(root);
    free(reply);
    return rc;
}

static void *client(void *arg) {
    load_run *run = arg;
    for (;;) {
        pthread_mutex_lock(&run->lock);
        if (run->stop && *run->stop && !run->error[0]) snprintf(run->error, sizeof run->error, "interrupted");
        size_t i = run->error[0] ? run->prompts->count : run->next++;
        pthread_mutex_unlock(&run->lock);
        if (i >= run->prompts->count) return NULL;
        double start = ct_seconds_now();
        long long tokens = 0;
        char *answer = NULL;
        int rc = ask(run->port, run->prompts->items[i].text, &answer, &tokens);
        run->latency_ms[i] = 1000 * (ct_seconds_now() - start);
        pthread_mutex_lock(&run->lock);
        if (rc < 0 && !run->error[0]) snprintf(run->error, sizeof run->error, "%s", ct_last_error());
        run->answers[i] = answer;
        run->tokens += tokens;
        pthread_mutex_unlock(&run->lock);
    }
}

static int compare_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The nearest-rank percentile of sorted values. */
static double percentile(const double *sorted, size_t n, double q) {
    size_t rank = (size_t)ceil(q * (double)n);
    return sorted[rank ? rank - 1 : 0];
}

/* All prompts sent by `clients` threads; records the latency figures, keeps the answers. */
static int run_load(int port, const ct_examples *prompts, int clients, char **answers, cJSON *load,
                    volatile sig_atomic_t *stop) {
    load_run run = {.port = port, .prompts = prompts, .answers = answers, .stop = stop};
    run.latency_ms = calloc(prompts->count, sizeof *run.latency_ms);
    if (!run.latency_ms) return ct_fail("out of memory");
    pthread_mutex_init(&run.lock, NULL);
    pthread_t threads[SLOTS];
    double start = ct_seconds_now();
    int started = 0;
    for (; started < clients; started++)
        if (pthread_create(&threads[started], NULL, client, &run) != 0) break;
    for (int i = 0; i < started; i++) pthread_join(threads[i], NULL);
    double seconds = ct_seconds_now() - start;
    pthread_mutex_destroy(&run.lock);
    int rc = run.error[0] ? ct_fail("%s", run.error) : started < clients ? ct_fail("cannot start client threads") : 0;
    if (rc == 0) {
        qsort(run.latency_ms, prompts->count, sizeof *run.latency_ms, compare_double);
        cJSON *r = cJSON_CreateObject();
        cJSON_AddNumberToObject(r, "clients", clients);
        cJSON_AddNumberToObject(r, "requests", (double)prompts->count);
        cJSON_AddNumberToObject(r, "p50_ms", percentile(run.latency_ms, prompts->count, 0.50));
        cJSON_AddNumberToObject(r, "p95_ms", percentile(run.latency_ms, prompts->count, 0.95));
        cJSON_AddNumberToObject(r, "seconds", seconds);
        cJSON_AddNumberToObject(r, "requests_per_s", (double)prompts->count / seconds);
        cJSON_AddNumberToObject(r, "tokens_per_s", (double)run.tokens / seconds);
        cJSON_AddItemToArray(load, r);
    }
    free(run.latency_ms);
    return rc;
}

/* ---- ctune's own answers ------------------------------------------------------------------- */

/* `ctune generate --model FILE.gguf --prompt TEXT --max-new-tokens 16`, greedy, per prompt. */
static int ctune_answers(ct_stage_run *s, const char *gguf, const ct_examples *prompts, char **answers) {
    char out[4200], tokens[16];
    snprintf(out, sizeof out, "%s/generate.txt", s->dir);
    snprintf(tokens, sizeof tokens, "%d", MAX_NEW_TOKENS);
    for (size_t i = 0; i < prompts->count; i++) {
        if (s->stop_requested && *s->stop_requested) return ct_fail("interrupted");
        char *argv[] = {"generate", "--model", (char *)gguf, "--prompt", (char *)prompts->items[i].text,
                        "--max-new-tokens", tokens, NULL};
        int rc = ct_pipeline_call_capture(ct_cmd_generate, s->log, out, 7, argv);
        if (rc != 0 && strstr(ct_last_error(), "but the model's context is")) {
            answers[i] = strdup(refused);
        } else if (rc != 0) {
            return ct_fail_context("stage serve: ctune generate: ");
        } else {
            answers[i] = ct_read_file(out, 1 << 20, NULL);
            if (!answers[i]) return -1;
            size_t n = strlen(answers[i]); /* the reply, then the one newline generate ends it with */
            if (n && answers[i][n - 1] == '\n') answers[i][n - 1] = '\0';
        }
        ct_clear_error();
    }
    remove(out);
    return 0;
}

/* ---- the stage ----------------------------------------------------------------------------- */

/* Surrounding spaces are not part of an answer (the integration test strips them too). */
static bool same_label(const char *answer, const char *label) {
    while (*answer == ' ' || *answer == '\n') answer++;
    size_t n = strlen(answer);
    while (n && (answer[n - 1] == ' ' || answer[n - 1] == '\n')) n--;
    return n == strlen(label) && !memcmp(answer, label, n);
}

static void score(cJSON *m, const ct_examples *prompts, const ct_label_set *labels, char **served, char **local) {
    size_t same = 0, right = 0, local_right = 0;
    for (size_t i = 0; i < prompts->count; i++) {
        const char *label = ct_label_set_display(labels, prompts->items[i].label);
        same += served[i] && local[i] && !strcmp(served[i], local[i]);
        right += served[i] && same_label(served[i], label);
        local_right += local[i] && same_label(local[i], label);
    }
    double n = (double)prompts->count;
    cJSON_AddNumberToObject(m, "prompts", n);
    cJSON_AddNumberToObject(m, "served_accuracy", (double)right / n);
    cJSON_AddNumberToObject(m, "ctune_generate_accuracy", (double)local_right / n);
    cJSON_AddNumberToObject(m, "agreement", (double)same / n);
}

/* OUT/serve/answers.jsonl: per prompt, the label, llama-server's answer and ctune's. */
static int write_answers(const ct_stage_run *s, const ct_examples *prompts, const ct_label_set *labels, char **served,
                         char **local) {
    char path[4200];
    snprintf(path, sizeof path, "%s/answers.jsonl", s->dir);
    FILE *f = fopen(path, "w");
    if (!f) return ct_fail("cannot write %s", path);
    for (size_t i = 0; i < prompts->count; i++) {
        cJSON *row = cJSON_CreateObject();
        cJSON_AddStringToObject(row, "text", prompts->items[i].text);
        cJSON_AddStringToObject(row, "label", ct_label_set_display(labels, prompts->items[i].label));
        cJSON_AddStringToObject(row, "llama_server", served[i] ? served[i] : "");
        cJSON_AddStringToObject(row, "ctune", local[i] ? local[i] : "");
        char *line = cJSON_PrintUnformatted(row);
        if (line) fprintf(f, "%s\n", line);
        free(line);
        cJSON_Delete(row);
    }
    return fclose(f) == 0 ? 0 : ct_fail("cannot write %s", path);
}

static int serve_and_measure(ct_stage_run *s, const char *server, const char *gguf, const ct_examples *prompts,
                             const ct_label_set *labels) {
    char log[4200];
    snprintf(log, sizeof log, "%s/llama-server.log", s->dir);
    int port = ct_http_free_port();
    if (port < 0) return ct_fail("no free port on 127.0.0.1");
    pid_t pid;
    CT_TRY(start_server(server, gguf, log, port, &pid));
    char **served = calloc(prompts->count, sizeof *served), **first = calloc(prompts->count, sizeof *first);
    char **local = calloc(prompts->count, sizeof *local);
    cJSON *load = cJSON_AddArrayToObject(s->metrics, "load");
    int rc = served && first && local ? wait_ready(pid, port, log) : ct_fail("out of memory");
    if (rc == 0) rc = run_load(port, prompts, 1, first, load, s->stop_requested);
    if (rc == 0) rc = run_load(port, prompts, SLOTS, served, load, s->stop_requested);
    stop_server(pid);
    if (rc == 0) rc = ctune_answers(s, gguf, prompts, local);
    if (rc == 0) {
        score(s->metrics, prompts, labels, served, local);
        rc = write_answers(s, prompts, labels, served, local);
        size_t differ = 0; /* greedy answers should not depend on the client count */
        for (size_t i = 0; i < prompts->count; i++) differ += !first[i] || !served[i] || strcmp(first[i], served[i]);
        cJSON_AddNumberToObject(s->metrics, "answers_differing_1_vs_4_clients", (double)differ);
        cJSON_AddStringToObject(s->metrics, "server", server);
    }
    for (size_t i = 0; served && first && local && i < prompts->count; i++) free(served[i]), free(first[i]), free(local[i]);
    free(served);
    free(first);
    free(local);
    return rc;
}

int ct_stage_serve(ct_stage_run *s) {
    char server[4096], in_dir[4096], gguf[4096], labels_path[4200];
    if (!find_server(s->p, server, sizeof server)) {
        char note[4300];
        snprintf(note, sizeof note,
                 "skipped: no llama-server at %s (set serve.server or CT_LLAMA_SERVER; "
                 "tests/integration/build_llama_cpp.sh builds one)",
                 server);
        fprintf(stderr, "[%d/%d] serve: %s\n", s->stage + 1, CT_STAGE_COUNT, note);
        cJSON_AddStringToObject(s->metrics, "note", note);
        return 0;
    }
    CT_TRY(ct_stage_paths(s->p, CT_STAGE_EXPORT, in_dir, sizeof in_dir, gguf, sizeof gguf));
    /* The labels the exported model was trained on: its source's model folder. */
    char prune_dir[4096], prune_model[4096];
    CT_TRY(ct_stage_paths(s->p, CT_STAGE_PRUNE, prune_dir, sizeof prune_dir, prune_model, sizeof prune_model));
    snprintf(labels_path, sizeof labels_path, "%s/labels.json", prune_model);
    ct_label_set *labels = ct_label_set_load(labels_path);
    if (!labels) return ct_fail_context("stage serve: ");
    ct_example_options options = {.format = CT_DATA_INTENT, .labels = labels,
                                  .max_examples = (size_t)s->p->stage[CT_STAGE_SERVE].max_examples};
    ct_examples *prompts = ct_examples_load(s->p->test, &options);
    int rc = prompts ? serve_and_measure(s, server, gguf, prompts, labels) : -1;
    /* Ctrl-C reaches llama-server too (the same process group): an interruption, not a failure. */
    if (rc < 0 && s->stop_requested && *s->stop_requested) {
        ct_clear_error();
        s->interrupted = true;
        rc = 0;
    }
    ct_examples_free(prompts);
    ct_label_set_free(labels);
    if (rc < 0) return ct_fail_context("stage serve: ");
    return 0;
}
