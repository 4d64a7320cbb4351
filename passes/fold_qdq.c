/* fold_qdq.c: quantized ONNX models (onnxruntime's QDQ and QOperator forms)
 * onto the native int8 matmul, qmatmul (contract in docs/ir-ops.md).
 *
 *   QDQ:  matmul(dequantize_linear(xq, s, z), dequantize_linear(Wq, sw, zw))
 *     ->  qmatmul(xq, Wq') {a_quant="static"}, the 8-bit xq (the activation's
 *         QuantizeLinear output) carrying q<scale=s, zp=z>; likewise gemm with
 *         alpha 1, transA 0, transB 0 or 1 (Wq [N,K], per-channel scales on
 *         axis 0, transposed at compile time) and beta 1 with a constant f32 C
 *         of N elements (onnxruntime's int32 bias DQ, folded at import) as bias
 *   QOperator: qlinear_matmul(a, sa, za, Wq, sw, zw, sy, zy)
 *     ->  qmatmul(a, Wq') {a_quant="static"}, a (i8/u8) carrying q<sa, za>,
 *         the i8/u8 output carrying q<sy, zy> (requantizing epilogue)
 *
 * Wq is a constant 8-bit [K,N] weight with a per-tensor scale or one scale per
 * column (axis 1 / -1) and zero points that make it symmetric: all 0 for int8,
 * all 128 for uint8 (then Wq' = Wq - 128 as int8, exact). Anything else (zero
 * points that are not those, 4-bit or blocked weights) stays as it is: the
 * dequantized constant runs in float. Both forms are exact rewrites of the ONNX
 * semantics: qmatmul reads the activation's 8-bit values themselves, the dot
 * products of 8-bit integers are exact in i32, and the float result is the same
 * sum of products scaled by s*sw (rounded once).
 *
 * What follows the matmul is not touched: onnxruntime's models quantize the
 * matmul output again (Q -> DQ), and keeping that pair reproduces its
 * requantization. A matmul whose only use is `add` of a constant f32[N]
 * (a Gemm-like bias) takes it as qmatmul's bias.
 *
 *   quantize_linear(add(DQ(a), DQ(b))) -> the arithmetic of onnxruntime's
 *     QLinearAdd (see fold_add; pass argument add=ort, the default, or
 *     add=float to leave it)
 *
 * The pass must run before fold-constants (which would turn the weight's
 * dequantize_linear into a float constant); it changes nothing in a float model.
 * The quantize/dequantize nodes it bypasses are left for dce.
 */
#include "passes/pass.h"
#include "passes/rewrite.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* A per-tensor (scale, zero point) pair read from constant scalars. */
struct qpair {
  float scale;
  int32_t zp;
  bool is_unsigned;
};

static bool numel_one(const struct lb_value *v) {
  return v && lb_shape_numel(&v->type.shape) == 1;
}

/* (scale, zp) of a quantize/dequantize node, when both are constant scalars
 * (zp omitted = 0 of type int8, or of the node's 8-bit data type). */
static bool const_qpair(const struct lb_graph *g, const struct lb_value *scale,
                        const struct lb_value *zp, enum lb_dtype data_dt, struct qpair *out) {
  double s, z = 0;
  if (!numel_one(scale) || scale->type.dtype != LB_DTYPE_F32 || !lb_rw_const_splat(g, scale, &s))
    return false;
  enum lb_dtype zdt = zp ? zp->type.dtype : data_dt;
  if (zdt != LB_DTYPE_U8 && zdt != LB_DTYPE_I8) return false;
  if (zp && (!numel_one(zp) || !lb_rw_const_splat(g, zp, &z))) return false;
  if (!(s > 0) || !isfinite(s)) return false;
  *out = (struct qpair){.scale = (float)s, .zp = (int32_t)z, .is_unsigned = zdt == LB_DTYPE_U8};
  return true;
}

