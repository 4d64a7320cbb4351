/* test_infer.c: shape and dtype rules of ir/infer.c, family by family,
 * including the error messages for invalid nodes. */
#include "sem_test.h"

static struct lb_graph *G;
static int setup(void **s) { (void)s; G = lb_graph_new("t"); return 0; }
static int teardown(void **s) { (void)s; lb_graph_free(G); G = NULL; return 0; }

/* ---- broadcast helper ---- */
static void test_broadcast_shapes(void **s) {
  (void)s;
  struct lb_shape out;
  struct lb_type a = TY(F32, 2, 1, 4), b = TY(F32, 3, 1), c = TY(F32, 5), e = TY0(F32);
  assert_int_equal(lb_broadcast_shapes(&a.shape, &b.shape, &out), LB_OK);
  struct lb_type w1 = TY(F32, 2, 3, 4);
  assert_true(lb_shape_equal(&out, &w1.shape));
  assert_int_equal(lb_broadcast_shapes(&e.shape, &c.shape, &out), LB_OK);
  assert_true(lb_shape_equal(&out, &c.shape));
  assert_int_equal(lb_broadcast_shapes(&a.shape, &c.shape, &out), LB_ERR_INVALID);
  struct lb_type z = TY(F32, 0, 1), z2 = TY(F32, 3, 1, 1);
  assert_int_equal(lb_broadcast_shapes(&z.shape, &z2.shape, &out), LB_OK);
  struct lb_type w2 = TY(F32, 3, 0, 1);
  assert_true(lb_shape_equal(&out, &w2.shape));
}

/* ---- unary ---- */
static void test_unary(void **s) {
  (void)s;
  struct lb_value *x = input(G, "x", TY(F32, 2, 3)), *i = input(G, "i", TY(I64, 4));
  struct lb_node *n = MK(G, ERF, 1, x);
  infer_ok(G, n);
  expect_type(n->outputs[0], TY(F32, 2, 3));
  n = MK(G, NEG, 1, i);
  infer_ok(G, n);
  expect_type(n->outputs[0], TY(I64, 4));
  infer_fails(G, MK(G, SQRT, 1, i), LB_ERR_INVALID, "input 0 has type i64[4] but sqrt needs a float type");
  infer_fails(G, MK(G, NOT, 1, x), LB_ERR_INVALID, "needs bool");
  n = MK(G, CAST, 1, x);
  infer_fails(G, n, LB_ERR_INVALID, "missing required attribute 'to'");
  lb_node_set_attr_string(G, n, "to", "i8");
  infer_ok(G, n);
  expect_type(n->outputs[0], TY(I8, 2, 3));
  lb_node_set_attr_string(G, n, "to", "float");
  infer_fails(G, n, LB_ERR_INVALID, "not an IR dtype name");
  n = MK(G, GELU, 1, x);
  lb_node_set_attr_string(G, n, "approximate", "fast");
  infer_fails(G, n, LB_ERR_INVALID, "approximate=\"fast\"");
  struct lb_value *mn = input(G, "mn", TY0(F32)), *mx = input(G, "mx", TY(F32, 2));
  n = MK(G, CLIP, 1, x, NULL, mn);
  infer_ok(G, n);
  infer_fails(G, MK(G, CLIP, 1, x, mn, mx), LB_ERR_INVALID, "must be a scalar");
  infer_fails(G, MK(G, CLIP, 1, x, i), LB_ERR_INVALID, "must have the type of input 0");
  infer_fails(G, MK(G, DROPOUT, 1, x), LB_ERR_INVALID, "must be lowered by the frontend");
}

/* ---- binary ---- */
static void test_binary(void **s) {
  (void)s;
  struct lb_value *a = input(G, "a", TY(F32, 3, 4)), *b = input(G, "b", TY(F32, 4));
  struct lb_value *c = input(G, "c", TY(F32, 5)), *i = input(G, "i", TY(I64, 3, 1));
  struct lb_value *bo = input(G, "bo", TY(BOOL, 3, 1));
  struct lb_node *n = MK(G, ADD, 1, a, b);
  infer_ok(G, n);
  expect_type(n->outputs[0], TY(F32, 3, 4));
  infer_fails(G, MK(G, ADD, 1, a, c), LB_ERR_INVALID,
              "input 0 has shape f32[3,4] and input 1 has shape f32[5], which do not broadcast");
  infer_fails(G, MK(G, ADD, 1, a, i), LB_ERR_INVALID,
              "input 0 has type f32[3,4] but input 1 has type i64[3,1]");
  infer_fails(G, MK(G, MUL, 1, bo, bo), LB_ERR_INVALID, "needs a numeric type");
  n = MK(G, POW, 1, a, i);
  infer_ok(G, n);
  expect_type(n->outputs[0], TY(F32, 3, 4));
  n = MK(G, LESS, 1, a, b);
  infer_ok(G, n);
  expect_type(n->outputs[0], TY(BOOL, 3, 4));
  n = MK(G, EQUAL, 1, bo, bo);
  infer_ok(G, n);
  infer_fails(G, MK(G, AND, 1, a, a), LB_ERR_INVALID, "needs bool");
  n = MK(G, WHERE, 1, bo, a, b);
  infer_ok(G, n);
  expect_type(n->outputs[0], TY(F32, 3, 4));
  infer_fails(G, MK(G, WHERE, 1, a, a, b), LB_ERR_INVALID, "input 0 has type f32[3,4] but where needs bool");
  infer_fails(G, MK(G, WHERE, 1, bo, a, i), LB_ERR_INVALID, "equal element types");
  n = MK(G, MAX, 1, a, b, input(G, "z", TY(F32, 2, 1, 1)));
  infer_ok(G, n);
  expect_type(n->outputs[0], TY(F32, 2, 3, 4));
  infer_fails(G, MK(G, MIN, 1, a, b, c), LB_ERR_INVALID, "input 2 has shape f32[5], which does not broadcast with [3,4]");
}

