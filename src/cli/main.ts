// dxenstored: the daemon's entry point. A drop-in dom0 xenstored: Xen's cxenstored/oxenstored options
// and configuration keys (options.ts, config.ts), fork by default with a locked pid file
// (daemonize.ts, pidfile.ts), systemd readiness (notify.ts), CONTROL, metrics and logs
// (operations.ts). Serves the Unix socket until SIGINT/SIGTERM, then removes the socket file.
// docs/operations.md is the operator's guide.
import { log } from "../common/log.ts";
import { Core, DEFAULT_CORE_LIMITS } from "../dispatch/core.ts";
import { PolicyManager, reloadPolicy, setActivePolicyManager } from "../policy/manager.ts";
import { UnixServer } from "../server/unix_server.ts";
import type { Client } from "../dispatch/client.ts";
import { BackendError, groupWindowMs, openState, persistDomainRecords } from "../backend/backend.ts";
import { createBackend } from "../backend/open.ts";
import { groupCommitGate } from "../backend/group.ts";
import { attachXen } from "../domains/attach.ts";
import { VERSION } from "../common/version.ts";
import { StorageMetrics } from "../observe/storage.ts";
import { migrationCommand } from "./export.ts";
import { DetachedDaemon, isDetachedChild, runParent } from "./daemonize.ts";
import { notifySocket, sdNotify } from "./notify.ts";
import { liveUpdateStart, prepareLiveUpdate } from "../live_update/daemon.ts";
import { fullCollection, heapUsed } from "../memory/v8.ts";
import { footprintBytes, IdleCollector } from "../memory/idle_collector.ts";
import { trimMalloc } from "../memory/malloc.ts";
import { trimCodePages } from "../memory/code_pages.ts";
import { nameProcess } from "./process_name.ts";
import { limitsWithQuotas, Operations, quotaConfig } from "./operations.ts";
import {
  claimInstance,
  configTest,
  loadOptions,
  logStartupNotes,
  makeFolders,
  setupLogging,
} from "./startup.ts";

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
  const logOutput = setupLogging(parsed, detached !== null || (parsed.liveUpdate && parsed.fork));
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
  if (claim.kind === "error") {
    log("error", claim.message);
    return 1;
  }
  const pidFile = claim.pidFile;
  makeFolders(parsed);

  const backend = createBackend(parsed.backend, {
    sync: parsed.sync,
    recover: parsed.recover,
    asyncIo: parsed.groupIo === "async",
  });
  // Commit/sync durations and backend failures (logged at error level, counted): the metrics.
  const storage = new StorageMetrics();
  let db;
  let storedDomains;
  try {
    ({ db, domains: storedDomains } = handover === null
      ? openState(backend, storage)
      : handover.openState(backend, storage));
  } catch (e) {
    // A damaged store (BackendError explains what to do) or an unreadable one: refuse to start.
    log("error", e instanceof BackendError ? e.message : `${backend.name}: ${(e as Error).message}`);
    backend.close();
    pidFile?.release();
    return 1;
  }
  let policies: PolicyManager;
  try {
    policies = await PolicyManager.start({ chain: parsed.policy, configFile: parsed.policyConfig });
  } catch (e) {
    log("error", `cannot load the policy: ${(e as Error).message}`);
    backend.close();
    pidFile?.release();
    return 1;
  }
  const core = new Core({
    policy: policies.current,
    db,
    limits: limitsWithQuotas(DEFAULT_CORE_LIMITS, parsed.quotas),
    quota: quotaConfig(parsed),
  });
  policies.attach((chain) => core.dispatcher.policy = chain);
  setActivePolicyManager(policies);
  // Live update (docs/live-update.md) stands between the socket transport and the core.
  let domainCount = () => 0;
  const liveUpdate = prepareLiveUpdate({
    core,
    rundir: parsed.rundir,
    ownArgs: Deno.args,
    env: () => {
      const env = Deno.env.toObject();
      const ns = notifySocket();
      return ns === undefined ? env : { ...env, NOTIFY_SOCKET: ns };
    },
    flushDurable: () => backend.deferredSync?.()?.syncNow(),
    guests: () => domainCount(),
  });
  const server = new UnixServer<Client>({
    path: parsed.socket,
    maxOutBytes: parsed.maxOutBytes,
    maxOutEvents: parsed.maxWatchEvents,
  }, liveUpdate);
  liveUpdate.attach(server);
  server.onTurnEnd(() => liveUpdate.turnEnd());
  const ops = new Operations(parsed, core, server, undefined, storage);
  const stop = (sig: string) => () => {
    log("info", `${sig} received, shutting down`);
    // systemd: the stop is under way (Type=notify; a no-op without NOTIFY_SOCKET).
    sdNotify(`STOPPING=1\nSTATUS=stopping (${sig})\n`);
    server.stop();
  };
  Deno.addSignalListener("SIGINT", stop("SIGINT"));
  Deno.addSignalListener("SIGTERM", stop("SIGTERM"));
  // SIGHUP reopens the log files (logrotate) and reloads the policy chain (atomic swap; a failing
  // new chain leaves the old one in place).
  Deno.addSignalListener("SIGHUP", () => {
    const err = logOutput.reopen();
    ops.reopenLogs();
    if (err !== null) log("error", `SIGHUP: ${err}`);
    log("info", `SIGHUP: log files reopened; ${reloadPolicy()}`);
  });
  try {
    // A stale socket from a previous run (claimInstance: nobody serves it); with -U it is ours.
    if (handover === null) Deno.removeSync(parsed.socket);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  const gate = groupCommitGate(backend, groupWindowMs(parsed.sync), (e) => {
    // The replies it covers are queued as successes: stop before any is sent (docs/backends.md).
    log("error", `${e.message}; stopping without sending the replies it covered`);
    Deno.exit(1);
  }, storage);
  if (gate !== null) {
    server.setOutputGate(gate);
    // Asynchronous group writes: their completion wakes the loop, which then releases the output.
    const fd = gate.completionFd;
    if (fd !== null) server.addFd(fd, () => gate.completed());
    log(
      "info",
      `group commit (${parsed.sync}): ${fd !== null ? "asynchronous writes (Linux AIO)" : "inline syncs"}`,
    );
  }
  let domains;
  try {
    domains = attachXen(core, server, parsed.xen ?? { kind: "none" }, {
      // Introduced domains are stored with the tree, so a restart re-attaches to their rings.
      onDomainsChanged: (d) => persistDomainRecords(backend, d, storage),
      dom0Ring: parsed.domainInit,
      keepOrphans: parsed.keepOrphans,
    });
    domains.restore(storedDomains as Parameters<typeof domains.restore>[0]);
    const dm = domains;
    // Rings are not handed over yet (guests' nor dom0's): live update is refused while any is served.
    domainCount = () => dm.domainCount + (dm.ringInfo(0) !== null ? 1 : 0);
  } catch (e) {
    log("error", `--xen: ${(e as Error).message}`);
    backend.close();
    pidFile?.release();
    return 1;
  }
  // Memory comes back after big removals and closed connections (src/memory/idle_collector.ts).
  const gc = fullCollection();
  if (gc !== null) {
    const idle = new IdleCollector({
      now: () => performance.now(),
      heapUsed,
      footprint: () => coreFootprint(core),
      collect: () => {
        const t0 = performance.now();
        gc();
        trimMalloc();
        log(
          "debug",
          `idle collection in ${(performance.now() - t0).toFixed(0)} ms: ${
            (heapUsed() / 1048576).toFixed(1)
          } MiB live`,
        );
      },
      quiet: () => {
        const t0 = performance.now();
        const trim = trimCodePages();
        log(
          "debug",
          `quiet: ${trim.pages} code pages (${
            (trim.pages / 256).toFixed(1)
          } MiB) unmapped from ${trim.mappings} mappings in ${(performance.now() - t0).toFixed(1)} ms`,
        );
      },
    });
    server.onTurnEnd(() => idle.turnEnd(core.dispatcher.stats.requests));
  } else {
    log("info", "running without --expose-gc: memory is returned only when V8 decides (compile/v8-flags)");
  }
  // With -U: the inherited listening socket and connections (else a new socket, as a normal start).
  if (handover === null || !handover.adopt(server, core)) server.listen();
  ops.startTimers();
  log(
    "info",
    `serving ${parsed.socket} (policy ${core.dispatcher.policy.name}, pid ${Deno.pid}, dxenstored ${VERSION})`,
  );
  // Ready: systemd (Type=notify, from this very process) and the parent that is waiting for us.
  // After a live update systemd has known this pid serving all along: no second READY.
  if (handover === null) sdNotify(`READY=1\nSTATUS=serving ${parsed.socket}\n`, true);
  detached?.ready();
  await server.run();
  if (gate !== null) {
    log("info", gate.describe());
  }
  ops.stop();
  domains.close();
  try {
    Deno.removeSync(parsed.socket);
  } catch { /* already gone */ }
  backend.close();
  pidFile?.release();
  log("info", "stopped");
  logOutput.close();
  return 0;
}

/** What the core holds that can go away, in estimated bytes (O(1): read every turn). */
function coreFootprint(core: Core): number {
  return footprintBytes(core.quotas.totalNodes(), core.watches.trie.size, core.clients.size);
}

if (import.meta.main) Deno.exit(await main());
