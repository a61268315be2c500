// The new program's side of a switch (`dxenstored ... -U`): read <rundir>/state_dump whole and
// validate it before anything is adopted (src/migration/reader.ts refuses any bad stream with a
// StreamError and returns nothing), then take over the inherited descriptors: the listening socket
// and every client socket, non-blocking and close-on-exec again, each with its unsent output queued
// and its unprocessed input served first, its watches registered without the initial event (the
// client had it from the old program). The store comes from the stream or, with a persistent
// backend, from the backend after checking that both agree.
import { log } from "../common/log.ts";
import { resolvePath } from "../store/path.ts";
import type { Node } from "../store/tree.ts";
import type { Perms } from "../store/perms.ts";
import type { WatchManager } from "../watch/manager.ts";
import { readStream } from "../migration/reader.ts";
import {
  type HostState,
  hostStateFromStream,
  nodesToStream,
  type StoreImage,
} from "../migration/host_state.ts";
import type { AdoptedRing, RingBacklog } from "../domains/adopt_rings.ts";
import { closeAcrossExec, setNonBlocking } from "./exec.ts";

/** Read and validate a dump. Throws (StreamError, or the file's error) on any problem. */
export function readHandover(path: string): HostState {
  return hostStateFromStream(readStream(Deno.readFileSync(path)), 1);
}

/** Where the adopted connections go: the socket transport (src/transport/socket_server.ts). */
export interface AdoptingTransport<C> {
  adoptListener(fd: number): void;
  adopt(fd: number, input: Uint8Array, output: Uint8Array, partial: number): C;
}

export interface AdoptReport {
  readonly sockets: number;
  readonly watches: number;
  readonly inputBytes: number;
  readonly outputBytes: number;
  /** What could not be adopted, one phrase each (logged). */
  readonly dropped: string[];
}

/** Make an inherited descriptor ours again: non-blocking, closed by a later exec unless kept. */
export function reclaim(fd: number): string | null {
  try {
    setNonBlocking([fd], true);
    closeAcrossExec([fd]);
    return null;
  } catch (e) {
    return (e as Error).message;
  }
}

/** The stream's ring connections (dom0's "no ring" record, event channel 0, is none). */
export function ringsOf(host: HostState): AdoptedRing[] {
  const out: AdoptedRing[] = [];
  for (const c of host.connections) {
    const e = c.endpoint;
    if (e.kind !== "ring" || (e.domid === 0 && e.evtchn === 0)) continue;
    out.push({
      domid: e.domid,
      target: e.targetDomid,
      localPort: e.evtchn,
      input: c.input,
      output: c.output,
      partial: c.partialOutput,
      watches: c.watches,
    });
  }
  return out;
}

/**
 * Adopt the stream's listening socket (false if it has none: the caller listens afresh) and its
 * socket connections with their watches. Rings are the domain registry's (../domains/adopt_rings.ts).
 */
export function adoptConnections<C extends { readonly id: number; readonly base: string }>(
  host: HostState,
  transport: AdoptingTransport<C>,
  watches: WatchManager,
): { listener: boolean; report: AdoptReport } {
  const dropped: string[] = [];
  let listener = false;
  const g = host.global;
  if (g !== null && g.socketFd >= 0) {
    const err = reclaim(g.socketFd);
    if (err === null) {
      transport.adoptListener(g.socketFd);
      listener = true;
    } else dropped.push(`listening socket fd ${g.socketFd} (${err})`);
  }
  let sockets = 0, nWatches = 0, inputBytes = 0, outputBytes = 0;
  for (const c of host.connections) {
    const e = c.endpoint;
    if (e.kind === "ring") continue;
    const err = reclaim(e.fd);
    if (err !== null) {
      dropped.push(`socket fd ${e.fd} (${err})`);
      continue;
    }
    const client = transport.adopt(e.fd, c.input, c.output, c.partialOutput);
    sockets++;
    inputBytes += c.input.length;
    outputBytes += c.output.length;
    if (c.transactions.length > 0) {
      dropped.push(`${c.transactions.length} transaction(s) of socket fd ${e.fd}`);
    }
    for (const w of c.watches) {
      let p: ReturnType<typeof resolvePath>;
      try {
        p = resolvePath(w.path, client.base, true);
      } catch (err) {
        dropped.push(`watch ${w.path.slice(0, 64)} of socket fd ${e.fd} (${(err as Error).message})`);
        continue;
      }
      const added = watches.add({
        owner: client.id,
        path: p.abs,
        token: w.token,
        depth: w.depth === null || w.depth === 0xffff ? undefined : w.depth,
        relativeBase: p.relativeBase,
      });
      if (added) nWatches++;
      else dropped.push(`duplicate watch ${w.path} of socket fd ${e.fd}`);
    }
  }
  return { listener, report: { sockets, watches: nWatches, inputBytes, outputBytes, dropped } };
}

