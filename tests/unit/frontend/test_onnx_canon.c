/* test_onnx_canon.c: the canonical IR forms (docs/ir-ops.md) of each ONNX
 * variant across opsets, and folding of shape arithmetic at import. */
#include "fe_test.h"

#include <math.h>

/* A model with input x (f32, dims) feeding one node op(x, extra inputs...) -> y. */
static struct mb *one_node(int64_t opset, const char *dims, const char *op, const char *ins,
                           const char *outs, Onnx__NodeProto **node) {
  struct mb *m = mb_new(opset);
  mb_input(m, "x", T_F32, dims);
  *node = mb_node(m, op, "n", ins, outs);
  mb_output(m, "y");
  return m;
}

static void test_reduce_forms(void **state) {
  (void)state;
  Onnx__NodeProto *n;
  /* ReduceMean opset 13: axes attribute */
  struct mb *m = one_node(13, "2,3,4", "ReduceMean", "x", "y", &n);
  mb_attr_ints(m, n, "axes", NINTS(-1, 0));
  struct lb_graph *g = load_ok(m, NULL);
  struct lb_node *r = producer_of(g, "y");
  assert_int_equal(r->op, LB_OP_REDUCE_MEAN);
  assert_ints_attr(r, "axes", NINTS(0, 2));
  assert_int_equal(lb_node_attr_int(r, "keepdims", -1), 1);
  assert_int_equal(r->n_inputs, 1);
  assert_shape(r->outputs[0], 3, INTS(1, 3, 1));
  lb_graph_free(g);
  /* ReduceMean opset 18: axes input, keepdims 0 */
  m = one_node(18, "2,3,4", "ReduceMean", "x,axes", "y", &n);
  mb_init_i64(m, "axes", "1", INTS(-2));
  mb_attr_i(m, n, "keepdims", 0);
  g = load_ok(m, NULL);
  r = producer_of(g, "y");
  assert_ints_attr(r, "axes", NINTS(1));
  assert_int_equal(lb_node_attr_int(r, "keepdims", -1), 0);
  assert_int_equal(r->n_inputs, 1);
  assert_shape(r->outputs[0], 2, INTS(2, 4));
  lb_graph_free(g);
  /* ReduceSum opset 13: axes input; omitted = all axes */
  m = one_node(13, "2,3", "ReduceSum", "x", "y", &n);
  g = load_ok(m, NULL);
  assert_ints_attr(producer_of(g, "y"), "axes", NINTS(0, 1));
  lb_graph_free(g);
  m = one_node(13, "2,3", "ReduceSum", "x,axes", "y", &n);
  mb_init_i64(m, "axes", "1", INTS(1));
  g = load_ok(m, NULL);
  assert_ints_attr(producer_of(g, "y"), "axes", NINTS(1));
  lb_graph_free(g);
  /* noop_with_empty_axes=1 with no axes: identity */
  m = one_node(18, "2,3", "ReduceMax", "x", "y", &n);
  mb_attr_i(m, n, "noop_with_empty_axes", 1);
  g = load_ok(m, NULL);
  assert_int_equal(producer_of(g, "y")->op, LB_OP_IDENTITY);
  lb_graph_free(g);
  /* axes from a graph input: must be bound */
  m = one_node(13, "2,3", "ReduceSum", "x,ax", "y", &n);
  mb_input(m, "ax", T_I64, "1");
  load_fails(m, NULL, LB_ERR_UNSUPPORTED, "bind its value with --bind ax=FILE");
  m = one_node(13, "2,3", "ReduceMin", "x", "y", &n);
  mb_attr_ints(m, n, "axes", NINTS(1, -1));
  load_fails(m, NULL, LB_ERR_INVALID, "axis 1 is repeated");
}

static void test_split_forms(void **state) {
  (void)state;
  Onnx__NodeProto *n;
  /* opset 11: split attribute */
  struct mb *m = one_node(11, "2,6", "Split", "x", "y,z", &n);
  mb_attr_i(m, n, "axis", -1);
  mb_attr_ints(m, n, "split", NINTS(2, 4));
  mb_output(m, "z");
  struct lb_graph *g = load_ok(m, NULL);
  struct lb_node *s = producer_of(g, "y");
  assert_int_equal(s->op, LB_OP_SPLIT);
  assert_int_equal(s->n_outputs, 2);
  assert_int_equal(lb_node_attr_int(s, "axis", -1), 1);
  assert_ints_attr(s, "split", NINTS(2, 4));
  assert_shape(lb_graph_find_value(g, "z"), 2, INTS(2, 4));
  lb_graph_free(g);
  /* opset 13: split input; no split = equal parts */
  m = one_node(13, "2,6", "Split", "x,sp", "y,z", &n);
  mb_attr_i(m, n, "axis", 1);
  mb_init_i64(m, "sp", "2", INTS(5, 1));
  mb_output(m, "z");
  g = load_ok(m, NULL);
  assert_ints_attr(producer_of(g, "z"), "split", NINTS(5, 1));
  lb_graph_free(g);
  m = one_node(13, "6,2", "Split", "x", "y,z,w", &n);
  g = load_ok(m, NULL);
  assert_ints_attr(producer_of(g, "y"), "split", NINTS(2, 2, 2));
  lb_graph_free(g);
  /* opset 18: num_outputs, the last chunk smaller */
  m = one_node(18, "5", "Split", "x", "y,z", &n);
  mb_attr_i(m, n, "num_outputs", 2);
  mb_output(m, "z");
  g = load_ok(m, NULL);
  assert_ints_attr(producer_of(g, "y"), "split", NINTS(3, 2));
  lb_graph_free(g);
  m = one_node(13, "5", "Split", "x", "y,z", &n);
  load_fails(m, NULL, LB_ERR_INVALID, "does not split evenly");
}

