/* fuse.c: replace multi-node patterns by one fused node.
 *
 * Patterns (matched at their last node, which is rewritten in place so the
 * pattern's result keeps its value and name; the other nodes die):
 *   1. matmul(x, W) or gemm(x, W) + add(bias)      -> fused_matmul(x, W, bias) {act="none"}
 *      gemm(x, W, c) with c a bias vector          -> fused_matmul(x, W, c)
 *   2. fused_matmul/matmul/gemm + relu|sigmoid|tanh|gelu
 *                                                  -> fused_matmul {act=...}
 *   3. x * 0.5 * (1 + erf(x / sqrt(2)))            -> gelu(x) {approximate="none"}
 *      0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 * x^3)))
 *                                                  -> gelu(x) {approximate="tanh"}
 *   4. (x - mean(x)) / sqrt(mean((x - mean(x))^2) + eps) * gamma + beta over the
 *      last axis                                   -> layer_norm(x, gamma, beta)
 *   5. exp(x - reduce_max(x)) / reduce_sum(exp(...)) over one axis -> softmax(x)
 * These are the node chains torch.onnx (opset 17) writes for F.gelu, nn.Linear,
 * a hand-written LayerNorm and softmax (see tests/lit/passes/fuse.lbir).
 *
 * Why it is safe: every node a pattern removes must have no reader outside the
 * pattern (use counts; a returned value counts as a reader), every
 * intermediate value must have the shape and element type of the pattern's
 * input (so no broadcasting hides inside), constants must be splats of the
 * expected value (within 1e-4 relative, as exporters round them to float),
 * gemm is only taken with alpha = 1 (and beta = 1 with a bias) and transA = 0,
 * and a bias must be a constant [N] (or [1,..,1,N]) matching the output's
 * last dim. The fused ops compute the same function; only rounding differs.
 *
 * Products are matched as trees: "flatten" walks a product through single-use
 * mul nodes, divisions by constants and pow(y, 2|3), collecting constant
 * factors into one coefficient and the rest as leaves, so all the orders in
 * which exporters write 0.5 * x * (...) or x*x*x match the same way.
 */
#include "passes/pass.h"
#include "passes/rewrite.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define TOL 1e-4
#define MAX_LEAVES 8
#define MAX_KILL 32

struct fuse {
  struct lb_graph *g;
  int32_t *uses;
  struct lb_node *kill[MAX_KILL]; /* nodes that die when the current match commits */
  int32_t n_kill;
};

static void refresh_uses(struct fuse *f) {
  free(f->uses);
  f->uses = lb_rw_count_uses(f->g);
}

static bool single_use(const struct fuse *f, const struct lb_value *v) {
  return v && f->uses[v->id] == 1 && !lb_rw_is_graph_output(f->g, v);
}

static bool kill_push(struct fuse *f, struct lb_node *n) {
  if (f->n_kill >= MAX_KILL) return false;
  for (int32_t i = 0; i < f->n_kill; i++)
    if (f->kill[i] == n) return true;
  f->kill[f->n_kill++] = n;
  return true;
}

/* A single-use live node of op `op` producing v, recorded for removal. */
static struct lb_node *take(struct fuse *f, struct lb_value *v, enum lb_op op) {
  struct lb_node *n = lb_rw_producer(v, op);
  if (!n || !single_use(f, v) || !kill_push(f, n)) return NULL;
  return n;
}

static bool same_type(const struct lb_type *a, const struct lb_type *b) {
  return a->dtype == b->dtype && lb_shape_equal(&a->shape, &b->shape);
}

static bool splat_near(const struct fuse *f, const struct lb_value *v, double want) {
  double x;
  return lb_rw_const_splat(f->g, v, &x) && lb_rw_near(x, want, TOL);
}

/* ---- products as trees -------------------------------------------------------- */
struct product {
  double coef;
  struct lb_value *leaf[MAX_LEAVES];
  int32_t n;
  bool ok;
};

