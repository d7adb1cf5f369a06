/* `ctune export`: a trained model in the format another program reads.
 *   --format peft  the LoRA adapter as PEFT files (adapter_config.json + adapter_model.safetensors)
 *   --format hf    a Hugging Face folder with any adapter merged in (W + s·B·A, f64, rounded once)
 *   --format gguf       a GGUF file for llama.cpp (--type f32|f16|bf16|q8_0), adapters merged
 *   --format gguf-lora  the LoRA adapter as a llama.cpp LoRA GGUF (cli/export_gguf.c) */
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/commands.h"
#include "cli/signal_thread.h"
#include "cli/export_folder.h"
#include "cli/export_gguf.h"
#include "cli/export_int8.h"
#include "core/error.h"
#include "core/interrupt_cleanup.h"
#include "core/paths.h"
#include "models/llama_lora.h"
#include "models/llama_peft.h"
#include "train/lora_setup.h"
#include "train/model_task.h"
#include "train/model_source.h"
#include "train/recipe.h"
#include "train/trainer.h"

#define CMD "export"

typedef struct {
    const char *model, *adapter, *format, *out, *dtype, *for_runtime, *type;
} export_args;

static int export_usage(void) {
    printf("usage: ctune export --model PATH --format peft|hf|int8-safetensors|gguf|gguf-lora --out PATH [options]\n\n"
           "Writes a trained model in a format other programs read.\n"
           "  --model PATH     a ctune run folder, an .h5 checkpoint, or a Hugging Face folder\n"
           "  --adapter DIR    a PEFT LoRA adapter applied on --model first\n"
           "  --format peft    the LoRA adapter as PEFT files (adapter_config.json,\n"
           "                   adapter_model.safetensors) for peft, vLLM and transformers; from a\n"
           "                   LoRA run (its newest checkpoint), a LoRA checkpoint, or --adapter\n"
           "  --format hf      a Hugging Face folder (config.json, model.safetensors, tokenizer files)\n"
           "                   with any adapter merged into its base\n"
           "  --format int8-safetensors\n"
           "                   weight-only INT8 (one scale per output channel; embeddings, norms and\n"
           "                   lm_head unquantized) in compressed-tensors' pack-quantized layout, for\n"
           "                   vLLM and transformers; also loads in ctune eval and generate\n"
           "  --format gguf    one GGUF file for llama.cpp (model, tokenizer, chat template, ctune's task),\n"
           "                   with any adapter merged; --type f32 (default), f16, bf16 or q8_0; a\n"
           "                   per-tensor error report is printed and written to PATH.report.json\n"
           "  --format gguf-lora  the LoRA adapter (--adapter DIR, or a LoRA run's adapter/) as a\n"
           "                   llama.cpp LoRA GGUF for llama-server --lora\n"
           "  --out PATH       the folder (peft, hf, int8-safetensors) or file (gguf) to write; written\n"
           "                   whole or not at all\n"
           "  --type T         gguf: f32, f16, bf16 or q8_0\n"
           "  --dtype D        hf: f32 (default) or bf16\n"
           "  --for vllm       peft: refuse what vLLM's LoRA loader cannot serve (modules_to_save)\n");
    return 0;
}

