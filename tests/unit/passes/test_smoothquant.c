/* Unit tests for the int8 preparation passes smoothquant and split-outliers:
 * both must leave the float function unchanged (checked by evaluating the
 * whole graph with the reference evaluator lb_eval_node on random inputs
 * before and after), smoothquant must flatten the per-channel ranges of the
 * activations it smooths, and split-outliers must leave the to-be-int8
 * matmuls an activation without the outlier channels. Also the reader of
 * calibration statistics files (lb_calib_read_stats_json) they get them from
 * in lowbit-opt. */
#include "helpers.h"

#include <math.h>
#include <stdio.h>
#include <unistd.h>

#include "passes/calib.h"

#define ROWS 4
#define K 16
#define N_CALIB 8
#define N_TEST 3

/* deterministic uniform numbers in [lo, hi) */
static uint64_t rng_state;
static float uniform(float lo, float hi) {
  rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
  return lo + (hi - lo) * (float)((rng_state >> 40) / (double)(1ull << 24));
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
                              struct lb_value *x, struct lb_value *w, struct lb_value *bias,
                              const char *act, int trans_b) {
  struct lb_value *y = bias ? op1(g, op, name, t, 3, x, w, bias) : op1(g, op, name, t, 2, x, w);
  if (op == LB_OP_FUSED_MATMUL) lb_node_set_attr_string(g, y->producer, "act", act);
  if (op != LB_OP_MATMUL && trans_b) lb_node_set_attr_int(g, y->producer, "transB", 1);
  return y->producer;
}

/* A graph with every producer kind smoothquant handles. LayerNorm channels 3
 * and 11 are scaled up 40x (as in large LLMs); the other activations get
 * outliers from their weights. Built twice from the same seed = same graph. */
static struct lb_graph *build(void) {
  rng_state = 42;
  struct lb_graph *g = lb_graph_new("sq");
  g->opset = 17;
  struct lb_value *x = input(g, "x", TY(F32, ROWS, K)), *h = input(g, "h", TY(F32, ROWS, K));
  float gamma[K], beta[K];
  for (int i = 0; i < K; i++) {
    float f = i == 3 || i == 11 ? 40.0f : 1.0f;
    gamma[i] = uniform(0.5f, 1.5f) * f;
    beta[i] = uniform(-0.2f, 0.2f) * f;
  }
  struct lb_value *ln = op1(g, LB_OP_LAYER_NORM, "ln", TY(F32, ROWS, K), 3, x,
                            cst(g, "gamma", TY(F32, K), gamma), cst(g, "beta", TY(F32, K), beta));
  lb_node_set_attr_int(g, ln->producer, "axis", 1);
  /* layer_norm -> two readers (one transB with relu) */
  struct lb_node *q = linear(g, LB_OP_FUSED_MATMUL, "q", TY(F32, ROWS, 12), ln,
                             random_const(g, "wq", TY(F32, K, 12), -1, 1),
                             random_const(g, "bq", TY(F32, 12), -1, 1), "none", 0);
  struct lb_node *k = linear(g, LB_OP_FUSED_MATMUL, "k", TY(F32, ROWS, 12), ln,
                             random_const(g, "wk", TY(F32, 12, K), -1, 1), NULL, "relu", 1);
  /* fused_matmul with gelu -> matmul: an explicit scale node */
  struct lb_node *a = linear(g, LB_OP_FUSED_MATMUL, "a", TY(F32, ROWS, K), h,
                             random_const(g, "w1", TY(F32, K, K), -2, 2),
                             random_const(g, "b1", TY(F32, K), -1, 1), "gelu", 0);
  struct lb_node *o = linear(g, LB_OP_MATMUL, "o", TY(F32, ROWS, 6), a->outputs[0],
                             random_const(g, "w2", TY(F32, K, 6), -1, 1), NULL, NULL, 0);
  /* matmul without act -> fused_matmul: folds into the producer's columns */
  struct lb_node *p = linear(g, LB_OP_MATMUL, "p", TY(F32, ROWS, K), h,
                             random_const(g, "w3", TY(F32, K, K), -3, 3), NULL, NULL, 0);
  struct lb_node *r = linear(g, LB_OP_FUSED_MATMUL, "r", TY(F32, ROWS, 6), p->outputs[0],
                             random_const(g, "w4", TY(F32, K, 6), -1, 1), NULL, "none", 0);
  /* mul by a constant -> matmul: folds into the constant */
  struct lb_value *mh = op1(g, LB_OP_MUL, "mh", TY(F32, ROWS, K), 2, h,
                            random_const(g, "c", TY(F32, K), -4, 4));
  struct lb_node *s = linear(g, LB_OP_MATMUL, "s", TY(F32, ROWS, 6), mh,
                             random_const(g, "w5", TY(F32, K, 6), -1, 1), NULL, NULL, 0);
  /* fused_matmul with bias -> gemm (transB, alpha, beta): folds into columns and bias */
  struct lb_node *p2 = linear(g, LB_OP_FUSED_MATMUL, "p2", TY(F32, ROWS, K), x,
                              random_const(g, "w7", TY(F32, K, K), -2, 2),
                              random_const(g, "b7", TY(F32, K), -1, 1), "none", 0);
  struct lb_node *gm = linear(g, LB_OP_GEMM, "gm", TY(F32, ROWS, 6), p2->outputs[0],
                              random_const(g, "w6", TY(F32, 6, K), -1, 1),
                              random_const(g, "c6", TY(F32, 6), -1, 1), NULL, 1);
  lb_node_set_attr_float(g, gm, "alpha", 0.5);
  lb_node_set_attr_float(g, gm, "beta", 2.0);
  struct lb_node *outs[] = {q, k, o, r, s, gm};
  for (size_t i = 0; i < sizeof outs / sizeof outs[0]; i++) lb_graph_add_output(g, outs[i]->outputs[0]);
  struct lb_diag d;
  lb_diag_init(&d, "test");
  assert_int_equal(lb_graph_verify(g, &d), LB_OK);
  lb_diag_free(&d);
  return g;
}

