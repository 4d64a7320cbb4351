/* insert_observers.c: instruments a float graph for calibration.
 *
 * Quantizing a matmul/gemm/fused_matmul/conv needs the ranges of the
 * activations it reads and of the value it produces. For every such node, each
 * non-constant f32 data operand (inputs 0 and 1; a bias is quantized from the
 * operands' scales, not observed) and its f32 output get one `observe` node:
 *
 *   %h = matmul(%x, %w) : f32[2,64]     =>   %"x.observe" = observe(%x) {stats=["minmax", "absmax_channel", "hist"]} : f32[2,16]
 *                                            %h = matmul(%"x.observe", %w) : f32[2,64]
 *                                            %"h.observe" = observe(%h) {stats=["minmax", "hist"]} : f32[2,64]
 *
 * Operands get per-channel (last dim) absolute maxima as well (what SmoothQuant
 * and outlier splitting need); a value that is both an operand and an output is
 * observed once with the union of the kinds. The observer is placed right after
 * the value's producer (graph inputs: at the top), and every node that read the
 * value reads the observer's output instead, so the observer sits in the data
 * flow; graph outputs keep returning the original value (names never change).
 * `observe` is an identity, so the float function is unchanged; dce keeps
 * observers even when nothing reads them. Values already observed (their only
 * readers are observers, or they are an observer's output) are skipped, so the
 * pass is idempotent.
 */
#include "passes/pass.h"

#include <stdlib.h>
#include <string.h>

enum { K_MINMAX = 1, K_CHANNEL = 2, K_HIST = 4 };

static bool observed_op(enum lb_op op) {
  return op == LB_OP_MATMUL || op == LB_OP_GEMM || op == LB_OP_FUSED_MATMUL || op == LB_OP_CONV;
}

static bool observable(const struct lb_value *v) {
  if (!v || v->type.dtype != LB_DTYPE_F32) return false;
  if (lb_value_is_const(v)) return false;
  if (v->producer && v->producer->op == LB_OP_OBSERVE) return false; /* already observed */
  return true;
}

/* true when some node reads v through an observer already */
static bool has_observer(const struct lb_graph *g, const struct lb_value *v) {
  for (int32_t i = 0; i < g->n_nodes; i++)
    if (g->nodes[i]->op == LB_OP_OBSERVE && g->nodes[i]->inputs[0] == v) return true;
  return false;
}

static int32_t node_index(const struct lb_graph *g, const struct lb_node *n) {
  for (int32_t i = 0; i < g->n_nodes; i++)
    if (g->nodes[i] == n) return i;
  LB_ASSERT(!"node not in graph");
  return -1;
}

enum lb_status lb_pass_insert_observers(struct lb_graph *g, struct lb_pass_context *ctx) {
  int32_t nv = lb_graph_index_values(g);
  int32_t *kinds = calloc((size_t)(nv ? nv : 1), sizeof *kinds);
  struct lb_value **order = calloc((size_t)(nv ? nv : 1), sizeof *order);
  if (!kinds || !order) abort();
  int32_t n_order = 0;
  /* collect in node order: operands first, then the output (deterministic) */
  for (int32_t i = 0; i < g->n_nodes; i++) {
    struct lb_node *n = g->nodes[i];
    if (!observed_op(n->op)) continue;
    for (int32_t k = 0; k < 2 && k < n->n_inputs; k++) {
      struct lb_value *v = n->inputs[k];
      if (!observable(v)) continue;
      if (!kinds[v->id]) order[n_order++] = v;
      kinds[v->id] |= K_MINMAX | K_CHANNEL | K_HIST;
    }
    struct lb_value *y = n->outputs[0];
    if (!observable(y)) continue;
    if (!kinds[y->id]) order[n_order++] = y;
    kinds[y->id] |= K_MINMAX | K_HIST;
  }
  bool changed = false;
  int32_t top = 0; /* graph inputs' observers go first, in operand order */
  for (int32_t o = 0; o < n_order; o++) {
    struct lb_value *v = order[o];
    if (has_observer(g, v)) continue;
    const char *stats[3];
    int32_t ns = 0;
    if (kinds[v->id] & K_MINMAX) stats[ns++] = "minmax";
    if (kinds[v->id] & K_CHANNEL) stats[ns++] = "absmax_channel";
    if (kinds[v->id] & K_HIST) stats[ns++] = "hist";
    size_t len = strlen(v->name) + 16;
    char *base = malloc(len);
    if (!base) abort();
    snprintf(base, len, "%s.observe", v->name);
    const char *out_name = lb_graph_unique_name(g, base);
    free(base);
    int32_t at = v->producer ? node_index(g, v->producer) + 1 : top++;
    const char *node_name = v->producer ? v->producer->name : "";
    struct lb_node *obs =
        at < g->n_nodes
            ? lb_graph_insert_node(g, g->nodes[at], LB_OP_OBSERVE, node_name, &v, 1, &out_name, 1)
            : lb_graph_add_node(g, LB_OP_OBSERVE, node_name, &v, 1, &out_name, 1);
    obs->outputs[0]->type = v->type;
    lb_node_set_attr_strings(g, obs, "stats", stats, ns);
    /* readers of v (all after the observer) read the observer's output */
    for (int32_t i = 0; i < g->n_nodes; i++) {
      struct lb_node *n = g->nodes[i];
      if (n == obs) continue;
      for (int32_t k = 0; k < n->n_inputs; k++)
        if (n->inputs[k] == v) n->inputs[k] = obs->outputs[0];
    }
    changed = true;
  }
  free(kinds);
  free(order);
  ctx->changed = changed;
  return LB_OK;
}
