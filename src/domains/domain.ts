// An introduced domain (or dom0's own ring) as the registry (./manager.ts) keeps it.
import type { MappedRing } from "../xen/platform.ts";
import type { RingHandle } from "./rings.ts";

/** An introduced domain (or dom0's own ring): what the registry knows and what it mapped and bound. */
export class Domain {
  shutdownReported = false;
  target: number | null = null;
  constructor(
    readonly domid: number,
    readonly privileged: boolean,
    public uniqueId: string,
    public gfn: number,
    public remotePort: number,
    public localPort: number,
    readonly ring: MappedRing,
    readonly conn: RingHandle,
    readonly features: number,
  ) {}
}

/** A ring a live update hands over (./adopt_rings.ts), as the registry attaches it again. */
export interface AdoptedDomain {
  readonly domid: number;
  readonly uniqueId: string;
  readonly remotePort: number;
  readonly localPort: number;
  readonly target: number | null;
  /** SET_FEATURE's restriction, carried (DX_FEATURES), else DOMAIN_FEATURES. */
  readonly features: number;
}
