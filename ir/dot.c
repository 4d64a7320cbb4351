/* dot.c: a graph as Graphviz DOT (see ir/dot.h).
 *
 *   digraph "gpt" {
 *     in0 [shape=invhouse, label="input_ids\ni64[1,128]"];
 *     n5 [label="qmatmul (gelu)\n/blocks.0/fc/MatMul\nw4 g32\nfc.w.q: i8[256,1024]\nf32[1,128,1024]",
 *         fillcolor="#fd8d3c", tooltip="..."];
 *     n4 -> n5 [label="f32[1,128,256]"];
 *     out0 [shape=house, label="logits\nf32[1,128,256]"];
 *     subgraph cluster_legend { ... }
 *   }
 *
 * Nodes are named by their position (n<i>, in<k>, out<k>), so two dumps of
 * the same graph are identical. Names are escaped for DOT's strings: a quote,
 * a backslash (which DOT would read as \N, \G, ... substitutions), a newline
 * (written as DOT's line break) and other control characters. Names longer
 * than NAME_MAX bytes are shortened in labels to their tail, which is the
 * informative part of ONNX paths ("/blocks.3/attn/qkv/MatMul"); the tooltip
 * has them in full. */
#include "ir/dot.h"

#include <stdlib.h>
#include <string.h>

enum { NAME_MAX_LABEL = 40, MAX_CONST_LINES = 4 };

static const struct {
  const char *name, *fill, *font;
} palette[LB_DOT_PRECISION_COUNT] = {
    [LB_DOT_NONE] = {"", "white", "black"},
    [LB_DOT_F32] = {"f32", "#d9d9d9", "black"},
    [LB_DOT_F16] = {"f16", "#9ecae1", "black"},
    [LB_DOT_FP8] = {"fp8", "#74c476", "black"},
    [LB_DOT_INT8] = {"int8", "#fdd0a2", "black"},
    [LB_DOT_W4] = {"4-bit", "#fd8d3c", "black"},
    [LB_DOT_W3] = {"3-bit", "#e6550d", "white"},
    [LB_DOT_W2] = {"2-bit", "#a63603", "white"},
    [LB_DOT_OTHER] = {"other", "#bcbddc", "black"},
};

/* ---- text --------------------------------------------------------------------------- */

/* s escaped for a DOT double-quoted string (at most max bytes of s; 0 = all). */
static void put_esc(FILE *out, const char *s, size_t max) {
  for (size_t i = 0; s[i] && (!max || i < max); i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '"' || c == '\\') fputc('\\', out), fputc(c, out);
    else if (c == '\n') fputs("\\n", out);
    else if (c < 0x20 || c == 0x7F) fputc('?', out);
    else fputc(c, out);
  }
}

/* s for a label: itself, or "..." and its last bytes (not cutting a UTF-8 sequence). */
static void put_short(FILE *out, const char *s) {
  size_t n = strlen(s);
  if (n <= NAME_MAX_LABEL) {
    put_esc(out, s, 0);
    return;
  }
  const char *t = s + n - (NAME_MAX_LABEL - 3);
  while (((unsigned char)*t & 0xC0) == 0x80) t++;
  fputs("...", out);
  put_esc(out, t, 0);
}

/* "f32[1,128,256]" */
static const char *type_text(const struct lb_type *t, char *buf, size_t len) {
  size_t at = (size_t)snprintf(buf, len, "%s[", (unsigned)t->dtype < LB_DTYPE_COUNT && lb_dtype_traits[t->dtype].name
                                                    ? lb_dtype_traits[t->dtype].name
                                                    : "?");
  for (int32_t i = 0; i < t->shape.rank && i < LB_MAX_RANK && at < len; i++)
    at += (size_t)snprintf(buf + at, len - at, "%s%lld", i ? "," : "", (long long)t->shape.dims[i]);
  if (at < len) snprintf(buf + at, len - at, "]");
  return buf;
}

/* ---- precision ------------------------------------------------------------------------ */

static bool is_const(const struct lb_value *v) { return v && v->producer && v->producer->op == LB_OP_CONST; }

/* The constant weight of a weight-bearing node, or NULL. */
static const struct lb_value *weight_of(const struct lb_node *n) {
  switch (n->op) {
  case LB_OP_QMATMUL:
  case LB_OP_CONV:
    return n->n_inputs > 1 && is_const(n->inputs[1]) ? n->inputs[1] : NULL;
  case LB_OP_MATMUL:
  case LB_OP_GEMM:
  case LB_OP_FUSED_MATMUL:
    if (n->n_inputs > 1 && is_const(n->inputs[1])) return n->inputs[1];
    return n->n_inputs > 0 && is_const(n->inputs[0]) ? n->inputs[0] : NULL; /* W @ x */
  default:
    return NULL;
  }
}

