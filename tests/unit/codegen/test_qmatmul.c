/* test_qmatmul.c: the qmatmul kernels (codegen/k_qmatmul.c), JIT-compiled and
 * compared with the reference evaluator (ir/eval.c) for every x86 instruction
 * family the host can run: vpdpbusd on zmm (the host), on ymm (avx512vl),
 * vpmaddwd on zmm / ymm / xmm (VNNI disabled, x86-64-v3, x86-64), and the W8
 * f32 path at each width. aarch64 (sdot and the widening path) is covered by
 * tests/cli/qmatmul_aarch64.sh under qemu.
 *
 * Error budget: with 8-bit activations the accumulation is exact and the
 * epilogue does the evaluator's f32 operations in the same order, so f32
 * outputs must be bit-identical for act none/relu and requantized outputs
 * identical; gelu/sigmoid/tanh differ from libm by a few ulp (rtol 1e-5,
 * requantized +-1). W8 (a_quant none) sums in f32 in another order than the
 * evaluator's double sum: |err| <= 1e-5 * sum_k |a w| * scale.
 *
 * Parallel kernels run through a fake lbrt_parallel_for that splits the range
 * into uneven chunks, so a task starting in the middle of an M-chunk must
 * quantize the chunk's rows itself. */
#include "cg_test.h"
#include "qmatmul_test_util.h"

static void fake_parallel_for(lb_jit_task_fn fn, void *ctx, int64_t n, int64_t grain) {
  int64_t pos = 0, sz = grain < 1 ? 1 : grain;
  int64_t b[64], e[64];
  int k = 0;
  while (pos < n && k < 63) {
    b[k] = pos;
    e[k] = pos + sz < n ? pos + sz : n;
    pos = e[k++];
    sz = sz * 2 + 1;
  }
  if (pos < n) b[k] = pos, e[k++] = n;
  for (int i = k - 1; i >= 0; i--) fn(ctx, b[i], e[i]);
}

/* the targets: the host and the host with features taken away */
static const struct qmm_target *const targets = qmm_int_targets;
enum { N_TARGETS = QMM_N_INT_TARGETS };

struct qcase {
  int rank;
  int64_t dims[4];  /* a's shape; K is the last */
  int64_t N;
  const char *a_quant, *act;
  enum lb_dtype adt, ydt;
  bool a_unsigned;  /* static: u8 range with a zero point */
  bool bias, w_per_tensor;
  bool grid;        /* a on multiples of sa / 2: every quantization is a tie */
};

static void run_case(const struct qcase *c, const struct qmm_target *t) {
  struct lb_graph *g = lb_graph_new("qmm");
  int64_t K = c->dims[c->rank - 1], N = c->N;
  struct lb_type at = {.dtype = c->adt, .shape = {.rank = c->rank}};
  memcpy(at.shape.dims, c->dims, sizeof c->dims);
  struct lb_value *a = input(g, "a", at);
  bool none = !strcmp(c->a_quant, "none"), stat = !strcmp(c->a_quant, "static");
  float sa = c->grid ? 0.25f : c->a_unsigned ? 6.0f / 255 : 3.0f / 127;
  int32_t za = c->a_unsigned ? 117 : 0;
  if (c->adt != LB_DTYPE_F32) sa = 0.03f;
  if (stat) a->qparams = qmm_qparams(g, 8, -1, 0, &sa, 1, c->a_unsigned ? &za : NULL, c->a_unsigned);
  int8_t *wd = malloc((size_t)(K * N));
  for (int64_t i = 0; i < K * N; i++) wd[i] = (int8_t)(int)(rng_u64() % 256 - 128);
  struct lb_type wt = TY(I8, K, N);
  struct lb_value *w = lb_graph_add_const(g, "w", &wt, wd)->outputs[0];
  free(wd);
  float *ws = malloc(sizeof *ws * (size_t)N);
  for (int64_t i = 0; i < N; i++) ws[i] = (float)(0.002 + 0.02 * rng_unit());
  w->qparams = c->w_per_tensor ? qmm_qparams(g, 8, -1, 0, ws, 1, NULL, false)
                             : qmm_qparams(g, 8, 1, 0, ws, N, NULL, false);
  struct lb_node *n = qmm_add_node(g, a, w, c->bias ? input(g, "bias", TY(F32, N)) : NULL, c->a_quant, c->act);
  if (c->ydt != LB_DTYPE_F32) {
    /* spread the outputs over the 8-bit range (some saturate) */
    float sy = (float)(0.01 * sqrt((double)K));
    bool u = c->ydt == LB_DTYPE_U8;
    int32_t zy = u ? 60 : 0;
    n->outputs[0]->type.dtype = c->ydt;
    n->outputs[0]->qparams = qmm_qparams(g, 8, -1, 0, &sy, 1, u ? &zy : NULL, u);
  }
  finish(g, n);
  if (n->outputs[0]->type.dtype != c->ydt) fail();

  int64_t na = lb_shape_numel(&at.shape), ny = lb_shape_numel(&n->outputs[0]->type.shape);
  void *av = xalloc(na * lb_dtype_traits[c->adt].size), *bv = xalloc(N * 4);
  if (c->grid) {
    for (int64_t i = 0; i < na; i++) ((float *)av)[i] = (float)((int)(rng_u64() % 161) - 80) * 0.125f;
  } else if (c->adt == LB_DTYPE_F32) {
    fill_random(av, LB_DTYPE_F32, na, -3.6, 3.6); /* beyond the static range: saturation */
    for (int64_t i = 0; i < na; i++) /* one row of zeros (dynamic: scale 1) */
      if (i / K == 1) ((float *)av)[i] = 0;
  } else {
    fill_random(av, c->adt, na, c->adt == LB_DTYPE_U8 ? 0 : -128, c->adt == LB_DTYPE_U8 ? 255 : 127);
  }
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
      for (int64_t k = 0; k < K; k++)
        mag += fabs(((const float *)av)[row * K + k] * codes[k * N + col]);
      tol = 1e-5 * mag * ws[c->w_per_tensor ? 0 : col] + 1e-5 * fabs(want) + 1e-6;
    }
    if (!(fabs(got - want) <= tol)) {
      fprintf(stderr, "%s: a_quant=%s act=%s %s->%s K=%lld N=%lld: elem %lld (row %lld col %lld): got %.9g want %.9g\n",
              t->name, c->a_quant, c->act ? c->act : "none", lb_dtype_traits[c->adt].name,
              lb_dtype_traits[c->ydt].name, (long long)K, (long long)N, (long long)i, (long long)(i / N),
              (long long)(i % N), got, want);
      fail();
    }
  }
  free(av);
  free(bv);
  free(ws);
  qmm_outputs_free(&r);
  lb_graph_free(g);
}

