/* test_sensitivity.c: codegen/sensitivity.c.
 *  - lb_sens_graft (one layer taken from a quantized candidate; several grafts
 *    make a mixed-precision graph) and lb_sens_weight_bytes;
 *  - lb_sensitivity's one-compile "switchboard" gives exactly (==) the errors of
 *    compiling the float model with each layer grafted alone, and of the whole
 *    candidate. (tests/cli/analyze.sh checks the numbers against numpy.) */
#include "cg_test.h"

#include <sys/stat.h>
#include <unistd.h>

#include "codegen/sensitivity.h"
#include "passes/pass.h"
#include "runtime/lbrt.h"

enum { M = 2, K = 64, N = 8 };

/* x [M,K] -> h1 = x @ w1 [K,N] + b1 -> h2 = h1 @ w2 [N,N] + b2 */
static char *float_text(void) {
  char *text = malloc(1 << 17), *p = text;
  assert_non_null(text);
  p += sprintf(p, "graph @g(%%x: f32[%d,%d]) -> (f32[%d,%d]) opset 17 {\n", M, K, M, N);
  for (int l = 1; l <= 2; l++) {
    int64_t k = l == 1 ? K : N;
    p += sprintf(p, "  %%w%d = const f32[%lld,%d] dense<[", l, (long long)k, N);
    for (int64_t i = 0; i < k * N; i++) p += sprintf(p, "%s%.6g", i ? ", " : "", rng_unit() * 2 - 1);
    p += sprintf(p, "]>\n  %%b%d = const f32[%d] dense<[", l, N);
    for (int i = 0; i < N; i++) p += sprintf(p, "%s%.6g", i ? ", " : "", rng_unit() - 0.5);
    p += sprintf(p, "]>\n  %%h%d = fused_matmul(%%%s, %%w%d, %%b%d) {act=\"none\"} : f32[%d,%d]\n", l,
                 l == 1 ? "x" : "h1", l, l, M, N);
  }
  p += sprintf(p, "  return %%h2\n}\n");
  return text;
}

static struct lb_graph *parse(const char *text) {
  struct lb_diag d;
  lb_diag_init(&d, "test");
  struct lb_graph *g = NULL;
  enum lb_status st = lb_graph_parse(text, strlen(text), "test.lbir", &g, &d);
  if (st == LB_OK) st = lb_graph_verify(g, &d);
  if (st != LB_OK) fprintf(stderr, "%s\n", d.text ? d.text : "");
  assert_int_equal(st, LB_OK);
  lb_diag_free(&d);
  return g;
}

static struct lb_graph *quantized(const struct lb_graph *g, const char *pipeline) {
  struct lb_graph *q = lb_graph_clone(g);
  struct lb_diag d;
  lb_diag_init(&d, "test");
  assert_int_equal(lb_pass_manager_run(q, pipeline, NULL, &d), LB_OK);
  lb_diag_free(&d);
  return q;
}

static const struct lb_node *producer(const struct lb_graph *g, const char *name) {
  const struct lb_value *v = lb_graph_find_value(g, name);
  assert_non_null(v);
  assert_non_null(v->producer);
  return v->producer;
}

/* The grafted layer has the candidate's codes and scales; the other layer is untouched. */
static void check_same_weight(const struct lb_graph *g, const struct lb_graph *cand, const char *name) {
  const struct lb_node *a = producer(g, name), *b = producer(cand, name);
  assert_int_equal(a->op, LB_OP_QMATMUL);
  const struct lb_value *wa = a->inputs[1], *wb = b->inputs[1];
  int64_t n = lb_shape_numel(&wa->type.shape);
  assert_int_equal(n, lb_shape_numel(&wb->type.shape));
  assert_memory_equal(lb_value_const_data(g, wa), lb_value_const_data(cand, wb), (size_t)n);
  assert_int_equal(wa->qparams->bits, wb->qparams->bits);
  assert_int_equal(wa->qparams->group_size, wb->qparams->group_size);
  assert_int_equal(wa->qparams->n, wb->qparams->n);
  assert_memory_equal(wa->qparams->scales, wb->qparams->scales, sizeof(float) * (size_t)wa->qparams->n);
  assert_string_equal(lb_node_attr_string(a, "a_quant", "?"), lb_node_attr_string(b, "a_quant", "?"));
}

