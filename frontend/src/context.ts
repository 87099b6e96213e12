// What every page gets: who is logged in, the taxonomy (loaded once), and a cleanup convention.

import { cellClasses } from "./api/foundation";
import type { Me, Role } from "./api/shapes";
import { Taxonomy } from "./logic/taxonomy";
import type { Params } from "./router";

export interface AppContext {
  me: Me;
  has(...roles: Role[]): boolean;
  taxonomy(): Promise<Taxonomy>;
  /** replaces the signed-in user after login / logout */
  setMe(me: Me): void;
}

export type Cleanup = () => void;
export type Page = (root: HTMLElement, params: Params, context: AppContext) => Promise<Cleanup | void> | Cleanup | void;

export function createContext(initial: Me): AppContext {
  let taxonomy: Promise<Taxonomy> | null = null;
  const context: AppContext = {
    me: initial,
    has: (...roles) => roles.some((role) => context.me.roles.includes(role)),
    taxonomy() {
      taxonomy ??= cellClasses().then((classes) => new Taxonomy(classes));
      taxonomy.catch(() => (taxonomy = null));
      return taxonomy;
    },
    setMe(me) {
      context.me = me;
    },
  };
  return context;
}
