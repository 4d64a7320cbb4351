/* lora.c: LoRA adapters beside a (later quantized) base model (lora.h).
 *
 * Why a rewrite right after loading rather than a pass after quantization:
 * every later stage (fuse, calibration, smoothquant/awq, gptq, quantize, the
 * sensitivity runs of --quant auto, the quant report) then sees the model the
 * executable computes, so calibration statistics and Hessians are those of the
 * adapted model's activations, and the adapter matmuls only need the one mark
 * (keep_float=1) that the quantizable-layer rule already honours. The base
 * weight W is left as it is: it is quantized as if no adapter were there
 * (QLoRA's deployment), and the adapter stays f32.
 *
 * Three phases, so that nothing changes when anything is wrong: read every
 * file into pairs, match every pair to its nodes and check shapes (collecting
 * all errors), then rewrite.
 */
#include "frontend/lora.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "frontend/fe_internal.h"
#include "frontend/safetensors.h"

/* One adapter pair, with A and B as logical [in, r] and [r, out] f32. */
struct lora_pair {
  const char *file;
  char *target;    /* module path (safetensors) or node / weight name (onnx) */
  char *key_a, *key_b;
  bool module_path;
  float *a, *b;    /* B already multiplied by the scale */
  int64_t in, r, r_b, out;
  double scale;
  bool has_scale;  /* onnx: <target>.lora_scale present */
  struct lb_node **nodes;
  int32_t n_nodes;
};

struct lora_set {
  struct lora_pair *p;
  int32_t n, cap;
};

static struct lora_pair *pair_for(struct lora_set *s, const char *file, const char *target, bool module_path) {
  for (int32_t i = 0; i < s->n; i++)
    if (s->p[i].file == file && strcmp(s->p[i].target, target) == 0) return &s->p[i];
  if (s->n == s->cap) {
    s->cap = s->cap ? s->cap * 2 : 16;
    s->p = realloc(s->p, sizeof *s->p * (size_t)s->cap);
    if (!s->p) abort();
  }
  struct lora_pair *p = &s->p[s->n++];
  memset(p, 0, sizeof *p);
  p->file = file;
  p->target = strdup(target);
  p->module_path = module_path;
  if (!p->target) abort();
  return p;
}

static void set_free(struct lora_set *s) {
  for (int32_t i = 0; i < s->n; i++) {
    struct lora_pair *p = &s->p[i];
    free(p->target);
    free(p->key_a);
    free(p->key_b);
    free(p->a);
    free(p->b);
    free(p->nodes);
  }
  free(s->p);
}

static bool ends_with(const char *s, const char *suffix, size_t *stem) {
  size_t n = strlen(s), m = strlen(suffix);
  if (n <= m || strcmp(s + n - m, suffix) != 0) return false;
  *stem = n - m;
  return true;
}

/* m [rows, cols] -> [cols, rows] */
static float *transpose(const float *m, int64_t rows, int64_t cols) {
  float *t = malloc(sizeof *t * (size_t)(rows * cols > 0 ? rows * cols : 1));
  if (!t) abort();
  for (int64_t i = 0; i < rows; i++)
    for (int64_t j = 0; j < cols; j++) t[j * rows + i] = m[i * cols + j];
  return t;
}

/* ---- reading: safetensors (PEFT) --------------------------------------------------------- */

/* adapter_config.json beside the adapter: scale = lora_alpha / r (or / sqrt(r)
 * with use_rslora). *found is false when the file does not exist. */
