// Introduced domains as backends store them. The tree alone is not enough to come back after a
// restart: the daemon must re-attach to every running guest's ring (INTRODUCE's frame and event
// channel), and remember SET_TARGET and per-domain quotas. The domain registry (src/domains) hands the
// whole set to `Backend.persistDomains` whenever it changes and gets it back from `load()`.
//
// Records are JSON (UTF-8) in every backend: they are few (one per guest) and change rarely, so
// readability beats compactness, and a field the registry adds later needs no format change (`extra`).

/** A ring connection's watch as stored: a guest kernel cannot know the daemon restarted, so its
 *  watches are kept with its domain and re-registered on re-attach (as cxenstored's live update). */
export interface StoredWatch {
  readonly path: string;
  readonly token: string;
  readonly depth?: number;
  readonly relativeBase: string | null;
}

/** What the domain registry (src/domains/manager.ts) keeps beyond the fields every backend knows. */
export interface DomainExtra {
  /** Feature bits the domain may use (SET_FEATURE before INTRODUCE restricts them). */
  readonly features?: number;
  /** The ring connection's watches. */
  readonly watches?: readonly StoredWatch[];
  /** This record is dom0's own ring (only its watches are restored; the ring is found at start). */
  readonly dom0Ring?: boolean;
}

/** What must survive a restart about one introduced domain: the one shape of a domain record. */
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
  /**
   * What else the registry needs to re-attach, stored verbatim (JSON). Read back leniently: a field
   * or watch that does not have its type is dropped (a domain keeps its ring over a bad watch).
   */
  readonly extra?: DomainExtra;
}

/** Watches restored per connection at most (a ring connection holds at most its watch quota). */
const MAX_STORED_WATCHES = 65536;

function storedWatch(v: unknown): StoredWatch | null {
  if (typeof v !== "object" || v === null) return null;
  const w = v as Partial<StoredWatch>;
  if (typeof w.path !== "string" || typeof w.token !== "string") return null;
  if (w.depth !== undefined && !(Number.isSafeInteger(w.depth) && w.depth >= 0)) return null;
  if (w.relativeBase !== null && typeof w.relativeBase !== "string") return null;
  return {
    path: w.path,
    token: w.token,
    ...(w.depth !== undefined ? { depth: w.depth } : {}),
    relativeBase: w.relativeBase ?? null,
  };
}

/** `extra` as read back, with only the fields that have their types (absent if none is left). */
function sanitizeExtra(v: unknown): DomainExtra | undefined {
  if (typeof v !== "object" || v === null || Array.isArray(v)) return undefined;
  const e = v as Record<string, unknown>;
  const out: { features?: number; watches?: StoredWatch[]; dom0Ring?: boolean } = {};
  if (isNat(e.features, 0xffffffff)) out.features = e.features;
  if (Array.isArray(e.watches)) {
    out.watches = e.watches.slice(0, MAX_STORED_WATCHES).map(storedWatch).filter((w) => w !== null);
  }
  if (e.dom0Ring === true) out.dom0Ring = true;
  return Object.keys(out).length > 0 ? out : undefined;
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

/**
 * Validate a whole set (unique domids); throws Error naming the first problem. The records come back
 * with `extra` sanitized (see DomainRecord.extra).
 */
export function checkDomainRecords(records: readonly unknown[]): DomainRecord[] {
  const seen = new Set<number>();
  const out: DomainRecord[] = [];
  for (const r of records) {
    const p = domainRecordProblem(r);
    if (p !== null) throw new Error(`domain record: ${p}`);
    const d = r as DomainRecord & { extra?: unknown };
    if (seen.has(d.domid)) throw new Error(`domain record: domain ${d.domid} twice`);
    seen.add(d.domid);
    const { extra: _raw, ...fields } = d;
    const extra = sanitizeExtra(d.extra);
    out.push(extra === undefined ? fields : { ...fields, extra });
  }
  return out;
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
