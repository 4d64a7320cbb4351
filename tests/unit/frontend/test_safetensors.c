/* frontend/safetensors.c (the reader of untrusted adapter files and its JSON
 * reader) and frontend/lora.c (matching, all-or-nothing rewriting): valid
 * files read back exactly, every malformed file is an error with a message,
 * random corruptions of a valid file never crash (run under build-asan to see
 * out-of-bounds reads), and an adapter with one bad pair leaves the graph as it
 * was. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "frontend/lora.h"
#include "frontend/safetensors.h"

/* ---- building files ------------------------------------------------------- */

struct buf {
  uint8_t *p;
  size_t n;
};

/* header JSON + data, with the u64 length in front */
static struct buf st_file(const char *header, const void *data, size_t data_len) {
  size_t h = strlen(header);
  struct buf b = {malloc(8 + h + data_len + 1), 8 + h + data_len};
  assert_non_null(b.p);
  for (int i = 0; i < 8; i++) b.p[i] = (uint8_t)((uint64_t)h >> (8 * i));
  memcpy(b.p + 8, header, h);
  if (data_len) memcpy(b.p + 8 + h, data, data_len);
  return b;
}

static enum lb_status parse(struct buf b, struct lb_safetensors *st, struct lb_diag *d) {
  lb_diag_init(d, "t.safetensors");
  return lb_safetensors_parse(b.p, b.n, "t.safetensors", st, d);
}

/* parsing fails with `frag` in the message */
static void st_fails(const char *header, const void *data, size_t data_len, const char *frag) {
  struct buf b = st_file(header, data, data_len);
  struct lb_safetensors st;
  struct lb_diag d;
  enum lb_status s = parse(b, &st, &d);
  if (s == LB_OK || !d.text || !strstr(d.text, frag))
    fail_msg("header %s: status %d, message %s (want '%s')", header, (int)s, d.text ? d.text : "(none)", frag);
  assert_int_equal(st.n, 0);
  lb_diag_free(&d);
  free(b.p);
}

/* ---- valid files ------------------------------------------------------------ */

static void test_reads_f32_f16_bf16(void **state) {
  (void)state;
  uint8_t data[12 + 8 + 4];
  float f[3] = {1.5f, -2.0f, 3.25f};
  memcpy(data, f, 12);
  /* f16: 1.0, -0.5, 2^-24 (smallest subnormal), inf */
  const uint16_t h[4] = {0x3C00, 0xB800, 0x0001, 0x7C00};
  memcpy(data + 12, h, 8);
  /* bf16: 1.0, -3.0 */
  const uint16_t bf[2] = {0x3F80, 0xC040};
  memcpy(data + 20, bf, 4);
  struct buf b = st_file("{\"__metadata__\": {\"format\": \"pt\"}, "
                         "\"a\": {\"dtype\": \"F32\", \"shape\": [3], \"data_offsets\": [0, 12]},"
                         "\"b\\u00e9\": {\"dtype\": \"F16\", \"shape\": [2, 2], \"data_offsets\": [12, 20]},"
                         "\"c\": {\"dtype\": \"BF16\", \"shape\": [1, 2], \"data_offsets\": [20, 24]}}   ",
                         data, sizeof data);
  struct lb_safetensors st;
  struct lb_diag d;
  assert_int_equal(parse(b, &st, &d), LB_OK);
  assert_int_equal(st.n, 3);
  assert_int_equal(lb_safetensors_find(&st, "b\xc3\xa9"), 1);
  assert_int_equal(st.tensors[1].shape.rank, 2);
  float *a = lb_safetensors_read_f32(&st, 0), *hh = lb_safetensors_read_f32(&st, 1), *c = lb_safetensors_read_f32(&st, 2);
  assert_memory_equal(a, f, 12);
  assert_true(hh[0] == 1.0f && hh[1] == -0.5f && hh[2] == 0x1p-24f && hh[3] > 1e38f);
  assert_true(c[0] == 1.0f && c[1] == -3.0f);
  free(a), free(hh), free(c);
  lb_safetensors_free(&st);
  lb_diag_free(&d);
  free(b.p);
}

