# Trainable sets on the command line: a train.trainable pattern that matches no parameter exits 1
# with one line naming the nearest parameter names; freezing everything is refused; a refused run
# leaves no folder. (tests/test_trainable.c covers resume, checkpoint sizes and the base hash.)
add_test(NAME cli_train_trainable_no_match
         COMMAND sh -c "out=$(\"$0\" train recipes/pretrain_tiny_zh.yaml output_dir=$1 train.max_steps=1 'train.trainable=*.q_prj.weight' 2>&1); rc=$?; test $rc -eq 1 && test $(echo \"$out\" | grep -c '^ctune train:') -eq 1 && echo \"$out\" | grep \"^ctune train: train.trainable: pattern '\\*.q_prj.weight' matches no parameter of the model; the nearest names are 'model.layers.0.self_attn.q_proj.weight', 'model.layers.1.self_attn.q_proj.weight', \" && test ! -e $1"
                 $<TARGET_FILE:ctune> ${CMAKE_BINARY_DIR}/cli_trainable_no_match
         WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
add_test(NAME cli_train_trainable_nothing
         COMMAND sh -c "out=$(\"$0\" train recipes/pretrain_tiny_zh.yaml output_dir=$1 train.max_steps=1 'train.freeze=*' 2>&1); test $? -eq 1 && echo \"$out\" | grep 'leave no parameter to train' && test ! -e $1"
                 $<TARGET_FILE:ctune> ${CMAKE_BINARY_DIR}/cli_trainable_nothing
         WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
