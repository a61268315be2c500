// DX_POLICY: the policy plugins' state in a live-update stream (src/policy/state.ts says what it is and
// why a new program that cannot take it goes back). Binary, little endian, every length checked
// against what is left of the body before it is used:
//
//   u32 format (1)   u32 plugins (at most MAX_PLUGINS)
//   per plugin, in chain order:
//     u32 name length, name (UTF-8, a plugin name)
//     u32 saved length + 1 (0: the plugin has no state_save), saved bytes (at most MAX_SAVED_STATE)
//     u32 variables, then per variable: u32 key length, key (UTF-8), u32 value length, value
//   zeros up to a multiple of 8 bytes (the stream's record padding)
//
// The whole record is bounded by the stream's opaque-record limit (16 MiB: the writer refuses a bigger
// state with a clear error, the reader never reads one); each plugin's variables are bounded by the
// new program's policy-var-bytes when they are taken over (PolicyManager.loadState).
import { DEFAULT_STREAM_LIMITS, DX_POLICY } from "../migration/format.ts";
import type { OpaqueRecord } from "../migration/records.ts";
import { MAX_SAVED_STATE, type PluginState, type PolicyState, PolicyStateError } from "../policy/state.ts";

const FORMAT = 1;
/** More than a chain may have (src/policy/loader.ts: 16). */
const MAX_PLUGINS = 64;
const NAME = /^[a-z0-9][a-z0-9_-]{0,63}$/;

/** The record for `s`; throws PolicyStateError if it is larger than a stream record may be. */
export function policyRecord(
  s: PolicyState,
  maxBytes = DEFAULT_STREAM_LIMITS.maxOpaqueRecordBytes,
): OpaqueRecord {
  const enc = new TextEncoder();
  const parts: Uint8Array[] = [];
  let size = 0;
  const u32 = (n: number) => {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, n, true);
    parts.push(b);
    size += 4;
  };
  const bytes = (b: Uint8Array) => {
    u32(b.length);
    parts.push(b);
    size += b.length;
  };
  u32(FORMAT);
  u32(s.plugins.length);
  for (const p of s.plugins) {
    bytes(enc.encode(p.name));
    u32(p.saved === null ? 0 : p.saved.length + 1);
    if (p.saved !== null) {
      parts.push(p.saved);
      size += p.saved.length;
    }
    u32(p.vars.size);
    for (const [k, v] of p.vars) {
      bytes(enc.encode(k));
      bytes(v);
    }
    if (size > maxBytes) break;
  }
  if (size > maxBytes) {
    throw new PolicyStateError(
      `the policy plugins' state takes more than ${maxBytes} bytes, the most a stream record carries`,
    );
  }
  const body = new Uint8Array(Math.ceil(size / 8) * 8);
  let at = 0;
  for (const b of parts) {
    body.set(b, at);
    at += b.length;
  }
  return { type: "opaque", code: DX_POLICY, body };
}

/** A reader over a record body that refuses to read past it. */
class Body {
  private at = 0;
  private readonly view: DataView;
  private readonly dec = new TextDecoder("utf-8", { fatal: true });
  constructor(private readonly b: Uint8Array) {
    this.view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  }

  u32(what: string): number {
    if (this.at + 4 > this.b.length) throw new Error(`DX_POLICY: truncated at ${what}`);
    const n = this.view.getUint32(this.at, true);
    this.at += 4;
    return n;
  }

  bytes(n: number, what: string): Uint8Array {
    if (n > this.b.length - this.at) throw new Error(`DX_POLICY: ${what} of ${n} bytes runs past the record`);
    const out = this.b.slice(this.at, this.at + n);
    this.at += n;
    return out;
  }

  text(what: string): string {
    const b = this.bytes(this.u32(what), what);
    try {
      return this.dec.decode(b);
    } catch {
      throw new Error(`DX_POLICY: ${what} is not UTF-8`);
    }
  }

  /** Only the padding may be left: fewer than 8 zero bytes. */
  finish(): void {
    const rest = this.b.subarray(this.at);
    if (rest.length >= 8 || rest.some((x) => x !== 0)) {
      throw new Error(`DX_POLICY: ${rest.length} bytes after the last plugin`);
    }
  }
}

/** The state of a DX_POLICY record; throws Error saying what is wrong with it (nothing is applied). */
export function readPolicyRecord(r: OpaqueRecord): PolicyState {
  const b = new Body(r.body);
  const format = b.u32("the format");
  if (format !== FORMAT) throw new Error(`DX_POLICY: format ${format}, this program reads ${FORMAT}`);
  const n = b.u32("the plugin count");
  if (n > MAX_PLUGINS) throw new Error(`DX_POLICY: ${n} plugins`);
  const plugins: PluginState[] = [];
  for (let i = 0; i < n; i++) {
    const name = b.text(`plugin ${i}'s name`);
    if (!NAME.test(name)) throw new Error(`DX_POLICY: "${name.slice(0, 64)}" is not a plugin name`);
    const savedLen = b.u32(`${name}'s saved state`);
    if (savedLen > MAX_SAVED_STATE + 1) {
      throw new Error(
        `DX_POLICY: ${name}'s saved state of ${savedLen - 1} bytes (at most ${MAX_SAVED_STATE})`,
      );
    }
    const saved = savedLen === 0 ? null : b.bytes(savedLen - 1, `${name}'s saved state`);
    const count = b.u32(`${name}'s variable count`);
    if (count > r.body.length / 8) throw new Error(`DX_POLICY: ${name} has ${count} variables`);
    const vars = new Map<string, Uint8Array>();
    for (let j = 0; j < count; j++) {
      const k = b.text(`${name}'s variable ${j}`);
      if (vars.has(k)) throw new Error(`DX_POLICY: ${name}'s variable ${k.slice(0, 64)} appears twice`);
      vars.set(
        k,
        b.bytes(b.u32(`${name}'s variable ${k.slice(0, 64)}`), `${name}'s variable ${k.slice(0, 64)}`),
      );
    }
    if (plugins.some((p) => p.name === name)) throw new Error(`DX_POLICY: plugin ${name} appears twice`);
    plugins.push({ name, vars, saved });
  }
  b.finish();
  return { plugins };
}
