/* Tests of runtime/tensor_npy.c: .npy decoding and encoding. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "runtime/lbrt.h"
#include "tests/unit/runtime/test_util.h"

/* Builds a .npy image: magic, version, header (dict + padding + '\n'), data. */
static void npy_build(struct buf *b, int major, const char *dict, const void *data, size_t n) {
  size_t pre = major == 1 ? 10 : 12, dl = strlen(dict);
  size_t total = (pre + dl + 1 + 63) / 64 * 64, hlen = total - pre;
  b->n = 0;
  b_bytes(b, "\x93NUMPY", 6);
  b->b[b->n++] = (uint8_t)major;
  b->b[b->n++] = 0;
  for (size_t i = 0; i < pre - 8; i++) b->b[b->n++] = (uint8_t)(hlen >> (8 * i));
  b_bytes(b, dict, dl);
  memset(b->b + b->n, ' ', hlen - dl - 1);
  b->n += hlen - dl - 1;
  b->b[b->n++] = '\n';
  if (n) b_bytes(b, data, n);
}

static void expect_fail(const struct buf *b, enum lbrt_status st, const char *needle) {
  struct lbrt_tensor t;
  char err[256] = "";
  enum lbrt_status got = lbrt_tensor_npy_decode(b->b, b->n, &t, err, sizeof err);
  if (got != st || !strstr(err, needle)) fail_msg("got status %d '%s', want %d '%s'", got, err, st, needle);
  assert_null(t.data);
}

static const int32_t npy_dtypes[] = {
    LBRT_DTYPE_F32, LBRT_DTYPE_F64, LBRT_DTYPE_I64, LBRT_DTYPE_I32, LBRT_DTYPE_I16, LBRT_DTYPE_I8,
    LBRT_DTYPE_U8,  LBRT_DTYPE_U16, LBRT_DTYPE_U32, LBRT_DTYPE_U64, LBRT_DTYPE_BOOL, LBRT_DTYPE_F16,
};

static void test_round_trip_all_dtypes(void **state) {
  (void)state;
  char err[256];
  for (size_t k = 0; k < sizeof npy_dtypes / sizeof npy_dtypes[0]; k++) {
    for (int rank = 0; rank <= 4; rank++) {
      struct lbrt_tensor t = {.dtype = npy_dtypes[k], .rank = rank};
      static const int64_t dims[] = {2, 3, 1, 4};
      memcpy(t.dims, dims, sizeof(int64_t) * (size_t)rank);
      lbrt_shape_count(rank, t.dims, lbrt_dtype_size(t.dtype), NULL, &t.nbytes);
      uint8_t data[256];
      for (int64_t i = 0; i < t.nbytes; i++)
        data[i] = t.dtype == LBRT_DTYPE_BOOL ? (uint8_t)(i & 1) : (uint8_t)(i * 29 + 3);
      t.data = data;
      struct buf b;
      size_t hlen;
      assert_int_equal(lbrt_tensor_npy_header(&t, b.b, sizeof b.b, &hlen, err, sizeof err), LBRT_OK);
      assert_int_equal(hlen % 64, 0); /* data 64-byte aligned, as numpy does */
      b.n = hlen;
      b_bytes(&b, data, (size_t)t.nbytes);
      struct lbrt_tensor u;
      assert_int_equal(lbrt_tensor_npy_decode(b.b, b.n, &u, err, sizeof err), LBRT_OK);
      assert_int_equal(u.dtype, t.dtype);
      assert_int_equal(u.rank, rank);
      assert_memory_equal(u.dims, t.dims, sizeof(int64_t) * (size_t)rank);
      assert_int_equal(u.nbytes, t.nbytes);
      assert_memory_equal(u.data, data, (size_t)t.nbytes);
      lbrt_tensor_free(&u);
    }
  }
}

