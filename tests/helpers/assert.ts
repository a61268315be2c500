/**
 * The shared assertion helpers for every test under tests/ (no node:assert: the repo has no
 * @types/node in its manual node_modules, so `deno check` cannot type it; no @std either).
 *
 * Use either the default object (`assert.equal(...)`) or the named functions.
 */

export class AssertionError extends Error {
  override name = "AssertionError";
}

/** A short, readable rendering of a value for failure messages. */
export function show(v: unknown, max = 400): string {
  let s: string;
  if (typeof v === "string") s = JSON.stringify(v);
  else if (v instanceof Uint8Array) {
    s = `Uint8Array[${Array.from(v.subarray(0, 64)).join(",")}${v.length > 64 ? ",…" : ""}]`;
  } else if (v instanceof Map) s = `Map(${show([...v.entries()], max)})`;
  else if (v instanceof Set) s = `Set(${show([...v.values()], max)})`;
  else if (typeof v === "bigint") s = `${v}n`;
  else {
    try {
      s = JSON.stringify(
        v,
        (_k, x) => (x === undefined ? "<undefined>" : typeof x === "bigint" ? `${x}n` : x),
      ) ??
        String(v);
    } catch {
      s = String(v);
    }
  }
  return s.length > max ? `${s.slice(0, max)}… (${s.length} chars)` : s;
}

function deepEq(a: unknown, b: unknown): boolean {
  if (Object.is(a, b)) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Object.getPrototypeOf(a) !== Object.getPrototypeOf(b)) return false;
  if (a instanceof Map && b instanceof Map) {
    if (a.size !== b.size) return false;
    for (const [k, v] of a) if (!b.has(k) || !deepEq(v, b.get(k))) return false;
    return true;
  }
  if (a instanceof Set && b instanceof Set) {
    if (a.size !== b.size) return false;
    for (const v of a) if (!b.has(v)) return false;
    return true;
  }
  if (ArrayBuffer.isView(a) && ArrayBuffer.isView(b)) {
    const x = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
    const y = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
    if (x.length !== y.length) return false;
    for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
    return true;
  }
  if (Array.isArray(a) !== Array.isArray(b)) return false;
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
export function equal(actual: unknown, expected: unknown, msg?: string): void {
  if (!Object.is(actual, expected)) {
    throw new AssertionError(`${msg ? msg + ": " : ""}expected ${show(expected)}, got ${show(actual)}`);
  }
}

export function notEqual(actual: unknown, unexpected: unknown, msg?: string): void {
  if (Object.is(actual, unexpected)) {
    throw new AssertionError(`${msg ? msg + ": " : ""}expected anything but ${show(unexpected)}`);
  }
}

/**
 * Where two structurally unequal values first differ, as a path ("[3].input") and both values there:
 * a long rendering cut at 400 characters often hides the difference itself.
 */
function firstDifference(a: unknown, b: unknown, path = ""): string | null {
  if (deepEq(a, b)) return null;
  const at = () => `at ${path || "the top"}: expected ${show(b, 200)}, got ${show(a, 200)}`;
  if (
    typeof a !== "object" || typeof b !== "object" || a === null || b === null ||
    Object.getPrototypeOf(a) !== Object.getPrototypeOf(b) || a instanceof Map || a instanceof Set ||
    ArrayBuffer.isView(a)
  ) return at();
  const ra = a as Record<string, unknown>;
  const rb = b as Record<string, unknown>;
  const keys = [...new Set([...Object.keys(ra), ...Object.keys(rb)])];
  for (const k of keys) {
    const sub = Array.isArray(a) ? `${path}[${k}]` : `${path}.${k}`;
    if (!Object.hasOwn(ra, k) || !Object.hasOwn(rb, k)) {
      return `at ${sub}: expected ${show(rb[k], 200)}, got ${show(ra[k], 200)}`;
    }
    const d = firstDifference(ra[k], rb[k], sub);
    if (d !== null) return d;
  }
  return at();
}

/** Structural equality of plain objects, arrays, Maps, Sets, typed arrays and primitives. */
export function deepEqual(actual: unknown, expected: unknown, msg?: string): void {
  if (!deepEq(actual, expected)) {
    throw new AssertionError(
      `${msg ? msg + ": " : ""}expected ${show(expected)}, got ${show(actual)}; first difference ${
        firstDifference(actual, expected)
      }`,
    );
  }
}

export function ok(cond: unknown, msg = "assertion failed"): asserts cond {
  if (!cond) throw new AssertionError(msg);
}

export function fail(msg = "unreachable"): never {
  throw new AssertionError(msg);
}

// deno-lint-ignore no-explicit-any
type Ctor<E> = new (...args: any[]) => E;

/**
 * `fn` must throw (an instance of `ctor`, if given, satisfying `check`, if given). Returns the error so
 * the caller can look at it further.
 */
export function throws<E extends Error = Error>(
  fn: () => unknown,
  ctor?: Ctor<E>,
  check?: (e: E) => boolean,
  msg?: string,
): E {
  let thrown = false;
  let err: unknown;
  try {
    fn();
  } catch (e) {
    thrown = true;
    err = e;
  }
  return checkThrown(thrown, err, ctor, check, msg);
}

/** Like throws, for a promise (or a function returning one) that must reject. */
export async function rejects<E extends Error = Error>(
  p: Promise<unknown> | (() => Promise<unknown>),
  ctor?: Ctor<E>,
  check?: (e: E) => boolean,
  msg?: string,
): Promise<E> {
  let thrown = false;
  let err: unknown;
  try {
    await (typeof p === "function" ? p() : p);
  } catch (e) {
    thrown = true;
    err = e;
  }
  return checkThrown(thrown, err, ctor, check, msg);
}

function checkThrown<E extends Error>(
  thrown: boolean,
  err: unknown,
  ctor: Ctor<E> | undefined,
  check: ((e: E) => boolean) | undefined,
  msg: string | undefined,
): E {
  const pre = msg ? msg + ": " : "";
  if (!thrown) throw new AssertionError(`${pre}expected ${ctor ? ctor.name : "an error"} to be thrown`);
  if (ctor && !(err instanceof ctor)) {
    throw new AssertionError(
      `${pre}expected ${ctor.name}, got ${err instanceof Error ? err.stack : show(err)}`,
    );
  }
  if (check && !check(err as E)) {
    throw new AssertionError(
      `${pre}thrown error failed the check: ${err instanceof Error ? err.message : show(err)}`,
    );
  }
  return err as E;
}

export interface Assert {
  equal(actual: unknown, expected: unknown, msg?: string): void;
  notEqual(actual: unknown, unexpected: unknown, msg?: string): void;
  deepEqual(actual: unknown, expected: unknown, msg?: string): void;
  ok(cond: unknown, msg?: string): asserts cond;
  fail(msg?: string): never;
  throws<E extends Error = Error>(
    fn: () => unknown,
    ctor?: Ctor<E>,
    check?: (e: E) => boolean,
    msg?: string,
  ): E;
  rejects<E extends Error = Error>(
    p: Promise<unknown> | (() => Promise<unknown>),
    ctor?: Ctor<E>,
    check?: (e: E) => boolean,
    msg?: string,
  ): Promise<E>;
}

const assert: Assert = { equal, notEqual, deepEqual, ok, fail, throws, rejects };
export default assert;
