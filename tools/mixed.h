/* mixed.h: `lowbit compile --quant auto` (tools/mixed.c): a precision per
 * weight layer, chosen by measured sensitivity under a size budget, or read
 * from a plan file. */
#ifndef LB_TOOLS_MIXED_H
#define LB_TOOLS_MIXED_H

#include "codegen/codegen.h"
#include "passes/pass.h"
#include "tools/quant_flow.h"

struct lb_mixed_options {
  double target_bpw;            /* --target-bpw: 0 = none */
  int64_t max_bytes;            /* --max-size: weights of the quantized layers; 0 = none */
  const char *keep_float;       /* --keep-float: comma-separated globs on value or node names; may be NULL */
  const char *plan_in;          /* --quant-plan: compile exactly this plan */
  const char *plan_out;         /* --save-plan */
  enum lb_weight_algo algo;     /* rtn or gptq (low-bit candidates; w8 is RTN) */
  const char *calib_dir;        /* samples: sensitivity, gptq's Hessians */
  const char *pipeline;         /* the user's pipeline; its plan-memory runs last */
  const struct lb_pass_options *po;
  const struct lb_codegen_options *jit;
};

/* On a freshly loaded g: the pipeline without plan-memory; one quantized copy
 * per candidate precision (w8, w4 g32, w3 g32, w2 g32; RTN or gptq on Hessians
 * of the float graph); without a plan, the sensitivity of every (layer,
 * candidate) (codegen/sensitivity.h) and a greedy choice under the budget;
 * then each layer grafted from its candidate, dce and plan-memory. Prints a
 * one-line summary on stderr. */
enum lb_status lb_mixed_run(struct lb_graph *g, const struct lb_mixed_options *o, struct lb_diag *d);

/* "123", "64KB", "2MB" (KB = 1024 bytes) -> bytes; false when malformed. */
bool lb_mixed_parse_size(const char *s, int64_t *out);

#endif
