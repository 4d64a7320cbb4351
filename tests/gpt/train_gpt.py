#!/usr/bin/python3
"""Train the byte-level GPT fixture and export it to ONNX.

    /usr/bin/python3 tests/gpt/train_gpt.py OUTDIR [--steps N] [--batch B]

Writes OUTDIR/gpt.onnx, OUTDIR/heldout.txt, OUTDIR/train_log.json.

Model: GPT-2 style, byte vocabulary (256), d_model 256, 4 layers, 4 heads, context 128,
learned positions, pre-LayerNorm, GELU (erf), causal attention through a registered tril
buffer + masked_fill, output projection tied to the token embedding.

Data: text that every Debian 12 ships. Training = TRAIN_FILES; held-out = HELDOUT_FILES
(never seen in training; concatenated into OUTDIR/heldout.txt, ~32 KB). Copyright files that
quote the held-out licences (perl-base, base-files, libstdc++6) are left out of training.

Needs Debian's python3-torch (1.13), python3-onnx, python3-numpy. Debian's torch calls the
reference BLAS (~5 GFLOP/s); if libopenblas0-openmp is installed (apt-get install
libopenblas0-openmp) the script re-executes itself with its libblas.so.3 on
LD_LIBRARY_PATH (~150 GFLOP/s) without touching the system's BLAS alternative. The result is
deterministic for a given machine and BLAS (fixed seeds, 2 threads).
"""
import argparse
import json
import math
import os
import sys
import time

OPENBLAS_DIR = "/usr/lib/x86_64-linux-gnu/openblas-openmp"
if (os.path.exists(os.path.join(OPENBLAS_DIR, "libblas.so.3"))
        and OPENBLAS_DIR not in os.environ.get("LD_LIBRARY_PATH", "")
        and not os.environ.get("LOWBIT_GPT_NO_OPENBLAS")):
    env = dict(os.environ)
    env["LD_LIBRARY_PATH"] = OPENBLAS_DIR + (":" + env["LD_LIBRARY_PATH"] if env.get("LD_LIBRARY_PATH") else "")
    env.setdefault("OMP_NUM_THREADS", "2")
    os.execve(sys.executable, [sys.executable] + sys.argv, env)

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

LIC = "/usr/share/common-licenses/"
DOC = "/usr/share/doc/"
# Training text (all present on a fresh Debian 12: base-files' common-licenses and the
# copyright files of essential/required packages).
TRAIN_FILES = [
    LIC + "Apache-2.0", LIC + "BSD", LIC + "CC0-1.0", LIC + "GFDL-1.2", LIC + "GFDL-1.3",
    LIC + "GPL-1", LIC + "GPL-2", LIC + "GPL-3", LIC + "LGPL-2", LIC + "LGPL-2.1",
    LIC + "LGPL-3", LIC + "MPL-2.0",
    DOC + "bash/copyright", DOC + "coreutils/copyright", DOC + "dpkg/copyright",
    DOC + "apt/copyright", DOC + "tar/copyright", DOC + "grep/copyright",
    DOC + "sed/copyright", DOC + "gzip/copyright", DOC + "findutils/copyright",
    DOC + "util-linux/copyright", DOC + "libc6/copyright", DOC + "debianutils/copyright",
    DOC + "diffutils/copyright", DOC + "hostname/copyright", DOC + "login/copyright",
    DOC + "ncurses-base/copyright", DOC + "sysvinit-utils/copyright", DOC + "zlib1g/copyright",
]
# Held-out text: 25755 + 6111 = 31866 bytes.
HELDOUT_FILES = [LIC + "MPL-1.1", LIC + "Artistic"]

VOCAB, D_MODEL, N_LAYER, N_HEAD, CTX = 256, 256, 4, 4, 128


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln1 = nn.LayerNorm(D_MODEL)
        self.qkv = nn.Linear(D_MODEL, 3 * D_MODEL)
        self.proj = nn.Linear(D_MODEL, D_MODEL)
        self.ln2 = nn.LayerNorm(D_MODEL)
        self.fc = nn.Linear(D_MODEL, 4 * D_MODEL)
        self.fc_out = nn.Linear(4 * D_MODEL, D_MODEL)
        self.register_buffer("mask", torch.tril(torch.ones(CTX, CTX)).view(1, 1, CTX, CTX))

    def forward(self, x):
        B, T, C = x.shape[0], x.shape[1], D_MODEL
        hd = D_MODEL // N_HEAD
        q, k, v = self.qkv(self.ln1(x)).split(C, dim=2)
        q = q.view(B, T, N_HEAD, hd).transpose(1, 2)
        k = k.view(B, T, N_HEAD, hd).transpose(1, 2)
        v = v.view(B, T, N_HEAD, hd).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hd))
        att = att.masked_fill(self.mask[:, :, :T, :T] == 0, float("-inf"))
        att = F.softmax(att, dim=-1)
        y = (att @ v).transpose(1, 2).contiguous().view(B, T, C)
        x = x + self.proj(y)
        x = x + self.fc_out(F.gelu(self.fc(self.ln2(x))))  # erf GELU
        return x


