/* eval.c: the scalar reference evaluator.
 *
 * lb_eval_node() computes one node of canonical IR (docs/ir-ops.md) on dense
 * row-major buffers. It is the oracle the generated kernels are tested against
 * and the engine of constant folding, so it favours clarity and exact ONNX
 * semantics over speed; it only avoids quadratic blowups (every op is one pass
 * over its output, or the plain loops of matmul/conv/pools).
 *
 * Arithmetic model
 *  - Every element is read either as a double ("float mode", used when the op
 *    computes in floating point) or as an int64 ("int mode", integer ops). u64
 *    values travel as their bit pattern in an int64; the few ops where that
 *    matters (division, comparison, min/max) use unsigned arithmetic for u64.
 *  - Float results are computed in double and rounded once to the output type
 *    (f32: C's double->float conversion, round-to-nearest-even; f16/bf16: our
 *    own RNE encoder). For + - * / and sqrt of f32 inputs this gives exactly
 *    the correctly rounded f32 result, i.e. what a f32 kernel computes.
 *  - Transcendental unary and binary functions (exp, log, erf, tanh, sin, cos,
 *    sigmoid, gelu, pow) use float's libm (expf, erff, tanhf, powf, ...) when
 *    the output is f32/f16/bf16: that is what onnxruntime and our generated
 *    kernels call, so the oracle differs from them only by libm's last-ulp
 *    choices, and constant folding gives the same bits as running the model.
 *    Reductions, softmax and the norms accumulate in double (one rounding at
 *    the end): they are a reference, more accurate than any f32 kernel.
 *  - Integer + - * wrap (computed on uint64, no UB); integer div truncates
 *    toward zero; division by zero is an error (LB_ERR_INVALID).
 *  - Float -> int conversions truncate toward zero and saturate to the target
 *    range (NaN -> 0): ONNX leaves overflow implementation-defined, and this
 *    avoids C's UB. Int -> int conversions wrap (numpy, onnxruntime).
 */
#include "ir/ir.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define ERR(...) lb_diag_error(d, LB_ERR_INVALID, n, __VA_ARGS__)
#define IT(i) (&n->inputs[i]->type)
#define OT(i) (&n->outputs[i]->type)
#define HAS(i) ((i) < n->n_inputs && n->inputs[i] != NULL)

static void *xmalloc(size_t size) {
  void *p = malloc(size ? size : 1);
  if (!p) {
    fputs("lowbit: error: out of memory\n", stderr);
    abort();
  }
  return p;
}

static int64_t numel(const struct lb_type *t) { return lb_shape_numel(&t->shape); }
static int esize(enum lb_dtype t) { return lb_dtype_traits[t].size; }
static bool is_float(enum lb_dtype t) { return lb_dtype_traits[t].is_float; }
/* f32 and narrower: use float's libm for transcendental functions. */
static bool is_single(enum lb_dtype t) {
  return t == LB_DTYPE_F32 || t == LB_DTYPE_F16 || t == LB_DTYPE_BF16;
}

/* ---- f16 / bf16 --------------------------------------------------------------------- */

/* IEEE-style binary float with mb mantissa bits and eb exponent bits
 * (f16: 10, 5; bf16: 7, 8). */
static double minifloat_decode(uint32_t bits, int mb, int eb) {
  uint32_t e = bits >> mb & ((1u << eb) - 1), m = bits & ((1u << mb) - 1);
  int bias = (1 << (eb - 1)) - 1;
  double v;
  if (e == (1u << eb) - 1) v = m ? NAN : INFINITY;
  else if (e == 0) v = ldexp((double)m, 1 - bias - mb);
  else v = ldexp((double)(m | 1u << mb), (int)e - bias - mb);
  return bits >> (mb + eb) & 1 ? -v : v;
}

/* Round to nearest, ties to even, straight from double (no double rounding
 * through f32). Overflow gives infinity, NaN a quiet NaN. */
static uint32_t minifloat_encode(double v, int mb, int eb) {
  int bias = (1 << (eb - 1)) - 1;
  uint32_t emask = (1u << eb) - 1, sign = signbit(v) ? 1u << (mb + eb) : 0;
  if (isnan(v)) return sign | emask << mb | 1u << (mb - 1);
  double a = fabs(v);
  if (isinf(a)) return sign | emask << mb;
  if (a == 0) return sign;
  int e;
  frexp(a, &e);
  int E = e - 1; /* a in [2^E, 2^(E+1)) */
  if (E < 1 - bias) /* subnormal: count units of 2^(1-bias-mb); may round up to the
                       smallest normal, whose encoding is the next integer */
    return sign | (uint32_t)nearbyint(ldexp(a, mb - (1 - bias)));
  double m = nearbyint(ldexp(a, mb - E)); /* in [2^mb, 2^(mb+1)] */
  if (m >= ldexp(1, mb + 1)) {
    m /= 2;
    E++;
  }
  if (E + bias >= (int)emask) return sign | emask << mb;
  return sign | (uint32_t)(E + bias) << mb | ((uint32_t)m & ((1u << mb) - 1));
}

/* ---- loads and stores ---------------------------------------------------------------- */

static double ld_f(enum lb_dtype t, const void *p, int64_t i) {
  switch (t) {
  case LB_DTYPE_F32: return ((const float *)p)[i];
  case LB_DTYPE_F64: return ((const double *)p)[i];
  case LB_DTYPE_F16: return minifloat_decode(((const uint16_t *)p)[i], 10, 5);
  case LB_DTYPE_BF16: return minifloat_decode(((const uint16_t *)p)[i], 7, 8);
  case LB_DTYPE_I8: return ((const int8_t *)p)[i];
  case LB_DTYPE_I16: return ((const int16_t *)p)[i];
  case LB_DTYPE_I32: return ((const int32_t *)p)[i];
  case LB_DTYPE_I64: return (double)((const int64_t *)p)[i];
  case LB_DTYPE_U8: return ((const uint8_t *)p)[i];
  case LB_DTYPE_U16: return ((const uint16_t *)p)[i];
  case LB_DTYPE_U32: return ((const uint32_t *)p)[i];
  case LB_DTYPE_U64: return (double)((const uint64_t *)p)[i];
  case LB_DTYPE_BOOL: return ((const uint8_t *)p)[i] != 0;
  default: LB_ASSERT(!"ld_f: bad dtype");
  }
  return 0;
}

static int64_t ld_i(enum lb_dtype t, const void *p, int64_t i) {
  switch (t) {
  case LB_DTYPE_I8: return ((const int8_t *)p)[i];
  case LB_DTYPE_I16: return ((const int16_t *)p)[i];
  case LB_DTYPE_I32: return ((const int32_t *)p)[i];
  case LB_DTYPE_I64: return ((const int64_t *)p)[i];
  case LB_DTYPE_U8: return ((const uint8_t *)p)[i];
  case LB_DTYPE_U16: return ((const uint16_t *)p)[i];
  case LB_DTYPE_U32: return ((const uint32_t *)p)[i];
  case LB_DTYPE_U64: return (int64_t)((const uint64_t *)p)[i];
  case LB_DTYPE_BOOL: return ((const uint8_t *)p)[i] != 0;
  default: {
    double v = ld_f(t, p, i);
    if (isnan(v)) return 0;
    if (v >= 0x1p63) return INT64_MAX;
    if (v < -0x1p63) return INT64_MIN;
    return (int64_t)v;
  }
  }
}

/* Store a float-mode result: floats round to nearest even; integers truncate
 * and saturate (NaN -> 0); bool is v != 0. */
static void st_f(enum lb_dtype t, void *p, int64_t i, double v) {
  switch (t) {
  case LB_DTYPE_F32: ((float *)p)[i] = (float)v; return;
  case LB_DTYPE_F64: ((double *)p)[i] = v; return;
  case LB_DTYPE_F16: ((uint16_t *)p)[i] = (uint16_t)minifloat_encode(v, 10, 5); return;
  case LB_DTYPE_BF16: ((uint16_t *)p)[i] = (uint16_t)minifloat_encode(v, 7, 8); return;
  case LB_DTYPE_BOOL: ((uint8_t *)p)[i] = v != 0; return;
  case LB_DTYPE_U64:
    ((uint64_t *)p)[i] = isnan(v) || v <= 0 ? 0 : v >= 0x1p64 ? UINT64_MAX : (uint64_t)v;
    return;
  case LB_DTYPE_I64:
    ((int64_t *)p)[i] = isnan(v) ? 0 : v >= 0x1p63 ? INT64_MAX : v < -0x1p63 ? INT64_MIN : (int64_t)v;
    return;
  default: break;
  }
  /* narrower integers: saturate in int64 first */
  int64_t lo, hi;
  switch (t) {
  case LB_DTYPE_I8: lo = INT8_MIN, hi = INT8_MAX; break;
  case LB_DTYPE_I16: lo = INT16_MIN, hi = INT16_MAX; break;
  case LB_DTYPE_I32: lo = INT32_MIN, hi = INT32_MAX; break;
  case LB_DTYPE_U8: lo = 0, hi = UINT8_MAX; break;
  case LB_DTYPE_U16: lo = 0, hi = UINT16_MAX; break;
  case LB_DTYPE_U32: lo = 0, hi = UINT32_MAX; break;
  default: LB_ASSERT(!"st_f: bad dtype"); return;
  }
  v = isnan(v) ? 0 : trunc(v);
  int64_t x = v < (double)lo ? lo : v > (double)hi ? hi : (int64_t)v;
  switch (t) {
  case LB_DTYPE_I8: ((int8_t *)p)[i] = (int8_t)x; break;
  case LB_DTYPE_I16: ((int16_t *)p)[i] = (int16_t)x; break;
  case LB_DTYPE_I32: ((int32_t *)p)[i] = (int32_t)x; break;
  case LB_DTYPE_U8: ((uint8_t *)p)[i] = (uint8_t)x; break;
  case LB_DTYPE_U16: ((uint16_t *)p)[i] = (uint16_t)x; break;
  case LB_DTYPE_U32: ((uint32_t *)p)[i] = (uint32_t)x; break;
  default: break;
  }
}

