/* plan_memory.c: place every intermediate value in one activation arena.
 *
 * Planned values: every output of a non-const node that the graph does not
 * return (graph outputs are written straight into the caller's buffers, graph
 * inputs live in the caller's buffers, constants are read-only data). Each
 * gets value->mem_offset, a multiple of LB_PLAN_ALIGN; others get -1.
 *
 * Lifetimes are closed intervals of node positions: a value is live from the
 * node that defines it to its last reader (at least its own node, so outputs
 * nobody reads still get a buffer to be written into). Every output of a
 * multi-output node is defined at that node, so they overlap each other; and
 * a node's inputs are live at the node, so an output never shares memory with
 * its own inputs (kernels do not run in place).
 *
 * Placement is TFLite's "greedy by size" (Pisarchyk & Lee, 2020): values are
 * taken largest first (ties: earlier definition, then id, for determinism);
 * each goes into the smallest gap between the already-placed values whose
 * lifetimes overlap it that is large enough (best fit), or after the last of
 * them. Large buffers are placed while the arena is still empty, and small
 * ones fill the holes, which on chains and transformer blocks comes within a
 * few percent of the lower bound (the largest sum of sizes live at one node).
 * The pass reports, as a note, the arena size against the sum of all sizes
 * (what allocating every value separately would cost) and that lower bound.
 * Finding the placed values that overlap one in time goes through buckets of
 * BLOCK node positions (each placed value is listed in the buckets its lifetime
 * spans), so a chain of 100k nodes costs O(n * BLOCK), not O(n^2); the result
 * does not depend on the order in which overlapping values are found.
 */
#include "passes/pass.h"
#include "passes/rewrite.h"

#include <stdlib.h>

#define LB_PLAN_ALIGN 64

struct interval {
  struct lb_value *v;
  int64_t size;       /* rounded up to LB_PLAN_ALIGN */
  int32_t def, end;   /* node positions, inclusive */
  int64_t offset;     /* -1 until placed */
  int32_t stamp;      /* last query that collected it (dedup across buckets) */
};

enum { BLOCK = 64 }; /* node positions per bucket */

/* Placed intervals listed per bucket of BLOCK node positions. */
struct buckets {
  struct interval ***items;
  int32_t *n, *cap;
  int32_t count;
};

static void buckets_add(struct buckets *b, struct interval *it) {
  for (int32_t k = it->def / BLOCK; k <= it->end / BLOCK; k++) {
    if (b->n[k] == b->cap[k]) {
      b->cap[k] = b->cap[k] ? b->cap[k] * 2 : 8;
      b->items[k] = realloc(b->items[k], sizeof *b->items[k] * (size_t)b->cap[k]);
      if (!b->items[k]) abort();
    }
    b->items[k][b->n[k]++] = it;
  }
}

static int by_size_desc(const void *pa, const void *pb) {
  const struct interval *a = *(const struct interval *const *)pa;
  const struct interval *b = *(const struct interval *const *)pb;
  if (a->size != b->size) return a->size > b->size ? -1 : 1;
  if (a->def != b->def) return a->def < b->def ? -1 : 1;
  return a->v->id < b->v->id ? -1 : a->v->id > b->v->id;
}

static int by_offset(const void *pa, const void *pb) {
  const struct interval *a = *(const struct interval *const *)pa;
  const struct interval *b = *(const struct interval *const *)pb;
  if (a->offset != b->offset) return a->offset < b->offset ? -1 : 1;
  return a->v->id < b->v->id ? -1 : a->v->id > b->v->id;
}

static bool overlaps(const struct interval *a, const struct interval *b) {
  return a->def <= b->end && b->def <= a->end;
}

/* Best-fit offset for `it` among the placed intervals overlapping it. */
static int64_t best_fit(struct interval *it, const struct buckets *b, int32_t query,
                        struct interval **tmp) {
  int32_t m = 0;
  for (int32_t k = it->def / BLOCK; k <= it->end / BLOCK; k++)
    for (int32_t j = 0; j < b->n[k]; j++) {
      struct interval *p = b->items[k][j];
      if (p->stamp != query && overlaps(p, it)) {
        p->stamp = query;
        tmp[m++] = p;
      }
    }
  qsort(tmp, (size_t)m, sizeof *tmp, by_offset);
  int64_t best = -1, best_gap = INT64_MAX, prev_end = 0;
  for (int32_t i = 0; i < m; i++) {
    int64_t gap = tmp[i]->offset - prev_end;
    if (gap >= it->size && gap < best_gap) {
      best = prev_end;
      best_gap = gap;
    }
    int64_t e = tmp[i]->offset + tmp[i]->size;
    if (e > prev_end) prev_end = e;
  }
  return best >= 0 ? best : prev_end;
}

