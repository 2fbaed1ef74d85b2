// Start and stop the wslocal binary for the Node test tiers (test/browser,
// test/pusher): it listens on a free loopback port and is stopped by its PID.
import { spawn } from 'node:child_process';

// startWslocal runs bin with args and resolves with { child, ...found } once
// ready(stdout so far) returns an object (the URLs it printed).
export function startWslocal(bin, args, ready, timeoutMs = 60000) {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, ['-addr', '127.0.0.1:0', '-log-level', 'warn', ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL'); // not left behind, keeping the test runner alive
      reject(new Error(`wslocal printed no URL within ${timeoutMs / 1000}s:\n` + out));
    }, timeoutMs);
    child.on('exit', (code) => reject(new Error('wslocal exited early with ' + code + ':\n' + out)));
    child.stdout.on('data', (chunk) => {
      out += chunk;
      const found = ready(out);
      if (found) {
        clearTimeout(timer);
        resolve({ child, ...found });
      }
    });
  });
}

// stopWslocal sends SIGTERM (SIGKILL after graceMs) and resolves with the exit code.
export function stopWslocal(child, graceMs = 15000) {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve(child.exitCode);
    const kill = setTimeout(() => process.kill(child.pid, 'SIGKILL'), graceMs);
    child.removeAllListeners('exit');
    child.on('exit', (code) => { clearTimeout(kill); resolve(code); });
    process.kill(child.pid, 'SIGTERM');
  });
}
