# Fuzz harnesses (tests/fuzz/fuzz_*.c; docs/reliability.md). Every build makes one replay
# executable per harness, fuzz_replay_NAME (replay.c + the harness, linked with ctune_core), and
# a ctest case that feeds it the committed seeds (corpus/NAME) and every input that once crashed
# (regressions/NAME): so the normal and the ASan/UBSan builds re-run them all.
# With CT_FUZZ=ON (clang only; build type Sanitize) the library is compiled with libFuzzer's
# coverage and each harness is also a libFuzzer executable, fuzz_NAME (target fuzz_all):
#   CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Sanitize -DCT_FUZZ=ON -DCT_ENABLE_CUDA=OFF
#   cmake --build build-fuzz --target fuzz_all && build-fuzz/fuzz_gguf tests/fuzz/corpus/gguf
file(GLOB CT_FUZZ_HARNESSES CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/fuzz/fuzz_*.c)
list(FILTER CT_FUZZ_HARNESSES EXCLUDE REGEX "/fuzz_util\\.c$")
add_library(ct_fuzz_util STATIC ${CMAKE_SOURCE_DIR}/tests/fuzz/fuzz_util.c)
target_link_libraries(ct_fuzz_util PUBLIC ctune_core)
target_compile_definitions(ct_fuzz_util PRIVATE CT_FUZZ_SOURCE_DIR="${CMAKE_SOURCE_DIR}")
if(CT_FUZZ)
  add_custom_target(fuzz_all)
endif()
foreach(harness ${CT_FUZZ_HARNESSES})
  get_filename_component(harness_file ${harness} NAME_WE)
  string(REGEX REPLACE "^fuzz_" "" name ${harness_file})
  add_executable(fuzz_replay_${name} ${CMAKE_SOURCE_DIR}/tests/fuzz/replay.c ${harness})
  target_link_libraries(fuzz_replay_${name} PRIVATE ct_fuzz_util)
  add_test(NAME fuzz_replay_${name}
           COMMAND fuzz_replay_${name} ${CMAKE_SOURCE_DIR}/tests/fuzz/corpus/${name}
                   ${CMAKE_SOURCE_DIR}/tests/fuzz/regressions/${name}
           WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
  set_tests_properties(fuzz_replay_${name} PROPERTIES LABELS fuzz TIMEOUT 300
                       ENVIRONMENT "OMP_NUM_THREADS=1;CT_SOURCE_DIR=${CMAKE_SOURCE_DIR};LSAN_OPTIONS=suppressions=${CMAKE_SOURCE_DIR}/tests/fuzz/lsan.supp:print_suppressions=0")
  if(CT_FUZZ)
    add_executable(fuzz_${name} ${harness})
    target_link_libraries(fuzz_${name} PRIVATE ct_fuzz_util)
    target_link_options(fuzz_${name} PRIVATE -fsanitize=fuzzer)
    set_target_properties(fuzz_${name} PROPERTIES EXCLUDE_FROM_ALL ON)
    add_dependencies(fuzz_all fuzz_${name})
  endif()
endforeach()