static void test_header_text(void **state) {
  (void)state;
  int32_t v[2] = {1, 2};
  struct lbrt_tensor t = {.dtype = LBRT_DTYPE_I32, .rank = 1, .dims = {2}, .data = v, .nbytes = 8};
  struct buf b;
  size_t hlen;
  char err[256];
  assert_int_equal(lbrt_tensor_npy_header(&t, b.b, sizeof b.b, &hlen, err, sizeof err), LBRT_OK);
  const char *want = "{'descr': '<i4', 'fortran_order': False, 'shape': (2,), }";
  assert_memory_equal(b.b, "\x93NUMPY\x01\x00", 8);
  assert_int_equal(b.b[8] | b.b[9] << 8, hlen - 10);
  assert_memory_equal(b.b + 10, want, strlen(want));
  assert_int_equal(b.b[hlen - 1], '\n');
  t.rank = 2;
  t.dims[0] = 1;
  t.dims[1] = 2;
  t.dtype = LBRT_DTYPE_U8;
  t.nbytes = 2;
  assert_int_equal(lbrt_tensor_npy_header(&t, b.b, sizeof b.b, &hlen, err, sizeof err), LBRT_OK);
  const char *want2 = "{'descr': '|u1', 'fortran_order': False, 'shape': (1, 2), }";
  assert_memory_equal(b.b + 10, want2, strlen(want2));
  /* bf16 has no .npy dtype. */
  t.dtype = LBRT_DTYPE_BF16;
  t.nbytes = 4;
  assert_int_equal(lbrt_tensor_npy_header(&t, b.b, sizeof b.b, &hlen, err, sizeof err),
                   LBRT_ERR_UNSUPPORTED);
}

static void test_versions_and_spellings(void **state) {
  (void)state;
  float f[6] = {1, 2, 3, 4, 5, 6};
  struct buf b;
  struct lbrt_tensor t;
  char err[256];
  static const char *const dicts[] = {
      "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }",
      "{'descr':'<f4','fortran_order':False,'shape':(2,3)}",
      "{\"shape\": (2, 3,), \"fortran_order\": False, \"descr\": \"<f4\"}",
      "{'descr': '<f4', 'fortran_order': False, 'shape': (2L, 3L), }", /* Python 2 */
  };
  for (int major = 1; major <= 3; major++) {
    for (size_t k = 0; k < sizeof dicts / sizeof dicts[0]; k++) {
      npy_build(&b, major, dicts[k], f, sizeof f);
      assert_int_equal(lbrt_tensor_npy_decode(b.b, b.n, &t, err, sizeof err), LBRT_OK);
      assert_int_equal(t.rank, 2);
      assert_int_equal(t.dims[1], 3);
      assert_memory_equal(t.data, f, sizeof f);
      lbrt_tensor_free(&t);
    }
  }
  /* Scalars and empty arrays. */
  npy_build(&b, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (), }", f, 4);
  assert_int_equal(lbrt_tensor_npy_decode(b.b, b.n, &t, err, sizeof err), LBRT_OK);
  assert_int_equal(t.rank, 0);
  lbrt_tensor_free(&t);
  npy_build(&b, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (0, 5), }", NULL, 0);
  assert_int_equal(lbrt_tensor_npy_decode(b.b, b.n, &t, err, sizeof err), LBRT_OK);
  assert_int_equal(t.nbytes, 0);
  lbrt_tensor_free(&t);
  /* Bools are normalized to 0/1. */
  npy_build(&b, 1, "{'descr': '|b1', 'fortran_order': False, 'shape': (3,), }", "\x00\x02\x01", 3);
  assert_int_equal(lbrt_tensor_npy_decode(b.b, b.n, &t, err, sizeof err), LBRT_OK);
  assert_memory_equal(t.data, "\x00\x01\x01", 3);
  lbrt_tensor_free(&t);
}

