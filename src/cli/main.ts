// dxenstored: the daemon's entry point. A drop-in dom0 xenstored: Xen's cxenstored/oxenstored options
// and configuration keys (options.ts, config.ts), fork by default with a locked pid file
// (daemonize.ts, pidfile.ts), systemd readiness (notify.ts); the daemon itself is assembled by
// daemon.ts. Serves the Unix socket until SIGINT/SIGTERM, then removes the socket file.
// docs/operations.md is the operator's guide.
import { log } from "../common/log.ts";
import { PolicyManager } from "../policy/manager.ts";
import { openPlatform } from "../xen/open.ts";
import type { XenPlatform } from "../xen/platform.ts";
import { formatBackendSpec, groupWindowMs, openState } from "../backend/backend.ts";
import { VERSION } from "../common/version.ts";
import { StorageMetrics } from "../observe/storage.ts";
import { createBackend } from "../backend/open.ts";
import { groupCommitGate } from "../backend/group.ts";
import { migrationCommand } from "./export.ts";
import { DetachedDaemon, isDetachedChild, runParent } from "./daemonize.ts";
import { notifySocket, sdNotify } from "./notify.ts";
import { liveUpdateStart } from "../live_update/daemon.ts";
import { Daemon } from "./daemon.ts";
import { nameProcess } from "./process_name.ts";
import {
  claimInstance,
  configTest,
  loadOptions,
  logStartupNotes,
  makeFolders,
  removeStaleSocket,
  reportStartupFailure,
  setupLogging,
} from "./startup.ts";
import { StartupFailure } from "./startup_failure.ts";

// The command line without the configuration file (tests and tools parse options with it).
export { type CliOptions, type DaemonOptions, parseArgs, usage } from "./options.ts";

