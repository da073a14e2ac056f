// A live stream that keeps itself open: it reconnects with growing pauses (resuming after the last
// sequence it saw, where the stream allows that), and says how it stands, so a screen can show
// when it is behind or cut off.
import { ConnectError, Code } from "@connectrpc/connect";

export type LinkState = "connecting" | "live" | "behind" | "disconnected";

export interface LiveOptions<T> {
  /** Shown beside the state, e.g. "警情". */
  label: string;
  /** Opens the stream: after the given sequence (0 for a fresh snapshot); `onHeader` is the call's
   * option that tells when the server has answered. */
  open: (after: bigint, signal: AbortSignal, onHeader: () => void) => AsyncIterable<T>;
  /** Called for every message; returns the message's sequence (0n when it has none). */
  onMessage: (message: T, resumed: boolean) => bigint;
  /** Called before a fresh snapshot (after = 0): the screen forgets what it had. */
  onReset?: () => void;
  onState?: (state: LinkState, detail: string) => void;
  /** The stream sends something at least this often (heartbeats); silence longer than twice this
   * means the link is stuck and is reopened. 0 for streams without heartbeats. */
  heartbeatSeconds?: number;
}

const FIRST_PAUSE_MS = 500;
/** A stream with nothing to say yet (no cases in view, no active alerts) sends nothing at all: once
 * it has stayed open this long without an error, it counts as live. */
const QUIET_OPEN_MS = 2_000;
const LONGEST_PAUSE_MS = 10_000;

export class Live<T> {
  private controller: AbortController | null = null;
  private stopped = false;
  private after = 0n;
  private lastMessage = 0;
  private watchdog: number | undefined;
  state: LinkState = "connecting";
  reconnects = 0;

  constructor(private readonly opts: LiveOptions<T>) {}

  start(): this {
    void this.loop();
    const hb = this.opts.heartbeatSeconds ?? 0;
    if (hb > 0) {
      this.watchdog = window.setInterval(() => {
        if (this.state === "live" && Date.now() - this.lastMessage > 2 * hb * 1000) {
          this.set("behind", "长时间未收到数据，正在重连");
          this.controller?.abort();
        }
      }, 1000);
    }
    return this;
  }

  stop(): void {
    this.stopped = true;
    this.controller?.abort();
    window.clearInterval(this.watchdog);
  }

  /** Tells the screen the data is late (e.g. changes arriving long after they happened). */
  behind(detail: string): void {
    if (this.state === "live") this.set("behind", detail);
  }

  caughtUp(): void {
    if (this.state === "behind") this.set("live", "");
  }

  private set(state: LinkState, detail: string): void {
    this.state = state;
    this.opts.onState?.(state, detail);
  }

  private async loop(): Promise<void> {
    let pause = FIRST_PAUSE_MS;
    while (!this.stopped) {
      this.controller = new AbortController();
      const resumed = this.after > 0n;
      if (!resumed) this.opts.onReset?.();
      this.set(this.reconnects === 0 ? "connecting" : "disconnected", this.reconnects === 0 ? "" : "正在重连");
      const opened = () => { if (this.state === "connecting" || this.state === "disconnected") this.set("live", ""); };
      const quiet = window.setTimeout(opened, QUIET_OPEN_MS);
      try {
        for await (const message of this.opts.open(this.after, this.controller.signal, opened)) {
          this.lastMessage = Date.now();
          if (this.state !== "live" && this.state !== "behind") this.set("live", "");
          pause = FIRST_PAUSE_MS;
          const seq = this.opts.onMessage(message, resumed);
          if (seq > this.after) this.after = seq;
        }
        window.clearTimeout(quiet);
        if (this.stopped) return;
        this.set("disconnected", "连接已关闭，正在重连");
      } catch (err) {
        window.clearTimeout(quiet);
        if (this.stopped) return;
        const e = ConnectError.from(err);
        if (e.code === Code.OutOfRange) this.after = 0n; // the feed no longer holds our place
        if (e.code === Code.Unauthenticated || e.code === Code.PermissionDenied) {
          this.set("disconnected", `无权访问：${e.rawMessage}`);
          pause = LONGEST_PAUSE_MS;
        } else {
          this.set("disconnected", `连接中断：${e.rawMessage || e.code}`);
        }
      }
      this.reconnects += 1;
      await new Promise((r) => setTimeout(r, pause));
      pause = Math.min(pause * 2, LONGEST_PAUSE_MS);
    }
  }
}
