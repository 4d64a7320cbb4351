/* quantize.c: rewrite linear layers with constant weights into `qmatmul`.
 *
 *   quantize{scheme=w8a8|w8a8-dynamic|w8}
 *   quantize{scheme=w4|w3|w2 group=32 asym=0 clip=0 act=none}
 *   quantize{scheme=fp8|fp8-e5m2 group=0}
 *   quantize{scheme=f16}
 *
 * Every matmul / gemm / fused_matmul whose second operand is a constant 2-D
 * f32 weight becomes `qmatmul(%a, %w.q, %bias?) {a_quant, act}` (contract in
 * docs/ir-ops.md, "Quantized matmul"):
 *
 *   %h = fused_matmul(%x, %w, %b) {act="gelu", transB=1} : f32[1,8,64]
 * =>
 *   %w.q = const i8[16,64] q<bits=8, axis=1, group=0, sym, scales=[...]> blob<...>
 *   %h = qmatmul(%x, %w.q, %b) {a_quant="static", act="gelu"} : f32[1,8,64]
 *
 * Weights: symmetric int8 per output channel, scale[n] = max_k |w[k,n]| / 127
 * and q = round_half_even(w / scale) (so the largest weight of a column is
 * exactly representable and no code is wasted on a zero point). A transposed
 * weight (transB) is transposed here, at compile time: the kernel always reads
 * [K,N]. The bias stays f32 and is added after the int32 accumulation is
 * scaled back, which is exact enough and needs no bias requantization.
 *
 * Low-bit weights (w4, w3, w2; round to nearest, "RTN"): codes per weight,
 * one f16 scale per `group` consecutive k of a column (group=0: per column;
 * default 32), symmetric (scale = amax / (2^(b-1) - 1/2), signed codes) or
 * with asym=1 asymmetric (min/max -> scale and zero point, unsigned codes);
 * clip=1 searches each group's range shrink for the least squared error
 * (lb_wq_params in quantize.h has the formulas). Activations stay f32
 * (act=none, default) or are quantized per row at run time (act=dynamic).
 *
 * FP8 weights (fp8: E4M3, fp8-e5m2: E5M2): u8 codes of 8-bit floats, one
 * f16 scale per column (group=0, default) or group, scale = amax / largest
 * finite value (448 or 57344) rounded to the nearest f16 not below it (the
 * largest weight is never clipped; f16 subnormal scales of tiny columns are
 * coarse), codes rounded to nearest even
 * (lb_fp8_quantize_ref); activations stay f32.
 *
 * F16 weights (f16): the weight as IEEE half, a const f16[K,N] without
 * qparams (no scales: f16's exponent covers any weight), each value rounded to
 * nearest even (lb_f16_quantize_ref); inf and NaN weights stay what they are,
 * but a finite weight beyond 65504 that would round to infinity is an error
 * naming the node: silently changing a layer's function is worse than
 * refusing it (w8 or float suit such a weight). Activations stay f32.
 *
 * Activations (a_quant): "static" (w8a8) uses the per-tensor range the
 * calibration attached to the operand (q<...> on %x; --calib/--load-calib),
 * "dynamic" (w8a8-dynamic) lets the kernel pick one scale per row at run
 * time, "none" (w8) keeps them f32. A static scheme with uncalibrated operands
 * is an error that lists every such layer at once.
 *
 * The node is rewritten in place: its output value, name and position are
 * kept, so the float and quantized graphs still match layer by layer (the
 * quantization report relies on that). Nodes that do not fit (two activation
 * operands, gemm with transA or alpha != 1, weights that are not 2-D, ...)
 * and nodes marked keep_float=1 (the float outlier part split-outliers made)
 * stay float; lb_quant_summarize counts them by reason. The old float
 * weights become unused: run dce afterwards. Convolutions are not quantized.
 */
#include "passes/quantize.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "passes/pass.h"
#include "passes/rewrite.h"

const char lb_quant_scheme_list[] = "w8a8, w8a8-dynamic, w8, w4, w3, w2, fp8, fp8-e5m2, f16";

static const char *const scheme_names[LB_QUANT_SCHEME_COUNT] = {
    [LB_QUANT_W8A8] = "w8a8", [LB_QUANT_W8A8_DYNAMIC] = "w8a8-dynamic", [LB_QUANT_W8] = "w8",
    [LB_QUANT_W4] = "w4",     [LB_QUANT_W3] = "w3",                     [LB_QUANT_W2] = "w2",
    [LB_QUANT_FP8] = "fp8",   [LB_QUANT_FP8_E5M2] = "fp8-e5m2",                     [LB_QUANT_F16] = "f16"};