static enum lb_status read_peft_config(const char *adapter, double *scale, int64_t *rank, bool *found,
                                       struct lb_diag *d) {
  *found = false;
  const char *slash = strrchr(adapter, '/');
  size_t dir_len = slash ? (size_t)(slash - adapter + 1) : 0;
  char *path = malloc(dir_len + 32);
  if (!path) abort();
  memcpy(path, adapter, dir_len);
  strcpy(path + dir_len, "adapter_config.json");
  struct stat sb;
  if (stat(path, &sb) != 0) {
    free(path);
    return LB_OK;
  }
  *found = true;
  void *text = NULL;
  size_t len;
  struct lb_json j = {0};
  enum lb_status st = fe_read_file(d, path, 1 << 20, &text, &len);
  if (st == LB_OK) st = lb_json_parse(text, len, path, &j, d);
  const struct lb_json *alpha = lb_json_get(&j, "lora_alpha"), *r = lb_json_get(&j, "r"),
                       *rs = lb_json_get(&j, "use_rslora");
  const char *const patterns[] = {"rank_pattern", "alpha_pattern"};
  for (int i = 0; i < 2 && st == LB_OK; i++) {
    const struct lb_json *pat = lb_json_get(&j, patterns[i]);
    if (pat && pat->kind == LB_JSON_OBJECT && pat->n > 0)
      st = lb_diag_error(d, LB_ERR_UNSUPPORTED, NULL,
                         "%s: a non-empty \"%s\" (per-module ranks or alphas) is not supported", path, patterns[i]);
  }
  if (st == LB_OK && (!alpha || alpha->kind != LB_JSON_NUMBER || !isfinite(alpha->num) || !r || !r->is_uint ||
                      r->u == 0 || r->u > INT32_MAX))
    st = lb_diag_error(d, LB_ERR_INVALID, NULL,
                       "%s: expected the numbers \"lora_alpha\" and \"r\" (a positive integer)", path);
  if (st == LB_OK) {
    bool rslora = rs && rs->kind == LB_JSON_BOOL && rs->b; /* rsLoRA: alpha / sqrt(r) */
    *rank = (int64_t)r->u;
    *scale = alpha->num / (rslora ? sqrt((double)r->u) : (double)r->u);
  }
  lb_json_free(&j);
  free(text);
  free(path);
  return st;
}

static enum lb_status read_safetensors(struct lora_set *s, const char *file, const struct lb_lora_options *o,
                                       struct lb_lora_info *info, struct lb_diag *d) {
  void *buf;
  size_t len;
  int64_t max_bytes = o->max_tensor_bytes > 0 ? o->max_tensor_bytes : (int64_t)16 << 30;
  enum lb_status st = fe_read_file(d, file, max_bytes, &buf, &len);
  if (st != LB_OK) return st;
  struct lb_safetensors t;
  st = lb_safetensors_parse(buf, len, file, &t, d);
  if (st != LB_OK) {
    free(buf);
    return st;
  }
  double scale = o->has_scale ? o->scale : 1.0;
  int64_t config_rank = 0;
  bool config = false;
  st = read_peft_config(file, &scale, &config_rank, &config, d);
  info->source = config ? LB_LORA_SCALE_CONFIG : o->has_scale ? LB_LORA_SCALE_OPTION : LB_LORA_SCALE_DEFAULT;
  info->scale = scale;
  static const char prefix[] = "base_model.model.";
  int32_t first = s->n, count0 = d->count;
  for (int32_t i = 0; i < t.n && st == LB_OK; i++) {
    const char *key = t.tensors[i].name, *k = key;
    if (strncmp(k, prefix, sizeof prefix - 1) == 0) k += sizeof prefix - 1;
    size_t stem;
    bool is_a = ends_with(k, ".lora_A.weight", &stem), is_b = !is_a && ends_with(k, ".lora_B.weight", &stem);
    if (!is_a && !is_b) {
      lb_diag_error(d, LB_ERR_UNSUPPORTED, NULL, "%s: key \"%s\" is not a LoRA tensor (expected "
                    "<module>.lora_A.weight and <module>.lora_B.weight)", file, key);
      continue;
    }
    const struct lb_shape *sh = &t.tensors[i].shape;
    if (sh->rank != 2) {
      lb_diag_error(d, LB_ERR_INVALID, NULL, "%s: key \"%s\": a LoRA weight must be 2-D, not of rank %d", file, key,
                    (int)sh->rank);
      continue;
    }
    char *module = strndup(k, stem);
    if (!module) abort();
    struct lora_pair *p = pair_for(s, file, module, true);
    free(module);
    if (is_a ? p->key_a != NULL : p->key_b != NULL) {
      lb_diag_error(d, LB_ERR_INVALID, NULL, "%s: key \"%s\": module \"%s\" has two %s tensors", file, key,
                    p->target, is_a ? "lora_A" : "lora_B");
      continue;
    }
    float *m = lb_safetensors_read_f32(&t, i);
    /* torch Linear orientation: lora_A.weight [r, in], lora_B.weight [out, r] */
    if (is_a) {
      p->key_a = strdup(key);
      p->r = sh->dims[0], p->in = sh->dims[1];
      p->a = transpose(m, p->r, p->in);
    } else {
      p->key_b = strdup(key);
      p->out = sh->dims[0], p->r_b = sh->dims[1];
      p->b = transpose(m, p->out, p->r_b);
    }
    free(m);
    p->scale = scale;
  }
  if (st == LB_OK && d->count > count0) st = d->status;
  for (int32_t i = first; i < s->n && st == LB_OK; i++)
    if (config && s->p[i].key_a && s->p[i].r != config_rank)
      st = lb_diag_error(d, LB_ERR_INVALID, NULL, "%s: key \"%s\" has rank %lld but adapter_config.json says r = "
                         "%lld", file, s->p[i].key_a, (long long)s->p[i].r, (long long)config_rank);
  lb_safetensors_free(&t);
  free(buf);
  return st;
}

