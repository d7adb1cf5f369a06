# Run by ctest (CTestCustom.cmake, written by CMakeLists.txt) before and after the tests:
# ctest's summary lists skipped tests without a reason, so tests leave one in CT_SKIP_NOTES
# (tests/ct_test.h, ct_test_note_skip) and this prints them after the summary.
#   cmake -DNOTES=<folder> -DACTION=clear|report -P report_skips.cmake
file(GLOB notes "${NOTES}/*.txt")
if(ACTION STREQUAL "report" AND notes)
  list(SORT notes)
  set(text "Why tests were skipped:\n")
  foreach(note ${notes})
    file(READ ${note} line)
    string(APPEND text "  ${line}")
  endforeach()
  execute_process(COMMAND ${CMAKE_COMMAND} -E echo_append "${text}")
endif()
if(notes)
  file(REMOVE ${notes})
endif()
file(MAKE_DIRECTORY ${NOTES})