static void add_leaf(struct product *p, struct lb_value *v) {
  if (p->n >= MAX_LEAVES) {
    p->ok = false;
    return;
  }
  p->leaf[p->n++] = v;
}

/* Collects the factors of v: constants into coef, the rest into leaves. Only
 * expands nodes with a single use (or the root) whose type is `t`. */
static void flatten(struct fuse *f, struct lb_value *v, bool root, const struct lb_type *t,
                    struct product *p) {
  double c;
  if (!p->ok) return;
  if (lb_rw_const_splat(f->g, v, &c) && v->type.dtype == t->dtype) {
    p->coef *= c;
    return;
  }
  struct lb_node *n = v->producer;
  bool expandable = n && !n->dead && same_type(&v->type, t) && (root || single_use(f, v));
  if (expandable && n->op == LB_OP_MUL && n->n_inputs == 2) {
    if (!root && !kill_push(f, n)) p->ok = false;
    flatten(f, n->inputs[0], false, t, p);
    flatten(f, n->inputs[1], false, t, p);
    return;
  }
  if (expandable && n->op == LB_OP_DIV && lb_rw_const_splat(f->g, n->inputs[1], &c) && c != 0 &&
      n->inputs[1]->type.dtype == t->dtype) {
    if (!root && !kill_push(f, n)) p->ok = false;
    p->coef /= c;
    flatten(f, n->inputs[0], false, t, p);
    return;
  }
  if (expandable && !root && n->op == LB_OP_POW && lb_rw_const_splat(f->g, n->inputs[1], &c) &&
      (c == 2 || c == 3) && same_type(&n->inputs[0]->type, t)) {
    if (!kill_push(f, n)) p->ok = false;
    for (int i = 0; i < (int)c; i++) add_leaf(p, n->inputs[0]);
    return;
  }
  add_leaf(p, v);
}

static struct product product_of(struct fuse *f, struct lb_value *v, bool root,
                                 const struct lb_type *t) {
  struct product p = {.coef = 1.0, .ok = true};
  flatten(f, v, root, t, &p);
  return p;
}

/* ---- 3. GELU -------------------------------------------------------------------- */
/* 1 + T(s) with T = erf or tanh: returns s, or NULL. */
static struct lb_value *one_plus(struct fuse *f, struct lb_value *a, enum lb_op op,
                                 const struct lb_type *t) {
  struct lb_node *add = take(f, a, LB_OP_ADD);
  if (!add || !same_type(&a->type, t)) return NULL;
  for (int side = 0; side < 2; side++) {
    struct lb_node *un = lb_rw_producer(add->inputs[side], op);
    if (un && splat_near(f, add->inputs[1 - side], 1.0) && take(f, add->inputs[side], op) &&
        same_type(&un->inputs[0]->type, t))
      return un->inputs[0];
  }
  return NULL;
}

static bool match_gelu(struct fuse *f, struct lb_node *root, struct lb_value **x_out,
                       const char **approx) {
  struct lb_value *y = root->outputs[0];
  if (root->op != LB_OP_MUL || !lb_dtype_traits[y->type.dtype].is_float) return false;
  struct product p = product_of(f, y, true, &y->type);
  if (!p.ok || p.n != 2 || !lb_rw_near(p.coef, 0.5, TOL)) return false;
  int32_t kill_mark = f->n_kill;
  for (int i = 0; i < 2; i++) {
    struct lb_value *x = p.leaf[i], *a = p.leaf[1 - i];
    if (lb_value_is_const(x)) continue;
    f->n_kill = kill_mark;
    struct lb_value *s = one_plus(f, a, LB_OP_ERF, &y->type);
    if (s) { /* erf(x / sqrt(2)) */
      struct product q = product_of(f, s, false, &y->type);
      if (q.ok && q.n == 1 && q.leaf[0] == x && lb_rw_near(q.coef, M_SQRT1_2, TOL)) {
        *x_out = x;
        *approx = "none";
        return true;
      }
      continue;
    }
    f->n_kill = kill_mark;
    s = one_plus(f, a, LB_OP_TANH, &y->type);
    if (!s) continue;
    /* tanh(sqrt(2/pi) * (x + 0.044715 * x^3)) */
    struct product q = product_of(f, s, false, &y->type);
    if (!q.ok || q.n != 1 || !lb_rw_near(q.coef, sqrt(2.0 / M_PI), TOL)) continue;
    struct lb_node *add = take(f, q.leaf[0], LB_OP_ADD);
    if (!add) continue;
    for (int side = 0; side < 2; side++) {
      if (add->inputs[side] != x) continue;
      struct product cube = product_of(f, add->inputs[1 - side], false, &y->type);
      if (cube.ok && cube.n == 3 && cube.leaf[0] == x && cube.leaf[1] == x && cube.leaf[2] == x &&
          lb_rw_near(cube.coef, 0.044715, TOL)) {
        *x_out = x;
        *approx = "tanh";
        return true;
      }
    }
  }
  return false;
}

