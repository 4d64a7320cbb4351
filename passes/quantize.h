/* quantize.h: the schemes of the `quantize` pass (passes/quantize.c) and the
 * summary the driver prints after it. */
#ifndef LB_PASSES_QUANTIZE_H
#define LB_PASSES_QUANTIZE_H

#include "ir/ir.h"

enum lb_quant_scheme {
  LB_QUANT_W8A8,         /* int8 weights, int8 activations with calibrated scales */
  LB_QUANT_W8A8_DYNAMIC, /* int8 weights, per-row activation scales at run time */
  LB_QUANT_W8,           /* int8 weights, float activations */
  LB_QUANT_W4,           /* 4-bit group-wise weights (activations: pass argument act) */
  LB_QUANT_W3,
  LB_QUANT_W2,
  LB_QUANT_FP8,          /* E4M3 weights, f16 scales per column or group, float activations */
  LB_QUANT_FP8_E5M2,     /* E5M2 weights, the same */
  LB_QUANT_F16,          /* IEEE half weights (no scales), float activations */
  LB_QUANT_SCHEME_COUNT
};
/* "w8a8", "w8a8-dynamic", "w8", "w4", "w3", "w2", "fp8", "fp8-e5m2", "f16"; false for anything else. */
bool lb_quant_scheme_parse(const char *s, enum lb_quant_scheme *out);
const char *lb_quant_scheme_name(enum lb_quant_scheme s);
/* The accepted spellings, for messages: "w8a8, w8a8-dynamic, w8, w4, w3, w2, fp8, fp8-e5m2, f16". */
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

/* ---- low-bit weights (docs/ir-ops.md "Low-bit weights") ----------------------
 * The format of a 2/3/4-bit weight: codes per [k,n], one scale (and zero point
 * when asym) per group of `group` consecutive k of a column (group 0: the
 * whole column). Shared by the RTN quantizer below and the gptq pass. */
struct lb_wq_format {
  int32_t bits;  /* 2, 3, 4 (8 works too) */
  int64_t group; /* 0 = one group per column */
  bool asym;
};
/* Bits of a scheme (8 for the int8 and fp8 ones, 16 for f16). */
int32_t lb_quant_scheme_bits(enum lb_quant_scheme s);
/* The float format of an fp8 scheme's codes; LB_QFLOAT_NONE for the integer ones. */
enum lb_qfloat lb_quant_scheme_fp8(enum lb_quant_scheme s);
/* Number of groups along K. */
int64_t lb_wq_groups(const struct lb_wq_format *f, int64_t k);
/* Nearest f16 value (round to nearest even), clamped into (0, 65504] for a
 * positive x: the executable stores low-bit scales as f16. */
float lb_quant_round_f16(float x);
/* Scale and zero point of a group of n values x[i * stride], over its range
 * shrunk by `shrink` (1 = the full range):
 *   sym:  scale = amax / (2^(b-1) - 1/2), zp 0, codes in [-2^(b-1), 2^(b-1) - 1]
 *         (the grid -8..7 * amax/7.5 at 4 bits: clamping +amax to 7 costs the same
 *         half step as rounding, and no level is wasted; GPTQ's symmetric grid);
 *   asym: range [min(lo, 0), max(hi, 0)], scale = range / (2^b - 1),
 *         zp = round(-lo / scale) in [0, 2^b - 1], unsigned codes.
 * The scale is rounded to f16 first (an all-zero group gets 1), so the codes
 * are computed against the stored scale. */
void lb_wq_params(const struct lb_wq_format *f, const float *x, int64_t n, int64_t stride, float shrink,
                  float *scale, int32_t *zp);
/* The code of x: round_half_even(x / scale) + zp clamped to the range. */
int32_t lb_wq_code(const struct lb_wq_format *f, float x, float scale, int32_t zp);
/* Params of a group with clip search: shrink factors 1, 0.975, ..., 0.5 (21),
 * keeping the one of least squared error sum (x - deq(code(x)))^2 (the first
 * on ties), as AWQ's and llama.cpp's searches; with clip false, shrink 1. */
void lb_wq_params_search(const struct lb_wq_format *f, const float *x, int64_t n, int64_t stride, bool clip,
                         float *scale, int32_t *zp);
/* Round-to-nearest quantizer: w f32 [K,N] (or [N,K] when trans_b) -> codes
 * q [K,N], scales and zps (NULL when sym) of lb_wq_groups * N entries indexed
 * [g * N + n]. */
void lb_wq_quantize_ref(const float *w, int64_t k, int64_t n, bool trans_b, const struct lb_wq_format *f,
                        bool clip, int8_t *q, float *scales, int32_t *zps);

/* FP8 weights (docs/ir-ops.md "Low-bit weights", FP8): w as above -> codes
 * [K,N] of format f and one f16 scale per group of `group` k of a column
 * (group 0: per column), lb_wq_groups * N entries indexed [g * N + n]:
 * scale = max|w| / lb_fp8_max(f) rounded to the nearest f16 not below it (1
 * for an all-zero group),
 * code = lb_fp8_encode(w / scale) (round to nearest even, saturating). */
void lb_fp8_quantize_ref(const float *w, int64_t k, int64_t n, bool trans_b, enum lb_qfloat f, int64_t group,
                         uint8_t *codes, float *scales);

/* F16 weights (docs/ir-ops.md "Quantized matmul", F16): w as above -> the f16
 * bits [K,N] of each weight (lb_f16_encode: round to nearest even; inf and
 * NaN stay). Returns the index into w of the first finite weight that would
 * overflow to infinity (|w| >= 65520), or -1 when there is none; the pass
 * refuses such a weight. */
int64_t lb_f16_quantize_ref(const float *w, int64_t k, int64_t n, bool trans_b, uint16_t *h);

/* A node lb_quant_classify accepts, taken apart (for passes that quantize
 * weights their own way: gptq). */
struct lb_quant_linear {
  struct lb_value *a, *w; /* activation, constant weight */
  bool trans_b;           /* w is [N,K] */
  int64_t k, n;
};
void lb_quant_linear_of(const struct lb_graph *g, const struct lb_node *n, struct lb_quant_linear *l);
/* Rewrites a node lb_quant_classify accepts into qmatmul with the given codes
 * (i8 [K,N]; u8 for fp8) and qparams (copied into the graph's arena) for its
 * weight, named "<weight>.q", and a_quant ("none", "dynamic", "static"); with
 * qp NULL, codes are the f16 bits [K,N] of an f16 weight (a_quant "none"). The
 * node keeps its output, name and place among the other nodes (constants are
 * inserted before it). Returns the node's new index in g->nodes. */
int32_t lb_quant_rewrite(struct lb_graph *g, int32_t index, const void *codes, const struct lb_qparams *qp,
                         const char *a_quant);

#endif
