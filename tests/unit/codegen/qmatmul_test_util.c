/* qmatmul_test_util.c: see qmatmul_test_util.h. */
#include "cg_test.h"
#include "qmatmul_test_util.h"

const struct qmm_target qmm_int_targets[QMM_N_INT_TARGETS] = {
    {"host (avx512 vnni)", NULL, NULL},
    {"host -avx512vnni (vpmaddwd zmm)", NULL, "-avx512vnni"},
    {"x86-64-v3 +avx512vl,+avx512vnni (vpdpbusd ymm)", "x86-64-v3", "+avx512f,+avx512vl,+avx512vnni"},
    {"x86-64-v3 (vpmaddwd ymm)", "x86-64-v3", NULL},
    {"x86-64 (vpmaddwd xmm)", "x86-64", NULL},
};

void qmm_chunked_parallel_for(lb_jit_task_fn fn, void *ctx, int64_t n, int64_t grain) {
  int64_t pos = 0, sz = grain < 1 ? 1 : grain;
  while (pos < n) {
    int64_t e = pos + sz < n ? pos + sz : n;
    fn(ctx, pos, e);
    pos = e;
    sz = sz * 2 + 1;
  }
}

struct lb_qparams *qmm_qparams(struct lb_graph *g, int bits, int32_t axis, int32_t group, const float *scales,
                               int64_t n, const int32_t *zps, bool is_unsigned) {
  struct lb_qparams *q = lb_arena_alloc(&g->arena, sizeof *q);
  *q = (struct lb_qparams){.bits = bits, .axis = axis, .group_size = group, .symmetric = !zps,
                           .is_unsigned = is_unsigned, .n = n};
  q->scales = lb_arena_alloc(&g->arena, sizeof *q->scales * (size_t)n);
  memcpy(q->scales, scales, sizeof *q->scales * (size_t)n);
  if (zps) {
    q->zero_points = lb_arena_alloc(&g->arena, sizeof *q->zero_points * (size_t)n);
    memcpy(q->zero_points, zps, sizeof *q->zero_points * (size_t)n);
  }
  return q;
}

bool qmm_exact_act(const char *act) { return !act || !strcmp(act, "none") || !strcmp(act, "relu"); }

bool qmm_float_match(double got, double want, double tol) {
  return isnan(want) ? isnan(got) : isinf(want) ? got == want : fabs(got - want) <= tol;
}

struct lb_node *qmm_add_node(struct lb_graph *g, struct lb_value *a, struct lb_value *w, struct lb_value *bias,
                             const char *a_quant, const char *act) {
  struct lb_value *ins[3] = {a, w, bias};
  struct lb_node *n = lb_graph_add_node(g, LB_OP_QMATMUL, "qmm", ins, bias ? 3 : 2, NULL, 1);
  lb_node_set_attr_string(g, n, "a_quant", a_quant);
  if (act) lb_node_set_attr_string(g, n, "act", act);
  return n;
}

void qmm_expect_verify_error(struct lb_graph *g, const char *frag) {
  struct lb_diag d;
  lb_diag_init(&d, "verify");
  assert_int_not_equal(lb_graph_verify(g, &d), LB_OK);
  if (!d.text || !strstr(d.text, frag)) fprintf(stderr, "verify: want '%s', got: %s\n", frag, d.text ? d.text : "");
  assert_non_null(d.text);
  assert_non_null(strstr(d.text, frag));
  lb_diag_free(&d);
}

struct qmm_outputs qmm_run(struct lb_graph *g, struct lb_node *n, const struct qmm_target *t, const void *a,
                           const void *bias) {
  struct lb_diag d;
  lb_diag_init(&d, "verify");
  if (lb_graph_verify(g, &d) != LB_OK) fprintf(stderr, "%s", d.text ? d.text : "");
  assert_int_equal(lb_graph_verify(g, &d), LB_OK);
  lb_diag_free(&d);
  plan_simple(g);

  lb_diag_init(&d, "test");
  struct lb_jit *j = NULL;
  struct lb_codegen_options o = {.opt_level = 3, .model_name = "t", .cpu = t->cpu, .features = t->features};
  enum lb_status st = lb_jit_compile(g, &o, &j, &d);
  if (st != LB_OK) fprintf(stderr, "%s: compile failed: %s\n", t->name, d.text ? d.text : "?");
  assert_int_equal(st, LB_OK);
  lb_diag_free(&d);

  const struct lb_value *yv = n->outputs[0];
  int64_t ybytes = lb_shape_numel(&yv->type.shape) * lb_dtype_traits[yv->type.dtype].size;
  struct qmm_outputs r = {.y = xalloc(ybytes), .ref = xalloc(ybytes)};
  void *act = xalloc(lb_jit_activations_size(j) + 64);
  memset(r.y, 0xcd, (size_t)ybytes);
  const void *in[2] = {a, bias};
  assert_int_equal(lb_jit_run(j, in, (void *[]){r.y}, act), 0);
  const void *nin[3] = {a, lb_value_const_data(g, n->inputs[1]), bias};
  lb_diag_init(&d, "ref");
  assert_int_equal(lb_eval_node(g, n, nin, (void *[]){r.ref}, &d), LB_OK);
  lb_diag_free(&d);
  free(act);
  lb_jit_free(j);
  return r;
}

void qmm_outputs_free(struct qmm_outputs *r) {
  free(r->y);
  free(r->ref);
  r->y = r->ref = NULL;
}
