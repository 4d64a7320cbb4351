/* Unit tests for passes/cse.c */
#include "helpers.h"

static void merges_duplicates_first_wins(void **state) {
  (void)state;
  struct lb_graph *g = lb_graph_new("t");
  struct lb_type t = TY(F32, 4);
  struct lb_value *x = input(g, "x", t), *z = input(g, "z", t);
  struct lb_value *a1 = op1(g, LB_OP_ADD, "a1", t, 2, x, z);
  struct lb_value *a2 = op1(g, LB_OP_ADD, "a2", t, 2, z, x); /* commuted */
  struct lb_value *e1 = op1(g, LB_OP_EXP, "e1", t, 1, a1);
  struct lb_value *e2 = op1(g, LB_OP_EXP, "e2", t, 1, a2);   /* same once a2 -> a1 */
  struct lb_value *s1 = op1(g, LB_OP_SUB, "s1", t, 2, x, z);
  struct lb_value *s2 = op1(g, LB_OP_SUB, "s2", t, 2, z, x); /* sub does not commute */
  struct lb_value *m = op1(g, LB_OP_MUL, "m", t, 2, e1, e2);
  struct lb_value *m2 = op1(g, LB_OP_MUL, "m2", t, 2, s1, s2);
  struct lb_value *o = op1(g, LB_OP_ADD, "o", t, 2, m, m2);
  lb_graph_add_output(g, o);
  assert_true(run_pass(g, "cse"));
  assert_int_equal(g->n_nodes, 7);
  assert_ptr_equal(m->producer->inputs[0], e1);
  assert_ptr_equal(m->producer->inputs[1], e1);
  assert_int_equal(count_op(g, LB_OP_SUB), 2);
  assert_topological(g);
  assert_false(run_pass(g, "cse"));
  lb_graph_free(g);
}

static void attrs_and_types_distinguish(void **state) {
  (void)state;
  struct lb_graph *g = lb_graph_new("t");
  struct lb_value *x = input(g, "x", TY(F32, 2, 3));
  struct lb_value *r1 = op1(g, LB_OP_REDUCE_SUM, "r1", TY(F32, 1, 3), 1, x);
  lb_node_set_attr_ints(g, r1->producer, "axes", (int64_t[]){0}, 1);
  lb_node_set_attr_int(g, r1->producer, "keepdims", 1);
  struct lb_value *r2 = op1(g, LB_OP_REDUCE_SUM, "r2", TY(F32, 2, 1), 1, x);
  lb_node_set_attr_ints(g, r2->producer, "axes", (int64_t[]){1}, 1);
  lb_node_set_attr_int(g, r2->producer, "keepdims", 1);
  struct lb_value *r3 = op1(g, LB_OP_REDUCE_SUM, "r3", TY(F32, 1, 3), 1, x);
  lb_node_set_attr_ints(g, r3->producer, "axes", (int64_t[]){0}, 1);
  lb_node_set_attr_int(g, r3->producer, "keepdims", 1);
  lb_graph_add_output(g, op1(g, LB_OP_ADD, "o1", TY(F32, 2, 3), 2, r1, r2));
  lb_graph_add_output(g, op1(g, LB_OP_ADD, "o2", TY(F32, 1, 3), 2, r3, r3));
  assert_true(run_pass(g, "cse"));
  assert_int_equal(count_op(g, LB_OP_REDUCE_SUM), 2);
  lb_graph_free(g);
}

static void merges_equal_constants(void **state) {
  (void)state;
  struct lb_graph *g = lb_graph_new("t");
  struct lb_type t = TY(F32, 3);
  struct lb_value *x = input(g, "x", t);
  struct lb_value *c1 = cst(g, "c1", t, (float[]){1, 2, 3});
  struct lb_value *c2 = cst(g, "c2", t, (float[]){1, 2, 3});
  struct lb_value *c3 = cst(g, "c3", t, (float[]){1, 2, 4});
  struct lb_value *c4 = cst(g, "c4", TY(F32, 3, 1), (float[]){1, 2, 3}); /* other type */
  struct lb_value *a = op1(g, LB_OP_ADD, "a", t, 2, x, c1);
  struct lb_value *b = op1(g, LB_OP_ADD, "b", t, 2, x, c2); /* = a once c2 -> c1 */
  struct lb_value *c = op1(g, LB_OP_ADD, "c", t, 2, x, c3);
  struct lb_value *d = op1(g, LB_OP_ADD, "d", TY(F32, 3, 3), 2, x, c4);
  lb_graph_add_output(g, op1(g, LB_OP_MUL, "m", t, 2, a, b));
  lb_graph_add_output(g, c);
  lb_graph_add_output(g, d);
  int32_t blobs = g->n_blobs;
  assert_true(run_pass(g, "cse"));
  assert_int_equal(count_op(g, LB_OP_CONST), 3);
  assert_int_equal(g->n_blobs, blobs - 1);
  assert_int_equal(count_op(g, LB_OP_ADD), 3);
  assert_ptr_equal(find_op(g, LB_OP_MUL)->inputs[1], a);
  assert_topological(g);
  lb_graph_free(g);
}

static void returned_duplicates_stay(void **state) {
  (void)state;
  struct lb_graph *g = lb_graph_new("t");
  struct lb_type t = TY(F32, 3);
  struct lb_value *x = input(g, "x", t);
  lb_graph_add_output(g, op1(g, LB_OP_EXP, "y1", t, 1, x));
  lb_graph_add_output(g, op1(g, LB_OP_EXP, "y2", t, 1, x));
  assert_false(run_pass(g, "cse"));
  assert_int_equal(g->n_nodes, 2);
  lb_graph_free(g);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(merges_duplicates_first_wins),
      cmocka_unit_test(attrs_and_types_distinguish),
      cmocka_unit_test(merges_equal_constants),
      cmocka_unit_test(returned_duplicates_stay),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