static int export_parse(int argc, char **argv, export_args *a) {
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) return export_usage(), 1;
        const char **slot = !strcmp(arg, "--model")     ? &a->model
                            : !strcmp(arg, "--adapter") ? &a->adapter
                            : !strcmp(arg, "--format")  ? &a->format
                            : !strcmp(arg, "--out")     ? &a->out
                            : !strcmp(arg, "--dtype")   ? &a->dtype
                            : !strcmp(arg, "--for")     ? &a->for_runtime
                            : !strcmp(arg, "--type")    ? &a->type
                                                        : NULL;
        if (!slot) return ct_usage_error(CMD, "unknown option '%s'", arg);
        if (i + 1 >= argc) return ct_usage_error(CMD, "%s needs a value", arg);
        *slot = argv[++i];
    }
    if (!a->model || !a->format || !a->out) return ct_usage_error(CMD, "--model, --format and --out are required");
    const bool gguf = !strcmp(a->format, "gguf") || !strcmp(a->format, "gguf-lora");
    if (strcmp(a->format, "peft") && strcmp(a->format, "hf") && strcmp(a->format, "int8-safetensors") && !gguf)
        return ct_usage_error(CMD, "--format %s: ctune exports peft, hf, int8-safetensors, gguf and gguf-lora",
                              a->format);
    if (a->type && strcmp(a->format, "gguf")) return ct_usage_error(CMD, "--type is for --format gguf");
    if (a->type && ct_export_gguf_check_type(a->type) < 0) return ct_usage_error(CMD, "%s", ct_last_error());
    if (gguf && a->dtype) return ct_usage_error(CMD, "--dtype is for --format hf; gguf takes --type");
    if (a->dtype && strcmp(a->dtype, "f32") && strcmp(a->dtype, "bf16"))
        return ct_usage_error(CMD, "--dtype %s: f32 or bf16", a->dtype);
    if (a->dtype && strcmp(a->format, "hf")) return ct_usage_error(CMD, "--dtype is for --format hf");
    if (a->for_runtime && (strcmp(a->for_runtime, "vllm") || strcmp(a->format, "peft")))
        return ct_usage_error(CMD, "--for %s: only --format peft --for vllm is known", a->for_runtime);
    return 0;
}

/* The model to export from. A LoRA run folder's model/ is merged: its adapters are in its newest
 * checkpoint, so PEFT export from a run folder reads that. */
static int open_source(const export_args *a, ct_model_source *src) {
    if (!strcmp(a->format, "peft") && !a->adapter && ct_is_dir(a->model)) {
        int found = ct_model_source_open_newest_checkpoint(src, a->model, "the run's newest checkpoint");
        if (found != 0) return found < 0 ? -1 : 0;
    }
    return ct_model_source_open(src, a->model);
}

/* The LoRA settings the adapters were trained with (the source's recipe), for the PEFT config. */
static int source_recipe(const ct_model_source *src, ct_recipe *r) {
    CT_TRY(ct_recipe_init(r));
    if (src->recipe_yaml && ct_recipe_load_text(r, src->recipe_yaml, strlen(src->recipe_yaml), src->loaded_from) < 0) {
        ct_recipe_free(r);
        return -1;
    }
    return 0;
}

typedef int (*export_fn)(const export_args *a, ct_model_source *src, const char *dir);

/* A folder format written into a temporary folder beside --out and renamed to it at the end
 * (cli/export_folder.h): a failure leaves no partial folder. */
static int export_staged(const export_args *a, ct_model_source *src, export_fn write) {
    char *tmp = ct_export_folder_begin(a->out);
    if (!tmp) return -1;
    int rc = write(a, src, tmp);
    if (rc == 0) rc = ct_export_folder_commit(tmp, a->out);
    if (rc < 0) ct_export_folder_abort(tmp);
    else free(tmp);
    return rc;
}

static int export_peft(const export_args *a, ct_model_source *src, const char *dir) {
    if (ct_llama_lora_count(src->model) == 0)
        return ct_fail("%s holds no LoRA adapter (a merged or full model); export it with --format hf, or give the "
                       "LoRA run's checkpoint or --adapter",
                       src->loaded_from);
    if (a->for_runtime && ct_llama_lora_has_dora(src->model))
        return ct_fail("--for vllm: the adapter is DoRA (use_dora), which vLLM's LoRA loader does not serve; export "
                       "--format hf (merged) for vLLM");
    ct_recipe r;
    CT_TRY(source_recipe(src, &r));
    if (!r.lora.enabled) { /* an --adapter on a plain model: its own config */
        ct_recipe_free(&r);
        ct_peft_config cfg;
        CT_TRY(ct_peft_config_read(a->adapter, &cfg));
        if (a->for_runtime && cfg.n_modules_to_save) {
            ct_peft_config_free(&cfg);
            return ct_fail("--for vllm: %s trains modules_to_save fully, which vLLM does not load; export --format hf "
                           "(merged) for vLLM", a->adapter);
        }
        ct_peft_item *items = NULL;
        int n = 0;
        int rc = ct_llama_peft_items(src->model, NULL, 0, &items, &n);
        if (rc == 0) rc = ct_peft_adapter_write(dir, &cfg, items, n);
        free(items);
        ct_peft_config_free(&cfg);
        return rc;
    }
    /* vLLM's LoRA loader takes A/B pairs only: a fully trained lm_head or embedding would be
     * dropped there without a word, so the export says so instead. */
    int rc = a->for_runtime && r.lora.modules_to_save[0]
                 ? ct_fail("--for vllm: the adapter trains lora.modules_to_save=%s fully, which vLLM does not load; "
                           "export --format hf (merged) for vLLM, or train without modules_to_save",
                           r.lora.modules_to_save)
                 : ct_lora_write_adapter(src->model, &r, dir);
    ct_recipe_free(&r);
    return rc;
}