/* Store an int-mode result: integers wrap (two's complement, as numpy and C
 * casts do); floats round to nearest; bool is v != 0. `uns`: v holds a u64. */
static void st_i(enum lb_dtype t, void *p, int64_t i, int64_t v, bool uns) {
  switch (t) {
  case LB_DTYPE_I8: ((int8_t *)p)[i] = (int8_t)(uint8_t)v; return;
  case LB_DTYPE_I16: ((int16_t *)p)[i] = (int16_t)(uint16_t)v; return;
  case LB_DTYPE_I32: ((int32_t *)p)[i] = (int32_t)(uint32_t)v; return;
  case LB_DTYPE_I64: ((int64_t *)p)[i] = v; return;
  case LB_DTYPE_U8: ((uint8_t *)p)[i] = (uint8_t)v; return;
  case LB_DTYPE_U16: ((uint16_t *)p)[i] = (uint16_t)v; return;
  case LB_DTYPE_U32: ((uint32_t *)p)[i] = (uint32_t)v; return;
  case LB_DTYPE_U64: ((uint64_t *)p)[i] = (uint64_t)v; return;
  case LB_DTYPE_BOOL: ((uint8_t *)p)[i] = v != 0; return;
  case LB_DTYPE_F32: /* direct conversion: one rounding even for |v| > 2^53 */
    ((float *)p)[i] = uns ? (float)(uint64_t)v : (float)v;
    return;
  default: st_f(t, p, i, uns ? (double)(uint64_t)v : (double)v); return;
  }
}

static void copy_elem(void *dst, int64_t di, const void *src, int64_t si, int sz) {
  switch (sz) {
  case 1: ((uint8_t *)dst)[di] = ((const uint8_t *)src)[si]; break;
  case 2: ((uint16_t *)dst)[di] = ((const uint16_t *)src)[si]; break;
  case 4: ((uint32_t *)dst)[di] = ((const uint32_t *)src)[si]; break;
  case 8: ((uint64_t *)dst)[di] = ((const uint64_t *)src)[si]; break;
  default: memcpy((char *)dst + di * sz, (const char *)src + si * sz, (size_t)sz);
  }
}

/* ---- strided index iterator ------------------------------------------------------------ */

/* Walks the index space `dims` in row-major order, keeping one element offset
 * per operand (offset = base + sum idx[d] * strides[d]). A broadcast operand
 * has stride 0 along the dims it repeats. Each step costs O(1) amortized. */
#define ITER_MAX_OPS 4
struct iter {
  int32_t rank, nops;
  int64_t dims[LB_MAX_RANK], idx[LB_MAX_RANK];
  int64_t st[ITER_MAX_OPS][LB_MAX_RANK];
  int64_t off[ITER_MAX_OPS];
};

static void iter_init(struct iter *it, const struct lb_shape *s) {
  memset(it, 0, sizeof *it);
  it->rank = s->rank;
  memcpy(it->dims, s->dims, sizeof it->dims);
}

static void iter_add(struct iter *it, const int64_t *strides, int64_t base) {
  LB_ASSERT(it->nops < ITER_MAX_OPS);
  memcpy(it->st[it->nops], strides, sizeof(int64_t) * (size_t)it->rank);
  it->off[it->nops++] = base;
}

static void iter_next(struct iter *it) {
  for (int32_t d = it->rank - 1; d >= 0; d--) {
    for (int32_t k = 0; k < it->nops; k++) it->off[k] += it->st[k][d];
    if (++it->idx[d] < it->dims[d]) return;
    for (int32_t k = 0; k < it->nops; k++) it->off[k] -= it->st[k][d] * it->dims[d];
    it->idx[d] = 0;
  }
}

/* Element strides of a dense tensor of shape `in` read as if broadcast to
 * `out` (numpy alignment at the right; 0 along repeated dims). */
static void bcast_strides(const struct lb_shape *in, const struct lb_shape *out, int64_t *st) {
  int64_t s = 1;
  for (int32_t i = out->rank - 1; i >= 0; i--) {
    int32_t j = i - (out->rank - in->rank);
    if (j < 0) {
      st[i] = 0;
      continue;
    }
    st[i] = in->dims[j] == 1 ? 0 : s;
    s *= in->dims[j];
  }
}

static void dense_strides(const struct lb_shape *s, int64_t *st) {
  int64_t k = 1;
  for (int32_t i = s->rank - 1; i >= 0; i--) {
    st[i] = k;
    k *= s->dims[i];
  }
}

/* An iterator over `out`'s shape whose operand 0 is `out` (dense). */
static void iter_over(struct iter *it, const struct lb_type *out) {
  int64_t st[LB_MAX_RANK];
  iter_init(it, &out->shape);
  dense_strides(&out->shape, st);
  iter_add(it, st, 0);
}

static void iter_add_bcast(struct iter *it, const struct lb_shape *in, const struct lb_shape *out) {
  int64_t st[LB_MAX_RANK];
  bcast_strides(in, out, st);
  iter_add(it, st, 0);
}

/* ---- elementwise unary ----------------------------------------------------------------- */

struct uparams {
  double alpha, beta;
  bool gelu_tanh;
};

static double sigmoid_d(double x) {
  if (x >= 0) return 1 / (1 + exp(-x));
  double e = exp(x);
  return e / (1 + e);
}

static float sigmoid_f(float x) {
  if (x >= 0) return 1 / (1 + expf(-x));
  float e = expf(x);
  return e / (1 + e);
}

static double gelu_d(double x, bool tanh_approx, bool single) {
  if (tanh_approx) {
    const double c = 0.7978845608028654; /* sqrt(2/pi) */
    double inner = c * (x + 0.044715 * x * x * x);
    return 0.5 * x * (1 + (single ? tanhf((float)inner) : tanh(inner)));
  }
  double z = x * 0.7071067811865476; /* x / sqrt(2) */
  return 0.5 * x * (1 + (single ? erff((float)z) : erf(z)));
}

/* One float-mode unary op. `single`: output is f32 or narrower (see top). */
static double unary_f(enum lb_op op, double x, const struct uparams *p, bool single) {
  float xf = (float)x;
  switch (op) {
  case LB_OP_IDENTITY: return x;
  case LB_OP_NEG: return -x;
  case LB_OP_ABS: return fabs(x);
  case LB_OP_SQRT: return sqrt(x); /* correctly rounded in double => also in f32 */
  case LB_OP_RECIPROCAL: return 1 / x;
  case LB_OP_EXP: return single ? expf(xf) : exp(x);
  case LB_OP_LOG: return single ? logf(xf) : log(x);
  case LB_OP_ERF: return single ? erff(xf) : erf(x);
  case LB_OP_TANH: return single ? tanhf(xf) : tanh(x);
  case LB_OP_SIN: return single ? sinf(xf) : sin(x);
  case LB_OP_COS: return single ? cosf(xf) : cos(x);
  case LB_OP_SIGMOID: return single ? sigmoid_f(xf) : sigmoid_d(x);
  case LB_OP_RELU: return x < 0 ? 0 : x; /* NaN stays NaN */
  case LB_OP_LEAKY_RELU: return x < 0 ? p->alpha * x : x;
  case LB_OP_HARD_SIGMOID: return isnan(x) ? x : fmax(0, fmin(1, p->alpha * x + p->beta));
  case LB_OP_HARD_SWISH: return isnan(x) ? x : x * fmax(0, fmin(1, x / 6 + 0.5));
  case LB_OP_GELU: return gelu_d(x, p->gelu_tanh, single);
  case LB_OP_FLOOR: return floor(x);
  case LB_OP_CEIL: return ceil(x);
  default: LB_ASSERT(!"unary_f: not a float unary op");
  }
  return 0;
}

static int64_t unary_i(enum lb_op op, int64_t x, bool uns) {
  switch (op) {
  case LB_OP_IDENTITY: return x;
  case LB_OP_NEG: return (int64_t)(0 - (uint64_t)x);
  case LB_OP_ABS: return uns || x >= 0 ? x : (int64_t)(0 - (uint64_t)x);
  case LB_OP_RELU: return uns || x >= 0 ? x : 0;
  case LB_OP_NOT: return !x;
  default: LB_ASSERT(!"unary_i: not an integer unary op");
  }
  return 0;
}

static enum lb_status eval_unary(const struct lb_graph *g, const struct lb_node *n,
                                 const void *const *ins, void *const *outs, struct lb_diag *d) {
  (void)g;
  enum lb_dtype ti = IT(0)->dtype, to = OT(0)->dtype;
  const void *x = ins[0];
  void *y = outs[0];
  int64_t ne = numel(OT(0));
  bool uns = ti == LB_DTYPE_U64;
  switch (n->op) {
  case LB_OP_DROPOUT: return ERR("dropout must be lowered by the frontend");
  case LB_OP_IDENTITY:
    memcpy(y, x, (size_t)(ne * esize(ti)));
    return LB_OK;
  case LB_OP_CAST:
    for (int64_t i = 0; i < ne; i++) {
      if (is_float(ti)) st_f(to, y, i, ld_f(ti, x, i));
      else st_i(to, y, i, ld_i(ti, x, i), uns);
    }
    return LB_OK;
  case LB_OP_CLIP: {
    /* min/max are optional scalars; NaN inputs stay NaN (std::min/max order). */
    bool hmin = HAS(1), hmax = HAS(2);
    if (is_float(ti)) {
      double lo = hmin ? ld_f(ti, ins[1], 0) : 0, hi = hmax ? ld_f(ti, ins[2], 0) : 0;
      for (int64_t i = 0; i < ne; i++) {
        double v = ld_f(ti, x, i);
        if (hmin && v < lo) v = lo;
        if (hmax && v > hi) v = hi;
        st_f(to, y, i, v);
      }
    } else {
      int64_t lo = hmin ? ld_i(ti, ins[1], 0) : 0, hi = hmax ? ld_i(ti, ins[2], 0) : 0;
      for (int64_t i = 0; i < ne; i++) {
        int64_t v = ld_i(ti, x, i);
        if (uns) {
          if (hmin && (uint64_t)v < (uint64_t)lo) v = lo;
          if (hmax && (uint64_t)v > (uint64_t)hi) v = hi;
        } else {
          if (hmin && v < lo) v = lo;
          if (hmax && v > hi) v = hi;
        }
        st_i(to, y, i, v, uns);
      }
    }
    return LB_OK;
  }
  default: break;
  }
  if (!is_float(ti)) {
    for (int64_t i = 0; i < ne; i++) st_i(to, y, i, unary_i(n->op, ld_i(ti, x, i), uns), uns);
    return LB_OK;
  }
  /* ONNX float attributes are f32: defaults are the f32 values too. */
  struct uparams p = {.alpha = 0, .beta = 0};
  if (n->op == LB_OP_LEAKY_RELU) p.alpha = lb_node_attr_float(n, "alpha", (double)0.01f);
  if (n->op == LB_OP_HARD_SIGMOID) {
    p.alpha = lb_node_attr_float(n, "alpha", (double)0.2f);
    p.beta = lb_node_attr_float(n, "beta", (double)0.5f);
  }
  if (n->op == LB_OP_GELU) p.gelu_tanh = strcmp(lb_node_attr_string(n, "approximate", "none"), "tanh") == 0;
  bool single = is_single(to);
  for (int64_t i = 0; i < ne; i++) st_f(to, y, i, unary_f(n->op, ld_f(ti, x, i), &p, single));
  return LB_OK;
}