static void test_empty_tensor_and_empty_header(void **state) {
  (void)state;
  struct buf b = st_file("{\"z\": {\"dtype\": \"F32\", \"shape\": [0, 4], \"data_offsets\": [0, 0]}}", NULL, 0);
  struct lb_safetensors st;
  struct lb_diag d;
  assert_int_equal(parse(b, &st, &d), LB_OK);
  assert_int_equal(st.n, 1);
  lb_safetensors_free(&st);
  lb_diag_free(&d);
  free(b.p);
  b = st_file("{}", NULL, 0);
  assert_int_equal(parse(b, &st, &d), LB_OK);
  assert_int_equal(st.n, 0);
  lb_safetensors_free(&st);
  lb_diag_free(&d);
  free(b.p);
}

/* ---- hostile files ---------------------------------------------------------- */

static void test_bad_lengths(void **state) {
  (void)state;
  struct lb_safetensors st;
  struct lb_diag d;
  uint8_t small[5] = {1, 0, 0, 0, 0};
  lb_diag_init(&d, "t");
  assert_int_not_equal(lb_safetensors_parse(small, sizeof small, "t", &st, &d), LB_OK);
  assert_non_null(strstr(d.text, "shorter than the 8-byte header length"));
  lb_diag_free(&d);
  /* header length past the end, and 2^64 - 1 (no overflow in 8 + n) */
  uint8_t big[16] = {0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, '{', '}'};
  lb_diag_init(&d, "t");
  assert_int_not_equal(lb_safetensors_parse(big, sizeof big, "t", &st, &d), LB_OK);
  assert_non_null(strstr(d.text, "header length outside the file"));
  lb_diag_free(&d);
  big[0] = 9, memset(big + 1, 0, 7);
  lb_diag_init(&d, "t");
  assert_int_not_equal(lb_safetensors_parse(big, 10, "t", &st, &d), LB_OK);
  lb_diag_free(&d);
}

static void test_bad_headers(void **state) {
  (void)state;
  float z[4] = {0};
  st_fails("[]", NULL, 0, "not a JSON object");
  st_fails("{\"a\": 1", NULL, 0, "invalid JSON");
  st_fails("{\"a\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [0, 16]}} x", z, 16, "trailing characters");
  st_fails("{\"a\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [0, 20]}}", z, 16,
           "data_offsets outside the data");
  st_fails("{\"a\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [16, 0]}}", z, 16,
           "data_offsets outside the data");
  st_fails("{\"a\": {\"dtype\": \"F32\", \"shape\": [3], \"data_offsets\": [0, 16]}}", z, 16,
           "do not hold the shape's bytes");
  st_fails("{\"a\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [0, 18446744073709551616]}}", z, 16,
           "two non-negative integers");
  st_fails("{\"a\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [-1, 15]}}", z, 16,
           "two non-negative integers");
  st_fails("{\"a\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [0.0, 16]}}", z, 16,
           "two non-negative integers");
  st_fails("{\"a\": {\"dtype\": \"I8\", \"shape\": [4], \"data_offsets\": [0, 4]}}", z, 16,
           "dtype I8 is not supported");
  st_fails("{\"a\": {\"dtype\": \"F32\", \"shape\": [-4], \"data_offsets\": [0, 16]}}", z, 16,
           "not a non-negative integer");
  st_fails("{\"a\": {\"dtype\": \"F32\", \"shape\": [1,1,1,1,1,1,1,1,4], \"data_offsets\": [0, 16]}}", z, 16,
           "rank above");
  st_fails("{\"a\": {\"dtype\": \"F32\", \"shape\": [4294967296, 4294967296, 4], \"data_offsets\": [0, 16]}}", z, 16,
           "shape too large");
  st_fails("{\"a\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [0, 16]},"
           " \"a\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [0, 16]}}",
           z, 16, "appears twice");
  st_fails("{\"a\": {\"shape\": [4], \"data_offsets\": [0, 16]}}", z, 16, "no \"dtype\"");
  st_fails("{\"a\": 7}", z, 16, "not an object");
  st_fails("{\"__metadata__\": [1]}", NULL, 0, "__metadata__ is not an object");
  st_fails("{\"a\\u0000b\": 1}", NULL, 0, "\\u0000");
  st_fails("{\"a\\ud800\": 1}", NULL, 0, "surrogate");
  st_fails("{\"a\\q\": 1}", NULL, 0, "bad escape");
  st_fails("{\"a\\", NULL, 0, "unterminated string");
  st_fails("{\"a\": 01}", NULL, 0, "leading zero");
  st_fails("{\"a\": [1,]}", NULL, 0, "invalid JSON");
  st_fails("{\"a\": tru}", NULL, 0, "unexpected token");
  /* nesting deeper than the limit, in the metadata */
  char deep[400] = "{\"__metadata__\": {\"x\": ";
  size_t n = strlen(deep);
  for (int i = 0; i < 100; i++) deep[n++] = '[';
  for (int i = 0; i < 100; i++) deep[n++] = ']';
  strcpy(deep + n, "}}");
  st_fails(deep, NULL, 0, "nested too deeply");
}

