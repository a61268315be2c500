// What makes a sequence of migration records a stream one can restore from: every field in range,
// every size within the protocol's limits and the configured counts, every record after the records it
// depends on (xenstore-migration.md: "Records upon which other records depend must always appear
// earlier"), nothing said twice. The reader runs it on what it decoded before returning anything (so
// a stream is used whole or not at all) and the writer on what it is asked to write (so dxenstored
// never writes a stream it, or cxenstored, would refuse).
import { parentOf } from "../store/path.ts";
import { StreamError } from "./errors.ts";
import {
  DOMID_FIRST_RESERVED,
  ITEM_LIMITS,
  MSG_HEADER_SIZE,
  MSG_PAYLOAD_MAX,
  SPECIAL_NODES,
  type StreamLimits,
  TA_ACCESS_READ,
  TA_ACCESS_WRITTEN,
  WATCH_DEPTH_UNLIMITED,
} from "./format.ts";
import type {
  ConnRecord,
  DomainRecord,
  GlobalQuotaRecord,
  MigrationStream,
  NodeRecord,
  QuotaValue,
  WatchRecord,
} from "./records.ts";
import { RecordType } from "./format.ts";

const PATH_CHARS = /^[A-Za-z0-9\-/_@]+$/;
const U16 = 0xffff;
const U32 = 0xffffffff;

function isInt(n: number, min: number, max: number): boolean {
  return Number.isInteger(n) && n >= min && n <= max;
}

/** A watch or node path's syntax problem, or null (Xen's rules, src/store/path.ts). */
export function pathProblem(path: string, kind: "node" | "watch"): string | null {
  if (path.length === 0) return "empty path";
  if (!PATH_CHARS.test(path)) return "invalid character in path";
  if (path.includes("//")) return "'//' in path";
  if (path.length > 1 && path.endsWith("/")) return "trailing '/' in path";
  if (path[0] === "@") {
    if (kind === "node" && !SPECIAL_NODES.includes(path)) return `unknown special node ${path.slice(0, 32)}`;
    if (path.length === 1) return "empty special path";
  } else if (path[0] !== "/") {
    if (kind === "node") return "node path not absolute";
    if (path.length > ITEM_LIMITS.relativePathBytes) return "relative path too long";
  }
  if (path.length > ITEM_LIMITS.pathBytes) return "path too long";
  return null;
}

/**
 * The whole wire messages in `data` (header + payload), and whether the last one is cut short.
 * `lastMayBeCut`: input (the request being read when the state was taken); output must be whole.
 */
export function messageProblem(data: Uint8Array, lastMayBeCut: boolean): string | null {
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  let off = 0;
  while (off < data.length) {
    const left = data.length - off;
    if (left < MSG_HEADER_SIZE) return lastMayBeCut ? null : "ends inside a message header";
    const len = dv.getUint32(off + 12, true);
    if (len > MSG_PAYLOAD_MAX) return `a message announces ${len} payload bytes (max ${MSG_PAYLOAD_MAX})`;
    if (left < MSG_HEADER_SIZE + len) return lastMayBeCut ? null : "ends inside a message";
    off += MSG_HEADER_SIZE + len;
  }
  return null;
}

function quotaProblem(q: readonly QuotaValue[], limits: StreamLimits): string | null {
  if (q.length > limits.maxQuotas) return `${q.length} quota values (limit ${limits.maxQuotas})`;
  const seen = new Set<string>();
  for (const v of q) {
    if (v.name.length === 0 || v.name.length > ITEM_LIMITS.quotaNameBytes || v.name.includes("\0")) {
      return `bad quota name ${JSON.stringify(v.name.slice(0, 32))}`;
    }
    if (seen.has(v.name)) return `quota ${v.name} twice`;
    seen.add(v.name);
    if (!isInt(v.value, 0, U32)) return `quota ${v.name}: value ${v.value} out of range`;
  }
  return null;
}

