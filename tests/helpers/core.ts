/**
 * The in-process test harness the others extend (tests/quota, tests/txn, tests/backend,
 * tests/domains, tests/policy): a Core built as the daemon's is (testCore: the legacy policy unless
 * said otherwise), and connections opened the way the transports open them (dom0: a socket's
 * privileged client; guest: a ring's client of that domain), whose messages a TestSink collects.
 *
 * Conventions, the same in every extension: `request`/`call` return the one reply (events stay in the
 * sink); methods named `try...` return the reply briefly ("OK", the value, or "E:<errno>"); plain verbs
 * (`write`, `rm`, `setPerms`, `watch`...) must succeed and throw otherwise; `events()` takes the
 * queued watch events. Payloads are Latin-1 strings with NUL separators, exactly as on the wire.
 */
import assert, { AssertionError, show } from "./assert.ts";
import { Core, type CoreOptions } from "../../src/dispatch/core.ts";
import type { Client, ReplySink } from "../../src/dispatch/client.ts";
import { LegacyPolicy } from "../../src/policy/legacy.ts";
import { MsgType } from "../../src/protocol/wire.ts";

export { MsgType };

export interface Reply {
  readonly type: number;
  readonly reqId: number;
  readonly txId: number;
  readonly payload: string;
}

/** Collects what the core sends a connection; `open = false` refuses, as a closed transport does. */
export class TestSink implements ReplySink {
  readonly sent: Reply[] = [];
  open = true;
  send(type: number, reqId: number, txId: number, payload: string): boolean {
    if (!this.open) return false;
    this.sent.push({ type, reqId, txId, payload });
    return true;
  }
}

/** A Core as the daemon builds one (src/dispatch/core.ts), with the legacy policy unless `opts` says. */
export function testCore(opts: Partial<CoreOptions> = {}): Core {
  return new Core({ policy: new LegacyPolicy(), ...opts });
}

/** The reply as a short string: the payload without its final NUL, or "E:<errno>" for an error. */
export function brief(r: Reply): string {
  const p = r.payload.replace(/\0$/, "");
  return r.type === MsgType.ERROR ? `E:${p}` : p;
}

const nul = (args: readonly string[]) => args.map((a) => a + "\0").join("");

let nextReq = 1;

export class TestConn {
  readonly sink = new TestSink();
  readonly client: Client;

  constructor(readonly core: Core, open: (sink: TestSink) => Client) {
    this.client = open(this.sink);
  }

  get id(): number {
    return this.client.id;
  }

  /** Send one request without waiting for anything; returns its req_id. */
  send(type: number, payload: string, txId = 0): number {
    const reqId = nextReq++;
    this.core.message(this.client, { type, reqId, txId, payload });
    return reqId;
  }

  /**
   * One request with a raw payload; its reply, removed from the sink. Exactly one reply must come
   * (watch events it causes may come too, and stay queued), echoing req_id and tx_id.
   */
  request(type: number, payload: string, txId = 0): Reply {
    const n = this.sink.sent.length;
    const reqId = this.send(type, payload, txId);
    const replies = this.sink.sent.slice(n).filter((m) => m.type !== MsgType.WATCH_EVENT);
    if (replies.length !== 1) {
      throw new AssertionError(`expected exactly one reply to type ${type}, got ${show(replies)}`);
    }
    const r = replies[0];
    if (r.reqId !== reqId) throw new AssertionError(`reply req_id ${r.reqId} != ${reqId}`);
    if (r.txId !== txId) throw new AssertionError(`reply tx_id ${r.txId} != ${txId}`);
    this.sink.sent.splice(this.sink.sent.indexOf(r), 1);
    return r;
  }

  /** One request whose arguments are NUL-terminated strings. */
  call(type: number, args: readonly string[], txId = 0): Reply {
    return this.request(type, nul(args), txId);
  }

  /** A raw payload (no NULs added); the reply briefly ("OK", the value, or "E:<errno>"). */
  tryRequest(type: number, payload: string, txId = 0): string {
    return brief(this.request(type, payload, txId));
  }

  /** The reply briefly: "OK", the value, or "E:<errno>". */
  try(type: number, args: readonly string[], txId = 0): string {
    return brief(this.call(type, args, txId));
  }

  /** A request that must succeed; returns the reply payload. */
  ok(type: number, args: readonly string[], txId = 0): string {
    const r = this.call(type, args, txId);
    if (r.type === MsgType.ERROR) {
      throw new AssertionError(`request ${type} ${show(args)} failed: ${r.payload.replace(/\0$/, "")}`);
    }
    if (r.type !== type) throw new AssertionError(`reply type ${r.type} to request type ${type}`);
    return r.payload;
  }

