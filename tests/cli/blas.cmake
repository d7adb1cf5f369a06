# OpenBLAS kernel selection (kernels/cpu/cpu_blas.h, docs/PERF.md "BLAS kernel selection").
# CT_BLAS_SIMULATE_MISDETECTION=1 makes an inherited OPENBLAS_CORETYPE stand for OpenBLAS's own
# choice, so a machine whose CPU OpenBLAS knows can reproduce the mis-detection of the issue
# (an AVX-512 Xeon run on Prescott kernels). These cases assume a CPU with at least AVX.

# Mis-detected: the test re-executes itself with the CPU's core and passes.
add_test(NAME blas_kernels_misdetection_fixed
         COMMAND sh -c "out=$(CT_BLAS_SIMULATE_MISDETECTION=1 OPENBLAS_CORETYPE=Prescott \"$0\" 2>&1); rc=$?; echo \"$out\"; test $rc -eq 0 && echo \"$out\" | grep -q 'forced by ctune (OpenBLAS chose Prescott)'"
                 $<TARGET_FILE:test_blas_kernels>
         WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
# The test's kernel check can fail: a low core that ctune believes it forced itself (so it does
# not re-execute again) must make it fail.
add_test(NAME blas_kernels_low_core_fails
         COMMAND sh -c "out=$(CT_BLAS_FORCED=Prescott OPENBLAS_CORETYPE=Prescott \"$0\" 2>&1); rc=$?; echo \"$out\"; test $rc -eq 1 && echo \"$out\" | grep -q 'below what this cpu supports'"
                 $<TARGET_FILE:test_blas_kernels>
         WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
# A forced core whose kernels this CPU cannot run (SkylakeX without AVX-512) fails the start-up
# GEMM check: forced by ctune, it is dropped with a warning; set by the user, ctune refuses to
# run. On an AVX-512 CPU SkylakeX passes the check and both runs succeed silently.
add_test(NAME blas_forced_core_checked
         COMMAND sh -c "if grep -qw avx512f /proc/cpuinfo; then avx512=1; else avx512=0; fi
                        out=$(CT_BLAS_FORCED=SkylakeX OPENBLAS_CORETYPE=SkylakeX \"$0\" --version 2>&1); rc=$?; echo \"$out\"
                        if test $avx512 -eq 1; then test $rc -eq 0 || exit 1; else test $rc -eq 0 && echo \"$out\" | grep -q 'SkylakeX failed the start-up GEMM check' || exit 1; fi
                        out=$(OPENBLAS_CORETYPE=SkylakeX \"$0\" --version 2>&1); rc=$?; echo \"$out\"
                        if test $avx512 -eq 1; then test $rc -eq 0; else test $rc -eq 1 && echo \"$out\" | grep -q '^ctune: blas: OpenBLAS core SkylakeX (OPENBLAS_CORETYPE) fails the start-up GEMM check.*SIGILL.*unset OPENBLAS_CORETYPE'; fi"
                 $<TARGET_FILE:ctune>)
# The trainer's log names the BLAS and its kernels; under a mis-detection ctune re-executes.
add_test(NAME blas_train_log
         COMMAND sh -c "rm -rf ${CMAKE_BINARY_DIR}/cli_blas_train; out=$(CT_BLAS_SIMULATE_MISDETECTION=1 OPENBLAS_CORETYPE=Prescott \"$0\" train recipes/pretrain_tiny_zh.yaml train.max_steps=1 data.max_examples=64 tokenizer.vocab_size=400 data.val= output_dir=${CMAKE_BINARY_DIR}/cli_blas_train 2>&1); rc=$?; rm -rf ${CMAKE_BINARY_DIR}/cli_blas_train; echo \"$out\"; test $rc -eq 0 && echo \"$out\" | grep -q '^blas: OpenBLAS [0-9.]*, core [A-Za-z0-9]* (.* kernels), cpu .*, coretype [A-Za-z0-9]* forced by ctune (OpenBLAS chose Prescott), gemm check ok'"
                 $<TARGET_FILE:ctune>
         WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
# Every bench line carries the BLAS fields.
add_test(NAME blas_bench_json COMMAND bench_matmul 64 1)
set_tests_properties(blas_bench_json PROPERTIES
  PASS_REGULAR_EXPRESSION "\"blas\": \"OpenBLAS [0-9.]+\", \"blas_core\": \"[A-Za-z0-9]+\", \"blas_kernels\": \"[a-z0-9+]+\", \"cpu_isa\": \"[a-z0-9+]+\", \"blas_coretype\": \"(auto|forced|user)\", \"matmul_sgemm\": \"(OpenBLAS|oneDNN [0-9.]+)\", \"bf16_gemm\": \"(oneDNN avx512_core_(bf16|amx)|widened to f32 \\([^)]+\\))\"}")