/* the low-bit schemes take theirs from the pass argument act */
static const char *const a_quant_names[LB_QUANT_SCHEME_COUNT] = {
    [LB_QUANT_W8A8] = "static", [LB_QUANT_W8A8_DYNAMIC] = "dynamic", [LB_QUANT_W8] = "none",
    [LB_QUANT_FP8] = "none",    [LB_QUANT_FP8_E5M2] = "none",       [LB_QUANT_F16] = "none"};

int32_t lb_quant_scheme_bits(enum lb_quant_scheme s) {
  LB_ASSERT(s >= 0 && s < LB_QUANT_SCHEME_COUNT);
  return s == LB_QUANT_W4 ? 4 : s == LB_QUANT_W3 ? 3 : s == LB_QUANT_W2 ? 2 : s == LB_QUANT_F16 ? 16 : 8;
}

enum lb_qfloat lb_quant_scheme_fp8(enum lb_quant_scheme s) {
  return s == LB_QUANT_FP8 ? LB_QFLOAT_E4M3 : s == LB_QUANT_FP8_E5M2 ? LB_QFLOAT_E5M2 : LB_QFLOAT_NONE;
}

bool lb_quant_scheme_parse(const char *s, enum lb_quant_scheme *out) {
  for (int i = 0; i < LB_QUANT_SCHEME_COUNT; i++)
    if (s && strcmp(s, scheme_names[i]) == 0) {
      *out = (enum lb_quant_scheme)i;
      return true;
    }
  return false;
}

const char *lb_quant_scheme_name(enum lb_quant_scheme s) {
  LB_ASSERT(s >= 0 && s < LB_QUANT_SCHEME_COUNT);
  return scheme_names[s];
}

const char *lb_quant_skip_reason(enum lb_quant_skip r) {
  static const char *const reasons[LB_QSKIP_COUNT] = {
      [LB_QSKIP_NONE] = "quantizable",
      [LB_QSKIP_TWO_ACTIVATIONS] = "with two activation operands",
      [LB_QSKIP_CONST_LHS] = "with the constant as first operand",
      [LB_QSKIP_WEIGHT_RANK] = "with a constant weight that is not 2-D",
      [LB_QSKIP_NO_DATA] = "with an elided constant weight (no data)",
      [LB_QSKIP_TRANS_A] = "gemm with transA=1",
      [LB_QSKIP_ALPHA] = "gemm with alpha != 1",
      [LB_QSKIP_BIAS] = "with a bias that is not a constant per-column vector",
      [LB_QSKIP_DTYPE] = "not f32",
      [LB_QSKIP_KEEP_FLOAT] = "kept float by keep_float=1 (--keep-float, outlier parts, LoRA adapters)",
  };
  LB_ASSERT(r >= 0 && r < LB_QSKIP_COUNT);
  return reasons[r];
}

static bool is_matmul_family(enum lb_op op) {
  return op == LB_OP_MATMUL || op == LB_OP_GEMM || op == LB_OP_FUSED_MATMUL;
}

/* A fitting node, taken apart. */
struct linear {
  struct lb_value *a, *w, *c; /* c: bias (fused_matmul) or gemm's C; may be NULL */
  bool trans_b;
  int64_t k, n;
  double beta;                /* gemm: the factor of C */
};

/* A gemm C that adds the same vector to every row: const f32 of N or 1
 * elements, shaped [N], [1,N], [1] or []. */
static bool row_vector(const struct lb_graph *g, const struct lb_value *c, int64_t n) {
  if (!lb_value_const_data(g, c) || c->type.dtype != LB_DTYPE_F32) return false;
  const struct lb_shape *s = &c->type.shape;
  if (s->rank > 2 || (s->rank == 2 && s->dims[0] != 1)) return false;
  int64_t ne = lb_shape_numel(s);
  return ne == 1 || ne == n;
}

