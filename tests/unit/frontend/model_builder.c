/* model_builder.c: see model_builder.h. */
#include "model_builder.h"

#include <stdlib.h>
#include <string.h>

void *mb_alloc(struct mb *m, size_t size) {
  void *p = calloc(1, size ? size : 1);
  if (!p) abort();
  if (m->n_allocs == m->cap_allocs) {
    m->cap_allocs = m->cap_allocs ? m->cap_allocs * 2 : 64;
    m->allocs = realloc(m->allocs, sizeof *m->allocs * m->cap_allocs);
    if (!m->allocs) abort();
  }
  m->allocs[m->n_allocs++] = p;
  return p;
}

char *mb_strdup(struct mb *m, const char *s) {
  char *p = mb_alloc(m, strlen(s) + 1);
  strcpy(p, s);
  return p;
}

/* Appends one pointer to a (count, array) pair owned by the builder. */
static void push(struct mb *m, size_t *n, void ***arr, void *item) {
  void **a = mb_alloc(m, sizeof *a * (*n + 1));
  if (*n) memcpy(a, *arr, sizeof *a * *n);
  a[(*n)++] = item;
  *arr = a;
}
#define PUSH(m, n, arr, item) push((m), &(n), (void ***)&(arr), (item))

/* Splits "a,b,,c" into strings (empty entries kept). */
static size_t split_names(struct mb *m, const char *s, char ***out) {
  size_t n = 0;
  *out = NULL;
  if (!s || !*s) return 0;
  const char *p = s;
  for (;;) {
    const char *q = strchr(p, ',');
    size_t len = q ? (size_t)(q - p) : strlen(p);
    char *t = mb_alloc(m, len + 1);
    memcpy(t, p, len);
    PUSH(m, n, *out, t);
    if (!q) break;
    p = q + 1;
  }
  return n;
}

struct mb *mb_new(int64_t opset) {
  struct mb *m = calloc(1, sizeof *m);
  if (!m) abort();
  onnx__model_proto__init(&m->model);
  onnx__graph_proto__init(&m->graph);
  m->model.has_ir_version = 1;
  m->model.ir_version = 8;
  m->model.graph = &m->graph;
  m->graph.name = mb_strdup(m, "test");
  if (opset > 0) mb_opset(m, "", opset);
  return m;
}

void mb_opset(struct mb *m, const char *domain, int64_t version) {
  Onnx__OperatorSetIdProto *o = mb_alloc(m, sizeof *o);
  onnx__operator_set_id_proto__init(o);
  o->domain = mb_strdup(m, domain);
  o->has_version = 1;
  o->version = version;
  PUSH(m, m->model.n_opset_import, m->model.opset_import, o);
}

Onnx__ValueInfoProto *mb_value_info(struct mb *m, const char *name, int elem, const char *dims) {
  Onnx__ValueInfoProto *vi = mb_alloc(m, sizeof *vi);
  onnx__value_info_proto__init(vi);
  vi->name = mb_strdup(m, name);
  Onnx__TypeProto *tp = mb_alloc(m, sizeof *tp);
  onnx__type_proto__init(tp);
  Onnx__TypeProto__Tensor *tt = mb_alloc(m, sizeof *tt);
  onnx__type_proto__tensor__init(tt);
  tt->has_elem_type = 1;
  tt->elem_type = elem;
  Onnx__TensorShapeProto *sp = mb_alloc(m, sizeof *sp);
  onnx__tensor_shape_proto__init(sp);
  char **parts;
  size_t n = split_names(m, dims, &parts);
  for (size_t i = 0; i < n; i++) {
    Onnx__TensorShapeProto__Dimension *dm = mb_alloc(m, sizeof *dm);
    onnx__tensor_shape_proto__dimension__init(dm);
    char *end;
    long long v = strtoll(parts[i], &end, 10);
    if (*parts[i] && !*end) {
      dm->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
      dm->dim_value = v;
    } else if (strcmp(parts[i], "?") != 0) {
      dm->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
      dm->dim_param = parts[i];
    }
    PUSH(m, sp->n_dim, sp->dim, dm);
  }
  tt->shape = sp;
  tp->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
  tp->tensor_type = tt;
  vi->type = tp;
  return vi;
}

void mb_input(struct mb *m, const char *name, int elem, const char *dims) {
  PUSH(m, m->graph.n_input, m->graph.input, mb_value_info(m, name, elem, dims));
}

void mb_output(struct mb *m, const char *name) {
  Onnx__ValueInfoProto *vi = mb_alloc(m, sizeof *vi);
  onnx__value_info_proto__init(vi);
  vi->name = mb_strdup(m, name);
  PUSH(m, m->graph.n_output, m->graph.output, vi);
}

Onnx__TensorProto *mb_tensor(struct mb *m, const char *name, int elem, const char *dims) {
  Onnx__TensorProto *t = mb_alloc(m, sizeof *t);
  onnx__tensor_proto__init(t);
  t->name = mb_strdup(m, name);
  t->has_data_type = 1;
  t->data_type = elem;
  char **parts;
  size_t n = split_names(m, dims, &parts);
  t->dims = mb_alloc(m, sizeof *t->dims * (n + 1));
  for (size_t i = 0; i < n; i++) t->dims[i] = strtoll(parts[i], NULL, 10);
  t->n_dims = n;
  return t;
}

