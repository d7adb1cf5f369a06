/* Setting up a run: threads, tokenizer, model, data, optimizer, schedule, run log. Each part
 * fails with one line naming the recipe key (or file) to fix. */
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "core/error.h"
#include "core/paths.h"
#include "kernels/cpu/cpu_omp_wait.h"
#include "kernels/device.h"
#include "train/dist.h"
#include "train/distill.h"
#include "train/lora_setup.h"
#include "train/model_source.h"
#include "train/trainer_internal.h"
#include "train/prune_train.h"

/* ---- tokenizer ---- */

/* Learns into `dir` (the staging folder) what the run will keep in `final`. */
static int learn_tokenizer(ct_trainer *t, const char *dir, const char *final) {
    const ct_recipe *r = t->recipe;
    ct_bpe_trainer *trainer = ct_bpe_trainer_new();
    if (!trainer) return -1;
    ct_bpe_train_options options = {.vocab_size = r->tokenizer.vocab_size,
                                    .min_frequency = r->tokenizer.min_frequency > 0 ? r->tokenizer.min_frequency : 2};
    ct_bpe_train_report report;
    int rc = ct_bpe_trainer_add_file(trainer, r->data.train);
    if (rc == 0) rc = ct_bpe_trainer_train(trainer, &options, &report);
    if (rc == 0) rc = ct_bpe_trainer_save(trainer, dir);
    ct_bpe_trainer_free(trainer);
    if (rc < 0) return ct_fail_context("tokenizer.train: ");
    fprintf(t->log, "tokenizer: learned %d tokens from %s into %s\n", report.vocab_size, r->data.train, final);
    return 0;
}

/* tokenizer.train learns one for output_dir/tokenizer (reused when resuming; a new one waits in a
 * staging folder until the run starts); tokenizer.path loads one; otherwise the model folder's
 * own is used (set after the model is loaded). */
static int setup_tokenizer(ct_trainer *t) {
    const ct_recipe *r = t->recipe;
    if (r->tokenizer.train) {
        char *final = ct_path_join(r->output_dir, CT_RUN_TOKENIZER_DIR);
        char *file = final ? ct_path_join(final, "tokenizer.json") : NULL;
        bool reuse = file && r->resume[0] && ct_is_file(file);
        free(file);
        if (!final) return -1;
        if (reuse) {
            t->tokenizer_dir = final;
        } else {
            const char *stage = ct_run_folder_stage_tokenizer(t);
            t->tokenizer_dir = stage ? ct_strdup(stage) : NULL;
            int rc = t->tokenizer_dir ? learn_tokenizer(t, t->tokenizer_dir, final) : -1;
            free(final);
            CT_TRY(rc);
        }
    } else if (r->tokenizer.path[0]) {
        if (!ct_is_file(r->tokenizer.path) && !ct_is_dir(r->tokenizer.path))
            return ct_fail("tokenizer.path=%s does not exist; if it is another run's output (the recipes name "
                           "runs/pretrain_tiny_zh/tokenizer), run that recipe first, or point tokenizer.path at a "
                           "tokenizer.json or its folder", r->tokenizer.path);
        t->tokenizer_dir = ct_strdup(r->tokenizer.path);
        if (!t->tokenizer_dir) return -1;
        if (ct_is_file(t->tokenizer_dir)) { /* a tokenizer.json file: its folder holds the rest */
            char *slash = strrchr(t->tokenizer_dir, '/');
            if (slash) *slash = '\0';
            else strcpy(t->tokenizer_dir, ".");
        }
    } else {
        return 0;
    }
    t->tokenizer = ct_tokenizer_load(r->tokenizer.train ? t->tokenizer_dir : r->tokenizer.path);
    if (!t->tokenizer) return ct_fail_context("tokenizer: ");
    return 0;
}

/* ---- model ---- */

static const ct_llama_arch recipe_archs[] = {CT_ARCH_LLAMA, CT_ARCH_QWEN2, CT_ARCH_QWEN3, CT_ARCH_MISTRAL};

static int32_t first_token_id(const ct_tokenizer *tok, const char *const *names) {
    for (int i = 0; names[i]; i++) {
        int32_t id = ct_tokenizer_token_id(tok, names[i]);
        if (id >= 0) return id;
    }
    return -1;
}

