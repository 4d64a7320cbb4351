/* test_eval.c: the reference evaluator (ir/eval.c). Expected values are, where
 * possible, the explicit arrays of onnx's backend test case generators
 * (onnx/backend/test/case/node/<op>.py); the rest are computed by hand. */
#include <time.h>

#include "sem_test.h"

static struct lb_graph *G;
static int setup(void **s) { (void)s; G = lb_graph_new("t"); return 0; }
static int teardown(void **s) { (void)s; lb_graph_free(G); G = NULL; return 0; }

#define CF(name, type, ...) cst(G, name, type, (float[]){__VA_ARGS__})
#define CI64(name, type, ...) cst(G, name, type, (int64_t[]){__VA_ARGS__})
#define CI32(name, type, ...) cst(G, name, type, (int32_t[]){__VA_ARGS__})
#define CU8(name, type, ...) cst(G, name, type, (uint8_t[]){__VA_ARGS__})

static float *iota_f32(int64_t n, float start) {
  float *p = malloc(sizeof *p * (size_t)n);
  for (int64_t i = 0; i < n; i++) p[i] = start + (float)i;
  return p;
}

/* ---- elementwise binary ---- */
static void test_arith(void **s) {
  (void)s;
  struct lb_value *a = CF("a", TY(F32, 2, 3), 1, 2, 3, 4, 5, 6), *b = CF("b", TY(F32, 3), 1, 2, 3);
  float *y = eval1(G, MK(G, POW, 1, a, b)); /* onnx test_pow_bcast_array */
  CHECK_F32(y, 1, 4, 27, 4, 25, 216);
  free(y);
  y = eval1(G, MK(G, SUB, 1, a, b));
  CHECK_F32(y, 0, 0, 0, 3, 3, 3);
  free(y);
  y = eval1(G, MK(G, DIV, 1, b, a));
  CHECK_F32(y, 1, 1, 1, 0.25f, 0.4f, 0.5f);
  free(y);
  /* integer div truncates toward zero */
  struct lb_value *i = CI32("i", TY(I32, 4), -7, 7, -7, 7), *j = CI32("j", TY(I32, 4), 2, 2, -2, -2);
  int32_t *yi = eval1(G, MK(G, DIV, 1, i, j));
  CHECK_INTS(int32_t, yi, -3, 3, 3, -3);
  free(yi);
  /* wrapping int8 add */
  struct lb_value *c8 = cst(G, "c8", TY(I8, 2), (int8_t[]){127, -128});
  int8_t *y8 = eval1(G, MK(G, ADD, 1, c8, c8));
  CHECK_INTS(int8_t, y8, -2, 0);
  free(y8);
  struct lb_value *z = CI32("z", TY(I32, 1), 0);
  eval_node(G, MK(G, DIV, 1, i, z), NULL, "integer division by zero");
  /* pow types: onnx test_pow_types_* */
  struct lb_value *x64 = CI64("x64", TY(I64, 3), 1, 2, 3), *e64 = CI64("e64", TY(I64, 3), 4, 5, 6);
  struct lb_value *xf = CF("xf", TY(F32, 3), 1, 2, 3), *ef = CF("ef", TY(F32, 3), 4, 5, 6);
  int64_t *y64 = eval1(G, MK(G, POW, 1, x64, e64));
  CHECK_INTS(int64_t, y64, 1, 32, 729);
  free(y64);
  y64 = eval1(G, MK(G, POW, 1, x64, ef));
  CHECK_INTS(int64_t, y64, 1, 32, 729);
  free(y64);
  y = eval1(G, MK(G, POW, 1, xf, e64));
  CHECK_F32(y, 1, 32, 729);
  free(y);
  /* f64 and f16 go through the same paths */
  struct lb_value *d = cst(G, "d", TY(F64, 2), (double[]){0.1, 0.2});
  double *yd = eval1(G, MK(G, ADD, 1, d, d));
  assert_true(yd[0] == 0.2 && yd[1] == 0.4);
  free(yd);
  struct lb_value *h = cst(G, "h", TY(F16, 2), (uint16_t[]){0x3C00, 0x4000}); /* 1, 2 */
  uint16_t *yh = eval1(G, MK(G, MUL, 1, h, h));
  CHECK_INTS(uint16_t, yh, 0x3C00, 0x4400); /* 1, 4 */
  free(yh);
}

static void test_minmax_cmp(void **s) {
  (void)s;
  struct lb_value *d0 = CF("d0", TY(F32, 3), 3, 2, 1), *d1 = CF("d1", TY(F32, 3), 1, 4, 4);
  struct lb_value *d2 = CF("d2", TY(F32, 3), 2, 5, 3);
  float *y = eval1(G, MK(G, MAX, 1, d0, d1, d2)); /* onnx test_max_example */
  CHECK_F32(y, 3, 5, 4);
  free(y);
  y = eval1(G, MK(G, MIN, 1, d0, d1, d2)); /* onnx test_min_example */
  CHECK_F32(y, 1, 2, 1);
  free(y);
  y = eval1(G, MK(G, MAX, 1, d0));
  CHECK_F32(y, 3, 2, 1);
  free(y);
  struct lb_value *nan = CF("nan", TY(F32, 2), NAN, 1), *col = CF("col", TY(F32, 2, 1), 0, 5);
  y = eval1(G, MK(G, MAX, 1, nan, col)); /* NaN propagates, broadcast to [2,2] */
  CHECK_F32(y, NAN, 1, NAN, 5);
  free(y);
  uint8_t *b = eval1(G, MK(G, LESS, 1, d0, d1));
  CHECK_INTS(uint8_t, b, 0, 1, 1);
  free(b);
  b = eval1(G, MK(G, GREATER_EQUAL, 1, d0, d2));
  CHECK_INTS(uint8_t, b, 1, 0, 0);
  free(b);
  b = eval1(G, MK(G, EQUAL, 1, d1, CF("four", TY0(F32), 4)));
  CHECK_INTS(uint8_t, b, 0, 1, 1);
  free(b);
  struct lb_value *u = cst(G, "u", TY(U64, 2), (uint64_t[]){UINT64_MAX, 1});
  struct lb_value *u1 = cst(G, "u1", TY(U64, 1), (uint64_t[]){2});
  b = eval1(G, MK(G, GREATER, 1, u, u1)); /* unsigned comparison */
  CHECK_INTS(uint8_t, b, 1, 0);
  free(b);
  struct lb_value *p = CU8("p", TY(BOOL, 4), 0, 0, 1, 1), *q = CU8("q", TY(BOOL, 4), 0, 1, 0, 1);
  b = eval1(G, MK(G, AND, 1, p, q));
  CHECK_INTS(uint8_t, b, 0, 0, 0, 1);
  free(b);
  b = eval1(G, MK(G, OR, 1, p, q));
  CHECK_INTS(uint8_t, b, 0, 1, 1, 1);
  free(b);
  /* where: onnx test_where_example */
  struct lb_value *c = CU8("c", TY(BOOL, 2, 2), 1, 0, 1, 1);
  struct lb_value *x = CF("x", TY(F32, 2, 2), 1, 2, 3, 4), *yv = CF("y", TY(F32, 2, 2), 9, 8, 7, 6);
  y = eval1(G, MK(G, WHERE, 1, c, x, yv));
  CHECK_F32(y, 1, 8, 3, 4);
  free(y);
  /* where with broadcasting: cond [2,1], x scalar, y [3] */
  struct lb_value *c2 = CU8("c2", TY(BOOL, 2, 1), 1, 0);
  y = eval1(G, MK(G, WHERE, 1, c2, CF("s", TY0(F32), -1), CF("r", TY(F32, 3), 7, 8, 9)));
  CHECK_F32(y, -1, -1, -1, 7, 8, 9);
  free(y);
}

