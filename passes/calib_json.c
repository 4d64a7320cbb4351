/* calib_json.c: the calibration file written by `lowbit compile --save-calib`
 * and read back by `--load-calib` (format in docs/user-guide.md,
 * "Calibration"). The reader is a small strict JSON parser (RFC 8259, depth
 * limit 64) followed by validation of the lowbit-calibration schema; every
 * problem is reported with the file name and, for syntax, line:column. */
#include "passes/calib.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CALIB_NOTE                                                                              \
  "per-tensor activation statistics and scales of this model; reuse with " \
  "lowbit compile --load-calib (same model and pipeline)"

/* ---- writer --------------------------------------------------------------------- */

static void put_str(FILE *f, const char *s) {
  fputc('"', f);
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p == '"' || *p == '\\') fprintf(f, "\\%c", *p);
    else if (*p < 0x20) fprintf(f, "\\u%04x", *p);
    else fputc(*p, f);
  }
  fputc('"', f);
}

/* numbers: %.9g round-trips an f32; doubles from f32 data print exactly enough */
static void put_num(FILE *f, double v) {
  if (!isfinite(v)) v = 0; /* JSON has no inf/nan; counts are reported separately */
  fprintf(f, "%.9g", v);
}

static void put_type(FILE *f, const struct lb_type *t) {
  fprintf(f, "\"%s[", lb_dtype_traits[t->dtype].name);
  for (int32_t i = 0; i < t->shape.rank; i++) fprintf(f, "%s%lld", i ? "," : "", (long long)t->shape.dims[i]);
  fputs("]\"", f);
}

static void write_stat(FILE *f, const struct lb_calib_stat *s, const struct lb_calib_file_info *info) {
  put_str(f, s->name);
  fputs(": {\n      \"type\": ", f);
  put_type(f, &s->type);
  fprintf(f, ",\n      \"count\": %lld, \"nonfinite\": %lld,\n", (long long)s->count, (long long)s->nonfinite);
  fputs("      \"min\": ", f);
  put_num(f, s->count ? s->min : 0);
  fputs(", \"max\": ", f);
  put_num(f, s->count ? s->max : 0);
  fputs(",\n", f);
  if (s->absmax) {
    fputs("      \"absmax_channel\": [", f);
    for (int64_t c = 0; c < s->n_channels; c++) {
      if (c) fputs(", ", f);
      put_num(f, s->absmax[c]);
    }
    fputs("],\n", f);
  }
  if (s->abssum) {
    fputs("      \"absmean_channel\": [", f);
    for (int64_t c = 0; c < s->n_channels; c++) {
      if (c) fputs(", ", f);
      put_num(f, lb_calib_stat_absmean(s, c));
    }
    fputs("],\n", f);
  }
  if (s->rows) { /* row-major, n_rows x n_channels */
    fprintf(f, "      \"rows\": {\"n\": %lld, \"seen\": %lld, \"data\": [", (long long)s->n_rows,
            (long long)s->rows_seen);
    for (int64_t i = 0; i < s->n_rows * s->n_channels; i++) {
      if (i) fputs(", ", f);
      put_num(f, s->rows[i]);
    }
    fputs("]},\n", f);
  }
  if (s->hist) {
    int32_t nz = 0;
    for (int32_t i = 0; i < LB_CALIB_BINS; i++) nz += s->hist[i] != 0;
    double w = s->hist_max / LB_CALIB_BINS;
    fprintf(f, "      \"histogram\": {\"of\": \"abs\", \"bins\": %d, \"max\": ", LB_CALIB_BINS);
    put_num(f, s->hist_max);
    fprintf(f, ", \"nonzero_bins\": %d, \"p99\": ", (int)nz);
    put_num(f, lb_hist_percentile(s->hist, LB_CALIB_BINS, w, 99));
    fputs(", \"p99.9\": ", f);
    put_num(f, lb_hist_percentile(s->hist, LB_CALIB_BINS, w, 99.9));
    fputs(", \"p99.99\": ", f);
    put_num(f, lb_hist_percentile(s->hist, LB_CALIB_BINS, w, 99.99));
    fputs("},\n", f);
  }
  double lo, hi;
  lb_calib_select_range(s, &info->method, info->scheme, &lo, &hi);
  bool sym = info->scheme == LB_CALIB_INT8_SYM;
  float scale;
  int32_t zp;
  lb_calib_qparams(lo, hi, sym, sym, &scale, &zp);
  fputs("      \"range\": [", f);
  put_num(f, lo);
  fputs(", ", f);
  put_num(f, hi);
  fprintf(f, "],\n      \"bits\": 8, \"symmetric\": %s, \"scale\": ", sym ? "true" : "false");
  put_num(f, scale);
  fprintf(f, ", \"zero_point\": %d\n    }", (int)zp);
}