/* A new model of the recipe's shape, its vocabulary the tokenizer's rounded up to 64 rows. */
static ct_llama *new_model(ct_trainer *t) {
    const ct_recipe_model *rm = &t->recipe->model;
    ct_llama_config cfg;
    ct_llama_config_defaults(&cfg, recipe_archs[rm->arch]);
    int64_t vocab = ct_tokenizer_vocab_size(t->tokenizer);
    cfg.vocab_size = (vocab + 63) / 64 * 64;
    cfg.hidden_size = rm->hidden_size;
    cfg.intermediate_size = rm->intermediate_size;
    cfg.num_hidden_layers = rm->num_layers;
    cfg.num_attention_heads = rm->num_heads;
    cfg.num_key_value_heads = rm->num_kv_heads;
    cfg.head_dim = rm->head_dim ? rm->head_dim : rm->hidden_size / rm->num_heads;
    cfg.max_position_embeddings = rm->max_seq_len;
    cfg.rope_theta = rm->rope_theta;
    cfg.rms_norm_eps = rm->rms_norm_eps;
    cfg.initializer_range = rm->init_std;
    cfg.tie_word_embeddings = rm->tie_word_embeddings;
    static const char *const eos_names[] = {"<|im_end|>", "<|eot_id|>", "<|endoftext|>", NULL};
    int32_t eos = first_token_id(t->tokenizer, eos_names), text_end = ct_text_end_id(t->tokenizer, -1);
    cfg.n_eos = 0;
    if (eos >= 0) cfg.eos_token_ids[cfg.n_eos++] = eos;
    if (text_end >= 0 && text_end != eos) cfg.eos_token_ids[cfg.n_eos++] = text_end;
    cfg.pad_token_id = text_end;
    ct_llama *m = ct_llama_new(&cfg);
    if (!m) {
        ct_fail_context("model (from the model.* keys): ");
        return NULL;
    }
    ct_llama_init_random(m, (uint64_t)t->recipe->seed);
    return m;
}

/* The trainable set, chosen once, on the host (the base hash reads the frozen tensors' bytes). */
static int setup_trainable(ct_trainer *t) {
    const ct_recipe *r = t->recipe;
    char trainable[1024];
    CT_TRY(ct_lora_trainable_patterns(r, t->model, trainable, sizeof trainable));
    if (ct_trainable_select(&t->trainable, t->model->params, t->model->n_params, trainable, r->train.freeze) < 0)
        return -1;
    t->partial_checkpoints = r->model.path[0] && t->trainable.n_frozen > 0;
    if (t->partial_checkpoints) {
        t->base_path = realpath(r->model.path, NULL);
        if (!t->base_path) return ct_fail("model.path=%s: cannot resolve its absolute path", r->model.path);
    }
    char line[128], hash[32];
    ct_trainable_describe(&t->trainable, line, sizeof line);
    ct_hash_format(t->trainable.base_hash, hash);
    fprintf(t->log, "parameters: %s", line);
    if (t->partial_checkpoints) fprintf(t->log, "; frozen base %s %s", t->base_path, hash);
    else if (t->trainable.n_frozen) fprintf(t->log, "; frozen at the seeded init (checkpoints keep them)");
    fputc('\n', t->log);
    return 0;
}

/* model.base_dtype's effect: how many frozen tensors are held narrow, and their bytes. */
static void log_base_dtypes(const ct_trainer *t) {
    int bf16 = 0, i8 = 0;
    int64_t bytes = 0;
    for (int i = 0; i < t->model->n_params; i++) {
        const ct_tensor *p = t->model->params[i];
        bf16 += p->dtype == CT_BF16;
        i8 += p->dtype == CT_I8;
        bytes += (int64_t)ct_nbytes(p) + (p->scale ? (int64_t)ct_nbytes(p->scale) : 0);
    }
    if (bf16 || i8)
        fprintf(t->log, "frozen base: %d tensors bf16, %d int8 (model.base_dtype=%s); parameters hold %.1f MiB\n", bf16,
                i8, (const char *[]){"auto", "f32", "bf16", "int8"}[t->recipe->model.base_dtype], (double)bytes / 1048576.0);
}

