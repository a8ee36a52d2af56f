// Filters Dawn's informational log lines out of a child process's stderr. Dawn (the native
// WebGPU library) writes "Warning: ..." / "Info: ..." / "Debug: ..." lines straight to file
// descriptor 2, e.g. "maxDynamicUniformBuffersPerPipelineLayout artificially reduced" on
// every new instance on lavapipe; JavaScript cannot intercept those in-process, so the CLI
// and the test runner run their work in a child whose stderr passes through this filter.
// "Error: ..." lines and everything else pass unchanged. KINKLESS_DEBUG=1 turns it off.
import { spawn } from 'node:child_process';

/** Dawn's log line format is "<Severity>: <message>"; these severities are informational. */
export const DAWN_INFO_LINE = /^(Warning|Info|Debug): /;

/** Whether informational Dawn lines should be shown (KINKLESS_DEBUG=1). */
export function dawnLogsWanted(env = process.env) {
  return env.KINKLESS_DEBUG === '1';
}

/**
 * A streaming line filter: write(chunk) returns the text to pass on. Complete lines are
 * dropped when they match DAWN_INFO_LINE. A trailing partial line (a progress bar redrawn
 * with \r) passes at once, unless it could still become a Dawn line, which waits for its
 * newline (the rest of a line already begun passes as it comes). end() returns what is
 * still held.
 */
export function createLineFilter(drop = DAWN_INFO_LINE) {
  let held = '';
  // Whether part of the current line was already passed on (its rest passes too).
  let midLine = false;
  // NOTE: "Warning: " etc. are at most 9 characters; a partial line that is a prefix of one
  // of them (or starts with one) is held until its newline decides.
  const prefixes = ['Warning: ', 'Info: ', 'Debug: '];
  const couldBeDawn = (s) => prefixes.some((p) => (s.length < p.length ? p.startsWith(s) : s.startsWith(p)));
  return {
    write(chunk) {
      const text = held + chunk;
      held = '';
      let out = '';
      let start = 0;
      if (midLine) {
        const nl = text.indexOf('\n');
        if (nl < 0) return text;
        out += text.slice(0, nl + 1);
        start = nl + 1;
        midLine = false;
      }
      for (;;) {
        const nl = text.indexOf('\n', start);
        if (nl < 0) break;
        const line = text.slice(start, nl + 1);
        if (!drop.test(line)) out += line;
        start = nl + 1;
      }
      const rest = text.slice(start);
      if (rest.length > 0) {
        if (couldBeDawn(rest)) held = rest;
        else {
          out += rest;
          midLine = true;
        }
      }
      return out;
    },
    end() {
      const rest = held;
      held = '';
      return drop.test(rest) ? '' : rest;
    },
  };
}

/**
 * Runs `command args` with stdin/stdout inherited and stderr filtered; resolves with the
 * exit code the caller should use (128 + signal number when the child was killed).
 * SIGTERM / SIGHUP are forwarded; SIGINT too unless stdin is a terminal (then Ctrl-C
 * already reached the child through the terminal's process group).
 */
export function runFiltered(command, args, opts = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['inherit', 'inherit', 'pipe'], env: opts.env ?? process.env });
    const filter = createLineFilter();
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (s) => {
      const out = filter.write(s);
      if (out) process.stderr.write(out);
    });
    const forward = (sig) => () => {
      if (sig === 'SIGINT' && process.stdin.isTTY) return;
      child.kill(sig);
    };
    const handlers = ['SIGINT', 'SIGTERM', 'SIGHUP'].map((sig) => [sig, forward(sig)]);
    for (const [sig, h] of handlers) process.on(sig, h);
    child.on('error', (e) => {
      for (const [sig, h] of handlers) process.off(sig, h);
      reject(e);
    });
    child.on('close', (code, signal) => {
      const rest = filter.end();
      if (rest) process.stderr.write(rest);
      for (const [sig, h] of handlers) process.off(sig, h);
      const signals = { SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGTERM: 15 };
      resolve(code ?? 128 + (signals[signal] ?? 1));
    });
  });
}
