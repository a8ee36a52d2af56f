// PyTorch export: turns a checkpoint's recorded architecture (nn/model_checkpoint.ts) into a
// self-contained Python file: a safetensors reader, every activation kind with its
// parameters (effective = constraint(raw), the same forms as kernels/activations.ts), the
// layer classes our state-dict names need, and the model's __init__ written out layer by
// layer, so `load()` returns a torch.nn.Module whose state dict is the exported file's.
import type { Architecture, LayerSpec, ActivationMeta } from '../nn/model_checkpoint.ts';

const PY_RUNTIME = String.raw`import json
import math
import os
import struct
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

_DTYPES = {"F32": torch.float32, "F64": torch.float64, "I32": torch.int32, "I64": torch.int64, "U8": torch.uint8}


def read_safetensors(path):
    """Tensors of a safetensors file by name (a reader of the format, no dependency)."""
    if sys.byteorder != "little":
        raise RuntimeError("read_safetensors: big-endian hosts are not supported")
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n].decode("utf-8"))
    data = raw[8 + n :]
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        b, end = e["data_offsets"]
        t = torch.frombuffer(bytearray(data[b:end]), dtype=_DTYPES[e["dtype"]]) if end > b else torch.zeros(0, dtype=_DTYPES[e["dtype"]])
        out[name] = t.reshape(e["shape"]).clone()
    return out


def _constrain(c, raw):
    return raw * raw if c == "square" else raw.abs() if c == "abs" else raw


def _unconstrain(c, eff):
    return [math.sqrt(v) if c == "square" else v for v in eff]


def _smooth_relu(x, a):
    # (u - log1p(u)) / a with u = a max(x, 0); a series below u = 1e-2 (no cancellation).
    u = a * x.clamp(min=0)
    series = u * u * (0.5 - u * (1.0 / 3 - u * (0.25 - u * 0.2)))
    return torch.where(u < 1e-2, series, u - torch.log1p(u)) / a


def activation_fn(kind, x, p):
    """f(x) for an activation kind with effective parameters p (list or 1-D tensor)."""
    if kind == "relu":
        return F.relu(x)
    if kind in ("softplus", "psoftplus"):
        a = p[0]
        return x.clamp(min=0) + torch.log1p(torch.exp(-(a * x).abs())) / a
    if kind == "silu":
        return x * torch.sigmoid(p[0] * x)
    if kind == "gelu":
        return F.gelu(x)
    if kind == "gelu_tanh":
        return F.gelu(x, approximate="tanh")
    if kind == "elu":
        return torch.where(x > 0, x, p[0] * torch.expm1(x.clamp(max=0)))
    if kind == "celu":
        return torch.where(x > 0, x, p[0] * torch.expm1(x.clamp(max=0) / p[0]))
    if kind == "smooth_relu":
        return _smooth_relu(x, p[0])
    if kind == "prelu":
        return torch.where(x > 0, x, p[0] * x)
    if kind == "pssilu":
        a, b = p[0], p[1]
        return x * (torch.sigmoid(a * x) - b) / (1 - b)
    raise ValueError(f"unknown activation kind {kind!r}")


class Activation(nn.Module):
    """kinkless's Activation: fixed parameters, its own learnable raw ones ("params"), or the
    model's shared raw ones ("act_params" on the model); effective = constraint(raw)."""

    def __init__(self, kind, params, learnable=False, constraint="none", shared_owner=None):
        super().__init__()
        self.kind, self.constraint = kind, constraint
        self.__dict__["_owner"] = shared_owner  # not a submodule: no duplicate state-dict names
        self.fixed = [float(v) for v in params]
        if learnable and shared_owner is None:
            self.params = nn.Parameter(torch.tensor(_unconstrain(constraint, params), dtype=torch.float32))
        else:
            self.params = None

    def effective(self):
        raw = self._owner.act_params if self._owner is not None else self.params
        return self.fixed if raw is None else _constrain(self.constraint, raw)

    def forward(self, x):
        return activation_fn(self.kind, x, self.effective())


class Normalize(nn.Module):
    def __init__(self, mean, std):
        super().__init__()
        c = len(mean)
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).reshape(1, c, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).reshape(1, c, 1, 1))

    def forward(self, x):
        return (x - self.mean) / self.std


class GlobalAvgPool2d(nn.Module):
    def forward(self, x):
        return x.mean(dim=(2, 3))


class PreActBlock(nn.Module):
    """bn-act-conv-bn-act-conv with an optional 1x1 projection shortcut on the activated input."""

    def __init__(self, bn1, act1, conv1, bn2, act2, conv2, shortcut=None):
        super().__init__()
        self.bn1, self.act1, self.conv1, self.bn2, self.act2, self.conv2 = bn1, act1, conv1, bn2, act2, conv2
        self.shortcut = shortcut

    def forward(self, x):
        o = self.act1(self.bn1(x))
        sc = self.shortcut(o) if self.shortcut is not None else x
        return self.conv2(self.act2(self.bn2(self.conv1(o)))) + sc
`;

