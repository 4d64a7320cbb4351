/* split_outliers.c: LLM.int8()-style mixed precision (Dettmers et al. 2022).
 *
 * A linear layer whose activation X has a few input channels far larger than
 * the rest is split in two along K: the inlier channels go through the
 * (later int8) matmul, the outlier channels through a small float matmul, and
 * the two partial sums are added before the bias-free activation:
 *
 *   %y = fused_matmul(%x, %W, %b) {act="gelu"}
 * =>
 *   %x.inliers  = mul(%x, %mask)                       mask_j = 0 for outliers, 1 else
 *   %y.int8     = fused_matmul(%x.inliers, %W.inliers, %b) {act="none"}
 *   %x.outliers = gather(%x, %idx) {axis=<last>}       idx = the outlier channels
 *   %y.float    = fused_matmul(%x.outliers, %W.outliers) {act="none", keep_float=1}
 *   %y.sum      = add(%y.int8, %y.float)
 *   %y          = gelu(%y.sum)                         (add directly when act="none")
 *
 * Outliers are the channels j whose calibrated max|x_j|
 * (lb_pass_calib(ctx, name)->absmax) exceeds `threshold` (default 6.0, the
 * paper's). The mask makes the calibrated range of %x.inliers exclude them,
 * which is the point; W.inliers is W with the outlier rows zeroed (they would
 * multiply zeros anyway), W.outliers those rows as a [n_outliers, N] weight
 * (times alpha for gemm). `keep_float=1` tells the quantize pass to leave the
 * small matmul in float. The final node is the original one rewritten, so the
 * result keeps its value and name. Layers reading the same X share the mask
 * and gather. Layers with no outlier channel, or only outliers, are left
 * alone. The function is unchanged up to f32 rounding (the sum is split in
 * two). Run it before calibrating activation ranges and before `quantize`.
 */
#include "passes/calib.h"
#include "passes/pass.h"
#include "passes/rewrite.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define SO_DEFAULT_THRESHOLD 6.0

/* The inlier and outlier views of one activation, made at its first split reader. */
struct so_split {
  struct lb_value *inliers, *outliers;
  int64_t *idx; /* outlier channels, ascending */
  int64_t n_out;
};

static struct lb_value *insert_op(struct lb_graph *g, struct lb_node *before, enum lb_op op,
                                  const char *base, struct lb_value **in, int32_t n_in,
                                  const struct lb_type *type) {
  const char *names[1] = {base};
  /* the new node carries the name (loc) of the layer it was split from */
  struct lb_node *n = lb_graph_insert_node(g, before, op, before->name, in, n_in, names, 1);
  n->outputs[0]->type = *type;
  return n->outputs[0];
}

static const char *with_suffix(char *buf, size_t len, const char *name, const char *suffix) {
  snprintf(buf, len, "%s.%s", name, suffix);
  return buf;
}

/* Builds x's inlier (masked) and outlier (gathered) views before `reader`.
 * Returns false (building nothing) when x has no outlier or only outliers. */
static bool make_split(struct lb_graph *g, struct lb_node *reader, struct lb_value *x,
                       const struct lb_calib_stat *stat, double threshold, struct so_split *sp) {
  int64_t k = stat->n_channels;
  sp->idx = malloc(sizeof *sp->idx * (size_t)k);
  float *mask = malloc(sizeof *mask * (size_t)k);
  if (!sp->idx || !mask) abort();
  sp->n_out = 0;
  for (int64_t j = 0; j < k; j++) {
    bool out = stat->absmax[j] > threshold; /* NaN statistics count as inliers */
    mask[j] = out ? 0.0f : 1.0f;
    if (out) sp->idx[sp->n_out++] = j;
  }
  if (sp->n_out == 0 || sp->n_out == k) {
    free(mask);
    return false;
  }
  char buf[256];
  struct lb_type mt = {.dtype = LB_DTYPE_F32, .shape = {.rank = 1, .dims = {k}}};
  struct lb_value *m = lb_graph_insert_const(g, reader, with_suffix(buf, sizeof buf, x->name, "inlier_mask"),
                                             &mt, mask)->outputs[0];
  free(mask);
  struct lb_value *in[2] = {x, m};
  sp->inliers = insert_op(g, reader, LB_OP_MUL, with_suffix(buf, sizeof buf, x->name, "inliers"), in, 2, &x->type);

  struct lb_type it = {.dtype = LB_DTYPE_I64, .shape = {.rank = 1, .dims = {sp->n_out}}};
  struct lb_value *idx = lb_graph_insert_const(g, reader, with_suffix(buf, sizeof buf, x->name, "outlier_idx"),
                                               &it, sp->idx)->outputs[0];
  struct lb_type ot = x->type;
  int32_t axis = ot.shape.rank - 1;
  ot.shape.dims[axis] = sp->n_out;
  in[1] = idx;
  sp->outliers = insert_op(g, reader, LB_OP_GATHER, with_suffix(buf, sizeof buf, x->name, "outliers"), in, 2, &ot);
  lb_node_set_attr_int(g, sp->outliers->producer, "axis", axis);
  return true;
}

