// The seams between live update and the daemon's assembly (src/cli/main.ts): the controller the
// socket transport is given as its connection handler, and the `-U` start — read the state first,
// then open the store from it, then adopt the descriptors once the transport exists.
import { log } from "../common/log.ts";
import { attachBackend, type Backend, type StorageObserver } from "../backend/backend.ts";
import type { DomainRecord } from "../backend/domains.ts";
import type { Client } from "../dispatch/client.ts";
import type { Core } from "../dispatch/core.ts";
import { Database } from "../store/database.ts";
import type { HostState } from "../migration/host_state.ts";
import {
  adoptConnections,
  type AdoptingTransport,
  chooseStore,
  describeAdoption,
  readHandover,
  reclaim,
  ringsOf,
} from "./adopt.ts";
import { adoptRings } from "../domains/adopt_rings.ts";
import { type DxState, readDxRecords } from "./dx_records.ts";
import type { RuntimeSettings } from "../quota/settings.ts";
import type { PolicyManager } from "../policy/manager.ts";
import type { InheritedChannels, XenPlatform } from "../xen/platform.ts";
import { LiveUpdateController, type LiveUpdateOptions } from "./controller.ts";
import { checkFile, probeTarget } from "./target.ts";
import { closeDescriptor, execve, isNonBlocking, keepAcrossExec, setNonBlocking } from "./exec.ts";
import { STATE_DUMP } from "./handover.ts";
import {
  answerFailure,
  FAILED_ENV,
  type Fallback,
  FALLBACK_ENV,
  FALLBACK_SUFFIX,
  parseFailure,
  parseFallback,
} from "./fallback.ts";

/** The controller, with `-f`'s real checks (the file, then what program it is) unless given. */
export function prepareLiveUpdate(
  o: Omit<LiveUpdateOptions, "checkFile"> & Partial<Pick<LiveUpdateOptions, "checkFile">>,
): LiveUpdateController {
  return new LiveUpdateController({ checkFile, probe: (f) => probeTarget(f), ...o });
}

export type LiveUpdateStart =
  | { readonly kind: "error" }
  | {
    readonly kind: "ok";
    readonly host: HostState;
    /** The store (instead of backend.ts openState): the stream's, or the backend's if equal. */
    openState(
      backend: Backend,
      observer?: StorageObserver,
    ): { db: Database; domains: readonly DomainRecord[] };
    /** The event channels handed over with rings (for the platform to adopt), if any. */
    readonly inherited: InheritedChannels | undefined;
    /** Adopt the inherited descriptors and rings; false if there was no listening socket to adopt. */
    adopt(transport: AdoptingTransport<Client>, core: Core, platform: XenPlatform | null): boolean;
    /**
     * A start step failed before anything was adopted (the policy state, the platform, the store):
     * go back to the previous program as for a state it cannot read (./fallback.ts). Returns only if
     * there is no way back (a start by hand, the old program itself coming back, a failed exec).
     */
    goBack(why: string): void;
    /**
     * Take over the policy plugins' state (DX_POLICY) into the new program's chain. Throws
     * PolicyStateError (the chain differs, a plugin refuses): the caller goes back (goBack).
     */
    restorePolicy(m: PolicyManager): void;
  };

/**
 * `-U`: read and validate <rundir>/state_dump before anything else. If it cannot be read, go back to
 * the program that wrote it (./fallback.ts) when it said how; else log and fail. When this is that
 * program coming back, read its own dump and answer the asker with the failure.
 */
