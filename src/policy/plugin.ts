// One loaded policy plugin: the metered module, its kernel (kernel.ts) and instance, called
// synchronously. Every failure of a call — a trap, the fuel (time) budget running out, the memory cap,
// stack exhaustion, a non-zero return code or a malformed answer — is returned as a PluginFailure; the
// chain turns it into a deny (fail closed), counts and logs it, and the instance is rebuilt before the
// next call (its memory may be half-updated). Nothing a plugin does can throw out of call().
import { log } from "../common/log.ts";
import { ABI_VERSION, KIND_COUNT, MAX_INPUT, type QuestionEncoder } from "./abi.ts";
import {
  ERR_OFF_AT,
  INPUT_AT,
  KERNEL_FUNCTIONS,
  kernelWasmModule,
  OUT_LEN_AT,
  OUT_OFF_AT,
} from "./kernel.ts";
import { FUEL_EXPORT, meterModule } from "./meter.ts";

export interface SandboxLimits {
  /** Fuel per decision: one unit per function entry and per loop iteration of the plugin's code. */
  readonly fuelPerCall: number;
  /** Fuel for instantiation (start function) and policy_info. */
  readonly fuelInit: number;
  /** Cap on the plugin's own linear memory, in 64 KiB pages. */
  readonly memoryPages: number;
  /** Cap on the bytes of all Extism variables of one plugin (state kept across calls and reloads). */
  readonly varBytes: number;
}

export const DEFAULT_LIMITS: SandboxLimits = {
  fuelPerCall: 1_000_000,
  fuelInit: 10_000_000,
  memoryPages: 16,
  varBytes: 1 << 20,
};

/** Why a plugin could not be loaded (bad file, bad module, refused import, failed policy_info...). */
export class PluginLoadError extends Error {
  constructor(readonly plugin: string, message: string) {
    super(`policy plugin ${plugin}: ${message}`);
    this.name = "PluginLoadError";
  }
}

export type FailureKind = "trap" | "time" | "memory" | "stack" | "error" | "output";

export interface PluginFailure {
  readonly kind: FailureKind;
  readonly message: string;
}

export interface PluginStats {
  calls: number;
  failures: number;
  /** Failures by kind. */
  byKind: Record<FailureKind, number>;
  rebuilds: number;
}

/**
 * Extism variables of one plugin, by name. Owned outside the instance and shared by every instance of
 * the same plugin name, so plugin state (e.g. the Chinese Wall history) survives rebuilds and reloads.
 */
export class VarStore {
  readonly vars = new Map<string, Uint8Array>();
  bytes = 0;
  constructor(readonly limit: number) {}

  get(k: string): Uint8Array | undefined {
    return this.vars.get(k);
  }

  /**
   * Drop the per-domain state of `domid`: the variables named `d<domid>` and `d<domid>.<anything>`
   * (docs/plugins.md, State). Returns how many were dropped.
   */
  dropDomain(domid: number): number {
    const exact = `d${domid}`;
    const prefix = `${exact}.`;
    let n = 0;
    for (const k of [...this.vars.keys()]) {
      if (k === exact || k.startsWith(prefix)) {
        this.set(k, null);
        n++;
      }
    }
    return n;
  }

  /** The domids that have per-domain variables (`d<domid>`, `d<domid>.<anything>`). */
  domains(): Set<number> {
    const out = new Set<number>();
    for (const k of this.vars.keys()) {
      const m = /^d(0|[1-9][0-9]{0,4})(\.|$)/.exec(k);
      if (m !== null) out.add(Number(m[1]));
    }
    return out;
  }

  /** Replace every variable with `vars` (a live update's); false (and nothing changed) if over the limit. */
  replaceAll(vars: ReadonlyMap<string, Uint8Array>): boolean {
    let bytes = 0;
    for (const [k, v] of vars) bytes += k.length + v.length;
    if (bytes > this.limit) return false;
    this.vars.clear();
    for (const [k, v] of vars) this.vars.set(k, v);
    this.bytes = bytes;
    return true;
  }

