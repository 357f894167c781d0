import { encodeFeedCursor } from "./feed.js";
import type { FeedCursor, FeedEntry } from "./feed.js";

/** One page of the log after a cursor, as `readFeed` returns it. */
export interface FeedPage {
  readonly entries: readonly FeedEntry[];
  readonly cursor: FeedCursor;
  readonly full: boolean;
}

export interface FeedHubOptions {
  /** Up to `limit` messages per stream after `cursor` (`readFeed`). */
  readonly read: (cursor: FeedCursor, limit: number) => Promise<FeedPage>;
  /** The current end of every stream (`feedHeads`). */
  readonly heads: () => Promise<FeedCursor>;
  readonly pollMs: number;
  readonly pageSize: number;
  readonly onError: (error: unknown) => void;
}

/** What a subscriber is handed: a message of the log and the event id that resumes after it. */
export type Deliver = (entry: FeedEntry, id: string) => void;

interface Subscription {
  cursor: Record<string, number>;
  /** True once it is level with the hub: from then on it gets the hub's pages, no reads of its own. */
  live: boolean;
  closed: boolean;
  readonly deliver: Deliver;
}

/** Whether `cursor` is short of `hub` in a stream the hub follows. */
function isBehind(cursor: FeedCursor, hub: FeedCursor): boolean {
  return Object.entries(hub).some(([stream, position]) => (cursor[stream] ?? 0) < position);
}

/**
 * One poll loop over the audit log for every open event stream: each tick reads the log once
 * after the hub's cursor and hands each message to every stream that is level with it. A stream
 * that starts behind (resuming by Last-Event-ID, or from the start) catches up with reads of its
 * own, one page per tick, inside the same loop, then joins. So N streams cost one query per tick,
 * not N; the loop runs only while a stream is open.
 */
export class FeedHub {
  private readonly options: FeedHubOptions;
  private readonly subscriptions = new Set<Subscription>();
  private cursor: Record<string, number> | null = null;
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private stopped = false;
  /** Reads of the log the loop made (live pages and catch-up pages), for `/metrics`. */
  polls = 0;

  constructor(options: FeedHubOptions) {
    this.options = options;
  }

  /** Open streams. */
  get size(): number {
    return this.subscriptions.size;
  }

  /** Delivers every message stored after `from`, in order, until the returned function is called. */
  subscribe(from: FeedCursor, deliver: Deliver): () => void {
    const subscription: Subscription = { cursor: { ...from }, live: false, closed: false, deliver };
    this.subscriptions.add(subscription);
    this.schedule(0);
    return () => {
      subscription.closed = true;
      this.subscriptions.delete(subscription);
    };
  }

  /** Stops the loop for good (the gateway is closing). */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.subscriptions.clear();
  }

  private schedule(ms: number): void {
    if (this.running || this.stopped || this.timer !== undefined) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.tick();
    }, ms);
  }

  private async tick(): Promise<void> {
    if (this.subscriptions.size === 0) {
      // Nobody listens: forget the position, so the next stream starts from a fresh head.
      this.cursor = null;
      return;
    }
    this.running = true;
    let again = false;
    try {
      this.cursor ??= { ...(await this.options.heads()) };
      await this.catchUp(this.cursor);
      again = await this.readLive(this.cursor);
    } catch (error) {
      this.options.onError(error);
    } finally {
      this.running = false;
    }
    this.schedule(again ? 0 : this.options.pollMs);
  }

  /** One page for each stream still behind the hub; those level with it join. */
  private async catchUp(hub: FeedCursor): Promise<void> {
    for (const subscription of [...this.subscriptions]) {
      if (subscription.live || subscription.closed) continue;
      if (!isBehind(subscription.cursor, hub)) {
        subscription.live = true;
        continue;
      }
      this.polls += 1;
      const page = await this.options.read(subscription.cursor, this.options.pageSize);
      this.hand(subscription, page.entries);
    }
  }

  /** Reads after the hub's cursor and hands the page to every live stream; true when it was full. */
  private async readLive(hub: Record<string, number>): Promise<boolean> {
    if (![...this.subscriptions].some((s) => s.live)) return false;
    this.polls += 1;
    const page = await this.options.read(hub, this.options.pageSize);
    for (const subscription of this.subscriptions) {
      if (subscription.live) this.hand(subscription, page.entries);
    }
    Object.assign(hub, page.cursor);
    return page.full;
  }

  /** Hands `entries` the stream has not had yet, each with the cursor of that stream after it. */
  private hand(subscription: Subscription, entries: readonly FeedEntry[]): void {
    for (const entry of entries) {
      if (subscription.closed) return;
      if (entry.position <= (subscription.cursor[entry.stream] ?? 0)) continue;
      subscription.cursor[entry.stream] = entry.position;
      subscription.deliver(entry, encodeFeedCursor(subscription.cursor));
    }
  }
}
