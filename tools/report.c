/* report.c: the mixed-precision report as text and as one HTML page (see
 * tools/report.h).
 *
 * The HTML page holds everything it needs: the CSS, the report's numbers as a
 * JSON blob in <script type="application/json">, and a small vanilla-JS
 * renderer (tools/report_page.js, embedded at build time as page_script) that
 * draws the charts as SVG when the page opens. Nothing is fetched. Names
 * reach the page only through the JSON blob (with '<', '>' and '&' written as
 * \u escapes, so no name can close the script element) and are put into the
 * DOM as text, never as markup. The
 * renderer sets body[data-rendered] to "ok" when every chart is drawn, and an
 * error handler records any script error in the page (the headless-browser
 * test reads both).
 */
#include "tools/report.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- shared numbers ------------------------------------------------------------------ */

struct plan_totals {
  int64_t weights, bytes, float_bytes;
  double error; /* summed single-layer errors of the choices */
  bool planned; /* every layer has a choice */
};

static struct plan_totals plan_totals(const struct lb_report *r) {
  struct plan_totals t = {.planned = r->n_layers > 0};
  for (int32_t i = 0; i < r->n_layers; i++) {
    const struct lb_report_layer *L = &r->layers[i];
    t.weights += L->k * L->n;
    t.float_bytes += L->k * L->n * 4;
    if (L->choice < 0 || L->choice >= r->n_cands) {
      t.planned = false;
      continue;
    }
    t.bytes += L->bytes[L->choice];
    t.error += L->error[L->choice];
  }
  return t;
}

/* ---- text ------------------------------------------------------------------------------ */

enum { TEXT_WIDTH = 120, CELL = 9, NAME_MIN = 14, NAME_MAX = 40 };

/* s in exactly w columns: padded, or cut in the middle with ".." (the start
 * and the end of a layer name are what tell layers apart). Non-ASCII bytes
 * print as '?' (the text is plain ASCII). */
static void put_fit(FILE *f, const char *s, int w) {
  int n = (int)strlen(s), head = (w - 2) / 3;
  for (int i = 0; i < w; i++) {
    char ch;
    if (n <= w) ch = i < n ? s[i] : ' ';
    else if (i < head) ch = s[i];
    else if (i < head + 2) ch = '.';
    else ch = s[n - (w - i)]; /* the last w - head - 2 characters */
    fputc((unsigned char)ch < 0x20 || (unsigned char)ch >= 0x7f ? '?' : ch, f);
  }
}

/* The part of an exported value name that tells layers apart: without a
 * leading '/' and a trailing "_output_N" ("/blocks.0/qkv/Add_output_0" ->
 * "blocks.0/qkv/Add"), into buf. */
static const char *short_name(const char *s, char *buf, size_t len) {
  if (s[0] == '/' && s[1]) s++;
  snprintf(buf, len, "%s", s);
  char *o = strstr(buf, "_output_");
  if (o && o > buf && o[8] && strspn(o + 8, "0123456789") == strlen(o + 8)) *o = 0;
  return buf;
}

/* An error in CELL-1 columns: 3 significant digits, "n/a" for NaN. */
static void put_err(FILE *f, double e) {
  if (isnan(e)) fprintf(f, "%*s", CELL - 1, "n/a");
  else if (e == 0) fprintf(f, "%*s", CELL - 1, "0");
  else fprintf(f, "%*.2e", CELL - 1, e);
}

/* The candidates [c0, c1) of the layers table: one row per layer, the plan's
 * cell marked with '*'. */
