/* fold_constants.c: evaluate nodes whose inputs are all constant.
 *
 * A node (other than const) whose every present input is produced by a const
 * node with data is evaluated with the reference evaluator lb_eval_node, the
 * same oracle the kernels are tested against, and becomes a const node (each
 * further output gets a const node of its own inserted just before it). The
 * output values themselves are kept, so names and every use stay as they
 * were. Skipped: outputs larger than LB_FOLD_MAX_BYTES in total (folding
 * would bloat the model), inputs whose blob is elided (data NULL, e.g. a dump
 * parsed back), and nodes the evaluator rejects (the rejection is not an error:
 * the node simply stays). Folding proceeds in topological order, so chains of
 * constant computations fold in one run.
 */
#include "passes/pass.h"
#include "passes/rewrite.h"

#include <stdlib.h>
#include <string.h>

#define LB_FOLD_MAX_BYTES ((int64_t)64 << 20)
#define LB_FOLD_MAX_IO 64

static bool foldable(const struct lb_graph *g, const struct lb_node *n) {
  if (n->dead || n->op == LB_OP_CONST || n->n_inputs == 0) return false;
  if (n->n_inputs > LB_FOLD_MAX_IO || n->n_outputs > LB_FOLD_MAX_IO || n->n_outputs < 1)
    return false;
  bool any = false;
  for (int32_t k = 0; k < n->n_inputs; k++) {
    if (!n->inputs[k]) continue;
    if (!lb_value_const_data(g, n->inputs[k]) && lb_type_nbytes(&n->inputs[k]->type) > 0)
      return false;
    if (!lb_value_is_const(n->inputs[k])) return false;
    any = true;
  }
  if (!any) return false;
  int64_t total = 0;
  for (int32_t o = 0; o < n->n_outputs; o++) {
    struct lb_value *v = n->outputs[o];
    int64_t numel;
    if (v->type.dtype == LB_DTYPE_UNDEF || lb_dtype_traits[v->type.dtype].size <= 0) return false;
    if (v->qparams) return false;
    if (!lb_shape_numel_checked(&v->type.shape, LB_FOLD_MAX_BYTES, &numel)) return false;
    total += numel * lb_dtype_traits[v->type.dtype].size;
    if (total > LB_FOLD_MAX_BYTES) return false;
  }
  return true;
}

/* Turns n (at position pos) into const nodes holding outs[]; takes ownership
 * of outs[]. Returns how many nodes were inserted before n. */
static int32_t replace_with_consts(struct lb_graph *g, struct lb_node *n, int32_t pos,
                                   void **outs) {
  int32_t inserted = 0;
  for (int32_t o = 1; o < n->n_outputs; o++) {
    struct lb_value *v = n->outputs[o];
    struct lb_node *c = lb_arena_alloc(&g->arena, sizeof *c);
    c->op = LB_OP_CONST;
    c->name = n->name;
    c->inputs = lb_arena_alloc(&g->arena, sizeof *c->inputs);
    c->n_outputs = 1;
    c->outputs = lb_arena_alloc(&g->arena, sizeof *c->outputs);
    c->outputs[0] = v;
    c->blob = lb_graph_add_blob(g, lb_rw_unique_blob_name(g, v->name), outs[o],
                                (size_t)lb_type_nbytes(&v->type));
    v->producer = c;
    v->producer_output = 0;
    lb_rw_insert_at(g, pos + inserted, c);
    inserted++;
  }
  struct lb_value *v0 = n->outputs[0];
  lb_rw_reset_node(g, n, LB_OP_CONST, NULL, 0);
  n->n_outputs = 1;
  n->blob = lb_graph_add_blob(g, lb_rw_unique_blob_name(g, v0->name), outs[0],
                              (size_t)lb_type_nbytes(&v0->type));
  return inserted;
}

enum lb_status lb_pass_fold_constants(struct lb_graph *g, struct lb_pass_context *ctx) {
  const void *ins[LB_FOLD_MAX_IO];
  void *outs[LB_FOLD_MAX_IO];
  bool folded_any = false;
  for (int32_t i = 0; i < g->n_nodes; i++) {
    struct lb_node *n = g->nodes[i];
    if (!foldable(g, n)) continue;
    for (int32_t k = 0; k < n->n_inputs; k++)
      ins[k] = n->inputs[k] ? lb_value_const_data(g, n->inputs[k]) : NULL;
    for (int32_t o = 0; o < n->n_outputs; o++)
      outs[o] = lb_blob_alloc((size_t)lb_type_nbytes(&n->outputs[o]->type));
    struct lb_diag scratch_diag;
    lb_diag_init(&scratch_diag, NULL);
    enum lb_status st = lb_eval_node(g, n, ins, (void *const *)outs, &scratch_diag);
    lb_diag_free(&scratch_diag);
    if (st != LB_OK) { /* not foldable after all: leave the node alone */
      for (int32_t o = 0; o < n->n_outputs; o++) free(outs[o]);
      continue;
    }
    i += replace_with_consts(g, n, i, outs);
    folded_any = true;
  }
  if (folded_any) {
    ctx->changed = true;
    lb_graph_compact(g); /* drops blobs of inputs that are no longer used */
  }
  return LB_OK;
}
