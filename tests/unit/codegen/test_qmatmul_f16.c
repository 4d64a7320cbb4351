/* test_qmatmul_f16.c: qmatmul with f16 weights (a const f16[K,N] without
 * qparams; codegen/k_qmatmul_lowbit.c, docs/ir-ops.md "Quantized matmul", F16),
 * JIT-compiled and compared with the reference evaluator (ir/eval.c) on the
 * x86 targets the host runs: zmm (AVX-512, vcvtph2ps), x86-64-v3 (ymm, F16C)
 * and x86-64 (xmm, no F16C: the bit-moving decoder); aarch64 (fcvtl) runs
 * under qemu in tests/cli/qmatmul_f16.sh.
 *
 * Error budget: the kernel converts halves exactly and sums in f32 in another
 * order than the evaluator's double sum: |err| <= 1e-5 * sum_k |a * w|. With
 * inf and NaN weights the outputs must be NaN / the same infinity where the
 * evaluator's are. */
#include "cg_test.h"
#include "qmatmul_test_util.h"

static const struct qmm_target targets[] = {
    {"host", NULL, NULL},
    {"x86-64-v3", "x86-64-v3", NULL},
    {"x86-64", "x86-64", NULL},
    {"x86-64-v3 -f16c", "x86-64-v3", "-f16c"},
};
enum { N_TARGETS = sizeof targets / sizeof targets[0] };

struct hcase {
  int64_t M, K, N;
  int specials; /* 0: finite weights; 1: a few inf and NaN; 2: only +-inf (no NaN) */
  const char *act;
  bool bias;
};

static double gauss(void) {
  return sqrt(-2 * log(rng_unit() + 1e-300)) * cos(6.283185307179586 * rng_unit());
}

/* Weights over many binades: columns scaled from 2^-20 (subnormal halves) to 2^8. */
static uint16_t weight(int64_t n, int specials) {
  if (specials && rng_u64() % 37 == 0) {
    static const uint16_t sp[] = {0x7C00, 0xFC00, 0x7E00, 0xFE01, 0x7C01};
    return sp[rng_u64() % (specials == 2 ? 2 : 5)];
  }
  return lb_f16_encode((float)ldexp(gauss(), (int)(n % 29) - 20));
}

static void run_case(const struct hcase *c, const struct qmm_target *t) {
  struct lb_graph *g = lb_graph_new("qmmh");
  int64_t M = c->M, K = c->K, N = c->N;
  struct lb_value *a = input(g, "a", TY(F32, M, K));
  uint16_t *wd = malloc(sizeof *wd * (size_t)(K * N) + 2);
  for (int64_t i = 0; i < K * N; i++) wd[i] = weight(i % N, c->specials);
  struct lb_type wt = TY(F16, K, N);
  struct lb_value *w = lb_graph_add_const(g, "w", &wt, wd)->outputs[0];
  free(wd);
  struct lb_node *n = qmm_add_node(g, a, w, c->bias ? input(g, "bias", TY(F32, N)) : NULL, "none", c->act);
  finish(g, n);

  int64_t na = M * K, ny = M * N;
  float *av = xalloc(na * 4), *bv = xalloc(N * 4);
  fill_random(av, LB_DTYPE_F32, na, -3.6, 3.6);
  fill_random(bv, LB_DTYPE_F32, N, -2, 2);
  struct qmm_outputs r = qmm_run(g, n, t, av, bv);
  const float *y = r.y, *ref = r.ref;
  const uint16_t *h = lb_value_const_data(g, w);

  int64_t n_nan = 0, n_inf = 0;
  for (int64_t i = 0; i < ny; i++) {
    double got = y[i], want = ref[i], tol = 0;
    if (isfinite(want)) {
      int64_t row = i / N, col = i % N;
      double mag = 0;
      for (int64_t k = 0; k < K; k++) mag += fabs(av[row * K + k] * lb_f16_decode(h[k * N + col]));
      tol = 1e-5 * mag + 1e-5 * fabs(want) + 1e-30;
    }
    n_nan += isnan(want) != 0;
    n_inf += isinf(want) != 0; /* glibc: -1 for -inf */
    if (!qmm_float_match(got, want, tol)) {
      fprintf(stderr, "%s: f16%s act=%s M=%lld K=%lld N=%lld: elem %lld: got %.9g want %.9g\n", t->name,
              c->specials ? " specials" : "", c->act ? c->act : "none", (long long)M, (long long)K, (long long)N,
              (long long)i, got, want);
      fail();
    }
  }
  if (c->specials == 1) assert_true(n_nan > 0); /* the case exercises NaN weights */
  if (c->specials == 2) assert_true(n_inf > 0); /* and infinities that stay infinite */
  free(av);
  free(bv);
  qmm_outputs_free(&r);
  lb_graph_free(g);
}

static const struct hcase cases[] = {
    /* batch 1 (GEMV): even and odd K (one or two accumulator sets), odd N (partial panels) */
    {1, 128, 96, 0, "none", true},
    {1, 101, 45, 0, "relu", false},
    {1, 64, 7, 0, "gelu", true},
    /* blocks of rows: below and above the dequantized-tile threshold (6 rows) */
    {3, 100, 45, 0, "none", true},
    {7, 100, 45, 0, "gelu", true},
    {20, 64, 130, 0, "none", false},
    /* inf and NaN weights: NaN propagates, inf stays inf (batch 1 and blocks) */
    {1, 40, 33, 1, "none", false},
    {9, 40, 33, 1, "none", true},
    {1, 16, 20, 2, "none", false},
    {8, 16, 20, 2, "none", false},
    /* K = 0: the bias alone */
    {3, 0, 20, 0, "none", true},
};

static void test_all(void **s) {
  (void)s;
  QMM_RUN_CASES(run_case, cases, targets, N_TARGETS, 1);
}

/* Large enough to go parallel; tasks start mid-chunk under the fake parallel_for. */
static void test_parallel(void **s) {
  (void)s;
  lb_jit_set_parallel_for(qmm_chunked_parallel_for);
  static const struct hcase par[] = {
      {1, 1024, 1000, 0, "none", true},
      {130, 256, 200, 0, "relu", true},
  };
  QMM_RUN_CASES(run_case, par, targets, N_TARGETS, 2);
  lb_jit_set_parallel_for(NULL);
}

/* The verifier's side of the contract: a const f16[K,N], no qparams, a_quant none. */
static void test_verify(void **s) {
  (void)s;
  for (int v = 0; v < 3; v++) {
    struct lb_graph *g = lb_graph_new("bad");
    struct lb_value *a = input(g, "a", TY(F32, 1, 4));
    uint16_t wd[8] = {0x3C00};
    struct lb_type wt = TY(F16, 4, 2);
    struct lb_value *w = v == 2 ? input(g, "w", wt) : lb_graph_add_const(g, "w", &wt, wd)->outputs[0];
    if (v == 0) {
      static float sc[1] = {1};
      struct lb_qparams *q = lb_arena_alloc(&g->arena, sizeof *q);
      *q = (struct lb_qparams){.bits = 16, .axis = -1, .symmetric = true, .n = 1, .scales = sc};
      w->qparams = q;
    }
    struct lb_node *n = qmm_add_node(g, a, w, NULL, v == 1 ? "dynamic" : "none", NULL);
    finish(g, n);
    qmm_expect_verify_error(g, v == 1 ? "f16 weights take a_quant=\"none\"" : "const f16[K,N] without qparams");
    lb_graph_free(g);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_all),
      cmocka_unit_test(test_parallel),
      cmocka_unit_test(test_verify),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