/* ---- elementwise binary / n-ary ------------------------------------------------------ */

static bool is_cmp(enum lb_op op) {
  return op == LB_OP_EQUAL || op == LB_OP_LESS || op == LB_OP_LESS_EQUAL ||
         op == LB_OP_GREATER || op == LB_OP_GREATER_EQUAL;
}

/* Integer power with wrapping; negative exponents give the truncated real
 * result (1, -1 or 0), as onnxruntime's static_cast<T>(std::pow(x, y)) does. */
static int64_t ipow(int64_t base, int64_t e) {
  if (e < 0) {
    if (base == 1) return 1;
    if (base == -1) return (e & 1) ? -1 : 1;
    return 0; /* includes 0^-n (inf), which has no integer value */
  }
  uint64_t r = 1, b = (uint64_t)base;
  while (e) {
    if (e & 1) r *= b;
    b *= b;
    e >>= 1;
  }
  return (int64_t)r;
}

static double binary_f(enum lb_op op, double a, double b, bool single) {
  switch (op) {
  case LB_OP_ADD: return a + b;
  case LB_OP_SUB: return a - b;
  case LB_OP_MUL: return a * b;
  case LB_OP_DIV: return a / b;
  case LB_OP_POW: return single ? powf((float)a, (float)b) : pow(a, b);
  /* numpy maximum/minimum: NaN in either operand gives NaN */
  case LB_OP_MAX: return isnan(a) || isnan(b) ? NAN : a > b ? a : b;
  case LB_OP_MIN: return isnan(a) || isnan(b) ? NAN : a < b ? a : b;
  case LB_OP_EQUAL: return a == b;
  case LB_OP_LESS: return a < b;
  case LB_OP_LESS_EQUAL: return a <= b;
  case LB_OP_GREATER: return a > b;
  case LB_OP_GREATER_EQUAL: return a >= b;
  default: LB_ASSERT(!"binary_f"); return 0;
  }
}

/* *ok = false on integer division by zero. */
static int64_t binary_i(enum lb_op op, int64_t a, int64_t b, bool uns, bool *ok) {
  uint64_t ua = (uint64_t)a, ub = (uint64_t)b;
  switch (op) {
  case LB_OP_ADD: return (int64_t)(ua + ub);
  case LB_OP_SUB: return (int64_t)(ua - ub);
  case LB_OP_MUL: return (int64_t)(ua * ub);
  case LB_OP_DIV:
    if (b == 0) {
      *ok = false;
      return 0;
    }
    if (uns) return (int64_t)(ua / ub);
    if (a == INT64_MIN && b == -1) return INT64_MIN; /* wraps */
    return a / b;
  case LB_OP_POW: return ipow(a, b);
  case LB_OP_MAX: return uns ? (ua > ub ? a : b) : (a > b ? a : b);
  case LB_OP_MIN: return uns ? (ua < ub ? a : b) : (a < b ? a : b);
  case LB_OP_EQUAL: return a == b;
  case LB_OP_LESS: return uns ? ua < ub : a < b;
  case LB_OP_LESS_EQUAL: return uns ? ua <= ub : a <= b;
  case LB_OP_GREATER: return uns ? ua > ub : a > b;
  case LB_OP_GREATER_EQUAL: return uns ? ua >= ub : a >= b;
  case LB_OP_AND: return a && b;
  case LB_OP_OR: return a || b;
  default: LB_ASSERT(!"binary_i"); return 0;
  }
}

/* out[i] = op(A[bcast], B[bcast]), A and B of dtypes ta, tb (may be the output
 * buffer itself for the n-ary fold of min/max). */
static enum lb_status binary_pass(const struct lb_node *n, struct lb_diag *d, enum lb_op op,
                                  enum lb_dtype ta, const void *a, const struct lb_shape *sa,
                                  enum lb_dtype tb, const void *b, const struct lb_shape *sb,
                                  enum lb_dtype to, void *out, const struct lb_shape *so) {
  struct iter it;
  int64_t st[LB_MAX_RANK];
  iter_init(&it, so);
  bcast_strides(sa, so, st);
  iter_add(&it, st, 0);
  bcast_strides(sb, so, st);
  iter_add(&it, st, 0);
  int64_t ne = lb_shape_numel(so);
  /* float mode when any operand is a float (pow of int by float computes in
   * double and truncates: onnxruntime's static_cast<int>(std::pow(x, y))) */
  bool fmode = is_float(ta) || is_float(tb);
  bool single = is_single(to) || (is_cmp(op) && is_single(ta));
  bool uns = ta == LB_DTYPE_U64;
  bool ok = true;
  for (int64_t i = 0; i < ne; i++, iter_next(&it)) {
    if (fmode) {
      st_f(to, out, i, binary_f(op, ld_f(ta, a, it.off[0]), ld_f(tb, b, it.off[1]), single));
    } else {
      int64_t r = binary_i(op, ld_i(ta, a, it.off[0]), ld_i(tb, b, it.off[1]), uns, &ok);
      if (!ok) return ERR("integer division by zero at output element %lld", (long long)i);
      st_i(to, out, i, r, uns);
    }
  }
  return LB_OK;
}

static enum lb_status eval_binary(const struct lb_graph *g, const struct lb_node *n,
                                  const void *const *ins, void *const *outs, struct lb_diag *d) {
  (void)g;
  const struct lb_type *to = OT(0);
  if (n->op == LB_OP_WHERE) {
    struct iter it;
    iter_over(&it, to);
    for (int32_t i = 0; i < 3; i++) iter_add_bcast(&it, &IT(i)->shape, &to->shape);
    int sz = esize(to->dtype);
    int64_t ne = numel(to);
    const uint8_t *c = ins[0];
    for (int64_t i = 0; i < ne; i++, iter_next(&it))
      copy_elem(outs[0], i, c[it.off[1]] ? ins[1] : ins[2], c[it.off[1]] ? it.off[2] : it.off[3], sz);
    return LB_OK;
  }
  if (n->op == LB_OP_MIN || n->op == LB_OP_MAX) {
    /* fold: out = in0 broadcast; out = op(out, in_k) */
    struct iter it;
    iter_over(&it, to);
    iter_add_bcast(&it, &IT(0)->shape, &to->shape);
    int sz = esize(to->dtype);
    for (int64_t i = 0, ne = numel(to); i < ne; i++, iter_next(&it))
      copy_elem(outs[0], i, ins[0], it.off[1], sz);
    for (int32_t k = 1; k < n->n_inputs; k++) {
      enum lb_status st = binary_pass(n, d, n->op, to->dtype, outs[0], &to->shape, IT(k)->dtype,
                                      ins[k], &IT(k)->shape, to->dtype, outs[0], &to->shape);
      if (st != LB_OK) return st;
    }
    return LB_OK;
  }
  return binary_pass(n, d, n->op, IT(0)->dtype, ins[0], &IT(0)->shape, IT(1)->dtype, ins[1],
                     &IT(1)->shape, to->dtype, outs[0], &to->shape);
}

/* ---- reductions ------------------------------------------------------------------------ */

static enum lb_status eval_reduce(const struct lb_graph *g, const struct lb_node *n,
                                  const void *const *ins, void *const *outs, struct lb_diag *d) {
  (void)g;
  (void)d;
  const struct lb_type *tx = IT(0), *ty = OT(0);
  const struct lb_attr *axes = lb_node_attr(n, "axes");
  /* the output's shape with reduced dims kept as 1, walked with stride 0 */
  struct lb_shape keep = tx->shape;
  int64_t count = 1;
  for (int64_t k = 0; k < axes->n; k++) {
    count *= keep.dims[axes->ints[k]];
    keep.dims[axes->ints[k]] = 1;
  }
  int64_t ny = numel(ty), nx = numel(tx);
  struct iter it;
  iter_over(&it, tx);
  iter_add_bcast(&it, &keep, &tx->shape);
  enum lb_dtype t = tx->dtype;
  bool uns = t == LB_DTYPE_U64;
  bool is_max = n->op == LB_OP_REDUCE_MAX, is_min = n->op == LB_OP_REDUCE_MIN;
  if (is_float(t)) {
    double *acc = xmalloc(sizeof *acc * (size_t)ny);
    for (int64_t j = 0; j < ny; j++) acc[j] = is_max ? -INFINITY : is_min ? INFINITY : 0;
    for (int64_t i = 0; i < nx; i++, iter_next(&it)) {
      double v = ld_f(t, ins[0], i), *a = &acc[it.off[1]];
      if (is_max) *a = isnan(v) || v > *a ? v : *a; /* NaN sticks: NaN > v is false */
      else if (is_min) *a = isnan(v) || v < *a ? v : *a;
      else *a += v;
    }
    for (int64_t j = 0; j < ny; j++)
      st_f(t, outs[0], j, n->op == LB_OP_REDUCE_MEAN ? acc[j] / (double)count : acc[j]);
    free(acc);
  } else {
    int64_t *acc = xmalloc(sizeof *acc * (size_t)ny);
    int64_t lo = uns ? 0 : INT64_MIN, hi = uns ? -1 : INT64_MAX;
    for (int64_t j = 0; j < ny; j++) acc[j] = is_max ? lo : is_min ? hi : 0;
    bool ok = true;
    for (int64_t i = 0; i < nx; i++, iter_next(&it)) {
      int64_t v = ld_i(t, ins[0], i), *a = &acc[it.off[1]];
      *a = binary_i(is_max ? LB_OP_MAX : is_min ? LB_OP_MIN : LB_OP_ADD, *a, v, uns, &ok);
    }
    for (int64_t j = 0; j < ny; j++) {
      int64_t v = acc[j];
      if (n->op == LB_OP_REDUCE_MEAN && count > 0)
        v = uns ? (int64_t)((uint64_t)v / (uint64_t)count) : v / count; /* truncates */
      st_i(t, outs[0], j, v, uns);
    }
    free(acc);
  }
  return LB_OK;
}

