// Storage modules written in C: the daemon's side of ffi/dxenstored_backend.h, through Deno.dlopen.
// This module knows the ABI (symbols, codes, the op struct, the load buffer's record format) and
// nothing of the store; src/backend/native.ts maps the store onto it.
//
// Every buffer a module sees is the daemon's (the header says so): a message buffer per call, the
// load buffer, and one batch buffer holding the keys and values plus the array of `struct dxs_op`
// pointing into it. Nothing the module owns is read, so a module cannot hand us a dangling pointer;
// what it writes into our buffers is checked (lengths, NUL termination) before it is believed.
// A module that crashes or corrupts memory takes the daemon down with it: that cannot be contained
// in one process.

/** The version this daemon speaks (DXS_BACKEND_ABI_VERSION). */
export const DXS_BACKEND_ABI_VERSION = 1;

// Status codes (DXS_OK, DXS_E_*).
export const DXS_OK = 0;
export const DXS_E_IO = 1;
export const DXS_E_NOSPC = 2;
export const DXS_E_CORRUPT = 3;
export const DXS_E_BUSY = 4;
export const DXS_E_INVAL = 5;
export const DXS_E_RANGE = 6;
export const DXS_E_NOMEM = 7;
export const DXS_E_BROKEN = 8;

export const DXS_MESSAGE_MAX = 512;
export const DXS_KEY_MAX = 4096;
export const DXS_COMPACT_BYTES = 4 << 20;

// Open flags.
export const DXS_SYNC_ALWAYS = 0;
export const DXS_SYNC_GROUP = 1;
export const DXS_SYNC_NONE = 2;
export const DXS_OPEN_RECOVER = 0x100;

// struct dxs_op (LP64): key pointer, value pointer, key_len, value_len, kind, reserved.
export const DXS_OP_PUT = 1;
export const DXS_OP_DELETE = 2;
export const DXS_OP_SIZE = 32;
export const DXS_OP_OFFSETS = { key: 0, value: 8, keyLen: 16, valueLen: 20, kind: 24, reserved: 28 } as const;

/** Header of one record in the load buffer: u32 key_len, u32 value_len. */
export const DXS_RECORD_HEADER = 8;

const CODE_NAMES: Record<number, string> = {
  [DXS_E_IO]: "DXS_E_IO",
  [DXS_E_NOSPC]: "DXS_E_NOSPC",
  [DXS_E_CORRUPT]: "DXS_E_CORRUPT",
  [DXS_E_BUSY]: "DXS_E_BUSY",
  [DXS_E_INVAL]: "DXS_E_INVAL",
  [DXS_E_RANGE]: "DXS_E_RANGE",
  [DXS_E_NOMEM]: "DXS_E_NOMEM",
  [DXS_E_BROKEN]: "DXS_E_BROKEN",
};

/** "DXS_E_IO", or "unknown status 77". */
export function codeName(code: number): string {
  return CODE_NAMES[code] ?? `unknown status ${code}`;
}

// Every symbol is optional for dlopen, so that a missing one is reported by name (below) instead
// of as Deno's "Failed to register symbol".
const SYMBOLS = {
  dxs_backend_abi_version: { parameters: [], result: "u32", optional: true },
  dxs_backend_open: { parameters: ["buffer", "u32", "buffer", "buffer"], result: "i32", optional: true },
  dxs_backend_load_next: {
    parameters: ["pointer", "buffer", "usize", "buffer", "buffer"],
    result: "i32",
    optional: true,
  },
  dxs_backend_apply: { parameters: ["pointer", "buffer", "u32", "buffer"], result: "i32", optional: true },
  dxs_backend_sync: { parameters: ["pointer", "buffer"], result: "i32", optional: true },
  dxs_backend_compact: { parameters: ["pointer", "buffer"], result: "i32", optional: true },
  dxs_backend_close: { parameters: ["pointer", "buffer"], result: "i32", optional: true },
} as const;

type Symbols = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];
type Required = { [K in keyof Symbols]-?: NonNullable<Symbols[K]> };

/** The module cannot be used (not found, not a storage module, another ABI version). */
export class ModuleLoadError extends Error {
  override name = "ModuleLoadError";
}

/** What a call returned: a status code and, on failure, the module's message. */
export interface Status {
  readonly code: number;
  readonly message: string;
}

const OK: Status = { code: DXS_OK, message: "" };
const utf8 = new TextDecoder("utf-8", { fatal: false });