/* ---- unary ---- */
static void test_unary(void **s) {
  (void)s;
  struct lb_value *x = CF("x", TY(F32, 3), -1, 0, 1);
  float *y = eval1(G, MK(G, ERF, 1, x));
  CHECK_F32(y, -0.84270079f, 0, 0.84270079f);
  free(y);
  y = eval1(G, MK(G, TANH, 1, x));
  CHECK_F32(y, -0.76159416f, 0, 0.76159416f);
  free(y);
  y = eval1(G, MK(G, SIGMOID, 1, x));
  CHECK_F32(y, 0.26894142f, 0.5f, 0.73105858f);
  free(y);
  y = eval1(G, MK(G, RELU, 1, x));
  CHECK_F32(y, 0, 0, 1);
  free(y);
  struct lb_node *n = MK(G, LEAKY_RELU, 1, x); /* onnx test_leakyrelu_example */
  lb_node_set_attr_float(G, n, "alpha", 0.1);
  y = eval1(G, n);
  CHECK_F32(y, -0.1f, 0, 1);
  free(y);
  n = MK(G, HARD_SIGMOID, 1, x); /* onnx test_hardsigmoid_example */
  lb_node_set_attr_float(G, n, "alpha", 0.5);
  lb_node_set_attr_float(G, n, "beta", 0.6);
  y = eval1(G, n);
  CHECK_F32(y, 0.1f, 0.6f, 1);
  free(y);
  struct lb_value *hs = CF("hs", TY(F32, 4), -4, -1, 1, 4);
  y = eval1(G, MK(G, HARD_SWISH, 1, hs));
  CHECK_F32(y, 0, -1.0f / 3, 2.0f / 3, 4);
  free(y);
  n = MK(G, GELU, 1, x);
  y = eval1(G, n);
  CHECK_F32(y, -0.15865526f, 0, 0.84134474f);
  free(y);
  n = MK(G, GELU, 1, x);
  lb_node_set_attr_string(G, n, "approximate", "tanh");
  y = eval1(G, n);
  CHECK_F32(y, -0.15880801f, 0, 0.84119199f);
  free(y);
  struct lb_value *f = CF("f", TY(F32, 4), -1.5f, 1.2f, 4, 0.25f);
  y = eval1(G, MK(G, FLOOR, 1, f));
  CHECK_F32(y, -2, 1, 4, 0);
  free(y);
  y = eval1(G, MK(G, CEIL, 1, f));
  CHECK_F32(y, -1, 2, 4, 1);
  free(y);
  y = eval1(G, MK(G, ABS, 1, f));
  CHECK_F32(y, 1.5f, 1.2f, 4, 0.25f);
  free(y);
  y = eval1(G, MK(G, RECIPROCAL, 1, f));
  CHECK_F32(y, -2.0f / 3, 1 / 1.2f, 0.25f, 4);
  free(y);
  y = eval1(G, MK(G, SQRT, 1, CF("sq", TY(F32, 3), 1, 4, 9)));
  CHECK_F32(y, 1, 2, 3);
  free(y);
  y = eval1(G, MK(G, EXP, 1, x));
  CHECK_F32(y, 0.36787944f, 1, 2.71828175f);
  free(y);
  y = eval1(G, MK(G, LOG, 1, CF("lg", TY(F32, 2), 1, 10)));
  CHECK_F32(y, 0, 2.30258512f);
  free(y);
  y = eval1(G, MK(G, SIN, 1, x));
  CHECK_F32(y, -0.84147098f, 0, 0.84147098f);
  free(y);
  y = eval1(G, MK(G, COS, 1, x));
  CHECK_F32(y, 0.54030231f, 1, 0.54030231f);
  free(y);
  int64_t *yi = eval1(G, MK(G, NEG, 1, CI64("ni", TY(I64, 2), 5, INT64_MIN)));
  CHECK_INTS(int64_t, yi, -5, INT64_MIN);
  free(yi);
  uint8_t *yb = eval1(G, MK(G, NOT, 1, CU8("nb", TY(BOOL, 2), 0, 1)));
  CHECK_INTS(uint8_t, yb, 1, 0);
  free(yb);
  /* clip: onnx test_clip_example, and omitted min */
  struct lb_value *cx = CF("cx", TY(F32, 3), -2, 0, 2);
  y = eval1(G, MK(G, CLIP, 1, cx, CF("mn", TY0(F32), -1), CF("mx", TY0(F32), 1)));
  CHECK_F32(y, -1, 0, 1);
  free(y);
  y = eval1(G, MK(G, CLIP, 1, cx, NULL, CF("mx2", TY0(F32), 1)));
  CHECK_F32(y, -2, 0, 1);
  free(y);
  int32_t *y32 = eval1(G, MK(G, CLIP, 1, CI32("ci", TY(I32, 3), -5, 3, 9), CI32("cmin", TY0(I32), 0)));
  CHECK_INTS(int32_t, y32, 0, 3, 9);
  free(y32);
  float *yc = eval1(G, MK(G, IDENTITY, 1, cx));
  CHECK_F32(yc, -2, 0, 2);
  free(yc);
}

static void test_cast(void **s) {
  (void)s;
  struct lb_value *x = CF("x", TY(F32, 6), 1.9f, -1.9f, 1e10f, -1e10f, NAN, 0);
  struct lb_node *n = MK(G, CAST, 1, x);
  lb_node_set_attr_string(G, n, "to", "i32");
  int32_t *yi = eval1(G, n);
  CHECK_INTS(int32_t, yi, 1, -1, INT32_MAX, INT32_MIN, 0, 0);
  free(yi);
  n = MK(G, CAST, 1, x);
  lb_node_set_attr_string(G, n, "to", "u8");
  uint8_t *yu = eval1(G, n);
  CHECK_INTS(uint8_t, yu, 1, 0, 255, 0, 0, 0);
  free(yu);
  n = MK(G, CAST, 1, x);
  lb_node_set_attr_string(G, n, "to", "bool");
  yu = eval1(G, n);
  CHECK_INTS(uint8_t, yu, 1, 1, 1, 1, 1, 0);
  free(yu);
  /* f32 -> f16: round to nearest even, overflow to inf, subnormals */
  struct lb_value *h = CF("h", TY(F32, 7), 1.0f + 0x1p-11f, 1.0f + 3 * 0x1p-11f, 65519.0f, 65520.0f,
                          0x1p-24f, -2.5f, NAN);
  n = MK(G, CAST, 1, h);
  lb_node_set_attr_string(G, n, "to", "f16");
  uint16_t *y16 = eval1(G, n);
  CHECK_INTS(uint16_t, y16, 0x3C00, 0x3C02, 0x7BFF, 0x7C00, 0x0001, 0xC100);
  assert_true((y16[6] & 0x7C00) == 0x7C00 && (y16[6] & 0x3FF) != 0);
  free(y16);
  n = MK(G, CAST, 1, h);
  lb_node_set_attr_string(G, n, "to", "bf16");
  y16 = eval1(G, n);
  CHECK_INTS(uint16_t, y16, 0x3F80, 0x3F80, 0x4780, 0x4780, 0x3380, 0xC020);
  free(y16);
  struct lb_value *bf = CF("bf", TY(F32, 2), 1.0f + 0x1p-8f, 1.0f + 3 * 0x1p-8f);
  n = MK(G, CAST, 1, bf);
  lb_node_set_attr_string(G, n, "to", "bf16");
  y16 = eval1(G, n);
  CHECK_INTS(uint16_t, y16, 0x3F80, 0x3F82);
  free(y16);
  /* f16 -> f32 and int -> float / bool -> int */
  n = MK(G, CAST, 1, cst(G, "hh", TY(F16, 3), (uint16_t[]){0x3555, 0x8001, 0xFC00}));
  lb_node_set_attr_string(G, n, "to", "f32");
  float *yf = eval1(G, n);
  CHECK_F32(yf, 0.333251953125f, -0x1p-24f, -INFINITY);
  free(yf);
  n = MK(G, CAST, 1, CI64("big", TY(I64, 2), (int64_t)1 << 62, -3));
  lb_node_set_attr_string(G, n, "to", "f32");
  yf = eval1(G, n);
  CHECK_F32(yf, 0x1p62f, -3);
  free(yf);
  n = MK(G, CAST, 1, CI64("wrap", TY(I64, 2), 300, -1));
  lb_node_set_attr_string(G, n, "to", "u8");
  yu = eval1(G, n);
  CHECK_INTS(uint8_t, yu, 44, 255);
  free(yu);
  n = MK(G, CAST, 1, CU8("bb", TY(BOOL, 2), 1, 0));
  lb_node_set_attr_string(G, n, "to", "f64");
  double *yd = eval1(G, n);
  assert_true(yd[0] == 1.0 && yd[1] == 0.0);
  free(yd);
}

/* ---- reductions ---- */
static void test_reduce(void **s) {
  (void)s;
  /* onnx test_reduce_mean_keepdims_example */
  struct lb_value *x = CF("x", TY(F32, 3, 2, 2), 5, 1, 20, 2, 30, 1, 40, 2, 55, 1, 60, 2);
  struct lb_node *n = MK(G, REDUCE_MEAN, 1, x);
  lb_node_set_attr_ints(G, n, "axes", INTS(1));
  lb_node_set_attr_int(G, n, "keepdims", 1);
  float *y = eval1(G, n);
  expect_type(n->outputs[0], TY(F32, 3, 1, 2));
  CHECK_F32(y, 12.5f, 1.5f, 35, 1.5f, 57.5f, 1.5f);
  free(y);
  n = MK(G, REDUCE_SUM, 1, x); /* onnx test_reduce_sum_do_not_keepdims_example */
  lb_node_set_attr_ints(G, n, "axes", INTS(1));
  lb_node_set_attr_int(G, n, "keepdims", 0);
  y = eval1(G, n);
  CHECK_F32(y, 25, 3, 70, 3, 115, 3);
  free(y);
  n = MK(G, REDUCE_MAX, 1, x);
  lb_node_set_attr_ints(G, n, "axes", INTS(0, 2));
  y = eval1(G, n);
  CHECK_F32(y, 55, 60);
  free(y);
  n = MK(G, REDUCE_MIN, 1, x);
  lb_node_set_attr_ints(G, n, "axes", INTS(0, 1, 2));
  lb_node_set_attr_int(G, n, "keepdims", 0);
  y = eval1(G, n);
  CHECK_F32(y, 1);
  free(y);
  n = MK(G, REDUCE_MAX, 1, CF("nanx", TY(F32, 2, 2), 1, NAN, 3, 4));
  lb_node_set_attr_ints(G, n, "axes", INTS(1));
  y = eval1(G, n);
  CHECK_F32(y, NAN, 4);
  free(y);
  n = MK(G, REDUCE_MEAN, 1, CI32("xi", TY(I32, 2, 2), 1, 2, -3, -4));
  lb_node_set_attr_ints(G, n, "axes", INTS(1));
  int32_t *yi = eval1(G, n);
  CHECK_INTS(int32_t, yi, 1, -3); /* 3/2 and -7/2 truncate */
  free(yi);
}

