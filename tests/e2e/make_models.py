#!/usr/bin/python3
"""Export lowbit's end-to-end test models with torch and record torch's own outputs.

    tests/e2e/make_models.py OUTDIR [--only NAME,...]

For each model NAME in (mlp, cnn, gpt, llama, bert) writes
    OUTDIR/NAME/model.onnx                       torch.onnx.export, opset 17, TorchScript
                                                 exporter, symbolic batch (and seq) dims
    OUTDIR/NAME/test_data_set_0/input_K.pb       reference inputs (onnx TensorProto)
    OUTDIR/NAME/test_data_set_0/output_K.pb      outputs computed by torch (not by onnx/ort)
    OUTDIR/NAME/case.json                        --dim bindings, tolerances, op types
Each exported graph is also run by tools/np_onnx.py (a small numpy interpreter) and must
agree with torch (rtol 1e-3, atol 1e-4), which checks the export, not lowbit.
Everything is seeded, so reruns give the same weights and data. Weights are small,
random and xavier-scaled so nothing saturates.
"""
import argparse
import collections
import json
import math
import os
import sys
import time
import warnings

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

OPSET = 17


def xavier_(module, gain=1.0):
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            nn.init.xavier_uniform_(m.weight, gain=gain)
            if m.bias is not None:
                nn.init.uniform_(m.bias, -0.05, 0.05)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, std=0.5)
        elif isinstance(m, (nn.LayerNorm, nn.BatchNorm2d)):
            nn.init.uniform_(m.weight, 0.8, 1.2)
            nn.init.uniform_(m.bias, -0.1, 0.1)
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)


# ---------------------------------------------------------------------------- mlp
class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(64, 256)
        self.fc2 = nn.Linear(256, 256)
        self.fc3 = nn.Linear(256, 256)
        self.fc4 = nn.Linear(256, 10)

    def forward(self, x):
        x = F.relu(self.fc1(x))
        x = F.gelu(self.fc2(x))
        x = F.relu(self.fc3(x))
        return self.fc4(x)


# ---------------------------------------------------------------------------- cnn
class SqueezeExcite(nn.Module):
    def __init__(self, c, r=2):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(c, c // r, 1)
        self.fc2 = nn.Conv2d(c // r, c, 1)
        self.gate = nn.Hardsigmoid()

    def forward(self, x):
        s = self.gate(self.fc2(F.relu(self.fc1(self.pool(x)))))
        return x * s


class CNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, stride=2, padding=1, bias=False),
                                  nn.BatchNorm2d(16), nn.ReLU())
        self.dw = nn.Sequential(nn.Conv2d(16, 16, 3, padding=1, groups=16, bias=False),
                                nn.BatchNorm2d(16), nn.Hardswish())
        self.se = SqueezeExcite(16)
        self.pw = nn.Sequential(nn.Conv2d(16, 32, 1, bias=False), nn.BatchNorm2d(32))
        self.maxpool = nn.MaxPool2d(2)
        self.bn = nn.BatchNorm2d(32)  # not after a conv: stays a BatchNormalization node
        self.conv = nn.Sequential(nn.Conv2d(32, 32, 3, padding=1), nn.ReLU())
        self.avgpool = nn.AvgPool2d(2)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(32, 10)

    def forward(self, x):
        x = self.stem(x)
        x = self.se(self.dw(x))
        x = self.pw(x)
        x = self.bn(self.maxpool(x))
        x = self.avgpool(self.conv(x))
        x = torch.flatten(self.gap(x), 1)
        return self.fc(x)


# ---------------------------------------------------------------------------- gpt
class GPTBlock(nn.Module):
    def __init__(self, d, nh, block):
        super().__init__()
        self.nh = nh
        self.ln_1 = nn.LayerNorm(d)
        self.c_attn = nn.Linear(d, 3 * d)
        self.attn_proj = nn.Linear(d, d)
        self.ln_2 = nn.LayerNorm(d)
        self.c_fc = nn.Linear(d, 4 * d)
        self.gelu = nn.GELU(approximate="none")
        self.mlp_proj = nn.Linear(4 * d, d)
        self.register_buffer("bias", torch.tril(torch.ones(block, block)).view(1, 1, block, block))

    def attn(self, x):
        B, T, C = x.size()
        q, k, v = self.c_attn(x).split(C, dim=2)
        hd = C // self.nh
        q = q.view(B, T, self.nh, hd).transpose(1, 2)
        k = k.view(B, T, self.nh, hd).transpose(1, 2)
        v = v.view(B, T, self.nh, hd).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hd))
        att = att.masked_fill(self.bias[:, :, :T, :T] == 0, float("-inf"))
        att = F.softmax(att, dim=-1)
        y = (att @ v).transpose(1, 2).contiguous().view(B, T, C)
        return self.attn_proj(y)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp_proj(self.gelu(self.c_fc(self.ln_2(x))))