static void test_file_round_trip(void **state) {
  (void)state;
  char dir[] = "/tmp/lbrt_npy_XXXXXX", path[64], err[256];
  assert_non_null(mkdtemp(dir));
  snprintf(path, sizeof path, "%s/t.npy", dir);
  double v[3] = {1.5, -2.5, 1e-300};
  struct lbrt_tensor t = {.dtype = LBRT_DTYPE_F64, .rank = 1, .dims = {3}, .data = v,
                          .nbytes = sizeof v};
  assert_int_equal(lbrt_tensor_write(path, &t, LBRT_FORMAT_NPY, err, sizeof err), LBRT_OK);
  struct lbrt_tensor u;
  enum lbrt_format fmt;
  assert_int_equal(lbrt_tensor_read(path, &u, &fmt, err, sizeof err), LBRT_OK);
  assert_int_equal(fmt, LBRT_FORMAT_NPY);
  assert_memory_equal(u.data, v, sizeof v);
  lbrt_tensor_free(&u);
  snprintf(path, sizeof path, "%s/missing.npy", dir);
  assert_int_equal(lbrt_tensor_read(path, &u, &fmt, err, sizeof err), LBRT_ERR_IO);
  assert_non_null(strstr(err, "No such file"));
  snprintf(path, sizeof path, "rm -rf %s", dir);
  assert_int_equal(system(path), 0);
}

static void test_malformed(void **state) {
  (void)state;
  float f[6] = {0};
  struct buf b;
  const char *ok = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";

  npy_build(&b, 1, ok, f, sizeof f);
  b.b[1] = 'X';
  expect_fail(&b, LBRT_ERR_FORMAT, "bad magic");
  npy_build(&b, 1, ok, f, sizeof f);
  b.b[6] = 4;
  expect_fail(&b, LBRT_ERR_UNSUPPORTED, "version 4.0");
  npy_build(&b, 1, ok, f, sizeof f);
  b.b[8] = 0xff; /* header length past the end */
  b.b[9] = 0xff;
  expect_fail(&b, LBRT_ERR_FORMAT, "runs past the end");
  npy_build(&b, 2, ok, f, sizeof f);
  b.b[11] = 0x80; /* v2: 2 GiB header */
  expect_fail(&b, LBRT_ERR_FORMAT, "runs past the end");
  b.n = 8;
  expect_fail(&b, LBRT_ERR_FORMAT, "bad magic");
  npy_build(&b, 2, ok, f, sizeof f);
  b.n = 11;
  expect_fail(&b, LBRT_ERR_FORMAT, "truncated .npy header");

  npy_build(&b, 1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", f, sizeof f);
  expect_fail(&b, LBRT_ERR_UNSUPPORTED, "fortran_order");
  npy_build(&b, 1, "{'descr': '>f4', 'fortran_order': False, 'shape': (2, 3), }", f, sizeof f);
  expect_fail(&b, LBRT_ERR_UNSUPPORTED, "big-endian");
  npy_build(&b, 1, "{'descr': '<c8', 'fortran_order': False, 'shape': (2, 3), }", f, sizeof f);
  expect_fail(&b, LBRT_ERR_UNSUPPORTED, "unsupported .npy dtype '<c8'");
  npy_build(&b, 1, "{'descr': '|f4', 'fortran_order': False, 'shape': (2, 3), }", f, sizeof f);
  expect_fail(&b, LBRT_ERR_FORMAT, "invalid .npy dtype");
  npy_build(&b, 1, "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }", f, 8);
  expect_fail(&b, LBRT_ERR_UNSUPPORTED, "structured");

  /* Shape: overflow, huge-but-representable (truncated), negative, not a tuple. */
  npy_build(&b, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }",
            f, 4);
  expect_fail(&b, LBRT_ERR_FORMAT, "too large");
  npy_build(&b, 1,
            "{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296, 4), }",
            f, 4);
  expect_fail(&b, LBRT_ERR_FORMAT, "overflows");
  npy_build(&b, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1099511627776,), }", f, 4);
  expect_fail(&b, LBRT_ERR_FORMAT, "truncated");
  npy_build(&b, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }", f, 4);
  expect_fail(&b, LBRT_ERR_FORMAT, "malformed");
  npy_build(&b, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (6), }", f, sizeof f);
  expect_fail(&b, LBRT_ERR_FORMAT, "malformed");
  npy_build(&b, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1), }",
            f, 4);
  expect_fail(&b, LBRT_ERR_UNSUPPORTED, "rank above 8");

  /* Data size. */
  npy_build(&b, 1, ok, f, sizeof f - 1);
  expect_fail(&b, LBRT_ERR_FORMAT, "truncated");
  npy_build(&b, 1, ok, f, sizeof f);
  b.b[b.n++] = 0;
  expect_fail(&b, LBRT_ERR_FORMAT, "trailing bytes");

  /* Dict syntax. */
  static const char *const bad[] = {
      "{'descr': '<f4', 'fortran_order': False}",                              /* no shape */
      "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), 'x': 1}",     /* extra key */
      "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (6,)}", /* dup */
      "{descr: '<f4', 'fortran_order': False, 'shape': (2, 3), }",             /* unquoted */
      "{'descr': '<f4', 'fortran_order': false, 'shape': (2, 3), }",           /* not Python */
      "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), } x",         /* trailing */
      "{'descr': '<f4', 'fortran_order': False, 'shape': (2,, 3), }",
      "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)",              /* unclosed */
      "{'descr': '<f4\\x', 'fortran_order': False, 'shape': (2, 3)}",          /* escape */
      "['descr', '<f4']",
      "",
  };
  for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
    npy_build(&b, 1, bad[k], f, sizeof f);
    struct lbrt_tensor t;
    char err[256];
    if (lbrt_tensor_npy_decode(b.b, b.n, &t, err, sizeof err) == LBRT_OK)
      fail_msg("accepted bad header %zu: %s", k, bad[k]);
    assert_null(t.data);
  }
  /* Header without the closing newline, and with a NUL inside. */
  npy_build(&b, 1, ok, f, sizeof f);
  b.b[b.n - sizeof f - 1] = ' ';
  expect_fail(&b, LBRT_ERR_FORMAT, "malformed");
  npy_build(&b, 1, ok, f, sizeof f);
  b.b[b.n - sizeof f - 2] = '\0';
  expect_fail(&b, LBRT_ERR_FORMAT, "malformed");
}