enum lb_status lb_calib_write_json(const char *path, const struct lb_calib_stat *stats, int32_t n,
                                   const struct lb_calib_file_info *info, struct lb_diag *d) {
  char *tmp;
  FILE *f = lb_atomic_open(path, &tmp, d);
  if (!f) return LB_ERR_IO;
  char method[64];
  lb_calib_method_format(&info->method, method, sizeof method);
  fputs("{\n  \"format\": \"lowbit-calibration\",\n  \"version\": 1,\n  \"note\": \"" CALIB_NOTE "\",\n", f);
  fputs("  \"model\": ", f);
  put_str(f, info->model ? info->model : "");
  fprintf(f, ",\n  \"samples\": %lld,\n  \"method\": ", (long long)info->samples);
  put_str(f, method);
  fprintf(f, ",\n  \"scheme\": \"%s\",\n  \"values\": {", info->scheme == LB_CALIB_INT8_SYM ? "int8" : "uint8");
  for (int32_t i = 0; i < n; i++) {
    fputs(i ? ",\n    " : "\n    ", f);
    write_stat(f, &stats[i], info);
  }
  fputs(n ? "\n  }\n}\n" : "}\n}\n", f);
  return lb_atomic_commit(f, tmp, path, d);
}

/* ---- JSON reader -------------------------------------------------------------- */

enum jkind { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ };
struct jval {
  enum jkind kind;
  bool b;
  double num;
  char *str;          /* J_STR: NUL-terminated (embedded NULs are rejected) */
  int32_t n;          /* J_ARR/J_OBJ: element count */
  char **keys;        /* J_OBJ */
  struct jval *items; /* J_ARR/J_OBJ */
};

struct jparser {
  const char *s, *end, *path;
  struct lb_diag *d;
  bool failed;
};

static void jfree(struct jval *v) {
  free(v->str);
  for (int32_t i = 0; i < v->n; i++) {
    if (v->keys) free(v->keys[i]);
    jfree(&v->items[i]);
  }
  free(v->keys);
  free(v->items);
  memset(v, 0, sizeof *v);
}

static void jerr(struct jparser *p, const char *at, const char *msg) {
  if (p->failed) return;
  p->failed = true;
  int line = 1, col = 1;
  for (const char *c = p->s; c < at && c < p->end; c++) {
    if (*c == '\n') line++, col = 1;
    else col++;
  }
  char buf[512];
  int k = snprintf(buf, sizeof buf, "%s:%d:%d: error: malformed JSON: %s\n", p->path, line, col, msg);
  lb_diag_append_error(p->d, LB_ERR_PARSE, buf, k < 0 ? 0 : (size_t)k < sizeof buf ? (size_t)k : sizeof buf - 1);
}

static const char *jws(struct jparser *p, const char *c) {
  while (c < p->end && (*c == ' ' || *c == '\t' || *c == '\n' || *c == '\r')) c++;
  return c;
}

