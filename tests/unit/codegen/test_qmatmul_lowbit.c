/* test_qmatmul_lowbit.c: qmatmul with 2/3/4-bit group-wise weights
 * (codegen/k_qmatmul_lowbit.c), JIT-compiled and compared with the reference
 * evaluator (ir/eval.c, docs/ir-ops.md "Low-bit weights") on the x86 families
 * the host runs: vpdpbusd zmm / ymm, vpmaddwd zmm / ymm / xmm and the f32
 * dequantizing path. aarch64 (sdot, widening) runs under qemu in
 * tests/cli/qmatmul_lowbit_aarch64.sh.
 *
 * Error budget: integer modes sum each group exactly and add the groups in
 * the evaluator's order and roundings, so f32 outputs are bit-identical for
 * act none/relu and requantized outputs identical; other activations rtol 1e-5
 * (requantized +-1). a_quant none sums in f32 in another order than the
 * evaluator's double sum: |err| <= 1e-5 * sum_k |a * real_w|. */
#include "cg_test.h"
#include "qmatmul_test_util.h"

static const struct qmm_target *const targets = qmm_int_targets;
enum { N_TARGETS = QMM_N_INT_TARGETS };

struct qcase {
  int64_t M, K, N;
  int bits, group;
  bool asym;
  const char *a_quant, *act;
  enum lb_dtype ydt;
  bool a_unsigned, bias;
};

static void run_case(const struct qcase *c, const struct qmm_target *t) {
  struct lb_graph *g = lb_graph_new("qmm4");
  int64_t M = c->M, K = c->K, N = c->N;
  struct lb_value *a = input(g, "a", TY(F32, M, K));
  bool none = !strcmp(c->a_quant, "none"), stat = !strcmp(c->a_quant, "static");
  float sa = c->a_unsigned ? 6.0f / 255 : 3.0f / 127;
  int32_t za = c->a_unsigned ? 117 : 0;
  if (stat) a->qparams = qmm_qparams(g, 8, -1, 0, &sa, 1, c->a_unsigned ? &za : NULL, c->a_unsigned);
  int64_t ng = c->group ? (K + c->group - 1) / c->group : 1, ns = ng * N;
  int lo = c->asym ? 0 : -(1 << (c->bits - 1)), span = 1 << c->bits;
  int8_t *wd = malloc((size_t)(K * N) + 1);
  for (int64_t i = 0; i < K * N; i++) wd[i] = (int8_t)(lo + (int)(rng_u64() % (uint64_t)span));
  struct lb_type wt = TY(I8, K, N);
  struct lb_value *w = lb_graph_add_const(g, "w", &wt, wd)->outputs[0];
  free(wd);
  /* f16 values: k / 4096 with k < 2048 */
  float *ws = malloc(sizeof *ws * (size_t)ns);
  int32_t *zps = malloc(sizeof *zps * (size_t)ns);
  for (int64_t i = 0; i < ns; i++) {
    ws[i] = (float)(16 + rng_u64() % 400) / 4096.0f;
    zps[i] = (int32_t)(rng_u64() % (uint64_t)span);
  }
  w->qparams = qmm_qparams(g, c->bits, 1, c->group, ws, ns, c->asym ? zps : NULL, c->asym);
  struct lb_node *n = qmm_add_node(g, a, w, c->bias ? input(g, "bias", TY(F32, N)) : NULL, c->a_quant, c->act);
  if (c->ydt != LB_DTYPE_F32) {
    float sy = (float)(0.002 * sqrt((double)K));
    bool u = c->ydt == LB_DTYPE_U8;
    int32_t zy = u ? 60 : 0;
    n->outputs[0]->type.dtype = c->ydt;
    n->outputs[0]->qparams = qmm_qparams(g, 8, -1, 0, &sy, 1, u ? &zy : NULL, u);
  }
  finish(g, n);

  int64_t na = M * K, ny = M * N;
  float *av = xalloc(na * 4), *bv = xalloc(N * 4);
  fill_random(av, LB_DTYPE_F32, na, -3.6, 3.6);
  for (int64_t i = 0; i < na && M > 1; i++) /* one row of zeros (dynamic: scale 1) */
    if (i / K == 1) av[i] = 0;
  fill_random(bv, LB_DTYPE_F32, N, -2, 2);
  struct qmm_outputs r = qmm_run(g, n, t, av, bv);
  const void *y = r.y, *ref = r.ref;
  const int8_t *codes = lb_value_const_data(g, w);

  bool exact = !none && qmm_exact_act(c->act);
  for (int64_t i = 0; i < ny; i++) {
    double got = get_elem(y, c->ydt, i), want = get_elem(ref, c->ydt, i), tol;
    if (c->ydt != LB_DTYPE_F32) {
      tol = exact ? 0 : 1;
    } else if (exact) {
      tol = 0;
    } else if (!none) {
      tol = 1e-5 * fabs(want) + 1e-6;
    } else {
      int64_t row = i / N, col = i % N;
      double mag = 0;
      for (int64_t k = 0; k < K; k++) {
        int64_t gi = (c->group ? k / c->group : 0) * N + col;
        mag += fabs(av[row * K + k] * ws[gi] * (codes[k * N + col] - (c->asym ? zps[gi] : 0)));
      }
      tol = 1e-5 * mag + 1e-5 * fabs(want) + 1e-6;
    }
    if (!(fabs(got - want) <= tol)) {
      fprintf(stderr, "%s: %d-bit g%d %s a_quant=%s act=%s ->%s M=%lld K=%lld N=%lld: elem %lld: got %.9g want %.9g\n",
              t->name, c->bits, c->group, c->asym ? "asym" : "sym", c->a_quant, c->act ? c->act : "none",
              lb_dtype_traits[c->ydt].name, (long long)M, (long long)K, (long long)N, (long long)i, got, want);
      fail();
    }
  }
  free(av);
  free(bv);
  free(ws);
  free(zps);
  qmm_outputs_free(&r);
  lb_graph_free(g);
}

