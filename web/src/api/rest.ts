// The suite's REST/JSON routes through the gateway (same origin), with the user's JWT.
import { token } from "../auth";

/** A refused call: the gRPC code and message the gateway returns in its JSON body. */
export class ApiError extends Error {
  constructor(readonly status: number, readonly code: number, message: string) {
    super(message);
  }
}

export type Query = Record<string, string | number | boolean | string[] | undefined>;

function url(path: string, query?: Query): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query ?? {})) {
    if (value === undefined || value === "") continue;
    for (const v of Array.isArray(value) ? value : [value]) params.append(key, String(v));
  }
  const qs = params.toString();
  return qs ? `${path}?${qs}` : path;
}

async function call<T>(method: string, path: string, query?: Query, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { Accept: "application/json" };
  const t = token();
  if (t) headers.Authorization = `Bearer ${t}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const resp = await fetch(url(path, query), {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await resp.text();
  const doc = text ? JSON.parse(text) : {};
  if (!resp.ok) throw new ApiError(resp.status, doc.code ?? 2, doc.message ?? resp.statusText);
  return doc as T;
}

export const rest = {
  get: <T>(path: string, query?: Query) => call<T>("GET", path, query),
  post: <T>(path: string, body: unknown) => call<T>("POST", path, undefined, body),
};

/** A fresh idempotency key for a mutating call (request_id): a retry sends the same one. */
export function requestId(): string {
  return crypto.randomUUID();
}
