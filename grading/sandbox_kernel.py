"""The in-sandbox executor: runs one notebook's code cells in a forked, unprivileged process.

Rule: this module runs *inside* the sandbox, in the same process as the trainee's code, so nothing
it reports is trusted. It only reports, cell by cell, the outputs the trainee's code produced, as
framed records on a pipe; the grader (outside the sandbox) decides what they are worth and fails
closed on anything missing, duplicated or malformed. What it does defend, before each test cell: the
builtins and the testing helpers tests rely on are put back as they were before any trainee code
ran, tracing hooks are removed, and a test cell that would run next to a background thread the
trainee started is not run.

Outputs are recorded in nbformat shape, as ``ipykernel`` would send them (``stream`` with ``stdout``
/ ``stderr``, ``execute_result``, ``display_data``, ``error``), so that nbgrader's own scoring
(``nbgrader.utils.determine_grade``) gives the same points as with a stock kernel. Output beyond the
byte budget is dropped, and a visible marker says how much.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import struct
import sys
import time
import types

from IPython.core.displayhook import DisplayHook
from IPython.core.displaypub import DisplayPublisher
from IPython.core.interactiveshell import InteractiveShell

#: Frame header: magic, then the payload length (big endian). Payloads are UTF-8 JSON.
FRAME_MAGIC = b"AT"
FRAME_HEADER = struct.Struct(">2sI")

#: Modules whose attributes (and functions' code) are restored before every test cell, when loaded.
PROTECTED_MODULES = (
    "builtins",
    "math",
    "operator",
    "numpy",
    "numpy.testing",
    "numpy.testing._private.utils",
    "numpy.linalg",
    "unittest",
    "unittest.case",
)

TRUNCATION_MARKER = "\n[Atelier: output truncated here; {n} more characters were not kept]\n"


def encode_frame(record: dict) -> bytes:
    """One framed record, as written on the result pipe."""
    payload = json.dumps(record, separators=(",", ":"), default=repr).encode("utf-8", "replace")
    return FRAME_HEADER.pack(FRAME_MAGIC, len(payload)) + payload


def decode_frames(data: bytes) -> tuple[list[dict], bool]:
    """Split raw pipe bytes into records; the flag says whether all bytes were well-formed."""
    records, pos, ok = [], 0, True
    while pos < len(data):
        if len(data) - pos < FRAME_HEADER.size:
            return records, False
        magic, length = FRAME_HEADER.unpack_from(data, pos)
        pos += FRAME_HEADER.size
        if magic != FRAME_MAGIC or pos + length > len(data):
            return records, False
        try:
            record = json.loads(data[pos : pos + length])
        except ValueError:
            return records, False
        if not isinstance(record, dict):
            return records, False
        records.append(record)
        pos += length
    return records, ok


class CellTimeoutError(BaseException):
    """Raised in the trainee's code when a cell runs past its time limit (not an ``Exception``)."""


class OutputRecorder:
    """The outputs of the cell being run, within a per-cell and a per-notebook budget."""

    def __init__(self, cell_budget: int, notebook_budget: int):
        self.cell_budget = cell_budget
        self.notebook_left = notebook_budget
        self.reset()

    def reset(self) -> None:
        """Start recording a new cell."""
        self.outputs: list[dict] = []
        self.cell_used = 0
        self.dropped = 0

    def _allow(self, size: int) -> int:
        return max(0, min(self.cell_budget - self.cell_used, self.notebook_left, size))

    def _spend(self, size: int) -> None:
        self.cell_used += size
        self.notebook_left -= size

    def stream(self, name: str, text: str) -> None:
        """Append ``text`` to the cell's ``name`` stream, merging with the previous chunk."""
        if not text:
            return
        allowed = self._allow(len(text))
        if allowed < len(text):
            self.dropped += len(text) - allowed
            text = text[:allowed]
            if not text:
                return
        self._spend(len(text))
        last = self.outputs[-1] if self.outputs else None
        if last and last["output_type"] == "stream" and last["name"] == name:
            last["text"] += text
        else:
            self.outputs.append({"output_type": "stream", "name": name, "text": text})

    def rich(self, output: dict) -> None:
        """Append a display, result or error output, or a marker if it does not fit the budget."""
        size = len(json.dumps(output, default=repr))
        if self._allow(size) < size:
            self.dropped += size
            return
        self._spend(size)
        self.outputs.append(output)

    def clear(self) -> None:
        """``clear_output()``: forget what the cell showed so far (its cost stays spent)."""
        self.outputs = [o for o in self.outputs if o["output_type"] == "error"]

    def finish(self) -> list[dict]:
        """The cell's outputs, ending with a visible truncation marker if anything was dropped."""
        if self.dropped:
            marker = TRUNCATION_MARKER.format(n=self.dropped)
            self.outputs.append({"output_type": "stream", "name": "stdout", "text": marker})
        return self.outputs