enum lb_status lb_pass_plan_memory(struct lb_graph *g, struct lb_pass_context *ctx) {
  int32_t n_values = lb_graph_index_values(g);
  struct interval **of_value = lb_arena_alloc(&ctx->scratch, sizeof *of_value * (size_t)(n_values + 1));
  struct interval *ivs = lb_arena_alloc(&ctx->scratch, sizeof *ivs * (size_t)(n_values + 1));
  int32_t n = 0;

  for (int32_t k = 0; k < g->n_inputs; k++) g->inputs[k]->mem_offset = -1;
  for (int32_t i = 0; i < g->n_nodes; i++) {
    struct lb_node *node = g->nodes[i];
    for (int32_t o = 0; o < node->n_outputs; o++) {
      struct lb_value *v = node->outputs[o];
      if (node->op == LB_OP_CONST || lb_rw_is_graph_output(g, v)) {
        if (v->mem_offset != -1) ctx->changed = true;
        v->mem_offset = -1;
        continue;
      }
      int64_t bytes = lb_type_nbytes(&v->type);
      if (bytes < 0) return lb_diag_error(ctx->diag, LB_ERR_INVALID, node, "negative size");
      struct interval *it = &ivs[n++];
      it->v = v;
      it->size = (bytes + LB_PLAN_ALIGN - 1) / LB_PLAN_ALIGN * LB_PLAN_ALIGN;
      if (it->size == 0) it->size = LB_PLAN_ALIGN;
      it->def = it->end = i;
      it->offset = v->mem_offset; /* the previous plan, to detect changes */
      it->stamp = -1;
      v->mem_offset = -1;
      of_value[v->id] = it;
    }
    for (int32_t k = 0; k < node->n_inputs; k++) {
      struct lb_value *v = node->inputs[k];
      if (v && of_value[v->id] && of_value[v->id]->end < i) of_value[v->id]->end = i;
    }
  }

  /* Lower bound: the largest total size live at one node. */
  int64_t *live = lb_arena_alloc(&ctx->scratch, sizeof *live * (size_t)(g->n_nodes + 1));
  int64_t sum = 0, bound = 0;
  for (int32_t i = 0; i < n; i++) { /* difference array: O(n + nodes) */
    sum += ivs[i].size;
    live[ivs[i].def] += ivs[i].size;
    if (ivs[i].end + 1 < g->n_nodes) live[ivs[i].end + 1] -= ivs[i].size;
  }
  for (int32_t p = 0; p < g->n_nodes; p++) {
    if (p > 0) live[p] += live[p - 1];
    if (live[p] > bound) bound = live[p];
  }

  struct interval **order = lb_arena_alloc(&ctx->scratch, sizeof *order * (size_t)(n + 1));
  int32_t n_blocks = g->n_nodes / BLOCK + 1;
  struct buckets bk = {
      .items = calloc((size_t)n_blocks, sizeof *bk.items),
      .n = calloc((size_t)n_blocks, sizeof *bk.n),
      .cap = calloc((size_t)n_blocks, sizeof *bk.cap),
  };
  if (!bk.items || !bk.n || !bk.cap) abort();
  struct interval **tmp = lb_arena_alloc(&ctx->scratch, sizeof *tmp * (size_t)(n + 1));
  for (int32_t i = 0; i < n; i++) order[i] = &ivs[i];
  qsort(order, (size_t)n, sizeof *order, by_size_desc);

  int64_t total = 0;
  for (int32_t i = 0; i < n; i++) {
    struct interval *it = order[i];
    int64_t previous = it->offset;
    it->offset = -1;
    it->offset = best_fit(it, &bk, i, tmp);
    if (it->offset != previous) ctx->changed = true;
    buckets_add(&bk, it);
    it->v->mem_offset = it->offset;
    if (it->offset + it->size > total) total = it->offset + it->size;
  }
  for (int32_t k = 0; k < n_blocks; k++) free(bk.items[k]);
  free(bk.items);
  free(bk.n);
  free(bk.cap);
  if (g->activations_size != total) ctx->changed = true;
  g->activations_size = total;
  if (n > 0)
    lb_diag_note(ctx->diag,
                 "plan-memory: %d values, activation arena %lld bytes (sum of sizes %lld, "
                 "peak live %lld)",
                 (int)n, (long long)total, (long long)sum, (long long)bound);
  return LB_OK;
}
