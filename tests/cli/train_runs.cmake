# ctune train and its run folder: a second run into a folder that holds a run is refused with one
# line and changes nothing, overwrite=true replaces it, and the main job's two training stages run
# twice in a row (tests/cli_train_runs.sh); a second Ctrl-C quits at once with exit 130 without
# saving (tests/cli_train_interrupt.sh; its single Ctrl-C case is cli_train_interrupt).
foreach(mode refuse twice)
  add_test(NAME cli_train_runs_${mode} COMMAND sh ${CMAKE_SOURCE_DIR}/tests/cli_train_runs.sh $<TARGET_FILE:ctune> ${mode}
           WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
endforeach()
add_test(NAME cli_train_interrupt_twice
         COMMAND sh ${CMAKE_SOURCE_DIR}/tests/cli_train_interrupt.sh $<TARGET_FILE:ctune> twice
         WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
# data.test: the final model evaluated on the whole test file, equal to ctune eval of model/
# (tests/cli_train_test_split.sh).
add_test(NAME cli_train_test_split COMMAND sh ${CMAKE_SOURCE_DIR}/tests/cli_train_test_split.sh $<TARGET_FILE:ctune>
         WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
# A bf16 checkpoint names the path of its bf16 GEMMs; resuming on the other one is refused
# (skipped where the CPU has no AVX512-BF16).
add_test(NAME cli_bf16_resume COMMAND sh ${CMAKE_SOURCE_DIR}/tests/cli_bf16_resume.sh $<TARGET_FILE:ctune>
         WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
set_tests_properties(cli_bf16_resume PROPERTIES SKIP_RETURN_CODE 77)
