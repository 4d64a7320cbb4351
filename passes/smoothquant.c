/* smoothquant.c: migrate activation outliers into the weights (SmoothQuant,
 * Xiao et al. 2023) before int8 quantization.
 *
 * A few input channels of a linear layer's activation X can be tens of times
 * larger than the rest; one per-tensor int8 scale sized for them leaves the
 * other channels a handful of levels. Weights are quantized per output
 * column, so they tolerate a row being scaled up. For each activation X read
 * by linear layers with constant weights (lb_rw_match_linear: matmul,
 * fused_matmul, gemm; W is K x N, or N x K with transB), with per-channel
 * calibration statistics max|X_j| (lb_pass_calib(ctx, name)->absmax):
 *
 *   s_j = max|X_j|^alpha / max|W_j|^(1 - alpha)
 *
 * where max|W_j| is over row j of every such consumer's weight; channels with
 * a zero (or non-finite) statistic keep s_j = 1 and s is clamped to
 * [SQ_MIN_FACTOR, SQ_MAX_FACTOR]. Then X_j is divided by s_j and row j of
 * each consumer's weight multiplied by s_j, so X.W is unchanged up to f32
 * rounding. The division is folded into X's producer when X has no readers
 * other than these layers (and is not returned):
 *   - layer_norm (normalizing over the last axis):  gamma_j /= s_j, beta_j /= s_j
 *   - a linear layer with constant weight and act="none": output column j of
 *     its weight and its bias are divided by s_j
 *   - mul(A, C) with a constant C: C is broadcast to [.., K] and divided by s
 * otherwise (gelu output, attention output, graph input, or X has other
 * readers) an explicit `mul(X, 1/s)` is inserted and only the smoothed layers
 * read it: "an explicit scale node only where nothing can absorb it".
 * Rewritten constants are always fresh copies (a weight or gamma shared with
 * another node is never changed under it); the replaced ones are removed when
 * nothing else reads them.
 *
 * Activation ranges change, so the graph must be calibrated again (for
 * activation scales) after this pass; the statistics it reads are those of
 * the unsmoothed graph. Argument: alpha in [0, 1] (default 0.5).
 */
#include "passes/calib.h"
#include "passes/pass.h"
#include "passes/rewrite.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define SQ_DEFAULT_ALPHA 0.5
#define SQ_MIN_FACTOR 1e-4
#define SQ_MAX_FACTOR 1e4

/* The linear layers that read one activation, in node order. */
struct sq_group {
  struct lb_value *x;
  struct lb_node **layers;
  int32_t n_layers, cap_layers;
  bool exclusive; /* the layers are X's only readers */
};

struct sq_state {
  struct lb_graph *g;
  struct lb_pass_context *ctx;
  double alpha;
  struct lb_node **replaced; /* const nodes whose readers got a rewritten copy */
  int32_t n_replaced, cap_replaced;
  int32_t n_folded, n_explicit;
  double max_factor;
};

static void *grow(void *p, int32_t *cap, int32_t need, size_t elem) {
  if (need <= *cap) return p;
  int32_t c = *cap ? *cap * 2 : 8;
  while (c < need) c *= 2;
  p = realloc(p, elem * (size_t)c);
  if (!p) abort();
  *cap = c;
  return p;
}

static void note_replaced(struct sq_state *st, struct lb_value *old) {
  st->replaced = grow(st->replaced, &st->cap_replaced, st->n_replaced + 1, sizeof *st->replaced);
  st->replaced[st->n_replaced++] = old->producer;
}

/* A fresh const with old's type holding `data`, placed before `reader`, which
 * is made to read it at input `slot` instead of old. */
static void replace_const_input(struct sq_state *st, struct lb_node *reader, int32_t slot,
                                const struct lb_type *type, const float *data, const char *suffix) {
  struct lb_value *old = reader->inputs[slot];
  char base[256];
  snprintf(base, sizeof base, "%s.%s", old->name, suffix);
  struct lb_node *c = lb_graph_insert_const(st->g, reader, base, type, data);
  reader->inputs[slot] = c->outputs[0];
  note_replaced(st, old);
}