/* ---- reductions ---- */
static void test_reduce(void **s) {
  (void)s;
  struct lb_value *x = input(G, "x", TY(F32, 2, 3, 4));
  struct lb_node *n = MK(G, REDUCE_MEAN, 1, x);
  infer_fails(G, n, LB_ERR_INVALID, "missing required attribute 'axes'");
  lb_node_set_attr_ints(G, n, "axes", INTS(1, 2));
  infer_ok(G, n);
  expect_type(n->outputs[0], TY(F32, 2, 1, 1));
  lb_node_set_attr_int(G, n, "keepdims", 0);
  infer_ok(G, n);
  expect_type(n->outputs[0], TY(F32, 2));
  lb_node_set_attr_ints(G, n, "axes", INTS(0, 1, 2));
  infer_ok(G, n);
  expect_type(n->outputs[0], TY0(F32));
  lb_node_set_attr_ints(G, n, "axes", INTS(3));
  infer_fails(G, n, LB_ERR_INVALID, "axes[0]=3 is out of range for rank 3");
  lb_node_set_attr_ints(G, n, "axes", INTS(2, 1));
  infer_fails(G, n, LB_ERR_INVALID, "sorted and unique");
  lb_node_set_attr_ints(G, n, "axes", INTS(1));
  lb_node_set_attr_int(G, n, "keepdims", 2);
  infer_fails(G, n, LB_ERR_INVALID, "keepdims=2 must be 0 or 1");
}

/* ---- normalizations ---- */
static void test_norm(void **s) {
  (void)s;
  struct lb_value *x = input(G, "x", TY(F32, 2, 3, 4));
  struct lb_node *n = MK(G, SOFTMAX, 1, x);
  infer_ok(G, n);
  expect_type(n->outputs[0], TY(F32, 2, 3, 4));
  lb_node_set_attr_int(G, n, "axis", 3);
  infer_fails(G, n, LB_ERR_INVALID, "axis=3 is out of range for rank 3");
  lb_node_set_attr_int(G, n, "axis", -1);
  infer_fails(G, n, LB_ERR_INVALID, "axis=-1 is out of range");
  infer_fails(G, MK(G, LOG_SOFTMAX, 1, input(G, "xi", TY(I32, 3))), LB_ERR_INVALID, "needs a float type");

  struct lb_value *sc = input(G, "sc", TY(F32, 3, 4)), *bad = input(G, "bad", TY(F32, 4, 3));
  n = MK(G, LAYER_NORM, 1, x, sc, NULL);
  lb_node_set_attr_int(G, n, "axis", 1);
  infer_ok(G, n);
  expect_type(n->outputs[0], TY(F32, 2, 3, 4));
  n = MK(G, LAYER_NORM, 1, x, bad);
  lb_node_set_attr_int(G, n, "axis", 1);
  infer_fails(G, n, LB_ERR_INVALID, "input 1 (scale) has type f32[4,3] but must broadcast to the normalized shape [3,4]");
  n = MK(G, LAYER_NORM, 3, x, sc);
  lb_node_set_attr_int(G, n, "axis", 1);
  infer_ok(G, n); /* mean and inv_std_dev: f32, dims[:axis] + 1s */
  expect_type(n->outputs[0], TY(F32, 2, 3, 4));
  expect_type(n->outputs[1], TY(F32, 2, 1, 1));
  expect_type(n->outputs[2], TY(F32, 2, 1, 1));
  n = MK(G, LAYER_NORM, 3, input(G, "xd", TY(F64, 2, 3)), input(G, "sd", TY(F64, 3)));
  infer_ok(G, n); /* default axis: the last */
  expect_type(n->outputs[1], TY(F32, 2, 1));
  n = MK(G, LAYER_NORM, 2, x, sc);
  lb_node_set_attr_int(G, n, "axis", 1);
  infer_fails(G, n, LB_ERR_INVALID, "layer_norm makes 1 (y) or 3");
  infer_fails(G, MK(G, SOFTMAX, 2, x), LB_ERR_INVALID, "has 2 outputs");

  struct lb_value *c3 = input(G, "c3", TY(F32, 3)), *c4 = input(G, "c4", TY(F32, 4));
  n = MK(G, BATCH_NORM, 1, x, c3, c3, c3, c3);
  infer_ok(G, n);
  expect_type(n->outputs[0], TY(F32, 2, 3, 4));
  /* training_mode=1: outputs 1, 2 are the running mean / var, [C] */
  n = MK(G, BATCH_NORM, 3, x, c3, c3, c3, c3);
  infer_fails(G, n, LB_ERR_INVALID, "makes 1 unless training_mode=1");
  lb_node_set_attr_int(G, n, "training_mode", 1);
  lb_node_set_attr_float(G, n, "momentum", 0.9);
  infer_ok(G, n);
  expect_type(n->outputs[0], TY(F32, 2, 3, 4));
  expect_type(n->outputs[1], TY(F32, 3));
  expect_type(n->outputs[2], TY(F32, 3));
  lb_node_set_attr_int(G, n, "training_mode", 2);
  infer_fails(G, n, LB_ERR_INVALID, "training_mode=2 must be 0 or 1");
  n = MK(G, BATCH_NORM, 1, x, c3, c3, c3, c3);
  lb_node_set_attr_float(G, n, "momentum", 0.9);
  infer_fails(G, n, LB_ERR_INVALID, "'momentum' needs training_mode=1");
  infer_fails(G, MK(G, BATCH_NORM, 1, x, c3, c3, c4, c3), LB_ERR_INVALID,
              "input 3 (mean) has type f32[4] but must be [3]");
}

