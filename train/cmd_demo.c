#include <stdio.h>
#include "train/commands.h"
int ct_cmd_demo(int argc, char **argv) { (void)argc; (void)argv; printf("demo\n"); return 0; }
