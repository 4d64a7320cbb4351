/* awq.c: activation-aware weight scaling before low-bit weight quantization
 * (AWQ, Lin et al. 2023).
 *
 * Round-to-nearest with a few bits per weight hurts most on the weight rows
 * that meet large activations: an error of one step there is multiplied by
 * |x_j| in every output. Scaling row j of W up by s_j (and x_j down by s_j, so
 * X.W is unchanged) gives those rows relatively finer steps of the group's
 * scale. For each activation X read by linear layers with constant weights
 * (lb_rw_group_linears: the grouping smoothquant uses), with the calibration
 * statistics of X (lb_pass_calib: "absmean_channel" mean|X_j| and "rows", a
 * reservoir of at most LB_CALIB_MAX_ROWS rows of X, see passes/calib.h):
 *
 *   s(alpha)_j = max(mean|X_j|^alpha, 1e-4), divided by sqrt(max s * min s)
 *   err(alpha) = sum over the group's layers of
 *                || X_r W - X_r (Q(diag(s) W) / s) ||^2   (X_r: the sampled rows)
 *
 * with alpha = i / grid, i = 0 .. grid-1 (the reference implementation's grid:
 * 20 points in [0, 0.95]) and Q round-to-nearest at the given bits, group,
 * (a)symmetry and clip search: the scheme the `quantize` pass applies
 * afterwards, with its own rounding (lb_wq_params_search, lb_wq_code). The
 * alpha of least error wins (the smallest on ties); alpha = 0 means s = 1
 * and the group is left alone. Otherwise W's rows are
 * multiplied by s and X divided by s in its producer (layer_norm, a linear
 * layer without activation, a constant mul) or by an explicit mul
 * (lb_rw_rescale_group, shared with smoothquant; constants "<name>.awq").
 *
 * The weights stay f32: the `quantize` pass (scheme w4/w3/w2 with the same
 * group, asym and clip) does the final rounding. Arguments, with the
 * quantize pass's defaults: bits (2, 3, 4, 8; default 4), group (0 = one
 * group per column; default 32), asym (0/1, default 0; AWQ's reference uses
 * 1), clip (0/1, default 0), grid (points of the alpha search, default 20).
 */
#include "passes/calib.h"
#include "passes/pass.h"
#include "passes/quantize.h"
#include "passes/rewrite.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define AWQ_DEFAULT_BITS 4
#define AWQ_DEFAULT_GROUP 32
#define AWQ_DEFAULT_GRID 20
#define AWQ_MIN_SCALE 1e-4

struct awq_options {
  struct lb_wq_format f;
  bool clip;
  int32_t grid;
};

struct awq_state {
  struct lb_graph *g;
  struct lb_pass_context *ctx;
  struct awq_options o;
  struct lb_rw_rescale rescale;
  int32_t n_scaled, n_folded;
  double alpha_sum, gain_sum; /* for the summary: mean alpha, mean error ratio */
};

/* Quantize-dequantize of a K x N row-major weight in place with the
 * quantize pass's own rounding (lb_wq_params_search, lb_wq_code): what the
 * final `quantize{scheme=w<bits> group asym clip}` will make of it. */
static void fake_quant(float *w, int64_t k, int64_t n, const struct lb_wq_format *f, bool clip) {
  int64_t gs = f->group > 0 ? f->group : k;
  for (int64_t c = 0; c < n; c++) {
    for (int64_t k0 = 0; k0 < k; k0 += gs) {
      int64_t len = k0 + gs <= k ? gs : k - k0;
      float scale;
      int32_t zp;
      lb_wq_params_search(f, w + k0 * n + c, len, n, clip, &scale, &zp);
      for (int64_t r = k0; r < k0 + len; r++)
        w[r * n + c] = scale * (float)(lb_wq_code(f, w[r * n + c], scale, zp) - zp);
    }
  }
}

/* W of a linear layer as K x N row-major (transposed when trans_b). */
static float *weight_kn(const struct lb_rw_linear *l) {
  float *w = malloc(sizeof *w * (size_t)(l->k * l->n));
  if (!w) abort();
  for (int64_t r = 0; r < l->k; r++)
    for (int64_t c = 0; c < l->n; c++) w[r * l->n + c] = l->w_data[lb_rw_linear_index(l, r, c)];
  return w;
}