static enum lb_quant_skip take_apart(const struct lb_graph *g, const struct lb_node *n, struct linear *l) {
  LB_ASSERT(is_matmul_family(n->op));
  memset(l, 0, sizeof *l);
  l->a = n->inputs[0];
  l->w = n->inputs[1];
  l->c = n->n_inputs > 2 ? n->inputs[2] : NULL;
  l->beta = 1.0;
  if (lb_node_attr_int(n, "keep_float", 0)) return LB_QSKIP_KEEP_FLOAT;
  if (l->a->type.dtype != LB_DTYPE_F32 || l->w->type.dtype != LB_DTYPE_F32) return LB_QSKIP_DTYPE;
  if (lb_value_is_const(l->w) && !lb_value_const_data(g, l->w)) return LB_QSKIP_NO_DATA;
  if (!lb_value_is_const(l->w))
    return lb_value_is_const(l->a) ? LB_QSKIP_CONST_LHS : LB_QSKIP_TWO_ACTIVATIONS;
  if (l->w->type.shape.rank != 2) return LB_QSKIP_WEIGHT_RANK;
  if (n->op != LB_OP_MATMUL) l->trans_b = lb_node_attr_int(n, "transB", 0) != 0;
  const int64_t *wd = l->w->type.shape.dims;
  l->k = l->trans_b ? wd[1] : wd[0];
  l->n = l->trans_b ? wd[0] : wd[1];
  if (n->op == LB_OP_GEMM) {
    if (lb_node_attr_int(n, "transA", 0)) return LB_QSKIP_TRANS_A;
    if (lb_node_attr_float(n, "alpha", 1.0) != 1.0) return LB_QSKIP_ALPHA;
    l->beta = lb_node_attr_float(n, "beta", 1.0);
    if (l->c && !row_vector(g, l->c, l->n)) return LB_QSKIP_BIAS;
  }
  if (l->c && l->c->type.dtype != LB_DTYPE_F32) return LB_QSKIP_DTYPE;
  return LB_QSKIP_NONE;
}

enum lb_quant_skip lb_quant_classify(const struct lb_graph *g, const struct lb_node *n) {
  struct linear l;
  return take_apart(g, n, &l);
}

void lb_quant_weight_ref(const float *w, int64_t k, int64_t n, bool trans_b, int8_t *q, float *scales) {
  /* w[kk, j] of the logical [K,N] weight */
#define W(kk, j) (trans_b ? w[(j) * k + (kk)] : w[(kk) * n + (j)])
  for (int64_t j = 0; j < n; j++) {
    float amax = 0;
    for (int64_t kk = 0; kk < k; kk++) {
      float v = fabsf(W(kk, j));
      if (v > amax) amax = v; /* NaN never wins: the comparison is false */
    }
    float s = amax > 0 && isfinite(amax) ? amax / 127.0f : 1.0f;
    scales[j] = s;
    for (int64_t kk = 0; kk < k; kk++) {
      double r = nearbyint((double)W(kk, j) / (double)s); /* default mode: half to even */
      if (!(r == r)) r = 0;
      q[kk * n + j] = (int8_t)(r > 127 ? 127 : r < -127 ? -127 : r);
    }
  }
#undef W
}

/* ---- low-bit weights ---------------------------------------------------------- */

int64_t lb_wq_groups(const struct lb_wq_format *f, int64_t k) {
  return f->group > 0 ? (k + f->group - 1) / f->group : 1;
}

float lb_quant_round_f16(float x) {
  const double max_f16 = 65504;
  double a = fabs((double)x);
  if (!(a > 0)) return 0; /* 0 and NaN */
  if (a >= max_f16) return (float)copysign(max_f16, x);
  int e;
  frexp(a, &e); /* a in [2^(e-1), 2^e) */
  int shift = e - 1 < -14 ? 24 : 10 - (e - 1); /* the last mantissa bit is 2^-shift */
  double r = ldexp(nearbyint(ldexp(a, shift)), -shift);
  if (r > max_f16) r = max_f16;
  return (float)copysign(r, x);
}

/* a positive f16 scale: never 0 (a group of tiny weights keeps the smallest) */
static float f16_scale(double s) {
  float r = lb_quant_round_f16((float)s);
  return r > 0 ? r : (float)ldexp(1, -24);
}

void lb_wq_params(const struct lb_wq_format *f, const float *x, int64_t n, int64_t stride, float shrink,
                  float *scale, int32_t *zp) {
  double lo = 0, hi = 0; /* the range always holds 0: a zero weight stays exact */
  for (int64_t i = 0; i < n; i++) {
    double v = x[i * stride];
    if (v < lo) lo = v; /* NaN never wins */
    if (v > hi) hi = v;
  }
  lo *= shrink;
  hi *= shrink;
  *zp = 0;
  if (!f->asym) {
    double amax = fmax(-lo, hi);
    *scale = amax > 0 && isfinite(amax) ? f16_scale(amax / ((double)(1 << (f->bits - 1)) - 0.5)) : 1.0f;
    return;
  }
  int32_t maxq = (1 << f->bits) - 1;
  if (!(hi - lo > 0) || !isfinite(hi - lo)) {
    *scale = 1.0f;
    return;
  }
  *scale = f16_scale((hi - lo) / maxq);
  double z = nearbyint(-lo / *scale);
  *zp = (int32_t)(z < 0 ? 0 : z > maxq ? maxq : z);
}

