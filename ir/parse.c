/* parse.c: the IR text form (docs/ir-format.md), read back.
 *
 * A hand-written recursive-descent parser over the raw text: no token list,
 * so the multi-megabyte base64 strings of a model's weights are decoded in
 * place in one pass. The grammar each function parses is written above it.
 *
 * The first error stops the parse (longjmp back to lb_graph_parse) with a
 * message in chibicc's style:
 *
 *   model.lbir:3:8: error: unknown op 'addd'
 *     %y = addd(%x, %x) : f32[2]
 *          ^
 *
 * Everything allocated while parsing is owned either by the graph (freed
 * with it on error) or by the parser's scratch vectors (freed on every exit),
 * so the longjmp leaks nothing. The input may hold any bytes, including NULs;
 * the parser never reads past `len` and never recurses on input structure.
 */
#include "ir/ir.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

#define MAX_BYTES ((int64_t)1 << 40) /* largest tensor the text form accepts */

/* ---- growable scratch storage ------------------------------------------------ */
struct vec {
  void *data;
  size_t len, cap, elem;
};

static void *vec_push(struct vec *v) {
  if (v->len == v->cap) {
    size_t cap = v->cap ? v->cap * 2 : 16;
    void *d = realloc(v->data, cap * v->elem);
    if (!d) abort();
    v->data = d;
    v->cap = cap;
  }
  void *slot = (char *)v->data + v->len++ * v->elem;
  memset(slot, 0, v->elem);
  return slot;
}

struct sbuf {
  char *s;
  size_t len, cap;
};

static void sb_putn(struct sbuf *b, const char *s, size_t n) {
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + n + 1) cap *= 2;
    char *t = realloc(b->s, cap);
    if (!t) abort();
    b->s = t;
    b->cap = cap;
  }
  memcpy(b->s + b->len, s, n);
  b->len += n;
  b->s[b->len] = 0;
}

static void sb_putc(struct sbuf *b, char c) { sb_putn(b, &c, 1); }

static void sb_vprintf(struct sbuf *b, const char *fmt, va_list ap) {
  va_list ap2;
  va_copy(ap2, ap);
  int n = vsnprintf(NULL, 0, fmt, ap2);
  va_end(ap2);
  if (n <= 0) return;
  sb_putn(b, "", 0);
  if (b->len + (size_t)n + 1 > b->cap) {
    size_t cap = b->cap;
    while (cap < b->len + (size_t)n + 1) cap *= 2;
    char *t = realloc(b->s, cap);
    if (!t) abort();
    b->s = t;
    b->cap = cap;
  }
  vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
  b->len += (size_t)n;
}

static void sb_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(struct sbuf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  sb_vprintf(b, fmt, ap);
  va_end(ap);
}

/* ---- parser state ---------------------------------------------------------------- */
struct blob_info {
  size_t ref_pos; /* first reference, for "unknown blob" */
  bool defined;   /* has a trailer entry (or dense data) */
  bool dense;     /* made from dense<[...]>: its name is not part of the text */
};

struct parser {
  const char *src; /* the input, copied and NUL-terminated */
  size_t len, pos;
  const char *file;
  struct lb_diag *d;
  struct lb_graph *g;
  jmp_buf fail;
  enum lb_status status;
  /* blobs: map name -> index (slots hold index + 1), info per graph blob */
  int32_t *bmap;
  uint32_t bmap_cap, bmap_count;
  struct blob_info *binfo;
  int32_t binfo_cap;
  /* scratch, reused by each statement */
  struct vec inputs, outs, types, attrs, nums, strs, bytes, results;
  struct sbuf tmp, msg;
};

struct out_def {
  const char *name;
  size_t pos;
};
struct vtype {
  struct lb_type type;
  struct lb_qparams *q;
  int64_t mem;
};
struct pattr {
  struct lb_attr a;
  size_t pos;
};
struct num {
  bool is_float;
  int64_t i;
  double f;
};

/* ---- errors ---------------------------------------------------------------------- */
static bool is_bare_char(int c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         c == '_' || c == '.' || c == '-' || c == '/';
}

/* Appends a name as the printer writes it (bare or quoted), for messages. */
static void sb_name(struct sbuf *b, const char *prefix, const char *s) {
  sb_putn(b, prefix, strlen(prefix));
  bool bare = *s != 0;
  for (const char *c = s; bare && *c; c++) bare = is_bare_char((unsigned char)*c);
  if (bare) {
    sb_putn(b, s, strlen(s));
    return;
  }
  sb_putc(b, '"');
  for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
    if (*c == '"' || *c == '\\')
      sb_printf(b, "\\%c", *c);
    else if (*c < 0x20 || *c >= 0x7f)
      sb_printf(b, "\\x%02x", *c);
    else
      sb_putc(b, (char)*c);
  }
  sb_putc(b, '"');
}

/* A name in the printed form, e.g. ("%", "a b") -> %"a b", in the graph arena. */
static const char *shown(struct parser *p, const char *prefix, const char *s) {
  p->tmp.len = 0;
  sb_putn(&p->tmp, "", 0);
  sb_name(&p->tmp, prefix, s);
  return lb_arena_strdup(&p->g->arena, p->tmp.s);
}


/* file:line:col: error: msg, then the line (at most ~160 columns of it
 * around the error) and a caret under the offending byte. */
static _Noreturn void verror_at(struct parser *p, size_t pos, enum lb_status st, const char *fmt,
                                va_list ap) {
  if (pos > p->len) pos = p->len;
  size_t line_start = 0;
  int64_t line = 1;
  for (size_t i = 0; i < pos; i++)
    if (p->src[i] == '\n') {
      line++;
      line_start = i + 1;
    }
  size_t line_end = pos;
  while (line_end < p->len && p->src[line_end] != '\n') line_end++;
  struct sbuf *m = &p->msg;
  m->len = 0;
  sb_printf(m, "%s:%" PRId64 ":%zu: error: ", p->file, line, pos - line_start + 1);
  sb_vprintf(m, fmt, ap);
  sb_putc(m, '\n');
  size_t from = pos - line_start > 80 ? pos - 80 : line_start;
  size_t to = line_end - pos > 80 ? pos + 80 : line_end;
  if (from > line_start) sb_putn(m, "...", 3);
  for (size_t i = from; i < to; i++) {
    unsigned char c = (unsigned char)p->src[i];
    sb_putc(m, c == '\t' || c == '\r' || (c >= 0x20 && c != 0x7f) ? (char)(c == '\r' ? ' ' : c) : '?');
  }
  if (to < line_end) sb_putn(m, "...", 3);
  sb_putc(m, '\n');
  if (from > line_start) sb_putn(m, "   ", 3);
  for (size_t i = from; i < pos; i++) sb_putc(m, p->src[i] == '\t' ? '\t' : ' ');
  sb_putn(m, "^\n", 2);
  lb_diag_append_error(p->d, st, m->s, m->len);
  p->status = st;
  longjmp(p->fail, 1);
}

