// The built-in `legacy` WebAssembly plugin (policies/legacy, Xen's permission model with the SET_TARGET
// union rule) as a ready-made Policy, loaded synchronously: for in-process cores (tests, tools). The
// daemon loads its chain through PolicyManager instead, which adds the Extism SDK conformance check and
// reload. There is no TypeScript implementation of the rules: every decision is the plugin's.
import { PluginChain } from "./chain.ts";
import { type LoadedPlugin, loadPlugins, resolveSpec } from "./loader.ts";
import { PluginInstance, VarStore } from "./plugin.ts";

let legacy: LoadedPlugin | undefined;

function legacyPlugin(): LoadedPlugin {
  legacy ??= loadPlugins(resolveSpec({ chain: ["legacy"] }))[0];
  return legacy;
}

export class LegacyPolicy extends PluginChain {
  constructor() {
    const p = legacyPlugin();
    super([new PluginInstance(p.compiled, p.config, new VarStore(p.compiled.limits.varBytes))]);
  }
}
