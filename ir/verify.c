/* verify.c: checks that a graph keeps the IR's rules (docs/ir-format.md,
 * docs/ir-ops.md). Reports every problem found, up to 100, each naming the
 * node by its first output and op ("%y = add: ...") as well as by its ONNX
 * name through lb_diag.
 *
 *  - SSA in topological order: each value is defined once (graph input or one
 *    node output, with matching producer links) before any use; names are unique
 *  - node input/output counts within the op table's bounds; required inputs present
 *  - types: known dtype, rank <= LB_MAX_RANK, dims >= 0; qparams well formed
 *  - const nodes: a blob of exactly the type's size (data may be elided)
 *  - attributes: sorted, unique, and for canonical ops the ones docs/ir-ops.md
 *    lists, with the right kinds; required ones present
 *  - each node's output types equal what lb_infer_node computes (skipped while
 *    the shape rules report "not built yet")
 *  - graph outputs defined; blob names unique
 */
#include "ir/ir.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_ERRORS = 100 };

/* ---- attribute specs (docs/ir-ops.md) ------------------------------------------- */
struct attr_spec {
  const char *name;
  enum lb_attr_kind kind;
  bool required;
};
#define I LB_ATTR_INT
#define F LB_ATTR_FLOAT
#define S LB_ATTR_STRING
#define IS LB_ATTR_INTS
#define SS LB_ATTR_STRINGS
#define REQ true
/* A NULL entry: the op takes no attributes. Specs end with a {NULL} entry. */
static const struct attr_spec *const attr_specs[LB_OP_COUNT] = {
    [LB_OP_LEAKY_RELU] = (const struct attr_spec[]){{"alpha", F, 0}, {0}},
    [LB_OP_HARD_SIGMOID] = (const struct attr_spec[]){{"alpha", F, 0}, {"beta", F, 0}, {0}},
    [LB_OP_GELU] = (const struct attr_spec[]){{"approximate", S, 0}, {0}},
    [LB_OP_CAST] = (const struct attr_spec[]){{"to", S, REQ}, {0}},
#define REDUCE (const struct attr_spec[]){{"axes", IS, REQ}, {"keepdims", I, 0}, {0}}
    [LB_OP_REDUCE_MEAN] = REDUCE,
    [LB_OP_REDUCE_SUM] = REDUCE,
    [LB_OP_REDUCE_MAX] = REDUCE,
    [LB_OP_REDUCE_MIN] = REDUCE,
#undef REDUCE
    [LB_OP_SOFTMAX] = (const struct attr_spec[]){{"axis", I, REQ}, {0}},
    [LB_OP_LOG_SOFTMAX] = (const struct attr_spec[]){{"axis", I, REQ}, {0}},
    [LB_OP_LAYER_NORM] = (const struct attr_spec[]){{"axis", I, 0}, {"epsilon", F, 0}, {0}},
    [LB_OP_BATCH_NORM] = (const struct attr_spec[]){{"epsilon", F, 0}, {"momentum", F, 0},
                                                    {"training_mode", I, 0}, {0}},
    [LB_OP_GEMM] = (const struct attr_spec[]){{"alpha", F, 0}, {"beta", F, 0}, {"transA", I, 0},
                                              {"transB", I, 0}, {0}},
    [LB_OP_FUSED_MATMUL] = (const struct attr_spec[]){{"act", S, 0}, {"keep_float", I, 0}, {"transB", I, 0}, {0}},
    [LB_OP_CONV] = (const struct attr_spec[]){{"dilations", IS, REQ}, {"group", I, 0},
                                              {"kernel_shape", IS, REQ}, {"pads", IS, REQ},
                                              {"strides", IS, REQ}, {0}},
    [LB_OP_MAX_POOL] = (const struct attr_spec[]){{"ceil_mode", I, 0}, {"dilations", IS, REQ},
                                                  {"kernel_shape", IS, REQ}, {"pads", IS, REQ},
                                                  {"storage_order", I, 0}, {"strides", IS, REQ},
                                                  {0}},
    [LB_OP_AVERAGE_POOL] = (const struct attr_spec[]){{"ceil_mode", I, 0},
                                                      {"count_include_pad", I, 0},
                                                      {"kernel_shape", IS, REQ}, {"pads", IS, REQ},
                                                      {"strides", IS, REQ}, {0}},
    [LB_OP_RESHAPE] = (const struct attr_spec[]){{"shape", IS, REQ}, {0}},
    [LB_OP_TRANSPOSE] = (const struct attr_spec[]){{"perm", IS, REQ}, {0}},
    [LB_OP_CONCAT] = (const struct attr_spec[]){{"axis", I, REQ}, {0}},
    [LB_OP_SPLIT] = (const struct attr_spec[]){{"axis", I, REQ}, {"split", IS, REQ}, {0}},
    [LB_OP_SLICE] = (const struct attr_spec[]){{"ends", IS, REQ}, {"starts", IS, REQ},
                                               {"steps", IS, REQ}, {0}},
    [LB_OP_GATHER] = (const struct attr_spec[]){{"axis", I, 0}, {0}},
    [LB_OP_EXPAND] = (const struct attr_spec[]){{"shape", IS, REQ}, {0}},
    [LB_OP_TRILU] = (const struct attr_spec[]){{"k", I, 0}, {"upper", I, 0}, {0}},
    [LB_OP_PAD] = (const struct attr_spec[]){{"mode", S, 0}, {"pads", IS, REQ}, {"value", F, 0},
                                             {0}},
    [LB_OP_QUANTIZE_LINEAR] = (const struct attr_spec[]){{"axis", I, 0}, {0}},
    [LB_OP_DEQUANTIZE_LINEAR] = (const struct attr_spec[]){{"axis", I, 0}, {0}},
    [LB_OP_OBSERVE] = (const struct attr_spec[]){{"stats", SS, REQ}, {0}},
    [LB_OP_QMATMUL] = (const struct attr_spec[]){{"a_quant", S, 0}, {"act", S, 0}, {0}},
};
#undef I
#undef F
#undef S
#undef IS
#undef SS
#undef REQ

