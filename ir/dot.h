/* dot.h: a graph as Graphviz DOT (ir/dot.c), for `--dump-dot FILE`.
 *
 * One box per op (op, node name, output types), edges from producer to
 * consumer labelled with the value's type, graph inputs and outputs as their
 * own shapes; constants are folded into the label of the node that reads them.
 * Every weight-bearing node (matmul, gemm, fused_matmul, qmatmul, conv with a
 * constant weight) is filled by its weight's precision (f32, f16, fp8, int8,
 * 4/3/2-bit: a fixed palette) with the precision written in its label, and a
 * legend lists the precisions present. The output depends only on the graph. */
#ifndef LB_IR_DOT_H
#define LB_IR_DOT_H

#include <stdio.h>

#include "ir/ir.h"

/* The precision classes the palette colours, in legend order. */
enum lb_dot_precision {
  LB_DOT_NONE = 0, /* no constant weight (activations only) */
  LB_DOT_F32,
  LB_DOT_F16,
  LB_DOT_FP8,
  LB_DOT_INT8,
  LB_DOT_W4,
  LB_DOT_W3,
  LB_DOT_W2,
  LB_DOT_OTHER, /* a weight of another type (bf16, f64, other bit widths) */
  LB_DOT_PRECISION_COUNT
};

/* The precision class of node n's weight, and its text ("w4 g32 asym", "fp8
 * e4m3", "w8a8 dynamic", "f16", "f32") in buf when buf is not NULL. */
enum lb_dot_precision lb_dot_node_precision(const struct lb_node *n, char *buf, size_t len);

/* Writes g as DOT to out. */
void lb_graph_write_dot(const struct lb_graph *g, FILE *out);
/* Writes g as DOT to path atomically (lb_atomic_open / lb_atomic_commit). */
enum lb_status lb_graph_dump_dot(const struct lb_graph *g, const char *path, struct lb_diag *d);

#endif
