// A raw XenStore connection over a Unix socket, for the conformance suite. It encodes with the
// project's wire codec (pure data: no daemon code runs here) but decodes on its own, tolerantly: a
// daemon under test may send a packet over the 4096-byte limit, and the suite must see it, not choke.
// Every message received is screened for the protocol's global rules (payload size, error names,
// watch event headers); what breaks them is recorded in `Violations`, which the runner reports
// against the requirement concerned even when the check that provoked it was about something else.
import { encodeMessage } from "../../src/protocol/codec.ts";
import { ERRNO_NAMES, HEADER_SIZE, MsgType, PAYLOAD_MAX } from "../../src/protocol/wire.ts";
import { latin1 } from "../../src/common/latin1.ts";

export { MsgType as XS, PAYLOAD_MAX };

export interface Packet {
  readonly type: number;
  readonly reqId: number;
  readonly txId: number;
  /** Latin-1: byte i is char code i. */
  readonly payload: string;
}

/** Where a received packet broke a rule that holds for every packet (requirement id → details). */
export class Violations {
  readonly seen = new Map<string, string[]>();
  /** The check running now, named in every violation recorded. */
  current = "";

  record(req: string, what: string): void {
    const list = this.seen.get(req) ?? [];
    if (list.length < 5) list.push(`${what} (during ${this.current})`);
    this.seen.set(req, list);
  }
}

/** No message arrived in time. */
export class Timeout extends Error {
  override name = "Timeout";
}

/** The daemon closed the connection. */
export class Closed extends Error {
  override name = "Closed";
}

const ERRNOS: ReadonlySet<string> = new Set(ERRNO_NAMES);
/** A decoder reading a runaway length must stop somewhere: far above any legal packet. */
const READ_CAP = 1 << 20;

export function bytes(s: string): Uint8Array {
  const b = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) b[i] = s.charCodeAt(i);
  return b;
}

/** "a\0b\0" → ["a", "b"]; "" → []. */
export function splitNul(p: string): string[] {
  if (p === "") return [];
  const parts = p.split("\0");
  if (parts[parts.length - 1] === "") parts.pop();
  return parts;
}

/** "a", "b" → "a\0b\0" */
export function nul(...args: string[]): string {
  return args.map((a) => a + "\0").join("");
}

export function header(type: number, reqId: number, txId: number, len: number): Uint8Array {
  const h = new Uint8Array(HEADER_SIZE);
  const dv = new DataView(h.buffer);
  dv.setUint32(0, type >>> 0, true);
  dv.setUint32(4, reqId >>> 0, true);
  dv.setUint32(8, txId >>> 0, true);
  dv.setUint32(12, len >>> 0, true);
  return h;
}

export class Conn {
  private buf = new Uint8Array(0);
  private nextReqId = 1;
  private closed = false;
  /** EOF seen: no more bytes will come. */
  private eof = false;
  private pendingRead: Promise<number | null> | null = null;
  private readonly chunk = new Uint8Array(65536);
  /** Watch events that arrived while a reply was awaited (oldest first). */
  readonly events: Array<{ path: string; token: string }> = [];

  private constructor(private readonly conn: Deno.UnixConn, private readonly violations: Violations) {}

