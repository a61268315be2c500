/**
 * Quota tests drive a Core in-process (tests/helpers/core.ts): dom0 is a socket-style client, guests
 * are clients of their domain opened as the ring transport opens them, so these tests do not depend
 * on the Xen transport.
 */
import type { Core } from "../../src/dispatch/core.ts";
import type { QuotaConfig } from "../../src/quota/options.ts";
import { type ConnectionLimits, DEFAULT_CONNECTION_LIMITS } from "../../src/quota/limits.ts";
import type { LogLevel } from "../../src/common/log.ts";
import { dom0, guest, makeDomainHome, MsgType, type TestConn, testCore } from "../helpers/core.ts";
import { AssertionError, show } from "../helpers/assert.ts";

export { makeDomainHome, MsgType };

export interface QuotaHarness {
  readonly core: Core;
  /** Everything the quota module logged. */
  readonly logs: Array<{ level: LogLevel; msg: string }>;
  readonly admin: QConn;
}

/** A quota test's connection: the base one (the name the quota tests use). */
export type QConn = TestConn;

export function quotaCore(config: QuotaConfig = {}, limits: Partial<ConnectionLimits> = {}): QuotaHarness {
  const logs: Array<{ level: LogLevel; msg: string }> = [];
  const core = testCore({
    limits: { ...DEFAULT_CONNECTION_LIMITS, ...limits },
    quota: { log: (level, msg) => logs.push({ level, msg }), ...config },
  });
  return { core, logs, admin: dom0(core, "dom0") };
}

/** A guest connection of `domid`, as the ring transport opens it. */
export function guestConn(core: Core, domid: number): QConn {
  return guest(core, domid);
}

/** A guest with its home (1 node owned). */
export function newGuest(h: QuotaHarness, domid: number): QConn {
  makeDomainHome(h.admin, domid);
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
