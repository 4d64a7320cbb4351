/* Unit tests for passes/quantize.c: the weight quantizer, and evaluating a
 * quantized graph with the reference evaluator (lb_eval_node) against the
 * float graph on random data, for every scheme. */
#include "helpers.h"

#include <math.h>

#include "passes/quantize.h"

/* ---- the weight quantizer ------------------------------------------------------- */

static void weight_round_half_even(void **state) {
  (void)state;
  /* column 0: max 1 -> scale 1/127: 0.5*127 = 63.5 -> 64, -31.75 -> -32;
   * column 1: all zero -> scale 1; column 2: max 2.54, 1.27 -> 63.5 -> 64 */
  const float w[4 * 3] = {1, 0, 2.54f, 0.5f, 0, 1.27f, -0.25f, 0, -2.54f, 0.125f, 0, 0};
  int8_t q[12];
  float s[3];
  lb_quant_weight_ref(w, 4, 3, false, q, s);
  assert_float_equal(s[0], 1.0f / 127.0f, 0);
  assert_float_equal(s[1], 1.0f, 0);
  assert_float_equal(s[2], 2.54f / 127.0f, 0);
  const int8_t want[12] = {127, 0, 127, 64, 0, 64, -32, 0, -127, 16, 0, 0};
  for (int i = 0; i < 12; i++) assert_int_equal(q[i], want[i]);
}

/* transB: w is [N,K]; the result is the same as quantizing the transpose */
static void weight_transposed(void **state) {
  (void)state;
  enum { K = 5, N = 3 };
  float w[K * N], wt[N * K];
  for (int k = 0; k < K; k++)
    for (int n = 0; n < N; n++) w[k * N + n] = wt[n * K + k] = sinf((float)(k * N + n)) * (float)(n + 1);
  int8_t q1[K * N], q2[K * N];
  float s1[N], s2[N];
  lb_quant_weight_ref(w, K, N, false, q1, s1);
  lb_quant_weight_ref(wt, K, N, true, q2, s2);
  assert_memory_equal(q1, q2, sizeof q1);
  assert_memory_equal(s1, s2, sizeof s1);
  /* the largest |w| of every column maps to +-127 and every q reconstructs w to half a step */
  for (int n = 0; n < N; n++) {
    int maxq = 0;
    for (int k = 0; k < K; k++) {
      maxq = abs(q1[k * N + n]) > maxq ? abs(q1[k * N + n]) : maxq;
      assert_true(fabsf(q1[k * N + n] * s1[n] - w[k * N + n]) <= s1[n] * 0.5f * 1.0001f);
    }
    assert_int_equal(maxq, 127);
  }
}

/* ---- reference evaluation of a whole graph ------------------------------------ */

/* Evaluates g on the given input data; returns a malloc'd copy of value `name`. */
static float *eval_graph(const struct lb_graph *cg, const float *const *inputs, const char *name) {
  struct lb_graph *g = (struct lb_graph *)cg;
  int32_t nv = lb_graph_index_values(g);
  void **buf = calloc((size_t)nv, sizeof *buf);
  assert_non_null(buf);
  for (int32_t i = 0; i < g->n_inputs; i++) buf[g->inputs[i]->id] = (void *)inputs[i];
  struct lb_diag d;
  lb_diag_init(&d, "test");
  for (int32_t i = 0; i < g->n_nodes; i++) {
    const struct lb_node *n = g->nodes[i];
    if (n->op == LB_OP_CONST) {
      buf[n->outputs[0]->id] = (void *)lb_value_const_data(g, n->outputs[0]);
      continue;
    }
    const void *ins[8] = {0};
    void *outs[4] = {0};
    for (int32_t k = 0; k < n->n_inputs; k++) ins[k] = n->inputs[k] ? buf[n->inputs[k]->id] : NULL;
    for (int32_t o = 0; o < n->n_outputs; o++) {
      outs[o] = malloc((size_t)lb_type_nbytes(&n->outputs[o]->type) + 1);
      buf[n->outputs[o]->id] = outs[o];
    }
    enum lb_status st = lb_eval_node(g, n, ins, outs, &d);
    if (st != LB_OK) fprintf(stderr, "%s", d.text ? d.text : "");
    assert_int_equal(st, LB_OK);
  }
  const struct lb_value *y = lb_graph_find_value(g, name);
  assert_non_null(y);
  size_t bytes = (size_t)lb_type_nbytes(&y->type);
  float *out = malloc(bytes);
  memcpy(out, buf[y->id], bytes);
  for (int32_t i = 0; i < g->n_nodes; i++)
    if (g->nodes[i]->op != LB_OP_CONST)
      for (int32_t o = 0; o < g->nodes[i]->n_outputs; o++) free(buf[g->nodes[i]->outputs[o]->id]);
  free(buf);
  lb_diag_free(&d);
  return out;
}

