// Stream links: dom0's Unix socket, or a byte device that speaks the same protocol (/dev/xen/xenbus in
// a Linux guest). Runs on Deno (Deno.connect / Deno.open) and on Node (node:net), found at run time,
// so the package depends on neither runtime's type definitions.
import { encodeMessage, Framer, isFrameError } from "../protocol/codec.ts";
import { ConnectionError, ProtocolError } from "./errors.ts";
import type { Connector, Link, LinkHandlers } from "./connection.ts";

/** Where libxenstore looks for the daemon: $XENSTORED_PATH, else $XENSTORED_RUNDIR/socket, else /var/run/xenstored/socket. */
export function defaultSocketPath(env: (name: string) => string | undefined = getEnv): string {
  const path = env("XENSTORED_PATH");
  if (path !== undefined && path !== "") return path;
  const rundir = env("XENSTORED_RUNDIR");
  return `${rundir !== undefined && rundir !== "" ? rundir : "/var/run/xenstored"}/socket`;
}

/** The guest's device (libxenstore's xs_domain_dev): $XENSTORED_PATH, else /dev/xen/xenbus. */
export function defaultDevicePath(env: (name: string) => string | undefined = getEnv): string {
  const path = env("XENSTORED_PATH");
  return path !== undefined && path !== "" ? path : "/dev/xen/xenbus";
}

// --- the runtimes, seen through the few calls used here -------------------------------------------

interface DenoStream {
  read(p: Uint8Array): Promise<number | null>;
  write(p: Uint8Array): Promise<number>;
  close(): void;
}

interface DenoLike {
  connect(o: { transport: "unix"; path: string }): Promise<DenoStream>;
  open(path: string, o: { read: boolean; write: boolean }): Promise<DenoStream>;
  env: { get(name: string): string | undefined };
}

interface NodeSocket {
  on(ev: "data", f: (b: Uint8Array) => void): unknown;
  on(ev: "close", f: () => void): unknown;
  on(ev: "error", f: (e: Error) => void): unknown;
  once(ev: "connect", f: () => void): unknown;
  once(ev: "error", f: (e: Error) => void): unknown;
  removeAllListeners(ev: string): unknown;
  write(b: Uint8Array): boolean;
  destroy(): void;
}

interface NodeNet {
  createConnection(o: { path: string }): NodeSocket;
}

const g = globalThis as unknown as { Deno?: DenoLike; process?: { env: Record<string, string | undefined> } };

function getEnv(name: string): string | undefined {
  if (g.Deno !== undefined) {
    try {
      return g.Deno.env.get(name);
    } catch {
      return undefined; // no --allow-env: as if unset
    }
  }
  return g.process?.env[name];
}

// --- the link ----------------------------------------------------------------------------------------

const READ_CHUNK = 65536;
/**
 * Replies longer than XENSTORE_PAYLOAD_MAX are accepted up to this: oxenstored 4.17 sends them (a
 * DIRECTORY of more than 4 KiB of names). Anything longer is taken for a broken stream.
 */
const MAX_REPLY_PAYLOAD = 65536;

/** Frames in both directions over a byte stream; the runtime part is three callbacks. */
class StreamLink implements Link {
  private readonly framer = new Framer(MAX_REPLY_PAYLOAD);
  private out: Uint8Array[] = [];
  private closed = false;

  constructor(
    private readonly h: LinkHandlers,
    private readonly writeBytes: (b: Uint8Array) => void,
    private readonly closeStream: () => void,
    /** Linux's xenbus device takes one message per write() and drops what follows it. */
    private readonly onePerWrite = false,
  ) {}

  send(type: number, reqId: number, txId: number, payload: string): void {
    if (this.closed) return;
    this.out.push(encodeMessage(type, reqId, txId, payload));
  }

  flush(): void {
    if (this.closed || this.out.length === 0) return;
    const parts = this.out;
    this.out = [];
    if (this.onePerWrite) { for (const p of parts) this.writeBytes(p); }
    else this.writeBytes(parts.length === 1 ? parts[0] : concat(parts));
  }

  demand(_on: boolean): void {}