static int setup_model(ct_trainer *t) {
    const ct_recipe *r = t->recipe;
    if (r->model.path[0]) {
        ct_model_source source;
        if (ct_model_source_is_gguf(r->model.path)) /* int8 weights, task files in a scratch folder */
            return ct_fail("model.path=%s: a GGUF file is for ctune eval and generate and llama.cpp; train from the "
                           "Hugging Face folder, run folder or .h5 checkpoint it was exported from", r->model.path);
        ct_llama_load_options load;
        ct_lora_base_load_options(r, &load);
        if (ct_model_source_open_with(&source, r->model.path, &load) < 0) return ct_fail_context("model.path: ");
        t->model = source.model;
        if (!t->tokenizer) { /* the model's own tokenizer */
            if (!source.tokenizer)
                return ct_fail("model.path=%s has no tokenizer.json; set tokenizer.path", r->model.path);
            t->tokenizer = source.tokenizer;
            t->tokenizer_dir = source.tokenizer_dir;
            source.tokenizer_dir = NULL;
            if (!t->tokenizer_dir) { /* a checkpoint: its tokenizer files go beside the run */
                const char *stage = ct_run_folder_stage_tokenizer(t);
                t->tokenizer_dir = stage ? ct_strdup(stage) : NULL;
                if (!t->tokenizer_dir || ct_trainer_extract_tokenizer(source.loaded_from, t->tokenizer_dir) < 0)
                    return -1;
            }
        } else if (source.tokenizer != t->model->tokenizer) {
            ct_tokenizer_free(source.tokenizer);
        }
        free(source.tokenizer_dir);
        free(source.recipe_yaml);
        fprintf(t->log, "model: loaded %s (%s, %lld parameters)\n", source.loaded_from, source.kind,
                (long long)ct_llama_num_params(t->model));
        log_base_dtypes(t);
    } else {
        if (!t->tokenizer)
            return ct_fail("a new model needs a tokenizer: set tokenizer.train=true or tokenizer.path");
        const char *layers = r->student.init_from_teacher_layers;
        t->model = layers[0] ? ct_distill_student_from_layers(t->distill, layers) : new_model(t);
        if (!t->model) return -1;
        if (r->student.init_from_teacher_embedding) {
            CT_TRY(ct_distill_copy_embedding(t->distill, t->model));
            fprintf(t->log, "model: new student layers over the teacher's embedding and norm, %lld parameters\n",
                    (long long)ct_llama_num_params(t->model));
        }
        if (layers[0])
            fprintf(t->log, "model: student of teacher layers [%s], %lld parameters\n", layers,
                    (long long)ct_llama_num_params(t->model));
    }
    CT_TRY(ct_lora_setup_model(t->model, r, t->log));
    CT_TRY(setup_trainable(t));
    t->model->gradient_checkpointing = r->model.gradient_checkpointing;
    t->model->compute_dtype = r->train.precision == CT_RECIPE_BF16 ? CT_BF16 : CT_F32;
    CT_TRY(ct_llama_check_tokenizer(t->model, t->tokenizer));
    if (t->distill)
        CT_TRY(ct_distill_prepare(t->distill, t->model, t->tokenizer, ct_recipe_seq_len(r), r->device));
    /* Before the optimizer: its moments are allocated where the parameters are. */
    if (r->device != CT_CPU && ct_llama_to_device(t->model, r->device) < 0)
        return ct_fail_context("device=%s: ", ct_device_name(r->device));
    return 0;
}

/* ---- data ---- */

static const ct_data_format recipe_formats[] = {CT_DATA_INTENT, CT_DATA_CHAT, CT_DATA_DIALOG_INTENT, CT_DATA_TEXT};

ct_sft_options ct_trainer_sft_options(const ct_trainer *t) {
    return (ct_sft_options){.tpl = &t->chat, .labels = t->labels, .system_prompt = t->recipe->data.system_prompt,
                            .loss_on = t->recipe->data.loss_on};
}

static ct_examples *load_split(ct_trainer *t, const char *path, const char *key) {
    const ct_recipe *r = t->recipe;
    ct_example_options options = {.format = recipe_formats[r->data.format], .labels = t->labels,
                                  .skip_bad_lines = r->data.skip_bad_lines,
                                  .max_examples = (size_t)(r->data.max_examples > 0 ? r->data.max_examples : 0)};
    ct_examples *examples = ct_examples_load(path, &options);
    if (!examples) {
        ct_fail_context("%s: ", key);
        return NULL;
    }
    if (examples->skipped)
        fprintf(t->log, "%s: skipped %zu malformed line(s) of %s (data.skip_bad_lines), the first: %s\n", key,
                examples->skipped, path, examples->first_skipped ? examples->first_skipped : "?");
    return examples;
}