/* Deterministic pseudo-random normal numbers (xorshift + Box-Muller). */
static uint64_t rng_state = 88172645463325252ull;
static double uniform(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return ((rng_state >> 11) + 0.5) / 9007199254740992.0;
}
static float normal(void) {
  return (float)(sqrt(-2 * log(uniform())) * cos(6.283185307179586 * uniform()));
}
static float *randn(int64_t n, float scale) {
  float *p = malloc(sizeof *p * (size_t)n);
  for (int64_t i = 0; i < n; i++) p[i] = normal() * scale;
  return p;
}

enum { B = 2, M = 8, K = 64, H = 96, N = 48 };

/* x[B,M,K] -> fused_matmul(x, W1[H,K] transB, b1) gelu -> h[B,M,H]
 *          -> matmul(h, W2[H,N]) -> y[B,M,N]
 *          -> matmul(y, y^T-ish k[B,N,M]) attention-style: stays float -> out[B,M,M]
 * Returns the graph; *h and *y are the two linear layers' inputs. */
static struct lb_graph *mlp(struct lb_value **h_out, struct lb_value **y_out) {
  struct lb_graph *g = lb_graph_new("mlp");
  struct lb_value *x = input(g, "x", TY(F32, B, M, K));
  struct lb_value *kt = input(g, "k", TY(F32, B, N, M));
  float *w1 = randn(H * K, 0.1f), *b1 = randn(H, 0.1f), *w2 = randn(H * N, 0.1f);
  w1[7] = 1.5f; /* one large weight: per-channel scales must keep the other columns fine */
  struct lb_value *vw1 = cst(g, "w1", TY(F32, H, K), w1), *vb1 = cst(g, "b1", TY(F32, H), b1);
  struct lb_value *vw2 = cst(g, "w2", TY(F32, H, N), w2);
  free(w1), free(b1), free(w2);
  struct lb_value *h = op1(g, LB_OP_FUSED_MATMUL, "h", TY(F32, B, M, H), 3, x, vw1, vb1);
  lb_node_set_attr_string(g, h->producer, "act", "gelu");
  lb_node_set_attr_int(g, h->producer, "transB", 1);
  struct lb_value *y = op1(g, LB_OP_MATMUL, "y", TY(F32, B, M, N), 2, h, vw2);
  struct lb_value *att = op1(g, LB_OP_MATMUL, "att", TY(F32, B, M, M), 2, y, kt);
  lb_graph_add_output(g, att);
  lb_graph_add_output(g, y);
  *h_out = h;
  *y_out = y;
  return g;
}

static void set_per_tensor(struct lb_graph *g, struct lb_value *v, float amax) {
  struct lb_qparams *q = lb_arena_alloc(&g->arena, sizeof *q);
  *q = (struct lb_qparams){.bits = 8, .axis = -1, .symmetric = true, .n = 1};
  q->scales = lb_arena_alloc(&g->arena, sizeof *q->scales);
  q->scales[0] = amax / 127.0f;
  v->qparams = q;
}

static float absmax(const float *p, int64_t n) {
  float m = 0;
  for (int64_t i = 0; i < n; i++) m = fabsf(p[i]) > m ? fabsf(p[i]) : m;
  return m;
}

/* relative RMS error of q against f */
static double rel_rms(const float *f, const float *q, int64_t n) {
  double e = 0, s = 0;
  for (int64_t i = 0; i < n; i++) {
    e += ((double)f[i] - q[i]) * ((double)f[i] - q[i]);
    s += (double)f[i] * f[i];
  }
  return sqrt(e / s);
}

