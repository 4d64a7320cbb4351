/* test_onnx_load.c: protobuf reading, model checks, inputs, --dim/--bind,
 * initializer storage forms, external data, Constant nodes, graph order errors. */
#include "fe_test.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- bytes ------------------------------------------------------------------------ */
static void test_random_bytes(void **state) {
  (void)state;
  uint8_t buf[256];
  uint32_t x = 12345;
  for (size_t i = 0; i < sizeof buf; i++) {
    x = x * 1103515245u + 12345u;
    buf[i] = (uint8_t)(x >> 16);
  }
  struct lb_graph *g = NULL;
  struct lb_diag d;
  lb_diag_init(&d, "model.onnx");
  assert_int_equal(lb_onnx_load_buffer(buf, sizeof buf, NULL, NULL, &g, &d), LB_ERR_PARSE);
  assert_null(g);
  assert_string_equal(d.text, "model.onnx: error: not a valid ONNX model (protobuf parse failed)\n");
  lb_diag_free(&d);
}

static struct mb *tiny_relu(void) {
  struct mb *m = mb_new(17);
  mb_input(m, "x", T_F32, "2,3");
  mb_node(m, "Relu", "r", "x", "y");
  mb_output(m, "y");
  return m;
}

static void test_truncated(void **state) {
  (void)state;
  struct mb *m = tiny_relu();
  size_t len;
  uint8_t *buf = mb_pack(m, &len);
  mb_free(m);
  int parse_errors = 0;
  for (size_t cut = 1; cut < len; cut++) {
    struct lb_graph *g = NULL;
    struct lb_diag d;
    lb_diag_init(&d, "model.onnx");
    enum lb_status st = lb_onnx_load_buffer(buf, cut, NULL, NULL, &g, &d);
    assert_int_not_equal(st, LB_OK); /* never crashes, never succeeds */
    assert_null(g);
    parse_errors += st == LB_ERR_PARSE;
    lb_diag_free(&d);
  }
  assert_true(parse_errors > 0);
  free(buf);
}

static void test_truncated_file(void **state) {
  (void)state;
  char dir[] = "/tmp/lb_fe_trunc_XXXXXX";
  assert_non_null(mkdtemp(dir));
  char path[256];
  snprintf(path, sizeof path, "%s/model.onnx", dir);
  struct mb *m = tiny_relu();
  size_t len;
  uint8_t *buf = mb_pack(m, &len);
  mb_free(m);
  FILE *f = fopen(path, "wb");
  fwrite(buf, 1, len - 3, f);
  fclose(f);
  free(buf);
  struct lb_graph *g = NULL;
  struct lb_diag d;
  lb_diag_init(&d, "model.onnx");
  assert_int_equal(lb_onnx_load_file(path, NULL, &g, &d), LB_ERR_PARSE);
  assert_non_null(strstr(d.text, "not a valid ONNX model (protobuf parse failed)"));
  lb_diag_free(&d);
  lb_diag_init(&d, "missing.onnx");
  snprintf(path, sizeof path, "%s/missing.onnx", dir);
  assert_int_equal(lb_onnx_load_file(path, NULL, &g, &d), LB_ERR_IO);
  lb_diag_free(&d);
  snprintf(path, sizeof path, "%s/model.onnx", dir);
  unlink(path);
  rmdir(dir);
}

static void test_ok_minimal(void **state) {
  (void)state;
  struct lb_graph *g = load_ok(tiny_relu(), NULL);
  assert_int_equal(g->n_inputs, 1);
  assert_int_equal(g->n_outputs, 1);
  assert_int_equal(g->opset, 17);
  assert_int_equal(producer_of(g, "y")->op, LB_OP_RELU);
  assert_string_equal(producer_of(g, "y")->name, "r");
  assert_shape(g->outputs[0], 2, INTS(2, 3));
  lb_graph_free(g);
}

/* ---- model checks ------------------------------------------------------------------ */
static void test_missing_opset(void **state) {
  (void)state;
  struct mb *m = tiny_relu();
  m->model.n_opset_import = 0;
  load_fails(m, NULL, LB_ERR_INVALID, "no opset for the default domain");
  m = tiny_relu();
  m->model.n_opset_import = 0;
  mb_opset(m, "com.microsoft", 1);
  load_fails(m, NULL, LB_ERR_INVALID, "no opset for the default domain");
}