#define F32 LB_DTYPE_F32
#define I8 LB_DTYPE_I8
#define U8 LB_DTYPE_U8

/* the cases, each run for every target */
static const struct qcase cases[] = {
    /* static signed / unsigned with zero point, odd K (not a multiple of 4) and N
     * (not a multiple of any panel width), remainder rows */
    {2, {7, 37}, 45, "static", "none", F32, F32, false, true, false, false},
    {2, {7, 37}, 45, "static", "none", F32, F32, true, false, false, false},
    {2, {5, 16}, 8, "static", "none", F32, F32, false, false, false, true},
    /* M = 1, batch dims, per-tensor weight scale, bias + activations */
    {2, {1, 64}, 100, "static", "relu", F32, F32, true, true, true, false},
    {3, {2, 3, 33}, 17, "static", "gelu", F32, F32, false, true, false, false},
    {4, {2, 1, 3, 20}, 70, "dynamic", "sigmoid", F32, F32, false, true, false, false},
    /* dynamic, the zero row gets scale 1; large enough to run in parallel */
    {2, {64, 96}, 72, "dynamic", "none", F32, F32, false, true, false, false},
    {2, {13, 130}, 33, "dynamic", "relu", F32, F32, false, false, true, false},
    /* already-int8 input */
    {2, {9, 24}, 40, "static", "none", I8, F32, false, true, false, false},
    {2, {9, 25}, 40, "static", "tanh", U8, F32, true, false, false, false},
    /* requantized output */
    {2, {11, 50}, 66, "static", "none", F32, U8, true, true, false, false},
    {2, {11, 50}, 66, "static", "relu", F32, I8, false, true, false, false},
    {2, {6, 40}, 20, "dynamic", "gelu", F32, I8, false, true, false, false},
    /* W8: weight-only, f32 activations; M = 1 (two accumulator sets, odd K) and a block */
    {2, {1, 301}, 150, "none", "none", F32, F32, false, true, false, false},
    {2, {1, 512}, 256, "none", "none", F32, F32, false, false, false, false},
    {3, {2, 9, 40}, 77, "none", "gelu_tanh", F32, F32, false, true, true, false},
    {2, {3, 16}, 16, "none", "none", F32, U8, false, true, false, false},
    /* K = 0: the bias alone */
    {2, {3, 0}, 20, "dynamic", "none", F32, F32, false, true, true, false},
    {2, {3, 0}, 20, "none", "none", F32, F32, false, true, true, false},
};

static void test_all(void **s) {
  (void)s;
  QMM_RUN_CASES(run_case, cases, targets, N_TARGETS, 1);
}

/* The parallel split: units start mid-chunk under the fake parallel_for. */
static void test_parallel(void **s) {
  (void)s;
  lb_jit_set_parallel_for(fake_parallel_for);
  static const struct qcase par[] = {
      {2, {130, 64}, 200, "static", "none", F32, F32, false, true, false, false},
      {2, {130, 600}, 40, "dynamic", "relu", F32, F32, false, true, false, false},
      {2, {300, 64}, 100, "static", "none", F32, U8, true, true, false, false},
      {2, {2, 1000}, 300, "none", "none", F32, F32, false, true, false, false},
  };
  QMM_RUN_CASES(run_case, par, targets, N_TARGETS, 1);
  lb_jit_set_parallel_for(NULL);
}

/* A weight without scales is refused with the node's name. */
static void test_errors(void **s) {
  (void)s;
  struct lb_graph *g = lb_graph_new("bad");
  struct lb_value *a = input(g, "a", TY(F32, 2, 4));
  struct lb_value *w = cconst(g, "w", TY(I8, 4, 3), -5, 5);
  struct lb_value *ins[2] = {a, w};
  struct lb_node *n = lb_graph_add_node(g, LB_OP_QMATMUL, "qmm", ins, 2, NULL, 1);
  finish(g, n);
  check_compile_fails(g, LB_ERR_INVALID);
  lb_graph_free(g);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_all),
      cmocka_unit_test(test_parallel),
      cmocka_unit_test(test_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