const PY_LOAD = String.raw`

def load(weights=None):
    """The model with the exported weights (default: model.safetensors next to this file), in eval mode."""
    weights = weights or os.path.join(os.path.dirname(os.path.abspath(__file__)), "model.safetensors")
    model = Model()
    state = read_safetensors(weights)
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise RuntimeError(f"{weights}: missing tensors {missing}, unexpected tensors {unexpected}")
    return model.eval()
`;

const num = (v: unknown): string => {
  const n = v as number;
  if (!Number.isFinite(n)) throw new Error(`kinkless export: non-finite number ${String(v)} in the architecture`);
  return String(n); // shortest round-trip form; Python reads it as the same float64
};
const nums = (v: unknown): string => `[${(v as number[]).map(num).join(', ')}]`;
const bool = (v: unknown): string => (v ? 'True' : 'False');

function activationExpr(a: ActivationMeta): string {
  const shared = a.learnable && a.shared ? ', shared_owner=self' : '';
  return `Activation(${JSON.stringify(a.kind)}, ${nums(a.params)}, learnable=${bool(a.learnable)}, constraint=${JSON.stringify(a.constraint)}${shared})`;
}

/** A Python expression constructing the layer (indented for nesting). */
function layerExpr(s: LayerSpec, indent: string, path: string): string {
  const inner = indent + '    ';
  const child = (name: string): LayerSpec => {
    const c = s.children?.find((k) => k.name === name);
    if (!c) throw new Error(`kinkless export: ${path || '(root)'}: ${s.type} without child "${name}"`);
    return c;
  };
  switch (s.type) {
    case 'Conv2d':
      return `nn.Conv2d(${num(s.in)}, ${num(s.out)}, ${num(s.kernel)}, stride=${num(s.stride)}, padding=${num(s.padding)}, dilation=${num(s.dilation)}, groups=${num(s.groups)}, bias=${bool(s.bias)})`;
    case 'Linear':
      return `nn.Linear(${num(s.in)}, ${num(s.out)}, bias=${bool(s.bias)})`;
    case 'BatchNorm2d':
      return `nn.BatchNorm2d(${num(s.channels)}, eps=${num(s.eps)}, momentum=${num(s.momentum)}, affine=${bool(s.affine)})`;
    case 'MaxPool2d':
      return `nn.MaxPool2d(${num(s.kernel)}, stride=${num(s.stride)}, padding=${num(s.padding)})`;
    case 'AvgPool2d':
      return `nn.AvgPool2d(${num(s.kernel)}, stride=${num(s.stride)}, padding=${num(s.padding)}, count_include_pad=True)`;
    case 'GlobalAvgPool2d':
      return 'GlobalAvgPool2d()';
    case 'Flatten':
      return 'nn.Flatten(1)';
    case 'Dropout':
      return `nn.Dropout(${num(s.p)})`;
    case 'Normalize':
      return `Normalize(${nums(s.mean)}, ${nums(s.std)})`;
    case 'Activation':
      return activationExpr(s as unknown as ActivationMeta);
    case 'Sequential': {
      const kids = s.children ?? [];
      kids.forEach((k, i) => {
        if (k.name !== String(i)) throw new Error(`kinkless export: ${path}: Sequential child "${k.name}" at position ${i}`);
      });
      if (!kids.length) return 'nn.Sequential()';
      return `nn.Sequential(\n${kids.map((k) => `${inner}${layerExpr(k, inner, `${path}.${k.name}`)},`).join('\n')}\n${indent})`;
    }
    case 'PreActBlock': {
      const names = ['bn1', 'act1', 'conv1', 'bn2', 'act2', 'conv2'];
      const sc = s.children?.find((k) => k.name === 'shortcut');
      const args = names.map((n) => `${inner}${n}=${layerExpr(child(n), inner, `${path}.${n}`)},`);
      if (sc) args.push(`${inner}shortcut=${layerExpr(sc, inner, `${path}.shortcut`)},`);
      return `PreActBlock(\n${args.join('\n')}\n${indent})`;
    }
    default:
      throw new Error(`kinkless export: ${path || '(root)'}: layer type "${s.type}" has no PyTorch equivalent here (known: Sequential, Conv2d, Linear, BatchNorm2d, MaxPool2d, AvgPool2d, GlobalAvgPool2d, Flatten, Dropout, Normalize, Activation, PreActBlock)`);
  }
}

