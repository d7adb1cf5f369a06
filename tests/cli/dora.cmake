# DoRA and the frozen base's dtype from the command line (tests/cli_dora.sh).
add_test(NAME cli_dora COMMAND sh ${CMAKE_SOURCE_DIR}/tests/cli_dora.sh $<TARGET_FILE:ctune>
         WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