/* ---- normalizations ---------------------------------------------------------------------- */

/* Reads a tensor as doubles broadcast to `to` (numpy rules). Caller frees. */
static double *load_bcast(const struct lb_type *t, const void *data, const struct lb_shape *to) {
  int64_t ne = lb_shape_numel(to);
  double *r = xmalloc(sizeof *r * (size_t)ne);
  struct iter it;
  iter_init(&it, to);
  iter_add_bcast(&it, &t->shape, to);
  for (int64_t i = 0; i < ne; i++, iter_next(&it)) r[i] = ld_f(t->dtype, data, it.off[0]);
  return r;
}

static enum lb_status eval_norm(const struct lb_graph *g, const struct lb_node *n,
                                const void *const *ins, void *const *outs, struct lb_diag *d) {
  (void)g;
  (void)d;
  const struct lb_type *tx = IT(0);
  enum lb_dtype t = tx->dtype;
  const void *x = ins[0];
  void *y = outs[0];
  int32_t rank = tx->shape.rank;
  if (n->op == LB_OP_BATCH_NORM) {
    /* y = (x - mean) / sqrt(var + eps) * scale + bias, per channel (dim 1) */
    double eps = lb_node_attr_float(n, "epsilon", (double)1e-5f);
    int64_t c = tx->shape.dims[1], inner = 1, ne = numel(tx);
    for (int32_t i = 2; i < rank; i++) inner *= tx->shape.dims[i];
    /* training_mode=1: mean and population variance of the batch over every dim
     * but 1; outputs 1, 2 = input stat * momentum + batch stat * (1 - momentum) */
    bool training = lb_node_attr_int(n, "training_mode", 0) != 0;
    double *bm = NULL, *bv = NULL;
    if (training) {
      int64_t cnt = c ? ne / c : 0;
      double mom = lb_node_attr_float(n, "momentum", 0.9);
      bm = xmalloc(sizeof *bm * (size_t)(c ? c : 1));
      bv = xmalloc(sizeof *bv * (size_t)(c ? c : 1));
      for (int64_t ch = 0; ch < c; ch++) bm[ch] = bv[ch] = 0;
      for (int64_t i = 0; i < ne; i++) bm[(i / inner) % c] += ld_f(t, x, i);
      for (int64_t ch = 0; ch < c; ch++) bm[ch] /= (double)cnt;
      for (int64_t i = 0; i < ne; i++) {
        double v = ld_f(t, x, i) - bm[(i / inner) % c];
        bv[(i / inner) % c] += v * v;
      }
      for (int64_t ch = 0; ch < c; ch++) {
        bv[ch] /= (double)cnt;
        if (n->n_outputs > 1)
          st_f(OT(1)->dtype, outs[1], ch, ld_f(t, ins[3], ch) * mom + bm[ch] * (1 - mom));
        if (n->n_outputs > 2)
          st_f(OT(2)->dtype, outs[2], ch, ld_f(t, ins[4], ch) * mom + bv[ch] * (1 - mom));
      }
    }
    for (int64_t i = 0; i < ne; i++) {
      int64_t ch = (i / inner) % c;
      double sc = ld_f(t, ins[1], ch), b = ld_f(t, ins[2], ch);
      double mean = training ? bm[ch] : ld_f(t, ins[3], ch);
      double var = training ? bv[ch] : ld_f(t, ins[4], ch);
      st_f(t, y, i, (ld_f(t, x, i) - mean) / sqrt(var + eps) * sc + b);
    }
    free(bm);
    free(bv);
    return LB_OK;
  }
  int32_t axis = (int32_t)lb_node_attr_int(n, "axis", rank - 1);
  int64_t outer = 1, len = tx->shape.dims[axis], inner = 1;
  for (int32_t i = 0; i < axis; i++) outer *= tx->shape.dims[i];
  for (int32_t i = axis + 1; i < rank; i++) inner *= tx->shape.dims[i];
  if (n->op == LB_OP_LAYER_NORM) {
    /* normalize over dims axis..rank-1: mean, biased variance, then affine */
    double eps = lb_node_attr_float(n, "epsilon", (double)1e-5f);
    struct lb_shape ns = {.rank = rank - axis};
    memcpy(ns.dims, tx->shape.dims + axis, sizeof ns.dims[0] * (size_t)ns.rank);
    int64_t cols = lb_shape_numel(&ns);
    double *scale = load_bcast(IT(1), ins[1], &ns);
    double *bias = HAS(2) ? load_bcast(IT(2), ins[2], &ns) : NULL;
    for (int64_t r = 0; r < outer; r++) {
      int64_t base = r * cols;
      double mean = 0, var = 0;
      for (int64_t j = 0; j < cols; j++) mean += ld_f(t, x, base + j);
      mean /= (double)cols;
      for (int64_t j = 0; j < cols; j++) {
        double v = ld_f(t, x, base + j) - mean;
        var += v * v;
      }
      var /= (double)cols;
      double inv = 1 / sqrt(var + eps);
      for (int64_t j = 0; j < cols; j++)
        st_f(t, y, base + j, (ld_f(t, x, base + j) - mean) * inv * scale[j] + (bias ? bias[j] : 0));
      if (n->n_outputs > 2) { /* the row's mean and 1/sqrt(var + eps) */
        st_f(OT(1)->dtype, outs[1], r, mean);
        st_f(OT(2)->dtype, outs[2], r, inv);
      }
    }
    free(scale);
    free(bias);
    return LB_OK;
  }
  /* softmax / log_softmax over `axis`, with max subtraction; in double. */
  bool logsm = n->op == LB_OP_LOG_SOFTMAX;
  for (int64_t o = 0; o < outer; o++) {
    for (int64_t in = 0; in < inner; in++) {
      int64_t base = o * len * inner + in;
      double mx = -INFINITY, sum = 0;
      for (int64_t k = 0; k < len; k++) {
        double v = ld_f(t, x, base + k * inner);
        mx = isnan(v) || v > mx ? v : mx;
      }
      for (int64_t k = 0; k < len; k++) sum += exp(ld_f(t, x, base + k * inner) - mx);
      double lsum = log(sum);
      for (int64_t k = 0; k < len; k++) {
        double v = ld_f(t, x, base + k * inner) - mx;
        st_f(t, y, base + k * inner, logsm ? v - lsum : exp(v) / sum);
      }
    }
  }
  return LB_OK;
}

/* ---- matmul family ------------------------------------------------------------------------- */

/* Batched numpy matmul plan: out[batch, i, j] = sum_k A[i, k] * B[k, j], with
 * 1-D operands promoted and batch dims broadcast. Element (i, k) of batch b
 * of A is at aoff[b] + i * a_rs + k * a_cs; likewise B. */
struct mm_plan {
  int64_t batch, m, k, n;
  int64_t *aoff, *boff;
  int64_t a_rs, a_cs, b_rs, b_cs;
};

static void mm_plan_make(struct mm_plan *p, const struct lb_shape *sa0, const struct lb_shape *sb0,
                         bool trans_b) {
  struct lb_shape sa = *sa0, sb = *sb0;
  if (sa.rank == 1) sa = (struct lb_shape){.rank = 2, .dims = {1, sa0->dims[0]}};
  if (sb.rank == 1) sb = (struct lb_shape){.rank = 2, .dims = {sb0->dims[0], 1}};
  p->m = sa.dims[sa.rank - 2];
  p->k = sa.dims[sa.rank - 1];
  p->n = sb.dims[sb.rank - (trans_b ? 2 : 1)];
  int64_t bcols = sb.dims[sb.rank - 1];
  p->a_rs = p->k;
  p->a_cs = 1;
  p->b_rs = trans_b ? 1 : bcols;   /* step along k */
  p->b_cs = trans_b ? bcols : 1;   /* step along j */
  struct lb_shape ba = {.rank = sa.rank - 2}, bb = {.rank = sb.rank - 2}, bo;
  memcpy(ba.dims, sa.dims, sizeof ba.dims[0] * (size_t)ba.rank);
  memcpy(bb.dims, sb.dims, sizeof bb.dims[0] * (size_t)bb.rank);
  LB_ASSERT(lb_broadcast_shapes(&ba, &bb, &bo) == LB_OK);
  p->batch = lb_shape_numel(&bo);
  p->aoff = xmalloc(sizeof *p->aoff * (size_t)p->batch);
  p->boff = xmalloc(sizeof *p->boff * (size_t)p->batch);
  struct iter it;
  int64_t st[LB_MAX_RANK];
  iter_init(&it, &bo);
  bcast_strides(&ba, &bo, st);
  for (int32_t i = 0; i < bo.rank; i++) st[i] *= p->m * p->k;
  iter_add(&it, st, 0);
  bcast_strides(&bb, &bo, st);
  for (int32_t i = 0; i < bo.rank; i++) st[i] *= sb.dims[sb.rank - 1] * sb.dims[sb.rank - 2];
  iter_add(&it, st, 0);
  for (int64_t b = 0; b < p->batch; b++, iter_next(&it)) {
    p->aoff[b] = it.off[0];
    p->boff[b] = it.off[1];
  }
}