/* A valid file with every byte of it mutated, and random cuts: any status is
 * fine, a crash or an out-of-bounds read (ASan) is not; accepted files must
 * describe ranges inside the data. */
static void test_mutations_never_crash(void **state) {
  (void)state;
  float data[24];
  for (int i = 0; i < 24; i++) data[i] = (float)i;
  struct buf good = st_file("{\"__metadata__\": {\"format\": \"pt\"}, "
                            "\"m.lora_A.weight\": {\"dtype\": \"F32\", \"shape\": [2, 4], \"data_offsets\": [0, 32]},"
                            "\"m.lora_B.weight\": {\"dtype\": \"F16\", \"shape\": [4, 2], \"data_offsets\": [32, 48]},"
                            "\"n\": {\"dtype\": \"BF16\", \"shape\": [24], \"data_offsets\": [48, 96]}}",
                            data, sizeof data);
  uint32_t seed = 12345;
  int accepted = 0;
  for (int iter = 0; iter < 20000; iter++) {
    uint8_t *p = malloc(good.n);
    memcpy(p, good.p, good.n);
    size_t len = good.n;
    seed = seed * 1103515245u + 12345u;
    int kind = (int)(seed >> 16) % 4;
    for (int k = 0; k < 1 + (int)((seed >> 8) % 3); k++) {
      seed = seed * 1103515245u + 12345u;
      size_t at = (seed >> 4) % good.n;
      static const uint8_t interesting[] = {0, '"', '\\', '[', ']', '{', '}', ',', ':', '9', '-', 0xFF, ' '};
      p[at] = kind == 0 ? (uint8_t)(seed >> 24) : interesting[(seed >> 20) % sizeof interesting];
    }
    if (kind == 3) len = (seed >> 3) % good.n;
    /* a heap copy of exactly len bytes, so ASan sees reads past the end */
    uint8_t *q = malloc(len ? len : 1);
    memcpy(q, p, len);
    struct lb_safetensors st;
    struct lb_diag d;
    lb_diag_init(&d, "m");
    if (lb_safetensors_parse(q, len, "m", &st, &d) == LB_OK) {
      accepted++;
      for (int32_t i = 0; i < st.n; i++) {
        assert_true(st.tensors[i].end <= st.data_len);
        free(lb_safetensors_read_f32(&st, i));
      }
      lb_safetensors_free(&st);
    } else {
      assert_non_null(d.text);
    }
    lb_diag_free(&d);
    free(q);
    free(p);
  }
  assert_true(accepted > 0); /* mutations of the data bytes leave the file valid */
  free(good.p);
}

/* ---- lora.c: nothing changes when one pair is wrong ------------------------- */

static const char mlp_ir[] =
    "graph @mlp(%x: f32[2,4]) -> f32[2,3] {\n"
    "  %w = const f32[4,3] dense<[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]>\n"
    "  %b = const f32[3] dense<[1, 1, 1]>\n"
    "  %mm = matmul(%x, %w) : f32[2,3] loc(\"/fc/MatMul\")\n"
    "  %y = add(%b, %mm) : f32[2,3] loc(\"/fc/Add\")\n"
    "  return %y\n"
    "}\n";

static char *write_tmp(const char *name, struct buf b) {
  char *path = malloc(256);
  snprintf(path, 256, "/tmp/lb_test_st_%d_%s", (int)getpid(), name);
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  fwrite(b.p, 1, b.n, f);
  fclose(f);
  return path;
}

