/**
 * Quota tests drive a Core in-process: dom0 is a socket-style client (Core.open), guests are
 * unprivileged clients built the way a ring connection is (with `core.quotas.txLimits(domid)`),
 * so these tests do not depend on the Xen transport.
 */
import { Client } from "../../src/dispatch/client.ts";
import { Core } from "../../src/dispatch/core.ts";
import { type ConnectionLimits, DEFAULT_CONNECTION_LIMITS } from "../../src/quota/limits.ts";
import type { QuotaConfig } from "../../src/quota/options.ts";
import { LegacyPolicy } from "../../src/policy/legacy.ts";
import { MsgType } from "../../src/protocol/wire.ts";
import type { LogLevel } from "../../src/common/log.ts";
import { FakeSink, TestConn } from "../watch/harness.ts";
import { AssertionError, show } from "../helpers/assert.ts";

export { MsgType };

export interface QuotaHarness {
  readonly core: Core;
  /** Everything the quota module logged. */
  readonly logs: Array<{ level: LogLevel; msg: string }>;
  readonly admin: QConn;
}

export class QConn extends TestConn {
  /** The reply payload without its final NUL, or "E:<errno>". */
  try(type: MsgType, args: readonly string[], txId = 0): string {
    const r = this.call(type, args, txId);
    const p = r.payload.replace(/\0$/, "");
    return r.type === MsgType.ERROR ? `E:${p}` : p;
  }

  private rawReq = 1_000_000;

  /** Send a raw payload (no NULs added); the reply as in try(). */
  raw(type: MsgType, payload: string, txId = 0): string {
    const reqId = this.rawReq++;
    this.core.message(this.client, { type, reqId, txId, payload });
    const i = this.sink.sent.findIndex((m) => m.reqId === reqId && m.type !== MsgType.WATCH_EVENT);
    if (i < 0) throw new AssertionError(`no reply to request ${reqId} (type ${type})`);
    const r = this.sink.sent.splice(i, 1)[0];
    const p = r.payload.replace(/\0$/, "");
    return r.type === MsgType.ERROR ? `E:${p}` : p;
  }

  /** WRITE with exactly `value` as the node's value; "OK" or "E:<errno>". */
  tryWrite(path: string, value = "", txId = 0): string {
    return this.raw(MsgType.WRITE, `${path}\0${value}`, txId);
  }

  /** WRITE that must succeed (the value is exactly `value`, no trailing NUL). */
  override write(path: string, value = "", txId = 0): void {
    const r = this.tryWrite(path, value, txId);
    if (r !== "OK") throw new AssertionError(`WRITE ${show(path)} failed: ${r}`);
  }

  tryStart(): string {
    return this.try(MsgType.TRANSACTION_START, [""]);
  }

  commit(txId: number): string {
    return this.try(MsgType.TRANSACTION_END, ["T"], txId);
  }
}

export function quotaCore(config: QuotaConfig = {}, limits: Partial<ConnectionLimits> = {}): QuotaHarness {
  const logs: Array<{ level: LogLevel; msg: string }> = [];
  const core = new Core({
    policy: new LegacyPolicy(),
    limits: { ...DEFAULT_CONNECTION_LIMITS, ...limits },
    quota: { log: (level, msg) => logs.push({ level, msg }), ...config },
  });
  const sink = new FakeSink();
  const admin = new QConn(core, core.open(sink, "dom0"), sink);
  return { core, logs, admin };
}

let nextGuestId = 500_000;

/** A guest connection of `domid`, as the ring transport builds it. */
export function guestConn(core: Core, domid: number): QConn {
  const sink = new FakeSink();
  const c = new Client(nextGuestId++, domid, false, sink, `dom${domid}`, core.quotas.txLimits(domid));
  core.clients.set(c.id, c);
  return new QConn(core, c, sink);
}

/** What the toolstack does for a new domain: /local/domain/<domid>, owned by it, private. */
export function makeHome(admin: QConn, domid: number): void {
  admin.write(`/local/domain/${domid}`);
  admin.setPerms(`/local/domain/${domid}`, `n${domid}`);
}

/** A guest with its home (1 node owned). */
export function newGuest(h: QuotaHarness, domid: number): QConn {
  makeHome(h.admin, domid);
  return guestConn(h.core, domid);
}

/** The accounting equals a recount of the tree. */
export function assertExact(core: Core): void {
  const d = core.quotas.verify();
  if (d.length > 0) throw new AssertionError(`accounting differs from the tree: ${show(d)}`);
}

/** Log lines of the quota module that mention `domid=<d> quota=<q>`. */
export function quotaLogs(h: QuotaHarness, domid: number, quota: string): string[] {
  return h.logs.map((l) => l.msg).filter((m) => m.includes(`domid=${domid} quota=${quota} `));
}

/** Every node path below (and including) `path` in the live store, sorted. */
export function subtreePaths(core: Core, path: string): string[] {
  const out: string[] = [];
  const comps = path === "/" ? [] : path.slice(1).split("/");
  let n = core.db.root;
  for (const c of comps) {
    const x = n.child(c);
    if (x === undefined) return [];
    n = x;
  }
  const stack: Array<[string, typeof n]> = [[path, n]];
  while (stack.length > 0) {
    const [p, x] = stack.pop()!;
    out.push(p);
    for (const name of x.childNames()) stack.push([p === "/" ? `/${name}` : `${p}/${name}`, x.child(name)!]);
  }
  return out.sort();
}
