/* onnx_canon.c: one ONNX node -> IR nodes in the canonical forms of docs/ir-ops.md.
 *
 * Every ONNX variant of an op (opsets 1 to 21) maps to one IR form: attributes
 * that later opsets moved to inputs (axes, split, starts/ends, k, min/max) are
 * read from either place, defaults are written out, negative axes are made
 * non-negative, auto_pad becomes explicit pads, and Reshape/Flatten/Squeeze/
 * Unsqueeze become `reshape` with final dims. Inputs that decide shapes must be
 * constant by the time the node is reached (fe_need_const says which graph
 * input to --bind otherwise). Shape, ConstantOfShape, Range and Constant are
 * evaluated here and never reach the IR.
 */
#include "frontend/fe_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- attributes -------------------------------------------------------------------- */
enum {
  AT_FLOAT = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT,
  AT_INT = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT,
  AT_STRING = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING,
  AT_TENSOR = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR,
  AT_FLOATS = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS,
  AT_INTS = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS,
};

static const Onnx__AttributeProto *attr(const struct fe_node *fn, const char *name) {
  for (size_t i = 0; i < fn->np->n_attribute; i++) {
    const Onnx__AttributeProto *a = fn->np->attribute[i];
    if (a->name && strcmp(a->name, name) == 0) return a;
  }
  return NULL;
}

/* The attribute's type: its `type` field, or (IR < 2) the field that is set. */
static int attr_type(const Onnx__AttributeProto *a) {
  if (a->has_type) return a->type;
  if (a->has_f) return AT_FLOAT;
  if (a->has_i) return AT_INT;
  if (a->has_s) return AT_STRING;
  if (a->t) return AT_TENSOR;
  if (a->n_floats) return AT_FLOATS;
  if (a->n_ints) return AT_INTS;
  return 0;
}

static enum lb_status bad_attr(struct fe_node *fn, const char *name, const char *want) {
  return lb_diag_error(fn->c->d, LB_ERR_INVALID, &fn->diag, "attribute %s must be %s", name, want);
}

static enum lb_status get_int(struct fe_node *fn, const char *name, int64_t dflt, int64_t *out) {
  const Onnx__AttributeProto *a = attr(fn, name);
  *out = dflt;
  if (!a) return LB_OK;
  if (attr_type(a) != AT_INT) return bad_attr(fn, name, "an int");
  *out = a->i;
  return LB_OK;
}

static enum lb_status get_float(struct fe_node *fn, const char *name, double dflt, double *out) {
  const Onnx__AttributeProto *a = attr(fn, name);
  *out = dflt;
  if (!a) return LB_OK;
  int t = attr_type(a);
  if (t == AT_FLOAT) *out = a->f;
  else if (t == AT_INT) *out = (double)a->i;
  else return bad_attr(fn, name, "a float");
  return LB_OK;
}

static enum lb_status get_string(struct fe_node *fn, const char *name, const char *dflt,
                                 const char **out) {
  const Onnx__AttributeProto *a = attr(fn, name);
  *out = dflt;
  if (!a) return LB_OK;
  if (attr_type(a) != AT_STRING) return bad_attr(fn, name, "a string");
  *out = lb_arena_strndup(&fn->c->g->arena, (const char *)a->s.data, a->s.len);
  return LB_OK;
}

/* ints attribute (arena copy); *present says whether it was given */
static enum lb_status get_ints(struct fe_node *fn, const char *name, int64_t **v, int64_t *n,
                               bool *present) {
  const Onnx__AttributeProto *a = attr(fn, name);
  *v = NULL;
  *n = 0;
  if (present) *present = a != NULL;
  if (!a) return LB_OK;
  int t = attr_type(a);
  if (t != AT_INTS && !(t == 0 && a->n_ints == 0)) return bad_attr(fn, name, "a list of ints");
  *n = (int64_t)a->n_ints;
  *v = lb_arena_alloc(&fn->c->g->arena, sizeof **v * (a->n_ints + 1));
  if (a->n_ints) memcpy(*v, a->ints, sizeof **v * a->n_ints);
  return LB_OK;
}

/* Integer values of constant input idx (i32 or i64, rank <= 1) into an arena array. */
static enum lb_status const_ints(struct fe_node *fn, int32_t idx, const char *what, int64_t **v,
                                 int64_t *n) {
  enum lb_status st = fe_need_const(fn, idx, what);
  if (st != LB_OK) return st;
  struct lb_value *x = fn->in[idx];
  if (x->type.shape.rank > 1)
    return lb_diag_error(fn->c->d, LB_ERR_INVALID, &fn->diag, "%s must be 1-D", what);
  if (x->type.dtype != LB_DTYPE_I64 && x->type.dtype != LB_DTYPE_I32)
    return lb_diag_error(fn->c->d, LB_ERR_INVALID, &fn->diag, "%s must be int64 or int32, not %s",
                         what, lb_dtype_traits[x->type.dtype].name);
  *n = lb_shape_numel(&x->type.shape);
  *v = lb_arena_alloc(&fn->c->g->arena, sizeof **v * (size_t)(*n + 1));
  const void *p = lb_value_const_data(fn->c->g, x);
  for (int64_t i = 0; i < *n; i++)
    (*v)[i] = x->type.dtype == LB_DTYPE_I64 ? ((const int64_t *)p)[i] : ((const int32_t *)p)[i];
  return LB_OK;
}

static enum lb_status norm_axis(struct fe_node *fn, int64_t axis, int32_t rank, const char *what,
                                int64_t *out) {
  if (axis < -(int64_t)rank || axis >= rank)
    return lb_diag_error(fn->c->d, LB_ERR_INVALID, &fn->diag,
                         "%s %lld is out of range for rank %d", what, (long long)axis, (int)rank);
  *out = axis < 0 ? axis + rank : axis;
  return LB_OK;
}

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

/* Normalizes, sorts and checks uniqueness of an axes list (in place). */
static enum lb_status norm_axes(struct fe_node *fn, int64_t *axes, int64_t n, int32_t rank) {
  for (int64_t i = 0; i < n; i++) {
    enum lb_status st = norm_axis(fn, axes[i], rank, "axis", &axes[i]);
    if (st != LB_OK) return st;
  }
  qsort(axes, (size_t)n, sizeof *axes, cmp_i64);
  for (int64_t i = 1; i < n; i++)
    if (axes[i] == axes[i - 1])
      return lb_diag_error(fn->c->d, LB_ERR_INVALID, &fn->diag, "axis %lld is repeated",
                           (long long)axes[i]);
  return LB_OK;
}

/* ---- building ------------------------------------------------------------------------ */
static const char *const *onnx_outs(struct fe_node *fn) {
  return (const char *const *)fn->np->output;
}

/* The ONNX output names padded with NULL (fresh names) to n entries. */
static const char *const *onnx_outs_n(struct fe_node *fn, int32_t n) {
  const char **names = lb_arena_alloc(&fn->c->g->arena, sizeof *names * (size_t)(n ? n : 1));
  for (int32_t k = 0; k < n && k < fn->n_out; k++) names[k] = fn->np->output[k];
  return names;
}

/* The number of inputs without trailing omitted ones. */
static int32_t trimmed_inputs(const struct fe_node *fn) {
  int32_t n = fn->n_in;
  while (n > 0 && !fn->in[n - 1]) n--;
  return n;
}

static enum lb_status require_inputs(struct fe_node *fn, int32_t n) {
  for (int32_t i = 0; i < n; i++)
    if (i >= fn->n_in || !fn->in[i])
      return lb_diag_error(fn->c->d, LB_ERR_INVALID, &fn->diag, "input %d is required", (int)i);
  return LB_OK;
}

/* Finishes a node that produces the ONNX outputs 0..n_outputs-1. */
static enum lb_status done(struct fe_node *fn, struct lb_node *n) {
  enum lb_status st = fe_finish(fn, n);
  if (st != LB_OK) return st;
  for (int32_t k = 0; k < n->n_outputs && k < fn->n_out; k++) fn->out[k] = n->outputs[k];
  return LB_OK;
}

/* reshape(x) to dims; out_name NULL = fresh. Returns the value or NULL on error. */
static struct lb_value *reshape_to(struct fe_node *fn, struct lb_value *x, const int64_t *dims,
                                   int32_t rank, const char *out_name, enum lb_status *st) {
  struct lb_node *n = fe_add(fn, LB_OP_RESHAPE, &x, 1, &out_name, 1);
  lb_node_set_attr_ints(fn->c->g, n, "shape", dims, rank);
  *st = fe_finish(fn, n);
  return *st == LB_OK ? n->outputs[0] : NULL;
}

static enum lb_status emit_reshape(struct fe_node *fn, const int64_t *dims, int32_t rank) {
  struct lb_value *x = fn->in[0];
  int64_t numel = 1;
  for (int32_t i = 0; i < rank; i++) {
    if (dims[i] < 0 || (dims[i] && numel > INT64_MAX / dims[i]))
      return lb_diag_error(fn->c->d, LB_ERR_INVALID, &fn->diag, "bad target shape");
    numel *= dims[i];
  }
  if (rank > LB_MAX_RANK)
    return lb_diag_error(fn->c->d, LB_ERR_UNSUPPORTED, &fn->diag, "rank %d is over %d", (int)rank,
                         LB_MAX_RANK);
  if (numel != lb_shape_numel(&x->type.shape))
    return lb_diag_error(fn->c->d, LB_ERR_INVALID, &fn->diag,
                         "cannot reshape %lld elements into %lld",
                         (long long)lb_shape_numel(&x->type.shape), (long long)numel);
  enum lb_status st;
  fn->out[0] = reshape_to(fn, x, dims, rank, fn->np->output[0], &st);
  return st;
}

static uint16_t f32_to_f16(float f) {
  uint32_t x;
  memcpy(&x, &f, 4);
  uint32_t sign = (x >> 16) & 0x8000u, mant = x & 0x7fffffu;
  int32_t exp = (int32_t)((x >> 23) & 0xff);
  if (exp == 0xff) return (uint16_t)(sign | 0x7c00u | (mant ? 0x200u : 0));
  int32_t e = exp - 127 + 15;
  if (e >= 31) return (uint16_t)(sign | 0x7c00u);
  if (e <= 0) {
    if (e < -10) return (uint16_t)sign;
    mant |= 0x800000u;
    uint32_t shift = (uint32_t)(14 - e);
    uint32_t h = mant >> shift, rem = mant & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (h & 1))) h++;
    return (uint16_t)(sign | h);
  }
  uint32_t h = ((uint32_t)e << 10) | (mant >> 13), rem = mant & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1))) h++;
  return (uint16_t)(sign | h);
}

static uint16_t f32_to_bf16(float f) {
  uint32_t x;
  memcpy(&x, &f, 4);
  if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40);
  x += 0x7fffu + ((x >> 16) & 1);
  return (uint16_t)(x >> 16);
}

/* Stores v as one element of dtype t. */
static void store_scalar(enum lb_dtype t, void *p, double v) {
  switch (t) {
  case LB_DTYPE_F32: *(float *)p = (float)v; break;
  case LB_DTYPE_F64: *(double *)p = v; break;
  case LB_DTYPE_F16: *(uint16_t *)p = f32_to_f16((float)v); break;
  case LB_DTYPE_BF16: *(uint16_t *)p = f32_to_bf16((float)v); break;
  case LB_DTYPE_I8: *(int8_t *)p = (int8_t)v; break;
  case LB_DTYPE_I16: *(int16_t *)p = (int16_t)v; break;
  case LB_DTYPE_I32: *(int32_t *)p = (int32_t)v; break;
  case LB_DTYPE_I64: *(int64_t *)p = (int64_t)v; break;
  case LB_DTYPE_U8: case LB_DTYPE_BOOL: *(uint8_t *)p = (uint8_t)v; break;
  case LB_DTYPE_U16: *(uint16_t *)p = (uint16_t)v; break;
  case LB_DTYPE_U32: *(uint32_t *)p = (uint32_t)v; break;
  case LB_DTYPE_U64: *(uint64_t *)p = (uint64_t)v; break;
  default: LB_ASSERT(!"bad dtype");
  }
}

static struct lb_value *scalar_const(struct fe_node *fn, enum lb_dtype t, double v,
                                     const char *suffix) {
  char base[256];
  snprintf(base, sizeof base, "%s.%s", fn->name, suffix);
  unsigned char buf[16];
  store_scalar(t, buf, v);
  struct lb_type ty = {.dtype = t};
  return fe_const_copy(fn->c, fe_fresh_name(fn->c, base), &ty, buf);
}

/* Errors if ONNX output k (which lowbit does not compute) is used. */
static enum lb_status unused_output(struct fe_node *fn, int32_t k, const char *what) {
  if (!fe_output_used(fn, k)) return LB_OK;
  return lb_diag_error(fn->c->d, LB_ERR_UNSUPPORTED, &fn->diag,
                       "output %d (%s, \"%s\") is used; lowbit computes only inference outputs",
                       (int)k, what, fn->np->output[k]);
}

/* ---- elementwise ---------------------------------------------------------------------- */
/* Binary ops before opset 7 (Add Sub Mul Div Pow And Or Equal Less Greater) do not
 * broadcast unless broadcast=1, and then B broadcasts onto A with its dims aligned at
 * A's dim `axis` (default: at the end, as numpy does). Equal shapes are required
 * otherwise. An axis alignment becomes numpy's by reshaping B with trailing 1s. */
