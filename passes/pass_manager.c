/* pass_manager.c: placeholder until its owner lands it. */
#include "passes/pass.h"
#define PASS(name, ident, summary) \
  enum lb_status lb_pass_##ident(struct lb_graph *g, struct lb_pass_context *ctx) { (void)g; return lb_diag_error(ctx->diag, LB_ERR_UNSUPPORTED, NULL, "pass %s not built yet", name); }
#include "passes/passes.def"
#undef PASS
const struct lb_pass_info lb_passes[] = {
#define PASS(name, ident, summary) {name, lb_pass_##ident, summary},
#include "passes/passes.def"
#undef PASS
};
const int32_t lb_n_passes = sizeof lb_passes / sizeof lb_passes[0];
const char *const lb_default_pipeline = "infer-shapes,simplify,fold-constants,cse,dce,fuse,dce,plan-memory";
const struct lb_pass_info *lb_pass_find(const char *name) { (void)name; return NULL; }
enum lb_status lb_pass_manager_run(struct lb_graph *g, const char *pipeline, const struct lb_pass_options *opt, struct lb_diag *d) { (void)g; (void)pipeline; (void)opt; return lb_diag_error(d, LB_ERR_UNSUPPORTED, NULL, "pass manager not built yet"); }
