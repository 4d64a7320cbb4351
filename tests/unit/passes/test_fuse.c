/* Unit tests for passes/fuse.c: the node chains torch.onnx (opset 17) writes. */
#include "helpers.h"

#include <math.h>

/* nn.Linear on a 3-D input: MatMul then Add(bias, mm) (bias first), then Relu. */
static void matmul_bias_relu(void **state) {
  (void)state;
  struct lb_graph *g = lb_graph_new("t");
  struct lb_value *x = input(g, "x", TY(F32, 2, 3, 8));
  struct lb_value *w = splat(g, "w", TY(F32, 8, 4), 0.5f);
  struct lb_value *b = splat(g, "b", TY(F32, 4), 0.25f);
  struct lb_value *mm = op1(g, LB_OP_MATMUL, "/l/MatMul", TY(F32, 2, 3, 4), 2, x, w);
  struct lb_value *ad = op1(g, LB_OP_ADD, "/l/Add", TY(F32, 2, 3, 4), 2, b, mm);
  struct lb_value *y = op1(g, LB_OP_RELU, "y", TY(F32, 2, 3, 4), 1, ad);
  lb_graph_add_output(g, y);
  assert_true(run_pass(g, "fuse"));
  assert_int_equal(g->n_nodes, 3);
  struct lb_node *f = y->producer;
  assert_int_equal(f->op, LB_OP_FUSED_MATMUL);
  assert_ptr_equal(f->inputs[0], x);
  assert_ptr_equal(f->inputs[1], w);
  assert_ptr_equal(f->inputs[2], b);
  assert_string_equal(lb_node_attr_string(f, "act", ""), "relu");
  assert_int_equal(lb_node_attr_int(f, "transB", -1), 0);
  assert_topological(g);
  lb_graph_free(g);
}

/* nn.Linear on a 2-D input: Gemm(x, W, b) {transB=1} then Sigmoid. */
static void gemm_bias_sigmoid(void **state) {
  (void)state;
  struct lb_graph *g = lb_graph_new("t");
  struct lb_value *x = input(g, "x", TY(F32, 2, 8));
  struct lb_value *w = splat(g, "w", TY(F32, 4, 8), 0.5f);
  struct lb_value *b = splat(g, "b", TY(F32, 1, 4), 0.25f);
  struct lb_value *gm = op1(g, LB_OP_GEMM, "gemm", TY(F32, 2, 4), 3, x, w, b);
  lb_node_set_attr_float(g, gm->producer, "alpha", 1.0);
  lb_node_set_attr_float(g, gm->producer, "beta", 1.0);
  lb_node_set_attr_int(g, gm->producer, "transB", 1);
  struct lb_value *y = op1(g, LB_OP_SIGMOID, "y", TY(F32, 2, 4), 1, gm);
  lb_graph_add_output(g, y);
  assert_true(run_pass(g, "fuse"));
  struct lb_node *f = y->producer;
  assert_int_equal(f->op, LB_OP_FUSED_MATMUL);
  assert_int_equal(f->inputs[2]->type.shape.rank, 1); /* [1,4] bias became [4] */
  assert_int_equal(f->inputs[2]->type.shape.dims[0], 4);
  assert_int_equal(lb_node_attr_int(f, "transB", 0), 1);
  assert_string_equal(lb_node_attr_string(f, "act", ""), "sigmoid");
  assert_int_equal(count_op(g, LB_OP_GEMM), 0);
  lb_graph_free(g);
}

/* Not fused: the matmul result has a second reader; the bias is [3,4]. */
static void matmul_bias_negative(void **state) {
  (void)state;
  struct lb_graph *g = lb_graph_new("t");
  struct lb_value *x = input(g, "x", TY(F32, 3, 8));
  struct lb_value *w = splat(g, "w", TY(F32, 8, 4), 0.5f);
  struct lb_value *b = splat(g, "b", TY(F32, 4), 0.25f);
  struct lb_value *b2 = splat(g, "b2", TY(F32, 3, 4), 0.25f);
  struct lb_value *mm = op1(g, LB_OP_MATMUL, "mm", TY(F32, 3, 4), 2, x, w);
  struct lb_value *a = op1(g, LB_OP_ADD, "a", TY(F32, 3, 4), 2, mm, b);
  lb_graph_add_output(g, a);
  lb_graph_add_output(g, mm);
  struct lb_value *mm2 = op1(g, LB_OP_MATMUL, "mm2", TY(F32, 3, 4), 2, x, w);
  lb_graph_add_output(g, op1(g, LB_OP_ADD, "a2", TY(F32, 3, 4), 2, mm2, b2));
  assert_false(run_pass(g, "fuse"));
  assert_int_equal(count_op(g, LB_OP_FUSED_MATMUL), 0);
  lb_graph_free(g);
}

