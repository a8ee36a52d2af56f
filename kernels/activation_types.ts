// The types of the activation table (kernels/activations.ts, which re-exports them): how a
// learnable raw parameter maps to its effective value, one parameter's description, and
// one table entry (WGSL snippets and float64 references).

/** How a learnable RAW parameter maps to the effective one: |raw|, raw^2 or raw. */
export type ParamConstraint = 'abs' | 'square' | 'none';

/** One effective parameter of an activation: default, learnable parametrisation, domain. */
export interface ActivationParam {
  name: string;
  /** Default effective value (the papers' initialisation). */
  init: number;
  /**
   * Learnable parametrisation: effective = |raw| ('abs', PAF's code), raw^2 ('square',
   * SAT's SmoothReLU a = w^2) or raw ('none'). Host-number params are always effective.
   */
  constraint: ParamConstraint;
  /** Open bounds of the effective value, with the reason (e.g. f divides by a). */
  domain?: { gt?: number; lt?: number; why: string };
}

export interface ActivationDef {
  kind: string;
  /** The effective parameters, in p order (at most 2). */
  params: readonly ActivationParam[];
  /** Effective parameter names, in p order (from params). */
  paramNames: readonly string[];
  /** Default effective parameter values (from params). */
  defaults: readonly number[];
  /** Default hint: whether the papers train the parameter(s). */
  learnable: boolean;
  /**
   * WGSL defining `${prefix}_f(x: f32, p: vec2<f32>) -> f32`, `${prefix}_df(...) -> f32`
   * (df/dx), `${prefix}_dp(...) -> vec2<f32>` (df/dparam), `${prefix}_fdf(...) ->
   * vec2<f32>` = (f, df/dx) and `${prefix}_fdfdp(...) -> vec4<f32>` = (f, df/dx, df/dp)
   * from one evaluation (shared exp/sigmoid/normal tail where the kind has one; else the
   * separate calls). Needs wgslMath().
   */
  wgsl(prefix: string): string;
  /** float64 reference of f. */
  f(x: number, p: readonly number[]): number;
  /** float64 reference of df/dx. */
  df(x: number, p: readonly number[]): number;
  /** float64 reference of df/dparam, one entry per paramNames entry ([] if none). */
  dp(x: number, p: readonly number[]): number[];
}

