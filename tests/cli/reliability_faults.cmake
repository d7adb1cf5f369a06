# Fault injection (docs/reliability.md): runs stopped by kill -9, SIGINT and SIGTERM at random
# moments resume bit-exactly (tests/reliability/kill_resume.sh); a failure of each write-side call
# of a checkpoint save and of an export exits 1 and leaves nothing partial
# (tests/reliability/write_faults.sh, with the LD_PRELOAD library tests/reliability/fail_io.c);
# an export stopped at a random moment leaves no partial output (kill_export.sh). Short versions
# here; .ci/run runs more trials, and by hand: tests/reliability/kill_resume.sh build/ctune KILL 50.
add_library(ct_fail_io SHARED ${CMAKE_SOURCE_DIR}/tests/reliability/fail_io.c)
target_link_libraries(ct_fail_io PRIVATE ${CMAKE_DL_LIBS})
foreach(signal KILL INT TERM)
  add_test(NAME reliability_kill_resume_${signal}
           COMMAND bash ${CMAKE_SOURCE_DIR}/tests/reliability/kill_resume.sh $<TARGET_FILE:ctune> ${signal} 2 7
           WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
endforeach()
foreach(kind train gguf hf)
  # every 4th call here (about a quarter of the cases); .ci/run fails every call
  add_test(NAME reliability_write_faults_${kind}
           COMMAND bash ${CMAKE_SOURCE_DIR}/tests/reliability/write_faults.sh $<TARGET_FILE:ctune>
                   $<TARGET_FILE:ct_fail_io> ${kind} 4
           WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
endforeach()
foreach(format gguf hf)
  add_test(NAME reliability_kill_export_${format}
           COMMAND bash ${CMAKE_SOURCE_DIR}/tests/reliability/kill_export.sh $<TARGET_FILE:ctune> ${format} 3 11
           WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
endforeach()
set_tests_properties(reliability_kill_resume_KILL reliability_kill_resume_INT reliability_kill_resume_TERM
                     reliability_write_faults_train reliability_write_faults_gguf reliability_write_faults_hf
                     reliability_kill_export_gguf reliability_kill_export_hf
                     PROPERTIES LABELS reliability TIMEOUT 600
                     ENVIRONMENT "OMP_NUM_THREADS=1;ASAN_OPTIONS=verify_asan_link_order=0:detect_leaks=1")
# docs/reliability.md's table of bad inputs and faults is what ctune does: regenerated from ~40
# commands and compared (tests/reliability/bad_inputs.sh; its header says how to regenerate).
add_test(NAME reliability_bad_inputs_table
         COMMAND bash ${CMAKE_SOURCE_DIR}/tests/reliability/bad_inputs.sh $<TARGET_FILE:ctune>
                 $<TARGET_FILE:ct_fail_io> check ${CMAKE_SOURCE_DIR}/docs/reliability.md
         WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
set_tests_properties(reliability_bad_inputs_table PROPERTIES LABELS reliability TIMEOUT 600
                     ENVIRONMENT "OMP_NUM_THREADS=1;ASAN_OPTIONS=verify_asan_link_order=0:detect_leaks=1")
