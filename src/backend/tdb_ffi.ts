// Samba's TDB library (Debian package libtdb1) through Deno.dlopen, loaded on first use so that a
// daemon without the tdb backend never needs it. research/platform.md §5 has the measured signatures:
// TDB_DATA {unsigned char *dptr; size_t dsize} travels by value as a 16-byte struct, and data that
// libtdb returns was malloc()ed by it and must be free()d by us.
//
// Everything here is synchronous and copies bytes out of libtdb's buffers before freeing them (free,
// errno and statvfs come from the program's one libc binding, ffi/libc.ts).
import * as libc from "../../ffi/libc.ts";

const TDB_DATA = { struct: ["pointer", "usize"] } as const;

const TDB_SYMBOLS = {
  tdb_open: { parameters: ["buffer", "i32", "i32", "i32", "u32"], result: "pointer" },
  tdb_close: { parameters: ["pointer"], result: "i32" },
  tdb_store: { parameters: ["pointer", TDB_DATA, TDB_DATA, "i32"], result: "i32" },
  tdb_fetch: { parameters: ["pointer", TDB_DATA], result: TDB_DATA },
  tdb_delete: { parameters: ["pointer", TDB_DATA], result: "i32" },
  tdb_firstkey: { parameters: ["pointer"], result: TDB_DATA },
  tdb_nextkey: { parameters: ["pointer", TDB_DATA], result: TDB_DATA },
  tdb_transaction_start: { parameters: ["pointer"], result: "i32" },
  tdb_transaction_commit: { parameters: ["pointer"], result: "i32" },
  tdb_transaction_cancel: { parameters: ["pointer"], result: "i32" },
  tdb_error: { parameters: ["pointer"], result: "i32" },
  tdb_errorstr: { parameters: ["pointer"], result: "pointer" },
  tdb_check: { parameters: ["pointer", "pointer", "pointer"], result: "i32" },
} as const;

type TdbLib = Deno.DynamicLibrary<typeof TDB_SYMBOLS>["symbols"];

let tdb: TdbLib | null = null;

/** Thrown when libtdb cannot be loaded (not installed). */
export class LibTdbMissing extends Error {
  override name = "LibTdbMissing";
}

function lib(): TdbLib {
  if (tdb === null) {
    try {
      tdb = Deno.dlopen("libtdb.so.1", TDB_SYMBOLS).symbols;
    } catch (e) {
      throw new LibTdbMissing(
        `cannot load libtdb.so.1 (Debian: apt-get install libtdb1): ${(e as Error).message}`,
      );
    }
  }
  return tdb;
}

/** True if libtdb can be loaded here (tests skip the tdb backend without it). */
export function libtdbAvailable(): boolean {
  try {
    lib();
    return true;
  } catch (e) {
    if (e instanceof LibTdbMissing) return false;
    throw e;
  }
}

// tdb_flags (tdb.h)
export const TDB_DEFAULT = 0;
export const TDB_NOMMAP = 8;
export const TDB_NOSYNC = 64;
// tdb_store flags
const TDB_REPLACE = 1;
// enum TDB_ERROR: SUCCESS, CORRUPT, IO, LOCK, OOM, EXISTS, NOLOCK, LOCK_TIMEOUT, NOEXIST, ...
export const TDB_ERR_NOEXIST = 8;

/**
 * A failed libtdb call: libtdb's own error text plus the errno it left behind. libtdb does not
 * always say why a write failed (a posix_fallocate() refused for lack of space sets neither errno
 * nor its own error code), so a failure while the file system has less room left than libtdb's next
 * growth of the file is also counted as "no space".
 */