  /** False if the store would exceed its limit. */
  set(k: string, v: Uint8Array | null): boolean {
    const old = this.vars.get(k);
    const next = this.bytes - (old ? old.length + k.length : 0) + (v ? v.length + k.length : 0);
    if (v !== null && next > this.limit) return false;
    if (v === null) this.vars.delete(k);
    else this.vars.set(k, v);
    this.bytes = next;
    return true;
  }
}

/** Imports of "extism:host/env" implemented in JavaScript. http_* are deliberately absent (no network). */
const JS_FUNCTIONS = new Set([
  "config_get",
  "var_get",
  "var_set",
  "log_info",
  "log_warn",
  "log_debug",
  "log_error",
  "log_trace",
  "get_log_level",
]);

export const EXTISM_ENV = "extism:host/env";

interface Kernel {
  exports: {
    memory: WebAssembly.Memory;
    alloc(n: bigint): bigint;
    length(off: bigint): bigint;
    k_begin(len: number): void;
  };
}

interface PluginExports {
  policy_info(): number;
  policy_decide(): number;
  /** Optional (docs/plugins.md): the plugin's own state for a live update, as its output. */
  state_save?(): number;
  /** Optional: take the state a previous program's plugin saved (its input); non-zero refuses it. */
  state_load?(): number;
  [FUEL_EXPORT]: WebAssembly.Global;
}

type ExportName = "policy_info" | "policy_decide" | "state_save" | "state_load";

const LOG_BURST = 20;

/** A plugin module checked, metered and compiled; instances are made from it (cheap, synchronous). */
export interface CompiledPlugin {
  readonly name: string;
  readonly module: WebAssembly.Module;
  readonly memoryMaxPages: number;
  readonly limits: SandboxLimits;
}

/**
 * Check, meter and compile plugin `name` from its file's bytes. Throws PluginLoadError if the module is
 * malformed, uses instructions or imports a plugin may not have.
 */
export function compilePlugin(
  name: string,
  wasm: Uint8Array,
  limits: SandboxLimits = DEFAULT_LIMITS,
): CompiledPlugin {
  let metered;
  try {
    metered = meterModule(wasm, limits.memoryPages, limits.fuelInit);
  } catch (e) {
    throw new PluginLoadError(name, (e as Error).message);
  }
  for (const imp of metered.imports) {
    if (imp.module !== EXTISM_ENV || imp.kind !== 0) {
      const what = imp.module.startsWith("wasi")
        ? " (no WASI: plugins get no filesystem, clock or random)"
        : "";
      throw new PluginLoadError(name, `imports ${imp.module}.${imp.name}, which plugins may not use${what}`);
    }
    if (!KERNEL_FUNCTIONS.has(imp.name) && !JS_FUNCTIONS.has(imp.name)) {
      const why = imp.name.startsWith("http_") ? " (no network for policy plugins)" : "";
      throw new PluginLoadError(name, `imports ${EXTISM_ENV}.${imp.name}, which is not provided${why}`);
    }
  }
  let module;
  try {
    module = new WebAssembly.Module(metered.bytes as BufferSource);
  } catch (e) {
    throw new PluginLoadError(name, `invalid module: ${(e as Error).message}`);
  }
  return { name, module, memoryMaxPages: metered.memoryMax, limits };
}

export class PluginInstance {
  readonly name: string;
  readonly limits: SandboxLimits;
  readonly stats: PluginStats = {
    calls: 0,
    failures: 0,
    byKind: { trap: 0, time: 0, memory: 0, stack: 0, error: 0, output: 0 },
    rebuilds: 0,
  };
  /** Bit k set: the plugin answers questions of kind k (from policy_info). */
  interests = 0;
  /** policy_info's answer (a copy). */
  info: Uint8Array = new Uint8Array(0);
  private readonly module: WebAssembly.Module;
  private kernel!: Kernel;
  private exports!: PluginExports;
  private kmem!: Uint8Array;
  private kview!: DataView;
  private dirty = false;
  /** Permanently broken (a rebuild failed): every call fails. */
  private broken: string | null = null;
  private logTokens = LOG_BURST;
  private logRefill = 0;
  private readonly memoryMaxPages: number;

