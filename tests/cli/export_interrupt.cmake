# `ctune export` stopped by SIGINT or SIGTERM while it writes exits 128 + the signal, leaves no
# output and no temporary file or folder, and says so in one line (docs/reliability.md;
# tests/reliability/interrupt_export.sh). INT+TERM: a second signal during the cleanup. One
# ~13 MB model, trained once (a fixture), serves the three cases.
set(ct_export_interrupt_run ${CMAKE_BINARY_DIR}/export_interrupt_run)
add_test(NAME export_interrupt_model
         COMMAND bash ${CMAKE_SOURCE_DIR}/tests/reliability/interrupt_export.sh $<TARGET_FILE:ctune> train
                 ${ct_export_interrupt_run}
         WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
add_test(NAME export_interrupt_model_remove COMMAND ${CMAKE_COMMAND} -E rm -rf ${ct_export_interrupt_run})
set_tests_properties(export_interrupt_model PROPERTIES FIXTURES_SETUP export_interrupt_model LABELS reliability)
set_tests_properties(export_interrupt_model_remove PROPERTIES FIXTURES_CLEANUP export_interrupt_model
                     LABELS reliability)
foreach(case gguf:INT hf:INT hf:INT+TERM)
  string(REPLACE ":" ";" parts ${case})
  list(GET parts 0 format)
  list(GET parts 1 signals)
  string(REPLACE "+" "_" name ${signals})
  add_test(NAME export_interrupt_${format}_${name}
           COMMAND bash ${CMAKE_SOURCE_DIR}/tests/reliability/interrupt_export.sh $<TARGET_FILE:ctune> ${format}
                   ${signals} ${ct_export_interrupt_run}
           WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
  set_tests_properties(export_interrupt_${format}_${name} PROPERTIES LABELS reliability TIMEOUT 300
                       FIXTURES_REQUIRED export_interrupt_model
                       ENVIRONMENT "ASAN_OPTIONS=verify_asan_link_order=0:detect_leaks=1")
endforeach()
