// The incident taxonomy (警情类型) from intake (ListIncidentTypes): loaded once per page load and
// shared by every screen, so that a screen shows 抢劫抢夺 where a case carries ROBBERY.
import { intake } from "./grpc";
import { Category, type IncidentType } from "../gen/smart110/intake/v1/intake_service_pb";

let byCode = new Map<string, IncidentType>();
let ordered: IncidentType[] = [];
let loading: Promise<IncidentType[]> | null = null;

/** Every type in intake's order, loaded on the first call; a failed load is tried again on the next. */
export function loadIncidentTypes(): Promise<IncidentType[]> {
  loading ??= (async () => {
    const all: IncidentType[] = [];
    let pageToken = "";
    do {
      const page = await intake.listIncidentTypes({ pageToken });
      all.push(...page.incidentTypes);
      pageToken = page.nextPageToken;
    } while (pageToken);
    byCode = new Map(all.map((t) => [t.code, t]));
    ordered = all;
    return all;
  })().catch((err: unknown) => {
    loading = null;
    throw err;
  });
  return loading;
}

/** The Chinese name of a type code: the code itself while the taxonomy is loading, or for a code
 * newer than it; "" for "". */
export function incidentTypeName(code: string | undefined): string {
  if (!code) return "";
  return byCode.get(code)?.displayName || code;
}

export function incidentType(code: string): IncidentType | undefined {
  return byCode.get(code);
}

/** The types by category (警情, 非警务求助, 咨询, 无效报警), in intake's order: for a grouped choice. */
export function incidentTypesByCategory(): { category: Category; name: string; types: IncidentType[] }[] {
  const groups = new Map<Category, { category: Category; name: string; types: IncidentType[] }>();
  for (const t of ordered) {
    let g = groups.get(t.category);
    if (!g) groups.set(t.category, (g = { category: t.category, name: t.categoryDisplayName, types: [] }));
    g.types.push(t);
  }
  return [...groups.values()];
}
