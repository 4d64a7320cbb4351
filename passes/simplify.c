/* simplify.c: remove computations that do nothing.
 *
 * Matches, in one forward sweep:
 *   identity(x), dropout(x) with its mask unused       -> x
 *   cast(x) to x's own dtype                           -> x
 *   reshape(x) to x's own shape                        -> x
 *   reshape(reshape(x, s1), s2)                        -> reshape(x, s2)
 *   transpose(x) with the identity perm                -> x
 *   transpose(transpose(x, p1), p2)                    -> transpose(x, p1[p2[i]]) or x
 *   x*1, 1*x, x+0, 0+x, x-0, x/1 (constant splat)      -> x
 * Every rewrite requires the result to have exactly x's type, so it holds
 * only when broadcasting against the constant does not change the shape (and
 * the types match). Integer and float 0/1 are exact identities; -0.0 + 0 is
 * the only IEEE corner (x+0 turns -0 into +0), which no kernel depends on.
 * Reshapes and transposes compose exactly, so the chain rules are safe too.
 * A removed node's output that the graph returns keeps its name: its value is
 * moved onto the producer of x (lb_rw_forward_value); when that is not
 * possible (x is a graph input) the node stays.
 * Bypassed inner reshapes/transposes that lose their last use are removed.
 */
#include "passes/pass.h"
#include "passes/rewrite.h"

#include <stdlib.h>
#include <string.h>

static bool type_equal(const struct lb_type *a, const struct lb_type *b) {
  return a->dtype == b->dtype && lb_shape_equal(&a->shape, &b->shape);
}

/* The non-constant operand x of a binary op that is a no-op with the splat
 * constant on the other side, or NULL. */
static struct lb_value *neutral_binary_operand(const struct lb_graph *g, const struct lb_node *n) {
  if (n->n_inputs != 2 || !n->inputs[0] || !n->inputs[1]) return NULL;
  double neutral = (n->op == LB_OP_MUL || n->op == LB_OP_DIV) ? 1.0 : 0.0;
  bool commutes = n->op == LB_OP_ADD || n->op == LB_OP_MUL;
  for (int side = 1; side >= (commutes ? 0 : 1); side--) {
    struct lb_value *c = n->inputs[side], *x = n->inputs[1 - side];
    double v;
    if (lb_rw_const_splat(g, c, &v) && v == neutral && !lb_value_is_const(x) &&
        type_equal(&x->type, &n->outputs[0]->type) && c->type.dtype == x->type.dtype)
      return x;
  }
  return NULL;
}

static bool perm_of(const struct lb_node *n, int64_t *perm, int32_t rank) {
  const struct lb_attr *a = lb_node_attr(n, "perm");
  if (!a || a->kind != LB_ATTR_INTS || a->n != rank) return false;
  for (int32_t i = 0; i < rank; i++) {
    if (a->ints[i] < 0 || a->ints[i] >= rank) return false;
    perm[i] = a->ints[i];
  }
  return true;
}

static bool perm_is_identity(const int64_t *perm, int32_t rank) {
  for (int32_t i = 0; i < rank; i++)
    if (perm[i] != i) return false;
  return true;
}

/* Returns the value n can be replaced by, or NULL. May rewrite n in place
 * (chain folding), setting *rewired and *bypassed to the inner node. */
static struct lb_value *simplify_node(struct lb_graph *g, struct lb_node *n, const int32_t *uses,
                                      bool *rewired, struct lb_node **bypassed) {
  struct lb_value *x = n->n_inputs >= 1 ? n->inputs[0] : NULL;
  struct lb_value *y = n->n_outputs >= 1 ? n->outputs[0] : NULL;
  if (!x || !y) return NULL;
  switch (n->op) {
  case LB_OP_IDENTITY:
    return type_equal(&x->type, &y->type) ? x : NULL;
  case LB_OP_DROPOUT:
    if (n->n_outputs == 2 && uses[n->outputs[1]->id] > 0) return NULL;
    return n->n_inputs == 1 && type_equal(&x->type, &y->type) ? x : NULL;
  case LB_OP_CAST:
    return type_equal(&x->type, &y->type) ? x : NULL;
  case LB_OP_RESHAPE: {
    if (n->n_inputs != 1) return NULL;
    struct lb_node *inner = lb_rw_producer(x, LB_OP_RESHAPE);
    if (inner && inner->n_inputs == 1 && inner->inputs[0]) {
      n->inputs[0] = x = inner->inputs[0];
      *rewired = true;
      *bypassed = inner;
    }
    return type_equal(&x->type, &y->type) ? x : NULL;
  }
  case LB_OP_TRANSPOSE: {
    int32_t rank = x->type.shape.rank;
    int64_t perm[LB_MAX_RANK], inner_perm[LB_MAX_RANK];
    if (!perm_of(n, perm, rank)) return NULL;
    struct lb_node *inner = lb_rw_producer(x, LB_OP_TRANSPOSE);
    if (inner && inner->inputs[0] && perm_of(inner, inner_perm, rank)) {
      /* y[i] = t[perm[i]] and t[j] = x[inner_perm[j]]: y[i] = x[inner_perm[perm[i]]] */
      int64_t composed[LB_MAX_RANK];
      for (int32_t i = 0; i < rank; i++) composed[i] = inner_perm[perm[i]];
      memcpy(perm, composed, sizeof composed[0] * (size_t)rank);
      lb_node_set_attr_ints(g, n, "perm", perm, rank);
      n->inputs[0] = x = inner->inputs[0];
      *rewired = true;
      *bypassed = inner;
    }
    return perm_is_identity(perm, rank) && type_equal(&x->type, &y->type) ? x : NULL;
  }
  case LB_OP_ADD:
  case LB_OP_SUB:
  case LB_OP_MUL:
  case LB_OP_DIV:
    return neutral_binary_operand(g, n);
  default:
    return NULL;
  }
}

enum lb_status lb_pass_simplify(struct lb_graph *g, struct lb_pass_context *ctx) {
  int32_t *uses = lb_rw_count_uses(g);
  bool *bypassed = lb_arena_alloc(&ctx->scratch, sizeof *bypassed * (size_t)(g->n_nodes + 1));
  bool any_dead = false;
  for (int32_t i = 0; i < g->n_nodes; i++) {
    struct lb_node *n = g->nodes[i];
    if (n->dead) continue;
    bool rewired = false;
    struct lb_node *inner = NULL;
    struct lb_value *to = simplify_node(g, n, uses, &rewired, &inner);
    if (rewired) {
      ctx->changed = true;
      for (int32_t j = 0; j < i; j++)
        if (g->nodes[j] == inner) bypassed[j] = true;
    }
    if (to && lb_rw_forward_value(g, n->outputs[0], to)) {
      n->dead = true;
      any_dead = true;
      ctx->changed = true;
    }
  }
  free(uses);

  /* Inner reshapes/transposes that were bypassed and lost their last use. */
  uses = lb_rw_count_uses(g);
  for (int32_t i = g->n_nodes - 1; i >= 0; i--) {
    struct lb_node *n = g->nodes[i];
    if (n->dead || !bypassed[i] || !lb_rw_unused(n, uses)) continue;
    n->dead = true;
    any_dead = true;
    for (int32_t k = 0; k < n->n_inputs; k++)
      if (n->inputs[k]) uses[n->inputs[k]->id]--;
  }
  free(uses);
  if (any_dead) lb_graph_compact(g);
  return LB_OK;
}
