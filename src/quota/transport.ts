// What a transport holds for each domain: requests read whose reply has not been handed over
// (outstanding), and bytes queued for it. The transport reports both; the quota manager decides from
// them whether the transport may read more (src/quota/quotas.ts mayReceive).
//
// A connection's account lives from its first request to its close (closed()), not only while it
// holds something: every request of a ring both creates and empties it, and a Map entry made and
// dropped per request was a good share of what the accounting cost (issue 20). So the entries are
// bounded by the open connections, and a domain's by its connections with an account.

interface Account {
  readonly domid: number;
  outstanding: number;
  output: number;
}

export interface DomainTransport {
  readonly outstanding: number;
  readonly output: number;
}

const NOTHING_HELD: DomainTransport = Object.freeze({ outstanding: 0, output: 0 });

export class TransportAccounts {
  /** Per connection id. */
  private readonly byConn = new Map<number, Account>();
  /** Per domain: the sums over its connections. */
  private readonly byDomain = new Map<number, { outstanding: number; output: number }>();

  of(domid: number): DomainTransport {
    return this.byDomain.get(domid) ?? NOTHING_HELD;
  }

  /** One more request of connection `id` of `domid` is being answered; returns the domain's count. */
  received(id: number, domid: number): number {
    this.account(id, domid).outstanding++;
    return ++this.domain(domid).outstanding;
  }

  /** A reply of connection `id` was handed over (ignored if none is outstanding). */
  delivered(id: number): void {
    const a = this.byConn.get(id);
    if (a === undefined || a.outstanding === 0) return;
    a.outstanding--;
    this.domain(a.domid).outstanding--;
  }

  /** Connection `id` of `domid` now has `bytes` queued. */
  queued(id: number, domid: number, bytes: number): void {
    const a = this.account(id, domid);
    this.domain(domid).output += bytes - a.output;
    a.output = bytes;
  }

  /** The connection is gone: what it held no longer counts. */
  closed(id: number): void {
    const a = this.byConn.get(id);
    if (a === undefined) return;
    const d = this.domain(a.domid);
    d.outstanding -= a.outstanding;
    d.output -= a.output;
    a.outstanding = 0;
    a.output = 0;
    this.prune(id, a);
  }

  /** The domain is gone: forget it and its connections. */
  forget(domid: number): void {
    for (const [id, a] of this.byConn) if (a.domid === domid) this.byConn.delete(id);
    this.byDomain.delete(domid);
  }

  /** Entries held (tests: bounded by the open connections that sent a request). */
  get size(): number {
    return this.byConn.size + this.byDomain.size;
  }

  private account(id: number, domid: number): Account {
    let a = this.byConn.get(id);
    if (a === undefined) {
      a = { domid, outstanding: 0, output: 0 };
      this.byConn.set(id, a);
    }
    return a;
  }

  private domain(domid: number): { outstanding: number; output: number } {
    let d = this.byDomain.get(domid);
    if (d === undefined) {
      d = { outstanding: 0, output: 0 };
      this.byDomain.set(domid, d);
    }
    return d;
  }

  /** Drop a closed connection's entry, and its domain's when no connection holds anything there. */
  private prune(id: number, a: Account): void {
    if (a.outstanding !== 0 || a.output !== 0) return;
    this.byConn.delete(id);
    const d = this.byDomain.get(a.domid);
    if (d !== undefined && d.outstanding === 0 && d.output === 0) this.byDomain.delete(a.domid);
  }
}