/* ---- matmul family ---- */
static void test_matmul(void **s) {
  (void)s;
  struct lb_value *a = input(G, "a", TY(F32, 2, 3, 4)), *b = input(G, "b", TY(F32, 4, 5));
  struct lb_node *n = MK(G, MATMUL, 1, a, b);
  infer_ok(G, n);
  expect_type(n->outputs[0], TY(F32, 2, 3, 5));
  struct lb_value *v4 = input(G, "v4", TY(F32, 4)), *m34 = input(G, "m34", TY(F32, 3, 4));
  n = MK(G, MATMUL, 1, v4, b);
  infer_ok(G, n);
  expect_type(n->outputs[0], TY(F32, 5));
  n = MK(G, MATMUL, 1, m34, v4);
  infer_ok(G, n);
  expect_type(n->outputs[0], TY(F32, 3));
  n = MK(G, MATMUL, 1, v4, v4);
  infer_ok(G, n);
  expect_type(n->outputs[0], TY0(F32));
  n = MK(G, MATMUL, 1, input(G, "p", TY(F32, 2, 1, 3, 4)), input(G, "q", TY(F32, 5, 4, 6)));
  infer_ok(G, n);
  expect_type(n->outputs[0], TY(F32, 2, 5, 3, 6));
  infer_fails(G, MK(G, MATMUL, 1, m34, input(G, "r", TY(F32, 5, 2))), LB_ERR_INVALID,
              "input 1 has shape f32[5,2] but matmul needs its dim -2 to equal 4 (the last dim of input 0, f32[3,4])");
  struct lb_value *bb = input(G, "bb", TY(BOOL, 3, 3));
  infer_fails(G, MK(G, MATMUL, 1, bb, bb), LB_ERR_INVALID, "input 0 has type bool[3,3] but matmul needs a numeric type");
  infer_fails(G, MK(G, MATMUL, 1, input(G, "s1", TY(F32, 2, 3, 4)), input(G, "s2", TY(F32, 3, 4, 5))),
              LB_ERR_INVALID, "batch dims [2] of input 0");

  /* gemm */
  struct lb_value *ga = input(G, "ga", TY(F32, 4, 3)), *gb = input(G, "gb", TY(F32, 5, 4));
  n = MK(G, GEMM, 1, ga, gb, input(G, "gc", TY(F32, 5)));
  lb_node_set_attr_int(G, n, "transA", 1);
  lb_node_set_attr_int(G, n, "transB", 1);
  infer_ok(G, n);
  expect_type(n->outputs[0], TY(F32, 3, 5));
  lb_node_set_attr_int(G, n, "transB", 0);
  infer_fails(G, n, LB_ERR_INVALID, "gemm (transB=0) needs its dim 0 to equal 4");
  n = MK(G, GEMM, 1, m34, input(G, "g45", TY(F32, 4, 5)), input(G, "gbad", TY(F32, 3)));
  infer_fails(G, n, LB_ERR_INVALID, "input 2 (c) has type f32[3], which does not broadcast to the output shape [3,5]");

  /* fused_matmul */
  n = MK(G, FUSED_MATMUL, 1, a, input(G, "wt", TY(F32, 5, 4)), input(G, "bias", TY(F32, 5)));
  lb_node_set_attr_int(G, n, "transB", 1);
  lb_node_set_attr_string(G, n, "act", "gelu");
  infer_ok(G, n);
  expect_type(n->outputs[0], TY(F32, 2, 3, 5));
  lb_node_set_attr_string(G, n, "act", "swish");
  infer_fails(G, n, LB_ERR_INVALID, "act=\"swish\"");
}

