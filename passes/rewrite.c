/* rewrite.c: helpers shared by the passes (see rewrite.h). */
#include "passes/rewrite.h"

#include <math.h>
#include <stdio.h>
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
  /* keep_float=1 (split-outliers' float part, LoRA adapters) is no layer to rescale or search */
  if (lb_node_attr_int(node, "keep_float", 0)) return false;
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

/* ---- rescaling the input channels of linear layers (smoothquant, awq) ------- */

static void *rw_grow(void *p, int32_t *cap, int32_t need, size_t elem) {
  if (need <= *cap) return p;
  int32_t c = *cap ? *cap * 2 : 8;
  while (c < need) c *= 2;
  p = realloc(p, elem * (size_t)c);
  if (!p) abort();
  *cap = c;
  return p;
}

struct lb_rw_linear_group *lb_rw_group_linears(struct lb_graph *g, int32_t *n_groups) {
  int32_t *uses = lb_rw_count_uses(g);
  int32_t *group_of = malloc(sizeof *group_of * (size_t)(g->n_values ? g->n_values : 1));
  if (!group_of) abort();
  for (int32_t i = 0; i < g->n_values; i++) group_of[i] = -1;
  struct lb_rw_linear_group *groups = NULL;
  int32_t n = 0, cap = 0;
  for (int32_t i = 0; i < g->n_nodes; i++) {
    struct lb_rw_linear l;
    if (!lb_rw_match_linear(g, g->nodes[i], &l)) continue;
    int32_t gi = group_of[l.x->id];
    if (gi < 0) {
      groups = rw_grow(groups, &cap, n + 1, sizeof *groups);
      groups[n] = (struct lb_rw_linear_group){.x = l.x};
      gi = group_of[l.x->id] = n++;
    }
    struct lb_rw_linear_group *grp = &groups[gi];
    grp->layers = rw_grow(grp->layers, &grp->cap_layers, grp->n_layers + 1, sizeof *grp->layers);
    grp->layers[grp->n_layers++] = g->nodes[i];
  }
  for (int32_t i = 0; i < n; i++) groups[i].exclusive = uses[groups[i].x->id] == groups[i].n_layers;
  free(uses);
  free(group_of);
  *n_groups = n;
  return groups;
}

void lb_rw_linear_groups_free(struct lb_rw_linear_group *groups, int32_t n_groups) {
  for (int32_t i = 0; i < n_groups; i++) free(groups[i].layers);
  free(groups);
}

/* A fresh const with old's type holding `data`, placed before `reader`, which
 * is made to read it at input `slot` instead of old. */
static void replace_const_input(struct lb_rw_rescale *r, struct lb_node *reader, int32_t slot,
                                const struct lb_type *type, const float *data) {
  struct lb_value *old = reader->inputs[slot];
  char base[256];
  snprintf(base, sizeof base, "%s.%s", old->name, r->suffix);
  struct lb_node *c = lb_graph_insert_const(r->g, reader, base, type, data);
  reader->inputs[slot] = c->outputs[0];
  r->replaced = rw_grow(r->replaced, &r->cap_replaced, r->n_replaced + 1, sizeof *r->replaced);
  r->replaced[r->n_replaced++] = old->producer;
}

static float *copy_f32(const struct lb_graph *g, const struct lb_value *v) {
  int64_t n = lb_shape_numel(&v->type.shape);
  float *p = malloc(sizeof *p * (size_t)(n ? n : 1));
  if (!p) abort();
  memcpy(p, lb_value_const_data(g, v), sizeof *p * (size_t)n);
  return p;
}

/* A constant f32 whose elements are one per channel of a K-channel last dim. */
static bool per_channel_const(const struct lb_graph *g, const struct lb_value *v, int64_t k) {
  return v && v->type.dtype == LB_DTYPE_F32 && lb_value_const_data(g, v) && !v->qparams &&
         v->type.shape.rank >= 1 && lb_shape_numel(&v->type.shape) == k &&
         v->type.shape.dims[v->type.shape.rank - 1] == k;
}

static bool fold_into_layer_norm(struct lb_rw_rescale *r, struct lb_node *ln, const float *s, int64_t k) {
  int32_t rank = ln->inputs[0]->type.shape.rank;
  int64_t axis = lb_node_attr_int(ln, "axis", -1);
  if (axis < 0) axis += rank;
  if (axis != rank - 1 || !per_channel_const(r->g, ln->inputs[1], k)) return false;
  if (ln->n_inputs > 2 && ln->inputs[2] && !per_channel_const(r->g, ln->inputs[2], k)) return false;
  for (int32_t slot = 1; slot < ln->n_inputs && slot <= 2; slot++) {
    if (!ln->inputs[slot]) continue;
    float *p = copy_f32(r->g, ln->inputs[slot]);
    for (int64_t j = 0; j < k; j++) p[j] /= s[j];
    replace_const_input(r, ln, slot, &ln->inputs[slot]->type, p);
    free(p);
  }
  return true;
}

