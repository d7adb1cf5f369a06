/* What a model folder carries besides its weights so that it serves and evaluates exactly as its
 * run did, without the run's recipe.yaml (docs/formats.md, "A model folder"):
 *
 *   ctune_task.json        the data format, system prompt, loss mode, sequence length and scoring
 *                          rule of the training recipe, and the name of the label set file
 *   labels.json            the label set the model was trained on (intent formats), byte for byte
 *   tokenizer_config.json  its chat_template renders what ctune trained on, with the system
 *                          prompt as the default system message (ct_chat_template_jinja)
 *
 * The trainer writes them into runs/NAME/model after the weights; `ctune eval`, `ctune generate`
 * and `ctune template` read them from any folder that has them. */
#ifndef CT_MODEL_TASK_H
#define CT_MODEL_TASK_H

#include <stdbool.h>
#include <stdint.h>

#include "datasets/examples.h"
#include "datasets/tokenizer.h"
#include "train/recipe.h"

#define CT_MODEL_TASK_FILE "ctune_task.json"
#define CT_MODEL_LABELS_FILE "labels.json"

typedef struct {
    ct_data_format format;
    char *system_prompt;     /* "" = none */
    char *labels;            /* the label set's path (dir/labels.json), or NULL for a task without one */
    ct_chat_mask_mode loss_on;
    int64_t max_seq_len;     /* the training sequence length */
    bool length_normalized;  /* eval.length_normalized */
} ct_model_task;

/* The task of a training recipe (labels: the recipe's data.labels path, or NULL). */
int ct_model_task_from_recipe(ct_model_task *task, const ct_recipe *recipe);
/* Reads dir/ctune_task.json. *found is false (and 0 returned) when the folder has none; a file
 * that is there but malformed fails naming it and the key. */
int ct_model_task_load(const char *dir, ct_model_task *task, bool *found);
/* Writes dir/ctune_task.json and, when task->labels is set, copies that file to dir/labels.json
 * (the file the task then names). Each file is replaced atomically. */
int ct_model_task_save(const char *dir, const ct_model_task *task);
void ct_model_task_free(ct_model_task *task);

/* Everything a trained model folder needs for serving: the task file, the label set and the chat
 * template with the recipe's system prompt as its default (`format`: the template trained with). */
int ct_model_folder_write_serving(const char *dir, const ct_recipe *recipe, ct_chat_format format);

#endif
