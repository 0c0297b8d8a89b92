"""The one base class of the errors a user can cause: a bad file, a bad option, a model that cannot be used.

Every such error carries one line that says what is wrong and where; the command line prints it and exits 1 (in one
place, `chatbot.cli`), the web service answers it as JSON. Anything else escaping is a bug, and keeps its traceback.
"""

from __future__ import annotations


class UserError(Exception):
    """What the user can fix; `str(error)` is the whole story, one line."""
