/* The forward pass's operations on whichever memory the backend uses
 * (ops.c): host loops or CUDA kernels. Each returns a kq_status. */
#ifndef KQ_MODEL_OPS_H
#define KQ_MODEL_OPS_H

#include "model.h"

kq_status kq__mop_rmsnorm(kq_model *m, const float *x, const float *w, float *y, int64_t rows,
                          int64_t n, int64_t sx, int64_t sy);
/* x += (post_w ? norm(y) * post_w : y), then h = norm(x) * norm_w when
 * norm_w is given; rows of n_embd. y may be overwritten. */
kq_status kq__mop_residual(kq_model *m, float *x, float *y, const float *post_w,
                           const float *norm_w, float *h, int64_t rows);
kq_status kq__mop_add_rows(kq_model *m, float *y, const float *bias, int64_t rows, int64_t n);
kq_status kq__mop_softcap(kq_model *m, float *x, float cap, int64_t n);
/* Host backends: the batch's embedding rows into buf.x. */
kq_status kq__mop_embed(kq_model *m, const int32_t *tokens, int64_t n);
/* Device backends: the embedding rows into buf.x, and pos, seq and (when
 * n_out < n) the n_out wanted rows idx onto the device, queued before the
 * pass; *dpos and *dseq are the device copies, buf.d_idx the rows'. */
kq_status kq__mop_inputs(kq_model *m, const int32_t *tokens, const int32_t *pos,
                         const int32_t *seq, const int32_t *idx, int64_t n, int64_t n_out,
                         const int32_t **dpos, const int32_t **dseq);
/* q/k norms, RoPE, the cache write and attention of layer `layer`. */
kq_status kq__mop_attention(kq_model *m, int64_t layer, const int32_t *pos, const int32_t *seq,
                            int64_t n);
kq_status kq__mop_route(kq_model *m, int64_t n);
kq_status kq__mop_moe_combine(kq_model *m, int64_t n);
/* Device backends: out_rows = the rows of x that buf.d_idx names. */
kq_status kq__mop_gather(kq_model *m, int64_t n_out);
kq_status kq__mop_logits_dst(kq_model *m, float *host_logits, int64_t n_out, float **dst);
kq_status kq__mop_logits_out(kq_model *m, float *host_logits, int64_t n_out);

#endif
