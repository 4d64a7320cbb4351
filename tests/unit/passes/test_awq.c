/* Unit tests for the awq pass: it must leave the float function unchanged
 * (evaluated with lb_eval_node on fresh inputs before and after, every
 * producer kind lb_rw_rescale_group folds into, plus an explicit scale node),
 * and AWQ followed by the quantize pass's 4-bit RTN must give a linear layer
 * whose input has a few salient channels a smaller output error than RTN
 * alone. Also the statistics AWQ reads (mean |x| per channel, the reservoir
 * of rows). */
#include "helpers.h"

#include <math.h>
#include <stdio.h>
#include <unistd.h>

#include "passes/calib.h"

#define ROWS 32
#define K 64
#define N_CALIB 8
#define N_TEST 3

static uint64_t rng_state;
static float uniform(float lo, float hi) {
  rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
  return lo + (hi - lo) * (float)((rng_state >> 40) / (double)(1ull << 24));
}

/* approximately normal with mean 0 and standard deviation sd (Irwin-Hall) */
static float gaussian(float sd) {
  float u = 0;
  for (int i = 0; i < 12; i++) u += uniform(0, 1);
  return (u - 6.0f) * sd;
}

static struct lb_value *random_const(struct lb_graph *g, const char *name, struct lb_type t, float lo, float hi) {
  int64_t n = lb_shape_numel(&t.shape);
  float *p = malloc(sizeof *p * (size_t)n);
  for (int64_t i = 0; i < n; i++) p[i] = uniform(lo, hi);
  struct lb_value *v = cst(g, name, t, p);
  free(p);
  return v;
}

static struct lb_node *linear(struct lb_graph *g, enum lb_op op, const char *name, struct lb_type t,
                              struct lb_value *x, struct lb_value *w, struct lb_value *bias, const char *act,
                              int trans_b) {
  struct lb_value *y = bias ? op1(g, op, name, t, 3, x, w, bias) : op1(g, op, name, t, 2, x, w);
  if (op == LB_OP_FUSED_MATMUL) lb_node_set_attr_string(g, y->producer, "act", act);
  if (op != LB_OP_MATMUL && trans_b) lb_node_set_attr_int(g, y->producer, "transB", 1);
  return y->producer;
}

/* Channels SALIENT_A/B of layer_norm's output (and of the single layer's
 * input) are 20x larger than the rest, as in LLM activations. */
#define SALIENT_A 5
#define SALIENT_B 40

static struct lb_graph *build_mixed(void) {
  rng_state = 7;
  struct lb_graph *g = lb_graph_new("awq");
  g->opset = 17;
  struct lb_value *x = input(g, "x", TY(F32, ROWS, K)), *h = input(g, "h", TY(F32, ROWS, K));
  float gamma[K], beta[K];
  for (int i = 0; i < K; i++) {
    float f = i == SALIENT_A || i == SALIENT_B ? 20.0f : 1.0f;
    gamma[i] = uniform(0.5f, 1.5f) * f;
    beta[i] = uniform(-0.2f, 0.2f) * f;
  }
  struct lb_value *ln = op1(g, LB_OP_LAYER_NORM, "ln", TY(F32, ROWS, K), 3, x, cst(g, "gamma", TY(F32, K), gamma),
                            cst(g, "beta", TY(F32, K), beta));
  lb_node_set_attr_int(g, ln->producer, "axis", 1);
  struct lb_node *q = linear(g, LB_OP_FUSED_MATMUL, "q", TY(F32, ROWS, 24), ln,
                             random_const(g, "wq", TY(F32, K, 24), -1, 1), random_const(g, "bq", TY(F32, 24), -1, 1),
                             "none", 0);
  struct lb_node *k = linear(g, LB_OP_FUSED_MATMUL, "k", TY(F32, ROWS, 24), ln,
                             random_const(g, "wk", TY(F32, 24, K), -1, 1), NULL, "relu", 1);
  /* gelu output -> an explicit scale node */
  struct lb_node *a = linear(g, LB_OP_FUSED_MATMUL, "a", TY(F32, ROWS, K), h,
                             random_const(g, "w1", TY(F32, K, K), -2, 2), random_const(g, "b1", TY(F32, K), -1, 1),
                             "gelu", 0);
  struct lb_node *o = linear(g, LB_OP_MATMUL, "o", TY(F32, ROWS, 16), a->outputs[0],
                             random_const(g, "w2", TY(F32, K, 16), -1, 1), NULL, NULL, 0);
  struct lb_node *outs[] = {q, k, o};
  for (size_t i = 0; i < sizeof outs / sizeof outs[0]; i++) lb_graph_add_output(g, outs[i]->outputs[0]);
  return g;
}

