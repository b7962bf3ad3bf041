/* Read-only views of loaded objects for tests and bindings: where a layer's
 * weight bytes lie (kq_linear_part, kq_experts_weights). */
#include <string.h>

#include "core.h"
#include "error.h"

static void part_out(const kq_weight_part *p, kq_part *out)
{
    out->type = p->type;
    out->bytes = p->data;
    out->nbytes = p->nbytes;
    out->n_rows = p->n_rows;
}

kq_status kq_linear_part(const kq_linear *l, int part, kq_part *out)
{
    kq__clear_error();
    if (!out) return kq__fail(KQ_ERR_INVALID_ARG, "kq_linear_part: out is NULL");
    memset(out, 0, sizeof *out);
    if (!l) return kq__fail(KQ_ERR_INVALID_ARG, "kq_linear_part: linear is NULL");
    if (part < 0 || part >= l->n_parts)
        return kq__fail(KQ_ERR_RANGE, "kq_linear_part: part %d is outside [0, %d)", part,
                        l->n_parts);
    part_out(&l->parts[part], out);
    return KQ_OK;
}

kq_status kq_experts_weights(const kq_experts *e, kq_part *out)
{
    kq__clear_error();
    if (!out) return kq__fail(KQ_ERR_INVALID_ARG, "kq_experts_weights: out is NULL");
    memset(out, 0, sizeof *out);
    if (!e) return kq__fail(KQ_ERR_INVALID_ARG, "kq_experts_weights: experts is NULL");
    part_out(&e->w, out);
    return KQ_OK;
}