static void test_graft_mixed(void **state) {
  (void)state;
  char *text = float_text();
  struct lb_graph *f = parse(text);
  free(text);
  struct lb_graph *w4 = quantized(f, "quantize{scheme=w4 group=32},dce");
  struct lb_graph *w8 = quantized(f, "quantize{scheme=w8},dce");
  struct lb_diag d;
  lb_diag_init(&d, "test");

  /* one layer alone */
  struct lb_graph *g = lb_graph_clone(f);
  assert_int_equal(lb_sens_graft(g, w4, "h1", &d), LB_OK);
  check_same_weight(g, w4, "h1");
  assert_int_equal(producer(g, "h2")->op, LB_OP_FUSED_MATMUL);
  assert_int_equal(lb_graph_verify(g, &d), LB_OK);
  /* then the other from another candidate: a mixed w4/w8 graph */
  assert_int_equal(lb_sens_graft(g, w8, "h2", &d), LB_OK);
  check_same_weight(g, w4, "h1");
  check_same_weight(g, w8, "h2");
  assert_int_equal(producer(g, "h2")->inputs[1]->qparams->bits, 8);
  assert_int_equal(producer(g, "h1")->inputs[1]->qparams->bits, 4);
  assert_int_equal(lb_pass_manager_run(g, "dce", NULL, &d), LB_OK);
  assert_int_equal(lb_graph_verify(g, &d), LB_OK);
  /* a layer already quantized, and a name that is no layer, are refused */
  assert_int_equal(lb_sens_graft(g, w4, "h1", &d), LB_ERR_INVALID);
  assert_int_equal(lb_sens_graft(g, w4, "x", &d), LB_ERR_INVALID);
  assert_non_null(strstr(d.text, "\"x\""));
  /* the candidates are not modified */
  assert_int_equal(producer(w4, "h2")->inputs[1]->qparams->bits, 4);
  assert_int_equal(producer(f, "h1")->op, LB_OP_FUSED_MATMUL);

  lb_diag_free(&d);
  lb_graph_free(g);
  lb_graph_free(w4);
  lb_graph_free(w8);
  lb_graph_free(f);
}

static void test_weight_bytes(void **state) {
  (void)state;
  /* 4-bit, groups of 32 over K = 100 (4 groups, the last short), N = 10: 500 code bytes + 40 f16 scales */
  struct lb_qparams q = {.bits = 4, .axis = 1, .group_size = 32, .symmetric = true, .n = 4 * 10};
  assert_int_equal(lb_sens_weight_bytes(&q, 100, 10), 500 + 80);
  /* 3 bits pack to ceil(K*N*3/8) bytes; asymmetric adds a byte per zero point */
  int32_t zps[40] = {0};
  q.bits = 3;
  q.zero_points = zps;
  assert_int_equal(lb_sens_weight_bytes(&q, 100, 10), 375 + 80 + 40);
  q.bits = 2;
  q.zero_points = NULL;
  assert_int_equal(lb_sens_weight_bytes(&q, 3, 3), 3 + 80); /* ceil(18 / 8) */
  /* int8 per column: one f32 scale per column */
  struct lb_qparams q8 = {.bits = 8, .axis = 1, .symmetric = true, .n = 10};
  assert_int_equal(lb_sens_weight_bytes(&q8, 100, 10), 1000 + 40);
  /* f16 weights carry no qparams: 2 bytes a weight */
  assert_int_equal(lb_sens_weight_bytes(NULL, 100, 10), 2000);
}

static void test_metric_names(void **state) {
  (void)state;
  enum lb_sens_metric m;
  assert_true(lb_sens_metric_parse("kl", &m) && m == LB_SENS_KL);
  assert_true(lb_sens_metric_parse("mse", &m) && m == LB_SENS_MSE);
  assert_false(lb_sens_metric_parse("KL", &m));
  assert_false(lb_sens_metric_parse(NULL, &m));
  assert_string_equal(lb_sens_metric_name(LB_SENS_KL), "kl");
}

enum { SAMPLES = 3 };

/* Runs g (consumed: planned and JIT-compiled) on the samples x; the summed
 * squared error against ref (NULL: store the outputs into ref instead). */