enum lb_dot_precision lb_dot_node_precision(const struct lb_node *n, char *buf, size_t len) {
  char tmp[64];
  if (!buf) buf = tmp, len = sizeof tmp;
  buf[0] = 0;
  const struct lb_value *w = weight_of(n);
  if (!w) return LB_DOT_NONE;
  const struct lb_qparams *q = w->qparams;
  if (n->op != LB_OP_QMATMUL || !q) { /* the weight's own type */
    enum lb_dtype dt = w->type.dtype;
    snprintf(buf, len, "%s", (unsigned)dt < LB_DTYPE_COUNT ? lb_dtype_traits[dt].name : "?");
    return dt == LB_DTYPE_F32 ? LB_DOT_F32 : dt == LB_DTYPE_F16 ? LB_DOT_F16 : LB_DOT_OTHER;
  }
  const char *aq = lb_node_attr_string(n, "a_quant", "none");
  const char *acts = strcmp(aq, "static") == 0 ? "a8" : strcmp(aq, "dynamic") == 0 ? "a8 dynamic" : "";
  char group[24] = "";
  if (q->group_size > 0) snprintf(group, sizeof group, " g%d", (int)q->group_size);
  if (q->fp8) {
    snprintf(buf, len, "fp8 %s%s", lb_qfloat_name(q->fp8), group);
    return LB_DOT_FP8;
  }
  snprintf(buf, len, "w%d%s%s%s", (int)q->bits, acts, group, q->zero_points ? " asym" : "");
  switch (q->bits) {
  case 8: return LB_DOT_INT8;
  case 4: return LB_DOT_W4;
  case 3: return LB_DOT_W3;
  case 2: return LB_DOT_W2;
  default: return LB_DOT_OTHER;
  }
}

/* ---- the graph ------------------------------------------------------------------------ */

/* Where value id v comes from: n<i> (src >= 0), in<k> (src = -1 - k), or a constant / nothing (INT32_MIN). */
static void put_source(FILE *out, int32_t src) {
  if (src >= 0) fprintf(out, "n%d", (int)src);
  else fprintf(out, "in%d", (int)(-1 - src));
}

static void put_node(FILE *out, const struct lb_graph *g, int32_t i, int32_t *count) {
  const struct lb_node *n = g->nodes[i];
  char t[256], prec[64];
  enum lb_dot_precision p = lb_dot_node_precision(n, prec, sizeof prec);
  count[p]++;
  const char *name = n->name && n->name[0] ? n->name : n->n_outputs ? n->outputs[0]->name : "";
  fprintf(out, "  n%d [label=\"%s", (int)i, lb_op_info[n->op].ir_name);
  const char *act = lb_node_attr_string(n, "act", NULL);
  if (act && strcmp(act, "none") != 0) {
    fputs(" (", out);
    put_esc(out, act, 0);
    fputc(')', out);
  }
  fputs("\\n", out);
  put_short(out, name);
  if (p != LB_DOT_NONE) fprintf(out, "\\n%s", prec);
  int32_t consts = 0;
  for (int32_t k = 0; k < n->n_inputs; k++) {
    const struct lb_value *v = n->inputs[k];
    if (!is_const(v)) continue;
    if (consts++ == MAX_CONST_LINES) continue;
    fputs("\\n", out);
    put_short(out, v->name);
    fprintf(out, ": %s", type_text(&v->type, t, sizeof t));
  }
  if (consts > MAX_CONST_LINES) fprintf(out, "\\n+%d constants", (int)(consts - MAX_CONST_LINES));
  for (int32_t o = 0; o < n->n_outputs; o++)
    if (n->outputs[o]) fprintf(out, "\\n%s", type_text(&n->outputs[o]->type, t, sizeof t));
  fputs("\", tooltip=\"", out);
  put_esc(out, name, 0);
  for (int32_t k = 0; k < n->n_inputs; k++)
    if (is_const(n->inputs[k])) {
      fputs("\\n", out);
      put_esc(out, n->inputs[k]->name, 0);
    }
  fputc('"', out);
  if (p != LB_DOT_NONE)
    fprintf(out, ", fillcolor=\"%s\", fontcolor=\"%s\"", palette[p].fill, palette[p].font);
  fputs("];\n", out);
}

