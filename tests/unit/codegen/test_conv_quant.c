/* test_conv_quant.c: conv / pool (codegen/k_conv.c) and quantization
 * (codegen/k_quant.c) kernels, JIT-compiled and compared with lb_eval_node.
 *
 * Parallel kernels run through a fake lbrt_parallel_for that splits the range
 * into uneven chunks (serially), so the chunked bodies are checked too.
 *
 *   test_codegen_conv_quant            the tests
 *   test_codegen_conv_quant --bench    MobileNet-style dw 3x3 + pw 1x1 GFLOP/s (not a test) */
#include <time.h>

#include "cg_test.h"
#include "runtime/lbrt.h"
#include "runtime/lbrt_abi.h"

/* ---- helpers ---------------------------------------------------------------------- */
static void fake_parallel_for(lb_jit_task_fn fn, void *ctx, int64_t n, int64_t grain) {
  /* chunks of grain, 2*grain+1, ... run back to front */
  int64_t b[64], e[64];
  int k = 0;
  int64_t pos = 0, sz = grain < 1 ? 1 : grain;
  while (pos < n && k < 63) {
    b[k] = pos;
    e[k] = pos + sz < n ? pos + sz : n;
    pos = e[k++];
    sz = sz * 2 + 1;
  }
  if (pos < n) {
    b[k] = pos;
    e[k++] = n;
  }
  for (int i = k - 1; i >= 0; i--) fn(ctx, b[i], e[i]);
}

static struct lb_value *rand_const(struct lb_graph *g, const char *name, struct lb_type t, double lo, double hi) {
  int64_t ne = lb_shape_numel(&t.shape);
  void *buf = xalloc(ne * lb_dtype_traits[t.dtype].size);
  fill_random(buf, t.dtype, ne, lo, hi);
  struct lb_value *v = lb_graph_add_const(g, name, &t, buf)->outputs[0];
  free(buf);
  return v;
}

static struct lb_value *const_of(struct lb_graph *g, const char *name, struct lb_type t, const void *data) {
  return lb_graph_add_const(g, name, &t, data)->outputs[0];
}

static struct lb_node *add_node(struct lb_graph *g, enum lb_op op, struct lb_value **in, int nin, int nout) {
  static const char *names3[] = {"y", "y_scale", "y_zp"};
  return lb_graph_add_node(g, op, "n", in, nin, names3, nout);
}

/* infer output types (or keep the hand-set ones when infer rejects the node) and
 * make every output a graph output */
static void finish_node(struct lb_graph *g, struct lb_node *n, bool infer) {
  if (infer) {
    struct lb_diag d;
    lb_diag_init(&d, "infer");
    enum lb_status st = lb_infer_node(g, n, &d);
    if (st != LB_OK) fprintf(stderr, "infer: %s\n", d.text ? d.text : "?");
    assert_int_equal(st, LB_OK);
    lb_diag_free(&d);
  }
  for (int i = 0; i < n->n_outputs; i++) lb_graph_add_output(g, n->outputs[i]);
}

/* JIT g, run it on the given input buffers into outs (caller-sized) */
static void run_graph(struct lb_graph *g, const void *const *ins, void *const *outs) {
  plan_simple(g);
  struct lb_diag d;
  lb_diag_init(&d, "test");
  struct lb_jit *j = NULL;
  struct lb_codegen_options o = {.opt_level = 3, .model_name = "t"};
  enum lb_status st = lb_jit_compile(g, &o, &j, &d);
  if (st != LB_OK) fprintf(stderr, "compile failed: %s\n", d.text ? d.text : "?");
  assert_int_equal(st, LB_OK);
  void *act = xalloc(lb_jit_activations_size(j) + 64);
  assert_int_equal(lb_jit_run(j, ins, outs, act), 0);
  free(act);
  lb_jit_free(j);
  lb_diag_free(&d);
}

/* ---- conv ---------------------------------------------------------------------------- */
struct conv_case {
  enum lb_dtype dt;
  struct lb_type x, w;
  bool bias, w_input;
  int ns;
  int64_t strides[3], dil[3], pads[6], group;
};

static void run_conv(const struct conv_case *c) {
  struct lb_graph *g = lb_graph_new("conv");
  struct lb_value *x = input(g, "x", c->x);
  struct lb_value *w = c->w_input ? input(g, "w", c->w) : rand_const(g, "w", c->w, -1, 1);
  struct lb_value *in[3] = {x, w, NULL};
  int nin = 2;
  if (c->bias) {
    in[2] = rand_const(g, "b", ty(c->dt, &c->w.shape.dims[0], 1), -1, 1);
    nin = 3;
  }
  struct lb_node *n = add_node(g, LB_OP_CONV, in, nin, 1);
  int ns = c->ns;
  int64_t st[3], dl[3], pd[6];
  for (int i = 0; i < ns; i++) {
    st[i] = c->strides[i] ? c->strides[i] : 1;
    dl[i] = c->dil[i] ? c->dil[i] : 1;
    pd[i] = c->pads[i];
    pd[ns + i] = c->pads[ns + i];
  }
  lb_node_set_attr_ints(g, n, "strides", st, ns);
  lb_node_set_attr_ints(g, n, "dilations", dl, ns);
  lb_node_set_attr_ints(g, n, "pads", pd, 2 * ns);
  lb_node_set_attr_int(g, n, "group", c->group ? c->group : 1);
  finish_node(g, n, true);
  struct run_opts ro = {.atol = 2e-4, .rtol = 2e-4, .lo = -1, .hi = 1};
  check_graph(g, n, &ro);
  lb_graph_free(g);
}