class GPT(nn.Module):
    def __init__(self):
        super().__init__()
        self.tok = nn.Embedding(VOCAB, D_MODEL)
        self.pos = nn.Embedding(CTX, D_MODEL)
        self.blocks = nn.ModuleList([Block() for _ in range(N_LAYER)])
        self.ln_f = nn.LayerNorm(D_MODEL)
        self.apply(self._init)
        for n, p in self.named_parameters():
            if n.endswith("proj.weight") or n.endswith("fc_out.weight"):
                nn.init.normal_(p, 0.0, 0.02 / math.sqrt(2 * N_LAYER))

    @staticmethod
    def _init(m):
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, 0.0, 0.02)
        if isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)

    def forward(self, tokens):
        T = tokens.shape[1]
        pos = torch.arange(0, T, dtype=torch.long, device=tokens.device)
        x = self.tok(tokens) + self.pos(pos)
        for b in self.blocks:
            x = b(x)
        x = self.ln_f(x)
        return x @ self.tok.weight.t()  # tied output embedding


def read_files(paths):
    data = b""
    for p in paths:
        with open(p, "rb") as f:
            data += f.read()
    return data


@torch.no_grad()
def eval_loss(model, data, ctx=CTX):
    """Mean next-byte NLL over non-overlapping ctx windows (127 predictions each)."""
    model.eval()
    n = len(data) // ctx
    t = torch.tensor(list(data[: n * ctx]), dtype=torch.long).view(n, ctx)
    tot, cnt = 0.0, 0
    for i in range(0, n, 64):
        x = t[i:i + 64]
        logits = model(x)
        loss = F.cross_entropy(logits[:, :-1].reshape(-1, VOCAB), x[:, 1:].reshape(-1), reduction="sum")
        tot += loss.item()
        cnt += x[:, 1:].numel()
    model.train()
    return tot / cnt


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("outdir")
    ap.add_argument("--steps", type=int, default=800)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=2e-3)
    args = ap.parse_args()
    os.makedirs(args.outdir, exist_ok=True)

    torch.manual_seed(1234)
    torch.set_num_threads(2)
    train = read_files(TRAIN_FILES)
    held = read_files(HELDOUT_FILES)
    with open(os.path.join(args.outdir, "heldout.txt"), "wb") as f:
        f.write(held)
    print(f"train bytes {len(train)}, heldout bytes {len(held)}, blas path "
          f"{os.environ.get('LD_LIBRARY_PATH', '(system)')}", flush=True)

    data = torch.tensor(list(train), dtype=torch.long)
    model = GPT()
    nparams = sum(p.numel() for p in model.parameters())
    print(f"params {nparams}", flush=True)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95))
    warm = 100

    def lr_at(s):
        if s < warm:
            return args.lr * (s + 1) / warm
        return args.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * (s - warm) / max(1, args.steps - warm))))

    gen = torch.Generator().manual_seed(42)
    t0 = time.time()
    ema = None
    for step in range(args.steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        ix = torch.randint(0, len(data) - CTX - 1, (args.batch,), generator=gen)
        x = torch.stack([data[i:i + CTX] for i in ix])
        y = torch.stack([data[i + 1:i + CTX + 1] for i in ix])
        logits = model(x)
        loss = F.cross_entropy(logits.view(-1, VOCAB), y.view(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        ema = loss.item() if ema is None else 0.98 * ema + 0.02 * loss.item()
        if step % 100 == 0 or step == args.steps - 1:
            print(f"step {step:5d} loss {loss.item():.4f} ema {ema:.4f} "
                  f"t {time.time() - t0:.1f}s", flush=True)
    train_time = time.time() - t0

    train_loss = eval_loss(model, train)
    held_loss = eval_loss(model, held)
    print(f"final train loss {train_loss:.4f} (ppl {math.exp(train_loss):.4f}), "
          f"heldout loss {held_loss:.4f} (ppl {math.exp(held_loss):.4f}), "
          f"train time {train_time:.1f}s", flush=True)

    model.eval()
    dummy = torch.tensor(list(held[:CTX]), dtype=torch.long).view(1, CTX)
    path = os.path.join(args.outdir, "gpt.onnx")
    torch.onnx.export(model, (dummy,), path, opset_version=17,
                      input_names=["tokens"], output_names=["logits"],
                      dynamic_axes={"tokens": {0: "batch", 1: "seq"},
                                    "logits": {0: "batch", 1: "seq"}},
                      do_constant_folding=True)
    with open(os.path.join(args.outdir, "train_log.json"), "w") as f:
        json.dump({"steps": args.steps, "batch": args.batch, "lr": args.lr, "params": nparams,
                   "train_bytes": len(train), "heldout_bytes": len(held),
                   "train_loss": train_loss, "heldout_loss": held_loss,
                   "heldout_ppl_torch": math.exp(held_loss), "train_time_s": train_time,
                   "torch": torch.__version__,
                   "blas": os.environ.get("LD_LIBRARY_PATH", "system"),
                   "dims": {"batch": 1, "seq": CTX}}, f, indent=1)
    print(f"wrote {path} ({os.path.getsize(path)} bytes)")


if __name__ == "__main__":
    main()
