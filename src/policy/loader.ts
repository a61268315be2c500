// Which plugins make up the chain, where their files are, their Extism config and the sandbox limits:
// from `--policy name[,name...]` and an optional config file (key = value lines, the same syntax as
// dxenstored.conf/oxenstored.conf, so the policy keys can live there). Building a chain from a spec is
// synchronous; the Extism SDK conformance check (sdk_check.ts) is the asynchronous part of loading.
import { PluginChain } from "./chain.ts";
import {
  type CompiledPlugin,
  compilePlugin,
  DEFAULT_LIMITS,
  PluginInstance,
  PluginLoadError,
  type SandboxLimits,
  VarStore,
} from "./plugin.ts";
import { AssetError, readAsset } from "../common/assets.ts";

/** The built-in plugins shipped in policies/wasm/ (embedded in the built program: compile/build.ts). */
export const BUILTIN_PLUGINS = ["legacy", "chinese-wall", "strict-protocol", "maintenance"] as const;
export const DEFAULT_CHAIN = ["legacy"];

/** The asset (src/common/assets.ts) holding built-in plugin `name`. */
export function builtinPluginAsset(name: string): string {
  return `policies/wasm/${name}.wasm`;
}

export interface PolicySpec {
  /** Plugin names, in chain order. */
  readonly chain: readonly string[];
  /** Plugin files by name (built-ins need no entry). */
  readonly files: ReadonlyMap<string, string>;
  /** Extism config per plugin name. */
  readonly config: ReadonlyMap<string, ReadonlyMap<string, string>>;
  readonly limits: SandboxLimits;
}

const NAME = /^[a-z0-9][a-z0-9_-]{0,63}$/;
const MAX_CHAIN = 16;

/** `legacy,chinese-wall` → names; an error message for a malformed list. */
export function parseChainList(s: string): string[] | string {
  const names = s.split(",").map((n) => n.trim()).filter((n) => n.length > 0);
  if (names.length === 0) return "empty policy list";
  if (names.length > MAX_CHAIN) return `at most ${MAX_CHAIN} policies in a chain`;
  for (const n of names) if (!NAME.test(n)) return `bad policy name "${n.slice(0, 64)}"`;
  if (new Set(names).size !== names.length) return "a policy appears twice in the chain";
  return names;
}

export interface PolicyFileSettings {
  chain?: string[];
  files: Map<string, string>;
  config: Map<string, Map<string, string>>;
  limits: Partial<{ -readonly [K in keyof SandboxLimits]: number }>;
}

/**
 * Parse the policy keys of a config file. Keys:
 *   policy = legacy, chinese-wall          the chain
 *   policy-plugin.NAME = /path/NAME.wasm   a plugin that is not built in
 *   policy-config.NAME.KEY = VALUE         Extism config of plugin NAME
 *   policy-fuel = N, policy-memory-pages = N, policy-var-bytes = N   sandbox limits
 * Lines starting with # are comments; keys not starting with "policy" belong to others and are
 * ignored. Returns settings or an error message naming the line.
 */
export function parsePolicyFile(text: string): PolicyFileSettings | string {
  const s: PolicyFileSettings = { files: new Map(), config: new Map(), limits: {} };
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (line === "" || line.startsWith("#")) continue;
    const eq = line.indexOf("=");
    const where = `line ${i + 1}`;
    if (eq < 0) {
      if (line.startsWith("policy")) return `${where}: expected key = value`;
      continue;
    }
    const key = line.slice(0, eq).trim();
    const value = line.slice(eq + 1).trim();
    if (!key.startsWith("policy")) continue;
    if (key === "policy") {
      const c = parseChainList(value);
      if (typeof c === "string") return `${where}: ${c}`;
      s.chain = c;
    } else if (key.startsWith("policy-plugin.")) {
      const name = key.slice("policy-plugin.".length);
      if (!NAME.test(name)) return `${where}: bad plugin name "${name}"`;
      if (value === "") return `${where}: empty plugin path`;
      s.files.set(name, value);
    } else if (key.startsWith("policy-config.")) {
      const rest = key.slice("policy-config.".length);
      const dot = rest.indexOf(".");
      const name = rest.slice(0, dot);
      if (dot <= 0 || !NAME.test(name) || dot === rest.length - 1) {
        return `${where}: expected policy-config.NAME.KEY`;
      }
      if (!s.config.has(name)) s.config.set(name, new Map());
      s.config.get(name)!.set(rest.slice(dot + 1), value);
    } else if (key === "policy-fuel" || key === "policy-memory-pages" || key === "policy-var-bytes") {
      const n = /^[0-9]{1,10}$/.test(value) ? Number(value) : NaN;
      if (!(n > 0) || n > 2 ** 31 - 1) return `${where}: ${key} needs a positive integer`;
      if (key === "policy-fuel") s.limits.fuelPerCall = n;
      else if (key === "policy-memory-pages") s.limits.memoryPages = Math.min(n, 65536);
      else s.limits.varBytes = n;
    } else {
      return `${where}: unknown policy key "${key}"`;
    }
  }
  return s;
}

