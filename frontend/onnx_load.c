/* onnx_load.c: ONNX ModelProto -> lowbit IR (the driver).
 *
 * Order of work, each step reporting every problem it finds before failing:
 *   1. bytes: depth scan (onnx_wire.c), protobuf-c unpack
 *   2. model: ir_version, opset imports
 *   3. ops: every node's (domain, op_type) against the op table and opsets;
 *      all unsupported nodes are listed in one error
 *   4. graph inputs: dtypes, shapes, --dim for symbolic dims, --bind values
 *   5. order: nodes sorted topologically (cycles and undefined inputs named)
 *   6. nodes: initializers become const nodes, then each node is rewritten into
 *      canonical IR (onnx_canon.c), typed with lb_infer_node and folded with
 *      lb_eval_node when all its inputs are constant
 *   7. graph outputs; dead nodes removed; the ModelProto is freed
 * Nothing in the graph points into protobuf memory.
 */
#include "frontend/fe_internal.h"

#include <stdlib.h>
#include <string.h>

/* ---- string map ------------------------------------------------------------------ */
static uint32_t str_hash(const char *s) {
  uint32_t h = 2166136261u;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 16777619u;
  return h;
}

static int32_t map_slot(const struct fe_map *m, const char *key) {
  uint32_t mask = (uint32_t)m->cap - 1;
  for (uint32_t i = str_hash(key) & mask;; i = (i + 1) & mask)
    if (!m->keys[i] || strcmp(m->keys[i], key) == 0) return (int32_t)i;
}

void fe_map_put(struct fe_map *m, const char *key, void *val) {
  if ((m->count + 1) * 2 > m->cap) {
    struct fe_map old = *m;
    m->cap = old.cap ? old.cap * 2 : 64;
    m->keys = calloc((size_t)m->cap, sizeof *m->keys);
    m->vals = calloc((size_t)m->cap, sizeof *m->vals);
    if (!m->keys || !m->vals) abort();
    m->count = 0;
    for (int32_t i = 0; i < old.cap; i++)
      if (old.keys[i]) fe_map_put(m, old.keys[i], old.vals[i]);
    free(old.keys);
    free(old.vals);
  }
  int32_t s = map_slot(m, key);
  if (!m->keys[s]) {
    m->keys[s] = key;
    m->count++;
  }
  m->vals[s] = val;
}

void *fe_map_get(const struct fe_map *m, const char *key) {
  if (!m->cap) return NULL;
  int32_t s = map_slot(m, key);
  return m->keys[s] ? m->vals[s] : NULL;
}

bool fe_map_has(const struct fe_map *m, const char *key) {
  return m->cap && m->keys[map_slot(m, key)] != NULL;
}

void fe_map_free(struct fe_map *m) {
  free(m->keys);
  free(m->vals);
  memset(m, 0, sizeof *m);
}

/* ---- helpers for onnx_canon.c ---------------------------------------------------- */
const char *fe_fresh_name(struct fe_ctx *c, const char *base) {
  size_t n = strlen(base) + 24;
  char *buf = lb_arena_alloc(&c->g->arena, n);
  snprintf(buf, n, "%s", base);
  for (int64_t k = 1; lb_graph_find_value(c->g, buf) || fe_map_has(&c->names, buf); k++)
    snprintf(buf, n, "%s.%lld", base, (long long)k);
  return buf;
}

struct lb_node *fe_add(struct fe_node *fn, enum lb_op op, struct lb_value *const *ins,
                       int32_t n_ins, const char *const *out_names, int32_t n_outs) {
  struct fe_ctx *c = fn->c;
  const char **names = lb_arena_alloc(&c->g->arena, sizeof *names * (size_t)(n_outs ? n_outs : 1));
  for (int32_t k = 0; k < n_outs; k++) {
    if (out_names && out_names[k] && out_names[k][0]) {
      names[k] = out_names[k];
    } else {
      size_t len = strlen(fn->name) + strlen(lb_op_info[op].ir_name) + 8;
      char *base = lb_arena_alloc(&c->g->arena, len);
      snprintf(base, len, "%s.%s", fn->name, lb_op_info[op].ir_name);
      names[k] = fe_fresh_name(c, base);
    }
  }
  return lb_graph_add_node(c->g, op, fn->name, ins, n_ins, names, n_outs);
}

/* Makes v the output of a new const node holding `data` (ownership taken). */
static void attach_const(struct fe_ctx *c, struct lb_value *v, void *data) {
  struct lb_node *k = lb_graph_add_node(c->g, LB_OP_CONST, "", NULL, 0, NULL, 0);
  k->n_outputs = 1;
  k->outputs = lb_arena_alloc(&c->g->arena, sizeof *k->outputs);
  k->outputs[0] = v;
  v->producer = k;
  v->producer_output = 0;
  k->blob = lb_graph_add_blob(c->g, v->name, data, (size_t)lb_type_nbytes(&v->type));
}

struct lb_value *fe_const_owned(struct fe_ctx *c, const char *name, const struct lb_type *t,
                                void *data) {
  struct lb_value *v = lb_value_new(c->g, name, *t);
  attach_const(c, v, data);
  return v;
}

struct lb_value *fe_const_copy(struct fe_ctx *c, const char *name, const struct lb_type *t,
                               const void *data) {
  size_t n = (size_t)lb_type_nbytes(t);
  void *copy = fe_alloc(n);
  if (!copy) abort(); /* only used for small constants */
  if (n) memcpy(copy, data, n);
  return fe_const_owned(c, name, t, copy);
}