/* ---- inputs and calibration (whole-graph evaluation: eval_values in helpers.h) ---- */

static float *random_inputs(int sample) {
  rng_state = 1000 + (uint64_t)sample;
  float *p = malloc(sizeof *p * 2 * ROWS * K);
  for (int i = 0; i < 2 * ROWS * K; i++) p[i] = uniform(-2, 2);
  return p;
}

/* The statistics the calibration runner would record: every linear layer's
 * activation input, per-channel absmax, over N_CALIB samples. */
static struct lb_calib_stat *calibrate(struct lb_graph *g, int32_t *n_stats) {
  struct lb_calib_stat *stats = calloc((size_t)g->n_nodes, sizeof *stats);
  int32_t n = 0;
  for (int32_t i = 0; i < g->n_nodes; i++) {
    struct lb_node *node = g->nodes[i];
    if (node->op != LB_OP_MATMUL && node->op != LB_OP_FUSED_MATMUL && node->op != LB_OP_GEMM) continue;
    bool dup = false;
    for (int32_t j = 0; j < n; j++) dup |= strcmp(stats[j].name, node->inputs[0]->name) == 0;
    if (!dup)
      lb_calib_stat_init(&stats[n++], node->inputs[0]->name, LB_CALIB_ABSMAX_CHANNEL, &node->inputs[0]->type);
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

static void run_with_stats(struct lb_graph *g, const char *pipeline, const struct lb_calib_stat *stats,
                           int32_t n, const char *expect_note) {
  struct lb_diag d;
  lb_diag_init(&d, "test");
  struct lb_pass_options opt = {.verify_each = true, .calib = stats, .n_calib = n};
  enum lb_status st = lb_pass_manager_run(g, pipeline, &opt, &d);
  if (st != LB_OK) fprintf(stderr, "%s", d.text);
  assert_int_equal(st, LB_OK);
  assert_non_null(d.text);
  assert_non_null(strstr(d.text, expect_note));
  lb_diag_free(&d);
}

/* Outputs of `after` equal those of `before` on N_TEST fresh inputs. */
static void assert_same_function(struct lb_graph *before, struct lb_graph *after, double rtol) {
  assert_int_equal(before->n_outputs, after->n_outputs);
  for (int sample = N_CALIB; sample < N_CALIB + N_TEST; sample++) {
    float *in = random_inputs(sample);
    float *ins[2] = {in, in + ROWS * K};
    struct run r0 = eval_values(before, ins), r1 = eval_values(after, ins);
    for (int32_t o = 0; o < before->n_outputs; o++) {
      struct lb_value *v0 = before->outputs[o], *v1 = after->outputs[o];
      assert_string_equal(v0->name, v1->name);
      int64_t n = lb_shape_numel(&v0->type.shape);
      const float *y0 = r0.buf[v0->id], *y1 = r1.buf[v1->id];
      double scale = 0;
      for (int64_t i = 0; i < n; i++) scale = fmax(scale, fabs(y0[i]));
      for (int64_t i = 0; i < n; i++) {
        double err = fabs((double)y1[i] - y0[i]);
        if (err > rtol * fmax(scale, 1.0))
          fail_msg("output %s[%lld]: %.9g before, %.9g after (|y| up to %g)", v0->name, (long long)i,
                   y0[i], y1[i], scale);
      }
    }
    run_free(&r0);
    run_free(&r1);
    free(in);
  }
}

/* max_j / mean_j of the per-channel absmax of `name` over the calibration inputs */
static double channel_spread(struct lb_graph *g, const char *name) {
  struct lb_value *v = lb_graph_find_value(g, name);
  assert_non_null(v);
  struct lb_calib_stat s;
  lb_calib_stat_init(&s, name, LB_CALIB_ABSMAX_CHANNEL, &v->type);
  for (int sample = 0; sample < N_CALIB; sample++) {
    float *in = random_inputs(sample);
    float *ins[2] = {in, in + ROWS * K};
    struct run r = eval_values(g, ins);
    lb_calib_stat_add(&s, r.buf[v->id], lb_shape_numel(&v->type.shape));
    run_free(&r);
    free(in);
  }
  double mx = 0, sum = 0;
  for (int64_t j = 0; j < s.n_channels; j++) {
    mx = fmax(mx, s.absmax[j]);
    sum += s.absmax[j];
  }
  lb_calib_stat_free(&s);
  return mx / (sum / K);
}

static const struct lb_node *find_named(const struct lb_graph *g, const char *value) {
  struct lb_value *v = lb_graph_find_value(g, value);
  assert_non_null(v);
  return v->producer;
}

/* ---- smoothquant ---------------------------------------------------------------- */

static void smoothquant_preserves_function(void **state) {
  (void)state;
  struct lb_graph *before = build(), *after = build();
  int32_t n;
  struct lb_calib_stat *stats = calibrate(before, &n);
  assert_int_equal(n, 7); /* ln, h, a, p, mh, x, p2 */
  run_with_stats(after, "smoothquant", stats, n,
                 "smoothquant: 7 activations, 4 folded into layer_norm/matmul/mul, 3 explicit scale nodes");
  assert_topological(after);
  /* where 1/s went: ln's gamma, p's and p2's weights and p2's bias, mh's constant */
  assert_string_equal(find_named(after, "ln")->inputs[1]->name, "gamma.smooth");
  assert_string_equal(find_named(after, "q")->inputs[0]->name, "ln");
  assert_string_equal(find_named(after, "o")->inputs[0]->name, "a.smooth");   /* after gelu */
  assert_string_equal(find_named(after, "r")->inputs[0]->name, "p");          /* folded into p */
  assert_string_equal(find_named(after, "gm")->inputs[0]->name, "p2");        /* folded into p2 */
  assert_string_equal(find_named(after, "p2")->inputs[2]->name, "b7.smooth"); /* and its bias */
  /* h is read by a mul too: the two matmuls read an explicitly scaled copy */
  assert_string_equal(find_named(after, "p")->inputs[0]->name, "h.smooth");
  assert_string_equal(find_named(after, "mh")->inputs[0]->name, "h");
  assert_string_equal(find_named(after, "s")->inputs[0]->name, "mh");
  assert_string_equal(find_named(after, "mh")->inputs[1]->name, "c.smooth");
  assert_string_equal(find_named(after, "a")->inputs[0]->name, "h.smooth");
  assert_string_equal(find_named(after, "p2")->inputs[0]->name, "x.smooth"); /* x: layer_norm reads it */
  assert_false(defines(after, "wq")); /* replaced constants nothing reads are removed */
  assert_true(defines(after, "wq.smooth"));
  assert_same_function(before, after, 1e-5);
  free_stats(stats, n);
  lb_graph_free(before);
  lb_graph_free(after);
}

static void smoothquant_flattens_channels(void **state) {
  (void)state;
  for (int alpha10 = 5; alpha10 <= 8; alpha10 += 3) {
    struct lb_graph *before = build(), *after = build();
    int32_t n;
    struct lb_calib_stat *stats = calibrate(before, &n);
    char pipeline[64];
    snprintf(pipeline, sizeof pipeline, "smoothquant{alpha=0.%d}", alpha10);
    run_with_stats(after, pipeline, stats, n, "smoothquant: 7 activations");
    /* the layer_norm output the matmuls read, and the gelu output (via its scale node) */
    double ln0 = channel_spread(before, "ln"), ln1 = channel_spread(after, "ln");
    double a0 = channel_spread(before, "a"), a1 = channel_spread(after, "a.smooth");
    print_message("alpha 0.%d: max/mean channel absmax: ln %.2f -> %.2f, gelu output %.2f -> %.2f\n",
                  alpha10, ln0, ln1, a0, a1);
    assert_true(ln0 > 4.0); /* the planted outliers are there */
    assert_true(ln1 < ln0 / 1.5);
    assert_true(a1 <= a0);
    assert_same_function(before, after, 1e-5);
    free_stats(stats, n);
    lb_graph_free(before);
    lb_graph_free(after);
  }
}

static void smoothquant_needs_statistics(void **state) {
  (void)state;
  struct lb_graph *g = build();
  int32_t n;
  struct lb_calib_stat *stats = calibrate(g, &n);
  struct lb_diag d;
  lb_diag_init(&d, "test");
  /* drop the statistic of "a": the error names it */
  int32_t drop = -1;
  for (int32_t i = 0; i < n; i++)
    if (strcmp(stats[i].name, "a") == 0) drop = i;
  assert_true(drop >= 0);
  struct lb_calib_stat tmp = stats[drop];
  stats[drop] = stats[n - 1];
  stats[n - 1] = tmp;
  struct lb_pass_options opt = {.calib = stats, .n_calib = n - 1};
  assert_int_equal(lb_pass_manager_run(g, "smoothquant", &opt, &d), LB_ERR_INVALID);
  assert_non_null(strstr(d.text, "no calibration statistics for value \"a\""));
  lb_diag_free(&d);
  lb_diag_init(&d, "test");
  opt.n_calib = n;
  assert_int_equal(lb_pass_manager_run(g, "smoothquant{alpha=2}", &opt, &d), LB_ERR_USAGE);
  lb_diag_free(&d);
  free_stats(stats, n);
  lb_graph_free(g);
}

/* ---- split-outliers --------------------------------------------------------------- */

static void split_outliers_preserves_function(void **state) {
  (void)state;
  struct lb_graph *before = build(), *after = build();
  int32_t n;
  struct lb_calib_stat *stats = calibrate(before, &n);
  /* which activations have channels over the threshold, and how many */
  int expect_layers = 0;
  int64_t expect_channels = 0;
  for (int32_t i = 0; i < n; i++) {
    int64_t c = 0;
    for (int64_t j = 0; j < stats[i].n_channels; j++) c += stats[i].absmax[j] > 6.0;
    if (c == 0 || c == stats[i].n_channels) continue;
    expect_channels += c;
    for (int32_t k = 0; k < before->n_nodes; k++) {
      struct lb_node *node = before->nodes[k];
      expect_layers += (node->op == LB_OP_MATMUL || node->op == LB_OP_FUSED_MATMUL || node->op == LB_OP_GEMM) &&
                       strcmp(node->inputs[0]->name, stats[i].name) == 0;
    }
  }
  assert_true(expect_layers >= 2); /* ln (2 readers) at least: the planted channels */
  char note[128];
  snprintf(note, sizeof note, "split-outliers: %d matmuls, %lld outlier channels (threshold 6)",
           expect_layers, (long long)expect_channels);
  run_with_stats(after, "split-outliers", stats, n, note);
  assert_topological(after);
  assert_same_function(before, after, 1e-5);
  /* the int8 side of q reads the masked activation; its calibrated range
   * excludes the outlier channels, the float side is marked keep_float */
  const struct lb_node *q_int8 = find_named(after, "q.int8");
  assert_string_equal(q_int8->inputs[0]->name, "ln.inliers");
  assert_string_equal(lb_node_attr_string(q_int8, "act", ""), "none");
  assert_int_equal(lb_node_attr_int(find_named(after, "q.float"), "keep_float", 0), 1);
  assert_int_equal(find_named(after, "k")->op, LB_OP_RELU); /* k's relu moved after the sum */
  int keep_float = 0;
  for (int32_t i = 0; i < after->n_nodes; i++) keep_float += lb_node_attr_int(after->nodes[i], "keep_float", 0) == 1;
  assert_int_equal(keep_float, expect_layers);
  int32_t n2;
  struct lb_calib_stat *stats2 = calibrate(after, &n2);
  for (int32_t i = 0; i < n2; i++)
    if (strcmp(stats2[i].name, "ln.inliers") == 0)
      for (int64_t j = 0; j < stats2[i].n_channels; j++) assert_true(stats2[i].absmax[j] <= 6.0f);
  free_stats(stats2, n2);
  free_stats(stats, n);
  lb_graph_free(before);
  lb_graph_free(after);
}

/* ---- statistics file ---------------------------------------------------------------- */

static void stats_file_round_trip(void **state) {
  (void)state;
  struct lb_graph *g = build();
  int32_t n;
  struct lb_calib_stat *stats = calibrate(g, &n);
  char path[] = "/tmp/lb_test_sq_XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  close(fd);
  struct lb_diag d;
  lb_diag_init(&d, "test");
  struct lb_calib_file_info info = {.model = "sq", .samples = N_CALIB, .method = {LB_CALIB_M_MINMAX}};
  assert_int_equal(lb_calib_write_json(path, stats, n, &info, &d), LB_OK);
  struct lb_calib_stat *back;
  int32_t nb;
  assert_int_equal(lb_calib_read_stats_json(path, &back, &nb, &d), LB_OK);
  unlink(path);
  assert_int_equal(nb, n);
  for (int32_t i = 0; i < n; i++) {
    assert_string_equal(back[i].name, stats[i].name);
    assert_true(lb_shape_equal(&back[i].type.shape, &stats[i].type.shape));
    assert_int_equal(back[i].count, stats[i].count);
    /* %.9g: exact for the f32 values the statistics come from */
    assert_true((float)back[i].min == (float)stats[i].min && (float)back[i].max == (float)stats[i].max);
    assert_int_equal(back[i].n_channels, stats[i].n_channels);
    for (int64_t j = 0; j < stats[i].n_channels; j++) assert_true(back[i].absmax[j] == stats[i].absmax[j]);
  }
  free_stats(back, nb);
  /* what the reader refuses */
  static const char *const bad[] = {
      "{\"format\": \"other\", \"version\": 1, \"values\": {}}",
      "{\"format\": \"lowbit-calibration\", \"version\": 2, \"values\": {}}",
      "{\"format\": \"lowbit-calibration\", \"version\": 1, \"values\": {\"x\": {\"type\": \"f32[2,3]\", "
      "\"count\": 6, \"min\": 0, \"max\": 1, \"absmax_channel\": [1, 2]}}}",
      "{\"format\": \"lowbit-calibration\", \"version\": 1, \"values\": {\"x\": {\"type\": \"f32[2,3]\", "
      "\"count\": 6, \"min\": 0, \"max\": 1, \"absmax_channel\": [1, -2, 3]}}}",
      "{\"format\": \"lowbit-calibration\", \"version\": 1, \"values\": {\"x\": {\"type\": \"q9[2]\", "
      "\"count\": 6, \"min\": 0, \"max\": 1}}}",
      "{\"format\": \"lowbit-calibration\", \"version\": 1, \"values\": {\"x\": {\"type\": \"f32[2]\", "
      "\"count\": 2, \"min\": 3, \"max\": 1}}}",
      "{\"format\": \"lowbit-calibration\", \"version\": 1, \"values\": {\"x\": {\"type\": \"f32[2]\"",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    struct lb_diag e;
    lb_diag_init(&e, "test");
    assert_int_not_equal(lb_calib_read_stats_json_text(bad[i], strlen(bad[i]), "bad.json", &back, &nb, &e), LB_OK);
    assert_null(back);
    assert_non_null(strstr(e.text, "bad.json"));
    lb_diag_free(&e);
  }
  lb_diag_free(&d);
  free_stats(stats, n);
  lb_graph_free(g);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(smoothquant_preserves_function),
      cmocka_unit_test(smoothquant_flattens_channels),
      cmocka_unit_test(smoothquant_needs_statistics),
      cmocka_unit_test(split_outliers_preserves_function),
      cmocka_unit_test(stats_file_round_trip),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