static enum lb_status legacy_broadcast(struct fe_node *fn) {
  struct fe_ctx *c = fn->c;
  const struct lb_shape *a = &fn->in[0]->type.shape, *b = &fn->in[1]->type.shape;
  int64_t bc, axis;
  enum lb_status st;
  if ((st = get_int(fn, "broadcast", 0, &bc)) != LB_OK) return st;
  if (!bc) {
    if (lb_shape_equal(a, b)) return LB_OK;
    return lb_diag_error(c->d, LB_ERR_INVALID, &fn->diag,
                         "before opset 7, inputs of different shapes (ranks %d and %d) need "
                         "broadcast=1", (int)a->rank, (int)b->rank);
  }
  if (b->rank > a->rank)
    return lb_diag_error(c->d, LB_ERR_INVALID, &fn->diag,
                         "broadcast=1: input 1 (rank %d) must not have a higher rank than input 0 "
                         "(rank %d)", (int)b->rank, (int)a->rank);
  if (attr(fn, "axis") && b->rank > 0) {
    if ((st = get_int(fn, "axis", 0, &axis)) != LB_OK) return st;
    if (axis < 0) axis += a->rank;
    if (axis < 0 || axis + b->rank > a->rank)
      return lb_diag_error(c->d, LB_ERR_INVALID, &fn->diag,
                           "broadcast axis %lld does not fit input 1 (rank %d) into input 0 "
                           "(rank %d)", (long long)axis, (int)b->rank, (int)a->rank);
    if (axis + b->rank < a->rank) {
      int64_t dims[LB_MAX_RANK];
      int32_t r = (int32_t)(a->rank - axis);
      for (int32_t i = 0; i < r; i++) dims[i] = i < b->rank ? b->dims[i] : 1;
      struct lb_value *b2 = reshape_to(fn, fn->in[1], dims, r, NULL, &st);
      if (!b2) return st;
      fn->in[1] = b2;
      b = &b2->type.shape;
    }
  }
  struct lb_shape r;
  if (lb_broadcast_shapes(a, b, &r) != LB_OK || !lb_shape_equal(&r, a))
    return lb_diag_error(c->d, LB_ERR_INVALID, &fn->diag,
                         "broadcast=1: input 1 does not broadcast onto the shape of input 0");
  return LB_OK;
}

static bool legacy_broadcast_op(enum lb_op op) {
  switch (op) {
  case LB_OP_ADD: case LB_OP_SUB: case LB_OP_MUL: case LB_OP_DIV: case LB_OP_POW:
  case LB_OP_AND: case LB_OP_OR: case LB_OP_EQUAL: case LB_OP_LESS: case LB_OP_GREATER:
    return true;
  default:
    return false;
  }
}

static enum lb_status canon_plain(struct fe_node *fn, enum lb_op op) {
  int32_t n_in = trimmed_inputs(fn);
  for (int32_t i = 0; i < n_in; i++)
    if (!fn->in[i] && (op != LB_OP_CLIP && op != LB_OP_GEMM && op != LB_OP_CONV &&
                       op != LB_OP_LAYER_NORM && op != LB_OP_QUANTIZE_LINEAR &&
                       op != LB_OP_DEQUANTIZE_LINEAR && op != LB_OP_MATMUL_INTEGER))
      return lb_diag_error(fn->c->d, LB_ERR_INVALID, &fn->diag, "input %d is required", (int)i);
  enum lb_status st = require_inputs(fn, lb_op_info[op].min_inputs);
  if (st != LB_OK) return st;
  if (fn->c->opset < 7 && legacy_broadcast_op(op) && (st = legacy_broadcast(fn)) != LB_OK)
    return st;
  int32_t n_out = lb_op_info[op].max_outputs < 0 ? fn->n_out : lb_op_info[op].min_outputs;
  return done(fn, fe_add(fn, op, fn->in, n_in, onnx_outs(fn), n_out));
}

static enum lb_status canon_unary_attrs(struct fe_node *fn) {
  struct lb_graph *g = fn->c->g;
  enum lb_status st = require_inputs(fn, 1);
  if (st != LB_OK) return st;
  struct lb_node *n = fe_add(fn, fn->op, fn->in, 1, onnx_outs(fn), 1);
  double a, b;
  switch (fn->op) {
  case LB_OP_LEAKY_RELU:
    if ((st = get_float(fn, "alpha", 0.01, &a)) != LB_OK) return st;
    lb_node_set_attr_float(g, n, "alpha", a);
    break;
  case LB_OP_HARD_SIGMOID:
    if ((st = get_float(fn, "alpha", 0.2, &a)) != LB_OK) return st;
    if ((st = get_float(fn, "beta", 0.5, &b)) != LB_OK) return st;
    lb_node_set_attr_float(g, n, "alpha", a);
    lb_node_set_attr_float(g, n, "beta", b);
    break;
  case LB_OP_GELU: {
    const char *s;
    if ((st = get_string(fn, "approximate", "none", &s)) != LB_OK) return st;
    if (strcmp(s, "none") != 0 && strcmp(s, "tanh") != 0)
      return lb_diag_error(fn->c->d, LB_ERR_INVALID, &fn->diag,
                           "approximate must be \"none\" or \"tanh\", not \"%s\"", s);
    lb_node_set_attr_string(g, n, "approximate", s);
    break;
  }
  case LB_OP_CAST: {
    int64_t to = 0;
    const Onnx__AttributeProto *ta = attr(fn, "to");
    if (!ta) return lb_diag_error(fn->c->d, LB_ERR_INVALID, &fn->diag, "attribute to is required");
    if (attr_type(ta) == AT_STRING) { /* Cast-1: the TensorProto.DataType name, "FLOAT" */
      static const char *const names[] = {"", "FLOAT", "UINT8", "INT8", "UINT16", "INT16",
                                          "INT32", "INT64", "STRING", "BOOL", "FLOAT16",
                                          "DOUBLE", "UINT32", "UINT64"};
      const char *sn;
      if ((st = get_string(fn, "to", "", &sn)) != LB_OK) return st;
      for (int64_t k = 1; k < (int64_t)(sizeof names / sizeof names[0]); k++)
        if (strcmp(sn, names[k]) == 0) to = k;
      if (!to)
        return lb_diag_error(fn->c->d, LB_ERR_UNSUPPORTED, &fn->diag,
                             "cast to element type \"%s\" is not supported", sn);
    } else if ((st = get_int(fn, "to", 0, &to)) != LB_OK) {
      return st;
    }
    enum lb_dtype t = to > 0 && to < 1000 ? lb_dtype_from_onnx((int)to) : LB_DTYPE_UNDEF;
    if (t == LB_DTYPE_UNDEF)
      return lb_diag_error(fn->c->d, LB_ERR_UNSUPPORTED, &fn->diag,
                           "cast to element type %lld is not supported", (long long)to);
    lb_node_set_attr_string(g, n, "to", lb_dtype_traits[t].name);
    break;
  }
  default: LB_ASSERT(!"not a unary op with attributes");
  }
  return done(fn, n);
}

static enum lb_status canon_dropout(struct fe_node *fn) {
  enum lb_status st = require_inputs(fn, 1);
  if (st != LB_OK) return st;
  /* Training mode drops at random: refuse it rather than compile an identity.
   * It is the training_mode input from opset 12, is_test=0 before opset 7. */
  bool training = false;
  if (fn->n_in > 2 && fn->in[2]) {
    if ((st = fe_need_const(fn, 2, "training_mode")) != LB_OK) return st;
    const uint8_t *tm = lb_value_const_data(fn->c->g, fn->in[2]);
    training = tm && lb_shape_numel(&fn->in[2]->type.shape) > 0 && tm[0] != 0;
  }
  int64_t is_test = 1;
  if ((st = get_int(fn, "is_test", 1, &is_test)) != LB_OK) return st;
  if (training && fn->n_in > 1 && fn->in[1] && lb_value_is_const(fn->in[1])) {
    /* ratio 0 keeps everything: deterministic even in training mode */
    const void *r = lb_value_const_data(fn->c->g, fn->in[1]);
    enum lb_dtype rt = fn->in[1]->type.dtype;
    double ratio = -1;
    if (r && rt == LB_DTYPE_F32) ratio = *(const float *)r;
    else if (r && rt == LB_DTYPE_F64) ratio = *(const double *)r;
    if (ratio == 0) training = false;
  }
  if (training || is_test == 0)
    return lb_diag_error(fn->c->d, LB_ERR_UNSUPPORTED, &fn->diag,
                         "Dropout in training mode is random; lowbit compiles inference only");
  st = done(fn, fe_add(fn, LB_OP_IDENTITY, fn->in, 1, onnx_outs(fn), 1));
  if (st != LB_OK || !fe_output_used(fn, 1)) return st;
  /* the mask of an inference-mode Dropout keeps everything */
  struct lb_type t = {.dtype = LB_DTYPE_BOOL, .shape = fn->in[0]->type.shape};
  void *data = fe_alloc((size_t)lb_type_nbytes(&t));
  if (!data) return lb_diag_error(fn->c->d, LB_ERR_LIMIT, &fn->diag, "out of memory");
  memset(data, 1, (size_t)lb_type_nbytes(&t));
  fn->out[1] = fe_const_owned(fn->c, fn->np->output[1], &t, data);
  return LB_OK;
}

static enum lb_status canon_clip(struct fe_node *fn) {
  enum lb_status st = require_inputs(fn, 1);
  if (st != LB_OK) return st;
  struct lb_value *ins[3] = {fn->in[0], fn->n_in > 1 ? fn->in[1] : NULL,
                             fn->n_in > 2 ? fn->in[2] : NULL};
  if (attr(fn, "min") || attr(fn, "max")) { /* opset < 11: attributes */
    if (fn->n_in > 1)
      return lb_diag_error(fn->c->d, LB_ERR_INVALID, &fn->diag,
                           "min/max given both as attributes and inputs");
    enum lb_dtype t = fn->in[0]->type.dtype;
    if (!lb_dtype_traits[t].is_float)
      return lb_diag_error(fn->c->d, LB_ERR_INVALID, &fn->diag,
                           "Clip with min/max attributes needs a float input");
    double lo, hi;
    if ((st = get_float(fn, "min", -INFINITY, &lo)) != LB_OK) return st;
    if ((st = get_float(fn, "max", INFINITY, &hi)) != LB_OK) return st;
    if (attr(fn, "min")) ins[1] = scalar_const(fn, t, lo, "min");
    if (attr(fn, "max")) ins[2] = scalar_const(fn, t, hi, "max");
  }
  int32_t n = ins[2] ? 3 : ins[1] ? 2 : 1;
  return done(fn, fe_add(fn, LB_OP_CLIP, ins, n, onnx_outs(fn), 1));
}

/* ---- reductions and normalizations -------------------------------------------------------- */
static enum lb_status canon_reduce(struct fe_node *fn) {
  struct lb_graph *g = fn->c->g;
  enum lb_status st = require_inputs(fn, 1);
  if (st != LB_OK) return st;
  int32_t rank = fn->in[0]->type.shape.rank;
  int64_t *axes, n_axes, keepdims, noop;
  bool present = false;
  if (fn->n_in > 1 && fn->in[1]) { /* ReduceSum >= 13, the others >= 18 */
    if (attr(fn, "axes"))
      return lb_diag_error(fn->c->d, LB_ERR_INVALID, &fn->diag,
                           "axes given both as attribute and input");
    if ((st = const_ints(fn, 1, "axes", &axes, &n_axes)) != LB_OK) return st;
  } else if ((st = get_ints(fn, "axes", &axes, &n_axes, &present)) != LB_OK) {
    return st;
  }
  if ((st = get_int(fn, "keepdims", 1, &keepdims)) != LB_OK) return st;
  if ((st = get_int(fn, "noop_with_empty_axes", 0, &noop)) != LB_OK) return st;
  if (n_axes == 0 && (noop || rank == 0))
    return done(fn, fe_add(fn, LB_OP_IDENTITY, fn->in, 1, onnx_outs(fn), 1));
  if (n_axes == 0) {
    n_axes = rank;
    axes = lb_arena_alloc(&g->arena, sizeof *axes * (size_t)rank);
    for (int32_t i = 0; i < rank; i++) axes[i] = i;
  }
  if ((st = norm_axes(fn, axes, n_axes, rank)) != LB_OK) return st;
  struct lb_node *n = fe_add(fn, fn->op, fn->in, 1, onnx_outs(fn), 1);
  lb_node_set_attr_ints(g, n, "axes", axes, n_axes);
  lb_node_set_attr_int(g, n, "keepdims", keepdims ? 1 : 0);
  return done(fn, n);
}

static enum lb_status canon_softmax(struct fe_node *fn) {
  struct lb_graph *g = fn->c->g;
  enum lb_status st = require_inputs(fn, 1);
  if (st != LB_OK) return st;
  struct lb_value *x = fn->in[0];
  const struct lb_shape *s = &x->type.shape;
  int64_t axis;
  if ((st = get_int(fn, "axis", fn->c->opset < 13 ? 1 : -1, &axis)) != LB_OK) return st;
  if ((st = norm_axis(fn, axis, s->rank, "axis", &axis)) != LB_OK) return st;
  if (fn->c->opset >= 13 || axis == s->rank - 1) {
    struct lb_node *n = fe_add(fn, fn->op, &x, 1, onnx_outs(fn), 1);
    lb_node_set_attr_int(g, n, "axis", axis);
    return done(fn, n);
  }
  /* opset < 13: softmax over the 2-D view [prod(dims[:axis]), prod(dims[axis:])] */
  int64_t flat[2] = {1, 1};
  for (int32_t i = 0; i < s->rank; i++) flat[i < axis ? 0 : 1] *= s->dims[i];
  struct lb_value *x2 = reshape_to(fn, x, flat, 2, NULL, &st);
  if (!x2) return st;
  struct lb_node *n = fe_add(fn, fn->op, &x2, 1, NULL, 1);
  lb_node_set_attr_int(g, n, "axis", 1);
  if ((st = fe_finish(fn, n)) != LB_OK) return st;
  fn->out[0] = reshape_to(fn, n->outputs[0], s->dims, s->rank, fn->np->output[0], &st);
  return st;
}

