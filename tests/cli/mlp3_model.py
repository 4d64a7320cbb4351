"""The three-layer MLP of analyze.sh and mixed.sh, written into the folder argv[1]:
mlp3.onnx (x [8,64] -> fc0 [64,64] -> Relu -> fc1 [64,64] with w[5,:] = w[37,:] = 4
-> Relu -> fc2 [64,16] -> y, logits), six calibration samples in calib/s*/input_0.pb
and the weights and biases in weights.npz (w0, b0, w1, b1, w2, b2 as arr_0..arr_5)."""
import os, sys
import numpy as np
import onnx
from onnx import helper, numpy_helper, TensorProto
t = sys.argv[1]
rng = np.random.default_rng(11)
sizes = [64, 64, 64, 16]
inits, nodes, x = [], [], "x"
W = []
for i in range(3):
    w = (rng.standard_normal((sizes[i], sizes[i + 1])) / np.sqrt(sizes[i])).astype(np.float32)
    b = (0.1 * rng.standard_normal(sizes[i + 1])).astype(np.float32)
    if i == 0:  # inputs 5 and 37 of fc1 nearly 0: its outliers below add little to its output
        w[:, [5, 37]] *= 0.01
        b[[5, 37]] = 0
    if i == 1:  # one outlier per group of 32: RTN rounds the rest of fc1 to 0
        w[[5, 37], :] = 4.0
    W.append((w, b))
    inits += [numpy_helper.from_array(w, "w%d" % i), numpy_helper.from_array(b, "b%d" % i)]
    nodes.append(helper.make_node("MatMul", [x, "w%d" % i], ["mm%d" % i], name="/fc%d/MatMul" % i))
    out = "y" if i == 2 else "h%d" % i
    nodes.append(helper.make_node("Add", ["mm%d" % i, "b%d" % i], [out], name="/fc%d/Add" % i))
    if i < 2:
        nodes.append(helper.make_node("Relu", [out], ["r%d" % i], name="/relu%d" % i))
        x = "r%d" % i
g = helper.make_graph(nodes, "mlp3", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [8, 64])],
                      [helper.make_tensor_value_info("y", TensorProto.FLOAT, [8, 16])], inits)
m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
onnx.checker.check_model(m)
onnx.save(m, os.path.join(t, "mlp3.onnx"))
for i in range(6):
    os.makedirs(os.path.join(t, "calib", "s%d" % i))
    x = rng.standard_normal((8, 64)).astype(np.float32)
    with open(os.path.join(t, "calib", "s%d" % i, "input_0.pb"), "wb") as f:
        f.write(numpy_helper.from_array(x, "x").SerializeToString())
np.savez(os.path.join(t, "weights.npz"), *[a for wb in W for a in wb])
