# ctune prune: a pruned HF folder with its report; bad input is one line, exit 1, nothing
# written; --compact makes the MLP smaller; gradual pruning resumes bit for bit
# (tests/cli_prune_resume.sh).
set(prune_out ${CMAKE_BINARY_DIR}/cli_prune)
add_test(NAME cli_prune_l1
         COMMAND sh -c "rm -rf ${prune_out}_l1; \"$0\" prune --model tests/fixtures/models/qwen2 --method l1_unstructured --amount 0.3 --out ${prune_out}_l1 && test -f ${prune_out}_l1/model.safetensors && grep -q '\"global\": *0.2998' ${prune_out}_l1/prune_report.json" $<TARGET_FILE:ctune>
         WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
set_tests_properties(cli_prune_l1 PROPERTIES PASS_REGULAR_EXPRESSION "sparsity global: 0.2999 of the pruned tensors")
# The pruned folder loads and evaluates like any model folder.
add_test(NAME cli_prune_l1_evaluates
         COMMAND ctune eval --model ${prune_out}_l1 --data datasets/data/intent_test.jsonl --max-examples 3
         WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
set_tests_properties(cli_prune_l1_evaluates PROPERTIES DEPENDS cli_prune_l1 PASS_REGULAR_EXPRESSION "(^|\n)accuracy [0-9.]+\n")
# Bad input: the message names what is wrong, exit 1, no output folder.
foreach(case
    "amount;--method;l1_unstructured;--amount;1.5;outside \\[0, 1\\]"
    "count;--method;l1_unstructured;--count;5000;at most"
    "pattern;--method;l1_unstructured;--amount;0.3;--targets;*.nothing_proj.weight;matches no tensor"
    "norm;--method;l1_unstructured;--amount;0.3;--targets;model.norm.weight;explicit opt-in"
    "embedding;--method;l1_unstructured;--amount;0.3;--targets;model.embed_tokens.weight;explicit opt-in"
    "nm_order;--method;nm;--nm;3:2;N must be at most M"
    "nm_rows;--method;nm;--nm;2:5;not a multiple of M=5")
  list(GET case 0 name)
  list(REMOVE_AT case 0)
  list(POP_BACK case expect)
  string(REPLACE ";" " " flags "${case}")
  add_test(NAME cli_prune_refuses_${name}
           COMMAND sh -c "rm -rf ${prune_out}_${name}; out=$(\"$0\" prune --model tests/fixtures/models/qwen2 ${flags} --out ${prune_out}_${name} 2>&1); rc=$?; echo \"$out\"; test $rc -eq 1 && test $(echo \"$out\" | wc -l) -eq 1 && test ! -e ${prune_out}_${name}" $<TARGET_FILE:ctune>
           WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
  set_tests_properties(cli_prune_refuses_${name} PROPERTIES PASS_REGULAR_EXPRESSION "${expect}")
endforeach()
add_test(NAME cli_prune_usage COMMAND sh -c "\"$0\" prune --model x --method l1_unstructured --out y 2>&1; test $? -eq 2" $<TARGET_FILE:ctune>)
# Channel pruning made smaller: intermediate_size 96 -> 72 (25% of each layer's channels).
add_test(NAME cli_prune_compact
         COMMAND sh -c "rm -rf ${prune_out}_compact; \"$0\" prune --model tests/fixtures/models/qwen2 --method ln_structured --n 2 --mlp-channels --amount 0.25 --compact --out ${prune_out}_compact && grep -q '\"intermediate_size\": *72' ${prune_out}_compact/config.json && \"$0\" eval --model ${prune_out}_compact --data datasets/data/intent_test.jsonl --max-examples 2" $<TARGET_FILE:ctune>
         WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
set_tests_properties(cli_prune_compact PROPERTIES PASS_REGULAR_EXPRESSION "intermediate_size 96 -> 72")
add_test(NAME cli_prune_resume COMMAND sh ${CMAKE_SOURCE_DIR}/tests/cli_prune_resume.sh $<TARGET_FILE:ctune>
         WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
# A recipe's bad prune keys stop the run before anything is written.
add_test(NAME cli_prune_recipe_amount
         COMMAND sh -c "rm -rf ${prune_out}_recipe; out=$(\"$0\" train recipes/prune_intent_zh.yaml model.path=tests/fixtures/models/qwen2 prune.amount=1.2 output_dir=${prune_out}_recipe 2>&1); test $? -eq 1 && echo \"$out\" && test ! -e ${prune_out}_recipe" $<TARGET_FILE:ctune>
         WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
set_tests_properties(cli_prune_recipe_amount PROPERTIES PASS_REGULAR_EXPRESSION "prune.amount")
