/* fuzz_ir_parse: IR text -> lb_graph_parse (ir/parse.c), then the verifier
 * and the printer. Property: a graph that parses prints to text that parses
 * again and prints identically (print is a fixed point after one round). */
#include <string.h>

#include "ir/ir.h"
#include "tests/fuzz/fuzz_common.h"

static char *print_roundtrip(const struct lb_graph *g, const struct lb_print_options *opt) {
  char *text = lb_graph_print_string(g, opt);
  FUZZ_CHECK(text != NULL, "print failed");
  struct lb_diag d;
  lb_diag_init(&d, "printed.lbir");
  struct lb_graph *g2 = NULL;
  enum lb_status st = lb_graph_parse(text, strlen(text), "printed.lbir", &g2, &d);
  FUZZ_CHECK(st == LB_OK, "printed IR does not parse:\n%s\n--- text:\n%s", d.text ? d.text : "",
             text);
  lb_diag_free(&d);
  char *text2 = lb_graph_print_string(g2, opt);
  FUZZ_CHECK(strcmp(text, text2) == 0,
             "print(parse(print(g))) != print(g)\n--- first:\n%s\n--- second:\n%s", text, text2);
  free(text2);
  lb_graph_free(g2);
  return text;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct lb_diag d;
  lb_diag_init(&d, "fuzz.lbir");
  struct lb_graph *g = NULL;
  enum lb_status st = lb_graph_parse((const char *)data, size, "fuzz.lbir", &g, &d);
  if (st != LB_OK) {
    FUZZ_CHECK(d.status != LB_OK && d.text != NULL, "parse error %s without a message",
               lb_status_name(st));
    lb_diag_free(&d);
    lb_graph_free(g); /* NULL on error; freeing NULL must be fine */
    return 0;
  }
  FUZZ_CHECK(g != NULL, "LB_OK without a graph");
  struct lb_diag vd;
  lb_diag_init(&vd, "fuzz.lbir");
  lb_graph_verify(g, &vd);
  lb_diag_free(&vd);

  free(print_roundtrip(g, &lb_print_defaults));
  /* Elided blobs print as hash + size and parse back without data. */
  struct lb_print_options elided = lb_print_defaults;
  elided.blobs = LB_PRINT_BLOBS_ELIDED;
  free(print_roundtrip(g, &elided));

  lb_graph_free(g);
  lb_diag_free(&d);
  return 0;
}
