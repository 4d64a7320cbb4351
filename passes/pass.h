/* pass.h: the pass manager and the pass table (passes/passes.def). */
#ifndef LB_PASSES_PASS_H
#define LB_PASSES_PASS_H

#include "ir/ir.h"

struct lb_pass_context {
  struct lb_diag *diag;
  bool changed; /* a pass sets this when it modified the graph */
  /* scratch arena, reset after each pass */
  struct lb_arena scratch;
};

typedef enum lb_status (*lb_pass_fn)(struct lb_graph *g, struct lb_pass_context *ctx);

struct lb_pass_info {
  const char *name;    /* command-line name, e.g. "fold-constants" */
  lb_pass_fn run;      /* lb_pass_fold_constants */
  const char *summary; /* one line for --list-passes */
};

#define PASS(name, ident, summary) \
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
};

/* Runs a comma-separated pipeline ("fold-constants,dce"). Unknown pass names
 * are a usage error naming the pass and listing the known ones. */
enum lb_status lb_pass_manager_run(struct lb_graph *g, const char *pipeline,
                                   const struct lb_pass_options *opt, struct lb_diag *d);

#endif