static void put_utf8(char *out, size_t *o, unsigned cp) {
  if (cp < 0x80) {
    out[(*o)++] = (char)cp;
  } else if (cp < 0x800) {
    out[(*o)++] = (char)(0xC0 | (cp >> 6));
    out[(*o)++] = (char)(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out[(*o)++] = (char)(0xE0 | (cp >> 12));
    out[(*o)++] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[(*o)++] = (char)(0x80 | (cp & 0x3F));
  } else {
    out[(*o)++] = (char)(0xF0 | (cp >> 18));
    out[(*o)++] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[(*o)++] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[(*o)++] = (char)(0x80 | (cp & 0x3F));
  }
}

static bool hex4(const char *c, const char *end, unsigned *v) {
  if (end - c < 4) return false;
  *v = 0;
  for (int i = 0; i < 4; i++) {
    char h = c[i];
    unsigned d = h >= '0' && h <= '9' ? (unsigned)(h - '0')
                 : h >= 'a' && h <= 'f' ? (unsigned)(h - 'a' + 10)
                 : h >= 'A' && h <= 'F' ? (unsigned)(h - 'A' + 10) : 16u;
    if (d == 16) return false;
    *v = *v * 16 + d;
  }
  return true;
}

/* c points at the opening quote; returns the position after the closing one */
static const char *jstring(struct jparser *p, const char *c, char **out) {
  const char *start = ++c;
  size_t cap = 1;
  while (c < p->end && *c != '"') {
    if (*c == '\\') c++;
    c++;
    cap += 4;
  }
  if (c >= p->end) {
    jerr(p, start - 1, "unterminated string");
    return NULL;
  }
  char *s = malloc(cap + 4);
  if (!s) abort();
  size_t o = 0;
  for (c = start; *c != '"'; c++) {
    unsigned char ch = (unsigned char)*c;
    if (ch < 0x20) {
      jerr(p, c, "control character in string");
      free(s);
      return NULL;
    }
    if (ch != '\\') {
      s[o++] = (char)ch;
      continue;
    }
    c++;
    switch (*c) {
    case '"': s[o++] = '"'; break;
    case '\\': s[o++] = '\\'; break;
    case '/': s[o++] = '/'; break;
    case 'b': s[o++] = '\b'; break;
    case 'f': s[o++] = '\f'; break;
    case 'n': s[o++] = '\n'; break;
    case 'r': s[o++] = '\r'; break;
    case 't': s[o++] = '\t'; break;
    case 'u': {
      unsigned cp;
      if (!hex4(c + 1, p->end, &cp)) {
        jerr(p, c, "bad \\u escape");
        free(s);
        return NULL;
      }
      c += 4;
      if (cp >= 0xD800 && cp < 0xDC00) { /* surrogate pair */
        unsigned lo;
        if (p->end - c < 7 || c[1] != '\\' || c[2] != 'u' || !hex4(c + 3, p->end, &lo) || lo < 0xDC00 ||
            lo > 0xDFFF) {
          jerr(p, c, "unpaired surrogate in \\u escape");
          free(s);
          return NULL;
        }
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        c += 6;
      } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
        jerr(p, c, "unpaired surrogate in \\u escape");
        free(s);
        return NULL;
      }
      if (cp == 0) {
        jerr(p, c, "\\u0000 in string");
        free(s);
        return NULL;
      }
      put_utf8(s, &o, cp);
      break;
    }
    default:
      jerr(p, c, "bad escape in string");
      free(s);
      return NULL;
    }
  }
  s[o] = 0;
  *out = s;
  return c + 1;
}

static const char *jvalue(struct jparser *p, const char *c, struct jval *v, int depth);

