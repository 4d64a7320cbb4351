/* test_onnx_torch.c: importing models exported by torch.onnx.export (opset 17,
 * dynamic axes), from models/ (make_test_models.py). */
#include "fe_test.h"

#include <math.h>

static const char *model_path(const char *name) {
  static char buf[512];
  const char *dir = getenv("LB_FE_MODELS");
  snprintf(buf, sizeof buf, "%s/%s", dir ? dir : "models", name);
  return buf;
}

/* Every op left in the IR is canonical: no ONNX-only ops survive import. */
static void assert_canonical(const struct lb_graph *g) {
  for (int32_t i = 0; i < g->n_nodes; i++) {
    enum lb_op op = g->nodes[i]->op;
    assert_true(op != LB_OP_SHAPE && op != LB_OP_CONSTANT && op != LB_OP_CONSTANT_OF_SHAPE &&
                op != LB_OP_RANGE && op != LB_OP_FLATTEN && op != LB_OP_SQUEEZE &&
                op != LB_OP_UNSQUEEZE && op != LB_OP_DROPOUT);
    assert_false(g->nodes[i]->dead);
    for (int32_t k = 0; k < g->nodes[i]->n_outputs; k++)
      assert_int_not_equal(g->nodes[i]->outputs[k]->type.dtype, LB_DTYPE_UNDEF);
  }
}

static void test_tiny_gpt(void **state) {
  (void)state;
  struct lb_dim_binding dims[] = {{"batch", 2}, {"seq", 7}};
  struct lb_onnx_options o = {.dims = dims, .n_dims = 2};
  struct lb_graph *g = NULL;
  struct lb_diag d;
  lb_diag_init(&d, "tiny_gpt.onnx");
  enum lb_status st = lb_onnx_load_file(model_path("tiny_gpt.onnx"), &o, &g, &d);
  if (st != LB_OK) fprintf(stderr, "%s", d.text);
  assert_int_equal(st, LB_OK);
  lb_diag_free(&d);
  assert_int_equal(g->n_inputs, 1);
  assert_shape(g->inputs[0], 2, INTS(2, 7));
  assert_int_equal(g->n_outputs, 1);
  assert_int_equal(g->outputs[0]->type.dtype, LB_DTYPE_F32);
  assert_shape(g->outputs[0], 3, INTS(2, 7, 16));
  assert_canonical(g);
  assert_true(count_op(g, LB_OP_MATMUL) >= 5);
  assert_int_equal(count_op(g, LB_OP_LAYER_NORM), 3);
  assert_int_equal(count_op(g, LB_OP_SOFTMAX), 1);
  /* the causal mask (ones -> trilu -> not) depends only on seq: folded */
  assert_int_equal(count_op(g, LB_OP_TRILU), 0);
  lb_graph_free(g);
}

/* Runs the imported graph with the reference evaluator (node by node) and compares
 * with torch's logits: checks that canonicalization kept the model's meaning. */
static void test_tiny_gpt_matches_torch(void **state) {
  (void)state;
  struct lb_dim_binding dims[] = {{"batch", 2}, {"seq", 7}};
  struct lb_onnx_options o = {.dims = dims, .n_dims = 2};
  struct lb_graph *g = NULL;
  struct lb_diag d;
  lb_diag_init(&d, "tiny_gpt.onnx");
  assert_int_equal(lb_onnx_load_file(model_path("tiny_gpt.onnx"), &o, &g, &d), LB_OK);
  FILE *f = fopen(model_path("tiny_gpt_io.bin"), "rb");
  assert_non_null(f);
  int64_t tokens[14];
  float want[2 * 7 * 16];
  assert_int_equal(fread(tokens, sizeof tokens, 1, f), 1);
  assert_int_equal(fread(want, sizeof want, 1, f), 1);
  fclose(f);
  int32_t n_values = lb_graph_index_values(g);
  void **buf = calloc((size_t)n_values, sizeof *buf);
  buf[g->inputs[0]->id] = tokens;
  for (int32_t i = 0; i < g->n_nodes; i++) {
    struct lb_node *n = g->nodes[i];
    if (n->op == LB_OP_CONST) {
      buf[n->outputs[0]->id] = (void *)lb_value_const_data(g, n->outputs[0]);
      continue;
    }
    const void *ins[16] = {0};
    void *outs[16] = {0};
    for (int32_t k = 0; k < n->n_inputs; k++) ins[k] = n->inputs[k] ? buf[n->inputs[k]->id] : NULL;
    for (int32_t k = 0; k < n->n_outputs; k++)
      outs[k] = buf[n->outputs[k]->id] = calloc(1, (size_t)lb_type_nbytes(&n->outputs[k]->type) + 1);
    if (lb_eval_node(g, n, ins, outs, &d) != LB_OK) fprintf(stderr, "%s", d.text);
    assert_int_equal(d.status, LB_OK);
  }
  const float *got = buf[g->outputs[0]->id];
  for (int i = 0; i < 2 * 7 * 16; i++) assert_true(fabsf(got[i] - want[i]) < 1e-4f);
  for (int32_t i = 0; i < g->n_nodes; i++)
    if (g->nodes[i]->op != LB_OP_CONST)
      for (int32_t k = 0; k < g->nodes[i]->n_outputs; k++) free(buf[g->nodes[i]->outputs[k]->id]);
  free(buf);
  lb_diag_free(&d);
  lb_graph_free(g);
}

