// `--xen=none|sim:<dir>|real`: which XenPlatform the daemon serves guests through, and the wiring of
// the domain manager into a running daemon (src/cli/main.ts calls attachXen once).
import type { Core } from "../dispatch/core.ts";
import type { XenPlatform } from "../xen/platform.ts";
import { SimPlatform } from "../xen/sim/platform.ts";
import { RealPlatform } from "../xen/real/platform.ts";
import { DomainManager, type DomainManagerOptions, type EventLoop } from "./manager.ts";

export type XenSpec = { readonly kind: "none" } | { readonly kind: "sim"; readonly dir: string } | {
  readonly kind: "real";
};

/** Parse the --xen value; a string is the error message. */
export function parseXenSpec(v: string): XenSpec | string {
  if (v === "none") return { kind: "none" };
  if (v === "real") return { kind: "real" };
  if (v.startsWith("sim:") && v.length > 4) return { kind: "sim", dir: v.slice(4) };
  return `--xen must be none, sim:<dir> or real, got "${v}"`;
}

export function openPlatform(spec: XenSpec): XenPlatform | null {
  switch (spec.kind) {
    case "none":
      return null;
    case "sim":
      return new SimPlatform(spec.dir);
    case "real":
      return RealPlatform.open();
  }
}

/**
 * Install the domain manager as the dispatcher's DomainHandler and put its event channel into the
 * daemon's loop. With --xen=none it still answers the domain requests that need no hypervisor
 * (IS_DOMAIN_INTRODUCED, GET_FEATURE, GET/SET_QUOTA); INTRODUCE answers ENOSYS.
 */
export function attachXen(
  core: Core,
  loop: EventLoop,
  spec: XenSpec,
  opts: DomainManagerOptions = {},
): DomainManager {
  const platform = openPlatform(spec);
  const m = new DomainManager(core, platform, platform === null ? null : loop, {
    quotas: core.quotas,
    ...opts,
  });
  core.dispatcher.domainHandler = m;
  return m;
}
