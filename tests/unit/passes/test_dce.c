/* Unit tests for passes/dce.c */
#include "helpers.h"

static void removes_unused_chains_and_blobs(void **state) {
  (void)state;
  struct lb_graph *g = lb_graph_new("t");
  struct lb_type t = TY(F32, 4);
  struct lb_value *x = input(g, "x", t);
  struct lb_value *w = splat(g, "w", t, 2.0f);
  struct lb_value *a = op1(g, LB_OP_MUL, "a", t, 2, x, w); /* dead chain a -> b */
  op1(g, LB_OP_EXP, "b", t, 1, a);
  struct lb_value *y = op1(g, LB_OP_RELU, "y", t, 1, x);
  lb_graph_add_output(g, y);
  assert_int_equal(g->n_blobs, 1);
  assert_true(run_pass(g, "dce"));
  assert_int_equal(g->n_nodes, 1);
  assert_int_equal(g->n_blobs, 0);
  assert_false(run_pass(g, "dce"));
  lb_graph_free(g);
}

static void multi_output_kept_if_any_used(void **state) {
  (void)state;
  struct lb_graph *g = lb_graph_new("t");
  struct lb_value *x = input(g, "x", TY(F32, 4));
  const char *names[2] = {"s0", "s1"};
  struct lb_node *s = lb_graph_add_node(g, LB_OP_SPLIT, "split", &x, 1, names, 2);
  s->outputs[0]->type = TY(F32, 2);
  s->outputs[1]->type = TY(F32, 2);
  lb_node_set_attr_int(g, s, "axis", 0);
  lb_node_set_attr_ints(g, s, "split", (int64_t[]){2, 2}, 2);
  lb_graph_add_output(g, op1(g, LB_OP_NEG, "y", TY(F32, 2), 1, s->outputs[1]));
  assert_false(run_pass(g, "dce"));
  assert_int_equal(g->n_nodes, 2);
  lb_graph_free(g);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(removes_unused_chains_and_blobs),
      cmocka_unit_test(multi_output_kept_if_any_used),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