  constructor(
    readonly compiled: CompiledPlugin,
    readonly config: ReadonlyMap<string, string>,
    readonly vars: VarStore,
  ) {
    this.name = compiled.name;
    this.limits = compiled.limits;
    this.module = compiled.module;
    this.memoryMaxPages = compiled.memoryMaxPages;
    const err = this.instantiate();
    if (err !== null) throw new PluginLoadError(this.name, err);
  }

  /** A fresh kernel and instance, then policy_info. Returns an error message or null. */
  private instantiate(): string | null {
    try {
      this.kernel = new WebAssembly.Instance(kernelWasmModule(), {}) as unknown as Kernel;
      const k = this.kernel.exports as unknown as Record<string, WebAssembly.ExportValue>;
      const env: Record<string, WebAssembly.ExportValue | ((...a: bigint[]) => unknown)> = {};
      for (const f of KERNEL_FUNCTIONS) env[f] = k[f];
      Object.assign(env, this.jsFunctions());
      const inst = new WebAssembly.Instance(this.module, { [EXTISM_ENV]: env as WebAssembly.ModuleImports });
      const ex = inst.exports as unknown as PluginExports;
      if (typeof ex.policy_info !== "function" || typeof ex.policy_decide !== "function") {
        return "does not export the functions policy_info and policy_decide";
      }
      this.exports = ex;
      this.refreshViews();
      if (typeof (inst.exports as Record<string, unknown>).hs_init === "function") {
        ((inst.exports as Record<string, unknown>).hs_init as () => void)(); // as the Extism SDK does
      }
    } catch (e) {
      return `instantiation failed: ${(e as Error).message}`;
    }
    const info = this.callRaw("policy_info", 0, this.limits.fuelInit);
    if (!(info instanceof Uint8Array)) return `policy_info failed (${info.kind}): ${info.message}`;
    if (info.length < 4) return `policy_info answered ${info.length} bytes, expected 4`;
    this.info = info.slice();
    if (info[0] !== ABI_VERSION) return `plugin ABI version ${info[0]}, the daemon speaks ${ABI_VERSION}`;
    this.interests = (info[2] | (info[3] << 8)) & ((1 << KIND_COUNT) - 2);
    this.dirty = false;
    return null;
  }

  private refreshViews(): void {
    const buf = this.kernel.exports.memory.buffer;
    this.kmem = new Uint8Array(buf);
    this.kview = new DataView(buf);
  }

  /** Ask the question in `q`. Returns the plugin's output bytes (a view, valid until the next call). */
  /** Rebuild a dirty instance; a failure if the plugin is unusable. */
  private ready(): PluginFailure | null {
    if (this.dirty) {
      this.stats.rebuilds++;
      const err = this.instantiate();
      if (err !== null) {
        this.broken = err;
        this.dirty = false;
        this.warn(`rebuild failed, every decision of this plugin is now a deny: ${err}`);
      }
    }
    return this.broken === null ? null : { kind: "error", message: `plugin unusable: ${this.broken}` };
  }

  decide(q: QuestionEncoder): Uint8Array | PluginFailure {
    const unusable = this.ready();
    if (unusable !== null) {
      this.stats.calls++;
      this.stats.failures++;
      this.stats.byKind.error++;
      return unusable;
    }
    if (this.kmem.buffer !== this.kernel.exports.memory.buffer) this.refreshViews();
    this.kmem.set(q.buf.subarray(0, q.length), INPUT_AT);
    const out = this.callRaw("policy_decide", q.length, this.limits.fuelPerCall);
    this.stats.calls++;
    if (!(out instanceof Uint8Array)) {
      this.stats.failures++;
      this.stats.byKind[out.kind]++;
      this.dirty = true;
      this.warn(`decision failed (${out.kind}), denied: ${out.message}`);
    }
    return out;
  }

