"""The in-sandbox executor: runs one notebook's code cells in a forked, unprivileged process.

Rule: the tests of a graded cell run in a state the trainee's code could not have altered, their
verdict is the harness's own, and every guard fails closed when it cannot read what it checks.
This module runs *inside* the sandbox, in the same process as the trainee's code, so nothing it
reports is trusted by the grader (:mod:`atelier.grading.autograde` fails closed on anything missing,
duplicated or malformed); within that process, it keeps the trainee's earlier cells from deciding
what a test sees or how its result is reported:

- **Test cells bypass IPython.** Answer cells run through ``shell.run_cell`` as in a stock kernel;
  test cells are compiled by :func:`compile_test` before any trainee code runs (Python's own
  ``compile``; IPython syntax through a fresh copy of IPython's default transformers) and run by
  the harness's own ``exec``. Input and AST transformers, custom exception handlers and the
  shell's cell events, all of which trainee code can install, never touch a test. The verdict
  (``passed``) is whether the compiled code ran to its end inside the harness's ``try``; a failed
  test with no error output is given one by the grader.
- **The state is put back from immutable copies.** :class:`Snapshot` is taken in the fork server,
  which never runs trainee code, and extended in the child, before the first cell, with the modules
  the notebook's tests import (imported then). Before each test, :func:`_restore` puts back
  ``sys.modules`` entries, the import hooks, the namespaces, function defaults and class members of
  the protected modules, and the shell's classes; signal handlers, the signal mask, ``gc``
  callbacks and the test's ``__builtins__`` are reset. The copies are tuples and frozensets (a
  trainee finding them with ``gc`` cannot edit them); the restore calls nothing trainee code could
  have replaced, and keeps every object it removes alive until the test's record is written, so no
  finalizer runs in between.
- **No code of the trainee's runs inside a test except what the test calls.** :func:`_audit_guard`
  (an audit hook, installed first) refuses new audit hooks, tracing and profiling functions and
  changes to a function's ``__code__``; signal handlers are reset; a collection runs the trainee's
  finalizers before the restore; a test is refused while another thread exists
  (:func:`_single_threaded` reads ``/proc/self/status`` through a descriptor opened before the
  trainee's code ran, checks it is still that file, and answers "no" when it cannot read it).
- **The harness keeps its own state out of reach.** :func:`run_notebook` binds what it uses to
  plain locals before the first cell (a running frame's locals cannot be rebound without a trace
  function; closures are avoided, since their cells can), keeps the cells in a tuple, and writes
  records with the C JSON encoder and ``os.write``.

What this does not cover: the trainee's code runs in this process, so code written on purpose to
read the harness's frames (the run's secret, the result descriptor) and forge the records of every
later cell is not prevented here (the grader catches only records out of sequence); functions a
test calls can do anything during that call; ``ctypes`` is out of reach of any in-process defence.

Outputs are recorded in nbformat shape, as ``ipykernel`` would send them (``stream`` with ``stdout``
/ ``stderr``, ``execute_result``, ``display_data``, ``error``), so that nbgrader's own scoring
(``nbgrader.utils.determine_grade``) gives the same points as with a stock kernel. Output beyond the
byte budget is dropped, and a visible marker says how much.

Why one module of about a thousand lines: everything the harness calls once trainee code has run
is bound by :func:`run_notebook` before it starts, from this module, and this module is itself one
of the protected ones (its namespace is snapshotted and put back like numpy's); splitting it would
add modules to protect and to bind from, and spread one guarded loop over several files.
"""

from __future__ import annotations

import _thread
import ast
import builtins
import contextlib
import gc
import importlib
import importlib.util
import io
import itertools
import json
import linecache
import operator
import os
import signal
import struct
import sys
import time
import traceback
import types

from IPython.core.displayhook import DisplayHook
from IPython.core.displaypub import DisplayPublisher
from IPython.core.interactiveshell import InteractiveShell

#: Frame header: magic, then the payload length (big endian). Payloads are UTF-8 JSON.
FRAME_MAGIC = b"AT"
FRAME_HEADER = struct.Struct(">2sI")