bool fe_output_used(const struct fe_node *fn, int32_t k) {
  if (k >= (int32_t)fn->np->n_output) return false;
  const char *name = fn->np->output[k];
  return name && name[0] && fe_map_has(&fn->c->used, name);
}

/* Evaluates n (all inputs constant) into const nodes; false (and n untouched) if the
 * evaluator refuses. */
static bool fold(struct fe_ctx *c, struct lb_node *n, bool *failed) {
  const void *ins[16];
  void *outs[16];
  if (n->n_inputs > 16 || n->n_outputs > 16) return false;
  for (int32_t i = 0; i < n->n_inputs; i++)
    ins[i] = n->inputs[i] ? lb_value_const_data(c->g, n->inputs[i]) : NULL;
  int32_t made = 0;
  bool ok = true;
  for (; made < n->n_outputs && ok; made++) {
    outs[made] = fe_alloc((size_t)lb_type_nbytes(&n->outputs[made]->type));
    ok = outs[made] != NULL;
  }
  if (ok) {
    struct lb_diag scratch;
    lb_diag_init(&scratch, c->d->file);
    enum lb_status st = lb_eval_node(c->g, n, ins, outs, &scratch);
    ok = st == LB_OK;
    /* data-dependent errors (an index out of range, an integer division by
     * zero) on constant data: the model is invalid, say so now */
    if (st == LB_ERR_INVALID && scratch.text) {
      lb_diag_append_error(c->d, st, scratch.text, strlen(scratch.text));
      *failed = true;
    }
    lb_diag_free(&scratch);
  }
  if (!ok) {
    for (int32_t k = 0; k < made; k++) free(outs[k]);
    return false;
  }
  for (int32_t k = 0; k < n->n_outputs; k++) attach_const(c, n->outputs[k], outs[k]);
  n->dead = true;
  return true;
}

enum lb_status fe_finish(struct fe_node *fn, struct lb_node *n) {
  struct fe_ctx *c = fn->c;
  enum lb_status st = lb_infer_node(c->g, n, c->d);
  if (st != LB_OK) return st;
  int64_t total = 0;
  for (int32_t k = 0; k < n->n_outputs; k++) {
    const struct lb_type *t = &n->outputs[k]->type;
    int64_t numel;
    if (t->dtype == LB_DTYPE_UNDEF || t->dtype >= LB_DTYPE_COUNT ||
        !lb_shape_numel_checked(&t->shape, c->max_bytes / lb_dtype_traits[t->dtype].size, &numel))
      return lb_diag_error(c->d, LB_ERR_LIMIT, n,
                           "output \"%s\" has no valid type or is over the size limit of %lld bytes",
                           n->outputs[k]->name, (long long)c->max_bytes);
    total += numel;
  }
  bool all_const = n->n_inputs > 0;
  for (int32_t i = 0; i < n->n_inputs; i++)
    if (n->inputs[i] && !lb_value_const_data(c->g, n->inputs[i])) all_const = false;
  /* an 8-bit weight's DequantizeLinear stays: the fold-qdq pass runs it in int8 */
  if (n->op == LB_OP_DEQUANTIZE_LINEAR &&
      (n->inputs[0]->type.dtype == LB_DTYPE_I8 || n->inputs[0]->type.dtype == LB_DTYPE_U8))
    all_const = false;
  bool failed = false;
  if (all_const && total <= FE_FOLD_LIMIT) fold(c, n, &failed);
  return failed ? LB_ERR_INVALID : LB_OK;
}

/* Collects the graph inputs that v's value depends on (through non-constant nodes). */
static void find_input_deps(struct fe_ctx *c, struct lb_value *v, uint8_t *seen,
                            struct lb_value **found, int32_t *n_found, int32_t cap) {
  if (!v || v->id >= c->g->n_values || seen[v->id]) return;
  seen[v->id] = 1;
  if (lb_value_is_const(v)) return;
  if (!v->producer) {
    if (*n_found < cap) found[(*n_found)++] = v;
    return;
  }
  for (int32_t i = 0; i < v->producer->n_inputs; i++)
    find_input_deps(c, v->producer->inputs[i], seen, found, n_found, cap);
}

enum lb_status fe_need_const(struct fe_node *fn, int32_t idx, const char *what) {
  struct fe_ctx *c = fn->c;
  struct lb_value *v = idx < fn->n_in ? fn->in[idx] : NULL;
  if (!v || lb_value_const_data(c->g, v)) return LB_OK;
  const char *op = fn->np->op_type;
  if (!v->producer)
    return lb_diag_error(c->d, LB_ERR_UNSUPPORTED, NULL,
                         "input \"%s\" decides output shapes of node \"%s\" (%s); bind its value "
                         "with --bind %s=FILE", v->name, fn->name, op, v->name);
  uint8_t *seen = calloc((size_t)c->g->n_values + 1, 1);
  if (!seen) abort();
  struct lb_value *deps[8];
  int32_t n_deps = 0;
  find_input_deps(c, v, seen, deps, &n_deps, 8);
  free(seen);
  enum lb_status st = lb_diag_error(
      c->d, LB_ERR_UNSUPPORTED, &fn->diag,
      "its %s (input %d, \"%s\") is data-dependent: it is computed at run time by node \"%s\" "
      "(%s), but lowbit needs it at compile time to fix output shapes",
      what, (int)idx, fn->np->input[idx], v->producer->name, lb_op_info[v->producer->op].ir_name);
  for (int32_t k = 0; k < n_deps; k++)
    lb_diag_note(c->d, "it depends on graph input \"%s\"; if that input is fixed, bind it "
                       "with --bind %s=FILE", deps[k]->name, deps[k]->name);
  return st;
}