/* ---- conv and pools ---- */
static void test_conv_pool(void **s) {
  (void)s;
  struct lb_value *x = input(G, "x", TY(F32, 1, 4, 5, 5)), *w = input(G, "w", TY(F32, 8, 2, 3, 3));
  struct lb_node *n = MK(G, CONV, 1, x, w, input(G, "b", TY(F32, 8)));
  lb_node_set_attr_int(G, n, "group", 2);
  lb_node_set_attr_ints(G, n, "pads", INTS(1, 1, 1, 1));
  infer_ok(G, n);
  expect_type(n->outputs[0], TY(F32, 1, 8, 5, 5));
  lb_node_set_attr_ints(G, n, "strides", INTS(2, 2));
  infer_ok(G, n);
  expect_type(n->outputs[0], TY(F32, 1, 8, 3, 3));
  lb_node_set_attr_ints(G, n, "dilations", INTS(2, 2));
  lb_node_set_attr_ints(G, n, "pads", INTS(0, 0, 0, 0));
  lb_node_set_attr_ints(G, n, "strides", INTS(1, 1));
  infer_ok(G, n);
  expect_type(n->outputs[0], TY(F32, 1, 8, 1, 1));
  lb_node_set_attr_int(G, n, "group", 1);
  infer_fails(G, n, LB_ERR_INVALID, "input 1 (weights) has shape f32[8,2,3,3] but its dim 1 must be 4");
  lb_node_set_attr_int(G, n, "group", 3);
  infer_fails(G, n, LB_ERR_INVALID, "group=3 must divide the input channels (4");
  lb_node_set_attr_int(G, n, "group", 2);
  lb_node_set_attr_ints(G, n, "kernel_shape", INTS(3, 2));
  infer_fails(G, n, LB_ERR_INVALID, "kernel_shape[1]=2 does not match the weights");
  lb_node_remove_attr(n, "kernel_shape");
  lb_node_set_attr_ints(G, n, "dilations", INTS(3, 3));
  infer_fails(G, n, LB_ERR_INVALID, "larger than the padded input");
  /* 1-D and 3-D */
  n = MK(G, CONV, 1, input(G, "x1", TY(F32, 2, 3, 10)), input(G, "w1", TY(F32, 4, 3, 3)));
  lb_node_set_attr_ints(G, n, "strides", INTS(3));
  infer_ok(G, n);
  expect_type(n->outputs[0], TY(F32, 2, 4, 3));
  n = MK(G, CONV, 1, input(G, "x3", TY(F32, 1, 1, 4, 5, 6)), input(G, "w3", TY(F32, 2, 1, 2, 2, 2)));
  infer_ok(G, n);
  expect_type(n->outputs[0], TY(F32, 1, 2, 3, 4, 5));

  /* pools */
  struct lb_value *p = input(G, "p", TY(F32, 1, 1, 4, 4));
  n = MK(G, MAX_POOL, 1, p);
  infer_fails(G, n, LB_ERR_INVALID, "missing required attribute 'kernel_shape'");
  lb_node_set_attr_ints(G, n, "kernel_shape", INTS(3, 3));
  lb_node_set_attr_ints(G, n, "strides", INTS(2, 2));
  infer_ok(G, n);
  expect_type(n->outputs[0], TY(F32, 1, 1, 1, 1));
  lb_node_set_attr_int(G, n, "ceil_mode", 1);
  infer_ok(G, n);
  expect_type(n->outputs[0], TY(F32, 1, 1, 2, 2));
  /* ceil_mode never starts a window inside the end padding: in 5, k 2, s 2, pads 0,1 */
  n = MK(G, AVERAGE_POOL, 1, input(G, "p5", TY(F32, 1, 1, 5)));
  lb_node_set_attr_ints(G, n, "kernel_shape", INTS(2));
  lb_node_set_attr_ints(G, n, "strides", INTS(2));
  lb_node_set_attr_int(G, n, "ceil_mode", 1);
  infer_ok(G, n);
  expect_type(n->outputs[0], TY(F32, 1, 1, 3));
  n = MK(G, MAX_POOL, 2, p); /* indices: i64 of the output's shape */
  lb_node_set_attr_ints(G, n, "kernel_shape", INTS(2, 2));
  lb_node_set_attr_int(G, n, "storage_order", 1);
  infer_ok(G, n);
  expect_type(n->outputs[0], TY(F32, 1, 1, 3, 3));
  expect_type(n->outputs[1], TY(I64, 1, 1, 3, 3));
  lb_node_set_attr_int(G, n, "storage_order", 2);
  infer_fails(G, n, LB_ERR_INVALID, "storage_order=2 must be 0 or 1");
  infer_fails(G, MK(G, AVERAGE_POOL, 2, p), LB_ERR_INVALID, "has 2 outputs");
  /* max_pool also takes u8 / i8; average_pool does not */
  n = MK(G, MAX_POOL, 1, input(G, "pu", TY(U8, 1, 1, 4, 4)));
  lb_node_set_attr_ints(G, n, "kernel_shape", INTS(2, 2));
  infer_ok(G, n);
  expect_type(n->outputs[0], TY(U8, 1, 1, 3, 3));
  n = MK(G, MAX_POOL, 1, input(G, "pi", TY(I8, 1, 1, 4, 4)));
  lb_node_set_attr_ints(G, n, "kernel_shape", INTS(2, 2));
  infer_ok(G, n);
  n = MK(G, MAX_POOL, 1, input(G, "pi32", TY(I32, 1, 1, 4, 4)));
  lb_node_set_attr_ints(G, n, "kernel_shape", INTS(2, 2));
  infer_fails(G, n, LB_ERR_INVALID, "max_pool needs a float type (f32, f64, f16, bf16), u8 or i8");
  n = MK(G, AVERAGE_POOL, 1, input(G, "pu2", TY(U8, 1, 1, 4, 4)));
  lb_node_set_attr_ints(G, n, "kernel_shape", INTS(2, 2));
  infer_fails(G, n, LB_ERR_INVALID, "needs a float type");
  n = MK(G, GLOBAL_AVERAGE_POOL, 1, x);
  infer_ok(G, n);
  expect_type(n->outputs[0], TY(F32, 1, 4, 1, 1));
  infer_fails(G, MK(G, GLOBAL_AVERAGE_POOL, 1, input(G, "x2", TY(F32, 4, 4))), LB_ERR_INVALID, "needs rank >= 3");
}