class RecordingStream(io.TextIOBase):
    """``sys.stdout`` / ``sys.stderr`` of the sandboxed code: writes become stream outputs."""

    def __init__(self, recorder: OutputRecorder, name: str):
        self._recorder = recorder
        self.name = name

    def write(self, text) -> int:
        """Record ``text`` (within the budget)."""
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        self._recorder.stream(self.name, text)
        return len(text)

    def writable(self) -> bool:
        """Streams accept writes."""
        return True

    def isatty(self) -> bool:
        """Not a terminal, as in a Jupyter kernel."""
        return False

    @property
    def encoding(self) -> str:
        """Text is recorded as Unicode."""
        return "utf-8"


class RecordingDisplayHook(DisplayHook):
    """Turns a cell's last expression into an ``execute_result`` output, as ipykernel does."""

    recorder: OutputRecorder | None = None

    def start_displayhook(self):
        """Begin a result."""
        self._data = None

    def write_output_prompt(self):
        """No prompt: results are data."""

    def write_format_data(self, format_dict, md_dict=None):
        """Keep the formatted result."""
        self._data = (format_dict, md_dict or {})

    def finish_displayhook(self):
        """Record the result as an ``execute_result`` output."""
        if self._data is not None and self.recorder is not None:
            data, metadata = self._data
            self.recorder.rich(
                {
                    "output_type": "execute_result",
                    "execution_count": self.prompt_count,
                    "data": data,
                    "metadata": metadata,
                }
            )
        self._data = None


class RecordingDisplayPublisher(DisplayPublisher):
    """Turns ``display()`` calls into ``display_data`` outputs."""

    recorder: OutputRecorder | None = None

    def publish(self, data, metadata=None, source=None, *, transient=None, update=False, **kwargs):
        """Record a display (updates of earlier displays are recorded as new displays)."""
        if self.recorder is not None:
            self.recorder.rich(
                {"output_type": "display_data", "data": data, "metadata": metadata or {}}
            )

    def clear_output(self, wait=False):
        """Forget what the cell displayed so far."""
        if self.recorder is not None:
            self.recorder.clear()


class SandboxShell(InteractiveShell):
    """An IPython shell whose outputs and tracebacks are recorded rather than printed."""

    recorder: OutputRecorder | None = None
    displayhook_class = RecordingDisplayHook
    display_pub_class = RecordingDisplayPublisher

    def _showtraceback(self, etype, evalue, stb):
        if self.recorder is not None:
            self.recorder.rich(
                {
                    "output_type": "error",
                    "ename": str(getattr(etype, "__name__", etype)),
                    "evalue": str(evalue),
                    "traceback": list(stb),
                }
            )

    def init_io(self):
        """Streams are set per job, not at start."""

    def ask_exit(self):
        """``exit()`` in a cell does not stop the grading of later cells."""


