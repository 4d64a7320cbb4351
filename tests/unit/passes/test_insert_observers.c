/* Unit tests for passes/insert_observers.c and the observe op (shape rule,
 * evaluator, verifier). */
#include "helpers.h"

static struct lb_node *observer_of(const struct lb_graph *g, const struct lb_value *v) {
  for (int32_t i = 0; i < g->n_nodes; i++)
    if (g->nodes[i]->op == LB_OP_OBSERVE && g->nodes[i]->inputs[0] == v) return g->nodes[i];
  return NULL;
}

static void observes_operands_and_outputs(void **state) {
  (void)state;
  struct lb_graph *g = lb_graph_new("t");
  struct lb_value *x = input(g, "x", TY(F32, 2, 4));
  struct lb_value *k = input(g, "k", TY(F32, 4, 3));
  struct lb_value *w = splat(g, "w", TY(F32, 4, 4), 0.5f);
  struct lb_value *h = op1(g, LB_OP_MATMUL, "h", TY(F32, 2, 4), 2, x, w);
  struct lb_value *a = op1(g, LB_OP_MATMUL, "a", TY(F32, 2, 3), 2, h, k); /* two activations */
  struct lb_value *idx = input(g, "i", TY(LB_DTYPE_I64, 2));
  (void)idx;
  lb_graph_add_output(g, a);
  lb_graph_add_output(g, op1(g, LB_OP_NEG, "n", TY(F32, 2, 4), 1, h));
  assert_true(run_pass(g, "insert-observers"));
  assert_int_equal(count_op(g, LB_OP_OBSERVE), 4); /* x, k, h, a; not the constant w */
  assert_null(observer_of(g, w));
  struct lb_node *oh = observer_of(g, h);
  assert_non_null(oh);
  /* h is an output (minmax, hist) and an operand (absmax_channel): the union */
  const struct lb_attr *st = lb_node_attr(oh, "stats");
  assert_non_null(st);
  assert_int_equal(st->n, 3);
  assert_string_equal(st->strings[1], "absmax_channel");
  const struct lb_attr *sa = lb_node_attr(observer_of(g, a), "stats");
  assert_int_equal(sa->n, 2);
  /* readers read through the observer; the graph still returns %a */
  assert_ptr_equal(find_op(g, LB_OP_NEG)->inputs[0], oh->outputs[0]);
  assert_ptr_equal(g->outputs[0], a);
  assert_true(lb_shape_equal(&oh->outputs[0]->type.shape, &h->type.shape));
  assert_string_equal(oh->outputs[0]->name, "h.observe");
  assert_topological(g);
  struct lb_diag d;
  lb_diag_init(&d, "t");
  assert_int_equal(lb_graph_verify(g, &d), LB_OK);
  lb_diag_free(&d);
  /* idempotent; dce keeps the observer of %a, whose output nobody reads */
  assert_false(run_pass(g, "insert-observers"));
  run_pass(g, "dce");
  assert_int_equal(count_op(g, LB_OP_OBSERVE), 4);
  lb_graph_free(g);
}

static void observe_is_identity(void **state) {
  (void)state;
  struct lb_graph *g = lb_graph_new("t");
  struct lb_value *x = input(g, "x", TY(F32, 3));
  struct lb_value *y = op1(g, LB_OP_OBSERVE, "y", TY(F32, 1), 1, x); /* wrong type on purpose */
  const char *stats[] = {"minmax"};
  lb_node_set_attr_strings(g, y->producer, "stats", stats, 1);
  struct lb_diag d;
  lb_diag_init(&d, "t");
  assert_int_equal(lb_infer_node(g, y->producer, &d), LB_OK);
  assert_true(lb_shape_equal(&y->type.shape, &x->type.shape));
  float in[3] = {1, -2, 3}, out[3] = {0};
  const void *ins[1] = {in};
  void *outs[1] = {out};
  assert_int_equal(lb_eval_node(g, y->producer, ins, outs, &d), LB_OK);
  assert_memory_equal(in, out, sizeof in);
  lb_graph_add_output(g, y);
  assert_int_equal(lb_graph_verify(g, &d), LB_OK);
  const char *bad[] = {"median"};
  lb_node_set_attr_strings(g, y->producer, "stats", bad, 1);
  assert_int_not_equal(lb_graph_verify(g, &d), LB_OK);
  assert_non_null(strstr(d.text, "unknown statistic \"median\""));
  lb_diag_free(&d);
  lb_graph_free(g);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(observes_operands_and_outputs),
      cmocka_unit_test(observe_is_identity),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
