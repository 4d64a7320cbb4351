/* test_eltwise.c: elementwise kernels against the reference evaluator. */
#include "cg_test.h"

static const struct run_opts F32_TOL = {.atol = 2e-6, .rtol = 2e-6, .lo = -4, .hi = 4};

static void unary(enum lb_op op, struct lb_type t, double lo, double hi, double tol) {
  struct lb_graph *g = lb_graph_new("u");
  struct lb_value *x = input(g, "x", t);
  struct lb_node *n = mk(g, op, 1, &x, 1);
  finish(g, n);
  struct run_opts ro = F32_TOL;
  ro.lo = lo;
  ro.hi = hi;
  ro.atol = ro.rtol = tol;
  check_graph(g, n, &ro);
  lb_graph_free(g);
}

static void test_unary_f32(void **state) {
  (void)state;
  static const enum lb_op ops[] = {LB_OP_IDENTITY, LB_OP_NEG, LB_OP_ABS, LB_OP_RECIPROCAL, LB_OP_EXP,
                                   LB_OP_ERF, LB_OP_TANH, LB_OP_SIGMOID, LB_OP_RELU, LB_OP_LEAKY_RELU,
                                   LB_OP_HARD_SIGMOID, LB_OP_HARD_SWISH, LB_OP_GELU, LB_OP_SIN, LB_OP_COS,
                                   LB_OP_FLOOR, LB_OP_CEIL};
  for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
    unary(ops[i], TY(F32, 3, 37), -10, 10, 3e-6);
    unary(ops[i], TY(F32, 1000), -2, 2, 3e-6);
  }
  unary(LB_OP_SQRT, TY(F32, 2, 77), 0, 100, 1e-6);
  unary(LB_OP_LOG, TY(F32, 2, 77), 1e-6, 100, 1e-6);
  unary(LB_OP_EXP, TY(F32, 500), -100, 100, 1e-6);
  unary(LB_OP_TANH, TY(F32, 500), -0.7, 0.7, 1e-6);
  unary(LB_OP_SIGMOID, TY(F32, 500), -100, 100, 1e-6);
  unary(LB_OP_ERF, TY(F32, 500), -0.6, 0.6, 1e-6);
}

static void test_unary_f64_int(void **state) {
  (void)state;
  static const enum lb_op ops[] = {LB_OP_NEG, LB_OP_EXP, LB_OP_TANH, LB_OP_ERF, LB_OP_SIGMOID, LB_OP_RELU};
  for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) unary(ops[i], TY(F64, 5, 9), -5, 5, 1e-12);
  unary(LB_OP_LOG, TY(F64, 45), 0.01, 5, 1e-12);
  unary(LB_OP_NEG, TY(I32, 45), -100, 100, 0);
  unary(LB_OP_ABS, TY(I64, 45), -100, 100, 0);
  unary(LB_OP_ABS, TY(I8, 45), -100, 100, 0);
  unary(LB_OP_RELU, TY(I32, 45), -100, 100, 0);
  unary(LB_OP_NOT, TY(BOOL, 45), 0, 1, 0);
}

/* exp/log/tanh/erf/sigmoid accuracy and special values over a dense sweep */
static void test_math_accuracy(void **state) {
  (void)state;
  static const enum lb_op ops[] = {LB_OP_EXP, LB_OP_LOG, LB_OP_TANH, LB_OP_ERF, LB_OP_SIGMOID};
  for (int k = 0; k < 5; k++) {
    struct lb_graph *g = lb_graph_new("m");
    int64_t cnt = 20000;
    struct lb_value *x = input(g, "x", TY(F32, 20000));
    struct lb_node *n = mk(g, ops[k], 1, &x, 1);
    finish(g, n);
    plan_simple(g);
    struct lb_diag d;
    lb_diag_init(&d, "t");
    struct lb_jit *j;
    struct lb_codegen_options o = {.opt_level = 3, .model_name = "m"};
    assert_int_equal(lb_jit_compile(g, &o, &j, &d), LB_OK);
    float *in = xalloc(cnt * 4), *out = xalloc(cnt * 4);
    for (int64_t i = 0; i < cnt; i++) {
      double t = (double)i / (double)(cnt - 1);
      in[i] = ops[k] == LB_OP_LOG ? (float)pow(10.0, -40 + 78 * t) : (float)(-110 + 220 * t);
    }
    in[0] = NAN;
    in[1] = INFINITY;
    in[2] = -INFINITY;
    in[3] = 0.0f;
    in[4] = -0.0f;
    in[5] = 1e-30f;
    in[6] = -1e-30f;
    const void *ins[1] = {in};
    void *outs[1] = {out};
    void *act = xalloc(64);
    assert_int_equal(lb_jit_run(j, ins, outs, act), 0);
    double max_rel = 0;
    for (int64_t i = 0; i < cnt; i++) {
      double xi = in[i], want;
      switch (ops[k]) {
      case LB_OP_EXP: want = exp(xi); break;
      case LB_OP_LOG: want = log(xi); break;
      case LB_OP_TANH: want = tanh(xi); break;
      case LB_OP_ERF: want = erf(xi); break;
      default: want = 1 / (1 + exp(-xi)); break;
      }
      double got = out[i];
      if (isnan(want)) {
        if (!isnan(got)) fprintf(stderr, "%s(%g) = %g, want NaN\n", lb_op_info[ops[k]].ir_name, xi, got);
        assert_true(isnan(got));
        continue;
      }
      if (isinf((float)want) || (float)want == 0 || fabs(want) < 1e-37) {
        want = (float)want;
        if (!(fabs(got - want) <= 1e-37 || got == (float)want))
          fprintf(stderr, "%s(%g) = %g, want %g\n", lb_op_info[ops[k]].ir_name, xi, got, want);
        assert_true(fabs(got - want) <= 1e-37 || got == (float)want);
        continue;
      }
      double rel = fabs(got - want) / fabs(want);
      double abs_ok = ops[k] == LB_OP_ERF ? 2e-7 : 0; /* A&S 7.1.26 is an absolute bound */
      if (fabs(got - want) <= abs_ok) continue;
      if (rel > max_rel) max_rel = rel;
      if (rel > 4e-7) fprintf(stderr, "%s(%.9g) = %.9g, want %.9g (rel %.3g)\n", lb_op_info[ops[k]].ir_name, xi, got, want, rel);
      assert_true(rel <= 4e-7);
    }
    free(in);
    free(out);
    free(act);
    lb_jit_free(j);
    lb_diag_free(&d);
    lb_graph_free(g);
  }
}

