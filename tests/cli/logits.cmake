# `ctune logits`: one "T V" line per sequence and T x V f32 values per sequence in the file
# (tests/integration/ compares the values with llama.cpp's); a bad id names the file and line.
set(ct_logits_dir ${CMAKE_BINARY_DIR}/cli_logits)
add_test(NAME cli_logits_shapes
         COMMAND sh -c "rm -rf ${ct_logits_dir} && mkdir -p ${ct_logits_dir} && printf '1 2 3\\n4 5\\n' > ${ct_logits_dir}/ids && out=$(\"$0\" logits --model tests/fixtures/models/qwen2 --ids-file ${ct_logits_dir}/ids --out ${ct_logits_dir}/l.bin) && echo \"$out\" && test \"$out\" = \"$(printf '3 320\\n2 320')\" && test $(wc -c < ${ct_logits_dir}/l.bin) -eq 6400" $<TARGET_FILE:ctune>
         WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
add_test(NAME cli_logits_bad_id
         COMMAND sh -c "mkdir -p ${ct_logits_dir}2 && printf '1 2\\n3 320\\n' > ${ct_logits_dir}2/ids && out=$(\"$0\" logits --model tests/fixtures/models/qwen2 --ids-file ${ct_logits_dir}2/ids --out ${ct_logits_dir}2/l.bin 2>&1 >/dev/null); rc=$?; echo \"$out\"; test $rc -eq 1 && test $(echo \"$out\" | wc -l) -eq 1 && echo \"$out\" | grep -q \"ids:2: '320' is not a token id in \\\\[0, 320)\"" $<TARGET_FILE:ctune>
         WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
add_test(NAME cli_logits_usage
         COMMAND sh -c "\"$0\" logits --model tests/fixtures/models/qwen2 --ids-file x; test $? -eq 2" $<TARGET_FILE:ctune>)
