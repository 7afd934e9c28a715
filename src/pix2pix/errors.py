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
