/**
 * Where the worker reports progress. The chat front ends implement it (edit the status message,
 * alert the alerts channel); the CLI and tests read the database instead.
 */
export interface ProgressEvent {
  postId: string;
  /** Null for post-wide stages (transcoding). */
  deliveryId: string | null;
  stage: 'transcoding' | 'uploading';
  /** 0..1 */
  fraction: number;
}

export interface Notifier {
  deliveryChanged(deliveryId: string): Promise<void>;
  postChanged(postId: string): Promise<void>;
  /** Frequent and best effort: never awaited by the caller, never fails a job. */
  progress?(event: ProgressEvent): void;
  /** The account's login is gone: say so once, with a way to re-link. */
  accountNeedsReauth?(accountId: string): Promise<void>;
  /** A delivery due soon whose account is not healthy: say so once, with a way to re-link. */
  deliveryAtRisk?(deliveryId: string): Promise<void>;
}

export const silentNotifier: Notifier = {
  deliveryChanged: async () => undefined,
  postChanged: async () => undefined,
};
