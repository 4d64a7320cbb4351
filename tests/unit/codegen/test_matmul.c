/* test_matmul.c: matmul / gemm / fused_matmul kernels against a reference. */
#include "cg_test.h"

/* ---- reference (double accumulation) ---- */
static double act_ref(const char *a, double x) {
  if (!strcmp(a, "relu")) return x < 0 ? 0 : x;
  if (!strcmp(a, "gelu")) return 0.5 * x * (1 + erf(x / sqrt(2.0)));
  if (!strcmp(a, "gelu_tanh")) return 0.5 * x * (1 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)));
  if (!strcmp(a, "sigmoid")) return 1 / (1 + exp(-x));
  if (!strcmp(a, "tanh")) return tanh(x);
  return x;
}

static void ref_matmul(const struct lb_node *n, const void *const *ins, void *const *outs) {
  const struct lb_shape *as = &n->inputs[0]->type.shape, *bs = &n->inputs[1]->type.shape;
  enum lb_dtype dt = n->outputs[0]->type.dtype;
  bool gemm = n->op == LB_OP_GEMM;
  bool ta = gemm && lb_node_attr_int(n, "transA", 0);
  bool tb = (gemm || n->op == LB_OP_FUSED_MATMUL) && lb_node_attr_int(n, "transB", 0);
  int ar = as->rank, br = bs->rank;
  int64_t M = gemm ? (ta ? as->dims[1] : as->dims[0]) : (ar == 1 ? 1 : as->dims[ar - 2]);
  int64_t K = gemm ? (ta ? as->dims[0] : as->dims[1]) : as->dims[ar - 1];
  int64_t N = br == 1 ? 1 : tb ? bs->dims[br - 2] : bs->dims[br - 1];
  int abr = ar > 2 ? ar - 2 : 0, bbr = br > 2 ? br - 2 : 0, rb = abr > bbr ? abr : bbr;
  int64_t ad[8], bd[8], od[8], batch = 1;
  for (int d = 0; d < rb; d++) {
    ad[d] = d - (rb - abr) >= 0 ? as->dims[d - (rb - abr)] : 1;
    bd[d] = d - (rb - bbr) >= 0 ? bs->dims[d - (rb - bbr)] : 1;
    od[d] = ad[d] > bd[d] ? ad[d] : bd[d];
    batch *= od[d];
  }
  double alpha = gemm ? lb_node_attr_float(n, "alpha", 1) : 1, beta = gemm ? lb_node_attr_float(n, "beta", 1) : 1;
  const char *act = n->op == LB_OP_FUSED_MATMUL ? lb_node_attr_string(n, "act", "none") : "none";
  for (int64_t b = 0; b < batch; b++) {
    int64_t rem = b, ia = 0, ib = 0, idx[8];
    for (int d = rb - 1; d >= 0; d--) {
      idx[d] = rem % od[d];
      rem /= od[d];
    }
    for (int d = 0; d < rb; d++) {
      ia = ia * ad[d] + (ad[d] == 1 ? 0 : idx[d]);
      ib = ib * bd[d] + (bd[d] == 1 ? 0 : idx[d]);
    }
    for (int64_t m = 0; m < M; m++)
      for (int64_t nn = 0; nn < N; nn++) {
        double acc = 0;
        for (int64_t k = 0; k < K; k++) {
          double a = get_elem(ins[0], dt, ia * M * K + (ta ? k * M + m : m * K + k));
          double bv = get_elem(ins[1], dt, ib * K * N + (br == 1 ? k : tb ? nn * K + k : k * N + nn));
          acc += a * bv;
        }
        if (lb_dtype_traits[dt].is_float) {
          acc *= alpha;
          if (n->n_inputs > 2 && n->inputs[2]) {
            const struct lb_shape *cs = &n->inputs[2]->type.shape;
            int64_t ci;
            if (gemm) {
              int64_t r = cs->rank >= 2 && cs->dims[cs->rank - 2] != 1 ? m : 0;
              int64_t c = cs->rank >= 1 && cs->dims[cs->rank - 1] != 1 ? nn : 0;
              ci = r * (cs->rank >= 1 ? cs->dims[cs->rank - 1] : 1) + c;
            } else {
              ci = nn;
            }
            acc += beta * get_elem(ins[2], dt, ci);
          }
          acc = act_ref(act, acc);
        } else if (dt == LB_DTYPE_I32) {
          acc = (double)(int32_t)(int64_t)acc;
        }
        set_elem(outs[0], dt, b * M * N + m * N + nn, acc);
      }
  }
}