void lb_graph_write_dot(const struct lb_graph *g, FILE *out) {
  /* ids are renumbered (as lb_graph_clone does); nothing else changes */
  int32_t nv = lb_graph_index_values((struct lb_graph *)g);
  int32_t *src = malloc(sizeof *src * (size_t)(nv + 1));
  if (!src) abort();
  for (int32_t i = 0; i < nv; i++) src[i] = INT32_MIN;
  int32_t count[LB_DOT_PRECISION_COUNT] = {0};
  char t[256];

  fputs("digraph \"", out);
  put_esc(out, g->name ? g->name : "graph", 0);
  fputs("\" {\n  graph [rankdir=TB, fontname=\"Helvetica\", label=\"", out);
  put_esc(out, g->name ? g->name : "graph", 0);
  fputs("\", labelloc=t];\n"
        "  node [shape=box, style=\"rounded,filled\", fillcolor=white, fontname=\"Helvetica\", fontsize=10];\n"
        "  edge [fontname=\"Helvetica\", fontsize=8, color=\"#606060\"];\n",
        out);
  for (int32_t k = 0; k < g->n_inputs; k++) {
    const struct lb_value *v = g->inputs[k];
    src[v->id] = -1 - k;
    fprintf(out, "  in%d [shape=invhouse, fillcolor=\"#f7f7f7\", label=\"", (int)k);
    put_short(out, v->name);
    fprintf(out, "\\n%s\", tooltip=\"", type_text(&v->type, t, sizeof t));
    put_esc(out, v->name, 0);
    fputs("\"];\n", out);
  }
  for (int32_t i = 0; i < g->n_nodes; i++) {
    const struct lb_node *n = g->nodes[i];
    if (n->dead || n->op == LB_OP_CONST) continue;
    put_node(out, g, i, count);
    for (int32_t k = 0; k < n->n_inputs; k++) {
      const struct lb_value *v = n->inputs[k];
      if (!v || src[v->id] == INT32_MIN) continue; /* omitted, or a constant (in the label) */
      fputs("  ", out);
      put_source(out, src[v->id]);
      fprintf(out, " -> n%d [label=\"%s\"];\n", (int)i, type_text(&v->type, t, sizeof t));
    }
    for (int32_t o = 0; o < n->n_outputs; o++)
      if (n->outputs[o]) src[n->outputs[o]->id] = i;
  }
  for (int32_t k = 0; k < g->n_outputs; k++) {
    const struct lb_value *v = g->outputs[k];
    fprintf(out, "  out%d [shape=house, fillcolor=\"#f7f7f7\", label=\"", (int)k);
    put_short(out, v->name);
    fprintf(out, "\\n%s%s\", tooltip=\"", type_text(&v->type, t, sizeof t), is_const(v) ? "\\nconstant" : "");
    put_esc(out, v->name, 0);
    fputs("\"];\n", out);
    if (src[v->id] == INT32_MIN) continue;
    fputs("  ", out);
    put_source(out, src[v->id]);
    fprintf(out, " -> out%d [label=\"%s\"];\n", (int)k, type_text(&v->type, t, sizeof t));
  }
  /* the legend: the precisions present, in palette order, with their layer counts */
  int32_t present = 0;
  for (int p = LB_DOT_F32; p < LB_DOT_PRECISION_COUNT; p++) present += count[p] > 0;
  if (present) {
    fputs("  subgraph cluster_legend {\n    label=\"weight precision\"; style=rounded; fontsize=10;\n"
          "    node [shape=box, style=filled, fontsize=9];\n",
          out);
    int prev = -1;
    for (int p = LB_DOT_F32; p < LB_DOT_PRECISION_COUNT; p++) {
      if (!count[p]) continue;
      fprintf(out, "    legend_%d [label=\"%s: %d layer%s\", fillcolor=\"%s\", fontcolor=\"%s\"];\n", p,
              palette[p].name, (int)count[p], count[p] == 1 ? "" : "s", palette[p].fill, palette[p].font);
      if (prev >= 0) fprintf(out, "    legend_%d -> legend_%d [style=invis];\n", prev, p);
      prev = p;
    }
    fputs("  }\n", out);
  }
  fputs("}\n", out);
  free(src);
}

enum lb_status lb_graph_dump_dot(const struct lb_graph *g, const char *path, struct lb_diag *d) {
  char *tmp = NULL;
  FILE *f = lb_atomic_open(path, &tmp, d);
  if (!f) return d->status ? d->status : LB_ERR_IO;
  lb_graph_write_dot(g, f);
  return lb_atomic_commit(f, tmp, path, d);
}