/* ---- normalizations ---- */
static void test_norm(void **s) {
  (void)s;
  float *y = eval1(G, MK(G, SOFTMAX, 1, CF("x", TY(F32, 1, 3), -1, 0, 1)));
  CHECK_F32(y, 0.09003058f, 0.24472848f, 0.66524094f); /* onnx test_softmax_example */
  free(y);
  y = eval1(G, MK(G, LOG_SOFTMAX, 1, CF("x2", TY(F32, 1, 3), -1, 0, 1)));
  CHECK_F32(y, -2.40760596f, -1.40760596f, -0.40760596f); /* onnx test_logsoftmax_example_1 */
  free(y);
  /* axis 0 of [2,2], large values (max subtraction keeps it finite) */
  struct lb_node *n = MK(G, SOFTMAX, 1, CF("x3", TY(F32, 2, 2), 1000, 0, 1001, 0));
  lb_node_set_attr_int(G, n, "axis", 0);
  y = eval1(G, n);
  CHECK_F32(y, 0.26894142f, 0.5f, 0.73105858f, 0.5f);
  free(y);
  /* layer_norm over the last two dims of [2,1,3] (axis 1) */
  n = MK(G, LAYER_NORM, 1, CF("lx", TY(F32, 2, 1, 3), 1, 2, 3, 4, 6, 8),
         CF("ls", TY(F32, 1, 3), 1, 2, 1), CF("lb", TY(F32, 1), 0.5f));
  lb_node_set_attr_int(G, n, "axis", 1);
  lb_node_set_attr_float(G, n, "epsilon", 0);
  y = eval1(G, n);
  float r = 1.22474487f; /* 1/sqrt(2/3) and, for row 2, 2/sqrt(8/3) */
  CHECK_F32(y, -r + 0.5f, 0.5f, r + 0.5f, -r + 0.5f, 0.5f, r + 0.5f);
  free(y);
  /* batch_norm: onnx test_batchnorm_example's arithmetic on a small input */
  struct lb_value *bx = CF("bx", TY(F32, 1, 2, 1, 3), -1, 0, 1, 2, 3, 4);
  n = MK(G, BATCH_NORM, 1, bx, CF("bs", TY(F32, 2), 1.0f, 1.5f), CF("bb", TY(F32, 2), 0, 1),
         CF("bm", TY(F32, 2), 0, 3), CF("bv", TY(F32, 2), 1, 1.5f));
  y = eval1(G, n);
  CHECK_F32(y, -0.999995f, 0, 0.999995f, -0.22474074f, 1, 2.2247407f);
  free(y);
  /* layer_norm's mean and inv-std-dev outputs: per row of [2,1,3] at axis 1, shape [2,1,1] */
  n = MK(G, LAYER_NORM, 3, CF("lx2", TY(F32, 2, 1, 3), 1, 2, 3, 4, 6, 8),
         CF("ls2", TY(F32, 1, 3), 1, 2, 1));
  lb_node_set_attr_int(G, n, "axis", 1);
  lb_node_set_attr_float(G, n, "epsilon", 0);
  void *lo[3];
  assert_int_equal(eval_node(G, n, lo, NULL), LB_OK);
  CHECK_F32(lo[0], -r, 0, r, -r, 0, r);
  CHECK_F32(lo[1], 2, 6);
  CHECK_F32(lo[2], r, r / 2);
  for (int i = 0; i < 3; i++) free(lo[i]);
  /* batch_norm training_mode=1: batch statistics per channel over dims 0, 2, 3
   * (channel 0: -1 0 1 4 -> mean 1, var 3.5; channel 1: 2 3 4 7 -> mean 4, var 3.5) */
  struct lb_value *tx = CF("tx", TY(F32, 2, 2, 1, 2), -1, 0, 2, 3, 1, 4, 4, 7);
  n = MK(G, BATCH_NORM, 3, tx, CF("ts", TY(F32, 2), 1, 2), CF("tb", TY(F32, 2), 0, 1),
         CF("tm", TY(F32, 2), 10, 20), CF("tv", TY(F32, 2), 1, 2));
  lb_node_set_attr_int(G, n, "training_mode", 1);
  lb_node_set_attr_float(G, n, "momentum", 0.75);
  lb_node_set_attr_float(G, n, "epsilon", 0.5);
  void *bo[3];
  assert_int_equal(eval_node(G, n, bo, NULL), LB_OK);
  float k = 0.5f; /* 1/sqrt(3.5 + 0.5) */
  CHECK_F32(bo[0], -2 * k, -k, 2 * -2 * k + 1, 2 * -k + 1, 0, 3 * k, 2 * 0 + 1, 2 * 3 * k + 1);
  CHECK_F32(bo[1], 10 * 0.75f + 1 * 0.25f, 20 * 0.75f + 4 * 0.25f);
  CHECK_F32(bo[2], 1 * 0.75f + 3.5f * 0.25f, 2 * 0.75f + 3.5f * 0.25f);
  for (int i = 0; i < 3; i++) free(bo[i]);
}

/* ---- matmul family ---- */
static void test_matmul(void **s) {
  (void)s;
  struct lb_value *a = CF("a", TY(F32, 2, 3), 1, 2, 3, 4, 5, 6);
  struct lb_value *b = CF("b", TY(F32, 3, 2), 7, 8, 9, 10, 11, 12);
  float *y = eval1(G, MK(G, MATMUL, 1, a, b));
  CHECK_F32(y, 58, 64, 139, 154);
  free(y);
  /* batched with broadcast: [2,1,2] x [2,2] (identity and swap) */
  struct lb_value *ba = CF("ba", TY(F32, 2, 1, 2), 1, 2, 3, 4);
  struct lb_value *bb = CF("bb", TY(F32, 2, 2, 2), 1, 0, 0, 1, 0, 1, 1, 0);
  struct lb_node *n = MK(G, MATMUL, 1, ba, bb);
  y = eval1(G, n);
  expect_type(n->outputs[0], TY(F32, 2, 1, 2));
  CHECK_F32(y, 1, 2, 4, 3);
  free(y);
  /* 1-D operands */
  struct lb_value *v = CF("v", TY(F32, 3), 1, 0, -1);
  y = eval1(G, MK(G, MATMUL, 1, a, v));
  CHECK_F32(y, -2, -2);
  free(y);
  y = eval1(G, MK(G, MATMUL, 1, v, b));
  CHECK_F32(y, -4, -4);
  free(y);
  y = eval1(G, MK(G, MATMUL, 1, v, v));
  CHECK_F32(y, 2);
  free(y);
  int32_t *yi = eval1(G, MK(G, MATMUL, 1, CI32("ia", TY(I32, 1, 2), 3, -4), CI32("ib", TY(I32, 2, 1), 5, 6)));
  CHECK_INTS(int32_t, yi, -9);
  free(yi);
  /* gemm: alpha, beta, transA, transB, c broadcast as a row */
  n = MK(G, GEMM, 1, CF("ga", TY(F32, 3, 2), 1, 4, 2, 5, 3, 6), CF("gb", TY(F32, 2, 3), 7, 9, 11, 8, 10, 12),
         CF("gc", TY(F32, 2), 1, 2));
  lb_node_set_attr_int(G, n, "transA", 1);
  lb_node_set_attr_int(G, n, "transB", 1);
  lb_node_set_attr_float(G, n, "alpha", 0.5);
  lb_node_set_attr_float(G, n, "beta", 2);
  y = eval1(G, n);
  CHECK_F32(y, 31, 36, 71.5f, 81);
  free(y);
  /* fused_matmul: x [2,3] . w^T ([2,3] transposed) + bias, relu */
  n = MK(G, FUSED_MATMUL, 1, a, CF("w", TY(F32, 2, 3), 1, 0, 0, 0, -1, 0), CF("fb", TY(F32, 2), 0.5f, 1));
  lb_node_set_attr_int(G, n, "transB", 1);
  lb_node_set_attr_string(G, n, "act", "relu");
  y = eval1(G, n);
  CHECK_F32(y, 1.5f, 0, 4.5f, 0);
  free(y);
}