static void test_opset_too_new(void **state) {
  (void)state;
  struct mb *m = mb_new(22);
  mb_input(m, "x", T_F32, "2");
  mb_node(m, "Relu", "r", "x", "y");
  mb_output(m, "y");
  load_fails(m, NULL, LB_ERR_UNSUPPORTED, "opset 22");
  m = mb_new(-1);
  mb_opset(m, "", 0);
  mb_input(m, "x", T_F32, "2");
  mb_output(m, "x");
  load_fails(m, NULL, LB_ERR_UNSUPPORTED, "opset 0");
  m = tiny_relu();
  m->model.has_ir_version = 0;
  load_fails(m, NULL, LB_ERR_INVALID, "ir_version");
}

static void test_unsupported_listing(void **state) {
  (void)state;
  struct mb *m = mb_new(17);
  mb_opset(m, "com.acme", 1);
  mb_input(m, "x", T_F32, "4");
  mb_node(m, "Relu", "ok", "x", "a");
  mb_node(m, "NonZero", "/l0/NonZero", "a", "b");
  Onnx__NodeProto *foo = mb_node(m, "Foo", "x_foo", "a", "c");
  mb_node_domain(m, foo, "com.acme");
  mb_node(m, "Gelu", "g", "a", "d"); /* needs opset 20 */
  mb_node(m, "Loop", "", "a", "e");  /* no name: named after its output */
  Onnx__NodeProto *k = mb_node(m, "Constant", "s", "", "f");
  mb_attr_s(m, k, "value_string", "hi");
  mb_output(m, "b");
  struct lb_graph *g = NULL;
  struct lb_diag d;
  assert_int_equal(load_mb(m, NULL, &g, &d), LB_ERR_UNSUPPORTED);
  mb_free(m);
  assert_non_null(strstr(d.text, "model.onnx: error: 5 unsupported ops: node \"/l0/NonZero\" "
                                 "(NonZero), node \"x_foo\" (Foo, domain com.acme), node \"g\" "
                                 "(Gelu), node \"e\" (Loop), node \"s\" (Constant)\n"));
  assert_non_null(strstr(d.text, "model.onnx: node \"/l0/NonZero\" (NonZero): error: unsupported op\n"));
  assert_non_null(strstr(d.text, "model.onnx: node \"x_foo\" (Foo, domain com.acme): error: "));
  assert_non_null(strstr(d.text, "node \"g\" (Gelu): error: op needs opset 20, the model imports 17"));
  assert_non_null(strstr(d.text, "value_string"));
  assert_int_equal(d.count, 6);
  lb_diag_free(&d);

  /* a domain the model does not import */
  m = mb_new(17);
  mb_input(m, "x", T_F32, "4");
  foo = mb_node(m, "FusedGemm", "fg", "x", "y");
  mb_node_domain(m, foo, "com.microsoft");
  mb_output(m, "y");
  load_fails(m, NULL, LB_ERR_UNSUPPORTED, "(FusedGemm, domain com.microsoft)");
}

static Onnx__GraphProto *nested_graph(struct mb *m, int depth) {
  Onnx__GraphProto *g = mb_alloc(m, sizeof *g);
  onnx__graph_proto__init(g);
  g->name = mb_strdup(m, "body");
  if (depth > 0) {
    Onnx__NodeProto *n = mb_alloc(m, sizeof *n);
    onnx__node_proto__init(n);
    n->op_type = mb_strdup(m, "If");
    mb_attr_g(m, n, "then_branch", nested_graph(m, depth - 1));
    g->n_node = 1;
    g->node = mb_alloc(m, sizeof *g->node);
    g->node[0] = n;
  }
  return g;
}

static void test_subgraph_depth(void **state) {
  (void)state;
  for (int depth = 1; depth <= 40; depth += 13) {
    struct mb *m = mb_new(17);
    mb_input(m, "c", T_BOOL, "");
    Onnx__NodeProto *n = mb_node(m, "If", "if", "c", "y");
    mb_attr_g(m, n, "then_branch", nested_graph(m, depth));
    mb_attr_g(m, n, "else_branch", nested_graph(m, 0));
    mb_output(m, "y");
    if (depth < 8) load_fails(m, NULL, LB_ERR_UNSUPPORTED, "node \"if\" (If)");
    else load_fails(m, NULL, LB_ERR_LIMIT, "nested too deeply");
  }
  /* the limit is an option */
  struct mb *m = mb_new(17);
  mb_input(m, "c", T_BOOL, "");
  Onnx__NodeProto *n = mb_node(m, "If", "if", "c", "y");
  mb_attr_g(m, n, "then_branch", nested_graph(m, 3));
  mb_output(m, "y");
  struct lb_onnx_options o = {.max_subgraph_depth = 2};
  load_fails(m, &o, LB_ERR_LIMIT, "subgraphs nested too deeply");
}

