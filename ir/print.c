/* print.c: the IR text form (docs/ir-format.md), printed.
 *
 * The output is deterministic and parses back (ir/parse.c) to a graph that
 * prints identically, byte for byte. Floats print in the shortest form that
 * reads back to the same bits. Names are printed bare when they only use
 * [A-Za-z0-9_.\-/], otherwise quoted with C escapes. Names are always passed
 * as data, never used as a format string.
 *
 * Everything is written through `struct out`, which either grows a heap
 * string or flushes to a FILE* in 64 KiB pieces, so large blobs stream out
 * without a second copy of the whole model.
 */
#include "ir/ir.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

const struct lb_print_options lb_print_defaults = {LB_PRINT_BLOBS_FULL, 16};

/* ---- output buffer ---------------------------------------------------------- */
enum { OUT_CHUNK = 64 * 1024 };

struct out {
  FILE *f;    /* NULL: grow buf as the result string */
  char *buf;
  size_t len, cap;
};

static void out_flush(struct out *o) {
  if (o->f && o->len) fwrite(o->buf, 1, o->len, o->f);
  if (o->f) o->len = 0;
}

/* Makes room for n more bytes (plus a NUL). */
static void out_reserve(struct out *o, size_t n) {
  if (o->len + n + 1 <= o->cap) return;
  if (o->f) {
    out_flush(o);
    if (n + 1 <= o->cap) return;
  }
  size_t cap = o->cap ? o->cap : OUT_CHUNK;
  while (cap < o->len + n + 1) cap *= 2;
  char *b = realloc(o->buf, cap);
  if (!b) abort();
  o->buf = b;
  o->cap = cap;
}

static void out_write(struct out *o, const char *s, size_t n) {
  out_reserve(o, n);
  memcpy(o->buf + o->len, s, n);
  o->len += n;
  o->buf[o->len] = 0;
}

static void out_puts(struct out *o, const char *s) { out_write(o, s, strlen(s)); }

static void out_putc(struct out *o, char c) { out_write(o, &c, 1); }

static void out_i64(struct out *o, int64_t v) {
  char b[24];
  int n = snprintf(b, sizeof b, "%" PRId64, v);
  out_write(o, b, (size_t)n);
}

static void out_u64(struct out *o, uint64_t v) {
  char b[24];
  int n = snprintf(b, sizeof b, "%" PRIu64, v);
  out_write(o, b, (size_t)n);
}

/* ---- names and strings ------------------------------------------------------- */
static bool is_bare_char(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         c == '_' || c == '.' || c == '-' || c == '/';
}

/* A quoted string with C escapes: \" \\ \n \t and \xHH for other bytes
 * below 0x20 or from 0x7f up. */
static void out_quoted(struct out *o, const char *s) {
  static const char hex[] = "0123456789abcdef";
  out_putc(o, '"');
  for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
    unsigned char c = *p;
    if (c == '"' || c == '\\') {
      char e[2] = {'\\', (char)c};
      out_write(o, e, 2);
    } else if (c == '\n') {
      out_write(o, "\\n", 2);
    } else if (c == '\t') {
      out_write(o, "\\t", 2);
    } else if (c < 0x20 || c >= 0x7f) {
      char e[4] = {'\\', 'x', hex[c >> 4], hex[c & 15]};
      out_write(o, e, 4);
    } else {
      out_putc(o, (char)c);
    }
  }
  out_putc(o, '"');
}

/* A name: bare if non-empty and every byte is a name character, else quoted. */
static void out_name(struct out *o, const char *s) {
  bool bare = s && *s;
  for (const unsigned char *p = (const unsigned char *)(s ? s : ""); bare && *p; p++)
    bare = is_bare_char(*p);
  if (bare)
    out_puts(o, s);
  else
    out_quoted(o, s);
}

static void out_value(struct out *o, const struct lb_value *v) {
  if (!v) {
    out_putc(o, '_');
    return;
  }
  out_putc(o, '%');
  out_name(o, v->name);
}

/* ---- numbers -------------------------------------------------------------------- */
/* Shortest %.Ng (N = 1..9) that reads back to the same float. NaNs other than
 * the default quiet NaN (0x7fc00000) print as nan:0x<bits>. */
