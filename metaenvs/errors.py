"""The exception hierarchy of metaenvs.

Every error that bad input can cause derives from :class:`MetaEnvsError`, and its
message says what was wrong and how to fix it. The classes also derive from the
matching built-in exception (``KeyError``, ``ValueError``, ...) so that code which
already catches those keeps working.
"""

from __future__ import annotations


class MetaEnvsError(Exception):
    """Base class of every error raised by metaenvs, agents, baselines and leaderboard."""

    def __str__(self) -> str:  # KeyError would otherwise repr() the message.
        return str(self.args[0]) if self.args else ""


class RegistrationError(MetaEnvsError, ValueError):
    """A task distribution could not be registered (bad id, duplicate id, bad spec)."""


class UnknownIdError(MetaEnvsError, KeyError):
    """The id names no registered task distribution."""


class EntryPointError(MetaEnvsError, ImportError):
    """An entry point's module or attribute cannot be imported."""


class InvalidArgumentError(MetaEnvsError, ValueError):
    """An argument has a bad value (unknown kwarg, non-positive count, bad split, ...)."""


class WrongDistributionError(MetaEnvsError, ValueError):
    """A task was passed to something built for a different task distribution."""


class RecipeError(MetaEnvsError, ValueError):
    """An agent's settings depart from the recipe of the protocol it is evaluated under."""


class IncompatibleAgentError(MetaEnvsError, TypeError):
    """An agent lacks a capability that a meta-learner or task needs."""


class NonFiniteError(MetaEnvsError, FloatingPointError):
    """A loss, gradient or parameter became NaN or infinite."""


class IndefiniteSystemError(MetaEnvsError, ArithmeticError):
    """A linear system that conjugate gradient needs positive definite is not (negative curvature)."""


class DataError(MetaEnvsError, OSError):
    """A data file is missing, corrupt or in an unexpected format."""


class CheckpointError(MetaEnvsError, ValueError):
    """A saved initialization or checkpoint is unreadable, unsafe or inconsistent."""


class ConformanceError(MetaEnvsError, AssertionError):
    """A task distribution breaks the contract checked by ``metaenvs.testing``."""


class SubmissionError(MetaEnvsError, ValueError):
    """A leaderboard submission (or entry) was refused.

    Attributes:
        problems: One line per problem; the message is these lines joined by newlines.
    """

    def __init__(self, problems: str | list[str]) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))


class MissingDependencyError(MetaEnvsError, ImportError):
    """An optional dependency is not installed; the message gives the ``pip install`` line."""


def require(module: str, extra: str) -> object:
    """Import ``module`` or raise :class:`MissingDependencyError` naming ``pip install 'metaenvs[extra]'``."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(
            f"{module} is not installed; install it with: pip install 'metaenvs[{extra}]'"
        ) from exc
