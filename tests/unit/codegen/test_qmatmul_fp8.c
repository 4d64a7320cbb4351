/* test_qmatmul_fp8.c: qmatmul with FP8 (e4m3 / e5m2) weights and f16 scales
 * (codegen/k_qmatmul_lowbit.c, docs/ir-ops.md "Low-bit weights", FP8),
 * JIT-compiled and compared with the reference evaluator (ir/eval.c) on the
 * x86 vector widths the host runs (zmm, ymm, xmm); aarch64 runs under qemu in
 * tests/cli/qmatmul_fp8_aarch64.sh.
 *
 * Error budget: the kernel decodes codes exactly and sums in f32 in another
 * order than the evaluator's double sum: |err| <= 1e-5 * sum_k |a * real_w|.
 * With NaN and infinity codes the outputs must be NaN / the same infinity
 * where the evaluator's are. */
#include "cg_test.h"
#include "qmatmul_test_util.h"

static const struct qmm_target targets[] = {
    {"host", NULL, NULL},
    {"x86-64-v3", "x86-64-v3", NULL},
    {"x86-64", "x86-64", NULL},
};
enum { N_TARGETS = sizeof targets / sizeof targets[0] };

struct fcase {
  int64_t M, K, N;
  enum lb_qfloat fmt;
  int group;
  bool specials; /* codes over all 256 (NaN, inf) instead of finite ones */
  const char *act;
  bool bias;
};

static bool finite_code(uint8_t c, enum lb_qfloat f) { return isfinite(lb_fp8_decode(c, f)); }

static void run_case(const struct fcase *c, const struct qmm_target *t) {
  struct lb_graph *g = lb_graph_new("qmm8");
  int64_t M = c->M, K = c->K, N = c->N;
  struct lb_value *a = input(g, "a", TY(F32, M, K));
  int64_t ng = c->group ? (K + c->group - 1) / c->group : 1, ns = ng * N;
  uint8_t *wd = malloc((size_t)(K * N) + 1);
  for (int64_t i = 0; i < K * N; i++) {
    do wd[i] = (uint8_t)(rng_u64() & 0xFF);
    while (!c->specials && !finite_code(wd[i], c->fmt));
  }
  struct lb_type wt = TY(U8, K, N);
  struct lb_value *w = lb_graph_add_const(g, "w", &wt, wd)->outputs[0];
  free(wd);
  /* f16 values; e5m2 codes reach 57344, so smaller scales there */
  float *ws = malloc(sizeof *ws * (size_t)(ns + 1));
  for (int64_t i = 0; i < ns; i++)
    ws[i] = (float)(16 + rng_u64() % 400) / (c->fmt == LB_QFLOAT_E5M2 ? 1048576.0f : 4096.0f);
  w->qparams = qmm_qparams(g, 8, 1, c->group, ws, ns, NULL, false);
  w->qparams->fp8 = c->fmt;
  struct lb_node *n = qmm_add_node(g, a, w, c->bias ? input(g, "bias", TY(F32, N)) : NULL, "none", c->act);
  finish(g, n);

  int64_t na = M * K, ny = M * N;
  float *av = xalloc(na * 4), *bv = xalloc(N * 4);
  fill_random(av, LB_DTYPE_F32, na, -3.6, 3.6);
  fill_random(bv, LB_DTYPE_F32, N, -2, 2);
  struct qmm_outputs r = qmm_run(g, n, t, av, bv);
  const float *y = r.y, *ref = r.ref;
  const uint8_t *codes = lb_value_const_data(g, w);

  int64_t n_nan = 0;
  for (int64_t i = 0; i < ny; i++) {
    double got = y[i], want = ref[i], tol = 0;
    if (isfinite(want)) {
      int64_t row = i / N, col = i % N;
      double mag = 0;
      for (int64_t k = 0; k < K; k++) {
        int64_t gi = (c->group ? k / c->group : 0) * N + col;
        mag += fabs(av[row * K + k] * ws[gi] * lb_fp8_decode(codes[k * N + col], c->fmt));
      }
      tol = 1e-5 * mag + 1e-5 * fabs(want) + 1e-6;
    }
    n_nan += isnan(want);
    if (!qmm_float_match(got, want, tol)) {
      fprintf(stderr, "%s: fp8=%s g%d%s act=%s M=%lld K=%lld N=%lld: elem %lld: got %.9g want %.9g\n", t->name,
              lb_qfloat_name(c->fmt), c->group, c->specials ? " specials" : "", c->act ? c->act : "none",
              (long long)M, (long long)K, (long long)N, (long long)i, got, want);
      fail();
    }
  }
  if (c->specials) assert_true(n_nan > 0); /* the case exercises NaN codes */
  free(av);
  free(bv);
  free(ws);
  qmm_outputs_free(&r);
  lb_graph_free(g);
}

