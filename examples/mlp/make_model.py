#!/usr/bin/python3
"""Builds examples/mlp: a 3-layer MLP (16 -> 64 -> 64 -> 8, ReLU, softmax) with a
symbolic batch dim, a sample input for batch 2, and the expected output computed
with numpy. Deterministic; rerun to regenerate."""
import os
import numpy as np
import onnx
from onnx import helper, numpy_helper, TensorProto

here = os.path.dirname(os.path.abspath(__file__))
rng = np.random.default_rng(7)
sizes = [16, 64, 64, 8]
weights = []
inits, nodes = [], []
x = "x"
for i in range(3):
    w = (rng.standard_normal((sizes[i], sizes[i + 1])) / np.sqrt(sizes[i])).astype(np.float32)
    b = (0.1 * rng.standard_normal(sizes[i + 1])).astype(np.float32)
    weights.append((w, b))
    inits += [numpy_helper.from_array(w, f"fc{i}.weight"), numpy_helper.from_array(b, f"fc{i}.bias")]
    nodes.append(helper.make_node("MatMul", [x, f"fc{i}.weight"], [f"fc{i}.mm"], name=f"/fc{i}/MatMul"))
    nodes.append(helper.make_node("Add", [f"fc{i}.mm", f"fc{i}.bias"], [f"fc{i}.out"], name=f"/fc{i}/Add"))
    x = f"fc{i}.out"
    if i < 2:
        nodes.append(helper.make_node("Relu", [x], [f"relu{i}"], name=f"/relu{i}/Relu"))
        x = f"relu{i}"
nodes.append(helper.make_node("Softmax", [x], ["probs"], name="/softmax/Softmax", axis=-1))
graph = helper.make_graph(
    nodes, "mlp",
    [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 16])],
    [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["batch", 8])],
    inits)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="lowbit-examples")
onnx.checker.check_model(model)
onnx.save(model, os.path.join(here, "model.onnx"))

inp = rng.standard_normal((2, 16)).astype(np.float32)
h = inp.astype(np.float64)
for i, (w, b) in enumerate(weights):
    h = h @ w + b
    if i < 2:
        h = np.maximum(h, 0)
e = np.exp(h - h.max(axis=-1, keepdims=True))
out = (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)
with open(os.path.join(here, "input_0.pb"), "wb") as f:
    f.write(numpy_helper.from_array(inp, "x").SerializeToString())
with open(os.path.join(here, "output_0.pb"), "wb") as f:
    f.write(numpy_helper.from_array(out, "probs").SerializeToString())
print("wrote", here)