static void text_table(FILE *f, const struct lb_report *r, int32_t c0, int32_t c1, int name_w, bool plan) {
  fprintf(f, "%4s %-*s %11s", "#", name_w, "layer", "KxN");
  for (int32_t c = c0; c < c1; c++) fprintf(f, " %*.*s ", CELL - 1, CELL - 1, r->cands[c]);
  if (plan) fprintf(f, "  %-8s %9s %8s", "plan", "bytes", "sqnr dB");
  fputc('\n', f);
  for (int32_t i = 0; i < r->n_layers; i++) {
    const struct lb_report_layer *L = &r->layers[i];
    char shape[32];
    snprintf(shape, sizeof shape, "%lldx%lld", (long long)L->k, (long long)L->n);
    char name[256];
    fprintf(f, "%4d ", (int)i + 1);
    put_fit(f, short_name(L->value, name, sizeof name), name_w);
    fprintf(f, " %11s", shape);
    for (int32_t c = c0; c < c1; c++) {
      fputc(' ', f);
      put_err(f, L->error[c]);
      if (plan && L->choice == c) fputc('*', f);
      else if (plan || c + 1 < c1) fputc(' ', f); /* no trailing blanks */
    }
    if (plan) {
      char sq[16] = "-";
      if (isinf(L->sqnr_db) && L->sqnr_db > 0) snprintf(sq, sizeof sq, "exact");
      else if (!isnan(L->sqnr_db)) snprintf(sq, sizeof sq, "%.1f", L->sqnr_db);
      bool ok = L->choice >= 0 && L->choice < r->n_cands;
      fprintf(f, " %c", L->fixed ? '!' : ' ');
      put_fit(f, ok ? r->cands[L->choice] : "-", 8);
      fprintf(f, " %9lld %8s", ok ? (long long)L->bytes[L->choice] : 0LL, sq);
    }
    fputc('\n', f);
  }
  /* every layer at one candidate: its bits per weight and summed error */
  fprintf(f, "%4s ", "");
  put_fit(f, "uniform: bits/weight", name_w + 12);
  for (int32_t c = c0; c < c1; c++) {
    if (r->uniform && isfinite(r->uniform[c].bits_per_weight) && r->uniform[c].bits_per_weight > 0)
      fprintf(f, " %*.3f", CELL - 1, r->uniform[c].bits_per_weight);
    else
      fprintf(f, " %*s", CELL - 1, "n/a");
    if (c + 1 < c1) fputc(' ', f);
  }
  fprintf(f, "\n%4s ", "");
  put_fit(f, "uniform: summed error", name_w + 12);
  for (int32_t c = c0; c < c1; c++) {
    fputc(' ', f);
    put_err(f, r->uniform ? r->uniform[c].error : NAN);
    if (c + 1 < c1) fputc(' ', f);
  }
  fputc('\n', f);
}

void lb_report_text(FILE *f, const struct lb_report *r) {
  bool plan = r->budget != NULL;
  struct plan_totals t = plan_totals(r);
  plan = plan && t.planned;
  fputs("Mixed precision: ", f);
  put_fit(f, r->model, (int)strlen(r->model) > TEXT_WIDTH - 17 ? TEXT_WIDTH - 17 : (int)strlen(r->model));
  fprintf(f, "\n%s of each layer quantized alone at the model outputs, %lld samples, %s weights\n",
          strcmp(r->metric, "kl") == 0 ? "KL(float || quantized)" : "MSE against float", (long long)r->samples,
          r->weight_algo);
  /* the widest name that keeps a row within TEXT_WIDTH; candidates beyond it wrap into another table */
  int fixed = 4 + 1 + 1 + 11 + (plan ? 2 + 8 + 1 + 9 + 1 + 8 : 0);
  int longest = NAME_MIN;
  for (int32_t i = 0; i < r->n_layers; i++) {
    char name[256];
    int n = (int)strlen(short_name(r->layers[i].value, name, sizeof name));
    if (n > longest) longest = n;
  }
  if (longest > NAME_MAX) longest = NAME_MAX;
  int per_table = (TEXT_WIDTH - fixed - NAME_MIN) / (CELL + 1);
  if (per_table < 1) per_table = 1;
  for (int32_t c0 = 0; c0 < r->n_cands; c0 += per_table) {
    int32_t c1 = c0 + per_table < r->n_cands ? c0 + per_table : r->n_cands;
    int name_w = TEXT_WIDTH - fixed - (c1 - c0) * (CELL + 1);
    if (name_w > longest) name_w = longest;
    fputc('\n', f);
    text_table(f, r, c0, c1, name_w, plan);
  }
  if (!plan) {
    fputs("\nNo plan: give a budget (--target-bpw, --max-size or --max-loss) to choose a precision per layer.\n", f);
    return;
  }
  fprintf(f, "\nPlan (%s; * = the plan's precision, ! = fixed by --keep-float or the plan file):\n  ", r->budget);
  for (int32_t c = 0, col = 2; c < r->n_cands; c++) {
    int32_t count = 0;
    for (int32_t i = 0; i < r->n_layers; i++) count += r->layers[i].choice == c;
    if (!count) continue;
    char item[64];
    int n = snprintf(item, sizeof item, "%d x %.24s", (int)count, r->cands[c]);
    if (col > 2 && col + 2 + n > TEXT_WIDTH - 1) {
      fputs(",\n  ", f);
      col = 2;
    } else if (col > 2) {
      fputs(", ", f);
      col += 2;
    }
    fputs(item, f);
    col += n;
  }
  fprintf(f, "\n  %.3f bits/weight, %lld bytes of weights (f32: %lld, %.1fx smaller)\n",
          t.weights ? (double)t.bytes * 8 / (double)t.weights : 0.0, (long long)t.bytes, (long long)t.float_bytes,
          t.bytes ? (double)t.float_bytes / (double)t.bytes : 0.0);
  fprintf(f, "  estimated error (summed single-layer %s): %.4g", r->metric, t.error);
  if (!isnan(r->model_error)) fprintf(f, "; measured on the chosen model: %.4g", r->model_error);
  fputc('\n', f);
}

