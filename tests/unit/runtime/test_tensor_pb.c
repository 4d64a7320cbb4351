/* Tests of runtime/tensor_pb.c: TensorProto decoding and encoding. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "runtime/lbrt.h"
#include "tests/unit/runtime/test_util.h"

static const int32_t all_dtypes[] = {
    LBRT_DTYPE_F32, LBRT_DTYPE_U8,  LBRT_DTYPE_I8,   LBRT_DTYPE_U16, LBRT_DTYPE_I16,
    LBRT_DTYPE_I32, LBRT_DTYPE_I64, LBRT_DTYPE_BOOL, LBRT_DTYPE_F16, LBRT_DTYPE_F64,
    LBRT_DTYPE_U32, LBRT_DTYPE_U64, LBRT_DTYPE_BF16,
};

/* Encodes t (header + raw data) into b. */
static void encode(const struct lbrt_tensor *t, struct buf *b) {
  char err[256];
  size_t hlen;
  assert_int_equal(lbrt_tensor_pb_header(t, b->b, sizeof b->b, &hlen, err, sizeof err), LBRT_OK);
  b->n = hlen;
  b_bytes(b, t->data, (size_t)t->nbytes);
}

static enum lbrt_status decode(const struct buf *b, struct lbrt_tensor *t, char *err) {
  return lbrt_tensor_pb_decode(b->b, b->n, t, err, 256);
}

/* Decoding must fail with status st and a message containing `needle`. */
static void expect_fail(const struct buf *b, enum lbrt_status st, const char *needle) {
  struct lbrt_tensor t;
  char err[256] = "";
  enum lbrt_status got = decode(b, &t, err);
  if (got != st || !strstr(err, needle)) fail_msg("got status %d '%s', want %d '%s'", got, err, st, needle);
  assert_null(t.data);
  assert_int_equal(t.nbytes, 0);
}

static void fill_pattern(struct lbrt_tensor *t) {
  uint8_t *p = t->data;
  for (int64_t i = 0; i < t->nbytes; i++)
    p[i] = t->dtype == LBRT_DTYPE_BOOL ? (uint8_t)(i % 3 == 0) : (uint8_t)(i * 37 + 11);
}

static void test_round_trip_all_dtypes(void **state) {
  (void)state;
  for (size_t k = 0; k < sizeof all_dtypes / sizeof all_dtypes[0]; k++) {
    for (int rank = 0; rank <= 3; rank++) {
      struct lbrt_tensor t = {.dtype = all_dtypes[k], .rank = rank};
      static const int64_t dims[] = {2, 3, 4};
      memcpy(t.dims, dims, sizeof(int64_t) * (size_t)rank);
      lbrt_shape_count(rank, t.dims, lbrt_dtype_size(t.dtype), NULL, &t.nbytes);
      t.data = malloc((size_t)t.nbytes);
      fill_pattern(&t);
      snprintf(t.name, sizeof t.name, "tensor_%d", (int)t.dtype);
      struct buf b;
      encode(&t, &b);
      struct lbrt_tensor u;
      char err[256];
      assert_int_equal(decode(&b, &u, err), LBRT_OK);
      assert_int_equal(u.dtype, t.dtype);
      assert_int_equal(u.rank, rank);
      assert_memory_equal(u.dims, t.dims, sizeof(int64_t) * (size_t)rank);
      assert_int_equal(u.nbytes, t.nbytes);
      assert_memory_equal(u.data, t.data, (size_t)t.nbytes);
      assert_string_equal(u.name, t.name);
      assert_int_equal((uintptr_t)u.data % LBRT_DATA_ALIGN, 0);
      lbrt_tensor_free(&u);
      free(t.data);
    }
  }
}

/* Bytes onnx.numpy_helper.from_array(np.array([[1, 2]], np.float32), "x")
 * serializes to (proto2: unpacked dims). */
static const uint8_t onnx_f32_1x2[] = {0x08, 0x01, 0x08, 0x02, 0x10, 0x01, 0x42, 0x01, 'x',
                                       0x4a, 0x08, 0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0x40};

