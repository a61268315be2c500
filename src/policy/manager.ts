// The daemon's policy chain over time: initial load, reload (SIGHUP, CONTROL) and status. A reload
// builds a complete new chain beside the old one and swaps it in with one assignment between two
// requests (the dispatcher runs requests synchronously, so no request ever sees half a chain). A spec,
// file or plugin that fails to load or validate leaves the old chain in place and says why.
//
// Loading = synchronous build (read, meter, compile, instantiate, policy_info) + the Extism SDK check
// (sdk_check.ts), which is asynchronous and done once per distinct (plugin file, config). A reload whose
// plugins have all passed the SDK check before swaps at once; otherwise the swap happens when the check
// passes (unless a newer reload came first), and `status()` (CONTROL policy) reports the outcome.
import { log } from "../common/log.ts";
import type { PluginChain } from "./chain.ts";
import {
  buildChain,
  type LoadedPlugin,
  loadPlugins,
  type PolicySource,
  type PolicySpec,
  resolveSpec,
} from "./loader.ts";
import { VarStore } from "./plugin.ts";
import { sdkCheck } from "./sdk_check.ts";
import { MAX_SAVED_STATE, type PolicyState, PolicyStateError } from "./state.ts";

/** The daemon's policy: `current` is what the dispatcher asks (CoreOptions.policy takes the manager). */
export class PolicyManager {
  current!: PluginChain;
  /** What the last reload (or the initial load) ended with. */
  lastResult = "";
  reloads = 0;
  reloadFailures = 0;
  private generation = 0;
  /** Generation of the newest reload still waiting for its SDK check, or -1. */
  private pendingGeneration = -1;
  /** Plugins that passed the SDK check: key → the exact bytes checked. */
  private readonly validated = new Map<string, Uint8Array>();
  private readonly varStores = new Map<string, VarStore>();

  private constructor(private readonly source: PolicySource) {}

  /** Load the initial chain (SDK check included) as `current`. Throws Error saying what failed. */
  static async start(source: PolicySource): Promise<PolicyManager> {
    const m = new PolicyManager(source);
    const spec = resolveSpec(source);
    const plugins = loadPlugins(spec);
    const chain = m.build(plugins, spec);
    for (const p of plugins) await m.check(p);
    m.swap(chain, "loaded");
    return m;
  }

  /** Reload from the source (config file re-read). Returns a one-line outcome; never throws. */
  reload(): string {
    this.reloads++;
    let plugins: LoadedPlugin[];
    let chain: PluginChain;
    try {
      const spec = resolveSpec(this.source);
      plugins = loadPlugins(spec);
      chain = this.build(plugins, spec);
    } catch (e) {
      return this.failed((e as Error).message);
    }
    const unchecked = plugins.filter((p) => !this.isChecked(p));
    if (unchecked.length === 0) {
      this.pendingGeneration = -1;
      return this.swap(chain, "reloaded");
    }
    const gen = chain.generation;
    this.pendingGeneration = gen;
    (async () => {
      for (const p of unchecked) await this.check(p);
    })().then(
      () => {
        if (this.pendingGeneration !== gen) return; // a newer reload superseded this one
        this.pendingGeneration = -1;
        log("info", this.swap(chain, "reloaded"));
      },
      (e) => {
        if (this.pendingGeneration !== gen) return;
        this.pendingGeneration = -1;
        log("error", this.failed((e as Error).message));
      },
    );
    this.lastResult = `pending: policy chain ${chain.name} (generation ${gen}) is being checked with the ` +
      `Extism SDK (${unchecked.map((p) => p.name).join(", ")}); it replaces generation ` +
      `${this.current.generation} when the check passes`;
    return this.lastResult;
  }

  /** One line per plugin with its counters, after a summary line. */
  status(): string {
    const c = this.current;
    const lines = [
      `policy chain ${c.name} generation ${c.generation}; cache hits ${c.stats.cacheHits} misses ` +
      `${c.stats.cacheMisses}; denies ${c.stats.denies}; plugin failures ${c.stats.failures}; reloads ` +
      `${this.reloads} (failed ${this.reloadFailures})`,
      `last: ${this.lastResult}`,
    ];
    for (const p of c.plugins) {
      const s = p.stats;
      lines.push(
        `${p.name}: calls ${s.calls} failures ${s.failures} (trap ${s.byKind.trap} time ${s.byKind.time} ` +
          `memory ${s.byKind.memory} stack ${s.byKind.stack} error ${s.byKind.error} output ` +
          `${s.byKind.output}) rebuilds ${s.rebuilds}`,
      );
    }
    return lines.join("\n");
  }

