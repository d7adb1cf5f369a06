# Tests needing the shared folder ($CT_SHARED_DIR or ../shared: the Qwen3 tokenizer) skip with
# the reason in ctest's summary, and fail under CI=true (tests/cli_shared_data_skips.sh).
if(TARGET test_tokenizer AND TARGET test_data)
  add_test(NAME tests_shared_data_skip_reason
           COMMAND sh ${CMAKE_SOURCE_DIR}/tests/cli_shared_data_skips.sh ${CMAKE_COMMAND}
                   $<TARGET_FILE:test_tokenizer> $<TARGET_FILE:test_data>
           WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
endif()