/** Libraries stay loaded for the process's life (dlopen refcounts; unloading code gains nothing). */
const loaded = new Map<string, Required>();

/**
 * dlopen `library` (a path, or a bare name the dynamic linker looks up) and check it is a storage
 * module of this ABI version; throws ModuleLoadError saying what is wrong.
 */
export function loadModule(library: string): NativeModule {
  let sym = loaded.get(library);
  if (sym === undefined) {
    let lib: Deno.DynamicLibrary<typeof SYMBOLS>;
    try {
      lib = Deno.dlopen(library, SYMBOLS);
    } catch (e) {
      throw new ModuleLoadError(
        `cannot load ${library}: ${(e as Error).message.replace(/^(Could not open library: )+/, "")}`,
      );
    }
    const missing = Object.keys(SYMBOLS).filter((k) => lib.symbols[k as keyof Symbols] === null);
    if (missing.length > 0) {
      lib.close();
      throw new ModuleLoadError(
        `${library} is not a dxenstored storage module: missing ${missing.join(", ")} ` +
          `(a module exports every function of ffi/dxenstored_backend.h)`,
      );
    }
    const version = lib.symbols.dxs_backend_abi_version!();
    if (version !== DXS_BACKEND_ABI_VERSION) {
      lib.close();
      throw new ModuleLoadError(
        `${library} was built for storage module ABI version ${version}; this dxenstored speaks version ` +
          `${DXS_BACKEND_ABI_VERSION} (rebuild it against this version's ffi/dxenstored_backend.h)`,
      );
    }
    sym = lib.symbols as Required;
    loaded.set(library, sym);
  }
  return new NativeModule(library, sym);
}

/** A loaded module: opens stores. */
export class NativeModule {
  /** @internal (loadModule) */
  constructor(readonly library: string, private readonly sym: Required) {}

  /** dxs_backend_open: a store, or the failure. `loadBuffer`: the first load buffer's size (tests). */
  open(args: string, flags: number, loadBuffer = LOAD_BUFFER): NativeStore | Status {
    const msg = messageBuffer();
    const out = new Uint8Array(8);
    const code = this.sym.dxs_backend_open(new TextEncoder().encode(args + "\0"), flags, out, msg);
    if (code !== DXS_OK) return status(code, msg);
    const handle = Deno.UnsafePointer.create(new DataView(out.buffer).getBigUint64(0, true));
    if (handle === null) {
      return { code: DXS_E_BROKEN, message: "dxs_backend_open returned DXS_OK and no handle" };
    }
    return new NativeStore(this.sym, handle, loadBuffer);
  }
}

function messageBuffer(): Uint8Array<ArrayBuffer> {
  return new Uint8Array(DXS_MESSAGE_MAX);
}

/** The module's message: up to its NUL (or the whole buffer), as printable text. */
function status(code: number, msg: Uint8Array): Status {
  const nul = msg.indexOf(0);
  // deno-lint-ignore no-control-regex
  const text = utf8.decode(msg.subarray(0, nul < 0 ? msg.length : nul)).replace(/[\x00-\x1f\x7f]/g, "?");
  return { code, message: text.trim() || "(no message)" };
}

/** A load batch: the records the module copied into the buffer. */
export type LoadBatch =
  | { readonly ok: true; readonly bytes: Uint8Array }
  | { readonly ok: false; readonly status: Status };

/** Largest single record the daemon accepts from a module at load (a domains record, a node). */
export const LOAD_RECORD_MAX = 64 << 20;
const LOAD_BUFFER = 1 << 20;
const BATCH_BUFFER = 64 << 10;

/** An open store (the module's handle). Not usable after close(). */
export class NativeStore {
  private handle: Deno.PointerObject | null;
  private loadBuf: Uint8Array<ArrayBuffer>;
  private readonly used = new Uint8Array(8);
  private data = new Uint8Array(BATCH_BUFFER);
  private ops = new Uint8Array(DXS_OP_SIZE * 64);

  /** @internal (NativeModule.open) */
  constructor(private readonly sym: Required, handle: Deno.PointerObject, loadBuffer: number) {
    this.handle = handle;
    this.loadBuf = new Uint8Array(loadBuffer);
  }

  private live(): Deno.PointerObject {
    if (this.handle === null) throw new Error("storage module: store used after close");
    return this.handle;
  }

