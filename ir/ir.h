/* ir.h: lowbit's typed SSA graph IR.
 *
 * A graph is a list of nodes in topological order. Every node produces one or
 * more values; every value has an element type and a fully static shape. A
 * constant is a node of op LB_OP_CONST whose data is a blob owned by the
 * graph. Values keep their ONNX names (unique within a graph). IR objects are
 * allocated from the graph's arena and freed with the graph; blob bytes are
 * separate heap allocations, also owned by the graph.
 */
#ifndef LB_IR_H
#define LB_IR_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct lb_node;
struct lb_graph;

/* ---- invariants: on in every build ----------------------------------------- */
void lb_assert_fail(const char *expr, const char *file, int line);
#define LB_ASSERT(e) ((e) ? (void)0 : lb_assert_fail(#e, __FILE__, __LINE__))

/* ---- status and diagnostics ------------------------------------------------ */
enum lb_status {
  LB_OK = 0,
  LB_ERR_IO,          /* a file could not be read or written */
  LB_ERR_PARSE,       /* malformed ONNX protobuf or IR text */
  LB_ERR_UNSUPPORTED, /* valid input that lowbit does not handle (yet) */
  LB_ERR_INVALID,     /* input that breaks ONNX or IR rules */
  LB_ERR_LIMIT,       /* a size limit was exceeded */
  LB_ERR_BACKEND,     /* LLVM or the linker failed */
  LB_ERR_USAGE,       /* bad command line */
  LB_STATUS_COUNT
};

/* Collects error messages. The first error sets `status`; messages are
 * appended (one per line) so that e.g. every unsupported op of a model is
 * reported at once. `file` prefixes every message. */
struct lb_diag {
  enum lb_status status;
  const char *file;
  char *text;  /* heap, '\n'-separated lines, NULL when empty */
  size_t len, cap;
  int count;
};
void lb_diag_init(struct lb_diag *d, const char *file);
void lb_diag_free(struct lb_diag *d);
/* Formats `file: node "name" (Op): error: msg`; node may be NULL. Returns st. */
enum lb_status lb_diag_error(struct lb_diag *d, enum lb_status st, const struct lb_node *node,
                             const char *fmt, ...) __attribute__((format(printf, 4, 5)));
enum lb_status lb_diag_errorv(struct lb_diag *d, enum lb_status st, const struct lb_node *node,
                              const char *fmt, va_list ap);
/* Adds an error whose text the caller formatted completely (with its own
 * position prefix and trailing newline), e.g. the IR parser's caret display. */
