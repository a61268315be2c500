// `bin/deno task bench:policy` (docs/plugins.md, "Cost"): what the WebAssembly policy costs.
//   1. READ and WRITE ops/s with 16 clients (anchors' xsbench): the default `legacy` plugin chain vs
//      an allow-all policy (bench/policy_daemon.ts runs both, so only the policy differs). Rounds
//      alternate the order; the median of the rounds is reported with the ratio (target: ≥ 0.90).
//   2. Per-call cost, in process: a plugin decision through our synchronous Extism host (uncached),
//      a cached chain decision, and the same call through the Extism JS SDK (async).
//   3. Load time: check+meter+compile, instantiate+policy_info, the Extism SDK check, and the whole
//      PolicyManager.start.
// Options: --seconds N (default 3), --rounds N (default 3), --micro-only, --cpu same|none (default
// same: daemon and clients on CPU 0, like `deno task bench`).
import { start, stop, type TargetSpec } from "./targets.ts";
import { QuestionEncoder } from "../src/policy/abi.ts";
import { loadPlugins, resolveSpec } from "../src/policy/loader.ts";
import { compilePlugin, PluginInstance, VarStore } from "../src/policy/plugin.ts";
import { PluginChain } from "../src/policy/chain.ts";
import { EXTISM_SDK, sdkCheck } from "../src/policy/sdk_check.ts";
import { PolicyManager } from "../src/policy/manager.ts";
import { Perms } from "../src/store/perms.ts";

const root = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const xsbench = `${root}/.build/anchors/xsbench`;
const args = Deno.args;
const opt = (flag: string, def: string) => {
  const i = args.indexOf(flag);
  return i >= 0 ? args[i + 1] : def;
};
const seconds = Number(opt("--seconds", "3"));
const rounds = Number(opt("--rounds", "3"));
const cpu = opt("--cpu", "same");
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const out: string[] = [];
const say = (s: string) => {
  console.log(s);
  out.push(s);
};

async function micro(): Promise<void> {
  const spec = resolveSpec({ chain: ["legacy"] });
  const [legacy] = loadPlugins(spec);
  // Load time.
  const compileMs: number[] = [];
  const instMs: number[] = [];
  const sdkMs: number[] = [];
  const startMs: number[] = [];
  for (let i = 0; i < 7; i++) {
    let t = performance.now();
    const c = compilePlugin("legacy", legacy.bytes, spec.limits);
    compileMs.push(performance.now() - t);
    t = performance.now();
    new PluginInstance(c, legacy.config, new VarStore(1 << 20));
    instMs.push(performance.now() - t);
    t = performance.now();
    await sdkCheck(legacy);
    sdkMs.push(performance.now() - t);
    t = performance.now();
    await PolicyManager.start({ chain: ["legacy"] });
    startMs.push(performance.now() - t);
  }
  say(
    `\n### Load time of the legacy plugin (${legacy.bytes.length} bytes), median of 7 (first run in brackets)`,
  );
  say("| step | ms |\n|---|---|");
  const row = (n: string, xs: number[]) => say(`| ${n} | ${median(xs).toFixed(2)} (${xs[0].toFixed(2)}) |`);
  row("check + meter + compile (sync)", compileMs);
  row("instantiate + policy_info (sync)", instMs);
  row("Extism SDK check (async: SDK load, policy_info + probes)", sdkMs);
  row("PolicyManager.start (all of the above, daemon start/reload)", startMs);

  // Per-call cost.
  const p = new PluginInstance(legacy.compiled, legacy.config, new VarStore(1 << 20));
  const e = new QuestionEncoder();
  const perms = Perms.of(5, 0, [{ domid: 7, bits: 1 }, { domid: 9, bits: 3 }]);
  const path = "/local/domain/5/device/vif/0/state";
  e.header(1, 0, 0, 7, 0);
  e.perms(perms, path.length);
  e.latin1(path);
  const N = 300_000;
  for (let i = 0; i < 20_000; i++) p.decide(e);
  let t = performance.now();
  for (let i = 0; i < N; i++) p.decide(e);
  const direct = (performance.now() - t) * 1e6 / N;
  const chain = new PluginChain([p]);
  const who = { domid: 7, target: null, privileged: false };
  chain.checkNode(who, "read", path, perms);
  t = performance.now();
  for (let i = 0; i < N; i++) chain.checkNode(who, "read", path, perms);
  const cached = (performance.now() - t) * 1e6 / N;
  // Uncached through the chain: a fresh permission list object per call defeats the cache.
  const lists = Array.from(
    { length: 1000 },
    (_, i) => Perms.of(5, 0, [{ domid: 7, bits: 1 }, { domid: 100 + i, bits: 3 }]),
  );
  t = performance.now();
  for (let i = 0; i < N; i++) {
    const c2 = i % 1000 === 0 ? new PluginChain([p]) : chain;
    c2.checkNode(who, "read", path, lists[i % 1000]);
  }
  const chainMiss = (performance.now() - t) * 1e6 / N;
  // The same call through the Extism SDK.
  const spec2: string = EXTISM_SDK;
  const { createPlugin } = await import(spec2);
  const sdk = await createPlugin({ wasm: [{ data: legacy.bytes }] }, { useWasi: false, runInWorker: false });
  const input = e.buf.slice(0, e.length);
  const M = 10_000; // 1.0.3 leaks two blocks per call: reset() every 5000 calls
  for (let i = 0; i < 2000; i++) await sdk.call("policy_decide", input);
  await sdk.reset();
  t = performance.now();
  for (let i = 0; i < M; i++) {
    await sdk.call("policy_decide", input);
    if (i % 5000 === 4999) await sdk.reset();
  }
  const viaSdk = (performance.now() - t) * 1e6 / M;
  await sdk.close();
  say(`\n### Per-decision cost (node question, unprivileged caller, 2-entry ACL, ${path.length}-byte path)`);
  say("| path | ns/decision |\n|---|---|");
  say(`| plugin call through our synchronous Extism host (metered) | ${direct.toFixed(0)} |`);
  say(`| chain.checkNode, decision cache miss (encode + call + cache fill) | ${chainMiss.toFixed(0)} |`);
  say(`| chain.checkNode, decision cache hit | ${cached.toFixed(0)} |`);
  say(
    `| the same plugin call through the Extism JS SDK ${EXTISM_SDK.split("@").pop()} (await) | ${
      viaSdk.toFixed(0)
    } |`,
  );
}

