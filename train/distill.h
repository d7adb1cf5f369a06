/* Knowledge distillation in a run (recipe sections distill: and student:; docs/distillation.md).
 *
 * The teacher is a second model, frozen, opened like model.path (a Hugging Face folder, a ctune
 * run or a checkpoint; distill.teacher_adapter merges a PEFT adapter into it). Each micro-batch
 * runs it once in no-grad mode in a nested scope, keeps only its final hidden states at the target
 * tokens, and hands them to ct_kd_loss with the student's, which applies both lm_heads chunk by
 * chunk (autograd/ops_transformer.h): per step
 *   loss = sum over target tokens of (1 - kd_ratio) CE + kd_ratio T^2 KL,  / the step's targets.
 * Teacher and student must share the tokenizer (compared token by token); logits columns past its
 * size (padding rows of either lm_head) are left out. */
#ifndef CT_DISTILL_H
#define CT_DISTILL_H

#include <stdio.h>

#include "autograd/ops_transformer.h"
#include "datasets/batching.h"
#include "datasets/tokenizer.h"
#include "models/llama.h"
#include "train/recipe.h"

typedef struct ct_distill ct_distill;

/* Opens distill.teacher (on the CPU) and freezes it; *out = NULL when the recipe has no teacher.
 * Errors name the key: a missing path, an unreadable model or adapter. 0 or -1. */
int ct_distill_open(ct_distill **out, const ct_recipe *r, FILE *log);
void ct_distill_free(ct_distill *d);

/* A student made of the teacher's layers `layers` (student.init_from_teacher_layers, e.g. "0,2"),
 * in that order, with the teacher's embedding, final norm and lm_head copied. NULL with a message. */
ct_llama *ct_distill_student_from_layers(const ct_distill *d, const char *layers);

/* Copies the teacher's embedding, final norm and (when neither is tied) lm_head into a new student
 * of the same hidden size and vocabulary rows (student.init_from_teacher_embedding). 0 or -1. */
int ct_distill_copy_embedding(const ct_distill *d, ct_llama *student);

/* Checks the student against the teacher before any step: the same tokenizer (the first ids that
 * differ are named), heads with at least the tokenizer's rows, a teacher that reads seq_len tokens;
 * then moves the teacher to `device`. 0 or -1. */
int ct_distill_prepare(ct_distill *d, const ct_llama *student, const ct_tokenizer *tokenizer, int64_t seq_len,
                       ct_device device);

/* The micro-batch's summed loss (a 0-d tensor in the current scope, differentiable in the
 * student's parameters): `host` is the batch as built, `batch` its copy on the student's device,
 * `args` the student's training-forward arguments. NULL with a message. */
ct_tensor *ct_distill_loss(ct_distill *d, ct_llama *student, const ct_batch *host, const ct_batch *batch,
                           const ct_llama_forward_args *args);

/* The teacher's parameter count, for the log and the recipe's comparison. */
int64_t ct_distill_teacher_params(const ct_distill *d);

#endif
