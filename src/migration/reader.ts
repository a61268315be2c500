// Reads a XenStore migration stream (cxenstored's <rundir>/state_dump) into a validated value. The
// bytes are decoded whole and then checked whole (validate.ts) before anything is returned, so a
// caller either gets every record or a StreamError — nothing is ever half-applied. Every length in the
// stream is checked against the bytes that remain before anything is allocated for it.
//
// What this reader is stricter about than cxenstored 4.17 (which trusts the file it wrote itself):
// record lengths must be multiples of 8 and exactly the padded size of their fields, END must be the
// last record with nothing after it, and every cross-reference must point backwards. What it keeps
// lenient, as the format says: padding bytes and fields that do not apply are ignored, and record
// types it does not know are returned as opaque records (cxenstored skips them too).
import { latin1 } from "../common/latin1.ts";
import { StreamError } from "./errors.ts";
import {
  ConnType,
  DEFAULT_STREAM_LIMITS,
  DOMID_INVALID,
  FLAG_BIG_ENDIAN,
  ITEM_LIMITS,
  padded,
  PERM_FLAG_IGNORE,
  PERM_LETTERS,
  PREAMBLE_SIZE,
  RECORD_ALIGN,
  RECORD_HEADER_SIZE,
  RecordType,
  STREAM_IDENT,
  STREAM_VERSION_MAX,
  type StreamLimits,
  type StreamVersion,
} from "./format.ts";
import type {
  ConnEndpoint,
  MigrationStream,
  NodePerm,
  PermLetter,
  QuotaValue,
  StateRecord,
} from "./records.ts";
import { validateStream } from "./validate.ts";

/** Decode and validate a whole stream. Throws StreamError, and nothing else, for any bad input. */
export function readStream(bytes: Uint8Array, limits: Partial<StreamLimits> = {}): MigrationStream {
  const lim: StreamLimits = { ...DEFAULT_STREAM_LIMITS, ...limits };
  if (bytes.length > lim.maxStreamBytes) {
    throw new StreamError("limit", `${bytes.length} bytes (limit ${lim.maxStreamBytes})`);
  }
  if (bytes.length < PREAMBLE_SIZE) throw new StreamError("truncated", `${bytes.length} bytes, no preamble`);
  if (latin1(bytes, 0, 8) !== STREAM_IDENT) throw new StreamError("not-a-stream", 'no "xenstore" ident');
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = dv.getUint32(8, false);
  if (version < 1 || version > STREAM_VERSION_MAX) {
    throw new StreamError(
      "unsupported-version",
      `version ${version} (this reader knows 1..${STREAM_VERSION_MAX})`,
    );
  }
  const flags = dv.getUint32(12, false);
  if (flags & FLAG_BIG_ENDIAN) throw new StreamError("unsupported-flags", "big-endian records");
  if (flags !== 0) throw new StreamError("unsupported-flags", `reserved flag bits 0x${flags.toString(16)}`);

  const records: StateRecord[] = [];
  let off = PREAMBLE_SIZE;
  for (let index = 0;; index++) {
    if (bytes.length - off < RECORD_HEADER_SIZE) {
      throw new StreamError("truncated", "the stream ends without an END record", index, off);
    }
    const type = dv.getUint32(off, true);
    const len = dv.getUint32(off + 4, true);
    if (len % RECORD_ALIGN !== 0) {
      throw new StreamError("bad-length", `length ${len} is not a multiple of ${RECORD_ALIGN}`, index, off);
    }
    const bodyStart = off + RECORD_HEADER_SIZE;
    if (len > bytes.length - bodyStart) {
      throw new StreamError(
        "truncated",
        `length ${len}, only ${bytes.length - bodyStart} bytes left`,
        index,
        off,
      );
    }
    if (type === RecordType.END) {
      if (len !== 0) throw new StreamError("bad-length", `END with a ${len}-byte body`, index, off);
      const rest = bytes.length - bodyStart;
      if (rest !== 0) throw new StreamError("contradiction", `${rest} bytes after END`, index, off);
      break;
    }
    if (records.length >= lim.maxRecords) {
      throw new StreamError("limit", `more than ${lim.maxRecords} records`, index, off);
    }
    const body = new BodyReader(bytes, bodyStart, len, index, off);
    records.push(decodeRecord(type, body, version as StreamVersion, lim));
    off = bodyStart + len;
  }
  const stream: MigrationStream = { version: version as StreamVersion, records };
  validateStream(stream, lim);
  return stream;
}