/* ---- reading: ONNX initializers --------------------------------------------------------- */

static enum lb_status read_onnx(struct lora_set *s, const char *file, const struct lb_lora_options *o,
                                struct lb_lora_info *info, struct lb_diag *d) {
  void *buf;
  size_t len;
  enum lb_status st = fe_read_file(d, file, INT32_MAX, &buf, &len);
  if (st != LB_OK) return st;
  st = fe_wire_check(buf, len, 8, d);
  Onnx__ModelProto *mp = st == LB_OK ? onnx__model_proto__unpack(NULL, len, buf) : NULL;
  free(buf);
  if (st != LB_OK) return st;
  if (!mp || !mp->graph) {
    if (mp) onnx__model_proto__free_unpacked(mp, NULL);
    return lb_diag_error(d, LB_ERR_PARSE, NULL, "%s: not a valid ONNX model (protobuf parse failed)", file);
  }
  const char *slash = strrchr(file, '/');
  char *dir = slash ? strndup(file, (size_t)(slash - file + (slash == file))) : strdup(".");
  if (!dir) abort();
  struct fe_ctx c = {.d = d, .base_dir = dir,
                     .max_bytes = o->max_tensor_bytes > 0 ? o->max_tensor_bytes : (int64_t)16 << 30};
  int32_t first = s->n, with_scale = 0, count0 = d->count;
  for (size_t i = 0; i < mp->graph->n_initializer; i++) {
    const Onnx__TensorProto *tp = mp->graph->initializer[i];
    const char *key = tp->name ? tp->name : "";
    size_t stem;
    int part = ends_with(key, ".lora_A", &stem) ? 0 : ends_with(key, ".lora_B", &stem) ? 1
             : ends_with(key, ".lora_scale", &stem) ? 2 : -1;
    if (part < 0) {
      lb_diag_error(d, LB_ERR_UNSUPPORTED, NULL, "%s: initializer \"%s\" is not a LoRA tensor (expected "
                    "<target>.lora_A, <target>.lora_B, <target>.lora_scale)", file, key);
      continue;
    }
    char what[512];
    snprintf(what, sizeof what, "%s: initializer \"%s\"", file, key);
    struct lb_type type;
    void *data;
    if (fe_tensor_load(&c, tp, what, &type, &data) != LB_OK) continue;
    int64_t numel = lb_shape_numel(&type.shape);
    float *m = malloc(sizeof *m * (size_t)(numel ? numel : 1));
    if (!m) abort();
    bool ok = lb_widen_to_f32(type.dtype, data, numel, m);
    free(data);
    if (!ok || (part < 2 && type.shape.rank != 2) || (part == 2 && numel != 1)) {
      lb_diag_error(d, LB_ERR_INVALID, NULL, "%s: must be %s (got %s of rank %d)", what,
                    part == 2 ? "one f32/f16/bf16 value" : "a 2-D f32, f16 or bf16 tensor",
                    lb_dtype_traits[type.dtype].name, (int)type.shape.rank);
      free(m);
      continue;
    }
    char *target = strndup(key, stem);
    if (!target) abort();
    struct lora_pair *p = pair_for(s, file, target, false);
    free(target);
    if (part == 0 ? p->key_a != NULL : part == 1 ? p->key_b != NULL : p->has_scale) {
      lb_diag_error(d, LB_ERR_INVALID, NULL, "%s: appears twice", what);
      free(m);
      continue;
    }
    if (part == 0) {
      p->key_a = strdup(key), p->a = m;
      p->in = type.shape.dims[0], p->r = type.shape.dims[1];
    } else if (part == 1) {
      p->key_b = strdup(key), p->b = m;
      p->r_b = type.shape.dims[0], p->out = type.shape.dims[1];
    } else {
      p->scale = m[0], p->has_scale = true;
      with_scale++;
      free(m);
    }
  }
  onnx__model_proto__free_unpacked(mp, NULL);
  free(dir);
  int32_t n = s->n - first;
  for (int32_t i = first; i < s->n; i++)
    if (!s->p[i].key_a && !s->p[i].key_b)
      lb_diag_error(d, LB_ERR_INVALID, NULL, "%s: \"%s.lora_scale\" has no lora_A and lora_B", file, s->p[i].target);
  double dflt = o->has_scale ? o->scale : 1.0;
  for (int32_t i = first; i < s->n; i++)
    if (!s->p[i].has_scale) s->p[i].scale = dflt;
  info->scale = n ? s->p[first].scale : dflt;
  info->source = with_scale == 0 ? (o->has_scale ? LB_LORA_SCALE_OPTION : LB_LORA_SCALE_DEFAULT)
               : with_scale == n ? LB_LORA_SCALE_FILE : LB_LORA_SCALE_MIXED;
  return d->count > count0 ? d->status : LB_OK;
}