/* ---- data movement ---- */
static void test_move(void **s) {
  (void)s;
  struct lb_value *x = input(G, "x", TY(F32, 2, 3, 4));
  struct lb_node *n = MK(G, RESHAPE, 1, x);
  lb_node_set_attr_ints(G, n, "shape", INTS(6, 4));
  infer_ok(G, n);
  expect_type(n->outputs[0], TY(F32, 6, 4));
  lb_node_set_attr_ints(G, n, "shape", INTS(5, 5));
  infer_fails(G, n, LB_ERR_INVALID, "cannot reshape input 0 (f32[2,3,4], 24 elements) to [5,5]");
  int64_t tgt[] = {0, -1};
  n = MK(G, RESHAPE, 1, x, cst(G, "tgt", TY(I64, 2), tgt));
  infer_ok(G, n);
  expect_type(n->outputs[0], TY(F32, 2, 12));

  n = MK(G, TRANSPOSE, 1, x);
  lb_node_set_attr_ints(G, n, "perm", INTS(2, 0, 1));
  infer_ok(G, n);
  expect_type(n->outputs[0], TY(F32, 4, 2, 3));
  lb_node_set_attr_ints(G, n, "perm", INTS(2, 0, 2));
  infer_fails(G, n, LB_ERR_INVALID, "perm is not a permutation of 0..2 (entry 2 is 2)");
  lb_node_set_attr_ints(G, n, "perm", INTS(1, 0));
  infer_fails(G, n, LB_ERR_INVALID, "attribute 'perm' has 2 entries but needs 3");

  n = MK(G, CONCAT, 1, x, input(G, "y", TY(F32, 2, 5, 4)));
  lb_node_set_attr_int(G, n, "axis", 1);
  infer_ok(G, n);
  expect_type(n->outputs[0], TY(F32, 2, 8, 4));
  lb_node_set_attr_int(G, n, "axis", 2);
  infer_fails(G, n, LB_ERR_INVALID, "input 1 has shape f32[2,5,4] but concat on axis 2 needs the other dims");
  infer_fails(G, MK(G, CONCAT, 1, x, x), LB_ERR_INVALID, "missing required attribute 'axis'");

  n = MK(G, SPLIT, 2, x);
  lb_node_set_attr_int(G, n, "axis", 2);
  lb_node_set_attr_ints(G, n, "split", INTS(1, 3));
  infer_ok(G, n);
  expect_type(n->outputs[0], TY(F32, 2, 3, 1));
  expect_type(n->outputs[1], TY(F32, 2, 3, 3));
  lb_node_set_attr_ints(G, n, "split", INTS(1, 2));
  infer_fails(G, n, LB_ERR_INVALID, "split sizes sum to 3 but dim 2 of input 0 (f32[2,3,4]) is 4");

  n = MK(G, SLICE, 1, x);
  lb_node_set_attr_ints(G, n, "starts", INTS(1, 2, 0));
  lb_node_set_attr_ints(G, n, "ends", INTS(2, -1, 4));
  lb_node_set_attr_ints(G, n, "steps", INTS(1, -1, 3));
  infer_ok(G, n);
  expect_type(n->outputs[0], TY(F32, 1, 3, 2));
  lb_node_set_attr_ints(G, n, "ends", INTS(2, -1, 7));
  infer_fails(G, n, LB_ERR_INVALID, "dim 2: starts 0, ends 7, steps 3 are not clamped");
  lb_node_set_attr_ints(G, n, "steps", INTS(1, 0, 1));
  infer_fails(G, n, LB_ERR_INVALID, "steps[1] is 0");

  struct lb_value *idx = input(G, "idx", TY(I64, 5, 6)), *fidx = input(G, "fidx", TY(F32, 2));
  n = MK(G, GATHER, 1, x, idx);
  lb_node_set_attr_int(G, n, "axis", 1);
  infer_ok(G, n);
  expect_type(n->outputs[0], TY(F32, 2, 5, 6, 4));
  infer_fails(G, MK(G, GATHER, 1, x, fidx), LB_ERR_INVALID, "input 1 (indices) has type f32[2] but gather needs i32 or i64 indices");
  n = MK(G, GATHER, 1, x, idx);
  lb_node_set_attr_int(G, n, "axis", 3);
  infer_fails(G, n, LB_ERR_INVALID, "axis=3 is out of range for rank 3");

  n = MK(G, EXPAND, 1, input(G, "e", TY(F32, 3, 1)));
  lb_node_set_attr_ints(G, n, "shape", INTS(2, 3, 4));
  infer_ok(G, n);
  expect_type(n->outputs[0], TY(F32, 2, 3, 4));
  lb_node_set_attr_ints(G, n, "shape", INTS(2, 4, 4));
  infer_fails(G, n, LB_ERR_INVALID, "does not broadcast to shape [2,4,4]");
  n = MK(G, TRILU, 1, x);
  infer_ok(G, n);
  expect_type(n->outputs[0], TY(F32, 2, 3, 4));
  infer_fails(G, MK(G, TRILU, 1, input(G, "t1", TY(F32, 4))), LB_ERR_INVALID, "needs rank >= 2");

  /* pad: [begins..., ends...], negative = crop */
  n = MK(G, PAD, 1, x);
  lb_node_set_attr_string(G, n, "mode", "constant");
  lb_node_set_attr_ints(G, n, "pads", INTS(0, 1, -1, 1, 0, 2));
  lb_node_set_attr_float(G, n, "value", 0.5);
  infer_ok(G, n);
  expect_type(n->outputs[0], TY(F32, 3, 4, 5));
  lb_node_set_attr_string(G, n, "mode", "reflect");
  infer_ok(G, n);
  expect_type(n->outputs[0], TY(F32, 3, 4, 5));
  lb_node_set_attr_ints(G, n, "pads", INTS(0, 0, -3, 0, 0, -2));
  infer_fails(G, n, LB_ERR_INVALID, "pads of dim 2 (begin -3, end -2) crop more than its size 4 (input 0 is f32[2,3,4])");
  lb_node_set_attr_ints(G, n, "pads", INTS(0, 0, -4, 0, 0, 1));
  infer_fails(G, n, LB_ERR_INVALID, "mode \"reflect\" cannot pad dim 2 (begin -4, end 1): it has no elements to copy");
  lb_node_set_attr_string(G, n, "mode", "constant");
  infer_ok(G, n);
  expect_type(n->outputs[0], TY(F32, 2, 3, 1));
  lb_node_set_attr_ints(G, n, "pads", INTS(1, 1));
  infer_fails(G, n, LB_ERR_INVALID, "attribute 'pads' has 2 entries but needs 6");
  lb_node_set_attr_ints(G, n, "pads", INTS(0, 0, 0, 0, 0, (int64_t)1 << 41));
  infer_fails(G, n, LB_ERR_LIMIT, "over 2^40");
  lb_node_set_attr_ints(G, n, "pads", INTS(0, 0, 0, 0, 0, 0));
  lb_node_set_attr_string(G, n, "mode", "symmetric");
  infer_fails(G, n, LB_ERR_INVALID, "mode \"symmetric\" is not \"constant\", \"reflect\", \"edge\" or \"wrap\"");
  lb_node_set_attr_int(G, n, "mode", 1);
  infer_fails(G, n, LB_ERR_INVALID, "attribute 'mode' must be a string");
  lb_node_remove_attr(n, "mode"); /* default "constant" */
  lb_node_set_attr_int(G, n, "value", 1);
  infer_fails(G, n, LB_ERR_INVALID, "attribute 'value' must be a float");
  lb_node_remove_attr(n, "value");
  infer_ok(G, n);
  n = MK(G, PAD, 1, input(G, "pb", TY(BOOL, 2)));
  lb_node_set_attr_ints(G, n, "pads", INTS(1, 2));
  lb_node_set_attr_string(G, n, "mode", "wrap");
  infer_ok(G, n);
  expect_type(n->outputs[0], TY(BOOL, 5));
  n = MK(G, PAD, 1, input(G, "pi", TY(I32, 2)), cst(G, "pp", TY(I64, 2), (int64_t[]){1, 1}));
  lb_node_set_attr_ints(G, n, "pads", INTS(1, 1));
  infer_fails(G, n, LB_ERR_INVALID, "input 1 must be folded into attributes by the frontend");
  infer_fails(G, MK(G, PAD, 1, x), LB_ERR_INVALID, "missing required attribute 'pads'");

  infer_fails(G, MK(G, FLATTEN, 1, x), LB_ERR_INVALID, "flatten must be lowered by the frontend");
  infer_fails(G, MK(G, SQUEEZE, 1, x), LB_ERR_INVALID, "must be lowered by the frontend");
  infer_fails(G, MK(G, SHAPE, 1, x), LB_ERR_INVALID, "shape must be lowered by the frontend");
}

