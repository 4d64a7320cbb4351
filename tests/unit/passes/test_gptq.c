/* Unit tests for passes/gptq.c (and the "hessian" statistic of passes/calib.c
 * it reads): on a random layer with correlated inputs, GPTQ's output error
 * ||X W - X W_q||^2 must beat RTN's (lb_wq_quantize_ref) at 3 and 4 bits;
 * dead inputs, act_order, and the pass on a graph. */
#include "helpers.h"

#include <math.h>

#include "passes/calib.h"
#include "passes/gptq.h"
#include "passes/quantize.h"

/* Deterministic pseudo-random normal numbers (xorshift + Box-Muller). */
static uint64_t rng_state = 0x2545F4914F6CDD1Dull;
static double uniform(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return ((rng_state >> 11) + 0.5) / 9007199254740992.0;
}
static float normal(void) {
  return (float)(sqrt(-2 * log(uniform())) * cos(6.283185307179586 * uniform()));
}

enum { T = 512, K = 64, N = 24 };

/* X [T,K]: channels mixed from fewer latent factors (so they correlate, which
 * is what GPTQ exploits) with per-channel magnitudes over two decades, as
 * transformer activations have. Channel `dead` (if >= 0) is all zeros. */
static float *make_x(int dead) {
  enum { F = 16 };
  float a[F * K], mag[K];
  for (int i = 0; i < F * K; i++) a[i] = normal();
  for (int k = 0; k < K; k++) mag[k] = powf(10.0f, (float)(k % 7) / 3.0f - 1.0f);
  float *x = malloc(sizeof *x * T * K);
  for (int t = 0; t < T; t++) {
    float z[F];
    for (int f = 0; f < F; f++) z[f] = normal();
    for (int k = 0; k < K; k++) {
      float s = 0.3f * normal();
      for (int f = 0; f < F; f++) s += z[f] * a[f * K + k] / 4.0f;
      x[t * K + k] = k == dead ? 0.0f : s * mag[k];
    }
  }
  return x;
}

static float *make_w(void) {
  float *w = malloc(sizeof *w * K * N);
  for (int i = 0; i < K * N; i++) w[i] = 0.05f * normal();
  return w;
}

/* H = 2 X^T X / T, the way the pass builds it from the calibration statistic. */
static double *hessian(const float *x) {
  struct lb_calib_stat s;
  struct lb_type t = TY(F32, T, K);
  lb_calib_stat_init(&s, "x", LB_CALIB_HESSIAN, &t);
  lb_calib_stat_add(&s, x, (int64_t)T * K);
  assert_int_equal(s.hessian_rows, T);
  double *h = malloc(sizeof *h * K * K);
  for (int i = 0; i < K * K; i++) h[i] = 2 * s.xtx[i] / (double)s.hessian_rows;
  lb_calib_stat_free(&s);
  return h;
}

static void dequant(const struct lb_wq_format *f, const int8_t *q, const float *s, const int32_t *z, float *wq) {
  int64_t gs = f->group ? f->group : K;
  for (int k = 0; k < K; k++)
    for (int n = 0; n < N; n++) {
      int64_t gi = (k / gs) * N + n;
      wq[k * N + n] = s[gi] * (float)(q[k * N + n] - (z ? z[gi] : 0));
    }
}

/* ||X W - X W_q||^2 / ||X W||^2 */
static double out_error(const float *x, const float *w, const float *wq) {
  double e = 0, ref = 0;
  for (int t = 0; t < T; t++)
    for (int n = 0; n < N; n++) {
      double y = 0, yq = 0;
      for (int k = 0; k < K; k++) y += (double)x[t * K + k] * w[k * N + n], yq += (double)x[t * K + k] * wq[k * N + n];
      e += (y - yq) * (y - yq);
      ref += y * y;
    }
  return e / ref;
}

struct result {
  int8_t q[K * N];
  float s[K * N];
  int32_t z[K * N];
  float wq[K * N];
  double err;
};

static void run_rtn(const float *x, const float *w, const struct lb_wq_format *f, struct result *r) {
  lb_wq_quantize_ref(w, K, N, false, f, false, r->q, r->s, f->asym ? r->z : NULL);
  dequant(f, r->q, r->s, f->asym ? r->z : NULL, r->wq);
  r->err = out_error(x, w, r->wq);
}

