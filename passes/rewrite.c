/* rewrite.c: helpers shared by the passes (see rewrite.h). */
#include "passes/rewrite.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int32_t *lb_rw_count_uses(struct lb_graph *g) {
  lb_graph_index_values(g);
  int32_t *uses = calloc((size_t)(g->n_values ? g->n_values : 1), sizeof *uses);
  if (!uses) abort();
  for (int32_t i = 0; i < g->n_nodes; i++) {
    const struct lb_node *n = g->nodes[i];
    if (n->dead) continue;
    for (int32_t k = 0; k < n->n_inputs; k++)
      if (n->inputs[k]) uses[n->inputs[k]->id]++;
  }
  for (int32_t k = 0; k < g->n_outputs; k++) uses[g->outputs[k]->id]++;
  return uses;
}

bool lb_rw_is_graph_output(const struct lb_graph *g, const struct lb_value *v) {
  for (int32_t k = 0; k < g->n_outputs; k++)
    if (g->outputs[k] == v) return true;
  return false;
}

bool lb_rw_is_graph_input(const struct lb_graph *g, const struct lb_value *v) {
  for (int32_t k = 0; k < g->n_inputs; k++)
    if (g->inputs[k] == v) return true;
  return false;
}

static float half_to_float(uint16_t h) {
  uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
  if (exp == 0) {
    if (man == 0) {
      bits = sign;
    } else { /* subnormal: normalize */
      exp = 127 - 15 + 1;
      while (!(man & 0x400)) {
        man <<= 1;
        exp--;
      }
      bits = sign | (exp << 23) | ((man & 0x3ff) << 13);
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | (man << 13);
  } else {
    bits = sign | ((exp - 15 + 127) << 23) | (man << 13);
  }
  float f;
  memcpy(&f, &bits, sizeof f);
  return f;
}

bool lb_rw_load_double(enum lb_dtype dt, const void *data, int64_t i, double *out) {
  const unsigned char *p = data;
  switch (dt) {
#define LOAD(E, T)                                       \
  case LB_DTYPE_##E: {                                   \
    T x;                                                 \
    memcpy(&x, p + (size_t)i * sizeof x, sizeof x);      \
    *out = (double)x;                                    \
    return true;                                         \
  }
    LOAD(F32, float)
    LOAD(F64, double)
    LOAD(I8, int8_t)
    LOAD(I16, int16_t)
    LOAD(I32, int32_t)
    LOAD(I64, int64_t)
    LOAD(U8, uint8_t)
    LOAD(U16, uint16_t)
    LOAD(U32, uint32_t)
    LOAD(U64, uint64_t)
#undef LOAD
  case LB_DTYPE_F16: {
    uint16_t h;
    memcpy(&h, p + (size_t)i * 2, 2);
    *out = half_to_float(h);
    return true;
  }
  case LB_DTYPE_BF16: {
    uint16_t h;
    memcpy(&h, p + (size_t)i * 2, 2);
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, sizeof f);
    *out = f;
    return true;
  }
  default:
    return false;
  }
}

bool lb_rw_const_splat(const struct lb_graph *g, const struct lb_value *v, double *out) {
  const void *data = lb_value_const_data(g, v);
  if (!data) return false;
  int64_t n = lb_shape_numel(&v->type.shape);
  if (n < 1) return false;
  size_t es = (size_t)lb_dtype_traits[v->type.dtype].size;
  if (!lb_rw_load_double(v->type.dtype, data, 0, out)) return false;
  for (int64_t i = 1; i < n; i++)
    if (memcmp((const char *)data + (size_t)i * es, data, es) != 0) return false;
  return true;
}

bool lb_rw_near(double a, double b, double tol) {
  return fabs(a - b) <= tol * fmax(1.0, fabs(b));
}

struct lb_node *lb_rw_producer(const struct lb_value *v, enum lb_op op) {
  if (!v || !v->producer || v->producer->dead || v->producer->op != op) return NULL;
  return v->producer;
}

void lb_rw_reset_node(struct lb_graph *g, struct lb_node *n, enum lb_op op,
                      struct lb_value *const *inputs, int32_t n_inputs) {
  struct lb_value **in = lb_arena_alloc(&g->arena, sizeof *in * (size_t)(n_inputs ? n_inputs : 1));
  for (int32_t i = 0; i < n_inputs; i++) in[i] = inputs[i];
  n->op = op;
  n->inputs = in;
  n->n_inputs = n_inputs;
  n->attrs = NULL;
  n->n_attrs = 0;
  n->blob = -1;
}

