// The quota values as CONTROL `quota` / `quota-soft` (xenstore-control) name them: cxenstored 4.17's
// "hard"/"soft" listings, where "memory" is the soft quota in one and the hard one in the other and
// node-permissions is called "permissions" (src/quota/table.ts CONTROL_QUOTAS).
import type { ControlQuotaSource } from "./options.ts";
import type { Quotas } from "./quotas.ts";
import { controlSetting, quotaRow, type SettingName, settingName } from "./table.ts";

/** The setting `kind`'s listing calls `name`: soft "memory" is soft-memory; hard, any hard quota's name. */
function settingOf(kind: "hard" | "soft", name: string): SettingName | null {
  if (kind === "soft") return controlSetting("soft", name);
  const s = settingName(name);
  return s !== null && quotaRow(s).kind === "hard" ? s : null;
}

/** What CONTROL shows and sets of `q`: global values by CONTROL name, and a domain's usage. */
export function controlQuotaSource(q: Quotas): ControlQuotaSource {
  return {
    settings: {
      get: (kind, n) => {
        const s = settingOf(kind, n);
        return s === null ? 0 : q.settings.global(s);
      },
      set: (kind, n, value) => {
        const s = settingOf(kind, n);
        if (s === null) return false;
        q.setGlobal(s, value);
        return true;
      },
    },
    usage: (domid) => q.usage(domid),
  };
}
