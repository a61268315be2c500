/**
 * `deno task e2e:xen`: dxenstored as dom0's xenstored under real Xen 4.17 in QEMU (TCG), serving
 * real PV and PVH guests. Unpacks the daemon's .deb into dom0's initramfs (started as Debian's
 * /etc/init.d/xen starts a xenstored: no extra flags), builds the images with
 * ../shared/xen-qemu/build.sh (outside ../shared), boots with its run.sh (one boot at a time,
 * at most 3), and reports every scenario of tests/xen/qemu/dom0/init.sh.
 *
 *   deno task e2e:xen                          dxenstored: boot A (scenario 0 "packaged", 1-3), boot B (benchmark,
 *                                              scenario 4), boot C (cxenstored, benchmark reference)
 *   deno task e2e:xen --reference cxenstored   the identical scenarios against Debian's daemon
 *   deno task e2e:xen --reference oxenstored
 *   deno task e2e:xen --plans P                performance (not run by default): 10 guests, one reading
 *                                              alone, then all at once, and the daemon's system calls
 *                                              per request (strace, added to dom0's image); boots P with
 *                                              dxenstored, cxenstored and oxenstored, reports ratios
 *   deno task e2e:xen --plans P1               the same with the one guest only (minutes, not ten guests'
 *                                              creation: slow under TCG on a busy machine)
 *   deno task e2e:xen --plans L                live update (not run by default): dxenstored replaces itself
 *                                              (xenstore-control live-update, twice) while a PV and a PVH
 *                                              guest's round trips go on over their rings (scenario 6)
 *   deno task e2e:xen --plans LC               the same from cxenstored: cx → dx, dx → dx, dx → cx
 *
 * Options: --plans A,B,P,L,LC  --no-reference-bench   --build-dir DIR
 *          --timeout SECONDS (per boot; default 420, 1800 for plan P: ten guests under TCG, 1200 for
 *          L and LC)
 *          --daemon-arg ARG (repeatable: dom0's XENSTORED_ARGS)   --cpu QEMU_CPU_MODEL
 *          --stall SECONDS (a boot that has not reached dom0's init by then is retried; default 90)
 *          --perf-references LIST (plans P/P1: which of Debian's daemons to boot as references, comma-
 *          separated; default cxenstored,oxenstored; a ten-guest boot takes about 6 minutes on a quiet host)
 *          --tcg-counts (plan B: QEMU runs with the tcgcount plugin, e2e/xen/tcg_plugin: instructions, TB
 *          executions and translations per guest READ by code class, dxenstored against cxenstored; boots
 *          take longer, so the default limits are doubled)
 * Ends with "N passed, N failed"; exit status 1 on any failure, 2 when it cannot run at all.
 */
import { buildOverlay, DAEMON_PATH } from "./package.ts";
import { onPath, run } from "./proc.ts";
import { type BootLog, parseSerialLog } from "./serial_log.ts";
import { benchTable, type BootReport, reportScenario } from "./report.ts";
import { perfTable } from "./perf_report.ts";
import { parseTcgCounts, type TcgBoot, tcgTable } from "./tcg_counts.ts";

const ROOT = new URL("../../", import.meta.url).pathname.replace(/\/$/, "");
const PLAN_SCENARIOS: Record<string, string[]> = {
  A: ["s1", "s2", "s3"],
  B: ["s4"],
  P: ["s5"],
  P1: ["s5"],
  L: ["s6"],
  LC: ["s6"],
};
/** Scenarios of the packaged dxenstored only (tests/xen/qemu/dom0/init.sh's packaged_checks). */
const PACKAGED_SCENARIOS: Record<string, string[]> = { A: ["s0"], B: [], P: [], P1: [], L: [], LC: [] };
/** The performance plans: P (ten guests) and P1 (its one-guest part only, a few minutes). */
const isPerf = (plan: string) => plan === "P" || plan === "P1";
const REFERENCES = ["cxenstored", "oxenstored"];
/** Plan B's guest READs before its first measured window (tests/xen/qemu/guest/init.sh, role s4). */
const PLAN_B_WARM_UP_READS = 200;
/** The READs of each of plan B's two measured windows (the same init.sh). */
const PLAN_B_WINDOW_READS = 1000;
/** Debian's xenstore-control (dom0's /usr/bin/xenstore-control is the multi-call xenstore binary). */
const XSCONTROL = "usr/lib/xen-4.17/bin/xenstore-control";
/**
 * QEMU CPU model: the one Xen's own CI uses (qemu64 + SVM, with NPT for PVH). With run.sh's default
 * (max,-smap,-smep), also without fsgsbase, processes in dom0 and in the guests crashed at random once
 * two guests ran: TLS reads through %fs found another process's FS base ("segfault at fffffffe7fffffff
 * ... 64 48 8b 00 <48> 8b 00" in busybox). Opteron_G5 hangs Xen's boot. See docs/operations.md.
 */