/* ---- model checks ---------------------------------------------------------------- */
static const char *norm_domain(const char *d) {
  return !d || strcmp(d, "ai.onnx") == 0 ? "" : d;
}

/* The opset imported for `domain`, or -1. */
static int64_t opset_of(const Onnx__ModelProto *mp, const char *domain) {
  int64_t v = -1;
  for (size_t i = 0; i < mp->n_opset_import; i++) {
    const Onnx__OperatorSetIdProto *o = mp->opset_import[i];
    if (strcmp(norm_domain(o->domain), domain) == 0 && o->has_version && o->version > v)
      v = o->version;
  }
  return v;
}

static enum lb_status check_model(const Onnx__ModelProto *mp, int64_t *opset, struct lb_diag *d) {
  if (!mp->has_ir_version)
    return lb_diag_error(d, LB_ERR_INVALID, NULL, "model has no ir_version");
  if (mp->ir_version < 3)
    return lb_diag_error(d, LB_ERR_UNSUPPORTED, NULL,
                         "ir_version %lld predates opset imports (need 3 or newer)",
                         (long long)mp->ir_version);
  if (mp->ir_version > 11)
    return lb_diag_error(d, LB_ERR_UNSUPPORTED, NULL,
                         "ir_version %lld is newer than supported (11)", (long long)mp->ir_version);
  if (!mp->graph) return lb_diag_error(d, LB_ERR_INVALID, NULL, "model has no graph");
  *opset = opset_of(mp, "");
  if (*opset < 0)
    return lb_diag_error(d, LB_ERR_INVALID, NULL,
                         "model imports no opset for the default domain (ai.onnx)");
  if (*opset > FE_MAX_OPSET)
    return lb_diag_error(d, LB_ERR_UNSUPPORTED, NULL,
                         "model uses opset %lld (ai.onnx), newer than the newest supported (%d)",
                         (long long)*opset, FE_MAX_OPSET);
  if (*opset < FE_MIN_OPSET)
    return lb_diag_error(d, LB_ERR_UNSUPPORTED, NULL,
                         "model uses opset %lld (ai.onnx), older than the oldest supported (%d)",
                         (long long)*opset, FE_MIN_OPSET);
  return LB_OK;
}

static const char *node_display_name(const Onnx__NodeProto *np) {
  if (np->name && np->name[0]) return np->name;
  for (size_t k = 0; k < np->n_output; k++)
    if (np->output[k] && np->output[k][0]) return np->output[k];
  return np->op_type ? np->op_type : "";
}

/* Why the node cannot be imported, or NULL. `buf` holds the text. */
static const char *unsupported_reason(const Onnx__ModelProto *mp, const Onnx__NodeProto *np,
                                      char *buf, size_t cap) {
  const char *dom = norm_domain(np->domain);
  const char *opn = np->op_type ? np->op_type : "";
  int64_t have = opset_of(mp, dom);
  enum lb_op op = lb_op_from_onnx(dom, opn);
  if (have < 0 && *dom) {
    snprintf(buf, cap, "domain \"%s\" is not supported", dom);
    return buf;
  }
  if (op == LB_OP_COUNT || !fe_canon_handles(op)) {
    snprintf(buf, cap, "unsupported op");
    return buf;
  }
  if (lb_op_info[op].since_opset > have) {
    snprintf(buf, cap, "op needs opset %d, the model imports %lld", lb_op_info[op].since_opset,
             (long long)have);
    return buf;
  }
  if (op == LB_OP_CONSTANT) {
    for (size_t i = 0; i < np->n_attribute; i++) {
      const char *an = np->attribute[i]->name ? np->attribute[i]->name : "";
      if (strcmp(an, "value_string") == 0 || strcmp(an, "value_strings") == 0 ||
          strcmp(an, "sparse_value") == 0) {
        snprintf(buf, cap, "Constant with %s is not supported", an);
        return buf;
      }
    }
  }
  return NULL;
}

static void op_label(const Onnx__NodeProto *np, char *buf, size_t cap) {
  const char *dom = norm_domain(np->domain);
  if (*dom) snprintf(buf, cap, "%s, domain %s", np->op_type ? np->op_type : "", dom);
  else snprintf(buf, cap, "%s", np->op_type ? np->op_type : "");
}

