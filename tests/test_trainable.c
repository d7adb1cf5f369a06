/* Trainable sets (train.trainable / train.freeze) end to end on a tiny model: a run with a frozen
 * embedding resumes bit-exactly (%a losses) and leaves the embedding bit-identical to its base;
 * frozen tensors get no gradient and no moments; a run training only the norms (~0.5%) writes a
 * checkpoint sized to what trains and resumes bit-exactly; such a checkpoint loads as the whole
 * trained model through its base; a changed base is refused naming both hashes, leaving the run
 * folder untouched; bad patterns and empty sets are refused in one line; list keys parse from
 * YAML sequences and comma-separated overrides. */
#include <ftw.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/error.h"
#include "checkpoints/hdf5_file.h"
#include "models/param_role.h"
#include "tests/ct_test.h"
#include "tests/ct_test_train.h"
#include "train/model_source.h"
#include "train/trainer.h"
#include "train/trainer_internal.h"

static char tmp[256];

/* The tiny pretraining recipe of test_trainer (model.path empty) or, with a base, intent
 * fine-tuning from it; then the overrides. */
static int resolve(ct_recipe *recipe, const char *dir, const char *base, int n_extra, char **extra) {
    static char out[512], data[4200], labels[4200], model[600];
    snprintf(out, sizeof out, "output_dir=%s", dir);
    if (base) {
        snprintf(data, sizeof data, "data.train=%s", ct_test_path("datasets/data/intent_train.jsonl"));
        snprintf(labels, sizeof labels, "data.labels=%s", ct_test_path("datasets/data/labels.json"));
        snprintf(model, sizeof model, "model.path=%s", base);
    } else {
        snprintf(data, sizeof data, "data.train=%s", ct_test_path("datasets/data/pretrain_val.txt"));
        snprintf(labels, sizeof labels, "data.labels=");
        snprintf(model, sizeof model, "model.path=");
    }
    char *all[64] = {"name=tiny", out, data, labels, model, base ? "data.format=intent" : "data.format=text",
                     base ? "tokenizer.train=false" : "tokenizer.train=true", "tokenizer.vocab_size=400",
                     "model.hidden_size=32", "model.intermediate_size=48", "model.num_layers=2", "model.num_heads=4",
                     "model.num_kv_heads=2", "model.max_seq_len=48", "model.dropout=0.1", "data.max_seq_len=48",
                     "data.batch_size=4", "data.batch_tokens=192", "data.val=", "data.test=",
                     "data.max_examples=40", "data.truncation=left", "optimizer.lr=3e-3",
                     "schedule.warmup_steps=2", "train.max_steps=6", "train.eval_every=0", "train.log_every=1",
                     "checkpoint.every=3", "checkpoint.keep_last=5", "threads=2", "seed=7"};
    int n = 31;
    for (int i = 0; i < n_extra; i++) all[n++] = extra[i];
    return ct_recipe_resolve(recipe, NULL, n, all);
}

static int run(const char *dir, const char *base, int n_extra, char **extra, recorder *rec, ct_train_result *result) {
    ct_recipe recipe;
    if (resolve(&recipe, dir, base, n_extra, extra) < 0) return -1;
    FILE *log = fopen("/dev/null", "w");
    ct_train_hooks hooks = {.stop_requested = &rec->stop, .log = log, .on_step = on_step, .user = rec};
    int rc = ct_train(&recipe, &hooks, result);
    fclose(log);
    ct_recipe_free(&recipe);
    return rc;
}

static char base_dir[300];

/* Pretrains the tiny model and saves it as an HF folder: the base of the runs below. */
static void make_base(void) {
    char pre[300];
    snprintf(pre, sizeof pre, "%s/pre", tmp);
    snprintf(base_dir, sizeof base_dir, "%s/base", tmp);
    recorder rec = {0};
    ct_train_result r;
    CHECK(run(pre, NULL, 0, NULL, &rec, &r) == 0, "pretraining: %s", ct_last_error());
    ct_llama *m = ct_llama_load(r.model_dir);
    CHECK(m && ct_llama_save(m, base_dir, r.model_dir, CT_F32) == 0, "base: %s", ct_last_error());
    ct_llama_free(m);
}

