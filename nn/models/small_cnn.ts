// The small MNIST CNN used across the project's protocol (docs/numerics.md, MNIST protocol):
// conv 1->32 3x3, act, conv 32->64 3x3 stride 2, act, linear 9216->10.
import { Tensor, type Device } from '../../engine/index.ts';
import { Conv2d, Flatten, Linear, Normalize, Sequential } from '../layers.ts';
import { ActivationFactory, Model, type ModelConfig } from './common.ts';

export class SmallCnn extends Model {
  readonly config: ModelConfig & { name: string };
  readonly net: Sequential;
  constructor(device: Device, config: ModelConfig = {}) {
    super();
    const c = { name: 'small_cnn', activation: 'relu' as const, inChannels: 1, numClasses: 10, seed: 0, ...config };
    this.config = c;
    const acts = new ActivationFactory(device, c.activation, this);
    const layers = [];
    if (c.normalize) layers.push(new Normalize(device, c.normalize.mean, c.normalize.std));
    layers.push(
      new Conv2d(device, c.inChannels, 32, 3, { seed: c.seed * 100 + 1 }),
      acts.make(),
      new Conv2d(device, 32, 64, 3, { stride: 2, seed: c.seed * 100 + 2 }),
      acts.make(),
      new Flatten(),
      new Linear(device, 64 * 12 * 12, c.numClasses, { seed: c.seed * 100 + 3 }),
    );
    this.net = this.registerModule('net', new Sequential(...layers));
  }
  forward(x: Tensor): Tensor {
    if (x.rank !== 4 || x.shape[1] !== this.config.inChannels || x.shape[2] !== 28 || x.shape[3] !== 28) {
      throw new Error(`kinkless: SmallCnn: input must be [N, ${this.config.inChannels}, 28, 28], got [${x.shape.join(', ')}]`);
    }
    return this.net.forward(x);
  }
}
