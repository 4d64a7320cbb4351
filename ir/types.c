/* types.c: element type traits, the op table, shape helpers. */
#include "ir/ir.h"

#include <string.h>

const struct lb_dtype_traits lb_dtype_traits[LB_DTYPE_COUNT] = {
    [LB_DTYPE_UNDEF] = {"undef", 0, 0, false, false},
#define DTYPE(E, name, size, onnx, is_float, is_signed) \
  [LB_DTYPE_##E] = {name, size, onnx, is_float, is_signed},
#include "ir/dtypes.def"
#undef DTYPE
};

const struct lb_op_info lb_op_info[LB_OP_COUNT] = {
#define OP(E, dom, onnx, ir, since, mini, maxi, mino, maxo, kind) \
  [LB_OP_##E] = {dom, onnx, ir, since, mini, maxi, mino, maxo, kind},
#include "ir/ops.def"
#undef OP
};

enum lb_dtype lb_dtype_from_onnx(int onnx_code) {
  for (int t = 1; t < LB_DTYPE_COUNT; t++)
    if (lb_dtype_traits[t].onnx == onnx_code) return (enum lb_dtype)t;
  return LB_DTYPE_UNDEF;
}

enum lb_dtype lb_dtype_from_name(const char *name) {
  for (int t = 1; t < LB_DTYPE_COUNT; t++)
    if (strcmp(lb_dtype_traits[t].name, name) == 0) return (enum lb_dtype)t;
  return LB_DTYPE_UNDEF;
}

enum lb_op lb_op_from_onnx(const char *domain, const char *name) {
  if (!domain || strcmp(domain, "ai.onnx") == 0) domain = "";
  for (int op = 0; op < LB_OP_COUNT; op++) {
    const struct lb_op_info *i = &lb_op_info[op];
    if (i->onnx_name && strcmp(i->onnx_name, name) == 0 && strcmp(i->domain, domain) == 0)
      return (enum lb_op)op;
  }
  return LB_OP_COUNT;
}

enum lb_op lb_op_from_ir_name(const char *name) {
  for (int op = 0; op < LB_OP_COUNT; op++)
    if (strcmp(lb_op_info[op].ir_name, name) == 0) return (enum lb_op)op;
  return LB_OP_COUNT;
}

int64_t lb_shape_numel(const struct lb_shape *s) {
  int64_t n = 1;
  for (int i = 0; i < s->rank; i++) n *= s->dims[i];
  return n;
}

bool lb_shape_numel_checked(const struct lb_shape *s, int64_t limit, int64_t *out) {
  int64_t n = 1;
  for (int i = 0; i < s->rank; i++) {
    int64_t d = s->dims[i];
    if (d < 0) return false;
    if (d != 0 && n > limit / d) return false;
    n *= d;
  }
  if (n > limit) return false;
  *out = n;
  return true;
}

bool lb_shape_equal(const struct lb_shape *a, const struct lb_shape *b) {
  if (a->rank != b->rank) return false;
  for (int i = 0; i < a->rank; i++)
    if (a->dims[i] != b->dims[i]) return false;
  return true;
}

int64_t lb_type_nbytes(const struct lb_type *t) {
  return lb_shape_numel(&t->shape) * lb_dtype_traits[t->dtype].size;
}