static const ct_tensor *param(const ct_llama *m, const char *name) {
    for (int i = 0; m && i < m->n_params; i++)
        if (!strcmp(m->params[i]->name, name)) return m->params[i];
    return NULL;
}

static bool same_bits(const ct_tensor *a, const ct_tensor *b) {
    return a && b && ct_nbytes(a) == ct_nbytes(b) && !memcmp(a->data, b->data, ct_nbytes(a));
}

static void check_losses(const recorder *full, const recorder *first, const recorder *second, int steps, int cut,
                         const char *what) {
    CHECK(full->last == steps && second->last == steps, "%s: runs ended at %lld and %lld", what,
          (long long)full->last, (long long)second->last);
    for (int s = 1; s <= steps; s++) {
        double got = s <= cut ? first->losses[s] : second->losses[s];
        CHECK(!memcmp(&got, &full->losses[s], sizeof got), "%s: step %d loss %a after resume, %a uninterrupted", what,
              s, got, full->losses[s]);
    }
}

#define EMBED "model.embed_tokens.weight"

static char frozen_run[300], frozen_cut[300];

static void test_frozen_embedding_resume(void) {
    snprintf(frozen_run, sizeof frozen_run, "%s/frozen_full", tmp);
    snprintf(frozen_cut, sizeof frozen_cut, "%s/frozen_cut", tmp);
    char *freeze[] = {"train.freeze=" EMBED};
    recorder full = {0}, first = {.stop_after = 3}, second = {0};
    ct_train_result r1, r2, r3;
    CHECK(run(frozen_run, base_dir, 1, freeze, &full, &r1) == 0, "frozen run: %s", ct_last_error());
    CHECK(run(frozen_cut, base_dir, 1, freeze, &first, &r2) == 0 && r2.interrupted, "interrupted: %s", ct_last_error());
    char resume[sizeof r2.checkpoint + 16];
    snprintf(resume, sizeof resume, "resume=%s", r2.checkpoint);
    CHECK(run(frozen_cut, base_dir, 2, (char *[]){freeze[0], resume}, &second, &r3) == 0, "resumed: %s",
          ct_last_error());
    check_losses(&full, &first, &second, 6, 3, "frozen embedding");
    CHECK(full.losses[6] < full.losses[1], "the loss did not fall: %g -> %g", full.losses[1], full.losses[6]);

    /* The embedding is the base's bit for bit; a trained tensor moved. */
    ct_llama *base = ct_llama_load(base_dir), *trained = ct_llama_load(r1.model_dir);
    CHECK(same_bits(param(base, EMBED), param(trained, EMBED)), "the frozen embedding changed");
    const char *q = "model.layers.0.self_attn.q_proj.weight";
    CHECK(param(base, q) && !same_bits(param(base, q), param(trained, q)), "%s did not train", q);

    /* The checkpoint holds the trainable tensors and names the base; it loads as the trained model. */
    ct_h5_reader *rd = ct_h5_open(r1.checkpoint);
    char *hash = rd ? ct_h5_get_string(rd, "/state", "base_hash") : NULL;
    CHECK(rd && !ct_h5_exists(rd, "/model", EMBED) && ct_h5_exists(rd, "/model", q) && hash &&
              !strncmp(hash, "fnv1a64:", 8),
          "checkpoint %s: embedding stored or no base_hash (%s)", r1.checkpoint, hash ? hash : "none");
    free(hash);
    ct_h5_close(rd);
    ct_model_source source;
    CHECK(ct_model_source_open(&source, r1.checkpoint) == 0, "partial checkpoint as a model: %s", ct_last_error());
    int same = 0;
    for (int i = 0; source.model && trained && i < trained->n_params; i++)
        same += same_bits(source.model->params[i], trained->params[i]);
    CHECK(trained && same == trained->n_params, "%d of %d tensors equal the trained model", same,
          trained ? trained->n_params : 0);
    if (source.tokenizer != (source.model ? source.model->tokenizer : NULL)) ct_tokenizer_free(source.tokenizer);
    ct_llama_free(source.model);
    free(source.tokenizer_dir);
    free(source.recipe_yaml);
    ct_llama_free(base);
    ct_llama_free(trained);
}

