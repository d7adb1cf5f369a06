/* `ctune template --model DIR --messages FILE`: the prompt ctune renders for a conversation with
 * a model folder's chat template and the system prompt the model was trained with (its
 * ctune_task.json), printed as text, ids or both. What transformers' apply_chat_template renders
 * from the folder's tokenizer_config.json must be the same bytes; tests/integration/ checks it.
 * Only the tokenizer files are read, never the weights. */
#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/paths.h"
#include "datasets/tokenizer.h"
#include "cli/commands.h"
#include "train/model_task.h"

#define CMD "template"

typedef struct {
    const char *model, *messages, *system;
    bool no_generation_prompt, ids, json;
} template_args;

static int template_usage(void) {
    printf("usage: ctune template --model DIR --messages FILE [options]\n\n"
           "Prints the prompt ctune renders for a conversation with a model folder's chat template\n"
           "(ChatML or LLaMA 3, from tokenizer_config.json). A conversation without a system message\n"
           "gets the system prompt the model was trained with (the folder's ctune_task.json), as the\n"
           "folder's Jinja chat_template does for transformers and llama.cpp. Reads only the tokenizer.\n\n"
           "  --model DIR               the model folder (tokenizer.json, tokenizer_config.json)\n"
           "  --messages FILE           a JSON list of {\"role\", \"content\"} messages ('-': standard input)\n"
           "  --system TEXT             the default system prompt instead of the folder's ('' for none)\n"
           "  --no-generation-prompt    leave out the open assistant turn at the end\n"
           "  --ids                     print the token ids on one line instead of the text\n"
           "  --json                    print {\"text\": ..., \"ids\": [...]} on one line\n");
    return 0;
}

static int template_parse(int argc, char **argv, template_args *a) {
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) return template_usage(), 1;
        bool *flag = !strcmp(arg, "--no-generation-prompt") ? &a->no_generation_prompt
                     : !strcmp(arg, "--ids")                ? &a->ids
                     : !strcmp(arg, "--json")               ? &a->json
                                                            : NULL;
        const char **text = !strcmp(arg, "--model")      ? &a->model
                            : !strcmp(arg, "--messages") ? &a->messages
                            : !strcmp(arg, "--system")   ? &a->system
                                                         : NULL;
        if (flag) *flag = true;
        else if (!text) return ct_usage_error(CMD, "unknown option '%s'", arg);
        else if (i + 1 >= argc) return ct_usage_error(CMD, "%s needs a value", arg);
        else *text = argv[++i];
    }
    if (!a->model || !a->messages) return ct_usage_error(CMD, "--model and --messages are required");
    if (a->ids && a->json) return ct_usage_error(CMD, "--ids and --json: choose one");
    return 0;
}

/* The messages of FILE, pointing into *root (the caller frees both). */
static int read_messages(const char *path, cJSON **root, ct_chat_message **messages, size_t *n) {
    size_t len;
    char *text = ct_tok_read_file(path, &len);
    if (!text) return -1;
    *root = cJSON_ParseWithLength(text, len);
    free(text);
    if (!cJSON_IsArray(*root))
        return ct_fail("%s: not a JSON list; write [{\"role\": \"user\", \"content\": \"...\"}, ...]", path);
    *n = (size_t)cJSON_GetArraySize(*root);
    *messages = ct_calloc(*n ? *n : 1, sizeof **messages, "chat messages");
    if (!*messages) return -1;
    size_t i = 0;
    for (const cJSON *m = (*root)->child; m; m = m->next, i++) {
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");
        if (!cJSON_IsString(role) || !cJSON_IsString(content))
            return ct_fail("%s: message %zu needs \"role\" and \"content\" strings", path, i);
        (*messages)[i] = (ct_chat_message){role->valuestring, content->valuestring};
    }
    return 0;
}

static int print_result(const template_args *a, const ct_tokenizer *tok, const ct_token_list *ids) {
    if (a->ids) {
        for (size_t i = 0; i < ids->len; i++) printf(i ? " %d" : "%d", ids->ids[i]);
        putchar('\n');
        return 0;
    }
    size_t len;
    char *text = ct_tokenizer_decode(tok, ids->ids, ids->len, 0, &len);
    if (!text) return -1;
    int rc = 0;
    if (!a->json) {
        fwrite(text, 1, len, stdout);
    } else {
        cJSON *out = cJSON_CreateObject();
        cJSON *list = cJSON_CreateArray();
        cJSON_AddStringToObject(out, "text", text);
        for (size_t i = 0; i < ids->len; i++) cJSON_AddItemToArray(list, cJSON_CreateNumber(ids->ids[i]));
        cJSON_AddItemToObject(out, "ids", list);
        char *line = cJSON_PrintUnformatted(out);
        if (line) printf("%s\n", line);
        else rc = ct_fail("out of memory printing the result");
        cJSON_free(line);
        cJSON_Delete(out);
    }
    free(text);
    return rc;
}

static int render(const template_args *a, const ct_tokenizer *tok, const ct_model_task *task,
                  const ct_chat_message *messages, size_t n) {
    ct_chat_template tpl;
    CT_TRY(ct_chat_template_load(&tpl, tok, a->model));
    tpl.default_system = a->system ? a->system : task->system_prompt;
    ct_chat_options options = {.add_generation_prompt = !a->no_generation_prompt};
    ct_token_list ids = {0};
    uint8_t *mask = NULL;
    int rc = ct_chat_encode(&tpl, messages, n, &options, &ids, &mask);
    if (rc == 0) rc = print_result(a, tok, &ids);
    free(mask);
    ct_token_list_free(&ids);
    return rc;
}

static int template_run(const template_args *a) {
    if (!ct_is_dir(a->model)) return ct_fail("%s: not a folder; give a model folder with tokenizer.json", a->model);
    ct_tokenizer *tok = ct_tokenizer_load(a->model);
    if (!tok) return -1;
    ct_model_task task = {0};
    bool found;
    cJSON *root = NULL;
    ct_chat_message *messages = NULL;
    size_t n = 0;
    int rc = ct_model_task_load(a->model, &task, &found);
    if (rc == 0) rc = read_messages(a->messages, &root, &messages, &n);
    if (rc == 0) rc = render(a, tok, &task, messages, n);
    free(messages);
    cJSON_Delete(root);
    ct_model_task_free(&task);
    ct_tokenizer_free(tok);
    return rc;
}

int ct_cmd_template(int argc, char **argv) {
    template_args args = {0};
    int parsed = template_parse(argc, argv, &args);
    if (parsed) return parsed == 1 ? 0 : parsed;
    if (template_run(&args) < 0) {
        fprintf(stderr, "ctune template: %s\n", ct_last_error());
        return 1;
    }
    return 0;
}