/* ---- conv and pools ---- */
static void test_conv(void **s) {
  (void)s;
  float *xd = iota_f32(25, 0), ones[9];
  for (int i = 0; i < 9; i++) ones[i] = 1;
  struct lb_value *x = cst(G, "x", TY(F32, 1, 1, 5, 5), xd), *w = cst(G, "w", TY(F32, 1, 1, 3, 3), ones);
  free(xd);
  struct lb_node *n = MK(G, CONV, 1, x, w); /* onnx test_basic_conv_with_padding */
  lb_node_set_attr_ints(G, n, "pads", INTS(1, 1, 1, 1));
  float *y = eval1(G, n);
  CHECK_F32(y, 12, 21, 27, 33, 24, 33, 54, 63, 72, 51, 63, 99, 108, 117, 81, 93, 144, 153, 162, 111,
            72, 111, 117, 123, 84);
  free(y);
  n = MK(G, CONV, 1, x, w); /* test_basic_conv_without_padding */
  y = eval1(G, n);
  CHECK_F32(y, 54, 63, 72, 99, 108, 117, 144, 153, 162);
  free(y);
  /* onnx test_conv_with_strides_{padding,no_padding,and_asymmetric_padding}: 7x5 input */
  float *x75 = iota_f32(35, 0);
  struct lb_value *xs = cst(G, "x75", TY(F32, 1, 1, 7, 5), x75);
  free(x75);
  n = MK(G, CONV, 1, xs, w);
  lb_node_set_attr_ints(G, n, "pads", INTS(1, 1, 1, 1));
  lb_node_set_attr_ints(G, n, "strides", INTS(2, 2));
  y = eval1(G, n);
  CHECK_F32(y, 12, 27, 24, 63, 108, 81, 123, 198, 141, 112, 177, 124);
  free(y);
  n = MK(G, CONV, 1, xs, w);
  lb_node_set_attr_ints(G, n, "strides", INTS(2, 2));
  y = eval1(G, n);
  CHECK_F32(y, 54, 72, 144, 162, 234, 252);
  free(y);
  n = MK(G, CONV, 1, xs, w);
  lb_node_set_attr_ints(G, n, "pads", INTS(1, 0, 1, 0));
  lb_node_set_attr_ints(G, n, "strides", INTS(2, 2));
  y = eval1(G, n);
  expect_type(n->outputs[0], TY(F32, 1, 1, 4, 2));
  CHECK_F32(y, 21, 33, 99, 117, 189, 207, 171, 183);
  free(y);
  /* dilation 2: taps at 0,2,4 of each axis -> sum of the 9 corner/edge cells */
  n = MK(G, CONV, 1, x, w);
  lb_node_set_attr_ints(G, n, "dilations", INTS(2, 2));
  y = eval1(G, n);
  CHECK_F32(y, 0 + 2 + 4 + 10 + 12 + 14 + 20 + 22 + 24);
  free(y);
  /* depthwise (group 2) 1-D with bias */
  n = MK(G, CONV, 1, CF("x1", TY(F32, 1, 2, 4), 1, 2, 3, 4, 10, 20, 30, 40),
         CF("w1", TY(F32, 2, 1, 2), 1, 1, 1, -1), CF("b1", TY(F32, 2), 0, 100));
  lb_node_set_attr_int(G, n, "group", 2);
  y = eval1(G, n);
  CHECK_F32(y, 3, 5, 7, 90, 90, 90);
  free(y);
  /* 3-D: 2x2x2 input, 2x2x2 ones kernel, 2 input channels summed */
  float x3[16];
  for (int i = 0; i < 16; i++) x3[i] = (float)i;
  float w3[16];
  for (int i = 0; i < 16; i++) w3[i] = 1;
  n = MK(G, CONV, 1, cst(G, "x3", TY(F32, 1, 2, 2, 2, 2), x3), cst(G, "w3", TY(F32, 1, 2, 2, 2, 2), w3));
  y = eval1(G, n);
  CHECK_F32(y, 120);
  free(y);
}

static void test_pool(void **s) {
  (void)s;
  float *x16 = iota_f32(16, 1), *x25 = iota_f32(25, 1);
  struct lb_value *a = cst(G, "a", TY(F32, 1, 1, 4, 4), x16), *b = cst(G, "b", TY(F32, 1, 1, 5, 5), x25);
  free(x16);
  free(x25);
  struct lb_node *n = MK(G, MAX_POOL, 1, a); /* onnx test_maxpool_2d_ceil */
  lb_node_set_attr_ints(G, n, "kernel_shape", INTS(3, 3));
  lb_node_set_attr_ints(G, n, "strides", INTS(2, 2));
  lb_node_set_attr_int(G, n, "ceil_mode", 1);
  float *y = eval1(G, n);
  CHECK_F32(y, 11, 12, 15, 16);
  free(y);
  n = MK(G, AVERAGE_POOL, 1, a); /* onnx test_averagepool_2d_ceil */
  lb_node_set_attr_ints(G, n, "kernel_shape", INTS(3, 3));
  lb_node_set_attr_ints(G, n, "strides", INTS(2, 2));
  lb_node_set_attr_int(G, n, "ceil_mode", 1);
  y = eval1(G, n);
  CHECK_F32(y, 6, 7.5f, 12, 13.5f);
  free(y);
  n = MK(G, MAX_POOL, 1, b); /* onnx test_maxpool_2d_precomputed_pads */
  lb_node_set_attr_ints(G, n, "kernel_shape", INTS(5, 5));
  lb_node_set_attr_ints(G, n, "pads", INTS(2, 2, 2, 2));
  y = eval1(G, n);
  CHECK_F32(y, 13, 14, 15, 15, 15, 18, 19, 20, 20, 20, 23, 24, 25, 25, 25, 23, 24, 25, 25, 25, 23, 24,
            25, 25, 25);
  free(y);
  n = MK(G, AVERAGE_POOL, 1, b); /* onnx test_averagepool_2d_precomputed_pads */
  lb_node_set_attr_ints(G, n, "kernel_shape", INTS(5, 5));
  lb_node_set_attr_ints(G, n, "pads", INTS(2, 2, 2, 2));
  y = eval1(G, n);
  CHECK_F32(y, 7, 7.5f, 8, 8.5f, 9, 9.5f, 10, 10.5f, 11, 11.5f, 12, 12.5f, 13, 13.5f, 14, 14.5f, 15,
            15.5f, 16, 16.5f, 17, 17.5f, 18, 18.5f, 19);
  free(y);
  n = MK(G, AVERAGE_POOL, 1, b); /* ..._count_include_pad */
  lb_node_set_attr_ints(G, n, "kernel_shape", INTS(5, 5));
  lb_node_set_attr_ints(G, n, "pads", INTS(2, 2, 2, 2));
  lb_node_set_attr_int(G, n, "count_include_pad", 1);
  y = eval1(G, n);
  CHECK_F32(y, 2.52f, 3.6f, 4.8f, 4.08f, 3.24f, 4.56f, 6.4f, 8.4f, 7.04f, 5.52f, 7.2f, 10, 13, 10.8f,
            8.4f, 6.96f, 9.6f, 12.4f, 10.24f, 7.92f, 6.12f, 8.4f, 10.8f, 8.88f, 6.84f);
  free(y);
  n = MK(G, MAX_POOL, 1, b); /* onnx test_maxpool_2d_dilations-like: k2 d2 on 5x5 -> 3x3 */
  lb_node_set_attr_ints(G, n, "kernel_shape", INTS(2, 2));
  lb_node_set_attr_ints(G, n, "dilations", INTS(2, 2));
  y = eval1(G, n);
  CHECK_F32(y, 13, 14, 15, 18, 19, 20, 23, 24, 25);
  free(y);
  n = MK(G, MAX_POOL, 1, CF("m1", TY(F32, 1, 1, 4), -5, -1, -7, -2)); /* 1-D, pads as -inf */
  lb_node_set_attr_ints(G, n, "kernel_shape", INTS(2));
  lb_node_set_attr_ints(G, n, "strides", INTS(2));
  lb_node_set_attr_ints(G, n, "pads", INTS(1, 1));
  y = eval1(G, n);
  CHECK_F32(y, -5, -1, -2);
  free(y);
  y = eval1(G, MK(G, GLOBAL_AVERAGE_POOL, 1, CF("g", TY(F32, 1, 2, 2, 1), 1, 2, 3, 5)));
  CHECK_F32(y, 1.5f, 4);
  free(y);
  /* indices: onnx test_maxpool_with_argmax_2d_precomputed_pads (row-major) */
  n = MK(G, MAX_POOL, 2, b);
  lb_node_set_attr_ints(G, n, "kernel_shape", INTS(5, 5));
  lb_node_set_attr_ints(G, n, "pads", INTS(2, 2, 2, 2));
  void *o[2];
  assert_int_equal(eval_node(G, n, o, NULL), LB_OK);
  CHECK_INTS(int64_t, o[1], 12, 13, 14, 14, 14, 17, 18, 19, 19, 19, 22, 23, 24, 24, 24, 22, 23, 24,
             24, 24, 22, 23, 24, 24, 24);
  free(o[0]);
  free(o[1]);
  /* ..._precomputed_strides with storage_order 1 (column-major) */
  n = MK(G, MAX_POOL, 2, b);
  lb_node_set_attr_ints(G, n, "kernel_shape", INTS(2, 2));
  lb_node_set_attr_ints(G, n, "strides", INTS(2, 2));
  lb_node_set_attr_int(G, n, "storage_order", 1);
  assert_int_equal(eval_node(G, n, o, NULL), LB_OK);
  CHECK_F32(o[0], 7, 9, 17, 19);
  CHECK_INTS(int64_t, o[1], 6, 16, 8, 18);
  free(o[0]);
  free(o[1]);
  /* two planes, ties (the first maximum wins), NaN skipped, an all-NaN window gives -1 */
  n = MK(G, MAX_POOL, 2, CF("mi", TY(F32, 1, 2, 4), 3, 3, NAN, 1, NAN, NAN, 2, 5));
  lb_node_set_attr_ints(G, n, "kernel_shape", INTS(2));
  lb_node_set_attr_ints(G, n, "strides", INTS(2));
  assert_int_equal(eval_node(G, n, o, NULL), LB_OK);
  CHECK_F32(o[0], 3, 1, -INFINITY, 5);
  CHECK_INTS(int64_t, o[1], 0, 3, -1, 7);
  free(o[0]);
  free(o[1]);
  /* u8 and i8 (onnx test_maxpool_2d_uint8: 5x5 iota, k5 pads 2) */
  uint8_t u25[25];
  for (int i = 0; i < 25; i++) u25[i] = (uint8_t)(i + 1);
  n = MK(G, MAX_POOL, 1, cst(G, "u", TY(U8, 1, 1, 5, 5), u25));
  lb_node_set_attr_ints(G, n, "kernel_shape", INTS(5, 5));
  lb_node_set_attr_ints(G, n, "pads", INTS(2, 2, 2, 2));
  uint8_t *yu = eval1(G, n);
  CHECK_INTS(uint8_t, yu, 13, 14, 15, 15, 15, 18, 19, 20, 20, 20, 23, 24, 25, 25, 25, 23, 24, 25, 25,
             25, 23, 24, 25, 25, 25);
  free(yu);
  n = MK(G, MAX_POOL, 1, cst(G, "i8", TY(I8, 1, 1, 4), (int8_t[]){-128, -100, 127, -1}));
  lb_node_set_attr_ints(G, n, "kernel_shape", INTS(2));
  lb_node_set_attr_ints(G, n, "strides", INTS(2));
  int8_t *yi = eval1(G, n);
  CHECK_INTS(int8_t, yi, -100, 127);
  free(yi);
}