static struct lb_qparams *per_tensor_qparams(struct lb_graph *g, const struct qpair *p) {
  struct lb_qparams *q = lb_arena_alloc(&g->arena, sizeof *q);
  *q = (struct lb_qparams){.bits = 8,
                           .axis = -1,
                           .symmetric = p->zp == 0 && !p->is_unsigned,
                           .is_unsigned = p->is_unsigned,
                           .n = 1};
  q->scales = lb_arena_alloc(&g->arena, sizeof *q->scales);
  q->scales[0] = p->scale;
  if (!q->symmetric) {
    q->zero_points = lb_arena_alloc(&g->arena, sizeof *q->zero_points);
    q->zero_points[0] = p->zp;
  }
  return q;
}

/* v has no qparams yet, or exactly the per-tensor ones p. */
static bool qparams_fit(const struct lb_value *v, const struct qpair *p) {
  const struct lb_qparams *q = v->qparams;
  return !q ||
         (q->bits == 8 && q->n == 1 && q->axis == -1 && q->scales[0] == p->scale &&
          (q->zero_points ? q->zero_points[0] : 0) == p->zp && q->is_unsigned == p->is_unsigned);
}

static void claim_qparams(struct lb_graph *g, struct lb_value *v, const struct qpair *p) {
  if (!v->qparams) v->qparams = per_tensor_qparams(g, p);
}

/* The weight operands (Wq, sw, zw, axis) as a symmetric int8 const with
 * qparams, inserted before `before`; NULL when they do not fit. */
static struct lb_value *int8_weight(struct lb_graph *g, struct lb_node *before, struct lb_value *wq,
                                    struct lb_value *sw, struct lb_value *zw, int64_t axis,
                                    bool trans) {
  const struct lb_shape *ws = &wq->type.shape;
  if (ws->rank != 2 || (wq->type.dtype != LB_DTYPE_I8 && wq->type.dtype != LB_DTYPE_U8))
    return NULL;
  const void *data = lb_value_const_data(g, wq);
  const float *scales = sw ? lb_value_const_data(g, sw) : NULL;
  if (!data || !scales || sw->type.dtype != LB_DTYPE_F32) return NULL;
  /* trans: wq is [N,K] (Gemm's transB) with its per-channel scales along axis 0 */
  int64_t k = ws->dims[trans ? 1 : 0], n = ws->dims[trans ? 0 : 1];
  int64_t n_scales = lb_shape_numel(&sw->type.shape);
  bool axis_ok = trans ? axis == 0 || axis == -2 : axis == 1 || axis == -1;
  if (n_scales != 1 && !(n_scales == n && sw->type.shape.rank == 1 && axis_ok)) return NULL;
  if (zw && (zw->type.dtype != wq->type.dtype || lb_shape_numel(&zw->type.shape) != n_scales))
    return NULL;
  int32_t zero = wq->type.dtype == LB_DTYPE_U8 ? 128 : 0;
  const void *zdata = zw ? lb_value_const_data(g, zw) : NULL;
  if (zw && !zdata) return NULL;
  for (int64_t j = 0; j < n_scales; j++) {
    double z = 0;
    if (zdata && !lb_rw_load_double(zw->type.dtype, zdata, j, &z)) return NULL;
    if ((int32_t)z != (zdata ? zero : 0) || !(scales[j] > 0) || !isfinite(scales[j])) return NULL;
  }
  if (!zdata && zero) return NULL; /* uint8 without zero point means zp 0: not symmetric */
  int8_t *q = malloc((size_t)(k * n));
  if (!q) abort();
  for (int64_t kk = 0; kk < k; kk++)
    for (int64_t j = 0; j < n; j++) {
      int64_t src = trans ? j * k + kk : kk * n + j;
      q[kk * n + j] = zero ? (int8_t)((int32_t)((const uint8_t *)data)[src] - 128)
                           : ((const int8_t *)data)[src];
    }
  size_t len = strlen(wq->name) + 4;
  char *base = malloc(len);
  if (!base) abort();
  snprintf(base, len, "%s.q", wq->name);
  struct lb_type t = {.dtype = LB_DTYPE_I8, .shape = {.rank = 2, .dims = {k, n}}};
  struct lb_node *c = lb_graph_insert_const(g, before, lb_graph_unique_name(g, base), &t, q);
  free(base);
  free(q);
  struct lb_qparams *qp = lb_arena_alloc(&g->arena, sizeof *qp);
  *qp = (struct lb_qparams){
      .bits = 8, .axis = n_scales == 1 ? -1 : 1, .symmetric = true, .n = n_scales};
  qp->scales = lb_arena_alloc(&g->arena, sizeof *qp->scales * (size_t)n_scales);
  memcpy(qp->scales, scales, sizeof *qp->scales * (size_t)n_scales);
  c->outputs[0]->qparams = qp;
  return c->outputs[0];
}