export class TdbError extends Error {
  override name = "TdbError";
  constructor(
    what: string,
    readonly tdbCode: number,
    readonly errno: number,
    detail: string,
    readonly lowSpace = false,
  ) {
    super(
      `${what}: ${lowSpace ? "no space left on the file system" : detail}${errno ? ` (errno ${errno})` : ""}`,
    );
  }
  /** A full disk or quota, which clients see as ENOSPC. */
  get noSpace(): boolean {
    return this.errno === libc.ENOSPC || this.errno === libc.EDQUOT || this.lowSpace;
  }
  /** Node.js-style code, so backend.ts's ioErrno maps it like a Deno error. */
  get code(): string | undefined {
    return this.noSpace ? "ENOSPC" : undefined;
  }
}

function cString(p: Deno.PointerValue): string {
  return p === null ? "" : Deno.UnsafePointerView.getCString(p);
}

/** A TDB_DATA pointing at `bytes` (which must stay alive during the call). */
function datum(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  const s = new Uint8Array(16);
  const dv = new DataView(s.buffer);
  if (bytes.length > 0) {
    const p = Deno.UnsafePointer.of(bytes as Uint8Array<ArrayBuffer>);
    dv.setBigUint64(0, BigInt(Deno.UnsafePointer.value(p)), true);
  }
  dv.setBigUint64(8, BigInt(bytes.length), true);
  return s;
}

function datumPtr(d: Uint8Array): Deno.PointerValue {
  return Deno.UnsafePointer.create(new DataView(d.buffer, d.byteOffset, 16).getBigUint64(0, true));
}

function datumLen(d: Uint8Array): number {
  return Number(new DataView(d.buffer, d.byteOffset, 16).getBigUint64(8, true));
}

/** Copy a returned TDB_DATA's bytes out (null for a NULL dptr), without freeing. */
function copyOut(d: Uint8Array): Uint8Array | null {
  const p = datumPtr(d);
  if (p === null) return null;
  const out = new Uint8Array(datumLen(d));
  if (out.length > 0) new Deno.UnsafePointerView(p).copyInto(out);
  return out;
}

export const latin1 = {
  encode(s: string): Uint8Array {
    const b = new Uint8Array(s.length);
    for (let i = 0; i < s.length; i++) b[i] = s.charCodeAt(i);
    return b;
  },
  decode(b: Uint8Array): string {
    const codes = (from: number, to: number) => b.subarray(from, to) as unknown as number[];
    let s = "";
    for (let i = 0; i < b.length; i += 8192) {
      s += String.fromCharCode.apply(null, codes(i, Math.min(b.length, i + 8192)));
    }
    return s;
  },
};

/** One open TDB file. Keys and values are byte strings. */
export class TdbFile {
  private ctx: Deno.PointerValue;
  private constructor(readonly path: string, ctx: Deno.PointerObject, private readonly tdb: TdbLib) {
    this.ctx = ctx;
  }

  /** tdb_open(path, hashSize, tdbFlags, openFlags, 0600); throws TdbError (or LibTdbMissing). */
  static open(path: string, opts: { hashSize: number; tdbFlags: number; openFlags: number }): TdbFile {
    const tdb = lib();
    const name = new TextEncoder().encode(path + "\0");
    const ctx = tdb.tdb_open(name, opts.hashSize, opts.tdbFlags, opts.openFlags, 0o600);
    if (ctx === null) {
      const e = libc.errno();
      throw new TdbError(
        `tdb_open ${path}`,
        0,
        e,
        e === libc.EIO ? "not a TDB file libtdb can read" : "failed",
      );
    }
    return new TdbFile(path, ctx, tdb);
  }

  private live(): Deno.PointerObject {
    if (this.ctx === null) throw new Error(`${this.path}: TDB closed`);
    return this.ctx;
  }

  private fail(what: string): TdbError {
    const e = libc.errno(); // first: later calls may overwrite it
    const ctx = this.live();
    return new TdbError(
      what,
      this.tdb.tdb_error(ctx),
      e,
      cString(this.tdb.tdb_errorstr(ctx)),
      this.lowSpace(),
    );
  }