/* ---- inputs and dims ---------------------------------------------------------------- */
static struct mb *symbolic_model(void) {
  struct mb *m = mb_new(17);
  mb_input(m, "tokens", T_I64, "batch,seq");
  mb_input(m, "mask", T_F32, "batch,1,seq");
  mb_input(m, "unused", T_F32, "3");
  mb_node(m, "Cast", "c", "tokens", "tf");
  mb_attr_i(m, m->graph.node[0], "to", T_F32);
  mb_node(m, "Unsqueeze", "u", "tf,axes", "tu");
  mb_init_i64(m, "axes", "1", INTS(1));
  mb_node(m, "Mul", "m", "tu,mask", "y");
  mb_output(m, "y");
  return m;
}

static void test_unbound_dims(void **state) {
  (void)state;
  struct mb *m = symbolic_model();
  struct lb_graph *g = NULL;
  struct lb_diag d;
  assert_int_equal(load_mb(m, NULL, &g, &d), LB_ERR_USAGE);
  mb_free(m);
  assert_non_null(strstr(d.text, "model.onnx: error: input \"tokens\" has symbolic dim \"batch\" "
                                 "(dim 0); bind it with --dim batch=N\n"));
  assert_non_null(strstr(d.text, "input \"tokens\" has symbolic dim \"seq\" (dim 1); bind it with "
                                 "--dim seq=N"));
  assert_non_null(strstr(d.text, "input \"mask\" has symbolic dim \"batch\" (dim 0)"));
  assert_non_null(strstr(d.text, "input \"mask\" has symbolic dim \"seq\" (dim 2)"));
  assert_int_equal(d.count, 4);
  lb_diag_free(&d);

  struct lb_dim_binding one[] = {{"batch", 2}};
  struct lb_onnx_options o = {.dims = one, .n_dims = 1};
  load_fails(symbolic_model(), &o, LB_ERR_USAGE, "has symbolic dim \"seq\"");
}

static void test_dims_bound(void **state) {
  (void)state;
  struct lb_dim_binding dims[] = {{"seq", 5}, {"batch", 2}};
  struct lb_onnx_options o = {.dims = dims, .n_dims = 2};
  struct lb_graph *g = load_ok(symbolic_model(), &o);
  assert_int_equal(g->n_inputs, 3); /* "unused" stays an input */
  assert_string_equal(g->inputs[2]->name, "unused");
  assert_shape(g->inputs[0], 2, INTS(2, 5));
  assert_shape(g->inputs[1], 3, INTS(2, 1, 5));
  assert_shape(g->outputs[0], 3, INTS(2, 1, 5));
  assert_int_equal(producer_of(g, "tu")->op, LB_OP_RESHAPE);
  assert_ints_attr(producer_of(g, "tu"), "shape", NINTS(2, 1, 5));
  lb_graph_free(g);
}

static void test_dim_errors(void **state) {
  (void)state;
  struct lb_dim_binding extra[] = {{"seq", 5}, {"batch", 2}, {"heads", 4}};
  struct lb_onnx_options o = {.dims = extra, .n_dims = 3};
  load_fails(symbolic_model(), &o, LB_ERR_USAGE, "--dim heads: no graph input has a dim named");
  struct lb_dim_binding zero[] = {{"seq", 0}, {"batch", 2}};
  o = (struct lb_onnx_options){.dims = zero, .n_dims = 2};
  load_fails(symbolic_model(), &o, LB_ERR_USAGE, "--dim seq=0: a dim must be positive");
  struct mb *m = mb_new(17);
  mb_input(m, "x", T_F32, "2,?");
  mb_node(m, "Relu", "r", "x", "y");
  mb_output(m, "y");
  load_fails(m, NULL, LB_ERR_UNSUPPORTED, "input \"x\" dim 1 has neither a size nor a name");
  m = mb_new(17);
  mb_input(m, "x", T_F32, "2,-3");
  mb_output(m, "x");
  load_fails(m, NULL, LB_ERR_INVALID, "negative dim");
  m = mb_new(17);
  mb_input(m, "x", T_STR, "2");
  mb_output(m, "x");
  load_fails(m, NULL, LB_ERR_UNSUPPORTED, "element type 8");
}

/* ---- initializers: every storage form -------------------------------------------------- */
static const void *const_data(const struct lb_graph *g, const char *name) {
  struct lb_value *v = lb_graph_find_value(g, name);
  assert_non_null(v);
  const void *p = lb_value_const_data(g, v);
  assert_non_null(p);
  return p;
}

