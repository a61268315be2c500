// The key-value layout of the backends that keep one record per node in a key-value store: TDB
// (src/backend/tdb.ts) and the storage modules written in C (src/backend/native.ts):
//
//   "/path"               the node: cxenstored's xs_tdb_record_hdr layout (src/backend/xs_tdb.ts),
//                         its child list empty (children are rebuilt from the keys at load)
//   "dxenstored:format"   "1": the store is a dxenstored store
//   "dxenstored:gen"      the database's generation counter (decimal)
//   "dxenstored:domains"  the introduced domains (JSON, src/backend/domains.ts)
//
// A committed change set becomes one atomic batch of puts and deletes (a removed subtree is one
// delete per node it held, since a key-value store knows no subtrees), ending with the counter.
import { log } from "../common/log.ts";
import { components } from "../store/path.ts";
import type { Perms } from "../store/perms.ts";
import { lookup, type Node, walk } from "../store/tree.ts";
import { BackendError, type LoadedState } from "./backend.ts";
import { decodeDomains, type DomainRecord, encodeDomains } from "./domains.ts";
import { buildTree, type NodeOp, parentsFirst, treeOps } from "./records.ts";
import { decodeNodeRecord, encodeNodeRecord, isNodePath } from "./xs_tdb.ts";
import { latin1 } from "../common/latin1.ts";

function bytes(s: string): Uint8Array {
  const b = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) b[i] = s.charCodeAt(i);
  return b;
}

export const KV_FORMAT_KEY = "dxenstored:format";
export const KV_GEN_KEY = "dxenstored:gen";
export const KV_DOMAINS_KEY = "dxenstored:domains";
/** The value of KV_FORMAT_KEY this daemon writes and reads. */
export const KV_FORMAT = "1";

export type KvOp =
  | { readonly kind: "put"; readonly key: Uint8Array; readonly value: Uint8Array }
  | { readonly kind: "delete"; readonly key: Uint8Array };

const put = (key: string, value: Uint8Array): KvOp => ({ kind: "put", key: bytes(key), value });

/**
 * The batch that stores one committed change set: its node operations (commitOps), each delete
 * expanded to the subtree it removes as it was in `before` (what the store holds), then the counter.
 */
export function kvCommit(before: Node | null, ops: readonly NodeOp[], gen: number): KvOp[] {
  const out: KvOp[] = [];
  for (const op of ops) {
    if (op.op === "put") {
      out.push(put(op.path, encodeNodeRecord(op.value, op.perms, op.gen)));
      continue;
    }
    const gone = before === null ? undefined : lookup(before, components(op.path));
    if (gone !== undefined) walk(gone, op.path, (p) => out.push({ kind: "delete", key: bytes(p) }));
  }
  out.push(put(KV_GEN_KEY, bytes(String(gen))));
  return out;
}

/** The batch that writes a whole tree into an empty store, with the format marker. */
export function kvInitial(root: Node, gen: number): KvOp[] {
  return [...kvCommit(null, treeOps(root), gen), put(KV_FORMAT_KEY, bytes(KV_FORMAT))];
}

/** The batch that stores the set of introduced domains. */
export function kvDomains(records: readonly DomainRecord[]): KvOp[] {
  return [put(KV_DOMAINS_KEY, encodeDomains(records))];
}

/**
 * Rebuilds the state from a store's records, given in any order (add), then finish(). Records
 * that cannot be decoded refuse the start, or with `recover` are skipped and logged.
 */
export class KvStoreReader {
  private readonly entries: Array<{ path: string; value: string; perms: Perms; gen: number }> = [];
  private gen: number | null = null;
  private format: string | null = null;
  private domains: DomainRecord[] = [];
  private readonly bad: string[] = [];
  private records = 0;

  /** `name`: the store, for messages ("tdb:/var/lib/x.tdb"). */
  constructor(private readonly name: string, private readonly recover: boolean) {}

  add(k: Uint8Array, v: Uint8Array): void {
    this.records++;
    const key = latin1(k);
    if (key.startsWith("/")) {
      const d = decodeNodeRecord(v, "gen");
      if (d.record === undefined || !isNodePath(key)) {
        this.bad.push(`${key.slice(0, 80)}: ${d.problem ?? "invalid path"}`);
        return;
      }
      this.entries.push({ path: key, value: d.record.value, perms: d.record.perms, gen: d.record.gen });
    } else if (key === KV_GEN_KEY) {
      const text = latin1(v);
      this.gen = /^[0-9]{1,16}$/.test(text) ? Number(text) : NaN; // decimal, as written; NaN: refused
    } else if (key === KV_FORMAT_KEY) {
      this.format = latin1(v);
    } else if (key === KV_DOMAINS_KEY) {
      try {
        this.domains = decodeDomains(v);
      } catch (e) {
        this.bad.push(`domains: ${(e as Error).message}`);
      }
    }
  }

  /** The stored state; null for a store that holds no record at all (a new one). */
  finish(): LoadedState | null {
    if (this.records === 0) return null;
    if (this.format === null) {
      throw new BackendError(`${this.name}: holds records but is no dxenstored store (no ${KV_FORMAT_KEY})`);
    }
    if (this.format !== KV_FORMAT) {
      throw new BackendError(`${this.name}: unknown dxenstored format ${JSON.stringify(this.format)}`);
    }
    if (this.bad.length > 0 && !this.recover) {
      throw new BackendError(
        `${this.name}: ${this.bad.length} unreadable records (first: ${this.bad[0]}); ` +
          `start with --recover to skip them`,
      );
    }
    for (const b of this.bad) log("warn", `${this.name}: --recover: skipped ${b}`);
    const gen = this.gen;
    if (gen === null || !Number.isSafeInteger(gen)) {
      throw new BackendError(`${this.name}: no generation counter`);
    }
    let root: Node;
    try {
      root = buildTree(parentsFirst(this.entries));
    } catch (e) {
      throw new BackendError(`${this.name}: inconsistent node records: ${(e as Error).message}`);
    }
    log(
      "info",
      `${this.name}: loaded ${this.entries.length} nodes, ${this.domains.length} domains, gen ${gen}`,
    );
    return { root, gen, domains: this.domains };
  }
}