static void mm_plan_free(struct mm_plan *p) {
  free(p->aoff);
  free(p->boff);
}

/* Float matmul into acc (double, batch*m*n). */
static void mm_float(const struct mm_plan *p, enum lb_dtype ta, const void *a, enum lb_dtype tb,
                     const void *b, double *acc) {
  for (int64_t bt = 0; bt < p->batch; bt++)
    for (int64_t i = 0; i < p->m; i++)
      for (int64_t j = 0; j < p->n; j++) {
        double s = 0;
        for (int64_t k = 0; k < p->k; k++)
          s += ld_f(ta, a, p->aoff[bt] + i * p->a_rs + k * p->a_cs) *
               ld_f(tb, b, p->boff[bt] + k * p->b_rs + j * p->b_cs);
        acc[(bt * p->m + i) * p->n + j] = s;
      }
}

/* Integer matmul with optional zero points: azp per row i (azp_n == m) or
 * scalar, bzp per column j or scalar. Wrapping int64 accumulation. */
static void mm_int(const struct mm_plan *p, enum lb_dtype ta, const void *a, const int64_t *azp,
                   int64_t azp_n, enum lb_dtype tb, const void *b, const int64_t *bzp,
                   int64_t bzp_n, int64_t *acc) {
  for (int64_t bt = 0; bt < p->batch; bt++)
    for (int64_t i = 0; i < p->m; i++)
      for (int64_t j = 0; j < p->n; j++) {
        int64_t za = azp ? azp[azp_n == 1 ? 0 : i] : 0, zb = bzp ? bzp[bzp_n == 1 ? 0 : j] : 0;
        uint64_t s = 0;
        for (int64_t k = 0; k < p->k; k++)
          s += (uint64_t)(ld_i(ta, a, p->aoff[bt] + i * p->a_rs + k * p->a_cs) - za) *
               (uint64_t)(ld_i(tb, b, p->boff[bt] + k * p->b_rs + j * p->b_cs) - zb);
        acc[(bt * p->m + i) * p->n + j] = (int64_t)s;
      }
}

static double act_apply(const char *act, double v, bool single) {
  if (strcmp(act, "relu") == 0) return v < 0 ? 0 : v;
  if (strcmp(act, "gelu") == 0) return gelu_d(v, false, single);
  if (strcmp(act, "gelu_tanh") == 0) return gelu_d(v, true, single);
  if (strcmp(act, "sigmoid") == 0) return single ? sigmoid_f((float)v) : sigmoid_d(v);
  if (strcmp(act, "tanh") == 0) return single ? tanhf((float)v) : tanh(v);
  return v;
}

static enum lb_status eval_matmul(const struct lb_graph *g, const struct lb_node *n,
                                  const void *const *ins, void *const *outs, struct lb_diag *d) {
  (void)g;
  (void)d;
  const struct lb_type *ta = IT(0), *tb = IT(1), *ty = OT(0);
  enum lb_dtype t = ty->dtype;
  int64_t ne = numel(ty);
  bool fl = is_float(t);
  if (n->op == LB_OP_GEMM) {
    /* y = alpha * op(A) op(B) + beta * C */
    int64_t tra = lb_node_attr_int(n, "transA", 0), trb = lb_node_attr_int(n, "transB", 0);
    double alpha = lb_node_attr_float(n, "alpha", 1.0), beta = lb_node_attr_float(n, "beta", 1.0);
    int64_t m = ty->shape.dims[0], nn = ty->shape.dims[1], k = ta->shape.dims[tra ? 0 : 1];
    int64_t acs = tra ? m : 1, ars = tra ? 1 : k;
    int64_t bcs = trb ? 1 : nn, brs = trb ? k : 1; /* b(kk, j) = kk*bcs + j*brs */
    struct iter it;
    iter_over(&it, ty);
    if (HAS(2)) iter_add_bcast(&it, &IT(2)->shape, &ty->shape);
    for (int64_t i = 0; i < m; i++)
      for (int64_t j = 0; j < nn; j++, iter_next(&it)) {
        if (fl) {
          double s = 0;
          for (int64_t kk = 0; kk < k; kk++)
            s += ld_f(t, ins[0], i * ars + kk * acs) * ld_f(t, ins[1], kk * bcs + j * brs);
          double v = alpha * s + (HAS(2) ? beta * ld_f(t, ins[2], it.off[1]) : 0);
          st_f(t, outs[0], i * nn + j, v);
        } else {
          uint64_t s = 0;
          for (int64_t kk = 0; kk < k; kk++)
            s += (uint64_t)ld_i(t, ins[0], i * ars + kk * acs) * (uint64_t)ld_i(t, ins[1], kk * bcs + j * brs);
          /* integer gemm: alpha and beta are applied in double and truncated */
          double v = alpha * (double)(int64_t)s + (HAS(2) ? beta * ld_f(t, ins[2], it.off[1]) : 0);
          if (alpha == 1.0 && (!HAS(2) || beta == 1.0))
            st_i(t, outs[0], i * nn + j, (int64_t)(s + (HAS(2) ? (uint64_t)ld_i(t, ins[2], it.off[1]) : 0)), false);
          else
            st_f(t, outs[0], i * nn + j, v);
        }
      }
    return LB_OK;
  }
  bool trans_b = n->op == LB_OP_FUSED_MATMUL && lb_node_attr_int(n, "transB", 0);
  struct mm_plan p;
  mm_plan_make(&p, &ta->shape, &tb->shape, trans_b);
  if (fl) {
    double *acc = xmalloc(sizeof *acc * (size_t)ne);
    mm_float(&p, ta->dtype, ins[0], tb->dtype, ins[1], acc);
    const char *act = lb_node_attr_string(n, "act", "none");
    bool fused = n->op == LB_OP_FUSED_MATMUL, single = is_single(t);
    for (int64_t i = 0; i < ne; i++) {
      double v = acc[i];
      if (fused && HAS(2)) v += ld_f(t, ins[2], i % p.n);
      if (fused) v = act_apply(act, v, single);
      st_f(t, outs[0], i, v);
    }
    free(acc);
  } else {
    int64_t *acc = xmalloc(sizeof *acc * (size_t)ne);
    mm_int(&p, ta->dtype, ins[0], NULL, 0, tb->dtype, ins[1], NULL, 0, acc);
    bool fused = n->op == LB_OP_FUSED_MATMUL;
    for (int64_t i = 0; i < ne; i++) {
      int64_t v = acc[i];
      if (fused && HAS(2)) v = (int64_t)((uint64_t)v + (uint64_t)ld_i(t, ins[2], i % p.n));
      if (fused && strcmp(lb_node_attr_string(n, "act", "none"), "relu") == 0 && v < 0) v = 0;
      st_i(t, outs[0], i, v, t == LB_DTYPE_U64);
    }
    free(acc);
  }
  mm_plan_free(&p);
  return LB_OK;
}

/* ---- conv and pools ------------------------------------------------------------------------- */

/* Window geometry shared by conv and the pools (ns spatial dims). */
struct window {
  int32_t ns;
  int64_t k[LB_MAX_RANK], st[LB_MAX_RANK], dil[LB_MAX_RANK], pb[LB_MAX_RANK], pe[LB_MAX_RANK];
  int64_t in[LB_MAX_RANK], out[LB_MAX_RANK];
  int64_t in_sz, out_sz, k_sz; /* products */
};

static void ints_or(const struct lb_node *n, const char *name, int64_t cnt, int64_t dflt,
                    int64_t *out) {
  const struct lb_attr *a = lb_node_attr(n, name);
  for (int64_t i = 0; i < cnt; i++) out[i] = a && a->kind == LB_ATTR_INTS && i < a->n ? a->ints[i] : dflt;
}

static void window_make(struct window *w, const struct lb_node *n, const struct lb_type *x,
                        const struct lb_type *y, const int64_t *kernel) {
  w->ns = x->shape.rank - 2;
  int64_t pads[2 * LB_MAX_RANK];
  ints_or(n, "strides", w->ns, 1, w->st);
  ints_or(n, "dilations", w->ns, 1, w->dil);
  ints_or(n, "pads", 2 * w->ns, 0, pads);
  w->in_sz = w->out_sz = w->k_sz = 1;
  for (int32_t i = 0; i < w->ns; i++) {
    w->k[i] = kernel[i];
    w->pb[i] = pads[i];
    w->pe[i] = pads[w->ns + i];
    w->in[i] = x->shape.dims[2 + i];
    w->out[i] = y->shape.dims[2 + i];
    w->in_sz *= w->in[i];
    w->out_sz *= w->out[i];
    w->k_sz *= w->k[i];
  }
}

/* Decompose a row-major linear index into coordinates. */
static void unravel(int64_t lin, int32_t rank, const int64_t *dims, int64_t *coord) {
  for (int32_t i = rank - 1; i >= 0; i--) {
    coord[i] = dims[i] ? lin % dims[i] : 0;
    lin = dims[i] ? lin / dims[i] : 0;
  }
}

/* Input spatial offset of kernel tap `kc` for output position `oc`; -1 if
 * the tap falls into padding. */
static int64_t window_tap(const struct window *w, const int64_t *oc, const int64_t *kc) {
  int64_t off = 0;
  for (int32_t i = 0; i < w->ns; i++) {
    int64_t p = oc[i] * w->st[i] - w->pb[i] + kc[i] * w->dil[i];
    if (p < 0 || p >= w->in[i]) return -1;
    off = off * w->in[i] + p;
  }
  return off;
}

