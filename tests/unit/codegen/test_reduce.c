/* test_reduce.c: reductions, softmax, layer_norm, batch_norm against the reference evaluator. */
#include "cg_test.h"

static void reduce(enum lb_op op, struct lb_type t, const int64_t *axes, int64_t nax, int keep) {
  struct lb_graph *g = lb_graph_new("r");
  struct lb_value *x = input(g, "x", t);
  struct lb_node *n = mk(g, op, 1, &x, 1);
  lb_node_set_attr_ints(g, n, "axes", axes, nax);
  lb_node_set_attr_int(g, n, "keepdims", keep);
  finish(g, n);
  int64_t cnt = lb_shape_numel(&t.shape);
  struct run_opts ro = {.atol = 1e-6 * (double)cnt, .rtol = 1e-5, .lo = -3, .hi = 3};
  if (!lb_dtype_traits[t.dtype].is_float) ro.atol = ro.rtol = 0;
  check_graph(g, n, &ro);
  lb_graph_free(g);
}

static void test_reduce_ops(void **state) {
  (void)state;
  static const enum lb_op ops[] = {LB_OP_REDUCE_SUM, LB_OP_REDUCE_MEAN, LB_OP_REDUCE_MAX, LB_OP_REDUCE_MIN};
  for (int i = 0; i < 4; i++)
    for (int keep = 0; keep < 2; keep++) {
      reduce(ops[i], TY(F32, 3, 5, 7), INTS(2), keep);
      reduce(ops[i], TY(F32, 3, 5, 7), INTS(1), keep);
      reduce(ops[i], TY(F32, 3, 5, 7), INTS(0), keep);
      reduce(ops[i], TY(F32, 3, 5, 7), INTS(0, 2), keep);
      reduce(ops[i], TY(F32, 3, 5, 7), INTS(0, 1, 2), keep);
      reduce(ops[i], TY(F32, 2, 3, 1, 4, 5), INTS(1, 3), keep);
      reduce(ops[i], TY(F32, 64, 1000), INTS(1), keep);
      reduce(ops[i], TY(I32, 3, 5, 7), INTS(1, 2), keep);
      reduce(ops[i], TY(F64, 3, 5, 7), INTS(1), keep);
    }
}

static void norm1(enum lb_op op, struct lb_type t, int64_t axis) {
  struct lb_graph *g = lb_graph_new("s");
  struct lb_value *x = input(g, "x", t);
  struct lb_node *n = mk(g, op, 1, &x, 1);
  lb_node_set_attr_int(g, n, "axis", axis);
  finish(g, n);
  struct run_opts ro = {.atol = 1e-6, .rtol = 1e-5, .lo = -8, .hi = 8};
  check_graph(g, n, &ro);
  lb_graph_free(g);
}

static void test_softmax(void **state) {
  (void)state;
  for (int ls = 0; ls < 2; ls++) {
    enum lb_op op = ls ? LB_OP_LOG_SOFTMAX : LB_OP_SOFTMAX;
    norm1(op, TY(F32, 3, 17), 1);
    norm1(op, TY(F32, 3, 17), 0);
    norm1(op, TY(F32, 2, 4, 5, 6), 2);
    norm1(op, TY(F32, 2, 12, 64, 64), 3);
    norm1(op, TY(F32, 1, 50257), 1);
    norm1(op, TY(F64, 3, 17), 1);
  }
}

static void layer_norm_n(struct lb_type t, int64_t axis, bool bias, bool cscale, int nout) {
  struct lb_graph *g = lb_graph_new("ln");
  struct lb_type pt = {.dtype = t.dtype, .shape = {.rank = (int32_t)(t.shape.rank - axis)}};
  for (int d = (int)axis; d < t.shape.rank; d++) pt.shape.dims[d - axis] = t.shape.dims[d];
  struct lb_value *ins[3] = {input(g, "x", t), cscale ? cconst(g, "s", pt, 0.5, 1.5) : input(g, "s", pt),
                             bias ? cconst(g, "b", pt, -1, 1) : NULL};
  struct lb_node *n = mk(g, LB_OP_LAYER_NORM, 3, ins, nout);
  lb_node_set_attr_int(g, n, "axis", axis);
  lb_node_set_attr_float(g, n, "epsilon", 1e-5);
  finish(g, n);
  struct run_opts ro = {.atol = 2e-5, .rtol = 1e-5, .lo = -3, .hi = 5};
  check_graph(g, n, &ro);
  lb_graph_free(g);
}

