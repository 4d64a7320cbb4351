/* qmatmul_desc.h: what the qmatmul emitters (k_qmatmul.c, k_qmatmul_lowbit.c)
 * read off a qmatmul node besides its weight's format: shapes, dtypes, the bias,
 * the act and a_quant attributes and the per-tensor activation and output
 * qparams (docs/ir-ops.md "Quantized matmul (IR-internal)"). */
#ifndef LB_CODEGEN_QMATMUL_DESC_H
#define LB_CODEGEN_QMATMUL_DESC_H

#include "ir/ir.h"

struct lb_qmm_desc {
  int64_t K, N;               /* the weight is [K,N] */
  int64_t R;                  /* output rows: every leading dim of a */
  enum lb_dtype adt, ydt;     /* input 0, output 0 */
  bool has_bias;              /* input 2 */
  const char *act;            /* "none", "relu", ... */
  bool none, dynamic;         /* a_quant "none" / "dynamic" (neither: "static") */
  float sa;                   /* a_quant static: the input's scale and zero point */
  int32_t za;
  int32_t qlo, qhi;           /* quantized activations' range (a_quant static/dynamic) */
  float sy;                   /* i8/u8 output: the scale and zero point it is requantized with */
  int32_t zy;
};

/* Fills *out from n, whose weight (input 1) the emitter has already checked to be
 * a [K,N] matrix. The activation and output qparams are checked only when the
 * output is not empty (R and N above 0); an empty qmatmul emits nothing.
 * LB_ERR_INVALID, naming n, when they are missing or not per-tensor. */
enum lb_status lb_qmm_describe(const struct lb_node *n, struct lb_qmm_desc *out, struct lb_diag *d);

#endif