const CPU = "qemu64,+svm,+npt";
/**
 * A boot reaches dom0's init in 10–15 s (run.sh's "dom0 init" milestone: the first line of dom0's init,
 * before any xenstore daemon exists). QEMU TCG sometimes hangs inside dom0's kernel before that (seen:
 * right after "IP idents hash table entries", with the CPU spinning); such a boot is killed after
 * `--stall` seconds and started again, at most BOOT_ATTEMPTS times, and the retry is reported.
 */
const STALL_S = 90;
/** Plan P creates ten guests and boots them at once under TCG: a longer limit per boot. */
const PERF_TIMEOUT_S = 1800;
/**
 * Plans L and LC: two guests busy throughout and two or three switches, each starting Deno under TCG
 * (a boot took 750–810 s on the loaded 2-core machine): a longer limit per boot.
 */
const LIVE_UPDATE_TIMEOUT_S = 1200;
const isLiveUpdate = (plan: string) => plan === "L" || plan === "LC";
const BOOT_ATTEMPTS = 3;

interface Options {
  reference?: string;
  plans: string[];
  referenceBench: boolean;
  buildDir: string;
  timeout: number;
  /** --timeout was given (else plan P gets PERF_TIMEOUT_S). */
  timeoutGiven?: boolean;
  daemonArgs: string[];
  cpu: string;
  stall: number;
  /** The reference daemons booted after a performance plan (--perf-references). */
  perfReferences: string[];
  /** --tcg-counts: every boot's QEMU runs with the tcgcount plugin. */
  tcgCounts?: boolean;
}
/** --tcg-counts: the plugin's emulation costs time; the default limits are multiplied by this. */
const TCG_COUNTS_SLOWDOWN = 2;

function usage(msg?: string): never {
  if (msg) console.error(`e2e:xen: ${msg}`);
  const doc = Deno.readTextFileSync(new URL(import.meta.url)).split("*/")[0];
  console.error(doc.replace(/^\/\*\*\n|^ \* ?/gm, ""));
  Deno.exit(2);
}

function parseOptions(argv: string[]): Options {
  const o: Options = {
    plans: ["A", "B"],
    referenceBench: true,
    buildDir: `${ROOT}/.build/xen-qemu`,
    timeout: 420,
    daemonArgs: [],
    cpu: CPU,
    stall: STALL_S,
    perfReferences: REFERENCES,
    tcgCounts: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => argv[++i] ?? usage(`${a} needs a value`);
    if (a === "--reference") o.reference = val();
    else if (a === "--plans") o.plans = val().split(",");
    else if (a === "--no-reference-bench") o.referenceBench = false;
    else if (a === "--build-dir") o.buildDir = val();
    else if (a === "--timeout") {
      o.timeout = Number(val());
      o.timeoutGiven = true;
    } else if (a === "--daemon-arg") o.daemonArgs.push(val());
    else if (a === "--cpu") o.cpu = val();
    else if (a === "--stall") o.stall = Number(val());
    else if (a === "--perf-references") o.perfReferences = val().split(",").filter((r) => r !== "");
    else if (a === "--tcg-counts") o.tcgCounts = true;
    else if (a === "-h" || a === "--help") usage();
    else usage(`unknown option ${a}`);
  }
  if (o.reference && !REFERENCES.includes(o.reference)) usage(`--reference takes ${REFERENCES.join(" or ")}`);
  if (o.plans.some((p) => !(p in PLAN_SCENARIOS))) usage(`--plans takes A, B, P, P1, L and/or LC`);
  if (!(o.timeout > 0)) usage("--timeout needs seconds");
  if (!(o.stall > 0)) usage("--stall needs seconds");
  if (o.tcgCounts) {
    if (!o.timeoutGiven) o.timeout *= TCG_COUNTS_SLOWDOWN;
    o.stall *= TCG_COUNTS_SLOWDOWN;
  }
  if (o.perfReferences.some((r) => !REFERENCES.includes(r))) {
    usage(`--perf-references takes ${REFERENCES.join(" and/or ")}`);
  }
  return o;
}

