# ctune run (docs/pipeline.md) on tests/fixtures/pipeline_tiny.yaml: every stage's outputs, the
# table and report, resume skipping, --stage, an interrupted stage started over, and the refusals
# (edited outputs, a missing input, unknown stage, recipe or key), each one line with nothing
# changed on disk (tests/cli_pipeline.sh). About 15 s on the shared 2-core machine.
add_test(NAME cli_pipeline COMMAND sh ${CMAKE_SOURCE_DIR}/tests/cli_pipeline.sh $<TARGET_FILE:ctune>
         WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
set_tests_properties(cli_pipeline PROPERTIES PASS_REGULAR_EXPRESSION "all pipeline checks passed" TIMEOUT 300)
# The usage: --help names the stages; no file is a usage error.
add_test(NAME cli_pipeline_help COMMAND ctune run --help)
set_tests_properties(cli_pipeline_help PROPERTIES PASS_REGULAR_EXPRESSION
                     "Stages: teacher, adapt, merge, distill, prune, quantize, export, serve")
add_test(NAME cli_pipeline_usage COMMAND sh -c "\"$0\" run 2>&1; test $? -eq 2" $<TARGET_FILE:ctune>)
set_tests_properties(cli_pipeline_usage PROPERTIES PASS_REGULAR_EXPRESSION "a pipeline file is needed")
# The serve stage against a real llama-server, when one is installed (else skipped): about 10 s.
add_test(NAME cli_pipeline_serve COMMAND sh ${CMAKE_SOURCE_DIR}/tests/cli_pipeline_serve.sh $<TARGET_FILE:ctune>
         WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
set_tests_properties(cli_pipeline_serve PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 300)
# A missing pipeline file: one line naming it and the reason (the message once repeated itself
# garbled), exit 1.
add_test(NAME cli_pipeline_missing_file COMMAND sh -c "\"$0\" run /nonexistent/p.yaml 2>&1; test $? -eq 1" $<TARGET_FILE:ctune>)
set_tests_properties(cli_pipeline_missing_file PROPERTIES PASS_REGULAR_EXPRESSION
                     "^ctune run: pipeline file /nonexistent/p.yaml: cannot open \\(No such file or directory\\); give one such as recipes/intent_zh_pipeline.yaml\n$")
