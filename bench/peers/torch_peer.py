#!/usr/bin/env python3
"""PyTorch CPU peer for the kinkless benchmark suite (bench/peers/torch.ts runs it).

The same cases as bench/peers.bench.ts and bench/e2e.bench.ts, with the same group
names, shapes and sizes, timed by wall clock (time.perf_counter) after warm-up, at each
requested thread count. Prints one JSON object per line:
  {"torch": "<version>", "default_threads": n, "cpu_count": n,
   "blas_libs": [paths], "openblas_config": s, "openblas_core": s,
   "torch_blas_info": s}                                                  (first line)
  {"group": ..., "threads": t, "median_ms": ..., "min_ms": ..., "max_ms": ...,
   "runs": r, "flops"|"bytes"|"items": ...}                               (one per case)
The BLAS fields name the library torch's matmuls really run on: the BLAS / LAPACK / MKL /
BLIS / ATLAS shared objects mapped into this process after a small matmul
(/proc/self/maps), OpenBLAS's own config and core name when it is one, and torch's
build-time BLAS_INFO (bench/peers/torch.ts classifies them).
Usage: torch_peer.py [--quick] [--threads 1,2] [--filter substring[|substring...]] [--mnist-dir DIR]
"""
import argparse
import ctypes
import gzip
import json
import os
import re
import statistics
import sys
import time

import torch
import torch.nn.functional as F


def rand(shape, seed, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(shape, generator=g) * 2 - 1) * scale


def timed(fn, runs, warmup):
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        ts.append((time.perf_counter() - t0) * 1e3)
    return {"median_ms": statistics.median(ts), "min_ms": min(ts), "max_ms": max(ts), "runs": runs}


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    data = torch.frombuffer(bytearray(raw[4 + 4 * ndim :]), dtype=torch.uint8)
    return data.reshape(dims)


def find(d, base):
    for name in (base, base + ".gz", base.replace("-idx", ".idx"), base.replace("-idx", ".idx") + ".gz"):
        p = os.path.join(d, name)
        if os.path.exists(p):
            return p
    return None


def mnist(d, split, n):
    """First n images in [0, 1] as [n, 1, 28, 28] and labels; random data when no files."""
    prefix = "train" if split == "train" else "t10k"
    ip = find(d, f"{prefix}-images-idx3-ubyte") if d else None
    lp = find(d, f"{prefix}-labels-idx1-ubyte") if d else None
    if ip and lp:
        x = read_idx(ip)[:n].float().div(255).reshape(n, 1, 28, 28)
        y = read_idx(lp)[:n].long()
        return x, y
    return rand((n, 1, 28, 28), 5).abs(), torch.randint(0, 10, (n,), generator=torch.Generator().manual_seed(6))