static void test_storage_forms(void **state) {
  (void)state;
  struct mb *m = mb_new(17);
  Onnx__TensorProto *t;
  const float f[3] = {1.5f, -2, 3};
  mb_add_init(m, mb_raw(m, "raw_f32", T_F32, "3", f, sizeof f));
  t = mb_tensor(m, "float_data", T_F32, "3");
  t->n_float_data = 3;
  t->float_data = (float *)f;
  mb_add_init(m, t);
  static int32_t i32[4] = {-1, 200, 7, 0};
  const struct { const char *name; int type; } int32_forms[] = {
      {"i8", T_I8}, {"u8", T_U8}, {"i16", T_I16}, {"u16", T_U16}, {"i32", T_I32},
      {"b", T_BOOL}, {"h", T_F16}, {"bh", T_BF16}};
  for (size_t k = 0; k < sizeof int32_forms / sizeof int32_forms[0]; k++) {
    t = mb_tensor(m, int32_forms[k].name, int32_forms[k].type, "2,2");
    t->n_int32_data = 4;
    t->int32_data = i32;
    mb_add_init(m, t);
  }
  static int64_t i64[2] = {-5, 1LL << 40};
  t = mb_tensor(m, "i64", T_I64, "2");
  t->n_int64_data = 2;
  t->int64_data = i64;
  mb_add_init(m, t);
  static double f64[1] = {0.25};
  t = mb_tensor(m, "f64", T_F64, "");
  t->n_double_data = 1;
  t->double_data = f64;
  mb_add_init(m, t);
  static uint64_t u64[2] = {1, 0xfffffffffull};
  t = mb_tensor(m, "u64", T_U64, "2");
  t->n_uint64_data = 2;
  t->uint64_data = u64;
  mb_add_init(m, t);
  t = mb_tensor(m, "u32", T_U32, "2");
  t->n_uint64_data = 2;
  t->uint64_data = u64;
  mb_add_init(m, t);
  t = mb_tensor(m, "empty", T_F32, "0,3");
  mb_add_init(m, t);
  mb_add_init(m, mb_raw(m, "unused_init", T_F32, "3", f, sizeof f));
  const char *outs[] = {"raw_f32", "float_data", "i8", "u8", "i16", "u16", "i32", "b", "h",
                        "bh", "i64", "f64", "u64", "u32", "empty"};
  for (size_t k = 0; k < sizeof outs / sizeof outs[0]; k++) mb_output(m, outs[k]);
  struct lb_graph *g = load_ok(m, NULL);
  assert_int_equal(g->n_inputs, 0);
  assert_null(lb_graph_find_value(g, "unused_init")); /* skipped: nothing reads it */
  assert_memory_equal(const_data(g, "raw_f32"), f, sizeof f);
  assert_memory_equal(const_data(g, "float_data"), f, sizeof f);
  assert_memory_equal(const_data(g, "i8"), ((int8_t[]){-1, -56, 7, 0}), 4);
  assert_memory_equal(const_data(g, "u8"), ((uint8_t[]){255, 200, 7, 0}), 4);
  assert_memory_equal(const_data(g, "i16"), ((int16_t[]){-1, 200, 7, 0}), 8);
  assert_memory_equal(const_data(g, "u16"), ((uint16_t[]){65535, 200, 7, 0}), 8);
  assert_memory_equal(const_data(g, "i32"), i32, 16);
  assert_memory_equal(const_data(g, "b"), ((uint8_t[]){1, 1, 1, 0}), 4);
  assert_memory_equal(const_data(g, "h"), ((uint16_t[]){65535, 200, 7, 0}), 8);
  assert_memory_equal(const_data(g, "bh"), ((uint16_t[]){65535, 200, 7, 0}), 8);
  assert_memory_equal(const_data(g, "i64"), i64, 16);
  assert_memory_equal(const_data(g, "f64"), f64, 8);
  assert_memory_equal(const_data(g, "u64"), u64, 16);
  assert_memory_equal(const_data(g, "u32"), ((uint32_t[]){1, 0xffffffffu}), 8);
  assert_int_equal(lb_graph_find_value(g, "h")->type.dtype, LB_DTYPE_F16);
  assert_int_equal(lb_graph_find_value(g, "bh")->type.dtype, LB_DTYPE_BF16);
  assert_shape(lb_graph_find_value(g, "empty"), 2, INTS(0, 3));
  assert_int_equal(lb_graph_find_value(g, "f64")->type.shape.rank, 0);
  lb_graph_free(g);
}