static void test_squeeze_forms(void **state) {
  (void)state;
  Onnx__NodeProto *n;
  struct mb *m = one_node(11, "1,3,1,2", "Squeeze", "x", "y", &n);
  mb_attr_ints(m, n, "axes", NINTS(-2));
  struct lb_graph *g = load_ok(m, NULL);
  assert_int_equal(producer_of(g, "y")->op, LB_OP_RESHAPE);
  assert_ints_attr(producer_of(g, "y"), "shape", NINTS(1, 3, 2));
  lb_graph_free(g);
  m = one_node(13, "1,3,1,2", "Squeeze", "x", "y", &n);
  g = load_ok(m, NULL);
  assert_ints_attr(producer_of(g, "y"), "shape", NINTS(3, 2));
  lb_graph_free(g);
  m = one_node(13, "1,3,1,2", "Squeeze", "x,axes", "y", &n);
  mb_init_i64(m, "axes", "1", INTS(0));
  g = load_ok(m, NULL);
  assert_ints_attr(producer_of(g, "y"), "shape", NINTS(3, 1, 2));
  lb_graph_free(g);
  m = one_node(13, "1,3", "Squeeze", "x,axes", "y", &n);
  mb_init_i64(m, "axes", "1", INTS(1));
  load_fails(m, NULL, LB_ERR_INVALID, "cannot squeeze axis 1 of size 3");
  m = one_node(11, "3,2", "Unsqueeze", "x", "y", &n);
  mb_attr_ints(m, n, "axes", NINTS(0, -1));
  g = load_ok(m, NULL);
  assert_ints_attr(producer_of(g, "y"), "shape", NINTS(1, 3, 2, 1));
  lb_graph_free(g);
  m = one_node(13, "3,2", "Unsqueeze", "x,axes", "y", &n);
  mb_init_i64(m, "axes", "2", INTS(1, 3));
  g = load_ok(m, NULL);
  assert_ints_attr(producer_of(g, "y"), "shape", NINTS(3, 1, 2, 1));
  lb_graph_free(g);
  m = one_node(13, "2,3,4", "Flatten", "x", "y", &n);
  mb_attr_i(m, n, "axis", -1);
  g = load_ok(m, NULL);
  assert_ints_attr(producer_of(g, "y"), "shape", NINTS(6, 4));
  lb_graph_free(g);
  m = one_node(9, "2,3,4", "Flatten", "x", "y", &n);
  g = load_ok(m, NULL);
  assert_ints_attr(producer_of(g, "y"), "shape", NINTS(2, 12));
  lb_graph_free(g);
}

static void test_slice_forms(void **state) {
  (void)state;
  Onnx__NodeProto *n;
  /* opset 7 (Slice-1): attributes, ends past the end clamp */
  struct mb *m = one_node(7, "4,10", "Slice", "x", "y", &n);
  mb_attr_ints(m, n, "starts", NINTS(1));
  mb_attr_ints(m, n, "ends", NINTS(1000));
  mb_attr_ints(m, n, "axes", NINTS(1));
  struct lb_graph *g = load_ok(m, NULL);
  struct lb_node *s = producer_of(g, "y");
  assert_int_equal(s->op, LB_OP_SLICE);
  assert_int_equal(s->n_inputs, 1);
  assert_ints_attr(s, "starts", NINTS(0, 1));
  assert_ints_attr(s, "ends", NINTS(4, 10));
  assert_ints_attr(s, "steps", NINTS(1, 1));
  assert_shape(s->outputs[0], 2, INTS(4, 9));
  lb_graph_free(g);
  /* opset 10: inputs, negative starts, no axes = leading axes */
  m = one_node(10, "4,10", "Slice", "x,st,en", "y", &n);
  mb_init_i64(m, "st", "2", INTS(-3, 2));
  mb_init_i64(m, "en", "2", INTS(INT64_MAX, -2));
  g = load_ok(m, NULL);
  s = producer_of(g, "y");
  assert_ints_attr(s, "starts", NINTS(1, 2));
  assert_ints_attr(s, "ends", NINTS(4, 8));
  assert_shape(s->outputs[0], 2, INTS(3, 6));
  lb_graph_free(g);
  /* opset 13: negative steps (reverse), ends before the start */
  m = one_node(13, "4,10", "Slice", "x,st,en,ax,sp", "y", &n);
  mb_init_i64(m, "st", "2", INTS(-1, 8));
  mb_init_i64(m, "en", "2", INTS(INT64_MIN, 1));
  mb_init_i64(m, "ax", "2", INTS(1, -2));
  mb_init_i64(m, "sp", "2", INTS(-1, -3));
  g = load_ok(m, NULL);
  s = producer_of(g, "y");
  assert_ints_attr(s, "starts", NINTS(3, 9));
  assert_ints_attr(s, "ends", NINTS(1, -1));
  assert_ints_attr(s, "steps", NINTS(-3, -1));
  assert_shape(s->outputs[0], 2, INTS(1, 10));
  lb_graph_free(g);
  m = one_node(13, "4", "Slice", "x,st,en,ax,sp", "y", &n);
  mb_init_i64(m, "st", "1", INTS(0));
  mb_init_i64(m, "en", "1", INTS(2));
  mb_init_i64(m, "ax", "1", INTS(0));
  mb_init_i64(m, "sp", "1", INTS(0));
  load_fails(m, NULL, LB_ERR_INVALID, "a step is 0");
  m = one_node(13, "4", "Slice", "x,st,en", "y", &n);
  mb_input(m, "st", T_I64, "1");
  mb_init_i64(m, "en", "1", INTS(2));
  load_fails(m, NULL, LB_ERR_UNSUPPORTED, "--bind st=FILE");
}

static void assert_pad(const struct lb_graph *g, const char *mode, int64_t n_pads,
                       const int64_t *pads, double value) {
  struct lb_node *p = producer_of(g, "y");
  assert_int_equal(p->op, LB_OP_PAD);
  assert_int_equal(p->n_inputs, 1);
  assert_string_equal(lb_node_attr_string(p, "mode", ""), mode);
  assert_ints_attr(p, "pads", n_pads, pads);
  const struct lb_attr *v = lb_node_attr(p, "value");
  assert_non_null(v);
  assert_int_equal(v->kind, LB_ATTR_FLOAT);
  assert_true(v->f == value);
}