function cannotRun(msg: string): never {
  console.log(`e2e:xen: ${msg}`);
  console.log("0 passed, 1 failed");
  Deno.exit(2);
}

async function exists(p: string): Promise<boolean> {
  return await Deno.stat(p).then(() => true, () => false);
}

export interface BootResult {
  log: BootLog;
  seconds: number;
  logPath: string;
  runOutput: string;
  /** QEMU was killed because dom0's init did not start within `o.stall` seconds. */
  stalled: boolean;
  /** The tcgcount plugin's output (--tcg-counts). */
  tcgCountsPath?: string;
}

/** --tcg-counts: the directory of the plugin's qemu-system-x86_64 wrapper (put first in run.sh's PATH). */
interface TcgPlugin {
  readonly binDir: string;
}

/** The limit of one boot: --timeout, else the plan's own (P, L, LC) or the default. */
function bootTimeout(plan: string, o: Pick<Options, "timeout" | "timeoutGiven" | "tcgCounts">): number {
  if (o.timeoutGiven) return o.timeout;
  const slow = o.tcgCounts ? TCG_COUNTS_SLOWDOWN : 1;
  if (isPerf(plan)) return PERF_TIMEOUT_S * slow;
  return isLiveUpdate(plan) ? LIVE_UPDATE_TIMEOUT_S * slow : o.timeout;
}

/**
 * One boot with run.sh, its progress lines streamed; returns the parsed serial log. A boot that has
 * not reached dom0's init after `o.stall` seconds is stopped (its QEMU killed: run.sh then ends).
 */
export async function boot(
  shared: string,
  o: Pick<Options, "buildDir" | "timeout" | "timeoutGiven" | "cpu" | "stall" | "tcgCounts">,
  cpio: string,
  xsd: string,
  plan: string,
  tag: string,
  plugin?: TcgPlugin,
): Promise<BootResult> {
  const logPath = `${o.buildDir}/serial-${tag}-${plan}.log`;
  const tcgCountsPath = plugin ? `${o.buildDir}/tcgcount-${tag}-${plan}.txt` : undefined;
  const t0 = performance.now();
  console.log(`== boot ${plan} (${tag}): run.sh -x ${xsd} -g ${plan}, serial log ${logPath}`);
  if (tcgCountsPath) console.log(`   (QEMU with the tcgcount plugin: ${tcgCountsPath})`);
  const env: Record<string, string> = plugin && tcgCountsPath
    ? {
      PATH: `${plugin.binDir}:${Deno.env.get("PATH") ?? ""}`,
      TCG_COUNTS_OUT: tcgCountsPath,
      TCG_COUNTS_ARGS: "hot=1", // the kernel's and Xen's TBs of each window (e2e/xen/tcg_counts.ts hotTbs)
    }
    : {};
  const child = new Deno.Command(`${shared}/run.sh`, {
    args: [
      "-b",
      o.buildDir,
      "-i",
      cpio,
      "-x",
      xsd,
      "-g",
      plan,
      "-t",
      String(bootTimeout(plan, o)),
      "-l",
      logPath,
      "-c",
      o.cpu,
    ],
    env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let runOutput = "";
  let qemuPid = 0;
  let dom0Init = false;
  let stalled = false;
  const watchdog = setTimeout(() => {
    if (dom0Init || qemuPid === 0) return;
    stalled = true;
    console.log(`   (no dom0 init after ${o.stall} s: QEMU hung in dom0's kernel; stopping this boot)`);
    try {
      Deno.kill(qemuPid, "SIGTERM");
    } catch { /* already gone */ }
  }, o.stall * 1000);
  const dec = new TextDecoder();
  const pump = async (s: ReadableStream<Uint8Array>) => {
    let buf = "";
    for await (const chunk of s) {
      buf += dec.decode(chunk, { stream: true });
      let nl;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        runOutput += line + "\n";
        console.log(`   ${line}`);
        const pid = /^qemu pid (\d+)/.exec(line);
        if (pid) qemuPid = Number(pid[1]);
        if (/\] dom0 init$/.test(line)) dom0Init = true;
      }
    }
  };
  await Promise.all([pump(child.stdout), pump(child.stderr), child.status]);
  clearTimeout(watchdog);
  const seconds = (performance.now() - t0) / 1000;
  const text = await Deno.readTextFile(logPath).catch(() => "");
  return { log: parseSerialLog(text), seconds, logPath, runOutput, stalled, tcgCountsPath };
}

