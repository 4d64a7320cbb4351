/* infer.c: shape and element-type rules for every op in its canonical IR form.
 *
 * lb_infer_node() checks a node's inputs and attributes against the canonical
 * forms of docs/ir-ops.md and writes the types of its outputs. The rules are
 * grouped by op family (LB_KIND_* in ir/ops.def): one function per family,
 * with a small per-op switch inside, so adding an op to an existing family is
 * one case line here. The dtype each op accepts is described by a `tclass`.
 *
 * Every error names the node and op (through lb_diag_error) and says what was
 * expected and what was found, with types printed as `f32[3,4]`.
 */
#include "ir/ir.h"

#include <stdlib.h>
#include <string.h>

/* Largest element count any value may have (2^40). */
#define LB_MAX_NUMEL ((int64_t)1 << 40)

/* ---- lb_broadcast_shapes ----------------------------------------------------- */

/* Numpy (multidirectional) broadcasting: shapes are aligned at the right; each
 * pair of dims must be equal or one of them 1. */
enum lb_status lb_broadcast_shapes(const struct lb_shape *a, const struct lb_shape *b,
                                   struct lb_shape *out) {
  struct lb_shape r;
  r.rank = a->rank > b->rank ? a->rank : b->rank;
  for (int32_t i = 0; i < r.rank; i++) {
    int32_t ia = i - (r.rank - a->rank), ib = i - (r.rank - b->rank);
    int64_t da = ia >= 0 ? a->dims[ia] : 1, db = ib >= 0 ? b->dims[ib] : 1;
    if (da == db || db == 1) {
      r.dims[i] = da;
    } else if (da == 1) {
      r.dims[i] = db;
    } else {
      return LB_ERR_INVALID;
    }
  }
  *out = r;
  return LB_OK;
}

/* ---- helpers -------------------------------------------------------------------- */

/* A printable type, returned by value so that several can appear in one
 * printf argument list (the array lives until the end of the full expression). */
struct tstr {
  char s[160];
};

static struct tstr shape_str(const struct lb_shape *s) {
  struct tstr r;
  size_t k = 0;
  r.s[k++] = '[';
  for (int32_t i = 0; i < s->rank && k < sizeof r.s - 24; i++)
    k += (size_t)snprintf(r.s + k, sizeof r.s - k, "%s%lld", i ? "," : "", (long long)s->dims[i]);
  snprintf(r.s + k, sizeof r.s - k, "]");
  return r;
}

static struct tstr type_str(const struct lb_type *t) {
  struct tstr r, sh = shape_str(&t->shape);
  snprintf(r.s, sizeof r.s, "%s%s", lb_dtype_traits[t->dtype].name, sh.s);
  return r;
}

static const char *dt_name(enum lb_dtype t) { return lb_dtype_traits[t].name; }

/* Classes of element types an op accepts. */
enum tclass {
  TC_ANY,    /* every type including bool */
  TC_NUM,    /* every type except bool */
  TC_SIGNED, /* floats and signed integers */
  TC_FLOAT,  /* f32 f64 f16 bf16 */
  TC_INT,    /* integers (not bool) */
  TC_BOOL,
};

static bool dtype_in(enum lb_dtype t, enum tclass c) {
  const struct lb_dtype_traits *tr = &lb_dtype_traits[t];
  if (t == LB_DTYPE_UNDEF || t >= LB_DTYPE_COUNT) return false;
  switch (c) {
  case TC_ANY: return true;
  case TC_NUM: return t != LB_DTYPE_BOOL;
  case TC_SIGNED: return tr->is_signed;
  case TC_FLOAT: return tr->is_float;
  case TC_INT: return !tr->is_float && t != LB_DTYPE_BOOL;
  case TC_BOOL: return t == LB_DTYPE_BOOL;
  }
  return false;
}

static const char *tclass_text(enum tclass c) {
  switch (c) {
  case TC_ANY: return "any type";
  case TC_NUM: return "a numeric type";
  case TC_SIGNED: return "a float or signed integer type";
  case TC_FLOAT: return "a float type (f32, f64, f16, bf16)";
  case TC_INT: return "an integer type";
  case TC_BOOL: return "bool";
  }
  return "?";
}

#define ERR(...) lb_diag_error(d, LB_ERR_INVALID, n, __VA_ARGS__)
#define TRY(e)                      \
  do {                              \
    enum lb_status st_ = (e);       \
    if (st_ != LB_OK) return st_;   \
  } while (0)

static const struct lb_type *in_t(const struct lb_node *n, int32_t i) {
  return i < n->n_inputs && n->inputs[i] ? &n->inputs[i]->type : NULL;
}

static void set_out(struct lb_node *n, int32_t i, enum lb_dtype dt, const struct lb_shape *s) {
  n->outputs[i]->type.dtype = dt;
  n->outputs[i]->type.shape = *s;
}

static enum lb_status check_class(struct lb_node *n, struct lb_diag *d, int32_t i, enum tclass c) {
  const struct lb_type *t = in_t(n, i);
  if (t && !dtype_in(t->dtype, c))
    return ERR("input %d has type %s but %s needs %s", i, type_str(t).s,
               lb_op_info[n->op].ir_name, tclass_text(c));
  return LB_OK;
}

static enum lb_status check_same_dtype(struct lb_node *n, struct lb_diag *d, int32_t i, int32_t j) {
  const struct lb_type *a = in_t(n, i), *b = in_t(n, j);
  if (a && b && a->dtype != b->dtype)
    return ERR("input %d has type %s but input %d has type %s: %s needs equal element types", i,
               type_str(a).s, j, type_str(b).s, lb_op_info[n->op].ir_name);
  return LB_OK;
}

static enum lb_status check_rank_at_least(struct lb_node *n, struct lb_diag *d, int32_t i,
                                          int32_t rank) {
  const struct lb_type *t = in_t(n, i);
  if (t && t->shape.rank < rank)
    return ERR("input %d has type %s but %s needs rank >= %d", i, type_str(t).s,
               lb_op_info[n->op].ir_name, rank);
  return LB_OK;
}

/* An INTS attribute, or NULL (with *count = 0) when absent. */
static const int64_t *ints_attr(const struct lb_node *n, const char *name, int64_t *count) {
  const struct lb_attr *a = lb_node_attr(n, name);
  *count = 0;
  if (!a || a->kind != LB_ATTR_INTS) return NULL;
  *count = a->n;
  return a->ints;
}

/* A required INTS attribute with exactly `want` entries (want < 0: any count). */
static enum lb_status need_ints(struct lb_node *n, struct lb_diag *d, const char *name,
                                int64_t want, const int64_t **out, int64_t *count) {
  const struct lb_attr *a = lb_node_attr(n, name);
  if (!a) return ERR("missing required attribute '%s'", name);
  if (a->kind != LB_ATTR_INTS) return ERR("attribute '%s' must be a list of ints", name);
  if (want >= 0 && a->n != want)
    return ERR("attribute '%s' has %lld entries but needs %lld", name, (long long)a->n,
               (long long)want);
  *out = a->ints;
  *count = a->n;
  return LB_OK;
}