#define F32 LB_DTYPE_F32
#define I8 LB_DTYPE_I8
#define U8 LB_DTYPE_U8

static const struct qcase cases[] = {
    /* 4-bit group 32, batch 1 and a block; odd N (partial panels), short last group */
    {1, 128, 96, 4, 32, false, "dynamic", "none", F32, false, true},
    {1, 128, 96, 4, 32, false, "none", "none", F32, false, true},
    {7, 100, 45, 4, 32, false, "dynamic", "relu", F32, false, false},
    {7, 100, 45, 4, 32, true, "dynamic", "none", F32, false, true},
    {7, 100, 45, 4, 32, true, "none", "gelu", F32, false, true},
    {5, 70, 33, 4, 16, false, "static", "none", F32, false, true},
    {5, 70, 33, 4, 16, true, "static", "none", F32, true, true},
    /* group sizes not a multiple of the packing unit; per column (group 0) */
    {3, 50, 20, 4, 6, true, "dynamic", "none", F32, false, false},
    {3, 50, 20, 4, 0, false, "dynamic", "none", F32, false, true},
    {3, 50, 20, 4, 0, true, "none", "none", F32, false, true},
    /* 3-bit and 2-bit */
    {4, 96, 70, 3, 32, false, "dynamic", "none", F32, false, true},
    {4, 96, 70, 3, 32, true, "none", "none", F32, false, false},
    {4, 96, 70, 2, 32, false, "dynamic", "sigmoid", F32, false, true},
    {4, 96, 70, 2, 16, true, "dynamic", "none", F32, false, true},
    {4, 96, 70, 2, 64, true, "none", "none", F32, false, true},
    {2, 40, 17, 2, 8, false, "static", "relu", F32, true, false},
    /* grouped 8-bit */
    {3, 64, 40, 8, 32, false, "dynamic", "none", F32, false, true},
    {3, 64, 40, 8, 32, false, "none", "none", F32, false, true},
    /* a_quant none, M >= 6: dequantized tiles and the float microkernel (M = 2, 5: the
     * register path); K not a multiple of the group, N not a multiple of NR, groups
     * shorter than their padded rows (3 bits, group 6 -> 8 rows; 2 bits, group 6), M
     * below / above the row block */
    {2, 100, 45, 4, 32, false, "none", "relu", F32, false, true},
    {5, 100, 45, 4, 32, false, "none", "none", F32, false, true},
    {6, 100, 45, 4, 32, false, "none", "relu", F32, false, true},
    {7, 70, 33, 3, 32, false, "none", "none", F32, false, true},
    {7, 50, 20, 3, 6, true, "none", "none", F32, false, true},
    {9, 50, 37, 2, 6, false, "none", "none", F32, false, false},
    {128, 72, 50, 2, 16, true, "none", "gelu", F32, false, true},
    {128, 100, 70, 4, 32, true, "none", "none", F32, false, true},
    {128, 64, 40, 8, 32, false, "none", "none", F32, false, true},
    /* a K x NR tile over LBQ_TILE_MAX (AVX-512 / AVX2): the register-dequantizing kernel */
    {8, 9000, 40, 4, 32, false, "none", "none", F32, false, true},
    /* K = 0: the bias alone */
    {3, 0, 20, 4, 0, false, "dynamic", "none", F32, false, true},
    {3, 0, 20, 4, 0, true, "none", "none", F32, false, true},
    /* requantized outputs */
    {6, 64, 50, 4, 32, false, "dynamic", "none", I8, false, true},
    {6, 64, 50, 4, 32, true, "static", "relu", U8, true, true},
};

static void test_all(void **s) {
  (void)s;
  QMM_RUN_CASES(run_case, cases, targets, N_TARGETS, 1);
}

/* Large enough to go parallel; tasks start mid-chunk under the fake parallel_for. */
static void test_parallel(void **s) {
  (void)s;
  lb_jit_set_parallel_for(qmm_chunked_parallel_for);
  static const struct qcase par[] = {
      {1, 1024, 1000, 4, 32, false, "dynamic", "none", F32, false, true},
      {1, 1024, 1000, 4, 32, true, "none", "none", F32, false, true},
      {130, 256, 200, 4, 32, false, "dynamic", "relu", F32, false, true},
      {130, 256, 200, 3, 64, true, "none", "none", F32, false, false},
      {128, 250, 300, 4, 32, false, "none", "relu", F32, false, true},
      {7, 1000, 500, 2, 32, true, "none", "none", F32, false, true},
  };
  QMM_RUN_CASES(run_case, par, targets, N_TARGETS, 2);
  lb_jit_set_parallel_for(NULL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_all),
      cmocka_unit_test(test_parallel),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