/* ---- matching ------------------------------------------------------------------------------ */

/* "/blocks.0/qkv/MatMul" -> "blocks.0.qkv": torch.onnx's scope of a Linear. */
static bool module_path_is(const char *node_name, const char *path) {
  if (!node_name || node_name[0] != '/') return false;
  const char *s = node_name + 1;
  size_t n = strlen(s), stem;
  if (ends_with(s, "/MatMul", &stem) || ends_with(s, "/Gemm", &stem)) n = stem;
  else return false;
  if (strlen(path) != n) return false;
  for (size_t i = 0; i < n; i++)
    if ((s[i] == '/' ? '.' : s[i]) != path[i]) return false;
  return true;
}

static bool pair_matches(const struct lora_pair *p, const struct lb_node *n) {
  const char *w = n->n_inputs > 1 && n->inputs[1] ? n->inputs[1]->name : NULL;
  if (!p->module_path) return strcmp(n->name, p->target) == 0 || (w && strcmp(w, p->target) == 0);
  if (module_path_is(n->name, p->target)) return true;
  size_t t = strlen(p->target);
  return w && strncmp(w, p->target, t) == 0 && strcmp(w + t, ".weight") == 0;
}

static void shape_text(char *buf, size_t len, const struct lb_shape *s) {
  size_t o = (size_t)snprintf(buf, len, "[");
  for (int32_t i = 0; i < s->rank && o < len; i++)
    o += (size_t)snprintf(buf + o, len - o, "%s%lld", i ? ", " : "", (long long)s->dims[i]);
  if (o < len) snprintf(buf + o, len - o, "]");
}

