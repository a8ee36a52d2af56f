// PreAct ResNet-18 (He et al. 2016, as used by Rice et al. / Wong et al. on CIFAR-10) and
// WideResNet-d-k (Zagoruyko & Komodakis), with the activation as a constructor option.
import { Tensor, add, type Device } from '../../engine/index.ts';
import { BatchNorm2d, Conv2d, Flatten, GlobalAvgPool2d, Linear, Normalize, Sequential } from '../layers.ts';
import { Module } from '../module.ts';
import type { Activation } from '../activation.ts';
import { ActivationFactory, Model, type ModelConfig } from './common.ts';

/** Pre-activation block: bn-act-conv-bn-act-conv, with a 1x1 projection shortcut when shapes change. */
class PreActBlock extends Module {
  readonly bn1: BatchNorm2d;
  readonly act1: Activation;
  readonly conv1: Conv2d;
  readonly bn2: BatchNorm2d;
  readonly act2: Activation;
  readonly conv2: Conv2d;
  readonly shortcut: Conv2d | null;
  constructor(device: Device, inC: number, outC: number, stride: number, acts: ActivationFactory, seed: number) {
    super();
    this.bn1 = this.registerModule('bn1', new BatchNorm2d(device, inC));
    this.act1 = this.registerModule('act1', acts.make());
    this.conv1 = this.registerModule('conv1', new Conv2d(device, inC, outC, 3, { stride, padding: 1, bias: false, seed: seed + 1 }));
    this.bn2 = this.registerModule('bn2', new BatchNorm2d(device, outC));
    this.act2 = this.registerModule('act2', acts.make());
    this.conv2 = this.registerModule('conv2', new Conv2d(device, outC, outC, 3, { padding: 1, bias: false, seed: seed + 2 }));
    this.shortcut = stride !== 1 || inC !== outC ? this.registerModule('shortcut', new Conv2d(device, inC, outC, 1, { stride, bias: false, seed: seed + 3 })) : null;
  }
  forward(x: Tensor): Tensor {
    const o = this.act1.forward(this.bn1.forward(x));
    const sc = this.shortcut ? this.shortcut.forward(o) : x;
    const h = this.conv2.forward(this.act2.forward(this.bn2.forward(this.conv1.forward(o))));
    return add(h, sc);
  }
}

export interface ResNetConfig extends ModelConfig {
  /** Input spatial size (CIFAR: 32). */
  imageSize?: number;
}

function buildPreAct(
  self: Model,
  device: Device,
  c: Required<Pick<ResNetConfig, 'inChannels' | 'numClasses' | 'seed'>> & ResNetConfig,
  stem: number,
  stages: { channels: number; blocks: number; stride: number }[],
  acts: ActivationFactory,
): Sequential {
  const layers: Module[] = [];
  if (c.normalize) layers.push(new Normalize(device, c.normalize.mean, c.normalize.std));
  layers.push(new Conv2d(device, c.inChannels, stem, 3, { padding: 1, bias: false, seed: c.seed * 1000 }));
  let inC = stem;
  let s = 1;
  for (const st of stages) {
    for (let b = 0; b < st.blocks; b++) {
      layers.push(new PreActBlock(device, inC, st.channels, b === 0 ? st.stride : 1, acts, c.seed * 1000 + 10 * s++));
      inC = st.channels;
    }
  }
  layers.push(new BatchNorm2d(device, inC), acts.make(), new GlobalAvgPool2d(), new Flatten(), new Linear(device, inC, c.numClasses, { seed: c.seed * 1000 + 999 }));
  return self['registerModule']('net', new Sequential(...layers));
}

export class PreActResNet18 extends Model {
  readonly config: ResNetConfig & { name: string };
  readonly net: Sequential;
  constructor(device: Device, config: ResNetConfig = {}) {
    super();
    const c = { name: 'preact_resnet18', activation: 'relu' as const, inChannels: 3, numClasses: 10, seed: 0, ...config };
    this.config = c;
    const acts = new ActivationFactory(device, c.activation, this);
    this.net = buildPreAct(this, device, c, 64, [
      { channels: 64, blocks: 2, stride: 1 },
      { channels: 128, blocks: 2, stride: 2 },
      { channels: 256, blocks: 2, stride: 2 },
      { channels: 512, blocks: 2, stride: 2 },
    ], acts);
  }
  forward(x: Tensor): Tensor {
    return this.net.forward(x);
  }
}

/** WideResNet-depth-widen: (depth - 4) / 6 pre-activation blocks per stage, widths 16k, 32k, 64k. */
export class WideResNet extends Model {
  readonly config: ResNetConfig & { name: string; depth: number; widen: number };
  readonly net: Sequential;
  constructor(device: Device, depth = 28, widen = 10, config: ResNetConfig = {}) {
    super();
    if (!Number.isInteger(depth) || (depth - 4) % 6 !== 0 || depth < 10) throw new Error(`kinkless: WideResNet: depth must be 6n + 4 (>= 10), got ${depth}`);
    if (!Number.isInteger(widen) || widen < 1) throw new Error(`kinkless: WideResNet: widen must be a positive integer, got ${widen}`);
    const c = { name: `wrn_${depth}_${widen}`, activation: 'relu' as const, inChannels: 3, numClasses: 10, seed: 0, depth, widen, ...config };
    this.config = c;
    const n = (depth - 4) / 6;
    const acts = new ActivationFactory(device, c.activation, this);
    this.net = buildPreAct(this, device, c, 16, [
      { channels: 16 * widen, blocks: n, stride: 1 },
      { channels: 32 * widen, blocks: n, stride: 2 },
      { channels: 64 * widen, blocks: n, stride: 2 },
    ], acts);
  }
  forward(x: Tensor): Tensor {
    return this.net.forward(x);
  }
}