#: Modules put back as they were before any trainee code ran, before every test cell (if loaded);
#: the modules a notebook's tests import, and their parents, are added to them.
PROTECTED_MODULES = (
    "builtins", "math", "cmath", "operator", "functools", "itertools", "collections",
    "collections.abc", "copy", "random", "statistics", "decimal", "fractions", "re", "string",
    "json", "json.decoder", "json.encoder", "traceback", "linecache", "signal", "gc", "os",
    "posixpath", "threading", "types", "abc", "IPython.display",
    # The variant draw and what it computes with: a test recomputes the trainee's numbers with
    # them, so the trainee's code must not have replaced them (docs/security.md).
    "atelier.variants", "hmac", "hashlib", "_hashlib",
)  # fmt: skip
#: Packages whose every loaded module is protected the same way (what tests call into).
PROTECTED_PREFIXES = (
    "numpy", "unittest", "pandas.testing", "pandas._testing", "atelier.widgets",
    "atelier.grading.sandbox.kernel",
)  # fmt: skip
#: Entries of ``sys`` the import system reads, put back (the objects) before each test cell.
_SYS_IMPORT_STATE = ("modules", "meta_path", "path_hooks", "path_importer_cache", "path")

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
    """What tests rely on, as it was before any trainee code ran, held in immutable form.

    Built once in the fork server (which never runs trainee code) and extended in each child,
    before its first cell, with the modules that notebook's tests import. Everything is kept in
    tuples and frozensets, so that trainee code which finds this object (``gc.get_objects()``)
    cannot change what will be put back.
    """

    def __init__(self, shell: InteractiveShell, prefixes: tuple[str, ...] = PROTECTED_PREFIXES):
        self.shell = shell
        self.prefixes = prefixes
        self.names = frozenset(
            name for name in sys.modules if name in PROTECTED_MODULES or name.startswith(prefixes)
        )
        self.parts = _capture(self.names)
        self.shell_classes = tuple(
            (cls, *_entries(vars(cls))[1:]) for cls in type(shell).__mro__ if cls is not object
        )
        self.index = _index(self.parts, self.shell_classes)

    def extended(self, names) -> tuple:
        """``(parts, index)`` of this snapshot plus ``names`` and protected modules loaded since."""
        names = frozenset(names)
        extra = (
            frozenset(
                name
                for name in sys.modules
                if name in names or name in PROTECTED_MODULES or name.startswith(self.prefixes)
            )
            - self.names
        )
        if not extra:
            return self.parts, self.index
        more = _capture(extra)
        parts = tuple(a + b for a, b in zip(self.parts, more, strict=True))
        return parts, _index(parts, self.shell_classes)


def _index(parts, shell_classes) -> tuple:
    """The snapshot flattened for :func:`_unchanged`: parallel tuples, checked by C code alone."""
    modules, functions, classes = parts
    namespaces = tuple(module[0] for module in modules)
    flat = [(module[0], key, value) for module in modules for key, value in module[1]]
    proxies, class_flat = [], []
    for cls, saved, *_keys in (*classes, *shell_classes):
        proxy = type.__dict__["__dict__"].__get__(cls)
        proxies.append(proxy)
        class_flat += [(proxy, key, value) for key, value in saved]
    kw_flat = [
        (kwdict, key, value)
        for _function, _defaults, kwdefaults, kwdict in functions
        if kwdefaults is not None
        for key, value in kwdefaults
    ]
    kw_dicts = tuple(kwdict for _f, _d, kw, kwdict in functions if kw is not None)

    def columns(rows):
        return tuple(tuple(column) for column in zip(*rows, strict=True)) if rows else ((), (), ())

    return (
        namespaces,
        columns(flat),
        len(flat),
        tuple(proxies),
        columns(class_flat),
        len(class_flat),
        tuple(f for f, _d, _kw, _kd in functions),
        tuple(d for _f, d, _kw, _kd in functions),
        tuple(f for f, _d, kw, _kd in functions if kw is not None),
        kw_dicts,
        columns(kw_flat),
        len(kw_flat),
    )


