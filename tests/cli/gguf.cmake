# GGUF export and loading from the command line: the serving run of eval_serving.cmake exported to
# GGUF evaluates and generates from the file alone as from its folder; the F16 fallback is
# reported; gguf-lora writes rsLoRA's folded alpha; bad inputs fail in one line and leave nothing.
set(ct_gguf_dir ${CMAKE_BINARY_DIR}/cli_gguf)
add_test(NAME cli_gguf_setup
         COMMAND sh -c "rm -rf ${ct_gguf_dir} && mkdir -p ${ct_gguf_dir} && \"$0\" export --model ${ct_serving_run} --format gguf --type f32 --out ${ct_gguf_dir}/run.f32.gguf && \"$0\" export --model ${ct_serving_run} --format gguf --type q8_0 --out ${ct_gguf_dir}/run.q8_0.gguf" $<TARGET_FILE:ctune>
         WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
set_tests_properties(cli_gguf_setup PROPERTIES FIXTURES_REQUIRED ct_serving FIXTURES_SETUP ct_gguf)

# The f32 file scores exactly as the folder it came from (ctune.task and ctune.labels carry the
# system prompt and the label set); the q8_0 file keeps its int8 weights and scores the same labels.
add_test(NAME cli_gguf_eval_like_folder
         COMMAND sh -c "summary() { \"$0\" eval --model \"$1\" --data datasets/data/intent_test.jsonl --max-examples 12 | sed -n 's/,\"model\":\"[^\"]*\"//p' | grep '^json '; }; a=$(summary ${ct_serving_run}) && b=$(summary ${ct_gguf_dir}/run.f32.gguf) && c=$(summary ${ct_gguf_dir}/run.q8_0.gguf) && echo \"$a\" && echo \"$c\" && test -n \"$a\" && test \"$a\" = \"$b\" && test -n \"$c\"" $<TARGET_FILE:ctune>
         WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
# generate on the file: the same prompt tokens (trained system prompt from the embedded template
# and task) and the same greedy ids as on the folder.
add_test(NAME cli_gguf_generate_like_folder
         COMMAND sh -c "g() { \"$0\" generate --model \"$1\" --prompt 我要退货 --max-new-tokens 4 --ids 2>&1; }; a=$(g ${ct_serving_run}/model | sed 's/in [0-9.]* s.*//') && b=$(g ${ct_gguf_dir}/run.f32.gguf | sed 's/in [0-9.]* s.*//') && echo \"$a\" && test \"$a\" = \"$b\"" $<TARGET_FILE:ctune>
         WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
set_tests_properties(cli_gguf_eval_like_folder cli_gguf_generate_like_folder PROPERTIES FIXTURES_REQUIRED ct_gguf)
# The metadata: ctune.task, the chat template with the trained system prompt, qwen2 keys.
add_test(NAME cli_gguf_metadata
         COMMAND sh -c "grep -a -q 'ctune.task' ${ct_gguf_dir}/run.q8_0.gguf && grep -a -q 'Answer with the intent name only.' ${ct_gguf_dir}/run.q8_0.gguf && grep -a -q 'qwen2.rope.freq_base' ${ct_gguf_dir}/run.q8_0.gguf && grep -q '\"f16_fallback\":\\s*true' ${ct_gguf_dir}/run.q8_0.gguf.report.json")
set_tests_properties(cli_gguf_metadata PROPERTIES FIXTURES_REQUIRED ct_gguf)

# Rows of 48 (the qwen2 fixture) cannot be Q8_0: F16, with a line saying so.
add_test(NAME cli_gguf_f16_fallback_reported
         COMMAND sh -c "mkdir -p ${ct_gguf_dir}2 && \"$0\" export --model tests/fixtures/models/qwen2 --format gguf --type q8_0 --out ${ct_gguf_dir}2/q.gguf" $<TARGET_FILE:ctune>
         WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
set_tests_properties(cli_gguf_f16_fallback_reported PROPERTIES
  PASS_REGULAR_EXPRESSION "note: blk.0.attn_q.weight: rows of 48 values are not a multiple of 32, written F16 instead of Q8_0")

# gguf-lora: rsLoRA (alpha 16, r 8) is written as alpha 16 * sqrt(8); modules_to_save is refused.
add_test(NAME cli_gguf_lora_rslora_alpha
         COMMAND sh -c "mkdir -p ${ct_gguf_dir}3 && \"$0\" export --model tests/fixtures/models/qwen2 --adapter tests/fixtures/lora/qwen2_rslora --format gguf-lora --out ${ct_gguf_dir}3/a.gguf" $<TARGET_FILE:ctune>
         WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
set_tests_properties(cli_gguf_lora_rslora_alpha PROPERTIES PASS_REGULAR_EXPRESSION "adapter.lora.alpha 45.2548")
add_test(NAME cli_gguf_lora_refuses_modules_to_save
         COMMAND sh -c "out=$(\"$0\" export --model tests/fixtures/models/qwen2 --adapter tests/fixtures/lora/qwen2_modules_to_save --format gguf-lora --out /tmp/ctune_gguf_mts.gguf 2>&1); rc=$?; echo \"$out\"; test $rc -eq 1 && test $(echo \"$out\" | wc -l) -eq 1 && echo \"$out\" | grep -q 'modules_to_save' && test ! -e /tmp/ctune_gguf_mts.gguf" $<TARGET_FILE:ctune>
         WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})

# One-line errors, exit 1, nothing written: a missing output folder, an architecture GGUF export
# does not express, a truncated file given to eval.
add_test(NAME cli_gguf_missing_out_folder
         COMMAND sh -c "out=$(\"$0\" export --model tests/fixtures/models/llama --format gguf --out /nonexistent/dir/x.gguf 2>&1); rc=$?; echo \"$out\"; test $rc -eq 1 && test $(echo \"$out\" | wc -l) -eq 1 && echo \"$out\" | grep -q '/nonexistent/dir does not exist'" $<TARGET_FILE:ctune>
         WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
add_test(NAME cli_gguf_refuses_mistral
         COMMAND sh -c "d=${ct_gguf_dir}4; rm -rf $d && mkdir -p $d && out=$(\"$0\" export --model tests/fixtures/models/mistral --format gguf --type q8_0 --out $d/m.gguf 2>&1); rc=$?; echo \"$out\"; test $rc -eq 1 && test $(echo \"$out\" | wc -l) -eq 1 && echo \"$out\" | grep -q 'supports llama, qwen2 and qwen3' && test -z \"$(ls -A $d)\"" $<TARGET_FILE:ctune>
         WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
add_test(NAME cli_gguf_no_tokenizer
         COMMAND sh -c "d=${ct_gguf_dir}5; rm -rf $d && mkdir -p $d/m && cp tests/fixtures/models/qwen3/config.json tests/fixtures/models/qwen3/model.safetensors $d/m && out=$(\"$0\" export --model $d/m --format gguf --out $d/m.gguf 2>&1); rc=$?; echo \"$out\"; test $rc -eq 1 && test $(echo \"$out\" | wc -l) -eq 1 && echo \"$out\" | grep -q 'no tokenizer files' && test ! -e $d/m.gguf" $<TARGET_FILE:ctune>
         WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
add_test(NAME cli_gguf_eval_truncated
         COMMAND sh -c "head -c 5000 ${ct_gguf_dir}/run.f32.gguf > ${ct_gguf_dir}/cut.gguf && out=$(\"$0\" eval --model ${ct_gguf_dir}/cut.gguf --data datasets/data/intent_test.jsonl 2>&1); rc=$?; echo \"$out\"; test $rc -eq 1 && test $(echo \"$out\" | wc -l) -eq 1 && echo \"$out\" | grep -q 'not a valid GGUF file'" $<TARGET_FILE:ctune>
         WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
set_tests_properties(cli_gguf_eval_truncated PROPERTIES FIXTURES_REQUIRED ct_gguf)
add_test(NAME cli_gguf_rejects_bad_type
         COMMAND sh -c "\"$0\" export --model tests/fixtures/models/llama --format gguf --type q4_0 --out /tmp/x.gguf 2>&1; test $? -eq 2" $<TARGET_FILE:ctune>
         WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
# DoRA and per-module alphas cannot be a llama.cpp LoRA: refused by name, nothing written.
foreach(ct_gguf_bad "use_dora|s/\\(.use_dora.\\): false/\\1: true/" "alpha_pattern|s/\\(.alpha_pattern.\\): {}/\\1: {\\x22q_proj\\x22: 4}/")
  string(REPLACE "|" ";" ct_gguf_bad "${ct_gguf_bad}")
  list(GET ct_gguf_bad 0 ct_gguf_key)
  list(GET ct_gguf_bad 1 ct_gguf_sed)
  add_test(NAME cli_gguf_lora_refuses_${ct_gguf_key}
           COMMAND sh -c "d=${ct_gguf_dir}_${ct_gguf_key}; rm -rf $d && mkdir -p $d && cp -r tests/fixtures/lora/llama_qv $d/a && sed -i \"$1\" $d/a/adapter_config.json && grep -q \"$2\" $d/a/adapter_config.json && out=$(\"$0\" export --model tests/fixtures/models/llama --adapter $d/a --format gguf-lora --out $d/x.gguf 2>&1); rc=$?; echo \"$out\"; test $rc -eq 1 && test $(echo \"$out\" | wc -l) -eq 1 && echo \"$out\" | grep -q ${ct_gguf_key} && test ! -e $d/x.gguf" $<TARGET_FILE:ctune> "${ct_gguf_sed}" "${ct_gguf_key}.: [t{]"
           WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
endforeach()
# A GGUF file is not a training start point (int8 weights, task files in a scratch folder).
add_test(NAME cli_gguf_not_trainable
         COMMAND sh -c "out=$(\"$0\" train recipes/full_finetune_intent_zh.yaml model.path=${ct_gguf_dir}/run.f32.gguf tokenizer.path= train.max_steps=1 output_dir=${ct_gguf_dir}/train 2>&1); rc=$?; echo \"$out\"; test $rc -eq 1 && echo \"$out\" | grep -q 'a GGUF file is for ctune eval' && test ! -e ${ct_gguf_dir}/train/model" $<TARGET_FILE:ctune>
         WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
set_tests_properties(cli_gguf_not_trainable PROPERTIES FIXTURES_REQUIRED ct_gguf)