def new_shell() -> SandboxShell:
    """A pre-warmed shell, created once in the fork server and copied into every child."""
    from traitlets.config import Config

    config = Config()
    config.HistoryManager.enabled = False
    config.HistoryManager.hist_file = ":memory:"
    config.InteractiveShell.colors = "nocolor"
    config.InteractiveShell.autocall = 0
    config.InteractiveShell.automagic = True
    config.InteractiveShell.cache_size = 0
    return SandboxShell.instance(config=config)


class Snapshot:
    """What tests rely on, as it was before any trainee code ran; restored before each test cell."""

    def __init__(self, shell: InteractiveShell):
        self.modules: dict[str, tuple[types.ModuleType, dict]] = {}
        self.code: list[tuple[types.FunctionType, types.CodeType, tuple | None]] = []
        for name in PROTECTED_MODULES:
            module = sys.modules.get(name)
            if module is None:
                continue
            namespace = dict(vars(module))
            self.modules[name] = (module, namespace)
            for value in namespace.values():
                if isinstance(value, types.FunctionType):
                    self.code.append((value, value.__code__, value.__defaults__))
        self.shell_classes = [
            (cls, dict(vars(cls))) for cls in type(shell).__mro__ if cls is not object
        ]
        self.shell = shell

    def restore(self) -> None:
        """Put every snapshotted attribute, function body and shell method back."""
        for module, namespace in self.modules.values():
            current = vars(module)
            for key, value in namespace.items():
                if current.get(key, _MISSING) is not value:
                    setattr(module, key, value)
        for function, code, defaults in self.code:
            if function.__code__ is not code:
                function.__code__ = code
            if function.__defaults__ is not defaults:
                function.__defaults__ = defaults
        for cls, namespace in self.shell_classes:
            current = dict(vars(cls))
            for key, value in namespace.items():
                if current.get(key, _MISSING) is not value:
                    setattr(cls, key, value)
            for key in set(current) - set(namespace):
                with contextlib.suppress(AttributeError, TypeError):
                    delattr(cls, key)
        # Instance attributes that shadow the shell's methods (``shell.run_cell = ...``).
        for key in list(vars(self.shell)):
            if callable(getattr(type(self.shell), key, None)):
                vars(self.shell).pop(key, None)


_MISSING = object()


def _thread_count() -> int:
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return 1


