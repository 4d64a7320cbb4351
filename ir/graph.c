/* graph.c: building and editing the IR graph. */
#include "ir/ir.h"

#include <stdlib.h>
#include <string.h>

struct lb_graph *lb_graph_new(const char *name) {
  struct lb_graph *g = calloc(1, sizeof *g);
  if (!g) abort();
  g->name = lb_arena_strdup(&g->arena, name ? name : "model");
  return g;
}

void lb_graph_free(struct lb_graph *g) {
  if (!g) return;
  for (int32_t i = 0; i < g->n_blobs; i++) free(g->blobs[i].data);
  free(g->blobs);
  free(g->nodes);
  free(g->inputs);
  free(g->outputs);
  free(g->names);
  lb_arena_free(&g->arena);
  free(g);
}

void *lb_blob_alloc(size_t size) {
  size_t rounded = (size + 63) & ~(size_t)63;
  void *p = aligned_alloc(64, rounded ? rounded : 64);
  if (!p) {
    fputs("lowbit: error: out of memory\n", stderr);
    abort();
  }
  memset(p, 0, rounded ? rounded : 64);
  return p;
}

uint64_t lb_hash_bytes(const void *data, size_t size) {
  const unsigned char *p = data;
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < size; i++) {
    h ^= p[i];
    h *= 0x100000001b3ull;
  }
  return h;
}

static uint64_t hash_str(const char *s) { return lb_hash_bytes(s, strlen(s)); }

static void *grow(void *p, int32_t *cap, int32_t need, size_t elem) {
  if (need <= *cap) return p;
  int32_t c = *cap ? *cap : 8;
  while (c < need) c *= 2;
  void *q = realloc(p, (size_t)c * elem);
  if (!q) abort();
  *cap = c;
  return q;
}

/* ---- name table ---------------------------------------------------------------- */
static void names_insert(struct lb_graph *g, struct lb_value *v);

static void names_rehash(struct lb_graph *g) {
  struct lb_value **old = g->names;
  int32_t old_cap = g->names_cap;
  g->names_cap = old_cap ? old_cap * 2 : 256;
  g->names = calloc((size_t)g->names_cap, sizeof *g->names);
  if (!g->names) abort();
  g->names_count = 0;
  for (int32_t i = 0; i < old_cap; i++)
    if (old[i]) names_insert(g, old[i]);
  free(old);
}

static void names_insert(struct lb_graph *g, struct lb_value *v) {
  if ((g->names_count + 1) * 2 > g->names_cap) names_rehash(g);
  uint32_t mask = (uint32_t)g->names_cap - 1;
  for (uint32_t i = (uint32_t)hash_str(v->name) & mask;; i = (i + 1) & mask) {
    if (!g->names[i]) {
      g->names[i] = v;
      g->names_count++;
      return;
    }
    if (g->names[i] == v) return;
  }
}

struct lb_value *lb_graph_find_value(const struct lb_graph *g, const char *name) {
  if (!g->names_cap) return NULL;
  uint32_t mask = (uint32_t)g->names_cap - 1;
  for (uint32_t i = (uint32_t)hash_str(name) & mask; g->names[i]; i = (i + 1) & mask)
    if (strcmp(g->names[i]->name, name) == 0) return g->names[i];
  return NULL;
}

const char *lb_graph_unique_name(struct lb_graph *g, const char *base) {
  if (!base || !*base) base = "v";
  if (!lb_graph_find_value(g, base)) return lb_arena_strdup(&g->arena, base);
  size_t n = strlen(base) + 24;
  char *buf = malloc(n);
  if (!buf) abort();
  for (int64_t k = 1;; k++) {
    snprintf(buf, n, "%s.%lld", base, (long long)k);
    if (!lb_graph_find_value(g, buf)) break;
  }
  const char *s = lb_arena_strdup(&g->arena, buf);
  free(buf);
  return s;
}

