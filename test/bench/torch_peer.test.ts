// The PyTorch bench peer's fairness plumbing (no GPU): its environment drops
// OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE and nothing else, the BLAS classification of real
// /proc/self/maps library lists (Debian OpenBLAS, Debian's reference BLAS, a pip wheel's
// static MKL), the report line flags a reference BLAS with what to install, and (where
// torch is installed) the peer really runs without the forced OpenBLAS core type.
import { describe, it, expect } from 'vitest';
import { classifyBlas, parseTorchLines, runTorchPeer, torchAvailable, torchNote, torchPeerEnv } from '../../bench/peers/torch.ts';

const DEBIAN_OPENBLAS = [
  '/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblasp-r0.3.21.so',
  '/usr/lib/x86_64-linux-gnu/openblas-pthread/liblapack.so.3',
  '/usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3',
];
const DEBIAN_REFERENCE = ['/usr/lib/x86_64-linux-gnu/blas/libblas.so.3', '/usr/lib/x86_64-linux-gnu/lapack/liblapack.so.3'];

describe('PyTorch peer: environment', () => {
  it('removes the two OpenBLAS overrides for the peer only, keeping everything else', () => {
    const ours = { PATH: '/usr/bin', OPENBLAS_CORETYPE: 'Haswell', OPENBLAS_L2_SIZE: '262144', OPENBLAS_NUM_THREADS: '2', OMP_NUM_THREADS: '2' };
    const { env, removed } = torchPeerEnv(ours);
    expect(env).toEqual({ PATH: '/usr/bin', OPENBLAS_NUM_THREADS: '2', OMP_NUM_THREADS: '2' });
    expect(removed).toEqual(['OPENBLAS_CORETYPE=Haswell', 'OPENBLAS_L2_SIZE=262144']);
    expect(ours.OPENBLAS_CORETYPE).toBe('Haswell'); // the caller's environment is untouched
    expect(torchPeerEnv({ PATH: '/usr/bin' }).removed).toEqual([]);
  });
});

describe('PyTorch peer: BLAS backend', () => {
  it('classifies Debian OpenBLAS, the reference BLAS, static MKL and nothing', () => {
    const ob = classifyBlas({ blas_libs: DEBIAN_OPENBLAS, openblas_config: 'OpenBLAS 0.3.21 NO_LAPACKE DYNAMIC_ARCH NO_AFFINITY SkylakeX MAX_THREADS=64', openblas_core: 'SkylakeX', torch_blas_info: 'generic' });
    expect(ob).toEqual({ backend: 'OpenBLAS', detail: 'OpenBLAS 0.3.21 (pthread), core SkylakeX; torch BLAS_INFO=generic', reference: false });
    const ref = classifyBlas({ blas_libs: DEBIAN_REFERENCE, torch_blas_info: 'generic' });
    expect(ref.backend).toBe('reference BLAS');
    expect(ref.reference).toBe(true);
    expect(ref.detail).toContain('/usr/lib/x86_64-linux-gnu/blas/libblas.so.3');
    expect(classifyBlas({ blas_libs: [], torch_blas_info: 'mkl' })).toMatchObject({ backend: 'MKL', reference: false });
    expect(classifyBlas({ blas_libs: ['/opt/intel/lib/libmkl_rt.so.2'] })).toMatchObject({ backend: 'MKL' });
    expect(classifyBlas({ blas_libs: ['/usr/lib/x86_64-linux-gnu/blis-openmp/libblas.so.3'] })).toMatchObject({ backend: 'BLIS', reference: false });
    expect(classifyBlas({})).toMatchObject({ backend: 'unknown', reference: false });
  });

  it("parses the peer's first line and flags a reference-BLAS torch in the report line", () => {
    const text = [
      'noise before',
      JSON.stringify({ torch: '1.13.1', default_threads: 2, cpu_count: 2, blas_libs: DEBIAN_REFERENCE, torch_blas_info: 'generic' }),
      JSON.stringify({ group: 'peer matmul 512', threads: 1, median_ms: 20, min_ms: 19, max_ms: 22, runs: 10, flops: 2 * 512 ** 3 }),
    ].join('\n');
    const p = parseTorchLines(text);
    expect(p.version).toBe('1.13.1');
    expect(p.blas.reference).toBe(true);
    expect(p.rows).toHaveLength(1);
    expect(p.rows[0]!.gflops).toBeCloseTo((2 * 512 ** 3) / 20e6, 6);
    const note = torchNote({ ...p, seconds: 12, envRemoved: ['OPENBLAS_CORETYPE=Haswell'] });
    expect(note).toMatch(/reference BLAS .*understate PyTorch.*apt install libopenblas0-pthread/);
    expect(note).toMatch(/unset for the peer: OPENBLAS_CORETYPE=Haswell/);
    const good = torchNote({ version: '1.13.1', defaultThreads: 2, seconds: 3, envRemoved: [], blas: classifyBlas({ blas_libs: DEBIAN_OPENBLAS, openblas_core: 'SkylakeX' }) });
    expect(good).toBe('PyTorch 1.13.1 on the CPU (BLAS: OpenBLAS 0.3.21 (pthread), core SkylakeX; default 2 threads) ran 3 s');
  });

  it.skipIf(!torchAvailable())('the real peer reports its BLAS and does not see a forced OpenBLAS core type', async () => {
    const saved = process.env.OPENBLAS_CORETYPE;
    // Prescott: the oldest generic x86-64 kernel; OpenBLAS would report it if it saw the variable.
    process.env.OPENBLAS_CORETYPE = 'Prescott';
    try {
      const t = await runTorchPeer({ quick: true, filter: 'no such case' });
      expect(t.rows).toEqual([]);
      expect(t.envRemoved).toEqual(['OPENBLAS_CORETYPE=Prescott']);
      expect(t.blas.backend).not.toBe('unknown');
      if (t.blas.backend === 'OpenBLAS') expect(t.blas.detail).not.toMatch(/core Prescott/i);
      console.log(`torch peer: ${torchNote(t)}`);
    } finally {
      if (saved === undefined) delete process.env.OPENBLAS_CORETYPE;
      else process.env.OPENBLAS_CORETYPE = saved;
    }
  });
});