/* ---- data movement ---- */
static void test_move(void **s) {
  (void)s;
  struct lb_value *x = CF("x", TY(F32, 2, 3), 1, 2, 3, 4, 5, 6);
  struct lb_node *n = MK(G, TRANSPOSE, 1, x);
  lb_node_set_attr_ints(G, n, "perm", INTS(1, 0));
  float *y = eval1(G, n);
  CHECK_F32(y, 1, 4, 2, 5, 3, 6);
  free(y);
  n = MK(G, RESHAPE, 1, x);
  lb_node_set_attr_ints(G, n, "shape", INTS(3, 2));
  y = eval1(G, n);
  CHECK_F32(y, 1, 2, 3, 4, 5, 6);
  free(y);
  n = MK(G, CONCAT, 1, x, CF("x2", TY(F32, 2, 1), 7, 8));
  lb_node_set_attr_int(G, n, "axis", 1);
  y = eval1(G, n);
  CHECK_F32(y, 1, 2, 3, 7, 4, 5, 6, 8);
  free(y);
  n = MK(G, SPLIT, 2, x);
  lb_node_set_attr_int(G, n, "axis", 1);
  lb_node_set_attr_ints(G, n, "split", INTS(2, 1));
  void *outs[2];
  assert_int_equal(eval_node(G, n, outs, NULL), LB_OK);
  CHECK_F32(outs[0], 1, 2, 4, 5);
  CHECK_F32(outs[1], 3, 6);
  free(outs[0]);
  free(outs[1]);
  /* slice with negative steps: rows reversed, every 2nd column from the end,
   * ends -1 meaning 'before index 0' */
  n = MK(G, SLICE, 1, x);
  lb_node_set_attr_ints(G, n, "starts", INTS(1, 2));
  lb_node_set_attr_ints(G, n, "ends", INTS(-1, -1));
  lb_node_set_attr_ints(G, n, "steps", INTS(-1, -2));
  y = eval1(G, n);
  expect_type(n->outputs[0], TY(F32, 2, 2));
  CHECK_F32(y, 6, 4, 3, 1);
  free(y);
  n = MK(G, SLICE, 1, x); /* onnx test_slice-like: x[0:2, 1:3] */
  lb_node_set_attr_ints(G, n, "starts", INTS(0, 1));
  lb_node_set_attr_ints(G, n, "ends", INTS(2, 3));
  lb_node_set_attr_ints(G, n, "steps", INTS(1, 1));
  y = eval1(G, n);
  CHECK_F32(y, 2, 3, 5, 6);
  free(y);
  /* gather: onnx test_gather_negative_indices, and axis 1 with 2-D indices */
  float *ar = iota_f32(10, 0);
  n = MK(G, GATHER, 1, cst(G, "ar", TY(F32, 10), ar), CI64("gi", TY(I64, 3), 0, -9, -10));
  free(ar);
  y = eval1(G, n);
  CHECK_F32(y, 0, 1, 0);
  free(y);
  n = MK(G, GATHER, 1, x, CI32("gj", TY(I32, 2, 2), 2, 0, -1, 1));
  lb_node_set_attr_int(G, n, "axis", 1);
  y = eval1(G, n);
  expect_type(n->outputs[0], TY(F32, 2, 2, 2));
  CHECK_F32(y, 3, 1, 3, 2, 6, 4, 6, 5);
  free(y);
  n = MK(G, GATHER, 1, x, CI64("bad", TY(I64, 1), 2));
  eval_node(G, n, NULL, "indices[0] = 2 is out of range for dim 0 of size 2");
  n = MK(G, GATHER, 1, x, CI64("bad2", TY(I64, 1), -3));
  eval_node(G, n, NULL, "out of range");
  n = MK(G, EXPAND, 1, CF("e", TY(F32, 3, 1), 1, 2, 3)); /* onnx test_expand_dim_changed */
  lb_node_set_attr_ints(G, n, "shape", INTS(2, 3, 2));
  y = eval1(G, n);
  CHECK_F32(y, 1, 1, 2, 2, 3, 3, 1, 1, 2, 2, 3, 3);
  free(y);
  /* trilu (onnx test_triu / test_tril with k) */
  struct lb_value *t = CI64("t", TY(I64, 3, 3), 1, 2, 3, 4, 5, 6, 7, 8, 9);
  n = MK(G, TRILU, 1, t);
  int64_t *yi = eval1(G, n);
  CHECK_INTS(int64_t, yi, 1, 2, 3, 0, 5, 6, 0, 0, 9);
  free(yi);
  n = MK(G, TRILU, 1, t);
  lb_node_set_attr_int(G, n, "upper", 0);
  lb_node_set_attr_int(G, n, "k", -1);
  yi = eval1(G, n);
  CHECK_INTS(int64_t, yi, 0, 0, 0, 4, 0, 0, 7, 8, 0);
  free(yi);
  n = MK(G, TRILU, 1, t);
  lb_node_set_attr_int(G, n, "k", 1);
  yi = eval1(G, n);
  CHECK_INTS(int64_t, yi, 0, 2, 3, 0, 0, 6, 0, 0, 0);
  free(yi);
}

/* ---- pad ---- */
/* A pad node on x with canonical attributes. */
static struct lb_node *mk_pad(struct lb_value *x, const char *mode, const int64_t *pads,
                              int64_t n_pads, double value) {
  struct lb_node *n = MK(G, PAD, 1, x);
  lb_node_set_attr_string(G, n, "mode", mode);
  lb_node_set_attr_ints(G, n, "pads", pads, n_pads);
  lb_node_set_attr_float(G, n, "value", value);
  return n;
}

/* Oracle for pads >= 0 written the way numpy.pad works: one axis after the
 * other on the already padded array (onnx's pad.py expected values are
 * np.pad's). Pads must be < the dim for reflect. Returns a malloc'd array. */
static double *np_pad(const double *x, const int64_t *dims, int32_t rank, const int64_t *pads,
                      char mode, double value, int64_t *out_n) {
  int64_t cur[LB_MAX_RANK], n = 1;
  for (int32_t k = 0; k < rank; k++) n *= (cur[k] = dims[k]);
  double *a = malloc(sizeof *a * (size_t)(n ? n : 1));
  memcpy(a, x, sizeof *a * (size_t)n);
  for (int32_t ax = 0; ax < rank; ax++) {
    int64_t b = pads[ax], e = pads[rank + ax], len = cur[ax], nl = len + b + e;
    int64_t outer = 1, inner = 1;
    for (int32_t k = 0; k < ax; k++) outer *= cur[k];
    for (int32_t k = ax + 1; k < rank; k++) inner *= cur[k];
    double *r = malloc(sizeof *r * (size_t)(outer * nl * inner + 1));
    for (int64_t o = 0; o < outer; o++)
      for (int64_t j = 0; j < nl; j++)
        for (int64_t i = 0; i < inner; i++) {
          int64_t src, jj = j - b; /* jj < 0: the j-th element before the start */
          if (jj >= 0 && jj < len) src = jj;
          else if (mode == 'e') src = jj < 0 ? 0 : len - 1;
          else if (mode == 'r') src = jj < 0 ? -jj : 2 * (len - 1) - jj;
          else if (mode == 'w') src = jj < 0 ? len + jj : jj - len;
          else src = -1;
          r[(o * nl + j) * inner + i] = src < 0 ? value : a[(o * len + src) * inner + i];
        }
    free(a);
    a = r;
    cur[ax] = nl;
  }
  *out_n = 1;
  for (int32_t k = 0; k < rank; k++) *out_n *= cur[k];
  return a;
}