export async function main(): Promise<number> {
  const sub = Deno.args[0];
  if (sub === "export" || sub === "import") return await migrationCommand(sub, Deno.args.slice(1));
  // `dxenstored` to pgrep and journald (_COMM) as the launchers' argv[0] makes it to pidof.
  nameProcess();
  const loaded = loadOptions(Deno.args, (k) => Deno.env.get(k));
  if (loaded.kind === "exit") return loaded.code;
  const parsed = loaded.opts;
  if (parsed.configTest) return configTest(loaded);

  // Fork by default: this process starts the daemon and returns once it serves (daemonize.ts).
  // A live update (-U) never forks: this process already is the daemon.
  if (parsed.fork && !isDetachedChild() && !parsed.liveUpdate) {
    return await runParent({ args: Deno.args, socket: parsed.socket, outputPid: parsed.outputPid });
  }
  const detached = isDetachedChild() ? DetachedDaemon.start() : null;
  // -U with the same options: the process was the detached daemon before the exec (options that fork).
  const daemonLog = setupLogging(parsed, detached !== null || (parsed.liveUpdate && parsed.fork));
  const logOutput = daemonLog.output;
  logStartupNotes(loaded);

  // Started by a live update (-U): the state of the program we replace, read and checked first.
  const handover = parsed.liveUpdate ? liveUpdateStart(parsed.rundir) : null;
  if (handover !== null && handover.kind === "error") return 1;
  // One daemon per pid file and socket: a second start leaves the running one alone and exits 0
  // (with -U the socket is ours already: it is inherited).
  const claim = await claimInstance(parsed, handover !== null);
  if (claim.kind === "busy") {
    log("info", claim.message);
    detached?.busy(null);
    return 0;
  }
  // Every failure from here until the socket serves is one line in the log and on the terminal
  // that started the daemon, with a non-zero exit status (startup_failure.ts).
  const cleanup: Array<() => void> = [];
  const fail = (f: StartupFailure): number => {
    // A live update's new program goes back to the previous one (which serves on and answers the
    // caller); it returns only if there is no way back. Nothing of ours needs undoing before the exec:
    // every descriptor we opened is close-on-exec (pid file lock, store), nothing was adopted yet.
    if (handover?.kind === "ok") handover.goBack(f.line());
    for (const undo of cleanup.reverse()) undo();
    return reportStartupFailure(f, daemonLog, detached);
  };
  if (claim.kind === "error") return fail(claim.failure);
  const pidFile = claim.pidFile;
  if (pidFile !== null) cleanup.push(() => pidFile.release());
  makeFolders(parsed);

  const storeName = formatBackendSpec(parsed.backend);
  let backend;
  try {
    backend = createBackend(parsed.backend, {
      sync: parsed.sync,
      recover: parsed.recover,
      asyncIo: parsed.groupIo === "async",
    });
  } catch (e) {
    return fail(StartupFailure.of("open the store", storeName, e));
  }
  cleanup.push(() => backend.close());
  // Commit/sync durations and backend failures (logged at error level, counted): the metrics.
  const storage = new StorageMetrics();
  let db;
  let storedDomains;
  try {
    ({ db, domains: storedDomains } = handover === null
      ? openState(backend, storage)
      : handover.openState(backend, storage));
  } catch (e) {
    // A damaged store (BackendError explains what to do), a locked or an unreadable one.
    return fail(StartupFailure.of("open the store", storeName, e));
  }
  let policies: PolicyManager;
  try {
    policies = await PolicyManager.start({ chain: parsed.policy, configFile: parsed.policyConfig });
  } catch (e) {
    return fail(
      StartupFailure.of("load the policy", parsed.policyConfig ?? (parsed.policy ?? []).join(","), e),
    );
  }
  if (handover?.kind === "ok") {
    try {
      // The plugins' state of the program we replace (DX_POLICY): a chain that cannot take it must
      // not serve (a Chinese Wall would forget who touched what), so this program goes back.
      handover.restorePolicy(policies);
    } catch (e) {
      return fail(StartupFailure.of("take over the policy plugins' state", null, e));
    }
  }
  let platform: XenPlatform | null = null;
  let daemon: Daemon;
  const gate = groupCommitGate(backend, groupWindowMs(parsed.sync), (e) => {
    // The replies it covers are queued as successes: stop before any is sent (docs/backends.md).
    log("error", `${e.message}; stopping without sending the replies it covered`);
    Deno.exit(1);
  }, storage);
  try {
    // Event channels handed over with rings: adopted where there is Xen (real or simulated); else the
    // rings are dropped with a log line (a cxenstored's dom0 ring under the anchors' shim).
    const inherited = handover?.kind === "ok" && parsed.xen !== undefined && parsed.xen.kind !== "none"
      ? handover.inherited
      : undefined;
    platform = openPlatform(parsed.xen ?? { kind: "none" }, inherited);
    daemon = new Daemon(parsed, {
      db,
      policy: policies,
      platform,
      backend,
      gate,
      storage,
      args: Deno.args,
      // A live update's new program gets our environment and NOTIFY_SOCKET (for its STOPPING=1).
      env: () => {
        const env = Deno.env.toObject();
        const ns = notifySocket();
        return ns === undefined ? env : { ...env, NOTIFY_SOCKET: ns };
      },
    });
    daemon.startDomains(storedDomains, inherited !== undefined);
  } catch (e) {
    const xen = parsed.xen ?? { kind: "none" };
    const [what, where] = xen.kind === "sim" ? ["open the simulated Xen (--xen sim)", xen.dir] : [
      `attach to Xen (--xen ${xen.kind})`,
      "/dev/xen",
    ];
    const f = StartupFailure.of(what, where, e);
    // Before closing the platform: it holds the inherited event channels the old program needs.
    if (handover?.kind === "ok") handover.goBack(f.line());
    platform?.close();
    return fail(f);
  }
  if (gate !== null) {
    log(
      "info",
      `group commit (${parsed.sync}): ${
        gate.completionFd !== null ? "asynchronous writes (Linux AIO)" : "inline syncs"
      }`,
    );
  }
  const stop = (sig: string) => () => {
    log("info", `${sig} received, shutting down`);
    // systemd: the stop is under way (Type=notify; a no-op without NOTIFY_SOCKET).
    sdNotify(`STOPPING=1\nSTATUS=stopping (${sig})\n`);
    daemon.stop();
  };
  Deno.addSignalListener("SIGINT", stop("SIGINT"));
  Deno.addSignalListener("SIGTERM", stop("SIGTERM"));
  // SIGHUP reopens the log files (logrotate) and reloads the policy chain (atomic swap; a failing
  // new chain leaves the old one in place).
  Deno.addSignalListener("SIGHUP", () => {
    const err = logOutput.reopen();
    daemon.ops.reopenLogs();
    if (err !== null) log("error", `SIGHUP: ${err}`);
    log("info", `SIGHUP: log files reopened; ${policies.reload()}`);
  });
  // A stale socket from a previous run (claimInstance: nobody serves it); with -U it is ours.
  const stale = handover === null ? removeStaleSocket(parsed.socket) : null;
  if (stale !== null) {
    daemon.close();
    return fail(stale);
  }
  try {
    // With -U: the inherited listening socket and connections (else a new socket, as a normal start).
    daemon.listen(handover);
  } catch (e) {
    daemon.close();
    return fail(StartupFailure.of("bind the socket", parsed.socket, e));
  }
  log(
    "info",
    `serving ${parsed.socket} (policy ${policies.current.name}, pid ${Deno.pid}, dxenstored ${VERSION})`,
  );
  // Ready: systemd (Type=notify, from this very process) and the parent that is waiting for us.
  // After a live update systemd has known this pid serving all along: no second READY.
  if (handover === null) sdNotify(`READY=1\nSTATUS=serving ${parsed.socket}\n`, true);
  detached?.ready();
  await daemon.run();
  if (gate !== null) {
    log("info", gate.describe());
  }
  daemon.close();
  try {
    Deno.removeSync(parsed.socket);
  } catch { /* already gone */ }
  backend.close();
  pidFile?.release();
  log("info", "stopped");
  logOutput.close();
  return 0;
}

if (import.meta.main) Deno.exit(await main());