/* A frozen tensor gets no gradient and no moments; the trainable ones get both. */
static void test_no_gradient_memory(void) {
    const char *cases[] = {"train.freeze=" EMBED, "train.freeze="};
    int64_t moment_elements[2] = {0, 0};
    for (int c = 0; c < 2; c++) {
        char dir[300];
        snprintf(dir, sizeof dir, "%s/grad%d", tmp, c);
        ct_recipe recipe;
        CHECK(resolve(&recipe, dir, base_dir, 1, (char **)&cases[c]) == 0, "recipe: %s", ct_last_error());
        FILE *log = fopen("/dev/null", "w");
        ct_train_hooks hooks = {.log = log};
        ct_trainer t;
        double loss, norm;
        int64_t tokens;
        int rc = ct_trainer_setup(&t, &recipe, &hooks);
        if (rc == 0) rc = ct_trainer_step(&t, &loss, &norm, &tokens);
        CHECK(rc == 0, "%s: %s", cases[c], ct_last_error());
        const ct_tensor *embed = rc == 0 ? param(t.model, EMBED) : NULL;
        if (embed) {
            bool frozen = c == 0;
            CHECK(frozen ? !embed->grad && !embed->requires_grad : embed->grad != NULL,
                  "%s: the embedding's gradient is %p", cases[c], (void *)embed->grad);
            int with_grad = 0;
            for (int i = 0; i < t.model->n_params; i++) with_grad += t.model->params[i]->grad != NULL;
            CHECK(with_grad == t.model->n_params - frozen, "%s: %d of %d parameters have gradients", cases[c],
                  with_grad, t.model->n_params);
            for (int i = 0; i < t.optimizer->n_slots; i++) moment_elements[c] += ct_numel(t.optimizer->slots[i].m);
            CHECK(t.optimizer->n_slots == t.model->n_params - frozen, "%s: %d optimizer slots", cases[c],
                  t.optimizer->n_slots);
        }
        if (rc == 0 && c == 1)
            CHECK(moment_elements[0] == moment_elements[1] - ct_numel(embed), "moments: %lld frozen vs %lld full",
                  (long long)moment_elements[0], (long long)moment_elements[1]);
        ct_trainer_teardown(&t);
        fclose(log);
        ct_recipe_free(&recipe);
    }
}

static long long file_size(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}

/* Training only the norms (160 of 29,856 parameters): the checkpoint holds 3 copies (weights, two
 * moments) of what trains plus the same fixed part (tokenizer, recipe, config) as a full one. */
static void test_small_checkpoint(void) {
    char full_dir[300], norms_dir[300], cut_dir[300];
    snprintf(full_dir, sizeof full_dir, "%s/full_ft", tmp);
    snprintf(norms_dir, sizeof norms_dir, "%s/norms", tmp);
    snprintf(cut_dir, sizeof cut_dir, "%s/norms_cut", tmp);
    char *norms[] = {"train.trainable=*norm*", "train.max_steps=4", "checkpoint.every=2"};
    recorder rf = {0}, rn = {0}, first = {.stop_after = 2}, second = {0};
    ct_train_result full, part, r2, r3;
    CHECK(run(full_dir, base_dir, 2, (char *[]){"train.max_steps=4", "checkpoint.every=2"}, &rf, &full) == 0,
          "full fine-tune: %s", ct_last_error());
    CHECK(run(norms_dir, base_dir, 3, norms, &rn, &part) == 0, "norms: %s", ct_last_error());
    ct_llama *m = ct_llama_load(base_dir);
    int64_t total = m ? ct_llama_num_params(m) : 0, trainable = 0;
    for (int i = 0; m && i < m->n_params; i++)
        if (ct_param_role_of(m->params[i]->name) == CT_ROLE_NORM) trainable += ct_numel(m->params[i]);
    ct_llama_free(m);
    long long full_bytes = file_size(full.checkpoint), part_bytes = file_size(part.checkpoint);
    long long fixed = full_bytes - 3 * 4 * total, payload = 3 * 4 * trainable;
    /* 8 KB: per-dataset headers of the full file's extra tensors are counted in `fixed`, and the
     * base reference adds a few hundred bytes. */
    CHECK(trainable > 0 && fixed > 0 && part_bytes >= payload && part_bytes <= payload + fixed + 8192,
          "checkpoint of %lld/%lld trainable: %lld bytes, full %lld (fixed part %lld)", (long long)trainable,
          (long long)total, part_bytes, full_bytes, fixed);
    printf("checkpoint: %lld bytes training %.2f%%, %lld bytes full (%lld of it fixed)\n", part_bytes,
           100.0 * (double)trainable / (double)total, full_bytes, fixed);

    CHECK(run(cut_dir, base_dir, 3, norms, &first, &r2) == 0 && r2.interrupted, "interrupted: %s", ct_last_error());
    char resume[sizeof r2.checkpoint + 16];
    snprintf(resume, sizeof resume, "resume=%s", r2.checkpoint);
    CHECK(run(cut_dir, base_dir, 4, (char *[]){norms[0], norms[1], norms[2], resume}, &second, &r3) == 0,
          "resumed: %s", ct_last_error());
    check_losses(&rn, &first, &second, 4, 2, "norms only");
}