static void test_lora_all_or_nothing(void **state) {
  (void)state;
  float a[2 * 4] = {1, 0, 0, 0, 0, 1, 0, 0}; /* lora_A.weight [r=2, in=4] */
  float bb[3 * 2] = {1, 2, 3, 4, 5, 6};     /* lora_B.weight [out=3, r=2] */
  uint8_t data[56];
  memcpy(data, a, 32);
  memcpy(data + 32, bb, 24);
  struct buf good = st_file("{\"base_model.model.fc.lora_A.weight\": {\"dtype\": \"F32\", \"shape\": [2, 4], "
                            "\"data_offsets\": [0, 32]}, \"base_model.model.fc.lora_B.weight\": {\"dtype\": \"F32\", "
                            "\"shape\": [3, 2], \"data_offsets\": [32, 56]}}",
                            data, sizeof data);
  /* the same plus a second pair for a module that does not exist */
  struct buf bad = st_file("{\"fc.lora_A.weight\": {\"dtype\": \"F32\", \"shape\": [2, 4], \"data_offsets\": [0, 32]}, "
                           "\"fc.lora_B.weight\": {\"dtype\": \"F32\", \"shape\": [3, 2], \"data_offsets\": [32, 56]}, "
                           "\"fc2.lora_A.weight\": {\"dtype\": \"F32\", \"shape\": [2, 4], \"data_offsets\": [0, 32]}, "
                           "\"fc2.lora_B.weight\": {\"dtype\": \"F32\", \"shape\": [3, 2], \"data_offsets\": [32, 56]}}",
                           data, sizeof data);
  char *gp = write_tmp("good.safetensors", good), *bp = write_tmp("bad.safetensors", bad);
  struct lb_graph *g;
  struct lb_diag d;
  lb_diag_init(&d, "mlp");
  assert_int_equal(lb_graph_parse(mlp_ir, strlen(mlp_ir), "mlp", &g, &d), LB_OK);
  char *before = lb_graph_print_string(g, &lb_print_defaults);
  const char *paths[1] = {bp};
  struct lb_lora_options o = {.paths = paths, .n_paths = 1};
  assert_int_not_equal(lb_lora_apply(g, &o, NULL, &d), LB_OK);
  assert_non_null(strstr(d.text, "module \"fc2\" matches no MatMul"));
  char *after = lb_graph_print_string(g, &lb_print_defaults);
  assert_string_equal(before, after);
  free(after);
  lb_diag_free(&d);

  /* the good one: three nodes and two constants added, the sum is the output */
  lb_diag_init(&d, "mlp");
  paths[0] = gp;
  o.has_scale = true, o.scale = 0.5;
  struct lb_lora_info info;
  assert_int_equal(lb_lora_apply(g, &o, &info, &d), LB_OK);
  assert_int_equal(info.pairs, 1);
  assert_int_equal(info.rank_min, 2);
  assert_int_equal(info.source, LB_LORA_SCALE_OPTION);
  assert_int_equal(lb_graph_verify(g, &d), LB_OK);
  assert_int_equal(g->n_nodes, 4 + 5);
  assert_string_equal(g->outputs[0]->name, "y");
  assert_int_equal(g->outputs[0]->producer->op, LB_OP_ADD);
  const struct lb_value *bw = lb_graph_find_value(g, "/fc/MatMul/lora_B.weight");
  assert_non_null(bw);
  const float *bs = lb_value_const_data(g, bw); /* 0.5 * B^T: [r=2, out=3] */
  assert_true(bs[0] == 0.5f && bs[1] == 1.5f && bs[2] == 2.5f && bs[3] == 1.0f);
  const struct lb_value *ma = lb_graph_find_value(g, "/fc/MatMul/lora_A");
  assert_non_null(ma);
  assert_int_equal(lb_node_attr_int(ma->producer, "keep_float", 0), 1);
  free(before);
  lb_diag_free(&d);
  lb_graph_free(g);
  unlink(gp), unlink(bp);
  free(gp), free(bp), free(good.p), free(bad.p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_reads_f32_f16_bf16),    cmocka_unit_test(test_empty_tensor_and_empty_header),
      cmocka_unit_test(test_bad_lengths),           cmocka_unit_test(test_bad_headers),
      cmocka_unit_test(test_mutations_never_crash), cmocka_unit_test(test_lora_all_or_nothing),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
