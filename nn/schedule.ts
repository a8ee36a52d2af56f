// Learning-rate schedules as pure functions of the step (an integer step or a
// fractional epoch: the unit is whatever the config's lengths are in). Built by
// factories or by makeSchedule from a JSON-able, validated config.

export interface LrSchedule {
  lr(step: number): number;
  describe(): string;
}

function checkStep(step: number, name: string): void {
  if (!Number.isFinite(step) || step < 0) throw new Error(`${name} schedule: step ${step}; expected a finite number >= 0`);
}

function req(cond: boolean, msg: string): void {
  if (!cond) throw new Error(msg);
}

const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

function checkLr(v: unknown, what: string): number {
  req(isNum(v) && v >= 0, `${what} = ${JSON.stringify(v)}; expected a finite number >= 0`);
  return v as number;
}

function checkIncreasing(xs: unknown, what: string, strictFirst: boolean): number[] {
  req(Array.isArray(xs) && xs.every(isNum), `${what} = ${JSON.stringify(xs)}; expected an array of finite numbers`);
  const a = xs as number[];
  for (let i = 0; i < a.length; i++) {
    if (i === 0) req(strictFirst ? a[0] > 0 : a[0] >= 0, `${what}[0] = ${a[0]}; expected ${strictFirst ? '> 0' : '>= 0'}`);
    else req(a[i] > a[i - 1], `${what} = [${a.join(', ')}]; expected strictly increasing values`);
  }
  return a;
}

/** The same lr at every step. */
export function constantLr(lr: number): LrSchedule {
  checkLr(lr, 'constant: lr');
  return {
    lr: (step) => (checkStep(step, 'constant'), lr),
    describe: () => `constant(lr=${lr})`,
  };
}

/**
 * Step decay: values[k] applies from milestones[k-1] (inclusive) to milestones[k];
 * values[0] before the first milestone. `values` has milestones.length + 1 entries.
 */
export function piecewiseLr(milestones: number[], values: number[]): LrSchedule {
  checkIncreasing(milestones, 'piecewise: milestones', true);
  req(
    Array.isArray(values) && values.length === milestones.length + 1,
    `piecewise: values has ${values?.length} entries; expected milestones.length + 1 = ${milestones.length + 1}`,
  );
  values.forEach((v, i) => checkLr(v, `piecewise: values[${i}]`));
  return {
    lr(step) {
      checkStep(step, 'piecewise');
      let k = 0;
      while (k < milestones.length && step >= milestones[k]) k++;
      return values[k];
    },
    describe: () => `piecewise(milestones=[${milestones.join(', ')}], values=[${values.join(', ')}])`,
  };
}

/** lr * gamma^(number of milestones <= step), as PyTorch's MultiStepLR. */
export function multiStepLr(lr: number, milestones: number[], gamma: number): LrSchedule {
  checkLr(lr, 'piecewise: lr');
  checkLr(gamma, 'piecewise: gamma');
  checkIncreasing(milestones, 'piecewise: milestones', true);
  const inner = piecewiseLr(milestones, [lr, ...milestones.map((_, i) => lr * gamma ** (i + 1))]);
  return { lr: (step) => inner.lr(step), describe: () => `multistep(lr=${lr}, gamma=${gamma}, milestones=[${milestones.join(', ')}])` };
}

/** Half-cosine from lr at step 0 to `final` at `total`; `final` afterwards. */
export function cosineLr(lr: number, total: number, final = 0): LrSchedule {
  checkLr(lr, 'cosine: lr');
  checkLr(final, 'cosine: final');
  req(isNum(total) && total > 0, `cosine: total = ${total}; expected a finite number > 0`);
  return {
    lr(step) {
      checkStep(step, 'cosine');
      const t = Math.min(step, total) / total;
      return final + (lr - final) * 0.5 * (1 + Math.cos(Math.PI * t));
    },
    describe: () => `cosine(lr=${lr} -> ${final} over ${total})`,
  };
}

/** Linear interpolation through (knots[i], values[i]); clamped to the end values outside. */
export function piecewiseLinearLr(knots: number[], values: number[]): LrSchedule {
  checkIncreasing(knots, 'linear: knots', false);
  req(knots.length >= 1, `linear: knots is empty; expected at least one knot`);
  req(Array.isArray(values) && values.length === knots.length, `linear: values has ${values?.length} entries; expected ${knots.length} (one per knot)`);
  values.forEach((v, i) => checkLr(v, `linear: values[${i}]`));
  return {
    lr(step) {
      checkStep(step, 'linear');
      if (step <= knots[0]) return values[0];
      for (let i = 1; i < knots.length; i++) {
        if (step <= knots[i]) {
          const f = (step - knots[i - 1]) / (knots[i] - knots[i - 1]);
          return values[i - 1] + f * (values[i] - values[i - 1]);
        }
      }
      return values[values.length - 1];
    },
    describe: () => `linear(${knots.map((k, i) => `${k}:${values[i]}`).join(', ')})`,
  };
}

/**
 * One-cycle / "cyclic" lr of Wong et al. (fast adversarial training): linear
 * start -> max over [0, peakAt], then max -> end over [peakAt, total]; end after.
 */
export function oneCycleLr(max: number, peakAt: number, total: number, start = 0, end = 0): LrSchedule {
  checkLr(max, 'one_cycle: max');
  checkLr(start, 'one_cycle: start');
  checkLr(end, 'one_cycle: end');
  req(isNum(total) && total > 0, `one_cycle: total = ${total}; expected a finite number > 0`);
  req(isNum(peakAt) && peakAt > 0 && peakAt < total, `one_cycle: peakAt = ${peakAt}; expected 0 < peakAt < total (${total})`);
  const inner = piecewiseLinearLr([0, peakAt, total], [start, max, end]);
  return { lr: (step) => inner.lr(step), describe: () => `one_cycle(${start} -> ${max} at ${peakAt} -> ${end} at ${total})` };
}

