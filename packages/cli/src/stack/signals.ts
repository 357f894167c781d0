/**
 * Ctrl-C handling of `up` and `demo`: the first SIGINT/SIGTERM calls `graceful` (stop services,
 * then servers), a second one calls `force`. Returns a function that removes the handlers.
 */
export function onInterrupt(graceful: (signal: string) => void, force: () => void): () => void {
  let count = 0;
  const handler = (signal: NodeJS.Signals) => {
    count += 1;
    if (count === 1) graceful(signal);
    else force();
  };
  process.on("SIGINT", handler);
  process.on("SIGTERM", handler);
  return () => {
    process.off("SIGINT", handler);
    process.off("SIGTERM", handler);
  };
}
