// The proxy as a real process (the CLI), for what only a process shows: exit codes, signals, workers.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const MAIN = fileURLToPath(new URL('../../src/main.ts', import.meta.url));

export interface ProxyProcess {
  readonly child: ChildProcess;
  readonly stdout: string[];
  readonly stderr: string[];
  readonly data: number;
  readonly admin: number;
  /** Resolves with the exit code (or signal name). */
  readonly exited: Promise<number | string>;
}

export async function writeConfig(text: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'veloflux-test-'));
  const file = join(dir, 'config.yaml');
  await writeFile(file, text);
  return file;
}

/** Runs the CLI to completion (for --check and bad configs). */
export async function runCli(args: string[], timeoutMs = 15_000): Promise<{ code: number | string; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => { stdout += c.toString(); });
  child.stderr.on('data', (c: Buffer) => { stderr += c.toString(); });
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const code = await new Promise<number | string>((resolve) => child.on('exit', (c, s) => resolve(c ?? s ?? 'unknown')));
  clearTimeout(timer);
  return { code, stdout, stderr };
}

/** Starts the CLI on a config (listen/admin on port 0 are filled in) and waits for its start line. */
export async function startProxyProcess(yaml: string, args: string[] = [], timeoutMs = 15_000, env: Record<string, string> = {}): Promise<ProxyProcess> {
  const file = await writeConfig(`listen: "127.0.0.1:0"\nadmin: { listen: "127.0.0.1:0" }\n${yaml}`);
  const child = spawn(process.execPath, [MAIN, '--config', file, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  const stdout: string[] = [];
  const stderr: string[] = [];
  const exited = new Promise<number | string>((resolve) => child.on('exit', (c, s) => resolve(c ?? s ?? 'unknown')));
  child.stderr?.on('data', (c: Buffer) => stderr.push(c.toString()));
  const started = await new Promise<{ data: number; admin: number }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`proxy did not start in ${timeoutMs}ms: ${stderr.join('')}`)), timeoutMs);
    let partial = '';
    child.stdout?.on('data', (c: Buffer) => {
      partial += c.toString();
      const lines = partial.split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        stdout.push(line);
        if (line.includes('"veloflux proxy started"')) {
          const j = JSON.parse(line) as { listen: string; admin: string };
          clearTimeout(timer);
          resolve({ data: Number(j.listen.split(':').pop()), admin: Number(j.admin.split(':').pop()) });
        }
      }
    });
    void exited.then((code) => { clearTimeout(timer); reject(new Error(`proxy exited with ${code}: ${stderr.join('')}`)); });
  });
  return { child, stdout, stderr, exited, ...started };
}