/* onnx pad.py: x [1,3,4,5] (iota here, random there) padded by np.pad. */
static void check_pad_case(enum lb_dtype dt, const char *mode, const int64_t *pads,
                           int64_t n_pads, double value) {
  assert_int_equal(n_pads, 8);
  int64_t dims[4] = {1, 3, 4, 5};
  double xd[60];
  float xf[60];
  int32_t xi[60];
  for (int i = 0; i < 60; i++) xd[i] = xf[i] = (float)(xi[i] = i * 7 % 61 - 30);
  struct lb_type t = ty(dt, dims, 4);
  static int count;
  char name[32];
  snprintf(name, sizeof name, "x%d", count++);
  struct lb_value *x = cst(G, name, t, dt == LB_DTYPE_F32 ? (void *)xf : (void *)xi);
  struct lb_node *n = mk_pad(x, mode, pads, 8, value);
  void *y = eval1(G, n);
  int64_t ne;
  double *want = np_pad(xd, dims, 4, pads, mode[0], (float)value, &ne);
  int64_t od[4];
  for (int k = 0; k < 4; k++) od[k] = dims[k] + pads[k] + pads[4 + k];
  expect_type(n->outputs[0], ty(dt, od, 4));
  for (int64_t i = 0; i < ne; i++) {
    double got = dt == LB_DTYPE_F32 ? ((float *)y)[i] : ((int32_t *)y)[i];
    if (got != want[i]) {
      print_message("%s: element %lld: got %g, want %g\n", mode, (long long)i, got, want[i]);
      fail();
    }
  }
  free(want);
  free(y);
}

static void test_pad(void **s) {
  (void)s;
  /* the examples of the ONNX Pad spec (x [3,2]) */
  struct lb_value *x = CF("x", TY(F32, 3, 2), 1.0f, 1.2f, 2.3f, 3.4f, 4.5f, 5.7f);
  struct lb_node *n = mk_pad(x, "constant", INTS(0, 2, 0, 0), 0.0);
  float *y = eval1(G, n);
  expect_type(n->outputs[0], TY(F32, 3, 4));
  CHECK_F32(y, 0, 0, 1.0f, 1.2f, 0, 0, 2.3f, 3.4f, 0, 0, 4.5f, 5.7f);
  free(y);
  y = eval1(G, mk_pad(x, "reflect", INTS(0, 2, 0, 0), 0.0));
  CHECK_F32(y, 1.0f, 1.2f, 1.0f, 1.2f, 2.3f, 3.4f, 2.3f, 3.4f, 4.5f, 5.7f, 4.5f, 5.7f);
  free(y);
  y = eval1(G, mk_pad(x, "edge", INTS(0, 2, 0, 0), 0.0));
  CHECK_F32(y, 1.0f, 1.0f, 1.0f, 1.2f, 2.3f, 2.3f, 2.3f, 3.4f, 4.5f, 4.5f, 4.5f, 5.7f);
  free(y);
  n = mk_pad(x, "wrap", INTS(2, 1, 1, 1), 0.0);
  y = eval1(G, n);
  expect_type(n->outputs[0], TY(F32, 6, 4));
  CHECK_F32(y, 3.4f, 2.3f, 3.4f, 2.3f, 5.7f, 4.5f, 5.7f, 4.5f, 1.2f, 1.0f, 1.2f, 1.0f,
            3.4f, 2.3f, 3.4f, 2.3f, 5.7f, 4.5f, 5.7f, 4.5f, 1.2f, 1.0f, 1.2f, 1.0f);
  free(y);

  /* pad.py: test_constant_pad (f32, value 1.2), test_edge_pad / test_reflect_pad /
   * test_wrap_pad (i32), test_constant_pad_axes (axes [1,3] written out) */
  check_pad_case(LB_DTYPE_F32, "constant", INTS(0, 0, 1, 3, 0, 0, 2, 4), 1.2);
  check_pad_case(LB_DTYPE_I32, "edge", INTS(0, 0, 1, 1, 0, 0, 1, 1), 0);
  check_pad_case(LB_DTYPE_I32, "reflect", INTS(0, 0, 1, 1, 0, 0, 1, 1), 0);
  check_pad_case(LB_DTYPE_I32, "wrap", INTS(0, 0, 1, 1, 0, 0, 1, 1), 0);
  check_pad_case(LB_DTYPE_F32, "constant", INTS(0, 0, 0, 3, 0, 0, 0, 4), 1.2);
  check_pad_case(LB_DTYPE_F32, "reflect", INTS(0, 2, 3, 0, 0, 0, 1, 4), 0);

  /* pads larger than the dim: reflect and wrap keep going periodically (np.pad) */
  struct lb_value *r = CF("r", TY(F32, 3), 1, 2, 3);
  y = eval1(G, mk_pad(r, "reflect", INTS(5, 0), 0.0));
  CHECK_F32(y, 2, 1, 2, 3, 2, 1, 2, 3);
  free(y);
  y = eval1(G, mk_pad(r, "wrap", INTS(4, 2), 0.0));
  CHECK_F32(y, 3, 1, 2, 3, 1, 2, 3, 1, 2);
  free(y);
  y = eval1(G, mk_pad(r, "edge", INTS(2, 3), 0.0));
  CHECK_F32(y, 1, 1, 1, 2, 3, 3, 3, 3);
  free(y);
  y = eval1(G, mk_pad(CF("one", TY(F32, 1), 5), "reflect", INTS(2, 1), 0.0));
  CHECK_F32(y, 5, 5, 5, 5);
  free(y);

  /* negative pads crop first, then the modes extend the kept part */
  struct lb_value *c = CF("c", TY(F32, 2, 3), 1, 2, 3, 4, 5, 6);
  n = mk_pad(c, "edge", INTS(0, -1, 0, 1), 0.0);
  y = eval1(G, n);
  expect_type(n->outputs[0], TY(F32, 2, 3));
  CHECK_F32(y, 2, 3, 3, 5, 6, 6);
  free(y);
  y = eval1(G, mk_pad(c, "constant", INTS(-1, 1, 0, -2), 9.0));
  CHECK_F32(y, 9, 4);
  free(y);
  y = eval1(G, mk_pad(c, "reflect", INTS(0, 2, 0, -1), 0.0));
  CHECK_F32(y, 1, 2, 1, 2, 4, 5, 4, 5);
  free(y);
  y = eval1(G, mk_pad(c, "wrap", INTS(1, -2, 0, 1), 0.0));
  CHECK_F32(y, 6, 6, 3, 3, 6, 6);
  free(y);
  n = mk_pad(c, "constant", INTS(0, -3, 0, 0), 0.0); /* crop everything */
  free(eval1(G, n));
  expect_type(n->outputs[0], TY(F32, 2, 0));

  /* other dtypes: the fill converts like a cast */
  n = mk_pad(CI64("l", TY(I64, 2), 5, 6), "constant", INTS(1, 1), -7.0);
  int64_t *yl = eval1(G, n);
  CHECK_INTS(int64_t, yl, -7, 5, 6, -7);
  free(yl);
  n = mk_pad(CU8("b", TY(BOOL, 2), 0, 1), "constant", INTS(1, 0), 1.0);
  uint8_t *yb = eval1(G, n);
  CHECK_INTS(uint8_t, yb, 1, 0, 1);
  free(yb);
  n = mk_pad(CU8("u", TY(U8, 1), 3), "constant", INTS(1, 1), 300.0);
  yb = eval1(G, n);
  CHECK_INTS(uint8_t, yb, 255, 3, 255);
  free(yb);
  uint16_t h[2] = {0x3c00, 0xc000}; /* 1.0, -2.0 */
  n = mk_pad(cst(G, "h", TY(F16, 2), h), "constant", INTS(0, 1), 1.2);
  uint16_t *yh = eval1(G, n);
  CHECK_INTS(uint16_t, yh, 0x3c00, 0xc000, 0x3ccd); /* 1.2 rounds to 0x3ccd in f16 */
  free(yh);
  n = mk_pad(cst(G, "h2", TY(F16, 2), h), "edge", INTS(1, 1), 0.0);
  yh = eval1(G, n);
  CHECK_INTS(uint16_t, yh, 0x3c00, 0x3c00, 0xc000, 0xc000);
  free(yh);
  /* rank 0: nothing to pad */
  y = eval1(G, mk_pad(CF("s0", TY0(F32), 4), "constant", (int64_t[]){0}, 0, 0.0));
  CHECK_F32(y, 4);
  free(y);
}

/* Constant folding must handle a [4096,4096] transpose quickly. */
static void test_big_transpose(void **s) {
  (void)s;
  const int64_t N = 4096;
  float *xd = malloc(sizeof *xd * (size_t)(N * N));
  for (int64_t i = 0; i < N * N; i++) xd[i] = (float)i;
  struct lb_value *x = cst(G, "x", TY(F32, N, N), xd);
  free(xd);
  struct lb_node *n = MK(G, TRANSPOSE, 1, x);
  lb_node_set_attr_ints(G, n, "perm", INTS(1, 0));
  clock_t t0 = clock();
  float *y = eval1(G, n);
  double secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
  print_message("[4096,4096] transpose: %.3f s\n", secs);
  assert_true(y[1] == (float)N && y[N] == 1.0f && y[N * N - 1] == (float)(N * N - 1));
  assert_true(secs < 2.0);
  free(y);
}