/* F.gelu: Div(x, 1.4142135) -> Erf -> Add 1 -> Mul(x, .) -> Mul(., 0.5) */
static void gelu_erf_torch(void **state) {
  (void)state;
  struct lb_graph *g = lb_graph_new("t");
  struct lb_type t = TY(F32, 2, 8);
  struct lb_value *x = input(g, "x", t);
  struct lb_value *d = op1(g, LB_OP_DIV, "d", t, 2, x, splat(g, "c0", SCALAR(F32), 1.4142135f));
  struct lb_value *e = op1(g, LB_OP_ERF, "e", t, 1, d);
  struct lb_value *a = op1(g, LB_OP_ADD, "a", t, 2, e, splat(g, "c1", SCALAR(F32), 1.0f));
  struct lb_value *m = op1(g, LB_OP_MUL, "m", t, 2, x, a);
  struct lb_value *y = op1(g, LB_OP_MUL, "y", t, 2, m, splat(g, "c2", SCALAR(F32), 0.5f));
  lb_graph_add_output(g, y);
  assert_true(run_pass(g, "fuse"));
  assert_int_equal(y->producer->op, LB_OP_GELU);
  assert_ptr_equal(y->producer->inputs[0], x);
  assert_string_equal(lb_node_attr_string(y->producer, "approximate", ""), "none");
  assert_int_equal(count_op(g, LB_OP_ERF), 0);
  run_pass(g, "dce");
  assert_int_equal(g->n_nodes, 1);
  lb_graph_free(g);
}

/* Hand-written: 0.5 * x first, Mul by 0.70710678 on the other side. */
static void gelu_erf_other_order(void **state) {
  (void)state;
  struct lb_graph *g = lb_graph_new("t");
  struct lb_type t = TY(F32, 4);
  struct lb_value *x = input(g, "x", t);
  struct lb_value *h = op1(g, LB_OP_MUL, "h", t, 2, splat(g, "c2", SCALAR(F32), 0.5f), x);
  struct lb_value *d = op1(g, LB_OP_MUL, "d", t, 2, splat(g, "c0", SCALAR(F32), 0.70710678f), x);
  struct lb_value *e = op1(g, LB_OP_ERF, "e", t, 1, d);
  struct lb_value *a = op1(g, LB_OP_ADD, "a", t, 2, splat(g, "c1", SCALAR(F32), 1.0f), e);
  struct lb_value *y = op1(g, LB_OP_MUL, "y", t, 2, h, a);
  lb_graph_add_output(g, y);
  assert_true(run_pass(g, "fuse"));
  assert_int_equal(y->producer->op, LB_OP_GELU);
  lb_graph_free(g);
}

/* F.gelu(approximate="tanh") as torch writes it. */
static void gelu_tanh_torch(void **state) {
  (void)state;
  struct lb_graph *g = lb_graph_new("t");
  struct lb_type t = TY(F32, 2, 8);
  struct lb_value *x = input(g, "x", t);
  struct lb_value *m0 = op1(g, LB_OP_MUL, "m0", t, 2, x, x);
  struct lb_value *m1 = op1(g, LB_OP_MUL, "m1", t, 2, x, m0);
  struct lb_value *m2 = op1(g, LB_OP_MUL, "m2", t, 2, splat(g, "c0", SCALAR(F32), 0.044715f), m1);
  struct lb_value *a0 = op1(g, LB_OP_ADD, "a0", t, 2, x, m2);
  struct lb_value *m3 = op1(g, LB_OP_MUL, "m3", t, 2,
                            splat(g, "c1", SCALAR(F32), (float)sqrt(2.0 / M_PI)), a0);
  struct lb_value *th = op1(g, LB_OP_TANH, "th", t, 1, m3);
  struct lb_value *a1 = op1(g, LB_OP_ADD, "a1", t, 2, splat(g, "c2", SCALAR(F32), 1.0f), th);
  struct lb_value *m4 = op1(g, LB_OP_MUL, "m4", t, 2, x, a1);
  struct lb_value *y = op1(g, LB_OP_MUL, "y", t, 2, splat(g, "c3", SCALAR(F32), 0.5f), m4);
  lb_graph_add_output(g, y);
  assert_true(run_pass(g, "fuse"));
  assert_int_equal(y->producer->op, LB_OP_GELU);
  assert_string_equal(lb_node_attr_string(y->producer, "approximate", ""), "tanh");
  run_pass(g, "dce");
  assert_int_equal(g->n_nodes, 1);
  lb_graph_free(g);
}