static void test_pad_forms(void **state) {
  (void)state;
  Onnx__NodeProto *n;
  /* opset 7 (Pad-2): pads and value attributes, default mode constant */
  struct mb *m = one_node(7, "2,3", "Pad", "x", "y", &n);
  mb_attr_ints(m, n, "pads", NINTS(1, 0, 0, -1));
  mb_attr_f(m, n, "value", 2.5f);
  struct lb_graph *g = load_ok(m, NULL);
  assert_pad(g, "constant", NINTS(1, 0, 0, -1), 2.5);
  assert_shape(lb_graph_find_value(g, "y"), 2, INTS(3, 2));
  lb_graph_free(g);
  m = one_node(10, "2,3", "Pad", "x", "y", &n);
  mb_attr_s(m, n, "mode", "edge");
  load_fails(m, NULL, LB_ERR_INVALID, "attribute pads is required");
  /* opset 11: pads and constant_value inputs (pad.py test_constant_pad) */
  m = one_node(11, "1,3,4,5", "Pad", "x,pads,value", "y", &n);
  mb_attr_s(m, n, "mode", "constant");
  mb_init_i64(m, "pads", "8", INTS(0, 0, 1, 3, 0, 0, 2, 4));
  mb_init_f32(m, "value", "", (const float[]){1.2f});
  g = load_ok(m, NULL);
  assert_pad(g, "constant", NINTS(0, 0, 1, 3, 0, 0, 2, 4), (double)1.2f);
  assert_shape(lb_graph_find_value(g, "y"), 4, INTS(1, 3, 7, 12));
  lb_graph_free(g);
  /* opset 13 reflect (test_reflect_pad), no constant_value; value written as 0 */
  m = one_node(13, "1,3,4,5", "Pad", "x,pads", "y", &n);
  mb_attr_s(m, n, "mode", "reflect");
  mb_init_i64(m, "pads", "8", INTS(0, 0, 1, 1, 0, 0, 1, 1));
  g = load_ok(m, NULL);
  assert_pad(g, "reflect", NINTS(0, 0, 1, 1, 0, 0, 1, 1), 0.0);
  lb_graph_free(g);
  /* opset 18: axes input (test_constant_pad_axes, test_constant_pad_negative_axes) */
  m = one_node(18, "1,3,4,5", "Pad", "x,pads,value,axes", "y", &n);
  mb_init_i64(m, "pads", "4", INTS(0, 3, 0, 4));
  mb_init_f32(m, "value", "", (const float[]){1.2f});
  mb_init_i64(m, "axes", "2", INTS(1, 3));
  g = load_ok(m, NULL);
  assert_pad(g, "constant", NINTS(0, 0, 0, 3, 0, 0, 0, 4), (double)1.2f);
  assert_shape(lb_graph_find_value(g, "y"), 4, INTS(1, 3, 4, 12));
  lb_graph_free(g);
  m = one_node(18, "1,3,4,5", "Pad", "x,pads,,axes", "y", &n);
  mb_attr_s(m, n, "mode", "edge");
  mb_init_i64(m, "pads", "4", INTS(-1, 3, 2, 4));
  mb_init_i64(m, "axes", "2", INTS(-1, -3));
  g = load_ok(m, NULL);
  assert_pad(g, "edge", NINTS(0, 3, 0, -1, 0, 4, 0, 2), 0.0);
  assert_shape(lb_graph_find_value(g, "y"), 4, INTS(1, 10, 4, 6));
  lb_graph_free(g);
  m = one_node(18, "2,3", "Pad", "x,pads,,axes", "y", &n);
  mb_init_i64(m, "pads", "4", INTS(1, 1, 1, 1));
  mb_init_i64(m, "axes", "2", INTS(1, -1));
  load_fails(m, NULL, LB_ERR_INVALID, "axis 1 is repeated");
  m = one_node(18, "2,3", "Pad", "x,pads,,axes", "y", &n);
  mb_init_i64(m, "pads", "4", INTS(1, 1, 1, 1));
  mb_init_i64(m, "axes", "1", INTS(0));
  load_fails(m, NULL, LB_ERR_INVALID, "pads has 4 entries but needs 2");
  m = one_node(13, "2,3", "Pad", "x,pads,,axes", "y", &n);
  mb_init_i64(m, "pads", "2", INTS(1, 1));
  mb_init_i64(m, "axes", "1", INTS(0));
  load_fails(m, NULL, LB_ERR_INVALID, "input 3 (axes) needs opset 18");
  /* opset 19: wrap (test_wrap_pad); not before */
  m = one_node(19, "1,3,4,5", "Pad", "x,pads", "y", &n);
  mb_attr_s(m, n, "mode", "wrap");
  mb_init_i64(m, "pads", "8", INTS(0, 0, 1, 1, 0, 0, 1, 1));
  g = load_ok(m, NULL);
  assert_pad(g, "wrap", NINTS(0, 0, 1, 1, 0, 0, 1, 1), 0.0);
  lb_graph_free(g);
  m = one_node(18, "4", "Pad", "x,pads", "y", &n);
  mb_attr_s(m, n, "mode", "wrap");
  mb_init_i64(m, "pads", "2", INTS(1, 1));
  load_fails(m, NULL, LB_ERR_INVALID, "mode \"wrap\" needs opset 19");
  m = one_node(13, "4", "Pad", "x,pads", "y", &n);
  mb_attr_s(m, n, "mode", "symmetric");
  mb_init_i64(m, "pads", "2", INTS(1, 1));
  load_fails(m, NULL, LB_ERR_INVALID, "mode \"symmetric\" is not");
  /* all-zero pads: identity */
  m = one_node(13, "2,3", "Pad", "x,pads", "y", &n);
  mb_init_i64(m, "pads", "4", INTS(0, 0, 0, 0));
  g = load_ok(m, NULL);
  assert_int_equal(producer_of(g, "y")->op, LB_OP_IDENTITY);
  assert_int_equal(count_op(g, LB_OP_PAD), 0);
  lb_graph_free(g);
  /* pads, constant_value and axes from graph inputs: --bind */
  m = one_node(13, "2,3", "Pad", "x,p", "y", &n);
  mb_input(m, "p", T_I64, "4");
  load_fails(m, NULL, LB_ERR_UNSUPPORTED, "bind its value with --bind p=FILE");
  m = one_node(13, "2,3", "Pad", "x,pads,cv", "y", &n);
  mb_init_i64(m, "pads", "4", INTS(0, 1, 0, 1));
  mb_input(m, "cv", T_F32, "");
  load_fails(m, NULL, LB_ERR_UNSUPPORTED, "--bind cv=FILE");
  m = one_node(18, "2,3", "Pad", "x,pads,,ax", "y", &n);
  mb_init_i64(m, "pads", "2", INTS(0, 1));
  mb_input(m, "ax", T_I64, "1");
  load_fails(m, NULL, LB_ERR_UNSUPPORTED, "--bind ax=FILE");
  /* constant_value of another type; crop beyond the dim */
  m = one_node(13, "2,3", "Pad", "x,pads,cv", "y", &n);
  mb_init_i64(m, "pads", "4", INTS(0, 1, 0, 1));
  mb_init_i64(m, "cv", "", INTS(1));
  load_fails(m, NULL, LB_ERR_INVALID, "constant_value must be one element of the input's type f32, not i64");
  m = one_node(13, "2,3", "Pad", "x,pads", "y", &n);
  mb_init_i64(m, "pads", "4", INTS(0, -2, 0, -2));
  load_fails(m, NULL, LB_ERR_INVALID, "crop more than its size 3");
  /* an int64 constant_value; all-constant input folds */
  m = mb_new(13);
  mb_init_i64(m, "c", "2", INTS(5, 6));
  mb_init_i64(m, "pads", "2", INTS(1, 0));
  mb_init_i64(m, "cv", "", INTS(-7));
  mb_node(m, "Pad", "n", "c,pads,cv", "y");
  mb_output(m, "y");
  g = load_ok(m, NULL);
  const int64_t *yv = lb_value_const_data(g, lb_graph_find_value(g, "y"));
  assert_non_null(yv);
  assert_true(yv[0] == -7 && yv[1] == 5 && yv[2] == 6);
  lb_graph_free(g);
  m = mb_new(13);
  mb_input(m, "x", T_I64, "2");
  mb_init_i64(m, "pads", "2", INTS(1, 0));
  mb_init_i64(m, "cv", "", INTS(((int64_t)1 << 53) + 1));
  mb_node(m, "Pad", "n", "x,pads,cv", "y");
  mb_output(m, "y");
  load_fails(m, NULL, LB_ERR_UNSUPPORTED, "beyond 2^53");
}

