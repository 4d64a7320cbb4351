/* gptq.h: the GPTQ weight quantizer of the gptq pass (passes/gptq.c), for
 * direct tests. */
#ifndef LB_PASSES_GPTQ_H
#define LB_PASSES_GPTQ_H

#include "passes/quantize.h"

struct lb_gptq_params {
  struct lb_wq_format fmt; /* bits, group, asym (RTN's format and scale rule) */
  bool act_order;          /* visit inputs by descending H_kk */
  bool clip;               /* clipping search for each group's scale */
  double damp;             /* H_kk += damp * mean(diag H); 0.01 */
  int64_t block;           /* lazy batch update block; 128 */
};

/* Quantizes w (f32 [K,N] row-major, or [N,K] when trans_b) against
 * h = 2 X^T X / tokens (K x K, symmetric; not modified) into codes [K,N] and
 * scales / zero points (zps NULL when symmetric) of lb_wq_groups(K) * N
 * entries indexed [g * N + n], the layout lb_wq_quantize_ref writes.
 * *loss (may be NULL) receives GPTQ's sum of (w - q)^2 / (2 U_kk^2).
 * LB_ERR_INVALID when the dampened H is not positive definite. */
enum lb_status lb_gptq_quantize_ref(const float *w, int64_t k, int64_t n, bool trans_b, const double *h,
                                    const struct lb_gptq_params *p, int8_t *codes, float *scales, int32_t *zps,
                                    double *loss);

#endif