static float *copy_f32(const struct lb_graph *g, const struct lb_value *v) {
  int64_t n = lb_shape_numel(&v->type.shape);
  float *p = malloc(sizeof *p * (size_t)(n ? n : 1));
  if (!p) abort();
  memcpy(p, lb_value_const_data(g, v), sizeof *p * (size_t)n);
  return p;
}

/* A constant f32 whose elements are one per channel of a K-channel last dim. */
static bool per_channel_const(const struct lb_graph *g, const struct lb_value *v, int64_t k) {
  return v && v->type.dtype == LB_DTYPE_F32 && lb_value_const_data(g, v) && !v->qparams &&
         v->type.shape.rank >= 1 && lb_shape_numel(&v->type.shape) == k &&
         v->type.shape.dims[v->type.shape.rank - 1] == k;
}

/* ---- folding 1/s into X's producer ------------------------------------------ */

static bool fold_into_layer_norm(struct sq_state *st, struct lb_node *ln, const float *s, int64_t k) {
  int32_t rank = ln->inputs[0]->type.shape.rank;
  int64_t axis = lb_node_attr_int(ln, "axis", -1);
  if (axis < 0) axis += rank;
  if (axis != rank - 1 || !per_channel_const(st->g, ln->inputs[1], k)) return false;
  if (ln->n_inputs > 2 && ln->inputs[2] && !per_channel_const(st->g, ln->inputs[2], k)) return false;
  for (int32_t slot = 1; slot < ln->n_inputs && slot <= 2; slot++) {
    if (!ln->inputs[slot]) continue;
    float *p = copy_f32(st->g, ln->inputs[slot]);
    for (int64_t j = 0; j < k; j++) p[j] /= s[j];
    replace_const_input(st, ln, slot, &ln->inputs[slot]->type, p, "smooth");
    free(p);
  }
  return true;
}

static bool fold_into_linear(struct sq_state *st, struct lb_node *mm, const float *s, int64_t k) {
  struct lb_rw_linear l;
  if (!lb_rw_match_linear(st->g, mm, &l) || strcmp(l.act, "none") != 0 || l.n != k) return false;
  if (l.bias && !per_channel_const(st->g, l.bias, k)) return false;
  float *w = copy_f32(st->g, l.w);
  for (int64_t r = 0; r < l.k; r++)
    for (int64_t c = 0; c < l.n; c++) w[lb_rw_linear_index(&l, r, c)] /= s[c];
  replace_const_input(st, mm, 1, &l.w->type, w, "smooth");
  free(w);
  if (l.bias) {
    float *b = copy_f32(st->g, l.bias);
    for (int64_t c = 0; c < k; c++) b[c] /= s[c];
    replace_const_input(st, mm, 2, &l.bias->type, b, "smooth");
    free(b);
  }
  return true;
}

/* mul(A, C) with A of X's type and C a constant: C becomes C' (C broadcast
 * to last dim K) / s, which leaves the result's type unchanged. */
static bool fold_into_mul(struct sq_state *st, struct lb_node *mul, const float *s, int64_t k) {
  struct lb_value *x = mul->outputs[0];
  int32_t slot = lb_value_is_const(mul->inputs[1]) ? 1 : lb_value_is_const(mul->inputs[0]) ? 0 : -1;
  if (slot < 0 || lb_value_is_const(mul->inputs[1 - slot])) return false;
  struct lb_value *a = mul->inputs[1 - slot], *c = mul->inputs[slot];
  if (a->type.dtype != LB_DTYPE_F32 || !lb_shape_equal(&a->type.shape, &x->type.shape)) return false;
  if (c->type.dtype != LB_DTYPE_F32 || !lb_value_const_data(st->g, c) || c->qparams) return false;
  struct lb_type t = c->type;
  int64_t last = t.shape.rank ? t.shape.dims[t.shape.rank - 1] : 1;
  if (last != 1 && last != k) return false;
  if (t.shape.rank == 0) t.shape.rank = 1;
  t.shape.dims[t.shape.rank - 1] = k;
  int64_t rows = lb_shape_numel(&t.shape) / k;
  const float *src = lb_value_const_data(st->g, c);
  float *p = malloc(sizeof *p * (size_t)(rows * k));
  if (!p) abort();
  for (int64_t r = 0; r < rows; r++)
    for (int64_t j = 0; j < k; j++) p[r * k + j] = src[r * last + (last == 1 ? 0 : j)] / s[j];
  replace_const_input(st, mul, slot, &t, p, "smooth");
  free(p);
  return true;
}

