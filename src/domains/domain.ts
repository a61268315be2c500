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
