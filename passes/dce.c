/* dce.c: dead code elimination.
 *
 * A node is dead when none of its outputs is read by a live node or returned
 * by the graph. One reverse sweep over the topologically ordered nodes with
 * use counts finds all of them: when a node dies, its inputs lose a use, and
 * their producers (earlier in the list) are visited afterwards. Ops have no
 * side effects, so removing unread computations cannot change the results;
 * the one exception is `observe` (calibration instrumentation, whose effect is
 * the statistics it records), which is always kept.
 * lb_graph_compact then drops the nodes and the blobs only they referenced.
 */
#include "passes/pass.h"
#include "passes/rewrite.h"

#include <stdlib.h>

enum lb_status lb_pass_dce(struct lb_graph *g, struct lb_pass_context *ctx) {
  int32_t *uses = lb_rw_count_uses(g);
  bool removed = false;
  for (int32_t i = g->n_nodes - 1; i >= 0; i--) {
    struct lb_node *n = g->nodes[i];
    if (n->dead) {
      removed = true;
      continue;
    }
    if (n->op == LB_OP_OBSERVE || !lb_rw_unused(n, uses)) continue;
    n->dead = true;
    removed = true;
    for (int32_t k = 0; k < n->n_inputs; k++)
      if (n->inputs[k]) uses[n->inputs[k]->id]--;
  }
  free(uses);
  int32_t blobs = g->n_blobs;
  lb_graph_compact(g); /* also drops blobs that no node references */
  ctx->changed = removed || blobs != g->n_blobs;
  return LB_OK;
}