/** Where the policy spec comes from: the command line and/or a config file (re-read on reload). */
export interface PolicySource {
  /** --policy list, overriding the file's `policy` key. */
  readonly chain?: readonly string[];
  /** --policy-config FILE. */
  readonly configFile?: string;
}

/** Resolve a source into a spec, reading the config file now. Throws Error with a clear message. */
export function resolveSpec(src: PolicySource): PolicySpec {
  let file: PolicyFileSettings = { files: new Map(), config: new Map(), limits: {} };
  if (src.configFile !== undefined) {
    let text: string;
    try {
      text = Deno.readTextFileSync(src.configFile);
    } catch (e) {
      throw new Error(`policy config ${src.configFile}: ${(e as Error).message}`);
    }
    const parsed = parsePolicyFile(text);
    if (typeof parsed === "string") throw new Error(`policy config ${src.configFile}: ${parsed}`);
    file = parsed;
  }
  return {
    chain: src.chain ?? file.chain ?? DEFAULT_CHAIN,
    files: file.files,
    config: file.config,
    limits: { ...DEFAULT_LIMITS, ...file.limits },
  };
}

/** The bytes of plugin `name`: its configured file, else the built-in one. Throws PluginLoadError. */
export function pluginBytes(spec: PolicySpec, name: string): Uint8Array {
  const path = spec.files.get(name);
  if (path !== undefined) {
    try {
      return Deno.readFileSync(path);
    } catch (e) {
      throw new PluginLoadError(name, `cannot read ${path}: ${(e as Error).message}`);
    }
  }
  if ((BUILTIN_PLUGINS as readonly string[]).includes(name)) {
    try {
      return readAsset(builtinPluginAsset(name));
    } catch (e) {
      if (e instanceof AssetError) throw new PluginLoadError(name, `built-in plugin: ${e.message}`);
      throw e;
    }
  }
  throw new PluginLoadError(
    name,
    `unknown policy (built in: ${BUILTIN_PLUGINS.join(", ")}; others need policy-plugin.${name} = FILE)`,
  );
}

export interface LoadedPlugin {
  readonly name: string;
  readonly bytes: Uint8Array;
  readonly compiled: CompiledPlugin;
  readonly config: ReadonlyMap<string, string>;
  /** Identity of (bytes, config) for the SDK-checked set: config text + a hash of the bytes. */
  readonly key: string;
}

/** Read, check, meter and compile every plugin of the spec. Throws PluginLoadError. */
export function loadPlugins(spec: PolicySpec): LoadedPlugin[] {
  return spec.chain.map((name) => {
    const bytes = pluginBytes(spec, name);
    const config = spec.config.get(name) ?? new Map<string, string>();
    const key = `${fnv1a(bytes)} ${bytes.length} ${JSON.stringify([...config].sort())}`;
    return { name, bytes, compiled: compilePlugin(name, bytes, spec.limits), config, key };
  });
}

/** Instances for `plugins`, sharing state through `vars` (one VarStore per plugin name), as a chain. */
export function buildChain(
  plugins: readonly LoadedPlugin[],
  vars: (name: string) => VarStore,
  generation: number,
): PluginChain {
  return new PluginChain(
    plugins.map((p) => new PluginInstance(p.compiled, p.config, vars(p.name))),
    generation,
  );
}

/** FNV-1a, 64 bits, as hex (the SDK-checked set also compares the bytes themselves). */
function fnv1a(b: Uint8Array): string {
  let h = 0xcbf29ce484222325n;
  const mask = (1n << 64n) - 1n;
  for (let i = 0; i < b.length; i++) h = ((h ^ BigInt(b[i])) * 0x100000001b3n) & mask;
  return h.toString(16);
}
