"""A small registry: config names (``slim: UnstructuredPrune``) to the classes that read them."""
import difflib


class RegistryError(ValueError):
    """A name is not registered; the message lists what is."""


class Registry:
    """Maps names to classes.

    Example:
        >>> PRUNERS = Registry('PRUNER')
        >>> @PRUNERS.register()
        ... class UnstructuredPrune: ...
        >>> PRUNERS.get('UnstructuredPrune')
    """

    def __init__(self, name):
        self.name = name
        self._entries = {}

    def register(self, name=None):
        """Decorator registering a class under ``name`` (default: its ``__name__``)."""
        def wrap(cls):
            key = name or cls.__name__
            if key in self._entries:
                raise KeyError(f"{key!r} is already in the {self.name} registry")
            self._entries[key] = cls
            return cls
        return wrap

    def get(self, name):
        """The class registered as ``name``.

        Raises:
            RegistryError: ``name`` is unknown; the message lists the valid names and the closest.
        """
        if name in self._entries:
            return self._entries[name]
        close = difflib.get_close_matches(str(name), list(self._entries), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise RegistryError(f"{name!r} is not in the {self.name} registry (valid: "
                            f"{sorted(self._entries)}){hint}")

    def names(self):
        return sorted(self._entries)

    def __contains__(self, name):
        return name in self._entries


PRUNERS = Registry('PRUNER')