def _unchanged(index, tables, tools) -> bool | None:
    """Whether everything snapshotted is as it was; ``None`` when a key is not a plain string.

    Only C code runs here (``map``, ``all``, identity tests, lookups of exact strings in dicts
    whose keys are all exact strings), so no trainee code can run, and it is cheap enough for
    every test cell (a restore is done only when something changed).
    """
    (namespaces, (ns_flat, ns_keys, ns_values), ns_total, proxies,
     (cls_flat, cls_keys, cls_values), cls_total, functions, defaults, kw_functions, kw_dicts,
     (kw_flat, kw_keys, kw_values), kw_total) = index  # fmt: skip
    (type_, str_, is_, getitem, map_, all_, repeat_, chain_, len_, sum_, key_error,
     defaults_of, kwdefaults_of) = tools  # fmt: skip
    table_dicts = [table for table, _saved, _keys, _values in tables]
    everything = chain_(table_dicts, namespaces, proxies, kw_dicts)
    if not all_(map_(is_, map_(type_, chain_.from_iterable(everything)), repeat_(str_))):
        return None
    try:
        for table, _saved, keys, values in tables:
            if not all_(map_(is_, map_(getitem, repeat_(table), keys), values)):
                return False
        return (
            all_(map_(is_, map_(getitem, ns_flat, ns_keys), ns_values))
            and sum_(map_(len_, namespaces)) == ns_total
            and all_(map_(is_, map_(getitem, cls_flat, cls_keys), cls_values))
            and sum_(map_(len_, proxies)) == cls_total
            and all_(map_(is_, map_(defaults_of, functions), defaults))
            and all_(map_(is_, map_(kwdefaults_of, kw_functions), kw_dicts))
            and all_(map_(is_, map_(getitem, kw_flat, kw_keys), kw_values))
            and sum_(map_(len_, kw_dicts)) == kw_total
        )
    except key_error:
        return False


def _capture(names) -> tuple:
    """Module namespaces, function defaults and class namespaces of the modules ``names``."""
    modules, functions, classes = [], [], []
    seen: set[int] = set()
    for name in sorted(names):
        module = sys.modules.get(name)
        if type(module) is not types.ModuleType:
            continue
        namespace = vars(module)
        modules.append(_entries(namespace))
        for value in namespace.values():
            if id(value) in seen:
                continue
            seen.add(id(value))
            if isinstance(value, types.FunctionType):
                functions.append(_function_state(value))
            elif (
                isinstance(value, type)
                and value.__module__ == name
                and value.__flags__ & _HEAPTYPE
                and not value.__flags__ & _IMMUTABLETYPE
            ):
                cls_namespace = vars(value)
                classes.append((value, *_entries(cls_namespace)[1:]))
                for member in cls_namespace.values():
                    if isinstance(member, types.FunctionType) and id(member) not in seen:
                        seen.add(id(member))
                        functions.append(_function_state(member))
    return tuple(modules), tuple(functions), tuple(classes)


def _entries(mapping) -> tuple:
    """``(mapping, items, key set, keys, values)``: a namespace's copy, in the forms checks use."""
    items = tuple(mapping.items())
    return (
        mapping,
        items,
        frozenset(mapping),
        tuple(key for key, _value in items),
        tuple(value for _key, value in items),
    )


def _function_state(function: types.FunctionType) -> tuple:
    """``(function, defaults, keyword defaults' items, the keyword defaults' dict)``."""
    kwdefaults = function.__kwdefaults__
    return (
        function,
        function.__defaults__,
        None if kwdefaults is None else tuple(kwdefaults.items()),
        kwdefaults,
    )


_HEAPTYPE, _IMMUTABLETYPE = 1 << 9, 1 << 8
_MISSING = object()


