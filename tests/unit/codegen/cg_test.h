/* cg_test.h: helpers for the code generator tests: build a small graph, JIT it,
 * run it, compare with the reference evaluator (lb_eval_node) or, while that is
 * not available for an op, with a test-local reference function. */
#ifndef LB_CG_TEST_H
#define LB_CG_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

#include <cmocka.h>

#include "codegen/codegen.h"
#include "ir/ir.h"

#define NARGS_I64(...) (sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t))
#define TY(dt, ...) ty(LB_DTYPE_##dt, (int64_t[]){__VA_ARGS__}, (int32_t)NARGS_I64(__VA_ARGS__))
#define TY0(dt) ty(LB_DTYPE_##dt, NULL, 0)
#define INTS(...) (int64_t[]){__VA_ARGS__}, (int64_t)NARGS_I64(__VA_ARGS__)

static inline struct lb_type ty(enum lb_dtype dt, const int64_t *dims, int32_t rank) {
  struct lb_type t = {.dtype = dt, .shape = {.rank = rank}};
  for (int32_t i = 0; i < rank; i++) t.shape.dims[i] = dims[i];
  return t;
}

static inline struct lb_value *input(struct lb_graph *g, const char *name, struct lb_type t) {
  struct lb_value *v = lb_value_new(g, name, t);
  lb_graph_add_input(g, v);
  return v;
}

static uint64_t rng_state = 88172645463325252ull;
static inline uint64_t rng_u64(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return rng_state;
}
static inline double rng_unit(void) { return (double)(rng_u64() >> 11) / 9007199254740992.0; }

/* Random data for dtype dt: floats in [lo, hi), ints in [lo, hi] */
static inline void fill_random(void *buf, enum lb_dtype dt, int64_t n, double lo, double hi) {
  for (int64_t i = 0; i < n; i++) {
    double x = lo + (hi - lo) * rng_unit();
    switch (dt) {
    case LB_DTYPE_F32: ((float *)buf)[i] = (float)x; break;
    case LB_DTYPE_F64: ((double *)buf)[i] = x; break;
    case LB_DTYPE_I8: ((int8_t *)buf)[i] = (int8_t)floor(x + 0.5); break;
    case LB_DTYPE_U8: ((uint8_t *)buf)[i] = (uint8_t)floor(x + 0.5); break;
    case LB_DTYPE_I16: ((int16_t *)buf)[i] = (int16_t)floor(x + 0.5); break;
    case LB_DTYPE_U16: ((uint16_t *)buf)[i] = (uint16_t)floor(x + 0.5); break;
    case LB_DTYPE_I32: ((int32_t *)buf)[i] = (int32_t)floor(x + 0.5); break;
    case LB_DTYPE_U32: ((uint32_t *)buf)[i] = (uint32_t)floor(x + 0.5); break;
    case LB_DTYPE_I64: ((int64_t *)buf)[i] = (int64_t)floor(x + 0.5); break;
    case LB_DTYPE_U64: ((uint64_t *)buf)[i] = (uint64_t)floor(x + 0.5); break;
    case LB_DTYPE_BOOL: ((uint8_t *)buf)[i] = x > (lo + hi) / 2; break;
    default: assert_true(0);
    }
  }
}

static inline double get_elem(const void *buf, enum lb_dtype dt, int64_t i) {
  switch (dt) {
  case LB_DTYPE_F32: return ((const float *)buf)[i];
  case LB_DTYPE_F64: return ((const double *)buf)[i];
  case LB_DTYPE_I8: return ((const int8_t *)buf)[i];
  case LB_DTYPE_U8: case LB_DTYPE_BOOL: return ((const uint8_t *)buf)[i];
  case LB_DTYPE_I16: return ((const int16_t *)buf)[i];
  case LB_DTYPE_U16: return ((const uint16_t *)buf)[i];
  case LB_DTYPE_I32: return ((const int32_t *)buf)[i];
  case LB_DTYPE_U32: return ((const uint32_t *)buf)[i];
  case LB_DTYPE_I64: return (double)((const int64_t *)buf)[i];
  case LB_DTYPE_U64: return (double)((const uint64_t *)buf)[i];
  default: return NAN;
  }
}

