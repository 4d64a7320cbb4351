#!/usr/bin/python3
"""Adapters and references for tests/cli/lora.sh (LoRA adapters, issue 5).

Usage: lora_models.py FIXTURE_ONNX OUTDIR

Writes into OUTDIR, for the byte GPT fixture:
  peft/adapter_model.safetensors, peft/adapter_config.json
      what PEFT saves for LoRA (r=8, lora_alpha=16: scale 2) on blocks.{0..3}.qkv and
      blocks.{0..3}.fc: keys base_model.model.<module>.lora_A.weight [r, in] and
      .lora_B.weight [out, r] (torch Linear orientation); block 0 stored as F16,
      block 1 as BF16, the rest F32. Random A ~ N(0, 1/in), B ~ N(0, 0.05^2): the
      adapter moves the logits by far more than 4-bit rounding does.
  noconfig/adapter_model.safetensors   the same tensors without adapter_config.json
  adapter.onnx     the same pairs as ONNX initializers <target>.lora_A [in, r],
                   .lora_B [r, out], .lora_scale (targets: node names for qkv, weight
                   initializer names for fc)
  head.onnx        one pair on the lm head "/MatMul" (its output is the graph output)
  merged.onnx      the fixture with W + s * A^T B^T merged into each target weight
                   (from the values as stored, f16/bf16 widened), the reference
  merged_head.onnx the same plus the head adapter
  in/input_0.pb    tokens [1, 16];  calib/s{0,1}/input_0.pb  two more windows
  bad/...          hostile and inconsistent adapters for the error checks
and a small MLP for the checks that compile many times (--quant auto, awq, the report):
  mlp.onnx (x [8,64] -> fc0 -> relu -> fc1 -> relu -> fc2 -> y [8,16]),
  mlp_adapter.onnx (r 4 on fc0 and fc1), mlp_calib/s{0..3}/input_0.pb
and gemm.onnx (one Gemm transB=1 node "linear" reading "fc.weight"), gemm.safetensors (module
"fc"), gemm_merged.onnx (scale 0.5 merged), gemm_x.pb
"""
import json
import os
import struct
import sys

import numpy as np
import onnx
from onnx import helper, numpy_helper

R, ALPHA = 8, 16.0
SCALE = ALPHA / R


def to_f16(a):
    return a.astype(np.float16)


def to_bf16_bits(a):
    """Round-to-nearest-even f32 -> bf16 bit patterns (u16)."""
    u = a.astype(np.float32).view(np.uint32).astype(np.uint64)
    u = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    return u.astype(np.uint16)


def bf16_to_f32(bits):
    return (bits.astype(np.uint32) << 16).view(np.float32)


