/* rewrite.h: small helpers the passes share (use counts, constant scalars,
 * in-place node rewriting). Internal to passes/; not part of the IR API. */
#ifndef LB_PASSES_REWRITE_H
#define LB_PASSES_REWRITE_H

#include "ir/ir.h"

/* uses[v->id] = reads of v by live (not dead) nodes plus graph outputs.
 * Renumbers value ids. Caller frees. */
int32_t *lb_rw_count_uses(struct lb_graph *g);

bool lb_rw_is_graph_output(const struct lb_graph *g, const struct lb_value *v);
bool lb_rw_is_graph_input(const struct lb_graph *g, const struct lb_value *v);

/* Element i of a dense buffer of dtype `dt`, converted to double. False for
 * types it cannot read (bool, unknown). */
bool lb_rw_load_double(enum lb_dtype dt, const void *data, int64_t i, double *out);

/* True when v is a const whose data is present and whose elements are all
 * equal ("splat"); *out receives the element. */
bool lb_rw_const_splat(const struct lb_graph *g, const struct lb_value *v, double *out);

/* |a - b| <= tol * max(1, |b|). */
bool lb_rw_near(double a, double b, double tol);

/* The node producing v when it is a live node of op `op`, else NULL. */
struct lb_node *lb_rw_producer(const struct lb_value *v, enum lb_op op);

/* Turns n into `op` with the given inputs (copied into the graph arena) and
 * no attributes. n's outputs, name and position are kept. */
void lb_rw_reset_node(struct lb_graph *g, struct lb_node *n, enum lb_op op,
                      struct lb_value *const *inputs, int32_t n_inputs);

/* Inserts an already-built node at position `pos` of g->nodes. */
void lb_rw_insert_at(struct lb_graph *g, int32_t pos, struct lb_node *n);

/* A blob name not used by any blob in g, based on `base` (arena). */
const char *lb_rw_unique_blob_name(struct lb_graph *g, const char *base);

/* Makes every use of `from` read `to` instead, where `from` is the output of a
 * node about to be removed and has the same type as `to`. If `from` is a graph
 * output, its name is kept visible to the caller: the producer of `to` is
 * made to produce `from` instead (possible when `to` is a node output that is
 * neither a graph input nor a graph output). Returns false, changing nothing,
 * when that is impossible. */
bool lb_rw_forward_value(struct lb_graph *g, struct lb_value *from, struct lb_value *to);

/* True if every output of n is used by nothing (uses from lb_rw_count_uses). */
bool lb_rw_unused(const struct lb_node *n, const int32_t *uses);

/* A linear layer with a constant weight: matmul(x, W), fused_matmul(x, W,
 * bias?) or gemm(x, W, c?) with transA = 0, where x is a non-constant f32
 * value whose last dim is K and W a constant f32 [K,N] (or [N,K] with
 * transB) with data and no qparams. W's element (k, n) is
 * w[trans_b ? n*K + k : k*N + n]. Nodes marked keep_float=1 (split-outliers'
 * float part, --lora adapters) are not matched. Used by smoothquant, awq and
 * split-outliers. */
struct lb_rw_linear {
  struct lb_value *x, *w, *bias; /* bias: input 2 or NULL */
  const float *w_data;
  int64_t k, n;
  bool trans_b;
  const char *act; /* fused_matmul's act, "none" otherwise */
};
bool lb_rw_match_linear(const struct lb_graph *g, const struct lb_node *node,
                        struct lb_rw_linear *out);
static inline int64_t lb_rw_linear_index(const struct lb_rw_linear *l, int64_t k, int64_t n) {
  return l->trans_b ? n * l->k + k : k * l->n + n;
}

/* The linear layers (lb_rw_match_linear) that read one activation x, in node
 * order; `exclusive` when they are x's only readers (and x is not returned).
 * SmoothQuant and AWQ rescale each group's input channels together. */
struct lb_rw_linear_group {
  struct lb_value *x;
  struct lb_node **layers; /* heap */
  int32_t n_layers, cap_layers;
  bool exclusive;
};
/* Heap array of the groups of g, first reader first; free with
 * lb_rw_linear_groups_free. */
struct lb_rw_linear_group *lb_rw_group_linears(struct lb_graph *g, int32_t *n_groups);
void lb_rw_linear_groups_free(struct lb_rw_linear_group *groups, int32_t n_groups);

/* Per-input-channel rescaling of a group (SmoothQuant, AWQ): row j of every
 * layer's weight is multiplied by s[j] and x_j divided by s[j], so x.W is
 * unchanged up to f32 rounding. The division is folded into x's producer when
 * the group is exclusive:
 *   - layer_norm (over the last axis): gamma_j /= s_j, beta_j /= s_j
 *   - a linear layer with constant weight and act="none": output column j of
 *     its weight and its bias are divided by s_j
 *   - mul(A, C) with a constant C: C is broadcast to [.., K] and divided by s
 * otherwise an explicit `mul(x, 1/s)` ("<x>.<suffix>", its constant
 * "<x>.<suffix>_scale") is inserted and only the group's layers read it.
 * Rewritten constants are fresh copies named "<old>.<suffix>" (a weight or
 * gamma shared with another node is never changed under it); the replaced
 * ones are remembered and removed by lb_rw_rescale_finish when nothing else
 * reads them. */
struct lb_rw_rescale {
  struct lb_graph *g;
  const char *suffix;
  struct lb_node **replaced; /* const nodes whose readers got a rewritten copy */
  int32_t n_replaced, cap_replaced;
};
/* True when 1/s was folded into x's producer, false for an explicit mul. */
bool lb_rw_rescale_group(struct lb_rw_rescale *r, const struct lb_rw_linear_group *grp, const float *s);
/* Removes the replaced constants nothing reads any more, compacts the graph
 * and frees r's memory. */
void lb_rw_rescale_finish(struct lb_rw_rescale *r);

#endif