int32_t lb_wq_code(const struct lb_wq_format *f, float x, float scale, int32_t zp) {
  int32_t lo = f->asym ? 0 : -(1 << (f->bits - 1));
  int32_t hi = f->asym ? (1 << f->bits) - 1 : (1 << (f->bits - 1)) - 1;
  double r = nearbyint((double)x / (double)scale) + zp; /* default mode: half to even */
  if (!(r == r)) r = zp;
  return (int32_t)(r < lo ? lo : r > hi ? hi : r);
}

static double group_sq_error(const struct lb_wq_format *f, const float *x, int64_t n, int64_t stride,
                             float scale, int32_t zp) {
  double e = 0;
  for (int64_t i = 0; i < n; i++) {
    double d = (double)x[i * stride] - (double)scale * (lb_wq_code(f, x[i * stride], scale, zp) - zp);
    e += d * d;
  }
  return e;
}

void lb_wq_params_search(const struct lb_wq_format *f, const float *x, int64_t n, int64_t stride, bool clip,
                         float *scale, int32_t *zp) {
  lb_wq_params(f, x, n, stride, 1.0f, scale, zp);
  if (!clip) return;
  double best = group_sq_error(f, x, n, stride, *scale, *zp);
  for (int i = 1; i <= 20; i++) {
    float s;
    int32_t z;
    lb_wq_params(f, x, n, stride, 1.0f - (float)i / 40.0f, &s, &z);
    double e = group_sq_error(f, x, n, stride, s, z);
    if (e < best) {
      best = e;
      *scale = s;
      *zp = z;
    }
  }
}

void lb_wq_quantize_ref(const float *w, int64_t k, int64_t n, bool trans_b, const struct lb_wq_format *f,
                        bool clip, int8_t *q, float *scales, int32_t *zps) {
  int64_t gs = f->group > 0 ? f->group : k, ng = lb_wq_groups(f, k);
  /* the column as [K] with a stride: w[kk, j] is col[kk * stride] */
  int64_t stride = trans_b ? 1 : n;
  for (int64_t j = 0; j < n; j++) {
    const float *col = trans_b ? w + j * k : w + j;
    for (int64_t g = 0; g < ng; g++) {
      int64_t k0 = g * gs, len = k0 + gs <= k ? gs : k - k0;
      float s;
      int32_t z;
      lb_wq_params_search(f, col + k0 * stride, len, stride, clip, &s, &z);
      scales[g * n + j] = s;
      if (zps) zps[g * n + j] = z;
      for (int64_t kk = k0; kk < k0 + len; kk++) q[kk * n + j] = (int8_t)lb_wq_code(f, col[kk * stride], s, z);
    }
  }
}

void lb_fp8_quantize_ref(const float *w, int64_t k, int64_t n, bool trans_b, enum lb_qfloat f, int64_t group,
                         uint8_t *codes, float *scales) {
  struct lb_wq_format fmt = {.bits = 8, .group = group};
  int64_t gs = group > 0 ? group : k, ng = lb_wq_groups(&fmt, k);
  float fmax8 = lb_fp8_max(f);
  /* w[kk, j]; the loops below walk w in memory order (large weights) */
#define W(kk, j) (trans_b ? w[(j) * k + (kk)] : w[(kk) * n + (j)])
  for (int64_t g = 0; g < ng; g++) {
    int64_t k0 = g * gs, k1 = k0 + gs <= k ? k0 + gs : k;
    float *amax = scales + g * n; /* the group's max |w| per column, then its scale */
    for (int64_t j = 0; j < n; j++) amax[j] = 0;
    for (int64_t a = 0; a < (trans_b ? n : k1 - k0); a++)
      for (int64_t b = 0; b < (trans_b ? k1 - k0 : n); b++) {
        int64_t kk = k0 + (trans_b ? b : a), j = trans_b ? a : b;
        amax[j] = fmaxf(amax[j], fabsf(W(kk, j))); /* NaN never wins */
      }
    for (int64_t j = 0; j < n; j++) {
      double m = amax[j];
      float s = m > 0 && isfinite(m) ? f16_scale(m / fmax8) : 1.0f;
      if (m / s > fmax8) /* rounded down: the next f16 up, so the largest weight is not clipped */
        s = (float)(s + (s < 0x1p-14f ? 0x1p-24 : ldexp(1, ilogbf(s) - 10)));
      scales[g * n + j] = s;
    }
    for (int64_t a = 0; a < (trans_b ? n : k1 - k0); a++)
      for (int64_t b = 0; b < (trans_b ? k1 - k0 : n); b++) {
        int64_t kk = k0 + (trans_b ? b : a), j = trans_b ? a : b;
        codes[kk * n + j] = lb_fp8_encode(W(kk, j) / scales[g * n + j], f);
      }
  }
#undef W
}

