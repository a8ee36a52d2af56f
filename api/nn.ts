// `kinkless/nn`: modules and layers, activations, initialisation, optimizers, learning-rate
// schedules, the models, and checkpoints (safetensors, self-describing model files).
/// <reference types="@webgpu/types" preserve="true" />
export * from '../nn/module.ts';
export * from '../nn/layers.ts';
export * from '../nn/activation.ts';
export * from '../nn/init.ts';
export * from '../nn/optim.ts';
export * from '../nn/schedule.ts';
export * from '../nn/models/common.ts';
export * from '../nn/models/small_cnn.ts';
export * from '../nn/models/madry_mnist.ts';
export * from '../nn/models/resnet.ts';
export * from '../nn/checkpoint.ts';
export * from '../nn/model_checkpoint.ts';
