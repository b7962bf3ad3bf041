/* kq backends: which backends open on this machine, on what device, or why not. */
#include <stdio.h>

#include "kquant.h"
#include "kq.h"

int kq_cmd_backends(int argc, char **argv)
{
    (void)argv;
    if (argc != 1) {
        fprintf(stderr, "usage: kq backends\n");
        return 2;
    }
    static const char *specs[] = {"cpu-ref", "cpu", "cuda", "auto"};
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
        kq_backend *b = NULL;
        kq_status st = kq_backend_open(specs[i], &b);
        if (st == KQ_OK)
            printf("%-8s ok    %s%s%s\n", specs[i], kq_backend_device(b),
                   i == 3 ? " -> " : "", i == 3 ? kq_backend_name(b) : "");
        else
            printf("%-8s no    %s: %s\n", specs[i], kq_status_name(st), kq_last_error());
        kq_backend_close(b);
    }
    return 0;
}