  /**
   * Less room left than libtdb may claim at its next growth: at least 100 records' worth and a
   * quarter of the file (tdb_expand_adjust), here 4 × the file size + 4 MiB to be safe.
   */
  private lowSpace(): boolean {
    let size = 0;
    try {
      size = Deno.statSync(this.path).size;
    } catch {
      return false;
    }
    const dir = this.path.includes("/") ? this.path.slice(0, this.path.lastIndexOf("/")) || "/" : ".";
    const buf = new Uint8Array(256); // struct statvfs is 112 bytes on x86-64 and arm64
    if (libc.statvfs(dir, buf) !== 0) return false;
    const dv = new DataView(buf.buffer);
    const free = Number(dv.getBigUint64(8, true) * dv.getBigUint64(32, true)); // f_frsize × f_bavail
    return free < 4 * size + (4 << 20);
  }

  fetch(key: Uint8Array): Uint8Array | null {
    const ctx = this.live();
    const d = this.tdb.tdb_fetch(ctx, datum(key)) as Uint8Array;
    const p = datumPtr(d);
    if (p === null) {
      if (this.tdb.tdb_error(ctx) === TDB_ERR_NOEXIST) return null;
      throw this.fail("tdb_fetch");
    }
    const out = copyOut(d)!;
    libc.free(p);
    return out;
  }

  store(key: Uint8Array, value: Uint8Array): void {
    libc.clearErrno();
    if (this.tdb.tdb_store(this.live(), datum(key), datum(value), TDB_REPLACE) !== 0) {
      throw this.fail("tdb_store");
    }
  }

  /** Delete a key; a missing key is not an error. */
  delete(key: Uint8Array): void {
    const ctx = this.live();
    libc.clearErrno();
    if (this.tdb.tdb_delete(ctx, datum(key)) !== 0 && this.tdb.tdb_error(ctx) !== TDB_ERR_NOEXIST) {
      throw this.fail("tdb_delete");
    }
  }

  /** Visit every record (key, value). The file must not be changed during the walk. */
  forEach(fn: (key: Uint8Array, value: Uint8Array) => void): void {
    const ctx = this.live();
    let k = this.tdb.tdb_firstkey(ctx) as Uint8Array<ArrayBuffer>;
    for (let kp = datumPtr(k); kp !== null;) {
      const key = copyOut(k)!;
      // The key libtdb returned is itself a TDB_DATA: fetch with it, no copy back in.
      const d = this.tdb.tdb_fetch(ctx, k) as Uint8Array;
      const dp = datumPtr(d);
      if (dp !== null) {
        const value = copyOut(d)!;
        libc.free(dp);
        fn(key, value);
      } else if (this.tdb.tdb_error(ctx) !== TDB_ERR_NOEXIST) {
        libc.free(kp);
        throw this.fail("tdb_fetch");
      }
      const next = this.tdb.tdb_nextkey(ctx, k) as Uint8Array<ArrayBuffer>;
      libc.free(kp);
      k = next;
      kp = datumPtr(k);
    }
    const code = this.tdb.tdb_error(ctx);
    if (code !== 0 && code !== TDB_ERR_NOEXIST) throw this.fail("tdb_nextkey");
  }

  transactionStart(): void {
    libc.clearErrno();
    if (this.tdb.tdb_transaction_start(this.live()) !== 0) throw this.fail("tdb_transaction_start");
  }

  transactionCommit(): void {
    libc.clearErrno();
    if (this.tdb.tdb_transaction_commit(this.live()) !== 0) throw this.fail("tdb_transaction_commit");
  }

  transactionCancel(): void {
    this.tdb.tdb_transaction_cancel(this.live());
  }

  /** tdb_check: the file's internal structure (hash chains, free list) is consistent. */
  check(): boolean {
    return this.tdb.tdb_check(this.live(), null, null) === 0;
  }

  close(): void {
    if (this.ctx === null) return;
    const ctx = this.ctx;
    this.ctx = null;
    this.tdb.tdb_close(ctx);
  }
}