static struct lb_value *input(const struct lb_node *n, int32_t i) {
  return i < n->n_inputs ? n->inputs[i] : NULL;
}

/* The f32[N] constant added to n's output when that add is its only use. */
static struct lb_node *bias_add(const struct lb_graph *g, const struct lb_node *n,
                                const int32_t *uses, int32_t n_counted, struct lb_value **bias) {
  struct lb_value *y = n->outputs[0];
  if (y->id >= n_counted || uses[y->id] != 1 || lb_rw_is_graph_output(g, y)) return NULL;
  int64_t cols = y->type.shape.dims[y->type.shape.rank - 1];
  for (int32_t i = 0; i < g->n_nodes; i++) {
    struct lb_node *a = g->nodes[i];
    if (a->dead || a->op != LB_OP_ADD || a->n_inputs != 2) continue;
    int32_t self = a->inputs[0] == y ? 0 : a->inputs[1] == y ? 1 : -1;
    if (self < 0) continue;
    struct lb_value *b = a->inputs[1 - self];
    if (b->type.dtype == LB_DTYPE_F32 && b->type.shape.rank == 1 && b->type.shape.dims[0] == cols &&
        lb_value_const_data(g, b) && a->outputs[0]->type.dtype == LB_DTYPE_F32 &&
        lb_shape_equal(&a->outputs[0]->type.shape, &y->type.shape)) {
      *bias = b;
      return a;
    }
    return NULL;
  }
  return NULL;
}

/* matmul(DQ(xq, s, z), DQ(Wq, sw, zw)) -> qmatmul(xq, Wq') with xq (the 8-bit output of
 * the activation's QuantizeLinear) carrying (s, z); true if rewritten. */
static bool fold_matmul(struct lb_graph *g, struct lb_node *n, const int32_t *uses,
                        int32_t n_counted) {
  bool trans_b = false;
  struct lb_value *c = NULL; /* gemm's C: a constant f32 [N] or [1,N] */
  if (n->op == LB_OP_GEMM) {
    if (lb_node_attr_float(n, "alpha", 1.0) != 1.0 || lb_node_attr_int(n, "transA", 0) != 0)
      return false;
    trans_b = lb_node_attr_int(n, "transB", 0) != 0;
    c = input(n, 2);
    if (c) {
      int64_t cols = n->outputs[0]->type.shape.dims[1];
      const struct lb_shape *cs = &c->type.shape;
      if (lb_node_attr_float(n, "beta", 1.0) != 1.0 || c->type.dtype != LB_DTYPE_F32 ||
          cs->rank < 1 || !lb_value_const_data(g, c) || lb_shape_numel(cs) != cols ||
          cs->dims[cs->rank - 1] != cols)
        return false;
    }
  } else if (n->n_inputs != 2) {
    return false;
  }
  struct lb_node *dqa = lb_rw_producer(n->inputs[0], LB_OP_DEQUANTIZE_LINEAR);
  struct lb_node *dqw = lb_rw_producer(n->inputs[1], LB_OP_DEQUANTIZE_LINEAR);
  if (!dqa || !dqw || n->outputs[0]->type.dtype != LB_DTYPE_F32) return false;
  struct lb_value *x = dqa->inputs[0];
  struct qpair pq;
  if (x->type.shape.rank < 2 || !const_qpair(g, input(dqa, 1), input(dqa, 2), x->type.dtype, &pq) ||
      x->type.dtype != (pq.is_unsigned ? LB_DTYPE_U8 : LB_DTYPE_I8))
    return false;
  if (!lb_value_const_data(g, dqw->inputs[0]) || lb_value_is_const(x) || !qparams_fit(x, &pq))
    return false;
  struct lb_value *w = int8_weight(g, n, dqw->inputs[0], input(dqw, 1), input(dqw, 2),
                                   lb_node_attr_int(dqw, "axis", 1), trans_b);
  if (!w) return false;
  claim_qparams(g, x, &pq);
  struct lb_value *bias = NULL;
  struct lb_node *add = NULL;
  if (c && c->type.shape.rank != 1) { /* [1,N] -> [N] */
    struct lb_type t = {.dtype = LB_DTYPE_F32,
                        .shape = {.rank = 1, .dims = {lb_shape_numel(&c->type.shape)}}};
    bias =
        lb_graph_insert_const(g, n, lb_graph_unique_name(g, c->name), &t, lb_value_const_data(g, c))
            ->outputs[0];
  } else if (c) {
    bias = c;
  } else {
    add = bias_add(g, n, uses, n_counted, &bias);
  }
  struct lb_value *ins[3] = {x, w, bias};
  lb_rw_reset_node(g, n, LB_OP_QMATMUL, ins, bias ? 3 : 2);
  lb_node_set_attr_string(g, n, "a_quant", "static");
  lb_node_set_attr_string(g, n, "act", "none");
  if (add && !lb_rw_forward_value(g, add->outputs[0], n->outputs[0])) {
    /* the add's output cannot be moved onto the qmatmul: keep the add, drop the bias */
    struct lb_value *ins2[2] = {x, w};
    lb_rw_reset_node(g, n, LB_OP_QMATMUL, ins2, 2);
    lb_node_set_attr_string(g, n, "a_quant", "static");
    lb_node_set_attr_string(g, n, "act", "none");
  } else if (add) {
    add->dead = true;
  }
  return true;
}