static void test_storage_errors(void **state) {
  (void)state;
  const float f[3] = {1, 2, 3};
  struct mb *m = mb_new(17);
  mb_add_init(m, mb_raw(m, "w", T_F32, "4", f, sizeof f));
  mb_output(m, "w");
  load_fails(m, NULL, LB_ERR_INVALID, "initializer \"w\": raw_data has 12 bytes, the f32 tensor needs 16");
  m = mb_new(17);
  Onnx__TensorProto *t = mb_tensor(m, "w", T_F32, "2");
  mb_add_init(m, t);
  mb_output(m, "w");
  load_fails(m, NULL, LB_ERR_INVALID, "float_data has 0 elements, the shape needs 2");
  m = mb_new(17);
  mb_add_init(m, mb_tensor(m, "w", T_F32, "1000000,1000000,1000000,1000000"));
  mb_output(m, "w");
  load_fails(m, NULL, LB_ERR_LIMIT, "larger than the limit");
  m = mb_new(17);
  mb_add_init(m, mb_tensor(m, "w", T_F32, "-2,3"));
  mb_output(m, "w");
  load_fails(m, NULL, LB_ERR_INVALID, "negative dim");
  m = mb_new(17);
  mb_add_init(m, mb_raw(m, "w", T_F32, "3", f, sizeof f));
  mb_output(m, "w");
  struct lb_onnx_options o = {.max_tensor_bytes = 8};
  load_fails(m, &o, LB_ERR_LIMIT, "limit of 8 bytes");
  m = mb_new(17);
  mb_add_init(m, mb_tensor(m, "s", T_STR, "1"));
  mb_output(m, "s");
  load_fails(m, NULL, LB_ERR_UNSUPPORTED, "unsupported element type 8");
}

/* ---- external data -------------------------------------------------------------------- */
static char ext_dir[64];

static void write_file(const char *dir, const char *name, const void *data, size_t len) {
  char path[256];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(data, 1, len, f), len);
  fclose(f);
}

static void add_external(struct mb *m, Onnx__TensorProto *t, const char *loc, const char *off,
                         const char *len) {
  const char *kv[3][2] = {{"location", loc}, {"offset", off}, {"length", len}};
  t->has_data_location = 1;
  t->data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
  t->external_data = mb_alloc(m, sizeof *t->external_data * 4);
  for (int i = 0; i < 3; i++) {
    if (!kv[i][1]) continue;
    Onnx__StringStringEntryProto *e = mb_alloc(m, sizeof *e);
    onnx__string_string_entry_proto__init(e);
    e->key = mb_strdup(m, kv[i][0]);
    e->value = mb_strdup(m, kv[i][1]);
    t->external_data[t->n_external_data++] = e;
  }
}

/* Writes a model whose initializer "w" (f32[4]) is external data at loc/off/len into
 * ext_dir/model.onnx and loads it from the file. */
static enum lb_status load_external(const char *loc, const char *off, const char *len,
                                    struct lb_graph **g, struct lb_diag *d) {
  struct mb *m = mb_new(17);
  Onnx__TensorProto *t = mb_tensor(m, "w", T_F32, "4");
  add_external(m, t, loc, off, len);
  mb_add_init(m, t);
  mb_input(m, "x", T_F32, "4");
  mb_node(m, "Add", "add", "x,w", "y");
  mb_output(m, "y");
  size_t n;
  uint8_t *buf = mb_pack(m, &n);
  mb_free(m);
  write_file(ext_dir, "model.onnx", buf, n);
  free(buf);
  char path[256];
  snprintf(path, sizeof path, "%s/model.onnx", ext_dir);
  lb_diag_init(d, "model.onnx");
  *g = NULL;
  enum lb_status st = lb_onnx_load_file(path, NULL, g, d);
  if (st != LB_OK) assert_null(*g);
  return st;
}

static void expect_external_error(const char *loc, const char *off, const char *len,
                                  enum lb_status want, const char *text) {
  struct lb_graph *g;
  struct lb_diag d;
  enum lb_status st = load_external(loc, off, len, &g, &d);
  if (st != want || !d.text || !strstr(d.text, text))
    fprintf(stderr, "%s: got %s:\n%s", loc, lb_status_name(st), d.text ? d.text : "");
  assert_int_equal(st, want);
  assert_non_null(strstr(d.text, text));
  lb_diag_free(&d);
}

