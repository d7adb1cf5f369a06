# The command line's contract, as ctest cases: included by CMakeLists.txt with every other
# tests/cli/*.cmake (one file per command or concern).
# The command line's contract: help and version succeed; unknown commands and flags exit 2.
add_test(NAME cli_help COMMAND ctune --help)
add_test(NAME cli_version COMMAND ctune --version)
set_tests_properties(cli_version PROPERTIES PASS_REGULAR_EXPRESSION "^ctune ${PROJECT_VERSION}")
foreach(bad_args "frobnicate" "--frobnicate" "demo;--frobnicate" "demo;--steps;x")
  string(REPLACE ";" "_" bad_name "${bad_args}")
  add_test(NAME cli_rejects_${bad_name}
           COMMAND sh -c "\"$0\" \"$@\" 2>&1; test $? -eq 2" $<TARGET_FILE:ctune> ${bad_args})
endforeach()
add_test(NAME cli_demo COMMAND ctune demo --steps 120)
set_tests_properties(cli_demo PROPERTIES PASS_REGULAR_EXPRESSION "bit-identical")
# ctune train: help lists keys; usage errors exit 2; an unknown key exits 1 with a suggestion;
# SIGINT saves a checkpoint and the run resumes from it. ctune eval on a fixture model.
add_test(NAME cli_train_help COMMAND ctune train --help WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
set_tests_properties(cli_train_help PROPERTIES PASS_REGULAR_EXPRESSION "optimizer\\.lr")
foreach(bad_args "train" "train;--frobnicate" "train;recipes/pretrain_tiny_zh.yaml;lr" "eval;--model;x" "eval;--model;x;--data;y;--max-examples;0")
  string(REPLACE ";" "_" bad_name "${bad_args}")
  string(REPLACE "/" "_" bad_name "${bad_name}")
  add_test(NAME cli_rejects_${bad_name}
           COMMAND sh -c "\"$0\" \"$@\" 2>&1; test $? -eq 2" $<TARGET_FILE:ctune> ${bad_args}
           WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
endforeach()
add_test(NAME cli_train_unknown_key
         COMMAND sh -c "out=$(\"$0\" train recipes/pretrain_tiny_zh.yaml optimizer.lrr=1 2>&1); test $? -eq 1 && echo \"$out\" | grep \"did you mean 'optimizer.lr'\"" $<TARGET_FILE:ctune>
         WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
add_test(NAME cli_train_bad_line
         COMMAND sh -c "out=$(\"$0\" train recipes/full_finetune_intent_zh.yaml data.train=tests/fixtures/data/bad_line.jsonl output_dir=/nonexistent/run 2>&1); test $? -eq 1 && echo \"$out\" | grep \"bad_line.jsonl:2: \"" $<TARGET_FILE:ctune>
         WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
add_test(NAME cli_train_fp16_refused
         COMMAND sh -c "rm -rf ${CMAKE_BINARY_DIR}/cli_train_fp16; out=$(\"$0\" train recipes/pretrain_tiny_zh.yaml train.precision=fp16 output_dir=${CMAKE_BINARY_DIR}/cli_train_fp16 2>&1); test $? -eq 1 && echo \"$out\" | grep -q '^ctune train: train.precision=fp16: .*loss scaling' && test ! -e ${CMAKE_BINARY_DIR}/cli_train_fp16" $<TARGET_FILE:ctune>
         WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
# Without a usable GPU: one line, exit 1, no run folder. With one: a step trains.
add_test(NAME cli_train_cuda_refused_or_runs
         COMMAND sh -c "rm -rf ${CMAKE_BINARY_DIR}/cli_train_cuda; out=$(\"$0\" train recipes/pretrain_tiny_zh.yaml device=cuda train.max_steps=1 output_dir=${CMAKE_BINARY_DIR}/cli_train_cuda 2>&1); rc=$?; test $rc -eq 0 || { test $rc -eq 1 && echo \"$out\" | grep -q '^ctune train: device=cuda: .*; set device=cpu$' && test ! -e ${CMAKE_BINARY_DIR}/cli_train_cuda; }" $<TARGET_FILE:ctune>
         WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
add_test(NAME cli_train_interrupt COMMAND sh ${CMAKE_SOURCE_DIR}/tests/cli_train_interrupt.sh $<TARGET_FILE:ctune>
         WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
add_test(NAME cli_eval COMMAND ctune eval --model tests/fixtures/models/qwen2 --data datasets/data/intent_test.jsonl
         --max-examples 7 WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
set_tests_properties(cli_eval PROPERTIES PASS_REGULAR_EXPRESSION "(^|\n)accuracy [0-9.]+\n.*\njson \\{")
add_test(NAME cli_eval_missing_model
         COMMAND sh -c "\"$0\" eval --model /nonexistent --data datasets/data/intent_test.jsonl 2>&1; test $? -eq 1" $<TARGET_FILE:ctune>
         WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
# ctune generate on a fixture model folder prints new ids; bad flags exit 2, a missing folder 1.
# tests/test_generate.c runs the command too (its ids against transformers'), so it needs it built.
add_test(NAME cli_generate COMMAND ctune generate --model tests/fixtures/models/qwen2 --prompt hello
         --max-new-tokens 4 --ids WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
set_tests_properties(cli_generate PROPERTIES PASS_REGULAR_EXPRESSION "(^|\n)[0-9]+ [0-9]+ [0-9]+ [0-9]+\n")
foreach(bad_args "generate;--prompt;hi" "generate;--model;x;--prompt;hi;--top-p;2" "generate;--model;x;--prompt;hi;--temperature;-1")
  string(REPLACE ";" "_" bad_name "${bad_args}")
  add_test(NAME cli_rejects_${bad_name}
           COMMAND sh -c "\"$0\" \"$@\" 2>&1; test $? -eq 2" $<TARGET_FILE:ctune> ${bad_args})
endforeach()
add_test(NAME cli_generate_missing_model
         COMMAND sh -c "\"$0\" generate --model /nonexistent --prompt hi 2>&1; test $? -eq 1" $<TARGET_FILE:ctune>)
if(TARGET test_generate)
  add_dependencies(test_generate ctune)
endif()