static void fmt_f32(char *buf, size_t size, float f) {
  uint32_t bits;
  memcpy(&bits, &f, sizeof bits);
  if (isnan(f)) {
    if (bits == 0x7fc00000u)
      snprintf(buf, size, "nan");
    else
      snprintf(buf, size, "nan:0x%08" PRIx32, bits);
    return;
  }
  if (isinf(f)) {
    snprintf(buf, size, "%s", f < 0 ? "-inf" : "inf");
    return;
  }
  for (int p = 1; p <= 9; p++) {
    snprintf(buf, size, "%.*g", p, (double)f);
    if (strtof(buf, NULL) == f) return;
  }
}

/* Same for doubles, N = 1..17; the default NaN is 0x7ff8000000000000. */
static void fmt_f64(char *buf, size_t size, double f) {
  uint64_t bits;
  memcpy(&bits, &f, sizeof bits);
  if (isnan(f)) {
    if (bits == 0x7ff8000000000000ull)
      snprintf(buf, size, "nan");
    else
      snprintf(buf, size, "nan:0x%016" PRIx64, bits);
    return;
  }
  if (isinf(f)) {
    snprintf(buf, size, "%s", f < 0 ? "-inf" : "inf");
    return;
  }
  for (int p = 1; p <= 17; p++) {
    snprintf(buf, size, "%.*g", p, f);
    if (strtod(buf, NULL) == f) return;
  }
}

/* A float attribute: like fmt_f64 but always with '.' or an exponent so that
 * it cannot be read as an int ("1.0", "-0.0", "1e+20"). */
static void out_attr_float(struct out *o, double f) {
  char b[48];
  fmt_f64(b, sizeof b, f);
  out_puts(o, b);
  if (!strpbrk(b, ".eni")) out_puts(o, ".0");
}

/* ---- types, qparams ------------------------------------------------------------------ */
static const char *dtype_name(enum lb_dtype t) {
  return (unsigned)t < LB_DTYPE_COUNT ? lb_dtype_traits[t].name : "undef";
}

static void out_type(struct out *o, const struct lb_type *t) {
  out_puts(o, dtype_name(t->dtype));
  out_putc(o, '[');
  int32_t rank = t->shape.rank < 0 ? 0 : t->shape.rank > LB_MAX_RANK ? LB_MAX_RANK : t->shape.rank;
  for (int32_t i = 0; i < rank; i++) {
    if (i) out_putc(o, ',');
    out_i64(o, t->shape.dims[i]);
  }
  out_putc(o, ']');
}

static void out_qparams(struct out *o, const struct lb_qparams *q) {
  out_puts(o, " q<bits=");
  out_i64(o, q->bits);
  out_puts(o, ", axis=");
  out_i64(o, q->axis);
  out_puts(o, ", group=");
  out_i64(o, q->group_size);
  out_puts(o, q->symmetric ? ", sym" : ", asym");
  if (lb_qfloat_name(q->fp8)) {
    out_puts(o, ", fp8=");
    out_puts(o, lb_qfloat_name(q->fp8));
  }
  out_puts(o, q->is_unsigned ? ", unsigned, scales=[" : ", scales=[");
  char b[32];
  for (int64_t i = 0; q->scales && i < q->n; i++) {
    if (i) out_puts(o, ", ");
    fmt_f32(b, sizeof b, q->scales[i]);
    out_puts(o, b);
  }
  out_putc(o, ']');
  if (q->zero_points) {
    out_puts(o, ", zps=[");
    for (int64_t i = 0; i < q->n; i++) {
      if (i) out_puts(o, ", ");
      out_i64(o, q->zero_points[i]);
    }
    out_putc(o, ']');
  }
  out_putc(o, '>');
}

/* type [q<...>] [mem=N] */
static void out_vtype(struct out *o, const struct lb_value *v) {
  if (!v) {
    out_puts(o, "_");
    return;
  }
  out_type(o, &v->type);
  if (v->qparams) out_qparams(o, v->qparams);
  if (v->mem_offset >= 0) {
    out_puts(o, " mem=");
    out_i64(o, v->mem_offset);
  }
}

/* ---- blobs and dense data ---------------------------------------------------------- */
static const struct lb_blob *get_blob(const struct lb_graph *g, int32_t b) {
  return b >= 0 && b < g->n_blobs ? &g->blobs[b] : NULL;
}