#define CONV2(DT, XS, WS, ...) \
  run_conv(&(struct conv_case){.dt = LB_DTYPE_##DT, .x = TY(DT, XS), .w = TY(DT, WS), .ns = 2, __VA_ARGS__})
#define S(...) __VA_ARGS__

static void test_conv2d_basic(void **state) {
  (void)state;
  CONV2(F32, S(1, 3, 9, 10), S(8, 3, 3, 3), .bias = true, .pads = {1, 1, 1, 1});
  CONV2(F32, S(1, 3, 9, 10), S(8, 3, 3, 3), .bias = false);
  CONV2(F32, S(2, 5, 6, 7), S(7, 5, 2, 3), .bias = true, .pads = {0, 2, 1, 0}); /* MR 1, asymmetric */
}

static void test_conv2d_strides_dilations(void **state) {
  (void)state;
  CONV2(F32, S(2, 4, 11, 13), S(6, 4, 3, 3), .bias = true, .strides = {2, 2}, .pads = {0, 1, 2, 1},
        .dil = {2, 1});
  CONV2(F32, S(1, 3, 8, 200), S(4, 3, 3, 3), .bias = true, .strides = {2, 2}, .pads = {1, 1, 1, 1});
  CONV2(F32, S(1, 3, 9, 90), S(4, 3, 3, 5), .strides = {1, 3}, .dil = {2, 2}, .pads = {2, 4, 1, 3});
  CONV2(F32, S(1, 2, 5, 300), S(4, 2, 1, 5), .pads = {0, 2, 0, 2}); /* full tiles + tail */
  CONV2(F32, S(1, 1, 7, 7), S(1, 1, 7, 7), .pads = {3, 3, 3, 3});   /* all border */
  CONV2(F32, S(1, 2, 3, 4), S(3, 2, 3, 3), .pads = {5, 6, 4, 7}, .strides = {2, 3}); /* huge pads */
}

static void test_conv2d_groups(void **state) {
  (void)state;
  CONV2(F32, S(1, 4, 7, 7), S(4, 2, 3, 3), .bias = true, .group = 2, .pads = {1, 1, 1, 1});
  CONV2(F32, S(2, 6, 9, 8), S(9, 2, 3, 2), .bias = true, .group = 3, .strides = {2, 1});
  /* depthwise */
  CONV2(F32, S(1, 16, 20, 37), S(16, 1, 3, 3), .bias = true, .group = 16, .pads = {1, 1, 1, 1});
  CONV2(F32, S(2, 8, 21, 40), S(8, 1, 3, 3), .bias = true, .group = 8, .pads = {1, 1, 1, 1}, .strides = {2, 2});
  CONV2(F32, S(1, 32, 56, 56), S(32, 1, 3, 3), .group = 32, .pads = {1, 1, 1, 1}); /* parallel */
  CONV2(F32, S(1, 4, 10, 10), S(8, 1, 5, 5), .group = 4, .pads = {2, 2, 2, 2});    /* multiplier 2 */
}

static void test_conv2d_pointwise(void **state) {
  (void)state;
  CONV2(F32, S(2, 32, 14, 14), S(64, 32, 1, 1), .bias = true); /* GEMM form, parallel */
  CONV2(F32, S(1, 24, 7, 7), S(12, 24, 1, 1), .bias = true);
  CONV2(F32, S(1, 5, 3, 3), S(7, 5, 1, 1));
  CONV2(F32, S(1, 16, 10, 10), S(8, 16, 1, 1), .strides = {2, 2});         /* not collapsed */
  CONV2(F32, S(1, 8, 6, 6), S(8, 4, 1, 1), .group = 2, .bias = true);      /* grouped 1x1 */
  CONV2(F32, S(1, 8, 6, 6), S(12, 8, 3, 3), .w_input = true, .pads = {1, 1, 1, 1}); /* non-const w */
  CONV2(F32, S(1, 8, 6, 6), S(12, 8, 1, 1), .w_input = true, .bias = true);
}

static void test_conv_1d_3d_f64(void **state) {
  (void)state;
  run_conv(&(struct conv_case){.dt = LB_DTYPE_F32, .x = TY(F32, 2, 3, 50), .w = TY(F32, 5, 3, 4), .ns = 1,
                               .bias = true, .strides = {3}, .pads = {2, 1}, .dil = {2}});
  run_conv(&(struct conv_case){.dt = LB_DTYPE_F32, .x = TY(F32, 1, 4, 100), .w = TY(F32, 4, 1, 3), .ns = 1,
                               .group = 4, .pads = {1, 1}});
  run_conv(&(struct conv_case){.dt = LB_DTYPE_F32, .x = TY(F32, 1, 2, 5, 6, 7), .w = TY(F32, 4, 2, 3, 3, 3), .ns = 3,
                               .bias = true, .strides = {1, 2, 1}, .pads = {1, 1, 1, 1, 0, 1}});
  run_conv(&(struct conv_case){.dt = LB_DTYPE_F32, .x = TY(F32, 1, 3, 4, 4, 20), .w = TY(F32, 6, 3, 2, 1, 3), .ns = 3,
                               .dil = {2, 1, 3}, .pads = {0, 0, 2, 1, 0, 2}});
  run_conv(&(struct conv_case){.dt = LB_DTYPE_F32, .x = TY(F32, 1, 8, 3, 4, 5), .w = TY(F32, 8, 8, 1, 1, 1), .ns = 3});
  CONV2(F64, S(1, 3, 9, 21), S(4, 3, 3, 3), .bias = true, .pads = {1, 1, 1, 1}, .strides = {1, 2});
  CONV2(F64, S(1, 6, 9, 21), S(6, 1, 3, 3), .group = 6, .pads = {1, 0, 1, 0});
}

/* ---- pools ---------------------------------------------------------------------------- */
struct pool_case {
  enum lb_op op;
  enum lb_dtype dt;
  struct lb_type x;
  int ns;
  int64_t k[3], strides[3], dil[3], pads[6];
  int ceil, cip;
  double lo, hi;
  int indices, order; /* max_pool: the indices output, its storage_order */
};

static void run_pool(const struct pool_case *c) {
  struct lb_graph *g = lb_graph_new("pool");
  struct lb_value *x = input(g, "x", c->x);
  struct lb_node *n = add_node(g, c->op, &x, 1, c->indices ? 2 : 1);
  int ns = c->ns;
  if (c->indices) lb_node_set_attr_int(g, n, "storage_order", c->order);
  if (c->op != LB_OP_GLOBAL_AVERAGE_POOL) {
    int64_t st[3], dl[3], pd[6];
    for (int i = 0; i < ns; i++) {
      st[i] = c->strides[i] ? c->strides[i] : 1;
      dl[i] = c->dil[i] ? c->dil[i] : 1;
      pd[i] = c->pads[i];
      pd[ns + i] = c->pads[ns + i];
    }
    lb_node_set_attr_ints(g, n, "kernel_shape", c->k, ns);
    lb_node_set_attr_ints(g, n, "strides", st, ns);
    if (c->op == LB_OP_MAX_POOL) lb_node_set_attr_ints(g, n, "dilations", dl, ns);
    lb_node_set_attr_ints(g, n, "pads", pd, 2 * ns);
    lb_node_set_attr_int(g, n, "ceil_mode", c->ceil);
    if (c->op == LB_OP_AVERAGE_POOL) lb_node_set_attr_int(g, n, "count_include_pad", c->cip);
  }
  finish_node(g, n, true);
  struct run_opts ro = {.atol = 1e-5, .rtol = 1e-5, .lo = c->lo, .hi = c->hi};
  if (ro.lo == ro.hi) ro.lo = -1, ro.hi = 1;
  check_graph(g, n, &ro);
  lb_graph_free(g);
}

#define POOL(OP, DT, NS, XS, ...) \
  run_pool(&(struct pool_case){.op = LB_OP_##OP, .dt = LB_DTYPE_##DT, .x = TY(DT, XS), .ns = NS, __VA_ARGS__})

static void test_max_pool(void **state) {
  (void)state;
  POOL(MAX_POOL, F32, 2, S(1, 3, 10, 11), .k = {3, 3}, .strides = {2, 2}, .pads = {1, 1, 1, 1});
  POOL(MAX_POOL, F32, 2, S(1, 3, 10, 11), .k = {3, 3}, .strides = {2, 2}, .pads = {1, 1, 1, 1}, .ceil = 1);
  POOL(MAX_POOL, F32, 2, S(1, 2, 9, 9), .k = {3, 3}, .strides = {2, 2}, .ceil = 1);
  POOL(MAX_POOL, F32, 2, S(1, 2, 4, 4), .k = {3, 3}, .strides = {2, 2}, .ceil = 1);
  POOL(MAX_POOL, F32, 2, S(2, 3, 12, 40), .k = {2, 3}, .dil = {2, 3}, .pads = {0, 2, 1, 1}, .strides = {1, 2});
  POOL(MAX_POOL, F32, 2, S(2, 4, 112, 112), .k = {3, 3}, .strides = {2, 2}, .pads = {1, 1, 1, 1}); /* parallel */
  POOL(MAX_POOL, F32, 2, S(1, 2, 5, 5), .k = {5, 5}, .pads = {2, 2, 2, 2});
  POOL(MAX_POOL, F32, 1, S(1, 3, 32), .k = {2});
  POOL(MAX_POOL, F32, 3, S(1, 3, 6, 7, 8), .k = {2, 2, 3}, .strides = {2, 1, 2}, .pads = {1, 0, 1, 0, 1, 1}, .ceil = 1);
  POOL(MAX_POOL, F64, 2, S(1, 3, 10, 30), .k = {3, 3}, .strides = {1, 2}, .pads = {1, 1, 1, 1});
  POOL(MAX_POOL, U8, 2, S(1, 3, 10, 40), .k = {3, 3}, .strides = {2, 2}, .pads = {1, 1, 1, 1}, .lo = 0, .hi = 255);
  POOL(MAX_POOL, I8, 2, S(1, 3, 10, 40), .k = {2, 2}, .pads = {1, 0, 1, 0}, .lo = -128, .hi = 127);
}

/* max_pool's indices output (scalar kernel): row- and column-major, 1-D to 3-D, pads,
 * dilations, ceil_mode, integer ties (the first maximum wins), a parallel case */
static void test_max_pool_indices(void **state) {
  (void)state;
  POOL(MAX_POOL, F32, 2, S(1, 1, 5, 5), .k = {5, 5}, .pads = {2, 2, 2, 2}, .indices = 1);
  POOL(MAX_POOL, F32, 2, S(1, 1, 5, 5), .k = {2, 2}, .strides = {2, 2}, .indices = 1, .order = 1);
  POOL(MAX_POOL, F32, 2, S(2, 3, 12, 10), .k = {2, 3}, .dil = {2, 3}, .pads = {0, 2, 1, 1}, .strides = {1, 2},
       .indices = 1, .order = 1);
  POOL(MAX_POOL, F32, 2, S(1, 2, 9, 9), .k = {3, 3}, .strides = {2, 2}, .ceil = 1, .indices = 1);
  POOL(MAX_POOL, F32, 1, S(2, 3, 17), .k = {3}, .pads = {1, 2}, .indices = 1);
  POOL(MAX_POOL, F64, 3, S(1, 2, 5, 6, 7), .k = {2, 2, 3}, .strides = {2, 1, 2}, .pads = {1, 0, 1, 0, 1, 1},
       .indices = 1, .order = 1);
  POOL(MAX_POOL, F32, 2, S(2, 8, 64, 64), .k = {3, 3}, .strides = {2, 2}, .pads = {1, 1, 1, 1}, .indices = 1);
  POOL(MAX_POOL, U8, 2, S(1, 3, 10, 12), .k = {3, 3}, .pads = {1, 1, 1, 1}, .lo = 0, .hi = 3, .indices = 1);
  POOL(MAX_POOL, I8, 2, S(1, 3, 10, 12), .k = {2, 2}, .pads = {1, 0, 1, 0}, .lo = -128, .hi = -126,
       .indices = 1, .order = 1);
}

static void test_average_pool(void **state) {
  (void)state;
  for (int cip = 0; cip < 2; cip++) {
    POOL(AVERAGE_POOL, F32, 2, S(1, 3, 10, 11), .k = {3, 3}, .strides = {2, 2}, .pads = {1, 1, 1, 1}, .cip = cip);
    POOL(AVERAGE_POOL, F32, 2, S(1, 3, 10, 11), .k = {3, 3}, .strides = {2, 2}, .pads = {1, 1, 1, 1}, .cip = cip,
         .ceil = 1);
    POOL(AVERAGE_POOL, F32, 2, S(1, 2, 4, 4), .k = {3, 3}, .strides = {2, 2}, .ceil = 1, .cip = cip);
    POOL(AVERAGE_POOL, F32, 2, S(1, 3, 32, 32), .k = {5, 5}, .pads = {2, 2, 2, 2}, .cip = cip);
    POOL(AVERAGE_POOL, F32, 2, S(1, 2, 7, 50), .k = {2, 3}, .pads = {0, 2, 1, 1}, .strides = {2, 1}, .cip = cip,
         .ceil = 1);
    POOL(AVERAGE_POOL, F32, 1, S(2, 3, 33), .k = {4}, .strides = {3}, .pads = {1, 2}, .cip = cip, .ceil = 1);
    POOL(AVERAGE_POOL, F32, 3, S(1, 2, 5, 6, 7), .k = {2, 3, 2}, .pads = {1, 1, 0, 0, 1, 1}, .cip = cip);
    POOL(AVERAGE_POOL, F64, 2, S(1, 3, 9, 9), .k = {3, 3}, .pads = {1, 1, 1, 1}, .strides = {2, 2}, .cip = cip);
  }
  POOL(AVERAGE_POOL, F32, 2, S(2, 16, 56, 56), .k = {2, 2}, .strides = {2, 2}); /* parallel */
}

static void test_global_average_pool(void **state) {
  (void)state;
  POOL(GLOBAL_AVERAGE_POOL, F32, 2, S(2, 5, 7, 9));
  POOL(GLOBAL_AVERAGE_POOL, F32, 2, S(1, 64, 56, 56));
  POOL(GLOBAL_AVERAGE_POOL, F32, 1, S(3, 2, 100));
  POOL(GLOBAL_AVERAGE_POOL, F64, 3, S(1, 3, 4, 5, 6));
}

/* ---- quantize / dequantize -------------------------------------------------------------- */
static void test_quantize_exact(void **state) {
  (void)state;
  /* ties to even, saturation, NaN -> zp; the onnx test case */
  struct lb_graph *g = lb_graph_new("q");
  struct lb_value *x = input(g, "x", TY(F32, 12));
  float s = 1.0f;
  int8_t zp = -3;
  struct lb_value *in[3] = {x, const_of(g, "s", TY0(F32), &s), const_of(g, "zp", TY0(I8), &zp)};
  struct lb_node *n = add_node(g, LB_OP_QUANTIZE_LINEAR, in, 3, 1);
  finish_node(g, n, true);
  assert_int_equal(n->outputs[0]->type.dtype, LB_DTYPE_I8);
  float xv[12] = {0.5f, 1.5f, 2.5f, -0.5f, -1.5f, -2.5f, 300.0f, -300.0f, NAN, 124.5f, 130.5f, -125.5f};
  int8_t want[12] = {-3, -1, -1, -3, -5, -5, 127, -128, -3, 121, 127, -128};
  int8_t got[12];
  const void *ins[1] = {xv};
  void *outs[1] = {got};
  run_graph(g, ins, outs);
  for (int i = 0; i < 12; i++) assert_int_equal(got[i], want[i]);
  lb_graph_free(g);

  g = lb_graph_new("q2");
  x = input(g, "x", TY(F32, 6));
  float s2 = 2.0f;
  uint8_t zp2 = 128;
  struct lb_value *in2[3] = {x, const_of(g, "s", TY0(F32), &s2), const_of(g, "zp", TY0(U8), &zp2)};
  n = add_node(g, LB_OP_QUANTIZE_LINEAR, in2, 3, 1);
  finish_node(g, n, true);
  float xv2[6] = {0, 2, 3, 1000, -254, -1000};
  uint8_t want2[6] = {128, 129, 130, 255, 1, 0}, got2[6];
  const void *ins2[1] = {xv2};
  void *outs2[1] = {got2};
  run_graph(g, ins2, outs2);
  for (int i = 0; i < 6; i++) assert_int_equal(got2[i], want2[i]);
  lb_graph_free(g);
}

static void run_q(enum lb_op op, struct lb_type xt, enum lb_dtype zdt, int axis, bool zp, bool per_axis, double lo,
                  double hi) {
  struct lb_graph *g = lb_graph_new("q");
  struct lb_value *x = input(g, "x", xt);
  int64_t len = per_axis ? xt.shape.dims[axis] : 1;
  struct lb_type pt = per_axis ? ty(LB_DTYPE_F32, &len, 1) : TY0(F32);
  struct lb_value *in[3] = {x, rand_const(g, "s", pt, 0.05, 0.5), NULL};
  if (zp) {
    struct lb_type zt = pt;
    zt.dtype = zdt;
    in[2] = zdt == LB_DTYPE_U8 ? rand_const(g, "zp", zt, 0, 255) : zdt == LB_DTYPE_I8 ? rand_const(g, "zp", zt, -128, 127)
                                                                                      : rand_const(g, "zp", zt, -1000, 1000);
  }
  struct lb_node *n = add_node(g, op, in, zp ? 3 : 2, 1);
  lb_node_set_attr_int(g, n, "axis", axis);
  finish_node(g, n, true);
  struct run_opts ro = {.atol = 0, .rtol = 0, .lo = lo, .hi = hi};
  check_graph(g, n, &ro);
  lb_graph_free(g);
}

static void test_quantize_dequantize(void **state) {
  (void)state;
  /* quantize: per tensor and per axis, u8/i8/no zp; inputs beyond the range saturate */
  run_q(LB_OP_QUANTIZE_LINEAR, TY(F32, 1000), LB_DTYPE_U8, 0, true, false, -60, 60);
  run_q(LB_OP_QUANTIZE_LINEAR, TY(F32, 1000), LB_DTYPE_I8, 0, true, false, -60, 60);
  run_q(LB_OP_QUANTIZE_LINEAR, TY(F32, 7, 33), LB_DTYPE_U8, 0, false, false, -10, 60);
  run_q(LB_OP_QUANTIZE_LINEAR, TY(F32, 2, 3, 4, 5), LB_DTYPE_U8, 1, true, true, -60, 60);
  run_q(LB_OP_QUANTIZE_LINEAR, TY(F32, 6, 40), LB_DTYPE_I8, 0, true, true, -60, 60);
  run_q(LB_OP_QUANTIZE_LINEAR, TY(F32, 6, 40), LB_DTYPE_I8, 1, true, true, -60, 60);
  run_q(LB_OP_QUANTIZE_LINEAR, TY(F32, 300000), LB_DTYPE_I8, 0, true, false, -30, 30); /* parallel */
  /* dequantize */
  run_q(LB_OP_DEQUANTIZE_LINEAR, TY(U8, 1000), LB_DTYPE_U8, 0, true, false, 0, 255);
  run_q(LB_OP_DEQUANTIZE_LINEAR, TY(I8, 1000), LB_DTYPE_I8, 0, true, false, -128, 127);
  run_q(LB_OP_DEQUANTIZE_LINEAR, TY(I8, 1000), LB_DTYPE_I8, 0, false, false, -128, 127);
  run_q(LB_OP_DEQUANTIZE_LINEAR, TY(U8, 1, 3, 3, 2), LB_DTYPE_U8, 1, true, true, 0, 255);
  run_q(LB_OP_DEQUANTIZE_LINEAR, TY(I8, 5, 9), LB_DTYPE_I8, 0, true, true, -128, 127);
  run_q(LB_OP_DEQUANTIZE_LINEAR, TY(I32, 100), LB_DTYPE_I32, 0, false, false, -2e9, 2e9);
}

/* ---- dynamic_quantize_linear ------------------------------------------------------------ */
static void dynq_expect(const float *x, int64_t nx, float want_scale, uint8_t want_zp) {
  struct lb_graph *g = lb_graph_new("dq");
  struct lb_value *xv = input(g, "x", ty(LB_DTYPE_F32, &nx, 1));
  struct lb_node *n = add_node(g, LB_OP_DYNAMIC_QUANTIZE_LINEAR, &xv, 1, 3);
  finish_node(g, n, true);
  uint8_t y[64], ref[64], zp, rzp;
  float scale, rscale;
  const void *ins[1] = {x};
  void *outs[3] = {y, &scale, &zp};
  run_graph(g, ins, outs);
  void *routs[3] = {ref, &rscale, &rzp};
  struct lb_diag d;
  lb_diag_init(&d, "ref");
  assert_int_equal(lb_eval_node(g, n, ins, routs, &d), LB_OK);
  lb_diag_free(&d);
  assert_true(fabsf(scale - want_scale) < 1e-9f);
  assert_int_equal(zp, want_zp);
  assert_true(scale == rscale);
  assert_int_equal(zp, rzp);
  for (int64_t i = 0; i < nx; i++) assert_int_equal(y[i], ref[i]);
  lb_graph_free(g);
}

static void test_dynamic_quantize(void **state) {
  (void)state;
  /* onnx's three cases */
  dynq_expect((const float[]){0, 2, -3, -2.5f, 1.34f, 0.5f}, 6, 0.0196078438f, 153);
  dynq_expect((const float[]){-1.0f, -2.1f, -1.3f, -2.5f, -3.34f, -4.0f}, 6, 0.0156862754f, 255);
  dynq_expect((const float[]){1, 2.1f, 1.3f, 2.5f, 3.34f, 4.0f, 1.5f, 2.6f, 3.9f, 4.0f, 3.0f, 2.345f}, 12, 0.0156862754f, 0);
  dynq_expect((const float[]){0, 0, 0, 0}, 4, 0.0f, 0);
  /* random, against the evaluator */
  int64_t sizes[3] = {5, 1000, 100000};
  for (int k = 0; k < 3; k++) {
    struct lb_graph *g = lb_graph_new("dq");
    struct lb_value *xv = input(g, "x", ty(LB_DTYPE_F32, &sizes[k], 1));
    struct lb_node *n = add_node(g, LB_OP_DYNAMIC_QUANTIZE_LINEAR, &xv, 1, 3);
    finish_node(g, n, true);
    struct run_opts ro = {.atol = 0, .rtol = 0, .lo = k == 1 ? 0.5 : -3, .hi = 7};
    check_graph(g, n, &ro);
    lb_graph_free(g);
  }
}

/* ---- matmul_integer / qlinear_matmul -------------------------------------------------------- */
static double q_lo(enum lb_dtype dt) { return dt == LB_DTYPE_U8 ? 0 : -128; }
static double q_hi(enum lb_dtype dt) { return dt == LB_DTYPE_U8 ? 255 : 127; }

/* zp kinds: 0 none, 1 scalar, 2 vector ([M] for a, [N] for b) */
static void run_mmi(struct lb_type at, struct lb_type bt, int azp, int bzp) {
  struct lb_graph *g = lb_graph_new("mmi");
  struct lb_value *a = input(g, "a", at);
  struct lb_value *b = rand_const(g, "b", bt, q_lo(bt.dtype), q_hi(bt.dtype));
  int64_t M = at.shape.rank == 1 ? 1 : at.shape.dims[at.shape.rank - 2];
  int64_t N = bt.shape.rank == 1 ? 1 : bt.shape.dims[bt.shape.rank - 1];
  struct lb_value *in[4] = {a, b, NULL, NULL};
  struct lb_type azt = azp == 1 ? TY0(U8) : ty(LB_DTYPE_U8, &M, 1), bzt = bzp == 1 ? TY0(U8) : ty(LB_DTYPE_U8, &N, 1);
  azt.dtype = at.dtype;
  bzt.dtype = bt.dtype;
  if (azp) in[2] = rand_const(g, "azp", azt, q_lo(at.dtype), q_hi(at.dtype));
  if (bzp) in[3] = rand_const(g, "bzp", bzt, q_lo(bt.dtype), q_hi(bt.dtype));
  struct lb_node *n = add_node(g, LB_OP_MATMUL_INTEGER, in, 4, 1);
  finish_node(g, n, true);
  struct run_opts ro = {.atol = 0, .rtol = 0, .lo = q_lo(at.dtype), .hi = q_hi(at.dtype)};
  check_graph(g, n, &ro);
  lb_graph_free(g);
}

static void test_matmul_integer(void **state) {
  (void)state;
  run_mmi(TY(U8, 4, 3), TY(U8, 3, 2), 1, 1); /* onnx's shape */
  run_mmi(TY(U8, 7, 33), TY(U8, 33, 20), 2, 2);
  run_mmi(TY(I8, 7, 33), TY(I8, 33, 20), 1, 0);
  run_mmi(TY(U8, 7, 33), TY(I8, 33, 20), 0, 2);
  run_mmi(TY(I8, 5, 64), TY(U8, 64, 40), 2, 1);
  run_mmi(TY(U8, 2, 3, 4, 5), TY(U8, 5, 6), 1, 1);
  run_mmi(TY(U8, 4, 5), TY(U8, 2, 5, 6), 1, 2);
  run_mmi(TY(U8, 2, 1, 4, 5), TY(U8, 3, 5, 6), 0, 0);
  run_mmi(TY(U8, 5), TY(U8, 5, 6), 1, 1);
  run_mmi(TY(U8, 3, 5), TY(U8, 5), 1, 1);
  run_mmi(TY(U8, 64, 256), TY(I8, 256, 200), 1, 2); /* parallel */
}

static void run_qlmm(struct lb_type at, struct lb_type bt, enum lb_dtype ydt, int as_kind, int bs_kind) {
  struct lb_graph *g = lb_graph_new("qlmm");
  struct lb_value *a = input(g, "a", at);
  int64_t M = at.shape.rank == 1 ? 1 : at.shape.dims[at.shape.rank - 2];
  int64_t N = bt.shape.rank == 1 ? 1 : bt.shape.dims[bt.shape.rank - 1];
  int64_t K = at.shape.dims[at.shape.rank - 1];
  struct lb_type ast = as_kind == 2 ? ty(LB_DTYPE_F32, &M, 1) : TY0(F32);
  struct lb_type bst = bs_kind == 2 ? ty(LB_DTYPE_F32, &N, 1) : TY0(F32);
  struct lb_type azt = ast, bzt = bst, yzt = TY0(F32);
  azt.dtype = at.dtype;
  bzt.dtype = bt.dtype;
  yzt.dtype = ydt;
  double ysc = 0.004 * sqrt((double)K);
  struct lb_value *in[8] = {
      a,
      rand_const(g, "as", ast, 0.005, 0.02),
      rand_const(g, "azp", azt, q_lo(at.dtype), q_hi(at.dtype)),
      rand_const(g, "b", bt, q_lo(bt.dtype), q_hi(bt.dtype)),
      rand_const(g, "bs", bst, 0.005, 0.02),
      rand_const(g, "bzp", bzt, q_lo(bt.dtype), q_hi(bt.dtype)),
      const_of(g, "ys", TY0(F32), &(float){(float)ysc}),
      rand_const(g, "yzp", yzt, q_lo(ydt) + 50, q_hi(ydt) - 50),
  };
  struct lb_node *n = add_node(g, LB_OP_QLINEAR_MATMUL, in, 8, 1);
  finish_node(g, n, true);
  struct run_opts ro = {.atol = 0, .rtol = 0, .lo = q_lo(at.dtype), .hi = q_hi(at.dtype)};
  check_graph(g, n, &ro);
  lb_graph_free(g);
}

static void test_qlinear_matmul(void **state) {
  (void)state;
  /* onnx's case, exact expected values */
  struct lb_graph *g = lb_graph_new("ql");
  struct lb_value *a = input(g, "a", TY(U8, 2, 4));
  static const uint8_t bd[12] = {152, 51, 244, 60, 26, 255, 0, 127, 246, 127, 254, 247};
  struct lb_value *in[8] = {
      a,
      const_of(g, "as", TY(F32, 1), &(float){0.0066f}),
      const_of(g, "azp", TY(U8, 1), &(uint8_t){113}),
      const_of(g, "b", TY(U8, 4, 3), bd),
      const_of(g, "bs", TY(F32, 1), &(float){0.00705f}),
      const_of(g, "bzp", TY(U8, 1), &(uint8_t){114}),
      const_of(g, "ys", TY(F32, 1), &(float){0.0107f}),
      const_of(g, "yzp", TY(U8, 1), &(uint8_t){118}),
  };
  struct lb_node *n = add_node(g, LB_OP_QLINEAR_MATMUL, in, 8, 1);
  finish_node(g, n, true);
  static const uint8_t ad[8] = {208, 236, 0, 238, 3, 214, 255, 29}, want[6] = {168, 115, 255, 1, 66, 151};
  uint8_t got[6];
  const void *ins[1] = {ad};
  void *outs[1] = {got};
  run_graph(g, ins, outs);
  for (int i = 0; i < 6; i++) assert_int_equal(got[i], want[i]);
  lb_graph_free(g);

  run_qlmm(TY(U8, 7, 33), TY(U8, 33, 20), LB_DTYPE_U8, 1, 1);
  run_qlmm(TY(I8, 7, 33), TY(I8, 33, 20), LB_DTYPE_I8, 2, 2);
  run_qlmm(TY(U8, 2, 3, 16), TY(I8, 16, 9), LB_DTYPE_U8, 1, 2);
  run_qlmm(TY(U8, 3, 40), TY(U8, 2, 40, 1500), LB_DTYPE_I8, 1, 1); /* column chunks */
  run_qlmm(TY(U8, 64, 128), TY(U8, 128, 128), LB_DTYPE_U8, 1, 1);  /* parallel */
}

/* ---- benchmark (not a test) ------------------------------------------------------------------ */
static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* one conv node; returns GFLOP/s */
static double bench_conv(int64_t N, int64_t C, int64_t H, int64_t W, int64_t M, int64_t k, int64_t group, int64_t stride,
                         int iters) {
  struct lb_graph *g = lb_graph_new("bench");
  struct lb_value *x = input(g, "x", TY(F32, N, C, H, W));
  struct lb_value *in[3] = {x, rand_const(g, "w", TY(F32, M, C / group, k, k), -1, 1),
                            rand_const(g, "b", TY(F32, M), -1, 1)};
  struct lb_node *n = add_node(g, LB_OP_CONV, in, 3, 1);
  int64_t p = k / 2;
  lb_node_set_attr_ints(g, n, "pads", (int64_t[]){p, p, p, p}, 4);
  lb_node_set_attr_ints(g, n, "strides", (int64_t[]){stride, stride}, 2);
  lb_node_set_attr_int(g, n, "group", group);
  finish_node(g, n, true);
  plan_simple(g);
  struct lb_diag d;
  lb_diag_init(&d, "bench");
  struct lb_jit *j = NULL;
  struct lb_codegen_options o = {.opt_level = 3, .model_name = "b"};
  if (lb_jit_compile(g, &o, &j, &d) != LB_OK) {
    fprintf(stderr, "%s\n", d.text ? d.text : "?");
    exit(1);
  }
  const struct lb_type *yt = &n->outputs[0]->type;
  void *xb = xalloc(lb_type_nbytes(&x->type)), *yb = xalloc(lb_type_nbytes(yt));
  fill_random(xb, LB_DTYPE_F32, lb_shape_numel(&x->type.shape), -1, 1);
  void *act = xalloc(lb_jit_activations_size(j) + 64);
  const void *ins[1] = {xb};
  void *outs[1] = {yb};
  lb_jit_run(j, ins, outs, act);
  double best = 1e30;
  for (int r = 0; r < 5; r++) {
    double t0 = now_s();
    for (int i = 0; i < iters; i++) lb_jit_run(j, ins, outs, act);
    double t = (now_s() - t0) / iters;
    if (t < best) best = t;
  }
  double flops = 2.0 * (double)lb_shape_numel(&yt->shape) * (double)(C / group) * (double)(k * k);
  printf("  conv x[%lld,%lld,%lld,%lld] w[%lld,%lld,%lld,%lld] group %lld stride %lld: %.3f ms, %.1f GFLOP/s\n",
         (long long)N, (long long)C, (long long)H, (long long)W, (long long)M, (long long)(C / group), (long long)k,
         (long long)k, (long long)group, (long long)stride, best * 1e3, flops / best * 1e-9);
  free(xb);
  free(yb);
  free(act);
  lb_jit_free(j);
  lb_diag_free(&d);
  lb_graph_free(g);
  return flops / best * 1e-9;
}

static void run_bench(int threads) {
  lbrt_threads_init(threads);
  lb_jit_set_parallel_for((lb_jit_parallel_for_fn)lbrt_parallel_for);
  printf("MobileNet-style layers, %d thread(s):\n", threads);
  /* MobileNetV1 block at 56x56 and at 14x14 */
  bench_conv(1, 128, 56, 56, 128, 3, 128, 1, 200);
  bench_conv(1, 128, 56, 56, 128, 1, 1, 1, 50);
  bench_conv(1, 512, 14, 14, 512, 3, 512, 1, 500);
  bench_conv(1, 512, 14, 14, 512, 1, 1, 1, 50);
  bench_conv(1, 32, 112, 112, 32, 3, 32, 1, 100);
  bench_conv(1, 3, 224, 224, 32, 3, 1, 2, 50);
}

int main(int argc, char **argv) {
  if (argc > 1 && !strcmp(argv[1], "--bench")) {
    run_bench(1);
    run_bench(2);
    return 0;
  }
  lb_jit_set_parallel_for(fake_parallel_for);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_conv2d_basic),
      cmocka_unit_test(test_conv2d_strides_dilations),
      cmocka_unit_test(test_conv2d_groups),
      cmocka_unit_test(test_conv2d_pointwise),
      cmocka_unit_test(test_conv_1d_3d_f64),
      cmocka_unit_test(test_max_pool),
      cmocka_unit_test(test_max_pool_indices),
      cmocka_unit_test(test_average_pool),
      cmocka_unit_test(test_global_average_pool),
      cmocka_unit_test(test_quantize_exact),
      cmocka_unit_test(test_quantize_dequantize),
      cmocka_unit_test(test_dynamic_quantize),
      cmocka_unit_test(test_matmul_integer),
      cmocka_unit_test(test_qlinear_matmul),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