def _restore(parts, shell_classes, tables, graveyard, index, checks, module_type, type_setattr,
             type_delattr, class_dict, missing) -> bool:  # fmt: skip
    """Put back every snapshotted namespace entry, function default and class member.

    This runs right after the trainee's code, so it calls nothing that code could have replaced:
    only syntax, methods of built-in types and the pristine functions it is given (``checks``,
    as for :func:`_unchanged`). Each table, namespace and class is first compared with its copy
    by C code alone (identity of every saved value, and its size) and is rewritten only when it
    differs: a submission that changed one module's global pays for that module, not for all of
    numpy. Every value it takes out goes into ``graveyard`` (kept alive until the test has run),
    so that no trainee object's finalizer can run in the middle and patch something back.
    Returns False when a namespace holds a key that is not a plain string (which could shadow a
    name by its own ``__eq__``): the caller fails closed.
    """
    (type_, str_, is_, getitem, map_, all_, repeat_, chain_, len_, _sum, key_error,
     defaults_of, kwdefaults_of) = checks  # fmt: skip
    modules, functions, classes = parts
    kw_functions, kw_dicts, (kw_flat, kw_keys, kw_values) = index[8], index[9], index[10]
    # No lookup below may meet a key that is not an exact string.
    everything = chain_(
        (table for table, _s, _k, _v in tables),
        (module[0] for module in modules),
        map_(class_dict, (group[0] for group in chain_(classes, shell_classes))),
        kw_dicts,
    )
    if not all_(map_(is_, map_(type_, chain_.from_iterable(everything)), repeat_(str_))):
        return False
    # The tables first: sys.modules (and the entries of sys the import system reads). Entries
    # added since stay (modules imported later).
    for table, saved, keys, values in tables:
        try:
            if all_(map_(is_, map_(getitem, repeat_(table), keys), values)):
                continue
        except key_error:
            pass
        graveyard.append(table.copy())
        for key, value in saved:
            if table.get(key, missing) is not value:
                table[key] = value
    for namespace, saved, keyset, keys, values in modules:
        try:
            if len_(namespace) == len_(keys) and all_(
                map_(is_, map_(getitem, repeat_(namespace), keys), values)
            ):
                continue
        except key_error:
            pass
        graveyard.append(namespace.copy())
        for key, value in saved:
            if namespace.get(key, missing) is not value:
                namespace[key] = value
        # A name added since (``numpy.testing.cheat``) goes; submodules loaded since stay.
        for key in [*namespace]:
            if key not in keyset and type_(namespace[key]) is not module_type:
                del namespace[key]
    if not all_(map_(is_, map_(defaults_of, index[6]), index[7])):
        for function, defaults, _kwdefaults, _kwdict in functions:
            if function.__defaults__ is not defaults:
                graveyard.append(function.__defaults__)
                function.__defaults__ = defaults
    try:
        kw_intact = all_(map_(is_, map_(kwdefaults_of, kw_functions), kw_dicts)) and all_(
            map_(is_, map_(getitem, kw_flat, kw_keys), kw_values)
        )
    except key_error:
        kw_intact = False
    if not kw_intact or _sum(map_(len_, kw_dicts)) != len_(kw_keys):
        # The saved dict objects themselves go back, refilled from the copies (the trainee may
        # have changed them in place): so the next check finds them identical again.
        for function, _defaults, kwdefaults, kwdict in functions:
            current = function.__kwdefaults__
            graveyard.append(current)
            if kwdict is None:
                if current is not None:
                    function.__kwdefaults__ = None
                continue
            graveyard.append(kwdict.copy())
            kwdict.clear()
            kwdict.update(kwdefaults)
            if current is not kwdict:
                function.__kwdefaults__ = kwdict
    for group in (classes, shell_classes):
        for cls, saved, keyset, keys, values in group:
            current = class_dict(cls)
            try:
                if len_(current) == len_(keys) and all_(
                    map_(is_, map_(getitem, repeat_(current), keys), values)
                ):
                    continue
            except key_error:
                pass
            for key, value in saved:
                old = current.get(key, missing)
                if old is not value:
                    graveyard.append(old)
                    type_setattr(cls, key, value)
            for key in [*current]:
                if key not in keyset:
                    graveyard.append(current[key])
                    type_delattr(cls, key)
    return True


def _audit_guard(event, args):
    """Refuse, while a notebook is graded, the hooks that would let code run inside a test.

    An audit hook cannot be removed, and tracing or profiling functions run in every frame; a
    function's code object is what a patched helper would swap. None of them is needed by a
    notebook's answers, so they are refused outright. This hook is installed before any trainee
    code runs; it calls nothing that code can replace (a rebound ``RuntimeError`` still raises).
    """
    if event == "sys.addaudithook" or event == "sys.settrace" or event == "sys.setprofile":
        raise RuntimeError(f"{event} is not available while Atelier grades this notebook")
    if event == "object.__setattr__" and args[1] == "__code__":
        raise RuntimeError("changing a function's code is not allowed while Atelier grades")