static int ext_setup(void **state) {
  (void)state;
  snprintf(ext_dir, sizeof ext_dir, "/tmp/lb_fe_ext_XXXXXX");
  if (!mkdtemp(ext_dir)) return -1;
  char sub[128], outside[128];
  snprintf(sub, sizeof sub, "%s/sub", ext_dir);
  mkdir(sub, 0755);
  snprintf(outside, sizeof outside, "%s.outside", ext_dir);
  float data[8] = {0, 0, 1, 2, 3, 4, 9, 9}; /* w = data[2..5] at byte offset 8 */
  write_file(ext_dir, "weights.bin", data, sizeof data);
  write_file(sub, "w.bin", data + 2, 16);
  FILE *f = fopen(outside, "wb");
  fwrite(data, 1, sizeof data, f);
  fclose(f);
  char link[160];
  snprintf(link, sizeof link, "%s/escape.bin", ext_dir);
  if (symlink(outside, link) != 0) return -1;
  snprintf(link, sizeof link, "%s/inside_link.bin", ext_dir);
  if (symlink("sub/w.bin", link) != 0) return -1;
  return 0;
}

static int ext_teardown(void **state) {
  (void)state;
  const char *names[] = {"weights.bin", "sub/w.bin", "escape.bin", "inside_link.bin", "model.onnx"};
  char path[256];
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    snprintf(path, sizeof path, "%s/%s", ext_dir, names[i]);
    unlink(path);
  }
  snprintf(path, sizeof path, "%s/sub", ext_dir);
  rmdir(path);
  snprintf(path, sizeof path, "%s.outside", ext_dir);
  unlink(path);
  rmdir(ext_dir);
  return 0;
}

static void test_external_ok(void **state) {
  (void)state;
  const char *cases[][3] = {{"weights.bin", "8", "16"}, {"sub/w.bin", NULL, NULL},
                            {"./sub/../sub/w.bin", "0", "16"}, {"inside_link.bin", NULL, "16"}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct lb_graph *g;
    struct lb_diag d;
    enum lb_status st = load_external(cases[i][0], cases[i][1], cases[i][2], &g, &d);
    if (st != LB_OK) fprintf(stderr, "%s", d.text);
    assert_int_equal(st, LB_OK);
    const float want[4] = {1, 2, 3, 4};
    assert_memory_equal(const_data(g, "w"), want, sizeof want);
    lb_graph_free(g);
    lb_diag_free(&d);
  }
}

static void test_external_refused(void **state) {
  (void)state;
  char abs_path[160];
  snprintf(abs_path, sizeof abs_path, "%s/weights.bin", ext_dir);
  expect_external_error(abs_path, "8", "16", LB_ERR_INVALID, "is an absolute path");
  expect_external_error("../weights.bin", NULL, NULL, LB_ERR_INVALID, "leaves the model's folder");
  expect_external_error("sub/../../x.bin", NULL, NULL, LB_ERR_INVALID, "leaves the model's folder");
  expect_external_error("escape.bin", NULL, NULL, LB_ERR_INVALID, "resolves outside the model's folder");
  expect_external_error("weights.bin", "24", "16", LB_ERR_INVALID, "too short for offset 24");
  expect_external_error("weights.bin", "0", "12", LB_ERR_INVALID, "length 12 does not match");
  expect_external_error("weights.bin", "x1", NULL, LB_ERR_INVALID, "bad external data offset");
  expect_external_error("nothere.bin", NULL, NULL, LB_ERR_IO, "cannot open external data");
  expect_external_error("", NULL, NULL, LB_ERR_INVALID, "has no location");
  expect_external_error("sub", NULL, NULL, LB_ERR_IO, "not a regular file");
  /* from a buffer without a folder */
  struct mb *m = mb_new(17);
  Onnx__TensorProto *t = mb_tensor(m, "w", T_F32, "4");
  add_external(m, t, "weights.bin", NULL, NULL);
  mb_add_init(m, t);
  mb_output(m, "w");
  load_fails(m, NULL, LB_ERR_INVALID, "not loaded from a folder");
}

