// `--xen=none|sim:<dir>|real`: which XenPlatform the daemon serves guests through.
import type { InheritedChannels, XenPlatform } from "./platform.ts";
import { SimPlatform } from "./sim/platform.ts";
import { RealPlatform } from "./real/platform.ts";

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

/**
 * The platform `spec` names (null: none); throws Error saying why it cannot be opened. `inherited`: the
 * event channels a live update handed over (adopted by real and simulated Xen).
 */
export function openPlatform(spec: XenSpec, inherited?: InheritedChannels): XenPlatform | null {
  if (inherited !== undefined && spec.kind === "none") {
    throw new Error("a live update handed over event channels, which --xen none cannot adopt");
  }
  switch (spec.kind) {
    case "none":
      return null;
    case "sim":
      return new SimPlatform(spec.dir, inherited);
    case "real":
      return RealPlatform.open(inherited?.eventFd);
  }
}
