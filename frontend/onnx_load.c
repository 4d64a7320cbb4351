/* onnx_load.c: placeholder until its owner lands it. */
#include "frontend/onnx.h"
enum lb_status lb_onnx_load_buffer(const void *data, size_t len, const char *base_dir, const struct lb_onnx_options *opt, struct lb_graph **out, struct lb_diag *d) { (void)data; (void)len; (void)base_dir; (void)opt; *out = NULL; return lb_diag_error(d, LB_ERR_UNSUPPORTED, NULL, "ONNX loader not built yet"); }
enum lb_status lb_onnx_load_file(const char *path, const struct lb_onnx_options *opt, struct lb_graph **out, struct lb_diag *d) { (void)path; return lb_onnx_load_buffer(NULL, 0, NULL, opt, out, d); }