static void test_matches_onnx_bytes(void **state) {
  (void)state;
  struct lbrt_tensor t;
  char err[256];
  assert_int_equal(lbrt_tensor_pb_decode(onnx_f32_1x2, sizeof onnx_f32_1x2, &t, err, sizeof err),
                   LBRT_OK);
  assert_int_equal(t.rank, 2);
  assert_int_equal(t.dims[0], 1);
  assert_int_equal(t.dims[1], 2);
  const float *f = t.data;
  assert_true(f[0] == 1.0f && f[1] == 2.0f);
  struct buf b;
  encode(&t, &b);
  assert_int_equal(b.n, sizeof onnx_f32_1x2);
  assert_memory_equal(b.b, onnx_f32_1x2, sizeof onnx_f32_1x2);
  lbrt_tensor_free(&t);
}

static void test_file_round_trip(void **state) {
  (void)state;
  char dir[] = "/tmp/lbrt_pb_XXXXXX", path[64], err[256];
  assert_non_null(mkdtemp(dir));
  snprintf(path, sizeof path, "%s/t.pb", dir);
  int32_t vals[6] = {1, -2, 3, -4, 5, 1 << 30};
  struct lbrt_tensor t = {.dtype = LBRT_DTYPE_I32, .rank = 2, .dims = {3, 2}, .data = vals,
                          .nbytes = sizeof vals, .name = "w"};
  assert_int_equal(lbrt_tensor_write(path, &t, LBRT_FORMAT_PB, err, sizeof err), LBRT_OK);
  struct lbrt_tensor u;
  enum lbrt_format fmt;
  assert_int_equal(lbrt_tensor_read(path, &u, &fmt, err, sizeof err), LBRT_OK);
  assert_int_equal(fmt, LBRT_FORMAT_PB);
  assert_memory_equal(u.data, vals, sizeof vals);
  lbrt_tensor_free(&u);
  /* Inconsistent nbytes is refused and leaves no file behind. */
  t.nbytes = 8;
  snprintf(path, sizeof path, "%s/bad.pb", dir);
  assert_int_equal(lbrt_tensor_write(path, &t, LBRT_FORMAT_PB, err, sizeof err), LBRT_ERR_ARG);
  assert_int_not_equal(access(path, F_OK), 0);
  snprintf(path, sizeof path, "rm -rf %s", dir);
  assert_int_equal(system(path), 0);
}

static void test_packed_and_unpacked_dims(void **state) {
  (void)state;
  float data[6] = {1, 2, 3, 4, 5, 6};
  for (int packed = 0; packed < 2; packed++) {
    struct buf b = {.n = 0};
    if (packed) {
      uint8_t d[] = {2, 3};
      b_lfield(&b, 1, d, sizeof d);
    } else {
      b_vfield(&b, 1, 2);
      b_vfield(&b, 1, 3);
    }
    b_vfield(&b, 2, LBRT_DTYPE_F32);
    b_lfield(&b, 9, data, sizeof data);
    struct lbrt_tensor t;
    char err[256];
    assert_int_equal(decode(&b, &t, err), LBRT_OK);
    assert_int_equal(t.rank, 2);
    assert_int_equal(t.dims[0], 2);
    assert_int_equal(t.dims[1], 3);
    assert_memory_equal(t.data, data, sizeof data);
    lbrt_tensor_free(&t);
  }
  /* Mixed: a packed run followed by an unpacked dim, in file order. */
  struct buf b = {.n = 0};
  uint8_t d[] = {1, 2};
  b_lfield(&b, 1, d, sizeof d);
  b_vfield(&b, 1, 3);
  b_vfield(&b, 2, LBRT_DTYPE_F32);
  b_lfield(&b, 9, data, sizeof data);
  struct lbrt_tensor t;
  char err[256];
  assert_int_equal(decode(&b, &t, err), LBRT_OK);
  assert_int_equal(t.rank, 3);
  assert_int_equal(t.dims[2], 3);
  lbrt_tensor_free(&t);
}

