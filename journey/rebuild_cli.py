"""`journey rebuild` with a progress bar: itself when the warehouse is free, else by the running
processor (processor/rebuild_request.py), which goes on consuming once the new version is in."""

from __future__ import annotations

import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn

from processor import rebuild_request
from processor.errors import ModelFileError
from processor.rebuild import rebuild
from processor.settings import ProcessorSettings
from warehouse.errors import WarehouseLockedError

POLL_S = 0.2
LOCK_WAIT_S = 1.0  # long enough for a free lock, short enough to ask a running processor soon


def _bar(console: Console) -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("events"), console=console, transient=False)


def run(settings: ProcessorSettings, console: Console) -> bool:
    """Rebuild every derived table; False (after saying why) if the rebuild failed."""
    with _bar(console) as bar:
        task = bar.add_task("reading events", total=None)

        def progress(phase: str, done: int, total: int) -> None:
            bar.update(task, description=phase, completed=done, total=total or None)

        try:
            result = rebuild(settings, progress, lock_timeout_s=LOCK_WAIT_S)
        except WarehouseLockedError:
            return _by_running_processor(settings, console, bar, task)
        except ModelFileError as exc:
            bar.stop()
            console.print(f"[red]rebuild failed:[/red] {exc}")
            return False
    console.print(f"rebuilt {result.customers} customers from {result.events} events "
                  f"in {result.seconds:.1f}s (snapshot {result.version})")
    return True


def _by_running_processor(settings: ProcessorSettings, console: Console, bar: Progress,
                          task: TaskID) -> bool:
    data_dir = settings.data_dir
    request_id = rebuild_request.ask(data_dir)
    console.print("a running processor holds the warehouse: it rebuilds with its stage models "
                  "(files read again) while the API serves the current version")
    bar.update(task, description="waiting for the processor")
    began = time.monotonic()
    try:
        while True:
            status = rebuild_request.status(data_dir)
            if status is not None and status.id == request_id:
                if status.state == "failed":
                    bar.stop()
                    console.print(f"[red]rebuild failed:[/red] {status.error}")
                    return False
                if status.state == "done":
                    bar.update(task, description="done", completed=status.done,
                               total=status.total or 1)
                    bar.stop()
                    console.print(f"rebuilt from {status.done} events in "
                                  f"{time.monotonic() - began:.1f}s; now serving snapshot "
                                  f"{status.version}")
                    return True
                bar.update(task, description=status.phase, completed=status.done,
                           total=status.total or None)
            time.sleep(POLL_S)
    except KeyboardInterrupt:
        rebuild_request.withdraw(data_dir, request_id)
        raise