  /** Bytes from the stream (partial or coalesced messages). */
  data(chunk: Uint8Array): void {
    if (this.closed) return;
    this.framer.feed(chunk);
    for (;;) {
      const m = this.framer.next();
      if (m === null) break;
      if (isFrameError(m)) {
        this.fail(
          new ProtocolError(`the daemon sent a message of ${m.len} bytes (limit ${MAX_REPLY_PAYLOAD})`),
        );
        return;
      }
      this.h.message(m);
      if (this.closed) return;
    }
    this.framer.release();
  }

  fail(e: Error | null): void {
    if (this.closed) return;
    this.closed = true;
    try {
      this.closeStream();
    } catch { /* already closed */ }
    this.h.closed(e);
  }

  close(): void {
    this.fail(null);
  }
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/** A Deno stream (socket or device file): one read loop, writes chained so they keep their order. */
function denoLink(s: DenoStream, h: LinkHandlers, onePerWrite = false): Link {
  let writing: Promise<void> = Promise.resolve();
  const writeAll = async (b: Uint8Array) => {
    let off = 0;
    while (off < b.length) off += await s.write(b.subarray(off));
  };
  const link: StreamLink = new StreamLink(
    h,
    (b) => {
      writing = writing.then(() => writeAll(b)).catch((e) => link.fail(asError(e)));
    },
    () => s.close(),
    onePerWrite,
  );
  (async () => {
    const buf = new Uint8Array(READ_CHUNK);
    try {
      for (;;) {
        const n = await s.read(buf);
        if (n === null) {
          link.fail(new ConnectionError("the daemon closed the connection"));
          return;
        }
        link.data(buf.subarray(0, n));
      }
    } catch (e) {
      link.fail(asError(e));
    }
  })();
  return link;
}

function nodeLink(sock: NodeSocket, h: LinkHandlers): Link {
  const link = new StreamLink(h, (b) => void sock.write(b), () => sock.destroy());
  // Node hands out a fresh Buffer per event, so the framer may keep referring to it.
  sock.on("data", (b) => link.data(b));
  sock.on("error", (e) => link.fail(e));
  sock.on("close", () => link.fail(new ConnectionError("the daemon closed the connection")));
  return link;
}

function asError(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e));
}

/** A busy daemon's listen queue may be full (connect answers EAGAIN): try again this often, this long. */
const CONNECT_RETRY_MS = 10;
const CONNECT_PATIENCE_MS = 2000;

function wouldBlock(e: unknown): boolean {
  const x = e as { name?: string; code?: string };
  return x?.name === "WouldBlock" || x?.code === "EAGAIN";
}

/** A connector to a Unix socket (dom0's xenstored). */
export function socketConnector(path: string): Connector {
  return async (h) => {
    const deadline = Date.now() + CONNECT_PATIENCE_MS;
    for (;;) {
      try {
        return await connectOnce(path, h);
      } catch (e) {
        if (!wouldBlock(e) || Date.now() > deadline) {
          throw new ConnectionError(`cannot connect to xenstored at ${path}: ${asError(e).message}`, false, {
            cause: e,
          });
        }
        await new Promise((r) => setTimeout(r, CONNECT_RETRY_MS));
      }
    }
  };
}

async function connectOnce(path: string, h: LinkHandlers): Promise<Link> {
  if (g.Deno !== undefined) return denoLink(await g.Deno.connect({ transport: "unix", path }), h);
  const spec = "node:net";
  const net = (await import(spec)) as NodeNet;
  const sock = net.createConnection({ path });
  await new Promise<void>((resolve, reject) => {
    sock.once("connect", resolve);
    sock.once("error", reject);
  });
  sock.removeAllListeners("error");
  return nodeLink(sock, h);
}

/** A connector to a character device speaking the socket protocol (a guest's /dev/xen/xenbus). Deno only. */
export function deviceConnector(path: string): Connector {
  return async (h) => {
    if (g.Deno === undefined) throw new ConnectionError("the xenbus device is only supported on Deno");
    let s: DenoStream;
    try {
      s = await g.Deno.open(path, { read: true, write: true });
    } catch (e) {
      throw new ConnectionError(`cannot open ${path}: ${asError(e).message}`, false, { cause: e });
    }
    return denoLink(s, h, true);
  };
}