/* What a trained run's model/ folder carries for serving (system prompt, labels, chat template),
 * when the source knows its training recipe; a plain HF folder has none to add. */
static int write_serving(const ct_model_source *src, const char *out) {
    if (!src->recipe_yaml) return 0;
    ct_recipe r;
    CT_TRY(source_recipe(src, &r));
    ct_chat_template tpl;
    int rc = ct_chat_template_load(&tpl, src->tokenizer ? src->tokenizer : src->model->tokenizer, out);
    if (rc == 0) rc = ct_model_folder_write_serving(out, &r, tpl.format);
    ct_recipe_free(&r);
    return rc;
}

static int export_hf(const export_args *a, ct_model_source *src, const char *dir) {
    if (ct_llama_lora_count(src->model)) CT_TRY(ct_llama_merge_lora(src->model));
    const ct_dtype dtype = a->dtype && !strcmp(a->dtype, "bf16") ? CT_BF16 : CT_F32;
    char scratch[CT_EXPORT_SCRATCH_SIZE] = "";
    const char *tokenizer_dir = src->tokenizer_dir;
    if (!tokenizer_dir) { /* a checkpoint carries its tokenizer files inside: take them out */
        CT_TRY(ct_export_scratch_make(scratch, sizeof scratch, "the tokenizer files"));
        tokenizer_dir = scratch;
    }
    int rc = tokenizer_dir == scratch ? ct_trainer_extract_tokenizer(src->loaded_from, scratch) : 0;
    if (rc == 0) rc = ct_llama_save(src->model, dir, tokenizer_dir, dtype);
    if (rc == 0) rc = write_serving(src, dir);
    ct_export_scratch_remove(scratch);
    return rc;
}

/* ---- SIGINT and SIGTERM ----
 * Ctrl-C or a TERM stops an export at once, as the default action would, but first removes the
 * temporary file or folder beside --out and the scratch folders (core/interrupt_cleanup.h), and
 * says whether --out was reached. Everything the handler needs is prepared before it is
 * installed: it makes only async-signal-safe calls. */

static struct {
    const char *out;
    bool existed;            /* --out existed before the export ... */
    dev_t dev;               /* ... as this file or folder */
    ino_t ino;
    char unchanged[4200];    /* the line when --out is as it was */
    char written[4200];      /* the line when the export had already renamed its output into place */
    atomic_flag cleaning;    /* a second signal, on another thread, waits for the first one's exit */
    bool installed[2];       /* the handler is installed for interrupt_signals[i] */
} interrupt = {.cleaning = ATOMIC_FLAG_INIT};

static const int interrupt_signals[2] = {SIGINT, SIGTERM};

/* --out is another file or folder than before: the export's rename happened. */
static bool out_replaced(void) {
    struct stat now;
    if (stat(interrupt.out, &now) != 0) return false;
    return !interrupt.existed || now.st_ino != interrupt.ino || now.st_dev != interrupt.dev;
}

static void on_interrupt(int sig) {
    int saved = errno;
    if (ct_cleanup_defer(sig)) { /* --out is being swapped: raised again when that is done */
        errno = saved;
        return;
    }
    if (atomic_flag_test_and_set(&interrupt.cleaning))
        for (;;) pause();
    /* This runs on the signal thread (cli/signal_thread.h): the export itself is stopped first,
     * so that it writes nothing more while its temporaries go. */
    ct_signal_thread_freeze_main();
    ct_cleanup_remove_all();
    const char *line = out_replaced() ? interrupt.written : interrupt.unchanged;
    ssize_t ignored = write(STDERR_FILENO, line, strlen(line));
    (void)ignored;
    /* the conventional death by the signal (exit status 128 + its number), once this returns */
    struct sigaction fallback = {.sa_handler = SIG_DFL};
    sigemptyset(&fallback.sa_mask);
    sigaction(sig, &fallback, NULL);
    raise(sig);
    errno = saved;
}