/* ---- const, limits, arity ---- */
static void test_const_and_limits(void **s) {
  (void)s;
  float data[6] = {0};
  struct lb_type t23 = TY(F32, 2, 3);
  struct lb_node *c = lb_graph_add_const(G, "c", &t23, data);
  infer_ok(G, c);
  c->outputs[0]->type = TY(F32, 2, 4);
  infer_fails(G, c, LB_ERR_INVALID, "const of type f32[2,4] needs 32 bytes but its blob \"c\" has 24");

}

static void test_limit(void **s) {
  (void)s;
  struct lb_value *x = input(G, "x", TY(F32, 1));
  struct lb_node *n = MK(G, EXPAND, 1, x);
  lb_node_set_attr_ints(G, n, "shape", INTS((int64_t)1 << 20, (int64_t)1 << 20));
  infer_ok(G, n); /* 2^40 elements: at the limit */
  lb_node_set_attr_ints(G, n, "shape", INTS((int64_t)1 << 20, ((int64_t)1 << 20) + 1));
  infer_fails(G, n, LB_ERR_LIMIT, "more than 2^40 elements");
  lb_node_set_attr_ints(G, n, "shape", INTS(INT64_MAX / 2, 4));
  infer_fails(G, n, LB_ERR_LIMIT, "more than 2^40 elements");

  infer_fails(G, MK(G, ADD, 1, x), LB_ERR_INVALID, "has 1 inputs but add takes 2..2");
  infer_fails(G, MK(G, LAYER_NORM, 1, x, NULL), LB_ERR_INVALID, "required input 1 is missing");
  struct lb_value *untyped = lb_value_new(G, "u", (struct lb_type){0});
  infer_fails(G, MK(G, RELU, 1, untyped), LB_ERR_INVALID, "input 0 (%u) has no type yet");
}

/* ---- quantization ---- */
static void test_quant(void **s) {
  (void)s;
  struct lb_value *x = input(G, "x", TY(F32, 1, 3, 2)), *sc = input(G, "sc", TY0(F32));
  struct lb_value *zp = input(G, "zp", TY0(I8)), *sc3 = input(G, "sc3", TY(F32, 3));
  struct lb_node *n = MK(G, QUANTIZE_LINEAR, 1, x, sc, zp);
  infer_ok(G, n);
  expect_type(n->outputs[0], TY(I8, 1, 3, 2));
  n = MK(G, QUANTIZE_LINEAR, 1, x, sc3);
  infer_ok(G, n);
  expect_type(n->outputs[0], TY(U8, 1, 3, 2));
  n = MK(G, QUANTIZE_LINEAR, 1, x, sc3);
  lb_node_set_attr_int(G, n, "axis", 2);
  infer_fails(G, n, LB_ERR_INVALID, "input 1 (scale) has type f32[3] but must be a scalar or [2]");
  struct lb_value *q = input(G, "q", TY(U8, 4, 3));
  n = MK(G, DEQUANTIZE_LINEAR, 1, q, sc, NULL);
  infer_ok(G, n);
  expect_type(n->outputs[0], TY(F32, 4, 3));
  infer_fails(G, MK(G, DEQUANTIZE_LINEAR, 1, q, sc, zp), LB_ERR_INVALID, "equal element types");
  n = MK(G, DYNAMIC_QUANTIZE_LINEAR, 3, x);
  infer_ok(G, n);
  expect_type(n->outputs[0], TY(U8, 1, 3, 2));
  expect_type(n->outputs[1], TY0(F32));
  expect_type(n->outputs[2], TY0(U8));
  struct lb_value *b = input(G, "b", TY(U8, 3, 2)), *u0 = input(G, "u0", TY0(U8));
  n = MK(G, MATMUL_INTEGER, 1, q, b, u0, u0);
  infer_ok(G, n);
  expect_type(n->outputs[0], TY(I32, 4, 2));
  infer_fails(G, MK(G, MATMUL_INTEGER, 1, q, b, input(G, "zr", TY(U8, 3))), LB_ERR_INVALID,
              "input 2 (a zero point) has type u8[3] but must be a scalar or a vector of 4");
  n = MK(G, QLINEAR_MATMUL, 1, q, sc, u0, b, sc, u0, sc, zp);
  infer_ok(G, n);
  expect_type(n->outputs[0], TY(I8, 4, 2));
  infer_fails(G, MK(G, MATMUL_INTEGER, 1, x, b), LB_ERR_INVALID, "input 0 has type f32[1,3,2] but must be u8 or i8");
}

/* ---- qmatmul ---- */
/* Per-tensor (n == 1, axis -1) or per-column (axis 1) 8-bit qparams; zp NULL = symmetric. */
static struct lb_qparams *qmm_qp(int32_t axis, const float *scales, int64_t n, const int32_t *zp,
                                 bool is_unsigned) {
  struct lb_qparams *q = lb_arena_alloc(&G->arena, sizeof *q);
  *q = (struct lb_qparams){.bits = 8, .axis = axis, .symmetric = !zp, .is_unsigned = is_unsigned, .n = n};
  q->scales = lb_arena_alloc(&G->arena, sizeof *q->scales * (size_t)n);
  memcpy(q->scales, scales, sizeof *q->scales * (size_t)n);
  if (zp) {
    q->zero_points = lb_arena_alloc(&G->arena, sizeof *q->zero_points);
    q->zero_points[0] = *zp;
  }
  return q;
}

