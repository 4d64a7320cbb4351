/* helpers.h: building small graphs for the pass unit tests. */
#ifndef LB_TEST_PASSES_HELPERS_H
#define LB_TEST_PASSES_HELPERS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/ir.h"
#include "passes/pass.h"

#define F32 LB_DTYPE_F32

static inline struct lb_type ty(enum lb_dtype dt, int rank, const int64_t *dims) {
  struct lb_type t = {.dtype = dt, .shape = {.rank = rank}};
  for (int i = 0; i < rank; i++) t.shape.dims[i] = dims[i];
  return t;
}
#define TY(dt, ...) \
  ty(dt, (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), (int64_t[]){__VA_ARGS__})
#define SCALAR(dt) ty(dt, 0, NULL)

static inline struct lb_value *input(struct lb_graph *g, const char *name, struct lb_type t) {
  struct lb_value *v = lb_value_new(g, name, t);
  lb_graph_add_input(g, v);
  return v;
}

/* Appends node `op` with one output named `name` of type t. */
static inline struct lb_value *op1(struct lb_graph *g, enum lb_op op, const char *name,
                                   struct lb_type t, int n_in, ...) {
  struct lb_value *in[8];
  va_list ap;
  va_start(ap, n_in);
  for (int i = 0; i < n_in; i++) in[i] = va_arg(ap, struct lb_value *);
  va_end(ap);
  const char *names[1] = {name};
  struct lb_node *n = lb_graph_add_node(g, op, name, in, n_in, names, 1);
  n->outputs[0]->type = t;
  return n->outputs[0];
}

static inline struct lb_value *cst(struct lb_graph *g, const char *name, struct lb_type t,
                                   const float *data) {
  return lb_graph_add_const(g, name, &t, data)->outputs[0];
}

/* An f32 constant of type t with every element = x. */
static inline struct lb_value *splat(struct lb_graph *g, const char *name, struct lb_type t,
                                     float x) {
  int64_t n = lb_shape_numel(&t.shape);
  float *buf = malloc(sizeof *buf * (size_t)(n ? n : 1));
  for (int64_t i = 0; i < n; i++) buf[i] = x;
  struct lb_value *v = cst(g, name, t, buf);
  free(buf);
  return v;
}

static inline int count_op(const struct lb_graph *g, enum lb_op op) {
  int c = 0;
  for (int32_t i = 0; i < g->n_nodes; i++) c += g->nodes[i]->op == op;
  return c;
}

static inline struct lb_node *find_op(const struct lb_graph *g, enum lb_op op) {
  for (int32_t i = 0; i < g->n_nodes; i++)
    if (g->nodes[i]->op == op) return g->nodes[i];
  return NULL;
}

/* Runs one pass directly; returns ctx.changed, asserts success. */
static inline bool run_pass(struct lb_graph *g, const char *name) {
  const struct lb_pass_info *p = lb_pass_find(name);
  assert_non_null(p);
  struct lb_diag d;
  lb_diag_init(&d, "test");
  struct lb_pass_context ctx = {.diag = &d};
  enum lb_status st = p->run(g, &ctx);
  if (st != LB_OK) fprintf(stderr, "%s", d.text ? d.text : "");
  assert_int_equal(st, LB_OK);
  lb_arena_free(&ctx.scratch);
  lb_diag_free(&d);
  return ctx.changed;
}

/* Node i's live topological order: every input defined before use. */
static inline void assert_topological(struct lb_graph *g) {
  int32_t nv = lb_graph_index_values(g);
  bool *defined = calloc((size_t)nv + 1, 1);
  for (int32_t k = 0; k < g->n_inputs; k++) defined[g->inputs[k]->id] = true;
  for (int32_t i = 0; i < g->n_nodes; i++) {
    struct lb_node *n = g->nodes[i];
    assert_false(n->dead);
    for (int32_t k = 0; k < n->n_inputs; k++)
      if (n->inputs[k]) assert_true(defined[n->inputs[k]->id]);
    for (int32_t o = 0; o < n->n_outputs; o++) {
      assert_ptr_equal(n->outputs[o]->producer, n);
      assert_int_equal(n->outputs[o]->producer_output, o);
      defined[n->outputs[o]->id] = true;
    }
  }
  for (int32_t k = 0; k < g->n_outputs; k++) assert_true(defined[g->outputs[k]->id]);
  free(defined);
}

static inline float const_f32(const struct lb_graph *g, const struct lb_value *v, int64_t i) {
  const float *p = lb_value_const_data(g, v);
  assert_non_null(p);
  return p[i];
}

/* Whole-graph evaluation with the reference evaluator: every value's buffer,
 * indexed by value id (graph inputs and constants borrowed, the rest owned). */
struct run {
  int32_t nv;
  void **buf;
  bool *owned;
};

static inline struct run eval_values(struct lb_graph *g, float *const *inputs) {
  struct run r;
  r.nv = lb_graph_index_values(g);
  r.buf = calloc((size_t)r.nv, sizeof *r.buf);
  r.owned = calloc((size_t)r.nv, sizeof *r.owned);
  for (int32_t i = 0; i < g->n_inputs; i++) r.buf[g->inputs[i]->id] = inputs[i];
  struct lb_diag d;
  lb_diag_init(&d, "eval");
  for (int32_t i = 0; i < g->n_nodes; i++) {
    struct lb_node *n = g->nodes[i];
    if (n->op == LB_OP_CONST) {
      r.buf[n->outputs[0]->id] = (void *)lb_value_const_data(g, n->outputs[0]);
      continue;
    }
    const void *ins[8];
    void *outs[4];
    for (int32_t k = 0; k < n->n_inputs; k++) ins[k] = n->inputs[k] ? r.buf[n->inputs[k]->id] : NULL;
    for (int32_t o = 0; o < n->n_outputs; o++) {
      outs[o] = r.buf[n->outputs[o]->id] = malloc((size_t)lb_type_nbytes(&n->outputs[o]->type));
      r.owned[n->outputs[o]->id] = true;
    }
    enum lb_status st = lb_eval_node(g, n, ins, outs, &d);
    if (st != LB_OK) fprintf(stderr, "%s", d.text);
    assert_int_equal(st, LB_OK);
  }
  lb_diag_free(&d);
  return r;
}

static inline void run_free(struct run *r) {
  for (int32_t i = 0; i < r->nv; i++)
    if (r->owned[i]) free(r->buf[i]);
  free(r->buf);
  free(r->owned);
}

/* Whether some node of g outputs the value named so. */
static inline bool defines(const struct lb_graph *g, const char *value) {
  for (int32_t i = 0; i < g->n_nodes; i++)
    for (int32_t o = 0; o < g->nodes[i]->n_outputs; o++)
      if (strcmp(g->nodes[i]->outputs[o]->name, value) == 0) return true;
  return false;
}


#endif
