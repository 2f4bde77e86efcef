"""One small exception hierarchy; each class maps to a CLI exit code (see DESIGN.md)."""

from __future__ import annotations

__all__ = [
    "ModelportError",
    "UserInputError",
    "ModelFileError",
    "UnsafeModelError",
    "MissingCustomObjectsError",
    "LambdaRefusedError",
    "ConversionError",
    "ValidationFailed",
    "MissingDependencyError",
]

EXIT_OK = 0
EXIT_MISMATCH = 1
EXIT_USER = 2
EXIT_CONVERSION = 3


class ModelportError(Exception):
    """Base class: a one-line message that says what to do next."""

    exit_code = EXIT_USER


class UserInputError(ModelportError):
    """The user's input (path, option, feed) is unusable."""


class ModelFileError(UserInputError):
    """The model file is missing, unreadable, truncated or of the wrong kind."""


class UnsafeModelError(UserInputError):
    """The model file holds content that would run code or read host files."""


class LambdaRefusedError(UnsafeModelError):
    """A Lambda layer carries bytecode and no safe way to rebuild it was given."""

    def __init__(self, message: str, layers: list[str] | None = None) -> None:
        super().__init__(message)
        self.layers = list(layers or [])


class MissingCustomObjectsError(UserInputError):
    """The model references classes or functions that were not registered."""

    def __init__(self, message: str, names: list[str] | None = None) -> None:
        super().__init__(message)
        self.names = list(names or [])


class MissingDependencyError(ModelportError):
    """An optional package needed for this step is not installed."""


class ConversionError(ModelportError):
    """A converter failed on a model that loaded fine."""

    exit_code = EXIT_CONVERSION


class ValidationFailed(ModelportError):
    """An artifact does not match the reference."""

    exit_code = EXIT_MISMATCH
