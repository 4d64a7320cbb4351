/* Unit tests for passes/simplify.c */
#include "helpers.h"

static void identity_removed(void **state) {
  (void)state;
  struct lb_graph *g = lb_graph_new("t");
  struct lb_type t = TY(F32, 2, 3);
  struct lb_value *x = input(g, "x", t);
  struct lb_value *a = op1(g, LB_OP_RELU, "a", t, 1, x);
  struct lb_value *b = op1(g, LB_OP_IDENTITY, "b", t, 1, a);
  struct lb_value *c = op1(g, LB_OP_EXP, "c", t, 1, b);
  lb_graph_add_output(g, c);
  assert_true(run_pass(g, "simplify"));
  assert_int_equal(g->n_nodes, 2);
  assert_ptr_equal(c->producer->inputs[0], a);
  assert_topological(g);
  assert_false(run_pass(g, "simplify"));
  lb_graph_free(g);
}

/* An identity whose output the graph returns keeps the returned name. */
static void identity_output_keeps_name(void **state) {
  (void)state;
  struct lb_graph *g = lb_graph_new("t");
  struct lb_type t = TY(F32, 4);
  struct lb_value *x = input(g, "x", t);
  struct lb_value *a = op1(g, LB_OP_RELU, "a", t, 1, x);
  struct lb_value *e = op1(g, LB_OP_EXP, "e", t, 1, a);
  struct lb_value *y = op1(g, LB_OP_IDENTITY, "y", t, 1, a);
  lb_graph_add_output(g, y);
  lb_graph_add_output(g, e);
  assert_true(run_pass(g, "simplify"));
  assert_int_equal(g->n_nodes, 2);
  assert_string_equal(g->outputs[0]->name, "y");
  assert_int_equal(g->outputs[0]->producer->op, LB_OP_RELU);
  assert_ptr_equal(e->producer->inputs[0], g->outputs[0]);
  assert_topological(g);
  lb_graph_free(g);
}

/* identity(graph input) returned by the graph: nothing can carry the name. */
static void identity_of_input_returned_stays(void **state) {
  (void)state;
  struct lb_graph *g = lb_graph_new("t");
  struct lb_type t = TY(F32, 4);
  struct lb_value *x = input(g, "x", t);
  lb_graph_add_output(g, op1(g, LB_OP_IDENTITY, "y", t, 1, x));
  assert_false(run_pass(g, "simplify"));
  assert_int_equal(g->n_nodes, 1);
  lb_graph_free(g);
}

static void cast_reshape_noops(void **state) {
  (void)state;
  struct lb_graph *g = lb_graph_new("t");
  struct lb_type t = TY(F32, 2, 6);
  struct lb_value *x = input(g, "x", t);
  struct lb_value *c = op1(g, LB_OP_CAST, "c", t, 1, x);
  lb_node_set_attr_string(g, c->producer, "to", "f32");
  struct lb_value *r = op1(g, LB_OP_RESHAPE, "r", t, 1, c);
  lb_node_set_attr_ints(g, r->producer, "shape", (int64_t[]){2, 6}, 2);
  struct lb_value *c2 = op1(g, LB_OP_CAST, "c2", TY(LB_DTYPE_F16, 2, 6), 1, r);
  lb_node_set_attr_string(g, c2->producer, "to", "f16");
  lb_graph_add_output(g, c2);
  assert_true(run_pass(g, "simplify"));
  assert_int_equal(g->n_nodes, 1);
  assert_ptr_equal(c2->producer->inputs[0], x);
  lb_graph_free(g);
}

static void reshape_chain(void **state) {
  (void)state;
  struct lb_graph *g = lb_graph_new("t");
  struct lb_value *x = input(g, "x", TY(F32, 2, 3, 4));
  struct lb_value *r1 = op1(g, LB_OP_RESHAPE, "r1", TY(F32, 6, 4), 1, x);
  lb_node_set_attr_ints(g, r1->producer, "shape", (int64_t[]){6, 4}, 2);
  struct lb_value *r2 = op1(g, LB_OP_RESHAPE, "r2", TY(F32, 24), 1, r1);
  lb_node_set_attr_ints(g, r2->producer, "shape", (int64_t[]){24}, 1);
  struct lb_value *r3 = op1(g, LB_OP_RESHAPE, "r3", TY(F32, 4, 6), 1, r2);
  lb_node_set_attr_ints(g, r3->producer, "shape", (int64_t[]){4, 6}, 2);
  lb_graph_add_output(g, r3);
  assert_true(run_pass(g, "simplify"));
  assert_int_equal(g->n_nodes, 1);
  assert_ptr_equal(r3->producer->inputs[0], x);
  /* and a round trip back to x's shape disappears entirely (r1 stays: returned) */
  struct lb_graph *h = lb_graph_new("t2");
  x = input(h, "x", TY(F32, 2, 3));
  r1 = op1(h, LB_OP_RESHAPE, "r1", TY(F32, 6), 1, x);
  lb_node_set_attr_ints(h, r1->producer, "shape", (int64_t[]){6}, 1);
  r2 = op1(h, LB_OP_RESHAPE, "r2", TY(F32, 2, 3), 1, r1);
  lb_node_set_attr_ints(h, r2->producer, "shape", (int64_t[]){2, 3}, 2);
  struct lb_value *e = op1(h, LB_OP_EXP, "e", TY(F32, 2, 3), 1, r2);
  lb_graph_add_output(h, e);
  assert_true(run_pass(h, "simplify"));
  assert_int_equal(h->n_nodes, 1);
  assert_ptr_equal(e->producer->inputs[0], x);
  lb_graph_free(g);
  lb_graph_free(h);
}

