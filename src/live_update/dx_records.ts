// dxenstored's own records in a live-update stream (types DX_RECORD_FIRST..LAST, docs/live-update.md):
// state Xen's format has no record for, carried dx → dx. cxenstored skips them (and says so), so a
// dx → cx switch loses them by design (cx417Verdict lists them as lost).
//
//   DX_QUOTAS    quota values set at run time (CONTROL quota set / SET_QUOTA, global and per domain):
//                JSON {"global": {name: value}, "domains": {"<domid>": {name: value}}}
//   DX_FEATURES  SET_FEATURE's values: of introduced guests restricted before INTRODUCE, and those set
//                for domains not introduced yet (bound to the domain's incarnation):
//                JSON {"domains": {"<domid>": bits}, "pending": {"<domid>": {"features": bits,
//                "uniqueId": "..."}}}
//   DX_POLICY    the policy plugins' state (./dx_policy.ts)
//
// Every record is read and checked with the rest of the stream, before anything is adopted: a record
// the new program cannot read is a state it cannot read (it goes back, ./fallback.ts), never half-applied.
import { DX_FEATURES, DX_POLICY, DX_QUOTAS } from "../migration/format.ts";
import type { OpaqueRecord } from "../migration/records.ts";
import type { HostState } from "../migration/host_state.ts";
import type { RuntimeSettings } from "../quota/settings.ts";
import { DOMAIN_FEATURES } from "../protocol/wire.ts";
import type { FeaturePreset } from "../domains/features.ts";
import { readPolicyRecord } from "./dx_policy.ts";
import type { PolicyState } from "../policy/state.ts";

/** What dxenstored's own records of a stream carry (each null if the stream has none). */
export interface DxState {
  readonly quotas: RuntimeSettings | null;
  readonly features: FeatureState | null;
  readonly policy: PolicyState | null;
}

/** DX_FEATURES: SET_FEATURE's values, introduced domains' and pending ones. */
export interface FeatureState {
  readonly domains: ReadonlyMap<number, number>;
  readonly pending: ReadonlyMap<number, FeaturePreset>;
}

/** Read every dx record of a stream; throws Error naming the record and what is wrong with it. */
export function readDxRecords(host: HostState): DxState {
  const seen = new Set<number>();
  let quotas: RuntimeSettings | null = null;
  let features: FeatureState | null = null;
  let policy: PolicyState | null = null;
  for (const r of host.opaque) {
    if (r.code !== DX_QUOTAS && r.code !== DX_FEATURES && r.code !== DX_POLICY) continue;
    if (seen.has(r.code)) throw new Error(`dx record 0x${r.code.toString(16)} appears twice`);
    seen.add(r.code);
    if (r.code === DX_QUOTAS) quotas = readQuotaRecord(r);
    else if (r.code === DX_FEATURES) features = readFeatureRecord(r);
    else policy = readPolicyRecord(r);
  }
  return { quotas, features, policy };
}

/** An opaque record's body is whole 8-byte units (the format's padding): JSON ends in blanks. */
function jsonRecord(code: number, value: unknown): OpaqueRecord {
  const json = JSON.stringify(value);
  return {
    type: "opaque",
    code,
    body: new TextEncoder().encode(json.padEnd(Math.ceil(json.length / 8) * 8)),
  };
}

function parseJson(r: OpaqueRecord, name: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(r.body));
  } catch (e) {
    throw new Error(`${name}: not JSON (${(e as Error).message})`);
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw new Error(`${name}: not an object`);
  return v as Record<string, unknown>;
}

function objectOf(v: unknown, what: string): Record<string, unknown> {
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw new Error(`${what}: not an object`);
  return v as Record<string, unknown>;
}

/** A domid key of a record: decimal, below DOMID_FIRST_RESERVED. */
function domidOf(d: string, what: string): number {
  if (!/^(0|[1-9][0-9]{0,4})$/.test(d) || Number(d) >= MAX_DOMAINS) {
    throw new Error(`${what}: "${d.slice(0, 16)}" is not a domid`);
  }
  return Number(d);
}

