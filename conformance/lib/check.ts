// What a conformance check is, what it gets to work with, and how it reports. A check proves one
// requirement of docs/spec/ against a running daemon: it returns normally (pass), throws Fail (the
// daemon broke the requirement) or NotApplicable (the daemon does not offer what the requirement
// is about, or the suite cannot observe it here). Anything else thrown is a failure too, reported
// with its message: a daemon that stops answering fails the check that was waiting.
import { Conn, type Packet, Violations, XS } from "./wire.ts";
import type { DomainOptions, Guest, GuestEnv } from "./sim.ts";
import type { SimDomain } from "../../src/xen/sim/control.ts";

export class Fail extends Error {
  override name = "Fail";
}

export class NotApplicable extends Error {
  override name = "NotApplicable";
}

export function fail(why: string): never {
  throw new Fail(why);
}

export function notApplicable(why: string): never {
  throw new NotApplicable(why);
}

export function expect(cond: boolean, why: string): asserts cond {
  if (!cond) throw new Fail(why);
}

/** JSON for messages: payloads are binary-safe Latin-1 strings, shortened. */
export function show(x: unknown): string {
  const s = JSON.stringify(x);
  return s.length > 120 ? `${s.slice(0, 117)}...` : s;
}

/** The errno name of an ERROR reply, or null for any other reply. */
export function errnoOf(p: Packet): string | null {
  return p.type === XS.ERROR ? p.payload.replace(/\0$/, "") : null;
}

/** What the daemon said, for failure messages: `OK`, `ENOENT`, or the payload. */
export function describe(p: Packet): string {
  const e = errnoOf(p);
  return e !== null ? e : `type ${p.type} ${show(p.payload)}`;
}

export interface Check {
  /** The requirement this check proves (docs/spec/). */
  readonly id: string;
  run(ctx: Ctx): Promise<void>;
}

/** What every check may use. Connections it opens are closed, and guests it starts destroyed, after it. */
export class Ctx {
  private readonly conns: Conn[] = [];
  private readonly cleanups: Array<() => Promise<void> | void> = [];
  private scratchMade = false;

  constructor(
    readonly socket: string,
    readonly violations: Violations,
    /** The simulated Xen, when the daemon runs on one (guest-side requirements); else null. */
    readonly guests: GuestEnv | null,
    /** A prefix unique to this check and run: every node it creates lives under it. */
    readonly base: string,
    /** The daemon's GET_FEATURE answer on a socket connection, or null (ENOSYS). */
    readonly socketFeatures: number | null,
  ) {}

  /** A new privileged (socket) connection. */
  async dom0(): Promise<Conn> {
    const c = await Conn.open(this.socket, this.violations);
    this.conns.push(c);
    return c;
  }

  /** `base/sub`, or `base` itself. */
  path(sub = ""): string {
    return sub === "" ? this.base : `${this.base}/${sub}`;
  }

  /** A scratch subtree `base` (created once, removed after the check). */
  async scratch(c?: Conn): Promise<string> {
    if (!this.scratchMade) {
      const conn = c ?? await this.dom0();
      await okOf(conn, XS.MKDIR, `${this.base}\0`);
      this.scratchMade = true;
    }
    return this.base;
  }

  /** Something to undo after the check, pass or fail (run last-in first-out). */
  defer(f: () => Promise<void> | void): void {
    this.cleanups.push(f);
  }

  /** The guest environment, or not applicable. */
  sim(): GuestEnv {
    if (this.guests === null) notApplicable("needs guest domains (dxenstored on the simulated Xen)");
    return this.guests;
  }

  /** A new running, introduced guest domain (destroyed after the check); not applicable without guests. */
  async guest(opts: DomainOptions = {}): Promise<Guest> {
    const env = this.sim();
    return await env.domain(await this.dom0(), (f) => this.defer(f), opts);
  }

  /** A client for domain `domid`, which the check created itself (closed after the check). */
  attach(domid: number, info: SimDomain): Guest {
    return this.sim().attach(domid, info, (f) => this.defer(f));
  }

  /** True when guest domains are available (for requirements with a guest part). */
  get hasGuests(): boolean {
    return this.guests !== null;
  }

  /** The socket's feature bits include `bit` (GET_FEATURE answered and has it). */
  socketHas(bit: number): boolean {
    return this.socketFeatures !== null && (this.socketFeatures & bit) !== 0;
  }

  async close(): Promise<void> {
    for (const f of this.cleanups.reverse()) {
      try {
        await f();
      } catch { /* best effort: the check's verdict stands */ }
    }
    if (this.scratchMade) {
      try {
        const c = await Conn.open(this.socket, this.violations);
        try {
          await c.request(XS.RM, `${this.base}\0`, 0);
        } finally {
          c.close();
        }
      } catch { /* the daemon may be gone: the check already said so */ }
    }
    for (const c of this.conns) c.close();
  }
}

/** Something that answers requests: a socket connection or a guest's ring. */
export interface Endpoint {
  request(type: number, payload: string, txId?: number): Promise<Packet>;
}

/** Send a request that must succeed; returns its payload. */
export async function okOf(c: Endpoint, type: number, payload: string, txId = 0): Promise<string> {
  const r = await c.request(type, payload, txId);
  if (r.type !== type) {
    fail(`type ${XS[type] ?? type} ${show(payload)} answered ${describe(r)}, expected success`);
  }
  return r.payload;
}

/** Send a request that must fail with `errno`. */
export async function errOf(
  c: Endpoint,
  errno: string,
  type: number,
  payload: string,
  txId = 0,
): Promise<void> {
  const r = await c.request(type, payload, txId);
  const e = errnoOf(r);
  if (e !== errno) {
    fail(`type ${XS[type] ?? type} ${show(payload)} answered ${describe(r)}, expected ${errno}`);
  }
}

/** The errno of a request (null on success). */
export async function outcome(c: Endpoint, type: number, payload: string, txId = 0): Promise<string | null> {
  return errnoOf(await c.request(type, payload, txId));
}

/**
 * Prove that no watch event is queued on `c` ahead of one caused now: register a watch on a fresh
 * path and require its registration event to be the next event (events for earlier requests
 * are ahead of it, requirement WATCH-13), then remove it. Returns the events that came first.
 */
let sentinelCount = 0;
export interface Watcher extends Endpoint {
  event(timeoutMs?: number): Promise<{ path: string; token: string }>;
}

export async function eventsBefore(c: Watcher): Promise<Array<{ path: string; token: string }>> {
  const path = `/conformance-sentinel/${Deno.pid}-${sentinelCount++}`;
  await okOf(c, XS.WATCH, `${path}\0s\0`);
  const seen: Array<{ path: string; token: string }> = [];
  for (;;) {
    const e = await c.event(5000);
    if (e.path === path && e.token === "s") break;
    seen.push(e);
  }
  await okOf(c, XS.UNWATCH, `${path}\0s\0`);
  return seen;
}
