/* fuzz_onnx_load: ONNX ModelProto bytes -> lb_onnx_load_buffer (frontend/).
 *
 * Each input is loaded twice: without options and with a few --dim bindings
 * (the symbolic dims the repo's models use), never with an external-data
 * directory (so no file is opened). A model that loads must pass the
 * verifier, print, and its printed text must parse back and print the same
 * (what `lowbit compile --emit ir` followed by `lowbit compile x.lbir` does). */
#include <string.h>

#include "frontend/onnx.h"
#include "ir/ir.h"
#include "tests/fuzz/fuzz_common.h"

static void check_loaded(struct lb_graph *g) {
  struct lb_diag d;
  lb_diag_init(&d, "fuzz.onnx");
  enum lb_status st = lb_graph_verify(g, &d);
  FUZZ_CHECK(st == LB_OK, "a loaded model fails the verifier:\n%s", d.text ? d.text : "");
  lb_diag_free(&d);

  struct lb_print_options elided = lb_print_defaults;
  elided.blobs = LB_PRINT_BLOBS_ELIDED;
  free(lb_graph_print_string(g, &elided));

  char *text = lb_graph_print_string(g, &lb_print_defaults);
  FUZZ_CHECK(text != NULL, "print failed");
  struct lb_graph *g2 = NULL;
  lb_diag_init(&d, "printed.lbir");
  st = lb_graph_parse(text, strlen(text), "printed.lbir", &g2, &d);
  FUZZ_CHECK(st == LB_OK, "the printed IR of a loaded model does not parse:\n%s\n--- text:\n%s",
             d.text ? d.text : "", text);
  lb_diag_free(&d);
  char *text2 = lb_graph_print_string(g2, &lb_print_defaults);
  FUZZ_CHECK(strcmp(text, text2) == 0, "print(parse(print(g))) != print(g)\n--- first:\n%s\n"
             "--- second:\n%s", text, text2);
  free(text2);
  free(text);
  lb_graph_free(g2);
}

static void load(const uint8_t *data, size_t size, const struct lb_onnx_options *opt) {
  struct lb_diag d;
  lb_diag_init(&d, "fuzz.onnx");
  struct lb_graph *g = NULL;
  enum lb_status st = lb_onnx_load_buffer(data, size, NULL, opt, &g, &d);
  if (st == LB_OK) {
    FUZZ_CHECK(g != NULL, "LB_OK without a graph");
    check_loaded(g);
    lb_graph_free(g);
  } else {
    FUZZ_CHECK(g == NULL, "error %s but a graph was returned", lb_status_name(st));
    FUZZ_CHECK(d.status != LB_OK && d.text != NULL, "error %s without a message",
               lb_status_name(st));
  }
  lb_diag_free(&d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  /* Keep declared tensors small enough for -rss_limit_mb: the default limit
   * (16 GiB) is the user's to raise; the fuzzer looks for bugs, not OOMs. */
  struct lb_onnx_options plain = {.max_tensor_bytes = 64 << 20};
  load(data, size, &plain);
  static const struct lb_dim_binding dims[] = {
      {"batch", 2}, {"seq", 3}, {"N", 1}, {"sequence_length", 4},
  };
  struct lb_onnx_options bound = plain;
  bound.dims = dims;
  bound.n_dims = (int32_t)(sizeof dims / sizeof dims[0]);
  load(data, size, &bound);
  return 0;
}