static int encode_split(ct_trainer *t, const ct_examples *examples, ct_seq_store *store) {
    if (examples->format == CT_DATA_TEXT)
        return ct_text_encode_chunks(t->tokenizer, examples, t->eos_id, ct_recipe_seq_len(t->recipe), store);
    ct_sft_options options = ct_trainer_sft_options(t);
    return ct_sft_encode_all(&options, examples, store);
}

/* The files first, before any tokenizer or model work: a malformed line, an unknown label or a
 * missing file stops the run within a second, naming file:line. */
static int read_data(ct_trainer *t) {
    const ct_recipe *r = t->recipe;
    ct_data_format format = recipe_formats[r->data.format];
    if (format == CT_DATA_INTENT || format == CT_DATA_DIALOG_INTENT) {
        if (!r->data.labels[0]) return ct_fail("data.format=%s needs data.labels (a labels.json file)", ct_data_format_name(format));
        t->labels = ct_label_set_load(r->data.labels);
        if (!t->labels) return ct_fail_context("data.labels: ");
    }
    t->train_examples = load_split(t, r->data.train, "data.train");
    if (!t->train_examples) return -1;
    if (r->data.val[0]) {
        t->val_examples = load_split(t, r->data.val, "data.val");
        if (!t->val_examples) return -1;
    }
    if (r->data.test[0]) {
        t->test_examples = load_split(t, r->data.test, "data.test");
        if (!t->test_examples) return -1;
    }
    return 0;
}

static int setup_data(ct_trainer *t) {
    const ct_recipe *r = t->recipe;
    const char *template_dir = t->tokenizer_dir ? t->tokenizer_dir : r->model.path;
    if (ct_chat_template_load(&t->chat, t->tokenizer, template_dir) < 0) return ct_fail_context("chat template: ");
    t->eos_id = ct_text_end_id(t->tokenizer, t->chat.end_id);
    t->pad_id = t->eos_id;
    CT_TRY(encode_split(t, t->train_examples, &t->train_store));
    if (t->val_examples) CT_TRY(encode_split(t, t->val_examples, &t->val_store));
    if (t->test_examples) CT_TRY(encode_split(t, t->test_examples, &t->test_store));
    ct_batch_options options = {.max_seq_len = ct_recipe_seq_len(r), .batch_size = r->data.batch_size,
                                .batch_tokens = r->data.batch_tokens,
                                /* sorting windows of many batches keep padding low (docs/datasets.md) */
                                .bucket_size = 16 * (int64_t)(r->data.batch_size > 64 ? r->data.batch_size : 64),
                                .truncation = (ct_truncation)r->data.truncation, .packing = r->data.packing,
                                .shuffle = r->data.shuffle, .seed = (uint64_t)r->seed, .pad_id = t->pad_id};
    t->batcher = ct_batcher_new(&t->train_store, &options);
    if (!t->batcher) return ct_fail_context("data.train=%s: ", r->data.train);
    ct_truncation_stats ts = ct_batcher_truncation_stats(t->batcher);
    ct_epoch_stats es;
    CT_TRY(ct_batcher_epoch_stats(t->batcher, &es));
    fprintf(t->log, "data: %lld sequences (%lld truncated, %lld dropped), %lld batches per epoch, padding %.1f%%\n",
            (long long)ts.sequences, (long long)ts.truncated, (long long)ts.dropped, (long long)es.batches,
            100 * ct_epoch_padding_waste(&es));
    int64_t steps_per_epoch = (es.batches + r->train.grad_accum - 1) / r->train.grad_accum;
    t->total_steps = r->train.max_steps > 0 ? r->train.max_steps : (int64_t)r->train.epochs * steps_per_epoch;
    if (t->total_steps < 1) return ct_fail("train.max_steps and train.epochs give no step to take; set train.max_steps");
    return 0;
}

/* ---- optimizer, schedule ---- */

