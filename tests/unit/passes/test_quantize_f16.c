/* Unit tests for the f16 weights of passes/quantize.c (scheme f16,
 * lb_f16_quantize_ref): every weight is its nearest half (at most half an ulp
 * away: 2^-11 relative in the normal range, 2^-25 absolute below it), transB
 * gives the transpose's halves, inf and NaN stay, an overflowing finite weight
 * is found; and a quantized layer evaluated with the reference evaluator
 * (lb_eval_node) stays within f16's rounding of the float layer. */
#include "helpers.h"

#include <math.h>
#include <stdio.h>

#include "passes/quantize.h"

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static double unit_rand(void) {
  rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
  return ((double)(rng >> 11) + 0.5) / 9007199254740992.0;
}
static float gauss(void) {
  return (float)(sqrt(-2 * log(unit_rand())) * cos(6.283185307179586 * unit_rand()));
}

enum { K = 70, N = 9 };

static void half_ulp_budget(void **state) {
  (void)state;
  static float w[K * N], wt[N * K];
  for (int k = 0; k < K; k++)
    for (int n = 0; n < N; n++) /* columns over many binades, down into f16's subnormals */
      w[k * N + n] = wt[n * K + k] = gauss() * ldexpf(1, 3 * n - 18);
  uint16_t h[K * N], ht[K * N];
  assert_int_equal(lb_f16_quantize_ref(w, K, N, false, h), -1);
  assert_int_equal(lb_f16_quantize_ref(wt, K, N, true, ht), -1);
  assert_memory_equal(h, ht, sizeof h);
  double sq = 0, sq_err = 0;
  for (int i = 0; i < K * N; i++) {
    double x = w[i], r = lb_f16_decode(h[i]), err = fabs(x - r);
    double budget = fmax(fabs(x) * 0x1p-11, 0x1p-25);
    if (!(err <= budget)) fail_msg("w[%d] = %.9g -> %.9g (0x%04x), budget %.3g", i, x, r, h[i], budget);
    assert_int_equal(h[i], lb_f16_encode(w[i]));
    sq += x * x, sq_err += err * err;
  }
  double rel = sqrt(sq_err / sq);
  assert_true(rel > 1e-5 && rel < 0x1p-11); /* it did round */
}

static void specials_and_overflow(void **state) {
  (void)state;
  float w[2 * 3] = {1, INFINITY, -INFINITY, NAN, 65504, -65519};
  uint16_t h[6];
  assert_int_equal(lb_f16_quantize_ref(w, 2, 3, false, h), -1);
  assert_int_equal(h[1], 0x7C00);
  assert_int_equal(h[2], 0xFC00);
  assert_true((h[3] & 0x7C00) == 0x7C00 && (h[3] & 0x3FF));
  assert_int_equal(h[4], 0x7BFF);
  assert_int_equal(h[5], 0xFBFF); /* below the tie at 65520: the largest half */
  w[4] = -65520; /* would round to -inf */
  assert_int_equal(lb_f16_quantize_ref(w, 2, 3, false, h), 4);
  /* the index is into w as given: [N,K] when transposed */
  float wt[3 * 2] = {0, 0, 0, 1e6f, 0, 0};
  assert_int_equal(lb_f16_quantize_ref(wt, 2, 3, true, h), 3);
  assert_int_equal(h[1 * 3 + 1], 0x7C00);
}

static void scheme_names(void **state) {
  (void)state;
  enum lb_quant_scheme s;
  assert_true(lb_quant_scheme_parse("f16", &s) && s == LB_QUANT_F16);
  assert_string_equal(lb_quant_scheme_name(s), "f16");
  assert_int_equal(lb_quant_scheme_bits(s), 16);
  assert_int_equal(lb_quant_scheme_fp8(s), LB_QFLOAT_NONE);
  assert_false(lb_quant_scheme_parse("fp16", &s));
}