def _single_threaded(fd: int, identity: tuple, fstat, pread, thread_count) -> bool:
    """True only when the kernel counts one thread in this process and Python started none.

    ``fd`` is ``/proc/self/status``, opened before any trainee code ran, so running out of file
    descriptors later does not stop the count; its device and inode are checked at each read, so a
    descriptor closed and replaced by another file is seen. Anything unexpected answers False.
    """
    try:
        info = fstat(fd)
        if (info.st_dev, info.st_ino) != identity:
            return False
        status = pread(fd, 8192, 0)
        started = thread_count()
    except BaseException:  # fail closed
        return False
    for line in status.split(b"\n"):
        if line.startswith(b"Threads:"):
            return line[8:].strip() == b"1" and started == 0
    return False


def _emit(write, fd: int, encoder, pack, magic: bytes, length, record: dict) -> None:
    """Write one framed record, with only what was bound before any trainee code ran."""
    payload = "".join(encoder(record, 0)).encode("utf-8", "replace")
    write(fd, pack(magic, length(payload)) + payload)


def _record_encoder():
    """The C JSON encoder, made once: no Python-level code of ``json`` is used per record."""
    from json.encoder import c_make_encoder, encode_basestring_ascii

    return c_make_encoder(None, repr, encode_basestring_ascii, None, ":", ",", False, False, True)


def _on_alarm(signum, frame):
    # Raise again every second in case the trainee's code swallows the first one.
    signal.setitimer(signal.ITIMER_REAL, 1.0)
    raise CellTimeoutError("Cell did not finish within its time limit")


def _attach(shell: SandboxShell, recorder: OutputRecorder, out, err) -> None:
    """Point the streams, the shell's display and the alarm at ``recorder`` and this harness."""
    sys.stdout, sys.stderr = out, err
    sys.displayhook = shell.displayhook
    shell.recorder = recorder
    shell.displayhook.recorder = recorder
    shell.display_pub.recorder = recorder
    signal.signal(signal.SIGALRM, _on_alarm)


def _timeout_output(limit: float, elapsed: float) -> dict:
    return {
        "output_type": "error",
        "ename": "CellTimeoutError",
        "evalue": f"Cell did not finish within {limit:g} s",
        "traceback": [
            f"CellTimeoutError: Cell did not finish within {limit:g} s "
            f"(stopped after {elapsed:.1f} s)"
        ],
    }


def _imports(tree: ast.AST) -> list[str]:
    """The absolute module names a test cell imports (and ``from X import y`` candidates X.y)."""
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
            names += [f"{node.module}.{alias.name}" for alias in node.names if alias.name != "*"]
    return names


def compile_test(source: str, filename: str) -> tuple:
    """Compile a test cell with Python's own compiler: ``(body, last expression, imports, error)``.

    A test is never passed through the shell's input or AST transformers (the trainee's code can
    add its own). Source that is not plain Python (a magic, ``!command``) is transformed by a
    fresh copy of IPython's default transformers, made here before any trainee code ran. As in
    IPython, a final expression is evaluated separately so that its value is shown (nbgrader reads
    a number there as partial credit).
    """
    try:
        try:
            tree = ast.parse(source, filename)
        except SyntaxError:
            from IPython.core.inputtransformer2 import TransformerManager

            source = TransformerManager().transform_cell(source)
            tree = ast.parse(source, filename)
        last = None
        if tree.body and isinstance(tree.body[-1], ast.Expr):
            last = compile(ast.Expression(tree.body.pop().value), filename, "eval")
        body = compile(tree, filename, "exec", dont_inherit=True)
    except Exception as error:  # any failure is this test's failure
        return None, None, (), error
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    return body, last, tuple(_imports(tree)), None


