"""The one exception type for bad user input.

Anything a user can get wrong (a path, a cosmology, a shape, a config key)
raises :class:`InputError` with a one-line message.  The CLI turns it into
``error: <message>`` on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

__all__ = ["InputError"]


class InputError(ValueError):
    """Bad input from the user: the message is one line, meant to be shown as is."""