static void verify_fails(const char *frag) {
  struct lb_diag d;
  lb_diag_init(&d, "test");
  enum lb_status st = lb_graph_verify(G, &d);
  if (st == LB_OK || !d.text || !strstr(d.text, frag))
    print_message("expected a verifier error with '%s', got: %s\n", frag, d.text ? d.text : "ok");
  assert_int_not_equal(st, LB_OK);
  assert_non_null(strstr(d.text, frag));
  lb_diag_free(&d);
}

static void verify_ok(void) {
  struct lb_diag d;
  lb_diag_init(&d, "test");
  enum lb_status st = lb_graph_verify(G, &d);
  if (st != LB_OK) print_message("unexpected verifier error: %s", d.text);
  assert_int_equal(st, LB_OK);
  lb_diag_free(&d);
}

static void test_qmatmul(void **s) {
  (void)s;
  int8_t wd[4 * 5] = {0};
  float ws[5] = {0.5f, 0.25f, 1, 2, 4}, sa = 0.25f;
  struct lb_value *a = input(G, "a", TY(F32, 2, 3, 4)), *a8 = input(G, "a8", TY(U8, 3, 4));
  struct lb_value *w = cst(G, "w", TY(I8, 4, 5), wd), *bias = input(G, "bias", TY(F32, 5));
  w->qparams = qmm_qp(1, ws, 5, NULL, false);
  struct lb_node *n = MK(G, QMATMUL, 1, a, w, bias);
  infer_ok(G, n);
  expect_type(n->outputs[0], TY(F32, 2, 3, 5));
  n = MK(G, QMATMUL, 1, input(G, "a1", TY(F32, 4)), w);
  infer_ok(G, n);
  expect_type(n->outputs[0], TY(F32, 5));
  /* a requantized output keeps the i8/u8 dtype its producer chose with its qparams */
  n = MK(G, QMATMUL, 1, a, w);
  n->outputs[0]->type.dtype = LB_DTYPE_U8;
  n->outputs[0]->qparams = qmm_qp(-1, &sa, 1, (const int32_t[]){3}, true);
  infer_ok(G, n);
  expect_type(n->outputs[0], TY(U8, 2, 3, 5));
  /* without qparams an integer output type is not kept */
  n = MK(G, QMATMUL, 1, a, w);
  n->outputs[0]->type.dtype = LB_DTYPE_I8;
  infer_ok(G, n);
  expect_type(n->outputs[0], TY(F32, 2, 3, 5));
  n = MK(G, QMATMUL, 1, a8, w);
  lb_node_set_attr_string(G, n, "a_quant", "static");
  infer_ok(G, n);
  expect_type(n->outputs[0], TY(F32, 3, 5));

  infer_fails(G, MK(G, QMATMUL, 1, input(G, "k3", TY(F32, 2, 3)), w), LB_ERR_INVALID,
              "input 1 (weight) has type i8[4,5] but its dim 0 must equal 3 (the last dim of input 0, f32[2,3])");
  infer_fails(G, MK(G, QMATMUL, 1, a, input(G, "wf", TY(F32, 4, 5))), LB_ERR_INVALID,
              "input 1 (weight) has type f32[4,5] but qmatmul needs i8[K,N]");
  infer_fails(G, MK(G, QMATMUL, 1, a, input(G, "w3", TY(I8, 1, 4, 5))), LB_ERR_INVALID, "needs i8[K,N]");
  infer_fails(G, MK(G, QMATMUL, 1, a, w, input(G, "b4", TY(F32, 4))), LB_ERR_INVALID,
              "input 2 (bias) has type f32[4] but must be f32[5]");
  infer_fails(G, MK(G, QMATMUL, 1, a8, w), LB_ERR_INVALID,
              "input 0 has type u8[3,4] but qmatmul with a_quant=\"none\" needs f32");
  n = MK(G, QMATMUL, 1, a, w);
  lb_node_set_attr_string(G, n, "a_quant", "weekly");
  infer_fails(G, n, LB_ERR_INVALID, "a_quant=\"weekly\" is not one of none static dynamic");
  n = MK(G, QMATMUL, 1, a, w);
  lb_node_set_attr_string(G, n, "act", "swish");
  infer_fails(G, n, LB_ERR_INVALID, "act=\"swish\" is not one of");
}

/* Low-bit weights (docs/ir-ops.md "Low-bit weights"): bits, groups, zero
 * points, code ranges and f16 scales. */
static struct lb_qparams *lowbit_qp(int32_t bits, int32_t group, const float *scales, int64_t n,
                                    const int32_t *zps) {
  struct lb_qparams *q = lb_arena_alloc(&G->arena, sizeof *q);
  *q = (struct lb_qparams){.bits = bits, .axis = 1, .group_size = group, .symmetric = !zps,
                           .is_unsigned = zps != NULL, .n = n};
  q->scales = lb_arena_alloc(&G->arena, sizeof *q->scales * (size_t)n);
  memcpy(q->scales, scales, sizeof *q->scales * (size_t)n);
  if (zps) {
    q->zero_points = lb_arena_alloc(&G->arena, sizeof *q->zero_points * (size_t)n);
    memcpy(q->zero_points, zps, sizeof *q->zero_points * (size_t)n);
  }
  return q;
}

