/* Unit tests for passes/fold_constants.c */
#include "helpers.h"

static void folds_chain_keeping_names(void **state) {
  (void)state;
  struct lb_graph *g = lb_graph_new("t");
  struct lb_type t = TY(F32, 2);
  struct lb_value *x = input(g, "x", t);
  struct lb_value *a = cst(g, "a", t, (float[]){1, 2});
  struct lb_value *b = cst(g, "b", t, (float[]){3, 4});
  struct lb_value *c = op1(g, LB_OP_ADD, "c", t, 2, a, b);
  struct lb_value *d = op1(g, LB_OP_MUL, "d", t, 2, c, c);
  struct lb_value *y = op1(g, LB_OP_ADD, "y", t, 2, x, d);
  lb_graph_add_output(g, y);
  assert_true(run_pass(g, "fold-constants"));
  assert_int_equal(c->producer->op, LB_OP_CONST);
  assert_int_equal(d->producer->op, LB_OP_CONST);
  assert_string_equal(d->name, "d");
  assert_true(const_f32(g, c, 0) == 4.0f && const_f32(g, c, 1) == 6.0f);
  assert_true(const_f32(g, d, 0) == 16.0f && const_f32(g, d, 1) == 36.0f);
  assert_int_equal(y->producer->op, LB_OP_ADD); /* reads a graph input: stays */
  assert_ptr_equal(y->producer->inputs[1], d);
  assert_topological(g);
  assert_false(run_pass(g, "fold-constants"));
  lb_graph_free(g);
}

static void multi_output_split(void **state) {
  (void)state;
  struct lb_graph *g = lb_graph_new("t");
  struct lb_value *a = cst(g, "a", TY(F32, 4), (float[]){1, 2, 3, 4});
  const char *names[2] = {"s0", "s1"};
  struct lb_node *s = lb_graph_add_node(g, LB_OP_SPLIT, "split", &a, 1, names, 2);
  s->outputs[0]->type = TY(F32, 1);
  s->outputs[1]->type = TY(F32, 3);
  lb_node_set_attr_int(g, s, "axis", 0);
  lb_node_set_attr_ints(g, s, "split", (int64_t[]){1, 3}, 2);
  struct lb_value *s0 = s->outputs[0], *s1 = s->outputs[1];
  lb_graph_add_output(g, s1);
  lb_graph_add_output(g, s0);
  assert_true(run_pass(g, "fold-constants"));
  assert_int_equal(count_op(g, LB_OP_SPLIT), 0);
  assert_int_equal(s0->producer->op, LB_OP_CONST);
  assert_int_equal(s1->producer->op, LB_OP_CONST);
  assert_true(const_f32(g, s0, 0) == 1.0f);
  assert_true(const_f32(g, s1, 0) == 2.0f && const_f32(g, s1, 2) == 4.0f);
  assert_topological(g);
  lb_graph_free(g);
}

static void skips_elided_and_huge(void **state) {
  (void)state;
  struct lb_graph *g = lb_graph_new("t");
  struct lb_type t = TY(F32, 2);
  struct lb_value *a = cst(g, "a", t, (float[]){1, 2});
  free(g->blobs[a->producer->blob].data); /* as parsed from an elided dump */
  g->blobs[a->producer->blob].data = NULL;
  struct lb_value *y = op1(g, LB_OP_NEG, "y", t, 1, a);
  lb_graph_add_output(g, y);
  /* 2^25 floats = 128 MiB: over the 64 MiB limit, never evaluated */
  struct lb_value *one = cst(g, "one", TY(F32, 1), (float[]){1});
  struct lb_value *big = op1(g, LB_OP_EXPAND, "big", TY(F32, 1 << 25), 1, one);
  lb_node_set_attr_ints(g, big->producer, "shape", (int64_t[]){1 << 25}, 1);
  lb_graph_add_output(g, big);
  assert_false(run_pass(g, "fold-constants"));
  assert_int_equal(y->producer->op, LB_OP_NEG);
  assert_int_equal(big->producer->op, LB_OP_EXPAND);
  lb_graph_free(g);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(folds_chain_keeping_names),
      cmocka_unit_test(multi_output_split),
      cmocka_unit_test(skips_elided_and_huge),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