/* sum over rows of ||X_r D||^2, D = K x N */
static double output_error(const float *x, int64_t rows, int64_t k, const float *d, int64_t n, double *acc) {
  double err = 0;
  for (int64_t r = 0; r < rows; r++) {
    memset(acc, 0, sizeof *acc * (size_t)n);
    const float *xr = x + r * k;
    for (int64_t j = 0; j < k; j++) {
      double xv = xr[j];
      if (xv == 0) continue;
      const float *dj = d + j * n;
      for (int64_t c = 0; c < n; c++) acc[c] += xv * dj[c];
    }
    for (int64_t c = 0; c < n; c++) err += acc[c] * acc[c];
  }
  return err;
}

/* AWQ's scales for one alpha: mean|x|^alpha clamped, normalized by the
 * geometric mean of their extremes. */
static void scales_for(const double *xmean, int64_t k, double alpha, float *s) {
  double mx = 0, mn = INFINITY;
  for (int64_t j = 0; j < k; j++) {
    double v = fmax(pow(xmean[j], alpha), AWQ_MIN_SCALE);
    s[j] = (float)v;
    mx = fmax(mx, v);
    mn = fmin(mn, v);
  }
  double norm = sqrt(mx * mn);
  for (int64_t j = 0; j < k; j++) s[j] = (float)(s[j] / norm);
}

static enum lb_status awq_group(struct awq_state *st, const struct lb_rw_linear_group *grp) {
  struct lb_graph *g = st->g;
  struct lb_value *x = grp->x;
  int64_t k = x->type.shape.dims[x->type.shape.rank - 1];
  const struct lb_calib_stat *stat = lb_pass_calib(st->ctx, x->name);
  if (!stat)
    return lb_diag_error(st->ctx->diag, LB_ERR_INVALID, grp->layers[0],
                         "awq: no calibration statistics for value \"%s\" (calibrate the graph this "
                         "pass runs on)",
                         x->name);
  if (!stat->abssum || !stat->rows || stat->n_channels != k || stat->n_rows == 0)
    return lb_diag_error(st->ctx->diag, LB_ERR_INVALID, grp->layers[0],
                         "awq: calibration statistics of \"%s\" need \"absmean_channel\" and a "
                         "non-empty \"rows\" sample over its %lld channels",
                         x->name, (long long)k);
  int64_t rows = stat->n_rows;
  double *xmean = malloc(sizeof *xmean * (size_t)k);
  float *s = malloc(sizeof *s * (size_t)k), *best_s = malloc(sizeof *best_s * (size_t)k);
  if (!xmean || !s || !best_s) abort();
  for (int64_t j = 0; j < k; j++) xmean[j] = lb_calib_stat_absmean(stat, j);

  /* the group's weights as K x N, and a scratch of the largest */
  int64_t max_n = 0;
  float **w = calloc((size_t)grp->n_layers, sizeof *w);
  int64_t *ns = calloc((size_t)grp->n_layers, sizeof *ns);
  if (!w || !ns) abort();
  for (int32_t i = 0; i < grp->n_layers; i++) {
    struct lb_rw_linear l;
    LB_ASSERT(lb_rw_match_linear(g, grp->layers[i], &l));
    w[i] = weight_kn(&l);
    ns[i] = l.n;
    if (l.n > max_n) max_n = l.n;
  }
  float *d = malloc(sizeof *d * (size_t)(k * max_n));
  double *acc = malloc(sizeof *acc * (size_t)max_n);
  if (!d || !acc) abort();

  double best = INFINITY, best_alpha = 0, base = 0;
  for (int32_t step = 0; step < st->o.grid; step++) {
    double alpha = (double)step / st->o.grid;
    scales_for(xmean, k, alpha, s);
    double err = 0;
    for (int32_t i = 0; i < grp->n_layers; i++) {
      int64_t n = ns[i];
      for (int64_t r = 0; r < k; r++)
        for (int64_t c = 0; c < n; c++) d[r * n + c] = w[i][r * n + c] * s[r];
      fake_quant(d, k, n, &st->o.f, st->o.clip);
      for (int64_t r = 0; r < k; r++)
        for (int64_t c = 0; c < n; c++) d[r * n + c] = d[r * n + c] / s[r] - w[i][r * n + c];
      err += output_error(stat->rows, rows, k, d, n, acc);
    }
    if (step == 0) base = err;
    if (err < best) { /* the first of equal errors: the smallest alpha */
      best = err;
      best_alpha = alpha;
      memcpy(best_s, s, sizeof *s * (size_t)k);
    }
  }
  if (best_alpha > 0) {
    if (lb_rw_rescale_group(&st->rescale, grp, best_s)) st->n_folded++;
    st->n_scaled++;
  }
  st->alpha_sum += best_alpha;
  st->gain_sum += base > 0 ? best / base : 1;
  lb_diag_note(st->ctx->diag, "awq: \"%s\" (%d layers): alpha %.2f, output error %.4g -> %.4g", x->name,
               (int)grp->n_layers, best_alpha, base, best);
  for (int32_t i = 0; i < grp->n_layers; i++) free(w[i]);
  free(w);
  free(ns);
  free(d);
  free(acc);
  free(xmean);
  free(s);
  free(best_s);
  return LB_OK;
}