/* Optional INTS attribute with `want` entries, else every entry = dflt. */
static enum lb_status opt_ints(struct lb_node *n, struct lb_diag *d, const char *name,
                               int64_t want, int64_t dflt, int64_t *out) {
  const struct lb_attr *a = lb_node_attr(n, name);
  if (!a) {
    for (int64_t i = 0; i < want; i++) out[i] = dflt;
    return LB_OK;
  }
  if (a->kind != LB_ATTR_INTS) return ERR("attribute '%s' must be a list of ints", name);
  if (a->n != want)
    return ERR("attribute '%s' has %lld entries but needs %lld", name, (long long)a->n,
               (long long)want);
  memcpy(out, a->ints, sizeof *out * (size_t)want);
  return LB_OK;
}

static enum lb_status need_axis(struct lb_node *n, struct lb_diag *d, const char *name,
                                int32_t rank, bool required, int64_t dflt, int32_t *axis) {
  const struct lb_attr *a = lb_node_attr(n, name);
  if (!a && required) return ERR("missing required attribute '%s'", name);
  if (a && a->kind != LB_ATTR_INT) return ERR("attribute '%s' must be an int", name);
  int64_t v = a ? a->i : dflt;
  if (v < 0 || v >= rank)
    return ERR("attribute %s=%lld is out of range for rank %d (canonical axes are in [0, %d])",
               name, (long long)v, rank, rank - 1);
  *axis = (int32_t)v;
  return LB_OK;
}

static enum lb_status need_bool_attr(struct lb_node *n, struct lb_diag *d, const char *name,
                                     int64_t dflt, int64_t *out) {
  int64_t v = lb_node_attr_int(n, name, dflt);
  if (v != 0 && v != 1) return ERR("attribute %s=%lld must be 0 or 1", name, (long long)v);
  *out = v;
  return LB_OK;
}

static enum lb_status frontend_only(struct lb_node *n, struct lb_diag *d) {
  return ERR("%s must be lowered by the frontend; it has no canonical IR form",
             lb_op_info[n->op].ir_name);
}

/* ---- const ------------------------------------------------------------------------ */

static enum lb_status infer_const(struct lb_graph *g, struct lb_node *n, struct lb_diag *d) {
  const struct lb_type *t = &n->outputs[0]->type;
  if (t->dtype == LB_DTYPE_UNDEF || t->dtype >= LB_DTYPE_COUNT)
    return ERR("const has no element type");
  int64_t numel;
  if (!lb_shape_numel_checked(&t->shape, LB_MAX_NUMEL, &numel))
    return lb_diag_error(d, LB_ERR_LIMIT, n, "const %s has more than 2^40 elements or a negative dim",
                         type_str(t).s);
  if (n->blob < 0 || n->blob >= g->n_blobs) return ERR("const has no blob");
  int64_t want = numel * lb_dtype_traits[t->dtype].size;
  if ((int64_t)g->blobs[n->blob].size != want)
    return ERR("const of type %s needs %lld bytes but its blob \"%s\" has %zu", type_str(t).s,
               (long long)want, g->blobs[n->blob].name, g->blobs[n->blob].size);
  return LB_OK;
}

/* ---- elementwise unary -------------------------------------------------------- */

static enum tclass unary_class(enum lb_op op) {
  switch (op) {
  case LB_OP_IDENTITY: case LB_OP_CAST: return TC_ANY;
  case LB_OP_ABS: case LB_OP_RELU: case LB_OP_CLIP: return TC_NUM;
  case LB_OP_NEG: return TC_SIGNED;
  case LB_OP_NOT: return TC_BOOL;
  default: return TC_FLOAT; /* sqrt exp log erf tanh sigmoid sin cos floor ceil ... */
  }
}

static enum lb_status infer_unary(struct lb_graph *g, struct lb_node *n, struct lb_diag *d) {
  (void)g;
  const struct lb_type *x = in_t(n, 0);
  TRY(check_class(n, d, 0, unary_class(n->op)));
  enum lb_dtype out = x->dtype;
  switch (n->op) {
  case LB_OP_DROPOUT: return frontend_only(n, d);
  case LB_OP_CAST: {
    const char *to = lb_node_attr_string(n, "to", NULL);
    if (!to) return ERR("missing required attribute 'to' (an IR dtype name such as \"f32\")");
    out = lb_dtype_from_name(to);
    if (out == LB_DTYPE_UNDEF) return ERR("attribute to=\"%s\" is not an IR dtype name", to);
    break;
  }
  case LB_OP_GELU: {
    const char *a = lb_node_attr_string(n, "approximate", "none");
    if (strcmp(a, "none") != 0 && strcmp(a, "tanh") != 0)
      return ERR("attribute approximate=\"%s\" must be \"none\" or \"tanh\"", a);
    break;
  }
  case LB_OP_CLIP:
    for (int32_t i = 1; i < n->n_inputs; i++) {
      const struct lb_type *b = in_t(n, i);
      if (!b) continue;
      if (b->dtype != x->dtype)
        return ERR("input %d (%s) has type %s but must have the type of input 0 (%s)", i,
                   i == 1 ? "min" : "max", type_str(b).s, dt_name(x->dtype));
      if (lb_shape_numel(&b->shape) != 1)
        return ERR("input %d (%s) has type %s but must be a scalar", i, i == 1 ? "min" : "max",
                   type_str(b).s);
    }
    break;
  default: break;
  }
  set_out(n, 0, out, &x->shape);
  return LB_OK;
}

/* ---- elementwise binary / n-ary --------------------------------------------- */

/* cls: what every input accepts; same: all inputs (from `first`) share a dtype. */
static enum lb_status infer_binary(struct lb_graph *g, struct lb_node *n, struct lb_diag *d) {
  (void)g;
  enum tclass cls = TC_NUM;
  enum lb_dtype out = LB_DTYPE_UNDEF;
  int32_t first = 0; /* first input of the "same dtype" group */
  bool same = true;
  switch (n->op) {
  case LB_OP_ADD: case LB_OP_SUB: case LB_OP_MUL: case LB_OP_DIV:
  case LB_OP_MIN: case LB_OP_MAX: break;
  case LB_OP_POW: same = false; break;
  case LB_OP_EQUAL: cls = TC_ANY; out = LB_DTYPE_BOOL; break;
  case LB_OP_LESS: case LB_OP_LESS_EQUAL: case LB_OP_GREATER: case LB_OP_GREATER_EQUAL:
    out = LB_DTYPE_BOOL;
    break;
  case LB_OP_AND: case LB_OP_OR: cls = TC_BOOL; break;
  case LB_OP_WHERE:
    TRY(check_class(n, d, 0, TC_BOOL));
    cls = TC_ANY;
    first = 1;
    break;
  default: LB_ASSERT(!"not a binary op");
  }
  for (int32_t i = first; i < n->n_inputs; i++) {
    TRY(check_class(n, d, i, cls));
    if (same && i > first) TRY(check_same_dtype(n, d, first, i));
  }
  if (out == LB_DTYPE_UNDEF) out = in_t(n, first)->dtype;
  struct lb_shape s = in_t(n, 0)->shape;
  for (int32_t i = 1; i < n->n_inputs; i++) {
    struct lb_shape r;
    if (lb_broadcast_shapes(&s, &in_t(n, i)->shape, &r) != LB_OK) {
      if (n->n_inputs == 2)
        return ERR("input 0 has shape %s and input 1 has shape %s, which do not broadcast",
                   type_str(in_t(n, 0)).s, type_str(in_t(n, 1)).s);
      return ERR("input %d has shape %s, which does not broadcast with %s (inputs 0..%d)", i,
                 type_str(in_t(n, i)).s, shape_str(&s).s, i - 1);
    }
    s = r;
  }
  set_out(n, 0, out, &s);
  return LB_OK;
}