/** A bounds-checked cursor over one record body (little-endian fields). */
class BodyReader {
  private pos: number;
  private readonly dv: DataView;
  readonly end: number;

  constructor(
    private readonly bytes: Uint8Array,
    readonly start: number,
    readonly len: number,
    readonly index: number,
    readonly offset: number,
  ) {
    this.pos = start;
    this.end = start + len;
    this.dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  fail(code: ConstructorParameters<typeof StreamError>[0], detail: string): never {
    throw new StreamError(code, detail, this.index, this.offset);
  }

  private need(n: number, what: string): void {
    if (this.end - this.pos < n) this.fail("bad-length", `length ${this.len} too short for ${what}`);
  }

  u8(what: string): number {
    this.need(1, what);
    return this.bytes[this.pos++];
  }
  u16(what: string): number {
    this.need(2, what);
    const v = this.dv.getUint16(this.pos, true);
    this.pos += 2;
    return v;
  }
  u32(what: string): number {
    this.need(4, what);
    const v = this.dv.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }
  i32(what: string): number {
    this.need(4, what);
    const v = this.dv.getInt32(this.pos, true);
    this.pos += 4;
    return v;
  }
  skip(n: number, what: string): void {
    this.need(n, what);
    this.pos += n;
  }
  /** A copy of the next `n` bytes. */
  bytesOf(n: number, what: string): Uint8Array {
    this.need(n, what);
    const b = this.bytes.slice(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }
  /** `n` bytes as a Latin-1 string. */
  text(n: number, what: string): string {
    this.need(n, what);
    const s = latin1(this.bytes, this.pos, this.pos + n);
    this.pos += n;
    return s;
  }
  /** A NUL-terminated string of exactly `n` bytes including the NUL, with no NUL before it. */
  cString(n: number, what: string): string {
    if (n < 1) this.fail("bad-field", `${what}: length 0 (the NUL counts)`);
    const s = this.text(n, what);
    if (s.charCodeAt(n - 1) !== 0) this.fail("bad-field", `${what} not NUL-terminated`);
    if (s.indexOf("\0") !== n - 1) this.fail("bad-field", `NUL inside the ${what}`);
    return s.slice(0, n - 1);
  }
  /** The fields end here: the rest must be 0..7 padding bytes (their content is ignored). */
  finish(what: string): void {
    if (padded(this.pos - this.start) !== this.len) {
      this.fail("bad-length", `${what}: length ${this.len}, the fields take ${this.pos - this.start} bytes`);
    }
  }
}

function decodeRecord(type: number, b: BodyReader, version: StreamVersion, lim: StreamLimits): StateRecord {
  switch (type) {
    case RecordType.GLOBAL: {
      const socketFd = b.i32("GLOBAL socket fd");
      const evtchnFd = b.i32("GLOBAL evtchn fd");
      b.finish("GLOBAL");
      return { type: "global", socketFd, evtchnFd };
    }
    case RecordType.CONN:
      return decodeConn(b);
    case RecordType.WATCH:
    case RecordType.WATCH_EXT: {
      const ext = type === RecordType.WATCH_EXT;
      if (ext && version < 2) b.fail("unsupported-version", "WATCH_EXT in a version 1 stream");
      const connId = b.u32("WATCH conn id");
      const pathLen = b.u16("WATCH path length");
      const tokenLen = b.u16("WATCH token length");
      let depth: number | null = null;
      if (ext) {
        depth = b.u16("WATCH_EXT depth");
        b.skip(2, "WATCH_EXT pad");
      }
      const path = b.cString(pathLen, "watch path");
      const token = b.cString(tokenLen, "watch token");
      b.finish("WATCH");
      return { type: "watch", connId, path, token, depth };
    }
    case RecordType.TA: {
      const connId = b.u32("TA conn id");
      const txId = b.u32("TA transaction id");
      b.finish("TA");
      return { type: "transaction", connId, txId };
    }
    case RecordType.NODE:
      return decodeNode(b);
    case RecordType.GLB_QUOTA: {
      const nDom = b.u16("GLOBAL_QUOTA count");
      const nGlob = b.u16("GLOBAL_QUOTA count");
      const q = decodeQuotas(b, nDom + nGlob, lim, "GLOBAL_QUOTA");
      b.finish("GLOBAL_QUOTA");
      return { type: "global-quota", perDomain: q.slice(0, nDom), global: q.slice(nDom) };
    }
    case RecordType.DOMAIN: {
      const domid = b.u16("DOMAIN domid");
      const n = b.u16("DOMAIN quota count");
      const rawFeatures = b.u32("DOMAIN features");
      const quotas = decodeQuotas(b, n, lim, "DOMAIN");
      b.finish("DOMAIN");
      // "Only valid for version 2 and later": ignored in a version 1 stream.
      return { type: "domain", domid, features: version >= 2 ? rawFeatures : 0, quotas };
    }
    default: {
      if (b.len > lim.maxOpaqueRecordBytes) {
        b.fail(
          "limit",
          `record type 0x${type.toString(16)} of ${b.len} bytes (limit ${lim.maxOpaqueRecordBytes})`,
        );
      }
      return { type: "opaque", code: type, body: b.bytesOf(b.len, "record body") };
    }
  }
}

function decodeConn(b: BodyReader): StateRecord {
  const connId = b.u32("CONN id");
  const connType = b.u16("CONN type");
  b.skip(2, "CONN pad");
  let endpoint: ConnEndpoint;
  if (connType === ConnType.RING) {
    const domid = b.u16("CONN domid");
    const tdomid = b.u16("CONN target domid");
    const evtchn = b.u32("CONN event channel");
    endpoint = { kind: "ring", domid, targetDomid: tdomid === DOMID_INVALID ? null : tdomid, evtchn };
  } else if (connType === ConnType.SOCKET) {
    const fd = b.i32("CONN socket fd");
    b.skip(4, "CONN pad");
    endpoint = { kind: "socket", fd };
  } else {
    b.fail("bad-field", `CONN type ${connType}`);
  }
  const inLen = b.u16("CONN input length");
  const respLen = b.u16("CONN partial response length");
  const outLen = b.u32("CONN output length");
  if (respLen > outLen) b.fail("contradiction", `partial response of ${respLen} > output of ${outLen} bytes`);
  const input = b.bytesOf(inLen, "CONN input data");
  const output = b.bytesOf(outLen, "CONN output data");
  b.finish("CONN");
  return { type: "conn", connId, endpoint, input, output, partialOutput: respLen };
}

function decodeNode(b: BodyReader): StateRecord {
  const connId = b.u32("NODE conn id");
  const txId = b.u32("NODE transaction id");
  const pathLen = b.u16("NODE path length");
  const valueLen = b.u16("NODE value length");
  const access = b.u16("NODE access");
  const permCount = b.u16("NODE permission count");
  const perms: NodePerm[] = [];
  for (let i = 0; i < permCount; i++) {
    const letter = String.fromCharCode(b.u8("NODE permission"));
    const flags = b.u8("NODE permission flags");
    const domid = b.u16("NODE permission domid");
    if (!PERM_LETTERS.includes(letter)) {
      b.fail("bad-field", `permission letter 0x${letter.charCodeAt(0).toString(16)}`);
    }
    if ((flags & ~PERM_FLAG_IGNORE) !== 0) b.fail("bad-field", `permission flags 0x${flags.toString(16)}`);
    perms.push({ access: letter as PermLetter, domid, stale: (flags & PERM_FLAG_IGNORE) !== 0 });
  }
  const path = b.cString(pathLen, "node path");
  const value = b.text(valueLen, "node value");
  b.finish("NODE");
  // conn-id 0: a committed node; tx-id and access "should be ignored" then.
  const txn = connId === 0 ? null : { connId, txId, access };
  return { type: "node", path, value, perms, txn };
}

function decodeQuotas(b: BodyReader, n: number, lim: StreamLimits, what: string): QuotaValue[] {
  if (n > lim.maxQuotas) b.fail("limit", `${what}: ${n} quota values (limit ${lim.maxQuotas})`);
  const values: number[] = [];
  for (let i = 0; i < n; i++) values.push(b.u32(`${what} quota value`));
  const out: QuotaValue[] = [];
  // Then the names, NUL-delimited, in the same order.
  for (let i = 0; i < n; i++) out.push({ name: readName(b, `${what} quota name`), value: values[i] });
  return out;
}

/** One NUL-terminated name, at most ITEM_LIMITS.quotaNameBytes plus the NUL. */
function readName(b: BodyReader, what: string): string {
  let s = "";
  for (;;) {
    const c = b.u8(what);
    if (c === 0) return s;
    if (s.length >= ITEM_LIMITS.quotaNameBytes) {
      b.fail("limit", `${what} longer than ${ITEM_LIMITS.quotaNameBytes} bytes`);
    }
    s += String.fromCharCode(c);
  }
}
