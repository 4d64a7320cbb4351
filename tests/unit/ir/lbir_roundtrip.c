/* lbir-roundtrip: parses an IR text file, verifies it and prints it back.
 * Accepts (and ignores) lowbit-opt's `-p PASSES` so that it can stand in for
 * lowbit-opt in the lit runner's own tests. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/ir.h"

int main(int argc, char **argv) {
  const char *path = NULL;
  struct lb_print_options opt = lb_print_defaults;
  bool verify = true;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "-p") == 0 && i + 1 < argc)
      i++;
    else if (strcmp(argv[i], "--elide") == 0)
      opt.blobs = LB_PRINT_BLOBS_ELIDED;
    else if (strcmp(argv[i], "--inline") == 0 && i + 1 < argc)
      opt.inline_limit = atoll(argv[++i]);
    else if (strcmp(argv[i], "--no-verify") == 0)
      verify = false;
    else
      path = argv[i];
  }
  if (!path) {
    fputs("usage: lbir-roundtrip FILE [-p PASSES] [--elide] [--inline N] [--no-verify]\n", stderr);
    return 2;
  }
  struct lb_diag d;
  lb_diag_init(&d, path);
  struct lb_graph *g;
  enum lb_status st = lb_graph_parse_file(path, &g, &d);
  if (st == LB_OK && verify) st = lb_graph_verify(g, &d);
  if (st != LB_OK) {
    fputs(d.text ? d.text : "error\n", stderr);
    lb_diag_free(&d);
    lb_graph_free(g);
    return 1;
  }
  lb_graph_print(g, stdout, &opt);
  lb_graph_free(g);
  lb_diag_free(&d);
  return 0;
}