static void test_typed_fields(void **state) {
  (void)state;
  struct lbrt_tensor t;
  char err[256];
  /* float_data, packed then unpacked (fixed32) in the same message. */
  {
    struct buf b = {.n = 0};
    b_vfield(&b, 1, 3);
    b_vfield(&b, 2, LBRT_DTYPE_F32);
    float f[2] = {1.5f, -2.0f}, g = 4.25f;
    b_lfield(&b, 4, f, sizeof f);
    b_key(&b, 4, 5);
    b_bytes(&b, &g, 4);
    assert_int_equal(decode(&b, &t, err), LBRT_OK);
    const float *o = t.data;
    assert_true(o[0] == 1.5f && o[1] == -2.0f && o[2] == 4.25f);
    lbrt_tensor_free(&t);
  }
  /* int32_data for i32, i8, u8, bool, f16, i16, u16: negatives are 10-byte varints. */
  {
    static const struct {
      int32_t dtype;
      int64_t in[3];
      uint8_t want[12];
    } cases[] = {
        {LBRT_DTYPE_I32, {-1, 7, 300}, {0xff, 0xff, 0xff, 0xff, 7, 0, 0, 0, 0x2c, 1, 0, 0}},
        {LBRT_DTYPE_I8, {-1, 7, -128}, {0xff, 7, 0x80}},
        {LBRT_DTYPE_U8, {255, 0, 17}, {255, 0, 17}},
        {LBRT_DTYPE_BOOL, {1, 0, 5}, {1, 0, 1}},
        {LBRT_DTYPE_F16, {0x3c00, 0xc000, 0}, {0x00, 0x3c, 0x00, 0xc0, 0, 0}},
        {LBRT_DTYPE_BF16, {0x3f80, 0, 0}, {0x80, 0x3f, 0, 0, 0, 0}},
        {LBRT_DTYPE_I16, {-2, 1, 0}, {0xfe, 0xff, 1, 0, 0, 0}},
        {LBRT_DTYPE_U16, {65535, 1, 0}, {0xff, 0xff, 1, 0, 0, 0}},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
      for (int packed = 0; packed < 2; packed++) {
        struct buf b = {.n = 0}, p = {.n = 0};
        b_vfield(&b, 1, 3);
        b_vfield(&b, 2, (uint64_t)cases[k].dtype);
        for (int i = 0; i < 3; i++) {
          if (packed)
            b_varint(&p, (uint64_t)cases[k].in[i]);
          else
            b_vfield(&b, 5, (uint64_t)cases[k].in[i]);
        }
        if (packed) b_lfield(&b, 5, p.b, p.n);
        assert_int_equal(decode(&b, &t, err), LBRT_OK);
        assert_int_equal(t.nbytes, 3 * lbrt_dtype_size(cases[k].dtype));
        assert_memory_equal(t.data, cases[k].want, (size_t)t.nbytes);
        lbrt_tensor_free(&t);
      }
    }
  }
  /* int64_data packed, uint64_data for u32/u64, double_data packed + fixed64. */
  {
    struct buf b = {.n = 0}, p = {.n = 0};
    b_vfield(&b, 2, LBRT_DTYPE_I64);
    b_vfield(&b, 1, 2);
    b_varint(&p, (uint64_t)INT64_MIN);
    b_varint(&p, (uint64_t)INT64_MAX);
    b_lfield(&b, 7, p.b, p.n);
    assert_int_equal(decode(&b, &t, err), LBRT_OK);
    const int64_t *o = t.data;
    assert_true(o[0] == INT64_MIN && o[1] == INT64_MAX);
    lbrt_tensor_free(&t);
  }
  {
    struct buf b = {.n = 0};
    b_vfield(&b, 2, LBRT_DTYPE_U32);
    b_vfield(&b, 11, 0xfffffffful);
    assert_int_equal(decode(&b, &t, err), LBRT_OK); /* rank 0: one element */
    assert_int_equal(t.rank, 0);
    assert_int_equal(*(const uint32_t *)t.data, 0xffffffffu);
    lbrt_tensor_free(&t);
    b.n = 0;
    b_vfield(&b, 2, LBRT_DTYPE_U64);
    b_vfield(&b, 11, UINT64_MAX);
    assert_int_equal(decode(&b, &t, err), LBRT_OK);
    assert_true(*(const uint64_t *)t.data == UINT64_MAX);
    lbrt_tensor_free(&t);
  }
  {
    struct buf b = {.n = 0};
    double d[2] = {0.1, -1e300}, e = 3.0;
    b_vfield(&b, 1, 3);
    b_vfield(&b, 2, LBRT_DTYPE_F64);
    b_lfield(&b, 10, d, sizeof d);
    b_key(&b, 10, 1);
    b_bytes(&b, &e, 8);
    assert_int_equal(decode(&b, &t, err), LBRT_OK);
    const double *o = t.data;
    assert_true(o[0] == 0.1 && o[1] == -1e300 && o[2] == 3.0);
    lbrt_tensor_free(&t);
  }
}