static bool fold_into_producer(struct sq_state *st, struct lb_value *x, const float *s, int64_t k) {
  struct lb_node *p = x->producer;
  if (!p || p->dead || x->producer_output != 0) return false;
  switch (p->op) {
  case LB_OP_LAYER_NORM: return fold_into_layer_norm(st, p, s, k);
  case LB_OP_MATMUL:
  case LB_OP_FUSED_MATMUL:
  case LB_OP_GEMM: return fold_into_linear(st, p, s, k);
  case LB_OP_MUL: return fold_into_mul(st, p, s, k);
  default: return false;
  }
}

/* ---- one activation ----------------------------------------------------------- */

static enum lb_status smooth_group(struct sq_state *st, const struct sq_group *grp) {
  struct lb_graph *g = st->g;
  struct lb_value *x = grp->x;
  int64_t k = x->type.shape.dims[x->type.shape.rank - 1];
  const struct lb_calib_stat *stat = lb_pass_calib(st->ctx, x->name);
  if (!stat)
    return lb_diag_error(st->ctx->diag, LB_ERR_INVALID, grp->layers[0],
                         "smoothquant: no calibration statistics for value \"%s\" (calibrate the "
                         "graph this pass runs on)",
                         x->name);
  if (!stat->absmax || stat->n_channels != k)
    return lb_diag_error(st->ctx->diag, LB_ERR_INVALID, grp->layers[0],
                         "smoothquant: calibration statistics of \"%s\" have no per-channel absmax "
                         "over its %lld channels (have %lld)",
                         x->name, (long long)k, (long long)(stat->absmax ? stat->n_channels : 0));

  double *wmax = calloc((size_t)k, sizeof *wmax);
  float *s = malloc(sizeof *s * (size_t)k);
  if (!wmax || !s) abort();
  for (int32_t i = 0; i < grp->n_layers; i++) {
    struct lb_rw_linear l;
    LB_ASSERT(lb_rw_match_linear(g, grp->layers[i], &l));
    for (int64_t r = 0; r < k; r++)
      for (int64_t c = 0; c < l.n; c++)
        wmax[r] = fmax(wmax[r], fabs((double)l.w_data[lb_rw_linear_index(&l, r, c)]));
  }
  for (int64_t j = 0; j < k; j++) {
    double xm = stat->absmax[j], f = 1;
    if (xm > 0 && wmax[j] > 0 && isfinite(xm) && isfinite(wmax[j]))
      f = pow(xm, st->alpha) / pow(wmax[j], 1 - st->alpha);
    s[j] = (float)fmin(fmax(f, SQ_MIN_FACTOR), SQ_MAX_FACTOR);
    st->max_factor = fmax(st->max_factor, s[j]);
  }

  /* the readers' weights: row j times s_j */
  for (int32_t i = 0; i < grp->n_layers; i++) {
    struct lb_rw_linear l;
    LB_ASSERT(lb_rw_match_linear(g, grp->layers[i], &l));
    float *w = copy_f32(g, l.w);
    for (int64_t r = 0; r < k; r++)
      for (int64_t c = 0; c < l.n; c++) w[lb_rw_linear_index(&l, r, c)] *= s[r];
    replace_const_input(st, grp->layers[i], 1, &l.w->type, w, "smooth");
    free(w);
  }