static enum lb_status canon_layer_norm(struct fe_node *fn) {
  struct lb_graph *g = fn->c->g;
  enum lb_status st = require_inputs(fn, 2);
  if (st != LB_OK) return st;
  /* Mean and InvStdDev (outputs 1, 2): computed when either is used; they are f32,
   * ONNX's stash_type 1 (the only stash type lowbit supports for them) */
  bool stats = fe_output_used(fn, 1) || fe_output_used(fn, 2);
  int64_t axis, stash;
  double eps;
  if ((st = get_int(fn, "stash_type", 1, &stash)) != LB_OK) return st;
  if (stats && stash != 1)
    return lb_diag_error(fn->c->d, LB_ERR_UNSUPPORTED, &fn->diag,
                         "stash_type %lld is not supported for the Mean/InvStdDev outputs "
                         "(only 1, float)", (long long)stash);
  if ((st = get_int(fn, "axis", -1, &axis)) != LB_OK) return st;
  if ((st = norm_axis(fn, axis, fn->in[0]->type.shape.rank, "axis", &axis)) != LB_OK) return st;
  if ((st = get_float(fn, "epsilon", 1e-5, &eps)) != LB_OK) return st;
  struct lb_node *n = fe_add(fn, LB_OP_LAYER_NORM, fn->in, trimmed_inputs(fn),
                             onnx_outs_n(fn, stats ? 3 : 1), stats ? 3 : 1);
  lb_node_set_attr_int(g, n, "axis", axis);
  lb_node_set_attr_float(g, n, "epsilon", eps);
  return done(fn, n);
}

static enum lb_status canon_batch_norm(struct fe_node *fn) {
  enum lb_status st = require_inputs(fn, 5);
  if (st != LB_OK) return st;
  int64_t training, spatial, is_test;
  double eps, momentum;
  /* training mode: opset >= 14 says so with training_mode; before opset 7, is_test=0
   * (the default) meant training; opsets 7 to 13 are read as inference (test mode) */
  if ((st = get_int(fn, "training_mode", 0, &training)) != LB_OK) return st;
  if ((st = get_int(fn, "is_test", 0, &is_test)) != LB_OK) return st;
  if (fn->c->opset < 7) training = !is_test;
  else if (fn->c->opset < 14) training = 0;
  if ((st = get_int(fn, "spatial", 1, &spatial)) != LB_OK) return st;
  if (!spatial)
    return lb_diag_error(fn->c->d, LB_ERR_UNSUPPORTED, &fn->diag, "spatial=0 is not supported");
  /* running mean / var (outputs 1, 2) exist as in opset 14 only; the statistics
   * outputs of older opsets (and saved_mean / saved_var) are refused when used */
  int32_t n_out = 1;
  for (int32_t k = 1; k < fn->n_out; k++) {
    if (!fe_output_used(fn, k)) continue;
    if (!training || k > 2 || fn->c->opset < 14) {
      if ((st = unused_output(fn, k, "a training output")) != LB_OK) return st;
    }
    n_out = k + 1;
  }
  if ((st = get_float(fn, "epsilon", 1e-5, &eps)) != LB_OK) return st;
  if ((st = get_float(fn, "momentum", 0.9, &momentum)) != LB_OK) return st;
  struct lb_node *n = fe_add(fn, LB_OP_BATCH_NORM, fn->in, 5, onnx_outs_n(fn, n_out), n_out);
  lb_node_set_attr_float(fn->c->g, n, "epsilon", eps);
  if (training) {
    lb_node_set_attr_int(fn->c->g, n, "training_mode", 1);
    lb_node_set_attr_float(fn->c->g, n, "momentum", momentum);
  }
  return done(fn, n);
}

/* ---- linear algebra, convolution, pooling -------------------------------------------------- */
static enum lb_status canon_gemm(struct fe_node *fn) {
  struct lb_graph *g = fn->c->g;
  enum lb_status st = require_inputs(fn, 2);
  if (st != LB_OK) return st;
  double alpha, beta;
  int64_t ta, tb;
  if ((st = get_float(fn, "alpha", 1.0, &alpha)) != LB_OK) return st;
  if ((st = get_float(fn, "beta", 1.0, &beta)) != LB_OK) return st;
  if ((st = get_int(fn, "transA", 0, &ta)) != LB_OK) return st;
  if ((st = get_int(fn, "transB", 0, &tb)) != LB_OK) return st;
  struct lb_node *n = fe_add(fn, LB_OP_GEMM, fn->in, trimmed_inputs(fn), onnx_outs(fn), 1);
  lb_node_set_attr_float(g, n, "alpha", alpha);
  lb_node_set_attr_float(g, n, "beta", beta);
  lb_node_set_attr_int(g, n, "transA", ta ? 1 : 0);
  lb_node_set_attr_int(g, n, "transB", tb ? 1 : 0);
  return done(fn, n);
}

/* Reads an ints attribute of exactly `n` entries, or fills `dflt`. */
static enum lb_status window_ints(struct fe_node *fn, const char *name, int64_t n, int64_t dflt,
                                  int64_t *out) {
  int64_t *v, cnt;
  bool present;
  enum lb_status st = get_ints(fn, name, &v, &cnt, &present);
  if (st != LB_OK) return st;
  if (!present) {
    for (int64_t i = 0; i < n; i++) out[i] = dflt;
    return LB_OK;
  }
  if (cnt != n)
    return lb_diag_error(fn->c->d, LB_ERR_INVALID, &fn->diag, "%s has %lld entries, expected %lld",
                         name, (long long)cnt, (long long)n);
  memcpy(out, v, sizeof *out * (size_t)n);
  return LB_OK;
}

/* The window attributes shared by conv and pooling, with auto_pad resolved. */
struct window {
  int32_t n; /* spatial dims */
  int64_t kernel[LB_MAX_RANK], strides[LB_MAX_RANK], dilations[LB_MAX_RANK],
      pads[2 * LB_MAX_RANK];
  bool auto_padded;
};

static enum lb_status read_window(struct fe_node *fn, const int64_t *kernel_dflt,
                                  struct window *w) {
  const struct lb_shape *xs = &fn->in[0]->type.shape;
  if (xs->rank < 3)
    return lb_diag_error(fn->c->d, LB_ERR_INVALID, &fn->diag,
                         "input must be N x C x spatial dims (rank >= 3), not rank %d",
                         (int)xs->rank);
  w->n = xs->rank - 2;
  enum lb_status st;
  bool has_k = attr(fn, "kernel_shape") != NULL;
  if (!has_k && !kernel_dflt)
    return lb_diag_error(fn->c->d, LB_ERR_INVALID, &fn->diag, "kernel_shape is required");
  if (has_k) {
    if ((st = window_ints(fn, "kernel_shape", w->n, 1, w->kernel)) != LB_OK) return st;
  } else {
    memcpy(w->kernel, kernel_dflt, sizeof *w->kernel * (size_t)w->n);
  }
  if ((st = window_ints(fn, "strides", w->n, 1, w->strides)) != LB_OK) return st;
  if ((st = window_ints(fn, "dilations", w->n, 1, w->dilations)) != LB_OK) return st;
  if ((st = window_ints(fn, "pads", 2 * w->n, 0, w->pads)) != LB_OK) return st;
  for (int32_t i = 0; i < w->n; i++)
    if (w->kernel[i] <= 0 || w->strides[i] <= 0 || w->dilations[i] <= 0 || w->pads[i] < 0 ||
        w->pads[w->n + i] < 0)
      return lb_diag_error(fn->c->d, LB_ERR_INVALID, &fn->diag,
                           "kernel_shape, strides and dilations must be positive, pads >= 0");
  const char *ap;
  if ((st = get_string(fn, "auto_pad", "NOTSET", &ap)) != LB_OK) return st;
  w->auto_padded = strcmp(ap, "NOTSET") != 0;
  if (!w->auto_padded) return LB_OK;
  bool upper = strcmp(ap, "SAME_UPPER") == 0, lower = strcmp(ap, "SAME_LOWER") == 0;
  if (!upper && !lower && strcmp(ap, "VALID") != 0)
    return lb_diag_error(fn->c->d, LB_ERR_INVALID, &fn->diag, "unknown auto_pad \"%s\"", ap);
  for (int32_t i = 0; i < w->n; i++) {
    int64_t in = xs->dims[2 + i], total = 0;
    if (upper || lower) {
      int64_t out = (in + w->strides[i] - 1) / w->strides[i];
      int64_t eff = (w->kernel[i] - 1) * w->dilations[i] + 1;
      total = (out - 1) * w->strides[i] + eff - in;
      if (total < 0) total = 0;
    }
    w->pads[i] = upper ? total / 2 : total - total / 2;
    w->pads[w->n + i] = total - w->pads[i];
  }
  return LB_OK;
}

static void set_window(struct fe_node *fn, struct lb_node *n, const struct window *w,
                       bool dilations) {
  struct lb_graph *g = fn->c->g;
  lb_node_set_attr_ints(g, n, "kernel_shape", w->kernel, w->n);
  lb_node_set_attr_ints(g, n, "strides", w->strides, w->n);
  if (dilations) lb_node_set_attr_ints(g, n, "dilations", w->dilations, w->n);
  lb_node_set_attr_ints(g, n, "pads", w->pads, 2 * w->n);
}

static enum lb_status canon_conv(struct fe_node *fn) {
  enum lb_status st = require_inputs(fn, 2);
  if (st != LB_OK) return st;
  const struct lb_shape *ws = &fn->in[1]->type.shape;
  if (ws->rank != fn->in[0]->type.shape.rank)
    return lb_diag_error(fn->c->d, LB_ERR_INVALID, &fn->diag,
                         "weights have rank %d, the input rank %d", (int)ws->rank,
                         (int)fn->in[0]->type.shape.rank);
  struct window w;
  if ((st = read_window(fn, ws->dims + 2, &w)) != LB_OK) return st;
  int64_t group;
  if ((st = get_int(fn, "group", 1, &group)) != LB_OK) return st;
  if (group <= 0) return lb_diag_error(fn->c->d, LB_ERR_INVALID, &fn->diag, "group must be >= 1");
  struct lb_node *n = fe_add(fn, LB_OP_CONV, fn->in, trimmed_inputs(fn), onnx_outs(fn), 1);
  set_window(fn, n, &w, true);
  lb_node_set_attr_int(fn->c->g, n, "group", group);
  return done(fn, n);
}

/* ---- integer convolutions ----------------------------------------------------------- */
/* One op of the ConvInteger / QLinearConv expansion; NULL (and *st set) on error. */
static struct lb_value *int_conv_step(struct fe_node *fn, enum lb_op op, struct lb_value *a,
                                      struct lb_value *b, const char *out_name,
                                      enum lb_status *st) {
  struct lb_value *ins[2] = {a, b};
  struct lb_node *n = fe_add(fn, op, ins, b ? 2 : 1, &out_name, 1);
  *st = fe_finish(fn, n);
  return *st == LB_OK ? n->outputs[0] : NULL;
}

static struct lb_value *to_f64(struct fe_node *fn, struct lb_value *x, enum lb_status *st) {
  struct lb_node *n = fe_add(fn, LB_OP_CAST, &x, 1, NULL, 1);
  lb_node_set_attr_string(fn->c->g, n, "to", lb_dtype_traits[LB_DTYPE_F64].name);
  *st = fe_finish(fn, n);
  return *st == LB_OK ? n->outputs[0] : NULL;
}

/* A per-output-channel [M] operand as [M, 1, ...] (rank `rank`, channels at `axis`), or
 * as it is when it has one element. */
static struct lb_value *per_channel(struct fe_node *fn, struct lb_value *v, int32_t rank,
                                    int32_t axis, int64_t m, const char *what, enum lb_status *st) {
  int64_t numel = lb_shape_numel(&v->type.shape);
  *st = LB_OK;
  if (numel == 1) return v;
  if (v->type.shape.rank != 1 || numel != m) {
    *st = lb_diag_error(fn->c->d, LB_ERR_INVALID, &fn->diag,
                        "%s must be a scalar or have one entry per output channel (%lld), not %lld",
                        what, (long long)m, (long long)numel);
    return NULL;
  }
  int64_t dims[LB_MAX_RANK];
  for (int32_t i = 0; i < rank; i++) dims[i] = i == axis ? m : 1;
  return reshape_to(fn, v, dims, rank, NULL, st);
}

/* (q - zp) in f64; zp may be omitted. */
static struct lb_value *centered(struct fe_node *fn, struct lb_value *q, struct lb_value *zp,
                                 enum lb_status *st) {
  struct lb_value *f = to_f64(fn, q, st);
  if (!f || !zp) return f;
  struct lb_value *z = to_f64(fn, zp, st);
  return z ? int_conv_step(fn, LB_OP_SUB, f, z, NULL, st) : NULL;
}

