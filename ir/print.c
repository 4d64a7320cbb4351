/* print.c: placeholder until its owner lands it. */
#include "ir/ir.h"
const struct lb_print_options lb_print_defaults = {LB_PRINT_BLOBS_FULL, 16};
void lb_graph_print(const struct lb_graph *g, FILE *out, const struct lb_print_options *opt) { (void)g; (void)out; (void)opt; }
char *lb_graph_print_string(const struct lb_graph *g, const struct lb_print_options *opt) { (void)g; (void)opt; return NULL; }
