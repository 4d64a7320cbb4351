/* gptq.c: low-bit weights by GPTQ (Frantar et al. 2022, "GPTQ: Accurate
 * Post-Training Quantization for Generative Pre-trained Transformers").
 *
 *   gptq{bits=4 group=32 asym=0 act_order=0 damp=0.01 block=128 clip=0 act=none partial=0}
 *
 * Every linear layer the quantize pass would rewrite (lb_quant_classify) with
 * a calibrated Hessian statistic of its input x (lb_pass_calib(ctx, x):
 * kind "hessian", sum x x^T over the calibration tokens) becomes the same
 * qmatmul RTN makes (docs/ir-ops.md "Low-bit weights"; the format and the
 * per-group scale rule are lb_wq_params in passes/quantize.h), but with codes
 * chosen to minimize the layer's output error ||X W - X W_q||^2 on the
 * calibration tokens instead of each weight's own error.
 *
 * Per layer, on W as rows w_n (one per output column n) over the K inputs:
 *  - H = 2 X^T X / tokens. Inputs never active (H_kk = 0) get H_kk = 1 and
 *    their weights zeroed (they do not change the output on any token seen).
 *  - act_order=1: the inputs are visited by descending H_kk (the ones that
 *    matter most go first, when the most error can still be compensated),
 *    and the codes are put back in order at the end.
 *  - Dampening: H_kk += damp * mean(diag H) (damp 0.01 default).
 *  - U = the upper Cholesky factor of H^-1 (H^-1 = U^T U), with LAPACKE:
 *    dpotrf + dpotri invert H, dpotrf factors the inverse.
 *  - Inputs k in order, in blocks of `block` (128): quantize column k of every
 *    row, q = deq(code(w_nk)), err_n = (w_nk - q) / U_kk, then w_nj -= err_n
 *    U_kj for the rest of the block (j > k); after a block, the later blocks
 *    get all its errors at once (W[:, rest] -= E U[block, rest], one dgemm:
 *    the lazy batch update). The block is rounded up to a multiple of the
 *    group, so a group's scale is always computed from fully updated weights.
 *  - Scales: with groups, when the walk reaches the first input of a group,
 *    from that group's current (updated) weights, as the reference does; per
 *    column (group=0), once from the original weights. With act_order and
 *    groups the walk does not follow k, but the IR's groups are consecutive k:
 *    every group's scale is computed up front from the original weights (the
 *    reference's "static_groups"; its g_idx alternative needs a group index
 *    per k, which the qmatmul format does not have).
 *  - clip=1: each group's scale by RTN's clipping search (lb_wq_params_search).
 *
 * Memory: the pass needs the K x K Hessian of each layer's input (calibration
 * keeps one per observed value, codegen/calibrate.c and passes/calib.h) plus
 * W, H^-1 and the block's errors in double for the layer it works on.
 * partial=1 quantizes only the layers whose input has a Hessian and leaves
 * the others as they are (partial=0: each missing one is an error): the
 * driver calibrates a batch of layer inputs at a time to bound the Hessians'
 * memory (tools/quant_flow.c, --hessian-memory).
 * Progress: one line per layer on stderr (rewritten in place on a terminal).
 */
#include <lapacke.h>

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "passes/calib.h"
#include "passes/pass.h"
#include "passes/gptq.h"
#include "passes/quantize.h"


static void *xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (!p) abort();
  return p;
}

/* One layer's result, in the qmatmul layout. */
struct qweight {
  int8_t *codes; /* [K,N] */
  float *scales; /* [groups * N] */
  int32_t *zps;  /* [groups * N] or NULL */
};

struct diag_entry {
  double d;
  int64_t k;
};
static int cmp_desc_diag(const void *a, const void *b) {
  const struct diag_entry *x = a, *y = b;
  if (x->d != y->d) return x->d > y->d ? -1 : 1;
  return x->k < y->k ? -1 : 1; /* ties keep k order: deterministic */
}

/* The group parameters of row n over inputs [k0, k0 + len) of w (row-major
 * [N][K] double), through a float copy (RTN's rule). */
static void group_params(const struct lb_gptq_params *o, const double *wrow, int64_t len, float *tmp, float *scale,
                         int32_t *zp) {
  for (int64_t j = 0; j < len; j++) tmp[j] = (float)wrow[j];
  lb_wq_params_search(&o->fmt, tmp, len, 1, o->clip, scale, zp);
}

/* GPTQ on one layer. w: [N][K] double (rows = output columns), modified;
 * h: [K][K] = 2 X^T X / tokens, modified. Returns the sum over rows of the
 * GPTQ loss (err^2 / 2 in U-scaled units, as the reference reports), or NAN
 * when H^-1 has no Cholesky factor. */