static void binary(enum lb_op op, struct lb_type a, struct lb_type b, double lo, double hi, bool bconst) {
  struct lb_graph *g = lb_graph_new("b");
  struct lb_value *ins[2] = {input(g, "a", a), bconst ? cconst(g, "b", b, lo, hi) : input(g, "b", b)};
  struct lb_node *n = mk(g, op, 2, ins, 1);
  finish(g, n);
  struct run_opts ro = F32_TOL;
  ro.lo = lo;
  ro.hi = hi;
  if (!lb_dtype_traits[a.dtype].is_float) ro.atol = ro.rtol = 0;
  check_graph(g, n, &ro);
  lb_graph_free(g);
}

static void test_binary_broadcast(void **state) {
  (void)state;
  static const enum lb_op ops[] = {LB_OP_ADD, LB_OP_SUB, LB_OP_MUL, LB_OP_DIV, LB_OP_MIN, LB_OP_MAX,
                                   LB_OP_EQUAL, LB_OP_LESS, LB_OP_LESS_EQUAL, LB_OP_GREATER, LB_OP_GREATER_EQUAL};
  for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
    binary(ops[i], TY(F32, 2, 3, 17), TY(F32, 2, 3, 17), 1, 5, false);
    binary(ops[i], TY(F32, 2, 3, 17), TY(F32, 17), 1, 5, true);
    binary(ops[i], TY(F32, 2, 3, 17), TY(F32, 3, 1), 1, 5, false);
    binary(ops[i], TY(F32, 4, 1, 5), TY(F32, 1, 6, 1), 1, 5, false);
    binary(ops[i], TY(F32, 33), TY0(F32), 1, 5, true);
    binary(ops[i], TY0(F32), TY(F32, 2, 9), 1, 5, false);
    binary(ops[i], TY(I32, 2, 3, 17), TY(I32, 3, 1), -9, 9, false);
    binary(ops[i], TY(I64, 5, 7), TY(I64, 7), -9, 9, false);
    binary(ops[i], TY(U8, 5, 7), TY(U8, 5, 7), 1, 200, false);
    binary(ops[i], TY(F64, 5, 7), TY(F64, 1, 7), 1, 5, false);
  }
  binary(LB_OP_POW, TY(F32, 5, 7), TY0(F32), 0.5, 3, true);
  binary(LB_OP_POW, TY(F32, 5, 7), TY(F32, 5, 7), 0.5, 3, false);
  binary(LB_OP_AND, TY(BOOL, 5, 7), TY(BOOL, 7), 0, 1, false);
  binary(LB_OP_OR, TY(BOOL, 5, 7), TY(BOOL, 5, 1), 0, 1, false);
  binary(LB_OP_ADD, TY(F32, 64, 768), TY(F32, 768), -1, 1, true); /* big: parallel path */
  binary(LB_OP_ADD, TY(F32, 2, 64, 512, 3), TY(F32, 2, 64, 512, 3), -1, 1, false);
}