/* x [4,K] -> fused_matmul(x, wt [N,K] transB, b) {gelu}: float and f16 through lb_eval_node */
static struct lb_graph *layer(const float *wt, const float *b) {
  struct lb_graph *g = lb_graph_new("f16");
  struct lb_value *x = input(g, "x", TY(F32, 4, K));
  struct lb_value *w = cst(g, "w", TY(F32, N, K), wt), *bias = cst(g, "b", TY(F32, N), b);
  struct lb_value *ins[3] = {x, w, bias};
  const char *out = "y";
  struct lb_node *n = lb_graph_add_node(g, LB_OP_FUSED_MATMUL, "/fc/Gemm", ins, 3, &out, 1);
  lb_node_set_attr_string(g, n, "act", "gelu");
  lb_node_set_attr_int(g, n, "transB", 1);
  n->outputs[0]->type = TY(F32, 4, N);
  lb_graph_add_output(g, n->outputs[0]);
  return g;
}

static void eval_layer(const struct lb_graph *g, const float *x, float *y) {
  const struct lb_node *n = g->outputs[0]->producer;
  const void *ins[3] = {x, lb_value_const_data(g, n->inputs[1]), lb_value_const_data(g, n->inputs[2])};
  struct lb_diag d;
  lb_diag_init(&d, "eval");
  assert_int_equal(lb_eval_node(g, n, ins, (void *[]){y}, &d), LB_OK);
  lb_diag_free(&d);
}

static void eval_quantized(void **state) {
  (void)state;
  static float wt[N * K], b[N], x[4 * K], yf[4 * N], yh[4 * N];
  for (int i = 0; i < N * K; i++) wt[i] = gauss() * 0.2f;
  for (int i = 0; i < N; i++) b[i] = gauss();
  for (int i = 0; i < 4 * K; i++) x[i] = gauss();
  struct lb_graph *g = layer(wt, b);
  eval_layer(g, x, yf);
  struct lb_diag d;
  lb_diag_init(&d, "test");
  assert_int_equal(lb_pass_manager_run(g, "quantize{scheme=f16},dce", NULL, &d), LB_OK);
  assert_int_equal(lb_graph_verify(g, &d), LB_OK);
  const struct lb_node *q = g->outputs[0]->producer;
  assert_int_equal(q->op, LB_OP_QMATMUL);
  assert_string_equal(q->name, "/fc/Gemm");
  assert_string_equal(lb_node_attr_string(q, "a_quant", "?"), "none");
  assert_string_equal(lb_node_attr_string(q, "act", "?"), "gelu");
  assert_int_equal(q->inputs[1]->type.dtype, LB_DTYPE_F16);
  assert_int_equal(q->inputs[1]->type.shape.dims[0], K); /* transposed at compile time */
  assert_null(q->inputs[1]->qparams);
  assert_int_equal(count_op(g, LB_OP_CONST), 2); /* the f32 weight is gone (dce) */
  eval_layer(g, x, yh);
  double sq = 0, sq_err = 0;
  for (int i = 0; i < 4 * N; i++) sq += (double)yf[i] * yf[i], sq_err += (double)(yf[i] - yh[i]) * (yf[i] - yh[i]);
  double rel = sqrt(sq_err / sq);
  fprintf(stderr, "  f16 layer: relative RMS error %.3g\n", rel);
  assert_true(rel > 0 && rel < 0x1p-11);
  lb_diag_free(&d);
  lb_graph_free(g);

  /* an overflowing weight: an error naming the node, the weight and where */
  wt[2 * K + 5] = 7e4f;
  g = layer(wt, b);
  lb_diag_init(&d, "test");
  assert_int_equal(lb_pass_manager_run(g, "quantize{scheme=f16}", NULL, &d), LB_ERR_UNSUPPORTED);
  assert_non_null(strstr(d.text, "node \"/fc/Gemm\""));
  assert_non_null(strstr(d.text, "weight \"w\" holds 70000 at [2,5]"));
  lb_diag_free(&d);
  lb_graph_free(g);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(half_ulp_budget),
      cmocka_unit_test(specials_and_overflow),
      cmocka_unit_test(scheme_names),
      cmocka_unit_test(eval_quantized),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