/* ONNX ops that the importer rewrites away (docs/ir-ops.md); their attributes are not checked. */
static bool attrs_unchecked(enum lb_op op) {
  switch (op) {
  case LB_OP_DROPOUT: case LB_OP_FLATTEN: case LB_OP_SQUEEZE: case LB_OP_UNSQUEEZE:
  case LB_OP_SHAPE: case LB_OP_CONSTANT: case LB_OP_CONSTANT_OF_SHAPE: case LB_OP_RANGE:
  case LB_OP_CONV_INTEGER: case LB_OP_QLINEAR_CONV:
    return true;
  default:
    return false;
  }
}

static const char *const kind_names[LB_ATTR_KIND_COUNT] = {
    "an int", "a float", "a string", "a list of ints", "a list of floats", "a list of strings",
    "a tensor"};

/* ---- verifier state --------------------------------------------------------------- */
struct verifier {
  const struct lb_graph *g;
  struct lb_diag *d;
  int errors;
  bool infer_off;
  /* set of defined values (pointers), open addressing */
  const struct lb_value **set;
  size_t set_cap;
  /* scratch text for one message */
  char *buf;
  size_t len, cap;
};

static void buf_putn(struct verifier *v, const char *s, size_t n) {
  if (v->len + n + 1 > v->cap) {
    size_t cap = v->cap ? v->cap * 2 : 256;
    while (cap < v->len + n + 1) cap *= 2;
    char *t = realloc(v->buf, cap);
    if (!t) abort();
    v->buf = t;
    v->cap = cap;
  }
  memcpy(v->buf + v->len, s, n);
  v->len += n;
  v->buf[v->len] = 0;
}

static void buf_vprintf(struct verifier *v, const char *fmt, va_list ap) {
  va_list ap2;
  va_copy(ap2, ap);
  int n = vsnprintf(NULL, 0, fmt, ap2);
  va_end(ap2);
  if (n <= 0) return;
  char *t = malloc((size_t)n + 1);
  if (!t) abort();
  vsnprintf(t, (size_t)n + 1, fmt, ap);
  buf_putn(v, t, (size_t)n);
  free(t);
}

static void buf_printf(struct verifier *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void buf_printf(struct verifier *v, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  buf_vprintf(v, fmt, ap);
  va_end(ap);
}

static bool is_bare_char(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         c == '_' || c == '.' || c == '-' || c == '/';
}

/* Appends %name as the printer writes it. */
static void buf_value(struct verifier *v, const struct lb_value *val) {
  if (!val) {
    buf_putn(v, "_", 1);
    return;
  }
  const char *s = val->name ? val->name : "";
  bool bare = *s;
  for (const char *c = s; bare && *c; c++) bare = is_bare_char((unsigned char)*c);
  buf_putn(v, "%", 1);
  if (bare) {
    buf_putn(v, s, strlen(s));
    return;
  }
  buf_putn(v, "\"", 1);
  for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
    if (*c == '"' || *c == '\\')
      buf_printf(v, "\\%c", *c);
    else if (*c < 0x20 || *c >= 0x7f)
      buf_printf(v, "\\x%02x", *c);
    else
      buf_putn(v, (const char *)c, 1);
  }
  buf_putn(v, "\"", 1);
}