/* Every file's path, size and bytes, to see that a refused run wrote nothing. */
static char snap[1 << 16];
static size_t snap_used;
static int snap_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)ftw;
    if (flag != FTW_F) return 0;
    size_t len = 0;
    char *bytes = ct_test_read_file(path, &len);
    unsigned long long h = 1469598103934665603ull;
    for (size_t i = 0; bytes && i < len; i++) h = (h ^ (unsigned char)bytes[i]) * 1099511628211ull;
    free(bytes);
    snap_used += (size_t)snprintf(snap + snap_used, sizeof snap - snap_used, "%s %lld %llx\n", path,
                                  (long long)st->st_size, h);
    return 0;
}
static char *snapshot(const char *dir) {
    snap_used = 0;
    snap[0] = '\0';
    nftw(dir, snap_entry, 16, FTW_PHYS);
    return strdup(snap);
}

static int count(const char *s, const char *needle) {
    int n = 0;
    for (const char *p = s; (p = strstr(p, needle)); p += strlen(needle)) n++;
    return n;
}

/* The base changes under a run: resume and loading the checkpoint are refused naming both hashes. */
static void test_changed_base_refused(void) {
    char checkpoint[700], resume[720];
    snprintf(checkpoint, sizeof checkpoint, "%s/checkpoints/step-00000003.h5", frozen_cut);
    ct_h5_reader *rd = ct_h5_open(checkpoint);
    char *stored = rd ? ct_h5_get_string(rd, "/state", "base_hash") : NULL;
    ct_h5_close(rd);
    CHECK(stored != NULL, "no base_hash in %s", checkpoint);

    ct_llama *m = ct_llama_load(base_dir);
    ct_tensor *embed = m ? (ct_tensor *)param(m, EMBED) : NULL;
    if (embed) ((float *)embed->data)[5] += 0.5f;
    char tokenizer_dir[400];
    snprintf(tokenizer_dir, sizeof tokenizer_dir, "%s/pre/model", tmp);
    CHECK(embed && ct_llama_save(m, base_dir, tokenizer_dir, CT_F32) == 0, "changing the base: %s", ct_last_error());
    ct_llama_free(m);

    char *before = snapshot(frozen_cut);
    snprintf(resume, sizeof resume, "resume=%s", checkpoint);
    recorder rec = {0};
    ct_train_result r;
    int rc = run(frozen_cut, base_dir, 2, (char *[]){"train.freeze=" EMBED, resume}, &rec, &r);
    const char *msg = ct_last_error();
    CHECK(rc < 0 && stored && strstr(msg, stored) && count(msg, "fnv1a64:") == 2 && !strchr(msg, '\n'),
          "resume over a changed base: %s", msg);
    char *after = snapshot(frozen_cut);
    CHECK(before && after && !strcmp(before, after), "the refused resume changed %s", frozen_cut);
    free(before);
    free(after);

    ct_model_source source;
    rc = ct_model_source_open(&source, checkpoint);
    msg = ct_last_error();
    CHECK(rc < 0 && stored && strstr(msg, stored) && count(msg, "fnv1a64:") == 2 && strstr(msg, base_dir),
          "loading over a changed base: %s", msg);
    free(stored);
}

