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
 * the unsmoothed graph. Argument: alpha in [0, 1] (default 0.5). The grouping
 * and the rescaling are lb_rw_group_linears / lb_rw_rescale_group (rewrite.c),
 * shared with awq.
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

struct sq_state {
  struct lb_graph *g;
  struct lb_pass_context *ctx;
  double alpha;
  struct lb_rw_rescale rescale;
  int32_t n_folded, n_explicit;
  double max_factor;
};

/* ---- one activation ----------------------------------------------------------- */

static enum lb_status smooth_group(struct sq_state *st, const struct lb_rw_linear_group *grp) {
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

  if (lb_rw_rescale_group(&st->rescale, grp, s))
    st->n_folded++;
  else
    st->n_explicit++;
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

  st.rescale = (struct lb_rw_rescale){.g = g, .suffix = "smooth"};
  int32_t n_groups;
  struct lb_rw_linear_group *groups = lb_rw_group_linears(g, &n_groups);
  enum lb_status status = LB_OK;
  for (int32_t i = 0; i < n_groups && status == LB_OK; i++) status = smooth_group(&st, &groups[i]);
  lb_rw_linear_groups_free(groups, n_groups);
  if (n_groups > 0) ctx->changed = true;
  lb_rw_rescale_finish(&st.rescale);
  if (status == LB_OK)
    lb_diag_note(ctx->diag,
                 "smoothquant: %d activations, %d folded into layer_norm/matmul/mul, %d explicit "
                 "scale nodes, max factor %.3g (alpha %g)",
                 (int)n_groups, (int)st.n_folded, (int)st.n_explicit, st.max_factor, st.alpha);
  return status;
}