  /** The plugin exports `state_save` / `state_load` (live update, docs/plugins.md). */
  get savesState(): boolean {
    return typeof this.exports.state_save === "function";
  }

  get loadsState(): boolean {
    return typeof this.exports.state_load === "function";
  }

  /**
   * `state_save`'s answer (at most `max` bytes; an empty answer is none), null if the plugin has no
   * such export, or the failure. Run with the instantiation fuel.
   */
  saveState(max: number): Uint8Array | null | PluginFailure {
    const unusable = this.ready();
    if (unusable !== null) return unusable;
    if (!this.savesState) return null;
    const out = this.callRaw("state_save", 0, this.limits.fuelInit, max, false);
    if (!(out instanceof Uint8Array)) this.dirty = true;
    return out instanceof Uint8Array ? out.slice() : out;
  }

  /** Hand `state_save`'s bytes of a previous program's plugin to `state_load`: null if it took them. */
  loadState(saved: Uint8Array): string | null {
    const unusable = this.ready();
    if (unusable !== null) return unusable.message;
    if (!this.loadsState) return "it has no state_load export to take the state its predecessor saved";
    const mem = this.kernel.exports.memory;
    const need = INPUT_AT + saved.length + 8 - mem.buffer.byteLength;
    try {
      if (need > 0) mem.grow(Math.ceil(need / 65536));
    } catch (e) {
      return `${saved.length} bytes of state do not fit its kernel memory (${(e as Error).message})`;
    }
    this.refreshViews();
    this.kmem.set(saved, INPUT_AT);
    const out = this.callRaw("state_load", saved.length, this.limits.fuelInit, 0, false);
    if (out instanceof Uint8Array) return null;
    this.dirty = true;
    return `state_load failed (${out.kind}): ${out.message}`;
  }

  /**
   * Call an export with `len` input bytes already in place. Its output: at most `maxOut` bytes, and
   * required unless `needOutput` is false (then none is an empty answer).
   */
  private callRaw(
    fn: ExportName,
    len: number,
    fuel: number,
    maxOut = MAX_INPUT,
    needOutput = true,
  ): Uint8Array | PluginFailure {
    const fuelGlobal = this.exports[FUEL_EXPORT];
    let rc: number;
    try {
      this.kernel.exports.k_begin(len);
      fuelGlobal.value = fuel;
      rc = this.exports[fn]!();
    } catch (e) {
      return this.classify(e);
    }
    if (this.kmem.buffer !== this.kernel.exports.memory.buffer) this.refreshViews();
    const v = this.kview;
    if (rc !== 0) {
      const eoff = v.getUint32(ERR_OFF_AT, true);
      return { kind: "error", message: `returned ${rc}${eoff ? `: ${this.blockText(eoff)}` : ""}` };
    }
    const off = v.getUint32(OUT_OFF_AT, true);
    const len2 = v.getUint32(OUT_LEN_AT, true);
    if (!needOutput && (off === 0 || len2 === 0)) return new Uint8Array(0);
    if (len2 > maxOut) return { kind: "output", message: `${len2} bytes of output, at most ${maxOut}` };
    if (off === 0 || len2 === 0 || off + len2 > this.kmem.length) {
      return { kind: "output", message: `no or malformed output (offset ${off}, length ${len2})` };
    }
    return this.kmem.subarray(off, off + len2);
  }