class SmallCnn(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = torch.nn.Conv2d(1, 32, 3)
        self.c2 = torch.nn.Conv2d(32, 64, 3, stride=2)
        self.fc = torch.nn.Linear(9216, 10)

    def forward(self, x):
        return self.fc(F.relu(self.c2(F.relu(self.c1(x)))).flatten(1))


def attack(model, x, y, eps, alpha, steps, random_start=True):
    """L-inf PGD with the parameters frozen (input gradient only)."""
    for p in model.parameters():
        p.requires_grad_(False)
    delta = (torch.rand_like(x) * 2 - 1) * eps if random_start else torch.zeros_like(x)
    delta = (x + delta).clamp(0, 1) - x
    for _ in range(steps):
        delta.requires_grad_(True)
        loss = F.cross_entropy(model(x + delta), y, reduction="sum")
        (g,) = torch.autograd.grad(loss, [delta])
        delta = (delta.detach() + alpha * g.sign()).clamp(-eps, eps)
        delta = (x + delta).clamp(0, 1) - x
    for p in model.parameters():
        p.requires_grad_(True)
    return (x + delta).detach()


def cases(quick, mnist_dir):
    out = []
    mm = [512] if quick else [512, 1024]
    for n in mm:
        a, b = rand((n, n), 1), rand((n, n), 2)
        out.append((f"peer matmul {n}", {"flops": 2 * n**3}, lambda a=a, b=b: torch.mm(a, b)))
    N = 8 if quick else 64
    label = f"N{N} 32x32 64->64 3x3"
    x, w, dy = rand((N, 64, 32, 32), 1), rand((64, 64, 3, 3), 2, 0.1), rand((N, 64, 32, 32), 3)
    flops = 2 * N * 64 * 32 * 32 * 64 * 9
    cb = torch.ops.aten.convolution_backward
    args = ([0], [1, 1], [1, 1], [1, 1], False, [0, 0], 1)
    out.append((f"peer conv fwd {label}", {"flops": flops}, lambda: F.conv2d(x, w, padding=1)))
    out.append((f"peer conv dx {label}", {"flops": flops}, lambda: cb(dy, x, w, *args, [True, False, False])))
    out.append((f"peer conv dw {label}", {"flops": flops}, lambda: cb(dy, x, w, *args, [False, True, False])))
    n, lab = (1 << 20, "1M") if quick else (1 << 22, "4M")
    v, dv = rand((n,), 7, 4.0), rand((n,), 8, 0.1)

    def silu_grad():
        xg = v.detach().requires_grad_(True)
        return torch.autograd.grad(F.silu(xg), [xg], dv)

    out.append((f"peer relu {lab}", {"bytes": 8 * n}, lambda: F.relu(v)))
    out.append((f"peer silu fwd {lab}", {"bytes": 8 * n}, lambda: F.silu(v)))
    out.append((f"peer silu grad {lab}", {"bytes": 12 * n}, silu_grad))
    out.append((f"peer gelu fwd {lab}", {"bytes": 8 * n}, lambda: F.gelu(v)))

    def gelu_grad():
        xg = v.detach().requires_grad_(True)
        return torch.autograd.grad(F.gelu(xg), [xg], dv)

    # PSSiLU x (s(|a| x) - |b|) / (1 - |b|) with raw a, b = PSSILU_RAW of peers.bench.ts.
    ra, rb = torch.tensor([1.5]), torch.tensor([0.25])

    def pssilu(x, pa, pb):
        b = pb.abs()
        return x * (torch.sigmoid(pa.abs() * x) - b) / (1 - b)

    def pssilu_grad():
        xg, pa, pb = (t.detach().requires_grad_(True) for t in (v, ra, rb))
        return torch.autograd.grad(pssilu(xg, pa, pb), [xg, pa, pb], dv)

    out.append((f"peer gelu grad {lab}", {"bytes": 12 * n}, gelu_grad))
    out.append((f"peer pssilu fwd {lab}", {"bytes": 8 * n}, lambda: pssilu(v, ra, rb)))
    out.append((f"peer pssilu grad {lab}", {"bytes": 12 * n}, pssilu_grad))

    # End to end (bench/e2e.bench.ts): batch 128, eps 0.3.
    torch.manual_seed(1)
    model = SmallCnn()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    xb, yb = mnist(mnist_dir, "train", 128)

    def train_step(xin):
        opt.zero_grad()
        F.cross_entropy(model(xin), yb).backward()
        opt.step()

    out.append(("e2e standard step b128", {"items": 128}, lambda: train_step(xb)))
    out.append(("e2e fast-AT step b128", {"items": 128}, lambda: train_step(attack(model, xb, yb, 0.3, 0.375, 1))))
    out.append(("e2e PGD-10-AT step b128", {"items": 128}, lambda: train_step(attack(model, xb, yb, 0.3, 0.075, 10))))
    n_img = 250 if quick else 1000
    half = n_img // 2
    xt, yt = mnist(mnist_dir, "test", n_img)
    emodel = SmallCnn().eval()
    k = [0]

    def pgd20():  # each run attacks the next half (two runs cover every image once)
        s = (k[0] % 2) * half
        k[0] += 1
        attack(emodel, xt[s : s + half], yt[s : s + half], 0.3, 0.025, 20)

    out.append((f"e2e PGD-20 attack {n_img} images", {"items": half}, pgd20))
    return out


def blas_info():
    """The BLAS torch uses here: mapped libraries, OpenBLAS config/core, torch's BLAS_INFO."""
    a = torch.ones(64, 64)
    (a @ a).sum().item()  # loads the BLAS if torch links it dynamically
    libs = []
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                parts = line.split()
                path = parts[-1] if len(parts) >= 6 else ""
                base = os.path.basename(path).lower()
                if path.startswith("/") and re.search(r"blas|lapack|mkl|blis|atlas", base) and path not in libs:
                    libs.append(path)
    except OSError:
        pass
    info = {"blas_libs": libs}
    for path in sorted(libs, key=lambda p: "openblas" not in os.path.basename(p).lower()):
        if "openblas" not in path.lower():
            continue
        try:
            lib = ctypes.CDLL(path)
            lib.openblas_get_config.restype = ctypes.c_char_p
            lib.openblas_get_corename.restype = ctypes.c_char_p
            info["openblas_config"] = lib.openblas_get_config().decode()
            info["openblas_core"] = lib.openblas_get_corename().decode()
            break
        except (OSError, AttributeError):
            continue
    m = re.search(r"BLAS_INFO=([\w-]+)", torch.__config__.show())
    info["torch_blas_info"] = m.group(1) if m else None
    return info


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--threads", default="")
    ap.add_argument("--filter", default="")
    ap.add_argument("--mnist-dir", default="")
    a = ap.parse_args()
    default_threads = torch.get_num_threads()
    cpu = os.cpu_count() or 1
    threads = [int(t) for t in a.threads.split(",") if t] or sorted({1, max(default_threads, cpu)})
    print(json.dumps({"torch": torch.__version__, "default_threads": default_threads, "cpu_count": cpu, **blas_info()}), flush=True)
    alts = [f for f in a.filter.lower().split("|")] or [""]
    todo = [c for c in cases(a.quick, a.mnist_dir) if any(f in c[0].lower() for f in alts)]
    for t in threads:
        torch.set_num_threads(t)
        for group, extra, fn in todo:
            if "attack" in group:  # seconds per run
                runs, warmup = 2, 0
            elif group.startswith("e2e"):
                runs, warmup = 3, 1
            else:
                runs, warmup = (5 if a.quick else 10), 2
            r = timed(fn, runs=runs, warmup=warmup)
            print(json.dumps({"group": group, "threads": t, **r, **extra}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
