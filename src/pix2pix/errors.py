"""Exceptions that carry a message meant for the user.

The CLI prints ``str(error)`` for any :class:`Pix2PixError` and exits with status 2, so the
message must name the file or option at fault and say what to do; no traceback is shown.

File names on Linux are bytes and need not be UTF-8 (``caf\\xe9.png`` written by a Latin-1
system). Python hands such names around as strings with lone surrogates, which cannot be
written to a UTF-8 terminal or log file. Every message is therefore passed through
:func:`printable`, which shows the undecodable bytes as ``\\xNN`` escapes.
"""

from __future__ import annotations


def printable(text: str) -> str:
    """``text`` with undecodable file-name bytes shown as ``\\xNN`` (always encodable as UTF-8)."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        pass
    try:  # surrogate-escaped bytes (os.listdir of a non-UTF-8 name) back to bytes, then escaped
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # other lone surrogates
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


class Pix2PixError(Exception):
    """Base class: a problem with the user's input, files or settings (not a bug)."""

    def __init__(self, *args: object) -> None:
        if args and isinstance(args[0], str):
            args = (printable(args[0]), *args[1:])
        super().__init__(*args)


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


class OutputError(Pix2PixError):
    """A result or run-folder file cannot be written (disk full, read-only, a file in the way)."""


class DownloadError(Pix2PixError):
    """A dataset could not be fetched, failed its checksum, or its archive is unsafe."""


class NonFiniteLoss(Pix2PixError):
    """A loss or the weights became NaN or infinite; the message names the step and the last good
    checkpoint."""
