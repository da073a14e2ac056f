// Pages by route in the fragment (`#/big-screen`): the gateway serves one index.html at /, so every
// page is a route here. A page mounts into the app's element and returns how to unmount it.

export interface Page {
  path: string;
  /** Chinese title, shown in the navigation and the window title. */
  title: string;
  /** Roles that may open it; empty for anyone signed in. */
  roles: string[];
  mount: (root: HTMLElement) => () => void;
}

export function currentRoute(): string {
  const raw = location.hash.replace(/^#/, "");
  if (!raw.startsWith("/")) return "/";
  const i = raw.indexOf("?");
  return i < 0 ? raw : raw.slice(0, i);
}

export function go(path: string): void {
  location.hash = `#${path}`;
}