  /**
   * dxs_backend_load_next: the next records (an empty `bytes`: no more). A record too large for the
   * buffer (DXS_E_RANGE) grows it up to LOAD_RECORD_MAX; lengths the module writes are checked.
   */
  loadNext(): LoadBatch {
    for (;;) {
      const msg = messageBuffer();
      const cap = this.loadBuf.length;
      const code = this.sym.dxs_backend_load_next(this.live(), this.loadBuf, BigInt(cap), this.used, msg);
      const used = Number(new DataView(this.used.buffer).getBigUint64(0, true));
      if (code === DXS_E_RANGE) {
        if (!(used > cap && used <= LOAD_RECORD_MAX)) {
          const why = used <= cap
            ? `no larger than the ${cap} bytes given`
            : `over the limit of ${LOAD_RECORD_MAX}`;
          return {
            ok: false,
            status: { code: DXS_E_BROKEN, message: `DXS_E_RANGE asking for ${used} bytes, ${why}` },
          };
        }
        this.loadBuf = new Uint8Array(Math.max(used, 2 * cap));
        continue;
      }
      if (code !== DXS_OK) return { ok: false, status: status(code, msg) };
      if (used > cap) {
        return {
          ok: false,
          status: { code: DXS_E_BROKEN, message: `wrote ${used} bytes into a buffer of ${cap}` },
        };
      }
      return { ok: true, bytes: this.loadBuf.subarray(0, used) };
    }
  }

  /** dxs_backend_apply of one batch (copied into the daemon's batch buffer first). */
  apply(batch: ReadonlyArray<{ readonly key: Uint8Array; readonly value?: Uint8Array }>): Status {
    let bytes = 0;
    for (const op of batch) bytes += op.key.length + (op.value?.length ?? 0);
    if (this.data.length < bytes) this.data = new Uint8Array(Math.max(bytes, 2 * this.data.length));
    if (this.ops.length < batch.length * DXS_OP_SIZE) {
      this.ops = new Uint8Array(Math.max(batch.length, 2 * this.ops.length / DXS_OP_SIZE) * DXS_OP_SIZE);
    }
    // The data buffer is at least 64 KiB, so V8 keeps it off-heap: its address is stable during the call.
    const base = BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(this.data)));
    const dv = new DataView(this.ops.buffer);
    let at = 0;
    for (let i = 0; i < batch.length; i++) {
      const { key, value } = batch[i];
      const o = i * DXS_OP_SIZE;
      this.data.set(key, at);
      dv.setBigUint64(o + DXS_OP_OFFSETS.key, base + BigInt(at), true);
      dv.setUint32(o + DXS_OP_OFFSETS.keyLen, key.length, true);
      at += key.length;
      if (value === undefined) {
        dv.setBigUint64(o + DXS_OP_OFFSETS.value, 0n, true);
        dv.setUint32(o + DXS_OP_OFFSETS.valueLen, 0, true);
        dv.setUint32(o + DXS_OP_OFFSETS.kind, DXS_OP_DELETE, true);
      } else {
        this.data.set(value, at);
        dv.setBigUint64(o + DXS_OP_OFFSETS.value, value.length > 0 ? base + BigInt(at) : 0n, true);
        dv.setUint32(o + DXS_OP_OFFSETS.valueLen, value.length, true);
        dv.setUint32(o + DXS_OP_OFFSETS.kind, DXS_OP_PUT, true);
        at += value.length;
      }
      dv.setUint32(o + DXS_OP_OFFSETS.reserved, 0, true);
    }
    const msg = messageBuffer();
    const code = this.sym.dxs_backend_apply(this.live(), this.ops, batch.length, msg);
    return code === DXS_OK ? OK : status(code, msg);
  }

  sync(): Status {
    const msg = messageBuffer();
    const code = this.sym.dxs_backend_sync(this.live(), msg);
    return code === DXS_OK ? OK : status(code, msg);
  }

  compact(): Status {
    const msg = messageBuffer();
    const code = this.sym.dxs_backend_compact(this.live(), msg);
    return code === DXS_OK ? OK : status(code, msg);
  }

  /** dxs_backend_close; the store is unusable afterwards whatever it returns. */
  close(): Status {
    if (this.handle === null) return OK;
    const h = this.handle;
    this.handle = null;
    const msg = messageBuffer();
    const code = this.sym.dxs_backend_close(h, msg);
    return code === DXS_OK ? OK : status(code, msg);
  }
}
