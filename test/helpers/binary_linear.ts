// A two-class linear model for analytic attack tests: logit 0 is 0, logit 1 is w.x + b, so
// the margin, its gradient and the worst-case perturbations are known in closed form.
import { Tensor, flatten, type Device } from '../../engine/index.ts';
import { linear } from '../../engine/ops/matmul.ts';
import { Module, parameter } from '../../nn/module.ts';

export class BinaryLinear extends Module {
  readonly W: Tensor;
  readonly bias: Tensor;
  constructor(device: Device, readonly w: Float64Array, readonly b: number) {
    super();
    const D = w.length;
    const W = new Float32Array(2 * D);
    W.set(Float32Array.from(w), D);
    this.W = this.registerParameter('W', parameter(device, W, [2, D]));
    this.bias = this.registerParameter('b', parameter(device, Float32Array.from([0, b]), [2], 'bias'));
  }
  forward(x: Tensor): Tensor {
    return linear(flatten(x), this.W, this.bias);
  }
}
