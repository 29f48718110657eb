"""The error hierarchy: the CLI prints str(error) as one line, the API maps it to a problem body."""


class CimError(Exception):
    """Base of every error the platform raises on purpose."""

    hint: str | None = None

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.hint = hint

    def __str__(self) -> str:
        msg = " ".join(super().__str__().split("\n"))
        return f"{msg} ({self.hint})" if self.hint else msg


class InputError(CimError):
    """A source file or argument is unreadable or wrong."""


class GeoreferenceError(InputError):
    """A source cannot be placed in the storage CRS."""


class DatabaseError(CimError):
    """The database cannot be reached, created or migrated."""


class NotFoundError(CimError):
    """A dataset, object or collection does not exist."""