/* an integer argument in [lo, hi], or `def` when absent */
static bool int_arg(const struct lb_pass_context *ctx, const char *key, int64_t def, int64_t lo, int64_t hi,
                    int64_t *out) {
  const char *text = lb_pass_arg(ctx, key);
  if (!text) {
    *out = def;
    return true;
  }
  char *end;
  long long v = strtoll(text, &end, 10);
  *out = v;
  return end != text && *end == 0 && v >= lo && v <= hi;
}

enum lb_status lb_pass_awq(struct lb_graph *g, struct lb_pass_context *ctx) {
  struct awq_state st = {.g = g, .ctx = ctx};
  int64_t bits, group, asym, clip, grid;
  if (!int_arg(ctx, "bits", AWQ_DEFAULT_BITS, 2, 8, &bits) || (bits != 2 && bits != 3 && bits != 4 && bits != 8))
    return lb_diag_error(ctx->diag, LB_ERR_USAGE, NULL, "awq: bits=%s: expected 2, 3, 4 or 8",
                         lb_pass_arg(ctx, "bits"));
  if (!int_arg(ctx, "group", AWQ_DEFAULT_GROUP, 0, INT32_MAX, &group))
    return lb_diag_error(ctx->diag, LB_ERR_USAGE, NULL,
                         "awq: group=%s: expected a group size >= 1 (0: one group per column)",
                         lb_pass_arg(ctx, "group"));
  if (!int_arg(ctx, "asym", 0, 0, 1, &asym))
    return lb_diag_error(ctx->diag, LB_ERR_USAGE, NULL, "awq: asym=%s: expected 0 or 1", lb_pass_arg(ctx, "asym"));
  if (!int_arg(ctx, "clip", 0, 0, 1, &clip))
    return lb_diag_error(ctx->diag, LB_ERR_USAGE, NULL, "awq: clip=%s: expected 0 or 1", lb_pass_arg(ctx, "clip"));
  if (!int_arg(ctx, "grid", AWQ_DEFAULT_GRID, 1, 1000, &grid))
    return lb_diag_error(ctx->diag, LB_ERR_USAGE, NULL, "awq: grid=%s: expected a number of points in [1, 1000]",
                         lb_pass_arg(ctx, "grid"));
  st.o = (struct awq_options){
      .f = {.bits = (int32_t)bits, .group = group, .asym = asym != 0}, .clip = clip != 0, .grid = (int32_t)grid};
  st.rescale = (struct lb_rw_rescale){.g = g, .suffix = "awq"};

  int32_t n_groups;
  struct lb_rw_linear_group *groups = lb_rw_group_linears(g, &n_groups);
  enum lb_status status = LB_OK;
  for (int32_t i = 0; i < n_groups && status == LB_OK; i++) status = awq_group(&st, &groups[i]);
  lb_rw_linear_groups_free(groups, n_groups);
  if (st.n_scaled > 0) ctx->changed = true;
  lb_rw_rescale_finish(&st.rescale);
  if (status == LB_OK && n_groups > 0)
    lb_diag_note(ctx->diag,
                 "awq: %d activations, %d scaled (%d folded into layer_norm/matmul/mul), mean alpha "
                 "%.2f, mean output error ratio %.3f (w%d g%lld %s)",
                 (int)n_groups, (int)st.n_scaled, (int)st.n_folded, st.alpha_sum / n_groups,
                 st.gain_sum / n_groups, (int)bits, (long long)group, asym ? "asym" : "sym");
  return status;
}