  /** A request that must fail; returns the errno name. */
  err(type: number, args: readonly string[], txId = 0): string {
    const r = this.call(type, args, txId);
    if (r.type !== MsgType.ERROR) {
      throw new AssertionError(`request ${type} ${show(args)} succeeded: ${show(r.payload)}`);
    }
    return r.payload.replace(/\0$/, "");
  }

  // ---- try...: the reply briefly ----------------------------------------------------------------

  tryRead(path: string, tx = 0): string {
    return brief(this.request(MsgType.READ, `${path}\0`, tx));
  }
  /** WRITE with exactly `value` as the node's value (no trailing NUL). */
  tryWrite(path: string, value = "", tx = 0): string {
    return brief(this.request(MsgType.WRITE, `${path}\0${value}`, tx));
  }
  tryMkdir(path: string, tx = 0): string {
    return brief(this.request(MsgType.MKDIR, `${path}\0`, tx));
  }
  tryRm(path: string, tx = 0): string {
    return brief(this.request(MsgType.RM, `${path}\0`, tx));
  }
  /** DIRECTORY: the names joined with "," (or "E:<errno>"). */
  tryDir(path: string, tx = 0): string {
    const r = this.request(MsgType.DIRECTORY, `${path}\0`, tx);
    if (r.type === MsgType.ERROR) return brief(r);
    return r.payload.split("\0").filter((s) => s !== "").join(",");
  }
  /** DIRECTORY_PART from offset 0: the names joined with "," (generation dropped), or "E:<errno>". */
  tryDirPart(path: string, tx = 0): string {
    const r = this.request(MsgType.DIRECTORY_PART, `${path}\x000\x00`, tx);
    if (r.type === MsgType.ERROR) return brief(r);
    return r.payload.split("\0").slice(1).filter((s) => s !== "").join(",");
  }
  /** GET_PERMS: the entries joined with "," (or "E:<errno>"). */
  tryGetPerms(path: string, tx = 0): string {
    const r = this.request(MsgType.GET_PERMS, `${path}\0`, tx);
    if (r.type === MsgType.ERROR) return brief(r);
    return r.payload.split("\0").filter((s) => s !== "").join(",");
  }
  /** SET_PERMS with entries given as "n0,r5". */
  trySetPerms(path: string, perms: string, tx = 0): string {
    return brief(this.request(MsgType.SET_PERMS, `${path}\0${perms.split(",").join("\0")}\0`, tx));
  }
  /** WATCH; the registration event stays queued. */
  tryWatch(path: string, token: string): string {
    return brief(this.request(MsgType.WATCH, `${path}\0${token}\0`));
  }
  /** TRANSACTION_START (nested in `parent` if non-zero): the id, or "E:<errno>". */
  tryStart(parent = 0): string {
    return brief(this.request(MsgType.TRANSACTION_START, "\0", parent));
  }
  /** TRANSACTION_END T: "OK" or "E:<errno>". */
  tryCommit(tx: number): string {
    return brief(this.request(MsgType.TRANSACTION_END, "T\0", tx));
  }
  /** TRANSACTION_END F: "OK" or "E:<errno>". */
  tryAbort(tx: number): string {
    return brief(this.request(MsgType.TRANSACTION_END, "F\0", tx));
  }

  // ---- verbs that must succeed ------------------------------------------------------------------

  /** WRITE with exactly `value` as the node's value. */
  write(path: string, value = "", txId = 0): void {
    const r = this.tryWrite(path, value, txId);
    if (r !== "OK") throw new AssertionError(`WRITE ${show(path)} failed: ${r}`);
  }

  rm(path: string, txId = 0): void {
    this.ok(MsgType.RM, [path], txId);
  }

  setPerms(path: string, ...perms: string[]): void {
    this.ok(MsgType.SET_PERMS, [path, ...perms]);
  }

  /** WATCH (optionally with a depth); also consumes the registration event after checking it. */
  watch(path: string, token: string, depth?: number): void {
    this.ok(MsgType.WATCH, depth === undefined ? [path, token] : [path, token, String(depth)]);
    const ev = this.events();
    const want = `${path} ${token}`;
    if (ev.length !== 1 || ev[0] !== want) {
      throw new AssertionError(`initial event: expected [${show(want)}], got ${show(ev)}`);
    }
  }