/* ---- reductions ---------------------------------------------------------------- */

/* Canonical axes lists are sorted, unique and in range. */
static enum lb_status check_axes(struct lb_node *n, struct lb_diag *d, const int64_t *axes,
                                 int64_t count, int32_t rank) {
  for (int64_t i = 0; i < count; i++) {
    if (axes[i] < 0 || axes[i] >= rank)
      return ERR("axes[%lld]=%lld is out of range for rank %d (canonical axes are in [0, %d])",
                 (long long)i, (long long)axes[i], rank, rank - 1);
    if (i > 0 && axes[i] <= axes[i - 1])
      return ERR("axes must be sorted and unique, but axes[%lld]=%lld follows %lld", (long long)i,
                 (long long)axes[i], (long long)axes[i - 1]);
  }
  return LB_OK;
}

static enum lb_status infer_reduce(struct lb_graph *g, struct lb_node *n, struct lb_diag *d) {
  (void)g;
  const struct lb_type *x = in_t(n, 0);
  if (n->n_inputs > 1) return ERR("the axes input must be folded into the 'axes' attribute");
  TRY(check_class(n, d, 0, TC_NUM));
  const int64_t *axes = NULL;
  int64_t na = 0, keep = 1;
  TRY(need_ints(n, d, "axes", -1, &axes, &na));
  if (na == 0) return ERR("attribute 'axes' is empty (write every axis out, or use identity)");
  TRY(check_axes(n, d, axes, na, x->shape.rank));
  TRY(need_bool_attr(n, d, "keepdims", 1, &keep));
  struct lb_shape s = {0};
  for (int32_t i = 0, k = 0; i < x->shape.rank; i++) {
    bool reduced = k < na && axes[k] == i;
    if (reduced) k++;
    if (!reduced) s.dims[s.rank++] = x->shape.dims[i];
    else if (keep) s.dims[s.rank++] = 1;
  }
  set_out(n, 0, x->dtype, &s);
  return LB_OK;
}

/* ---- normalizations --------------------------------------------------------------- */

static enum lb_status infer_norm(struct lb_graph *g, struct lb_node *n, struct lb_diag *d) {
  (void)g;
  const struct lb_type *x = in_t(n, 0);
  TRY(check_class(n, d, 0, TC_FLOAT));
  for (int32_t i = 1; i < n->n_inputs; i++) TRY(check_same_dtype(n, d, 0, i));
  if (n->n_outputs > 1 && n->op != LB_OP_LAYER_NORM && n->op != LB_OP_BATCH_NORM)
    return lb_diag_error(d, LB_ERR_UNSUPPORTED, n,
                         "only the first output is supported (%d outputs given)", n->n_outputs);
  int32_t axis;
  switch (n->op) {
  case LB_OP_SOFTMAX: case LB_OP_LOG_SOFTMAX:
    TRY(check_rank_at_least(n, d, 0, 1));
    TRY(need_axis(n, d, "axis", x->shape.rank, false, x->shape.rank - 1, &axis));
    break;
  case LB_OP_LAYER_NORM: {
    TRY(check_rank_at_least(n, d, 0, 1));
    TRY(need_axis(n, d, "axis", x->shape.rank, false, x->shape.rank - 1, &axis));
    struct lb_shape norm = {.rank = x->shape.rank - axis};
    memcpy(norm.dims, x->shape.dims + axis, sizeof norm.dims[0] * (size_t)norm.rank);
    for (int32_t i = 1; i < n->n_inputs; i++) {
      const struct lb_type *p = in_t(n, i);
      struct lb_shape r;
      if (!p) continue;
      if (lb_broadcast_shapes(&p->shape, &norm, &r) != LB_OK || !lb_shape_equal(&r, &norm))
        return ERR("input %d (%s) has type %s but must broadcast to the normalized shape %s "
                   "(dims %d.. of input 0, %s)",
                   i, i == 1 ? "scale" : "bias", type_str(p).s, shape_str(&norm).s, axis,
                   type_str(x).s);
    }
    /* optional outputs 1 and 2: mean and 1/sqrt(var + epsilon) per normalized row,
     * f32 (ONNX's stash_type 1), shape dims[:axis] + [1] * (rank - axis) */
    if (n->n_outputs == 2)
      return ERR("has 2 outputs but layer_norm makes 1 (y) or 3 (y, mean, inv_std_dev)");
    if (n->n_outputs == 3) {
      struct lb_shape st = x->shape;
      for (int32_t i = axis; i < st.rank; i++) st.dims[i] = 1;
      set_out(n, 1, LB_DTYPE_F32, &st);
      set_out(n, 2, LB_DTYPE_F32, &st);
    }
    break;
  }
  case LB_OP_BATCH_NORM: {
    TRY(check_rank_at_least(n, d, 0, 2));
    for (int32_t i = 1; i < 5; i++) {
      const struct lb_type *p = in_t(n, i);
      static const char *const names[] = {"", "scale", "bias", "mean", "var"};
      if (p->shape.rank != 1 || p->shape.dims[0] != x->shape.dims[1])
        return ERR("input %d (%s) has type %s but must be [%lld] (the channels of input 0, %s)",
                   i, names[i], type_str(p).s, (long long)x->shape.dims[1], type_str(x).s);
    }
    /* training_mode=1: batch statistics; outputs 1 and 2 (optional) are the
     * updated running mean and variance, [C] of input 0's type */
    int64_t training = 0;
    TRY(need_bool_attr(n, d, "training_mode", 0, &training));
    const struct lb_attr *mom = lb_node_attr(n, "momentum");
    if (mom && mom->kind != LB_ATTR_FLOAT) return ERR("attribute 'momentum' must be a float");
    if (!training && mom) return ERR("attribute 'momentum' needs training_mode=1");
    if (!training && n->n_outputs > 1)
      return ERR("has %d outputs but batch_norm makes 1 unless training_mode=1", n->n_outputs);
    for (int32_t i = 1; i < n->n_outputs; i++) set_out(n, i, x->dtype, &in_t(n, 3)->shape);
    break;
  }
  default: LB_ASSERT(!"not a norm op");
  }
  set_out(n, 0, x->dtype, &x->shape);
  return LB_OK;
}

/* ---- matmul family ----------------------------------------------------------------- */

/* numpy matmul of shapes a and b (1-D operands promoted and the added dim
 * removed again). `what` names the operands in messages. */