/* ---- HTML ------------------------------------------------------------------------------- */

/* A JSON string whose text is also safe inside <script>: '<', '>' and '&' as
 * \u escapes; bytes that are not valid UTF-8 become U+FFFD. */
static void json_str(FILE *f, const char *s) {
  fputc('"', f);
  const unsigned char *p = (const unsigned char *)s;
  while (*p) {
    unsigned char ch = *p;
    if (ch == '"' || ch == '\\') {
      fprintf(f, "\\%c", ch);
      p++;
    } else if (ch < 0x20 || ch == '<' || ch == '>' || ch == '&' || ch == 0x7f) {
      fprintf(f, "\\u%04x", ch);
      p++;
    } else if (ch < 0x80) {
      fputc(ch, f);
      p++;
    } else {
      int len = ch >= 0xf0 && ch < 0xf5 ? 4 : ch >= 0xe0 ? 3 : ch >= 0xc2 && ch < 0xe0 ? 2 : 0;
      if (ch >= 0xf5) len = 0;
      bool ok = len > 0;
      for (int i = 1; ok && i < len; i++) ok = (p[i] & 0xc0) == 0x80;
      if (ok && len == 3 && ch == 0xe0) ok = p[1] >= 0xa0;                 /* overlong */
      if (ok && len == 3 && ch == 0xed) ok = p[1] < 0xa0;                  /* surrogates */
      if (ok && len == 4 && ch == 0xf0) ok = p[1] >= 0x90;                 /* overlong */
      if (ok && len == 4 && ch == 0xf4) ok = p[1] < 0x90;                  /* > U+10FFFF */
      if (!ok) {
        fputs("\\ufffd", f);
        p++;
        continue;
      }
      if (len == 3 && ch == 0xe2 && p[1] == 0x80 && (p[2] == 0xa8 || p[2] == 0xa9))
        fprintf(f, "\\u%04x", 0x2000 | (p[2] & 0x3f)); /* line separators: JSON yes, older JS no */
      else
        fwrite(p, 1, (size_t)len, f);
      p += len;
    }
  }
  fputc('"', f);
}

static void json_num(FILE *f, double x) {
  if (isfinite(x)) fprintf(f, "%.9g", x);
  else if (isinf(x)) fputs(x > 0 ? "\"inf\"" : "\"-inf\"", f);
  else fputs("null", f);
}

static void json_opt_str(FILE *f, const char *s) {
  if (s) json_str(f, s);
  else fputs("null", f);
}

