/* Subcommands of the kq tool. Each returns the process exit status. */
#ifndef KQ_TOOL_H
#define KQ_TOOL_H

#include "kquant.h"

int kq_cmd_info(int argc, char **argv);
int kq_cmd_sample(int argc, char **argv);
/* kq sample OUT --model NAME (sample_model.c) */
int kq_cmd_sample_model(const char *out, const char *model, uint64_t seed);
int kq_cmd_backends(int argc, char **argv);
int kq_cmd_bench(int argc, char **argv);
int kq_cmd_verify(int argc, char **argv);
int kq_cmd_quantize(int argc, char **argv);
int kq_cmd_run(int argc, char **argv);          /* tools/run.c */
int kq_cmd_bench_model(int argc, char **argv);  /* tools/model_bench.c */

/* Prints "kq <cmd>: <what>: <kq_last_error()>" to stderr and returns 1. */
int kq_tool_error(const char *cmd, const char *what);

/* Opens a backend spec, with "cpu" and "cpu-ref" given threads=N when
 * threads > 0 (tools/run.c). */
kq_status kq_tool_open_backend(const char *spec, int threads, kq_backend **out);

#endif
