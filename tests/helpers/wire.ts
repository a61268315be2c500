/**
 * A tiny raw XenStore wire client for end-to-end tests. Deliberately independent of src/protocol (its
 * own header encoding and type numbers, copied from Xen's xs_wire.h), so it can serve as an oracle.
 * Payloads are Latin-1 strings (one char per byte) or raw bytes.
 */

/** Message type numbers from xs_wire.h. */
export const XS = {
  CONTROL: 0,
  DIRECTORY: 1,
  READ: 2,
  GET_PERMS: 3,
  WATCH: 4,
  UNWATCH: 5,
  TRANSACTION_START: 6,
  TRANSACTION_END: 7,
  INTRODUCE: 8,
  RELEASE: 9,
  GET_DOMAIN_PATH: 10,
  WRITE: 11,
  MKDIR: 12,
  RM: 13,
  SET_PERMS: 14,
  WATCH_EVENT: 15,
  ERROR: 16,
  IS_DOMAIN_INTRODUCED: 17,
  RESUME: 18,
  SET_TARGET: 19,
  RESET_WATCHES: 21,
  DIRECTORY_PART: 22,
} as const;

export const HEADER = 16;

export interface Reply {
  readonly type: number;
  readonly reqId: number;
  readonly txId: number;
  /** Latin-1 string, byte i = charCode i. */
  readonly payload: string;
}

export class WireTimeout extends Error {
  override name = "WireTimeout";
}

/** Bytes of a Latin-1 string (chars > 0xff are a test bug). */
export function latin1Bytes(s: string): Uint8Array {
  const b = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 0xff) throw new Error(`latin1Bytes: char ${c} at ${i} is not a byte`);
    b[i] = c;
  }
  return b;
}

export function latin1String(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < b.length; i += 8192) {
    s += String.fromCharCode(...b.subarray(i, Math.min(b.length, i + 8192)));
  }
  return s;
}

/** A raw header; `len` is taken from the payload unless given (to forge lying headers). */
export function header(type: number, reqId: number, txId: number, len: number): Uint8Array {
  const h = new Uint8Array(HEADER);
  const dv = new DataView(h.buffer);
  dv.setUint32(0, type >>> 0, true);
  dv.setUint32(4, reqId >>> 0, true);
  dv.setUint32(8, txId >>> 0, true);
  dv.setUint32(12, len >>> 0, true);
  return h;
}

/** Header + payload as one buffer. */
export function frame(type: number, reqId: number, txId: number, payload: string | Uint8Array): Uint8Array {
  const p = typeof payload === "string" ? latin1Bytes(payload) : payload;
  const out = new Uint8Array(HEADER + p.length);
  out.set(header(type, reqId, txId, p.length), 0);
  out.set(p, HEADER);
  return out;
}

export function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/**
 * Split a payload of NUL-terminated strings: "a\0b\0" → ["a", "b"]; "" → []. A missing final NUL keeps
 * the tail as the last element ("a\0b" → ["a", "b"]), so callers can assert on exact framing separately.
 */
export function splitNul(payload: string): string[] {
  if (payload === "") return [];
  const parts = payload.split("\0");
  if (parts[parts.length - 1] === "") parts.pop();
  return parts;
}

/** "a", "b" → "a\0b\0" */
export function joinNul(...args: string[]): string {
  return args.map((a) => a + "\0").join("");
}

export class WireClient {
  private buf = new Uint8Array(0);
  private nextReq = 1;
  private closed = false;

  private constructor(readonly conn: Deno.UnixConn) {}

  static async connect(path: string): Promise<WireClient> {
    return new WireClient(await Deno.connect({ transport: "unix", path }));
  }

  /** Write raw bytes (all of them). */
  async writeRaw(bytes: Uint8Array): Promise<void> {
    let off = 0;
    while (off < bytes.length) off += await this.conn.write(bytes.subarray(off));
  }

  /** Send one message; returns its req_id (auto-numbered unless given). */
  async send(
    type: number,
    payload: string | Uint8Array,
    opts: { reqId?: number; txId?: number } = {},
  ): Promise<number> {
    const reqId = opts.reqId ?? this.nextReq++;
    await this.writeRaw(frame(type, reqId, opts.txId ?? 0, payload));
    return reqId;
  }

  /**
   * Read exactly one message (header + payload), however the bytes arrive. Throws WireTimeout after
   * `timeoutMs` (and closes the connection, so no read is left pending), or an Error on EOF.
   */
  async recv(timeoutMs = 5000): Promise<Reply> {
    await this.fill(HEADER, timeoutMs);
    const dv = new DataView(this.buf.buffer, this.buf.byteOffset, HEADER);
    const len = dv.getUint32(12, true);
    await this.fill(HEADER + len, timeoutMs);
    const reply: Reply = {
      type: dv.getUint32(0, true),
      reqId: dv.getUint32(4, true),
      txId: dv.getUint32(8, true),
      payload: latin1String(this.buf.subarray(HEADER, HEADER + len)),
    };
    this.buf = this.buf.slice(HEADER + len);
    return reply;
  }

  /** Send a request and read its reply; checks the reply echoes the req_id. */
  async request(
    type: number,
    payload: string | Uint8Array,
    opts: { txId?: number; timeoutMs?: number } = {},
  ): Promise<Reply> {
    const reqId = await this.send(type, payload, opts);
    const r = await this.recv(opts.timeoutMs);
    if (r.reqId !== reqId) throw new Error(`reply req_id ${r.reqId} does not echo request ${reqId}`);
    return r;
  }

  /**
   * Resolves to "eof" if the peer closed the connection (EOF or reset) without sending anything more,
   * or throws if a message arrives or nothing happens within `timeoutMs`.
   */
  async expectClosed(timeoutMs = 5000): Promise<"eof"> {
    try {
      const r = await this.recv(timeoutMs);
      throw new Error(
        `expected the connection to be closed, got message type ${r.type} ${JSON.stringify(r.payload)}`,
      );
    } catch (e) {
      if (e instanceof EofError) return "eof";
      if (e instanceof Deno.errors.ConnectionReset || e instanceof Deno.errors.BrokenPipe) return "eof";
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

  [Symbol.dispose](): void {
    this.close();
  }

  private async fill(n: number, timeoutMs: number): Promise<void> {
    if (this.buf.length >= n) return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let timedOut = false;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        timedOut = true;
        // Closing the connection makes the pending read settle: no leaked op.
        this.close();
        reject(
          new WireTimeout(`no complete message within ${timeoutMs} ms (have ${this.buf.length}/${n} bytes)`),
        );
      }, timeoutMs);
    });
    try {
      while (this.buf.length < n) {
        const chunk = new Uint8Array(65536);
        const read = this.conn.read(chunk).catch((e) => {
          if (timedOut) return null;
          throw e;
        });
        const got = await Promise.race([read, timeout]);
        if (got === null) {
          if (timedOut) await timeout;
          throw new EofError(`EOF after ${this.buf.length}/${n} bytes`);
        }
        const nb = new Uint8Array(this.buf.length + got);
        nb.set(this.buf);
        nb.set(chunk.subarray(0, got), this.buf.length);
        this.buf = nb;
      }
    } finally {
      clearTimeout(timer);
    }
  }
}

export class EofError extends Error {
  override name = "EofError";
}

/** The text of an ERROR reply ("EINVAL"), or null if `r` is not an error. */
export function errnoOf(r: Reply): string | null {
  return r.type === XS.ERROR ? r.payload.replace(/\0$/, "") : null;
}