/* y = x . w with x's channels SALIENT_A/B large: the graph input feeds the
 * layer directly, so AWQ inserts an explicit scale node. */
static struct lb_graph *build_single(void) {
  rng_state = 11;
  struct lb_graph *g = lb_graph_new("awq1");
  g->opset = 17;
  struct lb_value *x = input(g, "x", TY(F32, ROWS, K)), *h = input(g, "h", TY(F32, ROWS, K));
  (void)h;
  /* normal weights, as trained layers have (a group's range is set by a few) */
  float w[K * 48];
  for (int i = 0; i < K * 48; i++) w[i] = gaussian(0.5f);
  struct lb_node *y = linear(g, LB_OP_MATMUL, "y", TY(F32, ROWS, 48), x, cst(g, "w", TY(F32, K, 48), w), NULL, NULL, 0);
  lb_graph_add_output(g, y->outputs[0]);
  return g;
}

/* ---- inputs and calibration (whole-graph evaluation: eval_values in helpers.h) ---- */

/* inputs x and h; x's salient channels 20x larger */
static float *random_inputs(int sample) {
  rng_state = 1000 + (uint64_t)sample;
  float *p = malloc(sizeof *p * 2 * ROWS * K);
  for (int i = 0; i < 2 * ROWS * K; i++) {
    int c = i % K;
    float f = i < ROWS * K && (c == SALIENT_A || c == SALIENT_B) ? 20.0f : 1.0f;
    p[i] = uniform(-2, 2) * f;
  }
  return p;
}

/* What the calibration runner records for AWQ: mean |x| per channel and the
 * row reservoir of every linear layer's input, over N_CALIB samples. */
static struct lb_calib_stat *calibrate(struct lb_graph *g, int32_t *n_stats) {
  struct lb_calib_stat *stats = calloc((size_t)g->n_nodes, sizeof *stats);
  int32_t n = 0;
  for (int32_t i = 0; i < g->n_nodes; i++) {
    struct lb_node *node = g->nodes[i];
    if (node->op != LB_OP_MATMUL && node->op != LB_OP_FUSED_MATMUL && node->op != LB_OP_GEMM) continue;
    bool dup = false;
    for (int32_t j = 0; j < n; j++) dup |= strcmp(stats[j].name, node->inputs[0]->name) == 0;
    if (!dup)
      lb_calib_stat_init(&stats[n++], node->inputs[0]->name, LB_CALIB_ABSMEAN_CHANNEL | LB_CALIB_ROWS,
                         &node->inputs[0]->type);
  }
  for (int sample = 0; sample < N_CALIB; sample++) {
    float *in = random_inputs(sample);
    float *ins[2] = {in, in + ROWS * K};
    struct run r = eval_values(g, ins);
    for (int32_t j = 0; j < n; j++) {
      struct lb_value *v = lb_graph_find_value(g, stats[j].name);
      lb_calib_stat_add(&stats[j], r.buf[v->id], lb_shape_numel(&v->type.shape));
    }
    run_free(&r);
    free(in);
  }
  *n_stats = n;
  return stats;
}

static void free_stats(struct lb_calib_stat *stats, int32_t n) {
  for (int32_t i = 0; i < n; i++) lb_calib_stat_free(&stats[i]);
  free(stats);
}

static enum lb_status run_pipeline(struct lb_graph *g, const char *pipeline, const struct lb_calib_stat *stats,
                                   int32_t n, char **text) {
  struct lb_diag d;
  lb_diag_init(&d, "test");
  struct lb_pass_options opt = {.verify_each = true, .calib = stats, .n_calib = n};
  enum lb_status st = lb_pass_manager_run(g, pipeline, &opt, &d);
  if (text) *text = d.text ? strdup(d.text) : NULL;
  lb_diag_free(&d);
  return st;
}

/* sum over N_TEST fresh inputs and every output of (after - before)^2, and
 * the largest |after - before| relative to max(1, max |before|) */
