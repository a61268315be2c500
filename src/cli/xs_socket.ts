// A small XenStore socket client for `dxenstored export|import --socket`: it reads a whole store from
// (or writes one into) any running xenstored — Xen's C and OCaml daemons or dxenstored — over the
// Unix socket protocol. Requests are pipelined in batches (the daemons answer a connection's requests
// in order), so reading 100 000 nodes takes seconds, not minutes.
import { latin1 } from "../common/latin1.ts";
import { HEADER_SIZE, MsgType, PAYLOAD_MAX } from "../protocol/wire.ts";
import { type ExportNode, sortDepthFirst } from "../backend/export.ts";

export interface XsRequest {
  readonly type: MsgType;
  readonly payload: string;
}

export interface XsReply {
  readonly type: number;
  /** Payload as a Latin-1 string (one char per byte). */
  readonly payload: string;
}

/** An ERROR reply (errno name, e.g. "EACCES"). */
export class XsReplyError extends Error {
  override name = "XsReplyError";
  constructor(readonly errno: string, what: string) {
    super(`${what}: ${errno}`);
  }
}

const BATCH = 128;

export class XsSocket {
  private buf = new Uint8Array(0);
  private reqId = 1;
  txId = 0;

  private constructor(private readonly conn: Deno.UnixConn) {}

  static async connect(path: string): Promise<XsSocket> {
    return new XsSocket(await Deno.connect({ transport: "unix", path }));
  }

  close(): void {
    try {
      this.conn.close();
    } catch { /* already closed */ }
  }

  private encode(r: XsRequest): Uint8Array {
    if (r.payload.length > PAYLOAD_MAX) throw new Error(`request payload of ${r.payload.length} bytes`);
    const b = new Uint8Array(HEADER_SIZE + r.payload.length);
    const dv = new DataView(b.buffer);
    dv.setUint32(0, r.type, true);
    dv.setUint32(4, this.reqId++, true);
    dv.setUint32(8, this.txId, true);
    dv.setUint32(12, r.payload.length, true);
    for (let i = 0; i < r.payload.length; i++) b[HEADER_SIZE + i] = r.payload.charCodeAt(i);
    return b;
  }

  private async fill(n: number): Promise<void> {
    while (this.buf.length < n) {
      const chunk = new Uint8Array(65536);
      const got = await this.conn.read(chunk);
      if (got === null) throw new Error("the daemon closed the connection");
      const nb = new Uint8Array(this.buf.length + got);
      nb.set(this.buf);
      nb.set(chunk.subarray(0, got), this.buf.length);
      this.buf = nb;
    }
  }

  private async readReply(): Promise<XsReply> {
    for (;;) {
      await this.fill(HEADER_SIZE);
      const dv = new DataView(this.buf.buffer, this.buf.byteOffset, HEADER_SIZE);
      const type = dv.getUint32(0, true);
      const len = dv.getUint32(12, true);
      if (len > PAYLOAD_MAX) throw new Error(`reply payload of ${len} bytes`);
      await this.fill(HEADER_SIZE + len);
      const payload = latin1(this.buf.subarray(HEADER_SIZE, HEADER_SIZE + len));
      this.buf = this.buf.slice(HEADER_SIZE + len);
      if (type === MsgType.WATCH_EVENT) continue; // not ours (no watches are set)
      return { type, payload };
    }
  }

  /** Send requests in batches and return the replies in order (errors included, not thrown). */
  async batch(reqs: readonly XsRequest[]): Promise<XsReply[]> {
    const out: XsReply[] = [];
    for (let i = 0; i < reqs.length; i += BATCH) {
      const part = reqs.slice(i, i + BATCH).map((r) => this.encode(r));
      const all = new Uint8Array(part.reduce((a, b) => a + b.length, 0));
      let o = 0;
      for (const p of part) {
        all.set(p, o);
        o += p.length;
      }
      for (let w = 0; w < all.length;) w += await this.conn.write(all.subarray(w));
      for (let k = 0; k < part.length; k++) out.push(await this.readReply());
    }
    return out;
  }

  async request(type: MsgType, payload: string): Promise<string> {
    const [r] = await this.batch([{ type, payload }]);
    if (r.type === MsgType.ERROR) throw new XsReplyError(r.payload.replace(/\0$/, ""), `${MsgType[type]}`);
    return r.payload;
  }
}