static void test_truncations_and_corruption(void **state) {
  (void)state;
  float f[6] = {1, 2, 3, 4, 5, 6};
  struct buf good;
  npy_build(&good, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", f, sizeof f);
  struct lbrt_tensor t;
  char err[256];
  for (size_t n = 0; n < good.n; n++) {
    assert_int_not_equal(lbrt_tensor_npy_decode(good.b, n, &t, err, sizeof err), LBRT_OK);
    assert_null(t.data);
  }
  uint32_t seed = 777;
  for (int iter = 0; iter < 20000; iter++) {
    struct buf b = good;
    int flips = 1 + (int)(t_rand(&seed) % 3);
    for (int k = 0; k < flips; k++) {
      size_t at = t_rand(&seed) % 80; /* mostly the header */
      b.b[at] = iter & 1 ? (uint8_t)t_rand(&seed)
                         : (uint8_t)"0123456789(),' L<>|fiub{}:"[t_rand(&seed) % 26];
    }
    if (lbrt_tensor_npy_decode(b.b, b.n, &t, err, sizeof err) == LBRT_OK) {
      assert_true(t.nbytes <= (int64_t)b.n);
      lbrt_tensor_free(&t);
    }
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_round_trip_all_dtypes),
      cmocka_unit_test(test_header_text),
      cmocka_unit_test(test_versions_and_spellings),
      cmocka_unit_test(test_file_round_trip),
      cmocka_unit_test(test_malformed),
      cmocka_unit_test(test_truncations_and_corruption),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