/* scheme, then optional "key=value" pass arguments (low-bit schemes) */
static bool run_quantize(struct lb_graph *g, const char *scheme, struct lb_diag *d) {
  const struct lb_pass_info *p = lb_pass_find("quantize");
  assert_non_null(p);
  char buf[128];
  snprintf(buf, sizeof buf, "%s", scheme);
  struct lb_pass_arg args[6] = {{"scheme", buf}};
  int32_t n_args = 1;
  for (char *sp = strchr(buf, ' '); sp; sp = strchr(sp, ' ')) {
    *sp++ = 0;
    char *eq = strchr(sp, '=');
    assert_non_null(eq);
    *eq = 0;
    args[n_args++] = (struct lb_pass_arg){sp, eq + 1};
    sp = eq + 1;
  }
  struct lb_pass_context ctx = {.diag = d, .args = args, .n_args = n_args};
  enum lb_status st = p->run(g, &ctx);
  lb_arena_free(&ctx.scratch);
  return st == LB_OK;
}

/* Quantizes with `scheme` and compares output 0 (attention scores, which
 * compound both layers' errors) and output 1 (the second layer) with float. */
static double check_scheme(const char *scheme, double tol) {
  struct lb_value *h, *y;
  struct lb_graph *g = mlp(&h, &y);
  float *x = randn(B * M * K, 1.0f), *k = randn(B * N * M, 1.0f);
  x[3] = 6.0f; /* an outlier in the activations, as real models have */
  const float *ins[2] = {x, k};
  float *ref = eval_graph(g, ins, "att");
  float *hv = eval_graph(g, ins, "h"); /* for "calibrating" the second layer */
  if (strcmp(scheme, "w8a8") == 0) {
    set_per_tensor(g, g->inputs[0], absmax(x, B * M * K));
    set_per_tensor(g, h, absmax(hv, B * M * H));
  }
  struct lb_diag d;
  lb_diag_init(&d, "test");
  bool ok = run_quantize(g, scheme, &d);
  if (!ok) fprintf(stderr, "%s", d.text ? d.text : "");
  assert_true(ok);
  lb_diag_free(&d);
  assert_int_equal(count_op(g, LB_OP_QMATMUL), 2);
  assert_int_equal(count_op(g, LB_OP_MATMUL), 1); /* the attention matmul */
  assert_int_equal(y->producer->op, LB_OP_QMATMUL); /* same value, rewritten producer */
  assert_string_equal(h->producer->name, "h");
  assert_string_equal(g->outputs[1]->name, "y");
  assert_true(run_pass(g, "dce"));
  /* the float weights are gone: what is left are the integer codes and the f32 bias */
  for (int32_t i = 0; i < g->n_nodes; i++) {
    const struct lb_value *c = g->nodes[i]->outputs[0];
    if (g->nodes[i]->op == LB_OP_CONST)
      assert_int_equal(c->type.dtype, strcmp(c->name, "b1") == 0 ? LB_DTYPE_F32 : LB_DTYPE_I8);
  }
  struct lb_diag vd;
  lb_diag_init(&vd, "test");
  enum lb_status vst = lb_graph_verify(g, &vd);
  if (vst != LB_OK) fprintf(stderr, "%s", vd.text ? vd.text : "");
  assert_int_equal(vst, LB_OK);
  lb_diag_free(&vd);

  float *got = eval_graph(g, ins, "att");
  double e = rel_rms(ref, got, B * M * M);
  fprintf(stderr, "  %-26s relative RMS error %.5f (budget %.3f)\n", scheme, e, tol);
  assert_true(e > 0);   /* it really computed in int8 */
  assert_true(e < tol);
  free(got);
  free(ref);
  free(hv);
  free(x);
  free(k);
  lb_graph_free(g);
  return e;
}

static void eval_w8(void **state) {
  (void)state;
  check_scheme("w8", 0.012);
}
static void eval_w8a8_dynamic(void **state) {
  (void)state;
  check_scheme("w8a8-dynamic", 0.03);
}
static void eval_w8a8_static(void **state) {
  (void)state;
  check_scheme("w8a8", 0.05);
}

