// Memory scopes: every tensor created inside scope(fn) is disposed when fn returns,
// except the tensors it returns (handed to the enclosing scope) and those kept with keep().
import type { Tensor } from './tensor.ts';

const stack: Set<Tensor>[] = [];

/** Called by the Tensor constructor. */
export function trackTensor(t: Tensor): void {
  const top = stack[stack.length - 1];
  if (top) top.add(t);
}

/** Remove a tensor from every active scope: its owner disposes it explicitly. */
export function keep<T extends Tensor>(t: T): T {
  for (const s of stack) s.delete(t);
  return t;
}

function collect(value: unknown, out: Set<Tensor>, depth = 0): void {
  if (value == null || depth > 3) return;
  if (typeof value === 'object' && (value as { __isTensor?: boolean }).__isTensor) {
    out.add(value as Tensor);
    return;
  }
  if (Array.isArray(value)) for (const v of value) collect(v, out, depth + 1);
  else if (typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    for (const v of Object.values(value as Record<string, unknown>)) collect(v, out, depth + 1);
  }
}

function close(tracked: Set<Tensor>, result: unknown): void {
  const i = stack.lastIndexOf(tracked);
  if (i >= 0) stack.splice(i, 1);
  const returned = new Set<Tensor>();
  collect(result, returned);
  const parent = stack[stack.length - 1];
  for (const t of tracked) {
    if (returned.has(t)) parent?.add(t);
    else if (!t.isDisposed) t.dispose();
  }
}

/** Run fn; dispose every tensor it created and did not return (tensors, arrays or plain objects of tensors). */
export function scope<T>(fn: () => T): T {
  const tracked = new Set<Tensor>();
  stack.push(tracked);
  let result: T;
  try {
    result = fn();
  } catch (e) {
    close(tracked, undefined);
    throw e;
  }
  if (result instanceof Promise) {
    stack.splice(stack.lastIndexOf(tracked), 1);
    throw new Error('kinkless: scope() got an async function; use scopeAsync()');
  }
  close(tracked, result);
  return result;
}

/**
 * Async variant. NOTE: scopes form one global stack; do not interleave two scopeAsync
 * calls concurrently (await one before starting the next).
 */
export async function scopeAsync<T>(fn: () => Promise<T>): Promise<T> {
  const tracked = new Set<Tensor>();
  stack.push(tracked);
  let result: T;
  try {
    result = await fn();
  } catch (e) {
    close(tracked, undefined);
    throw e;
  }
  close(tracked, result);
  return result;
}