const strip = (s: string) => (s.endsWith("\0") ? s.slice(0, -1) : s);
const list = (s: string) => (s === "" ? [] : strip(s).split("\0"));
const join = (p: string, n: string) => (p === "/" ? `/${n}` : `${p}/${n}`);

/** DIRECTORY_PART (Xen ≥ 4.14) for a directory too big for one DIRECTORY reply. */
async function directoryParts(s: XsSocket, path: string): Promise<string[]> {
  const names: string[] = [];
  let gen: string | null = null;
  let offset = 0;
  for (;;) {
    const r = await s.request(MsgType.DIRECTORY_PART, `${path}\0${offset}\0`);
    const nul = r.indexOf("\0");
    const g = r.slice(0, nul);
    if (gen !== null && g !== gen) throw new Error(`${path} changed while it was listed`);
    gen = g;
    const rest = r.slice(nul + 1);
    if (rest === "\0" || rest === "") return names; // an empty string ends the list
    const part = rest.endsWith("\0\0") ? rest.slice(0, -2) : strip(rest);
    for (const n of part.split("\0")) if (n !== "") names.push(n);
    offset += part.length + 1;
    if (rest.endsWith("\0\0")) return names;
  }
}

/**
 * Read every node (value, permissions) of a running daemon, parents first, inside one transaction so
 * the copy is consistent. Node generations are not visible over the socket.
 */
export async function readHostStore(socketPath: string): Promise<ExportNode[]> {
  const s = await XsSocket.connect(socketPath);
  try {
    s.txId = Number(strip(await s.request(MsgType.TRANSACTION_START, "\0")));
    const out: ExportNode[] = [];
    let frontier = ["/"];
    while (frontier.length > 0) {
      const next: string[] = [];
      for (let i = 0; i < frontier.length; i += BATCH) {
        const paths = frontier.slice(i, i + BATCH);
        const reqs: XsRequest[] = [];
        for (const p of paths) {
          reqs.push({ type: MsgType.READ, payload: `${p}\0` });
          reqs.push({ type: MsgType.GET_PERMS, payload: `${p}\0` });
          reqs.push({ type: MsgType.DIRECTORY, payload: `${p}\0` });
        }
        const reps = await s.batch(reqs);
        for (let k = 0; k < paths.length; k++) {
          const [v, pe, d] = reps.slice(3 * k, 3 * k + 3);
          const p = paths[k];
          // A node removed since its parent was listed: skip it (the transaction normally prevents it).
          if (v.type === MsgType.ERROR && strip(v.payload) === "ENOENT") continue;
          for (const [r, what] of [[v, "READ"], [pe, "GET_PERMS"]] as const) {
            if (r.type === MsgType.ERROR) throw new XsReplyError(strip(r.payload), `${what} ${p}`);
          }
          let names: string[];
          if (d.type === MsgType.ERROR) {
            if (strip(d.payload) !== "E2BIG") throw new XsReplyError(strip(d.payload), `DIRECTORY ${p}`);
            names = await directoryParts(s, p);
          } else names = list(d.payload);
          out.push({ path: p, value: v.payload, perms: list(pe.payload) });
          for (const n of names.sort()) next.push(join(p, n));
        }
      }
      frontier = next;
    }
    sortDepthFirst(out);
    await s.batch([{ type: MsgType.TRANSACTION_END, payload: "F\0" }]);
    return out;
  } finally {
    s.close();
  }
}

/**
 * Write nodes into a running daemon (parents first): WRITE of the value, then SET_PERMS. Existing
 * nodes are overwritten, others left alone. In batches of plain requests, not one transaction: a
 * big store would exceed the daemons' per-transaction limits.
 */
export async function writeHostStore(socketPath: string, nodes: readonly ExportNode[]): Promise<number> {
  const s = await XsSocket.connect(socketPath);
  try {
    const reqs: XsRequest[] = [];
    for (const n of nodes) {
      if (n.path !== "/") reqs.push({ type: MsgType.WRITE, payload: `${n.path}\0${n.value}` });
      reqs.push({ type: MsgType.SET_PERMS, payload: `${n.path}\0${n.perms.map((p) => p + "\0").join("")}` });
    }
    const reps = await s.batch(reqs);
    for (let i = 0; i < reps.length; i++) {
      if (reps[i].type === MsgType.ERROR) {
        throw new XsReplyError(
          strip(reps[i].payload),
          `${MsgType[reqs[i].type]} ${reqs[i].payload.split("\0")[0]}`,
        );
      }
    }
    return nodes.length;
  } finally {
    s.close();
  }
}