static enum lb_status matmul_shape(struct lb_node *n, struct lb_diag *d, const struct lb_type *ta,
                                   const struct lb_type *tb, bool trans_b, struct lb_shape *out) {
  struct lb_shape a = ta->shape, b = tb->shape;
  if (a.rank < 1 || b.rank < 1)
    return ERR("input 0 has type %s and input 1 has type %s but %s needs rank >= 1",
               type_str(ta).s, type_str(tb).s, lb_op_info[n->op].ir_name);
  bool a1 = a.rank == 1, b1 = b.rank == 1;
  if (a1) a = (struct lb_shape){.rank = 2, .dims = {1, a.dims[0]}};
  if (b1) b = (struct lb_shape){.rank = 2, .dims = {b.dims[0], 1}};
  int64_t m = a.dims[a.rank - 2], k = a.dims[a.rank - 1];
  int64_t kb = b.dims[b.rank - (trans_b ? 1 : 2)], nn = b.dims[b.rank - (trans_b ? 2 : 1)];
  if (k != kb)
    return ERR("input 1 has shape %s but %s needs its dim %d to equal %lld (the last dim of "
               "input 0, %s)",
               type_str(tb).s, lb_op_info[n->op].ir_name, trans_b ? -1 : (b1 ? 0 : -2),
               (long long)k, type_str(ta).s);
  struct lb_shape ba = {.rank = a.rank - 2}, bb = {.rank = b.rank - 2}, bo;
  memcpy(ba.dims, a.dims, sizeof ba.dims[0] * (size_t)ba.rank);
  memcpy(bb.dims, b.dims, sizeof bb.dims[0] * (size_t)bb.rank);
  if (lb_broadcast_shapes(&ba, &bb, &bo) != LB_OK)
    return ERR("batch dims %s of input 0 (%s) and %s of input 1 (%s) do not broadcast",
               shape_str(&ba).s, type_str(ta).s, shape_str(&bb).s, type_str(tb).s);
  if (!a1) bo.dims[bo.rank++] = m;
  if (!b1) bo.dims[bo.rank++] = nn;
  *out = bo;
  return LB_OK;
}

static enum lb_status infer_matmul(struct lb_graph *g, struct lb_node *n, struct lb_diag *d) {
  (void)g;
  const struct lb_type *a = in_t(n, 0), *b = in_t(n, 1), *c = in_t(n, 2);
  TRY(check_class(n, d, 0, TC_NUM));
  TRY(check_same_dtype(n, d, 0, 1));
  if (c) TRY(check_same_dtype(n, d, 0, 2));
  struct lb_shape s;
  switch (n->op) {
  case LB_OP_MATMUL: TRY(matmul_shape(n, d, a, b, false, &s)); break;
  case LB_OP_GEMM: {
    int64_t ta = 0, tb = 0;
    TRY(need_bool_attr(n, d, "transA", 0, &ta));
    TRY(need_bool_attr(n, d, "transB", 0, &tb));
    for (int32_t i = 0; i < 2; i++)
      if (in_t(n, i)->shape.rank != 2)
        return ERR("input %d has type %s but gemm needs rank 2", i, type_str(in_t(n, i)).s);
    int64_t m = a->shape.dims[ta], k = a->shape.dims[1 - ta];
    int64_t kb = b->shape.dims[tb], nn = b->shape.dims[1 - tb];
    if (k != kb)
      return ERR("input 1 has shape %s but gemm (transB=%lld) needs its dim %lld to equal %lld "
                 "(dim %lld of input 0, %s, transA=%lld)",
                 type_str(b).s, (long long)tb, (long long)tb, (long long)k, (long long)(1 - ta),
                 type_str(a).s, (long long)ta);
    s = (struct lb_shape){.rank = 2, .dims = {m, nn}};
    struct lb_shape r;
    if (c && (lb_broadcast_shapes(&c->shape, &s, &r) != LB_OK || !lb_shape_equal(&r, &s)))
      return ERR("input 2 (c) has type %s, which does not broadcast to the output shape %s",
                 type_str(c).s, shape_str(&s).s);
    break;
  }
  case LB_OP_FUSED_MATMUL: {
    int64_t tb = 0;
    TRY(need_bool_attr(n, d, "transB", 0, &tb));
    if (tb && b->shape.rank < 2) return ERR("transB=1 needs input 1 of rank >= 2, got %s", type_str(b).s);
    const char *act = lb_node_attr_string(n, "act", "none");
    static const char *const acts[] = {"none", "relu", "gelu", "gelu_tanh", "sigmoid", "tanh"};
    bool ok = false;
    for (size_t i = 0; i < sizeof acts / sizeof acts[0]; i++) ok |= strcmp(act, acts[i]) == 0;
    if (!ok) return ERR("attribute act=\"%s\" is not one of none relu gelu gelu_tanh sigmoid tanh", act);
    if (strcmp(act, "none") != 0) TRY(check_class(n, d, 0, TC_FLOAT));
    TRY(matmul_shape(n, d, a, b, tb, &s));
    int64_t nn = s.rank ? s.dims[s.rank - 1] : 1;
    if (c && (c->shape.rank != 1 || c->shape.dims[0] != nn))
      return ERR("input 2 (bias) has type %s but must be [%lld] (the output's last dim)",
                 type_str(c).s, (long long)nn);
    break;
  }
  default: LB_ASSERT(!"not a matmul op");
  }
  set_out(n, 0, a->dtype, &s);
  return LB_OK;
}

/* ---- conv and pools ------------------------------------------------------------------ */

/* Output size of one spatial dim of a window op. */
static enum lb_status window_dim(struct lb_node *n, struct lb_diag *d, int32_t i, int64_t in,
                                 int64_t k, int64_t stride, int64_t dil, int64_t pb, int64_t pe,
                                 bool ceil_mode, int64_t *out) {
  if (k < 1 || stride < 1 || dil < 1 || pb < 0 || pe < 0)
    return ERR("spatial dim %d: kernel %lld, stride %lld, dilation %lld must be >= 1 and pads "
               "%lld,%lld >= 0",
               i, (long long)k, (long long)stride, (long long)dil, (long long)pb, (long long)pe);
  int64_t span = dil * (k - 1) + 1, avail = in + pb + pe - span;
  if (avail < 0)
    return ERR("spatial dim %d: the window (kernel %lld, dilation %lld: %lld wide) is larger than "
               "the padded input (%lld + pads %lld,%lld)",
               i, (long long)k, (long long)dil, (long long)span, (long long)in, (long long)pb,
               (long long)pe);
  int64_t o = ceil_mode ? (avail + stride - 1) / stride + 1 : avail / stride + 1;
  /* ceil_mode: a window that would start inside the end padding is dropped
   * (PyTorch's and onnxruntime's rule). */
  if (ceil_mode && (o - 1) * stride >= in + pb) o--;
  *out = o;
  return LB_OK;
}