void lb_diag_append_error(struct lb_diag *d, enum lb_status st, const char *text, size_t n);
void lb_diag_note(struct lb_diag *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const char *lb_status_name(enum lb_status st);

/* ---- arena ------------------------------------------------------------------- */
struct lb_arena_chunk;
struct lb_arena {
  struct lb_arena_chunk *head;
  size_t used_total;
};
void *lb_arena_alloc(struct lb_arena *a, size_t size); /* zeroed, 16-aligned, never NULL */
char *lb_arena_strdup(struct lb_arena *a, const char *s);
char *lb_arena_strndup(struct lb_arena *a, const char *s, size_t n);
void lb_arena_free(struct lb_arena *a);

/* ---- element types ---------------------------------------------------------- */
enum lb_dtype {
  LB_DTYPE_UNDEF = 0,
#define DTYPE(E, name, size, onnx, is_float, is_signed) LB_DTYPE_##E,
#include "ir/dtypes.def"
#undef DTYPE
  LB_DTYPE_COUNT
};
struct lb_dtype_traits {
  const char *name; /* "f32" */
  int size;         /* bytes per element */
  int onnx;         /* TensorProto.DataType */
  bool is_float, is_signed;
};
extern const struct lb_dtype_traits lb_dtype_traits[LB_DTYPE_COUNT];
enum lb_dtype lb_dtype_from_onnx(int onnx_code);    /* UNDEF if unknown */
enum lb_dtype lb_dtype_from_name(const char *name); /* UNDEF if unknown */

#define LB_MAX_RANK 8
struct lb_shape {
  int32_t rank;
  int64_t dims[LB_MAX_RANK];
};
struct lb_type {
  enum lb_dtype dtype;
  struct lb_shape shape;
};
int64_t lb_shape_numel(const struct lb_shape *s); /* 1 for rank 0 */
bool lb_shape_equal(const struct lb_shape *a, const struct lb_shape *b);
int64_t lb_type_nbytes(const struct lb_type *t);
/* Checked element count: false if any dim < 0 or the product/bytes overflow `limit`. */
bool lb_shape_numel_checked(const struct lb_shape *s, int64_t limit, int64_t *out);

/* ---- quantization parameters (filled by the quantization passes) ----------- */
/* What the codes of a quantized value are: integers, or 8-bit float bit
 * patterns (docs/ir-ops.md "Low-bit weights", FP8). */
enum lb_qfloat { LB_QFLOAT_NONE = 0, LB_QFLOAT_E4M3, LB_QFLOAT_E5M2, LB_QFLOAT_COUNT };

struct lb_qparams {
  int32_t bits;        /* 8, 4, 3, 2 */
  int32_t axis;        /* -1 = per tensor */
  int32_t group_size;  /* 0 = whole axis */
  bool symmetric;
  bool is_unsigned;    /* integer range [0, 2^bits) instead of [-2^(bits-1), 2^(bits-1)) */
  int64_t n;           /* number of scales */
  float *scales;       /* arena */
  int32_t *zero_points;/* arena; NULL when symmetric */
  enum lb_qfloat fp8;  /* NONE: integer codes; E4M3/E5M2: u8 float codes, bits 8 */
};

/* ---- 8-bit floats (ir/fp8.c) -------------------------------------------------- */
/* "e4m3", "e5m2" (NULL for NONE); parse returns false for other names. */
const char *lb_qfloat_name(enum lb_qfloat f);
bool lb_qfloat_parse(const char *s, size_t len, enum lb_qfloat *out);
/* Largest finite value: 448 (e4m3), 57344 (e5m2). */
float lb_fp8_max(enum lb_qfloat f);
/* The exact value of a code (NaN, and +-inf for e5m2, included). */
float lb_fp8_decode(uint8_t code, enum lb_qfloat f);
/* The nearest code (ties to even), finite values beyond the largest saturating
 * to it (e4m3: +-inf too; e5m2 keeps +-inf); NaN -> 0x7F. */
uint8_t lb_fp8_encode(float x, enum lb_qfloat f);

/* ---- IEEE binary16 (ir/f16.c): f16 weights --------------------------------------- */
/* The exact value of a half's bits (inf and NaN with its payload included). */
float lb_f16_decode(uint16_t h);
/* Round to nearest even; finite values from 65520 up overflow to +-inf (IEEE);
 * NaN stays NaN (quieted, sign and top payload kept). */
uint16_t lb_f16_encode(float x);

/* ---- op table ---------------------------------------------------------------- */
enum lb_op_kind {
  LB_KIND_CONST, LB_KIND_UNARY, LB_KIND_BINARY, LB_KIND_REDUCE, LB_KIND_NORM,
  LB_KIND_MATMUL, LB_KIND_CONV, LB_KIND_POOL, LB_KIND_MOVE, LB_KIND_SHAPE, LB_KIND_QUANT,
  LB_KIND_COUNT
};
enum lb_op {
#define OP(E, dom, onnx, ir, since, mini, maxi, mino, maxo, kind) LB_OP_##E,
#include "ir/ops.def"
#undef OP
  LB_OP_COUNT
};
struct lb_op_info {
  const char *domain, *onnx_name, *ir_name;
  int since_opset;
  int min_inputs, max_inputs, min_outputs, max_outputs; /* -1 = variadic */
  enum lb_op_kind kind;
};
extern const struct lb_op_info lb_op_info[LB_OP_COUNT];
/* LB_OP_COUNT when not found. */
enum lb_op lb_op_from_onnx(const char *domain, const char *name);
enum lb_op lb_op_from_ir_name(const char *name);

/* ---- blobs: constant data owned by the graph ------------------------------- */
struct lb_blob {
  char *name;   /* arena; unique in the graph */
  size_t size;  /* bytes */
  void *data;   /* heap (malloc, 64-aligned); NULL when elided in a dump */
  uint64_t hash;/* FNV-1a 64 of data, kept for elided dumps */
};

/* ---- attributes --------------------------------------------------------------- */
enum lb_attr_kind {
  LB_ATTR_INT, LB_ATTR_FLOAT, LB_ATTR_STRING, LB_ATTR_INTS, LB_ATTR_FLOATS, LB_ATTR_STRINGS,
  LB_ATTR_TENSOR, LB_ATTR_KIND_COUNT
};
struct lb_attr {
  const char *name;
  enum lb_attr_kind kind;
  int64_t i;
  double f;
  const char *s;
  int64_t n;            /* element count of ints/floats/strings */
  int64_t *ints;
  double *floats;
  const char **strings;
  int32_t blob;         /* TENSOR: index into graph->blobs */
  struct lb_type ttype; /* TENSOR: its type */
};

/* ---- values and nodes ------------------------------------------------------- */
struct lb_node;
struct lb_value {
  const char *name;
  struct lb_type type;
  struct lb_node *producer;  /* NULL for graph inputs */
  int32_t producer_output;   /* index among producer's outputs */
  struct lb_qparams *qparams;/* NULL for float values */
  int64_t mem_offset;        /* plan-memory: byte offset in the activation arena, -1 = none */
  int32_t id;                /* dense index, renumbered by lb_graph_index_values() */
};

struct lb_node {
  enum lb_op op;
  const char *name;          /* ONNX node name, may be "" */
  int32_t n_inputs, n_outputs;
  struct lb_value **inputs;  /* an entry may be NULL for an omitted optional input */
  struct lb_value **outputs;
  int32_t n_attrs;
  struct lb_attr *attrs;     /* sorted by name */
  int32_t blob;              /* LB_OP_CONST: its data; -1 otherwise */
  bool dead;                 /* marked for removal by lb_graph_compact() */
};

struct lb_graph {
  struct lb_arena arena;
  const char *name;
  int32_t n_inputs, n_outputs;
  struct lb_value **inputs, **outputs;
  int32_t n_nodes, cap_nodes;
  struct lb_node **nodes;    /* topological order */
  int32_t n_blobs, cap_blobs;
  struct lb_blob *blobs;
  int32_t n_values;          /* every value ever created; ids are < n_values */
  int64_t activations_size;  /* set by plan-memory, 0 before */
  int64_t opset;             /* default-domain opset the model was imported with */
  /* name -> value hash table (open addressing) for unique names and lookup */
  struct lb_value **names;
  int32_t names_cap, names_count;
};

/* ---- building ----------------------------------------------------------------- */
struct lb_graph *lb_graph_new(const char *name);
void lb_graph_free(struct lb_graph *g);
struct lb_value *lb_value_new(struct lb_graph *g, const char *name, struct lb_type type);
/* Creates a node with the given inputs and n_outputs fresh outputs (named from
 * out_names, or derived from the node name when NULL), appended at the end. */
struct lb_node *lb_graph_add_node(struct lb_graph *g, enum lb_op op, const char *name,
                                  struct lb_value *const *inputs, int32_t n_inputs,
                                  const char *const *out_names, int32_t n_outputs);
/* Same, but placed just before node `before` (which is already in g). */
struct lb_node *lb_graph_insert_node(struct lb_graph *g, struct lb_node *before, enum lb_op op,
                                     const char *name, struct lb_value *const *inputs,
                                     int32_t n_inputs, const char *const *out_names,
                                     int32_t n_outputs);
void lb_graph_add_input(struct lb_graph *g, struct lb_value *v);
void lb_graph_add_output(struct lb_graph *g, struct lb_value *v);
/* Adds a blob, taking ownership of `data` (malloc'd). Returns its index. */
int32_t lb_graph_add_blob(struct lb_graph *g, const char *name, void *data, size_t size);
/* A const node holding a copy of `data` (type->numel * size bytes), appended. */
struct lb_node *lb_graph_add_const(struct lb_graph *g, const char *value_name,
                                   const struct lb_type *type, const void *data);
/* Same, placed before `before`. */
struct lb_node *lb_graph_insert_const(struct lb_graph *g, struct lb_node *before,
                                      const char *value_name, const struct lb_type *type,
                                      const void *data);
void *lb_blob_alloc(size_t size); /* 64-aligned, zeroed; never NULL (aborts on OOM) */
uint64_t lb_hash_bytes(const void *data, size_t size);
/* Data of a const value, or NULL if v is not produced by a const node with data. */
const void *lb_value_const_data(const struct lb_graph *g, const struct lb_value *v);
bool lb_value_is_const(const struct lb_value *v);

/* attributes: set replaces an attribute of the same name; keeps them sorted */
void lb_node_set_attr_int(struct lb_graph *g, struct lb_node *n, const char *name, int64_t v);
void lb_node_set_attr_float(struct lb_graph *g, struct lb_node *n, const char *name, double v);
void lb_node_set_attr_string(struct lb_graph *g, struct lb_node *n, const char *name, const char *v);
void lb_node_set_attr_ints(struct lb_graph *g, struct lb_node *n, const char *name,
                           const int64_t *v, int64_t count);
void lb_node_set_attr_floats(struct lb_graph *g, struct lb_node *n, const char *name,
                             const double *v, int64_t count);
void lb_node_set_attr_strings(struct lb_graph *g, struct lb_node *n, const char *name,
                              const char *const *v, int64_t count);
void lb_node_set_attr_tensor(struct lb_graph *g, struct lb_node *n, const char *name,
                             const struct lb_type *type, int32_t blob);
void lb_node_remove_attr(struct lb_node *n, const char *name);
const struct lb_attr *lb_node_attr(const struct lb_node *n, const char *name);
int64_t lb_node_attr_int(const struct lb_node *n, const char *name, int64_t dflt);
double lb_node_attr_float(const struct lb_node *n, const char *name, double dflt);
const char *lb_node_attr_string(const struct lb_node *n, const char *name, const char *dflt);

/* ---- editing -------------------------------------------------------------------- */
/* Rewrites every use of `from` (node inputs and graph outputs) to `to`. */
void lb_graph_replace_uses(struct lb_graph *g, struct lb_value *from, struct lb_value *to);
/* Removes nodes marked dead and blobs no const node references (renumbering). */
void lb_graph_compact(struct lb_graph *g);
/* Assigns value->id densely in definition order; returns the count. */
int32_t lb_graph_index_values(struct lb_graph *g);
/* uses[v->id] = number of node inputs and graph outputs that read v. Caller frees. */
int32_t *lb_graph_count_uses(struct lb_graph *g);
/* Returns a value name not yet used in g, based on `base` (arena). */
const char *lb_graph_unique_name(struct lb_graph *g, const char *base);
struct lb_value *lb_graph_find_value(const struct lb_graph *g, const char *name);
/* A deep copy (names, node names, attributes, blobs, qparams, memory offsets),
 * for work that instruments or consumes its own graph (calibration, the quant
 * report). Renumbers g's value ids (lb_graph_index_values), nothing else. */
struct lb_graph *lb_graph_clone(const struct lb_graph *g);

/* ---- writing files atomically (ir/atomic_file.c) ----------------------------- */
/* Opens a temporary file beside `path`; write to it, then lb_atomic_commit()
 * renames it to `path` (or removes it on any error). Never leaves a partial
 * file. Returns NULL with a message in d on failure. */
FILE *lb_atomic_open(const char *path, char **tmp, struct lb_diag *d);
/* Closes f and renames tmp to path; frees tmp. */
enum lb_status lb_atomic_commit(FILE *f, char *tmp, const char *path, struct lb_diag *d);

/* ---- text form, verifier (ir/print.c, ir/parse.c, ir/verify.c) -------------- */
enum lb_print_blobs {
  LB_PRINT_BLOBS_FULL,   /* blob bytes inline: the file is a complete model */
  LB_PRINT_BLOBS_ELIDED, /* hash and size only: for dumps; parses back without data */
};
struct lb_print_options {
  enum lb_print_blobs blobs;
  int64_t inline_limit; /* constants up to this many elements print as dense<[...]> */
};
extern const struct lb_print_options lb_print_defaults; /* FULL, 16 */
void lb_graph_print(const struct lb_graph *g, FILE *out, const struct lb_print_options *opt);
/* Prints to a heap string (caller frees). */
char *lb_graph_print_string(const struct lb_graph *g, const struct lb_print_options *opt);
enum lb_status lb_graph_parse(const char *text, size_t len, const char *filename,
                              struct lb_graph **out, struct lb_diag *d);
enum lb_status lb_graph_parse_file(const char *path, struct lb_graph **out, struct lb_diag *d);
/* Checks SSA, topological order, types against shape rules, attributes. */
enum lb_status lb_graph_verify(const struct lb_graph *g, struct lb_diag *d);

/* ---- shape rules and reference evaluation (ir/infer.c, ir/eval.c) ---------- */
/* Computes the output types of n from its input types (and constant inputs
 * where the op needs values, e.g. Reshape's target). Writes them to the
 * outputs. Reports errors with the node's name and op. */
enum lb_status lb_infer_node(struct lb_graph *g, struct lb_node *n, struct lb_diag *d);
/* Scalar reference implementation of every op: evaluates n on input data
 * (ins[i] points at input i's dense data, NULL for omitted inputs) into outs
 * (buffers sized by the outputs' types). Used by constant folding and as the
 * oracle in kernel tests. */
enum lb_status lb_eval_node(const struct lb_graph *g, const struct lb_node *n,
                            const void *const *ins, void *const *outs, struct lb_diag *d);

/* ---- additions for shape rules (ir/infer.c) --------------------------------- */
/* Numpy (multidirectional) broadcast of a and b into out (which may alias
 * either). LB_ERR_INVALID, with out untouched, when some pair of dims differs
 * and neither is 1. Writes no diagnostic. */
enum lb_status lb_broadcast_shapes(const struct lb_shape *a, const struct lb_shape *b,
                                   struct lb_shape *out);

/* pad: the source index along one dim for output index o, or -1 for the fill
 * value. mode is the first letter of the pad mode: 'c'onstant, 'e'dge,
 * 'r'eflect, 'w'rap. Shared by the evaluator and the kernel. */
int64_t lb_pad_source_index(int64_t o, int64_t dim, int64_t begin, int64_t end, char mode);

#endif
