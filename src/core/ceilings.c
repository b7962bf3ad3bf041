/* Dispatch of the ceiling measurement to the backend's own. */
#include "ceilings.h"

#include <string.h>

#include "core.h"
#include "error.h"

kq_status kq__backend_ceilings(kq_backend *b, kq_ceilings *out)
{
    kq__clear_error();
    if (!b || !out) return kq__fail(KQ_ERR_INVALID_ARG, "ceilings: backend or out is NULL");
    memset(out, 0, sizeof *out);
    if (!b->ops->ceilings)
        return kq__fail(KQ_ERR_UNSUPPORTED, "ceilings: backend '%s' cannot measure them",
                        b->name);
    return b->ops->ceilings(b, out);
}