static enum lb_status infer_window(struct lb_graph *g, struct lb_node *n, struct lb_diag *d) {
  (void)g;
  const struct lb_type *x = in_t(n, 0);
  if (n->op == LB_OP_MAX_POOL) {
    if (!dtype_in(x->dtype, TC_FLOAT) && x->dtype != LB_DTYPE_U8 && x->dtype != LB_DTYPE_I8)
      return ERR("input 0 has type %s but max_pool needs a float type (f32, f64, f16, bf16), "
                 "u8 or i8", type_str(x).s);
  } else {
    TRY(check_class(n, d, 0, TC_FLOAT));
  }
  TRY(check_rank_at_least(n, d, 0, 3));
  int32_t ns = x->shape.rank - 2;
  struct lb_shape s = x->shape;
  if (n->op == LB_OP_GLOBAL_AVERAGE_POOL) {
    for (int32_t i = 0; i < ns; i++) s.dims[2 + i] = 1;
    set_out(n, 0, x->dtype, &s);
    return LB_OK;
  }
  int64_t k[LB_MAX_RANK], st[LB_MAX_RANK], dil[LB_MAX_RANK], pads[2 * LB_MAX_RANK], cm = 0, cip = 0;
  if (n->op == LB_OP_CONV) {
    const struct lb_type *w = in_t(n, 1), *b = in_t(n, 2);
    TRY(check_same_dtype(n, d, 0, 1));
    if (b) TRY(check_same_dtype(n, d, 0, 2));
    if (w->shape.rank != x->shape.rank)
      return ERR("input 1 (weights) has type %s but must have the rank of input 0 (%s)",
                 type_str(w).s, type_str(x).s);
    int64_t group = lb_node_attr_int(n, "group", 1), c = x->shape.dims[1], m = w->shape.dims[0];
    if (group < 1 || c % group != 0 || m % group != 0)
      return ERR("group=%lld must divide the input channels (%lld, input 0 %s) and the output "
                 "channels (%lld, input 1 %s)",
                 (long long)group, (long long)c, type_str(x).s, (long long)m, type_str(w).s);
    if (w->shape.dims[1] != c / group)
      return ERR("input 1 (weights) has shape %s but its dim 1 must be %lld (input channels %lld "
                 "/ group %lld)",
                 type_str(w).s, (long long)(c / group), (long long)c, (long long)group);
    if (b && (b->shape.rank != 1 || b->shape.dims[0] != m))
      return ERR("input 2 (bias) has type %s but must be [%lld] (dim 0 of the weights %s)",
                 type_str(b).s, (long long)m, type_str(w).s);
    TRY(opt_ints(n, d, "kernel_shape", ns, 0, k));
    for (int32_t i = 0; i < ns; i++) {
      if (lb_node_attr(n, "kernel_shape") && k[i] != w->shape.dims[2 + i])
        return ERR("kernel_shape[%d]=%lld does not match the weights %s", i, (long long)k[i],
                   type_str(w).s);
      k[i] = w->shape.dims[2 + i];
    }
    s.dims[1] = m;
  } else {
    const int64_t *ks;
    int64_t nk;
    TRY(need_ints(n, d, "kernel_shape", ns, &ks, &nk));
    memcpy(k, ks, sizeof k[0] * (size_t)ns);
    TRY(need_bool_attr(n, d, "ceil_mode", 0, &cm));
    if (n->op == LB_OP_AVERAGE_POOL) {
      TRY(need_bool_attr(n, d, "count_include_pad", 0, &cip));
      if (lb_node_attr(n, "dilations")) return ERR("average_pool takes no 'dilations'");
    }
  }
  TRY(opt_ints(n, d, "strides", ns, 1, st));
  TRY(opt_ints(n, d, "dilations", ns, 1, dil));
  TRY(opt_ints(n, d, "pads", 2 * ns, 0, pads));
  for (int32_t i = 0; i < ns; i++)
    TRY(window_dim(n, d, i, x->shape.dims[2 + i], k[i], st[i], dil[i], pads[i], pads[ns + i],
                   cm != 0, &s.dims[2 + i]));
  set_out(n, 0, x->dtype, &s);
  if (n->op == LB_OP_MAX_POOL) {
    /* optional output 1: i64 flat index into input 0 of each maximum */
    int64_t so = 0;
    TRY(need_bool_attr(n, d, "storage_order", 0, &so));
    if (n->n_outputs > 1) set_out(n, 1, LB_DTYPE_I64, &s);
  }
  return LB_OK;
}

/* ---- data movement ------------------------------------------------------------------ */

static enum lb_status infer_reshape(struct lb_graph *g, struct lb_node *n, struct lb_diag *d) {
  const struct lb_type *x = in_t(n, 0);
  struct lb_shape s = {0};
  int64_t cnt;
  const int64_t *dims = ints_attr(n, "shape", &cnt);
  if (dims) {
    if (n->n_inputs > 1 && n->inputs[1]) return ERR("give the target shape as the 'shape' attribute or input 1, not both");
    if (cnt > LB_MAX_RANK) return lb_diag_error(d, LB_ERR_LIMIT, n, "shape has rank %lld > %d", (long long)cnt, LB_MAX_RANK);
    for (int64_t i = 0; i < cnt; i++) {
      if (dims[i] < 0) return ERR("shape[%lld]=%lld: canonical reshape dims are explicit (no -1)", (long long)i, (long long)dims[i]);
      s.dims[s.rank++] = dims[i];
    }
  } else {
    /* ONNX form with a constant target: 0 copies the input dim, -1 is inferred. */
    const struct lb_type *t = in_t(n, 1);
    const void *data = t ? lb_value_const_data(g, n->inputs[1]) : NULL;
    if (!t) return ERR("missing required attribute 'shape'");
    if (!data || t->dtype != LB_DTYPE_I64 || t->shape.rank != 1)
      return ERR("input 1 (shape) has type %s but must be a constant i64 vector", type_str(t).s);
    if (t->shape.dims[0] > LB_MAX_RANK) return lb_diag_error(d, LB_ERR_LIMIT, n, "shape has rank %lld > %d", (long long)t->shape.dims[0], LB_MAX_RANK);
    const int64_t *v = data;
    int32_t infer_at = -1;
    int64_t known = 1;
    for (int64_t i = 0; i < t->shape.dims[0]; i++) {
      int64_t dim = v[i];
      if (dim == 0) {
        if (i >= x->shape.rank) return ERR("shape[%lld]=0 copies a dim that input 0 (%s) does not have", (long long)i, type_str(x).s);
        dim = x->shape.dims[i];
      } else if (dim == -1) {
        if (infer_at >= 0) return ERR("shape has more than one -1");
        infer_at = (int32_t)i;
        dim = 1;
      } else if (dim < 0) {
        return ERR("shape[%lld]=%lld is negative", (long long)i, (long long)dim);
      }
      s.dims[s.rank++] = dim;
      if (i != infer_at) known *= dim;
    }
    if (infer_at >= 0) {
      int64_t total = lb_shape_numel(&x->shape);
      if (known == 0 || total % known != 0)
        return ERR("cannot infer the -1 in the target shape: %lld elements of input 0 (%s) do "
                   "not divide by %lld", (long long)total, type_str(x).s, (long long)known);
      s.dims[infer_at] = total / known;
    }
  }
  int64_t ne;
  if (!lb_shape_numel_checked(&s, LB_MAX_NUMEL, &ne) || ne != lb_shape_numel(&x->shape))
    return ERR("cannot reshape input 0 (%s, %lld elements) to %s", type_str(x).s,
               (long long)lb_shape_numel(&x->shape), shape_str(&s).s);
  set_out(n, 0, x->dtype, &s);
  return LB_OK;
}