static double run_mse(struct lb_graph *g, float x[SAMPLES][M * K], float ref[SAMPLES][M * N], bool store) {
  struct lb_diag d;
  lb_diag_init(&d, "test");
  assert_int_equal(lb_pass_manager_run(g, "dce,plan-memory", NULL, &d), LB_OK);
  struct lb_codegen_options co = {.opt_level = 3, .model_name = "t"};
  struct lb_jit *j = NULL;
  assert_int_equal(lb_jit_compile(g, &co, &j, &d), LB_OK);
  void *act = lb_blob_alloc((size_t)lb_jit_activations_size(j));
  float y[M * N];
  double se = 0;
  for (int s = 0; s < SAMPLES; s++) {
    const void *ins[1] = {x[s]};
    void *outs[1] = {y};
    assert_int_equal(lb_jit_run(j, ins, outs, act), 0);
    for (int i = 0; i < M * N; i++) {
      if (store) ref[s][i] = y[i];
      double e = (double)ref[s][i] - y[i];
      se += e * e;
    }
  }
  free(act);
  lb_jit_free(j);
  lb_graph_free(g);
  lb_diag_free(&d);
  return se / (SAMPLES * M * N);
}

static void test_switchboard_exact(void **state) {
  (void)state;
  char *text = float_text();
  struct lb_graph *f = parse(text);
  free(text);
  struct lb_graph *w3 = quantized(f, "quantize{scheme=w3 group=16},dce");
  struct lb_graph *w2 = quantized(f, "quantize{scheme=w2 group=0},dce");
  char dir[] = "/tmp/lb_sens_XXXXXX";
  assert_non_null(mkdtemp(dir));
  static float x[SAMPLES][M * K], ref[SAMPLES][M * N];
  for (int s = 0; s < SAMPLES; s++) {
    for (int i = 0; i < M * K; i++) x[s][i] = (float)(rng_unit() * 4 - 2);
    char path[96];
    snprintf(path, sizeof path, "%s/s%d", dir, s);
    assert_int_equal(mkdir(path, 0755), 0);
    snprintf(path, sizeof path, "%s/s%d/x.npy", dir, s);
    struct lbrt_tensor t = {.dtype = LBRT_DTYPE_F32, .rank = 2, .dims = {M, K}, .data = x[s],
                            .nbytes = (int64_t)sizeof x[s]};
    assert_int_equal(lbrt_tensor_write(path, &t, LBRT_FORMAT_NPY, NULL, 0), LBRT_OK);
  }
  run_mse(lb_graph_clone(f), x, ref, true);

  struct lb_sens_candidate c[2] = {{"w3 g16", w3}, {"w2 g0", w2}};
  struct lb_sens_options o = {.calib_dir = dir, .metric = LB_SENS_MSE, .whole_model = true};
  struct lb_sens_table t;
  struct lb_diag d;
  lb_diag_init(&d, "test");
  assert_int_equal(lb_sensitivity(f, c, 2, &o, &t, &d), LB_OK);
  assert_int_equal(t.n_layers, 2);
  assert_int_equal(t.samples, SAMPLES);
  assert_string_equal(t.layers[0].value, "h1");
  assert_int_equal(t.layers[0].k, K);
  for (int32_t j = 0; j < 2; j++) {
    for (int32_t i = 0; i < 2; i++) {
      struct lb_graph *g = lb_graph_clone(f);
      assert_int_equal(lb_sens_graft(g, c[j].quant_g, t.layers[i].value, &d), LB_OK);
      double want = run_mse(g, x, ref, false);
      const struct lb_sens_cell *cell = lb_sens_cell_at(&t, i, j);
      assert_true(cell->present);
      assert_int_equal(cell->bits, j == 0 ? 3 : 2);
      assert_true(want > 0);
      if (cell->err.error != want) fail_msg("%s %s: switchboard %.17g, alone %.17g", c[j].label, t.layers[i].value,
                                            cell->err.error, want);
    }
    double whole = run_mse(lb_graph_clone(c[j].quant_g), x, ref, false);
    assert_true(t.whole[j].error == whole);
    assert_true(t.whole[j].rel_rms > 0);
  }
  lb_sens_table_free(&t);
  lb_diag_free(&d);
  char cmd[64];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  assert_int_equal(system(cmd), 0);
  lb_graph_free(w3);
  lb_graph_free(w2);
  lb_graph_free(f);
}

