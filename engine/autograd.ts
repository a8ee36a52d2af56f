// Autograd core: a tape of GradNodes, a topological backward with += accumulation,
// noGrad/detach, and a functional grad() that never touches leaves' .grad (attacks use it).
// Whether the tape records is per async context (AsyncLocalStorage): noGrad around an async
// function turns it off for that function's continuations only, never for concurrent work.
import { AsyncLocalStorage } from 'node:async_hooks';
import { Tensor } from './tensor.ts';
import { keep } from './scope.ts';
import { add, clone, onesLike, zerosLike } from './ops/elementwise.ts';

export interface GradNode {
  name: string;
  inputs: Tensor[];
  /** Gradients w.r.t. each input (null where no gradient is needed). Runs under noGrad. */
  backward(dy: Tensor): (Tensor | null)[];
}

// NOTE: the store is the 'off' marker; outside any noGrad the tape is on (no store).
const gradOff = new AsyncLocalStorage<true>();

export function isGradEnabled(): boolean {
  return gradOff.getStore() !== true;
}

/**
 * Run fn without recording the tape. An async fn stays tape-free across its awaits, and
 * work running concurrently outside it keeps recording.
 */
export function noGrad<T>(fn: () => T): T {
  return gradOff.run(true, fn);
}

/** Whether any input needs a gradient (and the tape is on). */
export function needsGrad(inputs: Tensor[]): boolean {
  return isGradEnabled() && inputs.some((t) => t.requiresGrad);
}

/** Record `out` as produced by `name` from `inputs`. No-op when no input needs a gradient. */
export function record(out: Tensor, name: string, inputs: Tensor[], backward: (dy: Tensor) => (Tensor | null)[]): Tensor {
  if (!needsGrad(inputs)) return out;
  out.requiresGrad = true;
  out.node = { name, inputs, backward };
  return out;
}

/** A tensor sharing no tape with its source (a copy-free alias is not possible with pooled buffers, so this copies). */
export { detach } from './ops/elementwise.ts';

function topoOrder(root: Tensor): Tensor[] {
  const order: Tensor[] = [];
  const seen = new Set<Tensor>();
  // Iterative DFS (deep nets would overflow recursion).
  const stack: [Tensor, number][] = [[root, 0]];
  seen.add(root);
  while (stack.length) {
    const top = stack[stack.length - 1]!;
    const [t, i] = top;
    const inputs = t.node?.inputs ?? [];
    if (i < inputs.length) {
      top[1]++;
      const c = inputs[i]!;
      if (c.requiresGrad && !seen.has(c)) {
        seen.add(c);
        stack.push([c, 0]);
      }
    } else {
      stack.pop();
      order.push(t);
    }
  }
  return order.reverse();
}

function checkGradShape(node: string, input: Tensor, g: Tensor): void {
  if (g.shape.length !== input.shape.length || g.shape.some((d, i) => d !== input.shape[i])) {
    throw new Error(`kinkless: internal error: backward of ${node} returned gradient of shape [${g.shape}] for input of shape [${input.shape}]`);
  }
}

/**
 * Core reverse pass. With `targets`, returns their gradients and leaves .grad alone;
 * without, accumulates into every leaf's .grad.
 * NOTE: a node's backward may return dy itself or the same tensor twice (add, reshape);
 * such aliases are cloned so that every gradient in flight has exactly one owner.
 */
function reverse(y: Tensor, dy: Tensor | undefined, targets: Tensor[] | null): Map<Tensor, Tensor> {
  if (!y.requiresGrad) throw new Error(`kinkless: backward: the output ${y.toString()} does not depend on any tensor with requiresGrad`);
  if (dy && (dy.shape.length !== y.shape.length || dy.shape.some((d, i) => d !== y.shape[i]))) {
    throw new Error(`kinkless: backward: dy has shape [${dy.shape}] but the output has shape [${y.shape}]`);
  }
  if (!dy && y.size !== 1) throw new Error(`kinkless: backward: output of shape [${y.shape}] is not a scalar; pass dy`);
  const order = topoOrder(y);
  const grads = new Map<Tensor, Tensor>();
  const targetSet = targets ? new Set(targets) : null;
  const result = new Map<Tensor, Tensor>();
  gradOff.run(true, () => {
    try {
      grads.set(y, dy ? clone(dy) : onesLike(y));
      for (const t of order) {
        const g = grads.get(t);
        if (!g) continue;
        grads.delete(t);
        if (targetSet?.has(t)) {
          result.set(t, g);
          continue;
        }
        if (t.node) {
          const gs = t.node.backward(g);
          const seen = new Set<Tensor>([g]);
          t.node.inputs.forEach((inp, i) => {
            let gi = gs[i];
            if (!gi) return;
            if (!inp.requiresGrad) {
              if (!seen.has(gi)) gi.dispose();
              return;
            }
            checkGradShape(t.node!.name, inp, gi);
            if (seen.has(gi)) gi = clone(gi);
            seen.add(gi);
            const old = grads.get(inp);
            if (old) {
              grads.set(inp, add(old, gi));
              old.dispose();
              gi.dispose();
            } else grads.set(inp, gi);
          });
          g.dispose();
        } else if (targetSet) {
          g.dispose();
        } else if (t.grad) {
          // A leaf: accumulate into .grad.
          const sum = add(t.grad, g);
          t.grad.dispose();
          g.dispose();
          t.grad = keep(sum);
        } else t.grad = keep(g);
      }
    } finally {
      for (const g of grads.values()) g.dispose();
    }
  });
  return result;
}

/** Accumulate d(loss)/d(leaf) into every leaf's .grad (leaves: tensors with requiresGrad and no node). */
export function backward(loss: Tensor, dy?: Tensor): void {
  reverse(loss, dy, null);
}

/**
 * Functional gradient: d(y)/d(wrt_i) (summed against dy when y is not a scalar).
 * Leaves' .grad are untouched. A tensor in wrt that y does not depend on gets zeros.
 */
export function grad(y: Tensor, wrt: Tensor[], dy?: Tensor): Tensor[] {
  for (const w of wrt) {
    if (!w.requiresGrad) throw new Error(`kinkless: grad: ${w.toString()} in wrt has requiresGrad = false; set it before the forward pass`);
  }
  const res = reverse(y, dy, wrt);
  return wrt.map((w) => res.get(w) ?? zerosLike(w));
}