/* Builds matmul(a, b) with a as input and b as input or const. */
static void run_mm(enum lb_op op, enum lb_dtype dt, struct lb_type at, struct lb_type bt, struct lb_type ot,
                   bool b_const, int bias, const char *act, int ta, int tb, double alpha, double beta) {
  struct lb_graph *g = lb_graph_new("mm");
  struct lb_value *a = input(g, "a", at);
  struct lb_value *b;
  at.dtype = bt.dtype = ot.dtype = dt;
  a->type.dtype = dt;
  if (b_const) {
    int64_t cnt = lb_shape_numel(&bt.shape);
    void *buf = xalloc(cnt * lb_dtype_traits[dt].size);
    fill_random(buf, dt, cnt, -1, 1);
    b = lb_graph_add_const(g, "b", &bt, buf)->outputs[0];
    free(buf);
  } else {
    b = input(g, "b", bt);
  }
  struct lb_value *ins[3] = {a, b, NULL};
  int nin = 2;
  if (bias) {
    int64_t N = ot.shape.dims[ot.shape.rank - 1];
    struct lb_type ct = bias == 2 ? ot : ty(dt, &N, 1);
    if (bias == 3) ct = ty(dt, NULL, 0);
    ins[2] = input(g, "c", ct);
    nin = 3;
  }
  const char *on[1] = {"y"};
  struct lb_node *n = lb_graph_add_node(g, op, "mm", ins, nin, on, 1);
  n->outputs[0]->type = ot;
  if (op == LB_OP_GEMM) {
    lb_node_set_attr_int(g, n, "transA", ta);
    lb_node_set_attr_int(g, n, "transB", tb);
    lb_node_set_attr_float(g, n, "alpha", alpha);
    lb_node_set_attr_float(g, n, "beta", beta);
  }
  if (op == LB_OP_FUSED_MATMUL) {
    lb_node_set_attr_string(g, n, "act", act);
    lb_node_set_attr_int(g, n, "transB", tb);
  }
  lb_graph_add_output(g, n->outputs[0]);
  int64_t K = op == LB_OP_GEMM ? (ta ? at.shape.dims[0] : at.shape.dims[1]) : at.shape.dims[at.shape.rank - 1];
  struct run_opts ro = {.atol = 1e-5 * (double)K, .rtol = 1e-4, .lo = -1, .hi = 1, .ref = ref_matmul};
  if (!lb_dtype_traits[dt].is_float) {
    ro.atol = 0;
    ro.rtol = 0;
    ro.lo = -5;
    ro.hi = 5;
  }
  check_graph(g, n, &ro);
  lb_graph_free(g);
}

#define MM(dt, at, bt, ot, bc) run_mm(LB_OP_MATMUL, LB_DTYPE_##dt, at, bt, ot, bc, 0, "none", 0, 0, 1, 1)

static void test_matmul_2d_const(void **state) {
  (void)state;
  static const int64_t sizes[][3] = {{1, 1, 1},    {1, 64, 64},  {1, 100, 37}, {3, 5, 7},     {8, 32, 32},
                                     {9, 33, 65},  {17, 70, 31}, {64, 128, 96}, {2, 300, 129}, {1, 1000, 40},
                                     {13, 17, 200}, {300, 20, 33}};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    int64_t M = sizes[i][0], K = sizes[i][1], N = sizes[i][2];
    MM(F32, TY(F32, M, K), TY(F32, K, N), TY(F32, M, N), true);
    MM(F32, TY(F32, M, K), TY(F32, K, N), TY(F32, M, N), false);
  }
}

