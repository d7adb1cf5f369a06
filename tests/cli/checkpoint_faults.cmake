# A checkpoint write that fails partway (disk full, injected with a file-size limit at several
# points of the file) exits 1 with one line, no crash, the previous checkpoint intact and
# resumable, no temporary file left (tests/cli_checkpoint_faults.sh).
add_test(NAME cli_train_checkpoint_disk_full
         COMMAND sh ${CMAKE_SOURCE_DIR}/tests/cli_checkpoint_faults.sh $<TARGET_FILE:ctune>
         WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
