// Runs once before the suite: names the adapter the kernels run on. A missing adapter
// fails the run (never a skip).
import { createDevice, adapterName } from '../engine/index.ts';

export default async function setup(): Promise<void> {
  const d = await createDevice();
  const lim = d.limits;
  console.log(`\nkinkless tests: WebGPU adapter "${adapterName(d)}" (${d.adapter.featureLevel} feature level, maxStorageBufferBindingSize ${lim.maxStorageBufferBindingSize})\n`);
  d.destroy();
}