static void test_skips_unknown_fields(void **state) {
  (void)state;
  struct buf b = {.n = 0};
  b_lfield(&b, 12, "doc", 3);       /* doc_string */
  b_vfield(&b, 99, 12345);          /* unknown varint */
  b_key(&b, 50, 1);                 /* unknown fixed64 */
  b_bytes(&b, "12345678", 8);
  b_key(&b, 51, 5);                 /* unknown fixed32 */
  b_bytes(&b, "1234", 4);
  b_lfield(&b, 3, "\x08\x01", 2);   /* segment */
  b_vfield(&b, 14, 0);              /* data_location DEFAULT */
  b_vfield(&b, 2, LBRT_DTYPE_U8);
  b_lfield(&b, 9, "\x05", 1);
  struct lbrt_tensor t;
  char err[256];
  assert_int_equal(decode(&b, &t, err), LBRT_OK);
  assert_int_equal(*(const uint8_t *)t.data, 5);
  lbrt_tensor_free(&t);
}

static void test_empty_tensor(void **state) {
  (void)state;
  struct buf b = {.n = 0};
  b_vfield(&b, 1, 0);
  b_vfield(&b, 1, 5);
  b_vfield(&b, 2, LBRT_DTYPE_F32);
  struct lbrt_tensor t;
  char err[256];
  assert_int_equal(decode(&b, &t, err), LBRT_OK); /* no data needed for 0 elements */
  assert_int_equal(t.nbytes, 0);
  assert_non_null(t.data);
  lbrt_tensor_free(&t);
}

