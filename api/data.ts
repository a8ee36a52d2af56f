// `kinkless/data`: datasets (the embedded MNIST, CIFAR-10 binaries, IDX files) and the batch
// loader (shuffling, splits, augmentation).
/// <reference types="@webgpu/types" preserve="true" />
export * from '../nn/data/loader.ts';
export * from '../nn/data/mnist.ts';
export * from '../nn/data/cifar.ts';
export * from '../nn/data/idx.ts';