def _import_early(names, workdir: str) -> list[str]:
    """Import what the tests import, before trainee code runs (never files of the job folder)."""
    loaded = []
    for name in names:
        if name in sys.modules:
            loaded.append(name)
            continue
        try:
            # The top-level package first: finding ``helper.sub`` would import ``helper``.
            spec = importlib.util.find_spec(name.partition(".")[0])
            origin = getattr(spec, "origin", None) or ""
            if not origin or origin.startswith(workdir + os.sep):
                continue
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError, AttributeError):
            continue
        origin = getattr(spec, "origin", None) or ""
        if not origin or origin.startswith(workdir + os.sep):
            continue
        with contextlib.suppress(Exception):
            importlib.import_module(name)
            loaded.append(name)
    # Parents too: ``import numpy.testing`` reads ``numpy``'s namespace.
    for name in list(loaded):
        parts = name.split(".")
        loaded += [".".join(parts[:i]) for i in range(1, len(parts))]
    return loaded


def _refusal(reason: str) -> dict:
    return {
        "output_type": "error",
        "ename": "GradingRefused",
        "evalue": reason,
        "traceback": [f"GradingRefused: this test was not run because {reason}; it scores 0"],
    }


def _error_output(error: BaseException) -> dict:
    """An error output for a test's exception; the test has already failed when this runs."""
    try:
        ename = type(error).__name__
        evalue = str(error)
        lines = traceback.format_exception(type(error), error, error.__traceback__.tb_next)
    except BaseException:  # the trainee's __str__ may raise: keep the verdict
        ename, evalue, lines = "Error", "", ["the error could not be formatted"]
    return {"output_type": "error", "ename": ename, "evalue": evalue, "traceback": lines}


