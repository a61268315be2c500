// Introduced domains as backends store them. The tree alone is not enough to come back after a
// restart: the daemon must re-attach to every running guest's ring (INTRODUCE's frame and event
// channel), and remember SET_TARGET and per-domain quotas. The domain registry (src/domains) hands the
// whole set to `Backend.persistDomains` whenever it changes and gets it back from `load()`.
//
// Records are JSON (UTF-8) in every backend: they are few (one per guest) and change rarely, so
// readability beats compactness, and a field the registry adds later needs no format change (`extra`).

/** What must survive a restart about one introduced domain. */
export interface DomainRecord {
  readonly domid: number;
  /** INTRODUCE's ring frame: a gfn (or an mfn for old PV guests). */
  readonly ringGfn: number;
  /** INTRODUCE's event channel port: the guest's end, re-bound as an interdomain channel. */
  readonly eventChannel: number;
  /** Map the ring through the grant table's reserved xenstore entry rather than the frame. */
  readonly useGrant?: boolean;
  /** SET_TARGET: the domain this one may act for (a device-model stub domain's guest). */
  readonly target?: number;
  /** SET_QUOTA values given to this domain (quota name → value); absent ones use the defaults. */
  readonly quotas?: Readonly<Record<string, number>>;
  /** Anything else the registry needs to re-attach (JSON-serialisable), stored verbatim. */
  readonly extra?: unknown;
}

/** Largest domid a guest can have (DOMID_FIRST_RESERVED - 1). */
const DOMID_MAX = 0x7fef;

function isNat(v: unknown, max = Number.MAX_SAFE_INTEGER): v is number {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0 && v <= max;
}

/** Check one record read back from storage; returns what is wrong, or null. */
export function domainRecordProblem(r: unknown): string | null {
  if (typeof r !== "object" || r === null || Array.isArray(r)) return "not an object";
  const d = r as Record<string, unknown>;
  if (!isNat(d.domid, DOMID_MAX)) return `bad domid ${JSON.stringify(d.domid)}`;
  if (!isNat(d.ringGfn)) return `domain ${d.domid}: bad ringGfn`;
  if (!isNat(d.eventChannel, 0xffffffff)) return `domain ${d.domid}: bad eventChannel`;
  if (d.useGrant !== undefined && typeof d.useGrant !== "boolean") return `domain ${d.domid}: bad useGrant`;
  if (d.target !== undefined && !isNat(d.target, DOMID_MAX)) return `domain ${d.domid}: bad target`;
  if (d.quotas !== undefined) {
    if (typeof d.quotas !== "object" || d.quotas === null || Array.isArray(d.quotas)) {
      return `domain ${d.domid}: bad quotas`;
    }
    for (const [k, v] of Object.entries(d.quotas)) {
      if (!isNat(v)) return `domain ${d.domid}: bad quota ${k}`;
    }
  }
  return null;
}

/** Validate a whole set (unique domids); throws Error naming the first problem. */
export function checkDomainRecords(records: readonly unknown[]): DomainRecord[] {
  const seen = new Set<number>();
  for (const r of records) {
    const p = domainRecordProblem(r);
    if (p !== null) throw new Error(`domain record: ${p}`);
    const id = (r as DomainRecord).domid;
    if (seen.has(id)) throw new Error(`domain record: domain ${id} twice`);
    seen.add(id);
  }
  return records as DomainRecord[];
}

const enc = new TextEncoder();
const dec = new TextDecoder("utf-8", { fatal: true });

/** The set as UTF-8 JSON (an array ordered by domid, so equal sets encode equally). */
export function encodeDomains(records: readonly DomainRecord[]): Uint8Array {
  const sorted = [...records].sort((a, b) => a.domid - b.domid);
  return enc.encode(JSON.stringify(sorted));
}

/** Inverse of encodeDomains; throws Error on anything malformed. */
export function decodeDomains(b: Uint8Array): DomainRecord[] {
  let v: unknown;
  try {
    v = JSON.parse(dec.decode(b));
  } catch (e) {
    throw new Error(`domain records: not UTF-8 JSON (${(e as Error).message})`);
  }
  if (!Array.isArray(v)) throw new Error("domain records: not a JSON array");
  return checkDomainRecords(v);
}