/* ---- values and nodes ----------------------------------------------------------- */
struct lb_value *lb_value_new(struct lb_graph *g, const char *name, struct lb_type type) {
  struct lb_value *v = lb_arena_alloc(&g->arena, sizeof *v);
  v->name = lb_graph_unique_name(g, name);
  v->type = type;
  v->mem_offset = -1;
  v->id = g->n_values++;
  names_insert(g, v);
  return v;
}

static struct lb_node *node_new(struct lb_graph *g, enum lb_op op, const char *name,
                                struct lb_value *const *inputs, int32_t n_inputs,
                                const char *const *out_names, int32_t n_outputs) {
  LB_ASSERT((unsigned)op < LB_OP_COUNT && n_inputs >= 0 && n_outputs >= 0);
  struct lb_node *n = lb_arena_alloc(&g->arena, sizeof *n);
  n->op = op;
  n->name = lb_arena_strdup(&g->arena, name ? name : "");
  n->blob = -1;
  n->n_inputs = n_inputs;
  n->inputs = lb_arena_alloc(&g->arena, sizeof *n->inputs * (size_t)(n_inputs ? n_inputs : 1));
  for (int32_t i = 0; i < n_inputs; i++) n->inputs[i] = inputs ? inputs[i] : NULL;
  n->n_outputs = n_outputs;
  n->outputs = lb_arena_alloc(&g->arena, sizeof *n->outputs * (size_t)(n_outputs ? n_outputs : 1));
  for (int32_t i = 0; i < n_outputs; i++) {
    char buf[64];
    const char *vn = out_names && out_names[i] ? out_names[i] : NULL;
    if (!vn) {
      if (name && *name && n_outputs == 1) {
        vn = name;
      } else {
        snprintf(buf, sizeof buf, "%s.out%d", name && *name ? "" : lb_op_info[op].ir_name, i);
        vn = buf;
        if (name && *name) {
          size_t len = strlen(name) + sizeof buf;
          char *t = lb_arena_alloc(&g->arena, len);
          snprintf(t, len, "%s.out%d", name, i);
          vn = t;
        }
      }
    }
    struct lb_value *v = lb_value_new(g, vn, (struct lb_type){0});
    v->producer = n;
    v->producer_output = i;
    n->outputs[i] = v;
  }
  return n;
}

static void nodes_insert_at(struct lb_graph *g, int32_t pos, struct lb_node *n) {
  g->nodes = grow(g->nodes, &g->cap_nodes, g->n_nodes + 1, sizeof *g->nodes);
  memmove(g->nodes + pos + 1, g->nodes + pos, sizeof *g->nodes * (size_t)(g->n_nodes - pos));
  g->nodes[pos] = n;
  g->n_nodes++;
}

struct lb_node *lb_graph_add_node(struct lb_graph *g, enum lb_op op, const char *name,
                                  struct lb_value *const *inputs, int32_t n_inputs,
                                  const char *const *out_names, int32_t n_outputs) {
  struct lb_node *n = node_new(g, op, name, inputs, n_inputs, out_names, n_outputs);
  nodes_insert_at(g, g->n_nodes, n);
  return n;
}

static int32_t node_index(const struct lb_graph *g, const struct lb_node *n) {
  for (int32_t i = 0; i < g->n_nodes; i++)
    if (g->nodes[i] == n) return i;
  LB_ASSERT(!"node not in graph");
  return -1;
}

struct lb_node *lb_graph_insert_node(struct lb_graph *g, struct lb_node *before, enum lb_op op,
                                     const char *name, struct lb_value *const *inputs,
                                     int32_t n_inputs, const char *const *out_names,
                                     int32_t n_outputs) {
  int32_t pos = node_index(g, before);
  struct lb_node *n = node_new(g, op, name, inputs, n_inputs, out_names, n_outputs);
  nodes_insert_at(g, pos, n);
  return n;
}

void lb_graph_add_input(struct lb_graph *g, struct lb_value *v) {
  int32_t cap = g->n_inputs;
  g->inputs = realloc(g->inputs, sizeof *g->inputs * (size_t)(cap + 1));
  if (!g->inputs) abort();
  g->inputs[g->n_inputs++] = v;
}

