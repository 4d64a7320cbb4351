/* infer_shapes.c: recompute every node's output types from the shape rules.
 *
 * Walks the nodes in (topological) order and calls lb_infer_node on each, so a
 * node sees its inputs' freshly inferred types. Const nodes keep the type of
 * their data. Safe because types are a pure function of the input types (and
 * constant inputs); it changes nothing but types, and sets `changed` only
 * when some type actually differs. The first shape error stops the pass.
 */
#include "passes/pass.h"

#include <string.h>

static bool type_equal(const struct lb_type *a, const struct lb_type *b) {
  return a->dtype == b->dtype && lb_shape_equal(&a->shape, &b->shape);
}

enum lb_status lb_pass_infer_shapes(struct lb_graph *g, struct lb_pass_context *ctx) {
  struct lb_type before[16];
  for (int32_t i = 0; i < g->n_nodes; i++) {
    struct lb_node *n = g->nodes[i];
    if (n->dead || n->op == LB_OP_CONST) continue;
    int32_t k = n->n_outputs < 16 ? n->n_outputs : 16;
    for (int32_t o = 0; o < k; o++) before[o] = n->outputs[o]->type;
    enum lb_status st = lb_infer_node(g, n, ctx->diag);
    if (st != LB_OK) return st;
    for (int32_t o = 0; o < n->n_outputs; o++)
      if (o >= k || !type_equal(&before[o], &n->outputs[o]->type)) ctx->changed = true;
  }
  return LB_OK;
}