static void write_data(FILE *f, const struct lb_report *r) {
  fputs("{\"model\":", f);
  json_str(f, r->model);
  fputs(",\"metric\":", f);
  json_str(f, r->metric);
  fputs(",\"weight_algo\":", f);
  json_str(f, r->weight_algo);
  fprintf(f, ",\"samples\":%lld,\"budget\":", (long long)r->samples);
  json_opt_str(f, r->budget);
  fputs(",\"budget_bpw\":", f);
  json_num(f, r->budget_bpw > 0 ? r->budget_bpw : NAN);
  fputs(",\"budget_loss\":", f);
  json_num(f, r->budget_loss > 0 ? r->budget_loss : NAN);
  fputs(",\"model_error\":", f);
  json_num(f, r->model_error);
  fputs(",\"seconds\":", f);
  json_num(f, r->seconds);
  fputs(",\n\"cands\":[", f);
  for (int32_t c = 0; c < r->n_cands; c++) {
    if (c) fputc(',', f);
    json_str(f, r->cands[c]);
  }
  fputs("],\n\"uniform\":[", f);
  for (int32_t c = 0; r->uniform && c < r->n_cands; c++) {
    fprintf(f, "%s[", c ? "," : "");
    json_num(f, r->uniform[c].bits_per_weight);
    fputc(',', f);
    json_num(f, r->uniform[c].error);
    fputc(']', f);
  }
  fputs("],\n\"curve\":[", f);
  for (int32_t i = 0; r->curve && i < r->n_curve; i++) {
    fprintf(f, "%s[", i ? "," : "");
    json_num(f, r->curve[i].bits_per_weight);
    fputc(',', f);
    json_num(f, r->curve[i].error);
    fputc(']', f);
  }
  fputs("],\n\"layers\":[", f);
  for (int32_t i = 0; i < r->n_layers; i++) {
    const struct lb_report_layer *L = &r->layers[i];
    fputs(i ? ",\n{\"value\":" : "\n{\"value\":", f);
    json_str(f, L->value);
    fputs(",\"node\":", f);
    json_str(f, L->node ? L->node : "");
    fprintf(f, ",\"k\":%lld,\"n\":%lld,\"error\":[", (long long)L->k, (long long)L->n);
    for (int32_t c = 0; c < r->n_cands; c++) {
      if (c) fputc(',', f);
      json_num(f, L->error[c]);
    }
    fputs("],\"bytes\":[", f);
    for (int32_t c = 0; c < r->n_cands; c++) fprintf(f, "%s%lld", c ? "," : "", (long long)L->bytes[c]);
    fprintf(f, "],\"choice\":%d,\"fixed\":%s,\"sqnr_db\":", (int)(r->budget ? L->choice : -1),
            L->fixed ? "true" : "false");
    json_num(f, L->sqnr_db);
    fputs(",\"max_abs\":", f);
    json_num(f, L->max_abs);
    fputc('}', f);
  }
  fputs("]}", f);
}

/* Text between tags: &, <, > and quotes escaped. */
static void html_text(FILE *f, const char *s) {
  for (; *s; s++) {
    switch (*s) {
    case '&': fputs("&amp;", f); break;
    case '<': fputs("&lt;", f); break;
    case '>': fputs("&gt;", f); break;
    case '"': fputs("&quot;", f); break;
    default: fputc(*s, f);
    }
  }
}

/* ---- the page (CSS and the renderer) ---- */
#include "report_page.inc" /* page_style, page_script: tools/report_page.{css,js}, embedded by CMake */

enum lb_status lb_report_html(const char *path, const struct lb_report *r, struct lb_diag *d) {
  char *tmp = NULL;
  FILE *f = lb_atomic_open(path, &tmp, d);
  if (!f) return d->status ? d->status : LB_ERR_IO;
  fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>lowbit analyze: ",
        f);
  html_text(f, r->model);
  fputs("</title>\n<style>\n", f);
  fputs(page_style, f);
  fputs("</style>\n</head>\n<body data-rendered=\"no\">\n<header>\n"
        "<h1>Mixed-precision report: <span class=\"model\">",
        f);
  html_text(f, r->model);
  fputs("</span></h1>\n<noscript><p>The charts need JavaScript; the numbers are in the JSON blob of this page's "
        "source.</p></noscript>\n</header>\n<main id=\"report\"></main>\n<pre id=\"errors\" hidden></pre>\n"
        "<script type=\"application/json\" id=\"report-data\">\n",
        f);
  write_data(f, r);
  fputs("\n</script>\n<script>\n", f);
  fputs(page_script, f);
  fputs("</script>\n</body>\n</html>\n", f);
  return lb_atomic_commit(f, tmp, path, d);
}