/* Hand-written tanh GELU with Pow(x, 3); but x^3 has a second reader: no fusion. */
static void gelu_tanh_pow_and_negative(void **state) {
  (void)state;
  for (int extra_use = 0; extra_use < 2; extra_use++) {
    struct lb_graph *g = lb_graph_new("t");
    struct lb_type t = TY(F32, 8);
    struct lb_value *x = input(g, "x", t);
    struct lb_value *h = op1(g, LB_OP_MUL, "h", t, 2, x, splat(g, "c0", SCALAR(F32), 0.5f));
    struct lb_value *p = op1(g, LB_OP_POW, "p", t, 2, x, splat(g, "c1", SCALAR(F32), 3.0f));
    struct lb_value *m1 = op1(g, LB_OP_MUL, "m1", t, 2, p, splat(g, "c2", SCALAR(F32), 0.044715f));
    struct lb_value *a0 = op1(g, LB_OP_ADD, "a0", t, 2, x, m1);
    struct lb_value *m2 = op1(g, LB_OP_MUL, "m2", t, 2, a0,
                              splat(g, "c3", SCALAR(F32), 0.7978845608f));
    struct lb_value *th = op1(g, LB_OP_TANH, "th", t, 1, m2);
    struct lb_value *a1 = op1(g, LB_OP_ADD, "a1", t, 2, th, splat(g, "c4", SCALAR(F32), 1.0f));
    struct lb_value *y = op1(g, LB_OP_MUL, "y", t, 2, h, a1);
    lb_graph_add_output(g, y);
    if (extra_use) lb_graph_add_output(g, p);
    assert_int_equal(run_pass(g, "fuse"), !extra_use);
    assert_int_equal(y->producer->op, extra_use ? LB_OP_MUL : LB_OP_GELU);
    lb_graph_free(g);
  }
}

/* Hand-written LayerNorm: ReduceMean, Sub, Pow 2, ReduceMean, Add eps, Sqrt, Div,
 * Mul(gamma, .), Add(., beta). */
static struct lb_graph *layer_norm_graph(bool mul_self, struct lb_value **y_out) {
  struct lb_graph *g = lb_graph_new("t");
  struct lb_type t = TY(F32, 2, 3, 8), r = TY(F32, 2, 3, 1);
  struct lb_value *x = input(g, "x", t);
  struct lb_value *gam = splat(g, "g", TY(F32, 8), 1.5f), *bet = splat(g, "b", TY(F32, 8), 0.5f);
  int64_t axes[1] = {2};
  struct lb_value *mu = op1(g, LB_OP_REDUCE_MEAN, "mu", r, 1, x);
  lb_node_set_attr_ints(g, mu->producer, "axes", axes, 1);
  lb_node_set_attr_int(g, mu->producer, "keepdims", 1);
  struct lb_value *d = op1(g, LB_OP_SUB, "d", t, 2, x, mu);
  struct lb_value *sq = mul_self ? op1(g, LB_OP_MUL, "sq", t, 2, d, d)
                                 : op1(g, LB_OP_POW, "sq", t, 2, d,
                                       splat(g, "two", SCALAR(F32), 2.0f));
  struct lb_value *var = op1(g, LB_OP_REDUCE_MEAN, "var", r, 1, sq);
  lb_node_set_attr_ints(g, var->producer, "axes", axes, 1);
  lb_node_set_attr_int(g, var->producer, "keepdims", 1);
  struct lb_value *ve = op1(g, LB_OP_ADD, "ve", r, 2, var, splat(g, "eps", SCALAR(F32), 1e-5f));
  struct lb_value *sd = op1(g, LB_OP_SQRT, "sd", r, 1, ve);
  struct lb_value *nx = op1(g, LB_OP_DIV, "nx", t, 2, d, sd);
  struct lb_value *sc = op1(g, LB_OP_MUL, "sc", t, 2, gam, nx);
  struct lb_value *y = op1(g, LB_OP_ADD, "y", t, 2, sc, bet);
  lb_graph_add_output(g, y);
  *y_out = y;
  return g;
}