static inline void set_elem(void *buf, enum lb_dtype dt, int64_t i, double x) {
  switch (dt) {
  case LB_DTYPE_F32: ((float *)buf)[i] = (float)x; break;
  case LB_DTYPE_F64: ((double *)buf)[i] = x; break;
  case LB_DTYPE_I8: ((int8_t *)buf)[i] = (int8_t)x; break;
  case LB_DTYPE_U8: case LB_DTYPE_BOOL: ((uint8_t *)buf)[i] = (uint8_t)x; break;
  case LB_DTYPE_I16: ((int16_t *)buf)[i] = (int16_t)x; break;
  case LB_DTYPE_U16: ((uint16_t *)buf)[i] = (uint16_t)x; break;
  case LB_DTYPE_I32: ((int32_t *)buf)[i] = (int32_t)x; break;
  case LB_DTYPE_U32: ((uint32_t *)buf)[i] = (uint32_t)x; break;
  case LB_DTYPE_I64: ((int64_t *)buf)[i] = (int64_t)x; break;
  case LB_DTYPE_U64: ((uint64_t *)buf)[i] = (uint64_t)x; break;
  default: break;
  }
}

/* Assigns activation offsets to intermediates (a stand-in for plan-memory). */
static inline void plan_simple(struct lb_graph *g) {
  int64_t off = 0;
  for (int32_t i = 0; i < g->n_nodes; i++) {
    struct lb_node *n = g->nodes[i];
    if (n->op == LB_OP_CONST) continue;
    for (int o = 0; o < n->n_outputs; o++) {
      struct lb_value *v = n->outputs[o];
      bool is_out = false;
      for (int k = 0; k < g->n_outputs; k++)
        if (g->outputs[k] == v) is_out = true;
      if (is_out) continue;
      v->mem_offset = off;
      off += (lb_type_nbytes(&v->type) + 63) / 64 * 64;
    }
  }
  g->activations_size = off;
}

/* A reference: computes node n's outputs from input data. */
typedef void (*ref_fn)(const struct lb_node *n, const void *const *ins, void *const *outs);

struct run_opts {
  double atol, rtol;
  double lo, hi;       /* random input range */
  ref_fn ref;          /* used when lb_eval_node cannot evaluate the node */
  bool nan_equal;
};

static inline void *xalloc(int64_t nbytes) {
  void *p = aligned_alloc(64, (size_t)((nbytes + 63) / 64 * 64 + 64));
  assert_non_null(p);
  memset(p, 0, (size_t)((nbytes + 63) / 64 * 64 + 64));
  return p;
}

/* JIT-compiles g (single node n whose outputs are the graph outputs; other nodes
 * allowed before it), runs it on random inputs and compares every output with
 * the reference. Returns the max abs error seen. */
