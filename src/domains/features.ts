// SET_FEATURE before INTRODUCE (docs/domains.md): the features a domain that exists but is not
// introduced yet will get. Each value is bound to the domain's incarnation (the hypervisor's unique
// id), so a preset never reaches a later domain that reuses the domid. Owned by the registry
// (./manager.ts); a live update carries it across (src/live_update/dx_records.ts, DX_FEATURES).
import { DOMAIN_FEATURES } from "../protocol/wire.ts";

export interface FeaturePreset {
  readonly features: number;
  readonly uniqueId: string;
}

export class FeaturePresets {
  private readonly byDomid = new Map<number, FeaturePreset>();

  set(domid: number, p: FeaturePreset): void {
    this.byDomid.set(domid, p);
  }

  /** The features the domain `domid` of incarnation `uniqueId` would be introduced with. */
  featuresFor(domid: number, uniqueId: string): number {
    const p = this.byDomid.get(domid);
    return p !== undefined && p.uniqueId === uniqueId ? p.features : DOMAIN_FEATURES;
  }

  delete(domid: number): void {
    this.byDomid.delete(domid);
  }

  /** Forget the presets of domains that are gone (`incarnation` null) or were replaced. */
  prune(incarnation: (domid: number) => string | null): void {
    for (const [domid, p] of [...this.byDomid]) {
      if (incarnation(domid) !== p.uniqueId) this.byDomid.delete(domid);
    }
  }

  entries(): IterableIterator<[number, FeaturePreset]> {
    return this.byDomid.entries();
  }
}