#define E4 LB_QFLOAT_E4M3
#define E5 LB_QFLOAT_E5M2

static const struct fcase cases[] = {
    /* batch 1: per column, groups, odd N (partial panels), short last group */
    {1, 128, 96, E4, 0, false, "none", true},
    {1, 128, 96, E5, 0, false, "none", true},
    {1, 100, 45, E4, 32, false, "relu", false},
    {1, 100, 45, E5, 32, false, "none", true},
    /* a block of rows (the tiled path where it applies) */
    {7, 100, 45, E4, 0, false, "gelu", true},
    {7, 100, 45, E5, 16, false, "none", true},
    {20, 64, 48, E4, 32, false, "none", false},
    /* group not a multiple of anything; axis-1 groups longer than K */
    {3, 50, 20, E4, 6, false, "none", true},
    {3, 50, 20, E5, 64, false, "none", true},
    /* every code: NaN (and e5m2 infinities) propagate */
    {2, 40, 33, E4, 0, true, "none", false},
    {2, 40, 33, E5, 8, true, "none", false},
    /* K = 0: the bias alone */
    {3, 0, 20, E4, 0, false, "none", true},
};

static void test_all(void **s) {
  (void)s;
  QMM_RUN_CASES(run_case, cases, targets, N_TARGETS, 1);
}

/* Large enough to go parallel; tasks start mid-chunk under the fake parallel_for. */
static void test_parallel(void **s) {
  (void)s;
  lb_jit_set_parallel_for(qmm_chunked_parallel_for);
  static const struct fcase par[] = {
      {1, 1024, 1000, E4, 0, false, "none", true},
      {1, 1024, 1000, E5, 32, false, "none", true},
      {130, 256, 200, E4, 32, false, "relu", true},
  };
  QMM_RUN_CASES(run_case, par, targets, N_TARGETS, 2);
  lb_jit_set_parallel_for(NULL);
}

/* The verifier's side of the contract: u8 codes, bits 8, sym, a_quant none. */
static void test_verify(void **s) {
  (void)s;
  for (int v = 0; v < 3; v++) {
    struct lb_graph *g = lb_graph_new("bad");
    struct lb_value *a = input(g, "a", TY(F32, 1, 4));
    uint8_t wd[8] = {0};
    struct lb_type wt = v == 0 ? TY(I8, 4, 2) : TY(U8, 4, 2);
    struct lb_value *w = lb_graph_add_const(g, "w", &wt, wd)->outputs[0];
    static float sc[2] = {0.5f, 0.25f};
    struct lb_qparams *q = lb_arena_alloc(&g->arena, sizeof *q);
    *q = (struct lb_qparams){.bits = v == 1 ? 4 : 8, .axis = 1, .symmetric = true, .n = 2, .scales = sc,
                             .fp8 = E4};
    w->qparams = q;
    struct lb_node *n = qmm_add_node(g, a, w, NULL, v == 2 ? "dynamic" : "none", NULL);
    finish(g, n);
    qmm_expect_verify_error(g, v == 0 ? "u8[K,N]" : v == 1 ? "bits=8" : "a_quant=\"none\"");
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