class GPT(nn.Module):
    def __init__(self, vocab=256, d=64, layers=2, nh=4, block=32):
        super().__init__()
        self.wte = nn.Embedding(vocab, d)
        self.wpe = nn.Embedding(block, d)
        self.h = nn.ModuleList([GPTBlock(d, nh, block) for _ in range(layers)])
        self.ln_f = nn.LayerNorm(d)

    def forward(self, idx):
        B, T = idx.size()
        pos = torch.arange(0, T, dtype=torch.long, device=idx.device)
        x = self.wte(idx) + self.wpe(pos)
        for blk in self.h:
            x = blk(x)
        return F.linear(self.ln_f(x), self.wte.weight)  # tied output projection


# ---------------------------------------------------------------------------- llama
class RMSNorm(nn.Module):
    def __init__(self, d, eps=1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def repeat_kv(x, rep):
    """x.repeat_interleave(rep, dim=1), written as HF LLaMA does: torch 1.13 exports
    repeat_interleave over a dynamic shape as a Loop over sequences, this as Expand+Reshape."""
    B, H, T, D = x.shape
    return x[:, :, None, :, :].expand(B, H, rep, T, D).reshape(B, H * rep, T, D)


class LlamaBlock(nn.Module):
    def __init__(self, d, nq, nkv, hidden):
        super().__init__()
        self.nq, self.nkv, self.hd = nq, nkv, d // nq
        self.input_norm = RMSNorm(d)
        self.q_proj = nn.Linear(d, nq * self.hd, bias=False)
        self.k_proj = nn.Linear(d, nkv * self.hd, bias=False)
        self.v_proj = nn.Linear(d, nkv * self.hd, bias=False)
        self.o_proj = nn.Linear(nq * self.hd, d, bias=False)
        self.post_norm = RMSNorm(d)
        self.gate_proj = nn.Linear(d, hidden, bias=False)
        self.up_proj = nn.Linear(d, hidden, bias=False)
        self.down_proj = nn.Linear(hidden, d, bias=False)

    def attn(self, x, cos, sin, mask):
        B, T, _ = x.shape
        q = self.q_proj(x).view(B, T, self.nq, self.hd).transpose(1, 2)
        k = self.k_proj(x).view(B, T, self.nkv, self.hd).transpose(1, 2)
        v = self.v_proj(x).view(B, T, self.nkv, self.hd).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k, v = repeat_kv(k, self.nq // self.nkv), repeat_kv(v, self.nq // self.nkv)
        att = torch.matmul(q, k.transpose(2, 3)) / math.sqrt(self.hd) + mask
        att = F.softmax(att, dim=-1)
        y = torch.matmul(att, v).transpose(1, 2).reshape(B, T, self.nq * self.hd)
        return self.o_proj(y)

    def forward(self, x, cos, sin, mask):
        x = x + self.attn(self.input_norm(x), cos, sin, mask)
        h = self.post_norm(x)
        return x + self.down_proj(F.silu(self.gate_proj(h)) * self.up_proj(h))


class Llama(nn.Module):
    def __init__(self, vocab=256, d=64, layers=2, nq=4, nkv=2, hidden=128, theta=10000.0):
        super().__init__()
        self.embed = nn.Embedding(vocab, d)
        self.layers = nn.ModuleList([LlamaBlock(d, nq, nkv, hidden) for _ in range(layers)])
        self.norm = RMSNorm(d)
        self.lm_head = nn.Linear(d, vocab, bias=False)
        hd = d // nq
        self.register_buffer("inv_freq", 1.0 / theta ** (torch.arange(0, hd, 2).float() / hd))

    def forward(self, ids):
        B, T = ids.shape
        pos = torch.arange(T, device=ids.device).float()          # position ids, in-graph
        freqs = pos[:, None] * self.inv_freq[None, :]             # [T, hd/2]
        emb = torch.cat((freqs, freqs), dim=-1)                   # [T, hd]
        cos, sin = emb.cos()[None, None], emb.sin()[None, None]
        mask = torch.full((T, T), float("-inf"), device=ids.device).triu(1)[None, None]
        x = self.embed(ids)
        for layer in self.layers:
            x = layer(x, cos, sin, mask)
        return self.lm_head(self.norm(x))


# ---------------------------------------------------------------------------- bert
class BertLayer(nn.Module):
    def __init__(self, d, nh, inter, gelu):
        super().__init__()
        self.nh, self.hd = nh, d // nh
        self.query = nn.Linear(d, d)
        self.key = nn.Linear(d, d)
        self.value = nn.Linear(d, d)
        self.attn_out = nn.Linear(d, d)
        self.attn_ln = nn.LayerNorm(d, eps=1e-12)
        self.inter = nn.Linear(d, inter)
        self.gelu = nn.GELU(approximate=gelu)
        self.out = nn.Linear(inter, d)
        self.out_ln = nn.LayerNorm(d, eps=1e-12)

    def heads(self, x):
        B, T, _ = x.shape
        return x.view(B, T, self.nh, self.hd).permute(0, 2, 1, 3)

    def forward(self, x, add_mask):
        B, T, C = x.shape
        q, k, v = self.heads(self.query(x)), self.heads(self.key(x)), self.heads(self.value(x))
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.hd) + add_mask
        ctx = torch.matmul(F.softmax(scores, dim=-1), v).permute(0, 2, 1, 3).reshape(B, T, C)
        x = self.attn_ln(x + self.attn_out(ctx))
        return self.out_ln(x + self.out(self.gelu(self.inter(x))))


class Bert(nn.Module):
    def __init__(self, vocab=256, d=64, layers=2, nh=4, inter=128, max_pos=64, types=2):
        super().__init__()
        self.word = nn.Embedding(vocab, d)
        self.position = nn.Embedding(max_pos, d)
        self.token_type = nn.Embedding(types, d)
        self.emb_ln = nn.LayerNorm(d, eps=1e-12)
        gelus = ["tanh", "none"]
        self.layers = nn.ModuleList([BertLayer(d, nh, inter, gelus[i % 2]) for i in range(layers)])
        self.pooler = nn.Linear(d, d)

    def forward(self, input_ids, token_type_ids, attention_mask):
        B, T = input_ids.shape
        pos = torch.arange(T, dtype=torch.long, device=input_ids.device).unsqueeze(0)
        x = self.word(input_ids) + self.token_type(token_type_ids) + self.position(pos)
        x = self.emb_ln(x)
        add_mask = (1.0 - attention_mask[:, None, None, :].to(x.dtype)) * -10000.0
        for layer in self.layers:
            x = layer(x, add_mask)
        pooled = torch.tanh(self.pooler(x[:, 0]))
        return x, pooled


# ---------------------------------------------------------------------------- specs
def spec_mlp(g):
    m = MLP()
    xavier_(m)
    x = torch.randn(4, 64, generator=g)
    return dict(model=m, inputs={"x": x}, outputs=["y"],
                dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}}, dims={"batch": 4})