/* qlinear_matmul(a, sa, za, Wq, sw, zw, sy, zy) with a constant Wq -> qmatmul. */
static bool fold_qlinear_matmul(struct lb_graph *g, struct lb_node *n) {
  struct lb_value *a = n->inputs[0], *y = n->outputs[0];
  struct qpair pa, py;
  if (a->type.shape.rank < 2 || !const_qpair(g, n->inputs[1], n->inputs[2], a->type.dtype, &pa) ||
      !const_qpair(g, n->inputs[6], n->inputs[7], y->type.dtype, &py))
    return false;
  if (!lb_value_const_data(g, n->inputs[3]) || !qparams_fit(a, &pa) || !qparams_fit(y, &py))
    return false;
  /* QLinearMatMul's b scale is per tensor or per column of [K,N] */
  struct lb_value *w = int8_weight(g, n, n->inputs[3], n->inputs[4], n->inputs[5], 1, false);
  if (!w) return false;
  claim_qparams(g, a, &pa);
  claim_qparams(g, y, &py);
  struct lb_value *ins[2] = {a, w};
  lb_rw_reset_node(g, n, LB_OP_QMATMUL, ins, 2);
  lb_node_set_attr_string(g, n, "a_quant", "static");
  lb_node_set_attr_string(g, n, "act", "none");
  return true;
}

/* ---- quantize_linear(add(DQ(a), DQ(b))): onnxruntime's QLinearAdd ---------------------- */

static struct lb_value *add_op(struct lb_graph *g, struct lb_node *before, enum lb_op op,
                               const char *base, struct lb_value *a, struct lb_value *b,
                               enum lb_dtype dt, const struct lb_shape *shape) {
  struct lb_value *ins[2] = {a, b};
  const char *names[1] = {lb_graph_unique_name(g, base)};
  struct lb_node *n = lb_graph_insert_node(g, before, op, before->name, ins, b ? 2 : 1, names, 1);
  n->outputs[0]->type = (struct lb_type){.dtype = dt, .shape = *shape};
  return n->outputs[0];
}

static struct lb_value *cast_to(struct lb_graph *g, struct lb_node *before, struct lb_value *x,
                                enum lb_dtype dt, const char *base) {
  struct lb_value *y = add_op(g, before, LB_OP_CAST, base, x, NULL, dt, &x->type.shape);
  lb_node_set_attr_string(g, y->producer, "to", lb_dtype_traits[dt].name);
  return y;
}

