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
} from "./adopt.ts";
import { LiveUpdateController, type LiveUpdateOptions } from "./controller.ts";
import { checkFile, probeTarget } from "./target.ts";

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
    /** Adopt the inherited descriptors; false if there was no listening socket to adopt. */
    adopt(transport: AdoptingTransport<Client>, core: Core): boolean;
  };

/** `-U`: read and validate <rundir>/state_dump before anything else; an error is logged. */
export function liveUpdateStart(rundir: string): LiveUpdateStart {
  let host: HostState;
  try {
    host = readHandover(rundir);
  } catch (e) {
    log("error", `live update: cannot adopt the state in ${rundir}: ${(e as Error).message}`);
    return { kind: "error" };
  }
  let storeNote = "";
  return {
    kind: "ok",
    host,
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
    adopt(transport, core) {
      const { listener, report } = adoptConnections(host, transport, core.watches);
      log("info", describeAdoption(report, host.store.nodes, storeNote));
      return listener;
    },
  };
}