static enum lb_status check_ops(const Onnx__ModelProto *mp, struct lb_diag *d) {
  const Onnx__GraphProto *gp = mp->graph;
  int32_t bad = 0;
  size_t cap = 256, len = 0;
  char *list = malloc(cap);
  if (!list) abort();
  list[0] = 0;
  for (size_t i = 0; i < gp->n_node; i++) {
    char why[160], label[160];
    if (!unsupported_reason(mp, gp->node[i], why, sizeof why)) continue;
    op_label(gp->node[i], label, sizeof label);
    const char *nm = node_display_name(gp->node[i]);
    size_t need = strlen(nm) + strlen(label) + 16;
    if (len + need >= cap) {
      while (len + need >= cap) cap *= 2;
      list = realloc(list, cap);
      if (!list) abort();
    }
    len += (size_t)snprintf(list + len, cap - len, "%snode \"%s\" (%s)", bad ? ", " : "", nm, label);
    bad++;
  }
  if (!bad) {
    free(list);
    return LB_OK;
  }
  lb_diag_error(d, LB_ERR_UNSUPPORTED, NULL, "%d unsupported op%s: %s", (int)bad,
                bad == 1 ? "" : "s", list);
  free(list);
  /* One line per node, `file: node "n" (Op, domain D): error: why`. */
  const char *file = d->file;
  for (size_t i = 0; i < gp->n_node; i++) {
    char why[160], label[160];
    if (!unsupported_reason(mp, gp->node[i], why, sizeof why)) continue;
    op_label(gp->node[i], label, sizeof label);
    const char *nm = node_display_name(gp->node[i]);
    size_t plen = (file ? strlen(file) + 2 : 0) + strlen(nm) + strlen(label) + 16;
    char *prefix = malloc(plen);
    if (!prefix) abort();
    snprintf(prefix, plen, "%s%snode \"%s\" (%s)", file ? file : "", file ? ": " : "", nm, label);
    d->file = prefix;
    lb_diag_error(d, LB_ERR_UNSUPPORTED, NULL, "%s", why);
    d->file = file;
    free(prefix);
  }
  return LB_ERR_UNSUPPORTED;
}

/* ---- graph inputs, --dim and --bind ---------------------------------------------- */
static const struct lb_dim_binding *find_dim(const struct lb_onnx_options *o, const char *name,
                                             int32_t *idx) {
  for (int32_t i = 0; i < o->n_dims; i++)
    if (o->dims[i].name && strcmp(o->dims[i].name, name) == 0) {
      if (idx) *idx = i;
      return &o->dims[i];
    }
  return NULL;
}

static const struct lb_input_binding *find_bind(const struct lb_onnx_options *o,
                                                const char *name) {
  for (int32_t i = 0; i < o->n_binds; i++)
    if (o->binds[i].name && strcmp(o->binds[i].name, name) == 0) return &o->binds[i];
  return NULL;
}

/* Reads a graph input's declared type; symbolic dims are bound from --dim. A dim that
 * cannot be bound is reported (all of them, then fails). `dim_used` marks --dims seen. */
static enum lb_status input_type(struct fe_ctx *c, const Onnx__ValueInfoProto *vi, bool bound,
                                 bool *dim_used, struct lb_type *t, bool *symbolic) {
  struct lb_diag *d = c->d;
  const char *name = vi->name;
  memset(t, 0, sizeof *t);
  memset(symbolic, 0, sizeof *symbolic * LB_MAX_RANK);
  const Onnx__TypeProto *tp = vi->type;
  if (!tp || tp->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || !tp->tensor_type)
    return lb_diag_error(d, LB_ERR_UNSUPPORTED, NULL, "input \"%s\" is not a tensor", name);
  const Onnx__TypeProto__Tensor *tt = tp->tensor_type;
  int code = tt->has_elem_type ? tt->elem_type : 0;
  t->dtype = lb_dtype_from_onnx(code);
  if (t->dtype == LB_DTYPE_UNDEF)
    return lb_diag_error(d, LB_ERR_UNSUPPORTED, NULL,
                         "input \"%s\" has unsupported element type %d", name, code);
  if (!tt->shape)
    return lb_diag_error(d, LB_ERR_UNSUPPORTED, NULL,
                         "input \"%s\" has no shape (not even a rank); lowbit needs static shapes",
                         name);
  if (tt->shape->n_dim > LB_MAX_RANK)
    return lb_diag_error(d, LB_ERR_UNSUPPORTED, NULL, "input \"%s\" has rank %zu, over %d", name,
                         tt->shape->n_dim, LB_MAX_RANK);
  t->shape.rank = (int32_t)tt->shape->n_dim;
  enum lb_status st = LB_OK;
  for (int32_t i = 0; i < t->shape.rank; i++) {
    const Onnx__TensorShapeProto__Dimension *dm = tt->shape->dim[i];
    if (dm->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE) {
      if (dm->dim_value < 0)
        st = lb_diag_error(d, LB_ERR_INVALID, NULL, "input \"%s\" has negative dim %lld (dim %d)",
                           name, (long long)dm->dim_value, (int)i);
      t->shape.dims[i] = dm->dim_value;
    } else if (dm->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM &&
               dm->dim_param && dm->dim_param[0]) {
      int32_t di;
      const struct lb_dim_binding *b = find_dim(c->opt, dm->dim_param, &di);
      symbolic[i] = true;
      if (b) {
        dim_used[di] = true;
        t->shape.dims[i] = b->value;
      } else if (!bound) {
        st = lb_diag_error(d, LB_ERR_USAGE, NULL,
                           "input \"%s\" has symbolic dim \"%s\" (dim %d); bind it with --dim %s=N",
                           name, dm->dim_param, (int)i, dm->dim_param);
      }
    } else if (!bound) {
      st = lb_diag_error(d, LB_ERR_UNSUPPORTED, NULL,
                         "input \"%s\" dim %d has neither a size nor a name, so --dim cannot bind "
                         "it; give the model a static or named dim", name, (int)i);
    } else {
      symbolic[i] = true;
    }
  }
  return st;
}