static void buf_type(struct verifier *v, const struct lb_type *t) {
  buf_printf(v, "%s[", (unsigned)t->dtype < LB_DTYPE_COUNT ? lb_dtype_traits[t->dtype].name : "undef");
  for (int32_t i = 0; i < t->shape.rank && i < LB_MAX_RANK; i++)
    buf_printf(v, "%s%" PRId64, i ? "," : "", t->shape.dims[i]);
  buf_putn(v, "]", 1);
}

static const char *op_name(enum lb_op op) {
  return (unsigned)op < LB_OP_COUNT ? lb_op_info[op].ir_name : "<invalid op>";
}

/* Starts a message about node n (NULL: the graph): "%y = add: ". */
static bool begin(struct verifier *v, const struct lb_node *n) {
  if (v->errors >= MAX_ERRORS) return false;
  v->len = 0;
  buf_putn(v, "", 0);
  if (n) {
    for (int32_t i = 0; i < n->n_outputs; i++) {
      if (i) buf_putn(v, ", ", 2);
      buf_value(v, n->outputs[i]);
    }
    buf_printf(v, "%s%s: ", n->n_outputs ? " = " : "", op_name(n->op));
  }
  return true;
}

/* Reports the message built since begin(). */
static void end(struct verifier *v, const struct lb_node *n) {
  v->errors++;
  const struct lb_node *named = n && (unsigned)n->op < LB_OP_COUNT ? n : NULL;
  lb_diag_error(v->d, LB_ERR_INVALID, named, "%s", v->buf);
  if (v->errors == MAX_ERRORS) lb_diag_note(v->d, "too many errors; stopping at %d", MAX_ERRORS);
}

