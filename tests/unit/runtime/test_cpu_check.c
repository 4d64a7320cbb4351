/* Tests of runtime/cpu_check.c: the feature-string parser and the CPU probe. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "runtime/lbrt.h"

/* A fake CPU: has avx, avx2, fma; lacks the avx512 family; knows nothing else. */
static int fake_has(const char *name, void *ud) {
  (*(int *)ud)++;
  static const char *const yes[] = {"avx", "avx2", "fma", "neon"};
  static const char *const no[] = {"avx512f", "avx512vnni", "avx512bw", "i8mm"};
  for (size_t i = 0; i < 4; i++)
    if (strcmp(name, yes[i]) == 0) return 1;
  for (size_t i = 0; i < 4; i++)
    if (strcmp(name, no[i]) == 0) return 0;
  return -1;
}

static int missing(const char *features, char *buf, size_t len) {
  int calls = 0;
  return lbrt_cpu_missing_features(features, fake_has, &calls, buf, len);
}

static void test_parser(void **state) {
  (void)state;
  char m[256];
  assert_int_equal(missing("+avx2,+fma", m, sizeof m), 0);
  assert_string_equal(m, "");
  assert_int_equal(missing("+avx2,+fma,+avx512f,+avx512vnni", m, sizeof m), 2);
  assert_string_equal(m, "avx512f, avx512vnni");
  /* "-feature" entries are ignored, even for features this CPU lacks. */
  assert_int_equal(missing("-avx512f,+avx2,-avx512bw", m, sizeof m), 0);
  /* Unknown names are not checked. */
  assert_int_equal(missing("+made-up,+cx8,+avx512f", m, sizeof m), 1);
  assert_string_equal(m, "avx512f");
  /* Bare names, spaces, empty entries, duplicates. */
  assert_int_equal(missing(" avx512f , ,+avx512bw,,+avx512f,avx512bw,+", m, sizeof m), 2);
  assert_string_equal(m, "avx512f, avx512bw");
  assert_int_equal(missing("", m, sizeof m), 0);
  assert_int_equal(missing(NULL, m, sizeof m), 0);
  assert_int_equal(missing(",,,", m, sizeof m), 0);
  /* Over-long names are skipped, not truncated into a different name. */
  assert_int_equal(missing("+avx512faaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                           m, sizeof m), 0);
  /* A small buffer is truncated with "..." but the count stays right. */
  char small[12];
  assert_int_equal(missing("+avx512f,+avx512vnni,+i8mm", small, sizeof small), 3);
  assert_true(strlen(small) < sizeof small);
  assert_non_null(strstr(small, "..."));
  assert_int_equal(missing("+avx512f", NULL, 0), 1);
}

static void test_this_cpu(void **state) {
  (void)state;
  assert_int_equal(lbrt_cpu_has_feature("not-a-feature"), -1);
  assert_int_equal(lbrt_cpu_has_feature(""), -1);
#if defined(__x86_64__)
  /* x86-64 guarantees SSE2; these names must be known. */
  assert_int_equal(lbrt_cpu_has_feature("sse2"), 1);
  static const char *const known[] = {"sse4.1", "sse4.2", "avx", "avx2", "fma", "f16c", "bmi",
                                      "bmi2", "avx512f", "avx512bw", "avx512dq", "avx512vl",
                                      "avx512vnni", "avxvnni", "avx512bf16"};
  for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
    assert_int_not_equal(lbrt_cpu_has_feature(known[i]), -1);
  /* A consistent CPU: avx512 implies avx2 implies avx. */
  if (lbrt_cpu_has_feature("avx512f") == 1) assert_int_equal(lbrt_cpu_has_feature("avx2"), 1);
  if (lbrt_cpu_has_feature("avx2") == 1) assert_int_equal(lbrt_cpu_has_feature("avx"), 1);
  assert_int_equal(lbrt_cpu_has_feature("neon"), -1);
#elif defined(__aarch64__)
  assert_int_equal(lbrt_cpu_has_feature("neon"), 1);
  assert_int_not_equal(lbrt_cpu_has_feature("dotprod"), -1);
  assert_int_equal(lbrt_cpu_has_feature("avx2"), -1);
#endif
}

static void test_model_check(void **state) {
  (void)state;
  struct lbrt_model_info info = {.abi_version = LBRT_ABI_VERSION, .cpu = "generic"};
  char msg[512];
  info.features = "";
  assert_int_equal(lbrt_cpu_check(&info, msg, sizeof msg), 0);
  info.features = NULL;
  assert_int_equal(lbrt_cpu_check(&info, msg, sizeof msg), 0);
#if defined(__x86_64__)
  info.features = "+sse2,+sse,-avx512f";
  assert_int_equal(lbrt_cpu_check(&info, msg, sizeof msg), 0);
  /* AMD-only sse4a and Intel-only avx512fp16: no CPU has both. */
  info.cpu = "znver4";
  info.features = "+sse4a,+avx512fp16";
  assert_int_equal(lbrt_cpu_check(&info, msg, sizeof msg), 1);
  assert_non_null(strstr(msg, "this executable was built for CPU 'znver4' and needs "));
  assert_non_null(strstr(msg, "which this CPU lacks; recompile with --cpu generic or a matching --cpu"));
#endif
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_parser),
      cmocka_unit_test(test_this_cpu),
      cmocka_unit_test(test_model_check),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
