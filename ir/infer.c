/* infer.c: placeholder until its owner lands it. */
#include "ir/ir.h"
enum lb_status lb_infer_node(struct lb_graph *g, struct lb_node *n, struct lb_diag *d) { (void)g; return lb_diag_error(d, LB_ERR_UNSUPPORTED, n, "shape rules not built yet"); }