/* ---- bias vectors ------------------------------------------------------------- */
/* Whether v can serve as a [n] vector (bias, scale) for an output of dtype
 * dt: v is [n], or a const [1,..,1,n] that make_vector can reshape. */
static bool vector_ok(const struct fuse *f, const struct lb_value *v, int64_t n, enum lb_dtype dt,
                      bool need_const) {
  if (!v || v->type.dtype != dt) return false;
  const struct lb_shape *s = &v->type.shape;
  if (s->rank < 1 || s->dims[s->rank - 1] != n) return false;
  for (int32_t i = 0; i + 1 < s->rank; i++)
    if (s->dims[i] != 1) return false;
  if (need_const && !lb_value_is_const(v)) return false;
  if (s->rank == 1) return true;
  return lb_value_is_const(v) && (single_use(f, v) || lb_value_const_data(f->g, v));
}

/* v (vector_ok) as a [n] value: itself, reshaped in place when its only
 * reader is the pattern being replaced, or a reshaped copy inserted before root. */
static struct lb_value *make_vector(struct fuse *f, struct lb_node *root, struct lb_value *v,
                                    int64_t n) {
  if (v->type.shape.rank == 1) return v;
  struct lb_type t = {.dtype = v->type.dtype, .shape = {.rank = 1, .dims = {n}}};
  if (single_use(f, v)) {
    v->type = t;
    return v;
  }
  struct lb_node *c = lb_graph_insert_const(f->g, root, v->name, &t, lb_value_const_data(f->g, v));
  return c->outputs[0];
}

/* ---- 1, 2. matmul + bias + activation ------------------------------------------- */
/* A matmul/gemm node that fused_matmul can express (without a gemm bias). */
static bool plain_matmul(const struct lb_node *n, int64_t *trans_b) {
  if (n->op == LB_OP_FUSED_MATMUL) {
    *trans_b = lb_node_attr_int(n, "transB", 0);
    return (n->n_inputs == 2 || !n->inputs[2]) &&
           strcmp(lb_node_attr_string(n, "act", "none"), "none") == 0;
  }
  if (n->op == LB_OP_MATMUL) {
    *trans_b = 0;
    return n->inputs[0]->type.shape.rank >= 2 && n->inputs[1]->type.shape.rank == 2;
  }
  if (n->op == LB_OP_GEMM) {
    *trans_b = lb_node_attr_int(n, "transB", 0);
    return (n->n_inputs == 2 || !n->inputs[2]) && lb_node_attr_float(n, "alpha", 1.0) == 1.0 &&
           lb_node_attr_int(n, "transA", 0) == 0;
  }
  return false;
}