static struct lb_value *scalar_const(struct lb_graph *g, struct lb_node *before, const char *base,
                                     enum lb_dtype dt, double v) {
  struct lb_type t = {.dtype = dt, .shape = {.rank = 0}};
  union {
    float f;
    double d;
    int8_t i8;
    uint8_t u8;
  } u;
  if (dt == LB_DTYPE_F32)
    u.f = (float)v;
  else if (dt == LB_DTYPE_F64)
    u.d = v;
  else if (dt == LB_DTYPE_I8)
    u.i8 = (int8_t)v;
  else
    u.u8 = (uint8_t)v;
  return lb_graph_insert_const(g, before, lb_graph_unique_name(g, base), &t, &u)->outputs[0];
}

/* An operand the QLinearAdd kernel reads whole: the output's shape, or its trailing dims
 * (a row broadcast over leading dims, like a bias). */
static bool whole_operand(const struct lb_shape *s, const struct lb_shape *out) {
  if (s->rank > out->rank) return false;
  for (int32_t i = 0; i < s->rank; i++)
    if (s->dims[s->rank - 1 - i] != out->dims[out->rank - 1 - i]) return false;
  return true;
}

/* Rewrites quantize_linear(add(DQ(qa), DQ(qb))) with per-tensor constant parameters and
 * one 8-bit type into the arithmetic of onnxruntime's x86 AVX2 QLinearAdd kernel, which its
 * graph optimizer puts there: with ra = sa/sc, rb = sb/sc and
 * fixed = zc - fma(ra, za, rb*zb) in f32, y = saturate(rint(fma(qa, ra, fma(qb, rb, fixed))))
 * (a constant scalar qb folds into fixed as fixed + qb*rb). That differs from
 * dequantize-add-quantize only in rounding, but where the scales make exact halves common
 * (erf(x)+1 in GELU: erf's [-1,1] range and its sum's [0,2] range give ties on most
 * elements) the tie-breaking decides a visible part of the output. An fma of an 8-bit
 * integer and an f32 is reproduced exactly in f64 (the product and the sum are exact)
 * and one rounding to f32. */