static double output_error(struct lb_graph *before, struct lb_graph *after, double *max_rel) {
  double sq = 0;
  *max_rel = 0;
  for (int sample = N_CALIB; sample < N_CALIB + N_TEST; sample++) {
    float *in = random_inputs(sample);
    float *ins[2] = {in, in + ROWS * K};
    struct run r0 = eval_values(before, ins), r1 = eval_values(after, ins);
    for (int32_t o = 0; o < before->n_outputs; o++) {
      struct lb_value *v0 = before->outputs[o], *v1 = after->outputs[o];
      assert_string_equal(v0->name, v1->name);
      int64_t n = lb_shape_numel(&v0->type.shape);
      const float *y0 = r0.buf[v0->id], *y1 = r1.buf[v1->id];
      double scale = 1;
      for (int64_t i = 0; i < n; i++) scale = fmax(scale, fabs(y0[i]));
      for (int64_t i = 0; i < n; i++) {
        double e = (double)y1[i] - y0[i];
        sq += e * e;
        *max_rel = fmax(*max_rel, fabs(e) / scale);
      }
    }
    run_free(&r0);
    run_free(&r1);
    free(in);
  }
  return sq;
}

/* ---- tests ----------------------------------------------------------------------- */

static void test_statistics(void **state) {
  (void)state;
  struct lb_type t = TY(F32, 4, 3);
  struct lb_calib_stat s;
  lb_calib_stat_init(&s, "v", LB_CALIB_ABSMEAN_CHANNEL | LB_CALIB_ROWS, &t);
  /* 1000 samples of 4 rows: row r of sample i is (i, -2i, NaN if r == 3) */
  float x[12];
  for (int i = 0; i < 1000; i++) {
    for (int r = 0; r < 4; r++) {
      x[r * 3 + 0] = (float)i;
      x[r * 3 + 1] = -2.0f * (float)i;
      x[r * 3 + 2] = r == 3 ? NAN : (float)r;
    }
    lb_calib_stat_add(&s, x, 12);
  }
  assert_true(fabs(lb_calib_stat_absmean(&s, 0) - 499.5) < 1e-9);
  assert_true(fabs(lb_calib_stat_absmean(&s, 1) - 999.0) < 1e-9);
  assert_true(fabs(lb_calib_stat_absmean(&s, 2) - 1.0) < 1e-9); /* (0 + 1 + 2) / 3 */
  /* rows with a NaN are never sampled; the reservoir is full and uniform:
   * every kept row is a real row, and the samples it holds span the stream */
  assert_int_equal(s.rows_seen, 3000);
  assert_int_equal(s.n_rows, LB_CALIB_MAX_ROWS);
  double mean_i = 0;
  for (int64_t r = 0; r < s.n_rows; r++) {
    const float *row = s.rows + r * 3;
    assert_true(row[1] == -2 * row[0] && row[2] >= 0 && row[2] <= 2 && row[0] == floorf(row[0]));
    mean_i += row[0] / (double)s.n_rows;
  }
  assert_true(mean_i > 420 && mean_i < 580); /* uniform over 0..999: mean 499.5, sd ~13 */
  lb_calib_stat_free(&s);
}

/* --save-calib writes mean |x| and the rows; lowbit-opt --load-stats reads them back */
static void test_statistics_file(void **state) {
  (void)state;
  struct lb_type t = TY(F32, 2, 3);
  struct lb_calib_stat s;
  lb_calib_stat_init(&s, "v", LB_CALIB_ABSMAX_CHANNEL | LB_CALIB_ABSMEAN_CHANNEL | LB_CALIB_ROWS, &t);
  const float x[6] = {1.5f, -2, 0.25f, -0.5f, 4, 0.125f};
  lb_calib_stat_add(&s, x, 6);
  char path[] = "/tmp/lowbit-test-awq-XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  close(fd);
  struct lb_diag d;
  lb_diag_init(&d, "test");
  struct lb_calib_file_info info = {.model = "m", .samples = 1};
  assert_int_equal(lb_calib_write_json(path, &s, 1, &info, &d), LB_OK);
  struct lb_calib_stat *back = NULL;
  int32_t n = 0;
  enum lb_status st = lb_calib_read_stats_json(path, &back, &n, &d);
  if (st != LB_OK) fprintf(stderr, "%s", d.text);
  assert_int_equal(st, LB_OK);
  assert_int_equal(n, 1);
  assert_non_null(back[0].abssum);
  assert_non_null(back[0].rows);
  assert_int_equal(back[0].n_rows, 2);
  for (int c = 0; c < 3; c++)
    assert_true(fabs(lb_calib_stat_absmean(&back[0], c) - lb_calib_stat_absmean(&s, c)) < 1e-12);
  for (int i = 0; i < 6; i++) assert_true(back[0].rows[i] == x[i]);
  lb_calib_stat_free(&back[0]);
  free(back);
  lb_calib_stat_free(&s);
  lb_diag_free(&d);
  unlink(path);
}

