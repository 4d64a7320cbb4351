/* fe_test.h: shared helpers of the frontend tests (cmocka). */
#ifndef LB_TEST_FE_TEST_H
#define LB_TEST_FE_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "frontend/onnx.h"
#include "model_builder.h"

/* Packs m and loads it (no folder: external data refused) with options o (may be NULL). */
static inline enum lb_status load_mb(struct mb *m, const struct lb_onnx_options *o,
                                     struct lb_graph **g, struct lb_diag *d) {
  size_t len;
  uint8_t *buf = mb_pack(m, &len);
  lb_diag_init(d, "model.onnx");
  enum lb_status st = lb_onnx_load_buffer(buf, len, NULL, o, g, d);
  free(buf);
  if (st != LB_OK) assert_null(*g);
  return st;
}

/* Loads m, failing the test (with the messages) unless it imports. Frees m. */
static inline struct lb_graph *load_ok(struct mb *m, const struct lb_onnx_options *o) {
  struct lb_graph *g = NULL;
  struct lb_diag d;
  enum lb_status st = load_mb(m, o, &g, &d);
  if (st != LB_OK) fprintf(stderr, "unexpected import failure:\n%s", d.text ? d.text : "");
  lb_diag_free(&d);
  mb_free(m);
  assert_int_equal(st, LB_OK);
  assert_non_null(g);
  return g;
}

/* Loads m expecting status st and a message containing `text` (NULL: any). Frees m. */
static inline void load_fails(struct mb *m, const struct lb_onnx_options *o, enum lb_status st,
                              const char *text) {
  struct lb_graph *g = NULL;
  struct lb_diag d;
  enum lb_status got = load_mb(m, o, &g, &d);
  mb_free(m);
  if (got != st || (text && (!d.text || !strstr(d.text, text))))
    fprintf(stderr, "expected status %s and \"%s\", got %s:\n%s", lb_status_name(st),
            text ? text : "", lb_status_name(got), d.text ? d.text : "");
  assert_int_equal(got, st);
  if (text) assert_non_null(strstr(d.text, text));
  assert_null(g);
  lb_diag_free(&d);
}

static inline struct lb_node *producer_of(const struct lb_graph *g, const char *value) {
  struct lb_value *v = lb_graph_find_value(g, value);
  assert_non_null(v);
  return v->producer;
}

static inline int count_op(const struct lb_graph *g, enum lb_op op) {
  int n = 0;
  for (int32_t i = 0; i < g->n_nodes; i++) n += g->nodes[i]->op == op;
  return n;
}

static inline void assert_ints_attr(const struct lb_node *n, const char *name, int64_t count,
                                    const int64_t *want) {
  const struct lb_attr *a = lb_node_attr(n, name);
  assert_non_null(a);
  assert_int_equal(a->kind, LB_ATTR_INTS);
  assert_int_equal(a->n, count);
  for (int64_t i = 0; i < count; i++) assert_int_equal(a->ints[i], want[i]);
}

static inline void assert_shape(const struct lb_value *v, int32_t rank, const int64_t *dims) {
  assert_int_equal(v->type.shape.rank, rank);
  for (int32_t i = 0; i < rank; i++) assert_int_equal(v->type.shape.dims[i], dims[i]);
}

#define INTS(...) ((const int64_t[]){__VA_ARGS__})
#define NINTS(...) (sizeof((const int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), INTS(__VA_ARGS__)

#endif
