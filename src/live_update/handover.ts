// The switch itself, on the old program's side: the daemon's state as a migration stream
// (src/migration, Xen's xenstore_state.h format), written to <rundir>/state_dump, then exec of the new
// program with the listening socket and every client socket inherited. What is in the stream
// (docs/live-update.md, "State → records"):
//
//   GLOBAL   the listening socket's fd; no event-channel fd (-1: guests' rings are not handed over yet)
//   CONN     dom0's ring with event channel 0 first (cxenstored needs it; it means "no ring"), then one
//            per socket connection: fd, unprocessed input, unwritten output (+ the `-s` reply "OK")
//   WATCH    each connection's watches, path as the client wrote it (relative stays relative)
//   NODE     the special nodes' permissions, then the tree, parents first
//
// Open transactions are not carried (cxenstored's rule: the switch waits for them, -F drops them).
// Nothing here decides when to switch (./controller.ts) or touches the loop.
import { encodeMessage } from "../protocol/codec.ts";
import { MsgType } from "../protocol/wire.ts";
import type { Perms } from "../store/perms.ts";
import type { Node } from "../store/tree.ts";
import type { Watch } from "../watch/trie.ts";
import { nodesToStream } from "../migration/host_state.ts";
import { STREAM_VERSION_1, STREAM_VERSION_2, WATCH_DEPTH_UNLIMITED } from "../migration/format.ts";
import type {
  ConnRecord,
  MigrationStream,
  OpaqueRecord,
  StateRecord,
  WatchRecord,
} from "../migration/records.ts";
import { closeAcrossExec, ExecError, execve, keepAcrossExec, setNonBlocking } from "./exec.ts";

/** The file the state goes to, in the run folder (as cxenstored: $XENSTORED_RUNDIR/state_dump). */
export const STATE_DUMP = "state_dump";

/** A socket connection as the handover sees it (the transport's state and the core's client id). */
export interface HandoverConnection {
  /** The core's connection id (watches are kept under it). */
  readonly clientId: number;
  readonly fd: number;
  readonly input: Uint8Array;
  readonly output: Uint8Array;
  /** Bytes at the start of `output` finishing a message already partly written. */
  readonly partial: number;
}

/** A ring connection as the handover sees it (the ring transport's state). */
export interface HandoverRing {
  readonly clientId: number;
  readonly domid: number;
  readonly target: number | null;
  /** Our end of its event channel. */
  readonly localPort: number;
  /** The partial request taken off the ring. */
  readonly input: Uint8Array;
  /** Queued messages, the first `outputOffset` bytes of the first already in the ring. */
  readonly output: readonly { type: number; reqId: number; txId: number; payload: string }[];
  readonly outputOffset: number;
}

export interface DaemonState {
  readonly listenerFd: number;
  /** The event-channel descriptor handed over with the rings (-1: none). */
  readonly evtchnFd?: number;
  readonly connections: readonly HandoverConnection[];
  /** Rings handed over (dom0's, if served, and the guests'). */
  readonly rings?: readonly HandoverRing[];
  /** dxenstored's own records (./dx_records.ts), after the connections. */
  readonly dxRecords?: readonly OpaqueRecord[];
  watchesOf(clientId: number): readonly Watch[];
  readonly root: Node;
  readonly specialPerms: ReadonlyMap<string, Perms>;
}

/** The reply to the `-s` request, queued as unsent output of the asking connection. */
export interface PendingReply {
  readonly clientId: number;
  readonly reqId: number;
  readonly txId: number;
  readonly text: string;
}

/** conn-id of dom0's ring record: the first, as cxenstored writes it. */
const DOM0_RING_CONN_ID = 1;