/** The Python module text for an architecture; `shared` gives the shared raw parameters' length. */
export function torchModule(arch: Architecture, sharedParams: { name: string; length: number } | null, source: string): string {
  const kids = arch.root.children ?? [];
  if (kids.length !== 1) throw new Error(`kinkless export: ${source}: model "${arch.model}" has ${kids.length} top-level modules; the exported forward runs exactly one (its "net")`);
  const net = kids[0]!;
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(net.name)) throw new Error(`kinkless export: ${source}: top-level module name "${net.name}" is not a Python identifier`);
  if (sharedParams && sharedParams.name !== 'act_params') throw new Error(`kinkless export: ${source}: shared activation parameters are "${sharedParams.name}", expected "act_params"`);
  const acts = arch.activations.map((a) => `#   ${a.path}: ${a.kind} params ${JSON.stringify(a.params)}${a.learnable ? ` (learnable, ${a.shared ? 'shared' : 'per layer'}, effective = ${a.constraint}(raw))` : ''}${a.backward ? ` [trained with a ${a.backward.kind} surrogate derivative; PyTorch uses the true one]` : ''}`);
  const lines = [
    `# ${arch.model}: exported by \`kinkless export --torch\` from ${source}.`,
    '# Load it with:',
    '#   import sys; sys.path.insert(0, "<this directory>")',
    '#   from model import load',
    '#   net = load()   # weights from model.safetensors next to this file; eval mode',
    '# Activations (effective parameters at export time):',
    ...acts,
    PY_RUNTIME,
    '',
    'class Model(nn.Module):',
    `    """${arch.model} as kinkless builds it (same module tree and state-dict names)."""`,
    '',
    '    def __init__(self):',
    '        super().__init__()',
  ];
  if (sharedParams) {
    const shared = arch.activations.find((a) => a.learnable && a.shared)!;
    lines.push(`        self.act_params = nn.Parameter(torch.tensor(_unconstrain(${JSON.stringify(shared.constraint)}, ${nums(shared.params)}), dtype=torch.float32))`);
  }
  lines.push(`        self.${net.name} = ${layerExpr(net, '        ', net.name)}`, '', '    def forward(self, x):', `        return self.${net.name}(x)`);
  return `${lines.join('\n')}\n${PY_LOAD}`;
}
