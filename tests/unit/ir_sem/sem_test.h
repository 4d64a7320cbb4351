/* sem_test.h: small builders shared by the ir_sem tests. */
#ifndef LB_SEM_TEST_H
#define LB_SEM_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

#include <cmocka.h>

#include "ir/ir.h"

#define NARGS_I64(...) (sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t))
/* TY(F32, 3, 4) is f32[3,4]; TY0(F32) is a f32 scalar. */
#define TY(dt, ...) ty(LB_DTYPE_##dt, (int64_t[]){__VA_ARGS__}, (int32_t)NARGS_I64(__VA_ARGS__))
#define TY0(dt) ty(LB_DTYPE_##dt, NULL, 0)
#define INTS(...) (int64_t[]){__VA_ARGS__}, (int64_t)NARGS_I64(__VA_ARGS__)
/* MK(g, op, n_outputs, inputs...) appends a node; NULL inputs are omitted ones. */
#define MK(g, op, nout, ...)                                                                \
  lb_graph_add_node(g, LB_OP_##op, #op, (struct lb_value *[]){__VA_ARGS__},                \
                    (int32_t)(sizeof((struct lb_value *[]){__VA_ARGS__}) / sizeof(void *)), \
                    NULL, nout)

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

static inline struct lb_value *cst(struct lb_graph *g, const char *name, struct lb_type t,
                                   const void *data) {
  return lb_graph_add_const(g, name, &t, data)->outputs[0];
}

static inline void expect_type(const struct lb_value *v, struct lb_type want) {
  if (v->type.dtype != want.dtype || !lb_shape_equal(&v->type.shape, &want.shape)) {
    print_message("type mismatch: got %s rank %d [", lb_dtype_traits[v->type.dtype].name,
                  v->type.shape.rank);
    for (int32_t i = 0; i < v->type.shape.rank; i++)
      print_message("%lld ", (long long)v->type.shape.dims[i]);
    print_message("]\n");
    fail();
  }
}

/* Infers n and checks success. */
static inline void infer_ok(struct lb_graph *g, struct lb_node *n) {
  struct lb_diag d;
  lb_diag_init(&d, "test");
  enum lb_status st = lb_infer_node(g, n, &d);
  if (st != LB_OK) print_message("unexpected error: %s", d.text ? d.text : "(none)\n");
  assert_int_equal(st, LB_OK);
  lb_diag_free(&d);
}

/* Infers n and checks it fails with `want` and a message containing `frag`. */
static inline void infer_fails(struct lb_graph *g, struct lb_node *n, enum lb_status want,
                               const char *frag) {
  struct lb_diag d;
  lb_diag_init(&d, "test");
  enum lb_status st = lb_infer_node(g, n, &d);
  if (st != want || !d.text || !strstr(d.text, frag))
    print_message("expected status %s and '%s', got %s: %s", lb_status_name(want), frag,
                  lb_status_name(st), d.text ? d.text : "(no message)\n");
  assert_int_equal(st, want);
  assert_non_null(d.text);
  assert_non_null(strstr(d.text, frag));
  lb_diag_free(&d);
}

/* Infers n (inputs must be consts) and evaluates it; returns malloc'd output
 * buffers in outs (caller frees each) and the status of lb_eval_node. */
static inline enum lb_status eval_node(struct lb_graph *g, struct lb_node *n, void **outs,
                                       const char *want_frag) {
  infer_ok(g, n);
  const void *ins[16] = {0};
  void *o[16] = {0};
  for (int32_t i = 0; i < n->n_inputs; i++)
    ins[i] = n->inputs[i] ? lb_value_const_data(g, n->inputs[i]) : NULL;
  for (int32_t i = 0; i < n->n_outputs; i++) {
    int64_t b = lb_type_nbytes(&n->outputs[i]->type);
    o[i] = calloc(1, (size_t)(b ? b : 1));
  }
  struct lb_diag d;
  lb_diag_init(&d, "test");
  enum lb_status st = lb_eval_node(g, n, ins, o, &d);
  if (want_frag) {
    if (st == LB_OK || !d.text || !strstr(d.text, want_frag))
      print_message("expected an error with '%s', got %s\n", want_frag, d.text ? d.text : "ok");
    assert_int_not_equal(st, LB_OK);
    assert_non_null(strstr(d.text, want_frag));
  } else if (st != LB_OK) {
    print_message("eval failed: %s", d.text);
  }
  lb_diag_free(&d);
  for (int32_t i = 0; i < n->n_outputs; i++) {
    if (outs) outs[i] = o[i];
    else free(o[i]);
  }
  return st;
}

/* Evaluates n, expects success, returns output 0 (caller frees). */
static inline void *eval1(struct lb_graph *g, struct lb_node *n) {
  void *outs[16] = {0};
  assert_int_equal(eval_node(g, n, outs, NULL), LB_OK);
  for (int32_t i = 1; i < n->n_outputs; i++) free(outs[i]);
  return outs[0];
}

static inline bool close_enough(double got, double want, double rtol, double atol) {
  if (isnan(want)) return isnan(got);
  if (isinf(want)) return got == want;
  return fabs(got - want) <= atol + rtol * fabs(want);
}

static inline void check_f32(const float *got, const float *want, int64_t n, double rtol) {
  for (int64_t i = 0; i < n; i++)
    if (!close_enough(got[i], want[i], rtol, 1e-6)) {
      print_message("element %lld: got %.9g, want %.9g\n", (long long)i, got[i], want[i]);
      fail();
    }
}

static inline void check_i64(const int64_t *got, const int64_t *want, int64_t n) {
  for (int64_t i = 0; i < n; i++)
    if (got[i] != want[i]) {
      print_message("element %lld: got %lld, want %lld\n", (long long)i, (long long)got[i],
                    (long long)want[i]);
      fail();
    }
}

#define CHECK_F32(got, ...)                                                           \
  check_f32((const float *)(got), (const float[]){__VA_ARGS__},                        \
            (int64_t)(sizeof((float[]){__VA_ARGS__}) / sizeof(float)), 1e-5)
/* Element-wise comparison of any integer buffer against a literal list. */
#define CHECK_INTS(ctype, got, ...)                                                   \
  do {                                                                                \
    const ctype *g_ = (const ctype *)(got);                                           \
    const int64_t w_[] = {__VA_ARGS__};                                               \
    for (size_t i_ = 0; i_ < sizeof w_ / sizeof w_[0]; i_++)                          \
      if ((int64_t)g_[i_] != w_[i_]) {                                                \
        print_message("element %zu: got %lld, want %lld\n", i_, (long long)g_[i_],  \
                      (long long)w_[i_]);                                             \
        fail();                                                                       \
      }                                                                               \
  } while (0)

#endif