/* A wrong activation scale must show: the budget above is not vacuous. */
static void eval_bad_scale_detected(void **state) {
  (void)state;
  struct lb_value *h, *y;
  struct lb_graph *g = mlp(&h, &y);
  float *x = randn(B * M * K, 1.0f), *k = randn(B * N * M, 1.0f);
  const float *ins[2] = {x, k};
  float *ref = eval_graph(g, ins, "att");
  set_per_tensor(g, g->inputs[0], absmax(x, B * M * K) / 8); /* clips most of x */
  set_per_tensor(g, h, 100.0f);
  struct lb_diag d;
  lb_diag_init(&d, "test");
  assert_true(run_quantize(g, "w8a8", &d));
  lb_diag_free(&d);
  float *got = eval_graph(g, ins, "att");
  assert_true(rel_rms(ref, got, B * M * M) > 0.1);
  free(got), free(ref), free(x), free(k);
  lb_graph_free(g);
}

/* Low-bit weights through the reference evaluator: budgets per bit width
 * (the attention-style output compounds both layers' errors; measured: w4
 * g32 0.129, w4 per column 0.152, w3 0.237, w3 asym 0.224, w2 with clipping
 * 0.446, w4 with int8 activations 0.131; w8 0.008), and more bits, smaller
 * groups and asym each lose less. */
static double lowbit_on_same_data(const char *scheme, double tol) {
  rng_state = 88172645463325252ull; /* same weights and inputs for every scheme */
  return check_scheme(scheme, tol);
}
static void eval_lowbit(void **state) {
  (void)state;
  double w4 = lowbit_on_same_data("w4 group=32", 0.16);
  double w4c = lowbit_on_same_data("w4 group=0", 0.19);
  double w3 = lowbit_on_same_data("w3 group=32", 0.3);
  double w3a = lowbit_on_same_data("w3 group=32 asym=1", 0.28);
  double w2 = lowbit_on_same_data("w2 group=32 clip=1", 0.56);
  lowbit_on_same_data("w4 group=32 act=dynamic", 0.16);
  double w8 = lowbit_on_same_data("w8", 0.012);
  assert_true(w8 < w4 && w4 < w3 && w3 < w2);
  assert_true(w4 < w4c);
  assert_true(w3a < w3);
}

/* The low-bit reference quantizer: codes in range, scales f16 values, every
 * weight within half a step (sym: the grid reaches amax within the f16
 * rounding of the scale), zero points in range (asym). */
static void lowbit_ref_properties(void **state) {
  (void)state;
  enum { KK = 70, NN = 5 }; /* 70 = 2 groups of 32 and a short one of 6 */
  float *w = randn(KK * NN, 0.3f);
  w[3] = 0; /* a zero column start */
  for (int bits = 2; bits <= 4; bits++)
    for (int asym = 0; asym <= 1; asym++) {
      struct lb_wq_format f = {.bits = bits, .group = 32, .asym = asym};
      int64_t ng = lb_wq_groups(&f, KK);
      assert_int_equal(ng, 3);
      int8_t q[KK * NN];
      float s[3 * NN];
      int32_t z[3 * NN];
      lb_wq_quantize_ref(w, KK, NN, false, &f, false, q, s, asym ? z : NULL);
      int lo = asym ? 0 : -(1 << (bits - 1)), hi = asym ? (1 << bits) - 1 : (1 << (bits - 1)) - 1;
      for (int i = 0; i < 3 * NN; i++) {
        assert_true(s[i] > 0 && s[i] == lb_quant_round_f16(s[i]));
        if (asym) assert_true(z[i] >= lo && z[i] <= hi);
      }
      for (int k = 0; k < KK; k++)
        for (int n = 0; n < NN; n++) {
          int gi = (k / 32) * NN + n, c = q[k * NN + n];
          assert_true(c >= lo && c <= hi);
          float deq = s[gi] * (float)(c - (asym ? z[gi] : 0));
          /* asym: the zero point's rounding can move the grid by half a step more */
          assert_true(fabsf(deq - w[k * NN + n]) <= s[gi] * (asym ? 1.01f : 0.51f));
        }
    }
  /* f16 rounding */
  assert_float_equal(lb_quant_round_f16(0.1f), 0.0999755859375f, 0);
  assert_float_equal(lb_quant_round_f16(1e6f), 65504.0f, 0);
  assert_float_equal(lb_quant_round_f16(1e-8f), 0.0f, 0);
  assert_float_equal(lb_quant_round_f16(3e-7f), 2.98023224e-7f, 0); /* subnormal: 5 * 2^-24 */
  free(w);
}

