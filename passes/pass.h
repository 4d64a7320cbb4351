/* pass.h: the pass manager and the pass table (passes/passes.def). */
#ifndef LB_PASSES_PASS_H
#define LB_PASSES_PASS_H

#include "ir/ir.h"

struct lb_calib_stat; /* passes/calib.h */

/* One `key=value` of a pipeline entry `name{key=value ...}`. */
struct lb_pass_arg {
  const char *key, *value;
};

struct lb_pass_context {
  struct lb_diag *diag;
  bool changed; /* a pass sets this when it modified the graph */
  /* scratch arena, reset after each pass */
  struct lb_arena scratch;
  /* the entry's arguments (keys already checked against the pass's list) */
  const struct lb_pass_arg *args;
  int32_t n_args;
  /* calibration statistics, by value name (lb_pass_options.calib); may be empty */
  const struct lb_calib_stat *calib;
  int32_t n_calib;
};

/* The value of argument `key`, or NULL when the pipeline did not give it. */
const char *lb_pass_arg(const struct lb_pass_context *ctx, const char *key);
/* The statistic recorded for value `name`, or NULL. */
const struct lb_calib_stat *lb_pass_calib(const struct lb_pass_context *ctx, const char *name);

typedef enum lb_status (*lb_pass_fn)(struct lb_graph *g, struct lb_pass_context *ctx);

struct lb_pass_info {
  const char *name;    /* command-line name, e.g. "fold-constants" */
  lb_pass_fn run;      /* lb_pass_fold_constants */
  const char *args;    /* accepted argument keys, space-separated; "" for none */
  const char *summary; /* one line for --list-passes */
};

#define PASS(name, ident, args, summary) \
  enum lb_status lb_pass_##ident(struct lb_graph *g, struct lb_pass_context *ctx);
#include "passes/passes.def"
#undef PASS

extern const struct lb_pass_info lb_passes[];
extern const int32_t lb_n_passes;
const struct lb_pass_info *lb_pass_find(const char *name);

/* The pipeline `lowbit compile` runs on float models. */
extern const char *const lb_default_pipeline;

struct lb_pass_options {
  const char *const *print_before; /* pass names; NULL-terminated or NULL */
  const char *const *print_after;
  bool print_before_all, print_after_all;
  bool print_changed;     /* print after a pass only if it changed the graph */
  const char *dump_dir;   /* write NN-<pass>.lbir after each pass (00-input.lbir first) */
  bool verify_each;       /* run lb_graph_verify after every pass */
  bool time_passes;       /* report per-pass wall time on `print_out` at the end */
  FILE *print_out;        /* where printing goes; NULL = stderr */
  enum lb_print_blobs dump_blobs; /* print/dump blob mode; default ELIDED */
  /* calibration statistics handed to every pass (smoothquant, split-outliers) */
  const struct lb_calib_stat *calib;
  int32_t n_calib;
};

/* Runs a comma-separated pipeline ("fold-constants,dce"). An entry may carry
 * arguments: "quantize{scheme=w8a8}", "smoothquant{alpha=0.5 x=y}". Unknown
 * pass names and argument keys are usage errors naming the known ones. */
enum lb_status lb_pass_manager_run(struct lb_graph *g, const char *pipeline,
                                   const struct lb_pass_options *opt, struct lb_diag *d);

#endif
