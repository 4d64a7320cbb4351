/* model_builder.h: builds ONNX ModelProtos in C (protobuf-c structs) for the
 * frontend tests, so every test model is visible next to its test. All memory
 * belongs to the builder and is freed by mb_free. */
#ifndef LB_TEST_MODEL_BUILDER_H
#define LB_TEST_MODEL_BUILDER_H

#include <stddef.h>
#include <stdint.h>

#include "onnx.pb-c.h"

enum { T_F32 = 1, T_U8 = 2, T_I8 = 3, T_U16 = 4, T_I16 = 5, T_I32 = 6, T_I64 = 7, T_STR = 8,
       T_BOOL = 9, T_F16 = 10, T_F64 = 11, T_U32 = 12, T_U64 = 13, T_BF16 = 16 };

struct mb {
  Onnx__ModelProto model;
  Onnx__GraphProto graph;
  void **allocs;
  size_t n_allocs, cap_allocs;
};

struct mb *mb_new(int64_t opset);           /* ir_version 8, ai.onnx opset (<= 0: none) */
void *mb_alloc(struct mb *m, size_t size);  /* zeroed, freed by mb_free */
char *mb_strdup(struct mb *m, const char *s);
void mb_opset(struct mb *m, const char *domain, int64_t version);
/* dims: comma-separated; a number is a dim_value, a name a dim_param, "?" neither; "" scalar */
Onnx__ValueInfoProto *mb_value_info(struct mb *m, const char *name, int elem, const char *dims);
void mb_input(struct mb *m, const char *name, int elem, const char *dims);
void mb_output(struct mb *m, const char *name);
/* a tensor with name, type and dims but no data (callers fill a storage form) */
Onnx__TensorProto *mb_tensor(struct mb *m, const char *name, int elem, const char *dims);
Onnx__TensorProto *mb_raw(struct mb *m, const char *name, int elem, const char *dims,
                          const void *data, size_t len);
void mb_add_init(struct mb *m, Onnx__TensorProto *t);
Onnx__TensorProto *mb_init_f32(struct mb *m, const char *name, const char *dims, const float *v);
Onnx__TensorProto *mb_init_i64(struct mb *m, const char *name, const char *dims, const int64_t *v);
/* ins/outs: comma-separated names, "" entries for omitted optional inputs */
Onnx__NodeProto *mb_node(struct mb *m, const char *op, const char *name, const char *ins,
                         const char *outs);
void mb_node_domain(struct mb *m, Onnx__NodeProto *n, const char *domain);
void mb_attr_i(struct mb *m, Onnx__NodeProto *n, const char *name, int64_t v);
void mb_attr_f(struct mb *m, Onnx__NodeProto *n, const char *name, float v);
void mb_attr_s(struct mb *m, Onnx__NodeProto *n, const char *name, const char *v);
void mb_attr_ints(struct mb *m, Onnx__NodeProto *n, const char *name, size_t count,
                  const int64_t *v);
void mb_attr_floats(struct mb *m, Onnx__NodeProto *n, const char *name, size_t count,
                    const float *v);
void mb_attr_t(struct mb *m, Onnx__NodeProto *n, const char *name, Onnx__TensorProto *t);
void mb_attr_g(struct mb *m, Onnx__NodeProto *n, const char *name, Onnx__GraphProto *g);
uint8_t *mb_pack(struct mb *m, size_t *len); /* malloc'd; caller frees */
void mb_free(struct mb *m);

#endif