/* The clipping search never loses to the full range on any group, and wins
 * in total on Gaussian weights at 3 bits (their tails waste levels). */
static void lowbit_clip_search(void **state) {
  (void)state;
  enum { KK = 256, NN = 8 };
  float *w = randn(KK * NN, 1.0f);
  struct lb_wq_format f = {.bits = 3, .group = 32};
  int8_t q0[KK * NN], q1[KK * NN];
  float s0[8 * NN], s1[8 * NN];
  lb_wq_quantize_ref(w, KK, NN, false, &f, false, q0, s0, NULL);
  lb_wq_quantize_ref(w, KK, NN, false, &f, true, q1, s1, NULL);
  double e0 = 0, e1 = 0;
  int shrunk = 0;
  for (int g = 0; g < 8; g++)
    for (int n = 0; n < NN; n++) {
      double g0 = 0, g1 = 0;
      for (int k = g * 32; k < g * 32 + 32; k++) {
        double d0 = w[k * NN + n] - s0[g * NN + n] * q0[k * NN + n];
        double d1 = w[k * NN + n] - s1[g * NN + n] * q1[k * NN + n];
        g0 += d0 * d0, g1 += d1 * d1;
      }
      assert_true(g1 <= g0);
      shrunk += s1[g * NN + n] < s0[g * NN + n];
      e0 += g0, e1 += g1;
    }
  fprintf(stderr, "  w3 g32 weight error: full range %.4f, clipped %.4f (%d of %d groups shrunk)\n", e0, e1, shrunk,
          8 * NN);
  assert_true(e1 < 0.9 * e0);
  assert_true(shrunk > 0);
  free(w);
}

static void summary_line(void **state) {
  (void)state;
  struct lb_value *h, *y;
  struct lb_graph *g = mlp(&h, &y);
  struct lb_quant_summary s;
  char line[256];
  lb_quant_summarize(g, &s);
  assert_int_equal(s.quantized, 0);
  assert_int_equal(s.skipped[LB_QSKIP_NONE], 2);
  struct lb_diag d;
  lb_diag_init(&d, "test");
  assert_true(run_quantize(g, "w8", &d));
  lb_diag_free(&d);
  lb_quant_summarize(g, &s);
  lb_quant_summary_format(&s, LB_QUANT_W8, line, sizeof line);
  assert_string_equal(line,
                      "quantized 2 of 3 matmuls to int8 (w8); 1 left in float: 1 with two activation operands");
  lb_graph_free(g);
}

/* w8a8 without ranges: an error per layer, nothing rewritten. */
static void static_needs_ranges(void **state) {
  (void)state;
  struct lb_value *h, *y;
  struct lb_graph *g = mlp(&h, &y);
  set_per_tensor(g, h, 1.0f); /* only the second layer is calibrated */
  struct lb_diag d;
  lb_diag_init(&d, "m.onnx");
  assert_false(run_quantize(g, "w8a8", &d));
  assert_non_null(
      strstr(d.text, "node \"h\" (fused_matmul): error: activation \"x\" (input of \"h\") has no calibrated range"));
  assert_null(strstr(d.text, "input of \"y\""));
  assert_non_null(strstr(d.text, "--calib DIR"));
  assert_int_equal(count_op(g, LB_OP_QMATMUL), 0);
  lb_diag_free(&d);
  lb_graph_free(g);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(weight_round_half_even), cmocka_unit_test(weight_transposed),
      cmocka_unit_test(eval_w8),                cmocka_unit_test(eval_w8a8_dynamic),
      cmocka_unit_test(eval_w8a8_static),       cmocka_unit_test(eval_bad_scale_detected),
      cmocka_unit_test(summary_line),           cmocka_unit_test(static_needs_ranges),
      cmocka_unit_test(eval_lowbit),            cmocka_unit_test(lowbit_ref_properties),
      cmocka_unit_test(lowbit_clip_search),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
