# The ranks' collectives (tests/test_dist.c) on 3 ranks: the fixed-order sum through blocks and
# uneven chunks, gathers, a failure carried to every rank, differing hashes. Skipped (77) without
# MPI or mpirun (test_dist alone, without mpirun, checks the one-rank answers).
find_program(CT_MPIRUN mpirun)
if(CT_HAVE_MPI AND CT_MPIRUN)
  add_test(NAME mpi_dist_3_ranks
           COMMAND ${CT_MPIRUN} --allow-run-as-root --oversubscribe --quiet --bind-to none -np 3 $<TARGET_FILE:test_dist>
           WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
  set_tests_properties(mpi_dist_3_ranks PROPERTIES TIMEOUT 60 ENVIRONMENT
                       "LSAN_OPTIONS=suppressions=${CMAKE_SOURCE_DIR}/tests/lsan_mpi.supp;ASAN_OPTIONS=detect_leaks=1:fast_unwind_on_malloc=0;OMP_NUM_THREADS=1")
  # (A sanitizer build: what Open MPI keeps past MPI_Finalize is suppressed, and the slow unwinder
  # follows stacks through its plugins so the suppressions can name them; tests/cli_mpi.sh too.)
endif()