/* ConvInteger(x, w, x_zp?, w_zp?) and QLinearConv(x, sx, zx, w, sw, zw, sy, zy, B?) become a
 * conv in f64 of the zero-point-centered 8-bit operands: its sums of 8-bit products are
 * integers far below 2^53, so the accumulation is exact (what an i32 accumulator gives).
 * ConvInteger casts the result to int32. QLinearConv adds the int32 bias inside the conv,
 * scales by sx*sw/sy (f32, per output channel when sw is) in f64 and requantizes with
 * quantize_linear(., 1, zy): round half to even, + zy, saturate. */
static enum lb_status canon_int_conv(struct fe_node *fn) {
  bool ql = fn->op == LB_OP_QLINEAR_CONV;
  enum lb_status st = ql ? require_inputs(fn, 8) : require_inputs(fn, 2);
  if (st != LB_OK) return st;
  struct lb_value *x = fn->in[0], *w = fn->in[ql ? 3 : 1];
  struct lb_value *zx = ql || fn->n_in > 2 ? fn->in[2] : NULL;
  struct lb_value *zw = ql ? fn->in[5] : fn->n_in > 3 ? fn->in[3] : NULL;
  for (int32_t i = 0; i < 2; i++) {
    enum lb_dtype dt = (i ? w : x)->type.dtype;
    if (dt != LB_DTYPE_U8 && dt != LB_DTYPE_I8)
      return lb_diag_error(fn->c->d, LB_ERR_UNSUPPORTED, &fn->diag,
                           "%s must be int8 or uint8, not %s", i ? "w" : "x",
                           lb_dtype_traits[dt].name);
  }
  const struct lb_shape *xs = &x->type.shape, *ws = &w->type.shape;
  if (ws->rank != xs->rank)
    return lb_diag_error(fn->c->d, LB_ERR_INVALID, &fn->diag,
                         "weights have rank %d, the input rank %d", (int)ws->rank, (int)xs->rank);
  struct window win;
  if ((st = read_window(fn, ws->dims + 2, &win)) != LB_OK) return st;
  int64_t group;
  if ((st = get_int(fn, "group", 1, &group)) != LB_OK) return st;
  if (group <= 0) return lb_diag_error(fn->c->d, LB_ERR_INVALID, &fn->diag, "group must be >= 1");
  int64_t m = ws->dims[0];
  if (zx && lb_shape_numel(&zx->type.shape) != 1)
    return lb_diag_error(fn->c->d, LB_ERR_UNSUPPORTED, &fn->diag,
                         "x's zero point must be a scalar");
  struct lb_value *xc = centered(fn, x, zx, &st);
  if (!xc) return st;
  struct lb_value *zwc = zw ? per_channel(fn, zw, ws->rank, 0, m, "w's zero point", &st) : NULL;
  if (zw && !zwc) return st;
  struct lb_value *wc = centered(fn, w, zwc, &st);
  if (!wc) return st;
  struct lb_value *ins[3] = {xc, wc, NULL};
  if (ql && fn->n_in > 8 && fn->in[8]) {
    if (fn->in[8]->type.dtype != LB_DTYPE_I32)
      return lb_diag_error(fn->c->d, LB_ERR_INVALID, &fn->diag, "B must be int32");
    if (!(ins[2] = to_f64(fn, fn->in[8], &st))) return st;
  }
  const char *name = ql ? NULL : fn->np->output[0];
  struct lb_node *conv = fe_add(fn, LB_OP_CONV, ins, ins[2] ? 3 : 2, NULL, 1);
  set_window(fn, conv, &win, true);
  lb_node_set_attr_int(fn->c->g, conv, "group", group);
  if ((st = fe_finish(fn, conv)) != LB_OK) return st;
  struct lb_value *acc = conv->outputs[0];
  if (!ql) {
    struct lb_node *n = fe_add(fn, LB_OP_CAST, &acc, 1, &name, 1);
    lb_node_set_attr_string(fn->c->g, n, "to", lb_dtype_traits[LB_DTYPE_I32].name);
    return done(fn, n);
  }
  struct lb_value *sx = fn->in[1], *sw = fn->in[4], *sy = fn->in[6], *zy = fn->in[7];
  if (lb_shape_numel(&sx->type.shape) != 1 || lb_shape_numel(&sy->type.shape) != 1)
    return lb_diag_error(fn->c->d, LB_ERR_UNSUPPORTED, &fn->diag,
                         "x_scale and y_scale must be scalars");
  struct lb_value *swc = per_channel(fn, sw, xs->rank, 1, m, "w_scale", &st);
  if (!swc) return st;
  struct lb_value *mult = int_conv_step(fn, LB_OP_MUL, sx, swc, NULL, &st);
  if (mult) mult = int_conv_step(fn, LB_OP_DIV, mult, sy, NULL, &st);
  if (mult) mult = to_f64(fn, mult, &st);
  struct lb_value *r = mult ? int_conv_step(fn, LB_OP_MUL, acc, mult, NULL, &st) : NULL;
  if (!r) return st;
  struct lb_node *rf = fe_add(fn, LB_OP_CAST, &r, 1, NULL, 1);
  lb_node_set_attr_string(fn->c->g, rf, "to", lb_dtype_traits[LB_DTYPE_F32].name);
  if ((st = fe_finish(fn, rf)) != LB_OK) return st;
  float one = 1.0f;
  struct lb_type st1 = {.dtype = LB_DTYPE_F32, .shape = {.rank = 0}};
  struct lb_value *qins[3] = {rf->outputs[0],
                              fe_const_copy(fn->c, fe_fresh_name(fn->c, "one"), &st1, &one), zy};
  struct lb_node *q = fe_add(fn, LB_OP_QUANTIZE_LINEAR, qins, 3, onnx_outs(fn), 1);
  lb_node_set_attr_int(fn->c->g, q, "axis", 0);
  return done(fn, q);
}

static enum lb_status canon_pool(struct fe_node *fn) {
  struct lb_graph *g = fn->c->g;
  enum lb_status st = require_inputs(fn, 1);
  if (st != LB_OK) return st;
  /* MaxPool's Indices (output 1) is computed when used; storage_order picks its layout */
  bool indices = fn->op == LB_OP_MAX_POOL && fe_output_used(fn, 1);
  int64_t storage_order = 0;
  if (indices && (st = get_int(fn, "storage_order", 0, &storage_order)) != LB_OK) return st;
  if (storage_order != 0 && storage_order != 1)
    return lb_diag_error(fn->c->d, LB_ERR_INVALID, &fn->diag,
                         "storage_order must be 0 or 1, not %lld", (long long)storage_order);
  struct window w;
  if ((st = read_window(fn, NULL, &w)) != LB_OK) return st;
  int64_t ceil_mode, cip;
  if ((st = get_int(fn, "ceil_mode", 0, &ceil_mode)) != LB_OK) return st;
  if (w.auto_padded) ceil_mode = 0; /* SAME/VALID define the output size themselves */
  int32_t n_out = indices ? 2 : 1;
  struct lb_node *n = fe_add(fn, fn->op, fn->in, 1, onnx_outs_n(fn, n_out), n_out);
  if (fn->op == LB_OP_MAX_POOL) {
    set_window(fn, n, &w, true);
    if (indices) lb_node_set_attr_int(g, n, "storage_order", storage_order);
  } else {
    for (int32_t i = 0; i < w.n; i++)
      if (w.dilations[i] != 1)
        return lb_diag_error(fn->c->d, LB_ERR_UNSUPPORTED, &fn->diag,
                             "AveragePool with dilations is not supported");
    if ((st = get_int(fn, "count_include_pad", 0, &cip)) != LB_OK) return st;
    set_window(fn, n, &w, false);
    lb_node_set_attr_int(g, n, "count_include_pad", cip ? 1 : 0);
  }
  lb_node_set_attr_int(g, n, "ceil_mode", ceil_mode ? 1 : 0);
  return done(fn, n);
}

/* ---- data movement -------------------------------------------------------------------- */
static enum lb_status canon_reshape(struct fe_node *fn) {
  enum lb_status st = require_inputs(fn, 1);
  if (st != LB_OK) return st;
  int64_t *shape, n, allowzero;
  bool present;
  if (fn->n_in > 1 && fn->in[1]) {
    if ((st = const_ints(fn, 1, "shape", &shape, &n)) != LB_OK) return st;
  } else {
    if ((st = get_ints(fn, "shape", &shape, &n, &present)) != LB_OK) return st;
    if (!present)
      return lb_diag_error(fn->c->d, LB_ERR_INVALID, &fn->diag, "the target shape is missing");
  }
  if ((st = get_int(fn, "allowzero", 0, &allowzero)) != LB_OK) return st;
  const struct lb_shape *xs = &fn->in[0]->type.shape;
  if (n > LB_MAX_RANK)
    return lb_diag_error(fn->c->d, LB_ERR_UNSUPPORTED, &fn->diag, "rank %lld is over %d",
                         (long long)n, LB_MAX_RANK);
  int64_t dims[LB_MAX_RANK], known = 1;
  int32_t infer = -1;
  for (int32_t i = 0; i < n; i++) {
    int64_t v = shape[i];
    if (v == 0 && !allowzero) {
      if (i >= xs->rank)
        return lb_diag_error(fn->c->d, LB_ERR_INVALID, &fn->diag,
                             "shape[%d] = 0 copies a dim the input (rank %d) does not have",
                             (int)i, (int)xs->rank);
      v = xs->dims[i];
    } else if (v == -1) {
      if (infer >= 0)
        return lb_diag_error(fn->c->d, LB_ERR_INVALID, &fn->diag, "more than one -1 in shape");
      infer = i;
      dims[i] = 1;
      continue;
    } else if (v < 0) {
      return lb_diag_error(fn->c->d, LB_ERR_INVALID, &fn->diag, "shape[%d] = %lld", (int)i,
                           (long long)v);
    }
    dims[i] = v;
    if (v && known > INT64_MAX / v)
      return lb_diag_error(fn->c->d, LB_ERR_INVALID, &fn->diag, "target shape overflows");
    known *= v;
  }
  int64_t numel = lb_shape_numel(xs);
  if (infer >= 0) {
    if (known == 0 || numel % known != 0)
      return lb_diag_error(fn->c->d, LB_ERR_INVALID, &fn->diag,
                           "cannot infer the -1 dim: %lld elements do not divide by %lld",
                           (long long)numel, (long long)known);
    dims[infer] = numel / known;
  }
  return emit_reshape(fn, dims, (int32_t)n);
}

static enum lb_status canon_flatten(struct fe_node *fn) {
  enum lb_status st = require_inputs(fn, 1);
  if (st != LB_OK) return st;
  const struct lb_shape *xs = &fn->in[0]->type.shape;
  int64_t axis;
  if ((st = get_int(fn, "axis", 1, &axis)) != LB_OK) return st;
  if (axis < -(int64_t)xs->rank || axis > xs->rank)
    return lb_diag_error(fn->c->d, LB_ERR_INVALID, &fn->diag, "axis %lld is out of range",
                         (long long)axis);
  if (axis < 0) axis += xs->rank;
  int64_t dims[2] = {1, 1};
  for (int32_t i = 0; i < xs->rank; i++) dims[i < axis ? 0 : 1] *= xs->dims[i];
  return emit_reshape(fn, dims, 2);
}

static enum lb_status squeeze_axes(struct fe_node *fn, bool required, int64_t **axes, int64_t *n,
                                   bool *given) {
  enum lb_status st;
  *given = true;
  if (fn->n_in > 1 && fn->in[1]) return const_ints(fn, 1, "axes", axes, n);
  if ((st = get_ints(fn, "axes", axes, n, given)) != LB_OK) return st;
  if (!*given && required)
    return lb_diag_error(fn->c->d, LB_ERR_INVALID, &fn->diag, "axes are required");
  return LB_OK;
}

static enum lb_status canon_squeeze(struct fe_node *fn) {
  enum lb_status st = require_inputs(fn, 1);
  if (st != LB_OK) return st;
  const struct lb_shape *xs = &fn->in[0]->type.shape;
  int64_t *axes, n;
  bool given;
  if ((st = squeeze_axes(fn, false, &axes, &n, &given)) != LB_OK) return st;
  bool drop[LB_MAX_RANK] = {0};
  if (given && n > 0) {
    if ((st = norm_axes(fn, axes, n, xs->rank)) != LB_OK) return st;
    for (int64_t i = 0; i < n; i++) {
      if (xs->dims[axes[i]] != 1)
        return lb_diag_error(fn->c->d, LB_ERR_INVALID, &fn->diag,
                             "cannot squeeze axis %lld of size %lld", (long long)axes[i],
                             (long long)xs->dims[axes[i]]);
      drop[axes[i]] = true;
    }
  } else {
    for (int32_t i = 0; i < xs->rank; i++) drop[i] = xs->dims[i] == 1;
  }
  int64_t dims[LB_MAX_RANK];
  int32_t r = 0;
  for (int32_t i = 0; i < xs->rank; i++)
    if (!drop[i]) dims[r++] = xs->dims[i];
  return emit_reshape(fn, dims, r);
}

