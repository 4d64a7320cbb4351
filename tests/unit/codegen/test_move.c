/* test_move.c: data movement kernels against the reference evaluator. */
#include "cg_test.h"

static const struct run_opts EXACT = {.atol = 0, .rtol = 0, .lo = -100, .hi = 100};

static void test_reshape_transpose(void **state) {
  (void)state;
  {
    struct lb_graph *g = lb_graph_new("r");
    struct lb_value *x = input(g, "x", TY(F32, 2, 3, 4));
    struct lb_node *n = mk(g, LB_OP_RESHAPE, 1, &x, 1);
    lb_node_set_attr_ints(g, n, "shape", INTS(6, 4));
    finish(g, n);
    check_graph(g, n, &EXACT);
    lb_graph_free(g);
  }
  static const int64_t perms[][4] = {{0, 1, 2, 3}, {0, 2, 1, 3}, {3, 2, 1, 0}, {0, 1, 3, 2}, {1, 0, 2, 3}, {2, 0, 3, 1}};
  for (int p = 0; p < 6; p++)
    for (int dt = 0; dt < 3; dt++) {
      struct lb_graph *g = lb_graph_new("t");
      struct lb_type t = TY(F32, 2, 5, 3, 17);
      t.dtype = dt == 0 ? LB_DTYPE_F32 : dt == 1 ? LB_DTYPE_I64 : LB_DTYPE_U8;
      struct lb_value *x = input(g, "x", t);
      struct lb_node *n = mk(g, LB_OP_TRANSPOSE, 1, &x, 1);
      lb_node_set_attr_ints(g, n, "perm", perms[p], 4);
      finish(g, n);
      struct run_opts ro = EXACT;
      if (dt == 2) ro.lo = 0;
      check_graph(g, n, &ro);
      lb_graph_free(g);
    }
  {
    struct lb_graph *g = lb_graph_new("t2");
    struct lb_value *x = input(g, "x", TY(F32, 300, 257));
    struct lb_node *n = mk(g, LB_OP_TRANSPOSE, 1, &x, 1);
    lb_node_set_attr_ints(g, n, "perm", INTS(1, 0));
    finish(g, n);
    check_graph(g, n, &EXACT);
    lb_graph_free(g);
  }
}

static void test_concat_split(void **state) {
  (void)state;
  for (int axis = 0; axis < 3; axis++) {
    struct lb_graph *g = lb_graph_new("c");
    int64_t d1[3] = {2, 3, 4}, d2[3] = {2, 3, 4};
    d2[axis] = 5;
    struct lb_value *ins[3] = {input(g, "a", ty(LB_DTYPE_F32, d1, 3)), input(g, "b", ty(LB_DTYPE_F32, d2, 3)),
                               cconst(g, "c", ty(LB_DTYPE_F32, d1, 3), -1, 1)};
    struct lb_node *n = mk(g, LB_OP_CONCAT, 3, ins, 1);
    lb_node_set_attr_int(g, n, "axis", axis);
    finish(g, n);
    check_graph(g, n, &EXACT);
    lb_graph_free(g);
  }
  for (int axis = 0; axis < 3; axis++) {
    struct lb_graph *g = lb_graph_new("s");
    int64_t d[3] = {6, 6, 6};
    struct lb_value *x = input(g, "x", ty(LB_DTYPE_F32, d, 3));
    struct lb_node *n = mk(g, LB_OP_SPLIT, 1, &x, 3);
    lb_node_set_attr_int(g, n, "axis", axis);
    lb_node_set_attr_ints(g, n, "split", INTS(1, 2, 3));
    finish(g, n);
    check_graph(g, n, &EXACT);
    lb_graph_free(g);
  }
}

static void slice(struct lb_type t, const int64_t *st, const int64_t *en, const int64_t *sp) {
  struct lb_graph *g = lb_graph_new("sl");
  struct lb_value *x = input(g, "x", t);
  struct lb_node *n = mk(g, LB_OP_SLICE, 1, &x, 1);
  lb_node_set_attr_ints(g, n, "starts", st, t.shape.rank);
  lb_node_set_attr_ints(g, n, "ends", en, t.shape.rank);
  lb_node_set_attr_ints(g, n, "steps", sp, t.shape.rank);
  finish(g, n);
  check_graph(g, n, &EXACT);
  lb_graph_free(g);
}

static void test_slice(void **state) {
  (void)state;
  slice(TY(F32, 5, 7), (int64_t[]){1, 0}, (int64_t[]){4, 7}, (int64_t[]){1, 1});
  slice(TY(F32, 5, 7), (int64_t[]){0, 1}, (int64_t[]){5, 7}, (int64_t[]){2, 3});
  slice(TY(F32, 5, 7), (int64_t[]){4, 6}, (int64_t[]){-1, -1}, (int64_t[]){-1, -2});
  slice(TY(F32, 5, 7, 3), (int64_t[]){3, 2, 0}, (int64_t[]){0, 6, 3}, (int64_t[]){-1, 1, 1});
  slice(TY(I64, 1, 64, 2304), (int64_t[]){0, 0, 768}, (int64_t[]){1, 64, 1536}, (int64_t[]){1, 1, 1});
}

