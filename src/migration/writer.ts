// Writes a XenStore migration stream byte for byte as cxenstored 4.17 does on x86 (little-endian
// records, version big-endian in the preamble, zero padding counted in each record's length, END last),
// so cxenstored 4.17 can start from it with -U. The records are validated first (validate.ts): a
// stream dxenstored writes is one its own reader accepts. One buffer of the exact size is allocated.
import { writeLatin1 } from "../common/latin1.ts";
import { StreamError } from "./errors.ts";
import {
  BodySize,
  ConnType,
  DEFAULT_STREAM_LIMITS,
  DOMID_INVALID,
  padded,
  PERM_FLAG_IGNORE,
  PREAMBLE_SIZE,
  RECORD_HEADER_SIZE,
  RecordType,
  STREAM_IDENT,
  type StreamLimits,
} from "./format.ts";
import type { MigrationStream, QuotaValue, StateRecord } from "./records.ts";
import { validateStream } from "./validate.ts";

function quotaBytes(q: readonly QuotaValue[]): number {
  let n = 4 * q.length;
  for (const v of q) n += v.name.length + 1;
  return n;
}

/** The unpadded size of a record's body. */
function bodySize(r: StateRecord): number {
  switch (r.type) {
    case "global":
      return BodySize.GLOBAL;
    case "conn":
      return BodySize.CONN + r.input.length + r.output.length;
    case "watch":
      return (r.depth === null ? BodySize.WATCH : BodySize.WATCH_EXT) + r.path.length + r.token.length + 2;
    case "transaction":
      return BodySize.TA;
    case "node":
      return BodySize.NODE + BodySize.NODE_PERM * r.perms.length + r.path.length + 1 + r.value.length;
    case "global-quota":
      return BodySize.GLB_QUOTA + quotaBytes([...r.perDomain, ...r.global]);
    case "domain":
      return BodySize.DOMAIN + quotaBytes(r.quotas);
    case "opaque":
      return r.body.length;
  }
}

function typeCode(r: StateRecord): number {
  switch (r.type) {
    case "global":
      return RecordType.GLOBAL;
    case "conn":
      return RecordType.CONN;
    case "watch":
      return r.depth === null ? RecordType.WATCH : RecordType.WATCH_EXT;
    case "transaction":
      return RecordType.TA;
    case "node":
      return RecordType.NODE;
    case "global-quota":
      return RecordType.GLB_QUOTA;
    case "domain":
      return RecordType.DOMAIN;
    case "opaque":
      return r.code;
  }
}

/** Encode `s` (validated first; a StreamError if it is not a stream a reader would accept). */
export function writeStream(s: MigrationStream, limits: Partial<StreamLimits> = {}): Uint8Array {
  const lim: StreamLimits = { ...DEFAULT_STREAM_LIMITS, ...limits };
  validateStream(s, lim);
  let total = PREAMBLE_SIZE + RECORD_HEADER_SIZE; // preamble and END
  for (const r of s.records) total += RECORD_HEADER_SIZE + padded(bodySize(r));
  if (total > lim.maxStreamBytes) {
    throw new StreamError("limit", `${total} bytes (limit ${lim.maxStreamBytes})`);
  }
  const out = new Uint8Array(total); // zero-filled: the padding and every reserved field
  const dv = new DataView(out.buffer);
  writeLatin1(out, 0, STREAM_IDENT);
  dv.setUint32(8, s.version, false);
  dv.setUint32(12, 0, false); // flags: little-endian records, nothing reserved
  let off = PREAMBLE_SIZE;
  for (const r of s.records) {
    const len = padded(bodySize(r));
    dv.setUint32(off, typeCode(r), true);
    dv.setUint32(off + 4, len, true);
    encodeBody(r, out, dv, off + RECORD_HEADER_SIZE);
    off += RECORD_HEADER_SIZE + len;
  }
  // END: type 0, length 0 — already zero.
  return out;
}

function encodeBody(r: StateRecord, out: Uint8Array, dv: DataView, at: number): void {
  let p = at;
  const u16 = (v: number) => {
    dv.setUint16(p, v, true);
    p += 2;
  };
  const u32 = (v: number) => {
    dv.setUint32(p, v, true);
    p += 4;
  };
  const i32 = (v: number) => {
    dv.setInt32(p, v, true);
    p += 4;
  };
  const str = (s: string, nul: boolean) => {
    p = writeLatin1(out, p, s) + (nul ? 1 : 0);
  };
  switch (r.type) {
    case "global":
      i32(r.socketFd);
      i32(r.evtchnFd);
      return;
    case "conn": {
      u32(r.connId);
      const ep = r.endpoint;
      u16(ep.kind === "ring" ? ConnType.RING : ConnType.SOCKET);
      p += 2;
      if (ep.kind === "ring") {
        u16(ep.domid);
        u16(ep.targetDomid ?? DOMID_INVALID);
        u32(ep.evtchn);
      } else {
        i32(ep.fd);
        p += 4;
      }
      u16(r.input.length);
      u16(r.partialOutput);
      u32(r.output.length);
      out.set(r.input, p);
      out.set(r.output, p + r.input.length);
      return;
    }
    case "watch":
      u32(r.connId);
      u16(r.path.length + 1);
      u16(r.token.length + 1);
      if (r.depth !== null) {
        u16(r.depth);
        p += 2;
      }
      str(r.path, true);
      str(r.token, true);
      return;
    case "transaction":
      u32(r.connId);
      u32(r.txId);
      return;
    case "node":
      u32(r.txn?.connId ?? 0);
      u32(r.txn?.txId ?? 0);
      u16(r.path.length + 1);
      u16(r.value.length);
      u16(r.txn?.access ?? 0);
      u16(r.perms.length);
      for (const e of r.perms) {
        out[p] = e.access.charCodeAt(0);
        out[p + 1] = e.stale ? PERM_FLAG_IGNORE : 0;
        dv.setUint16(p + 2, e.domid, true);
        p += BodySize.NODE_PERM;
      }
      str(r.path, true);
      str(r.value, false);
      return;
    case "global-quota":
    case "domain": {
      let all: readonly QuotaValue[];
      if (r.type === "global-quota") {
        u16(r.perDomain.length);
        u16(r.global.length);
        all = [...r.perDomain, ...r.global];
      } else {
        u16(r.domid);
        u16(r.quotas.length);
        u32(r.features);
        all = r.quotas;
      }
      for (const q of all) u32(q.value);
      for (const q of all) str(q.name, true);
      return;
    }
    case "opaque":
      out.set(r.body, p);
      return;
  }
}