void lb_graph_add_output(struct lb_graph *g, struct lb_value *v) {
  g->outputs = realloc(g->outputs, sizeof *g->outputs * (size_t)(g->n_outputs + 1));
  if (!g->outputs) abort();
  g->outputs[g->n_outputs++] = v;
}

int32_t lb_graph_add_blob(struct lb_graph *g, const char *name, void *data, size_t size) {
  g->blobs = grow(g->blobs, &g->cap_blobs, g->n_blobs + 1, sizeof *g->blobs);
  struct lb_blob *b = &g->blobs[g->n_blobs];
  b->name = lb_arena_strdup(&g->arena, name ? name : "");
  b->size = size;
  b->data = data;
  b->hash = data ? lb_hash_bytes(data, size) : 0;
  return g->n_blobs++;
}

static struct lb_node *make_const(struct lb_graph *g, struct lb_node *before,
                                  const char *value_name, const struct lb_type *type,
                                  const void *data) {
  size_t size = (size_t)lb_type_nbytes(type);
  void *copy = lb_blob_alloc(size);
  if (size) memcpy(copy, data, size);
  const char *names[1] = {value_name};
  struct lb_node *n = before ? lb_graph_insert_node(g, before, LB_OP_CONST, "", NULL, 0, names, 1)
                             : lb_graph_add_node(g, LB_OP_CONST, "", NULL, 0, names, 1);
  n->outputs[0]->type = *type;
  n->blob = lb_graph_add_blob(g, n->outputs[0]->name, copy, size);
  return n;
}

struct lb_node *lb_graph_add_const(struct lb_graph *g, const char *value_name,
                                   const struct lb_type *type, const void *data) {
  return make_const(g, NULL, value_name, type, data);
}

struct lb_node *lb_graph_insert_const(struct lb_graph *g, struct lb_node *before,
                                      const char *value_name, const struct lb_type *type,
                                      const void *data) {
  return make_const(g, before, value_name, type, data);
}

bool lb_value_is_const(const struct lb_value *v) {
  return v && v->producer && v->producer->op == LB_OP_CONST;
}

const void *lb_value_const_data(const struct lb_graph *g, const struct lb_value *v) {
  if (!lb_value_is_const(v) || v->producer->blob < 0) return NULL;
  return g->blobs[v->producer->blob].data;
}

/* ---- attributes ------------------------------------------------------------------ */
static struct lb_attr *attr_slot(struct lb_graph *g, struct lb_node *n, const char *name) {
  int32_t i = 0;
  while (i < n->n_attrs && strcmp(n->attrs[i].name, name) < 0) i++;
  if (i < n->n_attrs && strcmp(n->attrs[i].name, name) == 0) {
    memset(&n->attrs[i], 0, sizeof n->attrs[i]);
  } else {
    struct lb_attr *a = lb_arena_alloc(&g->arena, sizeof *a * (size_t)(n->n_attrs + 1));
    if (n->n_attrs) { /* n->attrs is NULL before the first attribute: no memcpy(NULL) */
      memcpy(a, n->attrs, sizeof *a * (size_t)i);
      memcpy(a + i + 1, n->attrs + i, sizeof *a * (size_t)(n->n_attrs - i));
    }
    n->attrs = a;
    n->n_attrs++;
    memset(&n->attrs[i], 0, sizeof n->attrs[i]);
  }
  n->attrs[i].name = lb_arena_strdup(&g->arena, name);
  n->attrs[i].blob = -1;
  return &n->attrs[i];
}

void lb_node_set_attr_int(struct lb_graph *g, struct lb_node *n, const char *name, int64_t v) {
  struct lb_attr *a = attr_slot(g, n, name);
  a->kind = LB_ATTR_INT;
  a->i = v;
}

void lb_node_set_attr_float(struct lb_graph *g, struct lb_node *n, const char *name, double v) {
  struct lb_attr *a = attr_slot(g, n, name);
  a->kind = LB_ATTR_FLOAT;
  a->f = v;
}