static void transposes(void **state) {
  (void)state;
  struct lb_graph *g = lb_graph_new("t");
  struct lb_value *x = input(g, "x", TY(F32, 2, 3, 4));
  struct lb_value *t0 = op1(g, LB_OP_TRANSPOSE, "t0", TY(F32, 2, 3, 4), 1, x);
  lb_node_set_attr_ints(g, t0->producer, "perm", (int64_t[]){0, 1, 2}, 3);
  struct lb_value *t1 = op1(g, LB_OP_TRANSPOSE, "t1", TY(F32, 3, 4, 2), 1, t0);
  lb_node_set_attr_ints(g, t1->producer, "perm", (int64_t[]){1, 2, 0}, 3);
  struct lb_value *t2 = op1(g, LB_OP_TRANSPOSE, "t2", TY(F32, 4, 3, 2), 1, t1);
  lb_node_set_attr_ints(g, t2->producer, "perm", (int64_t[]){1, 0, 2}, 3);
  /* x[2,3,4] -> [3,4,2] -> [4,3,2]: composed perm is (2,1,0) */
  struct lb_value *u = op1(g, LB_OP_RELU, "u", TY(F32, 4, 3, 2), 1, t2);
  lb_graph_add_output(g, u);
  assert_true(run_pass(g, "simplify"));
  assert_int_equal(g->n_nodes, 2);
  struct lb_node *tr = find_op(g, LB_OP_TRANSPOSE);
  assert_ptr_equal(tr->inputs[0], x);
  const struct lb_attr *perm = lb_node_attr(tr, "perm");
  assert_int_equal(perm->ints[0], 2);
  assert_int_equal(perm->ints[1], 1);
  assert_int_equal(perm->ints[2], 0);
  assert_topological(g);
  lb_graph_free(g);

  /* inverse pair cancels */
  g = lb_graph_new("t");
  x = input(g, "x", TY(F32, 2, 3));
  t1 = op1(g, LB_OP_TRANSPOSE, "t1", TY(F32, 3, 2), 1, x);
  lb_node_set_attr_ints(g, t1->producer, "perm", (int64_t[]){1, 0}, 2);
  t2 = op1(g, LB_OP_TRANSPOSE, "t2", TY(F32, 2, 3), 1, t1);
  lb_node_set_attr_ints(g, t2->producer, "perm", (int64_t[]){1, 0}, 2);
  u = op1(g, LB_OP_RELU, "u", TY(F32, 2, 3), 1, t2);
  lb_graph_add_output(g, u);
  assert_true(run_pass(g, "simplify"));
  assert_int_equal(g->n_nodes, 1);
  assert_ptr_equal(u->producer->inputs[0], x);
  lb_graph_free(g);
}

static void neutral_constants(void **state) {
  (void)state;
  struct lb_graph *g = lb_graph_new("t");
  struct lb_type t = TY(F32, 2, 4);
  struct lb_value *x = input(g, "x", t);
  struct lb_value *one = splat(g, "one", SCALAR(F32), 1.0f);
  struct lb_value *zero = splat(g, "zero", TY(F32, 4), 0.0f);
  struct lb_value *a = op1(g, LB_OP_MUL, "a", t, 2, one, x);    /* 1*x */
  struct lb_value *b = op1(g, LB_OP_ADD, "b", t, 2, a, zero);   /* x+0 */
  struct lb_value *c = op1(g, LB_OP_SUB, "c", t, 2, b, zero);   /* x-0 */
  struct lb_value *d = op1(g, LB_OP_DIV, "d", t, 2, c, one);    /* x/1 */
  struct lb_value *e = op1(g, LB_OP_SUB, "e", t, 2, zero, d);   /* 0-x: not a no-op */
  struct lb_value *f = op1(g, LB_OP_DIV, "f", t, 2, one, e);    /* 1/x: not a no-op */
  /* x + zeros[3,2,4] broadcasts to a bigger shape: not a no-op */
  struct lb_value *z3 = splat(g, "z3", TY(F32, 3, 2, 4), 0.0f);
  struct lb_value *h = op1(g, LB_OP_ADD, "h", TY(F32, 3, 2, 4), 2, f, z3);
  struct lb_value *two = splat(g, "two", SCALAR(F32), 2.0f);
  struct lb_value *k = op1(g, LB_OP_MUL, "k", TY(F32, 3, 2, 4), 2, h, two); /* x*2 */
  lb_graph_add_output(g, k);
  assert_true(run_pass(g, "simplify"));
  assert_int_equal(count_op(g, LB_OP_MUL), 1);
  assert_int_equal(count_op(g, LB_OP_ADD), 1);
  assert_int_equal(count_op(g, LB_OP_SUB), 1);
  assert_int_equal(count_op(g, LB_OP_DIV), 1);
  assert_ptr_equal(e->producer->inputs[1], x);
  assert_topological(g);
  lb_graph_free(g);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(identity_removed),
      cmocka_unit_test(identity_output_keeps_name),
      cmocka_unit_test(identity_of_input_returned_stays),
      cmocka_unit_test(cast_reshape_noops),
      cmocka_unit_test(reshape_chain),
      cmocka_unit_test(transposes),
      cmocka_unit_test(neutral_constants),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