static int setup_optimizer(ct_trainer *t) {
    const ct_recipe_optimizer *o = &t->recipe->optimizer;
    ct_adamw_hparams h = {.lr = o->lr, .beta1 = o->beta1, .beta2 = o->beta2, .eps = o->eps, .weight_decay = o->weight_decay};
    int begin, end; /* under mpirun with train.shard_optimizer: this rank's slice (ZeRO-1) */
    CT_TRY(ct_trainer_dist_setup(t));
    CT_TRY(ct_trainer_dist_owned(t, &begin, &end));
    t->optimizer = ct_adamw_new_sharded(t->trainable.params, t->trainable.n, h, begin, end);
    if (!t->optimizer) return -1;
    for (int i = 0; i < t->trainable.n; i++)
        if (!ct_llama_param_decays(t->trainable.params[i])) ct_adamw_set_weight_decay(t->optimizer, i, 0);
    static const ct_schedule_kind kinds[] = {CT_SCHEDULE_COSINE, CT_SCHEDULE_LINEAR, CT_SCHEDULE_CONSTANT};
    const ct_recipe_schedule *s = &t->recipe->schedule;
    int64_t warmup = s->warmup_steps < t->total_steps ? s->warmup_steps : t->total_steps;
    if (ct_schedule_init(&t->schedule, kinds[s->name], o->lr, warmup, t->total_steps, s->min_lr_ratio) < 0)
        return ct_fail_context("schedule: ");
    return 0;
}

/* Checked first, before any file is read or written: a run that cannot start says so at once. */
static int check_device_and_precision(const ct_recipe *r) {
    if (ct_llama_check_device(r->device) < 0) {
        char why[256]; /* ct_fail writes the buffer ct_last_error reads */
        snprintf(why, sizeof why, "%s", ct_last_error());
        return ct_fail("device=%s: %s; set device=cpu", ct_device_name(r->device), why);
    }
    if (r->train.precision == CT_RECIPE_FP16)
        return ct_fail("train.precision=fp16: fp16 training needs loss scaling, which ctune does not do; set "
                       "train.precision=bf16 (fp32's range) or fp32");
    return 0;
}

/* How the run computes, for the setup line. */
static const char *precision_name(const ct_recipe *r) {
    return r->train.precision == CT_RECIPE_BF16 ? "bf16 compute, f32 master weights" : "fp32";
}

int ct_trainer_setup(ct_trainer *t, const ct_recipe *recipe, const ct_train_hooks *hooks) {
    memset(t, 0, sizeof *t);
    t->recipe = recipe;
    t->hooks = hooks;
    t->best.step = -1;
    t->log = hooks && hooks->log ? hooks->log : stderr;
    if (ct_dist_rank() != 0) { /* under mpirun rank 0 speaks for all */
        t->quiet_log = fopen("/dev/null", "w");
        if (t->quiet_log) t->log = t->quiet_log;
    }
    CT_TRY(check_device_and_precision(recipe));
    CT_TRY(ct_run_folder_check(t));
    if (recipe->threads > 0) omp_set_num_threads(recipe->threads);
    t->threads = omp_get_max_threads();
    CT_TRY(read_data(t));
    CT_TRY(setup_tokenizer(t));
    CT_TRY(ct_distill_open(&t->distill, recipe, t->log));
    CT_TRY(setup_model(t));
    CT_TRY(setup_data(t));
    CT_TRY(setup_optimizer(t));
    CT_TRY(ct_prune_train_check(t));
    char device[256];
    fprintf(t->log, "model: %s, %lld parameters, device %s, %s, %d threads, %lld steps\n",
            ct_llama_arch_name(t->model->config.arch), (long long)ct_llama_num_params(t->model),
            ct_device_describe(recipe->device, device, sizeof device), precision_name(recipe), t->threads,
            (long long)t->total_steps);
    fprintf(t->log, "%s\n%s\n", ct_blas_describe(), ct_omp_wait_describe());
    return 0;
}

void ct_trainer_teardown(ct_trainer *t) {
    if (t->run_log) ct_run_log_close(t->run_log);
    ct_run_folder_abandon(t); /* a run that never started leaves no staged files */
    ct_batcher_free(t->batcher);
    ct_seq_store_free(&t->train_store);
    ct_seq_store_free(&t->val_store);
    ct_seq_store_free(&t->test_store);
    ct_examples_free(t->train_examples);
    ct_examples_free(t->val_examples);
    ct_examples_free(t->test_examples);
    ct_label_set_free(t->labels);
    ct_adamw_free(t->optimizer);
    ct_trainer_dist_free(t);
    if (t->quiet_log) fclose(t->quiet_log);
    ct_prune_train_free(t);
    ct_trainer_select_free(t);
    ct_trainable_free(&t->trainable);
    free(t->base_path);
    if (!t->model || t->tokenizer != t->model->tokenizer) ct_tokenizer_free(t->tokenizer);
    ct_llama_free(t->model);
    ct_distill_free(t->distill);
    free(t->tokenizer_dir);
    memset(t, 0, sizeof *t);
}