static enum lb_op act_op(const char *act) {
  if (strcmp(act, "relu") == 0) return LB_OP_RELU;
  if (strcmp(act, "gelu") == 0 || strcmp(act, "gelu_tanh") == 0) return LB_OP_GELU;
  if (strcmp(act, "sigmoid") == 0) return LB_OP_SIGMOID;
  if (strcmp(act, "tanh") == 0) return LB_OP_TANH;
  return LB_OP_COUNT; /* "none" */
}

/* Rewrites linear layer n (matched as l) to read sp's two views. */
static void split_layer(struct lb_graph *g, struct lb_node *n, const struct lb_rw_linear *l,
                        const struct so_split *sp) {
  struct lb_value *y = n->outputs[0];
  char buf[256];
  /* the int8 part: W with the outlier rows zeroed, original attributes but no act */
  float *w = malloc(sizeof *w * (size_t)(l->k * l->n));
  if (!w) abort();
  memcpy(w, l->w_data, sizeof *w * (size_t)(l->k * l->n));
  for (int64_t i = 0; i < sp->n_out; i++)
    for (int64_t c = 0; c < l->n; c++) w[lb_rw_linear_index(l, sp->idx[i], c)] = 0;
  struct lb_value *w_in = lb_graph_insert_const(g, n, with_suffix(buf, sizeof buf, l->w->name, "inliers"),
                                                &l->w->type, w)->outputs[0];
  free(w);
  struct lb_value *in[3] = {sp->inliers, w_in, l->bias};
  struct lb_value *y_int8 = insert_op(g, n, n->op, with_suffix(buf, sizeof buf, y->name, "int8"), in,
                                      l->bias ? 3 : 2, &y->type);
  struct lb_node *int8_node = y_int8->producer;
  int8_node->attrs = lb_arena_alloc(&g->arena, sizeof *int8_node->attrs * (size_t)(n->n_attrs ? n->n_attrs : 1));
  if (n->n_attrs) memcpy(int8_node->attrs, n->attrs, sizeof *int8_node->attrs * (size_t)n->n_attrs);
  int8_node->n_attrs = n->n_attrs;
  if (n->op == LB_OP_FUSED_MATMUL) lb_node_set_attr_string(g, int8_node, "act", "none");

  /* the float part: the outlier rows as an untransposed [n_out, N] weight */
  double alpha = n->op == LB_OP_GEMM ? lb_node_attr_float(n, "alpha", 1.0) : 1.0;
  float *wo = malloc(sizeof *wo * (size_t)(sp->n_out * l->n));
  if (!wo) abort();
  for (int64_t i = 0; i < sp->n_out; i++)
    for (int64_t c = 0; c < l->n; c++)
      wo[i * l->n + c] = (float)(alpha * l->w_data[lb_rw_linear_index(l, sp->idx[i], c)]);
  struct lb_type wot = {.dtype = LB_DTYPE_F32, .shape = {.rank = 2, .dims = {sp->n_out, l->n}}};
  struct lb_value *w_out = lb_graph_insert_const(g, n, with_suffix(buf, sizeof buf, l->w->name, "outliers"),
                                                 &wot, wo)->outputs[0];
  free(wo);
  in[0] = sp->outliers;
  in[1] = w_out;
  struct lb_value *y_float = insert_op(g, n, LB_OP_FUSED_MATMUL, with_suffix(buf, sizeof buf, y->name, "float"),
                                       in, 2, &y->type);
  lb_node_set_attr_string(g, y_float->producer, "act", "none");
  lb_node_set_attr_int(g, y_float->producer, "keep_float", 1);

  /* the sum, then the activation, in the original node (keeps y) */
  in[0] = y_int8;
  in[1] = y_float;
  enum lb_op act = act_op(l->act);
  if (act == LB_OP_COUNT) {
    lb_rw_reset_node(g, n, LB_OP_ADD, in, 2);
    return;
  }
  bool gelu_tanh = strcmp(l->act, "gelu_tanh") == 0;
  struct lb_value *sum = insert_op(g, n, LB_OP_ADD, with_suffix(buf, sizeof buf, y->name, "sum"), in, 2, &y->type);
  lb_rw_reset_node(g, n, act, &sum, 1);
  if (gelu_tanh) lb_node_set_attr_string(g, n, "approximate", "tanh");
}