static void out_blob_ref(struct out *o, const struct lb_graph *g, int32_t b) {
  const struct lb_blob *blob = get_blob(g, b);
  if (!blob) {
    out_puts(o, "blob<invalid>"); /* not parseable; the verifier reports it */
    return;
  }
  out_puts(o, "blob<");
  out_quoted(o, blob->name);
  out_putc(o, '>');
}

/* Dense form is used for small constants with data; bool bytes other than
 * 0/1 could not be written as true/false, so those stay blobs. */
static bool use_dense(const struct lb_graph *g, const struct lb_node *n,
                      const struct lb_print_options *opt) {
  const struct lb_value *v = n->outputs[0];
  const struct lb_blob *blob = get_blob(g, n->blob);
  if (!blob || !blob->data || (unsigned)v->type.dtype >= LB_DTYPE_COUNT ||
      v->type.dtype == LB_DTYPE_UNDEF || v->type.shape.rank < 0 || v->type.shape.rank > LB_MAX_RANK)
    return false;
  int64_t numel;
  if (!lb_shape_numel_checked(&v->type.shape, INT64_MAX / 16, &numel) || numel > opt->inline_limit)
    return false;
  if ((uint64_t)numel * (uint64_t)lb_dtype_traits[v->type.dtype].size != blob->size) return false;
  if (v->type.dtype == LB_DTYPE_BOOL)
    for (int64_t i = 0; i < numel; i++)
      if (((const uint8_t *)blob->data)[i] > 1) return false;
  return true;
}

static void out_dense(struct out *o, const struct lb_type *t, const void *data) {
  int64_t numel = lb_shape_numel(&t->shape);
  const unsigned char *p = data;
  char b[48];
  out_puts(o, "dense<[");
  for (int64_t i = 0; i < numel; i++) {
    if (i) out_puts(o, ", ");
    switch (t->dtype) {
    case LB_DTYPE_F32: {
      float f;
      memcpy(&f, p + 4 * i, 4);
      fmt_f32(b, sizeof b, f);
      out_puts(o, b);
      break;
    }
    case LB_DTYPE_F64: {
      double f;
      memcpy(&f, p + 8 * i, 8);
      fmt_f64(b, sizeof b, f);
      out_puts(o, b);
      break;
    }
    case LB_DTYPE_F16:
    case LB_DTYPE_BF16: {
      uint16_t h;
      memcpy(&h, p + 2 * i, 2);
      snprintf(b, sizeof b, "0x%04x", (unsigned)h);
      out_puts(o, b);
      break;
    }
#define INT_CASE(E, T, OUT)         \
  case LB_DTYPE_##E: {              \
    T x;                            \
    memcpy(&x, p + sizeof x * i, sizeof x); \
    OUT(o, x);                      \
    break;                          \
  }
      INT_CASE(I8, int8_t, out_i64)
      INT_CASE(I16, int16_t, out_i64)
      INT_CASE(I32, int32_t, out_i64)
      INT_CASE(I64, int64_t, out_i64)
      INT_CASE(U8, uint8_t, out_u64)
      INT_CASE(U16, uint16_t, out_u64)
      INT_CASE(U32, uint32_t, out_u64)
      INT_CASE(U64, uint64_t, out_u64)
#undef INT_CASE
    case LB_DTYPE_BOOL:
      out_puts(o, p[i] ? "true" : "false");
      break;
    default:
      LB_ASSERT(!"dense: unhandled dtype");
    }
  }
  out_puts(o, "]>");
}

static void out_base64(struct out *o, const unsigned char *p, size_t n) {
  static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  enum { IN = 48 * 1024 }; /* 3 | IN: chunks encode without padding */
  out_puts(o, "base64\"");
  for (size_t off = 0; off < n; off += IN) {
    size_t len = n - off < IN ? n - off : IN;
    out_reserve(o, (len + 2) / 3 * 4);
    char *w = o->buf + o->len;
    const unsigned char *s = p + off;
    size_t i = 0;
    for (; i + 3 <= len; i += 3) {
      uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];
      *w++ = tab[v >> 18];
      *w++ = tab[(v >> 12) & 63];
      *w++ = tab[(v >> 6) & 63];
      *w++ = tab[v & 63];
    }
    if (i < len) {
      uint32_t v = (uint32_t)s[i] << 16 | (i + 1 < len ? (uint32_t)s[i + 1] << 8 : 0);
      *w++ = tab[v >> 18];
      *w++ = tab[(v >> 12) & 63];
      *w++ = i + 1 < len ? tab[(v >> 6) & 63] : '=';
      *w++ = '=';
    }
    o->len = (size_t)(w - o->buf);
    o->buf[o->len] = 0;
  }
  out_putc(o, '"');
}