int64_t lb_f16_quantize_ref(const float *w, int64_t k, int64_t n, bool trans_b, uint16_t *h) {
  int64_t bad = -1;
  for (int64_t a = 0; a < k * n; a++) { /* w in memory order */
    int64_t kk = trans_b ? a % k : a / n, j = trans_b ? a / k : a % n;
    h[kk * n + j] = lb_f16_encode(w[a]);
    if (bad < 0 && isfinite(w[a]) && (h[kk * n + j] & 0x7FFF) == 0x7C00) bad = a;
  }
  return bad;
}

/* The const "<weight>.q" holding codes [K,N] with a copy of qp, before `before`
 * (u8 for fp8 codes; with qp NULL, f16 bits and no qparams). */
static struct lb_value *add_weight_const(struct lb_graph *g, struct lb_node *before, const struct lb_value *w,
                                         int64_t k, int64_t n, const void *codes, const struct lb_qparams *qp) {
  size_t len = strlen(w->name) + 4;
  char *base = malloc(len);
  if (!base) abort();
  snprintf(base, len, "%s.q", w->name);
  enum lb_dtype dt = !qp ? LB_DTYPE_F16 : qp->fp8 ? LB_DTYPE_U8 : LB_DTYPE_I8;
  struct lb_type t = {.dtype = dt, .shape = {.rank = 2, .dims = {k, n}}};
  struct lb_node *c = lb_graph_insert_const(g, before, lb_graph_unique_name(g, base), &t, codes);
  free(base);
  if (!qp) return c->outputs[0];
  struct lb_qparams *q = lb_arena_alloc(&g->arena, sizeof *q);
  *q = *qp;
  q->scales = lb_arena_alloc(&g->arena, sizeof *q->scales * (size_t)qp->n);
  memcpy(q->scales, qp->scales, sizeof *q->scales * (size_t)qp->n);
  if (qp->zero_points) {
    q->zero_points = lb_arena_alloc(&g->arena, sizeof *q->zero_points * (size_t)qp->n);
    memcpy(q->zero_points, qp->zero_points, sizeof *q->zero_points * (size_t)qp->n);
  }
  c->outputs[0]->qparams = q;
  return c->outputs[0];
}

/* How the pass quantizes weights. */
struct weight_opts {
  int32_t bits;             /* 8: lb_quant_weight_ref; below: lb_wq_quantize_ref */
  struct lb_wq_format fmt;
  bool clip;
  enum lb_qfloat fp8;       /* fp8 schemes: lb_fp8_quantize_ref with fmt.group */
  bool f16;                 /* f16: lb_f16_quantize_ref, no qparams */
};

/* One quantized copy per (weight, transB): tied weights are stored once. */
struct qcache {
  const struct lb_value *w;
  bool trans_b;
  struct lb_value *q;
};

/* NULL when an f16 weight would overflow: *overflow is then the index into w. */
static struct lb_value *quantize_weight(struct lb_graph *g, struct lb_node *before, const struct linear *l,
                                        const struct weight_opts *o, struct qcache *cache, int32_t *n_cache,
                                        int64_t *overflow) {
  for (int32_t i = 0; i < *n_cache; i++)
    if (cache[i].w == l->w && cache[i].trans_b == l->trans_b) return cache[i].q;
  const float *w = lb_value_const_data(g, l->w);
  if (o->f16) {
    uint16_t *h = malloc(sizeof *h * (size_t)(l->k * l->n) + 1);
    if (!h) abort();
    *overflow = lb_f16_quantize_ref(w, l->k, l->n, l->trans_b, h);
    struct lb_value *v = *overflow < 0 ? add_weight_const(g, before, l->w, l->k, l->n, h, NULL) : NULL;
    free(h);
    if (v) cache[(*n_cache)++] = (struct qcache){l->w, l->trans_b, v};
    return v;
  }
  int8_t *q = malloc((size_t)(l->k * l->n));
  struct lb_qparams qp = {.bits = o->bits, .axis = 1, .symmetric = true, .n = l->n};
  if (o->bits < 8 || o->fp8) {
    qp.fp8 = o->fp8;
    qp.group_size = (int32_t)o->fmt.group;
    qp.n = lb_wq_groups(&o->fmt, l->k) * l->n;
    qp.symmetric = !o->fmt.asym;
    qp.is_unsigned = o->fmt.asym;
  }
  qp.scales = malloc(sizeof *qp.scales * (size_t)qp.n);
  if (!q || !qp.scales) abort();
  if (o->bits < 8 && o->fmt.asym) {
    qp.zero_points = malloc(sizeof *qp.zero_points * (size_t)qp.n);
    if (!qp.zero_points) abort();
  }
  if (o->fp8) lb_fp8_quantize_ref(w, l->k, l->n, l->trans_b, o->fp8, o->fmt.group, (uint8_t *)q, qp.scales);
  else if (o->bits == 8) lb_quant_weight_ref(w, l->k, l->n, l->trans_b, q, qp.scales);
  else lb_wq_quantize_ref(w, l->k, l->n, l->trans_b, &o->fmt, o->clip, q, qp.scales, qp.zero_points);
  struct lb_value *v = add_weight_const(g, before, l->w, l->k, l->n, q, &qp);
  free(q);
  free(qp.scales);
  free(qp.zero_points);
  cache[(*n_cache)++] = (struct qcache){l->w, l->trans_b, v};
  return v;
}