/* Flipped bytes anywhere in a real model: errors, never crashes (run under ASan). */
static void test_corrupted_model(void **state) {
  (void)state;
  FILE *f = fopen(model_path("tiny_gpt.onnx"), "rb");
  assert_non_null(f);
  static uint8_t orig[1 << 16], buf[1 << 16];
  size_t len = fread(orig, 1, sizeof orig, f);
  fclose(f);
  struct lb_dim_binding dims[] = {{"batch", 1}, {"seq", 3}};
  struct lb_onnx_options o = {.dims = dims, .n_dims = 2};
  uint32_t x = 7;
  int ok = 0;
  for (int iter = 0; iter < 300; iter++) {
    memcpy(buf, orig, len);
    for (int k = 0; k < 1 + iter % 4; k++) {
      x = x * 1103515245u + 12345u;
      size_t pos = (x >> 8) % len;
      x = x * 1103515245u + 12345u;
      buf[pos] ^= (uint8_t)(1u << ((x >> 16) % 8));
    }
    struct lb_graph *g = NULL;
    struct lb_diag d;
    lb_diag_init(&d, "fuzz.onnx");
    enum lb_status st = lb_onnx_load_buffer(buf, len, NULL, &o, &g, &d);
    if (st == LB_OK) {
      ok++;
      lb_graph_free(g);
    } else {
      assert_null(g);
      assert_non_null(d.text);
    }
    lb_diag_free(&d);
  }
  assert_true(ok < 300);
}

static void test_tiny_gpt_needs_dims(void **state) {
  (void)state;
  struct lb_graph *g = NULL;
  struct lb_diag d;
  lb_diag_init(&d, "tiny_gpt.onnx");
  assert_int_equal(lb_onnx_load_file(model_path("tiny_gpt.onnx"), NULL, &g, &d), LB_ERR_USAGE);
  assert_null(g);
  assert_non_null(strstr(d.text, "input \"tokens\" has symbolic dim \"batch\" (dim 0); bind it with --dim batch=N"));
  assert_non_null(strstr(d.text, "input \"tokens\" has symbolic dim \"seq\" (dim 1); bind it with --dim seq=N"));
  lb_diag_free(&d);
}

static void test_tiny_mlp(void **state) {
  (void)state;
  struct lb_dim_binding dims[] = {{"batch", 3}};
  struct lb_onnx_options o = {.dims = dims, .n_dims = 1};
  struct lb_graph *g = NULL;
  struct lb_diag d;
  lb_diag_init(&d, "tiny_mlp.onnx");
  enum lb_status st = lb_onnx_load_file(model_path("tiny_mlp.onnx"), &o, &g, &d);
  if (st != LB_OK) fprintf(stderr, "%s", d.text);
  assert_int_equal(st, LB_OK);
  lb_diag_free(&d);
  assert_shape(g->outputs[0], 2, INTS(3, 3));
  assert_canonical(g);
  assert_int_equal(count_op(g, LB_OP_SOFTMAX), 1);
  lb_graph_free(g);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_tiny_gpt),
      cmocka_unit_test(test_tiny_gpt_matches_torch),
      cmocka_unit_test(test_corrupted_model),
      cmocka_unit_test(test_tiny_gpt_needs_dims),
      cmocka_unit_test(test_tiny_mlp),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