static enum lb_status canon_unsqueeze(struct fe_node *fn) {
  enum lb_status st = require_inputs(fn, 1);
  if (st != LB_OK) return st;
  const struct lb_shape *xs = &fn->in[0]->type.shape;
  int64_t *axes, n;
  bool given;
  if ((st = squeeze_axes(fn, true, &axes, &n, &given)) != LB_OK) return st;
  int64_t out_rank = xs->rank + n;
  if (out_rank > LB_MAX_RANK)
    return lb_diag_error(fn->c->d, LB_ERR_UNSUPPORTED, &fn->diag, "rank %lld is over %d",
                         (long long)out_rank, LB_MAX_RANK);
  if ((st = norm_axes(fn, axes, n, (int32_t)out_rank)) != LB_OK) return st;
  int64_t dims[LB_MAX_RANK];
  int32_t src = 0, a = 0;
  for (int32_t i = 0; i < out_rank; i++) {
    if (a < n && axes[a] == i) {
      dims[i] = 1;
      a++;
    } else {
      dims[i] = xs->dims[src++];
    }
  }
  return emit_reshape(fn, dims, (int32_t)out_rank);
}

static enum lb_status canon_transpose(struct fe_node *fn) {
  enum lb_status st = require_inputs(fn, 1);
  if (st != LB_OK) return st;
  int32_t rank = fn->in[0]->type.shape.rank;
  int64_t *perm, n;
  bool present;
  if ((st = get_ints(fn, "perm", &perm, &n, &present)) != LB_OK) return st;
  int64_t p[LB_MAX_RANK];
  if (!present) {
    for (int32_t i = 0; i < rank; i++) p[i] = rank - 1 - i;
  } else {
    bool seen[LB_MAX_RANK] = {0};
    if (n != rank)
      return lb_diag_error(fn->c->d, LB_ERR_INVALID, &fn->diag, "perm has %lld entries for rank %d",
                           (long long)n, (int)rank);
    for (int32_t i = 0; i < rank; i++) {
      if ((st = norm_axis(fn, perm[i], rank, "perm entry", &p[i])) != LB_OK) return st;
      if (seen[p[i]])
        return lb_diag_error(fn->c->d, LB_ERR_INVALID, &fn->diag, "perm is not a permutation");
      seen[p[i]] = true;
    }
  }
  struct lb_node *nd = fe_add(fn, LB_OP_TRANSPOSE, fn->in, 1, onnx_outs(fn), 1);
  lb_node_set_attr_ints(fn->c->g, nd, "perm", p, rank);
  return done(fn, nd);
}

static enum lb_status canon_concat(struct fe_node *fn) {
  enum lb_status st = require_inputs(fn, fn->n_in);
  if (st != LB_OK) return st;
  int64_t axis;
  if (!attr(fn, "axis") && fn->c->opset >= 4)
    return lb_diag_error(fn->c->d, LB_ERR_INVALID, &fn->diag, "attribute axis is required");
  if ((st = get_int(fn, "axis", 1, &axis)) != LB_OK) return st; /* Concat-1: default 1 */
  if ((st = norm_axis(fn, axis, fn->in[0]->type.shape.rank, "axis", &axis)) != LB_OK) return st;
  struct lb_node *n = fe_add(fn, LB_OP_CONCAT, fn->in, fn->n_in, onnx_outs(fn), 1);
  lb_node_set_attr_int(fn->c->g, n, "axis", axis);
  return done(fn, n);
}

static enum lb_status canon_split(struct fe_node *fn) {
  struct fe_ctx *c = fn->c;
  enum lb_status st = require_inputs(fn, 1);
  if (st != LB_OK) return st;
  const struct lb_shape *xs = &fn->in[0]->type.shape;
  int64_t axis, *split, n, num_outputs;
  bool present = false;
  if ((st = get_int(fn, "axis", 0, &axis)) != LB_OK) return st;
  if ((st = norm_axis(fn, axis, xs->rank, "axis", &axis)) != LB_OK) return st;
  if (fn->n_in > 1 && fn->in[1]) {
    if ((st = const_ints(fn, 1, "split", &split, &n)) != LB_OK) return st;
    present = true;
  } else if ((st = get_ints(fn, "split", &split, &n, &present)) != LB_OK) {
    return st;
  }
  if ((st = get_int(fn, "num_outputs", 0, &num_outputs)) != LB_OK) return st;
  int32_t outs = fn->n_out;
  int64_t dim = xs->dims[axis];
  if (num_outputs && num_outputs != outs)
    return lb_diag_error(c->d, LB_ERR_INVALID, &fn->diag, "num_outputs is %lld but the node has "
                         "%d outputs", (long long)num_outputs, (int)outs);
  if (present && n != outs)
    return lb_diag_error(c->d, LB_ERR_INVALID, &fn->diag, "split has %lld entries for %d outputs",
                         (long long)n, (int)outs);
  if (!present) {
    split = lb_arena_alloc(&c->g->arena, sizeof *split * (size_t)outs);
    n = outs;
    int64_t chunk = (dim + outs - 1) / outs; /* opset 18: the last chunk may be smaller */
    if (dim % outs != 0 && c->opset < 18)
      return lb_diag_error(c->d, LB_ERR_INVALID, &fn->diag,
                           "axis of size %lld does not split evenly into %d outputs",
                           (long long)dim, (int)outs);
    for (int32_t i = 0; i < outs; i++) split[i] = chunk;
    split[outs - 1] = dim - chunk * (outs - 1);
  }
  int64_t sum = 0;
  for (int64_t i = 0; i < n; i++) {
    if (split[i] < 0)
      return lb_diag_error(c->d, LB_ERR_INVALID, &fn->diag, "split sizes must be >= 0");
    sum += split[i];
  }
  if (sum != dim)
    return lb_diag_error(c->d, LB_ERR_INVALID, &fn->diag,
                         "split sizes add up to %lld, the axis has %lld", (long long)sum,
                         (long long)dim);
  struct lb_node *nd = fe_add(fn, LB_OP_SPLIT, fn->in, 1, onnx_outs(fn), outs);
  lb_node_set_attr_int(c->g, nd, "axis", axis);
  lb_node_set_attr_ints(c->g, nd, "split", split, n);
  return done(fn, nd);
}

static enum lb_status canon_slice(struct fe_node *fn) {
  struct fe_ctx *c = fn->c;
  enum lb_status st = require_inputs(fn, 1);
  if (st != LB_OK) return st;
  const struct lb_shape *xs = &fn->in[0]->type.shape;
  int32_t rank = xs->rank;
  int64_t *starts, *ends, *axes = NULL, *steps = NULL, n, ne, na = 0, ns = 0;
  bool present;
  if (fn->n_in > 1) { /* opset >= 10 */
    if ((st = require_inputs(fn, 3)) != LB_OK) return st;
    if ((st = const_ints(fn, 1, "starts", &starts, &n)) != LB_OK) return st;
    if ((st = const_ints(fn, 2, "ends", &ends, &ne)) != LB_OK) return st;
    if (fn->n_in > 3 && fn->in[3] && (st = const_ints(fn, 3, "axes", &axes, &na)) != LB_OK)
      return st;
    if (fn->n_in > 4 && fn->in[4] && (st = const_ints(fn, 4, "steps", &steps, &ns)) != LB_OK)
      return st;
  } else {
    if ((st = get_ints(fn, "starts", &starts, &n, &present)) != LB_OK) return st;
    if ((st = get_ints(fn, "ends", &ends, &ne, &present)) != LB_OK) return st;
    if ((st = get_ints(fn, "axes", &axes, &na, &present)) != LB_OK) return st;
    if (!present) axes = NULL;
  }
  if (ne != n || (axes && na != n) || (steps && ns != n))
    return lb_diag_error(c->d, LB_ERR_INVALID, &fn->diag,
                         "starts, ends, axes and steps must have the same length");
  int64_t s[LB_MAX_RANK], e[LB_MAX_RANK], k[LB_MAX_RANK];
  bool seen[LB_MAX_RANK] = {0};
  for (int32_t d = 0; d < rank; d++) {
    s[d] = 0;
    e[d] = xs->dims[d];
    k[d] = 1;
  }
  for (int64_t i = 0; i < n; i++) {
    int64_t ax = axes ? axes[i] : i;
    if ((st = norm_axis(fn, ax, rank, "axis", &ax)) != LB_OK) return st;
    if (seen[ax])
      return lb_diag_error(c->d, LB_ERR_INVALID, &fn->diag, "axis %lld is repeated", (long long)ax);
    seen[ax] = true;
    int64_t dim = xs->dims[ax], step = steps ? steps[i] : 1, st0 = starts[i], en = ends[i];
    if (step == 0) return lb_diag_error(c->d, LB_ERR_INVALID, &fn->diag, "a step is 0");
    if (st0 < 0) st0 = st0 < -dim ? 0 : st0 + dim;
    if (en < 0) en = en < -dim ? -1 : en + dim; /* -1: before index 0 (negative steps) */
    if (step > 0) {
      st0 = st0 > dim ? dim : st0;
      en = en < 0 ? 0 : en > dim ? dim : en;
    } else {
      st0 = st0 > dim - 1 ? dim - 1 : st0;
      en = en > dim - 1 ? dim - 1 : en;
    }
    s[ax] = st0;
    e[ax] = en;
    k[ax] = step;
  }
  struct lb_node *nd = fe_add(fn, LB_OP_SLICE, fn->in, 1, onnx_outs(fn), 1);
  lb_node_set_attr_ints(c->g, nd, "starts", s, rank);
  lb_node_set_attr_ints(c->g, nd, "ends", e, rank);
  lb_node_set_attr_ints(c->g, nd, "steps", k, rank);
  return done(fn, nd);
}

static enum lb_status canon_gather(struct fe_node *fn) {
  enum lb_status st = require_inputs(fn, 2);
  if (st != LB_OK) return st;
  int64_t axis;
  if ((st = get_int(fn, "axis", 0, &axis)) != LB_OK) return st;
  if ((st = norm_axis(fn, axis, fn->in[0]->type.shape.rank, "axis", &axis)) != LB_OK) return st;
  struct lb_node *n = fe_add(fn, LB_OP_GATHER, fn->in, 2, onnx_outs(fn), 1);
  lb_node_set_attr_int(fn->c->g, n, "axis", axis);
  return done(fn, n);
}

static enum lb_status canon_expand(struct fe_node *fn) {
  enum lb_status st = require_inputs(fn, 2);
  if (st != LB_OK) return st;
  int64_t *shape, n;
  if ((st = const_ints(fn, 1, "shape", &shape, &n)) != LB_OK) return st;
  const struct lb_shape *xs = &fn->in[0]->type.shape;
  int32_t r = xs->rank > n ? xs->rank : (int32_t)n;
  if (r > LB_MAX_RANK)
    return lb_diag_error(fn->c->d, LB_ERR_UNSUPPORTED, &fn->diag, "rank %d is over %d", (int)r,
                         LB_MAX_RANK);
  int64_t dims[LB_MAX_RANK];
  for (int32_t i = 0; i < r; i++) {
    int32_t xi = i - (r - xs->rank), si = i - (r - (int32_t)n);
    int64_t a = xi >= 0 ? xs->dims[xi] : 1, b = si >= 0 ? shape[si] : 1;
    if (b < 0)
      return lb_diag_error(fn->c->d, LB_ERR_INVALID, &fn->diag, "negative dim in shape");
    if (a == b || b == 1) dims[i] = a;
    else if (a == 1) dims[i] = b;
    else
      return lb_diag_error(fn->c->d, LB_ERR_INVALID, &fn->diag,
                           "cannot broadcast dim %lld to %lld", (long long)a, (long long)b);
  }
  struct lb_node *nd = fe_add(fn, LB_OP_EXPAND, fn->in, 1, onnx_outs(fn), 1);
  lb_node_set_attr_ints(fn->c->g, nd, "shape", dims, r);
  return done(fn, nd);
}

static enum lb_status canon_trilu(struct fe_node *fn) {
  enum lb_status st = require_inputs(fn, 1);
  if (st != LB_OK) return st;
  int64_t upper, k = 0, *kv, n;
  if ((st = get_int(fn, "upper", 1, &upper)) != LB_OK) return st;
  if (fn->n_in > 1 && fn->in[1]) {
    if ((st = const_ints(fn, 1, "k", &kv, &n)) != LB_OK) return st;
    if (n != 1) return lb_diag_error(fn->c->d, LB_ERR_INVALID, &fn->diag, "k must be a scalar");
    k = kv[0];
  }
  struct lb_node *nd = fe_add(fn, LB_OP_TRILU, fn->in, 1, onnx_outs(fn), 1);
  lb_node_set_attr_int(fn->c->g, nd, "upper", upper ? 1 : 0);
  lb_node_set_attr_int(fn->c->g, nd, "k", k);
  return done(fn, nd);
}

/* f16 / bf16 bits -> the value (exact in double). */
static double minifloat_value(uint16_t h, bool bf16) {
  if (bf16) {
    uint32_t x = (uint32_t)h << 16;
    float f;
    memcpy(&f, &x, 4);
    return f;
  }
  int e = h >> 10 & 0x1f, m = h & 0x3ff;
  double v = e == 0x1f ? (m ? NAN : INFINITY) : e == 0 ? ldexp(m, -24) : ldexp(m | 0x400, e - 25);
  return h & 0x8000 ? -v : v;
}

/* One element of dtype t as a double; false if the double does not hold it exactly
 * (integers beyond 2^53). */