  /**
   * The current chain's state for a live update (./state.ts): every plugin's variables and its
   * `state_save` answer. Throws PolicyStateError if a plugin cannot save (the switch is refused).
   */
  saveState(): PolicyState {
    return {
      plugins: this.current.plugins.map((p) => {
        const saved = p.saveState(MAX_SAVED_STATE);
        if (saved !== null && !(saved instanceof Uint8Array)) {
          throw new PolicyStateError(
            `policy plugin ${p.name}: state_save failed (${saved.kind}): ${saved.message}`,
          );
        }
        return { name: p.name, vars: new Map(p.vars.vars), saved: saved?.length === 0 ? null : saved };
      }),
    };
  }

  /**
   * A live update's new program: take over the previous program's chain state. The chains must be the
   * same plugins in the same order, each plugin's variables must fit its budget, and a plugin whose
   * predecessor saved state must take it (`state_load`). Throws PolicyStateError saying what differs;
   * then every plugin's variables are as before (empty at start).
   */
  loadState(s: PolicyState): void {
    const mine = this.current.plugins;
    const names = (l: readonly { name: string }[]) => l.map((p) => p.name).join(",") || "(empty)";
    if (mine.length !== s.plugins.length || mine.some((p, i) => p.name !== s.plugins[i].name)) {
      throw new PolicyStateError(
        `the policy chain differs: the previous program ran ${names(s.plugins)}, this one ${names(mine)}`,
      );
    }
    const before = mine.map((p) => new Map(p.vars.vars));
    try {
      mine.forEach((p, i) => {
        const st = s.plugins[i];
        if (!p.vars.replaceAll(st.vars)) {
          throw new PolicyStateError(
            `policy plugin ${p.name}: the state handed over is larger than policy-var-bytes (${p.vars.limit})`,
          );
        }
      });
      mine.forEach((p, i) => {
        const saved = s.plugins[i].saved;
        const err = saved === null ? null : p.loadState(saved);
        if (err !== null) throw new PolicyStateError(`policy plugin ${p.name} cannot take its state: ${err}`);
      });
    } catch (e) {
      mine.forEach((p, i) => p.vars.replaceAll(before[i]));
      throw e;
    }
  }

  /**
   * The old program of a live update coming back when its chain cannot take its own state (its config
   * file was edited before the switch): as a reload does, each plugin keeps the variables saved under
   * its name (no state_load). Returns what could not be kept, one phrase each.
   */
  keepStateByName(s: PolicyState): string[] {
    const lost: string[] = [];
    const mine = new Map(this.current.plugins.map((p) => [p.name, p]));
    for (const st of s.plugins) {
      const p = mine.get(st.name);
      if (p === undefined) lost.push(`${st.name} is no longer in the chain`);
      else if (!p.vars.replaceAll(st.vars)) lost.push(`${st.name}'s variables exceed policy-var-bytes`);
    }
    return lost;
  }

  /** Drop the per-domain variables of every domain `keep` rejects (domains gone during a live update). */
  keepDomainState(keep: (domid: number) => boolean): void {
    for (const v of this.varStores.values()) {
      for (const domid of v.domains()) if (!keep(domid)) v.dropDomain(domid);
    }
  }

  private build(plugins: LoadedPlugin[], spec: PolicySpec): PluginChain {
    return buildChain(plugins, (name) => this.vars(name, spec), ++this.generation);
  }

  /** Plugin state (Extism vars) per plugin name, kept across reloads. */
  private vars(name: string, spec: PolicySpec): VarStore {
    let v = this.varStores.get(name);
    if (v === undefined) this.varStores.set(name, v = new VarStore(spec.limits.varBytes));
    return v;
  }

  private isChecked(p: LoadedPlugin): boolean {
    const b = this.validated.get(p.key);
    return b !== undefined && b.length === p.bytes.length && b.every((x, i) => x === p.bytes[i]);
  }

  private async check(p: LoadedPlugin): Promise<void> {
    if (this.isChecked(p)) return;
    await sdkCheck(p);
    this.validated.set(p.key, p.bytes);
  }

  private swap(chain: PluginChain, what: string): string {
    this.current = chain; // the dispatcher reads it per request: the next request sees the new chain
    this.lastResult = `OK: policy chain ${chain.name} ${what} (generation ${chain.generation})`;
    return this.lastResult;
  }

  private failed(msg: string): string {
    this.reloadFailures++;
    this.lastResult = `error: ${msg}; keeping policy chain ${this.current.name} ` +
      `(generation ${this.current.generation})`;
    return this.lastResult;
  }
}
