/* quant_flow.h: the passes and calibration runs of `lowbit compile --quant`
 * (tools/quant_flow.c), between loading the model and generating code. */
#ifndef LB_TOOLS_QUANT_FLOW_H
#define LB_TOOLS_QUANT_FLOW_H

#include "codegen/codegen.h"
#include "passes/calib.h"
#include "passes/pass.h"
#include "passes/quantize.h"

/* How low-bit weights are chosen (--weight-algo). */
enum lb_weight_algo {
  LB_WALGO_RTN,      /* round to nearest (quantize), optionally with the clipping search */
  LB_WALGO_GPTQ,     /* gptq, on calibrated Hessians */
  LB_WALGO_AWQ,      /* awq scales (calibrated), then RTN */
  LB_WALGO_AWQ_GPTQ, /* awq scales, then gptq on Hessians of the scaled graph */
  LB_WALGO_COUNT
};
/* "rtn", "gptq", "awq", "awq+gptq"; false for anything else. */
bool lb_weight_algo_parse(const char *s, enum lb_weight_algo *out);
extern const char lb_weight_algo_list[];

struct lb_quant_flow {
  enum lb_quant_scheme scheme;
  bool smoothquant;                /* --smoothquant[=A] */
  double alpha;
  bool outliers;                   /* --outliers=T */
  double threshold;
  const char *calib_dir;           /* --calib: samples */
  const char *load_calib, *save_calib;
  struct lb_calib_method method;   /* --calib-method, --calib-scheme */
  enum lb_calib_scheme calib_scheme;
  const char *report_path;         /* --quant-report */
  /* low-bit weights (w4, w3, w2) */
  int64_t group;                   /* --group-size: 0 = per output column */
  bool asym, clip, act_order;      /* --asym, --clip, --act-order */
  bool act_int8;                   /* --act int8: per-row int8 activations (act=dynamic) */
  enum lb_weight_algo weight_algo; /* --weight-algo */
  double hessian_memory_mb;        /* --hessian-memory: gptq's Hessians held at once (MiB) */
  const char *keep_float;          /* --keep-float globs: those layers stay f32; may be NULL */
  const char *pipeline;            /* the user's pipeline; its plan-memory runs last */
  const struct lb_pass_options *po;/* the user's print/dump/verify options */
  const struct lb_codegen_options *jit; /* cpu/features/opt level of the calibration runs */
  bool verbose;
};

/* Runs on a freshly loaded g:
 *   1. the pipeline without plan-memory;
 *   2. --smoothquant/--outliers: calibrate a copy of g for per-channel
 *      statistics, then smoothquant{alpha=A} with them; then (again with fresh
 *      statistics, of the smoothed graph) split-outliers{threshold=T};
 *   3. w8a8: calibrate a copy of (the smoothed) g and attach the activation
 *      ranges (or --load-calib them); --save-calib writes them;
 *   4. quantize{scheme=S},dce, then the --quant-report against the float g of
 *      step 3, then plan-memory (when the pipeline has it).
 * Low-bit schemes (w4, w3, w2) replace steps 2-4 by the weight algorithm:
 *   awq: calibrate (mean |x| and sampled rows of the layer inputs), then
 *        awq{bits group asym clip} (scales folded into the producers);
 *   gptq: calibrate (Hessians of the layer inputs, of the graph after awq),
 *        then gptq{bits group asym act_order clip},dce; in batches of layer
 *        inputs whose Hessians fit --hessian-memory, each calibrated after
 *        the previous batch is quantized;
 *   rtn (and after awq alone): quantize{scheme=wN group asym clip},dce.
 * Prints the calibration summaries and the quantization summary (one line
 * each) on stderr. With --dump-dir DIR the stages dump into DIR/1-passes,
 * DIR/2-smoothquant, DIR/2-split-outliers, DIR/2-awq, DIR/3-quantize (gptq batches:
 * DIR/3-quantize-1, ...), DIR/4-plan. */
enum lb_status lb_quant_flow_run(struct lb_graph *g, const struct lb_quant_flow *f, struct lb_diag *d);

/* --keep-float GLOBS: fnmatch globs separated by ',' or '|', tried on each of
 * a layer's names: its output value, its node name, and the module path
 * torch.onnx writes into node names ("/blocks.0/attn/proj/MatMul" ->
 * "blocks.0/attn/proj" and "blocks.0.attn.proj"), so 'lm_head', '*.proj' and
 * 'blocks.0.*' all name layers as a PyTorch user knows them. */
struct lb_layer_names {
  const char *names[4];
  int32_t n;
  char buf[2][256];
};
void lb_layer_names_of(const char *value, const char *node, struct lb_layer_names *out);
bool lb_globs_match_layer(const char *globs, const struct lb_layer_names *ln);
/* The first glob of the list that matches none of layers[n] (malloc'ed), or
 * NULL when each matches something: a typo must not silently quantize. */
char *lb_globs_unmatched(const char *globs, const struct lb_layer_names *layers, int32_t n);

/* Progress of a long step on stderr: a bar redrawn per sample when stderr is a
 * terminal, nothing otherwise (callers print a one-line summary). ctx is a
 * struct lb_progress. */
struct lb_progress {
  bool tty;
  const char *what; /* "calibrating" */
};
void lb_progress_show(void *ctx, int64_t done, int64_t total);

#endif