static enum lb_status infer_move(struct lb_graph *g, struct lb_node *n, struct lb_diag *d) {
  const struct lb_type *x = in_t(n, 0);
  int32_t rank = x->shape.rank, axis;
  struct lb_shape s = x->shape;
  const int64_t *v;
  int64_t cnt;
  if (n->op != LB_OP_RESHAPE && n->op != LB_OP_CONCAT && n->op != LB_OP_GATHER && n->n_inputs > 1)
    return ERR("input 1 must be folded into attributes by the frontend");
  switch (n->op) {
  case LB_OP_FLATTEN: case LB_OP_SQUEEZE: case LB_OP_UNSQUEEZE: return frontend_only(n, d);
  case LB_OP_RESHAPE: return infer_reshape(g, n, d);
  case LB_OP_TRANSPOSE: {
    TRY(need_ints(n, d, "perm", rank, &v, &cnt));
    bool seen[LB_MAX_RANK] = {0};
    for (int32_t i = 0; i < rank; i++) {
      if (v[i] < 0 || v[i] >= rank || seen[v[i]])
        return ERR("perm is not a permutation of 0..%d (entry %d is %lld) for input 0 (%s)",
                   rank - 1, i, (long long)v[i], type_str(x).s);
      seen[v[i]] = true;
      s.dims[i] = x->shape.dims[v[i]];
    }
    break;
  }
  case LB_OP_CONCAT:
    TRY(check_rank_at_least(n, d, 0, 1));
    TRY(need_axis(n, d, "axis", rank, true, 0, &axis));
    for (int32_t i = 1; i < n->n_inputs; i++) {
      const struct lb_type *t = in_t(n, i);
      TRY(check_same_dtype(n, d, 0, i));
      bool ok = t->shape.rank == rank;
      for (int32_t k = 0; ok && k < rank; k++)
        ok = k == axis || t->shape.dims[k] == x->shape.dims[k];
      if (!ok)
        return ERR("input %d has shape %s but concat on axis %d needs the other dims to match "
                   "input 0 (%s)", i, type_str(t).s, axis, type_str(x).s);
      s.dims[axis] += t->shape.dims[axis];
    }
    break;
  case LB_OP_SPLIT: {
    TRY(check_rank_at_least(n, d, 0, 1));
    TRY(need_axis(n, d, "axis", rank, false, 0, &axis));
    TRY(need_ints(n, d, "split", n->n_outputs, &v, &cnt));
    int64_t sum = 0;
    for (int64_t i = 0; i < cnt; i++) {
      if (v[i] < 0) return ERR("split[%lld]=%lld is negative", (long long)i, (long long)v[i]);
      sum += v[i];
    }
    if (sum != x->shape.dims[axis])
      return ERR("split sizes sum to %lld but dim %d of input 0 (%s) is %lld", (long long)sum,
                 axis, type_str(x).s, (long long)x->shape.dims[axis]);
    for (int32_t i = 0; i < n->n_outputs; i++) {
      s.dims[axis] = v[i];
      set_out(n, i, x->dtype, &s);
    }
    return LB_OK;
  }
  case LB_OP_SLICE: {
    const int64_t *st, *en, *sp;
    TRY(need_ints(n, d, "starts", rank, &st, &cnt));
    TRY(need_ints(n, d, "ends", rank, &en, &cnt));
    TRY(need_ints(n, d, "steps", rank, &sp, &cnt));
    for (int32_t i = 0; i < rank; i++) {
      int64_t dim = x->shape.dims[i];
      if (sp[i] == 0) return ERR("steps[%d] is 0", i);
      bool ok = sp[i] > 0 ? (st[i] >= 0 && st[i] <= dim && en[i] >= 0 && en[i] <= dim)
                          : (st[i] >= 0 && st[i] <= (dim ? dim - 1 : 0) && en[i] >= -1 && en[i] <= dim - 1);
      if (!ok)
        return ERR("dim %d: starts %lld, ends %lld, steps %lld are not clamped to dim %lld of "
                   "input 0 (%s)", i, (long long)st[i], (long long)en[i], (long long)sp[i],
                   (long long)dim, type_str(x).s);
      int64_t len = sp[i] > 0 ? (en[i] - st[i] + sp[i] - 1) / sp[i]
                              : (st[i] - en[i] + (-sp[i]) - 1) / (-sp[i]);
      s.dims[i] = len > 0 && dim > 0 ? len : 0;
    }
    break;
  }
  case LB_OP_GATHER: {
    const struct lb_type *ix = in_t(n, 1);
    TRY(check_rank_at_least(n, d, 0, 1));
    TRY(need_axis(n, d, "axis", rank, false, 0, &axis));
    if (ix->dtype != LB_DTYPE_I32 && ix->dtype != LB_DTYPE_I64)
      return ERR("input 1 (indices) has type %s but gather needs i32 or i64 indices", type_str(ix).s);
    if (rank - 1 + ix->shape.rank > LB_MAX_RANK)
      return lb_diag_error(d, LB_ERR_LIMIT, n, "output rank %d exceeds %d",
                           rank - 1 + ix->shape.rank, LB_MAX_RANK);
    s.rank = 0;
    for (int32_t i = 0; i < axis; i++) s.dims[s.rank++] = x->shape.dims[i];
    for (int32_t i = 0; i < ix->shape.rank; i++) s.dims[s.rank++] = ix->shape.dims[i];
    for (int32_t i = axis + 1; i < rank; i++) s.dims[s.rank++] = x->shape.dims[i];
    break;
  }
  case LB_OP_EXPAND: {
    const struct lb_attr *a = lb_node_attr(n, "shape");
    if (!a || a->kind != LB_ATTR_INTS) return ERR("missing required attribute 'shape'");
    if (a->n > LB_MAX_RANK) return lb_diag_error(d, LB_ERR_LIMIT, n, "shape has rank %lld > %d", (long long)a->n, LB_MAX_RANK);
    struct lb_shape t = {.rank = (int32_t)a->n}, r;
    memcpy(t.dims, a->ints, sizeof t.dims[0] * (size_t)a->n);
    if (lb_broadcast_shapes(&x->shape, &t, &r) != LB_OK || !lb_shape_equal(&r, &t))
      return ERR("input 0 (%s) does not broadcast to shape %s", type_str(x).s, shape_str(&t).s);
    s = t;
    break;
  }
  case LB_OP_TRILU: {
    int64_t up = 1;
    TRY(check_rank_at_least(n, d, 0, 2));
    TRY(need_bool_attr(n, d, "upper", 1, &up));
    break;
  }
  case LB_OP_PAD: {
    /* pads = [begins..., ends...]; a negative entry crops. The kept part of dim
     * i is dims[i] + min(begin, 0) + min(end, 0) and must be >= 0; the other
     * modes copy from the kept part, so they cannot pad a dim it leaves empty. */
    const struct lb_attr *ma = lb_node_attr(n, "mode"), *va = lb_node_attr(n, "value");
    if (ma && ma->kind != LB_ATTR_STRING) return ERR("attribute 'mode' must be a string");
    if (va && va->kind != LB_ATTR_FLOAT) return ERR("attribute 'value' must be a float");
    const char *mode = ma ? ma->s : "constant";
    bool constant = strcmp(mode, "constant") == 0;
    if (!constant && strcmp(mode, "reflect") != 0 && strcmp(mode, "edge") != 0 &&
        strcmp(mode, "wrap") != 0)
      return ERR("mode \"%s\" is not \"constant\", \"reflect\", \"edge\" or \"wrap\"", mode);
    TRY(need_ints(n, d, "pads", 2 * (int64_t)rank, &v, &cnt));
    for (int32_t i = 0; i < rank; i++) {
      int64_t dim = x->shape.dims[i], b = v[i], e = v[rank + i];
      if (b < -LB_MAX_NUMEL || b > LB_MAX_NUMEL || e < -LB_MAX_NUMEL || e > LB_MAX_NUMEL)
        return lb_diag_error(d, LB_ERR_LIMIT, n, "pads of dim %d (begin %lld, end %lld) are "
                             "over 2^40", i, (long long)b, (long long)e);
      int64_t kept = dim + (b < 0 ? b : 0) + (e < 0 ? e : 0);
      if (kept < 0)
        return ERR("pads of dim %d (begin %lld, end %lld) crop more than its size %lld "
                   "(input 0 is %s)", i, (long long)b, (long long)e, (long long)dim,
                   type_str(x).s);
      if (!constant && kept == 0 && (b > 0 || e > 0))
        return ERR("mode \"%s\" cannot pad dim %d (begin %lld, end %lld): it has no elements "
                   "to copy (input 0 is %s)", mode, i, (long long)b, (long long)e,
                   type_str(x).s);
      s.dims[i] = dim + b + e;
    }
    break;
  }
  default: LB_ASSERT(!"not a move op");
  }
  set_out(n, 0, x->dtype, &s);
  return LB_OK;
}