static void make_fused_matmul(struct fuse *f, struct lb_node *root, struct lb_value *a,
                              struct lb_value *b, struct lb_value *bias, const char *act,
                              int64_t trans_b, const char *name) {
  struct lb_value *in[3] = {a, b, bias};
  lb_rw_reset_node(f->g, root, LB_OP_FUSED_MATMUL, in, bias ? 3 : 2);
  lb_node_set_attr_string(f->g, root, "act", act);
  lb_node_set_attr_int(f->g, root, "transB", trans_b);
  if (name && *name) root->name = name;
}

static bool fuse_bias(struct fuse *f, struct lb_node *root) {
  struct lb_value *y = root->outputs[0];
  for (int side = 0; side < 2; side++) {
    f->n_kill = 0;
    struct lb_value *mv = root->inputs[side];
    struct lb_node *mm = lb_rw_producer(mv, mv && mv->producer ? mv->producer->op : LB_OP_COUNT);
    int64_t trans_b;
    if (!mm || !plain_matmul(mm, &trans_b) || !same_type(&mv->type, &y->type)) continue;
    if (!take(f, mv, mm->op)) continue;
    int64_t n = y->type.shape.dims[y->type.shape.rank - 1];
    struct lb_value *bias = root->inputs[1 - side];
    if (!bias || bias->type.shape.rank > y->type.shape.rank) continue;
    if (!vector_ok(f, bias, n, y->type.dtype, true)) continue;
    bias = make_vector(f, root, bias, n);
    make_fused_matmul(f, root, mm->inputs[0], mm->inputs[1], bias, "none", trans_b, mm->name);
    return true;
  }
  return false;
}

static bool fuse_gemm_bias(struct fuse *f, struct lb_node *root) {
  f->n_kill = 0;
  struct lb_value *y = root->outputs[0], *c = root->n_inputs == 3 ? root->inputs[2] : NULL;
  if (!c || lb_node_attr_float(root, "alpha", 1.0) != 1.0 ||
      lb_node_attr_float(root, "beta", 1.0) != 1.0 || lb_node_attr_int(root, "transA", 0) != 0)
    return false;
  int64_t n = y->type.shape.dims[y->type.shape.rank - 1];
  if (!vector_ok(f, c, n, y->type.dtype, true)) return false;
  struct lb_value *bias = make_vector(f, root, c, n);
  make_fused_matmul(f, root, root->inputs[0], root->inputs[1], bias, "none",
                    lb_node_attr_int(root, "transB", 0), NULL);
  return true;
}

static const char *act_name(const struct lb_node *n) {
  switch (n->op) {
  case LB_OP_RELU: return "relu";
  case LB_OP_SIGMOID: return "sigmoid";
  case LB_OP_TANH: return "tanh";
  case LB_OP_GELU: {
    const char *a = lb_node_attr_string(n, "approximate", "none");
    if (strcmp(a, "none") == 0) return "gelu";
    if (strcmp(a, "tanh") == 0) return "gelu_tanh";
    return NULL;
  }
  default: return NULL;
  }
}

static bool fuse_act(struct fuse *f, struct lb_node *root) {
  f->n_kill = 0;
  const char *act = act_name(root);
  struct lb_value *v = root->inputs[0];
  if (!act || !v || !v->producer || !same_type(&v->type, &root->outputs[0]->type)) return false;
  struct lb_node *mm = take(f, v, v->producer->op);
  if (!mm) return false;
  int64_t trans_b;
  if (mm->op == LB_OP_FUSED_MATMUL &&
      strcmp(lb_node_attr_string(mm, "act", "none"), "none") == 0) {
    make_fused_matmul(f, root, mm->inputs[0], mm->inputs[1],
                      mm->n_inputs == 3 ? mm->inputs[2] : NULL, act,
                      lb_node_attr_int(mm, "transB", 0), mm->name);
    return true;
  }
  if (plain_matmul(mm, &trans_b)) {
    make_fused_matmul(f, root, mm->inputs[0], mm->inputs[1], NULL, act, trans_b, mm->name);
    return true;
  }
  return false;
}

