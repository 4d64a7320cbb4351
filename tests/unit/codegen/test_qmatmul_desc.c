/* test_qmatmul_desc.c: lb_qmm_describe (codegen/qmatmul_desc.c), what both
 * qmatmul emitters read off a node: shapes, the bias, act, a_quant, and the
 * per-tensor input and output qparams, which it checks only for a non-empty
 * output. */
#include "cg_test.h"
#include "codegen/qmatmul_desc.h"
#include "qmatmul_test_util.h"

/* qmm = qmatmul(a[2,3,K], w i8[K,N]) with per-column weight scales */
static struct lb_node *add_qmm(struct lb_graph *g, int64_t rows, int64_t K, int64_t N, bool bias,
                               const char *a_quant, const char *act) {
  struct lb_value *a = input(g, "a", TY(F32, 2, rows, K));
  struct lb_value *w = cconst(g, "w", TY(I8, K, N), -5, 5);
  float ws[8] = {0.01f, 0.02f, 0.03f, 0.04f, 0.05f, 0.06f, 0.07f, 0.08f};
  w->qparams = qmm_qparams(g, 8, 1, 0, ws, N, NULL, false);
  return qmm_add_node(g, a, w, bias ? input(g, "bias", TY(F32, N)) : NULL, a_quant, act);
}

static struct lb_qmm_desc describe_ok(const struct lb_node *n) {
  struct lb_diag d;
  struct lb_qmm_desc q;
  lb_diag_init(&d, "t");
  enum lb_status st = lb_qmm_describe(n, &q, &d);
  if (st != LB_OK) fprintf(stderr, "%s", d.text ? d.text : "");
  assert_int_equal(st, LB_OK);
  lb_diag_free(&d);
  return q;
}

static void expect_error(const struct lb_node *n, const char *frag) {
  struct lb_diag d;
  struct lb_qmm_desc q;
  lb_diag_init(&d, "t");
  assert_int_equal(lb_qmm_describe(n, &q, &d), LB_ERR_INVALID);
  assert_non_null(d.text);
  assert_non_null(strstr(d.text, "\"qmm\""));
  if (!strstr(d.text, frag)) fprintf(stderr, "want '%s', got: %s\n", frag, d.text);
  assert_non_null(strstr(d.text, frag));
  lb_diag_free(&d);
}

/* a_quant static with u8 activations and a u8 output: every field */
static void test_static(void **s) {
  (void)s;
  struct lb_graph *g = lb_graph_new("desc");
  struct lb_node *n = add_qmm(g, 3, 5, 4, true, "static", "relu");
  float sa = 0.5f, sy = 0.25f;
  int32_t za = 117, zy = 60;
  n->inputs[0]->qparams = qmm_qparams(g, 8, -1, 0, &sa, 1, &za, true);
  n->outputs[0]->type.dtype = LB_DTYPE_U8;
  n->outputs[0]->qparams = qmm_qparams(g, 8, -1, 0, &sy, 1, &zy, true);
  finish(g, n);
  struct lb_qmm_desc q = describe_ok(n);
  assert_int_equal(q.K, 5);
  assert_int_equal(q.N, 4);
  assert_int_equal(q.R, 6);
  assert_int_equal(q.adt, LB_DTYPE_F32);
  assert_int_equal(q.ydt, LB_DTYPE_U8);
  assert_true(q.has_bias);
  assert_string_equal(q.act, "relu");
  assert_false(q.none);
  assert_false(q.dynamic);
  assert_true(q.sa == 0.5f);
  assert_int_equal(q.za, 117);
  assert_int_equal(q.qlo, 0);
  assert_int_equal(q.qhi, 255);
  assert_true(q.sy == 0.25f);
  assert_int_equal(q.zy, 60);
  lb_graph_free(g);
}

/* dynamic: the symmetric range [-127, 127], no static scales; none: no range */
static void test_dynamic_and_none(void **s) {
  (void)s;
  const char *modes[2] = {"dynamic", "none"};
  for (int i = 0; i < 2; i++) {
    struct lb_graph *g = lb_graph_new("desc");
    struct lb_node *n = add_qmm(g, 1, 8, 3, false, modes[i], NULL);
    finish(g, n);
    struct lb_qmm_desc q = describe_ok(n);
    assert_int_equal(q.R, 2);
    assert_false(q.has_bias);
    assert_string_equal(q.act, "none");
    assert_int_equal(q.dynamic, i == 0);
    assert_int_equal(q.none, i == 1);
    assert_int_equal(q.qlo, i == 0 ? -127 : 0);
    assert_int_equal(q.qhi, i == 0 ? 127 : 0);
    assert_true(q.sa == 0.0f && q.za == 0);
    assert_int_equal(q.ydt, LB_DTYPE_F32);
    lb_graph_free(g);
  }
}

/* missing qparams are refused with the node's name, unless the output is empty */
static void test_errors(void **s) {
  (void)s;
  struct lb_graph *g = lb_graph_new("desc");
  struct lb_node *n = add_qmm(g, 3, 5, 4, false, "static", NULL);
  finish(g, n);
  expect_error(n, "a_quant=\"static\" needs per-tensor qparams on input 0");
  lb_graph_free(g);

  g = lb_graph_new("desc");
  n = add_qmm(g, 3, 5, 4, false, "dynamic", NULL);
  finish(g, n);
  n->outputs[0]->type.dtype = LB_DTYPE_I8; /* after infer, which keeps i8 only with qparams */
  expect_error(n, "an i8 qmatmul output needs per-tensor qparams");
  lb_graph_free(g);

  g = lb_graph_new("desc");
  n = add_qmm(g, 0, 5, 4, false, "static", NULL);
  finish(g, n);
  assert_int_equal(describe_ok(n).R, 0);
  lb_graph_free(g);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_static),
      cmocka_unit_test(test_dynamic_and_none),
      cmocka_unit_test(test_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