static const char *jitems(struct jparser *p, const char *c, struct jval *v, int depth, bool obj) {
  char close = obj ? '}' : ']';
  c = jws(p, c + 1);
  if (c < p->end && *c == close) return c + 1;
  int32_t cap = 0;
  for (;;) {
    if (v->n == cap) {
      cap = cap ? cap * 2 : 8;
      v->items = realloc(v->items, sizeof *v->items * (size_t)cap);
      if (obj) v->keys = realloc(v->keys, sizeof *v->keys * (size_t)cap);
      if (!v->items || (obj && !v->keys)) abort();
    }
    memset(&v->items[v->n], 0, sizeof v->items[v->n]);
    if (obj) {
      c = jws(p, c);
      if (c >= p->end || *c != '"') return jerr(p, c, "expected a string key"), NULL;
      char *key;
      if (!(c = jstring(p, c, &key))) return NULL;
      v->keys[v->n] = key;
      v->n++; /* owned from here on (freed by jfree even if the value fails) */
      c = jws(p, c);
      if (c >= p->end || *c != ':') return jerr(p, c, "expected ':'"), NULL;
      if (!(c = jvalue(p, c + 1, &v->items[v->n - 1], depth + 1))) return NULL;
    } else {
      v->n++;
      if (!(c = jvalue(p, c, &v->items[v->n - 1], depth + 1))) return NULL;
    }
    c = jws(p, c);
    if (c < p->end && *c == ',') {
      c++;
      continue;
    }
    if (c < p->end && *c == close) return c + 1;
    return jerr(p, c, obj ? "expected ',' or '}'" : "expected ',' or ']'"), NULL;
  }
}

static const char *jvalue(struct jparser *p, const char *c, struct jval *v, int depth) {
  c = jws(p, c);
  if (depth > 64) return jerr(p, c, "nested too deeply"), NULL;
  if (c >= p->end) return jerr(p, c, "unexpected end of file"), NULL;
  switch (*c) {
  case '{': v->kind = J_OBJ; return jitems(p, c, v, depth, true);
  case '[': v->kind = J_ARR; return jitems(p, c, v, depth, false);
  case '"': v->kind = J_STR; return jstring(p, c, &v->str);
  case 't':
    if (p->end - c >= 4 && memcmp(c, "true", 4) == 0) return v->kind = J_BOOL, v->b = true, c + 4;
    break;
  case 'f':
    if (p->end - c >= 5 && memcmp(c, "false", 5) == 0) return v->kind = J_BOOL, v->b = false, c + 5;
    break;
  case 'n':
    if (p->end - c >= 4 && memcmp(c, "null", 4) == 0) return v->kind = J_NULL, c + 4;
    break;
  default: {
    /* RFC 8259 number grammar, then strtod on a bounded copy */
    const char *e = c;
    if (e < p->end && *e == '-') e++;
    if (e >= p->end || *e < '0' || *e > '9') break;
    if (*e == '0') e++;
    else while (e < p->end && *e >= '0' && *e <= '9') e++;
    if (e < p->end && *e == '.') {
      e++;
      if (e >= p->end || *e < '0' || *e > '9') return jerr(p, e, "bad number"), NULL;
      while (e < p->end && *e >= '0' && *e <= '9') e++;
    }
    if (e < p->end && (*e == 'e' || *e == 'E')) {
      e++;
      if (e < p->end && (*e == '+' || *e == '-')) e++;
      if (e >= p->end || *e < '0' || *e > '9') return jerr(p, e, "bad number"), NULL;
      while (e < p->end && *e >= '0' && *e <= '9') e++;
    }
    char buf[64];
    if (e - c >= (ptrdiff_t)sizeof buf) return jerr(p, c, "number too long"), NULL;
    memcpy(buf, c, (size_t)(e - c));
    buf[e - c] = 0;
    v->kind = J_NUM;
    v->num = strtod(buf, NULL);
    return e;
  }
  }
  return jerr(p, c, "unexpected character"), NULL;
}

static const struct jval *jget(const struct jval *o, const char *key) {
  if (o->kind != J_OBJ) return NULL;
  for (int32_t i = 0; i < o->n; i++)
    if (strcmp(o->keys[i], key) == 0) return &o->items[i];
  return NULL;
}

/* per tensor, 8 bits */
static void set_qparams(struct lb_graph *g, struct lb_value *v, float scale, int32_t zp, bool sym) {
  struct lb_qparams *q = lb_arena_alloc(&g->arena, sizeof *q);
  q->bits = 8;
  q->axis = -1;
  q->group_size = 0;
  q->symmetric = sym;
  q->is_unsigned = !sym; /* the schemes: int8 symmetric or uint8 asymmetric */
  q->n = 1;
  q->scales = lb_arena_alloc(&g->arena, sizeof *q->scales);
  q->scales[0] = scale;
  if (!sym) {
    q->zero_points = lb_arena_alloc(&g->arena, sizeof *q->zero_points);
    q->zero_points[0] = zp;
  }
  v->qparams = q;
}