static void layer_norm(struct lb_type t, int64_t axis, bool bias, bool cscale) {
  layer_norm_n(t, axis, bias, cscale, 1);
}

static void test_layer_norm(void **state) {
  (void)state;
  /* with the mean and inv-std-dev outputs (f32) */
  layer_norm_n(TY(F32, 4, 33), 1, true, true, 3);
  layer_norm_n(TY(F32, 2, 3, 5, 7), 0, true, false, 3);
  layer_norm_n(TY(F32, 128, 768), 1, false, true, 3);
  layer_norm_n(TY(F64, 3, 4, 9), 2, true, true, 3);
  layer_norm(TY(F32, 4, 768), 1, true, true);
  layer_norm(TY(F32, 4, 33), 1, false, false);
  layer_norm(TY(F32, 2, 3, 5, 7), 2, true, false);
  layer_norm(TY(F32, 128, 768), 1, true, true);
  layer_norm(TY(F64, 3, 9), 1, true, true);
}

static void test_batch_norm(void **state) {
  (void)state;
  for (int cst = 0; cst < 2; cst++) {
    struct lb_graph *g = lb_graph_new("bn");
    struct lb_type pt = TY(F32, 6);
    struct lb_value *ins[5] = {input(g, "x", TY(F32, 2, 6, 5, 7)),
                               cst ? cconst(g, "s", pt, 0.5, 2) : input(g, "s", pt),
                               cst ? cconst(g, "b", pt, -1, 1) : input(g, "b", pt),
                               cst ? cconst(g, "m", pt, -1, 1) : input(g, "m", pt),
                               cst ? cconst(g, "v", pt, 0.5, 2) : input(g, "v", pt)};
    struct lb_node *n = mk(g, LB_OP_BATCH_NORM, 5, ins, 1);
    lb_node_set_attr_float(g, n, "epsilon", 1e-5);
    finish(g, n);
    struct run_opts ro = {.atol = 1e-5, .rtol = 1e-5, .lo = 0.5, .hi = 2};
    check_graph(g, n, &ro);
    lb_graph_free(g);
  }
}

/* training_mode=1: batch statistics; 1 to 3 outputs; f32 and f64; rank 2 and 4; parallel */
static void batch_norm_train(struct lb_type xt, int nout, double momentum) {
  struct lb_graph *g = lb_graph_new("bnt");
  struct lb_type pt = {.dtype = xt.dtype, .shape = {.rank = 1, .dims = {xt.shape.dims[1]}}};
  struct lb_value *ins[5] = {input(g, "x", xt), input(g, "s", pt), cconst(g, "b", pt, -1, 1),
                             input(g, "m", pt), cconst(g, "v", pt, 0.5, 2)};
  struct lb_node *n = mk(g, LB_OP_BATCH_NORM, 5, ins, nout);
  lb_node_set_attr_float(g, n, "epsilon", 1e-3);
  lb_node_set_attr_int(g, n, "training_mode", 1);
  lb_node_set_attr_float(g, n, "momentum", momentum);
  finish(g, n);
  struct run_opts ro = {.atol = 2e-5, .rtol = 2e-5, .lo = -2, .hi = 3};
  check_graph(g, n, &ro);
  lb_graph_free(g);
}

static void test_batch_norm_training(void **state) {
  (void)state;
  batch_norm_train(TY(F32, 2, 3, 4, 5), 3, 0.9);
  batch_norm_train(TY(F32, 7, 5), 1, 0.9);
  batch_norm_train(TY(F32, 4, 6, 33), 2, 0.5);
  batch_norm_train(TY(F64, 3, 2, 5, 5), 3, 0.1);
  batch_norm_train(TY(F32, 8, 64, 32, 32), 3, 0.9); /* parallel over channels */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_reduce_ops),
      cmocka_unit_test(test_softmax),
      cmocka_unit_test(test_layer_norm),
      cmocka_unit_test(test_batch_norm),
      cmocka_unit_test(test_batch_norm_training),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