async function macro(): Promise<void> {
  try {
    Deno.statSync(xsbench);
  } catch {
    say(`\n(no ${xsbench}: build the anchors — \`deno task bench\` does — for the throughput part)`);
    return;
  }
  const work = Deno.makeTempDirSync({ prefix: "dxpol." });
  const env = { anchorSh: "", anchorsBuild: "", daemonCpu: cpu === "same" ? 0 : undefined };
  const daemon = (name: string, extra: string[]): TargetSpec => ({
    name,
    kind: "custom",
    cmd: [
      `${root}/bin/deno`,
      "run",
      "-A",
      "--quiet",
      `${root}/bench/policy_daemon.ts`,
      "--socket",
      "{socket}",
      ...extra,
    ],
  });
  const specs = [daemon("legacy", ["--policy", "legacy"]), daemon("allow-all", ["--allow-all"])];
  const running = [];
  try {
    for (const s of specs) running.push(await start(s, `${work}/${s.name}`, env));
    const results: Record<string, Record<string, number[]>> = {};
    const pin = cpu === "same" ? ["taskset", "-c", "0"] : [];
    for (const wl of ["read", "write"]) {
      results[wl] = { legacy: [], "allow-all": [] };
      for (let r = 0; r < rounds; r++) {
        const order = r % 2 === 0 ? running : [...running].reverse();
        for (const d of order) {
          const cmd = [
            ...pin,
            xsbench,
            "--socket",
            d.socket,
            "--workload",
            wl,
            "--clients",
            "16",
            "--seconds",
            String(seconds),
            "--warmup",
            "0.5",
          ];
          const o = await new Deno.Command(cmd[0], { args: cmd.slice(1), stdout: "piped", stderr: "piped" })
            .output();
          const line = new TextDecoder().decode(o.stdout).split("\n").filter((l) => l.startsWith("{")).pop();
          const j = line ? JSON.parse(line) : {};
          if (!j.ok) {
            throw new Error(`xsbench ${wl} on ${d.spec.name}: ${line ?? new TextDecoder().decode(o.stderr)}`);
          }
          results[wl][d.spec.name].push(j.ops_per_s);
          console.error(`[${wl} round ${r + 1}] ${d.spec.name}: ${Math.round(j.ops_per_s)} ops/s`);
        }
      }
    }
    say(`\n### Throughput, 16 clients, ${seconds} s × ${rounds} rounds each (median; cpu ${cpu})`);
    say(
      "| workload | legacy chain ops/s | allow-all ops/s | legacy ÷ allow-all | all rounds (legacy / allow-all) |",
    );
    say("|---|---|---|---|---|");
    for (const wl of ["read", "write"]) {
      const l = median(results[wl].legacy);
      const a = median(results[wl]["allow-all"]);
      say(
        `| ${wl.toUpperCase()} | ${Math.round(l)} | ${Math.round(a)} | ${(l / a).toFixed(3)} | ` +
          `${results[wl].legacy.map(Math.round).join(", ")} / ${
            results[wl]["allow-all"].map(Math.round).join(", ")
          } |`,
      );
    }
  } finally {
    for (const r of running) await stop(r, env);
    Deno.removeSync(work, { recursive: true });
  }
}

say(
  `## policy bench ${new Date().toISOString()} (deno ${Deno.version.deno}, load ${
    Deno.readTextFileSync("/proc/loadavg").split(" ")[0]
  })`,
);
await micro();
if (!args.includes("--micro-only")) await macro();
const dir = `${root}/.build/bench`;
Deno.mkdirSync(dir, { recursive: true });
Deno.writeTextFileSync(`${dir}/policy-summary.md`, out.join("\n") + "\n");
console.error(`summary: ${dir}/policy-summary.md`);
