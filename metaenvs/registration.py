"""The registry of task distributions, modelled on Gymnasium's env registry.

Ids follow Gymnasium's grammar with a mandatory family and version:
``Family/Name-vN``. Entry points are lazy ``"module:Attr"`` strings, so a spec is
plain data that round-trips through JSON.

Your own distributions reach every API and CLI command in two ways, as in Gymnasium:

- ``"mypackage.tasks:Mine/Shapes-v0"`` imports ``mypackage.tasks`` (which calls
  :func:`register`) and then looks up ``Mine/Shapes-v0``;
- an installed package declares an entry point in the ``metaenvs.distributions`` group; its module
  is imported the first time an id is not found (and by ``metaenvs list``).
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from metaenvs.errors import EntryPointError, InvalidArgumentError, RegistrationError, UnknownIdError

if TYPE_CHECKING:
    from metaenvs.core import TaskDistribution

ID_PATTERN = re.compile(r"^(?P<family>[A-Za-z][\w.]*)/(?P<name>[A-Za-z][\w.+-]*?)(?:-v(?P<version>\d+))?$")
ENTRY_POINT_PATTERN = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


def parse_id(id: str) -> tuple[str, str, int | None]:
    """Split ``Family/Name-vN`` into its parts.

    Args:
        id: A task-distribution id.

    Returns:
        ``(family, name, version)``; version is ``None`` when the id has no ``-vN``.

    Raises:
        RegistrationError: If ``id`` does not follow the grammar.
    """
    match = ID_PATTERN.match(id) if isinstance(id, str) else None
    if match is None:
        raise RegistrationError(
            f"Malformed task-distribution id {id!r}: ids look like 'Family/Name-vN', "
            "for example 'Synthetic/Sinusoid-v0'."
        )
    version = match.group("version")
    return match.group("family"), match.group("name"), None if version is None else int(version)


@dataclass(frozen=True)
class TaskSpec:
    """The registered description of a task distribution.

    Attributes:
        id: ``Family/Name-vN``.
        entry_point: ``"module:Attr"``; the attribute is called with ``seed`` and ``kwargs``.
        kwargs: Keyword arguments passed to the entry point (JSON-serialisable).
        description: One line shown by ``metaenvs list``.
    """

    id: str
    entry_point: str
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""

    @property
    def family(self) -> str:
        return parse_id(self.id)[0]

    @property
    def name(self) -> str:
        return parse_id(self.id)[1]

    @property
    def version(self) -> int:
        version = parse_id(self.id)[2]
        return 0 if version is None else version

    def to_json(self) -> str:
        """Serialise the spec to a canonical JSON string."""
        data = asdict(self)
        data["kwargs"] = dict(self.kwargs)
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> TaskSpec:
        """Rebuild a spec written by :meth:`to_json`."""
        data = json.loads(text)
        return cls(**data)

    def load_entry_point(self) -> Any:
        """Import and return the object named by the entry point."""
        return load_entry_point(self.entry_point)


def load_entry_point(entry_point: str) -> Any:
    """Import ``"module:Attr"`` and return the attribute, with errors that say what is missing."""
    if not isinstance(entry_point, str) or not ENTRY_POINT_PATTERN.match(entry_point):
        raise EntryPointError(
            f"Entry point {entry_point!r} is not a 'module:Attr' string; lambdas and objects are "
            "not allowed because specs must round-trip through JSON."
        )
    module_name, attr_path = entry_point.split(":")
    try:
        obj: Any = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise EntryPointError(
            f"Entry point {entry_point!r}: module {module_name!r} cannot be imported ({exc}). "
            "Check the module path or install the package that provides it."
        ) from exc
    for part in attr_path.split("."):
        if not hasattr(obj, part):
            public = sorted(n for n in dir(obj) if not n.startswith("_"))
            raise EntryPointError(
                f"Entry point {entry_point!r}: {obj.__name__!r} has no attribute {part!r}. "
                f"Available: {', '.join(public[:20])}."
            )
        obj = getattr(obj, part)
    return obj


registry: dict[str, TaskSpec] = {}
"""Every registered :class:`TaskSpec`, by id."""


def register(
    id: str,
    entry_point: str,
    kwargs: Mapping[str, Any] | None = None,
    description: str = "",
) -> TaskSpec:
    """Register a task distribution.

    Args:
        id: ``Family/Name-vN``; the version is required.
        entry_point: Lazy ``"module:Attr"`` string naming a :class:`TaskDistribution` subclass.
        kwargs: Default keyword arguments for the entry point; must be JSON-serialisable.
        description: A one-line description.

    Returns:
        The registered spec.

    Raises:
        RegistrationError: On a malformed id, a missing version, a duplicate id or
            kwargs that are not JSON-serialisable.
        EntryPointError: If ``entry_point`` is not a ``"module:Attr"`` string.
    """
    family, name, version = parse_id(id)
    if version is None:
        raise RegistrationError(
            f"Id {id!r} has no version: register it as '{family}/{name}-v0' (any change in "
            "behaviour bumps the version)."
        )
    if id in registry:
        raise RegistrationError(
            f"Id {id!r} is already registered (entry point {registry[id].entry_point!r}). "
            f"Register a new version, e.g. '{family}/{name}-v{_latest_version(family, name) + 1}'."
        )
    if not isinstance(entry_point, str) or not ENTRY_POINT_PATTERN.match(entry_point):
        raise EntryPointError(
            f"Entry point {entry_point!r} for {id!r} is not a 'module:Attr' string; pass e.g. "
            "'mypackage.tasks:MyDistribution'."
        )
    kwargs = dict(kwargs or {})
    try:
        json.dumps(kwargs)
    except TypeError as exc:
        raise RegistrationError(f"kwargs of {id!r} must be JSON-serialisable: {exc}") from exc
    spec = TaskSpec(id=id, entry_point=entry_point, kwargs=kwargs, description=description)
    registry[id] = spec
    return spec


def register_spec(spec: TaskSpec) -> TaskSpec:
    """Register an existing spec, for example one read back with :meth:`TaskSpec.from_json`."""
    return register(spec.id, spec.entry_point, spec.kwargs, spec.description)


def _versions(family: str, name: str) -> list[int]:
    return sorted(s.version for s in registry.values() if (s.family, s.name) == (family, name))


def _latest_version(family: str, name: str) -> int:
    versions = _versions(family, name)
    return versions[-1] if versions else -1


def spec(id: str) -> TaskSpec:
    """Return the spec registered under ``id``.

    An id without ``-vN`` resolves to the newest version.

    Raises:
        UnknownIdError: With the versions that exist and the nearest ids.
    """
    if isinstance(id, str) and id in registry:
        return registry[id]
    if isinstance(id, str) and ":" in id:  # Gymnasium's "module:Family/Name-vN": import, then look up
        module, _, id = id.partition(":")
        _import_registering_module(module, id)
        if id in registry:
            return registry[id]
    family, name, version = parse_id(id)
    if not _versions(family, name) and load_plugins():
        return spec(id)
    versions = _versions(family, name)
    if version is None and versions:
        return registry[f"{family}/{name}-v{versions[-1]}"]
    if versions:
        listed = ", ".join(f"{family}/{name}-v{v}" for v in versions)
        raise UnknownIdError(f"Version v{version} of '{family}/{name}' does not exist. Use one of: {listed}.")
    nearest = difflib.get_close_matches(id, list(registry), n=3, cutoff=0.5)
    hint = f" Did you mean: {', '.join(nearest)}?" if nearest else ""
    raise UnknownIdError(
        f"No task distribution registered as {id!r}.{hint} Run `metaenvs list` to see every id."
    )


PLUGIN_GROUP = "metaenvs.distributions"
"""Entry-point group of installed packages that register distributions on import (like Gymnasium's
``gymnasium.envs``): ``[project.entry-points."metaenvs.distributions"] mine = "mypackage.tasks"``."""
_plugins_loaded: list[str] = []


def _import_registering_module(module: str, id: str) -> None:
    try:
        importlib.import_module(module)
    except ImportError as exc:
        raise EntryPointError(
            f"Cannot import {module!r} for '{module}:{id}': {exc}. The part before ':' is a module that "
            "registers the id when imported; check that it is installed or on PYTHONPATH."
        ) from exc


def load_plugins() -> bool:
    """Import every module of the ``metaenvs.distributions`` entry-point group once.

    Returns:
        Whether this call loaded any plugin (so that a failed look-up is worth repeating).

    Raises:
        EntryPointError: A plugin cannot be loaded; the message names the package and the plugin.
    """
    from importlib.metadata import entry_points

    if _plugins_loaded:
        return False
    _plugins_loaded.append("done")
    loaded = False
    for point in entry_points(group=PLUGIN_GROUP):
        try:
            target = point.load()
        except Exception as exc:  # a third-party plugin's own failure, named
            raise EntryPointError(
                f"The {PLUGIN_GROUP} plugin {point.name!r} ({point.value}) failed to load: "
                f"{type(exc).__name__}: {exc}. Fix or uninstall the package that declares it."
            ) from exc
        if callable(target) and not inspect.ismodule(target):
            target()  # a registration function
        loaded = True
    return loaded


def make(id: str | TaskSpec, seed: int = 0, **kwargs: Any) -> TaskDistribution:
    """Build the task distribution registered under ``id``.

    Args:
        id: A registered id (or a spec).
        seed: Fixes the distribution's finite splits (which tasks are held out).
        **kwargs: Override the spec's kwargs.

    Returns:
        The :class:`~metaenvs.core.TaskDistribution`.

    Raises:
        UnknownIdError: If the id is not registered.
        InvalidArgumentError: If a kwarg is not accepted by the entry point.
    """
    task_spec = id if isinstance(id, TaskSpec) else spec(id)
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise InvalidArgumentError(f"seed must be a non-negative int, got {seed!r}.")
    factory = task_spec.load_entry_point()
    merged = {**task_spec.kwargs, **kwargs}
    _check_kwargs(task_spec.id, factory, merged)
    final_spec = TaskSpec(task_spec.id, task_spec.entry_point, merged, task_spec.description)
    dist = factory(**merged, seed=seed)
    dist._bind(final_spec, seed)
    return dist


def _check_kwargs(id: str, factory: Any, kwargs: Mapping[str, Any]) -> None:
    renamed = getattr(factory, "renamed_kwargs", {})
    old = sorted(k for k in kwargs if k in renamed)
    if old:
        raise InvalidArgumentError(
            f"{id}: {', '.join(f'{k!r} is now {renamed[k]!r}' for k in old)} (one word per concept, see "
            f"docs/design.md's glossary); pass {', '.join(f'{renamed[k]}=...' for k in old)} instead."
        )
    params = inspect.signature(factory).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    accepted = sorted(n for n in params if n not in ("self", "seed"))
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise InvalidArgumentError(
            f"{id} does not accept {', '.join(map(repr, unknown))}. "
            f"Accepted keyword arguments: {', '.join(accepted) or '(none)'}."
        )


def pprint_registry(family: str | None = None, print_output: bool = True) -> str:
    """Print (and return) the registered ids grouped by family.

    Args:
        family: Show only this family.
        print_output: If false, only return the text.
    """
    load_plugins()
    lines: list[str] = []
    families = sorted({s.family for s in registry.values()})
    if family is not None and family not in families:
        raise InvalidArgumentError(f"Unknown family {family!r}. Families: {', '.join(families)}.")
    for fam in families if family is None else [family]:
        lines.append(f"===== {fam} =====")
        for s in sorted((s for s in registry.values() if s.family == fam), key=lambda s: s.id):
            lines.append(f"{s.id:<44} {s.description}")
        lines.append("")
    text = "\n".join(lines).rstrip() + "\n"
    if print_output:
        print(text, end="")
    return text