static double gptq_layer(const struct lb_gptq_params *o, int64_t k, int64_t n, double *w, double *h,
                         struct qweight *out) {
  const struct lb_wq_format *f = &o->fmt;
  int64_t gs = f->group > 0 ? f->group : k, ng = lb_wq_groups(f, k);
  /* dead inputs */
  for (int64_t i = 0; i < k; i++)
    if (h[i * k + i] == 0) {
      h[i * k + i] = 1;
      for (int64_t r = 0; r < n; r++) w[r * k + i] = 0;
    }
  /* the walk order; perm[j] = the input visited j-th */
  int64_t *perm = xmalloc(sizeof *perm * (size_t)k);
  for (int64_t i = 0; i < k; i++) perm[i] = i;
  if (o->act_order) {
    struct diag_entry *e = xmalloc(sizeof *e * (size_t)k);
    for (int64_t i = 0; i < k; i++) e[i] = (struct diag_entry){h[i * k + i], i};
    qsort(e, (size_t)k, sizeof *e, cmp_desc_diag);
    for (int64_t i = 0; i < k; i++) perm[i] = e[i].k;
    free(e);
  }
  /* static group parameters (per column, or act_order with groups): from the
   * original weights, before any update */
  bool static_groups = f->group == 0 || o->act_order;
  float *tmp = xmalloc(sizeof *tmp * (size_t)gs);
  if (static_groups)
    for (int64_t r = 0; r < n; r++)
      for (int64_t g = 0; g < ng; g++) {
        int64_t k0 = g * gs, len = k0 + gs <= k ? gs : k - k0;
        group_params(o, w + r * k + k0, len, tmp, &out->scales[g * n + r], out->zps ? &out->zps[g * n + r] : &(int32_t){0});
      }
  /* permute W's columns and H */
  double *wp = xmalloc(sizeof *wp * (size_t)(n * k)), *hp = xmalloc(sizeof *hp * (size_t)(k * k));
  for (int64_t r = 0; r < n; r++)
    for (int64_t j = 0; j < k; j++) wp[r * k + j] = w[r * k + perm[j]];
  for (int64_t i = 0; i < k; i++)
    for (int64_t j = 0; j < k; j++) hp[i * k + j] = h[perm[i] * k + perm[j]];
  /* dampening, then U = chol(H^-1) upper */
  double mean = 0;
  for (int64_t i = 0; i < k; i++) mean += hp[i * k + i];
  mean /= (double)k;
  for (int64_t i = 0; i < k; i++) hp[i * k + i] += o->damp * mean;
  lapack_int info = LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'U', (lapack_int)k, hp, (lapack_int)k);
  if (info == 0) info = LAPACKE_dpotri(LAPACK_ROW_MAJOR, 'U', (lapack_int)k, hp, (lapack_int)k);
  if (info == 0) info = LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'U', (lapack_int)k, hp, (lapack_int)k);
  double loss = NAN;
  if (info != 0) goto out;
  for (int64_t i = 0; i < k; i++)
    for (int64_t j = 0; j < i; j++) hp[i * k + j] = 0; /* U: only the upper triangle is ours */
  loss = 0;
  int64_t block = o->block;
  if (f->group > 0 && !static_groups) block = (block + gs - 1) / gs * gs;
  double *err = xmalloc(sizeof *err * (size_t)(n * block));
  int32_t *codes = xmalloc(sizeof *codes * (size_t)(n * k)); /* [N][K] in walk order */
  for (int64_t i1 = 0; i1 < k; i1 += block) {
    int64_t i2 = i1 + block < k ? i1 + block : k, cnt = i2 - i1;
    for (int64_t i = i1; i < i2; i++) {
      int64_t kk = perm[i], g = kk / gs;
      if (!static_groups && i % gs == 0) /* i == kk here */
        for (int64_t r = 0; r < n; r++) {
          int64_t len = i + gs <= k ? gs : k - i;
          group_params(o, wp + r * k + i, len, tmp, &out->scales[g * n + r],
                       out->zps ? &out->zps[g * n + r] : &(int32_t){0});
        }
      double d = hp[i * k + i];
      for (int64_t r = 0; r < n; r++) {
        float s = out->scales[g * n + r];
        int32_t z = out->zps ? out->zps[g * n + r] : 0;
        double x = wp[r * k + i];
        int32_t c = lb_wq_code(f, (float)x, s, z);
        double q = (double)s * (c - z), e = (x - q) / d;
        codes[r * k + i] = c;
        loss += (x - q) * (x - q) / (d * d) / 2;
        err[r * cnt + (i - i1)] = e;
        double *wr = wp + r * k;
        const double *u = hp + i * k;
        for (int64_t j = i + 1; j < i2; j++) wr[j] -= e * u[j];
      }
    }
    if (i2 < k) /* W[:, i2:] -= E[N, cnt] U[i1:i2, i2:] */
      cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)(k - i2), (int)cnt, -1.0, err, (int)cnt,
                  hp + i1 * k + i2, (int)k, 1.0, wp + i2, (int)k);
  }
  for (int64_t r = 0; r < n; r++)
    for (int64_t j = 0; j < k; j++) out->codes[perm[j] * n + r] = (int8_t)codes[r * k + j];
  free(err);
  free(codes);