static void run_gptq(const float *x, const float *w, const double *h, const struct lb_gptq_params *p,
                     struct result *r) {
  double loss;
  assert_int_equal(lb_gptq_quantize_ref(w, K, N, false, h, p, r->q, r->s, p->fmt.asym ? r->z : NULL, &loss), LB_OK);
  assert_true(loss > 0);
  int lo = p->fmt.asym ? 0 : -(1 << (p->fmt.bits - 1)), hi = p->fmt.asym ? (1 << p->fmt.bits) - 1 : (1 << (p->fmt.bits - 1)) - 1;
  for (int i = 0; i < K * N; i++) assert_true(r->q[i] >= lo && r->q[i] <= hi);
  for (int64_t i = 0; i < lb_wq_groups(&p->fmt, K) * N; i++) assert_true(r->s[i] == lb_quant_round_f16(r->s[i]) && r->s[i] > 0);
  dequant(&p->fmt, r->q, r->s, p->fmt.asym ? r->z : NULL, r->wq);
  r->err = out_error(x, w, r->wq);
}

/* GPTQ beats RTN on the output error; `ratio` is the budget for gptq / rtn */
static void compare(int bits, int64_t group, bool asym, bool act_order, double ratio) {
  float *x = make_x(-1), *w = make_w();
  double *h = hessian(x);
  struct lb_gptq_params p = {.fmt = {.bits = bits, .group = group, .asym = asym}, .act_order = act_order,
                             .damp = 0.01, .block = 128};
  struct result *rtn = malloc(sizeof *rtn), *gq = malloc(sizeof *gq);
  run_rtn(x, w, &p.fmt, rtn);
  run_gptq(x, w, h, &p, gq);
  fprintf(stderr, "  w%d g%d%s%s: RTN %.5f GPTQ %.5f (ratio %.3f, budget %.2f)\n", bits, (int)group,
          asym ? " asym" : "", act_order ? " act_order" : "", rtn->err, gq->err, gq->err / rtn->err, ratio);
  assert_true(gq->err < ratio * rtn->err);
  free(x), free(w), free(h), free(rtn), free(gq);
}

static void gptq_beats_rtn_w4(void **state) {
  (void)state;
  compare(4, 32, false, false, 0.5);
  compare(4, 0, false, false, 0.5);
  compare(4, 16, true, false, 0.5);
}

static void gptq_beats_rtn_w3(void **state) {
  (void)state;
  compare(3, 32, false, false, 0.5);
  compare(3, 32, true, false, 0.5);
}

static void gptq_act_order(void **state) {
  (void)state;
  /* on these inputs (magnitudes over two decades) visiting the large ones
   * first roughly halves plain GPTQ's error */
  compare(3, 32, false, true, 0.25);
  compare(4, 0, false, true, 0.25);
  /* act_order with groups: static groups, every scale from the original
   * weights, i.e. RTN's scales */
  float *x = make_x(-1), *w = make_w();
  double *h = hessian(x);
  struct lb_gptq_params p = {.fmt = {.bits = 4, .group = 16}, .act_order = true, .damp = 0.01, .block = 128};
  struct result *rtn = malloc(sizeof *rtn), *gq = malloc(sizeof *gq);
  run_rtn(x, w, &p.fmt, rtn);
  run_gptq(x, w, h, &p, gq);
  assert_memory_equal(rtn->s, gq->s, sizeof(float) * (K / 16) * N);
  /* and the walk order matters: the codes differ from the in-order walk */
  struct result *plain = malloc(sizeof *plain);
  p.act_order = false;
  run_gptq(x, w, h, &p, plain);
  assert_true(memcmp(plain->q, gq->q, sizeof gq->q) != 0);
  free(x), free(w), free(h), free(rtn), free(gq), free(plain);
}

/* An input never active: its weights are zeroed (code 0 = real 0), and the
 * rest is still quantized better than RTN. */
