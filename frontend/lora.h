/* lora.h: LoRA adapters added to a loaded graph (`lowbit compile --lora`).
 *
 * Each adapter pair (A [in, r], B [r, out], scale s) targets a linear node
 * y = x W (+ b) of the base model and adds s * (x A) B to its output, in f32:
 *
 *   %y    = matmul(%x, %W) ; %yb = add(%b, %y)                   (base, as loaded)
 *   %t    = fused_matmul(%x, %<node>/lora_A.weight) {act="none", keep_float=1}
 *           value "<node>/lora_A"
 *   %dy   = fused_matmul(%t, %<node>/lora_B.weight) {act="none", keep_float=1}
 *           value "<node>/lora_B" (the weight is s * B)
 *   %sum  = add(%yb, %dy)   value "<node>/lora_sum"; the readers of %yb read it
 *
 * keep_float=1 is the quantize rule's mark (lb_quant_classify): no quantization
 * pass rewrites the adapter matmuls and no layer selection (sensitivity,
 * --quant auto, Hessian calibration) counts them. The sum is placed after the
 * bias add and before whatever reads it, so `fuse` still makes the base layer
 * fused_matmul(x, W, b) (an activation after it then reads the sum and stays a
 * separate node: the adapter must be added before it).
 *
 * Formats (docs/quantization.md, "LoRA adapters"):
 *  - .safetensors as PEFT writes adapter_model.safetensors: keys
 *    [base_model.model.]<module>.lora_A.weight [r, in] and .lora_B.weight
 *    [out, r]; scale lora_alpha / r (alpha / sqrt(r) with use_rslora) from
 *    adapter_config.json beside it, else the --lora-scale value, else 1.
 *    <module> "blocks.0.qkv" matches the node torch.onnx names
 *    "/blocks.0/qkv/MatMul" (or .../Gemm), or a weight initializer
 *    "blocks.0.qkv.weight".
 *  - .onnx whose initializers are <target>.lora_A [in, r], <target>.lora_B
 *    [r, out] and optionally a scalar <target>.lora_scale; <target> is a node
 *    name or the name of its weight.
 * f16 and bf16 adapter tensors are widened to f32.
 */
#ifndef LB_FRONTEND_LORA_H
#define LB_FRONTEND_LORA_H

#include "ir/ir.h"

struct lb_lora_options {
  const char *const *paths; /* adapter files */
  int32_t n_paths;
  bool has_scale;           /* --lora-scale given */
  double scale;
  int64_t max_tensor_bytes; /* 0: 16 GiB */
};

/* What was applied from one adapter file (for the driver's summary line). */
enum lb_lora_scale_source {
  LB_LORA_SCALE_CONFIG,  /* adapter_config.json: lora_alpha / r */
  LB_LORA_SCALE_FILE,    /* ONNX: <target>.lora_scale (for every pair) */
  LB_LORA_SCALE_OPTION,  /* --lora-scale */
  LB_LORA_SCALE_DEFAULT, /* nothing said: 1 */
  LB_LORA_SCALE_MIXED    /* ONNX: some pairs with lora_scale, others not */
};
struct lb_lora_info {
  int32_t pairs;
  int64_t rank_min, rank_max;
  double scale; /* of the first pair */
  enum lb_lora_scale_source source;
};

/* Reads every adapter, matches each pair to the nodes of g and checks shapes;
 * all problems (targets that match nothing, missing halves, shape mismatches,
 * unreadable files) are reported at once and g is then left unchanged. On
 * success rewrites g as above and fills info[n_paths] (may be NULL). Several
 * pairs on one node add their deltas. (Shape inference of the new nodes cannot
 * fail after those checks; if it did, g would be partly rewritten.) */
enum lb_status lb_lora_apply(struct lb_graph *g, const struct lb_lora_options *o, struct lb_lora_info *info,
                             struct lb_diag *d);

#endif
