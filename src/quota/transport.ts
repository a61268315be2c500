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
  /** Its domain's sums (the entry in byDomain while this account exists). */
  readonly domain: DomainSums;
  outstanding: number;
  output: number;
}

interface DomainSums {
  outstanding: number;
  output: number;
  /** Accounts that refer to this entry: it stays in byDomain while there are any. */
  accounts: number;
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
  private readonly byDomain = new Map<number, DomainSums>();

  of(domid: number): DomainTransport {
    return this.byDomain.get(domid) ?? NOTHING_HELD;
  }

  /** One more request of connection `id` of `domid` is being answered; returns the domain's count. */
  received(id: number, domid: number): number {
    const a = this.account(id, domid);
    a.outstanding++;
    return ++a.domain.outstanding;
  }

  /** A reply of connection `id` was handed over (ignored if none is outstanding). */
  delivered(id: number): void {
    const a = this.byConn.get(id);
    if (a === undefined || a.outstanding === 0) return;
    a.outstanding--;
    a.domain.outstanding--;
  }

  /** Connection `id` of `domid` now has `bytes` queued. */
  queued(id: number, domid: number, bytes: number): void {
    const a = this.account(id, domid);
    a.domain.output += bytes - a.output;
    a.output = bytes;
  }

  /** The connection is gone: what it held no longer counts. */
  closed(id: number): void {
    const a = this.byConn.get(id);
    if (a === undefined) return;
    const d = a.domain;
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
      const domain = this.domain(domid);
      domain.accounts++;
      a = { domid, domain, outstanding: 0, output: 0 };
      this.byConn.set(id, a);
    }
    return a;
  }

  private domain(domid: number): DomainSums {
    let d = this.byDomain.get(domid);
    if (d === undefined) {
      d = { outstanding: 0, output: 0, accounts: 0 };
      this.byDomain.set(domid, d);
    }
    return d;
  }

  /** Drop a closed connection's entry, and its domain's when no other connection has an account. */
  private prune(id: number, a: Account): void {
    if (a.outstanding !== 0 || a.output !== 0) return;
    this.byConn.delete(id);
    const d = a.domain;
    if (--d.accounts === 0 && this.byDomain.get(a.domid) === d) this.byDomain.delete(a.domid);
  }
}