void lb_node_set_attr_string(struct lb_graph *g, struct lb_node *n, const char *name,
                             const char *v) {
  struct lb_attr *a = attr_slot(g, n, name);
  a->kind = LB_ATTR_STRING;
  a->s = lb_arena_strdup(&g->arena, v);
}

void lb_node_set_attr_ints(struct lb_graph *g, struct lb_node *n, const char *name,
                           const int64_t *v, int64_t count) {
  struct lb_attr *a = attr_slot(g, n, name);
  a->kind = LB_ATTR_INTS;
  a->n = count;
  a->ints = lb_arena_alloc(&g->arena, sizeof *a->ints * (size_t)(count ? count : 1));
  if (count) memcpy(a->ints, v, sizeof *a->ints * (size_t)count);
}

void lb_node_set_attr_floats(struct lb_graph *g, struct lb_node *n, const char *name,
                             const double *v, int64_t count) {
  struct lb_attr *a = attr_slot(g, n, name);
  a->kind = LB_ATTR_FLOATS;
  a->n = count;
  a->floats = lb_arena_alloc(&g->arena, sizeof *a->floats * (size_t)(count ? count : 1));
  if (count) memcpy(a->floats, v, sizeof *a->floats * (size_t)count);
}

void lb_node_set_attr_strings(struct lb_graph *g, struct lb_node *n, const char *name,
                              const char *const *v, int64_t count) {
  struct lb_attr *a = attr_slot(g, n, name);
  a->kind = LB_ATTR_STRINGS;
  a->n = count;
  a->strings = lb_arena_alloc(&g->arena, sizeof *a->strings * (size_t)(count ? count : 1));
  for (int64_t i = 0; i < count; i++) a->strings[i] = lb_arena_strdup(&g->arena, v[i]);
}

void lb_node_set_attr_tensor(struct lb_graph *g, struct lb_node *n, const char *name,
                             const struct lb_type *type, int32_t blob) {
  struct lb_attr *a = attr_slot(g, n, name);
  a->kind = LB_ATTR_TENSOR;
  a->ttype = *type;
  a->blob = blob;
}

void lb_node_remove_attr(struct lb_node *n, const char *name) {
  for (int32_t i = 0; i < n->n_attrs; i++) {
    if (strcmp(n->attrs[i].name, name) == 0) {
      memmove(n->attrs + i, n->attrs + i + 1, sizeof *n->attrs * (size_t)(n->n_attrs - i - 1));
      n->n_attrs--;
      return;
    }
  }
}

const struct lb_attr *lb_node_attr(const struct lb_node *n, const char *name) {
  for (int32_t i = 0; i < n->n_attrs; i++)
    if (strcmp(n->attrs[i].name, name) == 0) return &n->attrs[i];
  return NULL;
}

int64_t lb_node_attr_int(const struct lb_node *n, const char *name, int64_t dflt) {
  const struct lb_attr *a = lb_node_attr(n, name);
  return a && a->kind == LB_ATTR_INT ? a->i : dflt;
}

double lb_node_attr_float(const struct lb_node *n, const char *name, double dflt) {
  const struct lb_attr *a = lb_node_attr(n, name);
  if (!a) return dflt;
  if (a->kind == LB_ATTR_FLOAT) return a->f;
  if (a->kind == LB_ATTR_INT) return (double)a->i;
  return dflt;
}

const char *lb_node_attr_string(const struct lb_node *n, const char *name, const char *dflt) {
  const struct lb_attr *a = lb_node_attr(n, name);
  return a && a->kind == LB_ATTR_STRING ? a->s : dflt;
}

/* ---- editing ------------------------------------------------------------------------ */
void lb_graph_replace_uses(struct lb_graph *g, struct lb_value *from, struct lb_value *to) {
  for (int32_t i = 0; i < g->n_nodes; i++) {
    struct lb_node *n = g->nodes[i];
    for (int32_t k = 0; k < n->n_inputs; k++)
      if (n->inputs[k] == from) n->inputs[k] = to;
  }
  for (int32_t k = 0; k < g->n_outputs; k++)
    if (g->outputs[k] == from) g->outputs[k] = to;
}

