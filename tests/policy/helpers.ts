// Building plugin chains for tests: built-in plugins by name, with Extism config and limits.
import { buildChain, loadPlugins, type PolicySpec } from "../../src/policy/loader.ts";
import { DEFAULT_LIMITS, type SandboxLimits, VarStore } from "../../src/policy/plugin.ts";
import type { PluginChain } from "../../src/policy/chain.ts";
import type { Core } from "../../src/dispatch/core.ts";
import { testCore } from "../helpers/core.ts";

export type ConfigMap = Record<string, Record<string, string>>;

export function specOf(
  names: string[],
  config: ConfigMap = {},
  files: Record<string, string> = {},
  limits: Partial<SandboxLimits> = {},
): PolicySpec {
  return {
    chain: names,
    files: new Map(Object.entries(files)),
    config: new Map(Object.entries(config).map(([k, v]) => [k, new Map(Object.entries(v))])),
    limits: { ...DEFAULT_LIMITS, ...limits },
  };
}

/** A chain of built-in (or `files`) plugins; each plugin name gets a fresh variable store. */
export function chainOf(
  names: string[],
  config: ConfigMap = {},
  files: Record<string, string> = {},
  limits: Partial<SandboxLimits> = {},
): PluginChain {
  const vars = new Map<string, VarStore>();
  return buildChain(loadPlugins(specOf(names, config, files, limits)), (n) => {
    if (!vars.has(n)) vars.set(n, new VarStore(1 << 20));
    return vars.get(n)!;
  }, 1);
}

/** The in-process harness's core (tests/helpers/core.ts) with a chain of built-in plugins. */
export function coreWith(names: string[], config: ConfigMap = {}): Core {
  return testCore({ policy: chainOf(names, config) });
}
