/**
 * The transaction tests' harness (extends tests/helpers/core.ts): every request is handled
 * synchronously, so a request's reply is available as soon as `message()` returns.
 *
 *   const h = new Harness();
 *   const a = h.conn("a");
 *   const t = a.startTx();
 *   a.tryWrite("/x", "1", t);
 *   a.commit(t);            // "OK" or the errno ("EAGAIN")
 */
import type { Core } from "../../src/dispatch/core.ts";
import { type ConnectionLimits, DEFAULT_CONNECTION_LIMITS } from "../../src/quota/limits.ts";
import type { TxLimits } from "../../src/txn/registry.ts";
import { TestConn, testCore } from "../helpers/core.ts";

export { brief } from "../helpers/core.ts";

export class Conn extends TestConn {
  /** TRANSACTION_END T: "OK" or the errno ("EAGAIN"). */
  commit(tx: number): string {
    return this.tryCommit(tx).replace(/^E:/, "");
  }
  /** TRANSACTION_END F: "OK" or the errno. */
  abort(tx: number): string {
    return this.tryAbort(tx).replace(/^E:/, "");
  }
}

export interface HarnessOptions {
  readonly tx?: Partial<TxLimits>;
  /** Clock for transaction ages (ms). */
  readonly now?: () => number;
}

export class Harness {
  readonly core: Core;

  constructor(opts: HarnessOptions = {}) {
    const limits: ConnectionLimits = opts.tx
      ? {
        ...DEFAULT_CONNECTION_LIMITS,
        tx: { ...DEFAULT_CONNECTION_LIMITS.tx, ...opts.tx },
        txPrivileged: { ...DEFAULT_CONNECTION_LIMITS.txPrivileged, ...opts.tx },
      }
      : DEFAULT_CONNECTION_LIMITS;
    this.core = testCore({ limits, now: opts.now });
  }

  /** A privileged (dom0 socket) connection. */
  conn(label = "c"): Conn {
    return new Conn(this.core, (sink) => this.core.open(sink, label));
  }

  /** An unprivileged connection for domain `domid` (as a Xen ring would be). */
  guest(domid: number, label = `dom${domid}`): Conn {
    return new Conn(this.core, (sink) => this.core.openGuest(domid, sink, label));
  }

  /** The connection's transport is gone. */
  close(c: Conn): void {
    this.core.close(c.client);
  }
}

/** A harness, a connection "a" (the one with transactions) and "other" (plain requests), both dom0's. */
export function setup(): { h: Harness; a: Conn; o: Conn } {
  const h = new Harness();
  return { h, a: h.conn("a"), o: h.conn("other") };
}

/** dom0 prepares /g owned by guest 5 (so the guest may use it), and a guest connection. */
export function guestSetup() {
  const s = setup();
  s.o.tryWrite("/g", "");
  s.o.trySetPerms("/g", "n5");
  return { ...s, g: s.h.guest(5) };
}