/** Throws StreamError for the first problem found; returns normally for a stream one can restore. */
export function validateStream(s: MigrationStream, limits: StreamLimits): void {
  if (s.version !== 1 && s.version !== 2) {
    throw new StreamError("unsupported-version", `version ${s.version}`);
  }
  if (s.records.length > limits.maxRecords) {
    throw new StreamError("limit", `${s.records.length} records (limit ${limits.maxRecords})`);
  }
  let globalAt = -1;
  const globalFds = new Set<number>();
  const conns = new Map<number, ConnRecord>();
  const ringDomids = new Set<number>();
  const socketFds = new Set<number>();
  const watchKeys = new Set<string>();
  const txns = new Set<string>();
  const nodes = new Set<string>();
  const txnNodes = new Set<string>();
  const domains = new Set<number>();
  let watchCount = 0;
  let nodeCount = 0;
  let sawQuota = false;

  for (let i = 0; i < s.records.length; i++) {
    const r = s.records[i];
    const fail = (code: ConstructorParameters<typeof StreamError>[0], detail: string): never => {
      throw new StreamError(code, detail, i);
    };
    switch (r.type) {
      case "global": {
        if (globalAt >= 0) fail("contradiction", `a second GLOBAL record (the first is record ${globalAt})`);
        if (conns.size > 0) fail("order", "GLOBAL after a CONN record");
        for (const fd of [r.socketFd, r.evtchnFd]) {
          if (!isInt(fd, -1, 0x7fffffff)) fail("bad-field", `GLOBAL: fd ${fd}`);
        }
        if (r.socketFd >= 0 && r.socketFd === r.evtchnFd) {
          fail("contradiction", `GLOBAL: socket and event channel share fd ${r.socketFd}`);
        }
        if (r.socketFd >= 0) globalFds.add(r.socketFd);
        if (r.evtchnFd >= 0) globalFds.add(r.evtchnFd);
        globalAt = i;
        break;
      }
      case "conn": {
        if (!isInt(r.connId, 1, U32)) fail("bad-field", `CONN: connection id ${r.connId}`);
        if (conns.has(r.connId)) fail("duplicate", `connection id ${r.connId} twice`);
        if (conns.size >= limits.maxConnections) {
          fail("limit", `more than ${limits.maxConnections} connections`);
        }
        const ep = r.endpoint;
        if (ep.kind === "ring") {
          if (!isInt(ep.domid, 0, DOMID_FIRST_RESERVED - 1)) {
            fail("bad-field", `CONN: ring domid ${ep.domid}`);
          }
          if (ep.targetDomid !== null && !isInt(ep.targetDomid, 0, DOMID_FIRST_RESERVED - 1)) {
            fail("bad-field", `CONN: target domid ${ep.targetDomid}`);
          }
          if (!isInt(ep.evtchn, 0, U32)) fail("bad-field", `CONN: event channel ${ep.evtchn}`);
          if (ringDomids.has(ep.domid)) fail("duplicate", `two ring connections of domain ${ep.domid}`);
          ringDomids.add(ep.domid);
        } else {
          if (!isInt(ep.fd, 0, 0x7fffffff)) fail("bad-field", `CONN: socket fd ${ep.fd}`);
          if (socketFds.has(ep.fd)) fail("duplicate", `two socket connections on fd ${ep.fd}`);
          if (globalFds.has(ep.fd)) fail("contradiction", `socket connection on GLOBAL's fd ${ep.fd}`);
          socketFds.add(ep.fd);
        }
        if (r.input.length > ITEM_LIMITS.inputBytes) {
          fail("limit", `CONN ${r.connId}: ${r.input.length} input bytes (max ${ITEM_LIMITS.inputBytes})`);
        }
        if (r.output.length > limits.maxOutputBytesPerConnection) {
          fail(
            "limit",
            `CONN ${r.connId}: ${r.output.length} output bytes (limit ${limits.maxOutputBytesPerConnection})`,
          );
        }
        if (!isInt(r.partialOutput, 0, Math.min(r.output.length, MSG_HEADER_SIZE + MSG_PAYLOAD_MAX))) {
          fail("bad-field", `CONN ${r.connId}: partial response of ${r.partialOutput} bytes`);
        }
        const inProblem = messageProblem(r.input, true);
        if (inProblem !== null) fail("bad-field", `CONN ${r.connId}: input ${inProblem}`);
        const outProblem = messageProblem(r.output.subarray(r.partialOutput), false);
        if (outProblem !== null) fail("bad-field", `CONN ${r.connId}: output ${outProblem}`);
        conns.set(r.connId, r);
        break;
      }
      case "watch": {
        if (!conns.has(r.connId)) fail("order", `WATCH of connection ${r.connId} before its CONN`);
        if (++watchCount > limits.maxWatches) fail("limit", `more than ${limits.maxWatches} watches`);
        checkWatch(r, s.version, fail);
        const key = `${r.connId}\0${r.path}\0${r.token}`;
        if (watchKeys.has(key)) {
          fail("duplicate", `connection ${r.connId} watches ${r.path} with one token twice`);
        }
        watchKeys.add(key);
        break;
      }
      case "transaction": {
        if (!conns.has(r.connId)) fail("order", `TA of connection ${r.connId} before its CONN`);
        if (!isInt(r.txId, 1, U32)) fail("bad-field", `TA: transaction id ${r.txId}`);
        const key = `${r.connId}/${r.txId}`;
        if (txns.has(key)) fail("duplicate", `transaction ${r.txId} of connection ${r.connId} twice`);
        if (txns.size >= limits.maxTransactions) {
          fail("limit", `more than ${limits.maxTransactions} transactions`);
        }
        txns.add(key);
        break;
      }
      case "node": {
        if (++nodeCount > limits.maxNodes) fail("limit", `more than ${limits.maxNodes} nodes`);
        checkNodeFields(r, fail);
        if (r.txn === null) {
          if (nodes.has(r.path)) fail("duplicate", `node ${r.path.slice(0, 64)} twice`);
          if (r.path[0] === "/" && r.path !== "/") {
            // The root exists in every store; any other parent must have come first.
            const parent = parentOf(r.path);
            if (parent !== "/" && !nodes.has(parent)) {
              fail("order", `node ${r.path.slice(0, 64)} before its parent`);
            }
          }
          nodes.add(r.path);
        } else {
          const t = r.txn;
          if (!txns.has(`${t.connId}/${t.txId}`)) {
            fail("order", `node of transaction ${t.txId} (connection ${t.connId}) before its TA`);
          }
          const key = `${t.connId}/${t.txId}\0${r.path}`;
          if (txnNodes.has(key)) fail("duplicate", `node ${r.path.slice(0, 64)} twice in one transaction`);
          txnNodes.add(key);
        }
        break;
      }
      case "global-quota":
        if (sawQuota) fail("contradiction", "a second GLOBAL_QUOTA record");
        sawQuota = true;
        checkQuotaRecord(r, limits, fail);
        break;
      case "domain":
        if (!isInt(r.domid, 0, DOMID_FIRST_RESERVED - 1)) fail("bad-field", `DOMAIN: domid ${r.domid}`);
        if (domains.has(r.domid)) fail("duplicate", `DOMAIN ${r.domid} twice`);
        domains.add(r.domid);
        checkQuotaRecord(r, limits, fail);
        if (!isInt(r.features, 0, U32)) fail("bad-field", `DOMAIN ${r.domid}: features ${r.features}`);
        if (s.version < 2 && r.features !== 0) fail("unsupported-version", "DOMAIN features need version 2");
        break;
      case "opaque":
        if (!isInt(r.code, 0, U32) || r.code <= RecordType.WATCH_EXT) {
          fail("bad-field", `opaque record with the code ${r.code} of a known type`);
        }
        if (r.body.length % 8 !== 0) fail("bad-length", `opaque record of ${r.body.length} bytes`);
        if (r.body.length > limits.maxOpaqueRecordBytes) {
          fail(
            "limit",
            `record type ${r.code} of ${r.body.length} bytes (limit ${limits.maxOpaqueRecordBytes})`,
          );
        }
        break;
      default: {
        const never: never = r;
        throw new Error(`unreachable: ${JSON.stringify(never)}`);
      }
    }
  }
}