/* Checks pair p against linear node n; errors name the node and both shapes. */
static bool check_fit(const struct lora_pair *p, const struct lb_node *n, struct lb_diag *d) {
  const struct lb_value *x = n->inputs[0], *y = n->outputs[0];
  if (n->op == LB_OP_GEMM && lb_node_attr_int(n, "transA", 0)) {
    lb_diag_error(d, LB_ERR_UNSUPPORTED, n, "%s: LoRA pair \"%s\": a Gemm with transA=1 is not supported", p->file,
                  p->target);
    return false;
  }
  int64_t k = x->type.shape.rank ? x->type.shape.dims[x->type.shape.rank - 1] : 0;
  int64_t nn = y->type.shape.rank ? y->type.shape.dims[y->type.shape.rank - 1] : 0;
  if (p->in == k && p->out == nn && p->r == p->r_b && p->r > 0) return true;
  char ws[96] = "?", as[64], bs[64];
  if (n->inputs[1]) shape_text(ws, sizeof ws, &n->inputs[1]->type.shape);
  /* the shapes as the file stores them */
  if (p->module_path) {
    snprintf(as, sizeof as, "[%lld, %lld] ([r, in])", (long long)p->r, (long long)p->in);
    snprintf(bs, sizeof bs, "[%lld, %lld] ([out, r])", (long long)p->out, (long long)p->r_b);
  } else {
    snprintf(as, sizeof as, "[%lld, %lld] ([in, r])", (long long)p->in, (long long)p->r);
    snprintf(bs, sizeof bs, "[%lld, %lld] ([r, out])", (long long)p->r_b, (long long)p->out);
  }
  lb_diag_error(d, LB_ERR_INVALID, n, "%s: LoRA \"%s\" %s and \"%s\" %s do not fit the layer: %lld inputs, %lld "
                "outputs (weight %s)", p->file, p->key_a, as, p->key_b, bs, (long long)k, (long long)nn, ws);
  return false;
}

static enum lb_status match_pairs(struct lb_graph *g, struct lora_set *s, struct lb_diag *d) {
  int count0 = d->count;
  for (int32_t i = 0; i < s->n; i++) {
    struct lora_pair *p = &s->p[i];
    if (!p->key_a || !p->key_b) {
      lb_diag_error(d, LB_ERR_INVALID, NULL, "%s: key \"%s\" has no %s half (\"%s%s.%s\")", p->file,
                    p->key_a ? p->key_a : p->key_b, p->key_a ? "B" : "A",
                    p->module_path && strncmp(p->key_a ? p->key_a : p->key_b, "base_model.model.", 17) == 0
                        ? "base_model.model." : "",
                    p->target, p->module_path ? (p->key_a ? "lora_B.weight" : "lora_A.weight")
                                              : (p->key_a ? "lora_B" : "lora_A"));
      continue;
    }
    p->nodes = malloc(sizeof *p->nodes * (size_t)(g->n_nodes ? g->n_nodes : 1));
    if (!p->nodes) abort();
    int32_t matched = 0;
    for (int32_t j = 0; j < g->n_nodes; j++) {
      struct lb_node *n = g->nodes[j];
      if (n->dead || (n->op != LB_OP_MATMUL && n->op != LB_OP_GEMM) || n->n_inputs < 2 || !pair_matches(p, n))
        continue;
      matched++;
      if (check_fit(p, n, d)) p->nodes[p->n_nodes++] = n;
    }
    if (matched) continue;
    if (p->module_path)
      lb_diag_error(d, LB_ERR_INVALID, NULL, "%s: key \"%s\": module \"%s\" matches no MatMul (no node "
                    "\"/<module>/MatMul\" with the module's parts joined by '/' or '.', no weight \"%s.weight\")",
                    p->file, p->key_a, p->target, p->target);
    else
      lb_diag_error(d, LB_ERR_INVALID, NULL, "%s: key \"%s\": target \"%s\" matches no MatMul node or weight name",
                    p->file, p->key_a, p->target);
  }
  return d->count > count0 ? d->status : LB_OK;
}

/* ---- rewriting ----------------------------------------------------------------------------- */