static void test_where_clip_minmax(void **state) {
  (void)state;
  {
    struct lb_graph *g = lb_graph_new("w");
    struct lb_value *ins[3] = {input(g, "c", TY(BOOL, 4, 1, 9)), input(g, "x", TY(F32, 3, 9)), input(g, "y", TY0(F32))};
    struct lb_node *n = mk(g, LB_OP_WHERE, 3, ins, 1);
    finish(g, n);
    struct run_opts ro = F32_TOL;
    ro.lo = 0;
    ro.hi = 1;
    check_graph(g, n, &ro);
    lb_graph_free(g);
  }
  for (int mode = 0; mode < 4; mode++) {
    struct lb_graph *g = lb_graph_new("c");
    float lo = -1, hi = 2;
    struct lb_type s = TY0(F32);
    struct lb_value *ins[3] = {input(g, "x", TY(F32, 7, 11)),
                               mode & 1 ? lb_graph_add_const(g, "lo", &s, &lo)->outputs[0] : NULL,
                               mode & 2 ? lb_graph_add_const(g, "hi", &s, &hi)->outputs[0] : NULL};
    struct lb_node *n = mk(g, LB_OP_CLIP, 3, ins, 1);
    finish(g, n);
    check_graph(g, n, &F32_TOL);
    lb_graph_free(g);
  }
  {
    struct lb_graph *g = lb_graph_new("mx");
    struct lb_value *ins[3] = {input(g, "a", TY(F32, 3, 9)), input(g, "b", TY(F32, 9)), input(g, "c", TY(F32, 3, 1))};
    struct lb_node *n = mk(g, LB_OP_MAX, 3, ins, 1);
    finish(g, n);
    check_graph(g, n, &F32_TOL);
    lb_graph_free(g);
  }
}

static void test_cast(void **state) {
  (void)state;
  static const enum lb_dtype dts[] = {LB_DTYPE_F32, LB_DTYPE_F64, LB_DTYPE_I8,  LB_DTYPE_U8,  LB_DTYPE_I16,
                                      LB_DTYPE_U16, LB_DTYPE_I32, LB_DTYPE_U32, LB_DTYPE_I64, LB_DTYPE_U64,
                                      LB_DTYPE_BOOL};
  int nd = sizeof dts / sizeof dts[0];
  for (int a = 0; a < nd; a++)
    for (int b = 0; b < nd; b++) {
      struct lb_graph *g = lb_graph_new("cast");
      struct lb_type t = ty(dts[a], (int64_t[]){3, 19}, 2);
      struct lb_value *x = input(g, "x", t);
      struct lb_node *n = mk(g, LB_OP_CAST, 1, &x, 1);
      lb_node_set_attr_string(g, n, "to", lb_dtype_traits[dts[b]].name);
      finish(g, n);
      struct run_opts ro = {.atol = 0, .rtol = 1e-7, .lo = 0, .hi = 100};
      if (dts[b] == LB_DTYPE_BOOL || dts[a] == LB_DTYPE_BOOL) {
        ro.lo = 0;
        ro.hi = 1;
      }
      check_graph(g, n, &ro);
      lb_graph_free(g);
    }
}

static void test_chain(void **state) {
  (void)state;
  /* a small chain with an intermediate in the activation arena */
  struct lb_graph *g = lb_graph_new("chain");
  struct lb_value *x = input(g, "x", TY(F32, 4, 33));
  struct lb_node *n1 = mk(g, LB_OP_TANH, 1, &x, 1);
  finish(g, n1);
  g->n_outputs = 0;
  struct lb_value *ins[2] = {n1->outputs[0], x};
  struct lb_node *n2 = mk(g, LB_OP_MUL, 2, ins, 1);
  finish(g, n2);
  plan_simple(g);
  struct lb_diag d;
  lb_diag_init(&d, "t");
  struct lb_jit *j;
  struct lb_codegen_options o = {.opt_level = 2, .model_name = "chain"};
  assert_int_equal(lb_jit_compile(g, &o, &j, &d), LB_OK);
  assert_true(lb_jit_activations_size(j) >= 4 * 33 * 4);
  float *in = xalloc(4 * 33 * 4), *out = xalloc(4 * 33 * 4);
  fill_random(in, LB_DTYPE_F32, 4 * 33, -2, 2);
  void *act = xalloc(lb_jit_activations_size(j));
  const void *ins2[1] = {in};
  void *outs[1] = {out};
  assert_int_equal(lb_jit_run(j, ins2, outs, act), 0);
  for (int i = 0; i < 4 * 33; i++) assert_true(fabs(out[i] - tanh(in[i]) * in[i]) < 1e-6);
  free(in);
  free(out);
  free(act);
  lb_jit_free(j);
  lb_diag_free(&d);
  lb_graph_free(g);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_unary_f32),     cmocka_unit_test(test_unary_f64_int),
      cmocka_unit_test(test_math_accuracy), cmocka_unit_test(test_binary_broadcast),
      cmocka_unit_test(test_where_clip_minmax), cmocka_unit_test(test_cast),
      cmocka_unit_test(test_chain),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
