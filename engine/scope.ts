// Memory scopes: every tensor created inside scope(fn) is disposed when fn returns,
// except the tensors it returns (handed to the enclosing scope) and those kept with keep().
// The stack of open scopes is per async context (AsyncLocalStorage): each scopeAsync runs
// on its own copy of the chain of enclosing scopes, so concurrent async scopes never see
// (or close) each other's tensors.
import { AsyncLocalStorage } from 'node:async_hooks';
import type { Tensor } from './tensor.ts';

type Stack = Set<Tensor>[];

/** The stack of code outside any scopeAsync. */
const rootStack: Stack = [];
const asyncStacks = new AsyncLocalStorage<Stack>();

function current(): Stack {
  return asyncStacks.getStore() ?? rootStack;
}

/** Called by the Tensor constructor. */
export function trackTensor(t: Tensor): void {
  const stack = current();
  const top = stack[stack.length - 1];
  if (top) top.add(t);
}

/** Remove a tensor from every scope open in this context: its owner disposes it explicitly. */
export function keep<T extends Tensor>(t: T): T {
  for (const s of current()) s.delete(t);
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

/** Dispose what `tracked` holds except the returned tensors, which go to `parent`. */
function close(tracked: Set<Tensor>, parent: Set<Tensor> | undefined, result: unknown): void {
  const returned = new Set<Tensor>();
  collect(result, returned);
  for (const t of tracked) {
    if (returned.has(t)) parent?.add(t);
    else if (!t.isDisposed) t.dispose();
  }
}

function pop(stack: Stack, tracked: Set<Tensor>): Set<Tensor> | undefined {
  const i = stack.lastIndexOf(tracked);
  if (i >= 0) stack.splice(i, 1);
  return stack[stack.length - 1];
}

/** Run fn; dispose every tensor it created and did not return (tensors, arrays or plain objects of tensors). */
export function scope<T>(fn: () => T): T {
  const stack = current();
  const tracked = new Set<Tensor>();
  stack.push(tracked);
  let result: T;
  try {
    result = fn();
  } catch (e) {
    close(tracked, pop(stack, tracked), undefined);
    throw e;
  }
  if (result instanceof Promise) {
    pop(stack, tracked);
    throw new Error('kinkless: scope() got an async function; use scopeAsync()');
  }
  close(tracked, pop(stack, tracked), result);
  return result;
}

/**
 * Async variant: fn runs (across its awaits) on its own copy of the enclosing scope chain
 * plus a new scope, so several scopeAsync calls may run concurrently.
 */
export async function scopeAsync<T>(fn: () => Promise<T>): Promise<T> {
  const outer = current();
  const parent = outer[outer.length - 1];
  const tracked = new Set<Tensor>();
  const own: Stack = [...outer, tracked];
  let result: T;
  try {
    result = await asyncStacks.run(own, fn);
  } catch (e) {
    close(tracked, parent, undefined);
    throw e;
  }
  close(tracked, parent, result);
  return result;
}