static enum lb_status import_inputs(struct fe_ctx *c, const Onnx__GraphProto *gp,
                                    const struct fe_map *inits) {
  struct lb_diag *d = c->d;
  const struct lb_onnx_options *o = c->opt;
  enum lb_status st = LB_OK;
  bool *dim_used = calloc((size_t)o->n_dims + 1, sizeof *dim_used);
  if (!dim_used) abort();

  for (int32_t i = 0; i < o->n_dims; i++) {
    const char *nm = o->dims[i].name ? o->dims[i].name : "";
    int32_t first = i;
    find_dim(o, nm, &first);
    if (first != i)
      st = lb_diag_error(d, LB_ERR_USAGE, NULL, "--dim %s is given twice", nm);
    if (o->dims[i].value <= 0)
      st = lb_diag_error(d, LB_ERR_USAGE, NULL, "--dim %s=%lld: a dim must be positive", nm,
                         (long long)o->dims[i].value);
  }
  for (int32_t i = 0; i < o->n_binds; i++) {
    const char *nm = o->binds[i].name ? o->binds[i].name : "";
    bool found = false;
    for (size_t k = 0; k < gp->n_input; k++)
      if (gp->input[k]->name && strcmp(gp->input[k]->name, nm) == 0) found = true;
    if (!found || fe_map_has(inits, nm))
      st = lb_diag_error(d, LB_ERR_USAGE, NULL, "--bind %s: the model has no graph input \"%s\"%s",
                         nm, nm, found ? " (it is an initializer)" : "");
    for (int32_t k = 0; k < i; k++)
      if (o->binds[k].name && strcmp(o->binds[k].name, nm) == 0)
        st = lb_diag_error(d, LB_ERR_USAGE, NULL, "--bind %s is given twice", nm);
  }

  for (size_t k = 0; k < gp->n_input; k++) {
    const Onnx__ValueInfoProto *vi = gp->input[k];
    if (!vi->name || !vi->name[0]) {
      st = lb_diag_error(d, LB_ERR_INVALID, NULL, "graph input %zu has no name", k);
      continue;
    }
    if (fe_map_has(inits, vi->name)) { /* an initializer: a constant, its declared type must agree */
      const Onnx__TensorProto *it = fe_map_get(inits, vi->name);
      const Onnx__TypeProto *tp = vi->type;
      if (!it || !tp || tp->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || !tp->tensor_type) continue;
      const Onnx__TypeProto__Tensor *tt = tp->tensor_type;
      bool ok = !tt->has_elem_type || !it->has_data_type || tt->elem_type == it->data_type;
      if (ok && tt->shape) {
        ok = tt->shape->n_dim == it->n_dims;
        for (size_t k = 0; ok && k < it->n_dims; k++) {
          const Onnx__TensorShapeProto__Dimension *dm = tt->shape->dim[k];
          if (dm->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE && dm->dim_value != it->dims[k])
            ok = false;
        }
      }
      if (!ok)
        st = lb_diag_error(d, LB_ERR_INVALID, NULL,
                           "graph input \"%s\" and the initializer of the same name disagree on "
                           "element type or shape", vi->name);
      continue;
    }
    if (fe_map_has(&c->values, vi->name)) {
      st = lb_diag_error(d, LB_ERR_INVALID, NULL, "graph input \"%s\" is declared twice", vi->name);
      continue;
    }
    const struct lb_input_binding *b = find_bind(o, vi->name);
    struct lb_type t;
    bool symbolic[LB_MAX_RANK];
    enum lb_status s = input_type(c, vi, b != NULL, dim_used, &t, symbolic);
    if (s != LB_OK) {
      st = s;
      continue;
    }
    if (!b) {
      int64_t numel;
      if (!lb_shape_numel_checked(&t.shape, c->max_bytes / lb_dtype_traits[t.dtype].size, &numel)) {
        st = lb_diag_error(d, LB_ERR_LIMIT, NULL, "input \"%s\" is larger than the limit of %lld "
                           "bytes", vi->name, (long long)c->max_bytes);
        continue;
      }
      struct lb_value *v = lb_value_new(c->g, vi->name, t);
      lb_graph_add_input(c->g, v);
      fe_map_put(&c->values, vi->name, v);
      continue;
    }
    struct lb_type bt;
    void *data;
    s = fe_bind_load(c, b->path, &bt, &data);
    if (s != LB_OK) {
      st = s;
      continue;
    }
    bool ok = bt.dtype == t.dtype && bt.shape.rank == t.shape.rank;
    for (int32_t i = 0; ok && i < t.shape.rank; i++)
      if (bt.shape.dims[i] != t.shape.dims[i] && !(symbolic[i] && t.shape.dims[i] == 0)) ok = false;
    if (!ok) {
      char want[160], got[160];
      int wl = snprintf(want, sizeof want, "%s[", lb_dtype_traits[t.dtype].name);
      int gl = snprintf(got, sizeof got, "%s[", lb_dtype_traits[bt.dtype].name);
      for (int32_t i = 0; i < t.shape.rank && wl < 140; i++)
        wl += snprintf(want + wl, sizeof want - (size_t)wl, "%s%lld", i ? "," : "",
                       symbolic[i] && !t.shape.dims[i] ? -1LL : (long long)t.shape.dims[i]);
      for (int32_t i = 0; i < bt.shape.rank && gl < 140; i++)
        gl += snprintf(got + gl, sizeof got - (size_t)gl, "%s%lld", i ? "," : "",
                       (long long)bt.shape.dims[i]);
      st = lb_diag_error(d, LB_ERR_USAGE, NULL,
                         "--bind %s=%s: the file holds %s], the input is declared %s] (-1: any)",
                         vi->name, b->path, got, want);
      free(data);
      continue;
    }
    struct lb_value *v = fe_const_owned(c, vi->name, &bt, data);
    fe_map_put(&c->values, vi->name, v);
  }

  for (int32_t i = 0; i < o->n_dims; i++)
    if (!dim_used[i])
      st = lb_diag_error(d, LB_ERR_USAGE, NULL, "--dim %s: no graph input has a dim named \"%s\"",
                         o->dims[i].name ? o->dims[i].name : "",
                         o->dims[i].name ? o->dims[i].name : "");
  free(dim_used);
  return st;
}

