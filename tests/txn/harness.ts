/**
 * Drive the daemon core directly (no sockets): every request is handled synchronously, so a request's
 * reply is available as soon as `message()` returns. Shared by the transaction tests.
 *
 *   const h = new Harness();
 *   const a = h.conn("a");
 *   const t = a.start();
 *   a.write("/x", "1", t);
 *   a.commit(t);            // "OK" or the errno ("EAGAIN")
 */
import { Client, type ReplySink } from "../../src/dispatch/client.ts";
import { Core } from "../../src/dispatch/core.ts";
import { type ConnectionLimits, DEFAULT_CONNECTION_LIMITS } from "../../src/quota/limits.ts";
import { LegacyPolicy } from "../../src/policy/legacy.ts";
import { MsgType } from "../../src/protocol/wire.ts";
import type { TxLimits } from "../../src/txn/registry.ts";

export interface Reply {
  readonly type: number;
  readonly reqId: number;
  readonly txId: number;
  readonly payload: string;
}

/** The reply as a short string: the payload without its final NUL, or "E:<errno>" for an error. */
export function brief(r: Reply): string {
  if (r.type === MsgType.ERROR) return `E:${r.payload.replace(/\0$/, "")}`;
  return r.payload.replace(/\0$/, "");
}

export class Conn {
  readonly replies: Reply[] = [];
  /** WATCH_EVENT payloads as [path, token]. */
  readonly events: Array<[string, string]> = [];
  private nextReq = 1;
  client!: Client;

  constructor(private readonly core: Core) {}

  readonly sink: ReplySink = {
    send: (type, reqId, txId, payload) => {
      if (type === MsgType.WATCH_EVENT) {
        const [p, t] = payload.split("\0");
        this.events.push([p, t]);
      } else {
        this.replies.push({ type, reqId, txId, payload });
      }
      return true;
    },
  };

  /** Send one request; returns its reply. */
  req(type: number, payload: string, txId = 0): Reply {
    const reqId = this.nextReq++;
    const before = this.replies.length;
    this.core.message(this.client, { type, reqId, txId, payload });
    if (this.replies.length !== before + 1) throw new Error(`expected exactly one reply to type ${type}`);
    const r = this.replies[before];
    if (r.reqId !== reqId) throw new Error(`reply req_id ${r.reqId} != ${reqId}`);
    if (r.txId !== txId) throw new Error(`reply tx_id ${r.txId} != ${txId}`);
    return r;
  }

  read(path: string, tx = 0): string {
    return brief(this.req(MsgType.READ, `${path}\0`, tx));
  }
  write(path: string, value: string, tx = 0): string {
    return brief(this.req(MsgType.WRITE, `${path}\0${value}`, tx));
  }
  mkdir(path: string, tx = 0): string {
    return brief(this.req(MsgType.MKDIR, `${path}\0`, tx));
  }
  rm(path: string, tx = 0): string {
    return brief(this.req(MsgType.RM, `${path}\0`, tx));
  }
  /** DIRECTORY: the names joined with "," (or "E:<errno>"). */
  dir(path: string, tx = 0): string {
    const r = this.req(MsgType.DIRECTORY, `${path}\0`, tx);
    if (r.type === MsgType.ERROR) return brief(r);
    return r.payload.split("\0").filter((s) => s !== "").join(",");
  }
  /** DIRECTORY_PART from offset 0: the names joined with "," (generation dropped), or "E:<errno>". */
  dirPart(path: string, tx = 0): string {
    const r = this.req(MsgType.DIRECTORY_PART, `${path}\x000\x00`, tx);
    if (r.type === MsgType.ERROR) return brief(r);
    return r.payload.split("\0").slice(1).filter((s) => s !== "").join(",");
  }
  /** GET_PERMS: the entries joined with "," (or "E:<errno>"). */
  getPerms(path: string, tx = 0): string {
    const r = this.req(MsgType.GET_PERMS, `${path}\0`, tx);
    if (r.type === MsgType.ERROR) return brief(r);
    return r.payload.split("\0").filter((s) => s !== "").join(",");
  }
  /** SET_PERMS with entries given as "n0,r5". */
  setPerms(path: string, perms: string, tx = 0): string {
    return brief(this.req(MsgType.SET_PERMS, `${path}\0${perms.split(",").join("\0")}\0`, tx));
  }
  watch(path: string, token: string): string {
    return brief(this.req(MsgType.WATCH, `${path}\0${token}\0`));
  }
  /** TRANSACTION_START (nested inside `parent` if non-zero); returns the id, throws on error. */
  start(parent = 0): number {
    const r = this.req(MsgType.TRANSACTION_START, "\0", parent);
    if (r.type === MsgType.ERROR) throw new Error(`TRANSACTION_START failed: ${brief(r)}`);
    return Number(brief(r));
  }
  /** TRANSACTION_START returning the raw brief reply ("17" or "E:ENOSPC"). */
  tryStart(parent = 0): string {
    return brief(this.req(MsgType.TRANSACTION_START, "\0", parent));
  }
  /** TRANSACTION_END T: "OK" or the errno. */
  commit(tx: number): string {
    return brief(this.req(MsgType.TRANSACTION_END, "T\0", tx)).replace(/^E:/, "");
  }
  /** TRANSACTION_END F: "OK" or the errno. */
  abort(tx: number): string {
    return brief(this.req(MsgType.TRANSACTION_END, "F\0", tx)).replace(/^E:/, "");
  }
}

export interface HarnessOptions {
  readonly tx?: Partial<TxLimits>;
  /** Clock for transaction ages (ms). */
  readonly now?: () => number;
}

export class Harness {
  readonly core: Core;
  private nextUnpriv = 10000;

  constructor(opts: HarnessOptions = {}) {
    const limits: ConnectionLimits = opts.tx
      ? {
        ...DEFAULT_CONNECTION_LIMITS,
        tx: { ...DEFAULT_CONNECTION_LIMITS.tx, ...opts.tx },
        txPrivileged: { ...DEFAULT_CONNECTION_LIMITS.txPrivileged, ...opts.tx },
      }
      : DEFAULT_CONNECTION_LIMITS;
    this.core = new Core({ policy: new LegacyPolicy(), limits, now: opts.now });
  }

  /** A privileged (dom0 socket) connection. */
  conn(label = "c"): Conn {
    const c = new Conn(this.core);
    c.client = this.core.open(c.sink, label);
    return c;
  }

  /** An unprivileged connection for domain `domid` (as a Xen ring would be). */
  guest(domid: number, label = `dom${domid}`): Conn {
    const c = new Conn(this.core);
    const id = this.nextUnpriv++;
    c.client = new Client(id, domid, false, c.sink, label, this.core.limits.tx);
    // Registered so watch events can reach it (a Map by id today; tolerate a Set of clients too).
    const clients = this.core.clients as unknown as {
      set?: (id: number, c: Client) => void;
      add?: (c: Client) => void;
    };
    if (clients.set) clients.set(id, c.client);
    else clients.add?.(c.client);
    return c;
  }

  close(c: Conn): void {
    this.core.close(c.client);
  }
}