/* An f16 layer (quantize{scheme=f16}: a const f16 weight without qparams)
 * grafts beside a w4 one, and the switchboard measures it exactly too. */
static void test_graft_f16(void **state) {
  (void)state;
  char *text = float_text();
  struct lb_graph *f = parse(text);
  free(text);
  struct lb_graph *h = quantized(f, "quantize{scheme=f16},dce");
  struct lb_graph *w4 = quantized(f, "quantize{scheme=w4 group=32},dce");
  struct lb_diag d;
  lb_diag_init(&d, "test");
  struct lb_graph *g = lb_graph_clone(f);
  assert_int_equal(lb_sens_graft(g, h, "h1", &d), LB_OK);
  assert_int_equal(lb_sens_graft(g, w4, "h2", &d), LB_OK);
  const struct lb_value *wh = producer(g, "h1")->inputs[1];
  assert_int_equal(producer(g, "h1")->op, LB_OP_QMATMUL);
  assert_int_equal(wh->type.dtype, LB_DTYPE_F16);
  assert_null(wh->qparams);
  assert_memory_equal(lb_value_const_data(g, wh), lb_value_const_data(h, producer(h, "h1")->inputs[1]), 2 * K * N);
  check_same_weight(g, w4, "h2");
  assert_int_equal(lb_pass_manager_run(g, "dce", NULL, &d), LB_OK);
  assert_int_equal(lb_graph_verify(g, &d), LB_OK);

  char dir[] = "/tmp/lb_sens_XXXXXX";
  assert_non_null(mkdtemp(dir));
  static float x[SAMPLES][M * K], ref[SAMPLES][M * N];
  for (int s = 0; s < SAMPLES; s++) {
    for (int i = 0; i < M * K; i++) x[s][i] = (float)(rng_unit() * 4 - 2);
    char path[96];
    snprintf(path, sizeof path, "%s/s%d", dir, s);
    assert_int_equal(mkdir(path, 0755), 0);
    snprintf(path, sizeof path, "%s/s%d/x.npy", dir, s);
    struct lbrt_tensor t = {.dtype = LBRT_DTYPE_F32, .rank = 2, .dims = {M, K}, .data = x[s],
                            .nbytes = (int64_t)sizeof x[s]};
    assert_int_equal(lbrt_tensor_write(path, &t, LBRT_FORMAT_NPY, NULL, 0), LBRT_OK);
  }
  run_mse(lb_graph_clone(f), x, ref, true);
  struct lb_sens_candidate c[1] = {{"f16", h}};
  struct lb_sens_options o = {.calib_dir = dir, .metric = LB_SENS_MSE};
  struct lb_sens_table t;
  assert_int_equal(lb_sensitivity(f, c, 1, &o, &t, &d), LB_OK);
  assert_int_equal(t.n_layers, 2);
  for (int32_t i = 0; i < 2; i++) {
    const struct lb_sens_cell *cell = lb_sens_cell_at(&t, i, 0);
    assert_true(cell->present);
    assert_int_equal(cell->bits, 16);
    assert_int_equal(cell->bytes, 2 * t.layers[i].k * N);
    struct lb_graph *one = lb_graph_clone(f);
    assert_int_equal(lb_sens_graft(one, h, t.layers[i].value, &d), LB_OK);
    double want = run_mse(one, x, ref, false);
    assert_true(want > 0 && want < 1e-4); /* f16 rounding: small, but not nothing */
    if (cell->err.error != want) fail_msg("f16 %s: switchboard %.17g, alone %.17g", t.layers[i].value,
                                          cell->err.error, want);
  }
  lb_sens_table_free(&t);
  char cmd[64];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  assert_int_equal(system(cmd), 0);
  lb_diag_free(&d);
  lb_graph_free(g);
  lb_graph_free(h);
  lb_graph_free(w4);
  lb_graph_free(f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_graft_mixed),
      cmocka_unit_test(test_weight_bytes),
      cmocka_unit_test(test_metric_names),
      cmocka_unit_test(test_switchboard_exact),
      cmocka_unit_test(test_graft_f16),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