static void test_malformed(void **state) {
  (void)state;
  struct buf b;
  float f2[2] = {1, 2};

  b.n = 0;
  b_bytes(&b, "\x08\x80", 2); /* dims varint cut short */
  expect_fail(&b, LBRT_ERR_FORMAT, "truncated varint");
  b.n = 0;
  b_bytes(&b, "\x80", 1); /* key cut short */
  expect_fail(&b, LBRT_ERR_FORMAT, "truncated field key");
  b.n = 0;
  b_bytes(&b, "\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\x7f", 11); /* 11-byte varint */
  expect_fail(&b, LBRT_ERR_FORMAT, "truncated varint");
  b.n = 0;
  b_bytes(&b, "\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\x02", 11); /* bit 64 set */
  expect_fail(&b, LBRT_ERR_FORMAT, "truncated varint");
  b.n = 0;
  b_bytes(&b, "\x0a\x02\x80", 3); /* packed dims: truncated varint inside */
  b_bytes(&b, "\x80", 1);
  expect_fail(&b, LBRT_ERR_FORMAT, "dims: truncated varint");

  /* Lengths past the end, including ones that would wrap a pointer. */
  b.n = 0;
  b_vfield(&b, 2, LBRT_DTYPE_F32);
  b_key(&b, 9, 2);
  b_varint(&b, 9);
  b_bytes(&b, f2, 8);
  expect_fail(&b, LBRT_ERR_FORMAT, "runs past the end");
  b.n = 0;
  b_vfield(&b, 2, LBRT_DTYPE_F32);
  b_key(&b, 9, 2);
  b_varint(&b, UINT64_MAX);
  expect_fail(&b, LBRT_ERR_FORMAT, "runs past the end");
  b.n = 0;
  b_key(&b, 9, 5);
  b_bytes(&b, "\x01\x02", 2);
  expect_fail(&b, LBRT_ERR_FORMAT, "truncated fixed32");
  b.n = 0;
  b_key(&b, 9, 1);
  b_bytes(&b, "\x01\x02", 2);
  expect_fail(&b, LBRT_ERR_FORMAT, "truncated fixed64");

  /* Size mismatches. */
  b.n = 0;
  b_vfield(&b, 1, 3);
  b_vfield(&b, 2, LBRT_DTYPE_F32);
  b_lfield(&b, 9, f2, sizeof f2);
  expect_fail(&b, LBRT_ERR_FORMAT, "raw_data has 8 bytes, f32[3] needs 12");
  b.n = 0;
  b_vfield(&b, 1, 3);
  b_vfield(&b, 2, LBRT_DTYPE_F32);
  b_lfield(&b, 4, f2, sizeof f2);
  expect_fail(&b, LBRT_ERR_FORMAT, "float_data has 2 elements, f32[3] needs 3");
  b.n = 0;
  b_vfield(&b, 1, 2);
  b_vfield(&b, 2, LBRT_DTYPE_F32);
  b_lfield(&b, 4, f2, 7);
  expect_fail(&b, LBRT_ERR_FORMAT, "not a multiple of 4");
  b.n = 0;
  b_vfield(&b, 1, 2);
  b_vfield(&b, 2, LBRT_DTYPE_F32);
  expect_fail(&b, LBRT_ERR_FORMAT, "float_data has 0 elements");

  /* Negative and huge dims: no allocation from the declared size. */
  b.n = 0;
  b_vfield(&b, 1, (uint64_t)-1);
  b_vfield(&b, 2, LBRT_DTYPE_F32);
  expect_fail(&b, LBRT_ERR_FORMAT, "dims[0] is negative");
  b.n = 0;
  b_vfield(&b, 1, 1ull << 62);
  b_vfield(&b, 1, 4);
  b_vfield(&b, 2, LBRT_DTYPE_F32);
  expect_fail(&b, LBRT_ERR_FORMAT, "dims overflow");
  b.n = 0;
  b_vfield(&b, 1, 1ull << 61); /* count fits, bytes do not */
  b_vfield(&b, 2, LBRT_DTYPE_F64);
  expect_fail(&b, LBRT_ERR_FORMAT, "dims overflow");
  b.n = 0;
  b_vfield(&b, 1, 1ull << 40); /* representable but far more than the file holds */
  b_vfield(&b, 2, LBRT_DTYPE_F32);
  b_lfield(&b, 9, f2, sizeof f2);
  expect_fail(&b, LBRT_ERR_FORMAT, "raw_data has 8 bytes");
  b.n = 0;
  for (int i = 0; i < 9; i++) b_vfield(&b, 1, 1);
  b_vfield(&b, 2, LBRT_DTYPE_F32);
  expect_fail(&b, LBRT_ERR_UNSUPPORTED, "rank above 8");

  /* Wire types 3, 4 (groups), 6, 7 (invalid); wrong wire type for a known field. */
  for (unsigned wt = 3; wt <= 7; wt++) {
    if (wt == 5) continue;
    b.n = 0;
    b_vfield(&b, 2, LBRT_DTYPE_F32);
    b_key(&b, 20, wt);
    b_bytes(&b, "\0\0\0\0\0\0\0\0", 8);
    expect_fail(&b, LBRT_ERR_FORMAT, "wire type");
  }
  b.n = 0;
  b_key(&b, 2, 2);
  b_varint(&b, 0);
  expect_fail(&b, LBRT_ERR_FORMAT, "data_type) has unexpected wire type 2");
  b.n = 0;
  b_vfield(&b, 0, 1);
  expect_fail(&b, LBRT_ERR_FORMAT, "invalid field number 0");

  /* dtype problems. */
  b.n = 0;
  expect_fail(&b, LBRT_ERR_FORMAT, "data_type is missing");
  b.n = 0;
  b_vfield(&b, 2, 8);
  expect_fail(&b, LBRT_ERR_UNSUPPORTED, "STRING");
  b.n = 0;
  b_vfield(&b, 2, 14);
  expect_fail(&b, LBRT_ERR_UNSUPPORTED, "COMPLEX64");
  b.n = 0;
  b_vfield(&b, 2, (uint64_t)-5);
  expect_fail(&b, LBRT_ERR_UNSUPPORTED, "unsupported data_type -5");
  b.n = 0;
  b_vfield(&b, 2, 1000);
  expect_fail(&b, LBRT_ERR_UNSUPPORTED, "unsupported data_type 1000");
  b.n = 0;
  b_vfield(&b, 2, LBRT_DTYPE_F32);
  b_lfield(&b, 6, "abc", 3);
  expect_fail(&b, LBRT_ERR_UNSUPPORTED, "string tensors");
  b.n = 0;
  b_vfield(&b, 2, LBRT_DTYPE_F32);
  b_vfield(&b, 14, 1);
  expect_fail(&b, LBRT_ERR_UNSUPPORTED, "EXTERNAL");
  b.n = 0;
  b_vfield(&b, 2, LBRT_DTYPE_F32);
  b_lfield(&b, 13, "\x0a\x01x", 3);
  expect_fail(&b, LBRT_ERR_UNSUPPORTED, "external_data");
  b.n = 0;
  b_vfield(&b, 1, 1);
  b_vfield(&b, 2, LBRT_DTYPE_F32);
  b_lfield(&b, 9, f2, 4);
  b_lfield(&b, 4, f2, 4);
  expect_fail(&b, LBRT_ERR_FORMAT, "both raw_data and float_data");
  b.n = 0;
  b_vfield(&b, 1, 1);
  b_vfield(&b, 2, LBRT_DTYPE_I64);
  b_lfield(&b, 4, f2, 4);
  expect_fail(&b, LBRT_ERR_FORMAT, "float_data cannot hold data_type i64");
}