/* ---- quantization ------------------------------------------------------------------- */

static bool is_q8(enum lb_dtype t) { return t == LB_DTYPE_U8 || t == LB_DTYPE_I8; }
static bool is_qint(enum lb_dtype t) {
  return t == LB_DTYPE_U8 || t == LB_DTYPE_I8 || t == LB_DTYPE_U16 || t == LB_DTYPE_I16 ||
         t == LB_DTYPE_I32;
}

/* scale (and zp) of (de)quantize_linear: a scalar, or a vector along `axis`. */
static enum lb_status check_qparam(struct lb_node *n, struct lb_diag *d, int32_t i,
                                   const struct lb_type *x, const char *what) {
  const struct lb_type *p = in_t(n, i);
  if (!p) return LB_OK;
  if (p->shape.rank == 0 || (p->shape.rank == 1 && p->shape.dims[0] == 1)) return LB_OK;
  int32_t axis = 0;
  TRY(need_axis(n, d, "axis", x->shape.rank, false, 1, &axis));
  if (p->shape.rank != 1 || p->shape.dims[0] != x->shape.dims[axis])
    return ERR("input %d (%s) has type %s but must be a scalar or [%lld] (dim %d of input 0, %s)",
               i, what, type_str(p).s, (long long)x->shape.dims[axis], axis, type_str(x).s);
  return LB_OK;
}

/* matmul_integer / qlinear_matmul zero points and scales: scalar, or per row
 * of a (size M) / per column of b (size N). */
static enum lb_status check_mm_qparam(struct lb_node *n, struct lb_diag *d, int32_t i,
                                      int64_t len, const char *what) {
  const struct lb_type *p = in_t(n, i);
  if (!p) return LB_OK;
  int64_t ne = lb_shape_numel(&p->shape);
  if (p->shape.rank <= 1 && (ne == 1 || ne == len)) return LB_OK;
  return ERR("input %d (%s) has type %s but must be a scalar or a vector of %lld", i, what,
             type_str(p).s, (long long)len);
}

/* qmatmul (docs/ir-ops.md "Quantized matmul"): a [...,M,K] (f32, or i8/u8 when
 * a_quant="static") times the constant w i8[K,N] (u8: fp8 codes) gives [...,M,N]. The output is
 * f32, or keeps an i8/u8 dtype that the producing pass chose together with the
 * output's qparams (requantized output); qparams themselves are checked by the
 * verifier. */
static enum lb_status infer_qmatmul(struct lb_node *n, struct lb_diag *d) {
  const struct lb_type *a = in_t(n, 0), *w = in_t(n, 1), *bias = in_t(n, 2);
  const char *aq = lb_node_attr_string(n, "a_quant", "none");
  if (strcmp(aq, "none") != 0 && strcmp(aq, "static") != 0 && strcmp(aq, "dynamic") != 0)
    return ERR("attribute a_quant=\"%s\" is not one of none static dynamic", aq);
  const char *act = lb_node_attr_string(n, "act", "none");
  static const char *const acts[] = {"none", "relu", "gelu", "gelu_tanh", "sigmoid", "tanh"};
  bool ok = false;
  for (size_t i = 0; i < sizeof acts / sizeof acts[0]; i++) ok |= strcmp(act, acts[i]) == 0;
  if (!ok) return ERR("attribute act=\"%s\" is not one of none relu gelu gelu_tanh sigmoid tanh", act);
  if (a->dtype != LB_DTYPE_F32 && !(is_q8(a->dtype) && strcmp(aq, "static") == 0))
    return ERR("input 0 has type %s but qmatmul with a_quant=\"%s\" needs f32%s", type_str(a).s,
               aq, strcmp(aq, "static") == 0 ? ", i8 or u8" : "");
  if (a->shape.rank < 1) return ERR("input 0 has type %s but qmatmul needs rank >= 1", type_str(a).s);
  if ((w->dtype != LB_DTYPE_I8 && w->dtype != LB_DTYPE_U8 && w->dtype != LB_DTYPE_F16) || w->shape.rank != 2)
    return ERR("input 1 (weight) has type %s but qmatmul needs i8[K,N] (u8[K,N] for fp8, f16[K,N] for f16)",
               type_str(w).s); /* u8: fp8 codes; f16: half weights */
  int64_t k = a->shape.dims[a->shape.rank - 1], nn = w->shape.dims[1];
  if (w->shape.dims[0] != k)
    return ERR("input 1 (weight) has type %s but its dim 0 must equal %lld (the last dim of input 0, %s)",
               type_str(w).s, (long long)k, type_str(a).s);
  if (bias && (bias->dtype != LB_DTYPE_F32 || bias->shape.rank != 1 || bias->shape.dims[0] != nn))
    return ERR("input 2 (bias) has type %s but must be f32[%lld]", type_str(bias).s, (long long)nn);
  struct lb_shape s = a->shape;
  s.dims[s.rank - 1] = nn;
  enum lb_dtype out = n->outputs[0]->type.dtype;
  set_out(n, 0, is_q8(out) && n->outputs[0]->qparams ? out : LB_DTYPE_F32, &s);
  return LB_OK;
}

