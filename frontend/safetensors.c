/* safetensors.c: the safetensors reader and its JSON reader (safetensors.h).
 *
 * Both read untrusted bytes: every read is bounds-checked against the end of
 * the input, nesting is limited, numbers that must be offsets are parsed as
 * exact u64 (a double would round offsets above 2^53), and a tensor's byte
 * range must lie in the data section and hold exactly its shape's bytes.
 */
#include "frontend/safetensors.h"

#include <stdlib.h>
#include <string.h>

enum { JSON_MAX_DEPTH = 64 };
/* The format's own limit on the header (safetensors refuses larger ones). */
#define ST_MAX_HEADER ((uint64_t)100 << 20)

/* ---- JSON ------------------------------------------------------------------------ */

struct jp {
  const char *s, *end;
  const char *what;
  struct lb_diag *d;
  const char *start;
};

static enum lb_status jerr(struct jp *p, const char *msg) {
  return lb_diag_error(p->d, LB_ERR_PARSE, NULL, "%s: invalid JSON at byte %lld: %s", p->what,
                       (long long)(p->s - p->start), msg);
}

static void skip_ws(struct jp *p) {
  while (p->s < p->end && (*p->s == ' ' || *p->s == '\t' || *p->s == '\n' || *p->s == '\r')) p->s++;
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

static bool read_hex4(struct jp *p, uint32_t *out) {
  if (p->end - p->s < 4) return false;
  uint32_t v = 0;
  for (int i = 0; i < 4; i++) {
    int h = hexval(p->s[i]);
    if (h < 0) return false;
    v = v * 16 + (uint32_t)h;
  }
  p->s += 4;
  *out = v;
  return true;
}

static size_t put_utf8(char *o, uint32_t cp) {
  if (cp < 0x80) return o[0] = (char)cp, 1;
  if (cp < 0x800) return o[0] = (char)(0xC0 | (cp >> 6)), o[1] = (char)(0x80 | (cp & 0x3F)), 2;
  if (cp < 0x10000) {
    o[0] = (char)(0xE0 | (cp >> 12));
    o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[2] = (char)(0x80 | (cp & 0x3F));
    return 3;
  }
  o[0] = (char)(0xF0 | (cp >> 18));
  o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
  o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
  o[3] = (char)(0x80 | (cp & 0x3F));
  return 4;
}

/* At the opening quote. The result never holds a NUL (\u0000 is refused):
 * names become C strings. */
static enum lb_status parse_string(struct jp *p, char **out) {
  p->s++;
  const char *q = p->s;
  while (q < p->end && *q != '"') q += *q == '\\' && p->end - q > 1 ? 2 : 1;
  if (q >= p->end) return jerr(p, "unterminated string");
  /* escapes never expand: \uXXXX (6 bytes) gives at most 3, a pair (12) 4 */
  char *buf = malloc((size_t)(q - p->s) + 1), *o = buf;
  if (!buf) abort();
  while (*p->s != '"') {
    unsigned char c = (unsigned char)*p->s++;
    if (c < 0x20) return free(buf), jerr(p, "control character in a string");
    if (c != '\\') {
      *o++ = (char)c;
      continue;
    }
    char e = *p->s++;
    switch (e) {
    case '"': *o++ = '"'; break;
    case '\\': *o++ = '\\'; break;
    case '/': *o++ = '/'; break;
    case 'b': *o++ = '\b'; break;
    case 'f': *o++ = '\f'; break;
    case 'n': *o++ = '\n'; break;
    case 'r': *o++ = '\r'; break;
    case 't': *o++ = '\t'; break;
    case 'u': {
      uint32_t cp, lo;
      if (!read_hex4(p, &cp)) return free(buf), jerr(p, "bad \\u escape");
      if (cp >= 0xD800 && cp < 0xDC00) {
        if (p->end - p->s < 6 || p->s[0] != '\\' || p->s[1] != 'u') return free(buf), jerr(p, "lone surrogate");
        p->s += 2;
        if (!read_hex4(p, &lo) || lo < 0xDC00 || lo >= 0xE000) return free(buf), jerr(p, "bad surrogate pair");
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
      } else if (cp >= 0xDC00 && cp < 0xE000) {
        return free(buf), jerr(p, "lone surrogate");
      }
      if (cp == 0) return free(buf), jerr(p, "\\u0000 in a string");
      o += put_utf8(o, cp);
      break;
    }
    default: return free(buf), jerr(p, "bad escape");
    }
  }
  p->s++; /* closing quote */
  *o = 0;
  *out = buf;
  return LB_OK;
}

static enum lb_status parse_number(struct jp *p, struct lb_json *j) {
  const char *b = p->s;
  if (p->s < p->end && *p->s == '-') p->s++;
  if (p->s >= p->end || !(*p->s >= '0' && *p->s <= '9')) return jerr(p, "bad number");
  if (*p->s == '0' && p->s + 1 < p->end && p->s[1] >= '0' && p->s[1] <= '9') return jerr(p, "leading zero");
  bool is_int = true;
  while (p->s < p->end && *p->s >= '0' && *p->s <= '9') p->s++;
  if (p->s < p->end && *p->s == '.') {
    is_int = false;
    p->s++;
    if (p->s >= p->end || !(*p->s >= '0' && *p->s <= '9')) return jerr(p, "bad fraction");
    while (p->s < p->end && *p->s >= '0' && *p->s <= '9') p->s++;
  }
  if (p->s < p->end && (*p->s == 'e' || *p->s == 'E')) {
    is_int = false;
    p->s++;
    if (p->s < p->end && (*p->s == '+' || *p->s == '-')) p->s++;
    if (p->s >= p->end || !(*p->s >= '0' && *p->s <= '9')) return jerr(p, "bad exponent");
    while (p->s < p->end && *p->s >= '0' && *p->s <= '9') p->s++;
  }
  size_t n = (size_t)(p->s - b);
  char tmp[64];
  if (n >= sizeof tmp) { /* very long numbers: only their double value matters */
    char *big = malloc(n + 1);
    if (!big) abort();
    memcpy(big, b, n);
    big[n] = 0;
    j->num = strtod(big, NULL);
    free(big);
    j->kind = LB_JSON_NUMBER;
    return LB_OK;
  }
  memcpy(tmp, b, n);
  tmp[n] = 0;
  j->kind = LB_JSON_NUMBER;
  j->num = strtod(tmp, NULL);
  if (is_int && b[0] != '-') {
    uint64_t u = 0;
    bool fits = true;
    for (const char *c = b; c < p->s; c++) {
      uint64_t dgt = (uint64_t)(*c - '0');
      if (u > (UINT64_MAX - dgt) / 10) fits = false;
      u = u * 10 + dgt;
    }
    j->is_uint = fits;
    j->u = fits ? u : 0;
  }
  return LB_OK;
}

static bool literal(struct jp *p, const char *word) {
  size_t n = strlen(word);
  if ((size_t)(p->end - p->s) < n || memcmp(p->s, word, n) != 0) return false;
  p->s += n;
  return true;
}

static enum lb_status parse_value(struct jp *p, struct lb_json *j, int depth);

/* items grow by doubling */
static void push_item(struct lb_json *j, int32_t *cap) {
  if (j->n < *cap) return;
  *cap = *cap ? *cap * 2 : 4;
  j->items = realloc(j->items, sizeof *j->items * (size_t)*cap);
  if (!j->items) abort();
  if (j->kind == LB_JSON_OBJECT) {
    j->keys = realloc(j->keys, sizeof *j->keys * (size_t)*cap);
    if (!j->keys) abort();
  }
}

static enum lb_status parse_container(struct jp *p, struct lb_json *j, int depth, bool object) {
  j->kind = object ? LB_JSON_OBJECT : LB_JSON_ARRAY;
  char close = object ? '}' : ']';
  int32_t cap = 0;
  p->s++;
  skip_ws(p);
  if (p->s < p->end && *p->s == close) {
    p->s++;
    return LB_OK;
  }
  for (;;) {
    char *key = NULL;
    if (object) {
      skip_ws(p);
      if (p->s >= p->end || *p->s != '"') return jerr(p, "expected a key");
      enum lb_status st = parse_string(p, &key);
      if (st != LB_OK) return st;
      skip_ws(p);
      if (p->s >= p->end || *p->s != ':') return free(key), jerr(p, "expected ':'");
      p->s++;
    }
    push_item(j, &cap);
    memset(&j->items[j->n], 0, sizeof *j->items);
    if (object) j->keys[j->n] = key;
    j->n++; /* counted now, so lb_json_free releases a half-parsed item */
    enum lb_status st = parse_value(p, &j->items[j->n - 1], depth + 1);
    if (st != LB_OK) return st;
    skip_ws(p);
    if (p->s < p->end && *p->s == ',') {
      p->s++;
      continue;
    }
    if (p->s < p->end && *p->s == close) {
      p->s++;
      return LB_OK;
    }
    return jerr(p, object ? "expected ',' or '}'" : "expected ',' or ']'");
  }
}

static enum lb_status parse_value(struct jp *p, struct lb_json *j, int depth) {
  if (depth > JSON_MAX_DEPTH) return jerr(p, "nested too deeply");
  skip_ws(p);
  if (p->s >= p->end) return jerr(p, "unexpected end");
  switch (*p->s) {
  case '{': return parse_container(p, j, depth, true);
  case '[': return parse_container(p, j, depth, false);
  case '"': j->kind = LB_JSON_STRING; return parse_string(p, &j->str);
  case 't': if (literal(p, "true")) return j->kind = LB_JSON_BOOL, j->b = true, LB_OK; break;
  case 'f': if (literal(p, "false")) return j->kind = LB_JSON_BOOL, LB_OK; break;
  case 'n': if (literal(p, "null")) return j->kind = LB_JSON_NULL, LB_OK; break;
  default: return parse_number(p, j);
  }
  return jerr(p, "unexpected token");
}

enum lb_status lb_json_parse(const char *text, size_t len, const char *what, struct lb_json *out,
                             struct lb_diag *d) {
  memset(out, 0, sizeof *out);
  struct jp p = {.s = text, .end = text + len, .what = what, .d = d, .start = text};
  enum lb_status st = parse_value(&p, out, 0);
  if (st == LB_OK) {
    skip_ws(&p);
    if (p.s != p.end) st = jerr(&p, "trailing characters");
  }
  if (st != LB_OK) lb_json_free(out);
  return st;
}

void lb_json_free(struct lb_json *j) {
  if (!j) return;
  for (int32_t i = 0; i < j->n; i++) {
    lb_json_free(&j->items[i]);
    if (j->keys) free(j->keys[i]);
  }
  free(j->items);
  free(j->keys);
  free(j->str);
  memset(j, 0, sizeof *j);
}

const struct lb_json *lb_json_get(const struct lb_json *j, const char *key) {
  if (!j || j->kind != LB_JSON_OBJECT) return NULL;
  for (int32_t i = 0; i < j->n; i++)
    if (strcmp(j->keys[i], key) == 0) return &j->items[i];
  return NULL;
}

/* ---- safetensors ------------------------------------------------------------------ */

static enum lb_status st_error(struct lb_diag *d, const char *what, const char *name, const char *msg) {
  if (name) return lb_diag_error(d, LB_ERR_PARSE, NULL, "%s: tensor \"%s\": %s", what, name, msg);
  return lb_diag_error(d, LB_ERR_PARSE, NULL, "%s: %s", what, msg);
}

static enum lb_status read_entry(const struct lb_json *e, const char *name, uint64_t data_len, const char *what,
                                 struct lb_st_tensor *t, struct lb_diag *d) {
  if (e->kind != LB_JSON_OBJECT) return st_error(d, what, name, "header entry is not an object");
  const struct lb_json *dt = lb_json_get(e, "dtype"), *sh = lb_json_get(e, "shape"),
                       *off = lb_json_get(e, "data_offsets");
  if (!dt || dt->kind != LB_JSON_STRING) return st_error(d, what, name, "no \"dtype\" string");
  if (!sh || sh->kind != LB_JSON_ARRAY) return st_error(d, what, name, "no \"shape\" array");
  if (!off || off->kind != LB_JSON_ARRAY || off->n != 2 || !off->items[0].is_uint || !off->items[1].is_uint)
    return st_error(d, what, name, "\"data_offsets\" is not two non-negative integers");
  if (strcmp(dt->str, "F32") == 0) t->dtype = LB_DTYPE_F32;
  else if (strcmp(dt->str, "F16") == 0) t->dtype = LB_DTYPE_F16;
  else if (strcmp(dt->str, "BF16") == 0) t->dtype = LB_DTYPE_BF16;
  else
    return lb_diag_error(d, LB_ERR_UNSUPPORTED, NULL, "%s: tensor \"%s\": dtype %s is not supported (F32, F16, BF16)",
                         what, name, dt->str);
  if (sh->n > LB_MAX_RANK) return st_error(d, what, name, "rank above the maximum of 8");
  t->shape.rank = sh->n;
  for (int32_t i = 0; i < sh->n; i++) {
    if (!sh->items[i].is_uint || sh->items[i].u > (uint64_t)INT64_MAX)
      return st_error(d, what, name, "a shape entry is not a non-negative integer");
    t->shape.dims[i] = (int64_t)sh->items[i].u;
  }
  int64_t numel;
  if (!lb_shape_numel_checked(&t->shape, INT64_MAX / 8, &numel)) return st_error(d, what, name, "shape too large");
  t->begin = off->items[0].u;
  t->end = off->items[1].u;
  if (t->begin > t->end || t->end > data_len) return st_error(d, what, name, "data_offsets outside the data");
  if (t->end - t->begin != (uint64_t)numel * (uint64_t)lb_dtype_traits[t->dtype].size)
    return st_error(d, what, name, "data_offsets do not hold the shape's bytes");
  return LB_OK;
}

enum lb_status lb_safetensors_parse(const void *buf, size_t len, const char *what, struct lb_safetensors *out,
                                    struct lb_diag *d) {
  memset(out, 0, sizeof *out);
  const uint8_t *b = buf;
  if (len < 8) return st_error(d, what, NULL, "shorter than the 8-byte header length");
  uint64_t n = 0;
  for (int i = 7; i >= 0; i--) n = n << 8 | b[i];
  if (n > ST_MAX_HEADER || n > len - 8) return st_error(d, what, NULL, "header length outside the file");
  if (n < 2 || b[8] != '{') return st_error(d, what, NULL, "the header is not a JSON object");
  struct lb_json h;
  enum lb_status st = lb_json_parse((const char *)b + 8, (size_t)n, what, &h, d);
  if (st != LB_OK) return st;
  if (h.kind != LB_JSON_OBJECT) {
    lb_json_free(&h);
    return st_error(d, what, NULL, "the header is not a JSON object");
  }
  out->data = b + 8 + n;
  out->data_len = len - 8 - n;
  out->tensors = calloc((size_t)(h.n ? h.n : 1), sizeof *out->tensors);
  if (!out->tensors) abort();
  for (int32_t i = 0; i < h.n && st == LB_OK; i++) {
    const char *name = h.keys[i];
    if (strcmp(name, "__metadata__") == 0) {
      if (h.items[i].kind != LB_JSON_OBJECT) st = st_error(d, what, NULL, "__metadata__ is not an object");
      continue;
    }
    if (lb_safetensors_find(out, name) >= 0) {
      st = st_error(d, what, name, "appears twice in the header");
      break;
    }
    struct lb_st_tensor *t = &out->tensors[out->n];
    st = read_entry(&h.items[i], name, out->data_len, what, t, d);
    if (st != LB_OK) break;
    t->name = strdup(name);
    if (!t->name) abort();
    out->n++;
  }
  lb_json_free(&h);
  if (st != LB_OK) lb_safetensors_free(out);
  return st;
}

void lb_safetensors_free(struct lb_safetensors *st) {
  for (int32_t i = 0; i < st->n; i++) free(st->tensors[i].name);
  free(st->tensors);
  memset(st, 0, sizeof *st);
}

int32_t lb_safetensors_find(const struct lb_safetensors *st, const char *name) {
  for (int32_t i = 0; i < st->n; i++)
    if (strcmp(st->tensors[i].name, name) == 0) return i;
  return -1;
}

float *lb_safetensors_read_f32(const struct lb_safetensors *st, int32_t i) {
  LB_ASSERT(i >= 0 && i < st->n);
  const struct lb_st_tensor *t = &st->tensors[i];
  int64_t numel = lb_shape_numel(&t->shape);
  float *out = malloc(sizeof *out * (size_t)(numel ? numel : 1));
  if (!out) abort();
  LB_ASSERT(lb_widen_to_f32(t->dtype, st->data + t->begin, numel, out));
  return out;
}

bool lb_widen_to_f32(enum lb_dtype dt, const void *src, int64_t n, float *dst) {
  const uint8_t *s = src;
  if (dt == LB_DTYPE_F32) {
    if (n) memcpy(dst, src, sizeof *dst * (size_t)n);
    return true;
  }
  if (dt != LB_DTYPE_F16 && dt != LB_DTYPE_BF16) return false;
  for (int64_t i = 0; i < n; i++) {
    uint16_t h = (uint16_t)(s[2 * i] | s[2 * i + 1] << 8);
    if (dt == LB_DTYPE_F16) {
      dst[i] = lb_f16_decode(h);
    } else {
      uint32_t bits = (uint32_t)h << 16;
      memcpy(&dst[i], &bits, sizeof bits);
    }
  }
  return true;
}