static enum lb_status eval_conv(const struct lb_graph *g, const struct lb_node *n,
                                const void *const *ins, void *const *outs, struct lb_diag *d) {
  (void)g;
  (void)d;
  const struct lb_type *tx = IT(0), *tw = IT(1), *ty = OT(0);
  enum lb_dtype t = ty->dtype;
  struct window w;
  window_make(&w, n, tx, ty, tw->shape.dims + 2);
  int64_t batch = tx->shape.dims[0], c = tx->shape.dims[1], m = tw->shape.dims[0];
  int64_t group = lb_node_attr_int(n, "group", 1), cg = c / group, mg = m / group;
  int64_t oc[LB_MAX_RANK], kc[LB_MAX_RANK];
  int64_t *taps = xmalloc(sizeof *taps * (size_t)w.k_sz);
  for (int64_t b = 0; b < batch; b++)
    for (int64_t o = 0; o < w.out_sz; o++) {
      unravel(o, w.ns, w.out, oc);
      for (int64_t kk = 0; kk < w.k_sz; kk++) {
        unravel(kk, w.ns, w.k, kc);
        taps[kk] = window_tap(&w, oc, kc);
      }
      for (int64_t oc_ = 0; oc_ < m; oc_++) {
        int64_t grp = oc_ / mg;
        double s = HAS(2) ? ld_f(t, ins[2], oc_) : 0;
        for (int64_t ci = 0; ci < cg; ci++) {
          int64_t xbase = (b * c + grp * cg + ci) * w.in_sz, wbase = (oc_ * cg + ci) * w.k_sz;
          for (int64_t kk = 0; kk < w.k_sz; kk++)
            if (taps[kk] >= 0) s += ld_f(t, ins[0], xbase + taps[kk]) * ld_f(t, ins[1], wbase + kk);
        }
        st_f(t, outs[0], (b * m + oc_) * w.out_sz + o, s);
      }
    }
  free(taps);
  return LB_OK;
}

static enum lb_status eval_pool(const struct lb_graph *g, const struct lb_node *n,
                                const void *const *ins, void *const *outs, struct lb_diag *d) {
  (void)g;
  (void)d;
  const struct lb_type *tx = IT(0), *ty = OT(0);
  enum lb_dtype t = ty->dtype;
  int64_t planes = tx->shape.dims[0] * tx->shape.dims[1];
  if (n->op == LB_OP_GLOBAL_AVERAGE_POOL) {
    int64_t sp = numel(tx) / (planes ? planes : 1);
    for (int64_t p = 0; p < planes; p++) {
      double s = 0;
      for (int64_t i = 0; i < sp; i++) s += ld_f(t, ins[0], p * sp + i);
      st_f(t, outs[0], p, s / (double)sp);
    }
    return LB_OK;
  }
  int64_t kernel[LB_MAX_RANK];
  ints_or(n, "kernel_shape", tx->shape.rank - 2, 1, kernel);
  struct window w;
  window_make(&w, n, tx, ty, kernel);
  bool is_max = n->op == LB_OP_MAX_POOL;
  bool cip = lb_node_attr_int(n, "count_include_pad", 0) != 0;
  /* max_pool's indices (output 1): flat index into x of the first maximal element
   * (NaN skipped; -1 when the window holds no number): plane * in_sz + the spatial
   * index, row-major (storage_order 0) or column-major (1, first spatial dim fastest) */
  bool want_idx = is_max && n->n_outputs > 1;
  bool colmajor = lb_node_attr_int(n, "storage_order", 0) != 0;
  int64_t oc[LB_MAX_RANK], kc[LB_MAX_RANK], ic[LB_MAX_RANK];
  for (int64_t o = 0; o < w.out_sz; o++) {
    unravel(o, w.ns, w.out, oc);
    /* count_include_pad divisor: the window clipped to the padded input (not
     * to the extra cells ceil_mode may add), as onnxruntime computes it */
    int64_t padded_count = 1;
    for (int32_t i = 0; i < w.ns; i++) {
      int64_t start = oc[i] * w.st[i] - w.pb[i];
      int64_t end = start + (w.k[i] - 1) * w.dil[i] + 1;
      if (end > w.in[i] + w.pe[i]) end = w.in[i] + w.pe[i];
      padded_count *= end - start;
    }
    for (int64_t p = 0; p < planes; p++) {
      double acc = is_max ? -INFINITY : 0;
      int64_t cnt = 0, best = -1;
      for (int64_t kk = 0; kk < w.k_sz; kk++) {
        unravel(kk, w.ns, w.k, kc);
        int64_t tap = window_tap(&w, oc, kc);
        if (tap < 0) continue; /* padding: -inf for max, excluded or 0 for average */
        double v = ld_f(t, ins[0], p * w.in_sz + tap);
        if (is_max) {
          if (v > acc || (best < 0 && !isnan(v))) { /* NaN is skipped, as in onnx's reference */
            acc = v;
            best = tap;
          }
        } else {
          acc += v;
          cnt++;
        }
      }
      if (!is_max) acc /= (double)(cip ? padded_count : cnt);
      st_f(t, outs[0], p * w.out_sz + o, acc);
      if (want_idx) {
        int64_t sp = best;
        if (best >= 0 && colmajor) {
          unravel(best, w.ns, w.in, ic);
          sp = 0;
          for (int32_t i = w.ns - 1; i >= 0; i--) sp = sp * w.in[i] + ic[i];
        }
        ((int64_t *)outs[1])[p * w.out_sz + o] = best < 0 ? -1 : p * w.in_sz + sp;
      }
    }
  }
  return LB_OK;
}

/* ---- data movement ------------------------------------------------------------------------- */

/* Source index along one dim of pad's output index o, or -1 for the constant.
 * Negative pads crop first: the kept part is x[lo, lo + len) with lo = max(-begin, 0);
 * then the positive pads extend it (numpy.pad's modes on the kept part):
 * edge repeats its ends, reflect mirrors without repeating the end element
 * (period 2*(len-1)), wrap repeats it periodically. */
int64_t lb_pad_source_index(int64_t o, int64_t dim, int64_t begin, int64_t end, char mode) {
  int64_t lo = begin < 0 ? -begin : 0;
  int64_t len = dim + (begin < 0 ? begin : 0) + (end < 0 ? end : 0);
  int64_t c = o - (begin > 0 ? begin : 0); /* index into the kept part */
  if (c >= 0 && c < len) return lo + c;
  if (mode == 'c') return -1;
  LB_ASSERT(len > 0); /* the shape rule refuses to pad an empty dim by copying */
  if (mode == 'e') return lo + (c < 0 ? 0 : len - 1);
  if (mode == 'w') return lo + ((c % len) + len) % len;
  if (len == 1) return lo; /* reflect */
  int64_t period = 2 * (len - 1), m = ((c % period) + period) % period;
  return lo + (m < len ? m : period - m);
}

/* pad: one pass over the output; per-dim source maps make each element O(rank). */
static enum lb_status eval_pad(const struct lb_node *n, const void *const *ins,
                               void *const *outs) {
  const struct lb_type *tx = IT(0), *ty = OT(0);
  int sz = esize(tx->dtype);
  int32_t rank = tx->shape.rank;
  int64_t ne = numel(ty);
  if (ne == 0) return LB_OK;
  const int64_t *pads = lb_node_attr(n, "pads")->ints;
  char mode = lb_node_attr_string(n, "mode", "constant")[0]; /* c r e w */
  unsigned char fill[16];
  st_f(ty->dtype, fill, 0, lb_node_attr_float(n, "value", 0.0));
  int64_t xst[LB_MAX_RANK], *map[LB_MAX_RANK], total = 0;
  dense_strides(&tx->shape, xst);
  for (int32_t k = 0; k < rank; k++) total += ty->shape.dims[k];
  int64_t *buf = xmalloc(sizeof *buf * (size_t)(total + 1));
  int64_t at = 0;
  for (int32_t k = 0; k < rank; k++) {
    map[k] = buf + at;
    at += ty->shape.dims[k];
    for (int64_t o = 0; o < ty->shape.dims[k]; o++) {
      int64_t s = lb_pad_source_index(o, tx->shape.dims[k], pads[k], pads[rank + k], mode);
      map[k][o] = s < 0 ? -1 : s * xst[k];
    }
  }
  int64_t idx[LB_MAX_RANK] = {0};
  for (int64_t i = 0; i < ne; i++) {
    int64_t off = 0;
    for (int32_t k = 0; k < rank && off >= 0; k++)
      off = map[k][idx[k]] < 0 ? -1 : off + map[k][idx[k]];
    if (off >= 0) copy_elem(outs[0], i, ins[0], off, sz);
    else copy_elem(outs[0], i, fill, 0, sz);
    for (int32_t k = rank - 1; k >= 0 && ++idx[k] == ty->shape.dims[k]; k--) idx[k] = 0;
  }
  free(buf);
  return LB_OK;
}