static void test_softmax_forms(void **state) {
  (void)state;
  Onnx__NodeProto *n;
  /* opset 11, axis 1 of rank 3: softmax over the flattened [2, 12] view */
  struct mb *m = one_node(11, "2,3,4", "Softmax", "x", "y", &n);
  struct lb_graph *g = load_ok(m, NULL);
  struct lb_node *back = producer_of(g, "y");
  assert_int_equal(back->op, LB_OP_RESHAPE);
  assert_ints_attr(back, "shape", NINTS(2, 3, 4));
  struct lb_node *sm = back->inputs[0]->producer;
  assert_int_equal(sm->op, LB_OP_SOFTMAX);
  assert_int_equal(lb_node_attr_int(sm, "axis", -1), 1);
  assert_shape(sm->outputs[0], 2, INTS(2, 12));
  assert_int_equal(sm->inputs[0]->producer->op, LB_OP_RESHAPE);
  assert_ptr_equal(sm->inputs[0]->producer->inputs[0], g->inputs[0]);
  lb_graph_free(g);
  /* opset 11 with the last axis: one node */
  m = one_node(11, "2,3,4", "LogSoftmax", "x", "y", &n);
  mb_attr_i(m, n, "axis", -1);
  g = load_ok(m, NULL);
  assert_int_equal(producer_of(g, "y")->op, LB_OP_LOG_SOFTMAX);
  assert_int_equal(lb_node_attr_int(producer_of(g, "y"), "axis", -1), 2);
  assert_int_equal(g->n_nodes, 1);
  lb_graph_free(g);
  /* opset 13: axis means one axis */
  m = one_node(13, "2,3,4", "Softmax", "x", "y", &n);
  mb_attr_i(m, n, "axis", 1);
  g = load_ok(m, NULL);
  assert_int_equal(g->n_nodes, 1);
  assert_int_equal(lb_node_attr_int(producer_of(g, "y"), "axis", -1), 1);
  lb_graph_free(g);
  m = one_node(13, "2,3,4", "Softmax", "x", "y", &n);
  g = load_ok(m, NULL);
  assert_int_equal(lb_node_attr_int(producer_of(g, "y"), "axis", -1), 2);
  lb_graph_free(g);
}

static void test_conv_pool(void **state) {
  (void)state;
  Onnx__NodeProto *n;
  struct mb *m = one_node(17, "1,2,7,7", "Conv", "x,w", "y", &n);
  float w[4 * 2 * 3 * 3] = {0};
  mb_init_f32(m, "w", "4,2,3,3", w);
  mb_attr_s(m, n, "auto_pad", "SAME_UPPER");
  mb_attr_ints(m, n, "strides", NINTS(2, 2));
  struct lb_graph *g = load_ok(m, NULL);
  struct lb_node *c = producer_of(g, "y");
  assert_int_equal(c->op, LB_OP_CONV);
  assert_ints_attr(c, "kernel_shape", NINTS(3, 3));
  assert_ints_attr(c, "strides", NINTS(2, 2));
  assert_ints_attr(c, "dilations", NINTS(1, 1));
  assert_ints_attr(c, "pads", NINTS(1, 1, 1, 1));
  assert_int_equal(lb_node_attr_int(c, "group", -1), 1);
  assert_null(lb_node_attr(c, "auto_pad"));
  assert_shape(c->outputs[0], 4, INTS(1, 4, 4, 4));
  lb_graph_free(g);
  /* SAME_UPPER with an odd total puts the extra pad at the end, SAME_LOWER at the start */
  m = one_node(17, "1,1,6", "MaxPool", "x", "y", &n);
  mb_attr_ints(m, n, "kernel_shape", NINTS(4));
  mb_attr_s(m, n, "auto_pad", "SAME_UPPER");
  g = load_ok(m, NULL);
  assert_ints_attr(producer_of(g, "y"), "pads", NINTS(1, 2));
  assert_shape(g->outputs[0], 3, INTS(1, 1, 6));
  lb_graph_free(g);
  m = one_node(17, "1,1,6", "AveragePool", "x", "y", &n);
  mb_attr_ints(m, n, "kernel_shape", NINTS(4));
  mb_attr_s(m, n, "auto_pad", "SAME_LOWER");
  g = load_ok(m, NULL);
  struct lb_node *p = producer_of(g, "y");
  assert_ints_attr(p, "pads", NINTS(2, 1));
  assert_int_equal(lb_node_attr_int(p, "count_include_pad", -1), 0);
  assert_int_equal(lb_node_attr_int(p, "ceil_mode", -1), 0);
  lb_graph_free(g);
  /* Indices used: a second i64 output and storage_order; unused: one output */
  m = one_node(17, "1,1,6,6", "MaxPool", "x", "y,idx", &n);
  mb_attr_ints(m, n, "kernel_shape", NINTS(2, 2));
  mb_attr_i(m, n, "storage_order", 1);
  mb_output(m, "idx");
  g = load_ok(m, NULL);
  p = producer_of(g, "idx");
  assert_int_equal(p->op, LB_OP_MAX_POOL);
  assert_int_equal(p->n_outputs, 2);
  assert_int_equal(lb_node_attr_int(p, "storage_order", -1), 1);
  assert_int_equal(lb_graph_find_value(g, "idx")->type.dtype, LB_DTYPE_I64);
  assert_shape(lb_graph_find_value(g, "idx"), 4, INTS(1, 1, 5, 5));
  lb_graph_free(g);
  m = one_node(17, "1,1,6,6", "MaxPool", "x", "y,idx", &n);
  mb_attr_ints(m, n, "kernel_shape", NINTS(2, 2));
  g = load_ok(m, NULL);
  p = producer_of(g, "y");
  assert_int_equal(p->n_outputs, 1);
  assert_null(lb_node_attr(p, "storage_order"));
  lb_graph_free(g);
  m = one_node(17, "1,1,6,6", "MaxPool", "x", "y,idx", &n);
  mb_attr_ints(m, n, "kernel_shape", NINTS(2, 2));
  mb_attr_i(m, n, "storage_order", 3);
  mb_output(m, "idx");
  load_fails(m, NULL, LB_ERR_INVALID, "storage_order must be 0 or 1");
}

