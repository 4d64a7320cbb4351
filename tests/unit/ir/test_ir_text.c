/* Unit tests of the IR text form (ir/print.c, ir/parse.c) and the verifier. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "ir/ir.h"

/* ---- helpers ---------------------------------------------------------------------- */
static struct lb_graph *parse_ok(const char *text) {
  struct lb_diag d;
  lb_diag_init(&d, NULL);
  struct lb_graph *g = NULL;
  enum lb_status st = lb_graph_parse(text, strlen(text), "t.lbir", &g, &d);
  if (st != LB_OK) fprintf(stderr, "unexpected parse error:\n%s", d.text ? d.text : "");
  assert_int_equal(st, LB_OK);
  assert_non_null(g);
  lb_diag_free(&d);
  return g;
}

/* Parses text, prints it and checks the output is text itself, then that the
 * printed form parses and prints the same again. */
static void roundtrip_opt(const char *text, const struct lb_print_options *opt, bool verify) {
  struct lb_graph *g = parse_ok(text);
  char *s = lb_graph_print_string(g, opt);
  if (strcmp(s, text) != 0) fprintf(stderr, "want:\n%s\ngot:\n%s\n", text, s);
  assert_string_equal(s, text);
  struct lb_diag d;
  lb_diag_init(&d, NULL);
  enum lb_status st = verify ? lb_graph_verify(g, &d) : LB_OK;
  if (st != LB_OK) fprintf(stderr, "verify:\n%s", d.text);
  assert_int_equal(st, LB_OK);
  lb_diag_free(&d);
  free(s);
  lb_graph_free(g);
}

/* Round trip, and the graph passes the verifier. */
static void roundtrip(const char *text) { roundtrip_opt(text, &lb_print_defaults, true); }
/* Round trip of a graph that is well formed text but breaks IR rules on purpose. */
static void roundtrip_text_only(const char *text) { roundtrip_opt(text, &lb_print_defaults, false); }

/* Expects parsing to fail with a message containing `want` (and a caret line). */
static void parse_err(const char *text, const char *want) {
  struct lb_diag d;
  lb_diag_init(&d, NULL);
  struct lb_graph *g = (struct lb_graph *)1;
  enum lb_status st = lb_graph_parse(text, strlen(text), "t.lbir", &g, &d);
  if (st == LB_OK || !d.text || !strstr(d.text, want))
    fprintf(stderr, "input:\n%s\nwant error containing: %s\ngot: %s\n", text, want,
            d.text ? d.text : "(none)");
  assert_int_not_equal(st, LB_OK);
  assert_null(g);
  assert_non_null(d.text);
  assert_non_null(strstr(d.text, want));
  assert_non_null(strstr(d.text, "^\n"));
  lb_diag_free(&d);
}

static char *verify_text(const struct lb_graph *g, enum lb_status *st) {
  struct lb_diag d;
  lb_diag_init(&d, "g");
  *st = lb_graph_verify(g, &d);
  char *t = d.text ? strdup(d.text) : strdup("");
  lb_diag_free(&d);
  return t;
}

static struct lb_type T(enum lb_dtype dt, int rank, ...) {
  struct lb_type t = {.dtype = dt, .shape.rank = rank};
  va_list ap;
  va_start(ap, rank);
  for (int i = 0; i < rank; i++) t.shape.dims[i] = va_arg(ap, int64_t);
  va_end(ap);
  return t;
}

/* ---- builder (ir/graph.c) ------------------------------------------------------------ */
static void test_builder_basics(void **state) {
  (void)state;
  struct lb_graph *g = lb_graph_new("b");
  struct lb_value *x = lb_value_new(g, "x", T(LB_DTYPE_F32, 1, (int64_t)4));
  lb_graph_add_input(g, x);
  struct lb_value *in2[2] = {x, x};
  struct lb_node *a = lb_graph_add_node(g, LB_OP_ADD, "n", in2, 2, NULL, 1);
  assert_string_equal(a->outputs[0]->name, "n"); /* named after the node */
  a->outputs[0]->type = x->type;
  struct lb_node *b = lb_graph_add_node(g, LB_OP_ADD, "n", in2, 2, NULL, 1);
  b->outputs[0]->type = x->type;
  assert_string_equal(b->outputs[0]->name, "n.1"); /* unique */
  assert_string_equal(lb_graph_unique_name(g, "n"), "n.2");
  assert_ptr_equal(lb_graph_find_value(g, "n.1"), b->outputs[0]);

  lb_node_set_attr_int(g, a, "zeta", 1);
  lb_node_set_attr_float(g, a, "alpha", 0.5);
  lb_node_set_attr_string(g, a, "mid", "s");
  lb_node_set_attr_int(g, a, "alpha", 2); /* replaces, keeps order */
  assert_int_equal(a->n_attrs, 3);
  assert_string_equal(a->attrs[0].name, "alpha");
  assert_int_equal(a->attrs[0].kind, LB_ATTR_INT);
  assert_string_equal(a->attrs[1].name, "mid");
  assert_string_equal(a->attrs[2].name, "zeta");
  assert_int_equal(lb_node_attr_int(a, "alpha", 0), 2);
  lb_node_remove_attr(a, "mid");
  assert_string_equal(a->attrs[1].name, "zeta");
  lb_node_remove_attr(a, "alpha");
  lb_node_remove_attr(a, "zeta");
  assert_int_equal(a->n_attrs, 0); /* 'add' takes no attributes: verify below */

  lb_graph_add_output(g, b->outputs[0]);
  lb_graph_replace_uses(g, b->outputs[0], a->outputs[0]);
  assert_ptr_equal(g->outputs[0], a->outputs[0]);
  b->dead = true;
  float c[2] = {1, 2};
  struct lb_type ct = T(LB_DTYPE_F32, 1, (int64_t)2);
  struct lb_node *cn = lb_graph_add_const(g, "c", &ct, c);
  cn->dead = true;
  assert_int_equal(g->n_blobs, 1);
  lb_graph_compact(g);
  assert_int_equal(g->n_nodes, 1);
  assert_int_equal(g->n_blobs, 0);

  enum lb_status st;
  char *t = verify_text(g, &st);
  assert_int_equal(st, LB_OK);
  free(t);
  lb_graph_free(g);
}