static enum lb_status eval_move(const struct lb_graph *g, const struct lb_node *n,
                                const void *const *ins, void *const *outs, struct lb_diag *d) {
  (void)g;
  const struct lb_type *tx = IT(0), *ty = OT(0);
  int sz = esize(tx->dtype);
  int32_t rank = tx->shape.rank;
  int64_t ne = numel(ty);
  int64_t xst[LB_MAX_RANK];
  dense_strides(&tx->shape, xst);
  struct iter it;
  switch (n->op) {
  case LB_OP_RESHAPE:
    memcpy(outs[0], ins[0], (size_t)(ne * sz));
    return LB_OK;
  case LB_OP_TRANSPOSE: {
    /* out[i0..] = x[...] with out dim k = x dim perm[k] */
    const struct lb_attr *perm = lb_node_attr(n, "perm");
    int64_t st[LB_MAX_RANK];
    for (int32_t k = 0; k < rank; k++) st[k] = xst[perm->ints[k]];
    iter_init(&it, &ty->shape);
    iter_add(&it, st, 0);
    for (int64_t i = 0; i < ne; i++, iter_next(&it)) copy_elem(outs[0], i, ins[0], it.off[0], sz);
    return LB_OK;
  }
  case LB_OP_EXPAND:
    iter_init(&it, &ty->shape);
    iter_add_bcast(&it, &tx->shape, &ty->shape);
    for (int64_t i = 0; i < ne; i++, iter_next(&it)) copy_elem(outs[0], i, ins[0], it.off[0], sz);
    return LB_OK;
  case LB_OP_SLICE: {
    const struct lb_attr *starts = lb_node_attr(n, "starts"), *steps = lb_node_attr(n, "steps");
    int64_t st[LB_MAX_RANK], base = 0;
    for (int32_t k = 0; k < rank; k++) {
      st[k] = xst[k] * steps->ints[k];
      base += xst[k] * starts->ints[k];
    }
    iter_init(&it, &ty->shape);
    iter_add(&it, st, base);
    for (int64_t i = 0; i < ne; i++, iter_next(&it)) copy_elem(outs[0], i, ins[0], it.off[0], sz);
    return LB_OK;
  }
  case LB_OP_CONCAT: case LB_OP_SPLIT: {
    /* view every tensor as [outer, dim(axis) * inner] and copy row blocks */
    int32_t axis = (int32_t)lb_node_attr_int(n, "axis", 0);
    const struct lb_type *whole = n->op == LB_OP_CONCAT ? ty : tx;
    int64_t outer = 1, inner = 1;
    for (int32_t k = 0; k < axis; k++) outer *= whole->shape.dims[k];
    for (int32_t k = axis + 1; k < whole->shape.rank; k++) inner *= whole->shape.dims[k];
    int64_t row = whole->shape.dims[axis] * inner * sz, pos = 0;
    int32_t parts = n->op == LB_OP_CONCAT ? n->n_inputs : n->n_outputs;
    for (int32_t p = 0; p < parts; p++) {
      const struct lb_type *tp = n->op == LB_OP_CONCAT ? IT(p) : OT(p);
      int64_t chunk = tp->shape.dims[axis] * inner * sz;
      for (int64_t o = 0; o < outer; o++) {
        if (n->op == LB_OP_CONCAT)
          memcpy((char *)outs[0] + o * row + pos, (const char *)ins[p] + o * chunk, (size_t)chunk);
        else
          memcpy((char *)outs[p] + o * chunk, (const char *)ins[0] + o * row + pos, (size_t)chunk);
      }
      pos += chunk;
    }
    return LB_OK;
  }
  case LB_OP_GATHER: {
    int32_t axis = (int32_t)lb_node_attr_int(n, "axis", 0);
    const struct lb_type *ti = IT(1);
    int64_t outer = 1, inner = 1, dim = tx->shape.dims[axis], nidx = numel(ti);
    for (int32_t k = 0; k < axis; k++) outer *= tx->shape.dims[k];
    for (int32_t k = axis + 1; k < rank; k++) inner *= tx->shape.dims[k];
    for (int64_t j = 0; j < nidx; j++) {
      int64_t ix = ld_i(ti->dtype, ins[1], j);
      if (ix < -dim || ix >= dim)
        return ERR("indices[%lld] = %lld is out of range for dim %d of size %lld of input 0",
                   (long long)j, (long long)ix, axis, (long long)dim);
    }
    for (int64_t o = 0; o < outer; o++)
      for (int64_t j = 0; j < nidx; j++) {
        int64_t ix = ld_i(ti->dtype, ins[1], j);
        if (ix < 0) ix += dim;
        memcpy((char *)outs[0] + ((o * nidx + j) * inner) * sz,
               (const char *)ins[0] + ((o * dim + ix) * inner) * sz, (size_t)(inner * sz));
      }
    return LB_OK;
  }
  case LB_OP_TRILU: {
    /* keep x[..., i, j] where j - i >= k (upper) or j - i <= k (lower) */
    bool upper = lb_node_attr_int(n, "upper", 1) != 0;
    int64_t k = lb_node_attr_int(n, "k", 0);
    int64_t rows = tx->shape.dims[rank - 2], cols = tx->shape.dims[rank - 1];
    for (int64_t i = 0; i < ne; i++) {
      int64_t c = i % cols, r = (i / cols) % rows;
      bool keep = upper ? c - r >= k : c - r <= k;
      if (keep) copy_elem(outs[0], i, ins[0], i, sz);
      else memset((char *)outs[0] + i * sz, 0, (size_t)sz);
    }
    return LB_OK;
  }
  case LB_OP_PAD: return eval_pad(n, ins, outs);
  default:
    return ERR("%s must be lowered by the frontend", lb_op_info[n->op].ir_name);
  }
}

/* ---- quantization ------------------------------------------------------------------------- */

static void qrange(enum lb_dtype t, int64_t *lo, int64_t *hi) {
  switch (t) {
  case LB_DTYPE_U8: *lo = 0, *hi = 255; break;
  case LB_DTYPE_I8: *lo = -128, *hi = 127; break;
  case LB_DTYPE_U16: *lo = 0, *hi = 65535; break;
  case LB_DTYPE_I16: *lo = -32768, *hi = 32767; break;
  default: *lo = INT32_MIN, *hi = INT32_MAX; break;
  }
}

/* round half to even, add zero point, saturate (the order ONNX specifies) */
static int64_t q_sat(double r, int64_t zp, int64_t lo, int64_t hi) {
  if (isnan(r)) return zp < lo ? lo : zp > hi ? hi : zp;
  double v = nearbyint(r) + (double)zp;
  return v < (double)lo ? lo : v > (double)hi ? hi : (int64_t)v;
}

/* Per-axis parameter index of element i (scalar params: 0). */
static int64_t qindex(const struct lb_type *x, const struct lb_type *p, int32_t axis, int64_t i) {
  if (lb_shape_numel(&p->shape) == 1) return 0;
  int64_t inner = 1;
  for (int32_t k = axis + 1; k < x->shape.rank; k++) inner *= x->shape.dims[k];
  return (i / inner) % x->shape.dims[axis];
}

/* A scale / zero point as an array of n values (1 or the vector length). */
static void load_params_i(const struct lb_type *t, const void *data, int64_t *out) {
  for (int64_t i = 0, ne = lb_shape_numel(&t->shape); i < ne; i++) out[i] = ld_i(t->dtype, data, i);
}

/* qmatmul, exactly as docs/ir-ops.md "Quantized matmul" (and "Low-bit
 * weights": per-group exact i32 sums, each scaled and added in f32 in
 * ascending group order) states it: 8-bit
 * activations (quantized here for static/dynamic f32 input) times the int8
 * weight, accumulated exactly, then one f32 multiply by the product of the two
 * scales (rounded to f32), the f32 bias add, the activation in f32, and the
 * optional requantization. W8 (a_quant="none") sums in double, rounds to f32
 * and scales in f32: the kernels' f32 sums differ from it only by rounding.
 * An f16 weight (no qparams) is its values: the sum of a * w in double. */
static void eval_qmatmul(const struct lb_node *n, const void *const *ins, void *const *outs) {
  const struct lb_value *va = n->inputs[0], *vw = n->inputs[1], *vy = n->outputs[0];
  const struct lb_qparams *qw = vw->qparams, *qa = va->qparams, *qy = vy->qparams;
  int64_t k = vw->type.shape.dims[0], nn = vw->type.shape.dims[1];
  int64_t rows = k ? numel(&va->type) / k : numel(&vy->type) / (nn ? nn : 1);
  const int8_t *w = ins[1];
  const float *bias = HAS(2) ? ins[2] : NULL;
  const char *aq = lb_node_attr_string(n, "a_quant", "none"), *act = lb_node_attr_string(n, "act", "none");
  bool none = strcmp(aq, "none") == 0, dynamic = strcmp(aq, "dynamic") == 0;
  enum lb_dtype ta = va->type.dtype, ty = vy->type.dtype;
  bool a_int = ta == LB_DTYPE_I8 || ta == LB_DTYPE_U8, y_int = ty == LB_DTYPE_I8 || ty == LB_DTYPE_U8;
  /* low-bit layouts (docs/ir-ops.md "Low-bit weights"): groups of gs rows with
   * their own scale (and zero point when asymmetric); one group = the 8-bit rule */
  bool f16 = vw->type.dtype == LB_DTYPE_F16; /* a_quant none only */
  bool grouped = !f16 && (qw->group_size > 0 || qw->zero_points || qw->fp8);
  int64_t gs = !f16 && qw->group_size > 0 ? qw->group_size : (k ? k : 1);
  float fp8[256]; /* fp8 weights (a_quant none only): the value of each code */
  for (int c = 0; !f16 && qw->fp8 && c < 256; c++) fp8[c] = lb_fp8_decode((uint8_t)c, qw->fp8);
  int64_t *q = xmalloc(sizeof *q * (size_t)(k + 1));
  for (int64_t r = 0; r < rows; r++) {
    float sa = 1;
    int64_t za = 0;
    if (!none && dynamic) {
      const float *x = (const float *)ins[0] + r * k;
      float amax = 0;
      for (int64_t i = 0; i < k; i++) amax = fabsf(x[i]) > amax ? fabsf(x[i]) : amax;
      sa = amax == 0 ? 1.0f : amax / 127.0f;
      for (int64_t i = 0; i < k; i++) q[i] = q_sat((double)(x[i] / sa), 0, -127, 127);
    } else if (!none) {
      sa = qa->scales[0];
      za = qa->zero_points ? qa->zero_points[0] : 0;
      int64_t lo = qa->is_unsigned ? 0 : -128, hi = qa->is_unsigned ? 255 : 127;
      for (int64_t i = 0; i < k; i++)
        q[i] = a_int ? ld_i(ta, ins[0], r * k + i) : q_sat((double)(((const float *)ins[0])[r * k + i] / sa), za, lo, hi);
    }
    for (int64_t j = 0; j < nn; j++) {
      float ws = f16 ? 1.0f : qw->scales[qw->n == 1 ? 0 : j], y;
      if (f16) {
        double s = 0;
        for (int64_t i = 0; i < k; i++)
          s += (double)((const float *)ins[0])[r * k + i] * lb_f16_decode(((const uint16_t *)ins[1])[i * nn + j]);
        y = (float)s;
      } else if (grouped && none) {
        /* sum of a * real_w, real_w = scale * (code - zp) or scale * fp8(code), exact
         * in f32 (f16 scale) */
        double s = 0;
        for (int64_t i = 0; i < k; i++) {
          int64_t gi = qw->n == 1 ? 0 : (i / gs) * nn + j;
          float rw = qw->fp8 ? qw->scales[gi] * fp8[(uint8_t)w[i * nn + j]]
                             : qw->scales[gi] * (float)(w[i * nn + j] - (qw->zero_points ? qw->zero_points[gi] : 0));
          s += (double)((const float *)ins[0])[r * k + i] * rw;
        }
        y = (float)s;
      } else if (grouped) {
        y = 0;
        for (int64_t g0 = 0; g0 < k; g0 += gs) {
          int64_t gi = qw->n == 1 ? 0 : (g0 / gs) * nn + j, zw = qw->zero_points ? qw->zero_points[gi] : 0, acc = 0;
          for (int64_t i = g0; i < k && i < g0 + gs; i++) acc += (q[i] - za) * (w[i * nn + j] - zw);
          y += (float)acc * (sa * qw->scales[gi]);
        }
      } else if (none) {
        double s = 0;
        for (int64_t i = 0; i < k; i++) s += (double)((const float *)ins[0])[r * k + i] * w[i * nn + j];
        y = (float)s * ws;
      } else {
        int64_t acc = 0;
        for (int64_t i = 0; i < k; i++) acc += (q[i] - za) * w[i * nn + j];
        y = (float)acc * (sa * ws);
      }
      if (bias) y += bias[j];
      y = (float)act_apply(act, y, true);
      if (y_int) {
        int64_t lo, hi;
        qrange(ty, &lo, &hi);
        int64_t zy = qy->zero_points ? qy->zero_points[0] : 0;
        st_i(ty, outs[0], r * nn + j, q_sat((double)(y / qy->scales[0]), zy, lo, hi), false);
      } else {
        ((float *)outs[0])[r * nn + j] = y;
      }
    }
  }
  free(q);
}