def spec_cnn(g):
    m = CNN()
    xavier_(m, gain=math.sqrt(2.0))
    x = torch.randn(1, 3, 32, 32, generator=g)
    return dict(model=m, inputs={"image": x}, outputs=["logits"],
                dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}},
                dims={"batch": 1})


def spec_gpt(g):
    m = GPT()
    xavier_(m)
    nn.init.normal_(m.wte.weight, std=0.3)
    ids = torch.randint(0, 256, (1, 32), generator=g)
    return dict(model=m, inputs={"input_ids": ids}, outputs=["logits"],
                dynamic_axes={"input_ids": {0: "batch", 1: "seq"},
                              "logits": {0: "batch", 1: "seq"}},
                dims={"batch": 1, "seq": 32})


def spec_llama(g):
    m = Llama()
    xavier_(m)
    for p in m.modules():
        if isinstance(p, RMSNorm):
            nn.init.uniform_(p.weight, 0.8, 1.2)
    ids = torch.randint(0, 256, (1, 16), generator=g)
    return dict(model=m, inputs={"input_ids": ids}, outputs=["logits"],
                dynamic_axes={"input_ids": {0: "batch", 1: "seq"},
                              "logits": {0: "batch", 1: "seq"}},
                dims={"batch": 1, "seq": 16})