static bool is_output(const struct lb_graph *g, const struct lb_value *v) {
  for (int32_t i = 0; i < g->n_outputs; i++)
    if (g->outputs[i] == v) return true;
  return false;
}

/* The value the delta is added to: the layer's output after its bias add when
 * the matmul's only reader is `add(bias, y)` with a constant [N] bias (what
 * torch writes for nn.Linear), so `fuse` still folds the bias into the base
 * layer; else the node's own output. */
static struct lb_value *layer_output(struct lb_graph *g, struct lb_node *n) {
  struct lb_value *y = n->outputs[0];
  if (n->op != LB_OP_MATMUL || is_output(g, y)) return y;
  lb_graph_index_values(g);
  int32_t *uses = lb_graph_count_uses(g);
  int32_t u = uses[y->id];
  free(uses);
  if (u != 1) return y;
  for (int32_t i = 0; i < g->n_nodes; i++) {
    struct lb_node *r = g->nodes[i];
    if (r->dead || r->op != LB_OP_ADD || r->n_inputs != 2 || (r->inputs[0] != y && r->inputs[1] != y)) continue;
    struct lb_value *b = r->inputs[0] == y ? r->inputs[1] : r->inputs[0];
    int64_t nn = y->type.shape.dims[y->type.shape.rank - 1];
    if (lb_value_is_const(b) && lb_shape_numel(&b->type.shape) == nn &&
        lb_shape_equal(&r->outputs[0]->type.shape, &y->type.shape))
      return r->outputs[0];
    return y;
  }
  return y;
}

static struct lb_node *first_reader(const struct lb_graph *g, const struct lb_value *v) {
  for (int32_t i = 0; i < g->n_nodes; i++) {
    struct lb_node *n = g->nodes[i];
    for (int32_t k = 0; k < n->n_inputs && !n->dead; k++)
      if (n->inputs[k] == v) return n;
  }
  return NULL;
}

static const char *suffixed(struct lb_graph *g, const char *base, const char *suffix) {
  char buf[1024];
  snprintf(buf, sizeof buf, "%s%s", base, suffix);
  return lb_graph_unique_name(g, buf);
}

static struct lb_node *new_node(struct lb_graph *g, struct lb_node *before, enum lb_op op, const char *name,
                                const char *value, struct lb_value **in, int32_t n_in) {
  const char *names[1] = {value ? value : name};
  return before ? lb_graph_insert_node(g, before, op, name, in, n_in, names, 1)
                : lb_graph_add_node(g, op, name, in, n_in, names, 1);
}

