// Interleaved A/B timing for the standalone lever scripts (conv_levers_ab.ts,
// conv_gemm_tiles_ab.ts): each case runs once to warm up, then every case once per round,
// round after round, so drift in the machine's speed hits every case alike; prints the
// median and minimum wall time per case (the GPU synced after each run).
import type { Device } from '../engine/index.ts';

export async function runInterleaved(device: Device, cases: Record<string, () => void>, only: string, rounds: number, pad: number): Promise<void> {
  const names = Object.keys(cases).filter((n) => n.includes(only));
  const times: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
  for (const n of names) {
    cases[n]!();
    await device.sync();
  }
  for (let r = 0; r < rounds; r++) {
    for (const n of names) {
      const t0 = performance.now();
      cases[n]!();
      await device.sync();
      times[n]!.push(performance.now() - t0);
    }
  }
  const med = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]!;
  for (const n of names) console.log(`${n.padEnd(pad)} median ${med(times[n]!).toFixed(2)} ms  min ${Math.min(...times[n]!).toFixed(2)}  (${rounds} interleaved rounds)`);
}