out:
  free(perm);
  free(tmp);
  free(wp);
  free(hp);
  return loss;
}

enum lb_status lb_gptq_quantize_ref(const float *w, int64_t k, int64_t n, bool trans_b, const double *h,
                                    const struct lb_gptq_params *p, int8_t *codes, float *scales, int32_t *zps,
                                    double *loss) {
  double *wd = xmalloc(sizeof *wd * (size_t)(n * k)), *hd = xmalloc(sizeof *hd * (size_t)(k * k));
  for (int64_t r = 0; r < n; r++)
    for (int64_t i = 0; i < k; i++) wd[r * k + i] = trans_b ? w[r * k + i] : w[i * n + r];
  memcpy(hd, h, sizeof *hd * (size_t)(k * k));
  struct qweight out = {.codes = codes, .scales = scales, .zps = zps};
  double l = gptq_layer(p, k, n, wd, hd, &out);
  free(wd);
  free(hd);
  if (loss) *loss = l;
  return isnan(l) ? LB_ERR_INVALID : LB_OK;
}

/* ---- arguments --------------------------------------------------------------- */

static enum lb_status num_arg(struct lb_pass_context *ctx, const char *key, double lo, double hi, bool integer,
                              double *out) {
  const char *v = lb_pass_arg(ctx, key);
  if (!v) return LB_OK;
  char *end;
  double x = strtod(v, &end);
  if (end == v || *end || !(x >= lo && x <= hi) || (integer && x != floor(x)))
    return lb_diag_error(ctx->diag, LB_ERR_USAGE, NULL, "pass gptq: %s must be %s in [%g, %g], not \"%s\"", key,
                         integer ? "an integer" : "a number", lo, hi, v);
  *out = x;
  return LB_OK;
}

static enum lb_status parse_args(struct lb_pass_context *ctx, struct lb_gptq_params *o, const char **a_quant) {
  double bits = 4, group = 32, asym = 0, act_order = 0, damp = 0.01, block = 128, clip = 0;
  enum lb_status st = num_arg(ctx, "bits", 2, 4, true, &bits);
  if (st == LB_OK) st = num_arg(ctx, "group", 0, 1 << 30, true, &group);
  if (st == LB_OK) st = num_arg(ctx, "asym", 0, 1, true, &asym);
  if (st == LB_OK) st = num_arg(ctx, "act_order", 0, 1, true, &act_order);
  if (st == LB_OK) st = num_arg(ctx, "damp", 0, 1, false, &damp);
  if (st == LB_OK) st = num_arg(ctx, "block", 1, 1 << 20, true, &block);
  if (st == LB_OK) st = num_arg(ctx, "clip", 0, 1, true, &clip);
  if (st != LB_OK) return st;
  *o = (struct lb_gptq_params){.fmt = {.bits = (int32_t)bits, .group = (int64_t)group, .asym = asym != 0},
                               .act_order = act_order != 0, .clip = clip != 0, .damp = damp,
                               .block = (int64_t)block};
  *a_quant = "none";
  const char *act = lb_pass_arg(ctx, "act");
  if (act && strcmp(act, "dynamic") == 0) *a_quant = "dynamic";
  else if (act && strcmp(act, "none") != 0)
    return lb_diag_error(ctx->diag, LB_ERR_USAGE, NULL,
                         "pass gptq: act must be none (f32 activations) or dynamic (int8 per row), not \"%s\"", act);
  return LB_OK;
}

/* ---- the pass ------------------------------------------------------------------ */

static bool is_linear(const struct lb_graph *g, const struct lb_node *n) {
  return (n->op == LB_OP_MATMUL || n->op == LB_OP_GEMM || n->op == LB_OP_FUSED_MATMUL) &&
         lb_quant_classify(g, n) == LB_QSKIP_NONE;
}

