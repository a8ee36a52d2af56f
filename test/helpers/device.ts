// Shared test device: one real WebGPU device per test file (never mocked). A missing
// adapter fails the file with the install hint; it is never skipped.
import { afterAll } from 'vitest';
import { createDevice, adapterName, type Device } from '../../engine/index.ts';

let current: Promise<Device> | null = null;

/** The file's device (created on first use, destroyed after the file's tests). */
export function testDevice(): Promise<Device> {
  if (!current) {
    current = createDevice();
    afterAll(async () => {
      const d = await current!;
      d.destroy();
      current = null;
    });
  }
  return current;
}

export { adapterName };