static enum lb_status infer_quant(struct lb_graph *g, struct lb_node *n, struct lb_diag *d) {
  (void)g;
  const struct lb_type *x = in_t(n, 0);
  struct lb_shape s;
  switch (n->op) {
  case LB_OP_OBSERVE:
    /* identity: the output has the input's type */
    TRY(check_class(n, d, 0, TC_FLOAT));
    set_out(n, 0, x->dtype, &x->shape);
    return LB_OK;
  case LB_OP_QUANTIZE_LINEAR: {
    const struct lb_type *zp = in_t(n, 2);
    TRY(check_class(n, d, 0, TC_FLOAT));
    if (in_t(n, 1)->dtype != LB_DTYPE_F32 && in_t(n, 1)->dtype != x->dtype)
      return ERR("input 1 (scale) has type %s but must be f32 or the type of input 0", type_str(in_t(n, 1)).s);
    if (zp && !is_qint(zp->dtype))
      return ERR("input 2 (zero point) has type %s but must be u8, i8, u16, i16 or i32", type_str(zp).s);
    TRY(check_qparam(n, d, 1, x, "scale"));
    TRY(check_qparam(n, d, 2, x, "zero point"));
    if (zp && !lb_shape_equal(&zp->shape, &in_t(n, 1)->shape) &&
        lb_shape_numel(&zp->shape) != lb_shape_numel(&in_t(n, 1)->shape))
      return ERR("input 2 (zero point, %s) must have the shape of input 1 (scale, %s)", type_str(zp).s, type_str(in_t(n, 1)).s);
    set_out(n, 0, zp ? zp->dtype : LB_DTYPE_U8, &x->shape);
    return LB_OK;
  }
  case LB_OP_DEQUANTIZE_LINEAR:
    if (!is_qint(x->dtype)) return ERR("input 0 has type %s but must be u8, i8, u16, i16 or i32", type_str(x).s);
    if (in_t(n, 1)->dtype != LB_DTYPE_F32) return ERR("input 1 (scale) has type %s but must be f32", type_str(in_t(n, 1)).s);
    if (in_t(n, 2)) TRY(check_same_dtype(n, d, 0, 2));
    TRY(check_qparam(n, d, 1, x, "scale"));
    TRY(check_qparam(n, d, 2, x, "zero point"));
    set_out(n, 0, LB_DTYPE_F32, &x->shape);
    return LB_OK;
  case LB_OP_DYNAMIC_QUANTIZE_LINEAR: {
    if (x->dtype != LB_DTYPE_F32) return ERR("input 0 has type %s but must be f32", type_str(x).s);
    struct lb_shape scalar = {0};
    set_out(n, 0, LB_DTYPE_U8, &x->shape);
    set_out(n, 1, LB_DTYPE_F32, &scalar);
    set_out(n, 2, LB_DTYPE_U8, &scalar);
    return LB_OK;
  }
  case LB_OP_MATMUL_INTEGER: case LB_OP_QLINEAR_MATMUL: {
    bool ql = n->op == LB_OP_QLINEAR_MATMUL;
    int32_t ib = ql ? 3 : 1;
    int32_t iazp = ql ? 2 : 2, ibzp = ql ? 5 : 3;
    const struct lb_type *b = in_t(n, ib);
    if (!is_q8(x->dtype)) return ERR("input 0 has type %s but must be u8 or i8", type_str(x).s);
    if (!is_q8(b->dtype)) return ERR("input %d has type %s but must be u8 or i8", ib, type_str(b).s);
    if (in_t(n, iazp)) TRY(check_same_dtype(n, d, 0, iazp));
    if (in_t(n, ibzp)) TRY(check_same_dtype(n, d, ib, ibzp));
    TRY(matmul_shape(n, d, x, b, false, &s));
    int64_t m = x->shape.rank >= 2 ? x->shape.dims[x->shape.rank - 2] : 1;
    int64_t nn = b->shape.rank >= 2 ? b->shape.dims[b->shape.rank - 1] : 1;
    TRY(check_mm_qparam(n, d, iazp, m, "a zero point"));
    TRY(check_mm_qparam(n, d, ibzp, nn, "b zero point"));
    enum lb_dtype out = LB_DTYPE_I32;
    if (ql) {
      static const int32_t scales[] = {1, 4, 6};
      for (int32_t k = 0; k < 3; k++)
        if (in_t(n, scales[k])->dtype != LB_DTYPE_F32)
          return ERR("input %d (scale) has type %s but must be f32", scales[k],
                     type_str(in_t(n, scales[k])).s);
      TRY(check_mm_qparam(n, d, 1, m, "a scale"));
      TRY(check_mm_qparam(n, d, 4, nn, "b scale"));
      TRY(check_mm_qparam(n, d, 6, 1, "y scale"));
      TRY(check_mm_qparam(n, d, 7, 1, "y zero point"));
      if (!is_q8(in_t(n, 7)->dtype)) return ERR("input 7 (y zero point) has type %s but must be u8 or i8", type_str(in_t(n, 7)).s);
      out = in_t(n, 7)->dtype;
    }
    set_out(n, 0, out, &s);
    return LB_OK;
  }
  case LB_OP_QMATMUL: return infer_qmatmul(n, d);
  default: LB_ASSERT(!"not a quant op");
  }
  return LB_OK;
}

/* ---- entry point ---------------------------------------------------------------------- */

typedef enum lb_status (*infer_fn)(struct lb_graph *, struct lb_node *, struct lb_diag *);

static enum lb_status infer_frontend_only(struct lb_graph *g, struct lb_node *n, struct lb_diag *d) {
  (void)g;
  return frontend_only(n, d);
}

static const infer_fn family_rules[LB_KIND_COUNT] = {
    [LB_KIND_CONST] = infer_const,   [LB_KIND_UNARY] = infer_unary,
    [LB_KIND_BINARY] = infer_binary, [LB_KIND_REDUCE] = infer_reduce,
    [LB_KIND_NORM] = infer_norm,     [LB_KIND_MATMUL] = infer_matmul,
    [LB_KIND_CONV] = infer_window,   [LB_KIND_POOL] = infer_window,
    [LB_KIND_MOVE] = infer_move,     [LB_KIND_SHAPE] = infer_frontend_only,
    [LB_KIND_QUANT] = infer_quant,
};

/* lb_infer_node: checks n's arity, that every required input is present and
 * typed, then applies its family's rule, which validates dtypes, shapes and
 * attributes and writes every output type. Finally every output's element count
 * is checked against 2^40 (LB_ERR_LIMIT). Errors are LB_ERR_INVALID unless
 * noted; the outputs' types are unspecified after an error. */
enum lb_status lb_infer_node(struct lb_graph *g, struct lb_node *n, struct lb_diag *d) {
  const struct lb_op_info *info = &lb_op_info[n->op];
  LB_ASSERT((unsigned)n->op < LB_OP_COUNT);
  if (info->kind == LB_KIND_SHAPE) return frontend_only(n, d);
  /* ops.def gives ONNX's arity; canonical forms fold some inputs into attributes */
  int32_t min_inputs = n->op == LB_OP_EXPAND ? 1 : info->min_inputs;
  if (n->n_inputs < min_inputs || (info->max_inputs >= 0 && n->n_inputs > info->max_inputs))
    return ERR("has %d inputs but %s takes %d..%d", n->n_inputs, info->ir_name, min_inputs,
               info->max_inputs);
  if (n->n_outputs < info->min_outputs ||
      (info->max_outputs >= 0 && n->n_outputs > info->max_outputs))
    return ERR("has %d outputs but %s makes %d..%d", n->n_outputs, info->ir_name,
               info->min_outputs, info->max_outputs);
  for (int32_t i = 0; i < n->n_inputs; i++) {
    const struct lb_value *v = n->inputs[i];
    if (!v) {
      if (i < min_inputs) return ERR("required input %d is missing", i);
      continue;
    }
    if (v->type.dtype == LB_DTYPE_UNDEF || v->type.dtype >= LB_DTYPE_COUNT)
      return ERR("input %d (%%%s) has no type yet", i, v->name);
    if (v->type.shape.rank < 0 || v->type.shape.rank > LB_MAX_RANK)
      return ERR("input %d (%%%s) has invalid rank %d", i, v->name, v->type.shape.rank);
  }
  TRY(family_rules[info->kind](g, n, d));
  for (int32_t i = 0; i < n->n_outputs; i++) {
    int64_t numel;
    const struct lb_type *t = &n->outputs[i]->type;
    if (!lb_shape_numel_checked(&t->shape, LB_MAX_NUMEL, &numel))
      return lb_diag_error(d, LB_ERR_LIMIT, n,
                           "output %d would have type %s: more than 2^40 elements", i,
                           type_str(t).s);
  }
  return LB_OK;
}