def write_safetensors(path, tensors, metadata=None):
    """tensors: list of (name, dtype 'F32'|'F16'|'BF16', array of that storage)."""
    header, blobs, off = {}, [], 0
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dt, arr in tensors:
        raw = np.ascontiguousarray(arr).tobytes()
        header[name] = {"dtype": dt, "shape": list(arr.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def main():
    fixture, out = sys.argv[1], sys.argv[2]
    for d in ("peft", "noconfig", "in", "calib/s0", "calib/s1", "bad"):
        os.makedirs(os.path.join(out, d), exist_ok=True)
    m = onnx.load(fixture)
    inits = {t.name: t for t in m.graph.initializer}
    node_of = {n.name: n for n in m.graph.node if n.op_type == "MatMul"}
    rng = np.random.default_rng(5)

    st_tensors, pairs = [], []  # pairs: (module, node name, weight name, A [in,r], B [r,out]) as stored
    for blk in range(4):
        for mod in ("qkv", "fc"):
            module = "blocks.%d.%s" % (blk, mod)
            node = "/blocks.%d/%s/MatMul" % (blk, mod)
            wname = node_of[node].input[1]
            k, n = numpy_helper.to_array(inits[wname]).shape
            a = (rng.standard_normal((R, k)) / np.sqrt(k)).astype(np.float32)   # lora_A.weight [r, in]
            b = (0.05 * rng.standard_normal((n, R))).astype(np.float32)          # lora_B.weight [out, r]
            key = "base_model.model.%s" % module
            if blk == 0:
                a16, b16 = to_f16(a), to_f16(b)
                st_tensors += [(key + ".lora_A.weight", "F16", a16), (key + ".lora_B.weight", "F16", b16)]
                a, b = a16.astype(np.float32), b16.astype(np.float32)
            elif blk == 1:
                abits, bbits = to_bf16_bits(a), to_bf16_bits(b)
                st_tensors += [(key + ".lora_A.weight", "BF16", abits), (key + ".lora_B.weight", "BF16", bbits)]
                a, b = bf16_to_f32(abits), bf16_to_f32(bbits)
            else:
                st_tensors += [(key + ".lora_A.weight", "F32", a), (key + ".lora_B.weight", "F32", b)]
            pairs.append((module, node, wname, a.T.copy(), b.T.copy()))

    write_safetensors(os.path.join(out, "peft", "adapter_model.safetensors"), st_tensors, {"format": "pt"})
    with open(os.path.join(out, "peft", "adapter_config.json"), "w") as f:
        json.dump({"peft_type": "LORA", "r": R, "lora_alpha": ALPHA, "lora_dropout": 0.0,
                   "target_modules": ["qkv", "fc"], "rank_pattern": {}, "alpha_pattern": {},
                   "use_rslora": False}, f)
    write_safetensors(os.path.join(out, "noconfig", "adapter_model.safetensors"), st_tensors)

    # the ONNX form: qkv by node name, fc by weight name, scale as an initializer
    ox = []
    for module, node, wname, a, b in pairs:
        target = node if module.endswith("qkv") else wname
        ox += [numpy_helper.from_array(a, target + ".lora_A"), numpy_helper.from_array(b, target + ".lora_B"),
               numpy_helper.from_array(np.array(SCALE, np.float32), target + ".lora_scale")]
    onnx.save(helper.make_model(helper.make_graph([], "adapter", [], [], ox)), os.path.join(out, "adapter.onnx"))

    # the lm head: its output is the graph's output "logits"
    hw = node_of["/MatMul"].input[1]
    hk, hn = numpy_helper.to_array(inits[hw]).shape
    ha = (rng.standard_normal((hk, 4)) / np.sqrt(hk)).astype(np.float32)
    hb = (0.2 * rng.standard_normal((4, hn))).astype(np.float32)
    onnx.save(helper.make_model(helper.make_graph([], "head", [], [], [
        numpy_helper.from_array(ha, "/MatMul.lora_A"), numpy_helper.from_array(hb, "/MatMul.lora_B")])),
        os.path.join(out, "head.onnx"))

    def merged(extra):
        mm = onnx.load(fixture)
        by_name = {t.name: t for t in mm.graph.initializer}
        for wname, a, b, s in extra:
            w = numpy_helper.to_array(by_name[wname]).astype(np.float64)
            w = (w + s * (a.astype(np.float64) @ b.astype(np.float64))).astype(np.float32)
            by_name[wname].CopyFrom(numpy_helper.from_array(w, wname))
        return mm

    base_pairs = [(w, a, b, SCALE) for _, _, w, a, b in pairs]
    onnx.save(merged(base_pairs), os.path.join(out, "merged.onnx"))
    onnx.save(merged(base_pairs + [(hw, ha, hb, 1.0)]), os.path.join(out, "merged_head.onnx"))

    text = open(os.path.join(os.path.dirname(fixture), "heldout.txt"), "rb").read()
    for i, d in enumerate(("in", "calib/s0", "calib/s1")):
        tok = np.frombuffer(text[100 + 400 * i: 116 + 400 * i], np.uint8).astype(np.int64).reshape(1, 16)
        with open(os.path.join(out, d, "input_0.pb"), "wb") as f:
            f.write(numpy_helper.from_array(tok, "tokens").SerializeToString())

    bad = os.path.join(out, "bad")
    a0, b0 = pairs[2][3], pairs[2][4]  # blocks.1.qkv, f32 [256, 8] and [8, 768]
    # two targets that match nothing and one whose B does not fit
    write_safetensors(os.path.join(bad, "nomatch.safetensors"), [
        ("base_model.model.blocks.0.qkvx.lora_A.weight", "F32", a0.T.copy()),
        ("base_model.model.blocks.0.qkvx.lora_B.weight", "F32", b0.T.copy()),
        ("base_model.model.blocks.9.fc.lora_A.weight", "F32", a0.T.copy()),
        ("base_model.model.blocks.9.fc.lora_B.weight", "F32", b0.T.copy()),
        ("base_model.model.blocks.1.fc.lora_A.weight", "F32", a0.T.copy()),
        ("base_model.model.blocks.1.fc.lora_B.weight", "F32", b0.T.copy())])
    write_safetensors(os.path.join(bad, "half.safetensors"), [
        ("base_model.model.blocks.0.qkv.lora_A.weight", "F32", a0.T.copy())])
    write_safetensors(os.path.join(bad, "i8.safetensors"), [
        ("base_model.model.blocks.0.qkv.lora_A.weight", "I8", np.zeros((8, 256), np.int8))])
    good = open(os.path.join(out, "peft", "adapter_model.safetensors"), "rb").read()
    with open(os.path.join(bad, "truncated.safetensors"), "wb") as f:
        f.write(good[: len(good) - 100])
    hdr = good[8: 8 + struct.unpack("<Q", good[:8])[0]].replace(b'"data_offsets": [0, 4096]', b'"data_offsets": [0, 4095]')
    with open(os.path.join(bad, "offsets.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(hdr)) + hdr + good[8 + len(hdr):])
    onnx.save(helper.make_model(helper.make_graph([], "bad", [], [], [
        numpy_helper.from_array(a0, "/blocks.0/fc/MatMul.lora_A"),
        numpy_helper.from_array(b0, "/blocks.0/fc/MatMul.lora_B"),
        numpy_helper.from_array(a0, "/blocks.0/nothing/MatMul.lora_A"),
        numpy_helper.from_array(b0, "/blocks.0/nothing/MatMul.lora_B")])), os.path.join(bad, "shape.onnx"))
    onnx.save(helper.make_model(helper.make_graph([], "bad", [], [], [
        numpy_helper.from_array(np.array(2.0, np.float32), "/blocks.0/fc/MatMul.lora_scale"),
        numpy_helper.from_array(a0, "/blocks.0/fc/MatMul.weight")])), os.path.join(bad, "scale_only.onnx"))
    write_safetensors(os.path.join(bad, "dora.safetensors"), [
        ("base_model.model.blocks.0.qkv.lora_magnitude_vector", "F32", np.ones(768, np.float32))])

    write_mlp(out, rng)
    write_gemm(out, rng)


def write_gemm(out, rng):
    w = rng.standard_normal((24, 32)).astype(np.float32)  # torch Linear [out, in]
    b = rng.standard_normal(24).astype(np.float32)
    a = rng.standard_normal((4, 32)).astype(np.float32)
    bb = rng.standard_normal((24, 4)).astype(np.float32)

    def model(wt, name):
        g = helper.make_graph([helper.make_node("Gemm", ["x", "fc.weight", "b"], ["y"], name="linear", transB=1)], "g",
                              [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [4, 32])],
                              [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [4, 24])],
                              [numpy_helper.from_array(wt, "fc.weight"), numpy_helper.from_array(b, "b")])
        onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), os.path.join(out, name))
    model(w, "gemm.onnx")
    model((w + 0.5 * (bb @ a)).astype(np.float32), "gemm_merged.onnx")
    write_safetensors(os.path.join(out, "gemm.safetensors"),
                      [("base_model.model.fc.lora_A.weight", "F32", a), ("base_model.model.fc.lora_B.weight", "F32", bb)])
    with open(os.path.join(out, "gemm_x.pb"), "wb") as f:
        f.write(numpy_helper.from_array(rng.standard_normal((4, 32)).astype(np.float32), "x").SerializeToString())