  unwatch(path: string, token: string): void {
    this.ok(MsgType.UNWATCH, [path, token]);
  }

  /** TRANSACTION_START that must succeed: the id. */
  startTx(parent = 0): number {
    const r = this.tryStart(parent);
    if (r.startsWith("E:")) throw new AssertionError(`TRANSACTION_START failed: ${r}`);
    return Number(r);
  }

  endTx(txId: number, commit = true): void {
    this.ok(MsgType.TRANSACTION_END, [commit ? "T" : "F"], txId);
  }

  // ---- events -----------------------------------------------------------------------------------

  /**
   * Take the queued WATCH_EVENTs as "path token" strings, in delivery order. Checks the framing:
   * req_id 0, tx_id 0, payload exactly "path\0token\0".
   */
  events(): string[] {
    const out: string[] = [];
    const keep: Reply[] = [];
    for (const m of this.sink.sent) {
      if (m.type !== MsgType.WATCH_EVENT) {
        keep.push(m);
        continue;
      }
      if (m.reqId !== 0 || m.txId !== 0) throw new AssertionError(`event header ${show(m)}`);
      const parts = m.payload.split("\0");
      if (parts.length !== 3 || parts[2] !== "") throw new AssertionError(`event payload ${show(m.payload)}`);
      out.push(`${parts[0]} ${parts[1]}`);
    }
    this.sink.sent.length = 0;
    this.sink.sent.push(...keep);
    return out;
  }

  /** events(), sorted: for deliveries whose relative order is not specified. */
  sortedEvents(): string[] {
    return this.events().sort();
  }

  /** The connection is gone (its transport closed): the core drops its watches and transactions. */
  close(): void {
    this.sink.open = false;
    this.core.close(this.client);
  }
}

/** The privileged socket client (dom0), opened the way the socket transport opens it. */
export function dom0(core: Core, label = "test-dom0"): TestConn {
  return new TestConn(core, (sink) => core.open(sink, label));
}

/** An unprivileged client of domain `domid`, opened the way the ring transport opens a guest's. */
export function guest(core: Core, domid: number, label = `dom${domid}`): TestConn {
  return new TestConn(core, (sink) => core.openGuest(domid, sink, label));
}

/** As the toolstack does: create /local/domain/<domid> owned by the domain, private to it. */
export function makeDomainHome(admin: TestConn, domid: number): void {
  admin.write(`/local/domain/${domid}`);
  admin.setPerms(`/local/domain/${domid}`, `n${domid}`);
}

// ---- function forms (tests that hold a core and a connection) -------------------------------------

/** Send one request; exactly one message must come back, echoing req_id and tx_id. */
export function call(core: Core, c: TestConn, type: number, payload: string, txId = 0): Reply {
  const reqId = nextReq++;
  const n = c.sink.sent.length;
  core.message(c.client, { type, reqId, txId, payload });
  const got = c.sink.sent.slice(n);
  assert.equal(got.length, 1, `one reply to type ${type} ${JSON.stringify(payload.slice(0, 60))}`);
  const r = got[0];
  assert.equal(r.reqId, reqId, "reply echoes req_id");
  assert.equal(r.txId, txId, "reply echoes tx_id");
  assert.ok(r.type === type || r.type === MsgType.ERROR, `reply type ${r.type} for request type ${type}`);
  return r;
}

/** The errno of an ERROR reply, or "OK:<payload>" for a success (so assert messages show both). */
export function outcome(r: Reply): string {
  return r.type === MsgType.ERROR ? r.payload.replace(/\0$/, "") : `OK:${r.payload}`;
}

/** Call and expect success; returns the payload. */
export function ok(core: Core, c: TestConn, type: number, payload: string, txId = 0): string {
  const r = call(core, c, type, payload, txId);
  assert.equal(
    r.type,
    type,
    `expected success for type ${type} ${JSON.stringify(payload.slice(0, 60))}, got ${outcome(r)}`,
  );
  return r.payload;
}

/** Call and expect an ERROR reply with `errno` (payload "ERRNO\0"). */
export function err(core: Core, c: TestConn, type: number, payload: string, errno: string, txId = 0): void {
  const r = call(core, c, type, payload, txId);
  assert.equal(outcome(r), errno, `type ${type} ${JSON.stringify(payload.slice(0, 60))}`);
  assert.equal(r.payload, `${errno}\0`, "ERROR payload is the errno name and a NUL");
}