/* ---- nodes and attributes ---------------------------------------------------------- */
static void out_attr(struct out *o, const struct lb_graph *g, const struct lb_attr *a) {
  out_name(o, a->name);
  out_putc(o, '=');
  switch (a->kind) {
  case LB_ATTR_INT:
    out_i64(o, a->i);
    break;
  case LB_ATTR_FLOAT:
    out_attr_float(o, a->f);
    break;
  case LB_ATTR_STRING:
    out_quoted(o, a->s);
    break;
  case LB_ATTR_INTS:
    if (a->n == 0) out_puts(o, "ints");
    out_putc(o, '[');
    for (int64_t i = 0; i < a->n; i++) {
      if (i) out_puts(o, ", ");
      out_i64(o, a->ints[i]);
    }
    out_putc(o, ']');
    break;
  case LB_ATTR_FLOATS:
    if (a->n == 0) out_puts(o, "floats");
    out_putc(o, '[');
    for (int64_t i = 0; i < a->n; i++) {
      if (i) out_puts(o, ", ");
      out_attr_float(o, a->floats[i]);
    }
    out_putc(o, ']');
    break;
  case LB_ATTR_STRINGS:
    if (a->n == 0) out_puts(o, "strings");
    out_putc(o, '[');
    for (int64_t i = 0; i < a->n; i++) {
      if (i) out_puts(o, ", ");
      out_quoted(o, a->strings[i]);
    }
    out_putc(o, ']');
    break;
  case LB_ATTR_TENSOR:
    out_puts(o, "tensor<");
    out_type(o, &a->ttype);
    out_putc(o, ' ');
    out_blob_ref(o, g, a->blob);
    out_putc(o, '>');
    break;
  default:
    out_puts(o, "<invalid attribute kind>");
  }
}

static void out_attrs(struct out *o, const struct lb_graph *g, const struct lb_node *n) {
  if (n->n_attrs == 0) return;
  out_puts(o, " {");
  for (int32_t i = 0; i < n->n_attrs; i++) {
    if (i) out_puts(o, ", ");
    out_attr(o, g, &n->attrs[i]);
  }
  out_putc(o, '}');
}

static void out_node(struct out *o, const struct lb_graph *g, const struct lb_node *n,
                     const struct lb_print_options *opt) {
  out_puts(o, "  ");
  for (int32_t i = 0; i < n->n_outputs; i++) {
    if (i) out_puts(o, ", ");
    out_value(o, n->outputs[i]);
  }
  out_puts(o, " = ");
  const char *op = (unsigned)n->op < LB_OP_COUNT ? lb_op_info[n->op].ir_name : "<invalid op>";
  if (n->op == LB_OP_CONST && n->n_inputs == 0 && n->n_outputs == 1 && n->outputs[0]) {
    /* %c = const [{attrs}] type (dense<[...]> | blob<"name">) [q<...>] [mem=N] */
    const struct lb_value *v = n->outputs[0];
    out_puts(o, "const");
    out_attrs(o, g, n);
    out_putc(o, ' ');
    out_type(o, &v->type);
    out_putc(o, ' ');
    if (use_dense(g, n, opt))
      out_dense(o, &v->type, g->blobs[n->blob].data);
    else
      out_blob_ref(o, g, n->blob);
    if (v->qparams) out_qparams(o, v->qparams);
    if (v->mem_offset >= 0) {
      out_puts(o, " mem=");
      out_i64(o, v->mem_offset);
    }
  } else {
    /* %a[, %b] = op(%x, _, ...) [{attrs}] : type [q<...>] [mem=N][, type ...] */
    out_puts(o, op);
    out_putc(o, '(');
    for (int32_t i = 0; i < n->n_inputs; i++) {
      if (i) out_puts(o, ", ");
      out_value(o, n->inputs[i]);
    }
    out_putc(o, ')');
    out_attrs(o, g, n);
    out_puts(o, " :");
    for (int32_t i = 0; i < n->n_outputs; i++) {
      out_puts(o, i ? ", " : " ");
      out_vtype(o, n->outputs[i]);
    }
  }
  if (n->name && *n->name) {
    out_puts(o, " loc(");
    out_quoted(o, n->name);
    out_putc(o, ')');
  }
  out_putc(o, '\n');
}

