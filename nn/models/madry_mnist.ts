// The Madry et al. MNIST network: conv 32 5x5 (same), pool 2, conv 64 5x5 (same), pool 2,
// fc 1024, fc 10, with the activation as an option.
import { Tensor, type Device } from '../../engine/index.ts';
import { Conv2d, Flatten, Linear, MaxPool2d, Normalize, Sequential } from '../layers.ts';
import { ActivationFactory, Model, type ModelConfig } from './common.ts';

export class MadryMnist extends Model {
  readonly config: ModelConfig & { name: string };
  readonly net: Sequential;
  constructor(device: Device, config: ModelConfig = {}) {
    super();
    const c = { name: 'madry_mnist', activation: 'relu' as const, inChannels: 1, numClasses: 10, seed: 0, ...config };
    this.config = c;
    const acts = new ActivationFactory(device, c.activation, this);
    const layers = [];
    if (c.normalize) layers.push(new Normalize(device, c.normalize.mean, c.normalize.std));
    layers.push(
      new Conv2d(device, c.inChannels, 32, 5, { padding: 2, seed: c.seed * 100 + 1 }),
      acts.make(),
      new MaxPool2d(2),
      new Conv2d(device, 32, 64, 5, { padding: 2, seed: c.seed * 100 + 2 }),
      acts.make(),
      new MaxPool2d(2),
      new Flatten(),
      new Linear(device, 64 * 7 * 7, 1024, { seed: c.seed * 100 + 3 }),
      acts.make(),
      new Linear(device, 1024, c.numClasses, { seed: c.seed * 100 + 4 }),
    );
    this.net = this.registerModule('net', new Sequential(...layers));
  }
  forward(x: Tensor): Tensor {
    return this.net.forward(x);
  }
}