/* The f32[N] bias qmatmul takes: fused_matmul's bias as is; gemm's C as is
 * when it already is [N] with beta 1, else beta * C spread over N columns. */
static struct lb_value *bias_for(struct lb_graph *g, struct lb_node *before, const struct linear *l) {
  if (!l->c) return NULL;
  if (l->beta == 1.0 && l->c->type.shape.rank == 1 && l->c->type.shape.dims[0] == l->n) return l->c;
  const float *c = lb_value_const_data(g, l->c);
  LB_ASSERT(c); /* take_apart checked row_vector */
  int64_t ne = lb_shape_numel(&l->c->type.shape);
  float *b = malloc(sizeof *b * (size_t)l->n);
  if (!b) abort();
  for (int64_t j = 0; j < l->n; j++) b[j] = (float)(l->beta * c[ne == 1 ? 0 : j]);
  size_t len = strlen(l->c->name) + 8;
  char *base = malloc(len);
  if (!base) abort();
  snprintf(base, len, "%s.bias", l->c->name);
  struct lb_type t = {.dtype = LB_DTYPE_F32, .shape = {.rank = 1, .dims = {l->n}}};
  struct lb_node *cn = lb_graph_insert_const(g, before, lb_graph_unique_name(g, base), &t, b);
  free(base);
  free(b);
  return cn->outputs[0];
}

static bool per_tensor_8bit(const struct lb_qparams *q) {
  return q && q->bits == 8 && q->n == 1 && q->axis == -1;
}

/* Node n, at `index` or after it (take_apart gave l), becomes qmatmul(a, wq,
 * bias?); returns its index, which grew by the consts inserted before it. */
static int32_t rewrite_node(struct lb_graph *g, struct lb_node *n, int32_t index, const struct linear *l,
                            struct lb_value *wq, const char *a_quant) {
  const char *act = n->op == LB_OP_FUSED_MATMUL ? lb_node_attr_string(n, "act", "none") : "none";
  struct lb_value *ins[3] = {l->a, wq, bias_for(g, n, l)};
  lb_rw_reset_node(g, n, LB_OP_QMATMUL, ins, ins[2] ? 3 : 2);
  lb_node_set_attr_string(g, n, "a_quant", a_quant);
  lb_node_set_attr_string(g, n, "act", act);
  while (g->nodes[index] != n) index++;
  return index;
}

void lb_quant_linear_of(const struct lb_graph *g, const struct lb_node *n, struct lb_quant_linear *out) {
  struct linear l;
  enum lb_quant_skip r = take_apart(g, n, &l);
  LB_ASSERT(r == LB_QSKIP_NONE);
  *out = (struct lb_quant_linear){.a = l.a, .w = l.w, .trans_b = l.trans_b, .k = l.k, .n = l.n};
}

int32_t lb_quant_rewrite(struct lb_graph *g, int32_t index, const void *codes, const struct lb_qparams *qp,
                         const char *a_quant) {
  struct lb_node *n = g->nodes[index];
  struct linear l;
  enum lb_quant_skip r = take_apart(g, n, &l);
  LB_ASSERT(r == LB_QSKIP_NONE);
  struct lb_value *wq = add_weight_const(g, n, l.w, l.k, l.n, codes, qp);
  return rewrite_node(g, n, index, &l, wq, a_quant);
}

