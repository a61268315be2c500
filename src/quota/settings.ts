// Quota values: global defaults, per-domain overrides (SET_QUOTA <domid>), hard caps, and the one
// rule that turns them into the bound a request meets. No accounting here.
import { XsError } from "../common/xs_error.ts";
import {
  DEFAULT_CAPS,
  DEFAULT_QUOTAS,
  type QuotaName,
  type QuotaValues,
  SETTING_NAMES,
  type SettingName,
  settingName,
  VALUE_DISABLED,
} from "./table.ts";

/** Quota values set at run time, as a live update hands them over (quota name → value). */
export interface RuntimeSettings {
  readonly global: Readonly<Record<string, number>>;
  /** domid (decimal) → its SET_QUOTA values. */
  readonly domains: Readonly<Record<string, Readonly<Record<string, number>>>>;
}

export class QuotaSettings {
  private readonly globals: Record<SettingName, number>;
  readonly caps: QuotaValues;
  /** domid → name → value. Only names SET_QUOTA gave; the rest follow the globals. */
  private readonly overrides = new Map<number, Map<SettingName, number>>();
  /** Globals set at run time (SET_QUOTA, CONTROL quota set): what a live update carries over. */
  private readonly changed = new Set<SettingName>();

  constructor(
    defaults: Partial<QuotaValues> = {},
    caps: Partial<QuotaValues> = {},
    /** Domains that quotas do not bind (only the caps do). */
    readonly exempt: (domid: number) => boolean = (d) => d === 0,
  ) {
    this.caps = { ...DEFAULT_CAPS, ...caps };
    this.globals = { ...DEFAULT_QUOTAS, ...defaults };
    // A configured cap below a default quota lowers the default with it.
    for (const n of SETTING_NAMES) {
      this.validate(n, this.globals[n] = Math.min(this.globals[n], this.caps[n]));
    }
  }

  /** The global value of `name` (0 = no quota: only the cap). */
  global(name: SettingName): number {
    return this.globals[name];
  }

  /** The value in force for `domid`: its override, else the global. */
  value(domid: number, name: SettingName): number {
    // No SET_QUOTA for any domain (the usual case): no lookup per request.
    if (this.overrides.size === 0) return this.globals[name];
    return this.overrides.get(domid)?.get(name) ?? this.globals[name];
  }

  /**
   * The largest usage of `name` that `subject`'s account may reach in a request from domain
   * `requester`: the cap if either is exempt or the quota is 0, else min(quota, cap). An exempt
   * requester is not refused because the account it grows is at its quota (dom0 writing into a
   * guest's directory, as in cxenstored), and an exempt account is never quota-bound (a guest adding
   * a child name to a dom0 directory grows dom0's record); otherwise the quota of the account that
   * grows applies.
   */
  bound(requester: number, subject: number, name: QuotaName): number {
    const cap = this.caps[name];
    if (this.exempt(requester) || this.exempt(subject)) return cap;
    const q = this.value(subject, name);
    return q === 0 ? cap : Math.min(q, cap);
  }

  /** SET_QUOTA <name> <value>: a new global. */
  setGlobal(name: SettingName, value: number): void {
    this.validate(name, value);
    this.globals[name] = value;
    this.changed.add(name);
  }

  /**
   * Live update, new program: apply the values the previous one had set at run time. Returns what
   * could not be applied (an unknown name, a value above this program's cap), one phrase each.
   */
  restoreRuntime(r: RuntimeSettings): string[] {
    const problems: string[] = [];
    const apply = (
      what: string,
      set: (n: SettingName, v: number) => void,
      values: Record<string, number>,
    ) => {
      for (const [n, v] of Object.entries(values)) {
        try {
          set(parseSettingName(n), v);
        } catch (e) {
          problems.push(`${what} ${n}=${v} (${(e as Error).message})`);
        }
      }
    };
    apply("quota", (n, v) => this.setGlobal(n, v), r.global);
    for (const [d, values] of Object.entries(r.domains)) {
      apply(`domain ${d}'s quota`, (n, v) => this.setOverride(Number(d), n, v), values);
    }
    return problems;
  }

  /** Live update: the values set at run time (globals, and every domain's overrides). */
  runtime(): RuntimeSettings {
    const global: Record<string, number> = {};
    for (const n of this.changed) global[n] = this.globals[n];
    const domains: Record<string, Record<string, number>> = {};
    for (const d of this.overriddenDomains()) domains[String(d)] = this.overridesOf(d);
    return { global, domains };
  }

  /** SET_QUOTA <domid> <name> <value>: an override for one domain. */
  setOverride(domid: number, name: SettingName, value: number): void {
    this.validate(name, value);
    let m = this.overrides.get(domid);
    if (m === undefined) {
      m = new Map();
      this.overrides.set(domid, m);
    }
    m.set(name, value);
  }

  /** A domain's overrides, for persistence (quota name → value). */
  overridesOf(domid: number): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [n, v] of this.overrides.get(domid) ?? []) out[n] = v;
    return out;
  }

  /** Domains with overrides. */
  overriddenDomains(): number[] {
    return [...this.overrides.keys()];
  }

  /** Forget a domain's overrides (it is gone; a domain reusing its id starts from the globals). */
  clearOverrides(domid: number): void {
    this.overrides.delete(domid);
  }

  /**
   * Refuse values that would not do what they say: cxenstored's "disabled" marker (UINT_MAX), and
   * anything above the hard cap, which would silently not apply. 0 is accepted: no quota, cap only.
   */
  validate(name: SettingName, value: number): void {
    if (!Number.isSafeInteger(value) || value < 0 || value >= VALUE_DISABLED) {
      throw new XsError("EINVAL", `quota ${name}: bad value ${value}`);
    }
    if (value > this.caps[name]) {
      throw new XsError("EINVAL", `quota ${name}: ${value} is above the hard cap ${this.caps[name]}`);
    }
  }
}

/** Parse a quota name from a request (EINVAL for an unknown one). */
export function parseSettingName(s: string): SettingName {
  const n = settingName(s);
  if (n === null) throw new XsError("EINVAL", `unknown quota "${s.slice(0, 32)}"`);
  return n;
}
