/* safetensors.h: a strict reader of the safetensors format (untrusted input)
 * and the small JSON reader it and adapter_config.json share.
 *
 * Format (https://github.com/huggingface/safetensors): 8 bytes u64 little
 * endian N, then N bytes of a JSON object {name: {"dtype": "F32", "shape":
 * [..], "data_offsets": [begin, end]}, "__metadata__": {str: str}?} (may end
 * in spaces), then the data; offsets are relative to the data's start.
 * Every offset, size and shape is checked; no input makes the reader crash.
 */
#ifndef LB_FRONTEND_SAFETENSORS_H
#define LB_FRONTEND_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "ir/ir.h"

/* ---- JSON (RFC 8259, strict: no trailing commas, no comments) -------------- */
enum lb_json_kind { LB_JSON_NULL, LB_JSON_BOOL, LB_JSON_NUMBER, LB_JSON_STRING, LB_JSON_ARRAY, LB_JSON_OBJECT };
struct lb_json {
  enum lb_json_kind kind;
  bool b;
  double num;          /* NUMBER */
  bool is_uint;        /* NUMBER written as a plain non-negative integer that fits u64 */
  uint64_t u;          /* its value */
  char *str;           /* STRING (UTF-8, no NUL inside), heap */
  int32_t n;           /* ARRAY / OBJECT: element count */
  struct lb_json *items;
  char **keys;         /* OBJECT: key of items[i] */
};
/* Parses the whole of text[0, len) (surrounding whitespace allowed); nesting is
 * limited to 64 levels. On error returns LB_ERR_PARSE with "what: ..." in d. */
enum lb_status lb_json_parse(const char *text, size_t len, const char *what, struct lb_json *out,
                             struct lb_diag *d);
void lb_json_free(struct lb_json *j);
/* The member `key` of an object, NULL when absent (or j is not an object). */
const struct lb_json *lb_json_get(const struct lb_json *j, const char *key);

/* ---- safetensors ------------------------------------------------------------ */
struct lb_st_tensor {
  char *name;        /* heap */
  enum lb_dtype dtype; /* F32, F16 or BF16 */
  struct lb_shape shape;
  uint64_t begin, end; /* byte range in the data section */
};
struct lb_safetensors {
  const uint8_t *data; /* the data section (borrowed from the caller's buffer) */
  uint64_t data_len;
  int32_t n;
  struct lb_st_tensor *tensors; /* in header order */
};
/* Parses buf[0, len) (borrowed: keep it alive while using `out`). `what`
 * names the file in messages. Dtypes other than F32/F16/BF16, ranks above
 * LB_MAX_RANK, duplicate names, byte ranges outside the data or not matching
 * the shape are errors. */
enum lb_status lb_safetensors_parse(const void *buf, size_t len, const char *what, struct lb_safetensors *out,
                                    struct lb_diag *d);
void lb_safetensors_free(struct lb_safetensors *st);
/* Index of tensor `name`, -1 when absent. */
int32_t lb_safetensors_find(const struct lb_safetensors *st, const char *name);
/* Tensor i widened to f32 (malloc'd, numel floats; never NULL). */
float *lb_safetensors_read_f32(const struct lb_safetensors *st, int32_t i);

/* n elements of src (f32, f16, bf16 little endian) to f32; false for other dtypes. */
bool lb_widen_to_f32(enum lb_dtype dt, const void *src, int64_t n, float *dst);

#endif
