# LoRA from the command line: a short run, its files, export, --adapter, and the refusals
# (tests/cli_lora.sh).
add_test(NAME cli_lora COMMAND sh ${CMAKE_SOURCE_DIR}/tests/cli_lora.sh $<TARGET_FILE:ctune>
         WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