static void test_bad_sets_refused(void) {
    char dir[300];
    snprintf(dir, sizeof dir, "%s/bad", tmp);
    recorder rec = {0};
    ct_train_result r;
    CHECK(run(dir, base_dir, 1, (char *[]){"train.trainable=model.embed_token.weight"}, &rec, &r) < 0 &&
              strstr(ct_last_error(), "train.trainable: pattern 'model.embed_token.weight' matches no parameter") &&
              strstr(ct_last_error(), "'" EMBED "'") && !strchr(ct_last_error(), '\n'),
          "message: %s", ct_last_error());
    CHECK(run(dir, base_dir, 1, (char *[]){"train.freeze=*.q_prj.weight"}, &rec, &r) < 0 &&
              strstr(ct_last_error(), "train.freeze: pattern '*.q_prj.weight'"),
          "message: %s", ct_last_error());
    CHECK(run(dir, base_dir, 1, (char *[]){"train.freeze=*"}, &rec, &r) < 0 &&
              strstr(ct_last_error(), "leave no parameter to train") && !strchr(ct_last_error(), '\n'),
          "message: %s", ct_last_error());
    struct stat st;
    CHECK(stat(dir, &st) != 0, "a refused run left %s", dir);
}

static void test_list_keys(void) {
    ct_recipe r;
    ct_recipe_init(&r);
    const char *yaml = "train:\n  trainable: [\"*norm*\", lm_head.weight]\n  freeze:\n    - model.norm.weight\n";
    CHECK(ct_recipe_load_text(&r, yaml, strlen(yaml), "t.yaml") == 0, "%s", ct_last_error());
    CHECK(!strcmp(r.train.trainable, "*norm*,lm_head.weight") && !strcmp(r.train.freeze, "model.norm.weight"),
          "lists: '%s' '%s'", r.train.trainable, r.train.freeze);
    CHECK(ct_recipe_override(&r, "train.freeze=a*, b?") == 0 && !strcmp(r.train.freeze, "a*,b?"), "override: '%s'",
          r.train.freeze);
    char *text = ct_recipe_to_yaml(&r);
    CHECK(text && strstr(text, "  trainable: [\"*norm*\", \"lm_head.weight\"]\n") && strstr(text, "freeze: [\"a*\", \"b?\"]"),
          "dump: %s", text ? text : "");
    ct_recipe back;
    ct_recipe_init(&back);
    CHECK(text && ct_recipe_load_text(&back, text, strlen(text), "dump") == 0 && !ct_recipe_first_difference(&r, &back),
          "round trip: %s", ct_last_error());
    free(text);
    CHECK(ct_recipe_override(&back, "train.freeze=a,,b") < 0 && strstr(ct_last_error(), "empty item"), "%s",
          ct_last_error());
    const char *nested = "train:\n  freeze: [[a]]\n";
    CHECK(ct_recipe_load_text(&back, nested, strlen(nested), "n.yaml") < 0 && strstr(ct_last_error(), "n.yaml:2:"),
          "%s", ct_last_error());
    ct_recipe_free(&back);
    ct_recipe_free(&r);
    CHECK(ct_param_role_of("model.layers.0.self_attn.q_proj.lora_A.weight") == CT_ROLE_ADAPTER &&
              ct_param_role_of("model.layers.0.self_attn.q_proj.bias") == CT_ROLE_BIAS &&
              ct_param_role_of("model.layers.1.input_layernorm.weight") == CT_ROLE_NORM &&
              ct_param_role_of("lm_head.weight") == CT_ROLE_EMBEDDING &&
              ct_param_role_of("model.layers.1.mlp.down_proj.weight") == CT_ROLE_PROJECTION,
          "parameter roles");
}

/* LoRA: a run interrupted at step 3 and resumed from its adapter-only checkpoint gives the
 * uninterrupted losses bit for bit (adapter dropout included, every linear adapted, lm_head
 * trained fully); the same run with gradient checkpointing gives the same losses bit for bit;
 * the base never changes; the checkpoint holds the adapters and lm_head, not the base; the run
 * writes its PEFT adapter and a merged model/, and the checkpoint loads as a model again. */
