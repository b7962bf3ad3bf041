/* Subcommands of the kq tool. Each returns the process exit status. */
#ifndef KQ_TOOL_H
#define KQ_TOOL_H

int kq_cmd_info(int argc, char **argv);
int kq_cmd_sample(int argc, char **argv);
int kq_cmd_backends(int argc, char **argv);
int kq_cmd_bench(int argc, char **argv);
int kq_cmd_verify(int argc, char **argv);
int kq_cmd_quantize(int argc, char **argv);

/* Prints "kq <cmd>: <what>: <kq_last_error()>" to stderr and returns 1. */
int kq_tool_error(const char *cmd, const char *what);

#endif