/* ---- Constant nodes ------------------------------------------------------------------ */
static void test_constant_forms(void **state) {
  (void)state;
  struct mb *m = mb_new(17);
  Onnx__NodeProto *n = mb_node(m, "Constant", "c0", "", "t");
  const float tv[2] = {1, 2};
  mb_attr_t(m, n, "value", mb_raw(m, "", T_F32, "2", tv, sizeof tv));
  mb_attr_f(m, mb_node(m, "Constant", "c1", "", "vf"), "value_float", 0.5f);
  mb_attr_floats(m, mb_node(m, "Constant", "c2", "", "vfs"), "value_floats", 3,
                 (const float[]){1, 2, 3});
  mb_attr_i(m, mb_node(m, "Constant", "c3", "", "vi"), "value_int", -7);
  mb_attr_ints(m, mb_node(m, "Constant", "c4", "", "vis"), "value_ints", 2, INTS(4, 5));
  const char *outs[] = {"t", "vf", "vfs", "vi", "vis"};
  for (int i = 0; i < 5; i++) mb_output(m, outs[i]);
  struct lb_graph *g = load_ok(m, NULL);
  assert_int_equal(g->n_nodes, 5);
  assert_int_equal(count_op(g, LB_OP_CONST), 5);
  assert_memory_equal(const_data(g, "t"), tv, sizeof tv);
  assert_true(*(const float *)const_data(g, "vf") == 0.5f);
  assert_int_equal(lb_graph_find_value(g, "vf")->type.shape.rank, 0);
  assert_int_equal(lb_graph_find_value(g, "vf")->type.dtype, LB_DTYPE_F32);
  assert_memory_equal(const_data(g, "vfs"), ((const float[]){1, 2, 3}), 12);
  assert_int_equal(*(const int64_t *)const_data(g, "vi"), -7);
  assert_int_equal(lb_graph_find_value(g, "vi")->type.dtype, LB_DTYPE_I64);
  assert_memory_equal(const_data(g, "vis"), INTS(4, 5), 16);
  assert_shape(lb_graph_find_value(g, "vis"), 1, INTS(2));
  lb_graph_free(g);
}

/* ---- graph order ---------------------------------------------------------------------- */
static void test_cycle(void **state) {
  (void)state;
  struct mb *m = mb_new(17);
  mb_input(m, "x", T_F32, "2");
  mb_node(m, "Add", "a", "x,c", "b");
  mb_node(m, "Relu", "r", "b", "c");
  mb_output(m, "c");
  load_fails(m, NULL, LB_ERR_INVALID, "the graph has a cycle: 2 nodes wait on each other's "
                                      "outputs: \"a\" (Add), \"r\" (Relu)");
  m = mb_new(17);
  mb_input(m, "x", T_F32, "2");
  mb_node(m, "Add", "self", "x,s", "s");
  mb_output(m, "s");
  load_fails(m, NULL, LB_ERR_INVALID, "cycle");
}

static void test_undefined_input(void **state) {
  (void)state;
  struct mb *m = mb_new(17);
  mb_input(m, "x", T_F32, "2");
  mb_node(m, "Add", "a", "x,nowhere", "b");
  mb_output(m, "b");
  load_fails(m, NULL, LB_ERR_INVALID, "node \"a\" (Add): error: input \"nowhere\" is not defined");
  m = mb_new(17);
  mb_input(m, "x", T_F32, "2");
  mb_node(m, "Relu", "a", "x", "y");
  mb_node(m, "Relu", "b", "x", "y");
  mb_output(m, "y");
  load_fails(m, NULL, LB_ERR_INVALID, "output \"y\" is already defined");
  m = tiny_relu();
  mb_output(m, "ghost");
  load_fails(m, NULL, LB_ERR_INVALID, "graph output \"ghost\" is not defined");
}

static void test_unsorted_nodes(void **state) {
  (void)state;
  struct mb *m = mb_new(17);
  mb_input(m, "x", T_F32, "2");
  mb_node(m, "Relu", "second", "a", "y");
  mb_node(m, "Neg", "first", "x", "a");
  mb_output(m, "y");
  struct lb_graph *g = load_ok(m, NULL);
  assert_int_equal(g->n_nodes, 2);
  assert_int_equal(g->nodes[0]->op, LB_OP_NEG);
  assert_int_equal(g->nodes[1]->op, LB_OP_RELU);
  lb_graph_free(g);
}

/* ---- --bind ------------------------------------------------------------------------------ */
static struct mb *reshape_by_input(void) {
  struct mb *m = mb_new(17);
  mb_input(m, "x", T_F32, "2,6");
  mb_input(m, "shape", T_I64, "2");
  mb_node(m, "Reshape", "/rs", "x,shape", "y");
  mb_output(m, "y");
  return m;
}