static void gptq_dead_input(void **state) {
  (void)state;
  enum { DEAD = 5 };
  float *x = make_x(DEAD), *w = make_w();
  double *h = hessian(x);
  assert_true(h[DEAD * K + DEAD] == 0);
  struct lb_gptq_params p = {.fmt = {.bits = 4, .group = 32}, .damp = 0.01, .block = 128};
  struct result *rtn = malloc(sizeof *rtn), *gq = malloc(sizeof *gq);
  run_rtn(x, w, &p.fmt, rtn);
  run_gptq(x, w, h, &p, gq);
  for (int n = 0; n < N; n++) assert_int_equal(gq->q[DEAD * N + n], 0);
  assert_true(gq->err < 0.5 * rtn->err);
  free(x), free(w), free(h), free(rtn), free(gq);
}

/* Block size only changes when updates are applied, not the result (up to
 * rounding: a tie could flip a code, so compare the error, not the codes). */
static void gptq_block_size(void **state) {
  (void)state;
  float *x = make_x(-1), *w = make_w();
  double *h = hessian(x);
  struct lb_gptq_params p = {.fmt = {.bits = 3, .group = 0}, .damp = 0.01, .block = 128};
  struct result *a = malloc(sizeof *a), *b = malloc(sizeof *b);
  run_gptq(x, w, h, &p, a);
  p.block = 7; /* not a divisor of K: the lazy updates cross odd boundaries */
  run_gptq(x, w, h, &p, b);
  int differ = 0;
  for (int i = 0; i < K * N; i++) differ += a->q[i] != b->q[i];
  assert_true(differ <= 2);
  assert_true(fabs(a->err - b->err) <= 0.02 * a->err);
  free(x), free(w), free(h), free(a), free(b);
}

/* Not positive definite, even after dampening: a status, not garbage. */
static void gptq_not_pd(void **state) {
  (void)state;
  float *w = make_w();
  double *h = calloc(K * K, sizeof *h);
  for (int i = 0; i < K; i++) h[i * K + i] = 1;
  h[0 * K + 1] = h[1 * K + 0] = 5; /* indefinite 2x2 block */
  struct lb_gptq_params p = {.fmt = {.bits = 4, .group = 32}, .damp = 0.0, .block = 128};
  int8_t q[K * N];
  float s[K * N];
  assert_int_equal(lb_gptq_quantize_ref(w, K, N, false, h, &p, q, s, NULL, NULL), LB_ERR_INVALID);
  free(w), free(h);
}

/* The statistic: xtx = sum of x x^T over the finite rows. */
static void hessian_statistic(void **state) {
  (void)state;
  struct lb_calib_stat s;
  struct lb_type t = TY(F32, 3, 2);
  lb_calib_stat_init(&s, "v", LB_CALIB_HESSIAN, &t);
  const float a[6] = {1, 2, 3, -1, NAN, 5}; /* the NaN row is skipped */
  lb_calib_stat_add(&s, a, 6);
  const float b[6] = {0.5f, 0, 0, 0, 2, 2};
  lb_calib_stat_add(&s, b, 6);
  assert_int_equal(s.hessian_rows, 5);
  /* rows (1,2) (3,-1) (0.5,0) (0,0) (2,2) */
  assert_float_equal(s.xtx[0], 1 + 9 + 0.25 + 0 + 4, 1e-12);
  assert_float_equal(s.xtx[1], 2 - 3 + 0 + 0 + 4, 1e-12);
  assert_float_equal(s.xtx[2], s.xtx[1], 0);
  assert_float_equal(s.xtx[3], 4 + 1 + 0 + 0 + 4, 1e-12);
  lb_calib_stat_free(&s);
}

/* ---- the pass on a graph ------------------------------------------------------- */

static enum lb_status run_gptq_pass(struct lb_graph *g, const struct lb_calib_stat *stats, int32_t n_stats,
                                    const struct lb_pass_arg *args, int32_t n_args, struct lb_diag *d) {
  const struct lb_pass_info *p = lb_pass_find("gptq");
  assert_non_null(p);
  struct lb_pass_context ctx = {.diag = d, .args = args, .n_args = n_args, .calib = stats, .n_calib = n_stats};
  enum lb_status st = p->run(g, &ctx);
  lb_arena_free(&ctx.scratch);
  return st;
}