/* The `blobs { ... }` trailer: every blob referenced through blob<...>, in
 * order of first reference, each with the type of that first reference. */
static void out_blobs(struct out *o, const struct lb_graph *g, const struct lb_print_options *opt) {
  if (g->n_blobs == 0) return;
  const struct lb_type **first = calloc((size_t)g->n_blobs, sizeof *first);
  int32_t *order = malloc(sizeof *order * (size_t)g->n_blobs);
  if (!first || !order) abort();
  int32_t n_order = 0;
#define REF(b, t)                                          \
  do {                                                     \
    if ((b) >= 0 && (b) < g->n_blobs && !first[(b)]) {     \
      first[(b)] = (t);                                    \
      order[n_order++] = (b);                              \
    }                                                      \
  } while (0)
  for (int32_t i = 0; i < g->n_nodes; i++) {
    const struct lb_node *n = g->nodes[i];
    if (n->op == LB_OP_CONST && n->n_inputs == 0 && n->n_outputs == 1 && n->outputs[0] &&
        !use_dense(g, n, opt))
      REF(n->blob, &n->outputs[0]->type);
    for (int32_t a = 0; a < n->n_attrs; a++)
      if (n->attrs[a].kind == LB_ATTR_TENSOR) REF(n->attrs[a].blob, &n->attrs[a].ttype);
  }
#undef REF
  if (n_order) {
    out_puts(o, "blobs {\n");
    for (int32_t k = 0; k < n_order; k++) {
      const struct lb_blob *b = &g->blobs[order[k]];
      out_puts(o, "  ");
      out_quoted(o, b->name);
      out_puts(o, ": ");
      out_type(o, first[order[k]]);
      uint64_t hash = b->data ? lb_hash_bytes(b->data, b->size) : b->hash;
      char h[32];
      snprintf(h, sizeof h, " fnv1a=0x%016" PRIx64 " ", hash);
      out_puts(o, h);
      if (b->data && opt->blobs == LB_PRINT_BLOBS_FULL)
        out_base64(o, b->data, b->size);
      else
        out_puts(o, "elided");
      out_putc(o, '\n');
    }
    out_puts(o, "}\n");
  }
  free(first);
  free(order);
}

static void print_graph(struct out *o, const struct lb_graph *g, const struct lb_print_options *opt) {
  if (!opt) opt = &lb_print_defaults;
  out_puts(o, "graph @");
  out_name(o, g->name);
  out_putc(o, '(');
  for (int32_t i = 0; i < g->n_inputs; i++) {
    if (i) out_puts(o, ", ");
    out_value(o, g->inputs[i]);
    out_puts(o, ": ");
    out_vtype(o, g->inputs[i]);
  }
  out_puts(o, ") -> (");
  for (int32_t i = 0; i < g->n_outputs; i++) {
    if (i) out_puts(o, ", ");
    if (g->outputs[i])
      out_type(o, &g->outputs[i]->type);
    else
      out_putc(o, '_');
  }
  out_puts(o, ") opset ");
  out_i64(o, g->opset);
  if (g->activations_size > 0) {
    out_puts(o, " activations ");
    out_i64(o, g->activations_size);
  }
  out_puts(o, " {\n");
  for (int32_t i = 0; i < g->n_nodes; i++) out_node(o, g, g->nodes[i], opt);
  out_puts(o, "  return");
  for (int32_t i = 0; i < g->n_outputs; i++) {
    out_puts(o, i ? ", " : " ");
    out_value(o, g->outputs[i]);
  }
  out_puts(o, "\n}\n");
  out_blobs(o, g, opt);
}

void lb_graph_print(const struct lb_graph *g, FILE *f, const struct lb_print_options *opt) {
  struct out o = {.f = f};
  print_graph(&o, g, opt);
  out_flush(&o);
  free(o.buf);
}

char *lb_graph_print_string(const struct lb_graph *g, const struct lb_print_options *opt) {
  struct out o = {0};
  out_reserve(&o, 0);
  print_graph(&o, g, opt);
  return o.buf;
}