/* ---- 4. LayerNorm ---------------------------------------------------------------- */
static bool is_last_axis_reduce(const struct lb_node *n, int32_t rank) {
  const struct lb_attr *axes = lb_node_attr(n, "axes");
  return n->n_inputs == 1 && axes && axes->kind == LB_ATTR_INTS && axes->n == 1 &&
         axes->ints[0] == rank - 1 && lb_node_attr_int(n, "keepdims", 1) == 1;
}

static bool fuse_layer_norm(struct fuse *f, struct lb_node *root) {
  struct lb_value *y = root->outputs[0];
  int32_t rank = y->type.shape.rank;
  if (rank < 1 || !lb_dtype_traits[y->type.dtype].is_float) return false;
  int64_t c = y->type.shape.dims[rank - 1];
  for (int bside = 0; bside < 2; bside++) {
    for (int gside = 0; gside < 2; gside++) {
      f->n_kill = 0;
      struct lb_node *mul = take(f, root->inputs[bside], LB_OP_MUL);
      if (!mul || !same_type(&mul->outputs[0]->type, &y->type)) continue;
      struct lb_node *div = take(f, mul->inputs[gside], LB_OP_DIV);
      if (!div || !same_type(&div->outputs[0]->type, &y->type)) continue;
      struct lb_node *sub = lb_rw_producer(div->inputs[0], LB_OP_SUB);
      struct lb_node *sq = take(f, div->inputs[1], LB_OP_SQRT);
      if (!sub || !sq || !kill_push(f, sub)) continue;
      struct lb_value *x = sub->inputs[0], *d = sub->outputs[0];
      if (!same_type(&x->type, &y->type) || !same_type(&d->type, &y->type)) continue;
      struct lb_node *mean = take(f, sub->inputs[1], LB_OP_REDUCE_MEAN);
      if (!mean || mean->inputs[0] != x || !is_last_axis_reduce(mean, rank)) continue;
      struct lb_node *add_eps = take(f, sq->inputs[0], LB_OP_ADD);
      if (!add_eps) continue;
      struct lb_node *var = NULL;
      double eps = 0;
      for (int s = 0; s < 2 && !var; s++)
        if (lb_rw_const_splat(f->g, add_eps->inputs[1 - s], &eps) && eps >= 0)
          var = take(f, add_eps->inputs[s], LB_OP_REDUCE_MEAN);
      if (!var || !is_last_axis_reduce(var, rank)) continue;
      /* (x - mean)^2: pow(d, 2) or d * d; d is read there and by the div only */
      struct lb_value *sqv = var->inputs[0];
      struct lb_node *pw = lb_rw_producer(sqv, LB_OP_POW), *mm = lb_rw_producer(sqv, LB_OP_MUL);
      double e;
      int32_t d_uses;
      if (pw && pw->inputs[0] == d && lb_rw_const_splat(f->g, pw->inputs[1], &e) && e == 2.0)
        d_uses = 2;
      else if (mm && mm->inputs[0] == d && mm->inputs[1] == d)
        d_uses = 3;
      else
        continue;
      if (!take(f, sqv, pw && d_uses == 2 ? LB_OP_POW : LB_OP_MUL)) continue;
      if (f->uses[d->id] != d_uses || lb_rw_is_graph_output(f->g, d)) continue;
      struct lb_value *gamma = mul->inputs[1 - gside], *beta = root->inputs[1 - bside];
      if (gamma == beta || !vector_ok(f, gamma, c, y->type.dtype, false) ||
          !vector_ok(f, beta, c, y->type.dtype, false))
        continue;
      gamma = make_vector(f, root, gamma, c);
      beta = make_vector(f, root, beta, c);
      struct lb_value *in[3] = {x, gamma, beta};
      lb_rw_reset_node(f->g, root, LB_OP_LAYER_NORM, in, 3);
      lb_node_set_attr_int(f->g, root, "axis", rank - 1);
      lb_node_set_attr_float(f->g, root, "epsilon", eps);
      return true;
    }
  }
  return false;
}

