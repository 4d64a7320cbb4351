/* mixed.h: `lowbit compile --quant auto` (tools/mixed.c): a precision per
 * weight layer, chosen by measured sensitivity under a size budget, or read
 * from a plan file. */
#ifndef LB_TOOLS_MIXED_H
#define LB_TOOLS_MIXED_H

#include "codegen/codegen.h"
#include "codegen/sensitivity.h"
#include "passes/pass.h"
#include "tools/quant_flow.h"
#include "tools/report.h"

struct lb_mixed_result;

struct lb_mixed_options {
  double target_bpw;            /* --target-bpw: 0 = none */
  int64_t max_bytes;            /* --max-size: weights of the quantized layers; 0 = none */
  const char *keep_float;       /* --keep-float: comma-separated globs on value or node names; may be NULL */
  double max_loss;              /* --max-loss: the smallest plan whose summed error is within it; 0 = none */
  bool exact;                   /* --select exact: dynamic programming, else the greedy */
  bool metric_given;            /* else kl when every f32 output's last dimension is >= 2 (logits), else mse */
  enum lb_sens_metric metric;
  const char *candidates;       /* comma-separated precisions (f16, w8, wNgG); NULL: w8,w4g32,w3g32,w2g32.
                                   f32 is always a candidate */
  const char *plan_in;          /* --quant-plan: its layers are fixed; with a budget the layers it
                                   leaves out (or gives as "auto") are chosen, without one the plan
                                   must cover every layer */
  const char *plan_out;         /* --save-plan */
  enum lb_weight_algo algo;     /* rtn or gptq (low-bit candidates; w8 is RTN) */
  bool act_int8;                /* --act int8: the integer candidates take per-row int8 activations */
  const char *calib_dir;        /* samples: sensitivity, gptq's Hessians */
  const char *pipeline;         /* the user's pipeline; its plan-memory runs last */
  const struct lb_pass_options *po;
  const struct lb_codegen_options *jit;
  struct lb_mixed_result *result; /* when non-NULL: filled for a report (lb_mixed_result_free) */
};

/* What lb_mixed_run measured and chose, as a report view (tools/report.h);
 * report.model_error and each layer's sqnr_db/max_abs are NAN (the caller
 * measures them on the chosen graph). */
struct lb_mixed_result {
  struct lb_report report;
  void *storage; /* owned arrays behind report */
};
void lb_mixed_result_free(struct lb_mixed_result *r);

/* On a freshly loaded g: the pipeline without plan-memory; one quantized copy
 * per candidate precision (RTN, or gptq on Hessians of the float graph, for the
 * low-bit ones); the sensitivity of every (layer, candidate)
 * (codegen/sensitivity.h) unless a plan alone gives every layer; the choice
 * under the budget (--target-bpw / --max-size: greedy by marginal gain;
 * --max-loss: the first plan on the greedy path within the loss), with the
 * plan's and --keep-float's layers fixed; then each layer grafted from its
 * candidate, dce and the pipeline's plan-memory. Prints a one-line summary on
 * stderr. With o->result and neither a budget nor a plan it only measures: the
 * result has no choice (-1) and g stays float. */
enum lb_status lb_mixed_run(struct lb_graph *g, const struct lb_mixed_options *o, struct lb_diag *d);

/* "123", "64KB", "2MB" (KB = 1024 bytes) -> bytes; false when malformed. */
bool lb_mixed_parse_size(const char *s, int64_t *out);

#endif