/* ---- const ---- */
static void test_const(void **s) {
  (void)s;
  struct lb_value *c = CF("c", TY(F32, 2), 3, 4);
  float *y = eval1(G, c->producer);
  CHECK_F32(y, 3, 4);
  free(y);
}

/* ---- quantization ---- */
static void test_quant(void **s) {
  (void)s;
  /* onnx test_quantizelinear */
  struct lb_node *n = MK(G, QUANTIZE_LINEAR, 1, CF("x", TY(F32, 6), 0, 2, 3, 1000, -254, -1000),
                         CF("s", TY0(F32), 2), CU8("zp", TY0(U8), 128));
  uint8_t *y = eval1(G, n);
  CHECK_INTS(uint8_t, y, 128, 129, 130, 255, 1, 0);
  free(y);
  /* round half to even, i8 saturation */
  n = MK(G, QUANTIZE_LINEAR, 1, CF("xh", TY(F32, 5), 0.5f, 1.5f, 2.5f, -2.5f, 300),
         CF("s1", TY0(F32), 1), cst(G, "z8", TY0(I8), (int8_t[]){0}));
  int8_t *y8 = eval1(G, n);
  CHECK_INTS(int8_t, y8, 0, 2, 2, -2, 127);
  free(y8);
  /* onnx test_quantizelinear_axis (per-channel, axis 1) */
  n = MK(G, QUANTIZE_LINEAR, 1,
         CF("xa", TY(F32, 1, 3, 3, 2), -162, 10, -100, 232, -20, -50, -76, 0, 0, 252, 32, -44, 245,
            -485, -960, -270, -375, -470),
         CF("sa", TY(F32, 3), 2, 4, 5), CU8("za", TY(U8, 3), 84, 24, 196));
  lb_node_set_attr_int(G, n, "axis", 1);
  y = eval1(G, n);
  CHECK_INTS(uint8_t, y, 3, 89, 34, 200, 74, 59, 5, 24, 24, 87, 32, 13, 245, 99, 4, 142, 121, 102);
  free(y);
  /* onnx test_dequantizelinear */
  n = MK(G, DEQUANTIZE_LINEAR, 1, CU8("q", TY(U8, 4), 0, 3, 128, 255), CF("ds", TY0(F32), 2),
         CU8("dz", TY0(U8), 128));
  float *f = eval1(G, n);
  CHECK_F32(f, -256, -250, 0, 254);
  free(f);
  /* onnx test_dynamicquantizelinear{,_max_adjusted,_min_adjusted} */
  void *o[3];
  n = MK(G, DYNAMIC_QUANTIZE_LINEAR, 3, CF("d1", TY(F32, 6), 0, 2, -3, -2.5f, 1.34f, 0.5f));
  assert_int_equal(eval_node(G, n, o, NULL), LB_OK);
  CHECK_INTS(uint8_t, o[0], 153, 255, 0, 26, 221, 179);
  CHECK_F32(o[1], 0.0196078438f);
  CHECK_INTS(uint8_t, o[2], 153);
  for (int i = 0; i < 3; i++) free(o[i]);
  n = MK(G, DYNAMIC_QUANTIZE_LINEAR, 3, CF("d2", TY(F32, 6), -1.0f, -2.1f, -1.3f, -2.5f, -3.34f, -4.0f));
  assert_int_equal(eval_node(G, n, o, NULL), LB_OK);
  CHECK_INTS(uint8_t, o[0], 191, 121, 172, 96, 42, 0);
  CHECK_F32(o[1], 0.0156862754f);
  CHECK_INTS(uint8_t, o[2], 255);
  for (int i = 0; i < 3; i++) free(o[i]);
  n = MK(G, DYNAMIC_QUANTIZE_LINEAR, 3,
         CF("d3", TY(F32, 3, 4), 1, 2.1f, 1.3f, 2.5f, 3.34f, 4.0f, 1.5f, 2.6f, 3.9f, 4.0f, 3.0f, 2.345f));
  assert_int_equal(eval_node(G, n, o, NULL), LB_OK);
  CHECK_INTS(uint8_t, o[0], 64, 134, 83, 159, 213, 255, 96, 166, 249, 255, 191, 149);
  CHECK_INTS(uint8_t, o[2], 0);
  for (int i = 0; i < 3; i++) free(o[i]);
  /* onnx test_matmulinteger */
  n = MK(G, MATMUL_INTEGER, 1, CU8("A", TY(U8, 4, 3), 11, 7, 3, 10, 6, 2, 9, 5, 1, 8, 4, 0),
         CU8("B", TY(U8, 3, 2), 1, 4, 2, 5, 3, 6), CU8("azp", TY(U8, 1), 12), CU8("bzp", TY(U8, 1), 0));
  int32_t *yi = eval1(G, n);
  CHECK_INTS(int32_t, yi, -38, -83, -44, -98, -50, -113, -56, -128);
  free(yi);
  /* per-row a zero point and per-column b zero point */
  n = MK(G, MATMUL_INTEGER, 1, CU8("A2", TY(U8, 2, 2), 1, 2, 3, 4), CU8("B2", TY(U8, 2, 2), 5, 6, 7, 8),
         CU8("az2", TY(U8, 2), 1, 3), CU8("bz2", TY(U8, 2), 5, 6));
  yi = eval1(G, n);
  CHECK_INTS(int32_t, yi, 2, 2, 2, 2); /* [[0,1],[0,1]] . [[0,0],[2,2]] */
  free(yi);
  /* onnx test_qlinearmatmul_2D */
  n = MK(G, QLINEAR_MATMUL, 1, CU8("qa", TY(U8, 2, 4), 208, 236, 0, 238, 3, 214, 255, 29),
         CF("qas", TY(F32, 1), 0.0066f), CU8("qaz", TY(U8, 1), 113),
         CU8("qb", TY(U8, 4, 3), 152, 51, 244, 60, 26, 255, 0, 127, 246, 127, 254, 247),
         CF("qbs", TY(F32, 1), 0.00705f), CU8("qbz", TY(U8, 1), 114), CF("qys", TY(F32, 1), 0.0107f),
         CU8("qyz", TY(U8, 1), 118));
  y = eval1(G, n);
  CHECK_INTS(uint8_t, y, 168, 115, 255, 1, 66, 151);
  free(y);
}

/* ---- qmatmul: hand-computed cases of docs/ir-ops.md "Quantized matmul" ---- */
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

static struct lb_node *qmm(struct lb_value *a, struct lb_value *w, struct lb_value *bias,
                           const char *a_quant, const char *act) {
  struct lb_node *n = bias ? MK(G, QMATMUL, 1, a, w, bias) : MK(G, QMATMUL, 1, a, w);
  lb_node_set_attr_string(G, n, "a_quant", a_quant);
  if (act) lb_node_set_attr_string(G, n, "act", act);
  return n;
}