def spec_bert(g):
    m = Bert()
    xavier_(m)
    B, T = 2, 16
    ids = torch.randint(0, 256, (B, T), generator=g)
    tt = torch.zeros(B, T, dtype=torch.long)
    tt[:, T // 2:] = 1
    mask = torch.ones(B, T, dtype=torch.long)
    mask[1, T - 5:] = 0  # padding in the second sequence
    dyn = {0: "batch", 1: "seq"}
    return dict(model=m, inputs={"input_ids": ids, "token_type_ids": tt, "attention_mask": mask},
                outputs=["last_hidden_state", "pooler_output"],
                dynamic_axes={"input_ids": dyn, "token_type_ids": dyn, "attention_mask": dyn,
                              "last_hidden_state": dyn, "pooler_output": {0: "batch"}},
                dims={"batch": B, "seq": T})


SPECS = collections.OrderedDict(
    [("mlp", spec_mlp), ("cnn", spec_cnn), ("gpt", spec_gpt), ("llama", spec_llama),
     ("bert", spec_bert)])
SEEDS = {"mlp": 1, "cnn": 2, "gpt": 3, "llama": 4, "bert": 5}


# ---------------------------------------------------------------------------- export
def op_types(model):
    import onnx
    ops = collections.Counter()

    def walk(graph):
        for n in graph.node:
            ops[n.op_type if n.domain in ("", "ai.onnx") else f"{n.domain}:{n.op_type}"] += 1
            for a in n.attribute:
                if a.type == onnx.AttributeProto.GRAPH:
                    walk(a.g)
    walk(model.graph)
    return ops


def build(name, outdir, verify=True):
    import onnx
    from onnx import numpy_helper
    torch.manual_seed(SEEDS[name])
    g = torch.Generator().manual_seed(1000 + SEEDS[name])
    s = SPECS[name](g)
    model = s["model"].eval()
    inputs = s["inputs"]
    args = tuple(inputs.values())
    with torch.no_grad():
        ref = model(*args)
    ref = ref if isinstance(ref, tuple) else (ref,)

    mdir = os.path.join(outdir, name)
    ds = os.path.join(mdir, "test_data_set_0")
    os.makedirs(ds, exist_ok=True)
    path = os.path.join(mdir, "model.onnx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, args, path, opset_version=OPSET,
                          input_names=list(inputs), output_names=s["outputs"],
                          dynamic_axes=s["dynamic_axes"], do_constant_folding=True,
                          training=torch.onnx.TrainingMode.EVAL)
    m = onnx.load(path)
    onnx.checker.check_model(m, full_check=True)
    for vi in m.graph.input:  # the symbolic dims must really be symbolic
        params = [d.dim_param for d in vi.type.tensor_type.shape.dim if d.HasField("dim_param")]
        assert set(params) <= set(s["dims"]), (name, vi.name, params)
        assert params, (name, vi.name, "no symbolic dim")
    for k, (iname, t) in enumerate(inputs.items()):
        with open(os.path.join(ds, f"input_{k}.pb"), "wb") as f:
            f.write(numpy_helper.from_array(t.numpy(), iname).SerializeToString())
    for k, (oname, t) in enumerate(zip(s["outputs"], ref)):
        a = t.detach().numpy()
        assert np.all(np.isfinite(a)), (name, oname)
        with open(os.path.join(ds, f"output_{k}.pb"), "wb") as f:
            f.write(numpy_helper.from_array(a, oname).SerializeToString())
    if verify:  # the exported graph, interpreted by numpy, must agree with torch
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
        import compare as cmp
        import np_onnx
        got = np_onnx.run_model(m, [t.numpy() for t in inputs.values()])
        for oname, a, e in zip(s["outputs"], got, ref):
            r = cmp.compare(a, e.detach().numpy(), rtol=1e-3, atol=1e-4, fallback_atol=None)
            if not r:
                raise SystemExit(f"make_models: {name}: exported ONNX disagrees with torch "
                                 f"on {oname}: {r.message}")
    ops = op_types(m)
    nparams = sum(int(np.prod(t.dims)) for t in m.graph.initializer)
    case = {
        "dims": s["dims"],
        "rtol": 1e-3,
        "atol": 1e-4,
        "inputs": list(inputs),
        "outputs": s["outputs"],
        "ops": sorted(ops),
        "opset": OPSET,
        "torch": torch.__version__,
    }
    with open(os.path.join(mdir, "case.json"), "w") as f:
        json.dump(case, f, indent=1, sort_keys=True)
        f.write("\n")
    stats = [f"{o.name}{list(t.shape)} std={float(t.std()):.3g} max|.|={float(t.abs().max()):.3g}"
             for o, t in zip(m.graph.output, ref)]
    return ops, os.path.getsize(path), nparams, stats


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("outdir")
    ap.add_argument("--only", help="comma-separated subset of " + ",".join(SPECS))
    ap.add_argument("--no-verify", action="store_true",
                    help="skip checking the exported graphs with tools/np_onnx.py")
    args = ap.parse_args()
    names = args.only.split(",") if args.only else list(SPECS)
    for n in names:
        if n not in SPECS:
            ap.error(f"unknown model {n}")
    torch.set_num_threads(1)
    all_ops = collections.Counter()
    total = 0
    t_all = time.time()
    for n in names:
        t0 = time.time()
        ops, size, nparams, stats = build(n, args.outdir, verify=not args.no_verify)
        total += size
        all_ops.update({o: 1 for o in ops})
        print(f"{n}: {size / 1024:.0f} KiB, {nparams} weights, {time.time() - t0:.1f}s; "
              + "; ".join(stats))
        print("  ops: " + " ".join(f"{o}x{c}" if c > 1 else o for o, c in sorted(ops.items())))
    print(f"all models: {total / 1024:.0f} KiB in {time.time() - t_all:.1f}s; ops used: " + " ".join(sorted(all_ops)))


if __name__ == "__main__":
    sys.exit(main())
