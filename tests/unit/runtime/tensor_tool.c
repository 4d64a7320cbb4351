/* tensor_tool.c: writes and dumps tensor files for cli_test.sh.
 *   tensor_tool make FILE pb|npy DTYPE DIMS VALUE...   (DIMS "2,3", or "-" for a scalar)
 *   tensor_tool dump FILE        prints "f32[2,3] 1 2 3 4 5 6"
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/lbrt.h"

static const int32_t dtypes[] = {LBRT_DTYPE_F32, LBRT_DTYPE_U8,   LBRT_DTYPE_I8,  LBRT_DTYPE_U16,
                                 LBRT_DTYPE_I16, LBRT_DTYPE_I32,  LBRT_DTYPE_I64, LBRT_DTYPE_BOOL,
                                 LBRT_DTYPE_F64, LBRT_DTYPE_U32,  LBRT_DTYPE_U64};

static void put(struct lbrt_tensor *t, int64_t i, double v) {
  void *p = (char *)t->data + i * lbrt_dtype_size(t->dtype);
  switch (t->dtype) {
  case LBRT_DTYPE_F32: *(float *)p = (float)v; break;
  case LBRT_DTYPE_F64: *(double *)p = v; break;
  case LBRT_DTYPE_U8: case LBRT_DTYPE_BOOL: *(uint8_t *)p = (uint8_t)v; break;
  case LBRT_DTYPE_I8: *(int8_t *)p = (int8_t)v; break;
  case LBRT_DTYPE_U16: *(uint16_t *)p = (uint16_t)v; break;
  case LBRT_DTYPE_I16: *(int16_t *)p = (int16_t)v; break;
  case LBRT_DTYPE_I32: *(int32_t *)p = (int32_t)v; break;
  case LBRT_DTYPE_U32: *(uint32_t *)p = (uint32_t)v; break;
  case LBRT_DTYPE_I64: *(int64_t *)p = (int64_t)v; break;
  case LBRT_DTYPE_U64: *(uint64_t *)p = (uint64_t)v; break;
  }
}

static double get(const struct lbrt_tensor *t, int64_t i) {
  const void *p = (const char *)t->data + i * lbrt_dtype_size(t->dtype);
  switch (t->dtype) {
  case LBRT_DTYPE_F32: return *(const float *)p;
  case LBRT_DTYPE_F64: return *(const double *)p;
  case LBRT_DTYPE_U8: case LBRT_DTYPE_BOOL: return *(const uint8_t *)p;
  case LBRT_DTYPE_I8: return *(const int8_t *)p;
  case LBRT_DTYPE_U16: return *(const uint16_t *)p;
  case LBRT_DTYPE_I16: return *(const int16_t *)p;
  case LBRT_DTYPE_I32: return *(const int32_t *)p;
  case LBRT_DTYPE_U32: return *(const uint32_t *)p;
  case LBRT_DTYPE_I64: return (double)*(const int64_t *)p;
  case LBRT_DTYPE_U64: return (double)*(const uint64_t *)p;
  default: return 0;
  }
}

int main(int argc, char **argv) {
  char err[1024];
  if (argc == 3 && strcmp(argv[1], "dump") == 0) {
    struct lbrt_tensor t;
    if (lbrt_tensor_read(argv[2], &t, NULL, err, sizeof err) != LBRT_OK) {
      fprintf(stderr, "tensor_tool: %s\n", err);
      return 1;
    }
    char shape[256];
    lbrt_shape_format(shape, sizeof shape, t.dtype, t.rank, t.dims);
    printf("%s", shape);
    for (int64_t i = 0; i < t.nbytes / lbrt_dtype_size(t.dtype); i++) printf(" %.9g", get(&t, i));
    printf("\n");
    lbrt_tensor_free(&t);
    return 0;
  }
  if (argc >= 6 && strcmp(argv[1], "make") == 0) {
    struct lbrt_tensor t = {0};
    for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++)
      if (strcmp(argv[4], lbrt_dtype_name(dtypes[i])) == 0) t.dtype = dtypes[i];
    if (!t.dtype) return fprintf(stderr, "tensor_tool: bad dtype\n"), 2;
    if (strcmp(argv[5], "-") != 0) {
      for (char *s = argv[5]; *s && t.rank < LBRT_MAX_RANK; s += *s == ',')
        t.dims[t.rank++] = strtoll(s, &s, 10);
    }
    int64_t count;
    if (lbrt_shape_count(t.rank, t.dims, lbrt_dtype_size(t.dtype), &count, &t.nbytes) ||
        count != argc - 6)
      return fprintf(stderr, "tensor_tool: %d values for %lld elements\n", argc - 6,
                     (long long)count), 2;
    t.data = calloc((size_t)t.nbytes + 1, 1);
    for (int64_t i = 0; i < count; i++) put(&t, i, strtod(argv[6 + i], NULL));
    enum lbrt_format fmt = strcmp(argv[3], "npy") == 0 ? LBRT_FORMAT_NPY : LBRT_FORMAT_PB;
    enum lbrt_status s = lbrt_tensor_write(argv[2], &t, fmt, err, sizeof err);
    free(t.data);
    if (s != LBRT_OK) return fprintf(stderr, "tensor_tool: %s\n", err), 1;
    return 0;
  }
  fprintf(stderr, "usage: tensor_tool make FILE pb|npy DTYPE DIMS VALUE... | dump FILE\n");
  return 2;
}