/* Every truncation of a valid message fails cleanly; random corruptions never crash. */
static void test_truncations_and_corruption(void **state) {
  (void)state;
  struct buf good = {.n = 0};
  uint8_t dims[] = {2, 3};
  float d[6] = {1, 2, 3, 4, 5, 6};
  b_lfield(&good, 1, dims, 2);
  b_vfield(&good, 2, LBRT_DTYPE_F32);
  b_lfield(&good, 8, "name", 4);
  b_lfield(&good, 9, d, sizeof d);
  struct lbrt_tensor t;
  char err[256];
  for (size_t n = 0; n < good.n; n++) {
    assert_int_not_equal(lbrt_tensor_pb_decode(good.b, n, &t, err, sizeof err), LBRT_OK);
    assert_null(t.data);
  }
  uint32_t seed = 12345;
  for (int iter = 0; iter < 20000; iter++) {
    struct buf b = good;
    int flips = 1 + (int)(t_rand(&seed) % 4);
    for (int k = 0; k < flips; k++) b.b[t_rand(&seed) % b.n] = (uint8_t)t_rand(&seed);
    b.n -= t_rand(&seed) % 3;
    if (lbrt_tensor_pb_decode(b.b, b.n, &t, err, sizeof err) == LBRT_OK) {
      /* Whatever decoded must be self-consistent. */
      int64_t nb;
      assert_int_equal(lbrt_shape_count(t.rank, t.dims, lbrt_dtype_size(t.dtype), NULL, &nb),
                       LBRT_OK);
      assert_int_equal(nb, t.nbytes);
      assert_true(t.nbytes <= (int64_t)b.n * 8);
      lbrt_tensor_free(&t);
    }
  }
  /* NULL buffer with zero length. */
  assert_int_equal(lbrt_tensor_pb_decode(NULL, 0, &t, NULL, 0), LBRT_ERR_FORMAT);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_round_trip_all_dtypes),
      cmocka_unit_test(test_matches_onnx_bytes),
      cmocka_unit_test(test_file_round_trip),
      cmocka_unit_test(test_packed_and_unpacked_dims),
      cmocka_unit_test(test_typed_fields),
      cmocka_unit_test(test_skips_unknown_fields),
      cmocka_unit_test(test_empty_tensor),
      cmocka_unit_test(test_malformed),
      cmocka_unit_test(test_truncations_and_corruption),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
