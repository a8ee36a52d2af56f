// `kinkless doctor`: prints the adapter, its limits, and one kernel round trip with timing.
import { createDevice, adapterName, Tensor, add, sum, type DeviceOptions } from '../engine/index.ts';

export async function doctor(opts: DeviceOptions = {}): Promise<number> {
  const t0 = performance.now();
  const d = await createDevice(opts);
  const tDev = performance.now() - t0;
  try {
    console.log(`adapter:   ${adapterName(d)}`);
    console.log(`vendor:    ${d.adapter.vendor} / ${d.adapter.architecture} / ${d.adapter.device}`);
    console.log(`level:     ${d.adapter.featureLevel} feature level${d.adapter.isFallbackAdapter ? ' (software fallback adapter)' : ''}`);
    console.log(`features:  ${d.features.join(', ') || '(none requested)'}`);
    console.log('settings:');
    for (const st of d.settings()) console.log(`  ${st.name.padEnd(36)} ${st.value}`);
    console.log('limits:');
    for (const k of Object.keys(d.limits).sort()) console.log(`  ${k.padEnd(36)} ${d.limits[k]}`);
    const n = 1 << 20;
    const x = Float32Array.from({ length: n }, (_, i) => (i % 1000) / 1000);
    const t1 = performance.now();
    const a = Tensor.from(d, x, [n]);
    const b = add(a, a);
    const s = await sum(b).item();
    const t2 = performance.now();
    let want = 0;
    for (let i = 0; i < n; i++) want += 2 * x[i]!;
    const ok = Math.abs(s - want) <= 1e-4 * Math.abs(want);
    console.log(`round trip: upload 1M floats, add, sum, read back: ${s.toFixed(2)} (expected ${want.toFixed(2)}) ${ok ? 'OK' : 'MISMATCH'} in ${(t2 - t1).toFixed(1)} ms (device created in ${tDev.toFixed(0)} ms)`);
    return ok ? 0 : 1;
  } finally {
    d.destroy();
  }
}