Onnx__TensorProto *mb_raw(struct mb *m, const char *name, int elem, const char *dims,
                          const void *data, size_t len) {
  Onnx__TensorProto *t = mb_tensor(m, name, elem, dims);
  t->has_raw_data = 1;
  t->raw_data.len = len;
  t->raw_data.data = mb_alloc(m, len);
  if (len) memcpy(t->raw_data.data, data, len);
  return t;
}

void mb_add_init(struct mb *m, Onnx__TensorProto *t) {
  PUSH(m, m->graph.n_initializer, m->graph.initializer, t);
}

static size_t numel_of(const Onnx__TensorProto *t) {
  size_t n = 1;
  for (size_t i = 0; i < t->n_dims; i++) n *= (size_t)t->dims[i];
  return n;
}

Onnx__TensorProto *mb_init_f32(struct mb *m, const char *name, const char *dims, const float *v) {
  Onnx__TensorProto *t = mb_tensor(m, name, T_F32, dims);
  Onnx__TensorProto *r = mb_raw(m, name, T_F32, dims, v, numel_of(t) * 4);
  mb_add_init(m, r);
  return r;
}

Onnx__TensorProto *mb_init_i64(struct mb *m, const char *name, const char *dims, const int64_t *v) {
  Onnx__TensorProto *t = mb_tensor(m, name, T_I64, dims);
  Onnx__TensorProto *r = mb_raw(m, name, T_I64, dims, v, numel_of(t) * 8);
  mb_add_init(m, r);
  return r;
}

Onnx__NodeProto *mb_node(struct mb *m, const char *op, const char *name, const char *ins,
                         const char *outs) {
  Onnx__NodeProto *n = mb_alloc(m, sizeof *n);
  onnx__node_proto__init(n);
  n->op_type = mb_strdup(m, op);
  n->name = mb_strdup(m, name);
  n->n_input = split_names(m, ins, &n->input);
  n->n_output = split_names(m, outs, &n->output);
  PUSH(m, m->graph.n_node, m->graph.node, n);
  return n;
}

void mb_node_domain(struct mb *m, Onnx__NodeProto *n, const char *domain) {
  n->domain = mb_strdup(m, domain);
}

static Onnx__AttributeProto *new_attr(struct mb *m, Onnx__NodeProto *n, const char *name, int type) {
  Onnx__AttributeProto *a = mb_alloc(m, sizeof *a);
  onnx__attribute_proto__init(a);
  a->name = mb_strdup(m, name);
  a->has_type = 1;
  a->type = type;
  PUSH(m, n->n_attribute, n->attribute, a);
  return a;
}

void mb_attr_i(struct mb *m, Onnx__NodeProto *n, const char *name, int64_t v) {
  Onnx__AttributeProto *a = new_attr(m, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
  a->has_i = 1;
  a->i = v;
}

void mb_attr_f(struct mb *m, Onnx__NodeProto *n, const char *name, float v) {
  Onnx__AttributeProto *a = new_attr(m, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);
  a->has_f = 1;
  a->f = v;
}

void mb_attr_s(struct mb *m, Onnx__NodeProto *n, const char *name, const char *v) {
  Onnx__AttributeProto *a = new_attr(m, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING);
  a->has_s = 1;
  a->s.len = strlen(v);
  a->s.data = (uint8_t *)mb_strdup(m, v);
}

void mb_attr_ints(struct mb *m, Onnx__NodeProto *n, const char *name, size_t count,
                  const int64_t *v) {
  Onnx__AttributeProto *a = new_attr(m, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
  a->n_ints = count;
  a->ints = mb_alloc(m, sizeof *v * (count + 1));
  if (count) memcpy(a->ints, v, sizeof *v * count);
}

void mb_attr_floats(struct mb *m, Onnx__NodeProto *n, const char *name, size_t count,
                    const float *v) {
  Onnx__AttributeProto *a = new_attr(m, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS);
  a->n_floats = count;
  a->floats = mb_alloc(m, sizeof *v * (count + 1));
  if (count) memcpy(a->floats, v, sizeof *v * count);
}

void mb_attr_t(struct mb *m, Onnx__NodeProto *n, const char *name, Onnx__TensorProto *t) {
  Onnx__AttributeProto *a = new_attr(m, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR);
  a->t = t;
}

void mb_attr_g(struct mb *m, Onnx__NodeProto *n, const char *name, Onnx__GraphProto *g) {
  Onnx__AttributeProto *a = new_attr(m, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPH);
  a->g = g;
}

uint8_t *mb_pack(struct mb *m, size_t *len) {
  *len = onnx__model_proto__get_packed_size(&m->model);
  uint8_t *buf = malloc(*len ? *len : 1);
  if (!buf) abort();
  onnx__model_proto__pack(&m->model, buf);
  return buf;
}

void mb_free(struct mb *m) {
  for (size_t i = 0; i < m->n_allocs; i++) free(m->allocs[i]);
  free(m->allocs);
  free(m);
}