static enum lb_status eval_quant(const struct lb_graph *g, const struct lb_node *n,
                                 const void *const *ins, void *const *outs, struct lb_diag *d) {
  (void)g;
  (void)d;
  const struct lb_type *tx = IT(0), *ty = OT(0);
  int64_t ne = numel(tx);
  int32_t axis = (int32_t)lb_node_attr_int(n, "axis", 1);
  switch (n->op) {
  case LB_OP_OBSERVE: /* identity; statistics are recorded by the calibration runner */
    memcpy(outs[0], ins[0], (size_t)lb_type_nbytes(tx));
    return LB_OK;
  case LB_OP_QUANTIZE_LINEAR: {
    /* y = saturate(round_half_even(x / scale) + zp); the division is done in
     * f32 for f32 inputs, as onnxruntime and onnx's reference do */
    int64_t lo, hi;
    qrange(ty->dtype, &lo, &hi);
    for (int64_t i = 0; i < ne; i++) {
      double x = ld_f(tx->dtype, ins[0], i);
      double s = ld_f(IT(1)->dtype, ins[1], qindex(tx, IT(1), axis, i));
      int64_t zp = HAS(2) ? ld_i(IT(2)->dtype, ins[2], qindex(tx, IT(2), axis, i)) : 0;
      double r = tx->dtype == LB_DTYPE_F64 ? x / s : (double)((float)x / (float)s);
      st_i(ty->dtype, outs[0], i, q_sat(r, zp, lo, hi), false);
    }
    return LB_OK;
  }
  case LB_OP_DEQUANTIZE_LINEAR:
    /* y = (x - zp) * scale; the product of two f32 values is exact in double,
     * so rounding once gives f32 arithmetic's result */
    for (int64_t i = 0; i < ne; i++) {
      int64_t x = ld_i(tx->dtype, ins[0], i);
      int64_t zp = HAS(2) ? ld_i(IT(2)->dtype, ins[2], qindex(tx, IT(2), axis, i)) : 0;
      double s = ld_f(IT(1)->dtype, ins[1], qindex(tx, IT(1), axis, i));
      st_f(ty->dtype, outs[0], i, (double)(float)(x - zp) * s);
    }
    return LB_OK;
  case LB_OP_DYNAMIC_QUANTIZE_LINEAR: {
    /* ONNX: scale = (max(0, max(x)) - min(0, min(x))) / 255,
     * zp = saturate(round(-min / scale)), y = saturate(round(x / scale) + zp),
     * all in f32 arithmetic like the spec's numpy code. */
    const float *x = ins[0];
    float mn = 0, mx = 0;
    for (int64_t i = 0; i < ne; i++) {
      if (x[i] < mn) mn = x[i];
      if (x[i] > mx) mx = x[i];
    }
    float scale = (mx - mn) / 255.0f;
    /* all-zero input: scale 0 would make zp NaN; every y is 0 with zp 0 */
    int64_t zp = scale == 0 ? 0 : q_sat((double)((0.0f - mn) / scale), 0, 0, 255);
    for (int64_t i = 0; i < ne; i++)
      ((uint8_t *)outs[0])[i] = scale == 0 ? 0 : (uint8_t)q_sat((double)(x[i] / scale), zp, 0, 255);
    *(float *)outs[1] = scale;
    *(uint8_t *)outs[2] = (uint8_t)zp;
    return LB_OK;
  }
  case LB_OP_MATMUL_INTEGER: case LB_OP_QLINEAR_MATMUL: {
    bool ql = n->op == LB_OP_QLINEAR_MATMUL;
    int32_t ib = ql ? 3 : 1, iazp = 2, ibzp = ql ? 5 : 3;
    const struct lb_type *tb = IT(ib);
    struct mm_plan p;
    mm_plan_make(&p, &tx->shape, &tb->shape, false);
    int64_t azp_n = HAS(iazp) ? numel(IT(iazp)) : 0, bzp_n = HAS(ibzp) ? numel(IT(ibzp)) : 0;
    int64_t *azp = xmalloc(sizeof *azp * (size_t)(azp_n + 1)), *bzp = xmalloc(sizeof *bzp * (size_t)(bzp_n + 1));
    if (azp_n) load_params_i(IT(iazp), ins[iazp], azp);
    if (bzp_n) load_params_i(IT(ibzp), ins[ibzp], bzp);
    int64_t ny = numel(ty);
    int64_t *acc = xmalloc(sizeof *acc * (size_t)ny);
    mm_int(&p, tx->dtype, ins[0], azp_n ? azp : NULL, azp_n, tb->dtype, ins[ib], bzp_n ? bzp : NULL, bzp_n, acc);
    if (!ql) {
      for (int64_t i = 0; i < ny; i++) st_i(LB_DTYPE_I32, outs[0], i, acc[i], false);
    } else {
      /* y = saturate(round((a_scale * b_scale / y_scale) * acc) + y_zp), in
       * f32 like onnxruntime's reference path */
      int64_t lo, hi, yzp = ld_i(IT(7)->dtype, ins[7], 0);
      qrange(ty->dtype, &lo, &hi);
      float ys = *(const float *)ins[6];
      const float *as = ins[1], *bs = ins[4];
      int64_t as_n = numel(IT(1)), bs_n = numel(IT(4));
      for (int64_t i = 0; i < ny; i++) {
        int64_t row = (i / p.n) % p.m, col = i % p.n;
        float mult = as[as_n == 1 ? 0 : row] * bs[bs_n == 1 ? 0 : col] / ys;
        st_i(ty->dtype, outs[0], i, q_sat((double)((float)acc[i] * mult), yzp, lo, hi), false);
      }
    }
    free(acc);
    free(azp);
    free(bzp);
    mm_plan_free(&p);
    return LB_OK;
  }
  case LB_OP_QMATMUL:
    eval_qmatmul(n, ins, outs);
    return LB_OK;
  default: LB_ASSERT(!"not a quant op");
  }
  return LB_OK;
}

/* ---- const and entry point ----------------------------------------------------------------- */

static enum lb_status eval_const(const struct lb_graph *g, const struct lb_node *n,
                                 const void *const *ins, void *const *outs, struct lb_diag *d) {
  (void)ins;
  if (n->blob < 0 || n->blob >= g->n_blobs || !g->blobs[n->blob].data)
    return ERR("const has no data (elided blob?)");
  size_t want = (size_t)lb_type_nbytes(OT(0));
  if (g->blobs[n->blob].size != want)
    return ERR("const blob has %zu bytes but its type needs %zu", g->blobs[n->blob].size, want);
  memcpy(outs[0], g->blobs[n->blob].data, want);
  return LB_OK;
}

static enum lb_status eval_frontend_only(const struct lb_graph *g, const struct lb_node *n,
                                         const void *const *ins, void *const *outs,
                                         struct lb_diag *d) {
  (void)g;
  (void)ins;
  (void)outs;
  return ERR("%s must be lowered by the frontend", lb_op_info[n->op].ir_name);
}

typedef enum lb_status (*eval_fn)(const struct lb_graph *, const struct lb_node *,
                                  const void *const *, void *const *, struct lb_diag *);

static const eval_fn family_eval[LB_KIND_COUNT] = {
    [LB_KIND_CONST] = eval_const,   [LB_KIND_UNARY] = eval_unary,
    [LB_KIND_BINARY] = eval_binary, [LB_KIND_REDUCE] = eval_reduce,
    [LB_KIND_NORM] = eval_norm,     [LB_KIND_MATMUL] = eval_matmul,
    [LB_KIND_CONV] = eval_conv,     [LB_KIND_POOL] = eval_pool,
    [LB_KIND_MOVE] = eval_move,     [LB_KIND_SHAPE] = eval_frontend_only,
    [LB_KIND_QUANT] = eval_quant,
};

/* lb_eval_node: n must have passed lb_infer_node (its output types are set and
 * its attributes canonical); this function trusts them. Input and output
 * buffers are dense row-major; ins[i] is NULL for an omitted optional input.
 * Data-dependent errors (gather index out of range, integer division by zero)
 * return LB_ERR_INVALID; the outputs are then unspecified. */
enum lb_status lb_eval_node(const struct lb_graph *g, const struct lb_node *n,
                            const void *const *ins, void *const *outs, struct lb_diag *d) {
  LB_ASSERT((unsigned)n->op < LB_OP_COUNT);
  for (int32_t i = 0; i < n->n_outputs; i++)
    LB_ASSERT(n->outputs[i]->type.dtype != LB_DTYPE_UNDEF);
  return family_eval[lb_op_info[n->op].kind](g, n, ins, outs, d);
}