/** boot(), started again (up to BOOT_ATTEMPTS in all) while it stalls before dom0's init. */
async function bootRetrying(...args: Parameters<typeof boot>): Promise<BootResult> {
  for (let attempt = 1;; attempt++) {
    const r = await boot(...args);
    if (!r.stalled || attempt >= BOOT_ATTEMPTS) return r;
    console.log(
      `== boot ${args[4]} (${args[5]}) stalled before dom0's init (nothing of the test had started): ` +
        `booting again (attempt ${attempt + 1} of ${BOOT_ATTEMPTS})`,
    );
  }
}

/** The plan B boots' tcgcount files (--tcg-counts), with the READs of each of the guest's windows. */
async function tcgBoots(reports: readonly (BootReport & { tcgCountsPath?: string })[]): Promise<TcgBoot[]> {
  const out: TcgBoot[] = [];
  for (const r of reports.filter((r) => r.plan === "B" && r.tcgCountsPath)) {
    const parsed = parseTcgCounts(await Deno.readTextFile(r.tcgCountsPath!).catch(() => ""));
    if (!parsed.ok) {
      console.log(`tcgcount (${r.xsd}): ${parsed.error}`);
      continue;
    }
    // the guest's init.sh: 200 warm-up READs, then the two windows its E2E-BENCH lines report (dom0
    // prints them after the guest's idle window: a boot cut short by its limit may lack them)
    const n = (window?: string) =>
      Number(r.log.bench.find((b) => b.n && b.window === window)?.n ?? PLAN_B_WINDOW_READS);
    out.push({ xsd: r.xsd, counts: parsed.counts, readsPerWindow: [PLAN_B_WARM_UP_READS, n(), n("2")] });
  }
  return out;
}

