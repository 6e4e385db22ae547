"""The one exception type a user is meant to read."""


class TcdnError(Exception):
    """A problem the user can fix.

    The message names the file or option at fault and says what to do. The command-line tool
    prints it on one line, without a traceback, and exits with a non-zero status.
    """
