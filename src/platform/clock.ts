// The time as the rules that depend on it read it (TOTP time steps, "a sign-in of the last 5
// minutes"). One object per process, built in dependencies.ts; tests move it to prove drift and
// replay rules without waiting (STYLE.md: mock only the clock and outbound mail).

export interface Clock {
  /** Milliseconds since the epoch, as Date.now(). */
  now(): number;
}

export function systemClock(): Clock {
  return { now: () => Date.now() };
}