static void test_reshape_forms(void **state) {
  (void)state;
  Onnx__NodeProto *n;
  struct mb *m = one_node(13, "2,3,4", "Reshape", "x,s", "y", &n);
  mb_init_i64(m, "s", "3", INTS(0, -1, 2));
  struct lb_graph *g = load_ok(m, NULL);
  assert_ints_attr(producer_of(g, "y"), "shape", NINTS(2, 6, 2));
  assert_int_equal(producer_of(g, "y")->n_inputs, 1);
  lb_graph_free(g);
  m = one_node(14, "2,0,4", "Reshape", "x,s", "y", &n);
  mb_init_i64(m, "s", "2", INTS(0, 8));
  mb_attr_i(m, n, "allowzero", 1);
  g = load_ok(m, NULL);
  assert_ints_attr(producer_of(g, "y"), "shape", NINTS(0, 8));
  lb_graph_free(g);
  m = one_node(13, "2,3", "Reshape", "x,s", "y", &n);
  mb_init_i64(m, "s", "2", INTS(-1, -1));
  load_fails(m, NULL, LB_ERR_INVALID, "more than one -1");
  m = one_node(13, "2,3", "Reshape", "x,s", "y", &n);
  mb_init_i64(m, "s", "1", INTS(7));
  load_fails(m, NULL, LB_ERR_INVALID, "cannot reshape 6 elements into 7");
}

