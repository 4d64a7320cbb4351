/* diag.c: error messages that name the file, node and op. */
#include "ir/ir.h"

#include <stdlib.h>
#include <string.h>

void lb_assert_fail(const char *expr, const char *file, int line) {
  fprintf(stderr, "lowbit: internal error: assertion '%s' failed at %s:%d\n"
                  "this is a bug in lowbit; please report it with the model that triggered it\n",
          expr, file, line);
  abort();
}

static const char *const status_names[LB_STATUS_COUNT] = {
    [LB_OK] = "ok",
    [LB_ERR_IO] = "io",
    [LB_ERR_PARSE] = "parse",
    [LB_ERR_UNSUPPORTED] = "unsupported",
    [LB_ERR_INVALID] = "invalid",
    [LB_ERR_LIMIT] = "limit",
    [LB_ERR_BACKEND] = "backend",
    [LB_ERR_USAGE] = "usage",
};

const char *lb_status_name(enum lb_status st) {
  return (unsigned)st < LB_STATUS_COUNT ? status_names[st] : "?";
}

void lb_diag_init(struct lb_diag *d, const char *file) {
  memset(d, 0, sizeof *d);
  d->file = file;
}

void lb_diag_free(struct lb_diag *d) {
  free(d->text);
  d->text = NULL;
  d->len = d->cap = 0;
}

static void diag_append(struct lb_diag *d, const char *s, size_t n) {
  if (d->len + n + 1 > d->cap) {
    size_t cap = d->cap ? d->cap * 2 : 256;
    while (cap < d->len + n + 1) cap *= 2;
    char *t = realloc(d->text, cap);
    if (!t) abort();
    d->text = t;
    d->cap = cap;
  }
  memcpy(d->text + d->len, s, n);
  d->len += n;
  d->text[d->len] = 0;
}

void lb_diag_append_error(struct lb_diag *d, enum lb_status st, const char *text, size_t n) {
  if (d->status == LB_OK) d->status = st;
  d->count++;
  diag_append(d, text, n);
}

/* Appends s with control characters (names from hostile models may hold
 * newlines or terminal escape sequences) written as \xNN. */
static void diag_append_escaped(struct lb_diag *d, const char *s, size_t n) {
  size_t start = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c >= 0x20 && c != 0x7f) continue;
    diag_append(d, s + start, i - start);
    char esc[5];
    snprintf(esc, sizeof esc, "\\x%02x", c);
    diag_append(d, esc, 4);
    start = i + 1;
  }
  diag_append(d, s + start, n - start);
}

static void diag_vappendf(struct lb_diag *d, const char *fmt, va_list ap) {
  char buf[1024];
  va_list ap2;
  va_copy(ap2, ap);
  int n = vsnprintf(buf, sizeof buf, fmt, ap2);
  va_end(ap2);
  if (n < 0) return;
  if ((size_t)n < sizeof buf) {
    diag_append_escaped(d, buf, (size_t)n);
    return;
  }
  char *big = malloc((size_t)n + 1);
  if (!big) abort();
  vsnprintf(big, (size_t)n + 1, fmt, ap);
  diag_append_escaped(d, big, (size_t)n);
  free(big);
}

static void diag_appendf(struct lb_diag *d, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  diag_vappendf(d, fmt, ap);
  va_end(ap);
}

enum lb_status lb_diag_errorv(struct lb_diag *d, enum lb_status st, const struct lb_node *node,
                              const char *fmt, va_list ap) {
  if (d->status == LB_OK) d->status = st;
  d->count++;
  if (d->file) diag_appendf(d, "%s: ", d->file);
  if (node) {
    const struct lb_op_info *info = &lb_op_info[node->op];
    diag_appendf(d, "node \"%s\" (%s): ", node->name ? node->name : "",
                 info->onnx_name ? info->onnx_name : info->ir_name);
  }
  diag_append(d, "error: ", 7);
  diag_vappendf(d, fmt, ap);
  diag_append(d, "\n", 1);
  return st;
}

enum lb_status lb_diag_error(struct lb_diag *d, enum lb_status st, const struct lb_node *node,
                             const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  lb_diag_errorv(d, st, node, fmt, ap);
  va_end(ap);
  return st;
}

void lb_diag_note(struct lb_diag *d, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  if (d->file) diag_appendf(d, "%s: ", d->file);
  diag_append(d, "note: ", 6);
  diag_vappendf(d, fmt, ap);
  diag_append(d, "\n", 1);
  va_end(ap);
}
