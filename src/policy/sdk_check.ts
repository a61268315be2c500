// The Extism SDK conformance check run when a plugin (file + config) is loaded for the first time: the
// plugin must load in the official Extism JS SDK (@extism/extism, no WASI, no functions, no hosts or
// paths) and answer policy_info and a set of probe questions byte for byte as it does through our
// synchronous host (kernel.ts). This proves it is a real Extism plugin and that our host ABI agrees
// with the SDK's. Our metered instance answers first: a probe that loops or grabs memory fails there,
// within its budget, before the unmetered SDK instance ever runs it (the calls are deterministic).
import { log } from "../common/log.ts";
import {
  CAPABILITY_CODES,
  FLAG_HAS_TARGET,
  FLAG_PRIVILEGED,
  FLAG_TRANSACTION,
  KIND_CAPABILITY,
  KIND_CREATE,
  KIND_MESSAGE,
  KIND_NODE,
  KIND_SETPERMS,
  QuestionEncoder,
} from "./abi.ts";
import type { LoadedPlugin } from "./loader.ts";
import { PluginInstance, PluginLoadError, VarStore } from "./plugin.ts";
import { Perms } from "../store/perms.ts";

/** Wire message types used by the probes (xs_wire.h: XS_READ = 2, XS_WRITE = 11). */
const XS_READ = 2;
const XS_WRITE = 11;

/** Probe questions: a few typical questions of each kind. */
function probes(): Array<{ kind: number; encode: (e: QuestionEncoder) => void }> {
  const guest = Perms.of(5, 0, [{ domid: 7, bits: 1 }]);
  const shared = Perms.of(0, 0, [{ domid: 9, bits: 1 }, { domid: 7, bits: 3 }]);
  const node =
    (sub: number, flags: number, domid: number, target: number, perms: Perms, path: string) =>
    (e: QuestionEncoder) => {
      e.header(KIND_NODE, sub, flags, domid, target);
      e.perms(perms, path.length);
      e.latin1(path);
    };
  const message = (type: number, payload: string) => (e: QuestionEncoder) => {
    e.header(KIND_MESSAGE, type, FLAG_TRANSACTION, 5, 0);
    e.buf.fill(0, 8, 16);
    new DataView(e.buf.buffer).setUint32(8, payload.length, true);
    e.length = 16;
    e.latin1(payload);
  };
  return [
    { kind: KIND_NODE, encode: node(0, 0, 7, 0, guest, "/local/domain/5/data") },
    { kind: KIND_NODE, encode: node(1, 0, 7, 0, guest, "/local/domain/5/data") },
    { kind: KIND_NODE, encode: node(1, FLAG_HAS_TARGET, 7, 9, shared, "/vm/shared") },
    { kind: KIND_NODE, encode: node(1, FLAG_PRIVILEGED, 0, 0, guest, "/tool/x") },
    {
      kind: KIND_CREATE,
      encode: (e) => {
        e.header(KIND_CREATE, 0, 0, 7, 0);
        e.perms(guest, 0);
      },
    },
    {
      kind: KIND_SETPERMS,
      encode: (e) => {
        e.header(KIND_SETPERMS, 0, 0, 5, 0);
        e.perms(guest, 0);
        e.perms(Perms.of(6, 1), 0);
      },
    },
    { kind: KIND_CAPABILITY, encode: (e) => e.header(KIND_CAPABILITY, CAPABILITY_CODES.introduce, 0, 5, 0) },
    { kind: KIND_MESSAGE, encode: message(XS_WRITE, "/local/domain/5/x\0hello") },
    { kind: KIND_MESSAGE, encode: message(XS_READ, "data\0") },
  ];
}

function samePrefix(ours: Uint8Array, sdk: Uint8Array | undefined): boolean {
  // Extism JS SDK 1.0.3 returns the whole output block, ignoring output_set's length: compare our bytes.
  if (sdk === undefined || sdk.length < ours.length) return false;
  for (let i = 0; i < ours.length; i++) if (ours[i] !== sdk[i]) return false;
  return true;
}

const hex = (b: Uint8Array | undefined) =>
  b === undefined ? "(none)" : [...b].map((x) => x.toString(16).padStart(2, "0")).join("");

/** The part of the Extism JS SDK API used here. */
interface ExtismSdk {
  createPlugin(
    manifest: { wasm: Array<{ data: Uint8Array }>; config: Record<string, string> },
    opts: Record<string, unknown>,
  ): Promise<{
    call(fn: string, input?: Uint8Array): Promise<{ bytes(): Uint8Array } | null>;
    close(): Promise<void>;
  }>;
}

/** The pinned SDK version (package.json; deno.json maps "@extism/extism" to it). */
export const EXTISM_SDK = "npm:@extism/extism@1.0.3";

/**
 * Imported on first use, by a literal specifier so that the bundler puts the SDK inside the built
 * program (compile/build.ts) and evaluates it only when a plugin is checked. Only createPlugin/call/
 * close are used (typed above).
 */
async function loadSdk(): Promise<ExtismSdk> {
  const sdk = await import("@extism/extism");
  return sdk as unknown as ExtismSdk;
}

/** Throws PluginLoadError if the SDK cannot load `p` or answers differently. */
export async function sdkCheck(p: LoadedPlugin): Promise<void> {
  const { createPlugin } = await loadSdk();
  const fail = (m: string) => new PluginLoadError(p.name, `Extism SDK check: ${m}`);
  const ours = new PluginInstance(p.compiled, p.config, new VarStore(p.compiled.limits.varBytes));
  const quiet = {
    info: () => {},
    debug: () => {},
    warn: (m: string) => log("debug", `extism sdk (${p.name}): ${m}`),
    error: (m: string) => log("debug", `extism sdk (${p.name}): ${m}`),
  } as unknown as Console;
  let sdk;
  try {
    sdk = await createPlugin({ wasm: [{ data: p.bytes }], config: Object.fromEntries(p.config) }, {
      useWasi: false,
      functions: {},
      allowedPaths: {},
      allowedHosts: [],
      // SDK 1.0.3 reads the plugin config from the options, not from the manifest: give it both.
      config: Object.fromEntries(p.config),
      runInWorker: false,
      logger: quiet,
    });
  } catch (e) {
    throw fail(`cannot load: ${(e as Error).message}`);
  }
  try {
    const info = (await sdk.call("policy_info"))?.bytes();
    if (!samePrefix(ours.info, info)) {
      throw fail(`policy_info differs: ours ${hex(ours.info)}, SDK ${hex(info)}`);
    }
    const e = new QuestionEncoder();
    for (const probe of probes()) {
      if (((ours.interests >> probe.kind) & 1) === 0) continue;
      probe.encode(e);
      const out = ours.decide(e);
      if (!(out instanceof Uint8Array)) throw fail(`probe of kind ${probe.kind} failed: ${out.message}`);
      const mine = out.slice();
      let theirs;
      try {
        theirs = (await sdk.call("policy_decide", e.buf.slice(0, e.length)))?.bytes();
      } catch (err) {
        throw fail(`probe of kind ${probe.kind} failed in the SDK: ${(err as Error).message}`);
      }
      if (!samePrefix(mine, theirs)) {
        throw fail(`probe of kind ${probe.kind} differs: ours ${hex(mine)}, SDK ${hex(theirs)}`);
      }
    }
  } catch (e) {
    throw e instanceof PluginLoadError ? e : fail((e as Error).message);
  } finally {
    await sdk.close();
  }
}
