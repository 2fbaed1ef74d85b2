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

// launchChromium starts headless Chromium with playwright-core's launcher,
// trying up to three times: on a loaded machine Chromium now and then dies
// while starting (SIGSEGV before its first page), which says nothing about
// the page under test. A browser that started and then fails a check still
// fails the test.
export async function launchChromium(chromium, executablePath, attempts = 3) {
  for (let i = 1; ; i++) {
    try {
      return await chromium.launch({
        executablePath,
        headless: true,
        args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
          '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'],
      });
    } catch (err) {
      if (i >= attempts) throw err;
      console.error(`chromium did not start (attempt ${i} of ${attempts}): ${String(err.message).split('\n')[0]}; trying again`);
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
}
