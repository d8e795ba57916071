"""canvass worker / scheduler / up: the background processes, and all of them at once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import click
from flask.cli import with_appcontext

from web.context import runtime


@click.command("worker")
@click.option("--burst", is_flag=True, help="Exit when the queues are empty.")
@click.option("--fork", is_flag=True, help="Run each job in a forked work-horse (isolation, at a cost per job).")
@click.option("--simple", is_flag=True, hidden=True, help="Jobs run in the worker's process: now the default.")
@click.option("--queues", help="Comma-separated queues to work (default: all); 'high' makes a reply worker.")
@with_appcontext
def worker_cmd(burst: bool, fork: bool, simple: bool, queues: str | None) -> None:
    """Run an RQ worker on the canvass queues (high, sends, calls, default)."""
    import worker
    from bot.settings import SettingsError

    try:
        names = worker.queue_names(queues)
    except SettingsError as exc:
        raise click.UsageError(str(exc)) from None
    sys.exit(worker.run_worker(burst=burst, fork=fork and not simple, rt=runtime(), queues=names))


@click.command("scheduler")
@with_appcontext
def scheduler_cmd() -> None:
    """Run the scheduler (periodic housekeeping; later: scheduled campaigns, timeouts)."""
    import worker

    sys.exit(worker.run_scheduler(rt=runtime()))


@click.command("up")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--web-workers", default=2, show_default=True, type=int, help="gunicorn worker processes.")
def up_cmd(host: str, port: int, web_workers: int) -> None:
    """Start web + worker + reply worker + scheduler in the foreground; Ctrl-C stops them all."""
    py = sys.executable
    commands = {
        "web": [
            py,
            "-m",
            "gunicorn",
            "--workers",
            str(web_workers),
            "--bind",
            f"{host}:{port}",
            "--access-logfile",
            "-",
            "--graceful-timeout",
            "10",
            "web.wsgi:app",
        ],
        "worker": [py, "-m", "worker"],
        # Replies from flows never wait for a batch job to end: one worker takes nothing else.
        "replies": [py, "-m", "worker", "--queues", "high"],
        "scheduler": [py, "-m", "worker", "scheduler"],
    }
    children = {name: subprocess.Popen(cmd) for name, cmd in commands.items()}
    click.echo(f"canvass is starting at http://{host}:{port}  (Ctrl-C stops web, worker and scheduler)")
    stopping = False

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    failed = None
    while not stopping:
        for name, proc in children.items():
            if proc.poll() is not None:
                failed = f"{name} exited with code {proc.returncode}"
                stopping = True
                break
        time.sleep(0.3)
    if failed:
        click.echo(f"canvass: {failed}; stopping the rest", err=True)
    for proc in children.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 20
    for name, proc in children.items():
        try:
            proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            click.echo(f"canvass: {name} did not stop in time; killing it", err=True)
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
    click.echo("canvass stopped")
    sys.exit(1 if failed else 0)


def register(cli: click.Group) -> None:
    """Add the commands to the CLI."""
    for command in (worker_cmd, scheduler_cmd, up_cmd):
        cli.add_command(command)
