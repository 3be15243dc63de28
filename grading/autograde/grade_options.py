"""nbgrader's options on ``atelier grade``: each one is honoured or refused by name, never ignored.

Rule: a facilitator who types an ``nbgrader autograde`` option on ``atelier grade`` gets nbgrader's
meaning or a refusal naming the option, because an option silently dropped changes scores. So:

- Atelier's own options (``GradeApp``, ``SandboxLimits``, ``SandboxOptions``, ``Application``) are
  Atelier's.
- Options of a class nbgrader's autograde pipeline uses (``CourseDirectory``, ``Autograde`` and its
  bases, its exporter and writer, every sanitize and autograde step but ``Execute``, the late
  submission plugin, ``Exchange``) go into the nbgrader configuration every grading process uses,
  over the course's ``nbgrader_config.py`` as on nbgrader's command line: nbgrader's own code
  applies them.
- ``Execute`` does not run (the sandbox does; :mod:`atelier.grading.autograde`), so its options,
  and those of ``ExecutePreprocessor`` and ``NotebookClient`` it inherits, are honoured one by one:
  ``timeout`` (the per-cell limit; ``None``, 0 or less means none, as in nbclient), ``enabled``
  (``--no-execute``) and ``kernel_name`` when it names a Python kernel. Any other is refused unless
  it holds nbgrader's default, wherever it was set (command line or the course's configuration).
- Anything else on the command line (an unknown class, an unknown option of a known class, a class
  autograding does not use, ``CourseDirectory.root``) is refused.
"""

from __future__ import annotations

from traitlets.config import Config, Configurable
from traitlets.config.loader import DeferredConfig

from atelier.errors import AtelierError

#: The classes whose options are Execute's alone (not shared with nbgrader's other steps).
EXECUTE_ONLY = ("Execute", "ExecutePreprocessor", "NotebookClient")
#: Execute's options that the sandboxed run honours.
EXECUTE_HONOURED = ("timeout", "enabled", "kernel_name")
#: A per-cell limit that never comes: nbgrader's "no timeout" (the notebook's limit still applies).
NO_CELL_LIMIT = 1e9
#: Options of nbgrader's classes that ``atelier grade`` sets itself.
REFUSED = {
    ("CourseDirectory", "root"): "give the course with --course-dir DIR or --cohort C",
}


class OptionError(AtelierError):
    """Options ``atelier grade`` cannot honour: the message names each one and why."""


def _value(trait, value):
    """A configured value as the trait would hold it (command-line values come as strings)."""
    if isinstance(value, DeferredConfig):
        value = value.get_value(trait)
    return value


def _classes_by_name(first=()) -> dict[str, type]:
    """Every configurable class loaded, by name (nbgrader, nbconvert, nbclient, traitlets...).

    The classes of ``first`` (and their bases) win over others of the same name.
    """
    found: dict[str, type] = {}
    for cls in first:
        for base in cls.mro():
            if issubclass(base, Configurable):
                found.setdefault(base.__name__, base)
    todo = [Configurable]
    while todo:
        cls = todo.pop()
        found.setdefault(cls.__name__, cls)
        todo += cls.__subclasses__()
    return found


def pipeline_classes(converter) -> set[str]:
    """The names of the classes whose options nbgrader's autograde pipeline reads (not Execute)."""
    from nbconvert.writers import FilesWriter
    from nbgrader.preprocessors import AssignLatePenalties, Execute

    classes = [type(converter.coursedir), type(converter), converter.exporter_class, FilesWriter]
    for step in [*converter.sanitize_preprocessors, *converter.autograde_preprocessors]:
        step = _import(step)
        if step is not Execute:
            classes.append(step)
        if step is AssignLatePenalties:
            classes.append(_import(AssignLatePenalties(parent=converter).plugin_class))
    names = {"Exchange"}  # the exchange's root is hidden from submissions
    for cls in classes:
        names |= {c.__name__ for c in cls.mro() if issubclass(c, Configurable)}
    return names


def _import(step):
    if isinstance(step, str):
        from traitlets.utils.importstring import import_item

        return import_item(step)
    return step