/** A watch as its client wrote it: relative watches lose their base again. */
export function watchRecord(connId: number, w: Watch): WatchRecord {
  const path = w.relativeBase !== null && w.path.startsWith(w.relativeBase)
    ? w.path.slice(w.relativeBase.length)
    : w.path;
  return {
    type: "watch",
    connId,
    path,
    token: w.token,
    depth: w.depth === undefined ? null : Math.min(w.depth, WATCH_DEPTH_UNLIMITED - 1),
  };
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/** The daemon's state as a stream. Version 2 only if a watch has a depth (WATCH_EXT). */
export function buildStream(s: DaemonState, reply: PendingReply): MigrationStream {
  const records: StateRecord[] = [{ type: "global", socketFd: s.listenerFd, evtchnFd: s.evtchnFd ?? -1 }];
  let depth = false;
  const watchesOf = (id: number, clientId: number) => {
    for (const w of s.watchesOf(clientId)) {
      const r = watchRecord(id, w);
      if (r.depth !== null) depth = true;
      records.push(r);
    }
  };
  // dom0's ring first (cxenstored needs one: event channel 0 when there is none), then the guests'.
  const rings = [...(s.rings ?? [])].sort((a, b) => a.domid - b.domid);
  if (rings[0]?.domid !== 0) {
    records.push({
      type: "conn",
      connId: DOM0_RING_CONN_ID,
      endpoint: { kind: "ring", domid: 0, targetDomid: null, evtchn: 0 },
      input: new Uint8Array(0),
      output: new Uint8Array(0),
      partialOutput: 0,
    });
  }
  let connId = DOM0_RING_CONN_ID + (rings[0]?.domid !== 0 ? 1 : 0);
  for (const r of rings) {
    const id = connId++;
    const { bytes, partial } = ringOutput(r);
    records.push({
      type: "conn",
      connId: id,
      endpoint: { kind: "ring", domid: r.domid, targetDomid: r.target, evtchn: r.localPort },
      input: r.input,
      output: bytes,
      partialOutput: partial,
    });
    watchesOf(id, r.clientId);
  }
  for (const c of s.connections) {
    const id = connId++;
    const output = c.clientId === reply.clientId
      ? concat(c.output, encodeMessage(MsgType.CONTROL, reply.reqId, reply.txId, reply.text + "\0"))
      : c.output;
    const conn: ConnRecord = {
      type: "conn",
      connId: id,
      endpoint: { kind: "socket", fd: c.fd },
      input: c.input,
      output,
      partialOutput: output.length === 0 ? 0 : c.partial,
    };
    records.push(conn);
    watchesOf(id, c.clientId);
  }
  records.push(...(s.dxRecords ?? []));
  for (const n of nodesToStream(s.root, s.specialPerms)) records.push(n);
  return { version: depth ? STREAM_VERSION_2 : STREAM_VERSION_1, records };
}

/** A ring's unsent output as a CONN record holds it: the rest of a message begun, then whole ones. */
function ringOutput(r: HandoverRing): { bytes: Uint8Array; partial: number } {
  const parts = r.output.map((m) => encodeMessage(m.type, m.reqId, m.txId, m.payload));
  if (parts.length > 0 && r.outputOffset > 0) parts[0] = parts[0].subarray(r.outputOffset);
  const bytes = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    bytes.set(p, at);
    at += p.length;
  }
  return { bytes, partial: r.outputOffset > 0 ? parts[0].length : 0 };
}

/** Write the stream to `<rundir>/state_dump`, mode 0600 (replacing an old one). */
export function writeDump(rundir: string, bytes: Uint8Array): string {
  const path = `${rundir}/${STATE_DUMP}`;
  for (const old of [path, `${path}.fallback`]) {
    try {
      Deno.removeSync(old);
    } catch { /* none */ }
  }
  Deno.writeFileSync(path, bytes, { mode: 0o600, createNew: true });
  return path;
}

/** The new program's argv: [file, our arguments or the -c command line, "-U"] (cxenstored's). */
export function execArgv(file: string, ownArgs: readonly string[], cmdline: string | null): string[] {
  const args = cmdline === null
    ? ownArgs.filter((a) => a !== "-U" && a !== "--live-update")
    : cmdline.split(/[ \t]+/).filter((a) => a !== "");
  return [file, ...args, ...(args.includes("-U") ? [] : ["-U"])];
}

/**
 * Replace this process with the new program, `fds` inherited blocking (as cxenstored's own are).
 * Returns only on failure, after undoing (descriptors close-on-exec and non-blocking again), with the
 * reason; the caller replies and serves on.
 */
export function execKeeping(
  file: string,
  argv: readonly string[],
  env: Readonly<Record<string, string>>,
  fds: readonly number[],
): string {
  try {
    keepAcrossExec(fds);
    setNonBlocking(fds, false);
    execve(file, argv, env);
  } catch (e) {
    try {
      setNonBlocking(fds, true);
      closeAcrossExec(fds);
    } catch { /* a descriptor that went away: its connection closes as usual */ }
    if (e instanceof ExecError) return `${e.message}${errnoName(e.errno)}`;
    return (e as Error).message;
  }
  throw new Error("unreachable: execve returned");
}

function errnoName(n: number): string {
  const names: Record<number, string> = {
    2: "no such file",
    7: "argument list too long",
    8: "not an executable format",
    13: "permission denied",
  };
  return names[n] === undefined ? "" : `: ${names[n]}`;
}