static bool load_scalar_exact(enum lb_dtype t, const void *p, double *out) {
  switch (t) {
  case LB_DTYPE_F32: *out = *(const float *)p; return true;
  case LB_DTYPE_F64: *out = *(const double *)p; return true;
  case LB_DTYPE_F16: *out = minifloat_value(*(const uint16_t *)p, false); return true;
  case LB_DTYPE_BF16: *out = minifloat_value(*(const uint16_t *)p, true); return true;
  case LB_DTYPE_I8: *out = *(const int8_t *)p; return true;
  case LB_DTYPE_I16: *out = *(const int16_t *)p; return true;
  case LB_DTYPE_I32: *out = *(const int32_t *)p; return true;
  case LB_DTYPE_U8: case LB_DTYPE_BOOL: *out = *(const uint8_t *)p; return true;
  case LB_DTYPE_U16: *out = *(const uint16_t *)p; return true;
  case LB_DTYPE_U32: *out = *(const uint32_t *)p; return true;
  case LB_DTYPE_I64: {
    int64_t v = *(const int64_t *)p;
    *out = (double)v;
    return *out >= -0x1p63 && *out < 0x1p63 && (int64_t)*out == v;
  }
  case LB_DTYPE_U64: {
    uint64_t v = *(const uint64_t *)p;
    *out = (double)v;
    return *out < 0x1p64 && (uint64_t)*out == v;
  }
  default: return false;
  }
}

/* Pad-2 (attributes pads, value), Pad-11/13 (inputs pads, constant_value),
 * Pad-18 (+ axes), Pad-19 (+ mode "wrap") -> pad {mode, pads (2 x rank), value}. */
static enum lb_status canon_pad(struct fe_node *fn) {
  struct fe_ctx *c = fn->c;
  enum lb_status st = require_inputs(fn, 1);
  if (st != LB_OK) return st;
  struct lb_value *x = fn->in[0];
  int32_t rank = x->type.shape.rank;
  const char *mode;
  if ((st = get_string(fn, "mode", "constant", &mode)) != LB_OK) return st;
  bool constant = strcmp(mode, "constant") == 0, wrap = strcmp(mode, "wrap") == 0;
  if (!constant && !wrap && strcmp(mode, "reflect") != 0 && strcmp(mode, "edge") != 0)
    return lb_diag_error(c->d, LB_ERR_INVALID, &fn->diag,
                         "mode \"%s\" is not \"constant\", \"reflect\", \"edge\" or \"wrap\"", mode);
  if (wrap && c->opset < 19)
    return lb_diag_error(c->d, LB_ERR_INVALID, &fn->diag,
                         "mode \"wrap\" needs opset 19, the model imports %lld", (long long)c->opset);
  int64_t *raw, n_raw, *axes = NULL, n_axes = rank;
  double value = 0;
  if (c->opset < 11) { /* Pad-2 */
    bool present;
    if (trimmed_inputs(fn) > 1)
      return lb_diag_error(c->d, LB_ERR_INVALID, &fn->diag,
                           "before opset 11, Pad takes one input (pads and value are attributes)");
    if ((st = get_ints(fn, "pads", &raw, &n_raw, &present)) != LB_OK) return st;
    if (!present)
      return lb_diag_error(c->d, LB_ERR_INVALID, &fn->diag, "attribute pads is required");
    if ((st = get_float(fn, "value", 0.0, &value)) != LB_OK) return st;
  } else {
    if ((st = require_inputs(fn, 2)) != LB_OK) return st;
    if ((st = const_ints(fn, 1, "pads", &raw, &n_raw)) != LB_OK) return st;
    if (fn->n_in > 2 && fn->in[2]) {
      if ((st = fe_need_const(fn, 2, "constant_value")) != LB_OK) return st;
      const struct lb_value *cv = fn->in[2];
      if (cv->type.dtype != x->type.dtype || lb_shape_numel(&cv->type.shape) != 1)
        return lb_diag_error(c->d, LB_ERR_INVALID, &fn->diag,
                             "constant_value must be one element of the input's type %s, not %s",
                             lb_dtype_traits[x->type.dtype].name,
                             lb_dtype_traits[cv->type.dtype].name);
      if (!load_scalar_exact(cv->type.dtype, lb_value_const_data(c->g, cv), &value))
        return lb_diag_error(c->d, LB_ERR_UNSUPPORTED, &fn->diag,
                             "constant_value is an integer beyond 2^53, which lowbit's pad "
                             "cannot hold exactly");
    }
    if (fn->n_in > 3 && fn->in[3]) {
      if (c->opset < 18)
        return lb_diag_error(c->d, LB_ERR_INVALID, &fn->diag,
                             "input 3 (axes) needs opset 18, the model imports %lld",
                             (long long)c->opset);
      if ((st = const_ints(fn, 3, "axes", &axes, &n_axes)) != LB_OK) return st;
    }
  }
  if (n_raw != 2 * n_axes)
    return lb_diag_error(c->d, LB_ERR_INVALID, &fn->diag,
                         "pads has %lld entries but needs %lld (a begin and an end for each of "
                         "%lld %s)", (long long)n_raw, (long long)(2 * n_axes), (long long)n_axes,
                         axes ? "axes" : "dims of the input");
  int64_t pads[2 * LB_MAX_RANK] = {0};
  bool seen[LB_MAX_RANK] = {0}, all_zero = true;
  for (int64_t i = 0; i < n_axes; i++) {
    int64_t ax = i;
    if (axes && (st = norm_axis(fn, axes[i], rank, "axis", &ax)) != LB_OK) return st;
    if (seen[ax])
      return lb_diag_error(c->d, LB_ERR_INVALID, &fn->diag, "axis %lld is repeated", (long long)ax);
    seen[ax] = true;
    pads[ax] = raw[i];
    pads[rank + ax] = raw[n_axes + i];
    all_zero &= raw[i] == 0 && raw[n_axes + i] == 0;
  }
  if (all_zero) return done(fn, fe_add(fn, LB_OP_IDENTITY, &x, 1, onnx_outs(fn), 1));
  struct lb_node *nd = fe_add(fn, LB_OP_PAD, &x, 1, onnx_outs(fn), 1);
  lb_node_set_attr_string(c->g, nd, "mode", mode);
  lb_node_set_attr_ints(c->g, nd, "pads", pads, 2 * rank);
  lb_node_set_attr_float(c->g, nd, "value", constant ? value : 0.0);
  return done(fn, nd);
}

static float nearest_f16(float x);

/* DequantizeLinear-21 with block_size on constants (onnxruntime's 4-bit QDQ
 * weights: int4/uint4 B [K,N], scales [ceil(K/block), N], axis 0): evaluated
 * here into an f32 constant, y = (x - zp) * scale per block, so that any
 * reader sees the exact dequantized tensor. When it is a [K,N] weight blocked
 * along K with codes that fit the qmatmul contract (4-bit; 8-bit signed
 * without zero point), its codes and group-wise qparams (scales rounded to
 * f16) are also recorded in c->lowbit_weights for MatMul (canon_matmul),
 * which then reads them as a low-bit qmatmul weight; the f32 constant is then
 * unused and dce removes it. */
static enum lb_status canon_blocked_dequantize(struct fe_node *fn, int64_t axis, int64_t block) {
  struct fe_ctx *c = fn->c;
  enum lb_status st;
  for (int32_t i = 0; i < 3 && i < fn->n_in; i++)
    if (fn->in[i] && (st = fe_need_const(fn, i, "a blocked DequantizeLinear input")) != LB_OK) return st;
  struct lb_value *x = fn->in[0], *sc = fn->in[1], *zp = fn->n_in > 2 ? fn->in[2] : NULL;
  const struct lb_shape *xs = &x->type.shape, *ss = &sc->type.shape;
  if (x->type.dtype != LB_DTYPE_I8 && x->type.dtype != LB_DTYPE_U8)
    return lb_diag_error(c->d, LB_ERR_UNSUPPORTED, &fn->diag,
                         "blocked DequantizeLinear of %s is not supported (int4, uint4, int8, uint8 are)",
                         lb_dtype_traits[x->type.dtype].name);
  if (sc->type.dtype != LB_DTYPE_F32)
    return lb_diag_error(c->d, LB_ERR_UNSUPPORTED, &fn->diag, "x_scale must be float32");
  if (block < 0) return lb_diag_error(c->d, LB_ERR_INVALID, &fn->diag, "block_size must be positive");
  int32_t rank = xs->rank;
  if ((st = norm_axis(fn, axis, rank, "axis", &axis)) != LB_OK) return st;
  int64_t dim = xs->dims[axis], nb = (dim + block - 1) / block;
  bool ok = ss->rank == rank;
  for (int32_t i = 0; ok && i < rank; i++) ok = ss->dims[i] == (i == axis ? nb : xs->dims[i]);
  if (!ok || (zp && (zp->type.dtype != x->type.dtype || !lb_shape_equal(&zp->type.shape, ss))))
    return lb_diag_error(c->d, LB_ERR_INVALID, &fn->diag,
                         "x_scale (and x_zero_point) must have x's shape with dim %lld = ceil(%lld / block_size "
                         "%lld) = %lld, and x_zero_point x's type",
                         (long long)axis, (long long)dim, (long long)block, (long long)nb);
  bool is_signed = x->type.dtype == LB_DTYPE_I8;
  const void *xd = lb_value_const_data(c->g, x), *zd = zp ? lb_value_const_data(c->g, zp) : NULL;
  const float *sd = lb_value_const_data(c->g, sc);
  int64_t numel = lb_shape_numel(xs), inner = 1;
  for (int32_t i = (int32_t)axis + 1; i < rank; i++) inner *= xs->dims[i];
  struct lb_type yt = {.dtype = LB_DTYPE_F32, .shape = *xs};
  float *y = fe_alloc(sizeof *y * (size_t)(numel ? numel : 1));
  if (!y) return lb_diag_error(c->d, LB_ERR_LIMIT, &fn->diag, "out of memory");
#define AT(p, i) (is_signed ? (int32_t)((const int8_t *)(p))[i] : (int32_t)((const uint8_t *)(p))[i])
  for (int64_t i = 0; i < numel; i++) {
    int64_t outer = i / (dim * inner), a = (i / inner) % dim, in = i % inner;
    int64_t si = (outer * nb + a / block) * inner + in;
    y[i] = (float)(AT(xd, i) - (zd ? AT(zd, si) : 0)) * sd[si];
  }
  struct lb_value *out = fe_const_owned(c, fn->np->output[0], &yt, y);
  fn->out[0] = out;
  /* the low-bit weight view: [K,N] blocked along K */
  int32_t bits = fe_map_get(&c->narrow_bits, fn->np->input[0]) ? 4 : 8;
  bool any_zp = false;
  for (int64_t i = 0; zd && i < lb_shape_numel(ss); i++) any_zp |= AT(zd, i) != 0;
  if (rank != 2 || axis != 0 || block > INT32_MAX || (bits == 8 && (!is_signed || any_zp))) return LB_OK;
  int64_t k = xs->dims[0], n = xs->dims[1];
  /* sym: signed codes without zero point; asym unsigned otherwise (int4 with
   * a zero point: codes and zero points shifted by 8) */
  bool sym = is_signed && !any_zp;
  int32_t shift = is_signed && !sym ? 1 << (bits - 1) : 0;
  struct fe_lowbit_weight *lw = lb_arena_alloc(&c->g->arena, sizeof *lw);
  lw->k = k;
  lw->n = n;
  lw->codes = lb_arena_alloc(&c->g->arena, (size_t)(k * n > 0 ? k * n : 1));
  lw->qp = lb_arena_alloc(&c->g->arena, sizeof *lw->qp);
  *lw->qp = (struct lb_qparams){.bits = bits, .axis = 1, .group_size = (int32_t)block, .symmetric = sym,
                                .is_unsigned = !sym, .n = nb * n};
  lw->qp->scales = lb_arena_alloc(&c->g->arena, sizeof *lw->qp->scales * (size_t)lw->qp->n);
  if (!sym) lw->qp->zero_points = lb_arena_alloc(&c->g->arena, sizeof *lw->qp->zero_points * (size_t)lw->qp->n);
  for (int64_t i = 0; i < nb * n; i++) {
    lw->qp->scales[i] = nearest_f16(sd[i]);
    if (!sym) lw->qp->zero_points[i] = (zd ? AT(zd, i) : 0) + shift;
  }
  for (int64_t i = 0; i < k * n; i++) lw->codes[i] = (int8_t)(AT(xd, i) + shift);
#undef AT
  fe_map_put(&c->lowbit_weights, out->name, lw);
  return LB_OK;
}

/* MatMul(A, B): when B is a blocked DequantizeLinear result with a low-bit
 * view (canon_blocked_dequantize), qmatmul(A, codes) with a_quant="none";
 * otherwise plain matmul. */
static enum lb_status canon_matmul(struct fe_node *fn) {
  struct fe_ctx *c = fn->c;
  struct lb_value *a = fn->n_in > 0 ? fn->in[0] : NULL, *b = fn->n_in > 1 ? fn->in[1] : NULL;
  struct fe_lowbit_weight *lw = b ? fe_map_get(&c->lowbit_weights, b->name) : NULL;
  if (!lw || !a || a->type.dtype != LB_DTYPE_F32 || a->type.shape.rank < 1 ||
      a->type.shape.dims[a->type.shape.rank - 1] != lw->k)
    return canon_plain(fn, fn->op);
  struct lb_type wt = {.dtype = LB_DTYPE_I8, .shape = {.rank = 2, .dims = {lw->k, lw->n}}};
  size_t len = strlen(b->name) + 3;
  char *base = malloc(len);
  if (!base) abort();
  snprintf(base, len, "%s.q", b->name);
  struct lb_value *w = fe_const_copy(c, fe_fresh_name(c, base), &wt, lw->codes);
  free(base);
  w->qparams = lw->qp;
  struct lb_value *ins[2] = {a, w};
  struct lb_node *q = fe_add(fn, LB_OP_QMATMUL, ins, 2, onnx_outs(fn), 1);
  lb_node_set_attr_string(c->g, q, "a_quant", "none");
  lb_node_set_attr_string(c->g, q, "act", "none");
  return done(fn, q);
}

