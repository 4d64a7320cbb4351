/* quantize.h: the schemes of the `quantize` pass (passes/quantize.c) and the
 * summary the driver prints after it. */
#ifndef LB_PASSES_QUANTIZE_H
#define LB_PASSES_QUANTIZE_H

#include "ir/ir.h"

enum lb_quant_scheme {
  LB_QUANT_W8A8,         /* int8 weights, int8 activations with calibrated scales */
  LB_QUANT_W8A8_DYNAMIC, /* int8 weights, per-row activation scales at run time */
  LB_QUANT_W8,           /* int8 weights, float activations */
  LB_QUANT_SCHEME_COUNT
};
/* "w8a8", "w8a8-dynamic", "w8"; false for anything else. */
bool lb_quant_scheme_parse(const char *s, enum lb_quant_scheme *out);
const char *lb_quant_scheme_name(enum lb_quant_scheme s);
/* The accepted spellings, for messages: "w8a8, w8a8-dynamic, w8". */
extern const char lb_quant_scheme_list[];

/* Why a matmul-family node stays float. */
enum lb_quant_skip {
  LB_QSKIP_NONE = 0,        /* it fits: quantize rewrites it */
  LB_QSKIP_TWO_ACTIVATIONS, /* neither operand is a constant (attention) */
  LB_QSKIP_CONST_LHS,       /* the constant is the first operand (W @ x) */
  LB_QSKIP_WEIGHT_RANK,     /* the constant weight is not 2-D */
  LB_QSKIP_NO_DATA,         /* the constant weight's data was elided (IR from a dump) */
  LB_QSKIP_TRANS_A,         /* gemm transA=1 */
  LB_QSKIP_ALPHA,           /* gemm alpha != 1 */
  LB_QSKIP_BIAS,            /* a bias that is not a constant per-column vector */
  LB_QSKIP_DTYPE,           /* not f32 */
  LB_QSKIP_KEEP_FLOAT,      /* keep_float=1: the outlier part split-outliers made */
  LB_QSKIP_COUNT
};
/* Classifies a matmul / gemm / fused_matmul node of g. */
enum lb_quant_skip lb_quant_classify(const struct lb_graph *g, const struct lb_node *n);
/* "with two activation operands", ... */
const char *lb_quant_skip_reason(enum lb_quant_skip r);

/* What a quantized graph holds: qmatmul nodes, and the matmul-family nodes
 * left in float by reason (classified again: the pass rewrites every node that
 * fits, so what is left is exactly what it skipped), and convs (never
 * quantized). */
struct lb_quant_summary {
  int32_t quantized;
  int32_t skipped[LB_QSKIP_COUNT];
  int32_t convs;
};
void lb_quant_summarize(const struct lb_graph *g, struct lb_quant_summary *s);
/* One line without newline: "quantized 25 of 33 matmuls to int8 (w8a8); 8 left
 * in float: 8 with two activation operands". */
void lb_quant_summary_format(const struct lb_quant_summary *s, enum lb_quant_scheme scheme, char *buf,
                             size_t len);

/* The symmetric per-output-channel int8 weight quantizer the pass uses
 * (reference, tested directly): w is f32 [K,N] row-major, or [N,K] when
 * trans_b; q receives i8 [K,N] and scales N entries: scale[n] = max_k
 * |w[k,n]| / 127 (1 for an all-zero column), q = round_half_even(w / scale)
 * clamped to [-127, 127]. */
void lb_quant_weight_ref(const float *w, int64_t k, int64_t n, bool trans_b, int8_t *q, float *scales);

#endif
