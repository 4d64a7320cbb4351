/* onnx.h: ONNX ModelProto -> lowbit IR. */
#ifndef LB_FRONTEND_ONNX_H
#define LB_FRONTEND_ONNX_H

#include "ir/ir.h"

/* --dim NAME=VALUE: binds a symbolic dimension (dim_param) of the model. */
struct lb_dim_binding {
  const char *name;
  int64_t value;
};
/* --bind INPUT=FILE: fixes a graph input's value at compile time (a .pb
 * TensorProto or .npy file). The input becomes a constant and is no longer an
 * input of the compiled model. Needed when an input's value decides shapes. */
struct lb_input_binding {
  const char *name;
  const char *path;
};

struct lb_onnx_options {
  const struct lb_dim_binding *dims;
  int32_t n_dims;
  const struct lb_input_binding *binds;
  int32_t n_binds;
  int64_t max_tensor_bytes; /* 0 = default limit (16 GiB); refuses larger declared tensors */
  int32_t max_subgraph_depth; /* 0 = default (8) */
};

/* Loads `path` (external data files resolve inside its folder only), checks
 * every op against the op table and the model's opset imports (listing all
 * unsupported ops at once), binds dims and inputs, and infers every value's
 * type. On error returns a status, *out stays NULL, and d holds the messages. */
enum lb_status lb_onnx_load_file(const char *path, const struct lb_onnx_options *opt,
                                 struct lb_graph **out, struct lb_diag *d);
/* Same from memory; `base_dir` is where external data is looked up (NULL: none allowed). */
enum lb_status lb_onnx_load_buffer(const void *data, size_t len, const char *base_dir,
                                   const struct lb_onnx_options *opt, struct lb_graph **out,
                                   struct lb_diag *d);

#endif
