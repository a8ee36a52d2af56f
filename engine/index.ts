// Public engine API: device, tensors, autograd, scopes and ops.
export { createDevice, adapterName, isLlvmpipe, Device, DeviceLostError, type DeviceOptions, type Backend } from './device.ts';
export { gpuWait, mainThreadCpuSeconds, defaultWaitMode, type WaitMode } from './gpu_wait.ts';
export { Tensor, Storage, shapeSize, shapeStr, type DType, type Shape } from './tensor.ts';
export { backward, grad, noGrad, isGradEnabled, record, type GradNode } from './autograd.ts';
export { scope, scopeAsync, keep } from './scope.ts';
export * from './ops/elementwise.ts';
export * from './ops/reduce.ts';
export * from './ops/reshape.ts';
export * from './ops/loss.ts';
export * from './ops/random.ts';
export * from './ops/pool.ts';
export * from './ops/batchnorm.ts';
export * from './ops/matmul.ts';
export * from './ops/layout.ts';
export * from './ops/indexing.ts';
export * from './ops/threat.ts';
export { fabProjection, type FabProjectionOptions } from './ops/fab_projection.ts';
export { dropout } from './ops/dropout.ts';
export { sgdUpdate, adamUpdate, clipScale, type SgdUpdate, type AdamUpdate } from './ops/optim.ts';
export { conv2d, conv2dGeometry, conv2dForward, conv2dBackwardInput, conv2dBackwardFilter, chooseConvImpl, gemmOk, conv2dIm2col, DEFAULT_GEMM_CHUNK_BYTES, DEFAULT_KEEP_IM2COL_BYTES, type Conv2dOptions, type ConvImpl, type ConvDir, type ConvGeom } from './ops/conv2d.ts';
export * from './ops/activation.ts';
export * from './ops/activation_value_grad.ts';
// The activation table (kinds, definitions), for nn/ and cli/ that never import kernels/.
export { ACTIVATIONS, ACTIVATION_KINDS, activationDef, activationConstraint as activationParamConstraint, unconstrain, type ActivationKind, type ActivationDef } from '../kernels/activations.ts';
export { conv2dAct, linearAct } from './ops/fused.ts';
