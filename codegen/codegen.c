/* codegen.c: placeholder until its owner lands it. */
#include "codegen/codegen.h"
enum lb_status lb_codegen_compile(struct lb_graph *g, const struct lb_codegen_options *o, struct lb_diag *d) { (void)g; (void)o; return lb_diag_error(d, LB_ERR_UNSUPPORTED, NULL, "code generator not built yet"); }