  private classify(e: unknown): PluginFailure {
    const msg = e instanceof Error ? e.message : String(e);
    let fuelLeft = 0;
    try {
      fuelLeft = this.exports[FUEL_EXPORT].value as number;
    } catch { /* instance unusable */ }
    if (fuelLeft < 0) return { kind: "time", message: "fuel (time) budget exhausted" };
    if (e instanceof RangeError && /call stack/i.test(msg)) return { kind: "stack", message: msg };
    const mem = (this.exports as unknown as { memory?: WebAssembly.Memory }).memory;
    if (mem instanceof WebAssembly.Memory && mem.buffer.byteLength >= this.memoryMaxPages * 65536) {
      return { kind: "memory", message: `${msg} (memory at its cap of ${this.memoryMaxPages} pages)` };
    }
    return { kind: "trap", message: msg };
  }

  /** Text of a kernel block (error messages, log lines, config keys), bounded. */
  private blockText(off: number | bigint): string {
    const o = Number(off);
    if (this.kmem.buffer !== this.kernel.exports.memory.buffer) this.refreshViews();
    const n = Number(this.kernel.exports.length(BigInt(o)));
    if (n <= 0 || o + n > this.kmem.length) return "";
    return new TextDecoder().decode(this.kmem.subarray(o, o + Math.min(n, 1024)));
  }

  private blockBytes(off: bigint): Uint8Array | null {
    const o = Number(off);
    const n = Number(this.kernel.exports.length(off));
    if (this.kmem.buffer !== this.kernel.exports.memory.buffer) this.refreshViews();
    if (n < 0 || o === 0 || o + n > this.kmem.length) return null;
    return this.kmem.slice(o, o + n);
  }

  /** Copy `bytes` into a new kernel block; 0n if the kernel is out of memory. */
  private store(bytes: Uint8Array): bigint {
    const off = this.kernel.exports.alloc(BigInt(bytes.length));
    if (off === 0n) return 0n;
    this.refreshViews();
    this.kmem.set(bytes, Number(off));
    return off;
  }

  private jsFunctions(): Record<string, (...a: bigint[]) => unknown> {
    const enc = new TextEncoder();
    const dec = new TextDecoder();
    const key = (off: bigint) => {
      const b = this.blockBytes(off);
      if (b === null) throw new Error("bad key block");
      return dec.decode(b);
    };
    const logAt = (level: "error" | "warn" | "info" | "debug") => (off: bigint) => {
      if (this.takeLogToken()) log(level, `policy plugin ${this.name}: ${this.blockText(off)}`);
    };
    return {
      config_get: (off) => {
        const v = this.config.get(key(off));
        return v === undefined ? 0n : this.store(enc.encode(v));
      },
      var_get: (off) => {
        const v = this.vars.get(key(off));
        return v === undefined ? 0n : this.store(v);
      },
      var_set: (off, valOff) => {
        const k = key(off);
        const v = valOff === 0n ? null : this.blockBytes(valOff);
        if (valOff !== 0n && v === null) throw new Error("bad value block");
        // Exceeding the variable budget is a failure of this call (deny), like any other budget.
        if (!this.vars.set(k, v)) throw new Error(`variable budget of ${this.vars.limit} bytes exceeded`);
      },
      log_error: logAt("error"),
      log_warn: logAt("warn"),
      log_info: logAt("info"),
      log_debug: logAt("debug"),
      log_trace: logAt("debug"),
      get_log_level: () => 2,
    };
  }

  /** Plugin-originated log lines and failure warnings: a burst of 20, then one per second. */
  private takeLogToken(): boolean {
    const now = Date.now();
    if (now - this.logRefill >= 1000) {
      this.logTokens = Math.min(LOG_BURST, this.logTokens + Math.floor((now - this.logRefill) / 1000));
      this.logRefill = now;
    }
    if (this.logTokens <= 0) return false;
    this.logTokens--;
    return true;
  }

  private warn(msg: string): void {
    if (this.takeLogToken()) log("warn", `policy plugin ${this.name}: ${msg}`);
  }
}
