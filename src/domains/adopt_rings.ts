// Live update, new program's side, rings (docs/live-update.md): serve again every ring the previous
// program served — dom0's and the introduced guests' — from the migration stream's CONN ring records.
// As cxenstored's restore: the event channel is not bound again but adopted (the binding lives on in
// the inherited event-channel descriptor), the ring page is mapped again (grant entry 1; dom0's from
// its own file), the ring is not reset and nothing fires; the partial request the old program had
// taken off the ring and the output it had not yet put in are taken over; the watches are registered
// without an initial event (the guest had it). Domains that died meanwhile are found by the
// checkDomains() the caller runs next, as at any VIRQ_DOM_EXC.
//
// Before a ring is served again its indexes are read once (`ringBacklog`): requests the guest put in
// that no program has taken off yet (written before the old program's exec, or during the gap) and
// replies the old program put in that the guest has not read. Logged, so a switch that caught a guest
// in the middle of a request shows it (the real-Xen E2E, tests/xen/qemu/dom0/live_update.sh, reports it).
import { DOMAIN_FEATURES } from "../protocol/wire.ts";
import { resolvePath } from "../store/path.ts";
import type { WatchManager } from "../watch/manager.ts";
import type { MappedRing, XenPlatform } from "../xen/platform.ts";
import { REQUESTS, RESPONSES, RingPage, ringUsed } from "../xen/ring.ts";
import type { DomainManager } from "./manager.ts";

/** A ring as the stream describes it (a CONN ring record and its WATCH records). */
export interface AdoptedRing {
  readonly domid: number;
  readonly target: number | null;
  readonly localPort: number;
  /** The domain's features (SET_FEATURE before INTRODUCE; DX_FEATURES), else DOMAIN_FEATURES. */
  readonly features?: number;
  readonly input: Uint8Array;
  readonly output: Uint8Array;
  readonly partial: number;
  readonly watches: readonly {
    readonly path: string;
    readonly token: string;
    readonly depth: number | null;
  }[];
}

export interface RingAdoption {
  readonly rings: number;
  readonly watches: number;
  /** Bytes of partial requests and unsent output taken over. */
  readonly bufferedBytes: number;
  /** The rings that held bytes when mapped again, before anything was served (`ringBacklog`). */
  readonly backlog: readonly RingBacklog[];
  /** What could not be adopted, one phrase each (logged). */
  readonly dropped: string[];
}

/** What a ring held when adopted: bytes between consumer and producer index in each direction. */
export interface RingBacklog {
  readonly domid: number;
  /** Request bytes the guest produced that no program has consumed (a request not yet answered). */
  readonly requestBytes: number;
  /** Reply bytes the old program produced that the guest has not consumed. */
  readonly replyBytes: number;
}

/**
 * The bytes waiting in each direction of a ring page, read from its indexes (inconsistent indexes
 * count as 0 here: serving the ring reports them).
 */
export function ringBacklog(page: Uint8Array): { requestBytes: number; replyBytes: number } {
  const p = new RingPage(page);
  return {
    requestBytes: Math.max(0, ringUsed(p, REQUESTS)),
    replyBytes: Math.max(0, ringUsed(p, RESPONSES)),
  };
}

/** Map `domid`'s ring as the platform finds it: dom0's own, or a guest's by grant entry 1. */
function mapRing(platform: XenPlatform, domid: number): MappedRing {
  if (domid !== 0) return platform.mapGuestRing(domid, 0);
  const r = platform.dom0Ring();
  if (r === null) throw new Error("the platform has no ring of dom0");
  return r.ring;
}

export function adoptRings(
  domains: DomainManager,
  platform: XenPlatform,
  watches: WatchManager,
  rings: readonly AdoptedRing[],
): RingAdoption {
  const dropped: string[] = [];
  const backlog: RingBacklog[] = [];
  let n = 0, nWatches = 0, buffered = 0;
  for (const r of rings) {
    const what = `ring of domain ${r.domid}`;
    const st = platform.domainState(r.domid);
    if (st === null || platform.adoptInterdomain === undefined) {
      dropped.push(`${what} (${st === null ? "the domain is gone" : "the platform cannot adopt it"})`);
      continue;
    }
    let ring: MappedRing;
    try {
      ring = mapRing(platform, r.domid);
    } catch (e) {
      dropped.push(`${what} (${(e as Error).message})`);
      continue;
    }
    // Measured before the ring is served (attaching it reads requests at the next turn).
    const held = ringBacklog(ring.page);
    let remotePort: number;
    try {
      remotePort = platform.adoptInterdomain(r.domid, r.localPort);
    } catch (e) {
      ring.unmap();
      dropped.push(`${what} (port ${r.localPort}: ${(e as Error).message})`);
      continue;
    }
    const handle = domains.adoptAttached(
      {
        domid: r.domid,
        uniqueId: st.uniqueId,
        remotePort,
        localPort: r.localPort,
        target: r.target,
        features: r.features ?? DOMAIN_FEATURES,
      },
      ring,
    );
    n++;
    if (held.requestBytes > 0 || held.replyBytes > 0) backlog.push({ domid: r.domid, ...held });
    try {
      handle.adoptState(r.input, r.output, r.partial);
      buffered += r.input.length + r.output.length;
    } catch (e) {
      // The guest sees a stall and then its request or reply missing: say so loudly.
      dropped.push(`${what}'s buffered bytes (${(e as Error).message})`);
    }
    const owner = handle.clientId();
    const base = `/local/domain/${r.domid}`;
    for (const w of r.watches) {
      try {
        const p = resolvePath(w.path, base, true);
        const added = watches.add({
          owner,
          path: p.abs,
          token: w.token,
          depth: w.depth === null || w.depth === 0xffff ? undefined : w.depth,
          relativeBase: p.relativeBase,
        });
        if (added) nWatches++;
      } catch (e) {
        dropped.push(`watch ${w.path.slice(0, 64)} of ${what} (${(e as Error).message})`);
      }
    }
  }
  return { rings: n, watches: nWatches, bufferedBytes: buffered, backlog, dropped };
}