export function liveUpdateStart(rundir: string): LiveUpdateStart {
  const failure = parseFailure(Deno.env.get(FAILED_ENV));
  const fallback = parseFallback(Deno.env.get(FALLBACK_ENV));
  // Neither may leak into a later switch or a child.
  Deno.env.delete(FAILED_ENV);
  Deno.env.delete(FALLBACK_ENV);
  const dump = `${rundir}/${STATE_DUMP}`;
  let host: HostState;
  let dx: DxState;
  try {
    host = readHandover(failure === null ? dump : dump + FALLBACK_SUFFIX);
    // dxenstored's own records too: one it cannot read is a state it cannot read.
    dx = readDxRecords(host);
  } catch (e) {
    const why = (e as Error).message;
    log("error", `live update: cannot adopt the state in ${rundir}: ${why}`);
    if (failure === null && fallback !== null) goBack(fallback, why);
    return { kind: "error" };
  }
  // Used once, as cxenstored does: a restart must not adopt stale descriptors. The second name stays
  // until the adoption (the way back if a later start step fails), unless this is the way back.
  removeFiles(failure === null ? [dump] : [dump, dump + FALLBACK_SUFFIX]);
  if (failure !== null) {
    log("error", `live update failed in the new program (${failure.reason}); this one serves on`);
    host = answerFailure(host, failure);
  }
  let storeNote = "";
  let wentBack = false;
  // SET_FEATURE's restrictions go with their rings (DX_FEATURES).
  const rings = ringsOf(host).map((r) => ({ ...r, features: dx.features?.domains.get(r.domid) }));
  let policies: PolicyManager | null = null;
  let inherited: InheritedChannels | undefined;
  const evtchnFd = host.global?.evtchnFd ?? -1;
  // As inherited, to be handed back so if this program goes back.
  let evtchnWasNonBlocking = false;
  try {
    evtchnWasNonBlocking = evtchnFd >= 0 && rings.length > 0 && isNonBlocking(evtchnFd);
  } catch { /* not a descriptor: reclaim() below says so */ }
  if (rings.length > 0 && evtchnFd >= 0) {
    const err = reclaim(evtchnFd);
    if (err === null) {
      inherited = { eventFd: evtchnFd, firstFreePort: Math.max(...rings.map((r) => r.localPort)) + 1 };
    } else log("error", `live update: the event-channel descriptor ${evtchnFd} cannot be used: ${err}`);
  }
  return {
    kind: "ok",
    host,
    inherited,
    openState(backend, observer) {
      const loaded = backend.load();
      const pick = chooseStore(loaded, host.store);
      const db = new Database(pick.root, pick.gen);
      for (const [name, perms] of pick.specialPerms) db.specialPerms.set(name, perms);
      attachBackend(db, backend, observer);
      if (pick.rewrite) backend.compact(db.root, db.generation);
      storeNote = pick.source;
      return { db, domains: loaded?.domains ?? [] };
    },
    restorePolicy(m) {
      if (dx.policy === null) {
        log(
          "info",
          "live update: no policy state in the stream (cxenstored, or none saved): plugins start afresh",
        );
        return;
      }
      try {
        m.loadState(dx.policy);
        policies = m;
      } catch (e) {
        // The old program coming back has no way further back: it serves on, keeping what a reload
        // would keep (the variables by plugin name), and says what it lost.
        if (failure === null) throw e;
        const lost = m.keepStateByName(dx.policy);
        policies = m;
        log(
          "error",
          `live update: the policy chain cannot take its own state back (${(e as Error).message}); kept ` +
            `the plugins' variables by name${lost.length > 0 ? `, lost: ${lost.join("; ")}` : ""}`,
        );
      }
    },
    goBack(why) {
      if (failure !== null || fallback === null || wentBack) return;
      wentBack = true;
      log("error", `live update: the new program cannot start: ${why}`);
      if (inherited !== undefined) {
        // The event channels' descriptor was made ours (close-on-exec): the old program needs it back.
        try {
          keepAcrossExec([inherited.eventFd]);
          setNonBlocking([inherited.eventFd], evtchnWasNonBlocking);
        } catch (e) {
          log("error", `live update: the event-channel descriptor: ${(e as Error).message}`);
        }
      }
      goBack(fallback, why);
    },
    adopt(transport, core, platform) {
      // From here on the descriptors are ours: no way back.
      removeFiles([dump + FALLBACK_SUFFIX]);
      const { listener, report } = adoptConnections(host, transport, core.watches);
      let ringReport = { rings: 0, watches: 0, bufferedBytes: 0 };
      if (rings.length > 0 && (platform?.adoptInterdomain === undefined || inherited === undefined)) {
        const what = rings.map((r) => `ring of domain ${r.domid} (${r.watches.length} watches)`).join("; ");
        report.dropped.push(
          `${what}: ${platform === null ? "no Xen platform (--xen none)" : "not adoptable here"}`,
        );
        // The descriptor that carried their event channels is nobody's now (cxenstored's under the shim).
        if (inherited !== undefined && platform?.eventFd !== inherited.eventFd) {
          closeDescriptor(inherited.eventFd);
        }
      } else if (rings.length > 0) {
        const r = adoptRings(core.domains, platform!, core.watches, rings);
        report.dropped.push(...r.dropped);
        ringReport = r;
        // Domains that died during the switch: released as at any VIRQ_DOM_EXC.
        core.domains.checkDomains();
      }
      restoreQuotas(dx.quotas, core, report.dropped);
      // SET_FEATURE values of domains not introduced yet (their incarnation is checked at INTRODUCE).
      for (const [domid, p] of dx.features?.pending ?? []) {
        if (!core.domains.isIntroduced(domid)) core.domains.presets.set(domid, p);
      }
      // A plugin's history of a domain that is gone (it died during the switch) goes, as at any death.
      policies?.keepDomainState((d) => d === 0 || core.domains.isIntroduced(d));
      log("info", describeAdoption(report, host.store.nodes, storeNote, ringReport));
      return listener;
    },
  };
}

/** DX_QUOTAS: the quota values set at run time, for dom0 and the domains adopted (./dx_records.ts). */
function restoreQuotas(q: RuntimeSettings | null, core: Core, dropped: string[]): void {
  if (q === null) return;
  const domains = Object.fromEntries(
    Object.entries(q.domains).filter(([d]) => d === "0" || core.domains.isIntroduced(Number(d))),
  );
  dropped.push(...core.quotas.settings.restoreRuntime({ global: q.global, domains }));
}

function removeFiles(paths: readonly string[]): void {
  for (const f of paths) {
    try {
      Deno.removeSync(f);
    } catch { /* absent */ }
  }
}

/** Exec the previous program again with the same descriptors; returns only if that fails. */
function goBack(f: Fallback, why: string): void {
  log("error", `live update: going back to the previous program (${f.argv.join(" ")})`);
  const env = Deno.env.toObject();
  env[FAILED_ENV] = JSON.stringify({ fd: f.fd, reqId: f.reqId, txId: f.txId, reason: why.slice(0, 2000) });
  try {
    execve(f.file, f.argv, env);
  } catch (e) {
    log("error", `live update: cannot go back: ${(e as Error).message}`);
  }
}