static _Noreturn void error_at(struct parser *p, size_t pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static _Noreturn void error_at(struct parser *p, size_t pos, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  verror_at(p, pos, LB_ERR_PARSE, fmt, ap);
}

/* An input that is well formed but breaks an IR rule (undefined value, counts). */
static _Noreturn void invalid_at(struct parser *p, size_t pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static _Noreturn void invalid_at(struct parser *p, size_t pos, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  verror_at(p, pos, LB_ERR_INVALID, fmt, ap);
}

static _Noreturn void limit_at(struct parser *p, size_t pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static _Noreturn void limit_at(struct parser *p, size_t pos, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  verror_at(p, pos, LB_ERR_LIMIT, fmt, ap);
}

/* ---- lexing -------------------------------------------------------------------- */
static int peekc(struct parser *p) {
  return p->pos < p->len ? (unsigned char)p->src[p->pos] : -1;
}

/* Skips blanks, newlines and `#` comments. */
static void skip(struct parser *p) {
  while (p->pos < p->len) {
    char c = p->src[p->pos];
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      p->pos++;
    } else if (c == '#') {
      while (p->pos < p->len && p->src[p->pos] != '\n') p->pos++;
    } else {
      break;
    }
  }
}

/* A short description of what is at pos, for "expected X, got Y". */
static const char *got(struct parser *p) {
  if (p->pos >= p->len) return "end of file";
  unsigned char c = (unsigned char)p->src[p->pos];
  p->tmp.len = 0;
  sb_putn(&p->tmp, "", 0);
  if (c >= 0x21 && c < 0x7f)
    sb_printf(&p->tmp, "'%c'", c);
  else
    sb_printf(&p->tmp, "byte 0x%02x", c);
  return p->tmp.s;
}

/* Consumes `lit` (after blanks) if it is next. Literals that end in a
 * letter must not run into a following name character ("opset" vs "opsetx"). */
static bool consume(struct parser *p, const char *lit) {
  skip(p);
  size_t n = strlen(lit);
  if (p->len - p->pos < n || memcmp(p->src + p->pos, lit, n) != 0) return false;
  if (is_bare_char((unsigned char)lit[n - 1]) && p->pos + n < p->len &&
      is_bare_char((unsigned char)p->src[p->pos + n]))
    return false;
  p->pos += n;
  return true;
}

static void expect(struct parser *p, const char *lit) {
  if (!consume(p, lit)) error_at(p, p->pos, "expected '%s', got %s", lit, got(p));
}

/* Length of the run of name characters at pos (no blanks skipped). */
static size_t bare_len(struct parser *p) {
  size_t n = 0;
  while (p->pos + n < p->len && is_bare_char((unsigned char)p->src[p->pos + n])) n++;
  return n;
}

static int hexval(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* string = '"' (char | '\"' | '\\' | '\n' | '\t' | '\xHH')* '"'
 * Returns the decoded bytes in the graph arena. */
static const char *parse_string(struct parser *p) {
  skip(p);
  if (peekc(p) != '"') error_at(p, p->pos, "expected a string, got %s", got(p));
  p->pos++;
  struct vec *b = &p->bytes;
  b->len = 0;
  for (;;) {
    size_t at = p->pos;
    int c = peekc(p);
    if (c < 0 || c == '\n') error_at(p, at, "unterminated string");
    p->pos++;
    if (c == '"') break;
    if (c == '\\') {
      int e = peekc(p);
      p->pos++;
      if (e == 'n') {
        c = '\n';
      } else if (e == 't') {
        c = '\t';
      } else if (e == '"' || e == '\\') {
        c = e;
      } else if (e == 'x') {
        int h = hexval(peekc(p));
        int l = h < 0 ? -1 : (p->pos + 1 < p->len ? hexval((unsigned char)p->src[p->pos + 1]) : -1);
        if (h < 0 || l < 0) error_at(p, at, "expected two hex digits after \\x");
        c = h * 16 + l;
        p->pos += 2;
        if (c == 0) error_at(p, at, "strings cannot contain NUL (\\x00)");
      } else {
        error_at(p, at, "unknown escape in string (use \\\" \\\\ \\n \\t or \\xHH)");
      }
    } else if (c == 0) {
      error_at(p, at, "strings cannot contain NUL");
    }
    *(char *)vec_push(b) = (char)c;
  }
  return lb_arena_strndup(&p->g->arena, b->data ? b->data : "", b->len);
}

/* name = [A-Za-z0-9_.\-/]+ | string */
static const char *parse_name(struct parser *p, const char *what) {
  skip(p);
  if (peekc(p) == '"') return parse_string(p);
  size_t n = bare_len(p);
  if (n == 0) error_at(p, p->pos, "expected %s, got %s", what, got(p));
  const char *s = lb_arena_strndup(&p->g->arena, p->src + p->pos, n);
  p->pos += n;
  return s;
}

/* A bare word [A-Za-z0-9_]+ at pos: its length (0 if none). */
static size_t word_len(struct parser *p) {
  size_t n = 0;
  for (; p->pos + n < p->len; n++) {
    char c = p->src[p->pos + n];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'))
      break;
  }
  return n;
}

/* int = '-'? [0-9]+ (fits in int64) */
static int64_t parse_int(struct parser *p) {
  skip(p);
  size_t at = p->pos;
  bool neg = peekc(p) == '-';
  if (neg) p->pos++;
  int c = peekc(p);
  if (c < '0' || c > '9') error_at(p, at, "expected an integer, got %s", got(p));
  uint64_t v = 0, limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
  while ((c = peekc(p)) >= '0' && c <= '9') {
    if (v > (limit - (uint64_t)(c - '0')) / 10) error_at(p, at, "integer out of range");
    v = v * 10 + (uint64_t)(c - '0');
    p->pos++;
  }
  if (c == '.' || c == 'e' || c == 'E') error_at(p, at, "expected an integer, got a float");
  return neg ? (int64_t)(0 - v) : (int64_t)v;
}

static uint64_t parse_u64(struct parser *p) {
  skip(p);
  size_t at = p->pos;
  int c = peekc(p);
  if (c == '-') error_at(p, at, "value out of range for an unsigned type");
  if (c < '0' || c > '9') error_at(p, at, "expected an integer, got %s", got(p));
  uint64_t v = 0;
  while ((c = peekc(p)) >= '0' && c <= '9') {
    if (v > (UINT64_MAX - (uint64_t)(c - '0')) / 10) error_at(p, at, "integer out of range");
    v = v * 10 + (uint64_t)(c - '0');
    p->pos++;
  }
  return v;
}

/* hex = '0x' [0-9a-fA-F]{1,digits} */
static uint64_t parse_hex(struct parser *p, int digits) {
  skip(p);
  size_t at = p->pos;
  if (!(p->len - p->pos >= 2 && p->src[p->pos] == '0' && p->src[p->pos + 1] == 'x'))
    error_at(p, at, "expected 0x followed by hex digits");
  p->pos += 2;
  uint64_t v = 0;
  int n = 0;
  for (int h; (h = hexval(peekc(p))) >= 0; n++, p->pos++) {
    if (n == digits) error_at(p, at, "too many hex digits (at most %d)", digits);
    v = v << 4 | (uint64_t)h;
  }
  if (n == 0) error_at(p, at, "expected hex digits after 0x");
  return v;
}

/* A float literal:
 *   float = '-'? [0-9]+ ('.' [0-9]*)? ([eE] [+-]? [0-9]+)? | '-'? 'inf' | 'nan' | 'nan:0x' hex
 * Reads it as a double (width 64) or a float (width 32, rounded once, by
 * strtof); returns the bits. Sets *float_shaped when the literal
 * is float-shaped ('.', exponent, inf, nan), so that `1` reads as an int. */
static uint64_t parse_float_bits(struct parser *p, int width, bool *float_shaped) {
  skip(p);
  size_t at = p->pos;
  bool neg = peekc(p) == '-';
  size_t s = p->pos + neg;
  if (float_shaped) *float_shaped = true;
  p->pos = s;
  size_t w = word_len(p);
  if (w == 3 && memcmp(p->src + s, "inf", 3) == 0) {
    p->pos += 3;
    if (width == 32) {
      float f = neg ? -INFINITY : INFINITY;
      uint32_t b;
      memcpy(&b, &f, 4);
      return b;
    }
    double f = neg ? -INFINITY : INFINITY;
    uint64_t b;
    memcpy(&b, &f, 8);
    return b;
  }
  if (!neg && w == 3 && memcmp(p->src + s, "nan", 3) == 0) {
    p->pos += 3;
    if (peekc(p) != ':') return width == 32 ? 0x7fc00000u : 0x7ff8000000000000ull;
    p->pos++;
    uint64_t b = parse_hex(p, width / 4);
    bool isnan_bits = width == 32 ? (b & 0x7f800000u) == 0x7f800000u && (b & 0x7fffffu)
                                  : (b & 0x7ff0000000000000ull) == 0x7ff0000000000000ull &&
                                        (b & 0xfffffffffffffull);
    if (!isnan_bits) error_at(p, at, "nan:0x%" PRIx64 " is not a NaN", b);
    return b;
  }
  size_t e = s;
  bool shaped = false;
  while (e < p->len && p->src[e] >= '0' && p->src[e] <= '9') e++;
  if (e == s) {
    p->pos = at;
    error_at(p, at, "expected a number, got %s", got(p));
  }
  if (e < p->len && p->src[e] == '.') {
    shaped = true;
    e++;
    while (e < p->len && p->src[e] >= '0' && p->src[e] <= '9') e++;
  }
  if (e < p->len && (p->src[e] == 'e' || p->src[e] == 'E')) {
    shaped = true;
    size_t x = e + 1;
    if (x < p->len && (p->src[x] == '+' || p->src[x] == '-')) x++;
    size_t digits = x;
    while (x < p->len && p->src[x] >= '0' && p->src[x] <= '9') x++;
    if (x == digits) error_at(p, e, "expected digits in the exponent");
    e = x;
  }
  if (float_shaped) *float_shaped = shaped;
  /* The source copy is NUL-terminated, so strto* stops at or before e. */
  char *end;
  errno = 0;
  uint64_t bits;
  if (width == 32) {
    float f = strtof(p->src + at, &end);
    if (isinf(f)) error_at(p, at, "number out of range for f32");
    uint32_t b;
    memcpy(&b, &f, 4);
    bits = b;
  } else {
    double f = strtod(p->src + at, &end);
    if (isinf(f)) error_at(p, at, "number out of range for f64");
    memcpy(&bits, &f, 8);
  }
  if (end != p->src + e) error_at(p, at, "malformed number");
  p->pos = e;
  return bits;
}

static double parse_double(struct parser *p, bool *float_shaped) {
  uint64_t b = parse_float_bits(p, 64, float_shaped);
  double f;
  memcpy(&f, &b, 8);
  return f;
}

static float parse_f32(struct parser *p) {
  uint32_t b = (uint32_t)parse_float_bits(p, 32, NULL);
  float f;
  memcpy(&f, &b, 4);
  return f;
}

/* ---- types ----------------------------------------------------------------------- */
static enum lb_dtype lookup_dtype(const char *s, size_t n) {
  for (int t = 1; t < LB_DTYPE_COUNT; t++)
    if (strlen(lb_dtype_traits[t].name) == n && memcmp(lb_dtype_traits[t].name, s, n) == 0)
      return (enum lb_dtype)t;
  return LB_DTYPE_UNDEF;
}

static enum lb_op lookup_op(const char *s, size_t n) {
  for (int op = 0; op < LB_OP_COUNT; op++)
    if (strlen(lb_op_info[op].ir_name) == n && memcmp(lb_op_info[op].ir_name, s, n) == 0)
      return (enum lb_op)op;
  return LB_OP_COUNT;
}

/* type = dtype '[' (int (',' int)*)? ']'
 * with rank <= LB_MAX_RANK, dims >= 0 and at most 2^40 bytes. */
static struct lb_type parse_type(struct parser *p) {
  skip(p);
  size_t at = p->pos, n = word_len(p);
  if (n == 0) error_at(p, at, "expected a type, got %s", got(p));
  struct lb_type t = {0};
  t.dtype = lookup_dtype(p->src + at, n);
  if (t.dtype == LB_DTYPE_UNDEF)
    error_at(p, at, "unknown dtype '%.*s'", (int)(n > 64 ? 64 : n), p->src + at);
  p->pos += n;
  if (peekc(p) != '[') error_at(p, p->pos, "expected '[' after the dtype, got %s", got(p));
  p->pos++;
  if (!consume(p, "]")) {
    do {
      skip(p);
      size_t dpos = p->pos;
      int64_t d = parse_int(p);
      if (t.shape.rank == LB_MAX_RANK) limit_at(p, dpos, "rank exceeds the maximum of %d", LB_MAX_RANK);
      if (d < 0) invalid_at(p, dpos, "negative dimension %" PRId64, d);
      t.shape.dims[t.shape.rank++] = d;
    } while (consume(p, ","));
    expect(p, "]");
  }
  int64_t numel;
  if (!lb_shape_numel_checked(&t.shape, MAX_BYTES / lb_dtype_traits[t.dtype].size, &numel))
    limit_at(p, at, "tensor is larger than 2^40 bytes");
  return t;
}

/* qparams = 'q<' qitem (',' qitem)* '>'
 * qitem   = 'bits=' int | 'axis=' int | 'group=' int | 'sym' | 'asym' | 'unsigned'
 *         | 'fp8=' ('e4m3' | 'e5m2')
 *         | 'scales=[' (float (',' float)*)? ']' | 'zps=[' (int (',' int)*)? ']'
 * bits and scales are required; zps, if given, has one entry per scale. */
static struct lb_qparams *parse_qparams(struct parser *p) {
  size_t at = p->pos;
  struct lb_qparams *q = lb_arena_alloc(&p->g->arena, sizeof *q);
  q->axis = -1;
  bool seen_bits = false, seen_scales = false, seen_zps = false;
  struct vec *nums = &p->nums;
  do {
    skip(p);
    size_t kpos = p->pos;
    if (consume(p, "bits=")) {
      int64_t v = parse_int(p);
      if (v < 1 || v > 32) invalid_at(p, kpos, "bits must be in 1..32");
      q->bits = (int32_t)v;
      seen_bits = true;
    } else if (consume(p, "axis=")) {
      int64_t v = parse_int(p);
      if (v < -1 || v >= LB_MAX_RANK) invalid_at(p, kpos, "axis must be -1 or a dimension");
      q->axis = (int32_t)v;
    } else if (consume(p, "group=")) {
      int64_t v = parse_int(p);
      if (v < 0 || v > INT32_MAX) invalid_at(p, kpos, "group out of range");
      q->group_size = (int32_t)v;
    } else if (consume(p, "sym")) {
      q->symmetric = true;
    } else if (consume(p, "asym")) {
      q->symmetric = false;
    } else if (consume(p, "unsigned")) {
      q->is_unsigned = true;
    } else if (consume(p, "fp8=")) {
      size_t n = 0;
      while (p->pos + n < p->len && is_bare_char((unsigned char)p->src[p->pos + n])) n++;
      if (!lb_qfloat_parse(p->src + p->pos, n, &q->fp8)) error_at(p, kpos, "fp8= must be e4m3 or e5m2");
      p->pos += n;
    } else if (consume(p, "scales=")) {
      if (seen_scales) error_at(p, kpos, "duplicate scales");
      nums->len = 0;
      expect(p, "[");
      if (!consume(p, "]")) {
        do ((struct num *)vec_push(nums))->f = parse_f32(p);
        while (consume(p, ","));
        expect(p, "]");
      }
      if (seen_zps && (int64_t)nums->len != q->n)
        invalid_at(p, kpos, "%zu scales but %" PRId64 " zero points", nums->len, q->n);
      q->n = (int64_t)nums->len;
      q->scales = lb_arena_alloc(&p->g->arena, sizeof(float) * (nums->len ? nums->len : 1));
      for (size_t i = 0; i < nums->len; i++) q->scales[i] = (float)((struct num *)nums->data)[i].f;
      seen_scales = true;
    } else if (consume(p, "zps=")) {
      if (seen_zps) error_at(p, kpos, "duplicate zps");
      nums->len = 0;
      expect(p, "[");
      if (!consume(p, "]")) {
        do {
          skip(p);
          size_t zpos = p->pos;
          int64_t v = parse_int(p);
          if (v < INT32_MIN || v > INT32_MAX) invalid_at(p, zpos, "zero point out of range");
          ((struct num *)vec_push(nums))->i = v;
        } while (consume(p, ","));
        expect(p, "]");
      }
      if (seen_scales && (int64_t)nums->len != q->n)
        invalid_at(p, kpos, "%" PRId64 " scales but %zu zero points", q->n, nums->len);
      q->n = (int64_t)nums->len;
      q->zero_points = lb_arena_alloc(&p->g->arena, sizeof(int32_t) * (nums->len ? nums->len : 1));
      for (size_t i = 0; i < nums->len; i++)
        q->zero_points[i] = (int32_t)((struct num *)nums->data)[i].i;
      seen_zps = true;
    } else {
      error_at(p, kpos, "expected bits=, axis=, group=, sym, asym, unsigned, fp8=, scales= or zps= in q<...>");
    }
  } while (consume(p, ","));
  expect(p, ">");
  if (!seen_bits || !seen_scales) invalid_at(p, at, "q<...> needs bits= and scales=");
  return q;
}

/* vtype = type qparams? ('mem=' int)? */
static struct vtype parse_vtype(struct parser *p) {
  struct vtype v = {.type = parse_type(p), .mem = -1};
  if (consume(p, "q<")) v.q = parse_qparams(p);
  if (consume(p, "mem=")) {
    skip(p);
    size_t at = p->pos;
    v.mem = parse_int(p);
    if (v.mem < 0) invalid_at(p, at, "mem offset must be >= 0");
  }
  return v;
}

static void apply_vtype(struct lb_value *val, const struct vtype *v) {
  val->type = v->type;
  val->qparams = v->q;
  val->mem_offset = v->mem;
}

/* ---- blobs ------------------------------------------------------------------------- */
static int32_t bmap_find(struct parser *p, const char *name) {
  if (!p->bmap_cap) return -1;
  uint32_t mask = p->bmap_cap - 1;
  for (uint32_t i = (uint32_t)lb_hash_bytes(name, strlen(name)) & mask; p->bmap[i];
       i = (i + 1) & mask)
    if (strcmp(p->g->blobs[p->bmap[i] - 1].name, name) == 0) return p->bmap[i] - 1;
  return -1;
}

static void bmap_insert(struct parser *p, int32_t b) {
  if ((p->bmap_count + 1) * 2 > p->bmap_cap) {
    int32_t *old = p->bmap;
    uint32_t old_cap = p->bmap_cap;
    p->bmap_cap = old_cap ? old_cap * 2 : 64;
    p->bmap = calloc(p->bmap_cap, sizeof *p->bmap);
    if (!p->bmap) abort();
    p->bmap_count = 0;
    for (uint32_t i = 0; i < old_cap; i++)
      if (old[i]) bmap_insert(p, old[i] - 1);
    free(old);
  }
  uint32_t mask = p->bmap_cap - 1;
  const char *name = p->g->blobs[b].name;
  uint32_t i = (uint32_t)lb_hash_bytes(name, strlen(name)) & mask;
  while (p->bmap[i]) i = (i + 1) & mask;
  p->bmap[i] = b + 1;
  p->bmap_count++;
}

static int32_t add_blob(struct parser *p, const char *name, void *data, size_t size) {
  int32_t b = lb_graph_add_blob(p->g, name, data, size);
  if (b >= p->binfo_cap) {
    int32_t cap = p->binfo_cap ? p->binfo_cap * 2 : 64;
    struct blob_info *t = realloc(p->binfo, sizeof *t * (size_t)cap);
    if (!t) abort();
    p->binfo = t;
    p->binfo_cap = cap;
  }
  memset(&p->binfo[b], 0, sizeof p->binfo[b]);
  return b;
}

/* A type as printed ("f32[1,4]"), in the graph arena, for messages. */
static const char *type_str(struct parser *p, const struct lb_type *t) {
  p->tmp.len = 0;
  sb_printf(&p->tmp, "%s[", lb_dtype_traits[t->dtype].name);
  for (int32_t i = 0; i < t->shape.rank; i++)
    sb_printf(&p->tmp, "%s%" PRId64, i ? "," : "", t->shape.dims[i]);
  sb_putc(&p->tmp, ']');
  return lb_arena_strdup(&p->g->arena, p->tmp.s);
}

/* blobref = 'blob<' string '>'
 * A reference to a blob of the trailer, of type t. Blobs are created at
 * their first reference and filled in by the trailer. */
static int32_t parse_blob_ref(struct parser *p, const struct lb_type *t) {
  skip(p);
  size_t at = p->pos;
  expect(p, "blob<");
  const char *name = parse_string(p);
  expect(p, ">");
  size_t size = (size_t)lb_type_nbytes(t);
  int32_t b = bmap_find(p, name);
  if (b < 0) {
    b = add_blob(p, name, NULL, size);
    p->binfo[b].ref_pos = at;
    bmap_insert(p, b);
  } else if (p->g->blobs[b].size != size) {
    const char *ts = type_str(p, t);
    invalid_at(p, at, "blob \"%s\" holds %zu bytes but is used here as %s (%zu bytes)",
               p->g->blobs[b].name, p->g->blobs[b].size, ts, size);
  }
  return b;
}

/* dense = 'dense<[' (elem (',' elem)*)? ']>'
 * elem  = float (f32, f64) | '0x' hex (f16, bf16 bits) | int | 'true' | 'false' */
static void *parse_dense(struct parser *p, const struct lb_type *t, size_t *size_out) {
  skip(p);
  size_t at = p->pos;
  expect(p, "dense<");
  expect(p, "[");
  int64_t numel = lb_shape_numel(&t->shape);
  int esize = lb_dtype_traits[t->dtype].size;
  struct vec *b = &p->bytes;
  b->len = 0;
  int64_t count = 0;
  if (!consume(p, "]")) {
    do {
      skip(p);
      size_t epos = p->pos;
      if (count == numel)
        invalid_at(p, epos, "too many elements: %s has %" PRId64, type_str(p, t), numel);
      unsigned char e[8] = {0};
      switch (t->dtype) {
      case LB_DTYPE_F32: {
        float f = parse_f32(p);
        memcpy(e, &f, 4);
        break;
      }
      case LB_DTYPE_F64: {
        double f = parse_double(p, NULL);
        memcpy(e, &f, 8);
        break;
      }
      case LB_DTYPE_F16:
      case LB_DTYPE_BF16: {
        uint16_t h = (uint16_t)parse_hex(p, 4);
        memcpy(e, &h, 2);
        break;
      }
      case LB_DTYPE_BOOL:
        if (consume(p, "true"))
          e[0] = 1;
        else if (!consume(p, "false"))
          error_at(p, epos, "expected true or false, got %s", got(p));
        break;
      case LB_DTYPE_U64: {
        uint64_t v = parse_u64(p);
        memcpy(e, &v, 8);
        break;
      }
      default: {
        int64_t v = parse_int(p);
        bool is_signed = lb_dtype_traits[t->dtype].is_signed;
        int bits = esize * 8;
        int64_t lo = is_signed ? (bits == 64 ? INT64_MIN : -((int64_t)1 << (bits - 1))) : 0;
        int64_t hi = is_signed ? (bits == 64 ? INT64_MAX : ((int64_t)1 << (bits - 1)) - 1)
                               : ((int64_t)1 << bits) - 1;
        if (v < lo || v > hi)
          invalid_at(p, epos, "%" PRId64 " is out of range for %s", v,
                     lb_dtype_traits[t->dtype].name);
        memcpy(e, &v, (size_t)esize); /* little-endian host: the low bytes */
        break;
      }
      }
      for (int k = 0; k < esize; k++) *(unsigned char *)vec_push(b) = e[k];
      count++;
    } while (consume(p, ","));
    expect(p, "]");
  }
  expect(p, ">");
  if (count != numel)
    invalid_at(p, at, "dense has %" PRId64 " elements but %s needs %" PRId64, count,
               type_str(p, t), numel);
  size_t size = (size_t)count * (size_t)esize;
  void *data = lb_blob_alloc(size);
  if (size) memcpy(data, b->data, size);
  *size_out = size;
  return data;
}

/* ---- attributes ------------------------------------------------------------------ */
/* attrval = int | float | string | '[' (num (',' num)*) ']' | '[' (string (',' string)*) ']'
 *         | 'ints[]' | 'floats[]' | 'strings[]' | 'tensor<' type blobref '>'
 * A list of numbers is floats if any element is float-shaped, else ints. */
static void parse_attr_value(struct parser *p, struct lb_attr *a) {
  skip(p);
  size_t at = p->pos;
  struct lb_arena *arena = &p->g->arena;
  int c = peekc(p);
  if (c == '"') {
    a->kind = LB_ATTR_STRING;
    a->s = parse_string(p);
  } else if (consume(p, "ints[]")) {
    a->kind = LB_ATTR_INTS;
    a->ints = lb_arena_alloc(arena, sizeof *a->ints);
  } else if (consume(p, "floats[]")) {
    a->kind = LB_ATTR_FLOATS;
    a->floats = lb_arena_alloc(arena, sizeof *a->floats);
  } else if (consume(p, "strings[]")) {
    a->kind = LB_ATTR_STRINGS;
    a->strings = lb_arena_alloc(arena, sizeof *a->strings);
  } else if (consume(p, "tensor<")) {
    a->kind = LB_ATTR_TENSOR;
    a->ttype = parse_type(p);
    a->blob = parse_blob_ref(p, &a->ttype);
    expect(p, ">");
  } else if (c == '[') {
    p->pos++;
    if (consume(p, "]"))
      error_at(p, at, "an empty list needs its kind: write ints[], floats[] or strings[]");
    skip(p);
    if (peekc(p) == '"') {
      struct vec *s = &p->strs;
      s->len = 0;
      do *(const char **)vec_push(s) = parse_string(p);
      while (consume(p, ","));
      a->kind = LB_ATTR_STRINGS;
      a->n = (int64_t)s->len;
      a->strings = lb_arena_alloc(arena, sizeof *a->strings * s->len);
      memcpy(a->strings, s->data, sizeof *a->strings * s->len);
    } else {
      struct vec *nums = &p->nums;
      nums->len = 0;
      bool any_float = false;
      do {
        skip(p);
        size_t npos = p->pos;
        bool shaped;
        double f = parse_double(p, &shaped);
        struct num *n = vec_push(nums);
        n->is_float = shaped;
        n->f = f;
        if (!shaped) {
          p->pos = npos;
          n->i = parse_int(p);
        }
        any_float |= shaped;
      } while (consume(p, ","));
      struct num *ns = nums->data;
      a->n = (int64_t)nums->len;
      if (any_float) {
        a->kind = LB_ATTR_FLOATS;
        a->floats = lb_arena_alloc(arena, sizeof *a->floats * nums->len);
        for (size_t i = 0; i < nums->len; i++)
          a->floats[i] = ns[i].is_float ? ns[i].f : (double)ns[i].i;
      } else {
        a->kind = LB_ATTR_INTS;
        a->ints = lb_arena_alloc(arena, sizeof *a->ints * nums->len);
        for (size_t i = 0; i < nums->len; i++) a->ints[i] = ns[i].i;
      }
    }
    expect(p, "]");
  } else if (c == '-' || (c >= '0' && c <= '9') || c == 'i' || c == 'n') {
    bool shaped;
    double f = parse_double(p, &shaped);
    if (shaped) {
      a->kind = LB_ATTR_FLOAT;
      a->f = f;
    } else {
      p->pos = at;
      a->kind = LB_ATTR_INT;
      a->i = parse_int(p);
    }
  } else {
    error_at(p, at, "expected an attribute value, got %s", got(p));
  }
}

static int cmp_pattr(const void *a, const void *b) {
  const struct pattr *x = a, *y = b;
  int c = strcmp(x->a.name, y->a.name);
  return c ? c : (x->pos < y->pos ? -1 : 1);
}

/* attrs = '{' (name '=' attrval (',' name '=' attrval)*)? '}'
 * Leaves the attributes, sorted by name, in p->attrs. */
static void parse_attrs(struct parser *p) {
  struct vec *v = &p->attrs;
  v->len = 0;
  if (!consume(p, "{")) return;
  if (!consume(p, "}")) {
    do {
      skip(p);
      struct pattr *pa = vec_push(v);
      pa->pos = p->pos;
      pa->a.blob = -1;
      pa->a.name = parse_name(p, "an attribute name");
      expect(p, "=");
      parse_attr_value(p, &((struct pattr *)v->data)[v->len - 1].a);
    } while (consume(p, ","));
    expect(p, "}");
  }
  struct pattr *as = v->data;
  if (v->len > 1) qsort(as, v->len, sizeof *as, cmp_pattr);
  for (size_t i = 1; i < v->len; i++)
    if (strcmp(as[i].a.name, as[i - 1].a.name) == 0)
      invalid_at(p, as[i].pos, "duplicate attribute '%s'", as[i].a.name);
}

static void set_attrs(struct parser *p, struct lb_node *n) {
  struct vec *v = &p->attrs;
  if (!v->len) return;
  n->n_attrs = (int32_t)v->len;
  n->attrs = lb_arena_alloc(&p->g->arena, sizeof *n->attrs * v->len);
  for (size_t i = 0; i < v->len; i++) n->attrs[i] = ((struct pattr *)v->data)[i].a;
}

/* ---- values, statements ------------------------------------------------------------ */
/* value = '%' name; must not be defined yet. Returns the name. */
static const char *parse_new_value_name(struct parser *p, size_t *pos) {
  skip(p);
  *pos = p->pos;
  expect(p, "%");
  const char *name = parse_name(p, "a value name");
  if (!*name) invalid_at(p, *pos, "empty value name");
  if (lb_graph_find_value(p->g, name))
    invalid_at(p, *pos, "redefinition of %s", shown(p, "%", name));
  return name;
}

/* operand = '%' name | '_' (an omitted optional input); NULL for '_'. */
static struct lb_value *parse_use(struct parser *p, bool allow_omitted) {
  skip(p);
  size_t at = p->pos;
  if (allow_omitted && peekc(p) == '_' && !(p->pos + 1 < p->len && is_bare_char((unsigned char)p->src[p->pos + 1]))) {
    p->pos++;
    return NULL;
  }
  if (peekc(p) != '%') error_at(p, at, "expected a value (%%name%s), got %s", allow_omitted ? " or _" : "", got(p));
  p->pos++;
  const char *name = parse_name(p, "a value name");
  struct lb_value *v = lb_graph_find_value(p->g, name);
  if (!v) invalid_at(p, at, "use of undefined value %s", shown(p, "%", name));
  return v;
}

/* what is "input" or "output"; mx < 0 means no upper bound. */
static void check_count(struct parser *p, size_t at, enum lb_op op, const char *what, int64_t n,
                        int mn, int mx) {
  if (n >= mn && (mx < 0 || n <= mx)) return;
  const char *name = lb_op_info[op].ir_name;
  int shown_max = mx < 0 || mx == mn ? mn : mx;
  const char *plural = shown_max == 1 ? "" : "s";
  if (mx < 0)
    invalid_at(p, at, "'%s' takes at least %d %s%s, got %" PRId64, name, mn, what, plural, n);
  if (mn == mx) invalid_at(p, at, "'%s' takes %d %s%s, got %" PRId64, name, mn, what, plural, n);
  invalid_at(p, at, "'%s' takes %d to %d %s%s, got %" PRId64, name, mn, mx, what, plural, n);
}

/* loc = 'loc(' string ')' */
static const char *parse_loc(struct parser *p) {
  if (!consume(p, "loc(")) return "";
  const char *s = parse_string(p);
  expect(p, ")");
  return s;
}

static struct lb_node *make_node(struct parser *p, enum lb_op op, const char *loc) {
  struct out_def *outs = p->outs.data;
  const char **names = lb_arena_alloc(&p->g->arena, sizeof *names * p->outs.len);
  for (size_t i = 0; i < p->outs.len; i++) names[i] = outs[i].name;
  struct lb_node *n = lb_graph_add_node(p->g, op, loc, p->inputs.data, (int32_t)p->inputs.len,
                                        names, (int32_t)p->outs.len);
  set_attrs(p, n);
  return n;
}

/* const = 'const' attrs? type (dense | blobref) qparams? ('mem=' int)? loc? */
static void parse_const(struct parser *p, size_t op_pos) {
  check_count(p, op_pos, LB_OP_CONST, "output", (int64_t)p->outs.len,
              lb_op_info[LB_OP_CONST].min_outputs, lb_op_info[LB_OP_CONST].max_outputs);
  parse_attrs(p);
  struct lb_type t = parse_type(p);
  skip(p);
  int32_t blob;
  if (p->len - p->pos >= 6 && memcmp(p->src + p->pos, "dense<", 6) == 0) {
    size_t size;
    void *data = parse_dense(p, &t, &size);
    blob = add_blob(p, ((struct out_def *)p->outs.data)[0].name, data, size);
    p->binfo[blob].defined = p->binfo[blob].dense = true;
  } else if (p->len - p->pos >= 5 && memcmp(p->src + p->pos, "blob<", 5) == 0) {
    blob = parse_blob_ref(p, &t);
  } else {
    error_at(p, p->pos, "expected dense<[...]> or blob<\"name\"> after the type, got %s", got(p));
  }
  struct vtype vt = {.type = t, .mem = -1};
  if (consume(p, "q<")) vt.q = parse_qparams(p);
  if (consume(p, "mem=")) {
    skip(p);
    size_t at = p->pos;
    vt.mem = parse_int(p);
    if (vt.mem < 0) invalid_at(p, at, "mem offset must be >= 0");
  }
  const char *loc = parse_loc(p);
  p->inputs.len = 0;
  struct lb_node *n = make_node(p, LB_OP_CONST, loc);
  n->blob = blob;
  apply_vtype(n->outputs[0], &vt);
}

/* node = op '(' (operand (',' operand)*)? ')' attrs? ':' vtype (',' vtype)* loc? */
static void parse_op_node(struct parser *p, enum lb_op op, size_t op_pos) {
  const struct lb_op_info *info = &lb_op_info[op];
  check_count(p, op_pos, op, "output", (int64_t)p->outs.len, info->min_outputs, info->max_outputs);
  expect(p, "(");
  struct vec *in = &p->inputs;
  in->len = 0;
  if (!consume(p, ")")) {
    do *(struct lb_value **)vec_push(in) = parse_use(p, true);
    while (consume(p, ","));
    expect(p, ")");
  }
  check_count(p, op_pos, op, "input", (int64_t)in->len, info->min_inputs, info->max_inputs);
  parse_attrs(p);
  expect(p, ":");
  struct vec *ty = &p->types;
  ty->len = 0;
  skip(p);
  size_t types_pos = p->pos;
  do *(struct vtype *)vec_push(ty) = parse_vtype(p);
  while (consume(p, ","));
  if (ty->len != p->outs.len)
    invalid_at(p, types_pos, "%zu output%s but %zu type%s", p->outs.len,
               p->outs.len == 1 ? "" : "s", ty->len, ty->len == 1 ? "" : "s");
  const char *loc = parse_loc(p);
  struct lb_node *n = make_node(p, op, loc);
  for (int32_t i = 0; i < n->n_outputs; i++) apply_vtype(n->outputs[i], &((struct vtype *)ty->data)[i]);
}

/* stmt = value (',' value)* '=' (const | node) */
static void parse_stmt(struct parser *p) {
  struct vec *outs = &p->outs;
  outs->len = 0;
  do {
    size_t pos;
    const char *name = parse_new_value_name(p, &pos);
    for (size_t i = 0; i < outs->len; i++)
      if (strcmp(((struct out_def *)outs->data)[i].name, name) == 0)
        invalid_at(p, pos, "redefinition of %s", shown(p, "%", name));
    struct out_def *o = vec_push(outs);
    o->name = name;
    o->pos = pos;
  } while (consume(p, ","));
  expect(p, "=");
  skip(p);
  size_t op_pos = p->pos, n = bare_len(p);
  if (n == 0) error_at(p, op_pos, "expected an op name, got %s", got(p));
  enum lb_op op = lookup_op(p->src + op_pos, n);
  if (op == LB_OP_COUNT)
    invalid_at(p, op_pos, "unknown op '%.*s'", (int)(n > 64 ? 64 : n), p->src + op_pos);
  p->pos += n;
  if (op == LB_OP_CONST)
    parse_const(p, op_pos);
  else
    parse_op_node(p, op, op_pos);
}

/* return = 'return' (value (',' value)*)?
 * The values must match the types the header declares. */
static void parse_return(struct parser *p) {
  skip(p);
  struct lb_type *want = p->results.data;
  size_t n = 0;
  if (peekc(p) == '%') {
    do {
      skip(p);
      size_t at = p->pos;
      struct lb_value *v = parse_use(p, false);
      if (n >= p->results.len)
        invalid_at(p, at, "the header declares %zu result%s", p->results.len,
                   p->results.len == 1 ? "" : "s");
      if (v->type.dtype != want[n].dtype || !lb_shape_equal(&v->type.shape, &want[n].shape))
        invalid_at(p, at, "return value %s is %s but the header declares %s",
                   shown(p, "%", v->name), type_str(p, &v->type), type_str(p, &want[n]));
      lb_graph_add_output(p->g, v);
      n++;
    } while (consume(p, ","));
  }
  if (n != p->results.len)
    invalid_at(p, p->pos, "return has %zu value%s but the header declares %zu", n,
               n == 1 ? "" : "s", p->results.len);
}

/* param = value ':' vtype */
static void parse_param(struct parser *p) {
  size_t pos;
  const char *name = parse_new_value_name(p, &pos);
  expect(p, ":");
  struct vtype vt = parse_vtype(p);
  struct lb_value *v = lb_value_new(p->g, name, vt.type);
  apply_vtype(v, &vt);
  lb_graph_add_input(p->g, v);
}

/* graph   = 'graph' '@' name '(' (param (',' param)*)? ')' '->' results
 *           ('opset' int)? ('activations' int)? '{' stmt* return '}'
 * results = '(' (type (',' type)*)? ')' | type */
static void parse_graph(struct parser *p) {
  expect(p, "graph");
  expect(p, "@");
  const char *name = parse_name(p, "a graph name");
  p->g->name = name;
  expect(p, "(");
  if (!consume(p, ")")) {
    do parse_param(p);
    while (consume(p, ","));
    expect(p, ")");
  }
  expect(p, "->");
  struct vec *r = &p->results;
  if (consume(p, "(")) {
    if (!consume(p, ")")) {
      do *(struct lb_type *)vec_push(r) = parse_type(p);
      while (consume(p, ","));
      expect(p, ")");
    }
  } else {
    *(struct lb_type *)vec_push(r) = parse_type(p);
  }
  if (consume(p, "opset")) {
    skip(p);
    size_t at = p->pos;
    p->g->opset = parse_int(p);
    if (p->g->opset < 0) invalid_at(p, at, "opset must be >= 0");
  }
  if (consume(p, "activations")) {
    skip(p);
    size_t at = p->pos;
    p->g->activations_size = parse_int(p);
    if (p->g->activations_size < 0) invalid_at(p, at, "activations must be >= 0");
  }
  expect(p, "{");
  for (;;) {
    if (consume(p, "return")) break;
    skip(p);
    if (peekc(p) != '%') error_at(p, p->pos, "expected a statement or 'return', got %s", got(p));
    parse_stmt(p);
  }
  parse_return(p);
  expect(p, "}");
}

/* base64 = 'base64"' [A-Za-z0-9+/]* '='{0,2} '"'; decodes to exactly `size` bytes. */
static void *parse_base64(struct parser *p, size_t size, const struct lb_type *t) {
  static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  signed char dec[256];
  memset(dec, -1, sizeof dec);
  for (int i = 0; i < 64; i++) dec[(unsigned char)tab[i]] = (signed char)i;
  size_t at = p->pos;
  expect(p, "base64\"");
  size_t s = p->pos, e = s;
  while (e < p->len && dec[(unsigned char)p->src[e]] >= 0) e++;
  size_t pads = 0;
  while (e + pads < p->len && p->src[e + pads] == '=' && pads < 2) pads++;
  size_t stop = e + pads;
  if (stop >= p->len || p->src[stop] != '"')
    error_at(p, stop, stop >= p->len ? "unterminated base64 string" : "invalid character in base64 data");
  size_t n = stop - s;
  if (n % 4) error_at(p, at, "base64 length %zu is not a multiple of 4", n);
  size_t bytes = n / 4 * 3 - pads;
  if (bytes != size)
    invalid_at(p, at, "base64 data holds %zu bytes but %s needs %zu", bytes, type_str(p, t), size);
  unsigned char *data = lb_blob_alloc(size), *w = data;
  const unsigned char *src = (const unsigned char *)p->src;
  size_t i = s;
  for (; i + 4 <= e; i += 4) {
    uint32_t v = (uint32_t)dec[src[i]] << 18 | (uint32_t)dec[src[i + 1]] << 12 |
                 (uint32_t)dec[src[i + 2]] << 6 | (uint32_t)dec[src[i + 3]];
    *w++ = (unsigned char)(v >> 16);
    *w++ = (unsigned char)(v >> 8);
    *w++ = (unsigned char)v;
  }
  if (pads) {
    uint32_t v = (uint32_t)dec[src[i]] << 18 | (uint32_t)dec[src[i + 1]] << 12;
    if (pads == 1) v |= (uint32_t)dec[src[i + 2]] << 6;
    *w++ = (unsigned char)(v >> 16);
    if (pads == 1) *w++ = (unsigned char)(v >> 8);
  }
  p->pos = stop + 1;
  return data;
}

/* blobs = 'blobs' '{' entry* '}'
 * entry = string ':' type ('fnv1a=' hex)? (base64 | 'elided') */
static void parse_blobs(struct parser *p) {
  expect(p, "{");
  while (!consume(p, "}")) {
    skip(p);
    size_t at = p->pos;
    const char *name = parse_string(p);
    expect(p, ":");
    struct lb_type t = parse_type(p);
    size_t size = (size_t)lb_type_nbytes(&t);
    bool has_hash = consume(p, "fnv1a=");
    uint64_t hash = has_hash ? parse_hex(p, 16) : 0;
    int32_t b = bmap_find(p, name);
    if (b >= 0 && p->binfo[b].defined) invalid_at(p, at, "duplicate blob \"%s\"", p->g->blobs[b].name);
    if (b >= 0 && p->g->blobs[b].size != size)
      invalid_at(p, at, "blob \"%s\" is declared as %s (%zu bytes) but used as %zu bytes",
                 p->g->blobs[b].name, type_str(p, &t), size, p->g->blobs[b].size);
    if (b < 0) { /* not referenced: kept, so that nothing is silently lost */
      b = add_blob(p, name, NULL, size);
      p->binfo[b].ref_pos = at;
      bmap_insert(p, b);
    }
    p->binfo[b].defined = true;
    struct lb_blob *blob = &p->g->blobs[b];
    skip(p);
    size_t data_pos = p->pos;
    if (consume(p, "elided")) {
      blob->hash = hash;
    } else {
      blob->data = parse_base64(p, size, &t);
      blob->hash = lb_hash_bytes(blob->data, size);
      if (has_hash && hash != blob->hash)
        invalid_at(p, data_pos,
                   "blob \"%s\": data does not match fnv1a=0x%016" PRIx64 " (it hashes to 0x%016" PRIx64 ")",
                   blob->name, hash, blob->hash);
    }
  }
}

/* file = graph ('blobs' blobs)? EOF */
static void parse_file(struct parser *p) {
  parse_graph(p);
  if (consume(p, "blobs")) parse_blobs(p);
  skip(p);
  if (p->pos < p->len) error_at(p, p->pos, "expected end of file, got %s", got(p));
  for (int32_t b = 0; b < p->g->n_blobs; b++)
    if (!p->binfo[b].defined)
      invalid_at(p, p->binfo[b].ref_pos, "unknown blob \"%s\" (not in the blobs trailer)",
                 p->g->blobs[b].name);
  /* Blobs made from dense<...> are named after their value; such a name can
   * clash with a trailer blob, which would make a later dump ambiguous. */
  for (int32_t b = 0; b < p->g->n_blobs; b++) {
    if (!p->binfo[b].dense || bmap_find(p, p->g->blobs[b].name) < 0) continue;
    const char *base = p->g->blobs[b].name;
    for (int64_t k = 1;; k++) {
      p->tmp.len = 0;
      sb_printf(&p->tmp, "%s.%" PRId64, base, k);
      if (bmap_find(p, p->tmp.s) < 0 && !lb_graph_find_value(p->g, p->tmp.s)) break;
    }
    p->g->blobs[b].name = lb_arena_strdup(&p->g->arena, p->tmp.s);
  }
}

enum lb_status lb_graph_parse(const char *text, size_t len, const char *filename,
                              struct lb_graph **out, struct lb_diag *d) {
  *out = NULL;
  struct parser *p = calloc(1, sizeof *p);
  if (!p) abort();
  char *src = malloc(len + 1);
  if (!src) abort();
  if (len) memcpy(src, text, len);
  src[len] = 0;
  p->src = src;
  p->len = len;
  p->file = filename ? filename : d->file ? d->file : "<input>";
  p->d = d;
  p->g = lb_graph_new("");
  p->inputs.elem = sizeof(struct lb_value *);
  p->outs.elem = sizeof(struct out_def);
  p->types.elem = sizeof(struct vtype);
  p->attrs.elem = sizeof(struct pattr);
  p->nums.elem = sizeof(struct num);
  p->strs.elem = sizeof(const char *);
  p->bytes.elem = 1;
  p->results.elem = sizeof(struct lb_type);
  enum lb_status st = LB_OK;
  if (setjmp(p->fail) == 0) {
    parse_file(p);
    *out = p->g;
  } else {
    st = p->status;
    lb_graph_free(p->g);
  }
  struct vec *vecs[] = {&p->inputs, &p->outs, &p->types, &p->attrs,
                        &p->nums,   &p->strs, &p->bytes, &p->results};
  for (size_t i = 0; i < sizeof vecs / sizeof *vecs; i++) free(vecs[i]->data);
  free(p->tmp.s);
  free(p->msg.s);
  free(p->bmap);
  free(p->binfo);
  free(src);
  free(p);
  return st;
}

enum lb_status lb_graph_parse_file(const char *path, struct lb_graph **out, struct lb_diag *d) {
  *out = NULL;
  /* O_NONBLOCK so that a FIFO or device does not block; only regular files are read */
  int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return lb_diag_error(d, LB_ERR_IO, NULL, "cannot open %s: %s", path, strerror(errno));
  struct stat sb;
  if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
    close(fd);
    return lb_diag_error(d, LB_ERR_IO, NULL, "%s is not a regular file", path);
  }
  FILE *f = fdopen(fd, "rb");
  if (!f) {
    close(fd);
    return lb_diag_error(d, LB_ERR_IO, NULL, "cannot open %s: %s", path, strerror(errno));
  }
  struct sbuf b = {0};
  char chunk[1 << 16];
  size_t n;
  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) sb_putn(&b, chunk, n);
  bool bad = ferror(f);
  fclose(f);
  if (bad) {
    free(b.s);
    return lb_diag_error(d, LB_ERR_IO, NULL, "cannot read %s", path);
  }
  enum lb_status st = lb_graph_parse(b.s ? b.s : "", b.len, path, out, d);
  free(b.s);
  return st;
}
