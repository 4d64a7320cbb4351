/* cse.c: common subexpression elimination.
 *
 * Two nodes compute the same values when they have the same op, the same
 * inputs (for add/mul/min/max/and/or/equal with two inputs: in either order),
 * the same attributes and the same output types. Ops have no side effects, so
 * the later node can be dropped and its outputs replaced by the earlier one's.
 * Const nodes are the same when their types and bytes are equal (compared by
 * hash, then byte by byte; elided blobs are never merged). One forward sweep
 * with a hash table keyed on the node; a node's inputs are first rewritten to
 * their representatives, so chains of duplicates merge in one run. The first
 * occurrence always wins, which keeps the result deterministic. Nodes whose
 * outputs the graph returns, or that carry quantization parameters, are
 * never removed (their names are the caller's interface).
 */
#include "passes/pass.h"
#include "passes/rewrite.h"

#include <stdlib.h>
#include <string.h>

struct cse {
  struct lb_graph *g;
  struct lb_node **table; /* open addressing, power-of-two capacity */
  uint64_t *hashes;
  uint32_t mask;
};

static uint64_t mix(uint64_t h, uint64_t x) {
  h ^= x + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
  return h * 0x100000001b3ull;
}

static bool commutative(const struct lb_node *n) {
  switch (n->op) {
  case LB_OP_ADD: case LB_OP_MUL: case LB_OP_MIN: case LB_OP_MAX:
  case LB_OP_AND: case LB_OP_OR: case LB_OP_EQUAL:
    return n->n_inputs == 2;
  default:
    return false;
  }
}

/* Input k in canonical order (commutative binary ops sorted by value id). */
static const struct lb_value *input_at(const struct lb_node *n, int32_t k) {
  if (commutative(n) && n->inputs[0] && n->inputs[1] && n->inputs[0]->id > n->inputs[1]->id)
    return n->inputs[1 - k];
  return n->inputs[k];
}

static uint64_t hash_attr(uint64_t h, const struct lb_attr *a) {
  h = mix(h, lb_hash_bytes(a->name, strlen(a->name)));
  h = mix(h, (uint64_t)a->kind);
  switch (a->kind) {
  case LB_ATTR_INT: return mix(h, (uint64_t)a->i);
  case LB_ATTR_FLOAT: return mix(h, lb_hash_bytes(&a->f, sizeof a->f));
  case LB_ATTR_STRING: return mix(h, lb_hash_bytes(a->s, strlen(a->s)));
  case LB_ATTR_INTS: return mix(h, lb_hash_bytes(a->ints, sizeof *a->ints * (size_t)a->n));
  case LB_ATTR_FLOATS: return mix(h, lb_hash_bytes(a->floats, sizeof *a->floats * (size_t)a->n));
  case LB_ATTR_STRINGS:
    for (int64_t i = 0; i < a->n; i++) h = mix(h, lb_hash_bytes(a->strings[i], strlen(a->strings[i])));
    return h;
  case LB_ATTR_TENSOR: return mix(h, (uint64_t)a->blob);
  default: return h;
  }
}

static bool attr_equal(const struct lb_attr *a, const struct lb_attr *b) {
  if (strcmp(a->name, b->name) != 0 || a->kind != b->kind) return false;
  switch (a->kind) {
  case LB_ATTR_INT: return a->i == b->i;
  case LB_ATTR_FLOAT: return memcmp(&a->f, &b->f, sizeof a->f) == 0;
  case LB_ATTR_STRING: return strcmp(a->s, b->s) == 0;
  case LB_ATTR_INTS:
    return a->n == b->n && memcmp(a->ints, b->ints, sizeof *a->ints * (size_t)a->n) == 0;
  case LB_ATTR_FLOATS:
    return a->n == b->n && memcmp(a->floats, b->floats, sizeof *a->floats * (size_t)a->n) == 0;
  case LB_ATTR_STRINGS:
    if (a->n != b->n) return false;
    for (int64_t i = 0; i < a->n; i++)
      if (strcmp(a->strings[i], b->strings[i]) != 0) return false;
    return true;
  case LB_ATTR_TENSOR:
    return a->blob == b->blob && a->ttype.dtype == b->ttype.dtype &&
           lb_shape_equal(&a->ttype.shape, &b->ttype.shape);
  default:
    return false;
  }
}