static enum lb_status add_adapter(struct lb_graph *g, struct lb_node *n, const struct lora_pair *p,
                                  struct lb_diag *d) {
  struct lb_value *x = n->inputs[0], *v = layer_output(g, n);
  bool returned = is_output(g, v);
  struct lb_node *before = first_reader(g, v);
  const char *base = n->name && n->name[0] ? n->name : n->outputs[0]->name;
  struct lb_type ta = {.dtype = LB_DTYPE_F32, .shape = {.rank = 2, .dims = {p->in, p->r}}};
  struct lb_type tb = {.dtype = LB_DTYPE_F32, .shape = {.rank = 2, .dims = {p->r, p->out}}};
  const char *na = suffixed(g, base, "/lora_A.weight"), *nb = suffixed(g, base, "/lora_B.weight");
  struct lb_node *ca = before ? lb_graph_insert_const(g, before, na, &ta, p->a) : lb_graph_add_const(g, na, &ta, p->a);
  struct lb_node *cb = before ? lb_graph_insert_const(g, before, nb, &tb, p->b) : lb_graph_add_const(g, nb, &tb, p->b);
  struct lb_value *wa = ca->outputs[0], *wb = cb->outputs[0];
  struct lb_value *in[2] = {x, wa};
  struct lb_node *ma = new_node(g, before, LB_OP_FUSED_MATMUL, suffixed(g, base, "/lora_A"), NULL, in, 2);
  in[0] = ma->outputs[0], in[1] = wb;
  struct lb_node *mb = new_node(g, before, LB_OP_FUSED_MATMUL, suffixed(g, base, "/lora_B"), NULL, in, 2);
  in[0] = v, in[1] = mb->outputs[0];
  const char *sum_name = suffixed(g, base, "/lora_sum");
  const char *base_name = returned ? suffixed(g, base, "/lora_base") : NULL;
  struct lb_node *sum = new_node(g, before, LB_OP_ADD, sum_name, base_name, in, 2);
  struct lb_node *mm[2] = {ma, mb};
  for (int i = 0; i < 2; i++) {
    lb_node_set_attr_string(g, mm[i], "act", "none");
    lb_node_set_attr_int(g, mm[i], "transB", 0);
    /* the quantizable-layer rule's mark: never quantized, never a layer */
    lb_node_set_attr_int(g, mm[i], "keep_float", 1);
  }
  enum lb_status st = lb_infer_node(g, ma, d);
  if (st == LB_OK) st = lb_infer_node(g, mb, d);
  if (st == LB_OK) st = lb_infer_node(g, sum, d);
  if (st != LB_OK) return st;
  struct lb_value *sv = sum->outputs[0];
  if (!lb_shape_equal(&sv->type.shape, &v->type.shape))
    return lb_diag_error(d, LB_ERR_INVALID, n, "%s: LoRA \"%s\": the adapter's output does not have the layer's "
                         "shape", p->file, p->target);
  if (!returned) {
    lb_graph_replace_uses(g, v, sv);
    sum->inputs[0] = v;
    return LB_OK;
  }
  /* v is a graph output: keep its name on the sum (the model's output names
   * stay), the layer now defines the "<node>/lora_base" value */
  struct lb_node *pv = v->producer;
  int32_t pi = v->producer_output;
  pv->outputs[pi] = sv, sv->producer = pv, sv->producer_output = pi;
  sum->outputs[0] = v, v->producer = sum, v->producer_output = 0;
  sum->inputs[0] = sv;
  return LB_OK; /* the sum is placed before v's first reader: every reader reads it */
}

enum lb_status lb_lora_apply(struct lb_graph *g, const struct lb_lora_options *o, struct lb_lora_info *info,
                             struct lb_diag *d) {
  struct lora_set s = {0};
  struct lb_lora_info dummy;
  int count0 = d->count;
  for (int32_t i = 0; i < o->n_paths; i++) {
    struct lb_lora_info *inf = info ? &info[i] : &dummy;
    memset(inf, 0, sizeof *inf);
    const char *f = o->paths[i];
    size_t stem;
    int32_t first = s.n;
    if (ends_with(f, ".safetensors", &stem)) read_safetensors(&s, f, o, inf, d);
    else if (ends_with(f, ".onnx", &stem)) read_onnx(&s, f, o, inf, d);
    else lb_diag_error(d, LB_ERR_UNSUPPORTED, NULL, "%s: unknown adapter format (expected .safetensors or .onnx)", f);
    inf->pairs = s.n - first;
    for (int32_t k = first; k < s.n; k++) {
      int64_t r = s.p[k].r;
      if (k == first || r < inf->rank_min) inf->rank_min = r;
      if (k == first || r > inf->rank_max) inf->rank_max = r;
    }
    if (s.n == first && d->count == count0)
      lb_diag_error(d, LB_ERR_INVALID, NULL, "%s: no LoRA tensors in the adapter", f);
  }
  enum lb_status st = d->count > count0 ? d->status : LB_OK;
  if (st == LB_OK) st = match_pairs(g, &s, d);
  for (int32_t i = 0; i < s.n && st == LB_OK; i++) {
    struct lora_pair *p = &s.p[i];
    for (int64_t j = 0; j < p->r * p->out; j++) p->b[j] = (float)(p->scale * p->b[j]);
    for (int32_t k = 0; k < p->n_nodes && st == LB_OK; k++) st = add_adapter(g, p->nodes[k], p, d);
  }
  set_free(&s);
  return st;
}
