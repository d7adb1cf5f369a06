# ctune train under mpirun, 2 ranks on the qwen2 fixture (tests/cli_mpi.sh): bit-identical to one
# rank with the same micro-batches, with ZeRO-1 and with LoRA; resume across rank counts; ranks
# that disagree, a batch that does not split, a rank that hangs or vanishes. Skipped (77) without
# MPI or mpirun. RUN_SERIAL: two ranks each take a core.
foreach(mode parity zero lora resume refuse faults)
  add_test(NAME cli_mpi_${mode}
           COMMAND sh ${CMAKE_SOURCE_DIR}/tests/cli_mpi.sh $<TARGET_FILE:ctune> ${mode} ${CT_HAVE_MPI}
           WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
  set_tests_properties(cli_mpi_${mode} PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 120 RUN_SERIAL ON
                       ENVIRONMENT "CT_SKIP_NOTES=${CT_SKIP_NOTES}")
endforeach()
