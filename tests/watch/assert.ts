/**
 * Minimal assertion helpers for tests/watch (no node:assert: the repo has no
 * @types/node in its manual node_modules, so `deno check` cannot type it).
 */

export class AssertionError extends Error {
  override name = "AssertionError";
}

function show(v: unknown): string {
  try {
    return JSON.stringify(v, (_k, x) => (x === undefined ? "<undefined>" : x));
  } catch {
    return String(v);
  }
}

function deepEq(a: unknown, b: unknown): boolean {
  if (Object.is(a, b)) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Object.getPrototypeOf(a) !== Object.getPrototypeOf(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  const ra = a as Record<string, unknown>;
  const rb = b as Record<string, unknown>;
  for (const k of ka) {
    if (!Object.hasOwn(rb, k) || !deepEq(ra[k], rb[k])) return false;
  }
  return true;
}

/** Strict (`Object.is`) equality. */
function equal(actual: unknown, expected: unknown, msg?: string): void {
  if (!Object.is(actual, expected)) {
    throw new AssertionError(msg ?? `expected ${show(expected)}, got ${show(actual)}`);
  }
}

/** Structural equality of plain objects / arrays / primitives. */
function deepEqual(actual: unknown, expected: unknown, msg?: string): void {
  if (!deepEq(actual, expected)) {
    throw new AssertionError(msg ?? `expected ${show(expected)}, got ${show(actual)}`);
  }
}

function ok(cond: unknown, msg = "assertion failed"): asserts cond {
  if (!cond) throw new AssertionError(msg);
}

function fail(msg = "unreachable"): never {
  throw new AssertionError(msg);
}

// deno-lint-ignore no-explicit-any
function throws(fn: () => unknown, ctor: new (...args: any[]) => Error): void {
  try {
    fn();
  } catch (e) {
    if (e instanceof ctor) return;
    throw new AssertionError(`expected ${ctor.name}, got ${String(e)}`);
  }
  throw new AssertionError(`expected ${ctor.name} to be thrown`);
}

interface Assert {
  equal(actual: unknown, expected: unknown, msg?: string): void;
  deepEqual(actual: unknown, expected: unknown, msg?: string): void;
  ok(cond: unknown, msg?: string): asserts cond;
  fail(msg?: string): never;
  // deno-lint-ignore no-explicit-any
  throws(fn: () => unknown, ctor: new (...args: any[]) => Error): void;
}

const assert: Assert = { equal, deepEqual, ok, fail, throws };
export default assert;
