/**
 * Drive a `Core` directly (no socket) for watch tests: a fake ReplySink records every message the
 * core sends; `TestConn` numbers requests and splits replies from WATCH_EVENTs. Payloads are Latin-1
 * strings with NUL separators, exactly as on the wire.
 */
import { Client, type ReplySink } from "../../src/dispatch/client.ts";
import { Core } from "../../src/dispatch/core.ts";
import { type ConnectionLimits, DEFAULT_CONNECTION_LIMITS } from "../../src/quota/limits.ts";
import { LegacyPolicy } from "../../src/policy/legacy.ts";
import { MsgType } from "../../src/protocol/wire.ts";
import { AssertionError, show } from "../helpers/assert.ts";

export interface Sent {
  readonly type: number;
  readonly reqId: number;
  readonly txId: number;
  readonly payload: string;
}

export class FakeSink implements ReplySink {
  readonly sent: Sent[] = [];
  /** false once the "connection" is gone: send refuses, as a closed transport does. */
  open = true;
  send(type: number, reqId: number, txId: number, payload: string): boolean {
    if (!this.open) return false;
    this.sent.push({ type, reqId, txId, payload });
    return true;
  }
}

export class TestConn {
  private nextReq = 1;
  constructor(readonly core: Core, readonly client: Client, readonly sink: FakeSink) {}

  get id(): number {
    return this.client.id;
  }

  /** Send one request; returns its reply (removed from the sink; events stay queued). */
  call(type: MsgType, args: readonly string[], txId = 0): Sent {
    const reqId = this.nextReq++;
    this.core.message(this.client, { type, reqId, txId, payload: args.map((a) => a + "\0").join("") });
    const i = this.sink.sent.findIndex((m) => m.reqId === reqId && m.type !== MsgType.WATCH_EVENT);
    if (i < 0) throw new AssertionError(`no reply to request ${reqId} (type ${type})`);
    return this.sink.sent.splice(i, 1)[0];
  }

  /** A request that must succeed; returns the reply payload. */
  ok(type: MsgType, args: readonly string[], txId = 0): string {
    const r = this.call(type, args, txId);
    if (r.type === MsgType.ERROR) {
      throw new AssertionError(`request ${type} ${show(args)} failed: ${r.payload.replace(/\0$/, "")}`);
    }
    if (r.type !== type) throw new AssertionError(`reply type ${r.type} to request type ${type}`);
    return r.payload;
  }

  /** A request that must fail; returns the errno name. */
  err(type: MsgType, args: readonly string[], txId = 0): string {
    const r = this.call(type, args, txId);
    if (r.type !== MsgType.ERROR) {
      throw new AssertionError(`request ${type} ${show(args)} succeeded: ${show(r.payload)}`);
    }
    return r.payload.replace(/\0$/, "");
  }

  write(path: string, value = "", txId = 0): void {
    this.ok(MsgType.WRITE, [path, value], txId);
  }

  rm(path: string, txId = 0): void {
    this.ok(MsgType.RM, [path], txId);
  }

  setPerms(path: string, ...perms: string[]): void {
    this.ok(MsgType.SET_PERMS, [path, ...perms]);
  }

  /** WATCH (optionally with a depth); also consumes the initial event after checking it. */
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

  startTx(): number {
    return Number(this.ok(MsgType.TRANSACTION_START, [""]).replace(/\0$/, ""));
  }

  endTx(txId: number, commit = true): void {
    this.ok(MsgType.TRANSACTION_END, [commit ? "T" : "F"], txId);
  }

  /**
   * Take the queued WATCH_EVENTs as "path token" strings, in delivery order. Checks the framing:
   * req_id 0, tx_id 0, payload exactly "path\0token\0".
   */
  events(): string[] {
    const out: string[] = [];
    const keep: Sent[] = [];
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

  close(): void {
    this.sink.open = false;
    this.core.close(this.client);
  }
}

export function newCore(limits: Partial<ConnectionLimits> = {}): Core {
  return new Core({ policy: new LegacyPolicy(), limits: { ...DEFAULT_CONNECTION_LIMITS, ...limits } });
}

/** A privileged (dom0 socket) connection. */
export function dom0(core: Core, label = "dom0"): TestConn {
  const sink = new FakeSink();
  return new TestConn(core, core.open(sink, label), sink);
}

let nextGuestId = 100000;

/** An unprivileged connection of domain `domid`, registered with the core as a transport would. */
export function guest(core: Core, domid: number): TestConn {
  const sink = new FakeSink();
  const c = new Client(nextGuestId++, domid, false, sink, `dom${domid}`, core.limits.tx);
  core.clients.set(c.id, c);
  return new TestConn(core, c, sink);
}

/** As the toolstack does: create /local/domain/<domid> owned by the domain, private to it. */
export function makeDomainHome(admin: TestConn, domid: number): void {
  admin.write(`/local/domain/${domid}`);
  admin.setPerms(`/local/domain/${domid}`, `n${domid}`);
}
