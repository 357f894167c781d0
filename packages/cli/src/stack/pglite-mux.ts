import { createServer } from "node:net";
import type { Server, Socket } from "node:net";
import type { PGlite } from "@electric-sql/pglite";
import { PGLiteSocketHandler } from "@electric-sql/pglite-socket";

/** Extended-protocol messages that only make sense together, up to the next Sync. */
const BATCHED = new Set(["P", "B", "D", "E", "C", "H", "d", "c", "f"].map((c) => c.charCodeAt(0)));
const SYNC = "S".charCodeAt(0);

interface Job {
  readonly handlerId: number;
  readonly message: Uint8Array;
  readonly onData: (data: Uint8Array) => void;
  readonly resolve: (bytes: number) => void;
  readonly reject: (error: unknown) => void;
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/**
 * The query queue of `@electric-sql/pglite-socket`, fixed for several clients at once. The package's
 * own queue runs each protocol message on its own, so two clients' extended-protocol sequences
 * (Parse/Bind/Execute … Sync, what `pg` sends for every parameterized query) interleave on the one
 * PGlite session, and a client gets another's unnamed statement or an empty answer (proven in
 * packages/cli/test/up.int.test.ts). This queue holds a client's messages up to its Sync and runs
 * them as one unit; like the original, while a client is inside a transaction only that client's
 * units run, so transactions are serialized.
 */
export class BatchingQueryQueue {
  private readonly queue: Job[] = [];
  private readonly pending = new Map<number, Uint8Array[]>();
  private processing = false;
  private owner: number | null = null;

  private readonly db: PGlite;

  constructor(db: PGlite) {
    this.db = db;
  }

  enqueue(
    handlerId: number,
    message: Uint8Array,
    onData: (data: Uint8Array) => void,
  ): Promise<number> {
    const type = message[0] ?? 0;
    if (BATCHED.has(type)) {
      const parts = this.pending.get(handlerId) ?? [];
      parts.push(message);
      this.pending.set(handlerId, parts);
      return Promise.resolve(0);
    }
    const parts = this.pending.get(handlerId);
    this.pending.delete(handlerId);
    const unit = parts === undefined || type !== SYNC ? message : concat([...parts, message]);
    return new Promise((resolve, reject) => {
      this.queue.push({ handlerId, message: unit, onData, resolve, reject });
      void this.process();
    });
  }

  private async process(): Promise<void> {
    if (this.processing) return;
    this.processing = true;
    try {
      while (this.queue.length > 0) {
        let index = 0;
        if (this.owner !== null && this.db.isInTransaction()) {
          index = this.queue.findIndex((job) => job.handlerId === this.owner);
          if (index === -1) break;
        }
        const [job] = this.queue.splice(index, 1);
        if (job === undefined) break;
        let bytes = 0;
        try {
          await this.db.runExclusive(() =>
            this.db.execProtocolRawStream(job.message, {
              onRawData: (data) => {
                bytes += data.length;
                job.onData(data);
              },
            }),
          );
          this.owner = job.handlerId;
          job.resolve(bytes);
        } catch (error) {
          job.reject(error);
        }
      }
    } finally {
      this.processing = false;
    }
  }

  getQueueLength(): number {
    return this.queue.length;
  }

  clearQueueForHandler(handlerId: number): void {
    this.pending.delete(handlerId);
    for (let i = this.queue.length - 1; i >= 0; i -= 1) {
      const job = this.queue[i];
      if (job?.handlerId === handlerId) {
        this.queue.splice(i, 1);
        job.reject(new Error("Handler disconnected"));
      }
    }
  }

  async clearTransactionIfNeeded(handlerId: number): Promise<void> {
    if (this.db.isInTransaction() && this.owner === handlerId) {
      await this.db.exec("ROLLBACK");
      this.owner = null;
    }
    await this.process();
  }
}

/** A TCP server speaking the PostgreSQL protocol to `db` for any number of clients. */
export interface PgliteMux {
  readonly port: number;
  stop(): Promise<void>;
}

export async function serveDb(db: PGlite, host: string, port: number): Promise<PgliteMux> {
  await db.waitReady;
  const queue = new BatchingQueryQueue(db);
  const handlers = new Set<PGLiteSocketHandler>();
  const server: Server = createServer((socket: Socket) => {
    const handler = new PGLiteSocketHandler({
      // Same public surface as the package's QueryQueueManager (its class has private fields).
      queryQueue: queue as unknown as ConstructorParameters<
        typeof PGLiteSocketHandler
      >[0]["queryQueue"],
      closeOnDetach: true,
    });
    handlers.add(handler);
    const forget = () => handlers.delete(handler);
    handler.addEventListener("close", forget);
    handler.addEventListener("error", forget);
    handler.attach(socket).catch(() => {
      forget();
      socket.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      resolve();
    });
  });
  const address = server.address();
  return {
    port: typeof address === "object" && address !== null ? address.port : port,
    stop: async () => {
      for (const handler of handlers) void handler.detach(true);
      handlers.clear();
      await new Promise<void>((resolve) =>
        server.close(() => {
          resolve();
        }),
      );
    },
  };
}