def write_mlp(out, rng):
    sizes, nodes, inits, x = [64, 64, 64, 16], [], [], "x"
    adapter = []
    for i in range(3):
        w = (rng.standard_normal((sizes[i], sizes[i + 1])) / np.sqrt(sizes[i])).astype(np.float32)
        b = (0.1 * rng.standard_normal(sizes[i + 1])).astype(np.float32)
        inits += [numpy_helper.from_array(w, "w%d" % i), numpy_helper.from_array(b, "b%d" % i)]
        nodes.append(helper.make_node("MatMul", [x, "w%d" % i], ["mm%d" % i], name="/fc%d/MatMul" % i))
        y = "y" if i == 2 else "h%d" % i
        nodes.append(helper.make_node("Add", ["mm%d" % i, "b%d" % i], [y], name="/fc%d/Add" % i))
        if i < 2:
            nodes.append(helper.make_node("Relu", [y], ["r%d" % i], name="/relu%d" % i))
            x = "r%d" % i
            a = (rng.standard_normal((sizes[i], 4)) / np.sqrt(sizes[i])).astype(np.float32)
            bb = (0.3 * rng.standard_normal((4, sizes[i + 1]))).astype(np.float32)
            adapter += [numpy_helper.from_array(a, "/fc%d/MatMul.lora_A" % i),
                        numpy_helper.from_array(bb, "/fc%d/MatMul.lora_B" % i)]
    g = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [8, 64])],
                          [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [8, 16])], inits)
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), os.path.join(out, "mlp.onnx"))
    onnx.save(helper.make_model(helper.make_graph([], "mlp_adapter", [], [], adapter)),
              os.path.join(out, "mlp_adapter.onnx"))
    for i in range(4):
        os.makedirs(os.path.join(out, "mlp_calib", "s%d" % i), exist_ok=True)
        xs = rng.standard_normal((8, 64)).astype(np.float32)
        with open(os.path.join(out, "mlp_calib", "s%d" % i, "input_0.pb"), "wb") as f:
            f.write(numpy_helper.from_array(xs, "x").SerializeToString())


if __name__ == "__main__":
    main()
