// dxenstored's own records in a live-update stream (types DX_RECORD_FIRST..LAST, docs/live-update.md):
// state Xen's format has no record for, carried dx → dx. cxenstored skips them (and says so), so a
// dx → cx switch loses them by design (cx417Verdict lists them as lost).
//
//   DX_QUOTAS  quota values set at run time (CONTROL quota set / SET_QUOTA, global and per domain):
//              JSON {"global": {name: value}, "domains": {"<domid>": {name: value}}}
import { DX_QUOTAS } from "../migration/format.ts";
import type { OpaqueRecord } from "../migration/records.ts";
import type { RuntimeSettings } from "../quota/settings.ts";

/** More than every quota of every domid: a body beyond it is not ours. */
const MAX_DOMAINS = 0x7ff0;

export function quotaRecord(s: RuntimeSettings): OpaqueRecord | null {
  if (Object.keys(s.global).length === 0 && Object.keys(s.domains).length === 0) return null;
  // An opaque record's body is whole 8-byte units (the format's padding): JSON ends in blanks.
  const json = JSON.stringify(s);
  return {
    type: "opaque",
    code: DX_QUOTAS,
    body: new TextEncoder().encode(json.padEnd(Math.ceil(json.length / 8) * 8)),
  };
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
  let v: unknown;
  try {
    v = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(r.body));
  } catch (e) {
    throw new Error(`DX_QUOTAS: not JSON (${(e as Error).message})`);
  }
  if (typeof v !== "object" || v === null) throw new Error("DX_QUOTAS: not an object");
  const o = v as { global?: unknown; domains?: unknown };
  const global = values(o.global ?? {}, "DX_QUOTAS global");
  if (typeof o.domains !== "object" || o.domains === null || Array.isArray(o.domains)) {
    throw new Error("DX_QUOTAS domains: not an object");
  }
  const entries = Object.entries(o.domains);
  if (entries.length > MAX_DOMAINS) throw new Error(`DX_QUOTAS: ${entries.length} domains`);
  const domains: Record<string, Record<string, number>> = {};
  for (const [d, q] of entries) {
    if (!/^(0|[1-9][0-9]{0,4})$/.test(d) || Number(d) >= MAX_DOMAINS) {
      throw new Error(`DX_QUOTAS: "${d.slice(0, 16)}" is not a domid`);
    }
    domains[d] = values(q, `DX_QUOTAS domain ${d}`);
  }
  return { global, domains };
}
