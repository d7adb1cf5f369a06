# checkpoint.select: model/ (and a LoRA run's adapter/) hold the weights of the best val
# evaluation, equal byte for byte to the export of that step's checkpoint, in full fine-tuning,
# LoRA, distillation and one-shot pruning runs; a resumed run keeps the selection it read from the
# checkpoint; bad combinations are refused at the recipe (tests/cli_select_best.sh; a few seconds
# each on the fixture model).
foreach(mode loss accuracy lora distill prune refuse)
  add_test(NAME cli_select_best_${mode}
           COMMAND sh ${CMAKE_SOURCE_DIR}/tests/cli_select_best.sh $<TARGET_FILE:ctune> ${mode}
           WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
endforeach()