static void fail(struct verifier *v, const struct lb_node *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void fail(struct verifier *v, const struct lb_node *n, const char *fmt, ...) {
  if (!begin(v, n)) return;
  va_list ap;
  va_start(ap, fmt);
  buf_vprintf(v, fmt, ap);
  va_end(ap);
  end(v, n);
}

/* ---- defined-value set -------------------------------------------------------------- */
static size_t ptr_hash(const void *p) {
  uintptr_t x = (uintptr_t)p;
  x ^= x >> 17;
  x *= 0x9e3779b97f4a7c15ull;
  return (size_t)(x ^ (x >> 29));
}

static bool is_defined(const struct verifier *v, const struct lb_value *val) {
  size_t mask = v->set_cap - 1;
  for (size_t i = ptr_hash(val) & mask; v->set[i]; i = (i + 1) & mask)
    if (v->set[i] == val) return true;
  return false;
}

static void define(struct verifier *v, const struct lb_value *val) {
  size_t mask = v->set_cap - 1, i = ptr_hash(val) & mask;
  while (v->set[i]) i = (i + 1) & mask;
  v->set[i] = val;
}

/* ---- checks ----------------------------------------------------------------------- */
static void check_type(struct verifier *v, const struct lb_node *n, const struct lb_value *val) {
  const struct lb_type *t = &val->type;
  if ((unsigned)t->dtype >= LB_DTYPE_COUNT || t->dtype == LB_DTYPE_UNDEF) {
    if (begin(v, n)) {
      buf_value(v, val);
      buf_putn(v, " has no element type", 20);
      end(v, n);
    }
  }
  if (t->shape.rank < 0 || t->shape.rank > LB_MAX_RANK) {
    if (begin(v, n)) {
      buf_value(v, val);
      buf_printf(v, " has rank %" PRId32 " (the maximum is %d)", t->shape.rank, LB_MAX_RANK);
      end(v, n);
    }
    return;
  }
  for (int32_t i = 0; i < t->shape.rank; i++)
    if (t->shape.dims[i] < 0 && begin(v, n)) {
      buf_value(v, val);
      buf_printf(v, " has a negative dimension (dim %" PRId32 " = %" PRId64 ")", i, t->shape.dims[i]);
      end(v, n);
      break;
    }
  const struct lb_qparams *q = val->qparams;
  if (!q) return;
  const char *bad = NULL;
  if (q->bits < 1 || q->bits > 32)
    bad = "bits out of range";
  else if (q->axis < -1 || q->axis >= t->shape.rank)
    bad = "axis out of range";
  else if (q->group_size < 0)
    bad = "negative group size";
  else if (q->n < 0 || (q->n > 0 && !q->scales))
    bad = "missing scales";
  else if (!q->symmetric && !q->zero_points)
    bad = "asymmetric but no zero points";
  if (bad && begin(v, n)) {
    buf_value(v, val);
    buf_printf(v, " has bad qparams: %s", bad);
    end(v, n);
  }
}

static bool type_ok(const struct lb_type *t) {
  return (unsigned)t->dtype < LB_DTYPE_COUNT && t->dtype != LB_DTYPE_UNDEF && t->shape.rank >= 0 &&
         t->shape.rank <= LB_MAX_RANK;
}

static void check_blob(struct verifier *v, const struct lb_node *n, int32_t b,
                       const struct lb_type *t, const char *what) {
  const struct lb_graph *g = v->g;
  if (b < 0 || b >= g->n_blobs) {
    fail(v, n, "%s refers to blob %" PRId32 ", which does not exist", what, b);
    return;
  }
  int64_t numel;
  if (!type_ok(t) || !lb_shape_numel_checked(&t->shape, INT64_MAX / 16, &numel)) return;
  uint64_t want = (uint64_t)numel * (uint64_t)lb_dtype_traits[t->dtype].size;
  if (g->blobs[b].size != want)
    fail(v, n, "%s: blob \"%s\" holds %zu bytes but the type needs %" PRIu64, what,
         g->blobs[b].name ? g->blobs[b].name : "", g->blobs[b].size, want);
}

static void check_attrs(struct verifier *v, const struct lb_node *n) {
  for (int32_t i = 0; i < n->n_attrs; i++) {
    const struct lb_attr *a = &n->attrs[i];
    if (!a->name) {
      fail(v, n, "attribute %" PRId32 " has no name", i);
      return;
    }
    if (i > 0 && n->attrs[i - 1].name && strcmp(n->attrs[i - 1].name, a->name) >= 0)
      fail(v, n, "attributes are not sorted by name, or repeat ('%s' after '%s')", a->name,
           n->attrs[i - 1].name);
    if ((unsigned)a->kind >= LB_ATTR_KIND_COUNT) {
      fail(v, n, "attribute '%s' has an invalid kind", a->name);
      continue;
    }
    if (a->kind == LB_ATTR_TENSOR) check_blob(v, n, a->blob, &a->ttype, "tensor attribute");
    if ((a->kind == LB_ATTR_STRING && !a->s) || (a->kind == LB_ATTR_INTS && a->n && !a->ints) ||
        (a->kind == LB_ATTR_FLOATS && a->n && !a->floats) ||
        (a->kind == LB_ATTR_STRINGS && a->n && !a->strings) || a->n < 0)
      fail(v, n, "attribute '%s' has no data", a->name);
  }
  if (attrs_unchecked(n->op)) return;
  const struct attr_spec *spec = attr_specs[n->op];
  for (int32_t i = 0; i < n->n_attrs; i++) {
    const struct lb_attr *a = &n->attrs[i];
    const struct attr_spec *s = spec;
    while (s && s->name && strcmp(s->name, a->name) != 0) s++;
    if (!s || !s->name) {
      fail(v, n, "'%s' takes no attribute '%s'", op_name(n->op), a->name);
    } else if (a->kind != s->kind && (unsigned)a->kind < LB_ATTR_KIND_COUNT) {
      fail(v, n, "attribute '%s' must be %s, not %s", a->name, kind_names[s->kind],
           kind_names[a->kind]);
    }
  }
  for (const struct attr_spec *s = spec; s && s->name; s++)
    if (s->required && !lb_node_attr(n, s->name))
      fail(v, n, "missing required attribute '%s'", s->name);
  /* values with a closed set of choices */
  const char *str;
  if (n->op == LB_OP_CAST && (str = lb_node_attr_string(n, "to", NULL)) &&
      lb_dtype_from_name(str) == LB_DTYPE_UNDEF)
    fail(v, n, "'to' is not a dtype: \"%s\"", str);
  if (n->op == LB_OP_GELU && (str = lb_node_attr_string(n, "approximate", NULL)) &&
      strcmp(str, "none") != 0 && strcmp(str, "tanh") != 0)
    fail(v, n, "'approximate' must be \"none\" or \"tanh\", not \"%s\"", str);
  if (n->op == LB_OP_PAD && (str = lb_node_attr_string(n, "mode", NULL)) &&
      strcmp(str, "constant") != 0 && strcmp(str, "reflect") != 0 && strcmp(str, "edge") != 0 &&
      strcmp(str, "wrap") != 0)
    fail(v, n, "'mode' must be \"constant\", \"reflect\", \"edge\" or \"wrap\", not \"%s\"", str);
  if (n->op == LB_OP_FUSED_MATMUL && (str = lb_node_attr_string(n, "act", NULL))) {
    static const char *const acts[] = {"none", "relu", "gelu", "gelu_tanh", "sigmoid", "tanh"};
    bool ok = false;
    for (size_t k = 0; k < sizeof acts / sizeof *acts; k++) ok |= strcmp(str, acts[k]) == 0;
    if (!ok) fail(v, n, "unknown activation act=\"%s\"", str);
  }
  const struct lb_attr *sa;
  if (n->op == LB_OP_OBSERVE && (sa = lb_node_attr(n, "stats")) && sa->kind == LB_ATTR_STRINGS) {
    static const char *const kinds[] = {"minmax", "absmax_channel", "hist", "absmean_channel", "rows", "hessian"};
    if (sa->n == 0) fail(v, n, "'stats' must name at least one statistic");
    for (int64_t i = 0; i < sa->n; i++) {
      bool ok = false;
      for (size_t k = 0; k < sizeof kinds / sizeof *kinds; k++) ok |= strcmp(sa->strings[i], kinds[k]) == 0;
      if (!ok)
        fail(v, n, "unknown statistic \"%s\" in 'stats' (minmax, absmax_channel, hist, absmean_channel, rows, "
             "hessian)",
             sa->strings[i]);
    }
  }
}

/* True when f is exactly an IEEE half (normal or subnormal, |f| <= 65504):
 * low-bit weight scales are stored as f16 in the executable. */
static bool f16_exact(float f) {
  double a = fabs((double)f);
  if (a == 0) return true;
  if (!(a <= 65504)) return false;
  int e;
  frexp(a, &e); /* a in [2^(e-1), 2^e) */
  int shift = e - 1 < -14 ? 24 : 10 - (e - 1); /* units of the last mantissa bit */
  double m = ldexp(a, shift);
  return m == floor(m);
}

/* qmatmul's weight (docs/ir-ops.md "Quantized matmul", "Low-bit weights"): a
 * const i8[K,N] of codes with 2/3/4/8-bit qparams: symmetric (signed codes) or,
 * below 8 bits, asymmetric unsigned with one zero point per scale; one scale
 * (axis -1), one per column (axis 1, group 0) or per group of G rows and column
 * (axis 1, group G: ceil(K/G) * N). Codes and zero points must lie in the
 * range of the bits; scales below 8 bits must be f16 values. FP8 weights:
 * u8 codes, bits=8, sym, f16 scales, any layout above, a_quant="none". */
static void check_qmatmul_weight(struct verifier *v, const struct lb_node *n, const struct lb_value *w) {
  const struct lb_qparams *q = w->qparams;
  int64_t k = w->type.shape.dims[0], nn = w->type.shape.dims[1];
  if (q->bits != 8 && q->bits != 4 && q->bits != 3 && q->bits != 2) {
    fail(v, n, "the weight's qparams have bits=%d; qmatmul takes 2, 3, 4 or 8", q->bits);
    return;
  }
  if (q->fp8 && (q->bits != 8 || !q->symmetric || q->is_unsigned || q->zero_points)) {
    fail(v, n, "the weight's fp8 qparams must be bits=8, sym, without unsigned or zero points");
    return;
  }
  if (q->symmetric ? (q->zero_points || q->is_unsigned) : (q->bits == 8 || !q->zero_points || !q->is_unsigned)) {
    fail(v, n, "the weight's qparams must be symmetric and signed, or (below 8 bits) asymmetric unsigned "
         "with zero points (have bits=%d %s%s%s)", q->bits, q->symmetric ? "sym" : "asym",
         q->is_unsigned ? " unsigned" : "", q->zero_points ? " with zero points" : "");
    return;
  }
  int64_t groups = q->group_size > 0 ? (k + q->group_size - 1) / q->group_size : 1;
  bool shape_ok = (q->axis == -1 && q->group_size == 0 && q->n == 1) ||
                  (q->axis == 1 && q->group_size >= 0 && q->n == groups * nn);
  if (!shape_ok) {
    fail(v, n, "the weight's qparams must have axis=1 and %" PRId64 " scales (group=%d), or axis=-1, group=0 "
         "and 1 scale (have bits=%d axis=%d group=%d n=%" PRId64 ")",
         groups * nn, q->group_size, q->bits, q->axis, q->group_size, q->n);
    return;
  }
  int64_t lo = q->is_unsigned ? 0 : -(INT64_C(1) << (q->bits - 1));
  int64_t hi = q->is_unsigned ? (INT64_C(1) << q->bits) - 1 : (INT64_C(1) << (q->bits - 1)) - 1;
  for (int64_t i = 0; q->zero_points && i < q->n; i++)
    if (q->zero_points[i] < lo || q->zero_points[i] > hi) {
      fail(v, n, "the weight's zero point %" PRId32 " (index %" PRId64 ") is outside [%" PRId64 ", %" PRId64 "]",
           q->zero_points[i], i, lo, hi);
      return;
    }
  for (int64_t i = 0; (q->bits < 8 || q->fp8) && i < q->n; i++)
    if (!f16_exact(q->scales[i])) {
      fail(v, n, "the weight's scale %.9g (index %" PRId64 ") is not an f16 value (%d-bit scales are stored as f16)",
           (double)q->scales[i], i, q->bits);
      return;
    }
  /* every byte is an fp8 code; NULL when elided */
  const int8_t *codes = q->bits < 8 && !q->fp8 ? lb_value_const_data(v->g, w) : NULL;
  for (int64_t i = 0; codes && i < k * nn; i++) {
    int64_t c = q->is_unsigned ? (uint8_t)codes[i] : codes[i];
    if (c < lo || c > hi) {
      fail(v, n, "the weight's code %" PRId64 " at [%" PRId64 ",%" PRId64 "] is outside the %d-bit range [%" PRId64
           ", %" PRId64 "]", c, i / nn, i % nn, q->bits, lo, hi);
      return;
    }
  }
}

/* qmatmul's quantization parameters (docs/ir-ops.md "Quantized matmul"): the
 * weight's as above; a quantized statically carries per-tensor 8-bit
 * qparams; an i8/u8 output carries the per-tensor qparams it is requantized
 * with; an f16 weight is a const f16[K,N] without qparams, with a_quant
 * "none". Shapes and dtypes are the shape rule's. */
static void check_qmatmul(struct verifier *v, const struct lb_node *n) {
  if (n->n_inputs < 2 || !n->inputs[0] || !n->inputs[1] || n->n_outputs < 1 || !n->outputs[0]) return;
  const struct lb_value *a = n->inputs[0], *w = n->inputs[1], *y = n->outputs[0];
  const struct lb_qparams *q = w->qparams;
  const char *aq = lb_node_attr_string(n, "a_quant", "none");
  if (w->type.dtype == LB_DTYPE_F16) { /* F16 weights: the values themselves, no scales */
    if (!w->producer || w->producer->op != LB_OP_CONST || w->type.shape.rank != 2 || q)
      fail(v, n, "an f16 weight (input 1) must be a const f16[K,N] without qparams");
    if (strcmp(aq, "none") != 0) fail(v, n, "f16 weights take a_quant=\"none\" (f32 activations), not \"%s\"", aq);
  } else if (!w->producer || w->producer->op != LB_OP_CONST ||
             w->type.dtype != (q && q->fp8 ? LB_DTYPE_U8 : LB_DTYPE_I8) || w->type.shape.rank != 2) {
    fail(v, n, q && q->fp8 ? "the weight (input 1) has fp8 qparams and must be a const u8[K,N]"
                           : "the weight (input 1) must be a const i8[K,N]");
  } else if (!q) {
    fail(v, n, "the weight (input 1) has no qparams (its scales)");
  } else {
    check_qmatmul_weight(v, n, w);
    if (q->fp8 && strcmp(aq, "none") != 0)
      fail(v, n, "fp8 weights take a_quant=\"none\" (f32 activations), not \"%s\"", aq);
  }
  if (strcmp(aq, "none") != 0 && strcmp(aq, "static") != 0 && strcmp(aq, "dynamic") != 0)
    fail(v, n, "'a_quant' must be \"none\", \"static\" or \"dynamic\", not \"%s\"", aq);
  bool a_int = a->type.dtype == LB_DTYPE_I8 || a->type.dtype == LB_DTYPE_U8;
  if (a_int && strcmp(aq, "static") != 0)
    fail(v, n, "an %s input needs a_quant=\"static\"", lb_dtype_traits[a->type.dtype].name);
  const struct lb_qparams *qa = a->qparams;
  if (strcmp(aq, "static") == 0 &&
      (!qa || qa->bits != 8 || qa->axis != -1 || qa->n != 1 || (!qa->symmetric && !qa->zero_points)))
    fail(v, n, "a_quant=\"static\" needs input 0 to carry per-tensor 8-bit qparams");
  else if (a_int && qa && qa->is_unsigned != (a->type.dtype == LB_DTYPE_U8))
    fail(v, n, "input 0 is %s but its qparams say %s", lb_dtype_traits[a->type.dtype].name,
         qa->is_unsigned ? "unsigned" : "signed");
  bool y_int = y->type.dtype == LB_DTYPE_I8 || y->type.dtype == LB_DTYPE_U8;
  const struct lb_qparams *qy = y->qparams;
  if (y_int && (!qy || qy->bits != 8 || qy->axis != -1 || qy->n != 1 ||
                qy->is_unsigned != (y->type.dtype == LB_DTYPE_U8)))
    fail(v, n, "an %s output needs per-tensor 8-bit %s qparams", lb_dtype_traits[y->type.dtype].name,
         y->type.dtype == LB_DTYPE_U8 ? "unsigned" : "signed");
}

/* Re-runs the shape rule on a copy of n whose outputs are scratch values
 * and compares the result with n's output types. */
static void check_inferred(struct verifier *v, const struct lb_node *n) {
  int32_t k = n->n_outputs;
  struct lb_value *scratch = calloc((size_t)k, sizeof *scratch);
  struct lb_value **outs = calloc((size_t)k, sizeof *outs);
  if (!scratch || !outs) abort();
  for (int32_t i = 0; i < k; i++) {
    scratch[i] = *n->outputs[i];
    /* qmatmul's rule keeps a requantized i8/u8 output dtype chosen by its producer */
    scratch[i].type = (struct lb_type){.dtype = n->op == LB_OP_QMATMUL ? n->outputs[i]->type.dtype : LB_DTYPE_UNDEF};
    outs[i] = &scratch[i];
  }
  struct lb_node copy = *n;
  copy.outputs = outs;
  struct lb_diag sd;
  lb_diag_init(&sd, NULL);
  /* lb_infer_node only writes the copy's scratch outputs; the graph is read. */
  enum lb_status st = lb_infer_node((struct lb_graph *)v->g, &copy, &sd);
  if (st == LB_ERR_UNSUPPORTED && sd.text && strstr(sd.text, "not built yet")) {
    v->infer_off = true;
  } else if (st != LB_OK) {
    const char *msg = sd.text ? sd.text : "";
    const char *e = strstr(msg, "error: ");
    if (e) msg = e + 7;
    size_t len = strcspn(msg, "\n");
    fail(v, n, "the shape rule rejects this node: %.*s", (int)len, msg);
  } else {
    for (int32_t i = 0; i < k; i++) {
      const struct lb_type *have = &n->outputs[i]->type, *want = &scratch[i].type;
      if (have->dtype == want->dtype && lb_shape_equal(&have->shape, &want->shape)) continue;
      if (!begin(v, n)) break;
      buf_printf(v, "output %" PRId32 " (", i);
      buf_value(v, n->outputs[i]);
      buf_putn(v, ") is ", 5);
      buf_type(v, have);
      buf_putn(v, " but the shape rule gives ", 26);
      buf_type(v, want);
      end(v, n);
    }
  }
  lb_diag_free(&sd);
  free(scratch);
  free(outs);
}

/* "'add' takes 2 inputs, got 3"; mx < 0 means no upper bound. */
static bool count_ok(struct verifier *v, const struct lb_node *n, const char *what, int32_t got,
                     int mn, int mx) {
  if (got >= mn && (mx < 0 || got <= mx)) return true;
  const char *name = lb_op_info[n->op].ir_name;
  const char *plural = (mx < 0 || mx == mn ? mn : mx) == 1 ? "" : "s";
  if (mx < 0)
    fail(v, n, "'%s' takes at least %d %s%s, got %" PRId32, name, mn, what, plural, got);
  else if (mn == mx)
    fail(v, n, "'%s' takes %d %s%s, got %" PRId32, name, mn, what, plural, got);
  else
    fail(v, n, "'%s' takes %d to %d %s%s, got %" PRId32, name, mn, mx, what, plural, got);
  return false;
}

static void check_node(struct verifier *v, const struct lb_node *n) {
  if ((unsigned)n->op >= LB_OP_COUNT) {
    fail(v, n, "invalid op %d", (int)n->op);
    return;
  }
  const struct lb_op_info *info = &lb_op_info[n->op];
  bool sound = true; /* well-formed enough to run the shape rule on */
  if (!count_ok(v, n, "input", n->n_inputs, info->min_inputs, info->max_inputs)) sound = false;
  if (!count_ok(v, n, "output", n->n_outputs, info->min_outputs, info->max_outputs)) sound = false;
  for (int32_t i = 0; i < n->n_inputs; i++) {
    const struct lb_value *in = n->inputs[i];
    if (!in) {
      if (i < info->min_inputs || info->max_inputs < 0) {
        fail(v, n, "required input %" PRId32 " is missing", i);
        sound = false;
      }
      continue;
    }
    if (!is_defined(v, in)) {
      if (begin(v, n)) {
        buf_printf(v, "input %" PRId32 " (", i);
        buf_value(v, in);
        buf_putn(v, ") is not defined before this node", 33);
        end(v, n);
      }
      sound = false;
    }
  }
  for (int32_t i = 0; i < n->n_outputs; i++) {
    const struct lb_value *out = n->outputs[i];
    if (!out) {
      fail(v, n, "output %" PRId32 " is missing", i);
      sound = false;
      continue;
    }
    if (is_defined(v, out)) {
      if (begin(v, n)) {
        buf_value(v, out);
        buf_putn(v, " is defined more than once", 26);
        end(v, n);
      }
      sound = false;
      continue;
    }
    define(v, out);
    if (out->producer != n || out->producer_output != i) {
      if (begin(v, n)) {
        buf_value(v, out);
        buf_putn(v, " does not point back to this node as its producer", 50);
        end(v, n);
      }
    }
    check_type(v, n, out);
    sound &= type_ok(&out->type);
  }
  check_attrs(v, n);
  if (n->op == LB_OP_CONST && n->n_outputs == 1 && n->outputs[0])
    check_blob(v, n, n->blob, &n->outputs[0]->type, "const");
  for (int32_t i = 0; i < n->n_inputs && sound; i++)
    sound = !n->inputs[i] || type_ok(&n->inputs[i]->type);
  if (sound && n->op == LB_OP_QMATMUL) check_qmatmul(v, n);
  if (sound && !v->infer_off && n->op != LB_OP_CONST && v->errors < MAX_ERRORS) check_inferred(v, n);
}

/* Names must be unique among values (the text form looks values up by name)
 * and among blobs. Sorting a copy of the names finds repeats. */
static int cmp_str(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void check_unique(struct verifier *v, const char **names, size_t n, const char *what) {
  qsort(names, n, sizeof *names, cmp_str);
  for (size_t i = 1; i < n; i++)
    if (strcmp(names[i], names[i - 1]) == 0 && (i < 2 || strcmp(names[i], names[i - 2]) != 0))
      fail(v, NULL, "two %s are named \"%s\"", what, names[i]);
}

enum lb_status lb_graph_verify(const struct lb_graph *g, struct lb_diag *d) {
  struct verifier v = {.g = g, .d = d};
  size_t n_values = (size_t)g->n_inputs;
  for (int32_t i = 0; i < g->n_nodes; i++) n_values += (size_t)g->nodes[i]->n_outputs;
  v.set_cap = 16;
  while (v.set_cap < 2 * n_values + 2) v.set_cap *= 2;
  v.set = calloc(v.set_cap, sizeof *v.set);
  if (!v.set) abort();

  for (int32_t i = 0; i < g->n_inputs; i++) {
    const struct lb_value *in = g->inputs[i];
    if (!in) {
      fail(&v, NULL, "graph input %" PRId32 " is missing", i);
      continue;
    }
    if (is_defined(&v, in)) {
      fail(&v, NULL, "graph input %" PRId32 " is listed twice", i);
      continue;
    }
    define(&v, in);
    if (in->producer) fail(&v, NULL, "graph input %" PRId32 " has a producer node", i);
    check_type(&v, NULL, in);
  }
  for (int32_t i = 0; i < g->n_nodes; i++) {
    if (!g->nodes[i]) {
      fail(&v, NULL, "node %" PRId32 " is missing", i);
      continue;
    }
    check_node(&v, g->nodes[i]);
  }
  for (int32_t i = 0; i < g->n_outputs; i++) {
    const struct lb_value *out = g->outputs[i];
    if (!out) {
      fail(&v, NULL, "graph output %" PRId32 " is missing", i);
    } else if (!is_defined(&v, out) && begin(&v, NULL)) {
      buf_printf(&v, "graph output %" PRId32 " (", i);
      buf_value(&v, out);
      buf_putn(&v, ") is not defined", 16);
      end(&v, NULL);
    }
  }

  const char **names = malloc(sizeof *names * (n_values + (size_t)g->n_blobs + 1));
  if (!names) abort();
  size_t k = 0;
  for (size_t i = 0; i < v.set_cap; i++)
    if (v.set[i] && v.set[i]->name) names[k++] = v.set[i]->name;
  check_unique(&v, names, k, "values");
  k = 0;
  for (int32_t b = 0; b < g->n_blobs; b++)
    if (g->blobs[b].name) names[k++] = g->blobs[b].name;
  check_unique(&v, names, k, "blobs");
  free(names);

  free(v.set);
  free(v.buf);
  return v.errors ? LB_ERR_INVALID : LB_OK;
}
