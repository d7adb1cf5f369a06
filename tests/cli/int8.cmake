# ctune export --format int8-safetensors and the INT8 folder in eval and generate: the qwen2
# fixture exported (seconds), evaluated with --reference (KL against its f32 source), generated
# from; a missing output parent and a model folder without tokenizer files fail in one line and
# leave nothing on disk.
set(ct_int8_dir ${CMAKE_BINARY_DIR}/cli_int8)
add_test(NAME cli_int8_export
         COMMAND sh -c "rm -rf ${ct_int8_dir} && mkdir -p ${ct_int8_dir} && \"$0\" export --model tests/fixtures/models/qwen2 --format int8-safetensors --out ${ct_int8_dir}/q && \"$0\" export --model tests/fixtures/models/qwen2 --format int8-safetensors --out ${ct_int8_dir}/q | grep -q '^int8 \\[21/21\\] model.layers.2.mlp.down_proj.weight' && grep -q '\"format\":.*\"pack-quantized\"' ${ct_int8_dir}/q/config.json && test -f ${ct_int8_dir}/q/tokenizer.json && grep -q rel_rms ${ct_int8_dir}/q/quantization_report.json && test $(ls ${ct_int8_dir} | wc -l) -eq 1" $<TARGET_FILE:ctune>
         WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
set_tests_properties(cli_int8_export PROPERTIES FIXTURES_SETUP ct_int8)
# eval loads the INT8 folder and reports KL(f32 || int8); it is small and not zero.
add_test(NAME cli_int8_eval_reference_kl
         COMMAND sh -c "out=$(\"$0\" eval --model ${ct_int8_dir}/q --data datasets/data/intent_test.jsonl --max-examples 3 --reference tests/fixtures/models/qwen2) && echo \"$out\" | grep '^kl_reference' && echo \"$out\" | grep -Eq '^kl_reference [1-9][.][0-9]+e-0[4-9] '" $<TARGET_FILE:ctune>
         WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
add_test(NAME cli_int8_generate
         COMMAND ctune generate --model ${ct_int8_dir}/q --prompt hi --max-new-tokens 2
         WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
# A reference of another vocabulary is refused in one line.
add_test(NAME cli_int8_reference_other_vocab
         COMMAND sh -c "out=$(\"$0\" eval --model ${ct_int8_dir}/q --data datasets/data/intent_test.jsonl --format intent --max-examples 1 --reference tests/fixtures/models/llama 2>&1 >/dev/null); test $? -eq 1 && echo \"$out\" && test $(echo \"$out\" | wc -l) -eq 1 && echo \"$out\" | grep -q 'vocabulary'" $<TARGET_FILE:ctune>
         WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
set_tests_properties(cli_int8_eval_reference_kl cli_int8_generate cli_int8_reference_other_vocab
                     PROPERTIES FIXTURES_REQUIRED ct_int8)

add_test(NAME cli_int8_missing_parent
         COMMAND sh -c "rm -rf ${ct_int8_dir}_np && mkdir ${ct_int8_dir}_np && out=$(\"$0\" export --model tests/fixtures/models/qwen2 --format int8-safetensors --out ${ct_int8_dir}_np/no/such 2>&1); test $? -eq 1 && echo \"$out\" && test $(echo \"$out\" | wc -l) -eq 1 && echo \"$out\" | grep -q 'does not exist' && test -z \"$(ls ${ct_int8_dir}_np)\"" $<TARGET_FILE:ctune>
         WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
add_test(NAME cli_int8_no_tokenizer
         COMMAND sh -c "d=${ct_int8_dir}_nt && rm -rf $d && mkdir -p $d/model && cp tests/fixtures/models/qwen2/config.json tests/fixtures/models/qwen2/model.safetensors $d/model/ && out=$(\"$0\" export --model $d/model --format int8-safetensors --out $d/out 2>&1); test $? -eq 1 && echo \"$out\" && test $(echo \"$out\" | wc -l) -eq 1 && echo \"$out\" | grep -q 'no tokenizer files' && test \"$(ls $d)\" = model" $<TARGET_FILE:ctune>
         WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
add_test(NAME cli_int8_rejects_dtype
         COMMAND sh -c "\"$0\" export --model x --format int8-safetensors --out y --dtype bf16 2>&1; test $? -eq 2" $<TARGET_FILE:ctune>)