static void catch_interrupts(const char *out) {
    struct stat before;
    interrupt.out = out;
    interrupt.existed = stat(out, &before) == 0;
    interrupt.dev = interrupt.existed ? before.st_dev : 0;
    interrupt.ino = interrupt.existed ? before.st_ino : 0;
    /* a path too long for the line: the line without it */
    if (snprintf(interrupt.unchanged, sizeof interrupt.unchanged,
                 "ctune " CMD ": interrupted; nothing was written to %s (temporary files removed)\n",
                 out) >= (int)sizeof interrupt.unchanged)
        snprintf(interrupt.unchanged, sizeof interrupt.unchanged,
                 "ctune " CMD ": interrupted; nothing was written to --out (temporary files removed)\n");
    if (snprintf(interrupt.written, sizeof interrupt.written,
                 "ctune " CMD ": interrupted after %s was written whole (temporary files removed)\n",
                 out) >= (int)sizeof interrupt.written)
        snprintf(interrupt.written, sizeof interrupt.written,
                 "ctune " CMD ": interrupted after --out was written whole (temporary files removed)\n");
    struct sigaction action = {.sa_handler = on_interrupt, .sa_flags = SA_RESTART};
    sigemptyset(&action.sa_mask);
    /* one signal at a time on this thread: a TERM during the cleanup of an INT waits */
    sigaddset(&action.sa_mask, SIGINT);
    sigaddset(&action.sa_mask, SIGTERM);
    /* Only over the default action: a signal ignored from the start (a background job of a
     * script, nohup) stays ignored, and one already caught (`ctune run`, which calls this command
     * in-process and stops between stages) stays with its handler. */
    for (int i = 0; i < 2; i++) {
        struct sigaction inherited;
        interrupt.installed[i] = sigaction(interrupt_signals[i], NULL, &inherited) == 0 &&
                                 !(inherited.sa_flags & SA_SIGINFO) && inherited.sa_handler == SIG_DFL &&
                                 sigaction(interrupt_signals[i], &action, NULL) == 0;
    }
}

/* The export is over: back to the default action where the handler was installed. */
static void release_interrupts(void) {
    struct sigaction fallback = {.sa_handler = SIG_DFL};
    sigemptyset(&fallback.sa_mask);
    for (int i = 0; i < 2; i++)
        if (interrupt.installed[i]) sigaction(interrupt_signals[i], &fallback, NULL);
}

static int failed(void) {
    fprintf(stderr, "ctune " CMD ": %s\n", ct_last_error());
    return 1;
}

int ct_cmd_export(int argc, char **argv) {
    export_args a = {0};
    int parsed = export_parse(argc, argv, &a);
    if (parsed) return parsed == 1 ? 0 : 2;
    catch_interrupts(a.out);
    ct_model_source src;
    if (open_source(&a, &src) < 0) {
        release_interrupts();
        return failed();
    }
    int rc = 0;
    if (a.adapter) {
        ct_peft_adapter *ad = ct_peft_adapter_open(a.adapter);
        rc = ad ? ct_llama_apply_peft(src.model, ad) : -1;
        ct_peft_adapter_close(ad);
    }
    if (rc == 0)
        rc = !strcmp(a.format, "peft")               ? export_staged(&a, &src, export_peft)
             : !strcmp(a.format, "int8-safetensors") ? ct_export_int8_safetensors(&src, a.out, write_serving)
             : !strcmp(a.format, "gguf")             ? ct_export_gguf(&src, a.type ? a.type : "f32", a.out)
             : !strcmp(a.format, "gguf-lora")
                 ? ct_export_gguf_lora(&src, a.adapter ? a.adapter : a.model, a.adapter != NULL, a.out)
                 : export_staged(&a, &src, export_hf);
    if (rc == 0) printf("%s: %s written from %s\n", a.format, a.out, src.loaded_from);
    ct_model_source_close(&src);
    release_interrupts();
    return rc < 0 ? failed() : 0;
}