void lb_graph_compact(struct lb_graph *g) {
  int32_t w = 0;
  for (int32_t i = 0; i < g->n_nodes; i++)
    if (!g->nodes[i]->dead) g->nodes[w++] = g->nodes[i];
  g->n_nodes = w;

  /* Drop blobs that no live const node or tensor attribute references. */
  int32_t *remap = malloc(sizeof *remap * (size_t)(g->n_blobs ? g->n_blobs : 1));
  if (!remap) abort();
  for (int32_t b = 0; b < g->n_blobs; b++) remap[b] = -1;
  for (int32_t i = 0; i < g->n_nodes; i++) {
    struct lb_node *n = g->nodes[i];
    if (n->blob >= 0) remap[n->blob] = 0;
    for (int32_t a = 0; a < n->n_attrs; a++)
      if (n->attrs[a].kind == LB_ATTR_TENSOR && n->attrs[a].blob >= 0) remap[n->attrs[a].blob] = 0;
  }
  int32_t nb = 0;
  for (int32_t b = 0; b < g->n_blobs; b++) {
    if (remap[b] < 0) {
      free(g->blobs[b].data);
      continue;
    }
    remap[b] = nb;
    g->blobs[nb++] = g->blobs[b];
  }
  g->n_blobs = nb;
  for (int32_t i = 0; i < g->n_nodes; i++) {
    struct lb_node *n = g->nodes[i];
    if (n->blob >= 0) n->blob = remap[n->blob];
    for (int32_t a = 0; a < n->n_attrs; a++)
      if (n->attrs[a].kind == LB_ATTR_TENSOR && n->attrs[a].blob >= 0)
        n->attrs[a].blob = remap[n->attrs[a].blob];
  }
  free(remap);
}

int32_t lb_graph_index_values(struct lb_graph *g) {
  int32_t id = 0;
  for (int32_t k = 0; k < g->n_inputs; k++) g->inputs[k]->id = id++;
  for (int32_t i = 0; i < g->n_nodes; i++)
    for (int32_t o = 0; o < g->nodes[i]->n_outputs; o++) g->nodes[i]->outputs[o]->id = id++;
  g->n_values = id > g->n_values ? id : g->n_values;
  return id;
}

int32_t *lb_graph_count_uses(struct lb_graph *g) {
  lb_graph_index_values(g);
  int32_t *uses = calloc((size_t)(g->n_values ? g->n_values : 1), sizeof *uses);
  if (!uses) abort();
  for (int32_t i = 0; i < g->n_nodes; i++) {
    struct lb_node *n = g->nodes[i];
    for (int32_t k = 0; k < n->n_inputs; k++)
      if (n->inputs[k]) uses[n->inputs[k]->id]++;
  }
  for (int32_t k = 0; k < g->n_outputs; k++) uses[g->outputs[k]->id]++;
  return uses;
}

/* ---- deep copy ---------------------------------------------------------------- */

static struct lb_qparams *copy_qparams(struct lb_graph *g, const struct lb_qparams *q) {
  if (!q) return NULL;
  struct lb_qparams *c = lb_arena_alloc(&g->arena, sizeof *c);
  *c = *q;
  c->scales = lb_arena_alloc(&g->arena, sizeof *c->scales * (size_t)(q->n ? q->n : 1));
  memcpy(c->scales, q->scales, sizeof *c->scales * (size_t)q->n);
  if (q->zero_points) {
    c->zero_points = lb_arena_alloc(&g->arena, sizeof *c->zero_points * (size_t)(q->n ? q->n : 1));
    memcpy(c->zero_points, q->zero_points, sizeof *c->zero_points * (size_t)q->n);
  }
  return c;
}

