"""Exceptions that carry a message meant for the user.

The CLI prints ``str(error)`` for any :class:`Pix2PixError` and exits with status 2, so the
message must name the file or option at fault and say what to do; no traceback is shown.
"""


class Pix2PixError(Exception):
    """Base class: a problem with the user's input, files or settings (not a bug)."""


class ConfigError(Pix2PixError):
    """An option has a value that cannot work (bad name, out of range, incompatible sizes)."""


class DataError(Pix2PixError):
    """A dataset or image file cannot be used; the message names the file."""


class CheckpointError(Pix2PixError):
    """A checkpoint or exported model cannot be read or does not match the code."""


class ExportError(Pix2PixError):
    """An exported model does not reproduce the PyTorch model it was exported from."""


def missing_extra(feature: str, extra: str, error: ImportError) -> ConfigError:
    """The error for a feature whose optional dependencies are not installed (one line, with the fix)."""
    name = getattr(error, "name", None) or str(error)
    return ConfigError(f"{feature} needs the '{extra}' extra ({name} is not installed): "
                       f"pip install 'pix2pix[{extra}]' (in a checkout: pip install -e '.[{extra}]')")