void lb_rw_insert_at(struct lb_graph *g, int32_t pos, struct lb_node *n) {
  LB_ASSERT(pos >= 0 && pos <= g->n_nodes);
  if (g->n_nodes + 1 > g->cap_nodes) {
    int32_t cap = g->cap_nodes ? g->cap_nodes * 2 : 8;
    struct lb_node **p = realloc(g->nodes, sizeof *p * (size_t)cap);
    if (!p) abort();
    g->nodes = p;
    g->cap_nodes = cap;
  }
  memmove(g->nodes + pos + 1, g->nodes + pos, sizeof *g->nodes * (size_t)(g->n_nodes - pos));
  g->nodes[pos] = n;
  g->n_nodes++;
}

static bool blob_name_taken(const struct lb_graph *g, const char *name) {
  for (int32_t b = 0; b < g->n_blobs; b++)
    if (strcmp(g->blobs[b].name, name) == 0) return true;
  return false;
}

const char *lb_rw_unique_blob_name(struct lb_graph *g, const char *base) {
  if (!base || !*base) base = "blob";
  if (!blob_name_taken(g, base)) return lb_arena_strdup(&g->arena, base);
  size_t len = strlen(base) + 24;
  char *buf = lb_arena_alloc(&g->arena, len);
  for (int64_t k = 1;; k++) {
    snprintf(buf, len, "%s.%lld", base, (long long)k);
    if (!blob_name_taken(g, buf)) return buf;
  }
}

bool lb_rw_forward_value(struct lb_graph *g, struct lb_value *from, struct lb_value *to) {
  if (from == to) return false;
  if (!lb_rw_is_graph_output(g, from)) {
    lb_graph_replace_uses(g, from, to);
    return true;
  }
  /* `from` is returned to the caller: keep that value and swap it with `to`,
   * so that to's producer now defines `from` and the node being removed
   * defines the orphaned `to` (which nothing reads any more). */
  if (!to->producer || to->producer->dead || lb_rw_is_graph_output(g, to) ||
      lb_rw_is_graph_input(g, to) || !from->producer)
    return false;
  struct lb_node *p = to->producer, *old = from->producer;
  int32_t p_idx = to->producer_output, old_idx = from->producer_output;
  lb_graph_replace_uses(g, to, from);
  p->outputs[p_idx] = from;
  old->outputs[old_idx] = to;
  from->producer = p;
  from->producer_output = p_idx;
  to->producer = old;
  to->producer_output = old_idx;
  struct lb_type t = from->type;
  from->type = to->type;
  to->type = t;
  struct lb_qparams *q = from->qparams;
  from->qparams = to->qparams;
  to->qparams = q;
  return true;
}

bool lb_rw_unused(const struct lb_node *n, const int32_t *uses) {
  for (int32_t o = 0; o < n->n_outputs; o++)
    if (uses[n->outputs[o]->id] > 0) return false;
  return true;
}

bool lb_rw_match_linear(const struct lb_graph *g, const struct lb_node *node,
                        struct lb_rw_linear *out) {
  if (node->dead || node->n_inputs < 2) return false;
  if (node->op != LB_OP_MATMUL && node->op != LB_OP_FUSED_MATMUL && node->op != LB_OP_GEMM)
    return false;
  struct lb_value *x = node->inputs[0], *w = node->inputs[1];
  if (!x || !w || x->type.dtype != LB_DTYPE_F32 || lb_value_is_const(x) || x->type.shape.rank < 1)
    return false;
  if (w->type.dtype != LB_DTYPE_F32 || w->type.shape.rank != 2 || w->qparams) return false;
  const float *data = lb_value_const_data(g, w);
  if (!data) return false;
  bool trans_b = node->op != LB_OP_MATMUL && lb_node_attr_int(node, "transB", 0) != 0;
  if (node->op == LB_OP_GEMM && (lb_node_attr_int(node, "transA", 0) != 0 || x->type.shape.rank != 2))
    return false;
  int64_t k = w->type.shape.dims[trans_b ? 1 : 0], n = w->type.shape.dims[trans_b ? 0 : 1];
  if (x->type.shape.dims[x->type.shape.rank - 1] != k) return false;
  *out = (struct lb_rw_linear){
      .x = x,
      .w = w,
      .bias = node->n_inputs > 2 ? node->inputs[2] : NULL,
      .w_data = data,
      .k = k,
      .n = n,
      .trans_b = trans_b,
      .act = node->op == LB_OP_FUSED_MATMUL ? lb_node_attr_string(node, "act", "none") : "none",
  };
  return true;
}
