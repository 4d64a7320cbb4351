/* parse.c: placeholder until its owner lands it. */
#include "ir/ir.h"
enum lb_status lb_graph_parse(const char *text, size_t len, const char *filename, struct lb_graph **out, struct lb_diag *d) { (void)text; (void)len; (void)filename; *out = NULL; return lb_diag_error(d, LB_ERR_UNSUPPORTED, NULL, "IR parser not built yet"); }
enum lb_status lb_graph_parse_file(const char *path, struct lb_graph **out, struct lb_diag *d) { return lb_graph_parse(NULL, 0, path, out, d); }