static void test_misc_forms(void **state) {
  (void)state;
  Onnx__NodeProto *n;
  /* Gemm defaults, Cast names, Gelu, Trilu k, Clip-6 attributes, Dropout mask */
  struct mb *m = mb_new(20);
  mb_input(m, "a", T_F32, "2,3");
  mb_init_f32(m, "b", "3,4", (float[12]){0});
  mb_node(m, "Gemm", "gemm", "a,b", "g");
  n = mb_node(m, "Cast", "cast", "g", "c");
  mb_attr_i(m, n, "to", T_F16);
  mb_attr_s(m, mb_node(m, "Gelu", "gelu", "g", "ge"), "approximate", "tanh");
  mb_init_i64(m, "k", "", INTS(-1));
  mb_node(m, "Trilu", "tri", "g,k", "tr");
  n = mb_node(m, "Dropout", "drop", "g", "d,mask");
  mb_node(m, "Not", "not", "mask", "nm");
  mb_node(m, "Transpose", "t", "g", "tt");
  n = mb_node(m, "Gather", "gat", "g,idx", "ga");
  mb_attr_i(m, n, "axis", -1);
  mb_init_i64(m, "idx", "2", INTS(0, -1));
  const char *outs[] = {"c", "ge", "tr", "d", "nm", "tt", "ga"};
  for (int i = 0; i < 7; i++) mb_output(m, outs[i]);
  struct lb_graph *g = load_ok(m, NULL);
  struct lb_node *gm = producer_of(g, "g");
  assert_int_equal(gm->op, LB_OP_GEMM);
  assert_true(lb_node_attr_float(gm, "alpha", 0) == 1.0);
  assert_true(lb_node_attr_float(gm, "beta", 0) == 1.0);
  assert_int_equal(lb_node_attr_int(gm, "transA", -1), 0);
  assert_int_equal(lb_node_attr_int(gm, "transB", -1), 0);
  assert_int_equal(gm->n_inputs, 2);
  assert_string_equal(lb_node_attr_string(producer_of(g, "c"), "to", ""), "f16");
  assert_int_equal(lb_graph_find_value(g, "c")->type.dtype, LB_DTYPE_F16);
  assert_string_equal(lb_node_attr_string(producer_of(g, "ge"), "approximate", ""), "tanh");
  assert_int_equal(lb_node_attr_int(producer_of(g, "tr"), "k", 0), -1);
  assert_int_equal(lb_node_attr_int(producer_of(g, "tr"), "upper", -1), 1);
  assert_int_equal(producer_of(g, "tr")->n_inputs, 1);
  assert_int_equal(producer_of(g, "d")->op, LB_OP_IDENTITY);
  assert_int_equal(producer_of(g, "mask")->op, LB_OP_CONST);
  assert_int_equal(lb_graph_find_value(g, "mask")->type.dtype, LB_DTYPE_BOOL);
  assert_ints_attr(producer_of(g, "tt"), "perm", NINTS(1, 0));
  assert_int_equal(lb_node_attr_int(producer_of(g, "ga"), "axis", -1), 1);
  lb_graph_free(g);

  /* Dropout in training mode is random: refused, not compiled as identity */
  m = mb_new(13);
  mb_input(m, "x", T_F32, "3");
  mb_init_f32(m, "ratio", "", (float[1]){0.5f});
  mb_add_init(m, mb_raw(m, "train", T_BOOL, "", (uint8_t[1]){1}, 1));
  mb_node(m, "Dropout", "drop", "x,ratio,train", "y");
  mb_output(m, "y");
  load_fails(m, NULL, LB_ERR_UNSUPPORTED, "training mode");
  /* ... unless its ratio is 0, which keeps everything */
  m = mb_new(13);
  mb_input(m, "x", T_F32, "3");
  mb_init_f32(m, "ratio", "", (float[1]){0.0f});
  mb_add_init(m, mb_raw(m, "train", T_BOOL, "", (uint8_t[1]){1}, 1));
  mb_node(m, "Dropout", "drop", "x,ratio,train", "y");
  mb_output(m, "y");
  g = load_ok(m, NULL);
  assert_int_equal(producer_of(g, "y")->op, LB_OP_IDENTITY);
  lb_graph_free(g);

  m = mb_new(10);
  mb_input(m, "x", T_F32, "3");
  n = mb_node(m, "Clip", "clip", "x", "y");
  mb_attr_f(m, n, "min", -1.0f);
  mb_output(m, "y");
  g = load_ok(m, NULL);
  struct lb_node *cl = producer_of(g, "y");
  assert_int_equal(cl->op, LB_OP_CLIP);
  assert_int_equal(cl->n_inputs, 2);
  assert_true(*(const float *)lb_value_const_data(g, cl->inputs[1]) == -1.0f);
  lb_graph_free(g);

  m = mb_new(17);
  mb_input(m, "x", T_F32, "2,4");
  mb_init_f32(m, "s", "4", (float[4]){1, 1, 1, 1});
  mb_node(m, "LayerNormalization", "ln", "x,s", "y,mean");
  mb_node(m, "Neg", "neg", "mean", "z");
  mb_output(m, "y");
  mb_output(m, "z");
  g = load_ok(m, NULL); /* Mean used: layer_norm with its 3 outputs (InvStdDev named fresh) */
  struct lb_node *ln = producer_of(g, "mean");
  assert_int_equal(ln->op, LB_OP_LAYER_NORM);
  assert_int_equal(ln->n_outputs, 3);
  assert_int_equal(ln->outputs[1]->type.dtype, LB_DTYPE_F32);
  assert_shape(ln->outputs[1], 2, INTS(2, 1));
  assert_shape(ln->outputs[2], 2, INTS(2, 1));
  lb_graph_free(g);
  m = mb_new(17);
  mb_input(m, "x", T_F32, "2,4");
  mb_init_f32(m, "s", "4", (float[4]){1, 1, 1, 1});
  n = mb_node(m, "LayerNormalization", "ln", "x,s", "y,,istd");
  mb_attr_i(m, n, "stash_type", 11);
  mb_output(m, "y");
  mb_output(m, "istd");
  load_fails(m, NULL, LB_ERR_UNSUPPORTED, "stash_type 11 is not supported");

  /* BatchNormalization training_mode=1 (opset 15): batch statistics, running mean/var */
  m = mb_new(15);
  mb_input(m, "x", T_F32, "2,3,4");
  for (int i = 0; i < 4; i++) {
    static const char *const names[] = {"s", "b", "m", "v"};
    mb_init_f32(m, names[i], "3", (float[3]){1, 1, 1});
  }
  n = mb_node(m, "BatchNormalization", "bn", "x,s,b,m,v", "y,rm,rv");
  mb_attr_i(m, n, "training_mode", 1);
  mb_output(m, "y");
  mb_output(m, "rv");
  g = load_ok(m, NULL);
  struct lb_node *bn = producer_of(g, "rv");
  assert_int_equal(bn->op, LB_OP_BATCH_NORM);
  assert_int_equal(bn->n_outputs, 3);
  assert_int_equal(lb_node_attr_int(bn, "training_mode", 0), 1);
  assert_true(lb_node_attr_float(bn, "momentum", 0) == 0.9);
  assert_shape(bn->outputs[2], 1, INTS(3));
  lb_graph_free(g);
  /* opset 9: extra outputs mean training, which lowbit refuses when they are used */
  m = mb_new(9);
  mb_input(m, "x", T_F32, "2,3,4");
  for (int i = 0; i < 4; i++) {
    static const char *const names[] = {"s", "b", "m", "v"};
    mb_init_f32(m, names[i], "3", (float[3]){1, 1, 1});
  }
  mb_node(m, "BatchNormalization", "bn", "x,s,b,m,v", "y,rm");
  mb_output(m, "y");
  mb_output(m, "rm");
  load_fails(m, NULL, LB_ERR_UNSUPPORTED, "output 1 (a training output");
  /* opset 6: is_test=0 (the default) is training mode: batch statistics */
  m = mb_new(6);
  mb_input(m, "x", T_F32, "2,3,4");
  for (int i = 0; i < 4; i++) {
    static const char *const names[] = {"s", "b", "m", "v"};
    mb_init_f32(m, names[i], "3", (float[3]){1, 1, 1});
  }
  mb_node(m, "BatchNormalization", "bn", "x,s,b,m,v", "y");
  n = mb_node(m, "BatchNormalization", "bn2", "x,s,b,m,v", "y2");
  mb_attr_i(m, n, "is_test", 1);
  mb_output(m, "y");
  mb_output(m, "y2");
  g = load_ok(m, NULL);
  assert_int_equal(lb_node_attr_int(producer_of(g, "y"), "training_mode", 0), 1);
  assert_null(lb_node_attr(producer_of(g, "y2"), "training_mode"));
  lb_graph_free(g);
}

/* Opsets below 7: the binary ops' broadcast/axis attributes, Concat-1's default axis,
 * Cast-1's string 'to'. */