def check_command_line(config: Config, own: set[str], converter) -> Config:
    """The part of the command line's ``config`` for nbgrader; raise naming every refused option.

    Args:
        config: the command line's configuration (``GradeApp.config``).
        own: Atelier's own classes by name (their options stay Atelier's, checked by name).
        converter: an nbgrader ``Autograde`` converter of the course (what the options are for).
    """
    from nbgrader.preprocessors import Execute

    known = _classes_by_name([type(converter.coursedir), type(converter), Execute])
    used = pipeline_classes(converter)
    nbgrader = Config()
    problems = []
    for section, values in config.items():
        if section in own and isinstance(values, dict):
            traits = own[section].class_traits(config=True)
            problems += [
                f"--{section}.{name}: '{section}' has no option '{name}'"
                for name in values
                if name not in traits
            ]
            continue
        if not isinstance(values, dict):
            # An option traitlets did not recognise (``--student``, ``--nonsense=1``).
            problems.append(f"--{section}: not an option of atelier grade")
            continue
        cls = known.get(section)
        for name, value in values.items():
            option = f"--{section}.{name}"
            if cls is None:
                problems.append(f"{option}: no class '{section}' is known to nbgrader or Atelier")
                continue
            traits = cls.class_traits(config=True)
            if name not in traits:
                problems.append(f"{option}: '{section}' has no option '{name}'")
                continue
            if (section, name) in REFUSED:
                problems.append(f"{option}: {REFUSED[(section, name)]}")
                continue
            if section not in used and section not in EXECUTE_ONLY:
                problems.append(f"{option}: '{section}' takes no part in autograding")
                continue
            try:
                _value(traits[name], value)
            except Exception as error:
                problems.append(f"{option}: {error}")
                continue
            nbgrader[section][name] = value
    if problems:
        raise OptionError(_refusal(problems))
    return nbgrader


def check_execute(app_config: Config, cli_config: Config, config_file: str) -> None:
    """Refuse Execute options (from any source) the sandboxed run cannot honour, naming each."""
    from nbgrader.preprocessors import Execute

    traits = Execute.class_traits(config=True)
    problems = []
    for section in EXECUTE_ONLY:
        for name, value in app_config.get(section, {}).items():
            trait = traits.get(name)
            where = "on the command line" if name in cli_config.get(section, {}) else config_file
            option = f"{section}.{name} ({where})"
            if trait is None:
                continue  # an unknown option: reported for the command line, ignored by nbgrader
            try:
                value = _value(trait, value)
            except Exception as error:
                problems.append(f"{option}: {error}")
                continue
            if name in ("timeout", "enabled"):
                continue
            if name == "kernel_name":
                if value and not str(value).lower().startswith("python"):
                    problems.append(
                        f"{option}: kernel '{value}' is not Python; atelier grade runs Python only"
                    )
                continue
            if value != trait.default_value:
                problems.append(
                    f"{option}: not supported by atelier grade's sandboxed run (it honours "
                    f"Execute.{', Execute.'.join(EXECUTE_HONOURED)}; its own limits are "
                    "SandboxLimits.*); remove it"
                )
    if problems:
        raise OptionError(_refusal(problems))


def check_steps(converter) -> None:
    """Refuse configured steps that would execute trainee code outside the sandbox."""
    from nbconvert.preprocessors import ExecutePreprocessor
    from nbgrader.preprocessors import Execute

    problems = []
    for option in ("sanitize_preprocessors", "autograde_preprocessors"):
        for step in getattr(converter, option):
            cls = _import(step)
            runs_code = isinstance(cls, type) and issubclass(cls, ExecutePreprocessor)
            if runs_code and (cls is not Execute or option == "sanitize_preprocessors"):
                problems.append(
                    f"Autograde.{option}: {cls.__name__} would run trainee code outside the "
                    "sandbox; only nbgrader's Execute, in autograde_preprocessors, is run "
                    "(in the sandbox)"
                )
    if problems:
        raise OptionError(_refusal(problems))


def cell_timeout(app_config: Config) -> float:
    """The per-cell limit nbgrader's ``Execute`` would use with ``app_config``, in seconds.

    ``None``, 0 or a negative value means no per-cell limit (nbclient's rule): the sandbox then
    gets :data:`NO_CELL_LIMIT`, and only the notebook's own limit stops a cell.
    """
    from nbgrader.preprocessors import Execute

    timeout = Execute(config=app_config).timeout
    if timeout is None or timeout <= 0:
        return NO_CELL_LIMIT
    return float(timeout)


def _refusal(problems: list[str]) -> str:
    return "these options cannot be honoured, so nothing was graded:\n  " + "\n  ".join(problems)
