/* eval.c: placeholder until its owner lands it. */
#include "ir/ir.h"
enum lb_status lb_eval_node(const struct lb_graph *g, const struct lb_node *n, const void *const *ins, void *const *outs, struct lb_diag *d) { (void)g; (void)ins; (void)outs; return lb_diag_error(d, LB_ERR_UNSUPPORTED, n, "evaluator not built yet"); }