/** One line for the log: what was adopted and what was not. */
export function describeAdoption(
  r: AdoptReport,
  nodes: number,
  store: string,
  rings: { rings: number; watches: number; bufferedBytes: number; backlog?: readonly RingBacklog[] } = {
    rings: 0,
    watches: 0,
    bufferedBytes: 0,
  },
): string {
  const lost = r.dropped.length === 0 ? "nothing dropped" : `dropped: ${r.dropped.join("; ")}`;
  const ringText = rings.rings === 0
    ? ""
    : `${rings.rings} ring(s) with ${rings.watches} watch(es) and ${rings.bufferedBytes} buffered bytes ` +
      `(${describeBacklog(rings.backlog ?? [])}), `;
  return `live update: adopted ${r.sockets} socket connection(s) with ${r.watches} watch(es), ${ringText}` +
    `${r.inputBytes} bytes of unprocessed input and ${r.outputBytes} bytes of unsent output, ` +
    `${nodes} nodes (${store}); ${lost}`;
}

/**
 * What the rings held when mapped again: "in the rings: requests waiting in 1 (domain 3: 35 bytes),
 * replies unread in 0". A request waiting is one a guest sent that no program had answered while the
 * programs changed.
 */
export function describeBacklog(backlog: readonly RingBacklog[]): string {
  const part = (what: string, bytes: (b: RingBacklog) => number) => {
    const held = backlog.filter((b) => bytes(b) > 0);
    const list = held.map((b) => `domain ${b.domid}: ${bytes(b)} bytes`).join(", ");
    return `${what} in ${held.length}${held.length > 0 ? ` (${list})` : ""}`;
  };
  return `in the rings: ${part("requests waiting", (b) => b.requestBytes)}, ` +
    `${part("replies unread", (b) => b.replyBytes)}`;
}

/** The store to serve: the backend's (if it holds exactly the stream's nodes) or the stream's. */
export function chooseStore(
  loaded: { root: Node; gen: number } | null,
  image: StoreImage,
): { root: Node; gen: number; specialPerms: ReadonlyMap<string, Perms>; source: string; rewrite: boolean } {
  if (loaded === null) {
    return {
      root: image.root,
      gen: 1,
      specialPerms: image.specialPerms,
      source: "from the stream",
      rewrite: false,
    };
  }
  const diff = firstDifference(loaded.root, image.root);
  if (diff === null) {
    return {
      root: loaded.root,
      gen: loaded.gen,
      specialPerms: image.specialPerms,
      source: "the backend's, equal to the stream's",
      rewrite: false,
    };
  }
  // The stream is what the clients saw last: it wins, and the backend is rewritten from it.
  log("warn", `live update: the backend differs from the handed-over store (${diff}); using the stream's`);
  return {
    root: image.root,
    gen: loaded.gen + 1,
    specialPerms: image.specialPerms,
    source: "from the stream; the backend differed and is rewritten",
    rewrite: true,
  };
}

/** The first node where two trees differ (path, value, permissions), or null. */
export function firstDifference(a: Node, b: Node): string | null {
  const x = nodesToStream(a, new Map());
  const y = nodesToStream(b, new Map());
  const n = Math.min(x.length, y.length);
  for (let i = 0; i < n; i++) {
    if (x[i].path !== y[i].path) return `node ${x[i].path} against ${y[i].path}`;
    if (x[i].value !== y[i].value) return `value of ${x[i].path}`;
    if (JSON.stringify(x[i].perms) !== JSON.stringify(y[i].perms)) return `permissions of ${x[i].path}`;
  }
  if (x.length !== y.length) return `${x.length} nodes against ${y.length}`;
  return null;
}