def run_notebook(shell: SandboxShell, snapshot: Snapshot, job: dict, out_fd: int) -> None:
    """Run the job's cells in order, writing one framed record per cell to ``out_fd``.

    Args:
        shell: the pre-warmed shell (this process's private copy).
        snapshot: what to put back before test cells.
        job: ``cells`` (``index``, ``source``, ``test``), ``nonce``, ``limits`` and the
            trainee's ``variant_seed`` (``""``: the default variant).
        out_fd: the write end of the result pipe.
    """
    # Nothing of the trainee's has run yet. From here on the loop uses only what it binds now, in
    # plain locals (no closures: a closure's cells can be rewritten, a running frame's locals
    # cannot without a trace function, which _audit_guard refuses) holding built-in functions or
    # immutable data.
    sys.addaudithook(_audit_guard)
    write, monotonic, setitimer = os.write, time.monotonic, signal.setitimer
    fstat, pread, thread_count = os.fstat, os.pread, _thread._count
    pack, encoder = FRAME_HEADER.pack, _record_encoder()
    getsignal, set_signal, sigmask = signal.getsignal, signal.signal, signal.pthread_sigmask
    collect, callbacks = gc.collect, gc.callbacks
    pristine_callbacks = tuple(callbacks)
    exec_, eval_, repr_, type_, str_, int_ = exec, eval, repr, type, str, int
    emit, restore, attach = _emit, _restore, _attach
    alarm_signal, set_mask, on_alarm = signal.SIGALRM, signal.SIG_SETMASK, _on_alarm
    magic, len_, missing, sys_module = FRAME_MAGIC, len, _MISSING, sys
    module_type, type_setattr, type_delattr = types.ModuleType, type.__setattr__, type.__delattr__
    class_dict = type.__dict__["__dict__"].__get__
    builtins_module, base_exception, timeout_error = builtins, BaseException, CellTimeoutError
    namespace = shell.user_ns
    nonce = job["nonce"]
    limits = job["limits"]
    cell_timeout = float(limits["cell_timeout"])
    prepared, wanted = [], set()
    for cell in job.pop("cells"):
        compiled = None
        if cell["test"]:
            compiled = compile_test(cell["source"], f"<test cell {cell['index']}>")
            wanted.update(compiled[2])
        prepared.append((cell["index"], bool(cell["test"]), cell["source"], compiled))
    cells = tuple(prepared)
    del prepared
    # The trainee's variant seed, computed by the grader from the server's secret: pinned before
    # any of the trainee's code runs (the widgets show their numbers), and again after the
    # restore before every test, so that nothing the notebook did (its environment, the module's
    # globals) changes the numbers a test grades against.
    variant_seed = str(job.get("variant_seed") or "")
    variant_globals = vars(importlib.import_module("atelier.variants"))
    set_item = operator.setitem
    set_item(variant_globals, "_pinned", variant_seed)
    loaded = _import_early(sorted(wanted), os.getcwd()) if wanted else []
    parts, quick = snapshot.extended(loaded)
    shell_classes = snapshot.shell_classes
    sys_state = []
    for key in _SYS_IMPORT_STATE:
        sys_state.append((key, getattr(sys, key)))
    tables = (
        (sys.modules, tuple(sys.modules.items()), tuple(sys.modules), tuple(sys.modules.values())),
        (vars(sys), tuple(sys_state), _SYS_IMPORT_STATE, tuple(v for _k, v in sys_state)),
    )
    checks = (type, str, operator.is_, operator.getitem, map, all, itertools.repeat,
              itertools.chain, len, sum, KeyError, operator.attrgetter("__defaults__"),
              operator.attrgetter("__kwdefaults__"))  # fmt: skip
    unchanged = _unchanged
    import_lists = ((sys.meta_path, tuple(sys.meta_path)), (sys.path_hooks, tuple(sys.path_hooks)))
    saved_handlers = []
    for signum in signal.valid_signals():
        if signum not in (signal.SIGKILL, signal.SIGSTOP) and getsignal(signum) is not None:
            saved_handlers.append((signum, getsignal(signum)))
    handlers = tuple(saved_handlers)
    del saved_handlers, sys_state
    mask = frozenset(sigmask(signal.SIG_BLOCK, ()))
    probe_fd = os.open("/proc/self/status", os.O_RDONLY | os.O_CLOEXEC)
    probe_info = os.fstat(probe_fd)
    probe_identity = (probe_info.st_dev, probe_info.st_ino)
    recorder = OutputRecorder(
        int(limits["cell_output_chars"]), int(limits["notebook_output_chars"])
    )
    stdout, stderr = RecordingStream(recorder, "stdout"), RecordingStream(recorder, "stderr")
    record = graveyard = value = error = None

    sequence = 0
    for index, test, source, compiled in cells:
        start = {"n": nonce, "seq": sequence, "kind": "start", "index": index}
        emit(write, out_fd, encoder, pack, magic, len_, start)
        sequence += 1
        if test:
            # The test runs in a state put back as it was before any trainee code ran, compiled by
            # the grader, and its verdict is this frame's own: whether the code object finished.
            body, last, _imported, compile_error = compiled
            graveyard = []
            passed, status, refused, value, error = False, "error", None, None, None
            try:
                # First, everything that touches the trainee's objects (their code may run here):
                # detach the shell's recorders and streams, count the cell, set the builtins the
                # test's globals use.
                count = shell.execution_count
                execution_count = count if type_(count) is int_ else 1
                graveyard.append(count)
                shell.execution_count = execution_count + 1
                shell.recorder = None
                shell.displayhook.recorder = None
                shell.display_pub.recorder = None
                graveyard.append((sys_module.stdout, sys_module.stderr))
                sys_module.stdout = sys_module.stderr = None
                graveyard.append(namespace.get("__builtins__"))
                namespace["__builtins__"] = builtins_module
                for target, saved in import_lists:
                    graveyard.append(target[:])
                    target[:] = saved
                # No more code of the trainee's may start on its own: signal handlers back as
                # they were (a signal the trainee's processes keep sending now ends this one),
                # then the collector's callbacks, then its finalizers, run now.
                for signum, handler in handlers:
                    if getsignal(signum) is not handler:
                        graveyard.append(set_signal(signum, handler))
                graveyard.append(set_signal(alarm_signal, on_alarm))
                sigmask(set_mask, mask)
                callbacks[:] = pristine_callbacks
                collect()  # finalizers of the trainee's garbage run now, before the restore
                callbacks[:] = pristine_callbacks
                # Then the restore, and from there on nothing of the trainee's is called or freed
                # until the test itself runs.
                same = unchanged(quick, tables, checks)
                if same is None or (
                    not same
                    and not restore(parts, shell_classes, tables, graveyard, quick, checks,
                                    module_type, type_setattr, type_delattr, class_dict,
                                    missing)
                ):  # fmt: skip
                    refused = "a module table held a name that is not a string"
                for key in [*namespace]:
                    if type_(key) is not str_:
                        refused = "the notebook's namespace held a name that is not a string"
                set_item(variant_globals, "_pinned", variant_seed)
            except base_exception as caught:
                execution_count = None
                refused = "the state tests rely on could not be put back"
                refused += f" ({type_(caught).__name__})"
                caught = None
            if refused is None and not _single_threaded(probe_fd, probe_identity, fstat, pread,
                                                        thread_count):  # fmt: skip
                refused = (
                    "threads started by earlier cells were still running, or the thread count "
                    "could not be read"
                )
            own = OutputRecorder(recorder.cell_budget, recorder.notebook_left)
            out, err = RecordingStream(own, "stdout"), RecordingStream(own, "stderr")
            sys_module.stdout, sys_module.stderr = out, err
            if refused is not None:
                status = "refused"
                own.rich(_refusal(refused))
            elif compile_error is not None:
                own.rich(_error_output(compile_error))
            else:
                started = monotonic()
                try:
                    setitimer(signal.ITIMER_REAL, cell_timeout)
                    try:
                        exec_(body, namespace)
                        if last is not None:
                            value = eval_(last, namespace)
                        passed = True
                    finally:
                        setitimer(signal.ITIMER_REAL, 0)
                except base_exception as caught:
                    error = caught
                elapsed = monotonic() - started
                status = "ok" if passed else "error"
                if elapsed >= cell_timeout or type_(error) is timeout_error:
                    passed, status = False, "timeout"
                    own.outputs = [o for o in own.outputs if o["output_type"] != "error"]
                    own.rich(_timeout_output(cell_timeout, elapsed))
                elif error is not None:
                    own.rich(_error_output(error))
                elif value is not None:
                    try:
                        text = repr_(value)
                    except base_exception as caught:
                        passed, status = False, "error"
                        own.rich(_error_output(caught))
                    else:
                        own.rich(
                            {
                                "output_type": "execute_result",
                                "execution_count": execution_count,
                                "data": {"text/plain": text},
                                "metadata": {},
                            }
                        )
            record = {
                "kind": "cell",
                "index": index,
                "status": status,
                "passed": passed is True and status == "ok",
                "execution_count": execution_count,
                "outputs": own.finish(),
            }
            recorder.notebook_left = own.notebook_left
        else:
            recorder.reset()
            attach(shell, recorder, stdout, stderr)
            execution_count = shell.execution_count
            status = "ok"
            started = monotonic()
            try:
                setitimer(signal.ITIMER_REAL, cell_timeout)
                result = shell.run_cell(source, store_history=True)
            except timeout_error:
                result = None
            finally:
                setitimer(signal.ITIMER_REAL, 0)
            elapsed = monotonic() - started
            attach(shell, recorder, stdout, stderr)
            if elapsed >= cell_timeout:
                status = "timeout"
                recorder.outputs = [o for o in recorder.outputs if o["output_type"] != "error"]
                recorder.rich(_timeout_output(cell_timeout, elapsed))
            elif result is None or not result.success:
                status = "error"
            record = {
                "kind": "cell",
                "index": index,
                "status": status,
                "execution_count": execution_count,
                "outputs": recorder.finish(),
            }
        record["n"], record["seq"] = nonce, sequence
        sequence += 1
        emit(write, out_fd, encoder, pack, magic, len_, record)
        # Only now may what the restore took out (and the test's values) be freed: a trainee
        # object's finalizer runs after the verdict is on its way.
        record = graveyard = value = error = None
    emit(write, out_fd, encoder, pack, magic, len_, {"n": nonce, "seq": sequence, "kind": "end"})


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
    from atelier.processes import forking

    loaded = forking.preload(modules)
    # IPython's own lazily-imported pieces used by every run_cell.
    import IPython.core.completer
    import IPython.core.magics  # noqa: F401

    return loaded


__all__ = [
    "CellTimeoutError",
    "Snapshot",
    "compile_test",
    "decode_frames",
    "encode_frame",
    "new_shell",
    "preload",
    "run_notebook",
    "warm_up",
]
