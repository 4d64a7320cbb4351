/* Unit tests for passes/plan_memory.c */
#include "helpers.h"

/* Checks a plan: planned values are 64-aligned and inside the arena, others
 * are -1, and no two values whose lifetimes overlap share a byte. */
static void check_plan(struct lb_graph *g) {
  int32_t nv = lb_graph_index_values(g);
  int32_t *def = calloc((size_t)nv + 1, sizeof *def), *end = calloc((size_t)nv + 1, sizeof *end);
  struct lb_value **vals = calloc((size_t)nv + 1, sizeof *vals);
  for (int32_t i = 0; i < g->n_nodes; i++) {
    struct lb_node *n = g->nodes[i];
    for (int32_t o = 0; o < n->n_outputs; o++) {
      struct lb_value *v = n->outputs[o];
      bool returned = false;
      for (int32_t k = 0; k < g->n_outputs; k++) returned |= g->outputs[k] == v;
      if (n->op == LB_OP_CONST || returned) {
        assert_int_equal(v->mem_offset, -1);
        continue;
      }
      assert_true(v->mem_offset >= 0);
      assert_int_equal(v->mem_offset % 64, 0);
      assert_true(v->mem_offset + lb_type_nbytes(&v->type) <= g->activations_size);
      vals[v->id] = v;
      def[v->id] = end[v->id] = i;
    }
    for (int32_t k = 0; k < n->n_inputs; k++)
      if (n->inputs[k] && vals[n->inputs[k]->id]) end[n->inputs[k]->id] = i;
  }
  for (int32_t k = 0; k < g->n_inputs; k++) assert_int_equal(g->inputs[k]->mem_offset, -1);
  for (int32_t a = 0; a < nv; a++) {
    for (int32_t b = a + 1; b < nv; b++) {
      if (!vals[a] || !vals[b]) continue;
      bool live_together = def[a] <= end[b] && def[b] <= end[a];
      int64_t a0 = vals[a]->mem_offset, a1 = a0 + lb_type_nbytes(&vals[a]->type);
      int64_t b0 = vals[b]->mem_offset, b1 = b0 + lb_type_nbytes(&vals[b]->type);
      bool overlap = a0 < b1 && b0 < a1;
      if (live_together && overlap)
        fail_msg("%s and %s are live together and overlap", vals[a]->name, vals[b]->name);
    }
  }
  free(def);
  free(end);
  free(vals);
}

static int64_t run_plan(struct lb_graph *g) {
  run_pass(g, "plan-memory");
  check_plan(g);
  return g->activations_size;
}

/* x -> a -> b -> c -> d -> y: only two buffers are ever live at once. */
static void chain_reuses(void **state) {
  (void)state;
  struct lb_graph *g = lb_graph_new("t");
  struct lb_type t = TY(F32, 1000); /* 4000 bytes, 4032 aligned */
  struct lb_value *v = input(g, "x", t);
  const char *names[] = {"a", "b", "c", "d"};
  for (int i = 0; i < 4; i++) v = op1(g, LB_OP_RELU, names[i], t, 1, v);
  lb_graph_add_output(g, op1(g, LB_OP_EXP, "y", t, 1, v));
  int64_t size = run_plan(g);
  assert_int_equal(size, 2 * 4032);
  assert_int_equal(lb_graph_find_value(g, "a")->mem_offset, lb_graph_find_value(g, "c")->mem_offset);
  assert_int_equal(lb_graph_find_value(g, "y")->mem_offset, -1);
  lb_graph_free(g);
}

/* Residual block with a long-lived value, a multi-output node and constants. */
static void diamond_and_multi_output(void **state) {
  (void)state;
  struct lb_graph *g = lb_graph_new("t");
  struct lb_value *x = input(g, "x", TY(F32, 64));
  struct lb_value *w = splat(g, "w", TY(F32, 64), 1.0f);
  struct lb_value *a = op1(g, LB_OP_MUL, "a", TY(F32, 64), 2, x, w);
  struct lb_value *b = op1(g, LB_OP_RELU, "b", TY(F32, 64), 1, a);
  const char *names[3] = {"s0", "s1", "s2"};
  struct lb_node *s = lb_graph_add_node(g, LB_OP_SPLIT, "s", &b, 1, names, 3);
  for (int i = 0; i < 3; i++) s->outputs[i]->type = TY(F32, i == 2 ? 32 : 16);
  struct lb_value *c = op1(g, LB_OP_CONCAT, "c", TY(F32, 48), 2, s->outputs[0], s->outputs[2]);
  struct lb_value *e = op1(g, LB_OP_EXP, "e", TY(F32, 48), 1, c);
  struct lb_value *big = op1(g, LB_OP_EXPAND, "big", TY(F32, 4, 48), 1, e);
  lb_graph_add_output(g, op1(g, LB_OP_ADD, "out", TY(F32, 4, 48), 2, big, e));
  struct lb_value *y = op1(g, LB_OP_MUL, "y", TY(F32, 64), 2, a, a); /* a lives long */
  lb_graph_add_output(g, op1(g, LB_OP_NEG, "z", TY(F32, 64), 1, y));
  int64_t size = run_plan(g);
  /* s0, s1, s2 share a definition: pairwise disjoint (check_plan) */
  assert_true(size > 0);
  int64_t sum = 0;
  const char *all[] = {"a", "b", "s0", "s1", "s2", "c", "e", "big", "y"};
  for (size_t i = 0; i < sizeof all / sizeof *all; i++)
    sum += (lb_type_nbytes(&lb_graph_find_value(g, all[i])->type) + 63) / 64 * 64;
  assert_true(size < sum);
  /* deterministic: planning again gives the same offsets and reports no change */
  assert_false(run_pass(g, "plan-memory"));
  assert_int_equal(g->activations_size, size);
  lb_graph_free(g);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(chain_reuses),
      cmocka_unit_test(diamond_and_multi_output),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
