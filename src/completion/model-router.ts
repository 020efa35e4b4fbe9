/**
 * Routes a model id to a backend. "<backend>/<model>" names the backend; a bare
 * id goes to the backend whose model list has it (lists cached briefly), else to
 * the default backend (Ollama). With one backend no lookup is ever needed.
 */
import { GatewayError } from "../errors/gateway-error.js";
import type { Backend, ModelInfo } from "./types.js";
import type { CancelSignal } from "../util/cancel-signal.js";

export interface Route {
  backend: Backend;
  /** The model id as that backend knows it. */
  model: string;
}

export interface ModelListing {
  models: ModelInfo[];
  unavailable: { backend: string; message: string }[];
}

const CATALOG_TTL_MS = 30_000;

export class ModelRouter {
  private readonly byName = new Map<string, Backend>();
  private catalog: { at: number; owners: Map<string, string> } | undefined;
  private refreshing: Promise<void> | undefined;

  constructor(
    backends: Backend[],
    private readonly defaultBackend: string,
    private readonly defaultModel: string,
  ) {
    for (const b of backends) this.byName.set(b.name, b);
    if (!this.byName.has(defaultBackend)) throw new Error(`default backend ${defaultBackend} is not configured`);
  }

  get backends(): Backend[] {
    return [...this.byName.values()];
  }

  /** Resolves a request's model id (empty: the default model). */
  async resolve(modelId: string, signal: CancelSignal): Promise<Route> {
    const id = modelId || this.defaultModel;
    // A bare backend name ("codex") asks for that backend's own default model. Only for backends
    // other than the default one: a model may well share the default backend's name.
    const bare = this.byName.get(id);
    if (bare && id !== this.defaultBackend) return { backend: bare, model: "" };
    const slash = id.indexOf("/");
    if (slash > 0) {
      const named = this.byName.get(id.slice(0, slash));
      if (named) {
        const model = id.slice(slash + 1);
        if (!model)
          throw new GatewayError("invalid_argument", `model id ${JSON.stringify(id)} names no model`, {
            param: "model",
          });
        return { backend: named, model };
      }
    }
    const fallback = this.byName.get(this.defaultBackend)!;
    if (this.byName.size === 1) return { backend: fallback, model: id };
    const owner = (await this.owners(signal)).get(id);
    return { backend: (owner && this.byName.get(owner)) || fallback, model: id };
  }

  private async owners(signal: CancelSignal): Promise<Map<string, string>> {
    if (this.catalog && Date.now() - this.catalog.at < CATALOG_TTL_MS) return this.catalog.owners;
    this.refreshing ??= this.list(signal)
      .then(({ models }) => {
        const owners = new Map<string, string>();
        for (const m of models)
          owners.set(m.id.startsWith(`${m.backend}/`) ? m.id.slice(m.backend.length + 1) : m.id, m.backend);
        this.catalog = { at: Date.now(), owners };
      })
      .finally(() => {
        this.refreshing = undefined;
      });
    await this.refreshing;
    return this.catalog?.owners ?? new Map();
  }

  /**
   * Lists the models of every backend (or one). Non-default backends' ids get their
   * "<backend>/" prefix so every id routes back to where it came from. A backend
   * that fails is reported, not fatal.
   */
  async list(signal: CancelSignal, only?: string): Promise<ModelListing> {
    const chosen = only ? [this.byName.get(only)].filter((b): b is Backend => !!b) : this.backends;
    if (only && chosen.length === 0) {
      throw new GatewayError("not_found", `no backend named ${JSON.stringify(only)}`, { param: "backend" });
    }
    const results = await Promise.allSettled(chosen.map((b) => b.listModels(signal)));
    const listing: ModelListing = { models: [], unavailable: [] };
    results.forEach((r, i) => {
      const b = chosen[i]!;
      if (r.status === "rejected") {
        listing.unavailable.push({ backend: b.name, message: (r.reason as Error).message });
        return;
      }
      for (const m of r.value) {
        // A backend's own default model (empty id) is listed under the backend's name.
        const id = b.name === this.defaultBackend ? m.id : m.id ? `${b.name}/${m.id}` : b.name;
        listing.models.push(id === m.id ? m : { ...m, id });
      }
    });
    return listing;
  }
}