/* ---- node order ------------------------------------------------------------------- */
/* min-heap of node indices, so that an already sorted model keeps its order */
static void heap_push(int32_t *h, int32_t *n, int32_t v) {
  int32_t i = (*n)++;
  h[i] = v;
  while (i > 0 && h[(i - 1) / 2] > h[i]) {
    int32_t p = (i - 1) / 2, t = h[p];
    h[p] = h[i];
    h[i] = t;
    i = p;
  }
}

static int32_t heap_pop(int32_t *h, int32_t *n) {
  int32_t top = h[0];
  h[0] = h[--(*n)];
  for (int32_t i = 0;;) {
    int32_t l = 2 * i + 1, r = l + 1, m = i;
    if (l < *n && h[l] < h[m]) m = l;
    if (r < *n && h[r] < h[m]) m = r;
    if (m == i) break;
    int32_t t = h[m];
    h[m] = h[i];
    h[i] = t;
    i = m;
  }
  return top;
}

/* Node indices in a topological order; reports undefined inputs and cycles. */
static enum lb_status order_nodes(struct fe_ctx *c, const Onnx__GraphProto *gp,
                                  const struct fe_map *producer, int32_t **order_out) {
  struct lb_diag *d = c->d;
  int32_t n = (int32_t)gp->n_node;
  int32_t *pending = calloc((size_t)n + 1, sizeof *pending);
  int32_t *heap = malloc(sizeof *heap * ((size_t)n + 1));
  int32_t *order = malloc(sizeof *order * ((size_t)n + 1));
  /* consumers: CSR adjacency from producer node to consumer nodes */
  int32_t *deg = calloc((size_t)n + 1, sizeof *deg);
  if (!pending || !heap || !order || !deg) abort();
  enum lb_status st = LB_OK;
  size_t n_edges = 0;
  for (int32_t i = 0; i < n; i++) {
    const Onnx__NodeProto *np = gp->node[i];
    for (size_t k = 0; k < np->n_input; k++) {
      const char *in = np->input[k];
      if (!in || !in[0] || fe_map_has(&c->values, in)) continue;
      void *p = fe_map_get(producer, in);
      if (!p) {
        struct lb_node dn = {.op = lb_op_from_onnx(norm_domain(np->domain), np->op_type),
                             .name = node_display_name(np)};
        st = lb_diag_error(d, LB_ERR_INVALID, &dn,
                           "input \"%s\" is not defined (not a graph input, initializer or node "
                           "output)", in);
        continue;
      }
      pending[i]++;
      deg[(intptr_t)p - 1]++;
      n_edges++;
    }
  }
  if (st != LB_OK) goto out;
  int32_t *start = calloc((size_t)n + 2, sizeof *start);
  int32_t *adj = malloc(sizeof *adj * (n_edges + 1));
  if (!start || !adj) abort();
  for (int32_t i = 0; i < n; i++) start[i + 1] = start[i] + deg[i];
  memset(deg, 0, sizeof *deg * (size_t)n);
  for (int32_t i = 0; i < n; i++) {
    const Onnx__NodeProto *np = gp->node[i];
    for (size_t k = 0; k < np->n_input; k++) {
      const char *in = np->input[k];
      if (!in || !in[0] || fe_map_has(&c->values, in)) continue;
      int32_t p = (int32_t)(intptr_t)fe_map_get(producer, in) - 1;
      adj[start[p] + deg[p]++] = i;
    }
  }
  int32_t hn = 0, done = 0;
  for (int32_t i = 0; i < n; i++)
    if (!pending[i]) heap_push(heap, &hn, i);
  while (hn) {
    int32_t i = heap_pop(heap, &hn);
    order[done++] = i;
    for (int32_t e = start[i]; e < start[i + 1]; e++)
      if (--pending[adj[e]] == 0) heap_push(heap, &hn, adj[e]);
  }
  if (done < n) {
    char list[512];
    size_t len = 0;
    int32_t shown = 0, total = 0;
    for (int32_t i = 0; i < n; i++) {
      if (!pending[i]) continue;
      total++;
      if (shown < 6 && len < sizeof list - 100) {
        len += (size_t)snprintf(list + len, sizeof list - len, "%s\"%s\" (%s)", shown ? ", " : "",
                                node_display_name(gp->node[i]), gp->node[i]->op_type);
        shown++;
      }
    }
    st = lb_diag_error(d, LB_ERR_INVALID, NULL,
                       "the graph has a cycle: %d node%s wait on each other's outputs: %s%s",
                       (int)total, total == 1 ? "" : "s", list, total > shown ? ", ..." : "");
  }
  free(start);
  free(adj);
out:
  free(pending);
  free(heap);
  free(deg);
  if (st != LB_OK) {
    free(order);
    return st;
  }
  *order_out = order;
  return LB_OK;
}