def run_notebook(shell: SandboxShell, snapshot: Snapshot, job: dict, out_fd: int) -> None:
    """Run the job's cells in order, writing one framed record per cell to ``out_fd``.

    Args:
        shell: the pre-warmed shell (this process's private copy).
        snapshot: what to restore before test cells.
        job: ``cells`` (``index``, ``source``, ``test``), ``nonce`` and ``limits``.
        out_fd: the write end of the result pipe.
    """
    # Everything the loop needs is bound to locals now, before trainee code can rebind module names.
    write, dumps, monotonic = os.write, encode_frame, time.monotonic
    setitimer, restore, threads = signal.setitimer, snapshot.restore, _thread_count
    nonce = job["nonce"]
    limits = job["limits"]
    cell_timeout = float(limits["cell_timeout"])
    recorder = OutputRecorder(
        int(limits["cell_output_chars"]), int(limits["notebook_output_chars"])
    )
    stdout, stderr = RecordingStream(recorder, "stdout"), RecordingStream(recorder, "stderr")
    timed_out = [False]

    def on_alarm(signum, frame):
        timed_out[0] = True
        # Raise again every second in case the trainee's code swallows the first one.
        setitimer(signal.ITIMER_REAL, 1.0)
        raise CellTimeoutError(f"Cell did not finish within {cell_timeout:g} s")

    def attach() -> None:
        sys.stdout, sys.stderr = stdout, stderr
        sys.displayhook = shell.displayhook
        shell.recorder = recorder
        shell.displayhook.recorder = recorder
        shell.display_pub.recorder = recorder
        signal.signal(signal.SIGALRM, on_alarm)

    sequence = 0
    for cell in job["cells"]:
        index = cell["index"]
        write(out_fd, dumps({"n": nonce, "seq": sequence, "kind": "start", "index": index}))
        sequence += 1
        status = "ok"
        if cell["test"]:
            restore()
            sys.settrace(None)
            sys.setprofile(None)
        recorder.reset()
        attach()
        execution_count = shell.execution_count
        if cell["test"] and threads() > 1:
            status = "refused"
            recorder.rich(
                {
                    "output_type": "error",
                    "ename": "GradingRefused",
                    "evalue": "background threads started by earlier cells were still running",
                    "traceback": [
                        "GradingRefused: this test was not run because threads started by earlier "
                        "cells were still running; it scores 0"
                    ],
                }
            )
        else:
            timed_out[0] = False
            started = monotonic()
            try:
                setitimer(signal.ITIMER_REAL, cell_timeout)
                result = shell.run_cell(cell["source"], store_history=True)
            except CellTimeoutError:
                result = None
            finally:
                setitimer(signal.ITIMER_REAL, 0)
            attach()
            if timed_out[0]:
                status = "timeout"
                recorder.outputs = [o for o in recorder.outputs if o["output_type"] != "error"]
                recorder.rich(
                    {
                        "output_type": "error",
                        "ename": "CellTimeoutError",
                        "evalue": f"Cell did not finish within {cell_timeout:g} s",
                        "traceback": [
                            f"CellTimeoutError: Cell did not finish within {cell_timeout:g} s "
                            f"(stopped after {monotonic() - started:.1f} s)"
                        ],
                    }
                )
            elif result is None or not result.success:
                status = "error"
        record = {
            "n": nonce,
            "seq": sequence,
            "kind": "cell",
            "index": index,
            "status": status,
            "execution_count": execution_count,
            "outputs": recorder.finish(),
        }
        sequence += 1
        write(out_fd, dumps(record))
    write(out_fd, dumps({"n": nonce, "seq": sequence, "kind": "end"}))


def warm_up(shell: SandboxShell) -> None:
    """Pay once, in the fork server, what every child would pay on first use.

    The first traceback a shell formats loads and sets up IPython's traceback machinery (tens of
    milliseconds), and the first widget of each ipywidgets class fills that class's trait caches:
    every submission with an error or a widget would pay for them. The warm-up cell is silent
    (no history, no execution count, no output) and leaves nothing behind in the namespace; the
    warm-up widgets are closed (none is left in ipywidgets' registry).
    """
    try:
        import ipywidgets
        from ipywidgets.widgets import widget as widget_module
    except ImportError:
        ipywidgets = None
    if ipywidgets is not None:
        registry = widget_module._instances
        known = set(registry)
        for name in sorted(dir(ipywidgets)):
            cls = getattr(ipywidgets, name)
            if isinstance(cls, type) and issubclass(cls, ipywidgets.DOMWidget):
                with contextlib.suppress(Exception):
                    repr(cls())
        for model_id in set(registry) - known:
            with contextlib.suppress(Exception):
                registry[model_id].close()
            registry.pop(model_id, None)
    shell.run_cell(
        "def _atelier_warm_up():\n    raise ValueError('warm-up')\n_atelier_warm_up()",
        store_history=False,
        silent=True,
    )
    shell.user_ns.pop("_atelier_warm_up", None)
    for name in ("last_type", "last_value", "last_traceback", "last_exc"):
        if hasattr(sys, name):
            delattr(sys, name)
    shell.last_execution_succeeded = True
    shell.last_execution_result = None


def preload(modules: list[str]) -> list[str]:
    """Import the modules trainees commonly use, so each fork starts warm; return those found."""
    from atelier import forking

    loaded = forking.preload(modules)
    # IPython's own lazily-imported pieces used by every run_cell.
    import IPython.core.completer
    import IPython.core.magics  # noqa: F401

    return loaded


__all__ = [
    "CellTimeoutError",
    "Snapshot",
    "decode_frames",
    "encode_frame",
    "new_shell",
    "preload",
    "run_notebook",
    "warm_up",
]