static void test_matmul_batch(void **state) {
  (void)state;
  MM(F32, TY(F32, 2, 3, 5, 7), TY(F32, 7, 9), TY(F32, 2, 3, 5, 9), true);          /* fold into M */
  MM(F32, TY(F32, 4, 5, 7), TY(F32, 4, 7, 33), TY(F32, 4, 5, 33), false);          /* batched both */
  MM(F32, TY(F32, 4, 5, 7), TY(F32, 4, 7, 33), TY(F32, 4, 5, 33), true);           /* batched const B */
  MM(F32, TY(F32, 5, 7), TY(F32, 3, 7, 6), TY(F32, 3, 5, 6), false);               /* A broadcast */
  MM(F32, TY(F32, 2, 1, 5, 7), TY(F32, 3, 7, 6), TY(F32, 2, 3, 5, 6), false);      /* both broadcast */
  MM(F32, TY(F32, 2, 1, 5, 7), TY(F32, 1, 3, 7, 6), TY(F32, 2, 3, 5, 6), true);
  MM(F32, TY(F32, 7), TY(F32, 7, 6), TY(F32, 6), true);                            /* 1-D A */
  MM(F32, TY(F32, 5, 7), TY(F32, 7), TY(F32, 5), false);                           /* 1-D B */
  MM(F32, TY(F32, 2, 12, 64), TY(F32, 2, 64, 12), TY(F32, 2, 12, 12), false);      /* attention-like */
}

static void test_matmul_dtypes(void **state) {
  (void)state;
  MM(F64, TY(F64, 5, 19), TY(F64, 19, 21), TY(F64, 5, 21), true);
  MM(F64, TY(F64, 5, 19), TY(F64, 19, 21), TY(F64, 5, 21), false);
  MM(I32, TY(I32, 5, 19), TY(I32, 19, 21), TY(I32, 5, 21), false);
  MM(I64, TY(I64, 2, 5, 19), TY(I64, 19, 3), TY(I64, 2, 5, 3), true);
}

static void test_gemm(void **state) {
  (void)state;
  for (int ta = 0; ta < 2; ta++)
    for (int tb = 0; tb < 2; tb++)
      for (int bc = 0; bc < 2; bc++)
        for (int bias = 0; bias < 4; bias++) {
          int64_t M = 7, K = 13, N = 35;
          struct lb_type at = ta ? TY(F32, K, M) : TY(F32, M, K);
          struct lb_type bt = tb ? TY(F32, N, K) : TY(F32, K, N);
          run_mm(LB_OP_GEMM, LB_DTYPE_F32, at, bt, TY(F32, M, N), bc, bias, "none", ta, tb, 0.5, bias ? 2.0 : 1.0);
        }
}

static void test_fused(void **state) {
  (void)state;
  static const char *acts[] = {"none", "relu", "gelu", "gelu_tanh", "sigmoid", "tanh"};
  for (int a = 0; a < 6; a++)
    for (int tb = 0; tb < 2; tb++)
      for (int bc = 0; bc < 2; bc++) {
        struct lb_type bt = tb ? TY(F32, 45, 24) : TY(F32, 24, 45);
        run_mm(LB_OP_FUSED_MATMUL, LB_DTYPE_F32, TY(F32, 2, 5, 24), bt, TY(F32, 2, 5, 45), bc, 1, acts[a], 0, tb, 1, 1);
      }
}

static void test_matmul_big_k(void **state) {
  (void)state;
  MM(F32, TY(F32, 3, 4099), TY(F32, 4099, 40), TY(F32, 3, 40), true);
  MM(F32, TY(F32, 1, 2048), TY(F32, 2048, 513), TY(F32, 1, 513), true);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_matmul_2d_const), cmocka_unit_test(test_matmul_batch),
      cmocka_unit_test(test_matmul_dtypes),   cmocka_unit_test(test_gemm),
      cmocka_unit_test(test_fused),           cmocka_unit_test(test_matmul_big_k),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
