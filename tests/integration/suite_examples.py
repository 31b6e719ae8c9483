"""The README's and protocol/websocket-feed.md's feed examples, run as written (issue 6): the
Python `websockets` tailers, and the `spinewatch` command lines piped into `jq`, with only the
daemon's address changed to the test's (the URL in the Python, $SPINEWATCH_URL for the
command). Registered in suite.TESTS like suite.py's tests."""

import asyncio
import os
import pty
import re
import signal

from feed import hello
from procs import check
from suite import test

FENCE = re.compile(r'```(\w+)\n(.*?)```', re.S)


def blocks(path, lang, section=None):
    """The fenced blocks of a language, in a section ('## Title') or anywhere."""
    with open(path) as fh:
        text = fh.read()
    if section:
        start = text.index(section)
        end = text.find('\n## ', start + len(section))
        text = text[start:end if end > 0 else len(text)]
    return [body for kind, body in FENCE.findall(text) if kind == lang]


def command_lines(path, section):
    return [line for body in blocks(path, 'sh', section) for line in body.splitlines()
            if line.startswith('spinewatch ')]


async def run(env, argv, until=None, timeout=10):
    """Run argv; with `until`, its output goes to a terminal, as when a person follows the
    feed (jq buffers its output into a pipe), and it is stopped (SIGTERM to its group) once an
    output line matches. Returns (status, or None if stopped, stdout, stderr)."""
    cli_dir = os.path.dirname(os.path.abspath(env.binary))
    e = dict(os.environ, PATH=cli_dir + os.pathsep + os.environ['PATH'],
             SPINEWATCH_URL=f'ws://127.0.0.1:{env.port}/ws')
    if until is None:
        proc = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.PIPE, env=e,
                                                    start_new_session=True)
        try:
            so, se = await asyncio.wait_for(proc.communicate(), timeout)
            return proc.returncode, so.decode(), se.decode()
        finally:
            if proc.returncode is None:
                os.killpg(proc.pid, signal.SIGKILL)
                await proc.wait()
    master, slave = pty.openpty()
    proc = await asyncio.create_subprocess_exec(*argv, stdout=slave,
                                                stderr=asyncio.subprocess.PIPE, env=e,
                                                start_new_session=True)
    os.close(slave)
    os.set_blocking(master, False)
    text = ''
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline and proc.returncode is None:
            try:
                text += os.read(master, 65536).decode(errors='replace')
            except BlockingIOError:
                await asyncio.sleep(0.05)
                continue
            except OSError:
                break
            if any(until(ln) for ln in text.splitlines()):
                return None, text, ''
        return proc.returncode, text, ''
    finally:
        os.close(master)
        if proc.returncode is None:
            os.killpg(proc.pid, signal.SIGTERM)
            await proc.wait()


def shell(line):
    return ['bash', '-o', 'pipefail', '-c', line]


@test('docs-feed-examples-as-written', deadline=120)
async def t_examples(env):
    readme = os.path.join(env.repo, 'README.md')
    doc = os.path.join(env.repo, 'protocol', 'websocket-feed.md')
    await env.streaming()
    # enough events that the README's `annotate 46` names a crack
    while (await hello(env.port))['last_seq'] < 50:
        env.fake.send_crack(env.sound, intensity=30)
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.3)

    # the Python tailers: the only change is the daemon's address
    pys = blocks(readme, 'python', '## The feed') + blocks(doc, 'python', '## Examples')
    check(len(pys) == 2, f'{len(pys)} Python feed examples')
    for code in pys:
        code = code.replace('ws://127.0.0.1:8421', f'ws://127.0.0.1:{env.port}')
        status, out, err = await run(env, ['/usr/bin/python3', '-c', code], timeout=10,
                                     until=lambda ln: ' C0:FF:EE:00:00:02 pop ' in ln)
        check(status is None, f'the Python example printed no crack: status {status}, '
              f'out {out[-300:]!r}, err {err[-500:]!r}\n{code}')

    # the command lines, piped into jq as written
    lines = command_lines(readme, '## The feed') + command_lines(readme, '## The command line') \
        + command_lines(doc, '## Examples')
    check(len(lines) >= 7, f'only {len(lines)} spinewatch example lines: {lines}')
    for line in lines:
        follows = ' tail' in line and '--no-follow' not in line and '--count' not in line
        if follows:
            async def crack_soon():
                await asyncio.sleep(1.0)
                env.fake.send_crack(env.sound, intensity=77)
            task = asyncio.ensure_future(crack_soon())
            status, out, err = await run(env, shell(line), until=lambda ln: ln.strip(),
                                         timeout=10)
            await task
            check(status is None and out.strip(), f'{line}: nothing followed ({status}, {err!r})')
        else:
            status, out, err = await run(env, shell(line), timeout=15)
            check(status == 0, f'{line}: status {status}, stderr {err!r}, out {out[-300:]!r}')
            if 'xargs' not in line:
                check(out.strip(), f'{line}: printed nothing')
        print(f'\n      {line[:70]}... -> {out.strip().splitlines()[0][:60] if out.strip() else ""}',
              end='')
    print(' ', end='')