/* ---- nodes -------------------------------------------------------------------------- */
static enum lb_status import_node(struct fe_ctx *c, const Onnx__ModelProto *mp,
                                  const Onnx__NodeProto *np) {
  struct fe_node fn = {.c = c, .np = np};
  fn.name = node_display_name(np);
  fn.op = lb_op_from_onnx(norm_domain(np->domain), np->op_type);
  LB_ASSERT(fn.op != LB_OP_COUNT); /* check_ops ran */
  fn.diag.op = fn.op;
  fn.diag.name = fn.name;
  const struct lb_op_info *info = &lb_op_info[fn.op];
  (void)mp;
  fn.n_in = (int32_t)np->n_input;
  fn.n_out = (int32_t)np->n_output;
  int32_t max_out = fn.op == LB_OP_BATCH_NORM ? 5 : info->max_outputs;
  if (fn.n_in < info->min_inputs || (info->max_inputs >= 0 && fn.n_in > info->max_inputs))
    return lb_diag_error(c->d, LB_ERR_INVALID, &fn.diag, "has %d inputs, expected %d to %d",
                         (int)fn.n_in, info->min_inputs, info->max_inputs);
  if (fn.n_out < info->min_outputs || (max_out >= 0 && fn.n_out > max_out))
    return lb_diag_error(c->d, LB_ERR_INVALID, &fn.diag, "has %d outputs, expected %d to %d",
                         (int)fn.n_out, info->min_outputs, max_out);
  fn.in = lb_arena_alloc(&c->g->arena, sizeof *fn.in * (size_t)(fn.n_in + 1));
  fn.out = lb_arena_alloc(&c->g->arena, sizeof *fn.out * (size_t)(fn.n_out + 1));
  for (int32_t k = 0; k < fn.n_in; k++) {
    const char *in = np->input[k];
    if (!in || !in[0]) continue;
    fn.in[k] = fe_map_get(&c->values, in);
    if (!fn.in[k])
      return lb_diag_error(c->d, LB_ERR_INVALID, &fn.diag,
                           "input \"%s\" is not available (an optional output its producer did "
                           "not define)", in);
  }
  enum lb_status st = fe_canon_node(&fn);
  if (st != LB_OK) return st;
  for (int32_t k = 0; k < fn.n_out; k++) {
    const char *on = np->output[k];
    if (!on || !on[0]) continue;
    if (fn.out[k]) fe_map_put(&c->values, on, fn.out[k]);
    else if (fe_output_used(&fn, k))
      return lb_diag_error(c->d, LB_ERR_UNSUPPORTED, &fn.diag,
                           "output %d (\"%s\") is used but lowbit does not compute it", (int)k, on);
  }
  return LB_OK;
}

/* Constants nothing reads any more (inputs of folded nodes) are dropped; other
 * dead code is left to the passes. */
static void drop_unused_consts(struct lb_graph *g) {
  int32_t *uses = lb_graph_count_uses(g);
  for (int32_t i = g->n_nodes - 1; i >= 0; i--) {
    struct lb_node *n = g->nodes[i];
    if (n->dead) {
      for (int32_t k = 0; k < n->n_inputs; k++)
        if (n->inputs[k]) uses[n->inputs[k]->id]--;
    } else if (n->op == LB_OP_CONST && uses[n->outputs[0]->id] == 0) {
      n->dead = true;
    }
  }
  free(uses);
  lb_graph_compact(g);
}

static enum lb_status import_graph(struct fe_ctx *c, const Onnx__ModelProto *mp) {
  const Onnx__GraphProto *gp = mp->graph;
  struct lb_diag *d = c->d;
  struct fe_map inits = {0}, producer = {0};
  int32_t *order = NULL;
  enum lb_status st = LB_OK;

  /* names: defined and used */
  for (size_t i = 0; i < gp->n_initializer; i++) {
    const char *nm = gp->initializer[i]->name;
    if (!nm || !nm[0]) {
      st = lb_diag_error(d, LB_ERR_INVALID, NULL, "initializer %zu has no name", i);
      goto out;
    }
    if (fe_map_has(&inits, nm)) {
      st = lb_diag_error(d, LB_ERR_INVALID, NULL, "initializer \"%s\" is defined twice", nm);
      goto out;
    }
    fe_map_put(&inits, nm, gp->initializer[i]);
    fe_map_put(&c->names, nm, NULL);
  }
  for (size_t i = 0; i < gp->n_input; i++)
    if (gp->input[i]->name) fe_map_put(&c->names, gp->input[i]->name, NULL);
  for (size_t i = 0; i < gp->n_node; i++) {
    const Onnx__NodeProto *np = gp->node[i];
    for (size_t k = 0; k < np->n_input; k++)
      if (np->input[k] && np->input[k][0]) fe_map_put(&c->used, np->input[k], NULL);
    for (size_t k = 0; k < np->n_output; k++) {
      const char *on = np->output[k];
      if (!on || !on[0]) continue;
      if (fe_map_has(&c->names, on)) {
        struct lb_node dn = {.op = lb_op_from_onnx(norm_domain(np->domain), np->op_type),
                             .name = node_display_name(np)};
        st = lb_diag_error(d, LB_ERR_INVALID, &dn,
                           "output \"%s\" is already defined (by a graph input, initializer or "
                           "another node)", on);
        continue;
      }
      fe_map_put(&c->names, on, NULL);
      fe_map_put(&producer, on, (void *)(intptr_t)(i + 1));
    }
  }
  for (size_t i = 0; i < gp->n_output; i++)
    if (gp->output[i]->name) fe_map_put(&c->used, gp->output[i]->name, NULL);
  if (st != LB_OK) goto out;

