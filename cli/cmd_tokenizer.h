/* `ctune tokenize` and `ctune tokenizer train` (cli/cmd_tokenizer.c). Each takes the arguments
 * after its name (argv[0] is the subcommand) and returns 0 ok, 1 failure, 2 usage error. */
#ifndef CT_CMD_TOKENIZER_H
#define CT_CMD_TOKENIZER_H

int ct_cmd_tokenize(int argc, char **argv);
int ct_cmd_tokenizer(int argc, char **argv);

#endif