static void test_qmatmul(void **s) {
  (void)s;
  /* w = [[1,-2],[3,4],[-5,6]], scales per column [0.5, 0.25] */
  struct lb_value *w = cst(G, "w", TY(I8, 3, 2), (int8_t[]){1, -2, 3, 4, -5, 6});
  w->qparams = qmm_qp(1, (const float[]){0.5f, 0.25f}, 2, NULL, false);
  struct lb_value *bias = CF("bias", TY(F32, 2), 1.0f, 0.5f);
  /* static, signed symmetric, sa = 0.25: q = [[2,-4,2],[5,0,-4]] (1.5 -> 2 and
   * -3.5 -> -4: ties to even); acc = [[-20,-8],[25,-34]]; y = acc * 0.25 * scale */
  struct lb_value *a = CF("a", TY(F32, 1, 2, 3), 0.5f, -1.0f, 0.375f, 1.25f, 0.0f, -0.875f);
  a->qparams = qmm_qp(-1, (const float[]){0.25f}, 1, NULL, false);
  float *y = eval1(G, qmm(a, w, NULL, "static", NULL));
  CHECK_F32(y, -2.5f, -0.5f, 3.125f, -2.125f);
  free(y);
  y = eval1(G, qmm(a, w, bias, "static", NULL));
  CHECK_F32(y, -1.5f, 0.0f, 4.125f, -1.625f);
  free(y);
  y = eval1(G, qmm(a, w, bias, "static", "relu"));
  CHECK_F32(y, 0.0f, 0.0f, 4.125f, 0.0f);
  free(y);
  /* requantized output: u8 (sy 0.5, zy 100) and i8 (sy 1/32: 4.125 saturates) */
  struct lb_node *n = qmm(a, w, bias, "static", NULL);
  n->outputs[0]->type.dtype = LB_DTYPE_U8;
  n->outputs[0]->qparams = qmm_qp(-1, (const float[]){0.5f}, 1, (const int32_t[]){100}, true);
  y = eval1(G, n);
  CHECK_INTS(uint8_t, y, 97, 100, 108, 97);
  free(y);
  n = qmm(a, w, bias, "static", NULL);
  n->outputs[0]->type.dtype = LB_DTYPE_I8;
  n->outputs[0]->qparams = qmm_qp(-1, (const float[]){0.03125f}, 1, NULL, false);
  y = eval1(G, n);
  CHECK_INTS(int8_t, y, -48, 0, 127, -52);
  free(y);
  /* static, unsigned with zero point 10: -3 -> -12+10 saturates to 0, 70 -> 290
   * to 255, 0.125 -> 0.5 -> 0 (even) + 10; q - za = [-10, 245, 0] */
  struct lb_value *au = CF("au", TY(F32, 1, 3), -3.0f, 70.0f, 0.125f);
  au->qparams = qmm_qp(-1, (const float[]){0.25f}, 1, (const int32_t[]){10}, true);
  y = eval1(G, qmm(au, w, NULL, "static", NULL));
  CHECK_F32(y, 725 * 0.125f, 1000 * 0.0625f);
  free(y);
  /* already-int8 input with its qparams (sa 0.5) */
  struct lb_value *a8 = cst(G, "a8", TY(I8, 1, 3), (int8_t[]){3, -7, 127});
  a8->qparams = qmm_qp(-1, (const float[]){0.5f}, 1, NULL, false);
  y = eval1(G, qmm(a8, w, NULL, "static", NULL));
  CHECK_F32(y, -653 * 0.25f, 728 * 0.125f);
  free(y);
  /* weight-only: (sum a*w) * scale in f32 */
  y = eval1(G, qmm(CF("an", TY(F32, 1, 3), 0.5f, -1.0f, 0.375f), w, NULL, "none", NULL));
  CHECK_F32(y, -2.1875f, -0.6875f);
  free(y);
  /* dynamic: row 0 has max|a| = 63.5, so sa = 0.5 and q = [127, -20, 6, 2]
   * (-20.5 and 1.5 round to even); row 1 is all zeros (sa = 1, q = 0);
   * one per-tensor weight scale 0.5: acc = [77, 30], y = acc * 0.25 */
  struct lb_value *w4 = cst(G, "w4", TY(I8, 4, 2), (int8_t[]){1, 0, 2, -1, -3, 1, 4, 2});
  w4->qparams = qmm_qp(-1, (const float[]){0.5f}, 1, NULL, false);
  struct lb_value *ad = CF("ad", TY(F32, 2, 4), 63.5f, -10.25f, 3.0f, 0.75f, 0, 0, 0, 0);
  y = eval1(G, qmm(ad, w4, CF("b2", TY(F32, 2), 0.5f, -1.0f), "dynamic", NULL));
  CHECK_F32(y, 19.75f, 6.5f, 0.5f, -1.0f);
  free(y);
}

/* ---- qmatmul with low-bit weights (docs/ir-ops.md "Low-bit weights") ---- */
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

static void test_qmatmul_lowbit(void **s) {
  (void)s;
  /* 4-bit symmetric, group 2 over K = 3 (the last group is one row); scales
   * [g*N + n] = g0 [0.5, 0.25], g1 [2, 0.125]; real w = [[3.5,-2],[-1.5,1.25],[4,-0.125]] */
  struct lb_value *w = cst(G, "w", TY(I8, 3, 2), (int8_t[]){7, -8, -3, 5, 2, -1});
  w->qparams = lowbit_qp(4, 2, (const float[]){0.5f, 0.25f, 2, 0.125f}, 4, NULL);
  float *y = eval1(G, qmm(CF("a", TY(F32, 1, 3), 1.0f, 2.0f, -0.5f), w, NULL, "none", NULL));
  CHECK_F32(y, -1.5f, 0.5625f);
  free(y);
  /* dynamic: max|a| = 127, sa = 1, q = [127, -64, 2] (-63.5 to even);
   * col 0: g0 127*7 + 64*3 = 1081 (*0.5), g1 4 (*2): 548.5 + bias 1;
   * col 1: g0 -1016 - 320 = -1336 (*0.25), g1 -2 (*0.125): -334.25 + bias 0.5 */
  y = eval1(G, qmm(CF("ad", TY(F32, 1, 3), 127.0f, -63.5f, 2.0f), w, CF("b", TY(F32, 2), 1.0f, 0.5f),
                   "dynamic", NULL));
  CHECK_F32(y, 549.5f, -333.75f);
  free(y);
  /* 4-bit asymmetric, group 2, K = 4, N = 1: codes [15, 0 | 8, 3], zero
   * points [8 | 3], scales [0.5 | 0.25]: real w = [3.5, -4, 1.25, 0] */
  struct lb_value *wa = cst(G, "wa", TY(I8, 4, 1), (int8_t[]){15, 0, 8, 3});
  wa->qparams = lowbit_qp(4, 2, (const float[]){0.5f, 0.25f}, 2, (const int32_t[]){8, 3});
  struct lb_value *aa = CF("aa", TY(F32, 1, 4), 1.0f, 1.0f, 2.0f, 4.0f);
  y = eval1(G, qmm(aa, wa, NULL, "none", NULL));
  CHECK_F32(y, 2.0f);
  free(y);
  /* static u8 with sa 0.5, za 10: q - za = [2, 2, 4, 8];
   * g0 2*7 + 2*(-8) = -2 (* 0.25), g1 4*5 + 8*0 = 20 (* 0.125) */
  aa->qparams = qmm_qp(-1, (const float[]){0.5f}, 1, (const int32_t[]){10}, true);
  y = eval1(G, qmm(aa, wa, NULL, "static", NULL));
  CHECK_F32(y, 2.0f);
  free(y);
  /* 3-bit symmetric per column (group 0): codes [3, -4, 1] * 0.5 */
  struct lb_value *w3 = cst(G, "w3", TY(I8, 3, 1), (int8_t[]){3, -4, 1});
  w3->qparams = lowbit_qp(3, 0, (const float[]){0.5f}, 1, NULL);
  y = eval1(G, qmm(CF("a3", TY(F32, 1, 3), 2.0f, 1.0f, 4.0f), w3, NULL, "none", NULL));
  CHECK_F32(y, 3.0f);
  free(y);
  y = eval1(G, qmm(CF("a3d", TY(F32, 1, 3), 127.0f, 0.0f, -127.0f), w3, NULL, "dynamic", NULL));
  CHECK_F32(y, 127.0f);
  free(y);
  /* 2-bit asymmetric, group 1 (each row its own group): codes [[3,0],[1,2]],
   * zero points g0 [1, 2], g1 [0, 3], scales g0 [0.5, 1], g1 [0.25, 2]:
   * real w = [[1, -2], [0.25, -2]] */
  struct lb_value *w2 = cst(G, "w2", TY(I8, 2, 2), (int8_t[]){3, 0, 1, 2});
  w2->qparams = lowbit_qp(2, 1, (const float[]){0.5f, 1, 0.25f, 2}, 4, (const int32_t[]){1, 2, 0, 3});
  y = eval1(G, qmm(CF("a2", TY(F32, 1, 2), 2.0f, 4.0f), w2, NULL, "none", NULL));
  CHECK_F32(y, 3.0f, -12.0f);
  free(y);
  /* dynamic: max|a| = 127.0, q = [127, -127]; col 0: 127*2*0.5 + (-127)*1*0.25;
   * col 1: 127*(-2)*1 + (-127)*(-1)*2 */
  y = eval1(G, qmm(CF("a2d", TY(F32, 1, 2), 127.0f, -127.0f), w2, NULL, "dynamic", NULL));
  CHECK_F32(y, 127.0f - 31.75f, 0.0f);
  free(y);
}

static void test_frontend_only(void **s) {
  (void)s;
  struct lb_value *x = CF("x", TY(F32, 2), 1, 2);
  struct lb_node *n = MK(G, FLATTEN, 1, x);
  n->outputs[0]->type = TY(F32, 1, 2);
  struct lb_diag d;
  lb_diag_init(&d, NULL);
  const void *ins[1] = {lb_value_const_data(G, x)};
  float out[2];
  void *outs[1] = {out};
  assert_int_equal(lb_eval_node(G, n, ins, outs, &d), LB_ERR_INVALID);
  assert_non_null(strstr(d.text, "must be lowered by the frontend"));
  lb_diag_free(&d);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_arith, setup, teardown),
      cmocka_unit_test_setup_teardown(test_minmax_cmp, setup, teardown),
      cmocka_unit_test_setup_teardown(test_unary, setup, teardown),
      cmocka_unit_test_setup_teardown(test_cast, setup, teardown),
      cmocka_unit_test_setup_teardown(test_reduce, setup, teardown),
      cmocka_unit_test_setup_teardown(test_norm, setup, teardown),
      cmocka_unit_test_setup_teardown(test_matmul, setup, teardown),
      cmocka_unit_test_setup_teardown(test_conv, setup, teardown),
      cmocka_unit_test_setup_teardown(test_pool, setup, teardown),
      cmocka_unit_test_setup_teardown(test_move, setup, teardown),
      cmocka_unit_test_setup_teardown(test_pad, setup, teardown),
      cmocka_unit_test_setup_teardown(test_big_transpose, setup, teardown),
      cmocka_unit_test_setup_teardown(test_const, setup, teardown),
      cmocka_unit_test_setup_teardown(test_quant, setup, teardown),
      cmocka_unit_test_setup_teardown(test_qmatmul, setup, teardown),
      cmocka_unit_test_setup_teardown(test_qmatmul_lowbit, setup, teardown),
      cmocka_unit_test_setup_teardown(test_frontend_only, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