/* An integer argument in [lo, hi]; *out keeps its default when absent. */
static enum lb_status int_arg(struct lb_pass_context *ctx, const char *key, int64_t lo, int64_t hi, int64_t *out) {
  const char *v = lb_pass_arg(ctx, key);
  if (!v) return LB_OK;
  char *end;
  long long x = strtoll(v, &end, 10);
  if (end == v || *end || x < lo || x > hi)
    return lb_diag_error(ctx->diag, LB_ERR_USAGE, NULL, "pass quantize: %s must be an integer in [%lld, %lld], not \"%s\"",
                         key, (long long)lo, (long long)hi, v);
  *out = x;
  return LB_OK;
}

/* group (default 32), asym, clip and act: for w4/w3/w2 only; fp8 takes
 * group (default 0: per column); f16 none. */
static enum lb_status weight_args(struct lb_pass_context *ctx, enum lb_quant_scheme scheme, struct weight_opts *wo,
                                  const char **a_quant) {
  static const char *const lowbit_keys[] = {"group", "asym", "clip", "act"};
  wo->fp8 = lb_quant_scheme_fp8(scheme);
  wo->f16 = scheme == LB_QUANT_F16;
  if (wo->bits >= 8) {
    int64_t group = 0;
    enum lb_status st = wo->fp8 ? int_arg(ctx, "group", 0, INT32_MAX, &group) : LB_OK;
    wo->fmt = (struct lb_wq_format){.bits = 8, .group = group};
    for (size_t i = wo->fp8 ? 1 : 0; st == LB_OK && i < sizeof lowbit_keys / sizeof *lowbit_keys; i++)
      if (lb_pass_arg(ctx, lowbit_keys[i]))
        return lb_diag_error(ctx->diag, LB_ERR_USAGE, NULL,
                             "pass quantize: %s applies to the low-bit schemes (w4, w3, w2), not %s", lowbit_keys[i],
                             lb_quant_scheme_name(scheme));
    return st;
  }
  int64_t group = 32, asym = 0, clip = 0;
  enum lb_status st = int_arg(ctx, "group", 0, INT32_MAX, &group);
  if (st == LB_OK) st = int_arg(ctx, "asym", 0, 1, &asym);
  if (st == LB_OK) st = int_arg(ctx, "clip", 0, 1, &clip);
  if (st != LB_OK) return st;
  wo->fmt = (struct lb_wq_format){.bits = wo->bits, .group = group, .asym = asym != 0};
  wo->clip = clip != 0;
  const char *act = lb_pass_arg(ctx, "act");
  *a_quant = "none";
  if (act && strcmp(act, "dynamic") == 0) *a_quant = "dynamic";
  else if (act && strcmp(act, "none") != 0)
    return lb_diag_error(ctx->diag, LB_ERR_USAGE, NULL,
                         "pass quantize: act must be none (f32 activations) or dynamic (int8 per row), not \"%s\"", act);
  return LB_OK;
}

enum lb_status lb_pass_quantize(struct lb_graph *g, struct lb_pass_context *ctx) {
  const char *s = lb_pass_arg(ctx, "scheme");
  enum lb_quant_scheme scheme;
  if (!s)
    return lb_diag_error(ctx->diag, LB_ERR_USAGE, NULL, "pass quantize needs a scheme (%s), e.g. quantize{scheme=w8}",
                         lb_quant_scheme_list);
  if (!lb_quant_scheme_parse(s, &scheme))
    return lb_diag_error(ctx->diag, LB_ERR_USAGE, NULL, "pass quantize: unknown scheme \"%s\" (%s)", s,
                         lb_quant_scheme_list);
  struct weight_opts wo = {.bits = lb_quant_scheme_bits(scheme)};
  const char *a_quant = a_quant_names[scheme];
  enum lb_status st = weight_args(ctx, scheme, &wo, &a_quant);
  if (st != LB_OK) return st;
  /* overflow=keep (f16): a layer with a weight beyond f16's range stays float
   * instead of failing the pass (a candidate of --quant auto it cannot take) */
  const char *overflow = lb_pass_arg(ctx, "overflow");
  bool keep_overflow = overflow && strcmp(overflow, "keep") == 0;
  if (overflow && (scheme != LB_QUANT_F16 || (!keep_overflow && strcmp(overflow, "error") != 0)))
    return lb_diag_error(ctx->diag, LB_ERR_USAGE, NULL,
                         "pass quantize: overflow=error|keep applies to scheme=f16, not \"%s\" with %s", overflow,
                         lb_quant_scheme_name(scheme));

