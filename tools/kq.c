/* kq: the command-line face of kquant. */
#include <stdio.h>
#include <string.h>

#include "kquant.h"
#include "kq.h"
#include "print_escaped.h"

static void usage(FILE *f)
{
    fprintf(f,
            "kq %s: GGUF-quantized matrix products\n"
            "usage:\n"
            "  kq info FILE.gguf       version, metadata, tensor table and totals by type\n"
            "  kq sample OUT.gguf      write a small sample model layer (random weights,\n"
            "                          quantized by kquant's own quantizers)\n"
            "  kq bench [FILE.gguf] [options]\n"
            "                          time every linear and expert op against the measured\n"
            "                          read-bandwidth and compute ceilings (kq bench --help)\n"
            "  kq verify FILE.gguf [--backend B]\n"
            "                          every tensor through every backend against cpu-ref\n"
            "  kq quantize IN.gguf OUT.gguf TYPE|q4_k_m\n"
            "                          quantize F32/F16/BF16 tensors (kq quantize --help)\n"
            "  kq run MODEL.gguf -p PROMPT [-n N] [--temp T] [--parallel B] ...\n"
            "                          generate text with a whole model (kq run --help)\n"
            "  kq bench-model MODEL.gguf [--backend B] [--threads N]\n"
            "                          prefill 512 and decode 128 tokens/s, bytes per token\n"
            "  kq backends             which backends open here, and on what device\n"
            "  kq version              print the library version\n",
            kq_version());
}

int kq_tool_error(const char *cmd, const char *what)
{
    char w[KQ_ESC_CAP];
    fprintf(stderr, "kq %s: %s: %s\n", cmd, kq_escape_str(w, sizeof w, what), kq_last_error());
    return 1;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "info")) return kq_cmd_info(argc - 1, argv + 1);
    if (!strcmp(cmd, "sample")) return kq_cmd_sample(argc - 1, argv + 1);
    if (!strcmp(cmd, "bench")) return kq_cmd_bench(argc - 1, argv + 1);
    if (!strcmp(cmd, "verify")) return kq_cmd_verify(argc - 1, argv + 1);
    if (!strcmp(cmd, "quantize")) return kq_cmd_quantize(argc - 1, argv + 1);
    if (!strcmp(cmd, "run")) return kq_cmd_run(argc - 1, argv + 1);
    if (!strcmp(cmd, "bench-model")) return kq_cmd_bench_model(argc - 1, argv + 1);
    if (!strcmp(cmd, "backends")) return kq_cmd_backends(argc - 1, argv + 1);
    if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
        printf("kq %s\n", kq_version());
        return 0;
    }
    if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
        usage(stdout);
        return 0;
    }
    char c[KQ_ESC_CAP];
    fprintf(stderr, "kq: unknown command '%s'\n", kq_escape_str(c, sizeof c, cmd));
    usage(stderr);
    return 2;
}