  /* X itself: divided by s in its producer, or by an explicit mul */
  if (grp->exclusive && fold_into_producer(st, x, s, k)) {
    st->n_folded++;
  } else {
    float *inv = malloc(sizeof *inv * (size_t)k);
    if (!inv) abort();
    for (int64_t j = 0; j < k; j++) inv[j] = 1.0f / s[j];
    char base[256];
    snprintf(base, sizeof base, "%s.smooth_scale", x->name);
    struct lb_type t = {.dtype = LB_DTYPE_F32, .shape = {.rank = 1, .dims = {k}}};
    struct lb_value *sc = lb_graph_insert_const(g, grp->layers[0], base, &t, inv)->outputs[0];
    free(inv);
    snprintf(base, sizeof base, "%s.smooth", x->name);
    const char *names[1] = {base};
    struct lb_value *in[2] = {x, sc};
    /* named after the layer it serves, as the other inserted nodes (loc) */
    struct lb_node *mul =
        lb_graph_insert_node(g, grp->layers[0], LB_OP_MUL, grp->layers[0]->name, in, 2, names, 1);
    mul->outputs[0]->type = x->type;
    for (int32_t i = 0; i < grp->n_layers; i++) grp->layers[i]->inputs[0] = mul->outputs[0];
    st->n_explicit++;
  }
  free(wmax);
  free(s);
  return LB_OK;
}

static bool parse_alpha(const char *text, double *alpha) {
  if (!text) {
    *alpha = SQ_DEFAULT_ALPHA;
    return true;
  }
  char *end;
  *alpha = strtod(text, &end);
  return end != text && *end == 0 && *alpha >= 0 && *alpha <= 1;
}

enum lb_status lb_pass_smoothquant(struct lb_graph *g, struct lb_pass_context *ctx) {
  struct sq_state st = {.g = g, .ctx = ctx};
  if (!parse_alpha(lb_pass_arg(ctx, "alpha"), &st.alpha))
    return lb_diag_error(ctx->diag, LB_ERR_USAGE, NULL,
                         "smoothquant: alpha=%s: expected a number in [0, 1]", lb_pass_arg(ctx, "alpha"));

  /* group the linear layers by the activation they read (first reader first) */
  int32_t *uses = lb_rw_count_uses(g);
  int32_t *group_of = malloc(sizeof *group_of * (size_t)(g->n_values ? g->n_values : 1));
  if (!group_of) abort();
  for (int32_t i = 0; i < g->n_values; i++) group_of[i] = -1;
  struct sq_group *groups = NULL;
  int32_t n_groups = 0, cap_groups = 0;
  for (int32_t i = 0; i < g->n_nodes; i++) {
    struct lb_rw_linear l;
    if (!lb_rw_match_linear(g, g->nodes[i], &l)) continue;
    int32_t gi = group_of[l.x->id];
    if (gi < 0) {
      groups = grow(groups, &cap_groups, n_groups + 1, sizeof *groups);
      groups[n_groups] = (struct sq_group){.x = l.x};
      gi = group_of[l.x->id] = n_groups++;
    }
    struct sq_group *grp = &groups[gi];
    grp->layers = grow(grp->layers, &grp->cap_layers, grp->n_layers + 1, sizeof *grp->layers);
    grp->layers[grp->n_layers++] = g->nodes[i];
  }
  for (int32_t i = 0; i < n_groups; i++) groups[i].exclusive = uses[groups[i].x->id] == groups[i].n_layers;
  free(uses);
  free(group_of);

  enum lb_status status = LB_OK;
  for (int32_t i = 0; i < n_groups && status == LB_OK; i++) status = smooth_group(&st, &groups[i]);
  for (int32_t i = 0; i < n_groups; i++) free(groups[i].layers);
  free(groups);

  if (n_groups > 0) {
    ctx->changed = true;
    uses = lb_rw_count_uses(g);
    for (int32_t i = 0; i < st.n_replaced; i++)
      if (lb_rw_unused(st.replaced[i], uses)) st.replaced[i]->dead = true;
    free(uses);
    lb_graph_compact(g);
  }
  free(st.replaced);
  if (status == LB_OK)
    lb_diag_note(ctx->diag,
                 "smoothquant: %d activations, %d folded into layer_norm/matmul/mul, %d explicit "
                 "scale nodes, max factor %.3g (alpha %g)",
                 (int)n_groups, (int)st.n_folded, (int)st.n_explicit, st.max_factor, st.alpha);
  return status;
}