static bool fold_add(struct lb_graph *g, struct lb_node *q, const int32_t *uses,
                     int32_t n_counted) {
  struct lb_value *sum = q->inputs[0], *y = q->outputs[0];
  struct lb_node *add = lb_rw_producer(sum, LB_OP_ADD);
  if (!add || add->n_inputs != 2 || sum->type.dtype != LB_DTYPE_F32 || sum->id >= n_counted ||
      uses[sum->id] != 1 || lb_rw_is_graph_output(g, sum))
    return false;
  struct qpair pc, pa, pb;
  if (!const_qpair(g, input(q, 1), input(q, 2), y->type.dtype, &pc)) return false;
  struct lb_node *dqa = lb_rw_producer(add->inputs[0], LB_OP_DEQUANTIZE_LINEAR);
  struct lb_node *dqb = lb_rw_producer(add->inputs[1], LB_OP_DEQUANTIZE_LINEAR);
  if (!dqa || !dqb) return false;
  struct lb_value *qa = dqa->inputs[0], *qb = dqb->inputs[0];
  if (qa->type.dtype != y->type.dtype || qb->type.dtype != y->type.dtype ||
      !const_qpair(g, input(dqa, 1), input(dqa, 2), qa->type.dtype, &pa) ||
      !const_qpair(g, input(dqb, 1), input(dqb, 2), qb->type.dtype, &pb))
    return false;
  const struct lb_shape *out = &sum->type.shape;
  if (lb_shape_numel(&qa->type.shape) == 1 &&
      lb_shape_numel(out) > 1) { /* the kernel's scalar is b */
    struct lb_value *tv = qa;
    qa = qb;
    qb = tv;
    struct qpair tp = pa;
    pa = pb;
    pb = tp;
  }
  bool scalar_b = lb_shape_numel(&qb->type.shape) == 1 && lb_shape_numel(out) > 1;
  double b_val = 0;
  /* general form: both operands whole (one may be a row broadcast over leading dims) */
  if (scalar_b ? !lb_shape_equal(&qa->type.shape, out) || !lb_rw_const_splat(g, qb, &b_val)
               : !whole_operand(&qa->type.shape, out) || !whole_operand(&qb->type.shape, out))
    return false;
  float ra = pa.scale / pc.scale, rb = pb.scale / pc.scale;
  float rb_zb = rb * (float)pb.zp;
  float fixed = (float)pc.zp - (float)((double)ra * pa.zp + (double)rb_zb);
  if (scalar_b) {
    float b_rb = (float)b_val * rb;
    fixed = fixed + b_rb;
  }
  struct lb_value *a64 = cast_to(g, q, qa, LB_DTYPE_F64, "qadd.a");
  struct lb_value *t =
      add_op(g, q, LB_OP_MUL, "qadd.a_ra", a64, scalar_const(g, q, "qadd.ra", LB_DTYPE_F64, ra),
             LB_DTYPE_F64, &qa->type.shape);
  struct lb_value *rest;
  if (scalar_b) {
    rest = scalar_const(g, q, "qadd.fixed", LB_DTYPE_F64, fixed);
  } else {
    struct lb_value *b64 = cast_to(g, q, qb, LB_DTYPE_F64, "qadd.b");
    struct lb_value *tb =
        add_op(g, q, LB_OP_MUL, "qadd.b_rb", b64, scalar_const(g, q, "qadd.rb", LB_DTYPE_F64, rb),
               LB_DTYPE_F64, &qb->type.shape);
    struct lb_value *inner = add_op(g, q, LB_OP_ADD, "qadd.inner64", tb,
                                    scalar_const(g, q, "qadd.fixed", LB_DTYPE_F64, fixed),
                                    LB_DTYPE_F64, &qb->type.shape);
    rest = cast_to(g, q, cast_to(g, q, inner, LB_DTYPE_F32, "qadd.inner"), LB_DTYPE_F64,
                   "qadd.inner.f64");
  }
  struct lb_value *s64 = add_op(g, q, LB_OP_ADD, "qadd.sum64", t, rest, LB_DTYPE_F64, out);
  struct lb_value *c = cast_to(g, q, s64, LB_DTYPE_F32, "qadd.sum");
  int64_t axis = lb_node_attr_int(q, "axis", 1);
  struct lb_value *ins[3] = {c, scalar_const(g, q, "qadd.one", LB_DTYPE_F32, 1.0),
                             scalar_const(g, q, "qadd.zero", y->type.dtype, 0)};
  lb_rw_reset_node(g, q, LB_OP_QUANTIZE_LINEAR, ins, 3);
  lb_node_set_attr_int(g, q, "axis", axis);
  return true;
}

enum lb_status lb_pass_fold_qdq(struct lb_graph *g, struct lb_pass_context *ctx) {
  bool changed = false;
  const char *add = lb_pass_arg(ctx, "add");
  if (add && strcmp(add, "ort") != 0 && strcmp(add, "float") != 0)
    return lb_diag_error(ctx->diag, LB_ERR_USAGE, NULL,
                         "pass fold-qdq: add must be \"ort\" or \"float\", not \"%s\"", add);
  bool ort_add = !add || strcmp(add, "ort") == 0;
  int32_t *uses = lb_rw_count_uses(g);
  int32_t n_counted = g->n_values; /* values made by the rewrites are not in uses */
  for (int32_t i = 0; i < g->n_nodes; i++) {
    struct lb_node *n = g->nodes[i];
    if (n->dead) continue;
    bool done = false;
    if (n->op == LB_OP_MATMUL || n->op == LB_OP_GEMM)
      done = fold_matmul(g, n, uses, n_counted);
    else if (n->op == LB_OP_QLINEAR_MATMUL)
      done = fold_qlinear_matmul(g, n);
    else if (n->op == LB_OP_QUANTIZE_LINEAR && ort_add)
      done = fold_add(g, n, uses, n_counted);
    if (done) {
      changed = true;
      while (g->nodes[i] != n) i++; /* the weight const went in before n */
    }
  }
  free(uses);
  if (changed) lb_graph_compact(g);
  ctx->changed = changed;
  return LB_OK;
}