type Fail = (code: ConstructorParameters<typeof StreamError>[0], detail: string) => never;

function checkWatch(r: WatchRecord, version: number, fail: Fail): void {
  const p = pathProblem(r.path, "watch");
  if (p !== null) fail(p.includes("too long") ? "limit" : "bad-field", `WATCH: ${p}`);
  if (r.token.includes("\0")) fail("bad-field", "WATCH: NUL inside the token");
  if (r.path.length + r.token.length + 2 > ITEM_LIMITS.watchBytes) {
    fail(
      "limit",
      `WATCH: path and token of ${r.path.length + r.token.length + 2} bytes (max ${ITEM_LIMITS.watchBytes})`,
    );
  }
  if (r.depth !== null) {
    if (version < 2) fail("unsupported-version", "a watch depth (WATCH_EXT) needs version 2");
    if (!isInt(r.depth, 0, WATCH_DEPTH_UNLIMITED)) fail("bad-field", `WATCH_EXT: depth ${r.depth}`);
  }
}

function checkNodeFields(r: NodeRecord, fail: Fail): void {
  const p = pathProblem(r.path, "node");
  if (p !== null) fail(p.includes("too long") ? "limit" : "bad-field", `NODE: ${p}`);
  if (r.value.length > ITEM_LIMITS.valueBytes) {
    fail(
      "limit",
      `NODE ${r.path.slice(0, 64)}: value of ${r.value.length} bytes (max ${ITEM_LIMITS.valueBytes})`,
    );
  }
  if (r.perms.length > ITEM_LIMITS.perms) {
    fail("limit", `NODE ${r.path.slice(0, 64)}: ${r.perms.length} permissions (max ${ITEM_LIMITS.perms})`);
  }
  for (const e of r.perms) {
    if (!"nrwb".includes(e.access) || e.access.length !== 1) {
      fail("bad-field", `NODE: permission ${e.access}`);
    }
    if (!isInt(e.domid, 0, U16)) fail("bad-field", `NODE: permission domid ${e.domid}`);
  }
  const special = r.path[0] === "@";
  if (r.txn === null) {
    if (r.perms.length === 0) fail("bad-field", `NODE ${r.path.slice(0, 64)}: no permissions`);
    if (special && r.value.length > 0) fail("bad-field", `special node ${r.path} with a value`);
    return;
  }
  const t = r.txn;
  if (special) fail("bad-field", `special node ${r.path} in a transaction`);
  if (!isInt(t.connId, 1, U32) || !isInt(t.txId, 1, U32)) {
    fail("bad-field", `NODE: transaction ${t.txId} of connection ${t.connId}`);
  }
  if (!isInt(t.access, 0, TA_ACCESS_READ | TA_ACCESS_WRITTEN)) fail("bad-field", `NODE: access ${t.access}`);
  // Deleted in the transaction: access 0, no permissions and no value, all three or none.
  const deleted = [t.access === 0, r.perms.length === 0];
  if (deleted[0] !== deleted[1] || (deleted[0] && r.value.length > 0)) {
    fail(
      "contradiction",
      `NODE ${r.path.slice(0, 64)}: access ${t.access} with ${r.perms.length} permissions`,
    );
  }
}

function checkQuotaRecord(r: GlobalQuotaRecord | DomainRecord, limits: StreamLimits, fail: Fail): void {
  const all = r.type === "domain" ? r.quotas : [...r.perDomain, ...r.global];
  const q = quotaProblem(all, limits);
  if (q !== null) {
    fail(
      q.includes("limit") ? "limit" : "bad-field",
      `${r.type === "domain" ? "DOMAIN" : "GLOBAL_QUOTA"}: ${q}`,
    );
  }
  if (r.type === "global-quota" && (r.perDomain.length > U16 || r.global.length > U16)) {
    fail("limit", "GLOBAL_QUOTA: too many values");
  }
}
