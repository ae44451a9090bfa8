"""What regularizers and constraints share: an object defined by its ``get_config()``, and Keras's dict form of it.

Keras saves such an object as ``{"class_name": "L2", "config": {"l2": 0.01}}``
(with ``module`` and ``registered_name`` keys, which are ignored here);
:func:`to_dict` writes that form and :func:`from_dict` reads it back.
"""

__all__ = ["Serializable", "to_dict", "from_dict"]


class Serializable:
    """Base class of objects whose constructor arguments are ``get_config()``: equal when those are."""

    def get_config(self) -> dict:
        return {}

    @classmethod
    def from_config(cls, config: dict):
        return cls(**config)

    def __repr__(self) -> str:
        args = ", ".join(f"{key}={value!r}" for key, value in self.get_config().items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other) -> bool:
        return type(self) is type(other) and self.get_config() == other.get_config()

    __hash__ = None


def to_dict(obj: Serializable) -> dict:
    """``{"class_name": ..., "config": obj.get_config()}``."""
    return {"class_name": type(obj).__name__, "config": obj.get_config()}


def from_dict(identifier: dict, classes: dict, kind: str, example: str):
    """The instance ``identifier`` describes, one of ``classes`` (by class name); a clear ValueError otherwise.

    ``kind`` ("regularizer", "constraint") and ``example`` (a valid dict) word the errors.
    """
    if set(identifier) - {"class_name", "config", "module", "registered_name"} or "class_name" not in identifier:
        raise ValueError(f"a {kind} dict must be {example} (what {kind}s.serialize and get_config give), "
                         f"got {identifier!r}")
    name = identifier["class_name"]
    if name not in classes:
        raise ValueError(f"unknown {kind} class {name!r}; expected one of {sorted(classes)}")
    config = identifier.get("config") or {}
    if not isinstance(config, dict):
        raise ValueError(f"a {kind}'s config must be a dict, got {config!r}")
    try:
        return classes[name].from_config(config)
    except TypeError as error:
        raise ValueError(f"invalid config for {kind} {name}: {config!r} ({error})") from None