async function main(): Promise<number> {
  const o = parseOptions(Deno.args);
  const shared = Deno.env.get("XEN_QEMU_DIR") ?? `${ROOT}/../shared/xen-qemu`;
  if (!(await exists(`${shared}/build.sh`)) || !(await exists(`${shared}/run.sh`))) {
    cannotRun(
      `${shared} is absent (build.sh, run.sh): the real-Xen E2E boots Xen through it; nothing was run`,
    );
  }
  const missing = [];
  for (const t of ["qemu-system-x86_64", "cpio", "readelf", "gcc", "gzip", "dpkg-deb", "apt-get"]) {
    if (!(await onPath(t))) missing.push(t);
  }
  if (missing.length > 0) {
    cannotRun(
      `missing host tools: ${missing.join(" ")} (apt-get install -y qemu-system-x86 cpio binutils gcc)`,
    );
  }
  const t0 = performance.now();
  const el = () => ((performance.now() - t0) / 1000).toFixed(1);
  await Deno.mkdir(o.buildDir, { recursive: true });

  // ---- package and build (one dom0 image for every boot of this run)
  if (!(await exists(`${o.buildDir}/sysroot/${XSCONTROL}`))) {
    // the Debian sysroot (first run): the overlay takes Debian's xenstore-control from it
    const b0 = await run([`${shared}/build.sh`, o.buildDir]);
    if (!b0.ok) cannotRun(`build.sh failed:\n${b0.stderr.split("\n").slice(-30).join("\n")}`);
  }
  const tag = o.reference ?? "dxenstored";
  const overlay = `${o.buildDir}/overlay-${tag}`;
  const { daemonCommand } = await buildOverlay({
    root: ROOT,
    overlay,
    withDaemon: !o.reference,
    daemonArgs: o.daemonArgs,
    withStrace: o.plans.some(isPerf),
  });
  await Deno.mkdir(`${overlay}/e2e/bin`, { recursive: true });
  await Deno.copyFile(`${o.buildDir}/sysroot/${XSCONTROL}`, `${overlay}/e2e/bin/xenstore-control`);
  if (daemonCommand) console.log(`== packaged dxenstored (the .deb's files): ${daemonCommand}`);
  const cpioName = `dom0-e2e-${tag}.cpio.gz`;
  const b = await run([`${shared}/build.sh`, o.buildDir], {
    env: { EXTRA_DOM0_DIR: overlay, DOM0_CPIO: cpioName },
  });
  await Deno.writeTextFile(`${o.buildDir}/build-${tag}.log`, b.stdout + b.stderr);
  if (!b.ok) {
    console.log(b.stderr.split("\n").slice(-30).join("\n"));
    cannotRun(`build.sh failed (log: ${o.buildDir}/build-${tag}.log)`);
  }
  const size = (await Deno.stat(`${o.buildDir}/${cpioName}`)).size;
  console.log(`== images built in ${el()} s (dom0 initramfs ${(size / 1e6).toFixed(1)} MB)`);

  // ---- the tcgcount plugin (--tcg-counts): built here, loaded by a qemu-system-x86_64 wrapper
  let plugin: TcgPlugin | undefined;
  if (o.tcgCounts) {
    const dir = `${o.buildDir}/tcg_plugin`;
    const pb = await run([`${ROOT}/e2e/xen/tcg_plugin/build.sh`, dir]);
    if (!pb.ok) cannotRun(`the tcgcount plugin did not build:\n${pb.stderr}`);
    plugin = { binDir: `${dir}/bin` };
    console.log(`== tcgcount plugin: ${pb.stdout.trim()}`);
  }

  // ---- boots: one at a time
  const xsd = o.reference ?? DAEMON_PATH;
  const reports: BootReport[] = [];
  for (const plan of o.plans) {
    const r = await bootRetrying(shared, o, `${o.buildDir}/${cpioName}`, xsd, plan, tag, plugin);
    reports.push({ plan, xsd: tag, counted: true, ...r });
    console.log(
      `== boot ${plan} (${tag}) took ${r.seconds.toFixed(1)} s: ${r.log.result ?? "no E2E-RESULT"}`,
    );
  }
  if (!o.reference && o.referenceBench && o.plans.includes("B")) {
    // the benchmark reference: the same image, cxenstored instead of dxenstored
    const r = await bootRetrying(
      shared,
      o,
      `${o.buildDir}/${cpioName}`,
      "cxenstored",
      "B",
      "cxenstored-bench",
      plugin,
    );
    reports.push({ plan: "B", xsd: "cxenstored", counted: false, ...r });
    console.log(`== boot B (cxenstored, benchmark reference) took ${r.seconds.toFixed(1)} s`);
  }
  const perfPlan = o.plans.find(isPerf);
  if (!o.reference && o.referenceBench && perfPlan !== undefined) {
    // the performance references: the same image and load, each of Debian's daemons
    for (const ref of o.perfReferences) {
      const r = await bootRetrying(
        shared,
        o,
        `${o.buildDir}/${cpioName}`,
        ref,
        perfPlan,
        `${ref}-perf`,
        plugin,
      );
      reports.push({ plan: perfPlan, xsd: ref, counted: false, ...r });
      console.log(`== boot ${perfPlan} (${ref}, performance reference) took ${r.seconds.toFixed(1)} s`);
    }
  }

  // ---- report
  let passed = 0, failed = 0;
  console.log("");
  for (const rep of reports.filter((r) => r.counted)) {
    const own = rep.xsd === "dxenstored" ? PACKAGED_SCENARIOS[rep.plan] : [];
    for (const id of [...own, ...PLAN_SCENARIOS[rep.plan]]) {
      if (reportScenario(rep, id)) passed++;
      else failed++;
    }
  }
  for (const line of benchTable(reports)) console.log(line);
  for (const line of perfTable(reports)) console.log(line);
  if (o.tcgCounts) {
    for (const line of tcgTable(await tcgBoots(reports))) console.log(line);
  }
  console.log(`== total ${el()} s`);
  console.log(`${passed} passed, ${failed} failed`);
  return failed === 0 ? 0 : 1;
}

if (import.meta.main) Deno.exit(await main());