static void test_old_opsets(void **state) {
  (void)state;
  struct mb *m = mb_new(1);
  mb_input(m, "x", T_F32, "2,3,4");
  mb_input(m, "b", T_F32, "3");
  Onnx__NodeProto *n = mb_node(m, "Add", "add", "x,b", "y");
  mb_attr_i(m, n, "broadcast", 1);
  mb_attr_i(m, n, "axis", 1);
  mb_output(m, "y");
  struct lb_graph *g = load_ok(m, NULL); /* b is reshaped to [3,1] so numpy aligns it at dim 1 */
  struct lb_node *add = producer_of(g, "y");
  assert_int_equal(add->op, LB_OP_ADD);
  assert_int_equal(add->inputs[1]->producer->op, LB_OP_RESHAPE);
  assert_shape(add->inputs[1], 2, INTS(3, 1));
  assert_shape(add->outputs[0], 3, INTS(2, 3, 4));
  lb_graph_free(g);
  m = mb_new(6);
  mb_input(m, "x", T_F32, "2,3,4");
  mb_input(m, "b", T_F32, "4");
  n = mb_node(m, "Mul", "mul", "x,b", "y");
  mb_attr_i(m, n, "broadcast", 1);
  mb_output(m, "y");
  g = load_ok(m, NULL); /* no axis: suffix alignment, numpy's */
  assert_int_equal(producer_of(g, "y")->inputs[1], lb_graph_find_value(g, "b"));
  lb_graph_free(g);
  m = mb_new(6);
  mb_input(m, "x", T_F32, "2,3,4");
  mb_input(m, "b", T_F32, "4");
  mb_node(m, "Sub", "sub", "x,b", "y");
  mb_output(m, "y");
  load_fails(m, NULL, LB_ERR_INVALID, "need broadcast=1");
  m = mb_new(6);
  mb_input(m, "x", T_F32, "3");
  mb_input(m, "b", T_F32, "2,3");
  n = mb_node(m, "Div", "div", "x,b", "y");
  mb_attr_i(m, n, "broadcast", 1);
  mb_output(m, "y");
  load_fails(m, NULL, LB_ERR_INVALID, "must not have a higher rank");
  m = mb_new(3);
  mb_input(m, "x", T_F32, "2,3");
  mb_node(m, "Concat", "cat", "x,x", "y");
  mb_output(m, "y");
  g = load_ok(m, NULL);
  assert_int_equal(lb_node_attr_int(producer_of(g, "y"), "axis", -1), 1);
  lb_graph_free(g);
  m = mb_new(1);
  mb_input(m, "x", T_F32, "2");
  n = mb_node(m, "Cast", "cast", "x", "y");
  mb_attr_s(m, n, "to", "INT64");
  mb_output(m, "y");
  g = load_ok(m, NULL);
  assert_string_equal(lb_node_attr_string(producer_of(g, "y"), "to", ""), "i64");
  lb_graph_free(g);
  m = mb_new(1);
  mb_input(m, "x", T_F32, "2");
  n = mb_node(m, "Cast", "cast", "x", "y");
  mb_attr_s(m, n, "to", "STRING");
  mb_output(m, "y");
  load_fails(m, NULL, LB_ERR_UNSUPPORTED, "cast to element type 8 is not supported");
  m = mb_new(1);
  mb_input(m, "x", T_F32, "1,2,3,3");
  mb_node(m, "GlobalAveragePool", "gap", "x", "y");
  mb_output(m, "y");
  g = load_ok(m, NULL);
  assert_int_equal(g->opset, 1);
  lb_graph_free(g);
}

/* Shape -> Gather -> Unsqueeze -> Concat -> Reshape, as TorchScript exports it:
 * everything folds, the IR keeps only the reshape. Also ConstantOfShape and Range. */
static void test_shape_folding(void **state) {
  (void)state;
  struct mb *m = mb_new(17);
  mb_input(m, "x", T_F32, "batch,6");
  mb_node(m, "Shape", "shape", "x", "s");
  mb_init_i64(m, "zero", "", INTS(0));
  mb_node(m, "Gather", "g0", "s,zero", "b");
  mb_init_i64(m, "ax0", "1", INTS(0));
  mb_node(m, "Unsqueeze", "u", "b,ax0", "b1");
  mb_init_i64(m, "rest", "2", INTS(3, -1));
  Onnx__NodeProto *n = mb_node(m, "Concat", "cat", "b1,rest", "target");
  mb_attr_i(m, n, "axis", 0);
  mb_node(m, "Reshape", "rs", "x,target", "y");
  n = mb_node(m, "Shape", "shape_tail", "x", "tail");
  mb_attr_i(m, n, "start", -1);
  mb_node(m, "ConstantOfShape", "cos", "tail", "ones_like");
  mb_init_i64(m, "r0", "", INTS(2));
  mb_init_i64(m, "r1", "", INTS(11));
  mb_init_i64(m, "r2", "", INTS(3));
  mb_node(m, "Range", "range", "r0,r1,r2", "rg");
  mb_output(m, "y");
  mb_output(m, "ones_like");
  mb_output(m, "rg");
  struct lb_dim_binding dims[] = {{"batch", 4}};
  struct lb_onnx_options o = {.dims = dims, .n_dims = 1};
  struct lb_graph *g = load_ok(m, &o);
  for (int32_t i = 0; i < g->n_nodes; i++)
    assert_true(g->nodes[i]->op == LB_OP_CONST || g->nodes[i]->op == LB_OP_RESHAPE);
  assert_int_equal(count_op(g, LB_OP_RESHAPE), 1);
  assert_ints_attr(producer_of(g, "y"), "shape", NINTS(4, 3, 2));
  assert_int_equal(producer_of(g, "ones_like")->op, LB_OP_CONST);
  assert_shape(lb_graph_find_value(g, "ones_like"), 1, INTS(6));
  assert_memory_equal(lb_value_const_data(g, lb_graph_find_value(g, "ones_like")),
                      ((float[6]){0}), 24);
  assert_memory_equal(lb_value_const_data(g, lb_graph_find_value(g, "rg")), INTS(2, 5, 8), 24);
  assert_int_equal(g->n_nodes, 3); /* the chain's constants are gone with it */
  lb_graph_free(g);
}

static void test_all_const_folds(void **state) {
  (void)state;
  struct mb *m = mb_new(17);
  mb_init_f32(m, "a", "2", (float[2]){1, 2});
  mb_init_f32(m, "b", "2", (float[2]){3, 4});
  mb_node(m, "Add", "add", "a,b", "c");
  mb_input(m, "x", T_F32, "2");
  mb_node(m, "Mul", "mul", "x,c", "y");
  mb_output(m, "y");
  struct lb_graph *g = load_ok(m, NULL);
  assert_int_equal(g->n_nodes, 2);
  assert_int_equal(producer_of(g, "c")->op, LB_OP_CONST);
  assert_memory_equal(lb_value_const_data(g, lb_graph_find_value(g, "c")), ((float[2]){4, 6}), 8);
  assert_int_equal(g->n_blobs, 1);
  lb_graph_free(g);
}

/* MatMulNBits (com.microsoft) -> qmatmul with the codes unpacked to i8[K,N]
 * (transposed: B is [N, n_blocks, blob]), asym unsigned qparams with group =
 * block_size, scales [g * N + n] rounded to f16, packed zero points; and a
 * blocked int4 DequantizeLinear read by MatMul -> the same qmatmul form. */