static enum lb_status canon_quant(struct fe_node *fn) {
  enum lb_status st = require_inputs(fn, 2);
  if (st != LB_OK) return st;
  int64_t axis, block;
  if ((st = get_int(fn, "axis", 1, &axis)) != LB_OK) return st;
  if ((st = get_int(fn, "block_size", 0, &block)) != LB_OK) return st;
  if (block && fn->op != LB_OP_DEQUANTIZE_LINEAR)
    return lb_diag_error(fn->c->d, LB_ERR_UNSUPPORTED, &fn->diag, "blocked quantization "
                         "(block_size) is supported for DequantizeLinear of constants only");
  if (block) return canon_blocked_dequantize(fn, axis, block);
  int32_t rank = fn->in[0]->type.shape.rank;
  bool per_axis = fn->in[1]->type.shape.rank > 0 && lb_shape_numel(&fn->in[1]->type.shape) > 1;
  if (per_axis) {
    if ((st = norm_axis(fn, axis, rank, "axis", &axis)) != LB_OK) return st;
  } else {
    axis = axis < 0 ? axis + rank : axis; /* ignored for a per-tensor scale */
    if (axis < 0 || axis >= rank) axis = 0;
  }
  int32_t n_in = trimmed_inputs(fn);
  struct lb_value *ins[3] = {fn->in[0], fn->in[1], n_in > 2 ? fn->in[2] : NULL};
  int64_t out_dt = 0;
  if (fn->op == LB_OP_QUANTIZE_LINEAR && (st = get_int(fn, "output_dtype", 0, &out_dt)) != LB_OK)
    return st;
  if (out_dt) { /* opset 21: the output type without a zero point */
    enum lb_dtype dt =
        out_dt > 0 && out_dt < 1000 ? lb_dtype_from_onnx((int)out_dt) : LB_DTYPE_UNDEF;
    if (dt != LB_DTYPE_U8 && dt != LB_DTYPE_I8)
      return lb_diag_error(fn->c->d, LB_ERR_UNSUPPORTED, &fn->diag,
                           "output_dtype %lld is not supported (int8 and uint8 are)",
                           (long long)out_dt);
    if (ins[2] && ins[2]->type.dtype != dt)
      return lb_diag_error(fn->c->d, LB_ERR_INVALID, &fn->diag,
                           "output_dtype %s differs from y_zero_point's type %s",
                           lb_dtype_traits[dt].name, lb_dtype_traits[ins[2]->type.dtype].name);
    if (!ins[2]) {
      static const uint8_t zero;
      struct lb_type zt = {.dtype = dt, .shape = {.rank = 0}};
      ins[2] = fe_const_copy(fn->c, fe_fresh_name(fn->c, "zero_point"), &zt, &zero);
      n_in = 3;
    }
  }
  struct lb_node *n = fe_add(fn, fn->op, ins, n_in, onnx_outs(fn), 1);
  lb_node_set_attr_int(fn->c->g, n, "axis", axis);
  return done(fn, n);
}

/* The nearest f16 value of x (round half to even; |x| capped at 65504): the
 * executable stores low-bit weight scales as f16 (docs/ir-ops.md). */
static float nearest_f16(float x) {
  double a = fabs((double)x);
  if (!(a > 0)) return 0;
  if (a >= 65504) return (float)copysign(65504, x);
  int e;
  frexp(a, &e); /* a in [2^(e-1), 2^e) */
  int shift = e - 1 < -14 ? 24 : 10 - (e - 1);
  return (float)copysign(ldexp(nearbyint(ldexp(a, shift)), -shift), x);
}

/* `bits` bits at bit offset `pos` of a little-endian bit stream (codes never
 * straddle bytes for bits 2, 4, 8) */
static int32_t packed_code(const uint8_t *p, int64_t pos, int32_t bits) {
  return (p[pos / 8] >> (pos % 8)) & ((1 << bits) - 1);
}

/* com.microsoft MatMulNBits(A, B, scales, zero_points?, g_idx?, bias?) {K, N,
 * bits, block_size, accuracy_level}: y = A . W + bias with W [K,N] stored
 * transposed and blocked along K: B is uint8 [N, n_blocks, blob] (blob =
 * block_size * bits / 8), block b of column n holding the codes of k in
 * [b * block_size, (b + 1) * block_size) packed low bits first;
 * W[k,n] = scales[n * n_blocks + b] * (code - zp[n,b]), the zero points packed
 * the same way, ceil(n_blocks * bits / 8) bytes per column (2^(bits-1) when
 * absent). Becomes qmatmul with the codes unpacked into an `asym, unsigned`
 * i8[K,N] weight with group = block_size (8 bits: `sym` codes - 128, which
 * needs the zero points to be 128). The scales are rounded to f16, as the
 * contract has the executable store group-wise scales (the 8-bit kernels
 * with groups store f16 too; onnxruntime keeps f32: a relative
 * change of at most 2^-12 per scale). Activations stay f32 (a_quant="none")
 * at every accuracy_level: at level 4 onnxruntime quantizes A to int8 with one
 * scale per block of K (block_size values), finer than qmatmul's per-row
 * "dynamic" scale; on the GPT fixture (4-bit, block 32) per-row int8 moved the
 * held-out perplexity 0.0022 from onnxruntime's, f32 activations 0.0004. g_idx
 * is accepted only when it is the trivial k / block_size. */
static enum lb_status canon_matmul_nbits(struct fe_node *fn) {
  struct fe_ctx *c = fn->c;
  enum lb_status st = require_inputs(fn, 3);
  if (st != LB_OK) return st;
  int64_t k, n, bits, bs, level;
  if ((st = get_int(fn, "K", -1, &k)) != LB_OK || (st = get_int(fn, "N", -1, &n)) != LB_OK ||
      (st = get_int(fn, "bits", 4, &bits)) != LB_OK || (st = get_int(fn, "block_size", -1, &bs)) != LB_OK ||
      (st = get_int(fn, "accuracy_level", 0, &level)) != LB_OK)
    return st;
  if (k <= 0 || n <= 0 || k > INT32_MAX || n > INT32_MAX)
    return lb_diag_error(c->d, LB_ERR_INVALID, &fn->diag, "attributes K and N must be positive (K=%lld, N=%lld)",
                         (long long)k, (long long)n);
  if (bits != 2 && bits != 4 && bits != 8)
    return lb_diag_error(c->d, LB_ERR_UNSUPPORTED, &fn->diag, "bits=%lld is not supported (2, 4 and 8 are)",
                         (long long)bits);
  if (bs < 16 || (bs & (bs - 1)) || bs > INT32_MAX)
    return lb_diag_error(c->d, LB_ERR_INVALID, &fn->diag, "block_size=%lld must be a power of 2, at least 16",
                         (long long)bs);
  if (level < 0 || level > 4)
    return lb_diag_error(c->d, LB_ERR_INVALID, &fn->diag, "accuracy_level=%lld must be in 0..4", (long long)level);
  struct lb_value *a = fn->in[0], *b = fn->in[1], *sc = fn->in[2];
  struct lb_value *zpv = fn->n_in > 3 ? fn->in[3] : NULL, *gidx = fn->n_in > 4 ? fn->in[4] : NULL;
  struct lb_value *bias = fn->n_in > 5 ? fn->in[5] : NULL;
  const struct lb_shape *as = &a->type.shape;
  if (a->type.dtype != LB_DTYPE_F32 || as->rank < 1 || as->dims[as->rank - 1] != k)
    return lb_diag_error(c->d, LB_ERR_UNSUPPORTED, &fn->diag, "A must be f32 with last dim K=%lld", (long long)k);
  int64_t n_blocks = (k + bs - 1) / bs, blob = bs * bits / 8, zp_bytes = (n_blocks * bits + 7) / 8;
  for (int32_t i = 1; i < fn->n_in && i <= 4; i++)
    if (fn->in[i] && (st = fe_need_const(fn, i, "a MatMulNBits weight tensor")) != LB_OK) return st;
  if (b->type.dtype != LB_DTYPE_U8 || lb_shape_numel(&b->type.shape) != n * n_blocks * blob)
    return lb_diag_error(c->d, LB_ERR_INVALID, &fn->diag,
                         "B must be uint8 [N=%lld, n_blocks=%lld, blob_size=%lld]", (long long)n,
                         (long long)n_blocks, (long long)blob);
  if (sc->type.dtype != LB_DTYPE_F32 || lb_shape_numel(&sc->type.shape) != n * n_blocks)
    return lb_diag_error(c->d, LB_ERR_UNSUPPORTED, &fn->diag, "scales must be f32 with N * n_blocks = %lld entries",
                         (long long)(n * n_blocks));
  if (zpv && (zpv->type.dtype != LB_DTYPE_U8 || lb_shape_numel(&zpv->type.shape) != n * zp_bytes))
    return lb_diag_error(c->d, LB_ERR_UNSUPPORTED, &fn->diag,
                         "zero_points must be packed uint8 with N * %lld entries (float zero points are not "
                         "supported)",
                         (long long)zp_bytes);
  if (gidx) {
    if (gidx->type.dtype != LB_DTYPE_I32 || lb_shape_numel(&gidx->type.shape) != k)
      return lb_diag_error(c->d, LB_ERR_INVALID, &fn->diag, "g_idx must be int32 [K]");
    const int32_t *gi = lb_value_const_data(c->g, gidx);
    for (int64_t i = 0; i < k; i++)
      if (gi[i] != i / bs)
        return lb_diag_error(c->d, LB_ERR_UNSUPPORTED, &fn->diag,
                             "g_idx[%lld] = %d: only the trivial g_idx (k / block_size) is supported", (long long)i,
                             (int)gi[i]);
  }
  if (bias && (bias->type.dtype != LB_DTYPE_F32 || lb_shape_numel(&bias->type.shape) != n ||
               bias->type.shape.dims[bias->type.shape.rank - 1] != n))
    return lb_diag_error(c->d, LB_ERR_UNSUPPORTED, &fn->diag, "bias must be f32 [N=%lld]", (long long)n);

  const uint8_t *bq = lb_value_const_data(c->g, b), *zq = zpv ? lb_value_const_data(c->g, zpv) : NULL;
  const float *sf = lb_value_const_data(c->g, sc);
  int8_t *codes = fe_alloc((size_t)(k * n));
  if (!codes) return lb_diag_error(c->d, LB_ERR_LIMIT, &fn->diag, "out of memory unpacking B");
  struct lb_qparams *qp = lb_arena_alloc(&c->g->arena, sizeof *qp);
  *qp = (struct lb_qparams){.bits = (int32_t)bits, .axis = 1, .group_size = (int32_t)bs,
                            .symmetric = bits == 8, .is_unsigned = bits != 8, .n = n_blocks * n};
  qp->scales = lb_arena_alloc(&c->g->arena, sizeof *qp->scales * (size_t)qp->n);
  if (bits != 8) qp->zero_points = lb_arena_alloc(&c->g->arena, sizeof *qp->zero_points * (size_t)qp->n);
  int32_t mid = 1 << (bits - 1);
  for (int64_t j = 0; j < n; j++) {
    for (int64_t g = 0; g < n_blocks; g++) {
      int32_t zp = zq ? packed_code(zq + j * zp_bytes, g * bits, (int32_t)bits) : mid;
      if (bits == 8 && zp != mid) {
        free(codes);
        return lb_diag_error(c->d, LB_ERR_UNSUPPORTED, &fn->diag,
                             "8-bit zero points other than 128 are not supported (column %lld, block %lld: %d)",
                             (long long)j, (long long)g, (int)zp);
      }
      qp->scales[g * n + j] = nearest_f16(sf[j * n_blocks + g]);
      if (qp->zero_points) qp->zero_points[g * n + j] = zp;
      const uint8_t *blk = bq + (j * n_blocks + g) * blob;
      for (int64_t i = 0; i < bs && g * bs + i < k; i++) {
        int32_t code = packed_code(blk, i * bits, (int32_t)bits);
        codes[(g * bs + i) * n + j] = (int8_t)(bits == 8 ? code - mid : code);
      }
    }
  }
  struct lb_type wt = {.dtype = LB_DTYPE_I8, .shape = {.rank = 2, .dims = {k, n}}};
  size_t len = strlen(b->name) + 3;
  char *base = malloc(len);
  if (!base) abort();
  snprintf(base, len, "%s.q", b->name);
  struct lb_value *w = fe_const_owned(c, fe_fresh_name(c, base), &wt, codes);
  free(base);
  w->qparams = qp;
  struct lb_value *ins[3] = {a, w, bias};
  struct lb_node *q = fe_add(fn, LB_OP_QMATMUL, ins, bias ? 3 : 2, onnx_outs(fn), 1);
  lb_node_set_attr_string(c->g, q, "a_quant", "none");
  lb_node_set_attr_string(c->g, q, "act", "none");
  return done(fn, q);
}

