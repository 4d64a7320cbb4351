/* fe_internal.h: state shared by the ONNX importer's files (not a public API).
 *
 *   onnx_load.c      bytes -> ModelProto -> checks -> graph (driver, folding, errors)
 *   onnx_canon.c     one ONNX node -> IR nodes in the canonical forms of docs/ir-ops.md
 *   onnx_tensor.c    TensorProto -> blob (raw, typed fields, external data); --bind files
 *   onnx_wire.c      nesting-depth scan of the protobuf bytes before unpacking
 */
#ifndef LB_FRONTEND_FE_INTERNAL_H
#define LB_FRONTEND_FE_INTERNAL_H

#include "frontend/onnx.h"
#include "onnx.pb-c.h"

enum {
  FE_MIN_OPSET = 1,
  FE_MAX_OPSET = 21,
  FE_FOLD_LIMIT = 1 << 20, /* fold all-constant nodes whose outputs have <= this many elements */
};

/* string -> pointer hash map (keys are borrowed; they outlive the map) */
struct fe_map {
  const char **keys;
  void **vals;
  int32_t cap, count;
};
void fe_map_free(struct fe_map *m);
void fe_map_put(struct fe_map *m, const char *key, void *val);
void *fe_map_get(const struct fe_map *m, const char *key);
bool fe_map_has(const struct fe_map *m, const char *key);

struct fe_ctx {
  struct lb_graph *g;
  struct lb_diag *d;
  const struct lb_onnx_options *opt;
  const char *base_dir;   /* external data folder, NULL: external data refused */
  int64_t opset;          /* default domain */
  int64_t max_bytes;
  struct fe_map values;   /* ONNX value name -> struct lb_value * */
  struct fe_map names;    /* every name the ONNX graph defines (fresh names avoid them) */
  struct fe_map used;     /* names read by some node or graph output */
  /* int4/uint4 tensors (loaded unpacked as i8/u8): name -> (void *)(intptr_t)4 */
  struct fe_map narrow_bits;
  /* blocked DequantizeLinear results usable as a qmatmul weight: value name ->
   * struct fe_lowbit_weight * (arena) */
  struct fe_map lowbit_weights;
};

/* A [K,N] weight dequantized group-wise along K (DequantizeLinear axis=0,
 * block_size): its codes and qparams in the qmatmul contract (docs/ir-ops.md
 * "Low-bit weights"), for MatMul to read instead of the f32 constant. */
struct fe_lowbit_weight {
  int64_t k, n;
  int8_t *codes;           /* arena, [K,N] */
  struct lb_qparams *qp;   /* arena */
};

/* One ONNX node being imported. */
struct fe_node {
  struct fe_ctx *c;
  const Onnx__NodeProto *np;
  const char *name;        /* node name, or its first output's name when empty */
  enum lb_op op;           /* ONNX op (op table entry) */
  struct lb_node diag;     /* only for lb_diag_error's `node "n" (Op)` prefix */
  int32_t n_in, n_out;
  struct lb_value **in;    /* NULL for omitted optional inputs */
  struct lb_value **out;   /* filled by fe_canon_node; NULL = not produced */
};

/* ---- onnx_load.c: helpers for the canonicalizer ---- */
/* A name not used in the graph nor in the ONNX model, based on `base` (arena). */
const char *fe_fresh_name(struct fe_ctx *c, const char *base);
/* Appends an IR node (outputs named by out_names, NULL entries = fresh names). */
struct lb_node *fe_add(struct fe_node *fn, enum lb_op op, struct lb_value *const *ins,
                       int32_t n_ins, const char *const *out_names, int32_t n_outs);
/* Infers n's output types and folds it into constants if all its inputs are constant
 * and its outputs are small (n's output values then belong to const nodes). */
enum lb_status fe_finish(struct fe_node *fn, struct lb_node *n);
/* A new const node owning `data` (64-aligned malloc, size = type bytes). */
struct lb_value *fe_const_owned(struct fe_ctx *c, const char *name, const struct lb_type *t,
                                void *data);
/* A new const node with a copy of data. */
struct lb_value *fe_const_copy(struct fe_ctx *c, const char *name, const struct lb_type *t,
                               const void *data);
/* Requires input `idx` (which decides shapes) to be a compile-time constant; reports
 * which graph input to --bind otherwise. */
enum lb_status fe_need_const(struct fe_node *fn, int32_t idx, const char *what);
/* True if ONNX output k of the node is read by some node or graph output. */
bool fe_output_used(const struct fe_node *fn, int32_t k);
/* 64-aligned zeroed allocation, NULL when out of memory. */
void *fe_alloc(size_t size);

/* ---- onnx_canon.c ---- */
/* Builds the IR for one ONNX node (inputs already resolved), filling fn->out. */
enum lb_status fe_canon_node(struct fe_node *fn);
/* Whether the importer has a rule for this op (ops.def may list ops it does not). */
bool fe_canon_handles(enum lb_op op);

/* ---- onnx_tensor.c ---- */
/* Converts a TensorProto (any storage form) into a type and 64-aligned heap data.
 * `what` names the tensor in messages ("initializer \"w\""). */
enum lb_status fe_tensor_load(struct fe_ctx *c, const Onnx__TensorProto *t, const char *what,
                              struct lb_type *type, void **data);
/* Reads a --bind file (.npy or a TensorProto .pb). */
enum lb_status fe_bind_load(struct fe_ctx *c, const char *path, struct lb_type *type,
                            void **data);
/* Reads a whole file (at most `limit` bytes) into malloc'd memory. */
enum lb_status fe_read_file(struct lb_diag *d, const char *path, int64_t limit, void **data,
                            size_t *len);

/* ---- onnx_wire.c ---- */
/* Walks the protobuf wire format of a ModelProto and refuses subgraph nesting deeper
 * than max_graph_depth (and type nesting deeper than a fixed limit) before protobuf-c
 * unpacks it recursively. LB_ERR_PARSE on malformed bytes, LB_ERR_LIMIT on depth. */
enum lb_status fe_wire_check(const uint8_t *data, size_t len, int32_t max_graph_depth,
                             struct lb_diag *d);

#endif
