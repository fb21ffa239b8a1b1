"""The one base class of every error a user can cause (bad input, not a bug).

Every layer raises subclasses of :class:`ReprlError` for input it refuses (an unknown env id, a
truncated checkpoint, an invalid config): the message names what was expected and what came.
The ``reprl`` command line prints such an error as one line and exits with code 2; anything
else is a bug and keeps its traceback. Subclasses also derive from ``ValueError`` so code that
catches ``ValueError`` keeps working.
"""

from __future__ import annotations


class ReprlError(ValueError):
    """Invalid input refused with a message naming what was expected and what came."""