static void copy_value(struct lb_value *to, const struct lb_value *from, struct lb_graph *g) {
  to->type = from->type;
  to->qparams = copy_qparams(g, from->qparams);
  to->mem_offset = from->mem_offset;
}

static void copy_attr(struct lb_graph *g, struct lb_node *n, const struct lb_attr *a) {
  switch (a->kind) {
  case LB_ATTR_INT: lb_node_set_attr_int(g, n, a->name, a->i); break;
  case LB_ATTR_FLOAT: lb_node_set_attr_float(g, n, a->name, a->f); break;
  case LB_ATTR_STRING: lb_node_set_attr_string(g, n, a->name, a->s); break;
  case LB_ATTR_INTS: lb_node_set_attr_ints(g, n, a->name, a->ints, a->n); break;
  case LB_ATTR_FLOATS: lb_node_set_attr_floats(g, n, a->name, a->floats, a->n); break;
  case LB_ATTR_STRINGS: lb_node_set_attr_strings(g, n, a->name, a->strings, a->n); break;
  case LB_ATTR_TENSOR: lb_node_set_attr_tensor(g, n, a->name, &a->ttype, a->blob); break;
  default: LB_ASSERT(!"unknown attribute kind");
  }
}

/* Direct rather than through the text form, which would print every weight. */
struct lb_graph *lb_graph_clone(const struct lb_graph *src) {
  struct lb_graph *g = (struct lb_graph *)src; /* only value ids are renumbered */
  int32_t nv = lb_graph_index_values(g);
  struct lb_value **map = calloc((size_t)(nv ? nv : 1), sizeof *map);
  if (!map) abort();
  struct lb_graph *c = lb_graph_new(g->name);
  c->opset = g->opset;
  c->activations_size = g->activations_size;
  for (int32_t i = 0; i < g->n_blobs; i++) {
    const struct lb_blob *b = &g->blobs[i];
    void *data = NULL;
    if (b->data) {
      data = lb_blob_alloc(b->size);
      if (b->size) memcpy(data, b->data, b->size);
    }
    int32_t k = lb_graph_add_blob(c, b->name, data, b->size);
    LB_ASSERT(k == i); /* nodes keep their blob indices */
    c->blobs[k].hash = b->hash;
  }
  for (int32_t i = 0; i < g->n_inputs; i++) {
    const struct lb_value *v = g->inputs[i];
    struct lb_value *cv = lb_value_new(c, v->name, v->type);
    copy_value(cv, v, c);
    lb_graph_add_input(c, cv);
    map[v->id] = cv;
  }
  for (int32_t i = 0; i < g->n_nodes; i++) {
    const struct lb_node *n = g->nodes[i];
    struct lb_value **ins = malloc(sizeof *ins * (size_t)(n->n_inputs + 1));
    const char **outs = malloc(sizeof *outs * (size_t)(n->n_outputs + 1));
    if (!ins || !outs) abort();
    for (int32_t k = 0; k < n->n_inputs; k++) ins[k] = n->inputs[k] ? map[n->inputs[k]->id] : NULL;
    for (int32_t k = 0; k < n->n_outputs; k++) outs[k] = n->outputs[k]->name;
    struct lb_node *cn = lb_graph_add_node(c, n->op, n->name, ins, n->n_inputs, outs, n->n_outputs);
    free(ins);
    free(outs);
    cn->blob = n->blob;
    cn->dead = n->dead;
    for (int32_t k = 0; k < n->n_attrs; k++) copy_attr(c, cn, &n->attrs[k]);
    for (int32_t k = 0; k < n->n_outputs; k++) {
      LB_ASSERT(strcmp(cn->outputs[k]->name, n->outputs[k]->name) == 0); /* names were unique */
      copy_value(cn->outputs[k], n->outputs[k], c);
      map[n->outputs[k]->id] = cn->outputs[k];
    }
  }
  for (int32_t i = 0; i < g->n_outputs; i++) lb_graph_add_output(c, map[g->outputs[i]->id]);
  free(map);
  return c;
}