/**
 * Linear warm-up: multiplies `inner` by a factor rising linearly from
 * startFactor at step 0 to 1 at `steps` (the inner schedule is not shifted).
 */
export function withWarmup(inner: LrSchedule, steps: number, startFactor = 0): LrSchedule {
  req(isNum(steps) && steps > 0, `warmup: steps = ${steps}; expected a finite number > 0`);
  req(isNum(startFactor) && startFactor >= 0 && startFactor <= 1, `warmup: startFactor = ${startFactor}; expected a number in [0, 1]`);
  return {
    lr(step) {
      checkStep(step, 'warmup');
      const f = step >= steps ? 1 : startFactor + (1 - startFactor) * (step / steps);
      return inner.lr(step) * f;
    },
    describe: () => `warmup(${steps}, from x${startFactor}) then ${inner.describe()}`,
  };
}

// ---------------------------------------------------------------- config

export interface WarmupConfig {
  steps: number;
  startFactor?: number;
}

export type ScheduleConfig = (
  | { kind: 'constant'; lr: number }
  | { kind: 'piecewise'; lr: number; milestones: number[]; gamma: number }
  | { kind: 'piecewise'; milestones: number[]; values: number[] }
  | { kind: 'cosine'; lr: number; total: number; final?: number }
  | { kind: 'one_cycle' | 'cyclic'; max: number; peakAt: number; total: number; start?: number; end?: number }
  | { kind: 'linear'; knots: number[]; values: number[] }
) & { warmup?: WarmupConfig };

const KEYS: Record<string, string[]> = {
  constant: ['lr'],
  piecewise: ['lr', 'milestones', 'gamma', 'values'],
  cosine: ['lr', 'total', 'final'],
  one_cycle: ['max', 'peakAt', 'total', 'start', 'end'],
  cyclic: ['max', 'peakAt', 'total', 'start', 'end'],
  linear: ['knots', 'values'],
};

/** Builds a schedule from a config object, rejecting unknown kinds, unknown keys and bad values. */
export function makeSchedule(config: ScheduleConfig): LrSchedule {
  req(typeof config === 'object' && config !== null && !Array.isArray(config), `makeSchedule: config ${JSON.stringify(config)}; expected an object`);
  const c = config as unknown as Record<string, unknown>;
  const kind = c.kind;
  req(
    typeof kind === 'string' && Object.hasOwn(KEYS, kind),
    `makeSchedule: kind ${JSON.stringify(kind)}; expected one of ${Object.keys(KEYS).join(', ')}`,
  );
  const allowed = new Set(['kind', 'warmup', ...KEYS[kind as string]]);
  for (const k of Object.keys(c)) {
    req(allowed.has(k), `makeSchedule: unknown key '${k}' for kind '${kind}'; allowed: ${[...allowed].join(', ')}`);
  }
  const need = (k: string): unknown => {
    req(c[k] !== undefined, `makeSchedule: kind '${kind}' needs '${k}'`);
    return c[k];
  };
  const num = (k: string): number => {
    const v = need(k);
    req(isNum(v), `makeSchedule: '${k}' = ${JSON.stringify(v)}; expected a finite number`);
    return v as number;
  };
  const opt = (k: string, dflt: number): number => (c[k] === undefined ? dflt : num(k));
  const arr = (k: string): number[] => {
    const v = need(k);
    req(Array.isArray(v) && v.every(isNum), `makeSchedule: '${k}' = ${JSON.stringify(v)}; expected an array of finite numbers`);
    return [...(v as number[])];
  };
  let s: LrSchedule;
  switch (kind) {
    case 'constant':
      s = constantLr(num('lr'));
      break;
    case 'piecewise':
      if (c.values !== undefined) {
        req(c.lr === undefined && c.gamma === undefined, `makeSchedule: piecewise takes either 'values' or 'lr' + 'gamma', not both`);
        s = piecewiseLr(arr('milestones'), arr('values'));
      } else s = multiStepLr(num('lr'), arr('milestones'), num('gamma'));
      break;
    case 'cosine':
      s = cosineLr(num('lr'), num('total'), opt('final', 0));
      break;
    case 'one_cycle':
    case 'cyclic':
      s = oneCycleLr(num('max'), num('peakAt'), num('total'), opt('start', 0), opt('end', 0));
      break;
    default:
      s = piecewiseLinearLr(arr('knots'), arr('values'));
  }
  if (c.warmup !== undefined) {
    const w = c.warmup as Record<string, unknown>;
    req(typeof w === 'object' && w !== null && !Array.isArray(w), `makeSchedule: warmup ${JSON.stringify(w)}; expected {steps, startFactor?}`);
    for (const k of Object.keys(w)) req(k === 'steps' || k === 'startFactor', `makeSchedule: unknown warmup key '${k}'; allowed: steps, startFactor`);
    req(isNum(w.steps), `makeSchedule: warmup.steps = ${JSON.stringify(w.steps)}; expected a finite number > 0`);
    req(w.startFactor === undefined || isNum(w.startFactor), `makeSchedule: warmup.startFactor = ${JSON.stringify(w.startFactor)}; expected a number in [0, 1]`);
    s = withWarmup(s, w.steps as number, (w.startFactor as number | undefined) ?? 0);
  }
  return s;
}
