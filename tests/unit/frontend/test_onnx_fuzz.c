/* Regression tests for bugs the libFuzzer target tests/fuzz/fuzz_onnx_load.c
 * found in the frontend. Each test names the input shape that triggered it;
 * most of them only fail under the sanitizers (build-asan). */
#include "fe_test.h"

/* An empty string attribute unpacks (protobuf-c) to data == NULL, len == 0;
 * copying it did memcpy(dst, NULL, 0), undefined behavior (UBSan: nonnull). */
static void test_empty_string_attr(void **state) {
  (void)state;
  struct mb *m = mb_new(17);
  mb_input(m, "x", T_F32, "1,1,4,4");
  Onnx__NodeProto *n = mb_node(m, "MaxPool", "pool", "x", "y");
  mb_attr_ints(m, n, "kernel_shape", 2, (const int64_t[]){2, 2});
  mb_attr_s(m, n, "auto_pad", "");
  mb_output(m, "y");
  load_fails(m, NULL, LB_ERR_INVALID, "unknown auto_pad \"\"");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_empty_string_attr),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
