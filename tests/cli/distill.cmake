# Distillation from the command line: a teacher distilled into itself starts at KL 0, students of
# teacher layers, new and LoRA students train, and the refusals (tests/cli_distill.sh).
add_test(NAME cli_distill COMMAND sh ${CMAKE_SOURCE_DIR}/tests/cli_distill.sh $<TARGET_FILE:ctune>
         WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