/** The record for `domains` (introduced guests' features) and the pending presets; null if nothing to carry. */
export function featureRecord(
  domains: Iterable<[number, number]>,
  pending: Iterable<[number, FeaturePreset]>,
): OpaqueRecord | null {
  // Only restrictions: a domain not named has DOMAIN_FEATURES, as at its INTRODUCE.
  const d = Object.fromEntries([...domains].filter(([, f]) => f !== DOMAIN_FEATURES).map(([k, f]) => [k, f]));
  const p = Object.fromEntries(
    [...pending].map(([k, v]) => [k, { features: v.features, uniqueId: v.uniqueId }]),
  );
  if (Object.keys(d).length === 0 && Object.keys(p).length === 0) return null;
  return jsonRecord(DX_FEATURES, { domains: d, pending: p });
}

function featureBits(v: unknown, what: string): number {
  if (!Number.isSafeInteger(v) || (v as number) < 0 || ((v as number) & ~DOMAIN_FEATURES) !== 0) {
    throw new Error(`${what}: ${JSON.stringify(v)?.slice(0, 32)} is not a set of features we support`);
  }
  return v as number;
}

/** The values of a DX_FEATURES record; throws Error saying what is wrong with it. */
export function readFeatureRecord(r: OpaqueRecord): FeatureState {
  const o = parseJson(r, "DX_FEATURES");
  const d = Object.entries(objectOf(o.domains, "DX_FEATURES domains"));
  const p = Object.entries(objectOf(o.pending, "DX_FEATURES pending"));
  if (d.length + p.length > MAX_DOMAINS) throw new Error(`DX_FEATURES: ${d.length + p.length} domains`);
  const domains = new Map<number, number>();
  for (const [k, v] of d) {
    const domid = domidOf(k, "DX_FEATURES domains");
    if (domid === 0) throw new Error("DX_FEATURES: dom0's features are fixed");
    domains.set(domid, featureBits(v, `DX_FEATURES domain ${domid}`));
  }
  const pending = new Map<number, FeaturePreset>();
  for (const [k, v] of p) {
    const domid = domidOf(k, "DX_FEATURES pending");
    const e = objectOf(v, `DX_FEATURES pending ${domid}`);
    if (domid === 0 || domains.has(domid)) {
      throw new Error(`DX_FEATURES: domain ${domid} cannot have a pending value`);
    }
    const id = e.uniqueId;
    if (typeof id !== "string" || id.length === 0 || id.length > 128) {
      throw new Error(`DX_FEATURES pending ${domid}: no incarnation`);
    }
    pending.set(domid, { features: featureBits(e.features, `DX_FEATURES pending ${domid}`), uniqueId: id });
  }
  return { domains, pending };
}

/** More than every quota of every domid: a body beyond it is not ours. */
const MAX_DOMAINS = 0x7ff0;

export function quotaRecord(s: RuntimeSettings): OpaqueRecord | null {
  if (Object.keys(s.global).length === 0 && Object.keys(s.domains).length === 0) return null;
  return jsonRecord(DX_QUOTAS, s);
}

function values(v: unknown, what: string): Record<string, number> {
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw new Error(`${what}: not an object`);
  const out: Record<string, number> = {};
  for (const [k, n] of Object.entries(v)) {
    if (!Number.isSafeInteger(n) || (n as number) < 0) throw new Error(`${what}.${k}: not a count`);
    out[k] = n as number;
  }
  return out;
}

/** The quota values of a DX_QUOTAS record; throws Error saying what is wrong with it. */
export function readQuotaRecord(r: OpaqueRecord): RuntimeSettings {
  const o = parseJson(r, "DX_QUOTAS");
  const global = values(o.global ?? {}, "DX_QUOTAS global");
  const entries = Object.entries(objectOf(o.domains, "DX_QUOTAS domains"));
  if (entries.length > MAX_DOMAINS) throw new Error(`DX_QUOTAS: ${entries.length} domains`);
  const domains: Record<string, Record<string, number>> = {};
  for (const [d, q] of entries) domains[String(domidOf(d, "DX_QUOTAS"))] = values(q, `DX_QUOTAS domain ${d}`);
  return { global, domains };
}