static bool fold_into_linear(struct lb_rw_rescale *r, struct lb_node *mm, const float *s, int64_t k) {
  struct lb_rw_linear l;
  if (!lb_rw_match_linear(r->g, mm, &l) || strcmp(l.act, "none") != 0 || l.n != k) return false;
  if (l.bias && !per_channel_const(r->g, l.bias, k)) return false;
  float *w = copy_f32(r->g, l.w);
  for (int64_t row = 0; row < l.k; row++)
    for (int64_t c = 0; c < l.n; c++) w[lb_rw_linear_index(&l, row, c)] /= s[c];
  replace_const_input(r, mm, 1, &l.w->type, w);
  free(w);
  if (l.bias) {
    float *b = copy_f32(r->g, l.bias);
    for (int64_t c = 0; c < k; c++) b[c] /= s[c];
    replace_const_input(r, mm, 2, &l.bias->type, b);
    free(b);
  }
  return true;
}

/* mul(A, C) with A of X's type and C a constant: C becomes C' (C broadcast
 * to last dim K) / s, which leaves the result's type unchanged. */
static bool fold_into_mul(struct lb_rw_rescale *r, struct lb_node *mul, const float *s, int64_t k) {
  struct lb_value *x = mul->outputs[0];
  int32_t slot = lb_value_is_const(mul->inputs[1]) ? 1 : lb_value_is_const(mul->inputs[0]) ? 0 : -1;
  if (slot < 0 || lb_value_is_const(mul->inputs[1 - slot])) return false;
  struct lb_value *a = mul->inputs[1 - slot], *c = mul->inputs[slot];
  if (a->type.dtype != LB_DTYPE_F32 || !lb_shape_equal(&a->type.shape, &x->type.shape)) return false;
  if (c->type.dtype != LB_DTYPE_F32 || !lb_value_const_data(r->g, c) || c->qparams) return false;
  struct lb_type t = c->type;
  int64_t last = t.shape.rank ? t.shape.dims[t.shape.rank - 1] : 1;
  if (last != 1 && last != k) return false;
  if (t.shape.rank == 0) t.shape.rank = 1;
  t.shape.dims[t.shape.rank - 1] = k;
  int64_t rows = lb_shape_numel(&t.shape) / k;
  const float *src = lb_value_const_data(r->g, c);
  float *p = malloc(sizeof *p * (size_t)(rows * k));
  if (!p) abort();
  for (int64_t row = 0; row < rows; row++)
    for (int64_t j = 0; j < k; j++) p[row * k + j] = src[row * last + (last == 1 ? 0 : j)] / s[j];
  replace_const_input(r, mul, slot, &t, p);
  free(p);
  return true;
}

static bool fold_into_producer(struct lb_rw_rescale *r, struct lb_value *x, const float *s, int64_t k) {
  struct lb_node *p = x->producer;
  if (!p || p->dead || x->producer_output != 0) return false;
  switch (p->op) {
  case LB_OP_LAYER_NORM: return fold_into_layer_norm(r, p, s, k);
  case LB_OP_MATMUL:
  case LB_OP_FUSED_MATMUL:
  case LB_OP_GEMM: return fold_into_linear(r, p, s, k);
  case LB_OP_MUL: return fold_into_mul(r, p, s, k);
  default: return false;
  }
}

bool lb_rw_rescale_group(struct lb_rw_rescale *r, const struct lb_rw_linear_group *grp, const float *s) {
  struct lb_graph *g = r->g;
  struct lb_value *x = grp->x;
  int64_t k = x->type.shape.dims[x->type.shape.rank - 1];
  /* the readers' weights: row j times s_j */
  for (int32_t i = 0; i < grp->n_layers; i++) {
    struct lb_rw_linear l;
    LB_ASSERT(lb_rw_match_linear(g, grp->layers[i], &l));
    float *w = copy_f32(g, l.w);
    for (int64_t row = 0; row < k; row++)
      for (int64_t c = 0; c < l.n; c++) w[lb_rw_linear_index(&l, row, c)] *= s[row];
    replace_const_input(r, grp->layers[i], 1, &l.w->type, w);
    free(w);
  }
  /* x itself: divided by s in its producer, or by an explicit mul */
  if (grp->exclusive && fold_into_producer(r, x, s, k)) return true;
  float *inv = malloc(sizeof *inv * (size_t)k);
  if (!inv) abort();
  for (int64_t j = 0; j < k; j++) inv[j] = 1.0f / s[j];
  char base[256];
  snprintf(base, sizeof base, "%s.%s_scale", x->name, r->suffix);
  struct lb_type t = {.dtype = LB_DTYPE_F32, .shape = {.rank = 1, .dims = {k}}};
  struct lb_value *sc = lb_graph_insert_const(g, grp->layers[0], base, &t, inv)->outputs[0];
  free(inv);
  snprintf(base, sizeof base, "%s.%s", x->name, r->suffix);
  const char *names[1] = {base};
  struct lb_value *in[2] = {x, sc};
  /* named after the layer it serves, as the other inserted nodes (loc) */
  struct lb_node *mul =
      lb_graph_insert_node(g, grp->layers[0], LB_OP_MUL, grp->layers[0]->name, in, 2, names, 1);
  mul->outputs[0]->type = x->type;
  for (int32_t i = 0; i < grp->n_layers; i++) grp->layers[i]->inputs[0] = mul->outputs[0];
  return false;
}

void lb_rw_rescale_finish(struct lb_rw_rescale *r) {
  int32_t *uses = lb_rw_count_uses(r->g);
  for (int32_t i = 0; i < r->n_replaced; i++)
    if (lb_rw_unused(r->replaced[i], uses)) r->replaced[i]->dead = true;
  free(uses);
  lb_graph_compact(r->g);
  free(r->replaced);
  r->replaced = NULL;
  r->n_replaced = r->cap_replaced = 0;
}