  static async open(socket: string, violations: Violations): Promise<Conn> {
    // EAGAIN on connect is a full listen queue: transient, so wait a little rather than fail a check.
    for (let attempt = 0;; attempt++) {
      try {
        return new Conn(await Deno.connect({ transport: "unix", path: socket }), violations);
      } catch (e) {
        if (!(e instanceof Deno.errors.WouldBlock) || attempt >= 100) throw e;
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  }

  async writeRaw(b: Uint8Array): Promise<void> {
    let off = 0;
    while (off < b.length) off += await this.conn.write(b.subarray(off));
  }

  /** Send one request; returns its req_id. */
  async send(type: number, payload: string, opts: { txId?: number; reqId?: number } = {}): Promise<number> {
    const reqId = opts.reqId ?? this.nextReqId++;
    await this.writeRaw(encodeMessage(type, reqId, opts.txId ?? 0, payload));
    return reqId;
  }

  /** The next packet of any kind. */
  async recv(timeoutMs = 5000): Promise<Packet> {
    const deadline = Date.now() + timeoutMs;
    await this.fill(HEADER_SIZE, deadline);
    const dv = new DataView(this.buf.buffer, this.buf.byteOffset, HEADER_SIZE);
    const type = dv.getUint32(0, true), reqId = dv.getUint32(4, true), txId = dv.getUint32(8, true);
    const len = dv.getUint32(12, true);
    if (len > READ_CAP) throw new Error(`the daemon announced a ${len}-byte payload`);
    await this.fill(HEADER_SIZE + len, deadline);
    const p: Packet = { type, reqId, txId, payload: latin1(this.buf, HEADER_SIZE, HEADER_SIZE + len) };
    this.buf = this.buf.slice(HEADER_SIZE + len);
    this.screen(p);
    return p;
  }

  /** The reply to `reqId`; watch events that come first are queued in `events`. */
  async reply(reqId: number, timeoutMs = 5000): Promise<Packet> {
    for (;;) {
      const p = await this.recv(timeoutMs);
      if (p.type === MsgType.WATCH_EVENT) {
        const [path, token] = splitNul(p.payload);
        this.events.push({ path, token: token ?? "" });
        continue;
      }
      if (p.reqId !== reqId) {
        throw new Error(`a reply with req_id ${p.reqId} arrived while waiting for ${reqId}`);
      }
      return p;
    }
  }

  async request(type: number, payload: string, txId = 0): Promise<Packet> {
    return await this.reply(await this.send(type, payload, { txId }));
  }

  /** Send every request in one write, then read their replies (in order, as FRAME-7 requires). */
  async pipeline(reqs: ReadonlyArray<readonly [number, string, number?]>): Promise<Packet[]> {
    const ids: number[] = [];
    const parts: Uint8Array[] = [];
    for (const [type, payload, txId] of reqs) {
      const reqId = this.nextReqId++;
      ids.push(reqId);
      parts.push(encodeMessage(type, reqId, txId ?? 0, payload));
    }
    const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let off = 0;
    for (const p of parts) {
      all.set(p, off);
      off += p.length;
    }
    await this.writeRaw(all);
    const out: Packet[] = [];
    for (const id of ids) out.push(await this.reply(id, 10_000));
    return out;
  }

  /** The next watch event (queued ones first). */
  async event(timeoutMs = 5000): Promise<{ path: string; token: string }> {
    const q = this.events.shift();
    if (q !== undefined) return q;
    const p = await this.recv(timeoutMs);
    if (p.type !== MsgType.WATCH_EVENT) {
      throw new Error(`expected a watch event, got type ${p.type} ${JSON.stringify(p.payload.slice(0, 80))}`);
    }
    const [path, token] = splitNul(p.payload);
    return { path, token: token ?? "" };
  }

  /** True if the daemon closes the connection within `timeoutMs` (anything it sends first is skipped). */
  async closedWithin(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    try {
      for (;;) await this.recv(Math.max(1, deadline - Date.now()));
    } catch (e) {
      if (e instanceof Closed) return true;
      if (e instanceof Timeout) return false;
      throw e;
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    try {
      this.conn.close();
    } catch { /* already closed */ }
  }

  private screen(p: Packet): void {
    const v = this.violations;
    if (p.payload.length > PAYLOAD_MAX) {
      v.record("FRAME-5", `type ${p.type} packet with a ${p.payload.length}-byte payload`);
    }
    if (p.type === MsgType.ERROR) {
      const name = p.payload.endsWith("\0") ? p.payload.slice(0, -1) : null;
      if (name === null || !ERRNOS.has(name)) v.record("ERR-1", `ERROR payload ${JSON.stringify(p.payload)}`);
    }
    if (p.type === MsgType.WATCH_EVENT) {
      if (p.reqId !== 0 || p.txId !== 0) {
        v.record("WATCH-9", `WATCH_EVENT with req_id ${p.reqId} tx_id ${p.txId}`);
      }
      if (!p.payload.endsWith("\0") || splitNul(p.payload).length !== 2) {
        v.record("WATCH-9", `WATCH_EVENT payload ${JSON.stringify(p.payload.slice(0, 80))}`);
      }
    }
  }

  private async fill(n: number, deadline: number): Promise<void> {
    while (this.buf.length < n) {
      if (this.eof) throw new Closed("the daemon closed the connection");
      const left = deadline - Date.now();
      if (left <= 0) throw new Timeout(`no complete message (have ${this.buf.length}/${n} bytes)`);
      // One read stays pending across calls, so a timeout never loses bytes.
      this.pendingRead ??= this.conn.read(this.chunk).catch((e) => {
        if (e instanceof Deno.errors.ConnectionReset || e instanceof Deno.errors.BadResource) return null;
        throw e;
      });
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timeout = new Promise<"timeout">((r) => timer = setTimeout(r, left, "timeout"));
      const got = await Promise.race([this.pendingRead, timeout]);
      clearTimeout(timer);
      if (got === "timeout") continue;
      this.pendingRead = null;
      if (got === null) {
        this.eof = true;
        continue;
      }
      const nb = new Uint8Array(this.buf.length + got);
      nb.set(this.buf);
      nb.set(this.chunk.subarray(0, got), this.buf.length);
      this.buf = nb;
    }
  }
}