static void test_bind(void **state) {
  (void)state;
  load_fails(reshape_by_input(), NULL, LB_ERR_UNSUPPORTED,
             "model.onnx: error: input \"shape\" decides output shapes of node \"/rs\" (Reshape); "
             "bind its value with --bind shape=FILE");

  char dir[] = "/tmp/lb_fe_bind_XXXXXX";
  assert_non_null(mkdtemp(dir));
  /* .npy, version 1.0 */
  const char hdr[] = "{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }";
  uint8_t npy[144] = "\x93NUMPY\x01\x00";
  size_t hl = 128 - 10;
  npy[8] = (uint8_t)hl;
  memset(npy + 10, ' ', hl);
  memcpy(npy + 10, hdr, sizeof hdr - 1);
  npy[10 + hl - 1] = '\n';
  int64_t dims[2] = {3, -1};
  memcpy(npy + 128, dims, 16);
  write_file(dir, "shape.npy", npy, 144);
  /* TensorProto */
  Onnx__TensorProto t;
  onnx__tensor_proto__init(&t);
  int64_t tdims[1] = {2}, vals[2] = {4, 3};
  t.n_dims = 1;
  t.dims = tdims;
  t.has_data_type = 1;
  t.data_type = T_I64;
  t.n_int64_data = 2;
  t.int64_data = vals;
  uint8_t pb[64];
  size_t pl = onnx__tensor_proto__pack(&t, pb);
  write_file(dir, "shape.pb", pb, pl);
  int32_t vals32[2] = {4, 3};
  t.data_type = T_I32;
  t.n_int64_data = 0;
  t.n_int32_data = 2;
  t.int32_data = vals32;
  pl = onnx__tensor_proto__pack(&t, pb);
  write_file(dir, "bad.pb", pb, pl);

  char path[128];
  snprintf(path, sizeof path, "%s/shape.npy", dir);
  struct lb_input_binding b = {"shape", path};
  struct lb_onnx_options o = {.binds = &b, .n_binds = 1};
  struct lb_graph *g = load_ok(reshape_by_input(), &o);
  assert_int_equal(g->n_inputs, 1);
  assert_string_equal(g->inputs[0]->name, "x");
  assert_shape(g->outputs[0], 2, INTS(3, 4));
  lb_graph_free(g);

  snprintf(path, sizeof path, "%s/shape.pb", dir);
  g = load_ok(reshape_by_input(), &o);
  assert_shape(g->outputs[0], 2, INTS(4, 3));
  lb_graph_free(g);

  snprintf(path, sizeof path, "%s/bad.pb", dir);
  load_fails(reshape_by_input(), &o, LB_ERR_USAGE, "the file holds i32[2], the input is declared i64[2]");
  b.name = "nosuch";
  load_fails(reshape_by_input(), &o, LB_ERR_USAGE, "--bind nosuch: the model has no graph input");

  const char *names[] = {"shape.npy", "shape.pb", "bad.pb"};
  for (int i = 0; i < 3; i++) {
    snprintf(path, sizeof path, "%s/%s", dir, names[i]);
    unlink(path);
  }
  rmdir(dir);
}

static void test_data_dependent(void **state) {
  (void)state;
  struct mb *m = mb_new(17);
  mb_input(m, "x", T_F32, "2,6");
  mb_input(m, "s", T_F32, "2");
  Onnx__NodeProto *c = mb_node(m, "Cast", "cast", "s", "si");
  mb_attr_i(m, c, "to", T_I64);
  mb_node(m, "Reshape", "/rs", "x,si", "y");
  mb_output(m, "y");
  struct lb_graph *g = NULL;
  struct lb_diag d;
  assert_int_equal(load_mb(m, NULL, &g, &d), LB_ERR_UNSUPPORTED);
  mb_free(m);
  assert_non_null(strstr(d.text, "node \"/rs\" (Reshape): error: its shape (input 1, \"si\") is "
                                 "data-dependent"));
  assert_non_null(strstr(d.text, "--bind s=FILE"));
  lb_diag_free(&d);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_random_bytes),
      cmocka_unit_test(test_truncated),
      cmocka_unit_test(test_truncated_file),
      cmocka_unit_test(test_ok_minimal),
      cmocka_unit_test(test_missing_opset),
      cmocka_unit_test(test_opset_too_new),
      cmocka_unit_test(test_unsupported_listing),
      cmocka_unit_test(test_subgraph_depth),
      cmocka_unit_test(test_unbound_dims),
      cmocka_unit_test(test_dims_bound),
      cmocka_unit_test(test_dim_errors),
      cmocka_unit_test(test_storage_forms),
      cmocka_unit_test(test_storage_errors),
      cmocka_unit_test_setup_teardown(test_external_ok, ext_setup, ext_teardown),
      cmocka_unit_test_setup_teardown(test_external_refused, ext_setup, ext_teardown),
      cmocka_unit_test(test_constant_forms),
      cmocka_unit_test(test_cycle),
      cmocka_unit_test(test_undefined_input),
      cmocka_unit_test(test_unsorted_nodes),
      cmocka_unit_test(test_bind),
      cmocka_unit_test(test_data_dependent),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