enum lb_status lb_pass_split_outliers(struct lb_graph *g, struct lb_pass_context *ctx) {
  double threshold = SO_DEFAULT_THRESHOLD;
  const char *arg = lb_pass_arg(ctx, "threshold");
  if (arg) {
    char *end;
    threshold = strtod(arg, &end);
    if (end == arg || *end || !(threshold > 0) || !isfinite(threshold))
      return lb_diag_error(ctx->diag, LB_ERR_USAGE, NULL,
                           "split-outliers: threshold=%s: expected a positive number", arg);
  }
  /* the layers, collected first: splitting inserts nodes */
  int32_t n_layers = 0;
  struct lb_node **layers = malloc(sizeof *layers * (size_t)(g->n_nodes ? g->n_nodes : 1));
  struct lb_node **old_weights = malloc(sizeof *old_weights * (size_t)(g->n_nodes ? g->n_nodes : 1));
  if (!layers || !old_weights) abort();
  for (int32_t i = 0; i < g->n_nodes; i++) {
    struct lb_rw_linear l;
    if (lb_rw_match_linear(g, g->nodes[i], &l) && lb_node_attr_int(g->nodes[i], "keep_float", 0) == 0)
      layers[n_layers++] = g->nodes[i];
  }
  lb_graph_index_values(g);
  /* per activation: 0 = not seen, 1 = split made (in splits[id]), -1 = nothing to split */
  int32_t nv = g->n_values;
  struct so_split *splits = calloc((size_t)(nv ? nv : 1), sizeof *splits);
  int8_t *seen = calloc((size_t)(nv ? nv : 1), 1);
  if (!splits || !seen) abort();
  enum lb_status status = LB_OK;
  int32_t n_split = 0;
  int64_t n_channels = 0;
  for (int32_t i = 0; i < n_layers; i++) {
    struct lb_node *n = layers[i];
    struct lb_rw_linear l;
    LB_ASSERT(lb_rw_match_linear(g, n, &l));
    int32_t id = l.x->id;
    if (seen[id] == 0) {
      const struct lb_calib_stat *stat = lb_pass_calib(ctx, l.x->name);
      if (!stat || !stat->absmax || stat->n_channels != l.k) {
        status = lb_diag_error(ctx->diag, LB_ERR_INVALID, n,
                               "split-outliers: no per-channel calibration statistics (absmax over "
                               "%lld channels) for value \"%s\"",
                               (long long)l.k, l.x->name);
        break;
      }
      seen[id] = make_split(g, n, l.x, stat, threshold, &splits[id]) ? 1 : -1;
      if (seen[id] == 1) n_channels += splits[id].n_out;
    }
    if (seen[id] < 0) continue;
    split_layer(g, n, &l, &splits[id]);
    old_weights[n_split++] = l.w->producer;
  }
  if (n_split) { /* the original weights, unless something else reads them */
    int32_t *uses = lb_rw_count_uses(g);
    for (int32_t i = 0; i < n_split; i++)
      if (lb_rw_unused(old_weights[i], uses)) old_weights[i]->dead = true;
    free(uses);
    lb_graph_compact(g);
  }
  free(old_weights);
  for (int32_t i = 0; i < nv; i++) free(splits[i].idx);
  free(splits);
  free(seen);
  free(layers);
  if (n_split) ctx->changed = true;
  if (status == LB_OK)
    lb_diag_note(ctx->diag, "split-outliers: %d matmuls, %lld outlier channels (threshold %g)",
                 (int)n_split, (long long)n_channels, threshold);
  return status;
}