  st = import_inputs(c, gp, &inits);
  if (st != LB_OK) goto out;

  /* initializers that something reads become const nodes */
  for (size_t i = 0; i < gp->n_initializer; i++) {
    const Onnx__TensorProto *t = gp->initializer[i];
    if (!fe_map_has(&c->used, t->name)) continue;
    size_t wl = strlen(t->name) + 20;
    char *what = malloc(wl);
    if (!what) abort();
    snprintf(what, wl, "initializer \"%s\"", t->name);
    struct lb_type ty;
    void *data;
    enum lb_status s = fe_tensor_load(c, t, what, &ty, &data);
    free(what);
    if (s != LB_OK) {
      st = s;
      continue;
    }
    fe_map_put(&c->values, t->name, fe_const_owned(c, t->name, &ty, data));
  }
  if (st != LB_OK) goto out;

  st = order_nodes(c, gp, &producer, &order);
  if (st != LB_OK) goto out;
  for (size_t i = 0; i < gp->n_node; i++) {
    st = import_node(c, mp, gp->node[order[i]]);
    if (st != LB_OK) goto out;
  }

  for (size_t i = 0; i < gp->n_output; i++) {
    const char *nm = gp->output[i]->name;
    struct lb_value *v = nm ? fe_map_get(&c->values, nm) : NULL;
    if (!v) {
      st = lb_diag_error(d, LB_ERR_INVALID, NULL, "graph output \"%s\" is not defined by any node, "
                         "input or initializer", nm ? nm : "");
      continue;
    }
    lb_graph_add_output(c->g, v);
  }
  if (st == LB_OK) drop_unused_consts(c->g);
out:
  free(order);
  fe_map_free(&inits);
  fe_map_free(&producer);
  return st;
}

/* ---- entry points --------------------------------------------------------------------- */
enum lb_status lb_onnx_load_buffer(const void *data, size_t len, const char *base_dir,
                                   const struct lb_onnx_options *opt, struct lb_graph **out,
                                   struct lb_diag *d) {
  *out = NULL;
  static const struct lb_onnx_options no_options;
  struct lb_onnx_options o = opt ? *opt : no_options;
  if (o.max_tensor_bytes <= 0) o.max_tensor_bytes = (int64_t)16 << 30;
  if (o.max_subgraph_depth <= 0) o.max_subgraph_depth = 8;
  if (o.n_dims < 0 || (o.n_dims && !o.dims) || o.n_binds < 0 || (o.n_binds && !o.binds))
    return lb_diag_error(d, LB_ERR_USAGE, NULL, "bad --dim/--bind option arrays");
  if (!data && len) return lb_diag_error(d, LB_ERR_USAGE, NULL, "no model data");

  enum lb_status st = fe_wire_check(data, len, o.max_subgraph_depth, d);
  if (st != LB_OK) return st;
  Onnx__ModelProto *mp = onnx__model_proto__unpack(NULL, len, data);
  if (!mp)
    return lb_diag_error(d, LB_ERR_PARSE, NULL, "not a valid ONNX model (protobuf parse failed)");

  int64_t opset = 0;
  st = check_model(mp, &opset, d);
  if (st == LB_OK) st = check_ops(mp, d);
  if (st != LB_OK) {
    onnx__model_proto__free_unpacked(mp, NULL);
    return st;
  }

  struct fe_ctx c = {0};
  c.g = lb_graph_new(mp->graph->name && mp->graph->name[0] ? mp->graph->name : "model");
  c.g->opset = opset;
  c.d = d;
  c.opt = &o;
  c.base_dir = base_dir;
  c.opset = opset;
  c.max_bytes = o.max_tensor_bytes;
  st = import_graph(&c, mp);
  fe_map_free(&c.values);
  fe_map_free(&c.names);
  fe_map_free(&c.used);
  fe_map_free(&c.narrow_bits);
  fe_map_free(&c.lowbit_weights);
  onnx__model_proto__free_unpacked(mp, NULL);
  if (st != LB_OK) {
    lb_graph_free(c.g);
    return st;
  }
  *out = c.g;
  return LB_OK;
}

enum lb_status lb_onnx_load_file(const char *path, const struct lb_onnx_options *opt,
                                 struct lb_graph **out, struct lb_diag *d) {
  *out = NULL;
  void *buf;
  size_t len;
  /* protobuf messages are limited to 2 GiB; larger weights must be external data */
  enum lb_status st = fe_read_file(d, path, INT32_MAX, &buf, &len);
  if (st != LB_OK) return st;
  const char *slash = strrchr(path, '/');
  char *dir;
  if (!slash) {
    dir = strdup(".");
  } else if (slash == path) {
    dir = strdup("/");
  } else {
    dir = strndup(path, (size_t)(slash - path));
  }
  if (!dir) abort();
  st = lb_onnx_load_buffer(buf, len, dir, opt, out, d);
  free(dir);
  free(buf);
  return st;
}