static void layer_norm(void **state) {
  (void)state;
  for (int mul_self = 0; mul_self < 2; mul_self++) {
    struct lb_value *y;
    struct lb_graph *g = layer_norm_graph(mul_self, &y);
    assert_true(run_pass(g, "fuse"));
    struct lb_node *n = y->producer;
    assert_int_equal(n->op, LB_OP_LAYER_NORM);
    assert_string_equal(n->inputs[0]->name, "x");
    assert_string_equal(n->inputs[1]->name, "g");
    assert_string_equal(n->inputs[2]->name, "b");
    assert_int_equal(lb_node_attr_int(n, "axis", -1), 2);
    assert_true(fabs(lb_node_attr_float(n, "epsilon", 0) - 1e-5) < 1e-9);
    run_pass(g, "dce");
    assert_int_equal(g->n_nodes, 3);
    assert_topological(g);
    lb_graph_free(g);
  }
}

static void layer_norm_negative(void **state) {
  (void)state;
  struct lb_value *y;
  struct lb_graph *g = layer_norm_graph(false, &y);
  lb_graph_add_output(g, lb_graph_find_value(g, "d")); /* x - mean escapes */
  assert_false(run_pass(g, "fuse"));
  lb_graph_free(g);
}

/* Hand-written softmax: ReduceMax, Sub, Exp, ReduceSum, Div. */
static void softmax(void **state) {
  (void)state;
  struct lb_graph *g = lb_graph_new("t");
  struct lb_type t = TY(F32, 2, 8), r = TY(F32, 2, 1);
  struct lb_value *x = input(g, "x", t);
  int64_t axes[1] = {1};
  struct lb_value *mx = op1(g, LB_OP_REDUCE_MAX, "mx", r, 1, x);
  lb_node_set_attr_ints(g, mx->producer, "axes", axes, 1);
  lb_node_set_attr_int(g, mx->producer, "keepdims", 1);
  struct lb_value *s = op1(g, LB_OP_SUB, "s", t, 2, x, mx);
  struct lb_value *e = op1(g, LB_OP_EXP, "e", t, 1, s);
  struct lb_value *sum = op1(g, LB_OP_REDUCE_SUM, "sum", r, 1, e);
  lb_node_set_attr_ints(g, sum->producer, "axes", axes, 1);
  lb_node_set_attr_int(g, sum->producer, "keepdims", 1);
  struct lb_value *y = op1(g, LB_OP_DIV, "y", t, 2, e, sum);
  lb_graph_add_output(g, y);
  assert_true(run_pass(g, "fuse"));
  assert_int_equal(y->producer->op, LB_OP_SOFTMAX);
  assert_ptr_equal(y->producer->inputs[0], x);
  assert_int_equal(lb_node_attr_int(y->producer, "axis", -1), 1);
  assert_int_equal(g->n_nodes, 1);
  lb_graph_free(g);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(matmul_bias_relu),
      cmocka_unit_test(gemm_bias_sigmoid),
      cmocka_unit_test(matmul_bias_negative),
      cmocka_unit_test(gelu_erf_torch),
      cmocka_unit_test(gelu_erf_other_order),
      cmocka_unit_test(gelu_tanh_torch),
      cmocka_unit_test(gelu_tanh_pow_and_negative),
      cmocka_unit_test(layer_norm),
      cmocka_unit_test(layer_norm_negative),
      cmocka_unit_test(softmax),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