/* ---- evaluated at import -------------------------------------------------------------- */
static enum lb_status canon_shape(struct fe_node *fn) {
  enum lb_status st = require_inputs(fn, 1);
  if (st != LB_OK) return st;
  const struct lb_shape *xs = &fn->in[0]->type.shape;
  int64_t start, end;
  if ((st = get_int(fn, "start", 0, &start)) != LB_OK) return st;
  if ((st = get_int(fn, "end", xs->rank, &end)) != LB_OK) return st;
  if (start < 0) start += xs->rank;
  if (end < 0) end += xs->rank;
  start = start < 0 ? 0 : start > xs->rank ? xs->rank : start;
  end = end < 0 ? 0 : end > xs->rank ? xs->rank : end;
  int64_t n = end > start ? end - start : 0;
  struct lb_type t = {.dtype = LB_DTYPE_I64, .shape = {.rank = 1, .dims = {n}}};
  fn->out[0] = fe_const_copy(fn->c, fn->np->output[0], &t, xs->dims + start);
  return LB_OK;
}

static enum lb_status canon_constant(struct fe_node *fn) {
  struct fe_ctx *c = fn->c;
  if (fn->np->n_attribute != 1)
    return lb_diag_error(c->d, LB_ERR_INVALID, &fn->diag, "needs exactly one attribute");
  const Onnx__AttributeProto *a = fn->np->attribute[0];
  const char *an = a->name ? a->name : "";
  struct lb_type t = {0};
  void *data = NULL;
  enum lb_status st;
  if (strcmp(an, "value") == 0) {
    if (!a->t) return bad_attr(fn, an, "a tensor");
    char what[300];
    snprintf(what, sizeof what, "node \"%s\" (Constant) value", fn->name);
    if ((st = fe_tensor_load(c, a->t, what, &t, &data)) != LB_OK) return st;
  } else if (strcmp(an, "value_float") == 0 || strcmp(an, "value_int") == 0) {
    bool is_f = an[6] == 'f';
    t.dtype = is_f ? LB_DTYPE_F32 : LB_DTYPE_I64;
    data = fe_alloc(8);
    if (!data) abort();
    if (is_f) {
      double v;
      if ((st = get_float(fn, an, 0, &v)) != LB_OK) return free(data), st;
      *(float *)data = (float)v;
    } else {
      if ((st = get_int(fn, an, 0, (int64_t *)data)) != LB_OK) return free(data), st;
    }
  } else if (strcmp(an, "value_floats") == 0 || strcmp(an, "value_ints") == 0) {
    bool is_f = an[6] == 'f';
    size_t n = is_f ? a->n_floats : a->n_ints;
    int at = attr_type(a);
    if (at != (is_f ? AT_FLOATS : AT_INTS) && !(at == 0 && n == 0))
      return bad_attr(fn, an, is_f ? "a list of floats" : "a list of ints");
    t.dtype = is_f ? LB_DTYPE_F32 : LB_DTYPE_I64;
    t.shape.rank = 1;
    t.shape.dims[0] = (int64_t)n;
    data = fe_alloc(n * 8);
    if (!data) return lb_diag_error(c->d, LB_ERR_LIMIT, &fn->diag, "out of memory");
    if (n) memcpy(data, is_f ? (const void *)a->floats : (const void *)a->ints, n * (is_f ? 4 : 8));
  } else {
    return lb_diag_error(c->d, LB_ERR_UNSUPPORTED, &fn->diag, "attribute %s is not supported", an);
  }
  fn->out[0] = fe_const_owned(c, fn->np->output[0], &t, data);
  return LB_OK;
}

static enum lb_status canon_constant_of_shape(struct fe_node *fn) {
  struct fe_ctx *c = fn->c;
  enum lb_status st = require_inputs(fn, 1);
  if (st != LB_OK) return st;
  int64_t *dims, n;
  if ((st = const_ints(fn, 0, "shape", &dims, &n)) != LB_OK) return st;
  if (n > LB_MAX_RANK)
    return lb_diag_error(c->d, LB_ERR_UNSUPPORTED, &fn->diag, "rank %lld is over %d",
                         (long long)n, LB_MAX_RANK);
  struct lb_type t = {.dtype = LB_DTYPE_F32, .shape = {.rank = (int32_t)n}};
  unsigned char value[16] = {0};
  const Onnx__AttributeProto *a = attr(fn, "value");
  if (a) {
    if (!a->t) return bad_attr(fn, "value", "a tensor");
    struct lb_type vt;
    void *vd;
    char what[300];
    snprintf(what, sizeof what, "node \"%s\" (ConstantOfShape) value", fn->name);
    if ((st = fe_tensor_load(c, a->t, what, &vt, &vd)) != LB_OK) return st;
    if (lb_shape_numel(&vt.shape) != 1) {
      free(vd);
      return lb_diag_error(c->d, LB_ERR_INVALID, &fn->diag, "value must hold one element");
    }
    t.dtype = vt.dtype;
    memcpy(value, vd, (size_t)lb_dtype_traits[vt.dtype].size);
    free(vd);
  }
  for (int64_t i = 0; i < n; i++) {
    if (dims[i] < 0)
      return lb_diag_error(c->d, LB_ERR_INVALID, &fn->diag, "negative dim %lld", (long long)dims[i]);
    t.shape.dims[i] = dims[i];
  }
  int64_t numel, es = lb_dtype_traits[t.dtype].size;
  if (!lb_shape_numel_checked(&t.shape, c->max_bytes / es, &numel))
    return lb_diag_error(c->d, LB_ERR_LIMIT, &fn->diag, "output is over the limit of %lld bytes",
                         (long long)c->max_bytes);
  unsigned char *data = fe_alloc((size_t)(numel * es));
  if (!data) return lb_diag_error(c->d, LB_ERR_LIMIT, &fn->diag, "out of memory");
  for (int64_t i = 0; i < numel; i++) memcpy(data + i * es, value, (size_t)es);
  fn->out[0] = fe_const_owned(c, fn->np->output[0], &t, data);
  return LB_OK;
}

static enum lb_status canon_range(struct fe_node *fn) {
  struct fe_ctx *c = fn->c;
  enum lb_status st = require_inputs(fn, 3);
  if (st != LB_OK) return st;
  enum lb_dtype dt = fn->in[0]->type.dtype;
  double v[3];
  int64_t iv[3];
  for (int32_t i = 0; i < 3; i++) {
    if ((st = fe_need_const(fn, i, i == 0 ? "start" : i == 1 ? "limit" : "delta")) != LB_OK)
      return st;
    const struct lb_value *x = fn->in[i];
    if (x->type.dtype != dt || lb_shape_numel(&x->type.shape) != 1)
      return lb_diag_error(c->d, LB_ERR_INVALID, &fn->diag,
                           "start, limit and delta must be scalars of one type");
    const void *p = lb_value_const_data(c->g, x);
    switch (dt) {
    case LB_DTYPE_F32: v[i] = *(const float *)p; break;
    case LB_DTYPE_F64: v[i] = *(const double *)p; break;
    case LB_DTYPE_I16: iv[i] = *(const int16_t *)p; break;
    case LB_DTYPE_I32: iv[i] = *(const int32_t *)p; break;
    case LB_DTYPE_I64: iv[i] = *(const int64_t *)p; break;
    default:
      return lb_diag_error(c->d, LB_ERR_UNSUPPORTED, &fn->diag, "Range of %s is not supported",
                           lb_dtype_traits[dt].name);
    }
  }
  bool is_f = lb_dtype_traits[dt].is_float;
  int64_t n;
  if (is_f) {
    if (v[2] == 0 || !isfinite(v[0]) || !isfinite(v[1]) || !isfinite(v[2]))
      return lb_diag_error(c->d, LB_ERR_INVALID, &fn->diag, "delta is 0 or a bound is not finite");
    double cnt = ceil((v[1] - v[0]) / v[2]);
    if (cnt > 9e18) cnt = 9e18;
    n = cnt > 0 ? (int64_t)cnt : 0;
  } else {
    if (iv[2] == 0) return lb_diag_error(c->d, LB_ERR_INVALID, &fn->diag, "delta is 0");
    __int128 span = (__int128)iv[1] - iv[0], d = iv[2];
    __int128 cnt = span / d + ((span % d != 0) && ((span > 0) == (d > 0)));
    n = cnt > 0 ? (cnt > INT64_MAX ? INT64_MAX : (int64_t)cnt) : 0;
  }
  struct lb_type t = {.dtype = dt, .shape = {.rank = 1, .dims = {n}}};
  int64_t numel, es = lb_dtype_traits[dt].size;
  if (!lb_shape_numel_checked(&t.shape, c->max_bytes / es, &numel))
    return lb_diag_error(c->d, LB_ERR_LIMIT, &fn->diag, "output is over the limit of %lld bytes",
                         (long long)c->max_bytes);
  unsigned char *data = fe_alloc((size_t)(numel * es));
  if (!data) return lb_diag_error(c->d, LB_ERR_LIMIT, &fn->diag, "out of memory");
  for (int64_t i = 0; i < n; i++) {
    if (is_f) store_scalar(dt, data + i * es, v[0] + (double)i * v[2]);
    else if (dt == LB_DTYPE_I64) ((int64_t *)data)[i] = (int64_t)((uint64_t)iv[0] + (uint64_t)i * (uint64_t)iv[2]);
    else store_scalar(dt, data + i * es, (double)(iv[0] + i * iv[2]));
  }
  fn->out[0] = fe_const_owned(c, fn->np->output[0], &t, data);
  return LB_OK;
}

/* ---- dispatch ------------------------------------------------------------------------ */
static enum lb_status canon_plain_op(struct fe_node *fn) { return canon_plain(fn, fn->op); }

typedef enum lb_status (*canon_fn)(struct fe_node *fn);

/* The import rule of an ONNX op, NULL if none (the op is then listed as unsupported). */
static canon_fn canon_rule(enum lb_op op) {
  switch (op) {
  case LB_OP_IDENTITY: case LB_OP_NEG: case LB_OP_ABS: case LB_OP_SQRT: case LB_OP_RECIPROCAL:
  case LB_OP_EXP: case LB_OP_LOG: case LB_OP_ERF: case LB_OP_TANH: case LB_OP_SIGMOID:
  case LB_OP_RELU: case LB_OP_SIN: case LB_OP_COS: case LB_OP_FLOOR: case LB_OP_CEIL:
  case LB_OP_NOT: case LB_OP_HARD_SWISH:
  case LB_OP_ADD: case LB_OP_SUB: case LB_OP_MUL: case LB_OP_DIV: case LB_OP_POW:
  case LB_OP_MIN: case LB_OP_MAX: case LB_OP_EQUAL: case LB_OP_LESS: case LB_OP_LESS_EQUAL:
  case LB_OP_GREATER: case LB_OP_GREATER_EQUAL: case LB_OP_AND: case LB_OP_OR: case LB_OP_WHERE:
  case LB_OP_GLOBAL_AVERAGE_POOL:
  case LB_OP_DYNAMIC_QUANTIZE_LINEAR: case LB_OP_MATMUL_INTEGER: case LB_OP_QLINEAR_MATMUL:
    return canon_plain_op;
  case LB_OP_LEAKY_RELU: case LB_OP_HARD_SIGMOID: case LB_OP_GELU: case LB_OP_CAST:
    return canon_unary_attrs;
  case LB_OP_DROPOUT: return canon_dropout;
  case LB_OP_CLIP: return canon_clip;
  case LB_OP_REDUCE_MEAN: case LB_OP_REDUCE_SUM: case LB_OP_REDUCE_MAX: case LB_OP_REDUCE_MIN:
    return canon_reduce;
  case LB_OP_SOFTMAX: case LB_OP_LOG_SOFTMAX: return canon_softmax;
  case LB_OP_LAYER_NORM: return canon_layer_norm;
  case LB_OP_BATCH_NORM: return canon_batch_norm;
  case LB_OP_GEMM: return canon_gemm;
  case LB_OP_CONV: return canon_conv;
  case LB_OP_CONV_INTEGER: case LB_OP_QLINEAR_CONV: return canon_int_conv;
  case LB_OP_MAX_POOL: case LB_OP_AVERAGE_POOL: return canon_pool;
  case LB_OP_RESHAPE: return canon_reshape;
  case LB_OP_FLATTEN: return canon_flatten;
  case LB_OP_SQUEEZE: return canon_squeeze;
  case LB_OP_UNSQUEEZE: return canon_unsqueeze;
  case LB_OP_TRANSPOSE: return canon_transpose;
  case LB_OP_CONCAT: return canon_concat;
  case LB_OP_SPLIT: return canon_split;
  case LB_OP_SLICE: return canon_slice;
  case LB_OP_GATHER: return canon_gather;
  case LB_OP_EXPAND: return canon_expand;
  case LB_OP_TRILU: return canon_trilu;
  case LB_OP_PAD: return canon_pad;
  case LB_OP_SHAPE: return canon_shape;
  case LB_OP_CONSTANT: return canon_constant;
  case LB_OP_CONSTANT_OF_SHAPE: return canon_constant_of_shape;
  case LB_OP_RANGE: return canon_range;
  case LB_OP_QUANTIZE_LINEAR: case LB_OP_DEQUANTIZE_LINEAR: return canon_quant;
  case LB_OP_MATMUL_NBITS: return canon_matmul_nbits;
  case LB_OP_MATMUL: return canon_matmul;
  default: return NULL;
  }
}

bool fe_canon_handles(enum lb_op op) { return canon_rule(op) != NULL; }

enum lb_status fe_canon_node(struct fe_node *fn) {
  canon_fn rule = canon_rule(fn->op);
  if (!rule)
    return lb_diag_error(fn->c->d, LB_ERR_UNSUPPORTED, &fn->diag, "no ONNX import rule for this op");
  return rule(fn);
}