static void test_qmatmul_lowbit_verify(void **s) {
  (void)s;
  /* K = 5, N = 2: group 2 gives 3 groups (the last of one row), 6 scales */
  int8_t wd[5 * 2] = {7, -8, -3, 5, 2, -1, 0, 1, -2, 3};
  float ws[6] = {0.5f, 0.25f, 2, 0.125f, 1, 0.75f};
  struct lb_value *w = cst(G, "w", TY(I8, 5, 2), wd);
  w->qparams = lowbit_qp(4, 2, ws, 6, NULL);
  int8_t ud[5 * 2] = {15, 0, 3, 5, 2, 1, 0, 1, 9, 3};
  struct lb_value *wu = cst(G, "wu", TY(I8, 5, 2), ud);
  struct lb_node *n = MK(G, QMATMUL, 1, input(G, "a", TY(F32, 3, 5)), w);
  lb_node_set_attr_string(G, n, "a_quant", "dynamic");
  infer_ok(G, n);
  lb_graph_add_output(G, n->outputs[0]);
  verify_ok();
  w->qparams = lowbit_qp(4, 2, ws, 4, NULL);
  verify_fails("the weight's qparams must have axis=1 and 6 scales (group=2)");
  w->qparams = lowbit_qp(5, 2, ws, 6, NULL);
  verify_fails("bits=5; qmatmul takes 2, 3, 4 or 8");
  /* 3-bit symmetric codes are in [-4, 3]: 7 is not */
  w->qparams = lowbit_qp(3, 2, ws, 6, NULL);
  verify_fails("the weight's code 7 at [0,0] is outside the 3-bit range [-4, 3]");
  float bad[6] = {0.5f, 0.1f, 2, 0.125f, 1, 0.75f};
  w->qparams = lowbit_qp(4, 2, bad, 6, NULL);
  verify_fails("the weight's scale 0.100000001 (index 1) is not an f16 value");
  /* asymmetric: unsigned codes and zero points in [0, 2^bits - 1] */
  n->inputs[1] = wu;
  wu->qparams = lowbit_qp(4, 2, ws, 6, (const int32_t[]){8, 0, 15, 3, 1, 2});
  verify_ok();
  wu->qparams = lowbit_qp(4, 2, ws, 6, (const int32_t[]){8, 0, 16, 3, 1, 2});
  verify_fails("the weight's zero point 16 (index 2) is outside [0, 15]");
  wu->qparams = lowbit_qp(2, 2, ws, 6, (const int32_t[]){1, 0, 3, 3, 1, 2});
  verify_fails("the weight's code 15 at [0,0] is outside the 2-bit range [0, 3]");
  wu->qparams = lowbit_qp(8, 2, ws, 6, (const int32_t[]){8, 0, 15, 3, 1, 2});
  verify_fails("asymmetric unsigned with zero points (have bits=8 asym unsigned with zero points)");
  wu->qparams = lowbit_qp(4, 2, ws, 6, NULL);
  wu->qparams->symmetric = false;
  verify_fails("(have bits=4 asym)");
}

/* The verifier's qmatmul checks, one broken graph at a time. */
static void test_qmatmul_verify(void **s) {
  (void)s;
  int8_t wd[2 * 3] = {1, 2, 3, 4, 5, 6};
  float ws[3] = {0.5f, 0.25f, 1}, sa = 0.25f;
  struct lb_value *a = input(G, "a", TY(F32, 4, 2));
  struct lb_value *w = cst(G, "w", TY(I8, 2, 3), wd);
  w->qparams = qmm_qp(1, ws, 3, NULL, false);
  struct lb_node *n = MK(G, QMATMUL, 1, a, w);
  lb_node_set_attr_string(G, n, "a_quant", "dynamic");
  infer_ok(G, n);
  lb_graph_add_output(G, n->outputs[0]);
  verify_ok();
  /* static: a needs its per-tensor qparams */
  lb_node_set_attr_string(G, n, "a_quant", "static");
  verify_fails("a_quant=\"static\" needs input 0 to carry per-tensor 8-bit qparams");
  a->qparams = qmm_qp(-1, &sa, 1, (const int32_t[]){7}, true);
  verify_ok();
  /* weight scales: axis 1 with N scales or axis -1 with one */
  w->qparams = qmm_qp(1, ws, 2, NULL, false);
  verify_fails("the weight's qparams must have axis=1 and 3 scales (group=0)");
  w->qparams = qmm_qp(-1, ws, 1, NULL, false);
  verify_ok();
  w->qparams = qmm_qp(-1, ws, 1, (const int32_t[]){1}, false);
  verify_fails("the weight's qparams must be symmetric and signed, or (below 8 bits) asymmetric unsigned");
  w->qparams = NULL;
  verify_fails("the weight (input 1) has no qparams");
  w->qparams = qmm_qp(1, ws, 3, NULL, false);
  /* an i8 output needs signed per-tensor qparams */
  n->outputs[0]->type.dtype = LB_DTYPE_I8;
  n->outputs[0]->qparams = qmm_qp(-1, &sa, 1, (const int32_t[]){7}, true);
  verify_fails("an i8 output needs per-tensor 8-bit signed qparams");
  n->outputs[0]->qparams = qmm_qp(-1, &sa, 1, NULL, false);
  verify_ok();
  /* the weight must be a constant */
  struct lb_value *wi = input(G, "wi", TY(I8, 2, 3));
  wi->qparams = qmm_qp(1, ws, 3, NULL, false);
  n->inputs[1] = wi;
  verify_fails("the weight (input 1) must be a const i8[K,N]");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_broadcast_shapes, setup, teardown),
      cmocka_unit_test_setup_teardown(test_unary, setup, teardown),
      cmocka_unit_test_setup_teardown(test_binary, setup, teardown),
      cmocka_unit_test_setup_teardown(test_reduce, setup, teardown),
      cmocka_unit_test_setup_teardown(test_norm, setup, teardown),
      cmocka_unit_test_setup_teardown(test_matmul, setup, teardown),
      cmocka_unit_test_setup_teardown(test_conv_pool, setup, teardown),
      cmocka_unit_test_setup_teardown(test_move, setup, teardown),
      cmocka_unit_test_setup_teardown(test_const_and_limits, setup, teardown),
      cmocka_unit_test_setup_teardown(test_limit, setup, teardown),
      cmocka_unit_test_setup_teardown(test_quant, setup, teardown),
      cmocka_unit_test_setup_teardown(test_qmatmul, setup, teardown),
      cmocka_unit_test_setup_teardown(test_qmatmul_verify, setup, teardown),
      cmocka_unit_test_setup_teardown(test_qmatmul_lowbit_verify, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