enum lb_status lb_calib_attach(struct lb_graph *g, const struct lb_calib_stat *stats, int32_t n,
                               const struct lb_calib_file_info *info, struct lb_diag *d) {
  for (int32_t i = 0; i < n; i++) {
    struct lb_value *v = lb_graph_find_value(g, stats[i].name);
    if (!v || v->type.dtype != LB_DTYPE_F32)
      return lb_diag_error(d, LB_ERR_INVALID, NULL,
                           "calibrated value \"%s\" is not an f32 value of the compiled model (different --pipeline?)",
                           stats[i].name);
  }
  bool sym = info->scheme == LB_CALIB_INT8_SYM;
  for (int32_t i = 0; i < n; i++) {
    double lo, hi;
    float scale;
    int32_t zp;
    lb_calib_select_range(&stats[i], &info->method, info->scheme, &lo, &hi);
    lb_calib_qparams(lo, hi, sym, sym, &scale, &zp);
    set_qparams(g, lb_graph_find_value(g, stats[i].name), scale, zp, sym);
  }
  return LB_OK;
}

/* ---- schema --------------------------------------------------------------------- */

struct pending {
  struct lb_value *v;
  float scale;
  int32_t zp;
  bool sym;
};

enum lb_status lb_calib_load_json_text(struct lb_graph *g, const char *text, size_t len,
                                       const char *path, int32_t *n_attached, struct lb_diag *d) {
  if (n_attached) *n_attached = 0;
  struct jparser p = {.s = text, .end = text + len, .path = path, .d = d};
  struct jval root = {0};
  const char *c = jvalue(&p, text, &root, 0);
  if (c && (c = jws(&p, c)) < p.end) jerr(&p, c, "trailing characters after the top-level value");
  if (p.failed) {
    jfree(&root);
    return LB_ERR_PARSE;
  }
#define BAD(...) (lb_diag_error(d, LB_ERR_INVALID, NULL, __VA_ARGS__), bad = true)
  bool bad = false;
  const char *saved_file = d->file;
  d->file = path; /* schema errors are about the calibration file */
  const struct jval *fmt = jget(&root, "format"), *ver = jget(&root, "version");
  const struct jval *values = jget(&root, "values"), *scheme = jget(&root, "scheme");
  struct pending *pend = NULL;
  int32_t np = 0;
  if (root.kind != J_OBJ || !fmt || fmt->kind != J_STR || strcmp(fmt->str, "lowbit-calibration") != 0) {
    BAD("not a lowbit calibration file (expected an object with \"format\": \"lowbit-calibration\")");
    goto done;
  }
  if (!ver || ver->kind != J_NUM || ver->num != 1) {
    BAD("unsupported \"version\" (this lowbit reads version 1)");
    goto done;
  }
  bool is_signed = true;
  if (!scheme || scheme->kind != J_STR || (strcmp(scheme->str, "int8") != 0 && strcmp(scheme->str, "uint8") != 0)) {
    BAD("\"scheme\" must be \"int8\" or \"uint8\"");
    goto done;
  }
  is_signed = strcmp(scheme->str, "int8") == 0;
  if (!values || values->kind != J_OBJ) {
    BAD("\"values\" must be an object mapping value names to their statistics");
    goto done;
  }
  pend = calloc((size_t)(values->n ? values->n : 1), sizeof *pend);
  if (!pend) abort();
  for (int32_t i = 0; i < values->n; i++) {
    const char *name = values->keys[i];
    const struct jval *e = &values->items[i];
    for (int32_t k = 0; k < i; k++)
      if (strcmp(values->keys[k], name) == 0) {
        BAD("values.\"%s\": listed twice", name);
        break;
      }
    if (e->kind != J_OBJ) {
      BAD("values.\"%s\": expected an object", name);
      continue;
    }
    const struct jval *sc = jget(e, "scale"), *zp = jget(e, "zero_point"), *bits = jget(e, "bits"),
                      *sym = jget(e, "symmetric");
    bool ok = true;
    if (!sc || sc->kind != J_NUM || !(sc->num > 0) || !isfinite(sc->num) || !((float)sc->num > 0) ||
        !isfinite((float)sc->num))
      ok = false, BAD("values.\"%s\".scale: expected a positive finite number", name);
    if (!bits || bits->kind != J_NUM || bits->num != 8)
      ok = false, BAD("values.\"%s\".bits: expected 8 (the only width calibrated so far)", name);
    if (!sym || sym->kind != J_BOOL)
      ok = false, BAD("values.\"%s\".symmetric: expected true or false", name);
    double lo = is_signed ? -128 : 0, hi = is_signed ? 127 : 255;
    if (!zp || zp->kind != J_NUM || zp->num != floor(zp->num) || zp->num < lo || zp->num > hi)
      ok = false, BAD("values.\"%s\".zero_point: expected an integer in [%g, %g] (scheme %s)", name,
                      lo, hi, scheme->str);
    else if (sym && sym->kind == J_BOOL && sym->b && is_signed && zp->num != 0)
      ok = false, BAD("values.\"%s\".zero_point: a symmetric int8 scale has zero point 0", name);
    struct lb_value *v = lb_graph_find_value(g, name);
    if (!v) {
      ok = false, BAD("values.\"%s\": the model has no such value (calibrated on another model, or "
                      "with another --pipeline?)", name);
    } else if (v->type.dtype != LB_DTYPE_F32) {
      ok = false, BAD("values.\"%s\": the value is %s, not f32", name, lb_dtype_traits[v->type.dtype].name);
    }
    if (!ok) continue;
    pend[np++] = (struct pending){v, (float)sc->num, (int32_t)zp->num, sym->b};
  }
done:
  if (!bad) {
    for (int32_t i = 0; i < np; i++) set_qparams(g, pend[i].v, pend[i].scale, pend[i].zp, pend[i].sym);
    if (n_attached) *n_attached = np;
  }
#undef BAD
  d->file = saved_file;
  free(pend);
  jfree(&root);
  return bad ? LB_ERR_INVALID : LB_OK;
}