static void test_lora_resume(void) {
    char full_dir[300], cut_dir[300], ckpt_dir[300];
    snprintf(full_dir, sizeof full_dir, "%s/lora_full", tmp);
    snprintf(cut_dir, sizeof cut_dir, "%s/lora_cut", tmp);
    snprintf(ckpt_dir, sizeof ckpt_dir, "%s/lora_ckpt", tmp);
    char *lora[] = {"lora.enabled=true", "lora.r=4", "lora.alpha=8", "lora.dropout=0.1", "lora.target_modules=all-linear",
                    "lora.modules_to_save=lm_head", "lora.init=gaussian"};
    recorder full = {0}, first = {.stop_after = 3}, second = {0}, ckpt = {0};
    ct_train_result r1, r2, r3, r4;
    CHECK(run(full_dir, base_dir, 7, lora, &full, &r1) == 0, "LoRA run: %s", ct_last_error());
    CHECK(run(cut_dir, base_dir, 7, lora, &first, &r2) == 0 && r2.interrupted, "interrupted LoRA run: %s",
          ct_last_error());
    char resume[sizeof r2.checkpoint + 16];
    snprintf(resume, sizeof resume, "resume=%s", r2.checkpoint);
    char *resumed[8];
    memcpy(resumed, lora, sizeof lora);
    resumed[7] = resume;
    CHECK(run(cut_dir, base_dir, 8, resumed, &second, &r3) == 0, "resumed LoRA run: %s", ct_last_error());
    check_losses(&full, &first, &second, 6, 3, "LoRA resume");
    char *checkpointed[8];
    memcpy(checkpointed, lora, sizeof lora);
    checkpointed[7] = "model.gradient_checkpointing=true";
    CHECK(run(ckpt_dir, base_dir, 8, checkpointed, &ckpt, &r4) == 0, "checkpointed LoRA run: %s", ct_last_error());
    int same = 0;
    for (int s = 1; s <= 6; s++) same += !memcmp(&ckpt.losses[s], &full.losses[s], sizeof(double));
    CHECK(same == 6, "gradient checkpointing changed %d of 6 LoRA losses", 6 - same);

    ct_llama *base = ct_llama_load(base_dir);
    ct_model_source src;
    CHECK(ct_model_source_open(&src, r1.checkpoint) == 0, "the LoRA checkpoint as a model: %s", ct_last_error());
    const ct_tensor *trained_q = param(src.model, "model.layers.0.self_attn.q_proj.weight");
    CHECK(same_bits(trained_q, param(base, "model.layers.0.self_attn.q_proj.weight")) &&
              param(src.model, "model.layers.1.mlp.down_proj.lora_B.weight") != NULL,
          "the base weights stay as loaded and the adapters come back");
    const long long ckpt_bytes = file_size(r1.checkpoint);
    ct_h5_reader *rd = ct_h5_open(r1.checkpoint);
    CHECK(rd && !ct_h5_exists(rd, "/model", "model.layers.0.self_attn.q_proj.weight") &&
              !ct_h5_exists(rd, "/model", EMBED) && ct_h5_exists(rd, "/model", "model.layers.0.self_attn.q_proj.lora_A.weight") &&
              ct_h5_exists(rd, "/model", "lm_head.weight"),
          "the checkpoint holds the adapters and lm_head, not the base");
    ct_h5_close(rd);
    char adapter[400], merged[400];
    snprintf(adapter, sizeof adapter, "%s/adapter/adapter_model.safetensors", full_dir);
    snprintf(merged, sizeof merged, "%s/model/model.safetensors", full_dir);
    CHECK(file_size(adapter) > 0 && file_size(merged) > 0, "the run wrote adapter/ and a merged model/");
    printf("lora     resume bit-exact over 6 steps, checkpointing bit-exact, checkpoint %lld bytes, adapter/ and "
           "model/ written\n", ckpt_bytes);
    if (src.tokenizer != src.model->tokenizer) ct_tokenizer_free(src.tokenizer);
    ct_llama_free(src.model);
    free(src.tokenizer_dir);
    free(src.recipe_yaml);
    ct_llama_free(base);
}

int main(void) {
    if (!ct_test_temp_dir(tmp, sizeof tmp, "trainable")) return 1;
    test_list_keys();
    make_base();
    test_frozen_embedding_resume();
    test_no_gradient_memory();
    test_small_checkpoint();
    test_bad_sets_refused();
    test_lora_resume();
    test_changed_base_refused(); /* last: it changes the base */
    ct_test_remove_tree(tmp);
    return ct_test_finish("test_trainable");
}
