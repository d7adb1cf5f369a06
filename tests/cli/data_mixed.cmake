# dialog_intent data holding single messages and dialogues (datasets/data/sft_val.jsonl, the
# fine-tuning recipe's validation file, starts with a single message): ctune eval reads and
# scores both kinds.
add_test(NAME cli_eval_mixed_messages_and_dialogs
         COMMAND ctune eval --model tests/fixtures/models/qwen2 --data datasets/data/sft_val.jsonl
         --format dialog_intent --max-examples 4 WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
set_tests_properties(cli_eval_mixed_messages_and_dialogs PROPERTIES
                     PASS_REGULAR_EXPRESSION "accuracy [0-9.]+\nscoring: [a-z -]+\\(primary\\); summed [0-9.]+, length-normalized [0-9.]+, 4 examples")
