/* The ctune subcommands. Each takes the arguments after its name (argv[0] is the subcommand)
 * and returns the process exit code: 0 ok, 1 failure, 2 usage error. Only these print and exit. */
#ifndef CT_COMMANDS_H
#define CT_COMMANDS_H

typedef int (*ct_command_fn)(int argc, char **argv);

typedef struct {
    const char *name;
    ct_command_fn run;
    const char *summary;
} ct_command;

int ct_cmd_demo(int argc, char **argv);
int ct_cmd_train(int argc, char **argv);
int ct_cmd_eval(int argc, char **argv);
int ct_cmd_generate(int argc, char **argv);
int ct_cmd_template(int argc, char **argv);
int ct_cmd_export(int argc, char **argv);
int ct_cmd_prune(int argc, char **argv);
int ct_cmd_logits(int argc, char **argv);
int ct_cmd_run(int argc, char **argv);

/* Prints "ctune <cmd>: unknown option '<arg>' (try 'ctune <cmd> --help')" and returns 2. */
int ct_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
