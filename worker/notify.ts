/**
 * Where the worker reports progress. The chat front ends implement it (edit the status message,
 * alert the alerts channel); the CLI and tests read the database instead.
 */
export interface Notifier {
  deliveryChanged(deliveryId: string): Promise<void>;
  postChanged(postId: string): Promise<void>;
}

export const silentNotifier: Notifier = {
  deliveryChanged: async () => undefined,
  postChanged: async () => undefined,
};