static inline double check_graph(struct lb_graph *g, struct lb_node *n, const struct run_opts *ro) {
  plan_simple(g);
  struct lb_diag d;
  lb_diag_init(&d, "test");
  struct lb_jit *j = NULL;
  struct lb_codegen_options o = {.opt_level = 3, .model_name = "t"};
  enum lb_status st = lb_jit_compile(g, &o, &j, &d);
  if (st != LB_OK) fprintf(stderr, "compile failed: %s\n", d.text ? d.text : "?");
  assert_int_equal(st, LB_OK);
  void *in[16], *out[16], *ref[16];
  for (int k = 0; k < g->n_inputs; k++) {
    struct lb_value *v = g->inputs[k];
    in[k] = xalloc(lb_type_nbytes(&v->type));
    fill_random(in[k], v->type.dtype, lb_shape_numel(&v->type.shape), ro->lo, ro->hi);
  }
  for (int k = 0; k < g->n_outputs; k++) {
    out[k] = xalloc(lb_type_nbytes(&g->outputs[k]->type));
    ref[k] = xalloc(lb_type_nbytes(&g->outputs[k]->type));
    memset(out[k], 0xcd, (size_t)lb_type_nbytes(&g->outputs[k]->type));
  }
  void *act = xalloc(lb_jit_activations_size(j) + 64);
  assert_int_equal(lb_jit_run(j, (const void *const *)in, out, act), 0);
  /* reference: inputs of n are graph inputs or consts */
  const void *nin[16];
  for (int i = 0; i < n->n_inputs; i++) {
    struct lb_value *v = n->inputs[i];
    nin[i] = NULL;
    if (!v) continue;
    const void *cd = lb_value_const_data(g, v);
    if (cd) nin[i] = cd;
    for (int k = 0; k < g->n_inputs; k++)
      if (g->inputs[k] == v) nin[i] = in[k];
    assert_non_null(nin[i]);
  }
  struct lb_diag d2;
  lb_diag_init(&d2, "ref");
  st = lb_eval_node(g, n, nin, ref, &d2);
  if (st != LB_OK) {
    assert_non_null(ro->ref);
    ro->ref(n, nin, ref);
  }
  lb_diag_free(&d2);
  double maxerr = 0;
  for (int k = 0; k < g->n_outputs; k++) {
    struct lb_value *v = g->outputs[k];
    int64_t cnt = lb_shape_numel(&v->type.shape);
    for (int64_t i = 0; i < cnt; i++) {
      double a = get_elem(out[k], v->type.dtype, i), b = get_elem(ref[k], v->type.dtype, i);
      if (isnan(a) && isnan(b)) continue;
      double err = fabs(a - b);
      if (isinf(a) && isinf(b) && (a > 0) == (b > 0)) err = 0;
      if (err > maxerr) maxerr = err;
      if (!(err <= ro->atol + ro->rtol * fabs(b))) {
        fprintf(stderr, "%s: output %d elem %lld: got %.9g want %.9g\n", lb_op_info[n->op].ir_name, k,
                (long long)i, a, b);
        fail();
      }
    }
  }
  for (int k = 0; k < g->n_inputs; k++) free(in[k]);
  for (int k = 0; k < g->n_outputs; k++) {
    free(out[k]);
    free(ref[k]);
  }
  free(act);
  lb_jit_free(j);
  lb_diag_free(&d);
  return maxerr;
}

/* Expects compilation to fail with status st. */
static inline void check_compile_fails(struct lb_graph *g, enum lb_status want) {
  plan_simple(g);
  struct lb_diag d;
  lb_diag_init(&d, "test");
  struct lb_jit *j = NULL;
  struct lb_codegen_options o = {.opt_level = 1, .model_name = "t"};
  enum lb_status st = lb_jit_compile(g, &o, &j, &d);
  assert_int_equal(st, want);
  assert_non_null(d.text);
  lb_jit_free(j);
  lb_diag_free(&d);
}

/* Appends a node with the given inputs (NULL = omitted) and n_outputs outputs. */
static inline struct lb_node *mk(struct lb_graph *g, enum lb_op op, int nin, struct lb_value *const *ins, int nout) {
  return lb_graph_add_node(g, op, lb_op_info[op].ir_name, ins, nin, NULL, nout);
}

/* Infers n's output types and makes its outputs the graph outputs. */
static inline void finish(struct lb_graph *g, struct lb_node *n) {
  struct lb_diag d;
  lb_diag_init(&d, "infer");
  enum lb_status st = lb_infer_node(g, n, &d);
  if (st != LB_OK) fprintf(stderr, "infer: %s\n", d.text ? d.text : "?");
  assert_int_equal(st, LB_OK);
  lb_diag_free(&d);
  for (int i = 0; i < n->n_outputs; i++) lb_graph_add_output(g, n->outputs[i]);
}

static inline struct lb_value *cconst(struct lb_graph *g, const char *name, struct lb_type t, double lo, double hi) {
  int64_t cnt = lb_shape_numel(&t.shape);
  void *buf = xalloc(cnt * lb_dtype_traits[t.dtype].size);
  fill_random(buf, t.dtype, cnt, lo, hi);
  struct lb_value *v = lb_graph_add_const(g, name, &t, buf)->outputs[0];
  free(buf);
  return v;
}

#endif