  /* static: every operand must be calibrated; list all the missing ones first */
  if (scheme == LB_QUANT_W8A8) {
    int32_t missing = 0;
    for (int32_t i = 0; i < g->n_nodes; i++) {
      struct lb_node *n = g->nodes[i];
      struct linear l;
      if (!is_matmul_family(n->op) || take_apart(g, n, &l) != LB_QSKIP_NONE) continue;
      if (per_tensor_8bit(l.a->qparams)) continue;
      if (l.a->qparams)
        lb_diag_error(ctx->diag, LB_ERR_INVALID, n,
                      "activation \"%s\" (input of \"%s\") carries qparams that are not per-tensor 8-bit",
                      l.a->name, n->outputs[0]->name);
      else
        lb_diag_error(ctx->diag, LB_ERR_INVALID, n, "activation \"%s\" (input of \"%s\") has no calibrated range",
                      l.a->name, n->outputs[0]->name);
      missing++;
    }
    if (missing)
      return lb_diag_error(ctx->diag, LB_ERR_INVALID, NULL,
                           "w8a8 (static) needs calibrated activation ranges (%d layer%s above lack one): pass "
                           "--calib DIR (samples) or --load-calib FILE, or use --quant w8a8-dynamic",
                           (int)missing, missing == 1 ? "" : "s");
  }

  struct qcache *cache = lb_arena_alloc(&ctx->scratch, sizeof *cache * (size_t)(g->n_nodes + 1));
  int32_t n_cache = 0;
  bool changed = false;
  for (int32_t i = 0; i < g->n_nodes; i++) {
    struct lb_node *n = g->nodes[i];
    struct linear l;
    if (!is_matmul_family(n->op) || take_apart(g, n, &l) != LB_QSKIP_NONE) continue;
    int64_t bad = -1;
    struct lb_value *wq = quantize_weight(g, n, &l, &wo, cache, &n_cache, &bad);
    if (!wq && keep_overflow) continue; /* --quant auto: this layer cannot take f16 */
    if (!wq) {
      int64_t cols = l.w->type.shape.dims[1];
      return lb_diag_error(ctx->diag, LB_ERR_UNSUPPORTED, n,
                           "weight \"%s\" holds %g at [%lld,%lld], beyond f16's largest finite value 65504: f16 "
                           "would make it infinite (use w8, or keep the layer float)",
                           l.w->name, (double)((const float *)lb_value_const_data(g, l.w))[bad],
                           (long long)(bad / cols), (long long)(bad % cols));
    }
    i = rewrite_node(g, n, i, &l, wq, a_quant);
    changed = true;
  }
  ctx->changed = changed;
  return LB_OK;
}

void lb_quant_summarize(const struct lb_graph *g, struct lb_quant_summary *s) {
  memset(s, 0, sizeof *s);
  for (int32_t i = 0; i < g->n_nodes; i++) {
    const struct lb_node *n = g->nodes[i];
    if (n->dead) continue;
    if (n->op == LB_OP_QMATMUL) s->quantized++;
    else if (n->op == LB_OP_CONV) s->convs++;
    else if (is_matmul_family(n->op)) s->skipped[lb_quant_classify(g, n)]++;
  }
}

void lb_quant_summary_format(const struct lb_quant_summary *s, enum lb_quant_scheme scheme, char *buf,
                             size_t len) {
  int32_t left = 0;
  for (int r = 0; r < LB_QSKIP_COUNT; r++) left += s->skipped[r];
  size_t at = 0;
#define PUT(...) (at += (size_t)snprintf(buf + at, at < len ? len - at : 0, __VA_ARGS__))
  int32_t bits = lb_quant_scheme_bits(scheme);
  const char *kind = scheme == LB_QUANT_FP8 || scheme == LB_QUANT_FP8_E5M2 || scheme == LB_QUANT_F16 ? "fp" : "int";
  PUT("quantized %d of %d matmuls to %s%d (%s)", (int)s->quantized, (int)(s->quantized + left), kind, (int)bits,
      lb_quant_scheme_name(scheme));
  if (left) {
    PUT("; %d left in float:", (int)left);
    const char *sep = " ";
    for (int r = 0; r < LB_QSKIP_COUNT; r++)
      if (s->skipped[r]) {
        PUT("%s%d %s", sep, (int)s->skipped[r], lb_quant_skip_reason(r));
        sep = ", ";
      }
  }
  if (s->convs) PUT("; %d conv%s stay%s float (not quantized)", (int)s->convs, s->convs == 1 ? "" : "s",
                    s->convs == 1 ? "s" : "");
#undef PUT
}
