// The package root (`import ... from 'kinkless'`): the engine. Devices, tensors, autograd,
// scopes and every op. Subpaths: kinkless/nn, kinkless/adversarial, kinkless/data.
/// <reference types="@webgpu/types" preserve="true" />
export * from '../engine/index.ts';