static void test_gather(void **state) {
  (void)state;
  for (int axis = 0; axis < 3; axis++)
    for (int it = 0; it < 2; it++) {
      struct lb_graph *g = lb_graph_new("g");
      struct lb_type dt = TY(F32, 4, 5, 6);
      struct lb_type itype = it ? TY(I64, 2, 3) : TY(I32, 7);
      int64_t lim = dt.shape.dims[axis];
      struct lb_value *ins[2] = {input(g, "d", dt), cconst(g, "i", itype, (double)-lim, (double)(lim - 1))};
      struct lb_node *n = mk(g, LB_OP_GATHER, 2, ins, 1);
      lb_node_set_attr_int(g, n, "axis", axis);
      finish(g, n);
      check_graph(g, n, &EXACT);
      lb_graph_free(g);
    }
  /* embedding lookup with runtime indices */
  struct lb_graph *g = lb_graph_new("emb");
  struct lb_value *ins[2] = {cconst(g, "wte", TY(F32, 100, 64), -1, 1), input(g, "ids", TY(I64, 1, 9))};
  struct lb_node *n = mk(g, LB_OP_GATHER, 2, ins, 1);
  lb_node_set_attr_int(g, n, "axis", 0);
  finish(g, n);
  struct run_opts ro = EXACT;
  ro.lo = 0;
  ro.hi = 99;
  check_graph(g, n, &ro);
  lb_graph_free(g);
}

static void test_expand_trilu(void **state) {
  (void)state;
  {
    struct lb_graph *g = lb_graph_new("e");
    struct lb_value *x = input(g, "x", TY(F32, 3, 1));
    struct lb_node *n = mk(g, LB_OP_EXPAND, 1, &x, 1);
    lb_node_set_attr_ints(g, n, "shape", INTS(2, 3, 5));
    finish(g, n);
    check_graph(g, n, &EXACT);
    lb_graph_free(g);
  }
  for (int up = 0; up < 2; up++)
    for (int k = -2; k <= 2; k++) {
      struct lb_graph *g = lb_graph_new("tr");
      struct lb_value *x = input(g, "x", TY(F32, 2, 5, 7));
      struct lb_node *n = mk(g, LB_OP_TRILU, 1, &x, 1);
      lb_node_set_attr_int(g, n, "upper", up);
      lb_node_set_attr_int(g, n, "k", k);
      finish(g, n);
      check_graph(g, n, &EXACT);
      lb_graph_free(g);
    }
}

/* pad: every mode, positive and negative (cropping) pads, pads wider than the dim. */
static void test_pad(void **state) {
  (void)state;
  static const char *const modes[] = {"constant", "edge", "reflect", "wrap"};
  static const int64_t pads[][6] = {
      {0, 1, 2, 1, 0, 3}, {1, 2, 0, 0, 3, 1}, {0, -1, 2, 0, 1, -2}, {2, 5, 7, 1, 6, 4}};
  for (int m = 0; m < 4; m++)
    for (int p = 0; p < 4; p++)
      for (int dt = 0; dt < 2; dt++) {
        struct lb_graph *g = lb_graph_new("pad");
        struct lb_type t = TY(F32, 2, 3, 4);
        if (dt) t.dtype = LB_DTYPE_I64;
        struct lb_value *x = input(g, "x", t);
        struct lb_node *n = mk(g, LB_OP_PAD, 1, &x, 1);
        lb_node_set_attr_string(g, n, "mode", modes[m]);
        lb_node_set_attr_ints(g, n, "pads", pads[p], 6);
        lb_node_set_attr_float(g, n, "value", 1.5);
        finish(g, n);
        check_graph(g, n, &EXACT);
        lb_graph_free(g);
      }
}

static void test_unsupported_op(void **state) {
  (void)state;
  struct lb_graph *g = lb_graph_new("u");
  struct lb_value *x = input(g, "x", TY(F32, 3));
  struct lb_node *n = mk(g, LB_OP_SHAPE, 1, &x, 1);
  n->outputs[0]->type = TY(I64, 1);
  lb_graph_add_output(g, n->outputs[0]);
  check_compile_fails(g, LB_ERR_UNSUPPORTED);
  lb_graph_free(g);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_reshape_transpose), cmocka_unit_test(test_concat_split),
      cmocka_unit_test(test_slice),             cmocka_unit_test(test_gather),
      cmocka_unit_test(test_expand_trilu),      cmocka_unit_test(test_unsupported_op),
      cmocka_unit_test(test_pad),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