static void test_preserves_function(void **state) {
  (void)state;
  struct lb_graph *before = build_mixed(), *after = build_mixed();
  int32_t n;
  struct lb_calib_stat *stats = calibrate(before, &n);
  char *text = NULL;
  assert_int_equal(run_pipeline(after, "awq{group=16}", stats, n, &text), LB_OK);
  assert_non_null(text);
  assert_non_null(strstr(text, "awq: 3 activations, 3 scaled (1 folded"));
  free(text);
  /* ln's salient channels were scaled: 1/s folded into gamma and beta
   * (fresh copies), the gelu output divided by an explicit mul */
  assert_true(defines(after, "gamma.awq") && defines(after, "beta.awq") && defines(after, "wq.awq"));
  assert_false(defines(after, "gamma"));
  assert_true(defines(after, "a.awq") && defines(after, "a.awq_scale"));
  double max_rel;
  output_error(before, after, &max_rel);
  if (max_rel > 1e-5) fail_msg("awq changed the float function: max relative error %g", max_rel);
  free_stats(stats, n);
  lb_graph_free(before);
  lb_graph_free(after);
}

static void test_lower_error_than_rtn(void **state) {
  (void)state;
  struct lb_graph *ref = build_single(), *rtn = build_single(), *awq = build_single();
  int32_t n;
  struct lb_calib_stat *stats = calibrate(ref, &n);
  assert_int_equal(run_pipeline(rtn, "quantize{scheme=w4 group=32}", stats, n, NULL), LB_OK);
  char *text = NULL;
  assert_int_equal(run_pipeline(awq, "awq{bits=4 group=32},quantize{scheme=w4 group=32}", stats, n, &text), LB_OK);
  print_message("%s", text);
  free(text);
  assert_int_equal(count_op(rtn, LB_OP_QMATMUL), 1);
  assert_int_equal(count_op(awq, LB_OP_QMATMUL), 1);
  assert_int_equal(count_op(awq, LB_OP_MUL), 1); /* x is a graph input: explicit scale */
  double rel, e_rtn = output_error(ref, rtn, &rel), e_awq = output_error(ref, awq, &rel);
  print_message("layer output squared error: RTN %.6g, AWQ+RTN %.6g\n", e_rtn, e_awq);
  assert_true(e_rtn > 0);
  if (!(e_awq < 0.7 * e_rtn)) fail_msg("AWQ+RTN error %g is not below 0.7 x RTN's %g", e_awq, e_rtn);
  free_stats(stats, n);
  lb_graph_free(ref);
  lb_graph_free(rtn);
  lb_graph_free(awq);
}

static void test_errors(void **state) {
  (void)state;
  struct lb_graph *g = build_single();
  char *text = NULL;
  assert_int_equal(run_pipeline(g, "awq", NULL, 0, &text), LB_ERR_INVALID);
  assert_non_null(strstr(text, "awq: no calibration statistics for value \"x\""));
  free(text);
  /* statistics without rows (what int8 calibration records) */
  struct lb_calib_stat s;
  lb_calib_stat_init(&s, "x", LB_CALIB_ABSMAX_CHANNEL, &g->inputs[0]->type);
  assert_int_equal(run_pipeline(g, "awq", &s, 1, &text), LB_ERR_INVALID);
  assert_non_null(strstr(text, "need \"absmean_channel\" and a non-empty \"rows\""));
  free(text);
  lb_calib_stat_free(&s);
  assert_int_equal(run_pipeline(g, "awq{bits=5}", NULL, 0, &text), LB_ERR_USAGE);
  assert_non_null(strstr(text, "awq: bits=5"));
  free(text);
  lb_graph_free(g);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_statistics),
      cmocka_unit_test(test_statistics_file),
      cmocka_unit_test(test_preserves_function),
      cmocka_unit_test(test_lower_error_than_rtn),
      cmocka_unit_test(test_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
