/* Unit tests for passes/infer_shapes.c */
#include "helpers.h"

static void recomputes_types_in_order(void **state) {
  (void)state;
  struct lb_graph *g = lb_graph_new("t");
  struct lb_value *x = input(g, "x", TY(F32, 2, 8));
  struct lb_value *w = splat(g, "w", TY(F32, 8, 4), 1.0f);
  struct lb_value *mm = op1(g, LB_OP_MATMUL, "mm", SCALAR(LB_DTYPE_UNDEF), 2, x, w);
  struct lb_value *r = op1(g, LB_OP_RELU, "r", TY(F32, 9, 9), 1, mm);
  lb_graph_add_output(g, r);
  assert_true(run_pass(g, "infer-shapes"));
  assert_int_equal(mm->type.dtype, LB_DTYPE_F32);
  assert_int_equal(r->type.shape.rank, 2);
  assert_int_equal(r->type.shape.dims[0], 2);
  assert_int_equal(r->type.shape.dims[1], 4);
  assert_false(run_pass(g, "infer-shapes"));
  lb_graph_free(g);
}

static void reports_shape_errors(void **state) {
  (void)state;
  struct lb_graph *g = lb_graph_new("t");
  struct lb_value *x = input(g, "x", TY(F32, 2, 8));
  struct lb_value *w = splat(g, "w", TY(F32, 5, 4), 1.0f);
  lb_graph_add_output(g, op1(g, LB_OP_MATMUL, "bad", TY(F32, 2, 4), 2, x, w));
  struct lb_diag d;
  lb_diag_init(&d, "m.lbir");
  struct lb_pass_context ctx = {.diag = &d};
  assert_int_not_equal(lb_pass_infer_shapes(g, &ctx), LB_OK);
  assert_non_null(d.text);
  assert_non_null(strstr(d.text, "bad"));
  lb_arena_free(&ctx.scratch);
  lb_diag_free(&d);
  lb_graph_free(g);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(recomputes_types_in_order),
      cmocka_unit_test(reports_shape_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