/* ---- 5. Softmax ------------------------------------------------------------------- */
static bool one_axis(const struct lb_node *n, int64_t *axis) {
  const struct lb_attr *axes = lb_node_attr(n, "axes");
  if (n->n_inputs != 1 || !axes || axes->kind != LB_ATTR_INTS || axes->n != 1 ||
      lb_node_attr_int(n, "keepdims", 1) != 1)
    return false;
  *axis = axes->ints[0];
  return true;
}

static bool fuse_softmax(struct fuse *f, struct lb_node *root) {
  f->n_kill = 0;
  struct lb_value *y = root->outputs[0];
  if (!lb_dtype_traits[y->type.dtype].is_float) return false;
  struct lb_value *ev = root->inputs[0];
  struct lb_node *ex = lb_rw_producer(ev, LB_OP_EXP);
  struct lb_node *sum = take(f, root->inputs[1], LB_OP_REDUCE_SUM);
  int64_t axis, max_axis;
  if (!ex || !sum || sum->inputs[0] != ev || !one_axis(sum, &axis)) return false;
  if (f->uses[ev->id] != 2 || lb_rw_is_graph_output(f->g, ev) || !kill_push(f, ex)) return false;
  struct lb_value *x = ex->inputs[0];
  struct lb_node *sub = lb_rw_producer(x, LB_OP_SUB);
  if (sub && single_use(f, x)) { /* exp(x - reduce_max(x)): the usual stable form */
    struct lb_node *mx = lb_rw_producer(sub->inputs[1], LB_OP_REDUCE_MAX);
    if (mx && mx->inputs[0] == sub->inputs[0] && one_axis(mx, &max_axis) && max_axis == axis &&
        single_use(f, sub->inputs[1])) {
      kill_push(f, sub);
      kill_push(f, mx);
      x = sub->inputs[0];
    }
  }
  if (!same_type(&x->type, &y->type) || !same_type(&ev->type, &y->type)) return false;
  lb_rw_reset_node(f->g, root, LB_OP_SOFTMAX, &x, 1);
  lb_node_set_attr_int(f->g, root, "axis", axis);
  return true;
}

/* ---- driver ------------------------------------------------------------------------ */
static bool try_fuse(struct fuse *f, struct lb_node *n) {
  struct lb_value *x;
  const char *approx;
  switch (n->op) {
  case LB_OP_MUL:
    f->n_kill = 0;
    if (match_gelu(f, n, &x, &approx)) {
      lb_rw_reset_node(f->g, n, LB_OP_GELU, &x, 1);
      lb_node_set_attr_string(f->g, n, "approximate", approx);
      return true;
    }
    return false;
  case LB_OP_ADD:
    return fuse_layer_norm(f, n) || fuse_bias(f, n);
  case LB_OP_DIV:
    return fuse_softmax(f, n);
  case LB_OP_GEMM:
    return fuse_gemm_bias(f, n);
  case LB_OP_RELU: case LB_OP_SIGMOID: case LB_OP_TANH: case LB_OP_GELU:
    return fuse_act(f, n);
  default:
    return false;
  }
}

enum lb_status lb_pass_fuse(struct lb_graph *g, struct lb_pass_context *ctx) {
  struct fuse f = {.g = g};
  refresh_uses(&f);
  bool fused = false;
  for (int32_t i = 0; i < g->n_nodes; i++) {
    struct lb_node *n = g->nodes[i];
    if (n->dead || n->n_outputs != 1) continue;
    if (!try_fuse(&f, n)) continue;
    for (int32_t k = 0; k < f.n_kill; k++) f.kill[k]->dead = true;
    fused = true;
    refresh_uses(&f);
    i--; /* the rewritten node may fuse again (a new gelu into its matmul) */
  }
  free(f.uses);
  if (fused) {
    ctx->changed = true;
    lb_graph_compact(g);
  }
  return LB_OK;
}