/* Reads a whole file (at most 2 GiB) into a heap buffer. */
static enum lb_status read_file(const char *path, char **out, size_t *out_len, struct lb_diag *d) {
  FILE *f = fopen(path, "rb");
  if (!f) return lb_diag_error(d, LB_ERR_IO, NULL, "cannot read '%s': %s", path, strerror(errno));
  char *buf = NULL;
  size_t len = 0, cap = 0;
  for (;;) {
    if (len + 4096 > cap) {
      cap = cap ? cap * 2 : 65536;
      if (cap > ((size_t)1 << 31)) {
        fclose(f);
        free(buf);
        return lb_diag_error(d, LB_ERR_LIMIT, NULL, "%s: calibration file larger than 2 GiB", path);
      }
      buf = realloc(buf, cap);
      if (!buf) abort();
    }
    size_t k = fread(buf + len, 1, cap - len, f);
    len += k;
    if (k == 0) break;
  }
  bool err = ferror(f);
  fclose(f);
  if (err) {
    free(buf);
    return lb_diag_error(d, LB_ERR_IO, NULL, "cannot read '%s'", path);
  }
  *out = buf;
  *out_len = len;
  return LB_OK;
}

enum lb_status lb_calib_load_json(struct lb_graph *g, const char *path, int32_t *n_attached,
                                  struct lb_diag *d) {
  char *buf;
  size_t len;
  enum lb_status st = read_file(path, &buf, &len, d);
  if (st != LB_OK) return st;
  st = lb_calib_load_json_text(g, buf, len, path, n_attached, d);
  free(buf);
  return st;
}