static void test_lowbit_weight_forms(void **state) {
  (void)state;
  /* K = 20 (a padded second block of 16), N = 2, 4 bits, block 16 */
  struct mb *m = mb_new(17);
  mb_opset(m, "com.microsoft", 1);
  mb_input(m, "x", T_F32, "3,20");
  Onnx__NodeProto *n = mb_node(m, "MatMulNBits", "nb", "x,B,s,zp,,bias", "y");
  mb_node_domain(m, n, "com.microsoft");
  mb_attr_i(m, n, "K", 20);
  mb_attr_i(m, n, "N", 2);
  mb_attr_i(m, n, "bits", 4);
  mb_attr_i(m, n, "block_size", 16);
  mb_attr_i(m, n, "accuracy_level", 4);
  uint8_t b[2 * 2 * 8];
  for (int i = 0; i < 32; i++) b[i] = (uint8_t)(i * 37 + 11); /* two codes per byte, low first */
  mb_add_init(m, mb_raw(m, "B", T_U8, "2,2,8", b, sizeof b));
  /* scales [n * 2 + g]; 0.1 is not an f16 value */
  mb_init_f32(m, "s", "4", (const float[]){0.5f, 0.1f, -0.25f, 2.0f});
  uint8_t zp[2] = {0x93, 0x5a}; /* column 0: blocks 3, 9; column 1: 10, 5 */
  mb_add_init(m, mb_raw(m, "zp", T_U8, "2", zp, sizeof zp));
  mb_init_f32(m, "bias", "2", (const float[]){1, 2});
  mb_output(m, "y");
  struct lb_graph *g = load_ok(m, NULL);
  struct lb_node *q = producer_of(g, "y");
  assert_int_equal(q->op, LB_OP_QMATMUL);
  assert_string_equal(lb_node_attr_string(q, "a_quant", ""), "none");
  assert_int_equal(q->n_inputs, 3);
  struct lb_value *w = q->inputs[1];
  assert_int_equal(w->type.dtype, LB_DTYPE_I8);
  assert_shape(w, 2, INTS(20, 2));
  const struct lb_qparams *qp = w->qparams;
  assert_non_null(qp);
  assert_int_equal(qp->bits, 4);
  assert_int_equal(qp->axis, 1);
  assert_int_equal(qp->group_size, 16);
  assert_false(qp->symmetric);
  assert_true(qp->is_unsigned);
  assert_int_equal(qp->n, 4);
  const float want_s[4] = {0.5f, -0.25f, 0.0999755859375f, 2.0f}; /* [g * N + n] */
  const int32_t want_z[4] = {3, 10, 9, 5};
  for (int i = 0; i < 4; i++) {
    assert_true(qp->scales[i] == want_s[i]);
    assert_int_equal(qp->zero_points[i], want_z[i]);
  }
  const int8_t *codes = lb_value_const_data(g, w);
  for (int k = 0; k < 20; k++)
    for (int c = 0; c < 2; c++) {
      int byte = b[c * 16 + (k / 16) * 8 + (k % 16) / 2];
      assert_int_equal(codes[k * 2 + c], (byte >> (4 * (k % 2))) & 15);
    }
  lb_graph_free(g);

  /* DequantizeLinear-21, int4 [K=4, N=2] with block 2 along K, read by MatMul */
  m = mb_new(21);
  mb_input(m, "x", T_F32, "1,4");
  n = mb_node(m, "DequantizeLinear", "dq", "W,ws", "w");
  mb_attr_i(m, n, "axis", 0);
  mb_attr_i(m, n, "block_size", 2);
  mb_node(m, "MatMul", "mm", "x,w", "y");
  /* codes row-major [[1, -2], [7, -8], [0, 3], [-1, 5]], two per byte, low nibble first */
  uint8_t w4[4] = {0xe1, 0x87, 0x30, 0x5f};
  mb_add_init(m, mb_raw(m, "W", 22, "4,2", w4, sizeof w4));
  mb_init_f32(m, "ws", "2,2", (const float[]){0.5f, 1, 0.25f, 2});
  mb_output(m, "y");
  g = load_ok(m, NULL);
  q = producer_of(g, "y");
  assert_int_equal(q->op, LB_OP_QMATMUL);
  w = q->inputs[1];
  qp = w->qparams;
  assert_non_null(qp);
  assert_true(qp->symmetric);
  assert_int_equal(qp->bits, 4);
  assert_int_equal(qp->group_size, 2);
  codes = lb_value_const_data(g, w);
  const int8_t want_c[8] = {1, -2, 7, -8, 0, 3, -1, 5};
  for (int i = 0; i < 8; i++) assert_int_equal(codes[i], want_c[i]);
  lb_graph_free(g);
  /* a non-trivial g_idx is refused */
  m = mb_new(17);
  mb_opset(m, "com.microsoft", 1);
  mb_input(m, "x", T_F32, "1,16");
  n = mb_node(m, "MatMulNBits", "nb", "x,B,s,,gi", "y");
  mb_node_domain(m, n, "com.microsoft");
  mb_attr_i(m, n, "K", 16);
  mb_attr_i(m, n, "N", 1);
  mb_attr_i(m, n, "block_size", 16);
  mb_add_init(m, mb_raw(m, "B", T_U8, "1,1,8", b, 8));
  mb_init_f32(m, "s", "1", (const float[]){1});
  int32_t gi[16] = {0};
  gi[3] = 1;
  mb_add_init(m, mb_raw(m, "gi", T_I32, "16", gi, sizeof gi));
  mb_output(m, "y");
  load_fails(m, NULL, LB_ERR_UNSUPPORTED, "g_idx[3] = 1: only the trivial g_idx");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_reduce_forms),  cmocka_unit_test(test_split_forms),
      cmocka_unit_test(test_squeeze_forms), cmocka_unit_test(test_slice_forms),
      cmocka_unit_test(test_softmax_forms), cmocka_unit_test(test_conv_pool),
      cmocka_unit_test(test_reshape_forms), cmocka_unit_test(test_misc_forms),
      cmocka_unit_test(test_shape_folding), cmocka_unit_test(test_all_const_folds),
      cmocka_unit_test(test_pad_forms),     cmocka_unit_test(test_old_opsets),
      cmocka_unit_test(test_lowbit_weight_forms),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
