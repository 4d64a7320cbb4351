#!/usr/bin/python3
"""Regenerates the torch-exported test models in models/ (committed, a few KB each).

    /usr/bin/python3 tests/unit/frontend/make_test_models.py

tiny_gpt.onnx: a one-block GPT (token + position embeddings, causal attention,
LayerNorm, GELU MLP), torch.onnx.export opset 17 with dynamic axes batch/seq, so
the importer has to fold TorchScript's Shape/Gather/Concat chains after --dim.
tiny_gpt_io.bin: tokens (i64[2,7]) then torch's logits (f32[2,7,16]) for them.
tiny_mlp.onnx: Linear-ReLU-Linear-Softmax with a dynamic batch axis.
"""
import math
import os

import torch
import torch.nn as nn

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "models")


class Block(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.heads = heads
        self.ln1 = nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.ln2 = nn.LayerNorm(d)
        self.fc = nn.Linear(d, 2 * d)
        self.out = nn.Linear(2 * d, d)

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(d, dim=2)
        hd = d // self.heads
        q = q.view(b, t, self.heads, hd).transpose(1, 2)
        k = k.view(b, t, self.heads, hd).transpose(1, 2)
        v = v.view(b, t, self.heads, hd).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hd))
        mask = torch.tril(torch.ones(t, t, dtype=torch.bool))
        att = att.masked_fill(~mask, float("-inf")).softmax(dim=-1)
        y = (att @ v).transpose(1, 2).reshape(b, t, d)
        x = x + self.proj(y)
        return x + self.out(nn.functional.gelu(self.fc(self.ln2(x))))


class TinyGPT(nn.Module):
    def __init__(self, vocab=16, d=8, heads=2, ctx=32):
        super().__init__()
        self.tok = nn.Embedding(vocab, d)
        self.pos = nn.Embedding(ctx, d)
        self.block = Block(d, heads)
        self.ln = nn.LayerNorm(d)
        self.head = nn.Linear(d, vocab, bias=False)

    def forward(self, tokens):
        t = tokens.shape[1]
        pos = torch.arange(t, dtype=torch.long)
        x = self.tok(tokens) + self.pos(pos)
        return self.head(self.ln(self.block(x)))


class TinyMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3), nn.Softmax(dim=-1))

    def forward(self, x):
        return self.net(x)


def main():
    os.makedirs(HERE, exist_ok=True)
    torch.manual_seed(0)
    gpt = TinyGPT().eval()
    torch.onnx.export(gpt, (torch.zeros(2, 5, dtype=torch.long),),
                      os.path.join(HERE, "tiny_gpt.onnx"), opset_version=17,
                      input_names=["tokens"], output_names=["logits"],
                      dynamic_axes={"tokens": {0: "batch", 1: "seq"},
                                    "logits": {0: "batch", 1: "seq"}})
    # reference input/output for the importer's end-to-end check (tokens i64[2,7], logits f32[2,7,16])
    tokens = torch.randint(0, 16, (2, 7), dtype=torch.long)
    with torch.no_grad():
        logits = gpt(tokens)
    with open(os.path.join(HERE, "tiny_gpt_io.bin"), "wb") as f:
        f.write(tokens.numpy().astype("<i8").tobytes())
        f.write(logits.numpy().astype("<f4").tobytes())
    mlp = TinyMLP().eval()
    torch.onnx.export(mlp, (torch.zeros(2, 4),), os.path.join(HERE, "tiny_mlp.onnx"),
                      opset_version=17, input_names=["x"], output_names=["probs"],
                      dynamic_axes={"x": {0: "batch"}, "probs": {0: "batch"}})


if __name__ == "__main__":
    main()