/* The Hessian statistic of the layer's input, or NULL (with why in *why). */
static const struct lb_calib_stat *hessian_of(struct lb_pass_context *ctx, const struct lb_quant_linear *l,
                                              const char **why) {
  const struct lb_calib_stat *s = lb_pass_calib(ctx, l->a->name);
  *why = !s ? "no calibration statistics"
         : !s->xtx ? "calibration statistics without \"hessian\""
         : s->n_channels != l->k ? "a Hessian of the wrong size"
         : s->hessian_rows == 0 ? "a Hessian of no tokens" : NULL;
  return *why ? NULL : s;
}

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

enum lb_status lb_pass_gptq(struct lb_graph *g, struct lb_pass_context *ctx) {
  struct lb_gptq_params p;
  const char *a_quant;
  double partial = 0;
  enum lb_status st = parse_args(ctx, &p, &a_quant);
  if (st == LB_OK) st = num_arg(ctx, "partial", 0, 1, true, &partial);
  if (st != LB_OK) return st;
  /* every layer needs its input's Hessian (partial: only those with one are
   * quantized): list all the missing ones first */
  int32_t layers = 0, missing = 0;
  for (int32_t i = 0; i < g->n_nodes; i++) {
    struct lb_node *n = g->nodes[i];
    if (!is_linear(g, n)) continue;
    struct lb_quant_linear l;
    lb_quant_linear_of(g, n, &l);
    const char *why;
    if (hessian_of(ctx, &l, &why)) {
      layers++;
      continue;
    }
    if (partial) continue;
    layers++;
    lb_diag_error(ctx->diag, LB_ERR_INVALID, n, "gptq: input \"%s\" of \"%s\" has %s", l.a->name,
                  n->outputs[0]->name, why);
    missing++;
  }
  if (missing)
    return lb_diag_error(ctx->diag, LB_ERR_INVALID, NULL,
                         "gptq needs the Hessian of every layer's input (%d of %d layers above lack one): "
                         "calibrate with the \"hessian\" statistic (lowbit compile --weight-algo gptq --calib DIR)",
                         (int)missing, (int)layers);
  bool tty = isatty(2) != 0;
  int32_t done = 0;
  for (int32_t i = 0; i < g->n_nodes; i++) {
    struct lb_node *n = g->nodes[i];
    if (!is_linear(g, n)) continue;
    double t0 = now_ms();
    struct lb_quant_linear l;
    lb_quant_linear_of(g, n, &l);
    const char *why;
    const struct lb_calib_stat *s = hessian_of(ctx, &l, &why);
    if (!s && partial) continue;
    LB_ASSERT(s); /* checked above; quantizing earlier layers does not change later inputs */
    int64_t k = l.k, nn = l.n, ng = lb_wq_groups(&p.fmt, k);
    double *h = xmalloc(sizeof *h * (size_t)(k * k));
    for (int64_t j = 0; j < k * k; j++) h[j] = 2 * s->xtx[j] / (double)s->hessian_rows;
    struct lb_qparams qp = {.bits = p.fmt.bits, .axis = 1, .group_size = (int32_t)p.fmt.group,
                            .symmetric = !p.fmt.asym, .is_unsigned = p.fmt.asym, .n = ng * nn};
    int8_t *codes = xmalloc((size_t)(k * nn));
    qp.scales = xmalloc(sizeof *qp.scales * (size_t)qp.n);
    if (p.fmt.asym) qp.zero_points = xmalloc(sizeof *qp.zero_points * (size_t)qp.n);
    double loss;
    st = lb_gptq_quantize_ref(lb_value_const_data(g, l.w), k, nn, l.trans_b, h, &p, codes, qp.scales,
                              qp.zero_points, &loss);
    free(h);
    if (st == LB_OK) i = lb_quant_rewrite(g, i, codes, &qp, a_quant);
    free(codes);
    free(qp.scales);
    free(qp.zero_points);
    if (st != LB_OK)
      return lb_diag_error(ctx->diag, st, n,
                           "gptq: the Hessian of \"%s\" is not positive definite after dampening (damp=%g); "
                           "try a larger damp",
                           l.a->name, p.damp);
    done++;
    fprintf(stderr, "%slowbit: gptq %d/%d %s [%lld x %lld] loss %.4g (%.0f ms)%s", tty ? "\r\033[K" : "",
            (int)done, (int)layers, n->outputs[0]->name, (long long)k, (long long)nn, loss, now_ms() - t0,
            tty && done < layers ? "" : "\n");
    fflush(stderr);
  }
  ctx->changed = done > 0;
  return LB_OK;
}