static uint64_t hash_node(const struct lb_graph *g, const struct lb_node *n) {
  uint64_t h = mix(0xcbf29ce484222325ull, (uint64_t)n->op);
  h = mix(h, (uint64_t)n->n_inputs);
  for (int32_t k = 0; k < n->n_inputs; k++) {
    const struct lb_value *v = input_at(n, k);
    h = mix(h, v ? (uint64_t)v->id + 1 : 0);
  }
  for (int32_t a = 0; a < n->n_attrs; a++) h = hash_attr(h, &n->attrs[a]);
  for (int32_t o = 0; o < n->n_outputs; o++) {
    const struct lb_type *t = &n->outputs[o]->type;
    h = mix(h, (uint64_t)t->dtype);
    h = mix(h, lb_hash_bytes(t->shape.dims, sizeof t->shape.dims[0] * (size_t)t->shape.rank));
  }
  if (n->op == LB_OP_CONST) h = mix(h, g->blobs[n->blob].hash);
  return h;
}

static bool node_equal(const struct lb_graph *g, const struct lb_node *a, const struct lb_node *b) {
  if (a->op != b->op || a->n_inputs != b->n_inputs || a->n_outputs != b->n_outputs ||
      a->n_attrs != b->n_attrs)
    return false;
  for (int32_t k = 0; k < a->n_inputs; k++)
    if (input_at(a, k) != input_at(b, k)) return false;
  for (int32_t i = 0; i < a->n_attrs; i++)
    if (!attr_equal(&a->attrs[i], &b->attrs[i])) return false;
  for (int32_t o = 0; o < a->n_outputs; o++) {
    const struct lb_type *ta = &a->outputs[o]->type, *tb = &b->outputs[o]->type;
    if (ta->dtype != tb->dtype || !lb_shape_equal(&ta->shape, &tb->shape)) return false;
  }
  if (a->op == LB_OP_CONST) {
    const struct lb_blob *ba = &g->blobs[a->blob], *bb = &g->blobs[b->blob];
    if (!ba->data || !bb->data || ba->size != bb->size || ba->hash != bb->hash) return false;
    if (memcmp(ba->data, bb->data, ba->size) != 0) return false;
  }
  return true;
}

static bool eligible(const struct lb_graph *g, const struct lb_node *n) {
  if (n->dead) return false;
  for (int32_t o = 0; o < n->n_outputs; o++)
    if (n->outputs[o]->qparams) return false;
  if (n->op == LB_OP_CONST) return n->blob >= 0 && g->blobs[n->blob].data;
  return true;
}

enum lb_status lb_pass_cse(struct lb_graph *g, struct lb_pass_context *ctx) {
  lb_graph_index_values(g);
  struct lb_value **repl = lb_arena_alloc(&ctx->scratch, sizeof *repl * (size_t)(g->n_values + 1));
  struct cse c = {.g = g};
  uint32_t cap = 16;
  while (cap < (uint32_t)g->n_nodes * 2u) cap *= 2;
  c.table = lb_arena_alloc(&ctx->scratch, sizeof *c.table * cap);
  c.hashes = lb_arena_alloc(&ctx->scratch, sizeof *c.hashes * cap);
  c.mask = cap - 1;

  bool merged = false;
  for (int32_t i = 0; i < g->n_nodes; i++) {
    struct lb_node *n = g->nodes[i];
    for (int32_t k = 0; k < n->n_inputs; k++)
      if (n->inputs[k] && repl[n->inputs[k]->id]) n->inputs[k] = repl[n->inputs[k]->id];
    if (!eligible(g, n)) continue;
    uint64_t h = hash_node(g, n);
    uint32_t slot = (uint32_t)h & c.mask;
    struct lb_node *found = NULL;
    for (; c.table[slot]; slot = (slot + 1) & c.mask) {
      if (c.hashes[slot] == h && node_equal(g, c.table[slot], n)) {
        found = c.table[slot];
        break;
      }
    }
    bool returned = false;
    for (int32_t o = 0; o < n->n_outputs; o++)
      if (lb_rw_is_graph_output(g, n->outputs[o])) returned = true;
    if (!found || returned) {
      if (!found) {
        c.table[slot] = n;
        c.hashes[slot] = h;
      }
      continue;
    }
    for (int32_t o = 0; o < n->n_outputs; o++) repl[n->outputs[o]->id] = found->outputs[o];
    n->dead = true;
    merged = true;
  }
  if (merged) {
    ctx->changed = true;
    lb_graph_compact(g);
  }
  return LB_OK;
}