/* ---- printer ------------------------------------------------------------------------ */
static void test_print_hand_built(void **state) {
  (void)state;
  struct lb_graph *g = lb_graph_new("tiny");
  g->opset = 17;
  struct lb_value *x = lb_value_new(g, "x", T(LB_DTYPE_F32, 2, (int64_t)1, (int64_t)4));
  lb_graph_add_input(g, x);
  struct lb_value *ids = lb_value_new(g, "onnx::ids_0", T(LB_DTYPE_I64, 1, (int64_t)1));
  lb_graph_add_input(g, ids);
  float w[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  struct lb_type wt = T(LB_DTYPE_F32, 2, (int64_t)4, (int64_t)2);
  struct lb_node *wn = lb_graph_add_const(g, "w", &wt, w);
  float b[2] = {0.5f, -1};
  struct lb_type bt = T(LB_DTYPE_F32, 1, (int64_t)2);
  lb_graph_add_const(g, "b", &bt, b);
  struct lb_value *mm_in[2] = {x, wn->outputs[0]};
  const char *mm_name[1] = {"mm"};
  struct lb_node *mm = lb_graph_add_node(g, LB_OP_MATMUL, "/fc/MatMul", mm_in, 2, mm_name, 1);
  mm->outputs[0]->type = T(LB_DTYPE_F32, 2, (int64_t)1, (int64_t)2);
  struct lb_value *fm_in[3] = {x, wn->outputs[0], NULL};
  const char *y_name[1] = {"y"};
  struct lb_node *fm = lb_graph_add_node(g, LB_OP_FUSED_MATMUL, "", fm_in, 3, y_name, 1);
  lb_node_set_attr_string(g, fm, "act", "relu");
  lb_node_set_attr_int(g, fm, "transB", 0);
  fm->outputs[0]->type = T(LB_DTYPE_F32, 2, (int64_t)1, (int64_t)2);
  fm->outputs[0]->mem_offset = 0;
  const char *q_name[1] = {"q"};
  struct lb_node *cast = lb_graph_add_node(g, LB_OP_CAST, "", &fm->outputs[0], 1, q_name, 1);
  lb_node_set_attr_string(g, cast, "to", "i8");
  cast->outputs[0]->type = T(LB_DTYPE_I8, 2, (int64_t)1, (int64_t)2);
  struct lb_qparams *qp = lb_arena_alloc(&g->arena, sizeof *qp);
  *qp = (struct lb_qparams){.bits = 8, .axis = -1, .symmetric = true, .n = 1};
  qp->scales = lb_arena_alloc(&g->arena, sizeof(float));
  qp->scales[0] = 0.023529412f;
  cast->outputs[0]->qparams = qp;
  lb_graph_add_output(g, mm->outputs[0]);
  lb_graph_add_output(g, cast->outputs[0]);
  g->activations_size = 64;

  struct lb_print_options opt = {LB_PRINT_BLOBS_FULL, 4};
  char *s = lb_graph_print_string(g, &opt);
  const char *want =
      "graph @tiny(%x: f32[1,4], %\"onnx::ids_0\": i64[1]) -> (f32[1,2], i8[1,2]) opset 17 "
      "activations 64 {\n"
      "  %w = const f32[4,2] blob<\"w\">\n"
      "  %b = const f32[2] dense<[0.5, -1]>\n"
      "  %mm = matmul(%x, %w) : f32[1,2] loc(\"/fc/MatMul\")\n"
      "  %y = fused_matmul(%x, %w, _) {act=\"relu\", transB=0} : f32[1,2] mem=0\n"
      "  %q = cast(%y) {to=\"i8\"} : i8[1,2] q<bits=8, axis=-1, group=0, sym, scales=[0.023529412]>\n"
      "  return %mm, %q\n"
      "}\n"
      "blobs {\n"
      "  \"w\": f32[4,2] fnv1a=0x4b9e5bd2d1a5f5a5 "
      "base64\"AACAPwAAAEAAAEBAAACAQAAAoEAAAMBAAADgQAAAAEE=\"\n"
      "}\n";
  /* The hash is whatever lb_hash_bytes says: splice it in. */
  char hash[20];
  snprintf(hash, sizeof hash, "%016llx", (unsigned long long)lb_hash_bytes(w, sizeof w));
  char *want2 = strdup(want);
  memcpy(strstr(want2, "fnv1a=0x") + 8, hash, 16);
  /* base64 of 32 bytes has one '=' */
  if (strcmp(s, want2) != 0) fprintf(stderr, "got:\n%s\nwant:\n%s\n", s, want2);
  assert_string_equal(s, want2);
  roundtrip_opt(s, &opt, true);

  /* The same through a FILE*. */
  char *mem = NULL;
  size_t memlen = 0;
  FILE *f = open_memstream(&mem, &memlen);
  lb_graph_print(g, f, &opt);
  fclose(f);
  assert_string_equal(mem, s);
  free(mem);

  /* Elided: the trailer keeps the hash, and the parsed blob has no data. */
  struct lb_print_options el = {LB_PRINT_BLOBS_ELIDED, 4};
  char *e = lb_graph_print_string(g, &el);
  assert_non_null(strstr(e, "  \"w\": f32[4,2] fnv1a=0x"));
  assert_non_null(strstr(e, " elided\n}\n"));
  struct lb_graph *ge = parse_ok(e);
  assert_int_equal(ge->n_blobs, 2);
  assert_string_equal(ge->blobs[0].name, "w");
  assert_null(ge->blobs[0].data);
  assert_int_equal(ge->blobs[0].size, 32);
  assert_true(ge->blobs[0].hash == lb_hash_bytes(w, sizeof w));
  char *e2 = lb_graph_print_string(ge, &el);
  assert_string_equal(e, e2);
  /* Elided data can be printed in FULL mode too: it stays elided. */
  char *e3 = lb_graph_print_string(ge, &opt);
  assert_non_null(strstr(e3, " elided\n"));
  enum lb_status st;
  char *vt = verify_text(ge, &st);
  assert_int_equal(st, LB_OK);
  free(vt);
  free(e);
  free(e2);
  free(e3);
  lb_graph_free(ge);
  free(want2);
  free(s);
  lb_graph_free(g);
}

static void test_print_float_forms(void **state) {
  (void)state;
  struct lb_graph *g = lb_graph_new("f");
  struct lb_value *x = lb_value_new(g, "x", T(LB_DTYPE_F32, 0));
  lb_graph_add_input(g, x);
  struct lb_node *n = lb_graph_add_node(g, LB_OP_LEAKY_RELU, "", &x, 1, NULL, 1);
  n->outputs[0]->type = x->type;
  double fs[] = {1.0, 0.1, 1e20, -0.0, 1.0 / 3, INFINITY, -INFINITY, NAN, 5e-324};
  lb_node_set_attr_floats(g, n, "fl", fs, 9);
  lb_node_set_attr_float(g, n, "one", 1.0);
  lb_graph_add_output(g, n->outputs[0]);
  char *s = lb_graph_print_string(g, NULL);
  assert_non_null(strstr(s, "fl=[1.0, 0.1, 1e+20, -0.0, 0.3333333333333333, inf, -inf, nan, 5e-324], "
                            "one=1.0}"));
  free(s);
  lb_graph_free(g);
}

/* ---- round trips --------------------------------------------------------------------- */
static void test_roundtrip_attrs(void **state) {
  (void)state;
  /* identity takes no attributes: text only. */
  roundtrip_text_only("graph @attrs(%x: f32[2,3]) -> (f32[2,3]) opset 17 {\n"
            "  %y = identity(%x) {e_f=-2.5e-07, f=1.0, fs=[1.0, 2.5, -0.0, inf, nan], "
            "fs0=floats[], i=-9223372036854775808, is=[1, -2, 9223372036854775807], is0=ints[], "
            "s=\"a\\\"b\\\\c\\nd\\te\\x01\\xff\", ss=[\"a\", \"\", \"%s%n\"], ss0=strings[], "
            "t=tensor<f32[2] blob<\"tb\">>, t2=tensor<i64[] blob<\"ti\">>} : f32[2,3]\n"
            "  return %y\n"
            "}\n"
            "blobs {\n"
            "  \"tb\": f32[2] fnv1a=0x097a69ee2da301d8 base64\"AACAPwAAAEA=\"\n"
            "  \"ti\": i64[] fnv1a=0x4bd7a317074c5b62 base64\"BwAAAAAAAAA=\"\n"
            "}\n");
}

static void test_roundtrip_dtypes(void **state) {
  (void)state;
  roundtrip("graph @dtypes() -> (f32[20]) opset 0 {\n"
            "  %f32 = const f32[7] dense<[0.1, -0, inf, -inf, nan, nan:0xffc00001, 1e-45]>\n"
            "  %f64 = const f64[4] dense<[0.1, -0, nan:0x7ff8000000000001, 1e+300]>\n"
            "  %f16 = const f16[2] dense<[0x3c00, 0xfc00]>\n"
            "  %bf16 = const bf16[2] dense<[0x3f80, 0x7fc1]>\n"
            "  %i8 = const i8[2] dense<[-128, 127]>\n"
            "  %i16 = const i16[2] dense<[-32768, 32767]>\n"
            "  %i32 = const i32[2] dense<[-2147483648, 2147483647]>\n"
            "  %i64 = const i64[2] dense<[-9223372036854775808, 9223372036854775807]>\n"
            "  %u8 = const u8[2] dense<[0, 255]>\n"
            "  %u16 = const u16[1] dense<[65535]>\n"
            "  %u32 = const u32[1] dense<[4294967295]>\n"
            "  %u64 = const u64[1] dense<[18446744073709551615]>\n"
            "  %bool = const bool[2,1] dense<[true, false]>\n"
            "  %empty = const f32[0,3] dense<[]>\n"
            "  %scalar = const i32[] dense<[7]>\n"
            "  %big = const f32[20] blob<\"big\">\n"
            "  return %big\n"
            "}\n"
            "blobs {\n"
            "  \"big\": f32[20] fnv1a=0xf14b84b8290b8965 base64\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"\n"
            "}\n");
  /* The bit patterns survive: check a few. */
  struct lb_graph *g = parse_ok("graph @d() -> () {\n"
                                "  %a = const f32[3] dense<[nan:0xffc00001, -0, 1.40129846e-45]>\n"
                                "  return\n}\n");
  const uint32_t *bits = g->blobs[0].data;
  assert_int_equal(bits[0], 0xffc00001u);
  assert_int_equal(bits[1], 0x80000000u);
  assert_int_equal(bits[2], 1u);
  lb_graph_free(g);
}

/* Every dtype also in blob form, with random bytes (NaN payloads included). */
static void test_roundtrip_blobs_all_dtypes(void **state) {
  (void)state;
  struct lb_graph *g = lb_graph_new("blobs");
  srand(7);
  for (int t = 1; t < LB_DTYPE_COUNT; t++) {
    struct lb_type ty = T((enum lb_dtype)t, 2, (int64_t)3, (int64_t)5);
    size_t size = (size_t)lb_type_nbytes(&ty);
    unsigned char *data = malloc(size);
    for (size_t i = 0; i < size; i++) data[i] = (unsigned char)rand();
    if (t == LB_DTYPE_BOOL)
      for (size_t i = 0; i < size; i++) data[i] &= 1;
    lb_graph_add_const(g, lb_dtype_traits[t].name, &ty, data);
    char dense_name[32];
    snprintf(dense_name, sizeof dense_name, "d_%s", lb_dtype_traits[t].name);
    lb_graph_add_const(g, dense_name, &ty, data);
    free(data);
  }
  lb_graph_add_output(g, g->nodes[0]->outputs[0]);
  /* Print the first of each pair as a blob, the second dense: one graph,
   * inline limit 15 (= numel), then blob-only with limit 0. */
  for (int limit = 0; limit <= 15; limit += 15) {
    struct lb_print_options opt = {LB_PRINT_BLOBS_FULL, limit};
    char *s = lb_graph_print_string(g, &opt);
    struct lb_graph *h = parse_ok(s);
    char *s2 = lb_graph_print_string(h, &opt);
    assert_string_equal(s, s2);
    assert_int_equal(h->n_nodes, g->n_nodes);
    for (int32_t i = 0; i < g->n_nodes; i++) {
      const struct lb_blob *a = &g->blobs[g->nodes[i]->blob], *b = &h->blobs[h->nodes[i]->blob];
      assert_int_equal(a->size, b->size);
      assert_memory_equal(a->data, b->data, a->size);
    }
    free(s);
    free(s2);
    lb_graph_free(h);
  }
  /* Bool bytes other than 0/1 cannot be written as true/false: they stay a blob. */
  unsigned char odd[2] = {0, 2};
  struct lb_type bt = T(LB_DTYPE_BOOL, 1, (int64_t)2);
  lb_graph_add_const(g, "odd", &bt, odd);
  char *s = lb_graph_print_string(g, NULL);
  assert_non_null(strstr(s, "%odd = const bool[2] blob<\"odd\">"));
  free(s);
  lb_graph_free(g);
}

static void test_roundtrip_names(void **state) {
  (void)state;
  roundtrip("graph @\"my model%s\"(%\"a b\": f32[1], %\"%n%s\": f32[1], %x.y-z/0_: f32[1]) -> "
            "(f32[1], f32[1]) opset 13 {\n"
            "  %\"\\\"q\\\"\\\\\" = add(%\"a b\", %\"%n%s\") : f32[1] loc(\"%s%n\\n\\x7f\")\n"
            "  %\"caf\\xc3\\xa9\" = mul(%\"\\\"q\\\"\\\\\", %x.y-z/0_) : f32[1]\n"
            "  return %\"\\\"q\\\"\\\\\", %\"caf\\xc3\\xa9\"\n"
            "}\n");
  /* A dense blob named like a trailer blob is renamed; dumps stay unambiguous. */
  struct lb_graph *g = parse_ok("graph @g() -> (f32[1], f32[1]) {\n"
                                "  %w = const f32[1] dense<[1]>\n"
                                "  %v = const f32[1] blob<\"w\">\n"
                                "  return %w, %v\n}\n"
                                "blobs {\n  \"w\": f32[1] base64\"AAAAQA==\"\n}\n");
  assert_string_equal(g->blobs[0].name, "w.1");
  assert_string_equal(g->blobs[1].name, "w");
  struct lb_print_options opt = {LB_PRINT_BLOBS_FULL, 0};
  char *s = lb_graph_print_string(g, &opt);
  lb_graph_free(g);
  g = parse_ok(s);
  free(s);
  lb_graph_free(g);
}

static void test_roundtrip_qparams_mem(void **state) {
  (void)state;
  roundtrip("graph @q(%x: f32[2,4] mem=128) -> (i8[2,4], u8[2,4]) opset 21 activations 4096 {\n"
            "  %s = const f32[] dense<[0.5]> mem=0\n"
            "  %a, %b = split(%x) {axis=0, split=[1, 1]} : f32[1,4] mem=0, f32[1,4] mem=64\n"
            "  %zp = const i8[] dense<[0]>\n"
            "  %q = quantize_linear(%x, %s, %zp) : i8[2,4] q<bits=8, axis=0, group=0, sym, "
            "scales=[0.023529412, nan:0x7fc00002]> mem=256\n"
            "  %u = quantize_linear(%x, %s, _) : u8[2,4] q<bits=4, axis=1, group=32, asym, unsigned, "
            "scales=[1, 2, 3, 4], zps=[0, 8, 15, -1]>\n"
            "  %e = identity(%x) : f32[2,4] q<bits=2, axis=-1, group=0, asym, scales=[], zps=[]>\n"
            "  return %q, %u\n"
            "}\n");
}

/* lb_graph_clone: the copy prints exactly like the original, and owns its data. */
static void test_clone_prints_the_same(void **state) {
  (void)state;
  const char *text =
      "graph @q(%x: f32[2,4] q<bits=8, axis=-1, group=0, asym, unsigned, scales=[0.5], zps=[3]> mem=128) "
      "-> (f32[2,3]) opset 21 activations 4096 {\n"
      "  %w = const i8[4,3] dense<[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]> "
      "q<bits=8, axis=1, group=0, sym, scales=[1, 2, 3]>\n"
      "  %y = qmatmul(%x, %w) {a_quant=\"static\", act=\"relu\"} : f32[2,3] mem=0 loc(\"mm\")\n"
      "  return %y\n"
      "}\n";
  struct lb_graph *g = NULL;
  struct lb_diag d;
  lb_diag_init(&d, NULL);
  assert_int_equal(lb_graph_parse(text, strlen(text), "t.lbir", &g, &d), LB_OK);
  struct lb_graph *c = lb_graph_clone(g);
  char *a = lb_graph_print_string(g, &lb_print_defaults);
  lb_graph_free(g); /* the clone must not borrow anything */
  char *b = lb_graph_print_string(c, &lb_print_defaults);
  assert_string_equal(a, b);
  free(a);
  free(b);
  lb_graph_free(c);
  lb_diag_free(&d);
}

static void test_roundtrip_lenient_input(void **state) {
  (void)state;
  /* Comments, free spacing, unsorted attributes, a bare result type: all accepted. */
  struct lb_graph *g = parse_ok("# a comment\ngraph @g(%x:f32[2]) -> f32[2] {  # trailing\n"
                                "  %y = leaky_relu( %x ) { beta = 1 , alpha = 0.5 } :f32[ 2 ]\n"
                                "return %y }");
  char *s = lb_graph_print_string(g, NULL);
  assert_string_equal(s, "graph @g(%x: f32[2]) -> (f32[2]) opset 0 {\n"
                         "  %y = leaky_relu(%x) {alpha=0.5, beta=1} : f32[2]\n"
                         "  return %y\n"
                         "}\n");
  free(s);
  lb_graph_free(g);
}

/* A graph with a 15 MB weight prints and parses in well under a second. */
static void test_big_blob_speed(void **state) {
  (void)state;
  struct lb_graph *g = lb_graph_new("big");
  struct lb_type t = T(LB_DTYPE_F32, 2, (int64_t)1024, (int64_t)2816); /* 11.5 MB -> 15.4 MB b64 */
  size_t size = (size_t)lb_type_nbytes(&t);
  float *w = malloc(size);
  for (size_t i = 0; i < size / 4; i++) w[i] = (float)i * 0.001f;
  struct lb_node *c = lb_graph_add_const(g, "w", &t, w);
  lb_graph_add_output(g, c->outputs[0]);
  clock_t t0 = clock();
  char *s = lb_graph_print_string(g, NULL);
  clock_t t1 = clock();
  struct lb_graph *h = parse_ok(s);
  clock_t t2 = clock();
  fprintf(stderr, "# 15 MB: print %.3fs, parse %.3fs (%zu bytes)\n",
          (double)(t1 - t0) / CLOCKS_PER_SEC, (double)(t2 - t1) / CLOCKS_PER_SEC, strlen(s));
  assert_true(strlen(s) > 15000000);
  assert_memory_equal(h->blobs[0].data, w, size);
  assert_true((double)(t2 - t1) / CLOCKS_PER_SEC < 3.0); /* generous: sanitizer builds */
  free(s);
  free(w);
  lb_graph_free(h);
  lb_graph_free(g);
}

/* ---- parser errors --------------------------------------------------------------------- */
#define HDR "graph @g(%x: f32[2]) -> (f32[2]) {\n"

static void test_parse_errors(void **state) {
  (void)state;
  parse_err(HDR "  %y = addd(%x, %x) : f32[2]\n  return %y\n}\n",
            "t.lbir:2:8: error: unknown op 'addd'\n  %y = addd(%x, %x) : f32[2]\n       ^\n");
  parse_err(HDR "  %y = add(%x, %x) : f33[2]\n  return %y\n}\n", "2:22: error: unknown dtype 'f33'");
  parse_err(HDR "  %y = add(%x, %z) : f32[2]\n  return %y\n}\n", "2:16: error: use of undefined value %z");
  parse_err(HDR "  %y = add(%x, %y) : f32[2]\n  return %y\n}\n", "use of undefined value %y");
  parse_err(HDR "  %x = add(%x, %x) : f32[2]\n  return %x\n}\n", "2:3: error: redefinition of %x");
  parse_err(HDR "  %y, %y = split(%x) {axis=0, split=[1, 1]} : f32[1], f32[1]\n  return %y\n}\n",
            "2:7: error: redefinition of %y");
  parse_err(HDR "  %y = add(%x, %x, %x) : f32[2]\n  return %y\n}\n", "'add' takes 2 inputs, got 3");
  parse_err(HDR "  %y = clip() : f32[2]\n  return %y\n}\n", "'clip' takes 1 to 3 inputs, got 0");
  parse_err(HDR "  %y = concat() {axis=0} : f32[2]\n  return %y\n}\n",
            "'concat' takes at least 1 input, got 0");
  parse_err(HDR "  %y, %z = add(%x, %x) : f32[2], f32[2]\n  return %y\n}\n",
            "'add' takes 1 output, got 2");
  parse_err(HDR "  %y = add(%x, %x) : f32[2], f32[2]\n  return %y\n}\n", "1 output but 2 types");
  parse_err(HDR "  %y = identity(%x) : f32[1,1,1,1,1,1,1,1,1]\n  return %y\n}\n",
            "rank exceeds the maximum of 8");
  parse_err(HDR "  %y = identity(%x) : f32[2,-1]\n  return %y\n}\n", "2:29: error: negative dimension -1");
  parse_err(HDR "  %y = identity(%x) : f32[1048576,1048576]\n  return %y\n}\n",
            "tensor is larger than 2^40 bytes");
  parse_err(HDR "  %y = identity(%x) : i8[9223372036854775807,9223372036854775807]\n  return %y\n}\n",
            "tensor is larger than 2^40 bytes");
  parse_err(HDR "  %y = identity(%x) : f32[99999999999999999999]\n  return %y\n}\n",
            "integer out of range");
  parse_err(HDR "  %w = const f32[2] blob<\"w\">\n  return %w\n}\nblobs {\n"
                "  \"w\": f32[2] base64\"AAAAAAAAAAAAAAAA\"\n}\n",
            "base64 data holds 12 bytes but f32[2] needs 8");
  parse_err(HDR "  %w = const f32[2] blob<\"w\">\n  return %w\n}\nblobs {\n"
                "  \"w\": f32[2] base64\"AAAAAAAAAAA\"\n}\n",
            "base64 length 11 is not a multiple of 4");
  parse_err(HDR "  %w = const f32[2] blob<\"w\">\n  return %w\n}\nblobs {\n"
                "  \"w\": f32[2] base64\"AAAA*AAAAAA=\"\n}\n",
            "invalid character in base64 data");
  parse_err(HDR "  %w = const f32[2] blob<\"w\">\n  return %w\n}\n",
            "2:21: error: unknown blob \"w\" (not in the blobs trailer)");
  parse_err(HDR "  %w = const f32[2] blob<\"w\">\n  return %w\n}\nblobs {\n"
                "  \"w\": f32[2] elided\n  \"w\": f32[2] elided\n}\n",
            "7:3: error: duplicate blob \"w\"");
  parse_err(HDR "  %w = const f32[2] blob<\"w\">\n  return %w\n}\nblobs {\n"
                "  \"w\": f32[2] fnv1a=0x0000000000000001 base64\"AAAAAAAAAAA=\"\n}\n",
            "data does not match fnv1a=0x0000000000000001");
  parse_err(HDR "  %w = const f32[2] blob<\"w\">\n  %v = const f32[3] blob<\"w\">\n  return %w\n}\n",
            "blob \"w\" holds 8 bytes but is used here as f32[3] (12 bytes)");
  parse_err(HDR "  %w = const f32[2] dense<[1, 2, 3]>\n  return %w\n}\n",
            "too many elements: f32[2] has 2");
  parse_err(HDR "  %w = const f32[2] dense<[1]>\n  return %w\n}\n", "dense has 1 elements but f32[2] needs 2");
  parse_err(HDR "  %w = const u8[1] dense<[256]>\n  return %w\n}\n", "256 is out of range for u8");
  parse_err(HDR "  %w = const f32[1] dense<[1e999]>\n  return %w\n}\n", "number out of range for f32");
  parse_err(HDR "  %w = const f32[1] dense<[nan:0x3f800000]>\n  return %w\n}\n", "is not a NaN");
  parse_err(HDR "  %y = identity(%x) {a=1, a=2} : f32[2]\n  return %y\n}\n", "duplicate attribute 'a'");
  parse_err(HDR "  %y = identity(%x) {a=[]} : f32[2]\n  return %y\n}\n", "an empty list needs its kind");
  parse_err(HDR "  %y = identity(%x) : f32[2]\n  return %y, %x\n}\n",
            "the header declares 1 result");
  parse_err(HDR "  %y = identity(%x) : f32[3]\n  return %y\n}\n",
            "return value %y is f32[3] but the header declares f32[2]");
  parse_err(HDR "  %y = identity(%x) : f32[2]\n}\n", "expected a statement or 'return', got '}'");
  parse_err(HDR "  %y = identity(%x) : f32[2] loc(\"abc)\n  return %y\n}\n", "unterminated string");
  parse_err(HDR "  %y = identity(%x) : f32[2] loc(\"a\\x00\")\n  return %y\n}\n", "cannot contain NUL");
  parse_err(HDR "  %y = identity(%x) : f32[2]\n  return %y\n}\ntrailing", "expected end of file");
  parse_err("", "1:1: error: expected 'graph', got end of file");
  parse_err("graph @g(%\"\": f32[1]) -> () {\n  return\n}\n", "empty value name");
  /* Names with format characters are data, never formats. */
  parse_err(HDR "  %y = add(%x, %\"%s%n%s\") : f32[2]\n  return %y\n}\n",
            "use of undefined value %\"%s%n%s\"");
  /* Long lines are shown in a window around the column. */
  char *long_line = malloc(100000);
  strcpy(long_line, "graph @g() -> () {\n  %w = const f32[1] dense<[");
  for (int i = 0; i < 5000; i++) strcat(long_line, "1, ");
  strcat(long_line, "x]>\n  return\n}\n");
  parse_err(long_line, "...");
  free(long_line);
}

/* Garbage never crashes the parser (run under ASan/UBSan in the sanitizer build). */
static void test_parse_garbage(void **state) {
  (void)state;
  const char *seed =
      "graph @g(%x: f32[2,3] q<bits=8, axis=0, group=0, asym, scales=[1, 2], zps=[0, 1]> mem=0)"
      " -> (f32[2,3]) opset 17 activations 9 {\n"
      "  %t = const f32[2] blob<\"tb\">\n"
      "  %d = const f16[2] dense<[0x3c00, 0x0001]>\n"
      "  %y = identity(%x) {f=1.0, fs=[1.0, nan], i=3, s=\"a\\x01\", t=tensor<f32[2] blob<\"tb\">>,"
      " ss=strings[]} : f32[2,3] loc(\"n\")\n"
      "  return %y\n}\nblobs {\n  \"tb\": f32[2] fnv1a=0x097a69ee2da301d8 base64\"AACAPwAAAEA=\"\n}\n";
  size_t n = strlen(seed);
  char *buf = malloc(n + 8);
  srand(1);
  for (int iter = 0; iter < 20000; iter++) {
    memcpy(buf, seed, n);
    size_t len = n;
    int edits = 1 + rand() % 4;
    for (int e = 0; e < edits; e++) {
      size_t at = (size_t)rand() % len;
      switch (rand() % 4) {
      case 0: buf[at] = (char)rand(); break;
      case 1: len = at; break;
      case 2: buf[at] = "%_\"[]{}<>,:=#\\0x-.\n"[rand() % 19]; break;
      default: memmove(buf + at, buf + at + 1, len - at - 1); len--; break;
      }
      if (len == 0) break;
    }
    struct lb_diag d;
    lb_diag_init(&d, NULL);
    struct lb_graph *g = NULL;
    if (lb_graph_parse(buf, len, "fuzz", &g, &d) == LB_OK) {
      struct lb_diag vd;
      lb_diag_init(&vd, NULL);
      lb_graph_verify(g, &vd);
      lb_diag_free(&vd);
      char *s = lb_graph_print_string(g, NULL);
      free(s);
      lb_graph_free(g);
    } else {
      assert_null(g);
      assert_non_null(d.text);
    }
    lb_diag_free(&d);
  }
  free(buf);
}

/* ---- verifier ----------------------------------------------------------------------------- */
static void test_verify_errors(void **state) {
  (void)state;
  /* Attributes: unknown, wrong kind, missing required, bad choice; all reported at once. */
  struct lb_graph *g = parse_ok(HDR
                                "  %a = softmax(%x) {bogus=1} : f32[2] loc(\"sm\")\n"
                                "  %b = leaky_relu(%a) {alpha=1} : f32[2]\n"
                                "  %c = cast(%b) {to=\"f31\"} : f32[2]\n"
                                "  %d = fused_matmul(%c, %c) {act=\"swish\"} : f32[2]\n"
                                "  %e = reshape(%d) : f32[2]\n"
                                "  return %e\n}\n");
  enum lb_status st;
  char *t = verify_text(g, &st);
  assert_int_equal(st, LB_ERR_INVALID);
  assert_non_null(strstr(t, "g: node \"sm\" (Softmax): error: %a = softmax: 'softmax' takes no attribute 'bogus'\n"));
  assert_non_null(strstr(t, "%a = softmax: missing required attribute 'axis'"));
  assert_non_null(strstr(t, "%b = leaky_relu: attribute 'alpha' must be a float, not an int"));
  assert_non_null(strstr(t, "%c = cast: 'to' is not a dtype: \"f31\""));
  assert_non_null(strstr(t, "%d = fused_matmul: unknown activation act=\"swish\""));
  assert_non_null(strstr(t, "%e = reshape: missing required attribute 'shape'"));
  free(t);

  /* Structure: use before def, two producers, counts, missing input, const blob size. */
  struct lb_node *a = g->nodes[0], *b = g->nodes[1];
  a->inputs[0] = b->outputs[0]; /* use before definition */
  struct lb_value *extra[3] = {g->inputs[0], g->inputs[0], g->inputs[0]};
  b->inputs = extra; /* 3 inputs for a unary op */
  b->n_inputs = 3;
  g->nodes[2]->inputs[0] = NULL; /* required input omitted */
  g->nodes[3]->outputs[0] = g->nodes[4]->outputs[0]; /* %e produced twice */
  float one = 1;
  struct lb_type ct = T(LB_DTYPE_F32, 0);
  struct lb_node *c = lb_graph_add_const(g, "k", &ct, &one);
  g->blobs[c->blob].size = 8;
  c->outputs[0]->type.dtype = LB_DTYPE_UNDEF;
  lb_graph_add_output(g, lb_value_new(g, "ghost", ct));
  t = verify_text(g, &st);
  assert_int_equal(st, LB_ERR_INVALID);
  assert_non_null(strstr(t, "%a = softmax: input 0 (%b) is not defined before this node"));
  assert_non_null(strstr(t, "%b = leaky_relu: 'leaky_relu' takes 1 input, got 3"));
  assert_non_null(strstr(t, "%c = cast: required input 0 is missing"));
  assert_non_null(strstr(t, "%e is defined more than once"));
  assert_non_null(strstr(t, "%e = fused_matmul: %e does not point back to this node"));
  assert_non_null(strstr(t, "%k = const: %k has no element type"));
  assert_non_null(strstr(t, "graph output 1 (%ghost) is not defined"));
  free(t);
  lb_graph_free(g);

  /* Const blob size and invalid blob index. */
  g = parse_ok("graph @g() -> (f32[2]) {\n  %w = const f32[2] dense<[1, 2]>\n  return %w\n}\n");
  g->blobs[0].size = 4;
  t = verify_text(g, &st);
  assert_non_null(strstr(t, "%w = const: const: blob \"w\" holds 4 bytes but the type needs 8"));
  free(t);
  g->nodes[0]->blob = 5;
  t = verify_text(g, &st);
  assert_non_null(strstr(t, "%w = const: const refers to blob 5, which does not exist"));
  free(t);
  lb_graph_free(g);

  /* At most 100 errors. */
  g = lb_graph_new("many");
  struct lb_value *x = lb_value_new(g, "x", T(LB_DTYPE_F32, 0));
  for (int i = 0; i < 150; i++) {
    struct lb_node *n = lb_graph_add_node(g, LB_OP_RELU, "", &x, 1, NULL, 1);
    n->outputs[0]->type = x->type;
  }
  t = verify_text(g, &st);
  int lines = 0;
  for (char *p = t; *p; p++) lines += *p == '\n';
  assert_int_equal(lines, 101);
  assert_non_null(strstr(t, "too many errors"));
  free(t);
  lb_graph_free(g);
}

/* pad: canonical attributes round-trip and verify; the verifier checks them. */
static void test_pad_text(void **state) {
  (void)state;
  roundtrip("graph @pad(%x: f32[2,3]) -> (f32[3,4], i8[2,3], f32[2,6]) opset 19 {\n"
            "  %y = pad(%x) {mode=\"constant\", pads=[1, 2, 0, -1], value=1.5} : f32[3,4]\n"
            "  %c = const i8[2,3] dense<[1, 2, 3, 4, 5, 6]>\n"
            "  %z = pad(%c) {mode=\"reflect\", pads=[0, -1, 0, 1], value=0.0} : i8[2,3]\n"
            "  %w = pad(%x) {mode=\"wrap\", pads=[0, 2, 0, 1], value=0.0} : f32[2,6]\n"
            "  return %y, %z, %w\n"
            "}\n");
  struct lb_graph *g = parse_ok("graph @g(%x: f32[2,3]) -> (f32[2,3]) {\n"
                                "  %a = pad(%x) {mode=\"symmetric\", pads=[0, 0, 0, 0], value=0} : f32[2,3]\n"
                                "  %b = pad(%a) {mode=\"edge\"} : f32[2,3]\n"
                                "  %c = pad(%b) {pads=[0, 0, 0, -4]} : f32[2,3]\n"
                                "  return %c\n}\n");
  enum lb_status st;
  char *t = verify_text(g, &st);
  assert_int_equal(st, LB_ERR_INVALID);
  assert_non_null(strstr(t, "%a = pad: 'mode' must be \"constant\", \"reflect\", \"edge\" or \"wrap\", not \"symmetric\""));
  assert_non_null(strstr(t, "%a = pad: attribute 'value' must be a float, not an int"));
  assert_non_null(strstr(t, "%b = pad: missing required attribute 'pads'"));
  assert_non_null(strstr(t, "%c = pad: the shape rule rejects this node: pads of dim 1 (begin 0, end -4) crop more than its size 3"));
  free(t);
  lb_graph_free(g);
}

/* ---- every lit test parses and round-trips ---------------------------------------------- */
static int lit_files;

static void roundtrip_file(const char *path) {
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *text = malloc((size_t)n + 1);
  assert_int_equal(fread(text, 1, (size_t)n, f), (size_t)n);
  text[n] = 0;
  fclose(f);
  bool xfail = strstr(text, "# XFAIL-ROUNDTRIP") != NULL;
  free(text);
  if (xfail) return;
  struct lb_diag d;
  lb_diag_init(&d, NULL);
  struct lb_graph *g = NULL;
  if (lb_graph_parse_file(path, &g, &d) != LB_OK) fprintf(stderr, "%s", d.text);
  assert_non_null(g);
  char *s1 = lb_graph_print_string(g, NULL);
  lb_graph_free(g);
  g = parse_ok(s1);
  char *s2 = lb_graph_print_string(g, NULL);
  if (strcmp(s1, s2)) fprintf(stderr, "%s: print(parse(print(parse(file)))) differs\n", path);
  assert_string_equal(s1, s2);
  free(s1);
  free(s2);
  lb_graph_free(g);
  lb_diag_free(&d);
  lit_files++;
}

static void walk(const char *dir) {
  DIR *dp = opendir(dir);
  if (!dp) return;
  struct dirent *e;
  while ((e = readdir(dp))) {
    if (e->d_name[0] == '.') continue;
    size_t len = strlen(dir) + strlen(e->d_name) + 2;
    char *path = malloc(len);
    snprintf(path, len, "%s/%s", dir, e->d_name);
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
      walk(path);
    } else {
      size_t pl = strlen(path);
      if (pl > 5 && strcmp(path + pl - 5, ".lbir") == 0) roundtrip_file(path);
    }
    free(path);
  }
  closedir(dp);
}

static void test_lit_files_roundtrip(void **state) {
  (void)state;
  walk(LB_LIT_DIR);
  fprintf(stderr, "# %d lit files round-tripped\n", lit_files);
  assert_true(lit_files > 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_builder_basics),
      cmocka_unit_test(test_print_hand_built),
      cmocka_unit_test(test_print_float_forms),
      cmocka_unit_test(test_roundtrip_attrs),
      cmocka_unit_test(test_roundtrip_dtypes),
      cmocka_unit_test(test_roundtrip_blobs_all_dtypes),
      cmocka_unit_test(test_roundtrip_names),
      cmocka_unit_test(test_roundtrip_qparams_mem),
      cmocka_unit_test(test_clone_prints_the_same),
      cmocka_unit_test(test_roundtrip_lenient_input),
      cmocka_unit_test(test_big_blob_speed),
      cmocka_unit_test(test_parse_errors),
      cmocka_unit_test(test_parse_garbage),
      cmocka_unit_test(test_verify_errors),
      cmocka_unit_test(test_pad_text),
      cmocka_unit_test(test_lit_files_roundtrip),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