static void pass_rewrites_layer(void **state) {
  (void)state;
  float *x = make_x(-1), *w = make_w();
  /* the layer as fused_matmul with a transposed weight, as fuse leaves it */
  float *wt = malloc(sizeof *wt * K * N);
  for (int k = 0; k < K; k++)
    for (int n = 0; n < N; n++) wt[n * K + k] = w[k * N + n];
  struct lb_graph *g = lb_graph_new("layer");
  struct lb_value *vx = input(g, "x", TY(F32, T, K));
  struct lb_value *vw = cst(g, "w", TY(F32, N, K), wt);
  struct lb_value *y = op1(g, LB_OP_FUSED_MATMUL, "y", TY(F32, T, N), 2, vx, vw);
  lb_node_set_attr_int(g, y->producer, "transB", 1);
  lb_node_set_attr_string(g, y->producer, "act", "none");
  lb_graph_add_output(g, y);

  struct lb_diag d;
  lb_diag_init(&d, "m.onnx");
  /* without statistics: an error naming the layer */
  assert_int_equal(run_gptq_pass(g, NULL, 0, NULL, 0, &d), LB_ERR_INVALID);
  assert_non_null(strstr(d.text, "node \"y\" (fused_matmul): error: gptq: input \"x\" of \"y\" has no calibration statistics"));
  assert_int_equal(count_op(g, LB_OP_QMATMUL), 0);
  lb_diag_free(&d);

  struct lb_calib_stat s;
  lb_calib_stat_init(&s, "x", LB_CALIB_HESSIAN, &vx->type);
  lb_calib_stat_add(&s, x, (int64_t)T * K);
  struct lb_pass_arg args[] = {{"bits", "3"}, {"group", "32"}, {"act", "dynamic"}};
  lb_diag_init(&d, "m.onnx");
  assert_int_equal(run_gptq_pass(g, &s, 1, args, 3, &d), LB_OK);
  lb_diag_free(&d);
  struct lb_node *qn = find_op(g, LB_OP_QMATMUL);
  assert_non_null(qn);
  assert_ptr_equal(qn->outputs[0], y);
  assert_string_equal(lb_node_attr_string(qn, "a_quant", ""), "dynamic");
  const struct lb_value *wq = qn->inputs[1];
  assert_int_equal(wq->type.dtype, LB_DTYPE_I8);
  assert_int_equal(wq->qparams->bits, 3);
  assert_int_equal(wq->qparams->group_size, 32);
  assert_int_equal(wq->qparams->n, 2 * N);
  lb_diag_init(&d, "m.onnx");
  assert_int_equal(lb_graph_verify(g, &d), LB_OK);
  lb_diag_free(&d);
  /* the same codes as the quantizer called directly */
  double *h = hessian(x);
  struct lb_gptq_params p = {.fmt = {.bits = 3, .group = 32}, .damp = 0.01, .block = 128};
  struct result *r = malloc(sizeof *r);
  run_gptq(x, w, h, &p, r);
  assert_memory_equal(lb_value_const_data(g, wq), r->q, sizeof r->q);
  assert_memory_equal(wq->qparams->scales, r->s, sizeof(float) * 2 * N);
  lb_calib_stat_free(&s);
  lb_graph_free(g);
  free(x), free(w), free(wt), free(h), free(r);
}

static void pass_bad_args(void **state) {
  (void)state;
  struct lb_graph *g = lb_graph_new("empty");
  struct lb_diag d;
  lb_diag_init(&d, "m.onnx");
  struct lb_pass_arg a1 = {"bits", "5"};
  assert_int_equal(run_gptq_pass(g, NULL, 0, &a1, 1, &d), LB_ERR_USAGE);
  assert_non_null(strstr(d.text, "pass gptq: bits must be an integer in [2, 4], not \"5\""));
  lb_diag_free(&d);
  lb_diag_init(&d, "m.onnx");
  struct lb_pass_arg a2 = {"damp", "-0.1"};
  assert_int_equal(run_gptq_pass(g, NULL, 0, &a2, 1, &d), LB_ERR_USAGE);
  lb_diag_free(&d);
  lb_graph_free(g);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(hessian_statistic), cmocka_unit_test(gptq_beats_rtn_w4), cmocka_unit_test(gptq_beats_rtn_w3),
      cmocka_unit_test(gptq_act_order),    cmocka_unit_test(gptq_dead_input),   cmocka_unit_test(gptq_block_size),
      cmocka_unit_test(gptq_not_pd),       cmocka_unit_test(pass_rewrites_layer), cmocka_unit_test(pass_bad_args),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