/* ---- statistics back from the file (lowbit-opt --load-stats) ------------------ */

/* "f32[1,128,256]" (the writer's put_type) */
static bool parse_type(const char *s, struct lb_type *t) {
  const char *br = strchr(s, '[');
  if (!br || br == s || br - s >= 16) return false;
  char dt[16];
  memcpy(dt, s, (size_t)(br - s));
  dt[br - s] = 0;
  *t = (struct lb_type){.dtype = lb_dtype_from_name(dt)};
  if (t->dtype == LB_DTYPE_UNDEF) return false;
  const char *p = br + 1;
  if (*p == ']') return p[1] == 0;
  for (;;) {
    if (t->shape.rank == LB_MAX_RANK || *p < '0' || *p > '9') return false;
    char *end;
    errno = 0;
    long long v = strtoll(p, &end, 10);
    if (errno || v < 0) return false;
    t->shape.dims[t->shape.rank++] = v;
    p = end;
    if (*p == ']') return p[1] == 0;
    if (*p++ != ',') return false;
  }
}

enum lb_status lb_calib_read_stats_json_text(const char *text, size_t len, const char *path,
                                             struct lb_calib_stat **out, int32_t *n_out,
                                             struct lb_diag *d) {
  *out = NULL;
  *n_out = 0;
  struct jparser p = {.s = text, .end = text + len, .path = path, .d = d};
  struct jval root = {0};
  const char *c = jvalue(&p, text, &root, 0);
  if (c && (c = jws(&p, c)) < p.end) jerr(&p, c, "trailing characters after the top-level value");
  if (p.failed) {
    jfree(&root);
    return LB_ERR_PARSE;
  }
#define BAD(...) (lb_diag_error(d, LB_ERR_INVALID, NULL, __VA_ARGS__), bad = true)
  bool bad = false;
  const char *saved_file = d->file;
  d->file = path;
  const struct jval *fmt = jget(&root, "format"), *ver = jget(&root, "version");
  const struct jval *values = jget(&root, "values");
  struct lb_calib_stat *stats = NULL;
  int32_t n = 0;
  if (root.kind != J_OBJ || !fmt || fmt->kind != J_STR || strcmp(fmt->str, "lowbit-calibration") != 0) {
    BAD("not a lowbit calibration file (expected an object with \"format\": \"lowbit-calibration\")");
  } else if (!ver || ver->kind != J_NUM || ver->num != 1) {
    BAD("unsupported \"version\" (this lowbit reads version 1)");
  } else if (!values || values->kind != J_OBJ) {
    BAD("\"values\" must be an object mapping value names to their statistics");
  } else {
    stats = calloc((size_t)(values->n ? values->n : 1), sizeof *stats);
    if (!stats) abort();
  }
  for (int32_t i = 0; stats && i < values->n; i++) {
    const char *name = values->keys[i];
    const struct jval *e = &values->items[i];
    for (int32_t k = 0; k < i; k++)
      if (strcmp(values->keys[k], name) == 0) BAD("values.\"%s\": listed twice", name);
    const struct jval *ty = jget(e, "type"), *count = jget(e, "count"), *mn = jget(e, "min"),
                      *mx = jget(e, "max"), *am = jget(e, "absmax_channel"),
                      *amean = jget(e, "absmean_channel"), *rows = jget(e, "rows");
    struct lb_type t;
    if (e->kind != J_OBJ) {
      BAD("values.\"%s\": expected an object", name);
      continue;
    }
    if (!ty || ty->kind != J_STR || !parse_type(ty->str, &t)) {
      BAD("values.\"%s\".type: expected a type such as \"f32[1,128,256]\"", name);
      continue;
    }
    if (!count || count->kind != J_NUM || count->num < 0 || count->num != floor(count->num) ||
        count->num > 0x1p62) {
      BAD("values.\"%s\".count: expected a non-negative integer", name);
      continue;
    }
    if (!mn || mn->kind != J_NUM || !mx || mx->kind != J_NUM || (count->num > 0 && mn->num > mx->num)) {
      BAD("values.\"%s\": expected numbers \"min\" <= \"max\"", name);
      continue;
    }
    int64_t channels = t.shape.rank > 0 ? t.shape.dims[t.shape.rank - 1] : 1;
    if (channels <= 0) channels = 1;
    if (am && (am->kind != J_ARR || am->n != channels)) {
      BAD("values.\"%s\".absmax_channel: expected an array of %lld numbers (the last dim of %s)", name,
          (long long)channels, ty->str);
      continue;
    }
    bool ok = true;
    for (int32_t j = 0; am && j < am->n && ok; j++)
      if (am->items[j].kind != J_NUM || !(am->items[j].num >= 0) || !isfinite(am->items[j].num))
        ok = false, BAD("values.\"%s\".absmax_channel[%d]: expected a non-negative finite number", name, (int)j);
    if (amean && (amean->kind != J_ARR || amean->n != channels)) {
      BAD("values.\"%s\".absmean_channel: expected an array of %lld numbers", name, (long long)channels);
      continue;
    }
    for (int32_t j = 0; amean && j < amean->n && ok; j++)
      if (amean->items[j].kind != J_NUM || !(amean->items[j].num >= 0) || !isfinite(amean->items[j].num))
        ok = false, BAD("values.\"%s\".absmean_channel[%d]: expected a non-negative finite number", name, (int)j);
    const struct jval *rn = rows ? jget(rows, "n") : NULL, *rdata = rows ? jget(rows, "data") : NULL;
    if (ok && rows &&
        (rows->kind != J_OBJ || !rn || rn->kind != J_NUM || rn->num < 0 || rn->num > LB_CALIB_MAX_ROWS ||
         rn->num != floor(rn->num) || !rdata || rdata->kind != J_ARR || rdata->n != (int64_t)rn->num * channels))
      ok = false, BAD("values.\"%s\".rows: expected {\"n\": R <= %d, \"data\": [R x %lld numbers]}", name,
                      LB_CALIB_MAX_ROWS, (long long)channels);
    for (int32_t j = 0; ok && rows && j < rdata->n; j++)
      if (rdata->items[j].kind != J_NUM || !isfinite(rdata->items[j].num))
        ok = false, BAD("values.\"%s\".rows.data[%d]: expected a finite number", name, (int)j);
    if (!ok) continue;
    struct lb_calib_stat *s = &stats[n++];
    lb_calib_stat_init(s, name,
                       (am ? LB_CALIB_ABSMAX_CHANNEL : 0) | (amean ? LB_CALIB_ABSMEAN_CHANNEL : 0) |
                           (rows ? LB_CALIB_ROWS : 0),
                       &t);
    for (int32_t j = 0; amean && j < amean->n; j++) s->abssum[j] = amean->items[j].num, s->abscount[j] = 1;
    if (rows) {
      s->n_rows = s->rows_seen = (int64_t)rn->num;
      for (int32_t j = 0; j < rdata->n; j++) s->rows[j] = (float)rdata->items[j].num;
    }
    s->count = (int64_t)count->num;
    s->min = mn->num;
    s->max = mx->num;
    for (int32_t j = 0; am && j < am->n; j++) s->absmax[j] = (float)am->items[j].num;
  }
#undef BAD
  d->file = saved_file;
  jfree(&root);
  if (bad) {
    for (int32_t i = 0; i < n; i++) lb_calib_stat_free(&stats[i]);
    free(stats);
    return LB_ERR_INVALID;
  }
  *out = stats;
  *n_out = n;
  return LB_OK;
}

enum lb_status lb_calib_read_stats_json(const char *path, struct lb_calib_stat **out, int32_t *n,
                                        struct lb_diag *d) {
  char *buf;
  size_t len;
  *out = NULL;
  *n = 0;
  enum lb_status st = read_file(path, &buf, &len, d);
  if (st != LB_OK) return st;
  st = lb_calib_read_stats_json_text(buf, len, path, out, n, d);
  free(buf);
  return st;
}
